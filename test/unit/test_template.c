/* test_template.c -- unit tests of reply text templates: every variable,
 * unknown variables, '$' edge cases, NULL values, truncation, control
 * bytes and CRLF injection, score formatting. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "template.h"
#include "tt.h"

static const struct template_vars V = {
	.queue_id = "4C1F2A72801",
	.from = "a@example.org",
	.rcpt = "b@example.net",
	.ip = "192.0.2.1",
	.helo = "mx.example",
	.module = "regex",
	.reason = "rule spam1",
	.score = 7.25,
	.has_score = true,
};

static char out[512];

/* Expands T with VARS into the static buffer (size LEN <= sizeof(out)),
 * checks the return value is strlen and returns the text. */
static const char *
ex(const char *t, const struct template_vars *vars, size_t len)
{
	size_t n;

	memset(out, 'Q', sizeof(out));
	n = template_expand(t, vars, out, len);
	TT_CHECK(len == 0 || memchr(out, '\0', len) != NULL);
	if (len > 0)
		TT_CHECK_INT(n, ==, strlen(out));
	TT_CHECK(len == 0 || n < len);
	TT_CHECK(len >= sizeof(out) || out[len] == 'Q');	/* no overrun */
	return out;
}

#define EX(t)	ex((t), &V, sizeof(out) - 1)

static void
test_every_variable(void)
{
	TT_CHECK_STR(EX("${queue_id}"), "4C1F2A72801");
	TT_CHECK_STR(EX("${from}"), "a@example.org");
	TT_CHECK_STR(EX("${rcpt}"), "b@example.net");
	TT_CHECK_STR(EX("${ip}"), "192.0.2.1");
	TT_CHECK_STR(EX("${helo}"), "mx.example");
	TT_CHECK_STR(EX("${module}"), "regex");
	TT_CHECK_STR(EX("${reason}"), "rule spam1");
	TT_CHECK_STR(EX("${score}"), "7.25");
	TT_CHECK_STR(EX("Rejected by ${module}: ${reason} (queue id "
	    "${queue_id})"),
	    "Rejected by regex: rule spam1 (queue id 4C1F2A72801)");
	TT_CHECK_STR(EX("${from}${rcpt}"), "a@example.orgb@example.net");
	TT_CHECK_STR(EX("<${ip}>[${helo}]${score}!"),
	    "<192.0.2.1>[mx.example]7.25!");
	TT_CHECK_STR(EX("${ip}${ip}${ip}"), "192.0.2.1192.0.2.1192.0.2.1");
	TT_CHECK_STR(EX("no variables at all"), "no variables at all");
	TT_CHECK_STR(EX(""), "");
}

static void
test_unknown_variables(void)
{
	TT_CHECK_STR(EX("${nope}"), "${nope}");
	TT_CHECK_STR(EX("a ${QUEUE_ID} b"), "a ${QUEUE_ID} b");	/* case */
	TT_CHECK_STR(EX("${queue_id_x}"), "${queue_id_x}");
	TT_CHECK_STR(EX("${queue}"), "${queue}");
	TT_CHECK_STR(EX("${}"), "${}");
	TT_CHECK_STR(EX("${ ip}"), "${ ip}");
	TT_CHECK_STR(EX("${ip }"), "${ip }");
	TT_CHECK_STR(EX("${x}${ip}"), "${x}192.0.2.1");
	TT_CHECK_STR(EX("${scores}"), "${scores}");
}

static void
test_dollar_edge_cases(void)
{
	TT_CHECK_STR(EX("$"), "$");
	TT_CHECK_STR(EX("$$"), "$$");
	TT_CHECK_STR(EX("$ip"), "$ip");
	TT_CHECK_STR(EX("cost: $5"), "cost: $5");
	TT_CHECK_STR(EX("${"), "${");
	TT_CHECK_STR(EX("a ${ip"), "a ${ip");		/* unterminated */
	TT_CHECK_STR(EX("${ip${ip}"), "${ip192.0.2.1");
	TT_CHECK_STR(EX("$${ip}"), "$192.0.2.1");
	TT_CHECK_STR(EX("${{ip}}"), "${{ip}}");
	TT_CHECK_STR(EX("{ip}"), "{ip}");
	TT_CHECK_STR(EX("}${ip}{"), "}192.0.2.1{");
	TT_CHECK_STR(EX("${ip}$"), "192.0.2.1$");
	TT_CHECK_STR(EX("${ip}${"), "192.0.2.1${");
	TT_CHECK_STR(EX("100% ${ip} %s %n"), "100% 192.0.2.1 %s %n");
	/* a value containing "${...}" is not expanded again */
	{
		struct template_vars w = V;

		w.reason = "${queue_id}";
		TT_CHECK_STR(ex("${reason}", &w, sizeof(out)), "${queue_id}");
	}
}

static void
test_null_values(void)
{
	struct template_vars z;

	memset(&z, 0, sizeof(z));
	TT_CHECK_STR(ex("[${queue_id}|${from}|${rcpt}|${ip}|${helo}|"
	    "${module}|${reason}|${score}]", &z, sizeof(out)), "[|||||||]");
	TT_CHECK_STR(ex("[${queue_id}|${score}|${x}]", NULL, sizeof(out)),
	    "[||${x}]");
	TT_CHECK_STR(ex(NULL, &V, sizeof(out)), "");
	z.score = 5;		/* has_score false: still empty */
	TT_CHECK_STR(ex("s=${score}", &z, sizeof(out)), "s=");
	z.from = "";
	TT_CHECK_STR(ex("<${from}>", &z, sizeof(out)), "<>");
}

static void
test_truncation(void)
{
	char small[8];
	size_t n;

	TT_CHECK_STR(ex("hello", &V, 1), "");
	TT_CHECK_STR(ex("hello", &V, 2), "h");
	TT_CHECK_STR(ex("hello", &V, 5), "hell");
	TT_CHECK_STR(ex("hello", &V, 6), "hello");	/* exact fit */
	TT_CHECK_STR(ex("hello", &V, 7), "hello");
	TT_CHECK_STR(ex("${ip}", &V, 1), "");
	TT_CHECK_STR(ex("${ip}", &V, 2), "1");
	TT_CHECK_STR(ex("${ip}", &V, 10), "192.0.2.1");	/* exact fit */
	TT_CHECK_STR(ex("${ip}", &V, 9), "192.0.2.");
	TT_CHECK_STR(ex("ab${ip}", &V, 5), "ab19");
	TT_CHECK_STR(ex("${nope}", &V, 4), "${n");
	TT_CHECK_STR(ex("x${ip", &V, 4), "x${");
	TT_CHECK_STR(ex("a\r\nb", &V, 3), "a ");
	/* len 0 writes nothing */
	memset(small, 'Q', sizeof(small));
	n = template_expand("hello", &V, small, 0);
	TT_CHECK_INT(n, ==, 0);
	TT_CHECK_INT(small[0], ==, 'Q');
	TT_CHECK_INT(template_expand("hello", &V, NULL, 10), ==, 0);
	n = template_expand("${queue_id}", &V, small, sizeof(small));
	TT_CHECK_INT(n, ==, 7);
	TT_CHECK_STR(small, "4C1F2A7");
}

static void
test_truncation_utf8(void)
{
	/* "é" = C3 A9, "€" = E2 82 AC, "😀" = F0 9F 98 80 */
	TT_CHECK_STR(ex("a\xc3\xa9", &V, 3), "a");	/* never half of é */
	TT_CHECK_STR(ex("a\xc3\xa9", &V, 4), "a\xc3\xa9");
	TT_CHECK_STR(ex("a\xe2\x82\xac", &V, 3), "a");
	TT_CHECK_STR(ex("a\xe2\x82\xac", &V, 4), "a");
	TT_CHECK_STR(ex("a\xe2\x82\xac", &V, 5), "a\xe2\x82\xac");
	TT_CHECK_STR(ex("\xf0\x9f\x98\x80z", &V, 4), "");
	TT_CHECK_STR(ex("\xf0\x9f\x98\x80z", &V, 5), "\xf0\x9f\x98\x80");
	{
		struct template_vars w = V;

		w.reason = "caf\xc3\xa9!";
		TT_CHECK_STR(ex("r=${reason}", &w, 6), "r=caf");
		TT_CHECK_STR(ex("r=${reason}", &w, 8), "r=caf\xc3\xa9");
	}
	/* invalid bytes pass through untouched (not our job to repair) */
	TT_CHECK_STR(ex("\x80\x80x", &V, 3), "\x80\x80");
}

static void
test_control_characters(void)
{
	struct template_vars w = V;
	const char *s;

	w.reason = "evil\r\n250 ok";
	s = ex("550 5.7.1 ${reason}", &w, sizeof(out));
	TT_CHECK_STR(s, "550 5.7.1 evil 250 ok");
	TT_CHECK(strchr(s, '\r') == NULL && strchr(s, '\n') == NULL);
	w.reason = "a\nb\rc\td\001e\x1f" "f\x7fg";
	TT_CHECK_STR(ex("${reason}", &w, sizeof(out)), "a b c d e f g");
	w.reason = "\r\n\r\n\t";
	TT_CHECK_STR(ex("[${reason}]", &w, sizeof(out)), "[ ]");
	w.from = "x\r\n.\r\nQUIT\r\n";
	TT_CHECK_STR(ex("<${from}>", &w, sizeof(out)), "<x . QUIT >");
	w.helo = "\n";
	w.ip = "\n";
	TT_CHECK_STR(ex("${helo}${ip}", &w, sizeof(out)), " ");
	/* the template's literal text is cleaned too */
	TT_CHECK_STR(EX("line1\r\n250 line2\tend"), "line1 250 line2 end");
	TT_CHECK_STR(EX("\n${ip}\n"), " 192.0.2.1 ");
	/* a space that is really a space is kept, also next to controls */
	TT_CHECK_STR(EX("a  \r\n  b"), "a     b");
	/* bytes >= 0x80 are text (UTF-8), '%' stays */
	w.reason = "caf\xc3\xa9 100%";
	TT_CHECK_STR(ex("${reason}", &w, sizeof(out)), "caf\xc3\xa9 100%");
}

static void
test_score_format(void)
{
	struct template_vars w = V;

	w.score = 0;
	TT_CHECK_STR(ex("${score}", &w, sizeof(out)), "0.00");
	w.score = -0.0;
	TT_CHECK_STR(ex("${score}", &w, sizeof(out)), "0.00");
	w.score = 15;
	TT_CHECK_STR(ex("${score}", &w, sizeof(out)), "15.00");
	w.score = -3.456;
	TT_CHECK_STR(ex("${score}", &w, sizeof(out)), "-3.46");
	w.score = 0.004;
	TT_CHECK_STR(ex("${score}", &w, sizeof(out)), "0.00");
	w.score = 1234567.891;
	TT_CHECK_STR(ex("${score}/${score}", &w, sizeof(out)),
	    "1234567.89/1234567.89");
	w.score = 1e300;	/* long, but no overflow */
	TT_CHECK_INT(strlen(ex("${score}", &w, sizeof(out))), ==, 304);
	TT_CHECK_STR(ex("${score}", &w, 5), "1000");
	w.score = NAN;
	TT_CHECK_STR(ex("${score}", &w, sizeof(out)), "nan");
	w.score = 7;
	w.has_score = false;
	TT_CHECK_STR(ex("(${score})", &w, sizeof(out)), "()");
}

TT_MAIN(
	{ "template/every_variable", test_every_variable },
	{ "template/unknown_variables", test_unknown_variables },
	{ "template/dollar_edge_cases", test_dollar_edge_cases },
	{ "template/null_values", test_null_values },
	{ "template/truncation", test_truncation },
	{ "template/truncation_utf8", test_truncation_utf8 },
	{ "template/control_characters", test_control_characters },
	{ "template/score_format", test_score_format },
)
