/* harness.h -- unit-test harness: a real session on one end of a
 * socketpair, driven frame by frame from the other end as an MTA would.
 * Include once per test program, after tt.h. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

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

/* not every test program uses every helper */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#pragma GCC diagnostic ignored "-Wunused-variable"

static struct event_base *base;
static struct rmilter_config *conf;
static int mta = -1;		/* our end of the socketpair */
static struct milter_session *sess;
static uint32_t proto;		/* negotiated protocol bits */
static bool harness_auth = true;	/* send {auth_authen}=alice at MAIL */

struct reply {
	uint8_t cmd;
	uint8_t data[70000];
	size_t len;
};

static void
setup(const char *config_text)
{
	struct conf_diag d;
	int sv[2];

	conf_diag_init(&d);
	conf = conf_load_buffer("test.conf", config_text, strlen(config_text),
	    &d);
	if (conf == NULL) {
		size_t i;
		char line[512];

		for (i = 0; i < d.n; i++) {
			conf_diag_format(&d.v[i], line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
	}
	conf_diag_free(&d);
	base = event_base_new();
	daemon_test_init(base, conf);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	sess = milter_session_new(base, sv[0], false, conf);
	mta = sv[1];
}

static void
teardown(void)
{
	if (mta >= 0)
		close(mta);
	mta = -1;
	/* let the session see EOF and free itself */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);
	milter_session_free_all();
	event_base_free(base);
	conf_unref(conf);
	base = NULL;
	conf = NULL;
}

static void
send_raw(const void *p, size_t n)
{
	TT_CHECK_INT(write(mta, p, n), ==, (ssize_t)n);
}

static void
send_frame(uint8_t cmd, const void *data, size_t len)
{
	struct mbuf b = { 0 };

	milter_put_frame(&b, cmd, data, len);
	send_raw(mbuf_data(&b), mbuf_avail(&b));
	mbuf_free(&b);
}

/* Runs the loop until N bytes can be read from the MTA end (2 s cap). */
static int
read_exact(uint8_t *p, size_t n)
{
	size_t got = 0;
	int i;

	for (i = 0; i < 400 && got < n; i++) {
		struct pollfd pfd = { mta, POLLIN, 0 };
		ssize_t r;

		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 5) <= 0)
			continue;
		r = read(mta, p + got, n - got);
		if (r <= 0)
			return -1;	/* closed */
		got += (size_t)r;
	}
	return got == n ? 0 : -1;
}

static int
read_reply(struct reply *r)
{
	uint8_t hdr[5];
	uint32_t len;

	if (read_exact(hdr, 5) < 0)
		return -1;
	len = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
	    ((uint32_t)hdr[2] << 8) | hdr[3];
	r->cmd = hdr[4];
	r->len = len - 1;
	if (r->len > sizeof(r->data))
		return -1;
	return r->len ? read_exact(r->data, r->len) : 0;
}

/* true if the session closed the connection (EOF within 1 s). */
static bool
peer_closed(void)
{
	uint8_t b;
	int i;

	for (i = 0; i < 200; i++) {
		struct pollfd pfd = { mta, POLLIN, 0 };

		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 5) > 0)
			return read(mta, &b, 1) == 0;
	}
	return false;
}

/* Runs the loop a few times (let the session process what was sent). */
static void
pump(void)
{
	int i;

	for (i = 0; i < 10; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

static uint32_t
rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

static void
negotiate(uint32_t version, uint32_t actions, uint32_t protocol,
    struct reply *r)
{
	uint8_t o[12];

	o[0] = (uint8_t)(version >> 24); o[1] = (uint8_t)(version >> 16);
	o[2] = (uint8_t)(version >> 8); o[3] = (uint8_t)version;
	o[4] = (uint8_t)(actions >> 24); o[5] = (uint8_t)(actions >> 16);
	o[6] = (uint8_t)(actions >> 8); o[7] = (uint8_t)actions;
	o[8] = (uint8_t)(protocol >> 24); o[9] = (uint8_t)(protocol >> 16);
	o[10] = (uint8_t)(protocol >> 8); o[11] = (uint8_t)protocol;
	send_frame('O', o, 12);
	TT_CHECK_INT(read_reply(r), ==, 0);
	TT_CHECK_INT(r->cmd, ==, 'O');
	proto = rd32(r->data + 8);
}

/* Sends CMD and, unless the milter negotiated no reply / no event,
 * expects one reply whose command byte is returned ('-' = none). */
static int
event_(uint8_t cmd, const void *data, size_t len, struct reply *r)
{
	if (proto & milter_cmd_no_bit(cmd))
		return '-';
	send_frame(cmd, data, len);
	if (proto & milter_cmd_nr_bit(cmd))
		return '-';
	if (read_reply(r) < 0)
		return -1;
	return r->cmd;
}

static const char CONF_TEST[] =
    "bind_socket = \"inet:1@127.0.0.1\";\ntest_policy = yes;\n";
static const char CONF_PLAIN[] = "bind_socket = \"inet:1@127.0.0.1\";\n";

#define LIT(s) s, sizeof(s)

/* connect + helo, once per connection */
static void
hello(struct reply *r)
{
	send_frame('D', LIT("Cj\0mx.test\0{daemon_name}\0mx.test"));
	TT_CHECK(strchr("c-", event_('C', LIT("localhost\0" "4\x8d\xb2"
	    "127.0.0.1"), r)) != NULL);
	TT_CHECK(strchr("c-", event_('H', LIT("client.test"), r)) != NULL);
}

/* mail, one rcpt; R holds the RCPT reply (if any) */
static void
mail_rcpt(struct reply *r, const char *from, const char *rcpt)
{
	char buf[256];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "%s%csize=10", from, 0) + 1;
	if (harness_auth)
		send_frame('D', LIT("M{auth_authen}\0alice"));
	else
		send_frame('D', LIT("M{mail_addr}\0a@test"));
	TT_CHECK(strchr("c-", event_('M', buf, n, r)) != NULL);
	n = strlen(rcpt) + 1;
	send_frame('D', LIT("Ri\0QID1"));
	event_('R', rcpt, n, r);
}

static void
envelope(struct reply *r, const char *from, const char *rcpt)
{
	hello(r);
	mail_rcpt(r, from, rcpt);
}

static int
message(struct reply *r, const char *hdrval)
{
	int c;

	TT_CHECK(strchr("c-", event_('T', "", 0, r)) != NULL);
	TT_CHECK(strchr("c-", event_('L', "From\0a@test", 12, r)) != NULL);
	if (hdrval != NULL) {
		char buf[512];
		size_t n = (size_t)snprintf(buf, sizeof(buf),
		    "X-Rmilter-Test%c%s", 0, hdrval) + 1;

		TT_CHECK(strchr("c-", event_('L', buf, n, r)) != NULL);
	}
	TT_CHECK(strchr("c-", event_('N', "", 0, r)) != NULL);
	TT_CHECK(strchr("cs-", event_('B', "body\r\n", 6, r)) != NULL);
	send_frame('D', LIT("Ei\0QID1"));
	send_frame('E', "", 0);
	c = read_reply(r) < 0 ? -1 : r->cmd;
	return c;
}

#endif
