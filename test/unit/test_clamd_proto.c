/* test_clamd_proto.c -- the clamd INSTREAM codec: request framing, replies
 * in every split (NUL, LF and EOF terminated), and garbage. */
#include <stdbool.h>
#include <string.h>

#include "clamd_proto.h"
#include "tt.h"

#define S(x)	(x), (sizeof(x) - 1)

/* Feeds S[0..LEN) split at K (K > LEN: one byte at a time), then EOF when
 * AT_EOF and the reply wants more.  *CONSUMED = bytes consumed. */
static enum clamd_rc
feed(struct clamd_reply *r, const char *s, size_t len, size_t k, bool at_eof,
    size_t *consumed)
{
	enum clamd_rc rc = CLAMD_MORE;
	size_t off = 0, used, n;

	while (off < len && rc == CLAMD_MORE) {
		if (k > len)
			n = 1;
		else
			n = off < k ? k - off : len - off;
		rc = clamd_reply_feed(r, (const uint8_t *)s + off, n, &used);
		TT_CHECK(used <= n);
		if (rc == CLAMD_MORE)
			TT_CHECK_INT(used, ==, n);
		off += used;
	}
	*consumed = off;
	if (rc == CLAMD_MORE && at_eof)
		rc = clamd_reply_eof(r);
	return rc;
}

/* Every split of S gives DONE with STATUS and TEXT (the virus name for
 * VIRUS, the error for FAILED), CONSUMED bytes eaten. */
static void
expect_done(const char *s, size_t len, size_t consumed_want, bool at_eof,
    enum clamd_status status, const char *text, bool size_limit)
{
	struct clamd_reply r;
	enum clamd_rc rc;
	size_t k, consumed, used;

	for (k = 0; k <= len + 1; k++) {
		clamd_reply_init(&r);
		rc = feed(&r, s, len, k, at_eof, &consumed);
		TT_CHECK_INT(rc, ==, CLAMD_DONE);
		if (rc != CLAMD_DONE)
			fprintf(stderr, "  split %zu: \"%s\"\n", k, r.error);
		TT_CHECK_INT(consumed, ==, consumed_want);
		TT_CHECK_INT(r.status, ==, status);
		TT_CHECK_INT(r.size_limit, ==, size_limit);
		if (status == CLAMD_VIRUS)
			TT_CHECK_STR(r.virus, text);
		if (status == CLAMD_FAILED)
			TT_CHECK_STR(r.error, text);
		TT_CHECK_INT(clamd_reply_feed(&r, (const uint8_t *)"x", 1,
		    &used), ==, CLAMD_DONE);
		TT_CHECK_INT(used, ==, 0);
		TT_CHECK_INT(clamd_reply_eof(&r), ==, CLAMD_DONE);
		clamd_reply_free(&r);
	}
}

static void
expect_err(const char *s, size_t len, bool at_eof, const char *why)
{
	struct clamd_reply r;
	enum clamd_rc rc;
	size_t k, consumed, used;

	for (k = len; k <= len + 1; k++) {
		clamd_reply_init(&r);
		rc = feed(&r, s, len, k, at_eof, &consumed);
		TT_CHECK_INT(rc, ==, CLAMD_ERROR);
		TT_CHECK(strstr(r.error, why) != NULL);
		if (strstr(r.error, why) == NULL)
			fprintf(stderr, "  \"%s\" does not contain \"%s\"\n",
			    r.error, why);
		TT_CHECK_INT(clamd_reply_feed(&r, (const uint8_t *)"x", 1,
		    &used), ==, CLAMD_ERROR);
		TT_CHECK_INT(used, ==, 0);
		TT_CHECK_INT(clamd_reply_eof(&r), ==, CLAMD_ERROR);
		clamd_reply_free(&r);
	}
}

static void
test_request(void)
{
	struct mbuf b = { 0 };
	static const uint8_t want[] = "zINSTREAM\0"
	    "\0\0\0\3abc" "\0\0\0\1\0" "\0\0\0\0";

	clamd_instream_begin(&b);
	clamd_instream_chunk(&b, (const uint8_t *)"abc", 3);
	clamd_instream_chunk(&b, (const uint8_t *)"", 0);	/* nothing */
	clamd_instream_chunk(&b, (const uint8_t *)"\0", 1);
	clamd_instream_end(&b);
	TT_CHECK_INT(mbuf_avail(&b), ==, sizeof(want) - 1);
	TT_CHECK(memcmp(mbuf_data(&b), want, sizeof(want) - 1) == 0);
	mbuf_free(&b);
}

static void
test_clean(void)
{
	static const char many[] = "stream: OK\0stream: OK\0";

	expect_done(S("stream: OK\0"), sizeof("stream: OK"), false,
	    CLAMD_CLEAN, NULL, false);
	expect_done(S("stream: OK\n"), sizeof("stream: OK"), false,
	    CLAMD_CLEAN, NULL, false);
	expect_done(S("stream: OK\r\n"), sizeof("stream: OK\r"), false,
	    CLAMD_CLEAN, NULL, false);
	expect_done(S("stream: OK"), sizeof("stream: OK") - 1, true,
	    CLAMD_CLEAN, NULL, false);
	expect_done(S("OK\0"), 3, false, CLAMD_CLEAN, NULL, false);
	expect_done(S("1: stream: OK\0"), sizeof("1: stream: OK"), false,
	    CLAMD_CLEAN, NULL, false);
	/* the second reply is not consumed */
	expect_done(S(many), sizeof(many) / 2, false, CLAMD_CLEAN, NULL,
	    false);
}

static void
test_virus(void)
{
	char big[600];
	size_t n;

	expect_done(S("stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0"),
	    sizeof("stream: Eicar-Test-Signature.UNOFFICIAL FOUND"), false,
	    CLAMD_VIRUS, "Eicar-Test-Signature.UNOFFICIAL", false);
	expect_done(S("stream: Win.Test.EICAR_HDB-1 FOUND\r\n"),
	    sizeof("stream: Win.Test.EICAR_HDB-1 FOUND\r"), false,
	    CLAMD_VIRUS, "Win.Test.EICAR_HDB-1", false);
	expect_done(S("stream: Test.Milter.Marker FOUND"),
	    sizeof("stream: Test.Milter.Marker FOUND") - 1, true,
	    CLAMD_VIRUS, "Test.Milter.Marker", false);
	expect_done(S("2: stream: Some Name With Spaces FOUND\0"),
	    sizeof("2: stream: Some Name With Spaces FOUND"), false,
	    CLAMD_VIRUS, "Some Name With Spaces", false);
	expect_done(S("fd[10]: Ev\x01il\xff\x7f FOUND\0"),
	    sizeof("fd[10]: Ev\x01il\xff\x7f FOUND"), false, CLAMD_VIRUS,
	    "Ev?il??", false);
	expect_done(S("NoPrefix.Name FOUND\0"), sizeof("NoPrefix.Name FOUND"),
	    false, CLAMD_VIRUS, "NoPrefix.Name", false);
	/* a long name is cut to 255 bytes */
	n = (size_t)snprintf(big, sizeof(big), "stream: ");
	memset(big + n, 'V', 400);
	n += 400;
	memcpy(big + n, " FOUND", 7);
	n += 7;
	{
		struct clamd_reply r;
		size_t used;

		clamd_reply_init(&r);
		TT_CHECK_INT(clamd_reply_feed(&r, (const uint8_t *)big, n,
		    &used), ==, CLAMD_DONE);
		TT_CHECK_INT(r.status, ==, CLAMD_VIRUS);
		TT_CHECK_INT(strlen(r.virus), ==, 255);
		clamd_reply_free(&r);
	}
}

static void
test_failed(void)
{
	expect_done(S("INSTREAM size limit exceeded. ERROR\0"),
	    sizeof("INSTREAM size limit exceeded. ERROR"), false,
	    CLAMD_FAILED, "INSTREAM size limit exceeded.", true);
	expect_done(S("stream: Can't allocate memory ERROR\n"),
	    sizeof("stream: Can't allocate memory ERROR"), false,
	    CLAMD_FAILED, "stream: Can't allocate memory", false);
	expect_done(S("ERROR\0"), 6, false, CLAMD_FAILED, "clamd ERROR",
	    false);
	expect_done(S("Bad\x80 thing ERROR"), sizeof("Bad\x80 thing ERROR") - 1,
	    true, CLAMD_FAILED, "Bad? thing", false);
}

static void
test_garbage(void)
{
	char big[5000];

	expect_err(S(""), true, "empty reply");
	expect_err(S("\0"), false, "empty reply");
	expect_err(S(" \r\n"), false, "empty reply");
	expect_err(S("UNKNOWN COMMAND\0"), false,
	    "unexpected reply \"UNKNOWN COMMAND\"");
	expect_err(S("stream: FOUND\0"), false, "without a virus name");
	expect_err(S("stream:  FOUND\0"), false, "without a virus name");
	expect_err(S("FOUND\0"), false, "unexpected reply");
	expect_err(S("stream: Eicar OK\0"), false, "unexpected reply");
	expect_err(S("stream: OKAY\0"), false, "unexpected reply");
	expect_err(S("stream: ERRORS\0"), false, "unexpected reply");
	expect_err(S("HTTP/1.1 400 Bad Request\r\n"), false,
	    "unexpected reply");
	expect_err(S("\x01\x02\x03\n"), false, "unexpected reply \"???\"");
	memset(big, 'A', sizeof(big));
	expect_err(big, sizeof(big), false, "reply over 4096 bytes");
	expect_err(big, sizeof(big), true, "reply over 4096 bytes");
	/* exactly 4096 bytes and a terminator: parsed, not "too long" */
	big[4096] = '\0';
	expect_err(big, 4097, false, "unexpected reply");
}

TT_MAIN(
	{ "clamd/request", test_request },
	{ "clamd/clean", test_clean },
	{ "clamd/virus", test_virus },
	{ "clamd/failed", test_failed },
	{ "clamd/garbage", test_garbage },
)
