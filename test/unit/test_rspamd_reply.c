/* test_rspamd_reply.c -- rspamd's /checkv2 JSON: both reply shapes, the
 * milter block, sanitizing, caps, wrong types, X-Spamd-Result formatting. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbuf.h"
#include "rspamd_reply.h"
#include "tt.h"

static const char sample[] =
    "{\"is_skipped\":false,\"score\":15.0,\"required_score\":15.0,"
    "\"action\":\"reject\",\"symbols\":{\"GTUBE\":{\"name\":\"GTUBE\","
    "\"score\":0.0,\"metric_score\":0.0,\"options\":[\"a\",\"b\"]}},"
    "\"messages\":{\"smtp_message\":\"Gtube pattern\"},"
    "\"message-id\":\"gtube-1@test.example\",\"time_real\":0.10,"
    "\"subject\":\"***SPAM*** x\","
    "\"dkim-signature\":\"v=1; a=rsa-sha256; ...\","
    "\"milter\":{\"add_headers\":{\"X-A\":\"v\",\"X-B\":{\"value\":\"v2\","
    "\"order\":0},\"X-C\":[\"v3\",\"v4\"]},"
    "\"remove_headers\":{\"X-Spam\":0,\"X-Old\":1}}}";

static int
parse(struct rspamd_result *r, const char *json, char *err, size_t errlen)
{
	return rspamd_result_parse(r, json, strlen(json), err, errlen);
}

static const struct rspamd_hdr *
add_find(const struct rspamd_result *r, const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < r->nadd; i++)
		if (strcmp(r->add[i].name, name) == 0 && nth-- == 0)
			return &r->add[i];
	return NULL;
}

static const struct rspamd_rmhdr *
rm_find(const struct rspamd_result *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nrm; i++)
		if (strcmp(r->rm[i].name, name) == 0)
			return &r->rm[i];
	return NULL;
}

static const struct rspamd_symbol *
sym_find(const struct rspamd_result *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nsymbols; i++)
		if (strcmp(r->symbols[i].name, name) == 0)
			return &r->symbols[i];
	return NULL;
}

/* Parsing JSON fails with an error containing WHY; the result is empty. */
static void
expect_err(const char *json, size_t len, const char *why)
{
	struct rspamd_result r;
	char err[128] = "";

	memset(&r, 0xa5, sizeof(r));	/* parse must not trust it */
	TT_CHECK_INT(rspamd_result_parse(&r, json, len, err, sizeof(err)), ==,
	    -1);
	TT_CHECK(strstr(err, why) != NULL);
	if (strstr(err, why) == NULL)
		fprintf(stderr, "  \"%s\" does not contain \"%s\"\n", err, why);
	TT_CHECK(r.symbols == NULL && r.add == NULL && r.rm == NULL &&
	    r.subject == NULL && r.nsymbols == 0);
	rspamd_result_free(&r);
}

#define ERR(json, why)	expect_err((json), sizeof(json) - 1, (why))

static void
test_sample(void)
{
	struct rspamd_result r;
	const struct rspamd_hdr *h;
	const struct rspamd_rmhdr *rm;
	char err[128];

	TT_CHECK_INT(parse(&r, sample, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.action, ==, RSPAMD_REJECT);
	TT_CHECK(!r.is_skipped);
	TT_CHECK(r.score == 15.0 && r.required_score == 15.0);
	TT_CHECK_STR(r.subject, "***SPAM*** x");
	TT_CHECK_STR(r.smtp_message, "Gtube pattern");
	TT_CHECK_STR(r.message_id, "gtube-1@test.example");
	TT_CHECK_STR(r.dkim_signature, "v=1; a=rsa-sha256; ...");
	TT_CHECK(fabs(r.time_real - 0.10) < 1e-9);
	TT_CHECK_INT(r.nsymbols, ==, 1);
	TT_CHECK_STR(r.symbols[0].name, "GTUBE");
	TT_CHECK(r.symbols[0].score == 0.0);
	TT_CHECK_STR(r.symbols[0].options, "a, b");
	TT_CHECK_INT(r.nadd, ==, 4);
	TT_CHECK((h = add_find(&r, "X-A", 0)) != NULL && !h->has_order &&
	    strcmp(h->value, "v") == 0);
	TT_CHECK((h = add_find(&r, "X-B", 0)) != NULL && h->has_order &&
	    h->order == 0 && strcmp(h->value, "v2") == 0);
	TT_CHECK((h = add_find(&r, "X-C", 0)) != NULL &&
	    strcmp(h->value, "v3") == 0);
	TT_CHECK((h = add_find(&r, "X-C", 1)) != NULL &&
	    strcmp(h->value, "v4") == 0);
	TT_CHECK_INT(r.nrm, ==, 2);
	TT_CHECK((rm = rm_find(&r, "X-Spam")) != NULL && rm->index == 0);
	TT_CHECK((rm = rm_find(&r, "X-Old")) != NULL && rm->index == 1);
	rspamd_result_free(&r);
	rspamd_result_free(&r);		/* twice is fine */
}

static void
test_legacy_shapes(void)
{
	struct rspamd_result r;
	char err[128];
	static const char metric[] = "{\"default\":{\"is_spam\":true,"
	    "\"is_skipped\":false,\"score\":16.5,\"required_score\":15,"
	    "\"action\":\"add header\",\"subject\":\"S\","
	    "\"GTUBE\":{\"name\":\"GTUBE\",\"score\":12.5,"
	    "\"options\":[\"x\"]},\"R_DUMMY\":{\"score\":4}},"
	    "\"message-id\":\"m@x\",\"rmilter\":{\"add_headers\":"
	    "{\"X-Legacy\":\"1\"}}}";
	static const char metric_syms[] = "{\"default\":{\"score\":1,"
	    "\"required_score\":15,\"action\":\"no action\",\"symbols\":"
	    "{\"A\":{\"score\":1}}}}";

	TT_CHECK_INT(parse(&r, metric, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.action, ==, RSPAMD_ADD_HEADER);
	TT_CHECK(r.score == 16.5 && r.required_score == 15);
	TT_CHECK_STR(r.subject, "S");
	TT_CHECK_STR(r.message_id, "m@x");
	TT_CHECK_INT(r.nsymbols, ==, 2);
	TT_CHECK(sym_find(&r, "GTUBE") != NULL &&
	    sym_find(&r, "GTUBE")->score == 12.5);
	TT_CHECK(sym_find(&r, "R_DUMMY") != NULL &&
	    sym_find(&r, "R_DUMMY")->options == NULL);
	TT_CHECK_INT(r.nadd, ==, 1);
	TT_CHECK(add_find(&r, "X-Legacy", 0) != NULL);
	rspamd_result_free(&r);

	TT_CHECK_INT(parse(&r, metric_syms, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.action, ==, RSPAMD_NO_ACTION);
	TT_CHECK_INT(r.nsymbols, ==, 1);
	rspamd_result_free(&r);

	/* "milter" wins over "rmilter" */
	TT_CHECK_INT(parse(&r, "{\"action\":\"reject\",\"score\":1,"
	    "\"required_score\":1,"
	    "\"rmilter\":{\"add_headers\":{\"X-R\":\"r\"}},"
	    "\"milter\":{\"add_headers\":{\"X-M\":\"m\"}}}", err, sizeof(err)),
	    ==, 0);
	TT_CHECK_INT(r.nadd, ==, 1);
	TT_CHECK(add_find(&r, "X-M", 0) != NULL);
	rspamd_result_free(&r);
}

static void
test_actions(void)
{
	static const struct {
		const char *text;
		enum rspamd_action a;
	} t[] = {
		{ "no action", RSPAMD_NO_ACTION },
		{ "greylist", RSPAMD_GREYLIST },
		{ "add header", RSPAMD_ADD_HEADER },
		{ "rewrite subject", RSPAMD_REWRITE_SUBJECT },
		{ "soft reject", RSPAMD_SOFT_REJECT },
		{ "reject", RSPAMD_REJECT },
		{ "discard", RSPAMD_DISCARD },
		{ "quarantine", RSPAMD_QUARANTINE },
		{ "Soft_Reject", RSPAMD_SOFT_REJECT },
		{ "add_header", RSPAMD_ADD_HEADER },
		{ "NO ACTION", RSPAMD_NO_ACTION },
	};
	struct rspamd_result r;
	char json[256], err[128];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(json, sizeof(json), "{\"action\":\"%s\",\"score\":1,"
		    "\"required_score\":2}", t[i].text);
		TT_CHECK_INT(parse(&r, json, err, sizeof(err)), ==, 0);
		TT_CHECK_INT(r.action, ==, t[i].a);
		rspamd_result_free(&r);
	}
	TT_CHECK_STR(rspamd_action_name(RSPAMD_NO_ACTION), "no action");
	TT_CHECK_STR(rspamd_action_name(RSPAMD_SOFT_REJECT), "soft reject");
	TT_CHECK_STR(rspamd_action_name(RSPAMD_QUARANTINE), "quarantine");
	TT_CHECK_STR(rspamd_action_name((enum rspamd_action)99), "unknown");
}

static void
test_skipped(void)
{
	struct rspamd_result r;
	char err[128];

	TT_CHECK_INT(parse(&r, "{\"is_skipped\":true}", err, sizeof(err)), ==,
	    0);
	TT_CHECK(r.is_skipped);
	TT_CHECK_INT(r.action, ==, RSPAMD_NO_ACTION);
	rspamd_result_free(&r);
	/* but types are still checked */
	ERR("{\"is_skipped\":true,\"score\":\"0\"}", "score not a number");
	ERR("{\"is_skipped\":true,\"action\":\"maybe\"}", "unknown action");
	ERR("{\"is_skipped\":\"yes\",\"score\":0,\"required_score\":0}",
	    "no action");
}

static void
test_optional_types(void)
{
	struct rspamd_result r;
	char err[128];
	static const char json[] = "{\"action\":\"greylist\",\"score\":4,"
	    "\"required_score\":15,\"is_skipped\":\"no\",\"subject\":5,"
	    "\"messages\":[\"x\"],\"message-id\":{},\"dkim-signature\":1,"
	    "\"time_real\":\"fast\",\"unknown\":{\"deep\":[1,2,{}]}}";

	TT_CHECK_INT(parse(&r, json, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.action, ==, RSPAMD_GREYLIST);
	TT_CHECK(!r.is_skipped);
	TT_CHECK(r.subject == NULL && r.smtp_message == NULL &&
	    r.message_id == NULL && r.dkim_signature == NULL);
	TT_CHECK(r.time_real == 0);
	rspamd_result_free(&r);

	TT_CHECK_INT(parse(&r, "{\"action\":\"reject\",\"score\":1,"
	    "\"required_score\":1,\"messages\":{\"smtp_message\":[]},"
	    "\"time_real\":-1,\"dkim-signature\":[\"sig1\",\"sig2\"]}", err,
	    sizeof(err)), ==, 0);
	TT_CHECK(r.smtp_message == NULL && r.time_real == 0);
	TT_CHECK_STR(r.dkim_signature, "sig1");
	rspamd_result_free(&r);
}

static void
test_entries_wrong_shape(void)
{
	struct rspamd_result r;
	const struct rspamd_hdr *h;
	char err[128];
	static const char json[] = "{\"action\":\"reject\",\"score\":1,"
	    "\"required_score\":1,\"symbols\":{\"A\":1,\"B\":{\"score\":\"x\"},"
	    "\"C\":{\"score\":1e12},\"D\":{\"score\":-2,\"options\":"
	    "[1,\"o\",null,\"p\"]},\"E\":{\"options\":\"notarray\"}},"
	    "\"milter\":{\"add_headers\":{\"X-A\":1,\"X-B\":{\"value\":1},"
	    "\"X-C\":[1,\"ok\",{\"value\":\"v\",\"order\":\"1\"},[\"n\"]],"
	    "\"X-D\":{\"value\":\"d\",\"order\":99999999999},"
	    "\"X-E\":{\"value\":\"e\",\"order\":1.5},"
	    "\"X-F\":{\"value\":\"f\",\"order\":-3},"
	    "\"X Bad\":\"1\",\"X:Bad\":\"1\",\"\":\"1\","
	    "\"X-\\u00e9\":\"1\"},"
	    "\"remove_headers\":{\"R-A\":\"1\",\"R-B\":-1,\"R-C\":1e3,"
	    "\"R-D\":99999999999,\"R Bad\":1,\"R-E\":2},"
	    "\"change_from\":\"x@y\"}}";

	TT_CHECK_INT(parse(&r, json, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.nsymbols, ==, 3);	/* B, D, E */
	TT_CHECK(sym_find(&r, "A") == NULL && sym_find(&r, "C") == NULL);
	TT_CHECK(sym_find(&r, "B") != NULL && sym_find(&r, "B")->score == 0);
	TT_CHECK(sym_find(&r, "D") != NULL &&
	    strcmp(sym_find(&r, "D")->options, "o, p") == 0);
	TT_CHECK(sym_find(&r, "E") != NULL &&
	    sym_find(&r, "E")->options == NULL);

	TT_CHECK_INT(r.nadd, ==, 5);
	TT_CHECK(add_find(&r, "X-A", 0) == NULL);
	TT_CHECK(add_find(&r, "X-B", 0) == NULL);
	TT_CHECK((h = add_find(&r, "X-C", 0)) != NULL &&
	    strcmp(h->value, "ok") == 0 && !h->has_order);
	TT_CHECK((h = add_find(&r, "X-C", 1)) != NULL &&
	    strcmp(h->value, "v") == 0 && !h->has_order);
	TT_CHECK((h = add_find(&r, "X-D", 0)) != NULL && !h->has_order);
	TT_CHECK((h = add_find(&r, "X-E", 0)) != NULL && !h->has_order);
	TT_CHECK((h = add_find(&r, "X-F", 0)) != NULL && h->has_order &&
	    h->order == -3);

	TT_CHECK_INT(r.nrm, ==, 2);
	TT_CHECK(rm_find(&r, "R-B") != NULL && rm_find(&r, "R-B")->index == -1);
	TT_CHECK(rm_find(&r, "R-E") != NULL && rm_find(&r, "R-E")->index == 2);
	rspamd_result_free(&r);
}

static void
test_sanitize(void)
{
	struct rspamd_result r;
	char err[128];
	static const char json[] = "{\"action\":\"rewrite subject\","
	    "\"score\":1,\"required_score\":1,"
	    "\"subject\":\"a\\r\\nBcc: x\\u0000y\","
	    "\"messages\":{\"smtp_message\":\"line1\\nline2\\t\\u007f\"},"
	    "\"message-id\":\"<id\\r\\n>\","
	    "\"dkim-signature\":\"v=1; a=rsa-sha256;\\r\\n\\tb=abc\\r\\n\","
	    "\"symbols\":{\"S\\nYM\":{\"score\":1,\"options\":"
	    "[\"o\\r\\n1\",\"\\u0000\"]}},"
	    "\"milter\":{\"add_headers\":{"
	    "\"X-Fold\":\"v\\r\\n\\tcontinued\\n more\","
	    "\"X-Inject\":\"v\\r\\nX-Evil: 1\\nBcc: y\\rz\","
	    "\"X-Lead\":\"\\n\\tstart\\u0000\\r\\n\\t\"}}}";

	TT_CHECK_INT(parse(&r, json, err, sizeof(err)), ==, 0);
	TT_CHECK_STR(r.subject, "a  Bcc: x y");
	TT_CHECK_STR(r.smtp_message, "line1 line2  ");
	TT_CHECK_STR(r.message_id, "<id  >");
	TT_CHECK_STR(r.dkim_signature, "v=1; a=rsa-sha256;\n\tb=abc");
	TT_CHECK_INT(r.nsymbols, ==, 1);
	TT_CHECK_STR(r.symbols[0].name, "S YM");
	TT_CHECK_STR(r.symbols[0].options, "o  1,  ");
	TT_CHECK_STR(add_find(&r, "X-Fold", 0)->value,
	    "v\n\tcontinued\n more");
	TT_CHECK_STR(add_find(&r, "X-Inject", 0)->value,
	    "v  X-Evil: 1 Bcc: y z");
	TT_CHECK_STR(add_find(&r, "X-Lead", 0)->value, " \tstart");
	rspamd_result_free(&r);
}

static void
put(struct mbuf *b, const char *s)
{
	mbuf_append(b, s, strlen(s));
}

static void
test_caps(void)
{
	struct mbuf b = { 0 };
	struct rspamd_result r;
	char err[128];
	size_t i;

	/* 3000 symbols, 100 add_headers (one an array of 100), 100 removes */
	put(&b, "{\"action\":\"reject\",\"score\":1,"
	    "\"required_score\":1,\"symbols\":{");
	for (i = 0; i < 3000; i++) {
		char s[64];
		int n = snprintf(s, sizeof(s), "%s\"SYM_%zu\":{\"score\":%zu}",
		    i ? "," : "", i, i % 7);

		mbuf_append(&b, s, (size_t)n);
	}
	put(&b, "},\"milter\":{\"add_headers\":{\"X-Arr\":[");
	for (i = 0; i < 100; i++)
		put(&b, i ? ",\"v\"" : "\"v\"");
	put(&b, "]");
	for (i = 0; i < 100; i++) {
		char s[64];
		int n = snprintf(s, sizeof(s), ",\"X-%zu\":\"v\"", i);

		mbuf_append(&b, s, (size_t)n);
	}
	put(&b, "},\"remove_headers\":{");
	for (i = 0; i < 100; i++) {
		char s[64];
		int n = snprintf(s, sizeof(s), "%s\"R-%zu\":1", i ? "," : "",
		    i);

		mbuf_append(&b, s, (size_t)n);
	}
	put(&b, "}}}");
	TT_CHECK_INT(rspamd_result_parse(&r, (const char *)mbuf_data(&b),
	    mbuf_avail(&b), err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.nsymbols, ==, RSPAMD_SYMBOLS_MAX);
	TT_CHECK_INT(r.nadd, ==, RSPAMD_HEADERS_MAX);
	TT_CHECK_INT(r.nrm, ==, RSPAMD_HEADERS_MAX);
	rspamd_result_free(&r);

	/* options joined up to RSPAMD_OPTIONS_MAX bytes, cut on UTF-8 */
	mbuf_reset(&b);
	put(&b, "{\"action\":\"reject\",\"score\":1,"
	    "\"required_score\":1,\"symbols\":{\"S\":{\"options\":[");
	for (i = 0; i < 500; i++)
		put(&b, i ? ",\"\xc3\xa9\xc3\xa9\xc3\xa9\"" :
		    "\"\xc3\xa9\xc3\xa9\xc3\xa9\"");
	put(&b, "]}}}");
	TT_CHECK_INT(rspamd_result_parse(&r, (const char *)mbuf_data(&b),
	    mbuf_avail(&b), err, sizeof(err)), ==, 0);
	TT_CHECK_INT(r.nsymbols, ==, 1);
	if (r.nsymbols == 1) {
		size_t len = strlen(r.symbols[0].options);

		TT_CHECK(len <= RSPAMD_OPTIONS_MAX && len > 1000);
		TT_CHECK((r.symbols[0].options[len - 1] & 0xc0) != 0xc0);
	}
	rspamd_result_free(&r);
	mbuf_free(&b);
}

static void
test_errors(void)
{
	char deep[20000];

	ERR("", "not JSON");
	ERR("{", "not JSON");
	ERR("nul", "not JSON");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1} x",
	    "not JSON");
	ERR("{\"action\":\"reject\",\"action\":\"reject\",\"score\":1,"
	    "\"required_score\":1}", "not JSON");	/* duplicate key */
	ERR("{\"action\":\"reject\",\"score\":1e999,\"required_score\":1}",
	    "not JSON");
	ERR("{\"action\":\"re\xff\"}", "not JSON");	/* bad UTF-8 */
	ERR("[]", "not a JSON object");
	ERR("\"x\"", "not a JSON object");
	ERR("1", "not a JSON object");
	ERR("{\"score\":1,\"required_score\":2}", "no action");
	ERR("{\"action\":1,\"score\":1,\"required_score\":2}",
	    "action not a string");
	ERR("{\"action\":\"x\",\"score\":1,\"required_score\":2}",
	    "unknown action \"x\"");
	ERR("{\"action\":\"re\\u0000ject\",\"score\":1,\"required_score\":2}",
	    "unknown action \"re ject\"");
	ERR("{\"action\":\"\\r\\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
	    "XXXXXXXXXXXXXXXX\",\"score\":1,\"required_score\":2}",
	    "unknown action \"  XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"");
	ERR("{\"action\":\"reject\",\"score\":\"15\",\"required_score\":2}",
	    "score not a number");
	ERR("{\"action\":\"reject\",\"score\":null,\"required_score\":2}",
	    "score not a number");
	ERR("{\"action\":\"reject\",\"required_score\":2}", "no score");
	ERR("{\"action\":\"reject\",\"score\":2}", "no required_score");
	ERR("{\"action\":\"reject\",\"score\":2,\"required_score\":true}",
	    "required_score not a number");
	ERR("{\"action\":\"reject\",\"score\":1e10,\"required_score\":1}",
	    "score out of range");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":-1e300}",
	    "required_score out of range");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1,"
	    "\"symbols\":[]}", "symbols not an object");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1,"
	    "\"milter\":\"x\"}", "milter block not an object");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1,"
	    "\"rmilter\":[]}", "milter block not an object");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1,"
	    "\"milter\":{\"add_headers\":[]}}", "add_headers not an object");
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1,"
	    "\"milter\":{\"remove_headers\":\"X\"}}",
	    "remove_headers not an object");
	/* the old shape without an action anywhere */
	ERR("{\"default\":{\"score\":1,\"required_score\":1}}", "no action");
	/* jansson refuses NUL in object keys (in values it is sanitized) */
	ERR("{\"action\":\"reject\",\"score\":1,\"required_score\":1,"
	    "\"milter\":{\"add_headers\":{\"X-\\u0000\":\"1\"}}}",
	    "not JSON");
	/* a NUL byte in the middle of the buffer */
	expect_err("{\"action\":\"reject\"\0}", 20, "not JSON");
	/* deep nesting: rejected, no stack overflow */
	memset(deep, '[', sizeof(deep));
	expect_err(deep, sizeof(deep), "not JSON");
}

static void
test_not_nul_terminated(void)
{
	static const char json[] = "{\"action\":\"discard\",\"score\":3,"
	    "\"required_score\":1}GARBAGE";
	struct rspamd_result r;

	TT_CHECK_INT(rspamd_result_parse(&r, json, sizeof(json) - 1 - 7, NULL,
	    0), ==, 0);
	TT_CHECK_INT(r.action, ==, RSPAMD_DISCARD);
	rspamd_result_free(&r);
	/* a NULL error buffer is allowed on failure too */
	TT_CHECK_INT(rspamd_result_parse(&r, json, sizeof(json) - 1, NULL, 0),
	    ==, -1);
}

static void
test_format(void)
{
	struct rspamd_result r;
	char err[128], *s;

	TT_CHECK_INT(parse(&r, sample, err, sizeof(err)), ==, 0);
	s = rspamd_result_format(&r);
	TT_CHECK_STR(s, "default: True [15.00 / 15.00]\n\t GTUBE(0.00)[a, b]");
	free(s);
	rspamd_result_free(&r);

	TT_CHECK_INT(parse(&r, "{\"action\":\"no action\",\"score\":-0.0,"
	    "\"required_score\":15,\"symbols\":{"
	    "\"C\":{\"score\":1.0},\"A\":{\"score\":1.0},"
	    "\"B\":{\"score\":-3.004,\"options\":[\"x\"]},"
	    "\"D\":{\"score\":-0.0},\"E\":{\"score\":1.9}}}", err, sizeof(err)),
	    ==, 0);
	s = rspamd_result_format(&r);
	TT_CHECK_STR(s, "default: False [0.00 / 15.00]"
	    "\n\t B(-3.00)[x]"
	    "\n\t E(1.90)[]"
	    "\n\t A(1.00)[]"
	    "\n\t C(1.00)[]"
	    "\n\t D(0.00)[]");
	free(s);
	rspamd_result_free(&r);

	/* an empty result formats too */
	memset(&r, 0, sizeof(r));
	s = rspamd_result_format(&r);
	TT_CHECK_STR(s, "default: True [0.00 / 0.00]");
	free(s);
}

TT_MAIN(
	{ "rspamd/sample", test_sample },
	{ "rspamd/legacy_shapes", test_legacy_shapes },
	{ "rspamd/actions", test_actions },
	{ "rspamd/skipped", test_skipped },
	{ "rspamd/optional_types", test_optional_types },
	{ "rspamd/entries_wrong_shape", test_entries_wrong_shape },
	{ "rspamd/sanitize", test_sanitize },
	{ "rspamd/caps", test_caps },
	{ "rspamd/errors", test_errors },
	{ "rspamd/not_nul_terminated", test_not_nul_terminated },
	{ "rspamd/format", test_format },
)
