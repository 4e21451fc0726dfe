/* fuzz_spamd_reply.c -- libFuzzer target: arbitrary bytes as a spamd reply,
 * fed in pseudo-random pieces (the first input byte seeds the split points
 * and picks a small length cap), then EOF.  Checks the codec's invariants
 * and the request head's line structure. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spamd_proto.h"
#include "split_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_request(const uint8_t *data, size_t size)
{
	struct mbuf out = { 0 };
	char *s = malloc(size + 1);
	size_t k, nl = 0;

	memcpy(s, data, size);
	s[size] = '\0';
	spamd_request_head(&out, s, size, s);
	for (k = 0; k < out.len; k++) {
		if (out.p[k] != '\n')
			continue;
		nl++;
		if (k == 0 || out.p[k - 1] != '\r')
			abort();
	}
	if (nl != 3 && nl != 4)
		abort();
	mbuf_free(&out);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spamd_reply r;
	enum spamd_rc rc = SPAMD_MORE;
	uint32_t seed;
	size_t off = 0, used, n, k;

	if (size == 0)
		return 0;
	seed = fuzz_seed(data[0]);
	spamd_reply_init(&r, (data[0] & 0x80) ? 64 : 0);
	data++;
	size--;
	while (off < size && rc == SPAMD_MORE) {
		n = fuzz_piece(&seed, size - off);
		rc = spamd_reply_feed(&r, data + off, n, &used);
		if (used > n || (rc == SPAMD_MORE && used != n))
			abort();
		off += used;
	}
	if (rc == SPAMD_MORE)
		rc = spamd_reply_eof(&r);
	if (rc == SPAMD_DONE) {
		if (r.code != 0 || !isfinite(r.score) ||
		    !isfinite(r.threshold) ||
		    fabs(r.score) > SPAMD_SCORE_MAX)
			abort();
		for (k = 0; r.symbols != NULL && r.symbols[k] != '\0'; k++)
			if ((unsigned char)r.symbols[k] <= ' ')
				abort();
		if (r.symbols != NULL && r.report == NULL)
			abort();
	} else if (rc != SPAMD_ERROR || r.error[0] == '\0' ||
	    r.symbols != NULL || r.report != NULL) {
		abort();
	}
	spamd_reply_free(&r);
	check_request(data, size < 4096 ? size : 4096);
	return 0;
}
