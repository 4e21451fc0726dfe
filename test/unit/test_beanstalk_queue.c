/* test_beanstalk_queue.c -- the fire-and-forget beanstalk job queue against
 * small in-process beanstalkd stand-ins on 127.0.0.1: the exact bytes on
 * the wire ("use", "put 1025 0 <ttr> <n>", the data copied out of a spool
 * that is freed at once, memory and file spools), kept connections, the
 * bounds (max_queue, max_queue_bytes: drops counted), failures (JOB_TOO_BIG
 * not retried, OUT_OF_MEMORY retried on the other server, garbage, refused
 * port), a config released while its jobs are in flight, the shutdown
 * grace, and the section's load-time checks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "beanstalk.h"
#include "conf.h"
#include "conf_sections.h"
#include "daemon.h"
#include "log.h"
#include "spool.h"
#include "upstream.h"
#include "xmalloc.h"
#include "tt.h"

/* ---- a beanstalkd stand-in ------------------------------------------------- */

enum bsrv_mode {
	BM_OK,		/* USING / INSERTED <n> */
	BM_TOO_BIG,	/* JOB_TOO_BIG */
	BM_OOM,		/* OUT_OF_MEMORY */
	BM_GARBAGE,	/* a line that is no beanstalkd reply */
	BM_HANG,	/* reads, never answers */
};

struct bconn {
	int fd;
	struct event *ev;
	char in[1 << 14];
	size_t len;
};

struct bsrv {
	enum bsrv_mode mode;
	int lfd;
	unsigned port;
	struct event *ev;
	struct bconn c[8];
	unsigned nconns, accepted, puts;
	char wire[1 << 14];	/* every byte received, all connections */
	size_t wlen;
};

static struct event_base *base;

/* Answers every complete command in C's buffer. */
static void
bsrv_parse(struct bsrv *s, struct bconn *c)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->len);
		size_t used;
		unsigned pri, delay, ttr;
		unsigned long n;
		char reply[256];

		if (nl == NULL)
			return;
		used = (size_t)(nl - c->in) + 1;
		reply[0] = '\0';
		if (strncmp(c->in, "use ", 4) == 0) {
			snprintf(reply, sizeof(reply), "USING %.*s\r\n",
			    (int)(used - 6), c->in + 4);
		} else if (sscanf(c->in, "put %u %u %u %lu", &pri, &delay, &ttr,
		    &n) == 4) {
			if (c->len < used + n + 2)
				return;		/* the data is not all here */
			used += n + 2;
			s->puts++;
			if (s->mode == BM_OK)
				snprintf(reply, sizeof(reply),
				    "INSERTED %u\r\n", s->puts);
			else if (s->mode == BM_TOO_BIG)
				snprintf(reply, sizeof(reply), "JOB_TOO_BIG\r\n");
			else if (s->mode == BM_OOM)
				snprintf(reply, sizeof(reply),
				    "OUT_OF_MEMORY\r\n");
			else if (s->mode == BM_GARBAGE)
				snprintf(reply, sizeof(reply), "HELLO?\r\n");
		} else {
			snprintf(reply, sizeof(reply), "UNKNOWN_COMMAND\r\n");
		}
		if (reply[0] != '\0' && s->mode != BM_HANG)
			(void)!write(c->fd, reply, strlen(reply));
		memmove(c->in, c->in + used, c->len - used);
		c->len -= used;
	}
}

static void
bsrv_read(evutil_socket_t fd, short what, void *arg)
{
	struct bsrv *s = arg;
	struct bconn *c = NULL;
	ssize_t n;
	unsigned i;

	for (i = 0; i < s->nconns; i++)
		if (s->c[i].fd == fd)
			c = &s->c[i];
	if (c == NULL)
		return;
	n = read(fd, c->in + c->len, sizeof(c->in) - c->len);
	if (n <= 0) {
		event_del(c->ev);
		return;
	}
	if (s->wlen + (size_t)n <= sizeof(s->wire)) {
		memcpy(s->wire + s->wlen, c->in + c->len, (size_t)n);
		s->wlen += (size_t)n;
	}
	c->len += (size_t)n;
	bsrv_parse(s, c);
}

static void
bsrv_accept(evutil_socket_t fd, short what, void *arg)
{
	struct bsrv *s = arg;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);

	if (c < 0)
		return;
	if (s->nconns >= 8) {
		close(c);
		return;
	}
	s->accepted++;
	s->c[s->nconns].fd = c;
	s->c[s->nconns].len = 0;
	s->c[s->nconns].ev = event_new(base, c, EV_READ | EV_PERSIST,
	    bsrv_read, s);
	event_add(s->c[s->nconns].ev, NULL);
	s->nconns++;
}

static void
bsrv_start(struct bsrv *s, enum bsrv_mode mode)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	TT_CHECK(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	TT_CHECK(listen(s->lfd, 16) == 0);
	getsockname(s->lfd, (struct sockaddr *)&sin, &len);
	s->port = ntohs(sin.sin_port);
	s->ev = event_new(base, s->lfd, EV_READ | EV_PERSIST, bsrv_accept, s);
	event_add(s->ev, NULL);
}

static void
bsrv_stop(struct bsrv *s)
{
	unsigned i;

	for (i = 0; i < s->nconns; i++) {
		event_free(s->c[i].ev);
		close(s->c[i].fd);
	}
	event_free(s->ev);
	close(s->lfd);
}

/* ---- helpers ------------------------------------------------------------------ */

static struct rmilter_config *
conf_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct rmilter_config *
conf_text(const char *fmt, ...)
{
	struct rmilter_config *c;
	struct conf_diag d;
	char text[2048];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conf_diag_init(&d);
	c = conf_load_buffer("bs.conf", text, strlen(text), &d);
	for (i = 0; c == NULL && i < d.n; i++) {
		char line[512];

		conf_diag_format(&d.v[i], line, sizeof(line));
		fprintf(stderr, "  %s\n", line);
	}
	conf_diag_free(&d);
	TT_CHECK(c != NULL);
	return c;
}

/* A spool holding TEXT; LIMIT 0: a file spool from the first byte. */
static struct spool *
spool_of(const char *text, uint64_t limit)
{
	struct spool *sp = spool_new("/tmp", 0600, limit);
	char err[128];

	TT_CHECK(spool_append(sp, text, strlen(text), err, sizeof(err)) == 0);
	return sp;
}

static uint64_t
total(const uint64_t *v)
{
	return v[BEANSTALK_HEADERS] + v[BEANSTALK_COPY] + v[BEANSTALK_SPAM];
}

/* Runs the loop until no job is in flight (or MS pass). */
static void
run_idle(unsigned ms)
{
	struct beanstalk_counters c;
	uint64_t t0 = upstream_now();

	for (;;) {
		beanstalk_queue_counters(&c);
		if (c.inflight == 0 || upstream_now() - t0 > ms)
			return;
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

static const char MSG[] = "From: a@example.org\r\nSubject: hi\r\n\r\n"
    "body line one\r\nbody line two\r\n";
#define HDR_LEN	36	/* through the blank line */

/* ---- cases ---------------------------------------------------------------------- */

static void
test_put_bytes(void)
{
	static struct bsrv s;	/* static: large */
	struct rmilter_config *c;
	struct beanstalk_counters k0, k1;
	struct spool *sp;
	char want[1024];
	int n;

	bsrv_start(&s, BM_OK);
	c = conf_text("beanstalk { servers = 127.0.0.1:%u; copy_server = "
	    "127.0.0.1:%u; send_beanstalk_headers = yes; send_beanstalk_copy "
	    "= yes; tube = \"t-1\"; lifetime = 90s; }\n", s.port, s.port);
	if (c == NULL)
		return;
	beanstalk_queue_counters(&k0);
	/* the headers from a memory spool, freed right away */
	sp = spool_of(MSG, 1 << 20);
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_HEADERS, sp, HDR_LEN,
	    "sid1", "QID1"));
	spool_free(sp);
	run_idle(3000);
	/* the whole message from a file spool, on the kept connection */
	sp = spool_of(MSG, 0);
	TT_CHECK(spool_fd(sp) >= 0);
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_COPY, sp,
	    sizeof(MSG) - 1, "sid2", NULL));
	spool_free(sp);
	run_idle(3000);
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.sent[BEANSTALK_HEADERS] - k0.sent[BEANSTALK_HEADERS],
	    ==, 1);
	TT_CHECK_INT(k1.sent[BEANSTALK_COPY] - k0.sent[BEANSTALK_COPY], ==, 1);
	TT_CHECK_INT(total(k1.failed), ==, total(k0.failed));
	TT_CHECK_INT(k1.inflight, ==, 0);
	TT_CHECK_INT(k1.inflight_bytes, ==, 0);
	n = snprintf(want, sizeof(want), "use t-1\r\nput 1025 0 90 %d\r\n"
	    "%.*s\r\nuse t-1\r\nput 1025 0 90 %zu\r\n%s\r\n", HDR_LEN,
	    HDR_LEN, MSG, sizeof(MSG) - 1, MSG);
	TT_CHECK_INT(s.wlen, ==, n);
	TT_CHECK(s.wlen == (size_t)n && memcmp(s.wire, want, (size_t)n) == 0);
	if (s.wlen != (size_t)n || memcmp(s.wire, want, (size_t)n) != 0)
		fprintf(stderr, "  wire: \"%.*s\"\n", (int)s.wlen, s.wire);
	/* two pools (servers, copy_server) on one server: two connections */
	TT_CHECK_INT(s.accepted, ==, 2);
	conf_unref(c);
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
	bsrv_stop(&s);
}

/* the default tube: no "use"; a third job on a kept connection */
static void
test_default_tube_reuse(void)
{
	static struct bsrv s;	/* static: large */
	struct rmilter_config *c;
	struct spool *sp;
	int i;

	bsrv_start(&s, BM_OK);
	c = conf_text("beanstalk { servers = 127.0.0.1:%u; "
	    "send_beanstalk_headers = yes; }\n", s.port);
	if (c == NULL)
		return;
	sp = spool_of(MSG, 1 << 20);
	for (i = 0; i < 3; i++) {
		TT_CHECK(beanstalk_queue_put(c, BEANSTALK_HEADERS, sp, 4,
		    "sid", "Q"));
		run_idle(3000);
	}
	spool_free(sp);
	TT_CHECK_INT(s.puts, ==, 3);
	TT_CHECK_INT(s.accepted, ==, 1);
	TT_CHECK(strncmp(s.wire, "put 1025 0 172800 4\r\nFrom\r\n", 27) == 0);
	TT_CHECK(memmem(s.wire, s.wlen, "use ", 4) == NULL);
	conf_unref(c);
	bsrv_stop(&s);
}

static void
test_bounds(void)
{
	static struct bsrv s;	/* static: large */
	struct rmilter_config *c;
	struct beanstalk_counters k0, k1;
	struct spool *sp;

	bsrv_start(&s, BM_HANG);
	c = conf_text("beanstalk { servers = 127.0.0.1:%u; "
	    "send_beanstalk_headers = yes; max_queue = 2; "
	    "max_queue_bytes = 1k; timeout = 10s; }\n", s.port);
	if (c == NULL)
		return;
	beanstalk_queue_counters(&k0);
	sp = spool_of(MSG, 1 << 20);
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_HEADERS, sp, 10, "a", "Q"));
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_HEADERS, sp, 10, "b", "Q"));
	/* a third job: max_queue */
	TT_CHECK(!beanstalk_queue_put(c, BEANSTALK_HEADERS, sp, 10, "c", "Q"));
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.inflight, ==, 2);
	TT_CHECK_INT(k1.inflight_bytes, ==, 20);
	TT_CHECK_INT(k1.dropped[BEANSTALK_HEADERS] -
	    k0.dropped[BEANSTALK_HEADERS], ==, 1);
	spool_free(sp);
	/* the config goes away with its jobs in flight: they keep it */
	conf_unref(c);
	event_base_loop(base, EVLOOP_NONBLOCK);
	/* the shutdown grace (2 s) passes, then both are dropped */
	beanstalk_queue_shutdown();
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.inflight, ==, 0);
	TT_CHECK_INT(k1.dropped[BEANSTALK_HEADERS] -
	    k0.dropped[BEANSTALK_HEADERS], ==, 3);
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
	bsrv_stop(&s);

	/* max_queue_bytes: a job that alone is over it */
	bsrv_start(&s, BM_OK);
	c = conf_text("beanstalk { copy_server = 127.0.0.1:%u; "
	    "send_beanstalk_copy = yes; max_queue_bytes = 1k; }\n", s.port);
	if (c == NULL)
		return;
	{
		char big[1500];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		sp = spool_of(big, 1 << 20);
	}
	beanstalk_queue_counters(&k0);
	TT_CHECK(!beanstalk_queue_put(c, BEANSTALK_COPY, sp, 1499, "d", "Q"));
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_COPY, sp, 1024, "e", "Q"));
	spool_free(sp);
	run_idle(3000);
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.dropped[BEANSTALK_COPY] - k0.dropped[BEANSTALK_COPY],
	    ==, 1);
	TT_CHECK_INT(k1.sent[BEANSTALK_COPY] - k0.sent[BEANSTALK_COPY], ==, 1);
	conf_unref(c);
	bsrv_stop(&s);
}

static void
test_failures(void)
{
	static struct bsrv big, oom, ok, junk, closed;	/* large */
	struct rmilter_config *c;
	struct beanstalk_counters k0, k1;
	struct spool *sp;
	unsigned closed_port;

	bsrv_start(&closed, BM_OK);
	closed_port = closed.port;
	bsrv_stop(&closed);
	bsrv_start(&big, BM_TOO_BIG);
	bsrv_start(&oom, BM_OOM);
	bsrv_start(&ok, BM_OK);
	bsrv_start(&junk, BM_GARBAGE);
	sp = spool_of(MSG, 1 << 20);

	/* JOB_TOO_BIG: the job's fault, not retried.  Two jobs, two servers
	 * in turn: one job meets JOB_TOO_BIG (a retry would reach ok) */
	c = conf_text("beanstalk { copy_server = 127.0.0.1:%u, 127.0.0.1:%u; "
	    "send_beanstalk_copy = yes; }\n", big.port, ok.port);
	if (c == NULL)
		return;
	beanstalk_queue_counters(&k0);
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_COPY, sp, 20, "f", "Q"));
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_COPY, sp, 20, "f2", "Q"));
	run_idle(3000);
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.failed[BEANSTALK_COPY] - k0.failed[BEANSTALK_COPY], ==,
	    1);
	TT_CHECK_INT(k1.sent[BEANSTALK_COPY] - k0.sent[BEANSTALK_COPY], ==, 1);
	TT_CHECK_INT(big.puts, ==, 1);
	TT_CHECK_INT(ok.puts, ==, 1);
	conf_unref(c);

	/* OUT_OF_MEMORY: the server's trouble, retried on the other one.  Two
	 * jobs: one starts on oom and ends on ok, the other goes to ok */
	c = conf_text("beanstalk { spam_server = 127.0.0.1:%u, 127.0.0.1:%u; "
	    "send_beanstalk_spam = yes; maxerrors = 100; }\n", oom.port,
	    ok.port);
	if (c == NULL)
		return;
	beanstalk_queue_counters(&k0);
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_SPAM, sp, 20, "g", "Q"));
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_SPAM, sp, 20, "g2", "Q"));
	run_idle(3000);
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.sent[BEANSTALK_SPAM] - k0.sent[BEANSTALK_SPAM], ==, 2);
	TT_CHECK_INT(k1.failed[BEANSTALK_SPAM], ==, k0.failed[BEANSTALK_SPAM]);
	TT_CHECK_INT(oom.puts, ==, 1);
	TT_CHECK_INT(ok.puts, ==, 3);
	conf_unref(c);

	/* garbage, and a refused port: failed, counted */
	c = conf_text("beanstalk { servers = 127.0.0.1:%u; "
	    "send_beanstalk_headers = yes; copy_server = 127.0.0.1:%u; "
	    "send_beanstalk_copy = yes; }\n", junk.port, closed_port);
	if (c == NULL)
		return;
	beanstalk_queue_counters(&k0);
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_HEADERS, sp, 20, "h", "Q"));
	TT_CHECK(beanstalk_queue_put(c, BEANSTALK_COPY, sp, 20, "i", "Q"));
	run_idle(3000);
	beanstalk_queue_counters(&k1);
	TT_CHECK_INT(k1.failed[BEANSTALK_HEADERS] -
	    k0.failed[BEANSTALK_HEADERS], ==, 1);
	TT_CHECK_INT(k1.failed[BEANSTALK_COPY] - k0.failed[BEANSTALK_COPY], ==,
	    1);
	TT_CHECK_INT(k1.inflight, ==, 0);
	conf_unref(c);
	spool_free(sp);
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
	bsrv_stop(&big);
	bsrv_stop(&oom);
	bsrv_stop(&ok);
	bsrv_stop(&junk);
}

/* one diagnostic of D contains TEXT at LINE with LEVEL */
static bool
has_diag(const struct conf_diag *d, enum conf_diag_level level,
    unsigned line, const char *text)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].level == level && d->v[i].line == line &&
		    strstr(d->v[i].msg, text) != NULL)
			return true;
	return false;
}

static void
test_check_config(void)
{
	struct rmilter_config *c;
	struct conf_diag d;

	c = conf_text("# one\n\nbeanstalk {\n servers = 127.0.0.1;\n"
	    " send_beanstalk_headers = yes;\n tube = \"-bad\";\n"
	    " send_beanstalk_copy = yes;\n spam_server = 127.0.0.1;\n}\n");
	if (c == NULL)
		return;
	conf_diag_init(&d);
	beanstalk_check_config(c, &d);
	TT_CHECK_INT(d.nerrors, ==, 1);
	TT_CHECK(has_diag(&d, CONF_DIAG_ERROR, 3, "'-bad' is not a beanstalkd "
	    "tube name"));
	TT_CHECK(has_diag(&d, CONF_DIAG_WARNING, 3, "send_beanstalk_copy = yes "
	    "but copy_server is empty"));
	TT_CHECK(has_diag(&d, CONF_DIAG_WARNING, 3, "spam_server is set but "
	    "send_beanstalk_spam = no"));
	TT_CHECK(d.n > 0 && strcmp(d.v[0].file, "bs.conf") == 0);
	conf_diag_free(&d);
	conf_unref(c);
	/* a good section, and none at all: nothing to say */
	c = conf_text("beanstalk { servers = 127.0.0.1; "
	    "send_beanstalk_headers = yes; tube = \"a+b/c;d.e$f_g(h)\"; }\n");
	if (c == NULL)
		return;
	conf_diag_init(&d);
	beanstalk_check_config(c, &d);
	TT_CHECK_INT(d.n, ==, 0);
	conf_diag_free(&d);
	conf_unref(c);
	c = conf_text("# nothing\n");
	if (c == NULL)
		return;
	conf_diag_init(&d);
	beanstalk_check_config(c, &d);
	TT_CHECK_INT(d.n, ==, 0);
	conf_diag_free(&d);
	conf_unref(c);
}

static void
setup(void)
{
	log_configure(LOG_TO_STDERR, "test", "mail", NULL, LOG_LEVEL_ERROR);
	base = event_base_new();
	daemon_test_init(base, NULL);
}

static void
test_queue(void)
{
	setup();
	test_put_bytes();
	test_default_tube_reuse();
	test_bounds();
	test_failures();
	upstream_shutdown();
	event_base_free(base);
}

TT_MAIN(
	{ "beanstalk_queue/all", test_queue },
	{ "beanstalk_queue/check_config", test_check_config },
)
