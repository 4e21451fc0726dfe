/* test_beanstalk_proto.c -- the beanstalkd put codec: the command bytes,
 * tube names, replies in every split (with and without "use"), every error
 * reply, and garbage: unknown lines, bad ids, wrong tube echo, over-long
 * lines, NUL bytes, EOF mid-reply. */
#include <stdbool.h>
#include <string.h>

#include "beanstalk_proto.h"
#include "tt.h"

#define S(x)	(x), (sizeof(x) - 1)

/* Feeds S[0..LEN) split at K (K > LEN: one byte at a time), then EOF when
 * AT_EOF and the parser wants more.  *CONSUMED = bytes consumed. */
static enum beanstalk_rc
feed(struct beanstalk_reply *r, const char *s, size_t len, size_t k,
    bool at_eof, size_t *consumed)
{
	enum beanstalk_rc rc = BEANSTALK_MORE;
	size_t off = 0, used, n;

	while (off < len && rc == BEANSTALK_MORE) {
		if (k > len)
			n = 1;
		else
			n = off < k ? k - off : len - off;
		rc = beanstalk_reply_feed(r, (const uint8_t *)s + off, n,
		    &used);
		TT_CHECK(used <= n);
		if (rc == BEANSTALK_MORE)
			TT_CHECK_INT(used, ==, n);
		off += used;
	}
	*consumed = off;
	if (rc == BEANSTALK_MORE && at_eof)
		rc = beanstalk_reply_eof(r);
	return rc;
}

/* Every split of S (with "use TUBE" sent, or none for NULL) ends DONE with
 * STATUS and ID, CONSUMED bytes eaten; then nothing more is consumed. */
static void
expect_done(const char *tube, const char *s, size_t len, size_t consumed_want,
    enum beanstalk_status status, uint64_t id, bool failed_use)
{
	struct beanstalk_reply r;
	enum beanstalk_rc rc;
	size_t k, consumed, used;

	for (k = 0; k <= len + 1; k++) {
		beanstalk_reply_init(&r, tube);
		rc = feed(&r, s, len, k, false, &consumed);
		TT_CHECK_INT(rc, ==, BEANSTALK_DONE);
		if (rc != BEANSTALK_DONE)
			fprintf(stderr, "  split %zu of \"%.*s\": %s\n", k,
			    (int)len, s, r.error);
		TT_CHECK_INT(consumed, ==, consumed_want);
		TT_CHECK_INT(r.status, ==, status);
		TT_CHECK_INT(r.failed_use, ==, failed_use);
		if (status == BEANSTALK_INSERTED || status == BEANSTALK_BURIED)
			TT_CHECK(r.id == id);
		if (status != BEANSTALK_INSERTED)
			TT_CHECK(strstr(r.error, beanstalk_status_name(status))
			    != NULL);
		TT_CHECK_INT(beanstalk_reply_feed(&r, (const uint8_t *)"x", 1,
		    &used), ==, BEANSTALK_DONE);
		TT_CHECK_INT(used, ==, 0);
		TT_CHECK_INT(beanstalk_reply_eof(&r), ==, BEANSTALK_DONE);
	}
}

/* S (whole, and one byte at a time) is an ERROR whose text contains WHY. */
static void
expect_err(const char *tube, const char *s, size_t len, bool at_eof,
    const char *why)
{
	struct beanstalk_reply r;
	enum beanstalk_rc rc;
	size_t k, consumed, used;

	for (k = len; k <= len + 1; k++) {
		beanstalk_reply_init(&r, tube);
		rc = feed(&r, s, len, k, at_eof, &consumed);
		TT_CHECK_INT(rc, ==, BEANSTALK_ERROR);
		TT_CHECK(strstr(r.error, why) != NULL);
		if (strstr(r.error, why) == NULL)
			fprintf(stderr, "  \"%s\" does not contain \"%s\"\n",
			    r.error, why);
		TT_CHECK_INT(beanstalk_reply_feed(&r, (const uint8_t *)"x", 1,
		    &used), ==, BEANSTALK_ERROR);
		TT_CHECK_INT(used, ==, 0);
		TT_CHECK_INT(beanstalk_reply_eof(&r), ==, BEANSTALK_ERROR);
	}
}

static void
test_request(void)
{
	struct mbuf b = { 0 };
	static const char want[] = "use milter-jobs\r\n"
	    "put 1025 0 172800 5\r\nhe\0lo\r\n";

	beanstalk_use_build(&b, "milter-jobs");
	beanstalk_put_head(&b, 1025, 0, 172800, 5);
	mbuf_append(&b, "he\0lo", 5);
	beanstalk_put_tail(&b);
	TT_CHECK_INT(mbuf_avail(&b), ==, sizeof(want) - 1);
	TT_CHECK(memcmp(mbuf_data(&b), want, sizeof(want) - 1) == 0);
	mbuf_free(&b);
	/* the largest values */
	beanstalk_put_head(&b, UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX);
	TT_CHECK_INT(mbuf_avail(&b), ==, strlen("put 4294967295 4294967295 "
	    "4294967295 18446744073709551615\r\n"));
	TT_CHECK(memcmp(mbuf_data(&b), "put 4294967295 4294967295 4294967295 "
	    "18446744073709551615\r\n", mbuf_avail(&b)) == 0);
	mbuf_free(&b);
}

static void
test_tube_names(void)
{
	char big[300];

	TT_CHECK(beanstalk_tube_valid("default"));
	TT_CHECK(beanstalk_tube_valid("milter-jobs"));
	TT_CHECK(beanstalk_tube_valid("a+b/c;d.e$f_g(h)0-9"));
	TT_CHECK(!beanstalk_tube_valid(NULL));
	TT_CHECK(!beanstalk_tube_valid(""));
	TT_CHECK(!beanstalk_tube_valid("-leading-hyphen"));
	TT_CHECK(!beanstalk_tube_valid("with space"));
	TT_CHECK(!beanstalk_tube_valid("crlf\r\nput"));
	TT_CHECK(!beanstalk_tube_valid("t\xc3\xa9"));
	TT_CHECK(!beanstalk_tube_valid("star*"));
	memset(big, 'a', sizeof(big));
	big[200] = '\0';
	TT_CHECK(beanstalk_tube_valid(big));
	big[200] = 'a';
	big[201] = '\0';
	TT_CHECK(!beanstalk_tube_valid(big));
}

static void
test_inserted(void)
{
	static const char two[] = "INSERTED 1\r\nINSERTED 2\r\n";

	expect_done(NULL, S("INSERTED 42\r\n"), 13, BEANSTALK_INSERTED, 42,
	    false);
	expect_done(NULL, S("INSERTED 7\n"), 11, BEANSTALK_INSERTED, 7, false);
	expect_done(NULL, S("INSERTED 18446744073709551615\r\n"),
	    sizeof("INSERTED 18446744073709551615\r\n") - 1,
	    BEANSTALK_INSERTED, UINT64_MAX, false);
	expect_done(NULL, S("INSERTED 00000000000000000001\r\n"),
	    sizeof("INSERTED 00000000000000000001\r\n") - 1,
	    BEANSTALK_INSERTED, 1, false);
	/* the second reply is not consumed */
	expect_done(NULL, S(two), 12, BEANSTALK_INSERTED, 1, false);
	/* with a tube: USING first */
	expect_done("milter-jobs", S("USING milter-jobs\r\nINSERTED 9\r\n"),
	    sizeof("USING milter-jobs\r\nINSERTED 9\r\n") - 1,
	    BEANSTALK_INSERTED, 9, false);
	expect_done("", S("INSERTED 3\r\n"), 12, BEANSTALK_INSERTED, 3, false);
}

static void
test_error_replies(void)
{
	/* every error answer to put ends the exchange as DONE */
	expect_done(NULL, S("BURIED 5\r\n"), 10, BEANSTALK_BURIED, 5, false);
	expect_done(NULL, S("EXPECTED_CRLF\r\n"), 15,
	    BEANSTALK_EXPECTED_CRLF, 0, false);
	expect_done(NULL, S("JOB_TOO_BIG\r\n"), 13, BEANSTALK_JOB_TOO_BIG, 0,
	    false);
	expect_done(NULL, S("DRAINING\r\n"), 10, BEANSTALK_DRAINING, 0, false);
	expect_done(NULL, S("OUT_OF_MEMORY\r\n"), 15, BEANSTALK_OUT_OF_MEMORY,
	    0, false);
	expect_done(NULL, S("INTERNAL_ERROR\r\n"), 16,
	    BEANSTALK_INTERNAL_ERROR, 0, false);
	expect_done(NULL, S("BAD_FORMAT\r\n"), 12, BEANSTALK_BAD_FORMAT, 0,
	    false);
	expect_done(NULL, S("UNKNOWN_COMMAND\r\n"), 17,
	    BEANSTALK_UNKNOWN_COMMAND, 0, false);
	/* after USING, the put's errors */
	expect_done("t", S("USING t\r\nJOB_TOO_BIG\r\n"), 22,
	    BEANSTALK_JOB_TOO_BIG, 0, false);
	expect_done("t", S("USING t\r\nBURIED 8\r\n"), 19, BEANSTALK_BURIED,
	    8, false);
	/* "use" itself refused: the put's reply is not read */
	expect_done("t", S("BAD_FORMAT\r\nINSERTED 1\r\n"), 12,
	    BEANSTALK_BAD_FORMAT, 0, true);
	expect_done("t", S("OUT_OF_MEMORY\r\n"), 15, BEANSTALK_OUT_OF_MEMORY,
	    0, true);
	expect_done("t", S("UNKNOWN_COMMAND\r\n"), 17,
	    BEANSTALK_UNKNOWN_COMMAND, 0, true);
	TT_CHECK_STR(beanstalk_status_name(BEANSTALK_DRAINING), "DRAINING");
	TT_CHECK_STR(beanstalk_status_name(BEANSTALK_INSERTED), "INSERTED");
}

static void
test_garbage(void)
{
	char big[400];
	size_t n;

	expect_err(NULL, S("\r\n"), false, "empty reply line");
	expect_err(NULL, S("\n"), false, "empty reply line");
	expect_err(NULL, S("HTTP/1.1 400 Bad Request\r\n"), false,
	    "unexpected reply to put: \"HTTP/1.1 400 Bad Request\"");
	expect_err(NULL, S("inserted 1\r\n"), false, "unexpected reply");
	expect_err(NULL, S("INSERTED\r\n"), false, "unexpected reply");
	expect_err(NULL, S("INSERTED \r\n"), false, "bad job id");
	expect_err(NULL, S("INSERTED x1\r\n"), false, "bad job id");
	expect_err(NULL, S("INSERTED 1 2\r\n"), false, "bad job id");
	expect_err(NULL, S("INSERTED -1\r\n"), false, "bad job id");
	expect_err(NULL, S("INSERTED 18446744073709551616\r\n"), false,
	    "bad job id");
	expect_err(NULL, S("INSERTED 000000000000000000001\r\n"), false,
	    "bad job id");
	expect_err(NULL, S("BURIED\r\n"), false, "unexpected reply");
	expect_err(NULL, S("BURIED abc\r\n"), false, "bad job id");
	expect_err(NULL, S("JOB_TOO_BIG 1\r\n"), false, "unexpected reply");
	expect_err(NULL, S("USING default\r\n"), false, "unexpected reply");
	expect_err(NULL, S("IN\0SERTED 1\r\n"), false, "NUL byte");
	expect_err(NULL, S("\x01\xff\x7f\r\n"), false, "\"???\"");
	/* answers to "use" */
	expect_err("t", S("USING other\r\n"), false,
	    "\"use t\" answered with \"USING other\"");
	expect_err("t", S("USING \r\n"), false, "unexpected reply to use");
	expect_err("t", S("INSERTED 1\r\n"), false, "unexpected reply to use");
	expect_err("t", S("JOB_TOO_BIG\r\n"), false, "unexpected reply to use");
	expect_err("t", S("DRAINING\r\n"), false, "unexpected reply to use");
	expect_err("t", S("USING t\r\nUSING t\r\n"), false,
	    "unexpected reply to put");
	/* EOF */
	expect_err(NULL, S(""), true, "closed before the reply to put");
	expect_err("t", S(""), true, "closed before the reply to use");
	expect_err("t", S("USING t\r\n"), true,
	    "closed before the reply to put");
	expect_err(NULL, S("INSERTED 1"), true, "middle of a reply line");
	expect_err(NULL, S("INSERTED 1\r"), true, "middle of a reply line");
	/* an over-long line is refused without waiting for its end */
	memset(big, 'A', sizeof(big));
	expect_err(NULL, big, BEANSTALK_LINE_MAX + 1, false,
	    "longer than 256 bytes");
	expect_err(NULL, big, sizeof(big), true, "longer than 256 bytes");
	/* the longest legitimate line: USING and a 200-byte tube */
	n = (size_t)snprintf(big, sizeof(big), "USING ");
	memset(big + n, 't', BEANSTALK_TUBE_MAX);
	n += BEANSTALK_TUBE_MAX;
	big[n] = '\0';
	{
		char tube[BEANSTALK_TUBE_MAX + 1];
		char wire[400];
		size_t wl;

		memcpy(tube, big + 6, BEANSTALK_TUBE_MAX + 1);
		wl = (size_t)snprintf(wire, sizeof(wire), "%s\r\nINSERTED 1\r\n",
		    big);
		expect_done(tube, wire, wl, wl, BEANSTALK_INSERTED, 1, false);
	}
}

TT_MAIN(
	{ "beanstalk_proto/request", test_request },
	{ "beanstalk_proto/tube_names", test_tube_names },
	{ "beanstalk_proto/inserted", test_inserted },
	{ "beanstalk_proto/error_replies", test_error_replies },
	{ "beanstalk_proto/garbage", test_garbage },
)
