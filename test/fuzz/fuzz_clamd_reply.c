/* fuzz_clamd_reply.c -- libFuzzer target: arbitrary bytes as clamd replies
 * (one after another), fed in pseudo-random pieces seeded by the first
 * input byte, then EOF.  Virus names and error texts must come out as
 * printable ASCII. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clamd_proto.h"
#include "split_feed.h"

#define REPLIES_MAX	64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	seed = fuzz_seed(data[0]);
	data++;
	size--;
	for (replies = 0; replies < REPLIES_MAX; replies++) {
		clamd_reply_init(&r);
		rc = CLAMD_MORE;
		while (off < size && rc == CLAMD_MORE) {
			n = fuzz_piece(&seed, size - off);
			rc = clamd_reply_feed(&r, data + off, n, &used);
			if (used > n || (rc == CLAMD_MORE && used != n))
				abort();
			off += used;
		}
		if (rc == CLAMD_MORE)
			rc = clamd_reply_eof(&r);
		if (rc == CLAMD_DONE) {
			if (r.status == CLAMD_VIRUS)
				fuzz_check_printable(r.virus, sizeof(r.virus), 0);
			if (r.status == CLAMD_VIRUS && r.virus[0] == '\0')
				abort();
			if (r.status == CLAMD_FAILED)
				fuzz_check_printable(r.error, sizeof(r.error), 0);
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
