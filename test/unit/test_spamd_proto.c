/* test_spamd_proto.c -- the SPAMC/1.5 codec: request head, replies in every
 * split (SYMBOLS, CHECK, REPORT), and malformed or hostile replies. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "spamd_proto.h"
#include "tt.h"

#define S(x)	(x), (sizeof(x) - 1)

/* Feeds S[0..LEN) split at K (K > LEN: one byte at a time); then EOF when
 * AT_EOF and the reply wanted more.  *CONSUMED = bytes consumed. */
static enum spamd_rc
feed(struct spamd_reply *r, const char *s, size_t len, size_t k, bool at_eof,
    size_t *consumed)
{
	enum spamd_rc rc = SPAMD_MORE;
	size_t off = 0, used, n;

	*consumed = 0;
	while (off < len && rc == SPAMD_MORE) {
		if (k > len)
			n = 1;
		else
			n = off < k ? k - off : len - off;
		rc = spamd_reply_feed(r, (const uint8_t *)s + off, n, &used);
		TT_CHECK(used <= n);
		if (rc == SPAMD_MORE)
			TT_CHECK_INT(used, ==, n);
		off += used;
	}
	*consumed = off;
	if (rc == SPAMD_MORE && at_eof)
		rc = spamd_reply_eof(r);
	return rc;
}

struct want {
	bool eof;		/* the reply needs EOF to finish */
	size_t consumed;
	bool is_spam;
	double score, threshold;
	const char *symbols;	/* NULL: none expected */
	const char *report;	/* NULL: none expected */
};

static void
expect_ok(const char *s, size_t len, const struct want *w)
{
	struct spamd_reply r;
	enum spamd_rc rc;
	size_t k, consumed;

	for (k = 0; k <= len + 1; k++) {
		spamd_reply_init(&r, 0);
		rc = feed(&r, s, len, k, w->eof, &consumed);
		TT_CHECK_INT(rc, ==, SPAMD_DONE);
		if (rc != SPAMD_DONE)
			fprintf(stderr, "  split %zu: \"%s\"\n", k, r.error);
		TT_CHECK_INT(consumed, ==, w->consumed);
		TT_CHECK_INT(r.code, ==, 0);
		TT_CHECK_INT(r.is_spam, ==, w->is_spam);
		TT_CHECK(r.score == w->score);
		TT_CHECK(r.threshold == w->threshold);
		if (w->symbols == NULL)
			TT_CHECK(r.symbols == NULL);
		else
			TT_CHECK_STR(r.symbols, w->symbols);
		if (w->report == NULL)
			TT_CHECK(r.report == NULL);
		else
			TT_CHECK_STR(r.report, w->report);
		spamd_reply_free(&r);
	}
}

static void
expect_err(const char *s, size_t len, size_t max, bool at_eof,
    const char *why)
{
	struct spamd_reply r;
	enum spamd_rc rc;
	size_t k, consumed, used;

	/* at once, and one byte at a time */
	for (k = len; k <= len + 1; k++) {
		spamd_reply_init(&r, max);
		rc = feed(&r, s, len, k, at_eof, &consumed);
		TT_CHECK_INT(rc, ==, SPAMD_ERROR);
		TT_CHECK(strstr(r.error, why) != NULL);
		if (strstr(r.error, why) == NULL)
			fprintf(stderr, "  \"%s\" does not contain \"%s\"\n",
			    r.error, why);
		TT_CHECK_INT(spamd_reply_feed(&r, (const uint8_t *)"x", 1,
		    &used), ==, SPAMD_ERROR);
		TT_CHECK_INT(used, ==, 0);
		TT_CHECK_INT(spamd_reply_eof(&r), ==, SPAMD_ERROR);
		TT_CHECK(r.symbols == NULL && r.report == NULL);
		spamd_reply_free(&r);
	}
}

static void
test_request(void)
{
	struct mbuf b = { 0 };

	spamd_request_head(&b, "SYMBOLS", 296, "nobody");
	mbuf_append_u8(&b, '\0');
	TT_CHECK_STR((const char *)b.p, "SYMBOLS SPAMC/1.5\r\n"
	    "Content-length: 296\r\nUser: nobody\r\n\r\n");
	mbuf_reset(&b);
	spamd_request_head(&b, "CHECK", 0, NULL);
	mbuf_append_u8(&b, '\0');
	TT_CHECK_STR((const char *)b.p, "CHECK SPAMC/1.5\r\n"
	    "Content-length: 0\r\n\r\n");
	mbuf_reset(&b);
	spamd_request_head(&b, "REPORT\r\n", UINT64_MAX, "ev il\r\nX: y");
	mbuf_append_u8(&b, '\0');
	TT_CHECK_STR((const char *)b.p, "REPORT SPAMC/1.5\r\n"
	    "Content-length: 18446744073709551615\r\nUser: evilX:y\r\n\r\n");
	mbuf_reset(&b);
	spamd_request_head(&b, "SYMBOLS", 1, " \r\n");	/* no user left */
	mbuf_append_u8(&b, '\0');
	TT_CHECK_STR((const char *)b.p, "SYMBOLS SPAMC/1.5\r\n"
	    "Content-length: 1\r\n\r\n");
	mbuf_free(&b);
}

static void
test_symbols(void)
{
	static const char s[] = "SPAMD/1.1 0 EX_OK\r\n"
	    "Content-length: 27\r\n"
	    "Spam: True ; 1000.0 / 5.0\r\n"
	    "\r\n"
	    "GTUBE,NO_RECEIVED,NO_RELAYS";
	static const char crlf[] = "SPAMD/1.1 0 EX_OK\r\n"
	    "Spam: False ; -0.0 / 5.0\r\n"
	    "Content-length: 23\r\n"
	    "\r\n"
	    "NO_RECEIVED,NO_RELAYS\r\n"
	    "SPAMD/1.1";		/* not consumed */
	struct want w = { false, sizeof(s) - 1, true, 1000.0, 5.0,
	    "GTUBE,NO_RECEIVED,NO_RELAYS", "GTUBE,NO_RECEIVED,NO_RELAYS" };
	struct want w2 = { false, sizeof(crlf) - 1 - 9, false, -0.0, 5.0,
	    "NO_RECEIVED,NO_RELAYS", "NO_RECEIVED,NO_RELAYS\r\n" };
	struct spamd_reply r;
	size_t used;

	expect_ok(S(s), &w);
	expect_ok(S(crlf), &w2);
	spamd_reply_init(&r, 0);
	TT_CHECK_INT(spamd_reply_feed(&r, (const uint8_t *)crlf,
	    sizeof(crlf) - 1, &used), ==, SPAMD_DONE);
	TT_CHECK(signbit(r.score));
	TT_CHECK_INT(spamd_reply_eof(&r), ==, SPAMD_DONE);	/* sticky */
	TT_CHECK_INT(spamd_reply_feed(&r, (const uint8_t *)"x", 1, &used), ==,
	    SPAMD_DONE);
	TT_CHECK_INT(used, ==, 0);
	spamd_reply_free(&r);
}

static void
test_check(void)
{
	static const char s[] = "SPAMD/1.1 0 EX_OK\r\n"
	    "Spam: True ; 1000.0 / 5.0\r\n\r\n";
	struct want w = { true, sizeof(s) - 1, true, 1000.0, 5.0, NULL, NULL };

	expect_ok(S(s), &w);
}

static void
test_report(void)
{
	static const char s[] = "SPAMD/1.1 0 EX_OK\r\n"
	    "Content-length: 84\r\n"
	    "Spam: True ; 1000.0 / 5.0\r\n"
	    "\r\n"
	    "Spam detection software, running on the system \"vm\",\n"
	    "1000 GTUBE  BODY: Generic\0Test\n";
	struct want w = { false, sizeof(s) - 1, true, 1000.0, 5.0, NULL,
	    "Spam detection software, running on the system \"vm\",\n"
	    "1000 GTUBE  BODY: Generic Test\n" };

	TT_CHECK_INT(sizeof(s) - 1 - 68, ==, 84);
	expect_ok(S(s), &w);
}

static void
test_variants(void)
{
	/* old spamd: 1.0, Yes/No, bare LF, case, other headers */
	static const char old[] = "SPAMD/1.0 0 EX_OK\n"
	    "X-Other: whatever\n"
	    "spam: yes; 5.2/5.0\n"
	    "CONTENT-LENGTH: 5\n"
	    "\n"
	    "A_B-C";
	static const char neg[] = "SPAMD/1.5 0 EX_OK\r\n"
	    "Spam: No ; -12.5 / -5\r\nContent-length: 0\r\n\r\n";
	static const char dot[] = "SPAMD/1.1 0 EX_OK\r\n"
	    "Spam:False;+.5 / 7.\r\n\r\nNO_RECEIVED , X";
	static const char sym_eof[] = "SPAMD/1.12 0\r\n"
	    "Spam: True ; 6.1 / 5.0\r\n\r\nA,B\n";
	static const char dup_len[] = "SPAMD/1.1 0 EX_OK\r\n"
	    "Content-length: 1\r\nContent-length: 1\r\n"
	    "Spam: True ; 1 / 5\r\n\r\nZ";
	struct want w_old = { false, sizeof(old) - 1, true, 5.2, 5.0,
	    "A_B-C", "A_B-C" };
	struct want w_neg = { false, sizeof(neg) - 1, false, -12.5, -5.0,
	    NULL, NULL };
	/* not one plain list: a report only */
	struct want w_dot = { true, sizeof(dot) - 1, false, 0.5, 7.0,
	    NULL, "NO_RECEIVED , X" };
	struct want w_eof = { true, sizeof(sym_eof) - 1, true, 6.1, 5.0,
	    "A,B", "A,B\n" };
	struct want w_dup = { false, sizeof(dup_len) - 1, true, 1, 5, "Z",
	    "Z" };

	expect_ok(S(old), &w_old);
	expect_ok(S(neg), &w_neg);
	expect_ok(S(dot), &w_dot);
	expect_ok(S(sym_eof), &w_eof);
	expect_ok(S(dup_len), &w_dup);
}

static void
test_not_a_list(void)
{
	static const char *const bodies[] = {
		",A", "A,", "A,,B", "A B", "A;B", "A\nB", "\xc3\xa9",
	};
	struct spamd_reply r;
	char buf[256];
	size_t i, used;
	int n;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		n = snprintf(buf, sizeof(buf), "SPAMD/1.1 0 EX_OK\r\n"
		    "Spam: True ; 1 / 5\r\nContent-length: %zu\r\n\r\n%s",
		    strlen(bodies[i]), bodies[i]);
		spamd_reply_init(&r, 0);
		TT_CHECK_INT(spamd_reply_feed(&r, (const uint8_t *)buf,
		    (size_t)n, &used), ==, SPAMD_DONE);
		TT_CHECK(r.symbols == NULL);
		TT_CHECK_STR(r.report, bodies[i]);
		spamd_reply_free(&r);
	}
}

static void
test_spamd_error(void)
{
	struct spamd_reply r;
	size_t used;
	static const char s[] = "SPAMD/1.0 76 Bad header line: (Content-length "
	    "mismatch: 296 vs. 0)\r\n";

	spamd_reply_init(&r, 0);
	TT_CHECK_INT(spamd_reply_feed(&r, (const uint8_t *)s, sizeof(s) - 1,
	    &used), ==, SPAMD_ERROR);
	TT_CHECK_INT(r.code, ==, 76);
	TT_CHECK(strncmp(r.error, "spamd error 76: Bad header line", 31) ==
	    0);
	spamd_reply_free(&r);
	expect_err(S("SPAMD/1.1 64 EX_USAGE\r\n"), 0, false,
	    "spamd error 64: EX_USAGE");
	expect_err(S("SPAMD/1.1 74\r\n"), 0, false, "spamd error 74: ");
}

static void
test_bad_status(void)
{
	expect_err(S("SPAMD/2.0 0 EX_OK\r\n"), 0, false, "status line");
	expect_err(S("HTTP/1.1 200 OK\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1.1 EX_OK\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1.1 0EX_OK\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1.1 99999 x\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1. 0 EX_OK\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1.1\r\n"), 0, false, "status line");
	expect_err(S("\r\n"), 0, false, "status line");
	expect_err(S("SPAMD/1.1 0 EX\0OK\r\n"), 0, false, "NUL byte in head");
	/* not spamd: fails before any line end */
	expect_err(S("HTTP/1.1 400 Bad"), 0, false, "status line garbled");
	expect_err(S("\0\0\0\0"), 0, false, "status line garbled");
	expect_err(S("SPAMD/1.1 0 EX\x1bOK\r\n"), 0, false,
	    "control character");
}

static void
test_bad_spam(void)
{
	static const char *const bad[] = {
		"Maybe ; 1 / 5", "True 1 / 5", "True ; 1 5", "True ; abc / 5",
		"True ; 1e5 / 5", "True ; inf / 5", "True ; nan / 5",
		"True ; 0x10 / 5", "True ; 12345678901 / 5",
		"True ; 1.123456789 / 5", "True ; / 5", "True ; - / 5",
		"True ; 1..2 / 5", "True ; 1 / 5 / 6", "True ; 1 / ", "",
		"True", "True ;", "; 1 / 5", "True ; 1 2 / 5", "Truex ; 1 / 5",
	};
	char buf[256];
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = snprintf(buf, sizeof(buf), "SPAMD/1.1 0 EX_OK\r\n"
		    "Spam: %s\r\n\r\n", bad[i]);
		expect_err(buf, (size_t)n, 0, true, "Spam: ");
	}
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n"
	    "Spam: True ; 1 / 5\r\n\r\n"), 0, true, "duplicate Spam");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nContent-length: 2\r\n\r\nAB"), 0,
	    true, "no Spam: header");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nX-Spam: True ; 1 / 5\r\n\r\n"), 0,
	    true, "no Spam: header");
}

static void
test_bad_head(void)
{
	char big[20000];
	size_t n;

	expect_err(S("SPAMD/1.1 0 EX_OK\r\nContent-length: 2x\r\n"), 0, false,
	    "not a number");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nContent-length: -2\r\n"), 0, false,
	    "not a number");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nContent-length:\r\n"), 0, false,
	    "not a number");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\n"
	    "Content-length: 99999999999999999999\r\n"), 0, false, "overflow");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nContent-length: 1\r\n"
	    "Content-length: 2\r\n"), 0, false, "disagree");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nContent-length: 11\r\n"
	    "Spam: True ; 1 / 5\r\n\r\n"), 10, false, "body over 10 bytes");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nno colon\r\n"), 0, false,
	    "without a colon");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\n: x\r\n"), 0, false,
	    "empty header name");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nX: a\0\r\n"), 0, false,
	    "NUL byte in head");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nX: a\rb\r\n"), 0, false,
	    "control character");
	/* head over 16 KiB */
	n = (size_t)snprintf(big, sizeof(big), "SPAMD/1.1 0 EX_OK\r\n");
	while (n + 12 < sizeof(big)) {
		memcpy(big + n, "X-Pad: 123\r\n", 12);
		n += 12;
	}
	expect_err(big, n, 0, false, "head over 16384 bytes");
	/* body to EOF over the cap */
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n\r\n"
	    "0123456789A"), 10, true, "body over 10 bytes");
}

static void
test_eof(void)
{
	struct spamd_reply r;
	size_t used;

	spamd_reply_init(&r, 0);
	TT_CHECK_INT(spamd_reply_eof(&r), ==, SPAMD_ERROR);
	TT_CHECK(strstr(r.error, "before the reply") != NULL);
	spamd_reply_free(&r);

	spamd_reply_init(&r, 0);
	TT_CHECK_INT(spamd_reply_feed(&r, (const uint8_t *)"", 0, &used), ==,
	    SPAMD_MORE);
	TT_CHECK_INT(spamd_reply_eof(&r), ==, SPAMD_ERROR);
	spamd_reply_free(&r);

	expect_err(S("SPAMD/1.1 0 EX"), 0, true, "reply cut short");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n"), 0, true,
	    "reply cut short");
	expect_err(S("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n"
	    "Content-length: 27\r\n\r\nGTUBE"), 0, true,
	    "reply cut short (5 of 27 body bytes)");
}

TT_MAIN(
	{ "spamd/request", test_request },
	{ "spamd/symbols", test_symbols },
	{ "spamd/check", test_check },
	{ "spamd/report", test_report },
	{ "spamd/variants", test_variants },
	{ "spamd/not_a_list", test_not_a_list },
	{ "spamd/spamd_error", test_spamd_error },
	{ "spamd/bad_status", test_bad_status },
	{ "spamd/bad_spam", test_bad_spam },
	{ "spamd/bad_head", test_bad_head },
	{ "spamd/eof", test_eof },
)
