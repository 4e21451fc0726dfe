/* fuzz_spamd_reply.c -- libFuzzer target: arbitrary bytes as a spamd reply,
 * fed in pseudo-random pieces (the first input byte seeds the split points
 * and picks a small length cap), then EOF.  Checks the codec's invariants
 * and the request head's line structure. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spamd_proto.h"

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
	seed = 0x9e3779b9u ^ ((uint32_t)data[0] << 8) ^ data[0];
	spamd_reply_init(&r, (data[0] & 0x80) ? 64 : 0);
	data++;
	size--;
	while (off < size && rc == SPAMD_MORE) {
		n = piece(&seed, size - off);
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
