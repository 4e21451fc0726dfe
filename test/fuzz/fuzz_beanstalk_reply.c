/* fuzz_beanstalk_reply.c -- libFuzzer target: arbitrary bytes as beanstalkd
 * replies to a put (with or without a preceding "use", chosen by the first
 * input byte, which also seeds the pseudo-random split of the rest), one
 * exchange after another, then EOF.  Checks the parser's contract: it
 * never consumes more than it is given, consumes everything while it wants
 * more, and its error texts are printable and NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "beanstalk_proto.h"
#include "split_feed.h"

#define EXCHANGES_MAX	64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct beanstalk_reply r;
	struct mbuf out = { 0 };
	enum beanstalk_rc rc;
	uint32_t seed;
	size_t off = 0, used, n;
	const char *tube;
	int k;

	if (size == 0)
		return 0;
	seed = fuzz_seed(data[0]);
	tube = (data[0] & 1) ? "milter-jobs" : NULL;
	data++;
	size--;
	for (k = 0; k < EXCHANGES_MAX; k++) {
		beanstalk_reply_init(&r, tube);
		rc = BEANSTALK_MORE;
		while (off < size && rc == BEANSTALK_MORE) {
			n = fuzz_piece(&seed, size - off);
			rc = beanstalk_reply_feed(&r, data + off, n, &used);
			if (used > n || (rc == BEANSTALK_MORE && used != n))
				abort();
			off += used;
		}
		if (rc == BEANSTALK_MORE)
			rc = beanstalk_reply_eof(&r);
		if (rc == BEANSTALK_DONE) {
			if (r.status != BEANSTALK_INSERTED)
				fuzz_check_printable(r.error, sizeof(r.error), 1);
			if (r.failed_use && tube == NULL)
				abort();
			if (strcmp(beanstalk_status_name(r.status), "?") == 0)
				abort();
		} else if (rc == BEANSTALK_ERROR) {
			fuzz_check_printable(r.error, sizeof(r.error), 1);
		} else {
			abort();
		}
		if (rc != BEANSTALK_DONE || off >= size)
			break;
	}
	/* the encoder takes any bytes as job data */
	beanstalk_use_build(&out, "milter-jobs");
	beanstalk_put_head(&out, 1025, 0, 60, size);
	mbuf_append(&out, data, size);
	beanstalk_put_tail(&out);
	if (out.len < size + 2 || memcmp(out.p + out.len - 2, "\r\n", 2) != 0)
		abort();
	mbuf_free(&out);
	/* tube names: a valid one never holds a byte that breaks the line */
	{
		char name[BEANSTALK_TUBE_MAX + 8];

		n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
		memcpy(name, data, n);
		name[n] = '\0';
		if (beanstalk_tube_valid(name) && (strlen(name) >
		    BEANSTALK_TUBE_MAX || strpbrk(name, " \r\n") != NULL))
			abort();
	}
	return 0;
}
