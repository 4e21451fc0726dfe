/* test_session.c -- the session state machine driven over a socketpair, as
 * an MTA would: negotiation (v2..v6), NR flags, every stage, EOM edits,
 * several messages, abort, quit-nc, asynchronous verdicts and bad input. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "milter_proto.h"
#include "milter_session.h"
#include "tt.h"

#include "harness.h"

static void
test_negotiate_v6(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	TT_CHECK_INT(rd32(r.data), ==, 6);
	/* test policy: replies at MAIL/RCPT/EOM only; no DATA/EOH/UNKNOWN */
	TT_CHECK(proto & SMFIP_NR_CONN);
	TT_CHECK(proto & SMFIP_NR_HELO);
	TT_CHECK(proto & SMFIP_NR_HDR);
	TT_CHECK(proto & SMFIP_NR_BODY);
	TT_CHECK(!(proto & SMFIP_NR_MAIL));
	TT_CHECK(!(proto & SMFIP_NR_RCPT));
	TT_CHECK(proto & SMFIP_NODATA);
	/* no spool with the default spool_memory_limit: no EOH either */
	TT_CHECK(proto & SMFIP_NOEOH);
	TT_CHECK(!(proto & SMFIP_NOHDRS));
	TT_CHECK(proto & SMFIP_SKIP);
	TT_CHECK(proto & SMFIP_HDR_LEADSPC);
	TT_CHECK((proto & ~0x1fffffu) == 0);
	/* macro lists follow (SETSYMLIST offered) */
	TT_CHECK(r.len > 12);
	TT_CHECK(rd32(r.data + 4) & SMFIF_SETSYMLIST);
	teardown();
}

static void
test_negotiate_v2_offers_less(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(2, 0x0f, 0x7f, &r);
	TT_CHECK_INT(rd32(r.data), ==, 2);
	TT_CHECK((rd32(r.data + 4) & ~0x0fu) == 0);	/* actions subset */
	TT_CHECK((proto & ~0x7fu) == 0);		/* protocol subset */
	TT_CHECK_INT(r.len, ==, 12);			/* no macro lists */
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(r.cmd, ==, 'c');
	/* v2 without NR: the header is answered */
	TT_CHECK_INT(message(&r, "addheader X-A 1"), ==, 'h');
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'c');
	teardown();
}

static void
test_plain_message_continue(void)
{
	struct reply r;

	setup(CONF_PLAIN);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	/* nothing configured: no headers, no body, no replies before EOM */
	TT_CHECK(proto & SMFIP_NOHDRS);
	TT_CHECK(proto & SMFIP_NOBODY);
	TT_CHECK(proto & SMFIP_NR_RCPT);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	send_frame('A', "", 0);
	send_frame('Q', "", 0);
	TT_CHECK(peer_closed());
	teardown();
}

static void
test_eom_edits_in_order(void)
{
	struct reply r;
	int c, n = 0;
	char seen[16] = "";

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(r.cmd, ==, 'c');
	c = message(&r, "replbody new\\nbody; addheader X-A hello; "
	    "insheader 0 X-Top top; chgheader Subject 1 s; delheader X-D 1; "
	    "chgfrom <n@test> RET=HDRS; addrcpt <c@dest>; "
	    "addrcpt <d@dest> NOTIFY=NEVER; delrcpt <b@dest>; quarantine q");
	while (c > 0 && c != 'c' && n < 15) {
		seen[n++] = (char)c;
		if (c == 'h') {	/* LEADSPC: we supply the space */
			TT_CHECK_STR((const char *)r.data, "X-A");
			TT_CHECK_STR((const char *)r.data + 4, " hello");
		}
		if (c == 'b')
			TT_CHECK(r.len == 11 &&
			    memcmp(r.data, "new\r\nbody\r\n", 11) == 0);
		c = read_reply(&r) < 0 ? -1 : r.cmd;
	}
	seen[n] = '\0';
	/* envelope edits as the module ran, then the quarantine decision, the
	 * queued header edits, and the body replacement last */
	TT_CHECK_STR(seen, "e+2-qhimmb");
	TT_CHECK_INT(c, ==, 'c');
	teardown();
}

static void
test_reject_texts(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "reject"), ==, 'y');
	TT_CHECK_STR((const char *)r.data, "550 5.7.1 Rejected by test policy");
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "tempfail 421 4.3.2 busy 50%"), ==, 'y');
	TT_CHECK_STR((const char *)r.data, "421 4.3.2 busy 50%%");
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "reject-multi"), ==, 'y');
	TT_CHECK_STR((const char *)r.data,
	    "550-5.7.1 first line\r\n550 5.7.1 second line");
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	/* a code of the wrong class is replaced, never sent as a bad frame */
	TT_CHECK_INT(message(&r, "reject 450 4.7.1 wrong class"), ==, 'y');
	TT_CHECK_STR((const char *)r.data, "550 5.7.1 wrong class");
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "discard; addheader X-A 1"), ==, 'd');
	teardown();
}

static void
test_envelope_rejects(void)
{
	struct reply r;
	char m[] = "<test-reject-mail@x>";

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<test-reject-rcpt@dest>");
	TT_CHECK_INT(r.cmd, ==, 'y');
	TT_CHECK_STR((const char *)r.data,
	    "550 5.1.1 Recipient rejected by test policy");
	TT_CHECK_INT(event_('R', "<test-tempfail-rcpt@d>", 23, &r), ==, 'y');
	TT_CHECK(r.data[0] == '4');
	TT_CHECK_INT(event_('R', "<ok@d>", 7, &r), ==, 'c');
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	send_frame('A', "", 0);
	TT_CHECK_INT(event_('M', m, sizeof(m), &r), ==, 'y');
	teardown();
}

static void
test_abort_mid_body_and_reuse(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	event_('L', "X-Rmilter-Test\0reject", 22, &r);
	event_('B', "partial", 7, &r);
	send_frame('A', "", 0);	/* abort: the reject header must not leak */
	send_frame('A', "", 0);	/* double abort outside a transaction */
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	/* quit-nc: a new connection on the same socket */
	send_frame('K', "", 0);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "accept"), ==, 'a');
	teardown();
}

static void
test_no_nr_offered_every_stage_replied(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x3ff, &r);	/* no NR bits offered */
	TT_CHECK((proto & 0x1ff000u) == 0);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(r.cmd, ==, 'c');
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	teardown();
}

static void
test_out_of_order_and_garbage(void)
{
	struct reply r;
	static const uint8_t zero[] = { 0, 0, 0, 0, 'X' };

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x3ff, &r);
	hello(&r);
	/* RCPT before MAIL: a tempfail, the session survives */
	TT_CHECK_INT(event_('R', "<b@d>", 6, &r), ==, 't');
	/* malformed MAIL (no NUL): tempfail, still alive */
	TT_CHECK_INT(event_('M', "<a@b>", 5, &r), ==, 't');
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, NULL), ==, 'c');
	send_raw(zero, sizeof(zero));	/* length 0: closed */
	TT_CHECK(peer_closed());
	teardown();

	setup(CONF_TEST);
	send_frame('M', "<a@b>", 6);	/* before OPTNEG: closed */
	TT_CHECK(peer_closed());
	teardown();

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	send_frame('Z', "", 0);		/* unknown command: closed */
	TT_CHECK(peer_closed());
	teardown();

	setup(CONF_TEST);
	send_raw("\x7f\xff\xff\xff", 4);	/* absurd length: closed */
	TT_CHECK(peer_closed());
	teardown();
}

static void
test_malformed_at_no_reply_stage(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);	/* NR_HDR negotiated */
	envelope(&r, "<a@test>", "<b@dest>");
	send_frame('L', "nonul", 5);		/* bad header, no reply */
	TT_CHECK_INT(message(&r, NULL), ==, 'y');	/* tempfail at EOM */
	TT_CHECK(r.data[0] == '4');
	teardown();
}

static void
test_async_delay(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_INT(message(&r, "delay 100; addheader X-Late yes"), ==, 'h');
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'c');
	/* close while a delay is pending: no crash, timer cancelled */
	send_frame('A', "", 0);
	mail_rcpt(&r, "<a@test>", "<b@dest>");
	event_('L', "X-Rmilter-Test\0delay 5000", 26, &r);
	send_frame('E', "", 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	teardown();
}

static void
test_split_bytes(void)
{
	struct reply r;
	struct mbuf b = { 0 };
	size_t i;

	setup(CONF_TEST);
	/* the whole OPTNEG one byte at a time */
	milter_put_frame(&b, 'O', "\0\0\0\6\0\0\1\xff\0\x1f\xff\xff", 12);
	for (i = 0; i < mbuf_avail(&b); i++) {
		send_raw(mbuf_data(&b) + i, 1);
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'O');
	mbuf_free(&b);
	teardown();
}

static void
test_skip_after_body_limit(void)
{
	struct reply r;
	static char chunk[600];

	setup("bind_socket = \"inet:1@127.0.0.1\";\ntest_policy = yes;\n"
	    "max_size = 1k;\n");
	negotiate(6, 0x1ff, 0x1fffff, &r);
	TT_CHECK(!(proto & SMFIP_NR_BODY));	/* body answered: SKIP use */
	TT_CHECK(proto & SMFIP_SKIP);
	envelope(&r, "<a@test>", "<b@dest>");
	event_('L', LIT("Subject\0x"), &r);
	memset(chunk, 'x', sizeof(chunk));
	TT_CHECK_INT(event_('B', chunk, sizeof(chunk), &r), ==, 'c');
	TT_CHECK_INT(event_('B', chunk, sizeof(chunk), &r), ==, 's');
	send_frame('E', "", 0);
	TT_CHECK_INT(read_reply(&r), ==, 0);
	TT_CHECK_INT(r.cmd, ==, 'c');
	teardown();

	/* an MTA without SKIP: plain continue, NR_BODY used */
	setup("bind_socket = \"inet:1@127.0.0.1\";\ntest_policy = yes;\n"
	    "max_size = 1k;\n");
	negotiate(6, 0x1ff, 0x1ffbff, &r);
	TT_CHECK(proto & SMFIP_NR_BODY);
	teardown();
}

static void
test_macros(void)
{
	struct reply r;

	setup(CONF_TEST);
	negotiate(6, 0x1ff, 0x3ff, &r);
	envelope(&r, "<a@test>", "<b@dest>");
	TT_CHECK_STR(milter_session_macro(sess, "j"), "mx.test");
	TT_CHECK_STR(milter_session_macro(sess, "{daemon_name}"), "mx.test");
	TT_CHECK_STR(milter_session_macro(sess, "auth_authen"), "alice");
	TT_CHECK_STR(milter_session_macro(sess, "i"), "QID1");
	TT_CHECK(milter_session_macro(sess, "{nope}") == NULL);
	/* a new MAIL stage clears RCPT macros; a broken list keeps its
	 * well-formed prefix */
	send_frame('D', LIT("M{auth_authen}\0bob\0{x}"));
	TT_CHECK_INT(event_('M', LIT("<c@test>"), &r), ==, 'c');
	TT_CHECK_STR(milter_session_macro(sess, "auth_authen"), "bob");
	TT_CHECK(milter_session_macro(sess, "i") == NULL);
	teardown();
}

TT_MAIN(
	{ "session/macros", test_macros },
	{ "session/skip_after_body_limit", test_skip_after_body_limit },
	{ "session/negotiate_v6", test_negotiate_v6 },
	{ "session/negotiate_v2", test_negotiate_v2_offers_less },
	{ "session/plain_continue", test_plain_message_continue },
	{ "session/eom_edits", test_eom_edits_in_order },
	{ "session/reject_texts", test_reject_texts },
	{ "session/envelope_rejects", test_envelope_rejects },
	{ "session/abort_reuse_quitnc", test_abort_mid_body_and_reuse },
	{ "session/no_nr_offered", test_no_nr_offered_every_stage_replied },
	{ "session/bad_input", test_out_of_order_and_garbage },
	{ "session/malformed_nr_stage", test_malformed_at_no_reply_stage },
	{ "session/async_delay", test_async_delay },
	{ "session/split_bytes", test_split_bytes },
)
