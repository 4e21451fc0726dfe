/* test_pipeline.c -- the policy core through a live session: verdict
 * combination, per-recipient results, templates, noop and shadow, accept
 * and quarantine, abort records, our_networks over unix-socket MTA
 * connections, whitelist-all-recipients, the spool. */
#include <dirent.h>

#include "tt.h"
#include "harness.h"
#include "record.h"
#include "spool.h"

/* the last record emitted (copied fields) */
static struct {
	int n;
	char action[32];
	char reply[256];
	char decided_by[32];
	char stage[16];
	bool authenticated, whitelisted, noop;
	unsigned rcpts_refused;
	size_t nrcpts;
	char shadow_action[32];
	char module_action[32];
} last;

static void
capture(const struct decision_record *r)
{
	size_t i;

	last.n++;
	snprintf(last.action, sizeof(last.action), "%s", r->action);
	snprintf(last.reply, sizeof(last.reply), "%s", r->reply ? r->reply :
	    "");
	snprintf(last.decided_by, sizeof(last.decided_by), "%s",
	    r->decided_by ? r->decided_by : "");
	snprintf(last.stage, sizeof(last.stage), "%s", r->stage);
	last.authenticated = r->authenticated;
	last.whitelisted = r->whitelisted;
	last.noop = r->noop;
	last.rcpts_refused = r->rcpts_refused;
	last.nrcpts = r->nrcpts;
	last.shadow_action[0] = last.module_action[0] = '\0';
	for (i = 0; i < r->nmodules; i++) {
		if (strcmp(r->modules[i].name, "test_policy") != 0)
			continue;
		snprintf(last.shadow_action, sizeof(last.shadow_action), "%s",
		    module_action_name(r->modules[i].res->shadow_action));
		snprintf(last.module_action, sizeof(last.module_action), "%s",
		    module_action_name(r->modules[i].res->action));
	}
}

static void
psetup(const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "test_policy = yes;\nlog_level = error;\n%s\n", extra);
	memset(&last, 0, sizeof(last));
	record_emit_hook = capture;
	setup(text);
}

static void
test_enforce_vs_noop(void)
{
	struct reply r;

	psetup("");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "reject"), ==, 'y');
	TT_CHECK_STR(last.action, "reject");
	TT_CHECK_STR(last.decided_by, "test_policy");
	TT_CHECK_STR(last.stage, "eom");
	TT_CHECK_STR(last.reply, "550 5.7.1 Rejected by test policy");
	teardown();

	/* noop: the same message passes; the record says what would happen */
	psetup("noop = yes;");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "reject; addheader X-A 1"), ==, 'c');
	TT_CHECK_STR(last.action, "continue");
	TT_CHECK(last.noop);
	TT_CHECK_STR(last.module_action, "continue");
	TT_CHECK_STR(last.shadow_action, "reject");
	teardown();
}

static void
test_per_recipient_and_abort_record(void)
{
	struct reply r;

	psetup("");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<test-reject-rcpt@dest>");
	TT_CHECK_INT(r.cmd, ==, 'y');
	TT_CHECK_INT(last.n, ==, 0);	/* only a recipient was refused */
	TT_CHECK_INT(event_('R', LIT("<ok@dest>"), &r), ==, 'c');
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	TT_CHECK_INT(last.n, ==, 1);
	TT_CHECK_STR(last.action, "continue");
	TT_CHECK_INT(last.rcpts_refused, ==, 1);
	TT_CHECK_INT(last.nrcpts, ==, 1);
	/* a refused recipient then RSET: the record says "aborted" */
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<test-tempfail-rcpt@dest>");
	TT_CHECK_INT(r.cmd, ==, 'y');
	send_frame('A', "", 0);
	pump();
	TT_CHECK_INT(last.n, ==, 2);
	TT_CHECK_STR(last.action, "aborted");
	/* a plain message aborted after RCPT leaves no record */
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	send_frame('A', "", 0);
	pump();
	TT_CHECK_INT(last.n, ==, 2);
	teardown();
}

static void
test_templates_and_codes(void)
{
	struct reply r;

	psetup("");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "reject 554 5.7.0 no ${from} from ${ip} "
	    "(${queue_id}) ${nope}"), ==, 'y');
	TT_CHECK_STR((const char *)r.data,
	    "554 5.7.0 no <a@test> from 127.0.0.1 (QID1) ${nope}");
	send_frame('A', "", 0);
	/* a tempfail text with a 5xx code keeps the tempfail class */
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "tempfail 550 5.7.1 wrong class"), ==, 'y');
	TT_CHECK(r.data[0] == '4');
	teardown();
}

static void
test_accept_quarantine_discard(void)
{
	struct reply r;

	psetup("");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "accept; reject"), ==, 'a');
	TT_CHECK_STR(last.action, "accept");
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "quarantine held by test"), ==, 'q');
	TT_CHECK_STR((const char *)r.data, "held by test");
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'c');
	TT_CHECK_STR(last.action, "quarantine");
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "discard; addheader X-No 1"), ==, 'd');
	TT_CHECK_STR(last.action, "discard");
	teardown();
}

/* CONNECT with family 'L' (the MTA talks to us over a unix socket): the
 * client address comes from {client_addr}. */
static void
test_our_networks_unix(void)
{
	struct reply r;

	harness_auth = false;
	psetup("our_networks = 10.0.0.0/8, [2001:db8::]/32;");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	send_frame('D', LIT("C{client_addr}\0" "10.1.2.3"));
	event_('C', LIT("localhost\0" "L\0\0" "/var/run/x.sock"), &r);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	TT_CHECK(last.authenticated);
	teardown();

	psetup("our_networks = 10.0.0.0/8, [2001:db8::]/32;");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	event_('C', LIT("h\0" "6\0\x19" "2001:db8::5"), &r);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	TT_CHECK(last.authenticated);
	teardown();

	psetup("our_networks = 10.0.0.0/8;");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");	/* 127.0.0.1, no auth macro */
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	TT_CHECK(!last.authenticated);
	teardown();
	harness_auth = true;
}

static void
test_whitelist_every_rcpt(void)
{
	struct reply r;

	psetup("whitelist = postmaster, @example.org;");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<Postmaster@x.test>");
	TT_CHECK_INT(event_('R', LIT("<b@EXAMPLE.org>"), &r), ==, 'c');
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	TT_CHECK(last.whitelisted);
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<postmaster@x.test>");
	TT_CHECK_INT(event_('R', LIT("<c@other.test>"), &r), ==, 'c');
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	TT_CHECK(!last.whitelisted);	/* not every recipient */
	teardown();
}

static int
count_spool_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "rmilter.", 8) == 0)
			n++;
	closedir(d);
	return n;
}

static void
test_spool_spills_and_vanishes(void)
{
	char dir[] = "/tmp/rmilter-spool-XXXXXX", extra[256];
	static char chunk[3000];
	struct reply r;
	uint64_t before = spool_files_total();
	int c, seen_spool = 0;

	TT_CHECK(mkdtemp(dir) != NULL);
	snprintf(extra, sizeof(extra), "tempdir = \"%s\";\n"
	    "spool_memory_limit = 1k;", dir);
	psetup(extra);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	event_('L', LIT("X-Rmilter-Test\0spoolinfo"), &r);
	memset(chunk, 'x', sizeof(chunk));
	event_('B', chunk, sizeof(chunk), &r);
	send_frame('E', "", 0);
	while ((c = read_reply(&r) < 0 ? -1 : r.cmd) == 'h') {
		seen_spool = strncmp((const char *)r.data, "X-Rmilter-Spool",
		    15) == 0 && strstr((const char *)r.data + 16, "file=yes");
	}
	TT_CHECK_INT(c, ==, 'c');
	TT_CHECK(seen_spool);
	TT_CHECK_INT(spool_files_total(), ==, before + 1);
	TT_CHECK_INT(count_spool_files(dir), ==, 0);	/* unlinked at once */
	send_frame('A', "", 0);
	/* aborted mid-body: the spool is released too */
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	event_('L', LIT("Subject\0x"), &r);
	event_('B', chunk, sizeof(chunk), &r);
	send_frame('A', "", 0);
	pump();
	TT_CHECK_INT(spool_files_open(), ==, 0);
	teardown();
	TT_CHECK_INT(spool_files_open(), ==, 0);
	rmdir(dir);
}

/* An MTA that keeps sending events after a refusal at MAIL: the modules
 * are not asked again, the refusal is repeated at EOM (the message must
 * not slip through) and the message has exactly one record. */
static void
test_one_record_after_early_refusal(void)
{
	struct reply r;

	psetup("");
	negotiate(6, 0x1ff, 0x3ff, &r);		/* every stage answered */
	hello(&r);
	TT_CHECK_INT(event_('M', LIT("<test-reject-mail@x>"), &r), ==, 'y');
	TT_CHECK_INT(last.n, ==, 1);
	TT_CHECK_STR(last.action, "reject");
	event_('R', LIT("<b@dest>"), &r);
	/* the refusal stands at EOM too; the module is not asked again */
	TT_CHECK_INT(message(&r, "accept"), ==, 'y');
	TT_CHECK_INT(last.n, ==, 1);		/* no second record */
	send_frame('A', "", 0);
	pump();
	TT_CHECK_INT(last.n, ==, 1);
	teardown();
}

TT_MAIN(
	{ "pipeline/one_record_after_early_refusal",
	    test_one_record_after_early_refusal },
	{ "pipeline/enforce_vs_noop", test_enforce_vs_noop },
	{ "pipeline/per_rcpt_and_abort_record",
	    test_per_recipient_and_abort_record },
	{ "pipeline/templates_codes", test_templates_and_codes },
	{ "pipeline/accept_quarantine_discard",
	    test_accept_quarantine_discard },
	{ "pipeline/our_networks_unix", test_our_networks_unix },
	{ "pipeline/whitelist_every_rcpt", test_whitelist_every_rcpt },
	{ "pipeline/spool", test_spool_spills_and_vanishes },
)
