/* test_rules.c -- the rule { } module through a live session (real config
 * loader, real pipeline, milter frames over a socketpair): every condition
 * kind plain and negated, regex flags, per-rule AND, first firing rule,
 * earliest-stage decisions, per-recipient refusals, body lines across
 * chunks, shadow and disabled rules, every action. */
#include "tt.h"
#include "conf_sections.h"
#include "harness.h"
#include "module.h"
#include "record.h"

/* the last record emitted, and what the rules module said in it */
static struct {
	int n;
	char action[32];
	char stage[16];
	char reply[256];
	char decided_by[32];
	char rules_action[32];
	char rules_reason[160];
	char rules_shadow[32];
	char rules_shadow_reason[160];
	unsigned rcpts_refused;
} last;

static void
capture(const struct decision_record *r)
{
	size_t i;

	last.n++;
	snprintf(last.action, sizeof(last.action), "%s", r->action);
	snprintf(last.stage, sizeof(last.stage), "%s", r->stage);
	snprintf(last.reply, sizeof(last.reply), "%s", r->reply ? r->reply :
	    "");
	snprintf(last.decided_by, sizeof(last.decided_by), "%s",
	    r->decided_by ? r->decided_by : "");
	last.rcpts_refused = r->rcpts_refused;
	last.rules_action[0] = last.rules_reason[0] = '\0';
	last.rules_shadow[0] = last.rules_shadow_reason[0] = '\0';
	for (i = 0; i < r->nmodules; i++) {
		const struct module_result *res = r->modules[i].res;

		if (strcmp(r->modules[i].name, "rules") != 0)
			continue;
		snprintf(last.rules_action, sizeof(last.rules_action), "%s",
		    module_action_name(res->action));
		snprintf(last.rules_reason, sizeof(last.rules_reason), "%s",
		    res->reason);
		snprintf(last.rules_shadow, sizeof(last.rules_shadow), "%s",
		    module_action_name(res->shadow_action));
		snprintf(last.rules_shadow_reason,
		    sizeof(last.rules_shadow_reason), "%s",
		    res->shadow_reason);
	}
}

/* A session on a config made of RULES; negotiated like Postfix (v6, all
 * actions and protocol bits offered). */
static void
rsetup(const char *rules)
{
	static char text[16384];

	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "log_level = error;\n%s\n", rules);
	memset(&last, 0, sizeof(last));
	record_emit_hook = capture;
	setup(text);
	TT_CHECK(conf != NULL);
	{
		struct reply r;

		negotiate(6, 0x1ff, 0x1fffff, &r);
	}
}

/* the reply text of a 'y' reply ("550 5.7.1 text"), else "" */
static __attribute__((noinline)) const char *
ytext(const struct reply *r)
{
	static char t[1024];

	t[0] = '\0';
	if (r->cmd == 'y' && r->len > 0 && r->len < sizeof(t)) {
		memcpy(t, r->data, r->len);
		t[r->len] = '\0';
	}
	return t;
}

/* a continue reply, or none (not negotiated) */
#define CONT(x)	TT_CHECK(strchr("c-", (x)) != NULL)

static __attribute__((noinline)) bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* CONNECT from HOST [ADDR] (IPv4); the reply ('-': none negotiated). */
static int
conn(const char *host, const char *addr, struct reply *r)
{
	uint8_t buf[256];
	size_t n = 0, l = strlen(host) + 1;

	memcpy(buf, host, l);
	n += l;
	buf[n++] = '4';
	buf[n++] = 0x30;
	buf[n++] = 0x39;
	l = strlen(addr) + 1;
	memcpy(buf + n, addr, l);
	n += l;
	send_frame('D', LIT("Cj\0mx.test"));
	return event_('C', buf, n, r);
}

static int
helo(const char *name, struct reply *r)
{
	return event_('H', name, strlen(name) + 1, r);
}

static int
mail(const char *from, struct reply *r)
{
	send_frame('D', LIT("Mi\0QID1"));
	return event_('M', from, strlen(from) + 1, r);
}

static int
rcpt(const char *to, struct reply *r)
{
	send_frame('D', LIT("Ri\0QID1"));
	return event_('R', to, strlen(to) + 1, r);
}

static int
header(const char *name, const char *value, struct reply *r)
{
	char buf[2048];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s%c%s", name, 0,
	    value) + 1;

	return event_('L', buf, n, r);
}

static int
eoh(struct reply *r)
{
	return event_('N', "", 0, r);
}

static int
body(const char *chunk, struct reply *r)
{
	return event_('B', chunk, strlen(chunk), r);
}

/* EOM; edits before the final reply are noted in EDITS (their command
 * bytes, in order).  Returns the final reply's command byte. */
static int
eom(struct reply *r, char *edits, size_t elen)
{
	size_t ne = 0;

	send_frame('D', LIT("Ei\0QID1"));
	send_frame('E', "", 0);
	if (edits != NULL)
		edits[0] = '\0';
	for (;;) {
		if (read_reply(r) < 0)
			return -1;
		if (strchr("+-bhimqep", r->cmd) == NULL)
			return r->cmd;
		if (edits != NULL && ne + 1 < elen) {
			edits[ne++] = (char)r->cmd;
			edits[ne] = '\0';
		}
	}
}

/* EOH, then (header decisions ride on the EOM reply: NR_EOH) EOM; the
 * reply that carries the verdict. */
static int
eoh_eom(struct reply *r)
{
	int c = eoh(r);

	return c == '-' ? eom(r, NULL, 0) : c;
}

/* A whole ordinary session up to RCPT; each stage must answer continue. */
static void
envelope_ok(const char *helo_name, const char *from, const char *to,
    struct reply *r)
{
	TT_CHECK(strchr("c-", conn("mail.example.org", "192.0.2.10", r)));
	TT_CHECK(strchr("c-", helo(helo_name, r)));
	TT_CHECK(strchr("c-", mail(from, r)));
	TT_CHECK(strchr("c-", rcpt(to, r)));
}

/* DATA with one Subject header and BODY (one chunk); returns the EOM
 * reply, or the first non-continue reply before it. */
static int
data(const char *subject, const char *bodytext, struct reply *r)
{
	int c;

	if ((c = event_('T', "", 0, r)) != 'c' && c != '-')
		return c;
	if ((c = header("From", "a@example.org", r)) != 'c' && c != '-')
		return c;
	if (subject != NULL &&
	    (c = header("Subject", subject, r)) != 'c' && c != '-')
		return c;
	if ((c = eoh(r)) != 'c' && c != '-')
		return c;
	if (bodytext != NULL && (c = body(bodytext, r)) != 'c' && c != '-' &&
	    c != 's')
		return c;
	return eom(r, NULL, 0);
}

/* ---- conditions ------------------------------------------------------------- */

static void
test_connect(void)
{
	struct reply r;

	/* host only */
	rsetup("rule { name = bad-host; reject \"no\"; "
	    "connect /\\.dyn\\.example$/; }");
	TT_CHECK_INT(conn("h1.dyn.example", "192.0.2.1", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 no");
	teardown();
	rsetup("rule { name = bad-host; reject \"no\"; "
	    "connect /\\.dyn\\.example$/; }");
	TT_CHECK_INT(conn("mail.example.org", "192.0.2.1", &r), ==, 'c');
	teardown();

	/* host and ip: both must match */
	rsetup("rule { reject; connect /example/ /^192\\.0\\.2\\./; }");
	TT_CHECK_INT(conn("mail.example.org", "198.51.100.1", &r), ==, 'c');
	teardown();
	rsetup("rule { reject; connect /example/ /^192\\.0\\.2\\./; }");
	TT_CHECK_INT(conn("mail.example.org", "192.0.2.7", &r), ==, 'y');
	TT_CHECK(starts(ytext(&r), "550 5.7.1 "));
	teardown();

	/* negated: holds iff the positive form does not */
	rsetup("rule { tempfail \"who?\"; not connect /example/ /^192\\./; }");
	TT_CHECK_INT(conn("mail.example.org", "192.0.2.7", &r), ==, 'c');
	teardown();
	rsetup("rule { tempfail \"who?\"; not connect /example/ /^192\\./; }");
	TT_CHECK_INT(conn("mail.example.org", "10.0.0.1", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "451 4.7.1 who?");
	teardown();
}

static void
test_connect_unix_client_addr(void)
{
	struct reply r;

	/* over a unix socket the ip is the MTA's {client_addr} macro */
	rsetup("rule { reject \"bad net\"; connect /./ /^203\\.0\\.113\\./; }");
	send_frame('D', LIT("C{client_addr}\0" "203.0.113.9"));
	TT_CHECK_INT(event_('C', LIT("x.example\0U"), &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 bad net");
	teardown();
}

static void
test_helo_flags_and_negation(void)
{
	struct reply r;

	rsetup("rule { name = bad-helo; reject \"554 5.7.0 bad helo\"; "
	    "helo /^localhost$/i; }");
	TT_CHECK(strchr("c-", conn("mail.example.org", "192.0.2.10", &r)));
	TT_CHECK_INT(helo("LocalHost", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "554 5.7.0 bad helo");
	TT_CHECK_INT(last.n, ==, 1);
	TT_CHECK_STR(last.stage, "helo");
	TT_CHECK_STR(last.rules_reason, "rule bad-helo");
	teardown();

	/* without /i the case matters */
	rsetup("rule { reject; helo /^localhost$/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("LocalHost", &r), ==, 'c');
	teardown();

	/* not helo: a HELO that is not a dotted name */
	rsetup("rule { reject \"fqdn please\"; not helo /\\./; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("mail.example.org", &r), ==, 'c');
	teardown();
	rsetup("rule { reject \"fqdn please\"; not helo /\\./; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("workstation", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 fqdn please");
	teardown();
}

static void
test_envfrom(void)
{
	struct reply r;

	/* against the address as sent, with <> */
	rsetup("rule { reject \"no bounces\"; envfrom /^<>$/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	TT_CHECK_INT(mail("<>", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 no bounces");
	TT_CHECK_STR(last.stage, "mail");
	/* the next transaction is judged on its own sender */
	CONT(mail("<a@example.org>", &r));
	CONT(rcpt("<b@example.net>", &r));
	TT_CHECK_INT(data("hi", "hello\r\n", &r), ==, 'c');
	teardown();

	rsetup("rule { tempfail; not envfrom /@example\\.org>$/i; }");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	CONT(mail("<a@EXAMPLE.org>", &r));
	CONT(rcpt("<b@example.net>", &r));
	TT_CHECK_INT(data("hi", "hello\r\n", &r), ==, 'c');
	TT_CHECK_INT(mail("<a@other.example>", &r), ==, 'y');
	TT_CHECK(starts(ytext(&r), "451 4.7.1 "));
	teardown();
}

static void
test_envrcpt_per_recipient(void)
{
	struct reply r;

	rsetup("rule { name = no-postmaster; reject \"550 5.1.1 no such "
	    "user\"; envrcpt /^<postmaster@/i; }");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	CONT(mail("<a@example.org>", &r));
	CONT(rcpt("<bob@example.net>", &r));
	TT_CHECK_INT(rcpt("<Postmaster@example.net>", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.1.1 no such user");
	CONT(rcpt("<carol@example.net>", &r));
	/* the message itself goes on */
	TT_CHECK_INT(data("hi", "hello\r\n", &r), ==, 'c');
	TT_CHECK_INT(last.n, ==, 1);
	TT_CHECK_STR(last.action, "continue");
	TT_CHECK_INT(last.rcpts_refused, ==, 1);
	teardown();

	/* not envrcpt, per recipient: refuse those that do not match */
	rsetup("rule { tempfail \"not here\"; not envrcpt /@example\\.net>$/; "
	    "}");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	mail("<a@example.org>", &r);
	CONT(rcpt("<bob@example.net>", &r));
	TT_CHECK_INT(rcpt("<bob@elsewhere.example>", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "451 4.7.1 not here");
	teardown();

	/* accept at RCPT applies to the message */
	rsetup("rule { name = vip; accept; envrcpt /^<vip@/; }\n"
	    "rule { reject \"spam\"; header /^Subject$/ /spam/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<x@example.net>",
	    &r);
	CONT(rcpt("<vip@example.net>", &r));
	TT_CHECK_INT(data("spam spam", "hello\r\n", &r), ==, 'a');
	TT_CHECK_STR(last.rules_reason, "rule vip");
	teardown();
}

static void
test_envrcpt_with_header(void)
{
	struct reply r;

	/* envrcpt + header: any ACCEPTED recipient; a recipient refused
	 * by another rule does not count */
	rsetup("rule { reject \"gone\"; envrcpt /^<old@/; }\n"
	    "rule { name = combo; reject \"combo\"; envrcpt /^<(old|sales)@/; "
	    "header /^Subject$/ /offer/i; }");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	mail("<a@example.org>", &r);
	TT_CHECK_INT(rcpt("<old@example.net>", &r), ==, 'y');
	CONT(rcpt("<bob@example.net>", &r));
	TT_CHECK_INT(data("Special OFFER", "hello\r\n", &r), ==, 'c');
	/* the same with an accepted matching recipient */
	mail("<a@example.org>", &r);
	CONT(rcpt("<sales@example.net>", &r));
	CONT(rcpt("<bob@example.net>", &r));
	TT_CHECK_INT(data("Special OFFER", "hello\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 combo");
	TT_CHECK_STR(last.stage, "eoh");
	teardown();

	/* not envrcpt + header: no accepted recipient matched */
	rsetup("rule { reject \"nope\"; not envrcpt /^<sales@/; "
	    "header /^Subject$/ /offer/i; }");
	envelope_ok("mail.example.org", "<a@example.org>",
	    "<bob@example.net>", &r);
	CONT(rcpt("<sales@example.net>", &r));
	TT_CHECK_INT(data("offer", "hello\r\n", &r), ==, 'c');
	mail("<a@example.org>", &r);
	rcpt("<bob@example.net>", &r);
	TT_CHECK_INT(data("offer", "hello\r\n", &r), ==, 'y');
	teardown();
}

static void
test_header(void)
{
	struct reply r;

	/* name and value, /i on the name only */
	rsetup("rule { name = spam-subj; reject \"spammy\"; "
	    "header /^subject$/i /viagra/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK_INT(data("cheap VIAGRA", "hello\r\n", &r), ==, 'c');
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("cheap viagra", "hello\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 spammy");
	TT_CHECK_STR(last.stage, "eoh");
	TT_CHECK_STR(last.rules_reason, "rule spam-subj");
	teardown();

	/* name only; the name must match on the same header as the value */
	rsetup("rule { reject; header /^X-Mailer$/; }\n"
	    "rule { reject \"mixed\"; header /^From$/ /viagra/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK_INT(data("viagra", "hello\r\n", &r), ==, 'c');
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK(strchr("c-", event_('T', "", 0, &r)));
	TT_CHECK(strchr("c-", header("X-Mailer", "spamtool 1.0", &r)));
	TT_CHECK_INT(eoh_eom(&r), ==, 'y');
	teardown();

	/* not header: known only at EOH */
	rsetup("rule { name = no-msgid; reject \"no id\"; "
	    "not header /^Message-Id$/i; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	TT_CHECK(strchr("c-", header("Subject", "x", &r)));
	TT_CHECK_INT(eoh_eom(&r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 no id");
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	event_('T', "", 0, &r);
	TT_CHECK(strchr("c-", header("Message-ID", "<1@x>", &r)));
	CONT(eoh(&r));
	CONT(body("hello\r\n", &r));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'c');
	teardown();
}

static void
test_header_shared_name_regex(void)
{
	struct reply r;

	/* rules sharing a name regex (matched once per header) still judge
	 * their own values; a different name regex is matched on its own */
	rsetup("rule { name = a; reject \"a\"; header /^subject$/i /aaa/; }\n"
	    "rule { name = x; reject \"x\"; header /^X-Y$/ /bbb/; }\n"
	    "rule { name = b; reject \"b\"; header /^subject$/i /bbb/; }\n"
	    "rule { name = c; reject \"c\"; header /^subject$/ /bbb/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	CONT(event_('T', "", 0, &r));
	CONT(header("SUBJECT", "xx bbb", &r));
	TT_CHECK_INT(eoh_eom(&r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 b");
	teardown();
}

static void
test_header_decided_at_eom_without_eoh(void)
{
	struct reply r;

	/* an MTA that sends no EOH: header rules are decided at EOM */
	rsetup("rule { reject \"no id\"; not header /^Message-Id$/i; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK(strchr("c-", header("Subject", "x", &r)));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 no id");
	teardown();
}

static void
test_body_lines(void)
{
	struct reply r;
	const char *rules = "rule { name = bad-body; reject \"bad body\"; "
	    "body /^click here now$/; }";

	/* a line split between two chunks is reassembled (CRLF dropped) */
	rsetup(rules);
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	header("Subject", "x", &r);
	eoh(&r);
	CONT(body("hello\r\nclick he", &r));
	CONT(body("re now\r\nbye\r\n", &r));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 bad body");
	TT_CHECK_STR(last.stage, "eom");
	/* split between CR and LF */
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	event_('T', "", 0, &r);
	eoh(&r);
	CONT(body("hello\r\nclick here now\r", &r));
	CONT(body("\nbye\r\n", &r));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'y');
	/* a match spanning two lines does not count */
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "click here\r\nnow\r\n", &r), ==, 'c');
	teardown();

	/* the last line without LF is matched at EOM */
	rsetup("rule { reject \"tail\"; body /^the end$/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK_INT(data("x", "hello\r\nthe end", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 tail");
	teardown();

	/* a chunk boundary inside a word: /\bword\b/ still matches */
	rsetup("rule { reject; body /\\bunsubscribe\\b/i; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	eoh(&r);
	body("line one\r\nplease Unsub", &r);
	body("scribe", &r);
	body(" today\r\n", &r);
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'y');
	teardown();
}

static void
test_body_long_line_and_negation(void)
{
	struct reply r;
	static char chunk[60001];

	/* a 120000-byte line (two chunks of 60000): matched in 64 KB pieces,
	 * so a word in the second piece matches without a crash */
	rsetup("rule { reject \"long\"; body /needle/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	eoh(&r);
	memset(chunk, 'a', 60000);
	CONT(body(chunk, &r));
	memcpy(chunk + 59990, "needle", 6);
	CONT(body(chunk, &r));
	CONT(body("\r\n", &r));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'y');
	teardown();

	/* not body: mail without a signature line */
	rsetup("rule { tempfail \"sign it\"; not body /^-- $/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK_INT(data("x", "hi\r\n-- \r\nme\r\n", &r), ==, 'c');
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "hi\r\n--\r\nme\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "451 4.7.1 sign it");
	/* no body at all: the negated condition holds */
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", NULL, &r), ==, 'y');
	teardown();
}

/* reference: does some line of BODY (split on LF, one trailing CR
 * removed) read exactly a b+ c? */
static bool
ref_abc(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i, e, k;

		while (j < len && body[j] != '\n')
			j++;
		e = j;
		if (e > i && body[e - 1] == '\r')
			e--;
		if (e - i >= 3 && body[i] == 'a' && body[e - 1] == 'c') {
			for (k = i + 1; k < e - 1 && body[k] == 'b'; k++)
				;
			if (k == e - 1)
				return true;
		}
		i = j + 1;
	}
	return false;
}

static void
test_body_random_chunking(void)
{
	struct reply r;
	char body[600];
	unsigned iter, seed = 12345, hits = 0;

	/* random bodies over {a, b, c, CR, LF}, cut into random chunks: the
	 * verdict equals the line-by-line reference */
	rsetup("rule { reject \"abc\"; body /^ab+c$/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	for (iter = 0; iter < 300; iter++) {
		size_t len, off = 0, i;
		bool want;
		int c;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(body);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			body[i] = "aabbbbc\r\n\n"[(seed >> 16) % 10];
		}
		want = ref_abc(body, len);
		hits += want;
		if (iter > 0) {
			CONT(mail("<a@example.org>", &r));
			CONT(rcpt("<b@example.net>", &r));
		}
		CONT(event_('T', "", 0, &r));
		CONT(eoh(&r));
		while (off < len) {
			size_t n;

			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 40;
			if (n > len - off)
				n = len - off;
			CONT(event_('B', body + off, n, &r));
			off += n;
		}
		c = eom(&r, NULL, 0);
		TT_CHECK_INT(c, ==, want ? 'y' : 'c');
		if (c != (want ? 'y' : 'c'))
			break;
	}
	TT_CHECK(hits > 10 && hits < 290);	/* both outcomes exercised */
	teardown();
}

/* Several body rules are combined into one prefilter regex; each rule
 * still decides exactly as alone (flags kept per rule). */
static void
test_body_prefilter(void)
{
	struct reply r;

	rsetup("rule { name = v; reject \"v\"; body /viagra/i; }\n"
	    "rule { name = c; tempfail \"c\"; body /^casino$/; }\n"
	    "rule { name = x; reject \"x\"; body /a.b/s; }\n"
	    "rule { name = off; enable = no; reject \"off\"; body /hello/; }");
	TT_CHECK(conf->sections->body_prefilter != NULL);
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK_INT(data("x", "hello\r\nbuy VIAGRA\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 v");
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "CASINO\r\ncasino\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "451 4.7.1 c");
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	/* case matters for casino; the disabled rule never fires */
	TT_CHECK_INT(data("x", "CASINO here\r\nhello\r\n", &r), ==, 'c');
	teardown();

	/* a back-reference cannot be embedded: no prefilter, same verdicts */
	rsetup("rule { reject \"dup\"; body /(ab)\\1/; }\n"
	    "rule { reject \"z\"; body /zz/; }");
	TT_CHECK(conf->sections->body_prefilter == NULL);
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	TT_CHECK_INT(data("x", "xx abab yy\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 dup");
	teardown();
}

/* ---- rule semantics ---------------------------------------------------------- */

static void
test_and_is_per_rule(void)
{
	struct reply r;

	/* each rule has one matching condition: none of them fires (rmilter
	 * 1.6 combined conditions across rules) */
	rsetup("rule { reject \"r1\"; helo /^evil/; envfrom /never/; }\n"
	    "rule { reject \"r2\"; helo /never/; envfrom /spammer/; }\n"
	    "rule { reject \"r3\"; header /^Subject$/ /buy/; body /never/; }\n"
	    "rule { reject \"r4\"; header /^Subject$/ /never/; body /cheap/; "
	    "}");
	TT_CHECK(strchr("c-", conn("mail.example.org", "192.0.2.10", &r)));
	TT_CHECK(strchr("c-", helo("evil.example", &r)));
	TT_CHECK(strchr("c-", mail("<spammer@example.org>", &r)));
	TT_CHECK(strchr("c-", rcpt("<b@example.net>", &r)));
	TT_CHECK_INT(data("buy now", "cheap stuff\r\n", &r), ==, 'c');
	TT_CHECK_STR(last.rules_action, "continue");
	teardown();

	/* all conditions of one rule over four stages */
	rsetup("rule { name = all4; reject \"all\"; helo /^evil/; "
	    "envfrom /spammer/; header /^Subject$/ /buy/; body /cheap/; }");
	envelope_ok("evil.example", "<spammer@example.org>",
	    "<b@example.net>", &r);
	TT_CHECK_INT(data("buy now", "cheap stuff\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 all");
	TT_CHECK_STR(last.stage, "eom");
	teardown();
}

static void
test_first_rule_wins(void)
{
	struct reply r;

	rsetup("rule { name = one; reject \"first\"; helo /example/; }\n"
	    "rule { name = two; tempfail \"second\"; helo /mail/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("mail.example.org", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 first");
	TT_CHECK_STR(last.rules_reason, "rule one");
	teardown();

	/* an accept listed first wins over a later reject */
	rsetup("rule { name = trusted; accept; envfrom /@partner\\./; }\n"
	    "rule { reject \"spam\"; header /^Subject$/ /spam/; }");
	envelope_ok("mail.example.org", "<a@partner.example>",
	    "<b@example.net>", &r);
	TT_CHECK_INT(data("spam", "spam\r\n", &r), ==, 'a');
	TT_CHECK_STR(last.action, "accept");
	teardown();

	/* a disabled rule is ignored */
	rsetup("rule { name = off; enable = no; reject \"off\"; "
	    "helo /example/; }\n"
	    "rule { name = on; reject \"on\"; envfrom /./; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK(strchr("c-", helo("mail.example.org", &r)));
	TT_CHECK_INT(mail("<a@example.org>", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 on");
	teardown();

	/* only disabled rules: the module is not configured at all */
	rsetup("rule { enable = no; reject; helo /./; }");
	TT_CHECK(proto & SMFIP_NOHDRS);
	TT_CHECK(proto & SMFIP_NOBODY);
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK(strchr("c-", helo("mail.example.org", &r)));
	teardown();
}

static void
test_earliest_stage(void)
{
	struct reply r;

	/* a connect+helo rule refuses at HELO (HELO replies negotiated) */
	rsetup("rule { name = c-h; reject \"early\"; connect /example/; "
	    "helo /^bad/; }\n"
	    "rule { reject \"late\"; header /./; }");
	TT_CHECK(!(proto & SMFIP_NR_HELO));
	TT_CHECK(strchr("c-", conn("mail.example.org", "192.0.2.10", &r)));
	TT_CHECK_INT(helo("bad.example", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 early");
	TT_CHECK_STR(last.stage, "helo");
	teardown();

	/* a rule with no condition fires at CONNECT */
	rsetup("rule { name = closed; tempfail \"421 4.3.2 closed\"; }");
	TT_CHECK_INT(conn("mail.example.org", "192.0.2.10", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "421 4.3.2 closed");
	teardown();

	/* a later-listed rule that is known earlier decides earlier */
	rsetup("rule { reject \"hdr\"; header /^Subject$/ /x/; }\n"
	    "rule { name = h; reject \"helo\"; helo /^bad/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("bad.example", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 helo");
	teardown();

	/* a connect/helo rule combined with a header rule is judged again
	 * on every message of the connection */
	rsetup("rule { name = combo; reject \"combo\"; helo /^bad/; "
	    "header /^Subject$/ /x/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK(strchr("c-", helo("bad.example", &r)));
	TT_CHECK(strchr("c-", mail("<a@example.org>", &r)));
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("y", "b\r\n", &r), ==, 'c');
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "b\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 combo");
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "b\r\n", &r), ==, 'y');
	send_frame('A', "", 0);
	/* a new HELO (STARTTLS) is judged on its own */
	TT_CHECK(strchr("c-", helo("good.example", &r)));
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "b\r\n", &r), ==, 'c');
	teardown();
}

static void
test_shadow_rule(void)
{
	struct reply r;

	/* the shadow rule fires first: the reply is unchanged, the record
	 * says what it would have done, and a later enforce rule decides */
	rsetup("rule { name = try; mode = shadow; reject \"would\"; "
	    "envfrom /spammer/; }\n"
	    "rule { name = real; tempfail \"real\"; header /^Subject$/ /z/; }");
	envelope_ok("mail.example.org", "<spammer@example.org>",
	    "<b@example.net>", &r);
	TT_CHECK_INT(data("a", "b\r\n", &r), ==, 'c');
	TT_CHECK_STR(last.action, "continue");
	TT_CHECK_STR(last.rules_shadow, "reject");
	TT_CHECK_STR(last.rules_shadow_reason, "rule try");
	TT_CHECK_STR(last.rules_action, "continue");
	mail("<spammer@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("z", "b\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "451 4.7.1 real");
	TT_CHECK_STR(last.rules_shadow, "reject");
	TT_CHECK_STR(last.rules_reason, "rule real");
	teardown();

	/* a shadow-only config needs no replies */
	rsetup("rule { mode = shadow; reject; helo /./; }");
	TT_CHECK(proto & SMFIP_NR_HELO);
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("x.example", &r), ==, '-');
	TT_CHECK_INT(mail("<a@example.org>", &r), ==, '-');
	teardown();
}

/* ---- actions ------------------------------------------------------------------- */

static void
test_actions(void)
{
	struct reply r;
	char edits[16];

	/* accept at MAIL: the message is accepted at EOM */
	rsetup("rule { accept; envfrom /good/; }\n"
	    "rule { reject; body /./; }");
	envelope_ok("mail.example.org", "<good@example.org>",
	    "<b@example.net>", &r);
	TT_CHECK_INT(data("x", "anything\r\n", &r), ==, 'a');
	teardown();

	/* reject: default text carries the queue id */
	rsetup("rule { reject; envfrom /bad/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	TT_CHECK_INT(mail("<bad@example.org>", &r), ==, 'y');
	TT_CHECK(starts(ytext(&r), "550 5.7.1 "));
	TT_CHECK(strstr(ytext(&r), "QID1") != NULL);
	teardown();

	/* reject with a custom code and a template */
	rsetup("rule { name = tmpl; reject \"554 5.7.0 go away ${helo}\"; "
	    "envfrom /bad/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	helo("mail.example.org", &r);
	TT_CHECK_INT(mail("<bad@example.org>", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "554 5.7.0 go away mail.example.org");
	teardown();

	/* tempfail */
	rsetup("rule { tempfail \"452 4.3.1 later\"; header /^X-Big$/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	header("X-Big", "1", &r);
	TT_CHECK_INT(eoh_eom(&r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "452 4.3.1 later");
	teardown();

	/* discard at EOH */
	rsetup("rule { name = drop; discard; header /^X-Drop$/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	header("X-Drop", "1", &r);
	TT_CHECK_INT(eoh_eom(&r), ==, 'd');
	TT_CHECK_STR(last.action, "discard");
	teardown();

	/* discard decided at HELO: the first message is discarded */
	rsetup("rule { discard; helo /^drop/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK(strchr("c-", helo("drop.example", &r)));
	TT_CHECK_INT(mail("<a@example.org>", &r), ==, 'd');
	teardown();

	/* quarantine: a 'q' edit at EOM, then continue */
	rsetup("rule { name = hold; quarantine \"held by rule\"; "
	    "header /^Subject$/ /hold me/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	header("Subject", "please hold me", &r);
	TT_CHECK(strchr("c-", eoh(&r)));
	TT_CHECK(strchr("c-", body("x\r\n", &r)));
	TT_CHECK_INT(eom(&r, edits, sizeof(edits)), ==, 'c');
	TT_CHECK_STR(edits, "q");
	TT_CHECK_STR(last.action, "quarantine");
	TT_CHECK_STR(last.rules_reason, "rule hold");
	teardown();
}

static void
test_quarantine_reason_text(void)
{
	struct reply r;
	rsetup("rule { quarantine \"held by rule\"; envfrom /./; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	eoh(&r);
	body("x\r\n", &r);
	send_frame('E', "", 0);
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'q');
	TT_CHECK(r.len > 0 && strcmp((const char *)r.data, "held by rule") ==
	    0);
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'c');
	teardown();
}

/* ---- negotiation and robustness ------------------------------------------------ */

static void
test_needs(void)
{
	/* header rules only: headers and EOH, no body */
	rsetup("rule { reject; header /^X-A$/; }");
	TT_CHECK(!(proto & SMFIP_NOHDRS));
	TT_CHECK(!(proto & SMFIP_NOEOH));
	TT_CHECK(proto & SMFIP_NR_EOH);	/* decided at EOH, sent at EOM */
	TT_CHECK(proto & SMFIP_NOBODY);
	TT_CHECK(proto & SMFIP_NR_HELO);
	TT_CHECK(proto & SMFIP_NR_MAIL);
	teardown();

	/* body rules: the body, replies at EOM only */
	rsetup("rule { reject; body /x/; }");
	TT_CHECK(!(proto & SMFIP_NOBODY));
	TT_CHECK(proto & SMFIP_NR_BODY);
	TT_CHECK(proto & SMFIP_NOHDRS);
	teardown();

	/* envrcpt: replies at RCPT */
	rsetup("rule { reject; envrcpt /x/; }");
	TT_CHECK(!(proto & SMFIP_NR_RCPT));
	TT_CHECK(proto & SMFIP_NR_MAIL);
	TT_CHECK(proto & SMFIP_NOBODY);
	teardown();
}

static void
test_match_errors_are_no_match(void)
{
	struct reply r;

	/* /u on invalid UTF-8: a match error, counted as no match */
	rsetup("rule { reject \"pos\"; helo /x/u; }\n"
	    "rule { reject \"neg\"; not envfrom /x/u; }\n"
	    "rule { reject \"body\"; body /(a+)+$/; }");
	conn("mail.example.org", "192.0.2.10", &r);
	TT_CHECK_INT(helo("x\xff\xfe", &r), ==, 'c');
	TT_CHECK_INT(mail("<x\xff@example.org>", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 neg");
	teardown();

	/* catastrophic backtracking hits the match limit: no match, no hang
	 * beyond the limit, no crash */
	rsetup("rule { reject \"body\"; body /^(a|aa)+b$/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	{
		static char line[20000];

		memset(line, 'a', sizeof(line) - 3);
		memcpy(line + sizeof(line) - 3, "c\n", 3);
		TT_CHECK_INT(data("x", line, &r), ==, 'c');
	}
	teardown();
}

static void
test_garbage_bodies(void)
{
	struct reply r;
	static char bin[4096];
	size_t i;

	/* binary bodies, NUL bytes, lone CRs, empty lines: no crash */
	rsetup("rule { reject \"nul\"; body /^a\\x00b$/; }\n"
	    "rule { reject \"empty\"; not body /./; envfrom /empty/; }");
	envelope_ok("mail.example.org", "<a@example.org>", "<b@example.net>",
	    &r);
	event_('T', "", 0, &r);
	eoh(&r);
	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 7 + 1);
	TT_CHECK(strchr("c-", event_('B', bin, sizeof(bin), &r)));
	TT_CHECK(strchr("c-", event_('B', "\r\r\n\n\r\n", 6, &r)));
	TT_CHECK(strchr("c-", event_('B', "a\0b\r\n", 5, &r)));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 nul");
	/* a message with an empty body (only blank lines) */
	mail("<empty@example.org>", &r);
	rcpt("<b@example.net>", &r);
	TT_CHECK_INT(data("x", "\r\n\r\n", &r), ==, 'y');
	TT_CHECK_STR(ytext(&r), "550 5.7.1 empty");
	/* abort mid-body, then a fresh message */
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	event_('T', "", 0, &r);
	eoh(&r);
	event_('B', "a\0", 2, &r);
	send_frame('A', "", 0);
	mail("<a@example.org>", &r);
	rcpt("<b@example.net>", &r);
	event_('T', "", 0, &r);
	eoh(&r);
	CONT(event_('B', "b\r\n", 3, &r));
	TT_CHECK_INT(eom(&r, NULL, 0), ==, 'c');
	teardown();
}

/* the module table itself (also makes the test link mod_rules.o) */
static void
test_module_def(void)
{
	TT_CHECK_STR(module_rules.name, "rules");
	TT_CHECK_INT(module_rules.flags, ==, 0);
	TT_CHECK(module_rules.msg_free != NULL);
}

TT_MAIN(
	{ "rules/body_prefilter", test_body_prefilter },
	{ "rules/module_def", test_module_def },
	{ "rules/connect", test_connect },
	{ "rules/connect_unix_client_addr", test_connect_unix_client_addr },
	{ "rules/helo_flags_negation", test_helo_flags_and_negation },
	{ "rules/envfrom", test_envfrom },
	{ "rules/envrcpt_per_recipient", test_envrcpt_per_recipient },
	{ "rules/envrcpt_with_header", test_envrcpt_with_header },
	{ "rules/header", test_header },
	{ "rules/header_shared_name_regex", test_header_shared_name_regex },
	{ "rules/header_at_eom_without_eoh",
	    test_header_decided_at_eom_without_eoh },
	{ "rules/body_lines", test_body_lines },
	{ "rules/body_long_line_negation", test_body_long_line_and_negation },
	{ "rules/body_random_chunking", test_body_random_chunking },
	{ "rules/and_is_per_rule", test_and_is_per_rule },
	{ "rules/first_rule_wins", test_first_rule_wins },
	{ "rules/earliest_stage", test_earliest_stage },
	{ "rules/shadow_rule", test_shadow_rule },
	{ "rules/actions", test_actions },
	{ "rules/quarantine_reason", test_quarantine_reason_text },
	{ "rules/needs", test_needs },
	{ "rules/match_errors", test_match_errors_are_no_match },
	{ "rules/garbage_bodies", test_garbage_bodies },
)
