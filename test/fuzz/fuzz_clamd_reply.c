/* fuzz_clamd_reply.c -- libFuzzer target: arbitrary bytes as clamd replies
 * (one after another), fed in pseudo-random pieces seeded by the first
 * input byte, then EOF.  Virus names and error texts must come out as
 * printable ASCII. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clamd_proto.h"

#define REPLIES_MAX	64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static size_t
piece(uint32_t *seed, size_t rest)
{
	uint32_t x = rnd(seed);
	size_t m = rest < 32 ? rest : 32;

	if ((x & 3) == 0)
		return rest;
	return 1 + (x >> 2) % m;
}

static void
check_printable(const char *s, size_t size)
{
	size_t k;

	for (k = 0; k < size && s[k] != '\0'; k++)
		if (s[k] < ' ' || s[k] > '~')
			abort();
	if (k == size)
		abort();	/* not NUL-terminated */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clamd_reply r;
	struct mbuf out = { 0 };
	enum clamd_rc rc;
	uint32_t seed;
	size_t off = 0, used, n;
	int replies;

	if (size == 0)
		return 0;
	seed = 0x9e3779b9u ^ ((uint32_t)data[0] << 8) ^ data[0];
	data++;
	size--;
	for (replies = 0; replies < REPLIES_MAX; replies++) {
		clamd_reply_init(&r);
		rc = CLAMD_MORE;
		while (off < size && rc == CLAMD_MORE) {
			n = piece(&seed, size - off);
			rc = clamd_reply_feed(&r, data + off, n, &used);
			if (used > n || (rc == CLAMD_MORE && used != n))
				abort();
			off += used;
		}
		if (rc == CLAMD_MORE)
			rc = clamd_reply_eof(&r);
		if (rc == CLAMD_DONE) {
			if (r.status == CLAMD_VIRUS)
				check_printable(r.virus, sizeof(r.virus));
			if (r.status == CLAMD_VIRUS && r.virus[0] == '\0')
				abort();
			if (r.status == CLAMD_FAILED)
				check_printable(r.error, sizeof(r.error));
		} else if (rc != CLAMD_ERROR || r.error[0] == '\0') {
			abort();
		}
		clamd_reply_free(&r);
		if (rc != CLAMD_DONE || off >= size)
			break;
	}
	clamd_instream_begin(&out);
	clamd_instream_chunk(&out, data, size);
	clamd_instream_end(&out);
	if (out.len != 10 + (size ? 4 + size : 0) + 4)
		abort();
	mbuf_free(&out);
	return 0;
}
