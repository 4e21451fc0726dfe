/* test_http_reply.c -- the sans-IO HTTP/1.x client codec: good replies in
 * every split, framing variants, limits, and malformed or hostile input. */
#include <stdbool.h>
#include <string.h>

#include "http_reply.h"
#include "tt.h"

#define S(x)	(x), (sizeof(x) - 1)

/* Feeds S[0..LEN) in pieces of STEP bytes (0 = one piece); stops at the
 * first non-MORE result.  *CONSUMED = bytes consumed in all. */
static enum http_rc
feed_steps(struct http_reply *r, const char *s, size_t len, size_t step,
    size_t *consumed)
{
	enum http_rc rc = HTTP_MORE;
	size_t off = 0, used, n;

	while (off < len && rc == HTTP_MORE) {
		n = (step == 0 || len - off < step) ? len - off : step;
		rc = http_reply_feed(r, (const uint8_t *)s + off, n, &used);
		TT_CHECK(used <= n);
		if (rc == HTTP_MORE)
			TT_CHECK_INT(used, ==, n);
		off += used;
	}
	*consumed = off;
	return rc;
}

/* Feeds S split once at K. */
static enum http_rc
feed_split(struct http_reply *r, const char *s, size_t len, size_t k,
    size_t *consumed)
{
	enum http_rc rc;
	size_t used;

	rc = http_reply_feed(r, (const uint8_t *)s, k, &used);
	*consumed = used;
	if (rc != HTTP_MORE)
		return rc;
	TT_CHECK_INT(used, ==, k);
	rc = http_reply_feed(r, (const uint8_t *)s + k, len - k, &used);
	*consumed += used;
	return rc;
}

/* Parses S with max body MAX: at once, one byte at a time and split at
 * every boundary; expects DONE (after EOF when AT_EOF) with STATUS, BODY,
 * and KEEPALIVE, and CONSUMED bytes eaten each time. */
static void
expect_ok(const char *s, size_t len, size_t consumed_want, bool at_eof,
    int status, const char *body, size_t blen, bool keepalive)
{
	struct http_reply r;
	enum http_rc rc;
	size_t k, consumed, step;

	for (k = 0; k <= len + 1; k++) {
		http_reply_init(&r, 0);
		if (k == len + 1) {
			step = 1;
			rc = feed_steps(&r, s, len, step, &consumed);
		} else {
			rc = feed_split(&r, s, len, k, &consumed);
		}
		if (at_eof) {
			TT_CHECK_INT(rc, ==, HTTP_MORE);
			rc = http_reply_eof(&r);
		}
		TT_CHECK_INT(rc, ==, HTTP_DONE);
		if (rc != HTTP_DONE)
			fprintf(stderr, "  split %zu: error \"%s\"\n", k,
			    r.error);
		TT_CHECK_INT(consumed, ==, consumed_want);
		TT_CHECK_INT(r.status, ==, status);
		TT_CHECK_INT(r.keepalive, ==, keepalive);
		TT_CHECK_INT(r.body.len, ==, blen);
		TT_CHECK(r.body.p != NULL);
		if (r.body.p != NULL && r.body.len == blen) {
			TT_CHECK(memcmp(r.body.p, body, blen) == 0);
			TT_CHECK_INT(r.body.p[blen], ==, '\0');
		}
		http_reply_free(&r);
	}
}

/* Parses S at once (and, if EOF, then closes); expects HTTP_ERROR whose
 * text contains WHY. */
static void
expect_err(const char *s, size_t len, size_t max_body, bool eof,
    const char *why)
{
	struct http_reply r;
	enum http_rc rc;
	size_t k, consumed, used;

	for (k = 0; k < 2; k++) {
		http_reply_init(&r, max_body);
		rc = feed_steps(&r, s, len, k == 0 ? 0 : 1, &consumed);
		if (rc == HTTP_MORE && eof)
			rc = http_reply_eof(&r);
		TT_CHECK_INT(rc, ==, HTTP_ERROR);
		TT_CHECK(strstr(r.error, why) != NULL);
		if (strstr(r.error, why) == NULL)
			fprintf(stderr, "  \"%s\" does not contain \"%s\"\n",
			    r.error, why);
		TT_CHECK(!r.keepalive);
		/* sticky */
		TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)"x", 1,
		    &used), ==, HTTP_ERROR);
		TT_CHECK_INT(used, ==, 0);
		TT_CHECK_INT(http_reply_eof(&r), ==, HTTP_ERROR);
		http_reply_free(&r);
	}
}

static void
test_length(void)
{
	static const char s[] = "HTTP/1.1 200 OK\r\n"
	    "Server: rspamd/3.4\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 13\r\n"
	    "\r\n"
	    "{\"a\":\"hello\"}";
	struct http_reply r;
	size_t used;

	expect_ok(S(s), sizeof(s) - 1, false, 200, S("{\"a\":\"hello\"}"),
	    true);
	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)s, sizeof(s) - 1,
	    &used), ==, HTTP_DONE);
	TT_CHECK_INT(r.minor, ==, 1);
	TT_CHECK_STR(r.content_type, "application/json");
	TT_CHECK_STR((const char *)r.body.p, "{\"a\":\"hello\"}");
	/* done is sticky and eats nothing */
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)"x", 1, &used), ==,
	    HTTP_DONE);
	TT_CHECK_INT(used, ==, 0);
	TT_CHECK_INT(http_reply_eof(&r), ==, HTTP_DONE);
	http_reply_free(&r);
}

static void
test_chunked(void)
{
	static const char s[] = "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n"
	    "\r\n"
	    "5;name=value\r\nhello\r\n"
	    "000006 ; x\r\n world\r\n"
	    "9\r\n, again!\n\r\n"
	    "A\r\n0123456789\n"
	    "0\r\n"
	    "X-Trailer: a\r\n"
	    "\r\n";
	static const char lf[] = "HTTP/1.1 200 OK\n"
	    "transfer-encoding: Chunked\n"
	    "\n"
	    "3\nabc\n0\n\n";

	expect_ok(S(s), sizeof(s) - 1, false, 200,
	    S("hello world, again!\n0123456789"), true);
	expect_ok(S(lf), sizeof(lf) - 1, false, 200, S("abc"), true);
}

static void
test_interim(void)
{
	static const char s[] = "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 102 Processing\r\nX-Info: 1\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	/* interim headers do not frame the final reply */
	static const char s2[] = "HTTP/1.1 100 Continue\r\n"
	    "Content-Length: 99\r\nConnection: close\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

	expect_ok(S(s), sizeof(s) - 1, false, 200, S("ok"), true);
	expect_ok(S(s2), sizeof(s2) - 1, false, 200, S("ok"), true);
}

static void
test_no_body(void)
{
	static const char s204[] = "HTTP/1.1 204 No Content\r\n"
	    "Content-Length: 5\r\n\r\nHTTP/1.1";
	static const char s304[] = "HTTP/1.1 304 Not Modified\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	static const char s0[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

	/* the bytes after the 204 head are not consumed */
	expect_ok(S(s204), sizeof(s204) - 1 - 8, false, 204, S(""), true);
	expect_ok(S(s304), sizeof(s304) - 1, false, 304, S(""), true);
	expect_ok(S(s0), sizeof(s0) - 1, false, 200, S(""), true);
}

static void
test_until_eof(void)
{
	static const char s10[] = "HTTP/1.0 200 OK\r\n\r\nbody\0bytes";
	static const char s11[] = "HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n";

	expect_ok(S(s10), sizeof(s10) - 1, true, 200, S("body\0bytes"),
	    false);
	expect_ok(S(s11), sizeof(s11) - 1, true, 200, S(""), false);
}

static void
test_keepalive(void)
{
	static const char a[] = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
	    "Content-Length: 1\r\n\r\nx";
	static const char b[] = "HTTP/1.1 200 OK\r\nConnection: foo, close\r\n"
	    "Content-Length: 1\r\n\r\nx";
	static const char c[] = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
	static const char d[] = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";

	expect_ok(S(a), sizeof(a) - 1, false, 200, S("x"), true);
	expect_ok(S(b), sizeof(b) - 1, false, 200, S("x"), false);
	expect_ok(S(c), sizeof(c) - 1, false, 200, S("x"), false);
	expect_ok(S(d), sizeof(d) - 1, false, 200, S("x"), false);
}

static void
test_pipelined(void)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
	    "one"
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\ntwo\r\n0\r\n\r\n";
	struct http_reply r;
	size_t used, used2;

	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)s, sizeof(s) - 1,
	    &used), ==, HTTP_DONE);
	TT_CHECK_STR((const char *)r.body.p, "one");
	http_reply_free(&r);
	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)s + used,
	    sizeof(s) - 1 - used, &used2), ==, HTTP_DONE);
	TT_CHECK_INT(used + used2, ==, sizeof(s) - 1);
	TT_CHECK_STR((const char *)r.body.p, "two");
	http_reply_free(&r);
}

static void
test_tolerated(void)
{
	static const char fold[] = "HTTP/1.1 200 OK\r\n"
	    "X-Long: a\r\n b\r\n"
	    "Content-Type: text/\r\n\t plain\r\n"
	    "Content-Length:\r\n 2\r\n\r\nok";
	static const char noreason[] = "\r\n\nHTTP/1.1 200\r\n"
	    "Content-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok";
	static const char reason[] = "HTTP/1.1 200 \r\nContent-Length:2\r\n"
	    "Transfer-Encoding:\r\n\r\nok";
	struct http_reply r;
	size_t used;

	expect_ok(S(fold), sizeof(fold) - 1, false, 200, S("ok"), true);
	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)fold,
	    sizeof(fold) - 1, &used), ==, HTTP_DONE);
	TT_CHECK_STR(r.content_type, "text/ plain");
	http_reply_free(&r);
	expect_ok(S(noreason), sizeof(noreason) - 1, false, 200, S("ok"),
	    true);
	/* an empty Transfer-Encoding is an error, see test_bad_te */
	expect_err(S(reason), 0, false, "empty Transfer-Encoding");
}

static void
test_content_type_truncated(void)
{
	char s[300];
	struct http_reply r;
	size_t used;
	int n;

	n = snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nContent-Type: %0100d"
	    "\r\nContent-Length: 0\r\n\r\n", 7);
	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)s, (size_t)n, &used),
	    ==, HTTP_DONE);
	TT_CHECK_INT(strlen(r.content_type), ==, sizeof(r.content_type) - 1);
	http_reply_free(&r);
}

static void
test_bad_status(void)
{
	expect_err(S("HTTP/2 200 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.1 20 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.1 2000 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.12 200 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("http/1.1 200 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.1  200 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.1 2x0 OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\n\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.1 099 Low\r\n\r\n"), 0, false, "out of range");
	expect_err(S("HTTP/1.1 600 High\r\n\r\n"), 0, false, "out of range");
	expect_err(S("HTTP/1.1 101 Switching Protocols\r\n\r\n"), 0, false,
	    "101");
	/* not HTTP at all: fails before any line end */
	expect_err(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 0, false,
	    "status line garbled");
	expect_err(S("SPAMD/1.1 0 EX"), 0, false, "status line garbled");
	expect_err(S("\rHTTP/1.0 200 OK\r\n\r\n"), 0, false, "0x0d");
}

static void
test_bad_head(void)
{
	expect_err(S("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n"), 0, false,
	    "NUL byte in head");
	expect_err(S("HTTP/1.1 200 O\0K\r\n\r\n"), 0, false, "NUL byte");
	expect_err(S("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n"), 0, false,
	    "control character 0x0d");
	expect_err(S("HTTP/1.1 200 OK\r\nX-A: a\x1b[0m\r\n\r\n"), 0, false,
	    "control character");
	expect_err(S("HTTP/1.1 200 OK\r\nX-A: a\r\r\n\r\n"), 0, false,
	    "control character");
	expect_err(S("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), 0, false,
	    "without a colon");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"), 0,
	    false, "header name garbled");
	expect_err(S("HTTP/1.1 200 OK\r\n: x\r\n\r\n"), 0, false,
	    "empty header name");
	expect_err(S("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n"), 0, false,
	    "folded line before");
	expect_err(S("HTTP/1.1 200 OK\r\nX-\x80: x\r\n\r\n"), 0, false,
	    "header name garbled");
}

static void
test_bad_length(void)
{
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 2,\r\n\r\n"), 0,
	    false, "not a number");
	expect_err(S("HTTP/1.1 200 OK\r\n"
	    "Content-Length: 99999999999999999999999\r\n\r\n"), 0, false,
	    "overflow");
	expect_err(S("HTTP/1.1 200 OK\r\n"
	    "Content-Length: 18446744073709551616\r\n\r\n"), 0, false,
	    "overflow");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Content-Length: 3\r\n\r\nok"), 0, false, "disagree");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok"), 0,
	    false, "disagree");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"), 10,
	    false, "body over 10 bytes");
	expect_err(S("HTTP/1.1 200 OK\r\n"
	    "Content-Length: 18446744073709551615\r\n\r\n"), 0, false,
	    "body over 16777216 bytes");
}

static void
test_bad_te(void)
{
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0,
	    false, "unsupported transfer-coding \"gzip\"");
	expect_err(S("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n"), 0, false,
	    "unsupported");
	expect_err(S("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked, gzip\r\n\r\n"), 0, false,
	    "unsupported");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), 0, false, "twice");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), 0, false,
	    "both");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n"), 0,
	    false, "empty Transfer-Encoding");
}

static void
test_bad_chunks(void)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	char big[8192];
	int n;

	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "10000000000000000\r\n"), 0, false, "chunk size overflow");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\n"), 0, false, "chunk size garbled");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "\r\n"), 0, false, "chunk size garbled");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5 x\r\n"), 0, false, "chunk size garbled");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "-5\r\n"), 0, false, "chunk size garbled");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhelloX\r\n0\r\n\r\n"), 0, false, "not followed by CRLF");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\r\n0\r\n\r\n"), 0, false, "not followed by CRLF");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 8, false,
	    "body over 8 bytes");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5;a\x01\r\n"), 0, false, "control character");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nX-T: \0\r\n\r\n"), 0, false, "NUL byte in trailer");
	/* a chunk-size line that never ends */
	n = snprintf(big, sizeof(big), "%s5;", head);
	memset(big + n, 'e', sizeof(big) - (size_t)n);
	expect_err(big, sizeof(big), 0, false, "chunk-size line over");
	/* trailers that never end */
	n = snprintf(big, sizeof(big), "%s0\r\n", head);
	while ((size_t)n + 20 < sizeof(big))
		n += snprintf(big + n, sizeof(big) - (size_t)n,
		    "X-T: aaaaaaaaaaa\r\n");
	{
		size_t total = 70 * 1024, off = 0, used;
		struct http_reply r;
		enum http_rc rc = HTTP_MORE;

		http_reply_init(&r, 0);
		rc = http_reply_feed(&r, (const uint8_t *)big, (size_t)n,
		    &used);
		while (rc == HTTP_MORE && off < total) {
			rc = http_reply_feed(&r, (const uint8_t *)
			    "X-T: aaaaaaaaaaa\r\n", 18, &used);
			off += 18;
		}
		TT_CHECK_INT(rc, ==, HTTP_ERROR);
		TT_CHECK(strstr(r.error, "trailers over") != NULL);
		http_reply_free(&r);
	}
}

static void
test_limits(void)
{
	struct http_reply r;
	enum http_rc rc;
	size_t used, i;
	static const char line[] = "X-Filler: 0123456789012345678901234567\r\n";
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	/* head over 64 KiB */
	http_reply_init(&r, 0);
	rc = http_reply_feed(&r, (const uint8_t *)"HTTP/1.1 200 OK\r\n", 17,
	    &used);
	for (i = 0; rc == HTTP_MORE && i < 4000; i++)
		rc = http_reply_feed(&r, (const uint8_t *)line,
		    sizeof(line) - 1, &used);
	TT_CHECK_INT(rc, ==, HTTP_ERROR);
	TT_CHECK(strstr(r.error, "head over 65536 bytes") != NULL);
	TT_CHECK(i * (sizeof(line) - 1) < HTTP_HEAD_MAX + sizeof(line));
	http_reply_free(&r);

	/* endless interim replies count towards the same cap */
	http_reply_init(&r, 0);
	rc = HTTP_MORE;
	for (i = 0; rc == HTTP_MORE && i < 10000; i++)
		rc = http_reply_feed(&r, (const uint8_t *)cont,
		    sizeof(cont) - 1, &used);
	TT_CHECK_INT(rc, ==, HTTP_ERROR);
	TT_CHECK(strstr(r.error, "head over") != NULL);
	http_reply_free(&r);

	/* one endless line */
	http_reply_init(&r, 0);
	rc = HTTP_MORE;
	for (i = 0; rc == HTTP_MORE && i < 10000; i++)
		rc = http_reply_feed(&r, (const uint8_t *)"HTTP/1.1 200 xxxxx",
		    18, &used);
	TT_CHECK_INT(rc, ==, HTTP_ERROR);
	http_reply_free(&r);

	/* a body to EOF over the cap */
	expect_err(S("HTTP/1.1 200 OK\r\n\r\n0123456789A"), 10, false,
	    "body over 10 bytes");
}

static void
test_eof(void)
{
	struct http_reply r;
	size_t used;

	/* closed before any byte: an idle keep-alive connection */
	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_eof(&r), ==, HTTP_ERROR);
	TT_CHECK(r.no_reply);
	TT_CHECK(strstr(r.error, "before the reply") != NULL);
	http_reply_free(&r);

	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)"HTTP/1.1 2", 10,
	    &used), ==, HTTP_MORE);
	TT_CHECK_INT(http_reply_eof(&r), ==, HTTP_ERROR);
	TT_CHECK(!r.no_reply);
	TT_CHECK_STR(r.error, "reply cut short");
	http_reply_free(&r);

	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"), 0,
	    true, "reply cut short");
	expect_err(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), 0, true,
	    "reply cut short");
	expect_err(S("HTTP/1.1 100 Continue\r\n\r\n"), 0, true,
	    "reply cut short");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n"), 0, true, "reply cut short");
	expect_err(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n"), 0, true, "reply cut short");
}

static void
test_feed_empty(void)
{
	struct http_reply r;
	size_t used = 99;

	http_reply_init(&r, 0);
	TT_CHECK_INT(http_reply_feed(&r, (const uint8_t *)"", 0, &used), ==,
	    HTTP_MORE);
	TT_CHECK_INT(used, ==, 0);
	/* nothing arrived yet: still "no reply" at EOF */
	TT_CHECK_INT(http_reply_eof(&r), ==, HTTP_ERROR);
	TT_CHECK(r.no_reply);
	http_reply_free(&r);
}

static void
test_request(void)
{
	struct mbuf b = { 0 };

	http_request_line(&b, "POST", "/checkv2");
	http_request_header(&b, "Content-Length", "42");
	http_request_header(&b, "Queue-Id", "A1\r\nX-Evil: 1\n\0");
	http_request_header(&b, "Bad Name:\r\n", "tab\tok\x7f");
	http_request_header(&b, "Helo", "");
	http_request_end(&b);
	mbuf_append_u8(&b, '\0');
	TT_CHECK_STR((const char *)b.p, "POST /checkv2 HTTP/1.1\r\n"
	    "Content-Length: 42\r\n"
	    "Queue-Id: A1X-Evil: 1\r\n"
	    "BadName: tab\tok\r\n"
	    "Helo: \r\n"
	    "\r\n");
	mbuf_reset(&b);
	http_request_line(&b, "GE T\r\n", "/a b\r\nHost: x");
	mbuf_append_u8(&b, '\0');
	TT_CHECK_STR((const char *)b.p, "GET /abHost:x HTTP/1.1\r\n");
	mbuf_free(&b);
}

TT_MAIN(
	{ "http/length", test_length },
	{ "http/chunked", test_chunked },
	{ "http/interim", test_interim },
	{ "http/no_body", test_no_body },
	{ "http/until_eof", test_until_eof },
	{ "http/keepalive", test_keepalive },
	{ "http/pipelined", test_pipelined },
	{ "http/tolerated", test_tolerated },
	{ "http/content_type_truncated", test_content_type_truncated },
	{ "http/bad_status", test_bad_status },
	{ "http/bad_head", test_bad_head },
	{ "http/bad_length", test_bad_length },
	{ "http/bad_te", test_bad_te },
	{ "http/bad_chunks", test_bad_chunks },
	{ "http/limits", test_limits },
	{ "http/eof", test_eof },
	{ "http/feed_empty", test_feed_empty },
	{ "http/request", test_request },
)
