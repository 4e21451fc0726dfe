/* fuzz_http_reply.c -- libFuzzer target: arbitrary bytes as HTTP replies
 * (pipelined one after another), fed in pseudo-random pieces; the first
 * input byte seeds the split points and picks a small body cap.  Checks the
 * codec's invariants, and that the request helpers never emit a line break
 * taken from their input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_reply.h"
#include "split_feed.h"

#define REPLIES_MAX	64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_request(const uint8_t *data, size_t size)
{
	struct mbuf out = { 0 };
	char *s = malloc(size + 1);
	size_t k, nl = 0;

	memcpy(s, data, size);
	s[size] = '\0';
	http_request_line(&out, s, s);
	http_request_header(&out, s, s);
	http_request_end(&out);
	for (k = 0; k < out.len; k++) {
		if (out.p[k] == '\n') {
			nl++;
			if (k == 0 || out.p[k - 1] != '\r')
				abort();
		} else if (out.p[k] == '\r' &&
		    (k + 1 == out.len || out.p[k + 1] != '\n')) {
			abort();
		}
	}
	if (nl != 3)
		abort();
	mbuf_free(&out);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_reply r;
	enum http_rc rc;
	uint32_t seed;
	size_t off = 0, used, n, max_body;
	int replies;

	if (size == 0)
		return 0;
	seed = fuzz_seed(data[0]);
	max_body = (data[0] & 0x80) ? 64 : 0;
	data++;
	size--;
	for (replies = 0; replies < REPLIES_MAX; replies++) {
		http_reply_init(&r, max_body);
		rc = HTTP_MORE;
		while (off < size && rc == HTTP_MORE) {
			n = fuzz_piece(&seed, size - off);
			rc = http_reply_feed(&r, data + off, n, &used);
			if (used > n || (rc == HTTP_MORE && used != n))
				abort();
			off += used;
		}
		if (rc == HTTP_MORE)
			rc = http_reply_eof(&r);
		if (rc == HTTP_DONE) {
			if (r.body.p == NULL || r.body.p[r.body.len] != '\0' ||
			    r.status < 200 || r.status > 599 ||
			    r.body.len > (max_body ? max_body :
			    HTTP_BODY_MAX_DEFAULT))
				abort();
			if (http_reply_feed(&r, data, size, &used) !=
			    HTTP_DONE || used != 0)
				abort();
		} else if (rc != HTTP_ERROR || r.error[0] == '\0' ||
		    r.keepalive) {
			abort();
		}
		http_reply_free(&r);
		if (rc != HTTP_DONE || off >= size)
			break;
	}
	check_request(data, size < 4096 ? size : 4096);
	return 0;
}
