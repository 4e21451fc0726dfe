/* fuzz_template.c -- libFuzzer target for template_expand.
 *
 * Input: byte 0 = output size / 4 (0..1020), byte 1 = flags (bit 0:
 * has_score; bits 1..7: that value is NULL), then NUL-separated fields:
 * template, queue_id, from, rcpt, ip, helo, module, reason, and 8 raw bytes
 * of the score (a double).  Checked: the output is NUL-terminated within
 * the size, its length is the return value, it holds no control byte (so no
 * CR/LF), and it is a prefix of the untruncated expansion, shorter by at
 * most a cut UTF-8 sequence. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

#define NFIELDS	9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char full[1 << 16];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct template_vars v;
	const char *field[NFIELDS];
	size_t flen[NFIELDS], len, n, fn, i, k;
	char *copy, *out, *p;
	unsigned flags;

	if (size < 2)
		return 0;
	len = (size_t)data[0] * 4;
	flags = data[1];
	data += 2;
	size -= 2;

	/* fields, each NUL-terminated in COPY */
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (i = 0; i < NFIELDS; i++) {
		field[i] = "";
		flen[i] = 0;
	}
	for (p = copy, k = 0; k < NFIELDS && p <= copy + size; k++) {
		field[k] = p;
		flen[k] = strlen(p);
		p += flen[k] + 1;
	}

	memset(&v, 0, sizeof(v));
	v.queue_id = flags & 0x02 ? NULL : field[1];
	v.from = flags & 0x04 ? NULL : field[2];
	v.rcpt = flags & 0x08 ? NULL : field[3];
	v.ip = flags & 0x10 ? NULL : field[4];
	v.helo = flags & 0x20 ? NULL : field[5];
	v.module = flags & 0x40 ? NULL : field[6];
	v.reason = flags & 0x80 ? NULL : field[7];
	v.has_score = flags & 0x01;
	if (flen[8] >= sizeof(double))
		memcpy(&v.score, field[8], sizeof(double));

	/* exactly LEN bytes on the heap, so ASan sees any overrun */
	out = malloc(len ? len : 1);
	n = template_expand(field[0], &v, out, len);
	if (len == 0) {
		if (n != 0)
			__builtin_trap();
		goto done;
	}
	if (n >= len || out[n] != '\0' || strlen(out) != n)
		__builtin_trap();
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f)	/* CR, LF, TAB, ... */
			__builtin_trap();
	}

	/* against the untruncated expansion (when it fits in FULL) */
	fn = template_expand(field[0], &v, full, sizeof(full));
	if (fn < sizeof(full) - 1) {
		if (fn <= len - 1) {		/* fits: identical */
			if (n != fn || memcmp(out, full, n) != 0)
				__builtin_trap();
		} else if (n > len - 1 || n + 3 < len - 1 ||
		    memcmp(out, full, n) != 0) {
			__builtin_trap();
		}
	}
done:
	free(out);
	free(copy);
	return 0;
}
