/* test_upstream.c -- the upstream layer: health (dead marking, probes,
 * revival), selection strategies, and the request engine against small
 * in-process servers on 127.0.0.1 (success, refused -> other server,
 * timeout, garbage, cancel, keep-alive reuse, in-flight cap and queue). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf_sections.h"
#include "daemon.h"
#include "log.h"
#include "spool.h"
#include "upstream.h"
#include "xmalloc.h"
#include "tt.h"

/* ---- pools from text ------------------------------------------------------ */

static struct conf_server srv_v[8];

static struct upstream_pool *
pool_make(const char *name, const char *const *hosts, const unsigned *ports,
    const unsigned *prio, size_t n, const struct upstream_params *p)
{
	struct conf_serverlist sl;
	static char text[8][64];
	size_t i;

	memset(srv_v, 0, sizeof(srv_v));
	for (i = 0; i < n; i++) {
		snprintf(text[i], sizeof(text[i]), "%s:%u", hosts[i], ports[i]);
		srv_v[i].text = text[i];
		srv_v[i].host = (char *)hosts[i];
		srv_v[i].port = ports[i];
		srv_v[i].priority = prio ? prio[i] : 0;
	}
	sl.v = srv_v;
	sl.n = n;
	return upstream_pool_new(name, &sl, p);
}

static const struct upstream_params P_DEF = {
	.connect_timeout = 500, .io_timeout = 500, .error_time = 10000,
	.dead_time = 30000, .maxerrors = 3, .attempts = 2, .retry_delay = 0,
	.max_inflight = 0, .max_queue = 16, .idle_timeout = 0,
	.strategy = UPSTREAM_ROUND_ROBIN,
};

/* ---- health ----------------------------------------------------------------- */

static void
quiet(void)
{
	log_configure(LOG_TO_STDERR, "test", "mail", NULL, LOG_LEVEL_ERROR);
}

static void
test_dead_and_probe(void)
{
	static const char *const h[] = { "10.0.0.1", "10.0.0.2" };
	static const unsigned pt[] = { 1, 2 };
	struct upstream_pool *pool = pool_make("t", h, pt, NULL, 2, &P_DEF);
	struct upstream_server *a = &pool->servers[0], *s;
	uint64_t t = 1000000;
	bool probe;
	int i;

	quiet();
	/* errors spread over more than error_time never kill */
	upstream_fail(a, false, "x", t);
	upstream_fail(a, false, "x", t + 5000);
	upstream_fail(a, false, "x", t + 20000);	/* new window */
	TT_CHECK(!a->dead);
	TT_CHECK_INT(a->errors, ==, 1);
	/* maxerrors within error_time: dead */
	upstream_fail(a, false, "x", t + 20001);
	upstream_fail(a, false, "refused", t + 20002);
	TT_CHECK(a->dead);
	TT_CHECK_INT(a->dead_until, ==, t + 20002 + 30000);
	TT_CHECK_INT(upstream_alive(pool, t + 20003), ==, 1);
	/* picks skip it while dead */
	for (i = 0; i < 4; i++) {
		s = upstream_pick(pool, NULL, 0, 0, t + 20010, &probe);
		TT_CHECK(s == &pool->servers[1] && !probe);
	}
	/* after dead_time: the next request is its probe, even with a
	 * live server around; one probe at a time */
	s = upstream_pick(pool, NULL, 0, 0, t + 60000, &probe);
	TT_CHECK(s == a && probe && a->probing);
	s = upstream_pick(pool, NULL, 0, 0, t + 60000, &probe);
	TT_CHECK(s == &pool->servers[1] && !probe);
	upstream_probe_abandon(a);
	s = upstream_pick(pool, NULL, 0, 1ULL << 1, t + 60000, &probe);
	TT_CHECK(s == a && probe && a->probing);
	s = upstream_pick(pool, NULL, 0, 1ULL << 1, t + 60001, &probe);
	TT_CHECK(s == NULL);		/* a probe is in flight */
	upstream_fail(a, true, "still refused", t + 60002);
	TT_CHECK(a->dead && !a->probing);
	TT_CHECK_INT(a->dead_until, ==, t + 60002 + 30000);
	s = upstream_pick(pool, NULL, 0, 1ULL << 1, t + 90003, &probe);
	TT_CHECK(s == a && probe);
	upstream_ok(a, true, t + 90004);
	TT_CHECK(!a->dead && !a->probing && a->errors == 0);
	upstream_pool_free(pool);
}

static void
test_single_server_probe(void)
{
	static const char *const h[] = { "10.0.0.1" };
	static const unsigned pt[] = { 1 };
	struct upstream_params p = P_DEF;
	struct upstream_pool *pool;
	struct upstream_server *s;
	bool probe;

	quiet();
	p.maxerrors = 1;
	pool = pool_make("t", h, pt, NULL, 1, &p);
	upstream_fail(&pool->servers[0], false, "x", 5000);
	TT_CHECK(pool->servers[0].dead);
	/* still used for a probe before dead_time is over (pool of one) */
	s = upstream_pick(pool, NULL, 0, 0, 6000, &probe);
	TT_CHECK(s == &pool->servers[0] && probe);
	s = upstream_pick(pool, NULL, 0, 0, 6001, &probe);
	TT_CHECK(s == NULL);		/* one at a time */
	upstream_probe_abandon(&pool->servers[0]);
	s = upstream_pick(pool, NULL, 0, 0, 6002, &probe);
	TT_CHECK(s == &pool->servers[0] && probe);
	upstream_pool_free(pool);
}

static void
test_strategies(void)
{
	static const char *const h[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	static const unsigned pt[] = { 1, 2, 3 }, prio[] = { 1, 5, 3 };
	struct upstream_params p = P_DEF;
	struct upstream_pool *pool;
	struct upstream_server *s, *first;
	unsigned seen[3] = { 0, 0, 0 }, i;
	bool probe;

	pool = pool_make("rr", h, pt, prio, 3, &p);
	for (i = 0; i < 9; i++) {
		s = upstream_pick(pool, NULL, 0, 0, 1, &probe);
		seen[s->index]++;
	}
	TT_CHECK(seen[0] == 3 && seen[1] == 3 && seen[2] == 3);
	s = upstream_pick(pool, NULL, 0, 0x3, 1, &probe);
	TT_CHECK(s == &pool->servers[2]);	/* exclusions honoured */
	TT_CHECK(upstream_pick(pool, NULL, 0, 0x7, 1, &probe) == NULL);
	upstream_pool_free(pool);

	p.strategy = UPSTREAM_MASTER_SLAVE;
	pool = pool_make("ms", h, pt, prio, 3, &p);
	TT_CHECK(upstream_pick(pool, NULL, 0, 0, 1, &probe) ==
	    &pool->servers[1]);
	pool->servers[1].dead = true;
	pool->servers[1].dead_until = 100;
	TT_CHECK(upstream_pick(pool, NULL, 0, 0, 1, &probe) ==
	    &pool->servers[2]);
	upstream_pool_free(pool);

	p.strategy = UPSTREAM_HASH;
	pool = pool_make("h", h, pt, NULL, 3, &p);
	first = upstream_pick(pool, "grey.key", 8, 0, 1, &probe);
	for (i = 0; i < 5; i++)
		TT_CHECK(upstream_pick(pool, "grey.key", 8, 0, 1, &probe) ==
		    first);
	upstream_pool_free(pool);

	p.strategy = UPSTREAM_RANDOM;
	pool = pool_make("r", h, pt, NULL, 3, &p);
	for (i = 0; i < 50; i++) {
		s = upstream_pick(pool, NULL, 0, 0x1, 1, &probe);
		TT_CHECK(s != NULL && s->index != 0);
	}
	upstream_pool_free(pool);
}

/* ---- the request engine against in-process servers ---------------------------- */

enum srv_mode { SM_OK, SM_HANG, SM_GARBAGE, SM_TWICE };

struct tsrv {
	int lfd;
	unsigned port;
	enum srv_mode mode;
	struct event *ev;
	unsigned accepted;
	int conns[16];
	struct event *cev[16];
	unsigned nconns;
};

struct tclient {
	char buf[64];
	size_t len;
	int done;
	bool ok;
	char error[200];
	unsigned attempts;
};

static struct event_base *base;

static void
tsrv_conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct tsrv *t = arg;
	char b[4096];
	ssize_t n = read(fd, b, sizeof(b));
	unsigned i;

	if (n == 0) {		/* the client closed: stop watching */
		for (i = 0; i < t->nconns; i++)
			if (t->conns[i] == fd)
				event_del(t->cev[i]);
		return;
	}
	if (n < 0)
		return;
	/* a request ends with '\n' */
	if (memchr(b, '\n', (size_t)n) == NULL)
		return;
	if (t->mode == SM_OK || t->mode == SM_TWICE)
		(void)!write(fd, "OK\n", 3);
	else if (t->mode == SM_GARBAGE)
		(void)!write(fd, "\x01\x02garbage\n", 10);
}

static void
tsrv_accept(evutil_socket_t fd, short what, void *arg)
{
	struct tsrv *t = arg;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);

	if (c < 0 || t->nconns >= 16) {
		if (c >= 0)
			close(c);
		return;
	}
	t->accepted++;
	t->conns[t->nconns] = c;
	t->cev[t->nconns] = event_new(base, c, EV_READ | EV_PERSIST,
	    tsrv_conn_read, t);
	event_add(t->cev[t->nconns], NULL);
	t->nconns++;
}

static void
tsrv_start(struct tsrv *t, enum srv_mode mode)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	memset(t, 0, sizeof(*t));
	t->mode = mode;
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	TT_CHECK(bind(t->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	TT_CHECK(listen(t->lfd, 16) == 0);
	getsockname(t->lfd, (struct sockaddr *)&sin, &len);
	t->port = ntohs(sin.sin_port);
	t->ev = event_new(base, t->lfd, EV_READ | EV_PERSIST, tsrv_accept, t);
	event_add(t->ev, NULL);
}

static void
tsrv_stop(struct tsrv *t)
{
	unsigned i;

	for (i = 0; i < t->nconns; i++) {
		event_free(t->cev[i]);
		close(t->conns[i]);
	}
	event_free(t->ev);
	close(t->lfd);
}

/* A closed port: bind, learn the port, close. */
static unsigned
closed_port(void)
{
	struct tsrv t;
	unsigned p;

	tsrv_start(&t, SM_OK);
	p = t.port;
	tsrv_stop(&t);
	return p;
}

static void
c_begin(void *ud)
{
	((struct tclient *)ud)->len = 0;
}

static enum upstream_parse
c_feed(void *ud, const uint8_t *p, size_t n, size_t *used)
{
	struct tclient *c = ud;
	size_t i;

	for (i = 0; i < n; i++) {
		if (c->len + 1 >= sizeof(c->buf)) {
			*used = i;
			return UPSTREAM_ERROR;
		}
		c->buf[c->len++] = (char)p[i];
		if (p[i] == '\n') {
			*used = i + 1;
			c->buf[c->len] = '\0';
			return strcmp(c->buf, "OK\n") == 0 ? UPSTREAM_DONE :
			    UPSTREAM_ERROR;
		}
	}
	*used = n;
	return UPSTREAM_MORE;
}

static enum upstream_parse
c_eof(void *ud)
{
	return UPSTREAM_ERROR;
}

static bool
c_keep(void *ud)
{
	return true;
}

static const char *
c_error(void *ud)
{
	return "not OK";
}

static const struct upstream_codec codec = {
	c_begin, c_feed, c_eof, c_keep, c_error
};

static void
c_done(void *ud, const struct upstream_result *r)
{
	struct tclient *c = ud;

	c->done++;
	c->ok = r->ok;
	c->attempts = r->attempts;
	snprintf(c->error, sizeof(c->error), "%s", r->error);
}

static struct upstream_req *
start(struct upstream_pool *pool, struct tclient *c, const struct spool *sp)
{
	struct upstream_payload pl;

	memset(&pl, 0, sizeof(pl));
	memset(c, 0, sizeof(*c));
	mbuf_append(&pl.head, "REQ ", 4);
	pl.body = sp;
	mbuf_append(&pl.tail, "\n", 1);
	return upstream_request(pool, &pl, &codec, c, c_done);
}

/* Runs the loop until every client is done (or 3 s pass). */
static void
run_until(struct tclient *const *cs, size_t n)
{
	uint64_t t0 = upstream_now();
	size_t i;

	for (;;) {
		bool all = true;

		for (i = 0; i < n; i++)
			all = all && cs[i]->done > 0;
		if (all || upstream_now() - t0 > 3000)
			return;
		event_base_loop(base, EVLOOP_ONCE);
	}
}

static void
test_engine_ok_refused_retry(void)
{
	struct tsrv good;
	const char *h[2] = { "127.0.0.1", "127.0.0.1" };
	unsigned pt[2];
	struct upstream_pool *pool;
	struct spool *sp = spool_new("/tmp", 0600, 1 << 20);
	struct tclient c, *cs[] = { &c };
	char err[64];
	int i;

	tsrv_start(&good, SM_OK);
	pt[0] = closed_port();
	pt[1] = good.port;
	spool_append(sp, "body", 4, err, sizeof(err));
	pool = pool_make("t", h, pt, NULL, 2, &P_DEF);
	/* whichever server comes first, the request succeeds */
	for (i = 0; i < 4; i++) {
		start(pool, &c, sp);
		TT_CHECK(c.done == 0);	/* never from upstream_request() */
		run_until(cs, 1);
		TT_CHECK(c.done == 1 && c.ok);
	}
	TT_CHECK(pool->servers[0].failures >= 1);
	/* a spool on file goes out with sendfile */
	{
		struct spool *fsp = spool_new("/tmp", 0600, 1);

		spool_append(fsp, "a longer body on file", 21, err,
		    sizeof(err));
		TT_CHECK(spool_fd(fsp) >= 0);
		start(pool, &c, fsp);
		run_until(cs, 1);
		TT_CHECK(c.done == 1 && c.ok);
		spool_free(fsp);
	}
	TT_CHECK_INT(upstream_conns_open(), ==, 0);	/* idle_timeout 0 */
	upstream_pool_free(pool);
	tsrv_stop(&good);
	spool_free(sp);
}

static void
test_engine_failures(void)
{
	struct tsrv hang, junk;
	const char *h[1] = { "127.0.0.1" };
	unsigned pt[1];
	struct upstream_params p = P_DEF;
	struct upstream_pool *pool;
	struct tclient c, *cs[] = { &c };
	uint64_t t0;

	p.io_timeout = 150;
	p.attempts = 2;
	tsrv_start(&hang, SM_HANG);
	pt[0] = hang.port;
	pool = pool_make("t", h, pt, NULL, 1, &p);
	t0 = upstream_now();
	start(pool, &c, NULL);
	run_until(cs, 1);
	TT_CHECK(c.done == 1 && !c.ok && c.attempts == 2);
	TT_CHECK(strstr(c.error, "timed out waiting for the reply") != NULL);
	TT_CHECK(upstream_now() - t0 >= 300);
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
	upstream_pool_free(pool);
	tsrv_stop(&hang);

	tsrv_start(&junk, SM_GARBAGE);
	pt[0] = junk.port;
	pool = pool_make("t", h, pt, NULL, 1, &p);
	start(pool, &c, NULL);
	run_until(cs, 1);
	TT_CHECK(c.done == 1 && !c.ok);
	TT_CHECK(strstr(c.error, "bad reply: not OK") != NULL);
	/* no servers at all */
	upstream_pool_free(pool);
	pool = pool_make("none", h, pt, NULL, 0, &p);
	start(pool, &c, NULL);
	run_until(cs, 1);
	TT_CHECK(c.done == 1 && !c.ok &&
	    strstr(c.error, "no none servers") != NULL);
	upstream_pool_free(pool);
	tsrv_stop(&junk);
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
}

static void
test_engine_cancel_keepalive_queue(void)
{
	struct tsrv hang, ok;
	const char *h[1] = { "127.0.0.1" };
	unsigned pt[1];
	struct upstream_params p = P_DEF;
	struct upstream_pool *pool;
	struct upstream_req *r;
	struct tclient a, b, *cs[] = { &a, &b };
	int i;

	/* cancel: no callback, the socket closes */
	tsrv_start(&hang, SM_HANG);
	pt[0] = hang.port;
	pool = pool_make("t", h, pt, NULL, 1, &p);
	r = start(pool, &a, NULL);
	for (i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	TT_CHECK_INT(upstream_conns_open(), ==, 1);
	upstream_request_cancel(r);
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
	for (i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	TT_CHECK(a.done == 0);
	TT_CHECK_INT(pool->servers[0].inflight, ==, 0);
	upstream_pool_free(pool);
	tsrv_stop(&hang);

	/* keep-alive: the second request reuses the connection */
	p.idle_timeout = 5000;
	p.max_inflight = 1;
	tsrv_start(&ok, SM_OK);
	pt[0] = ok.port;
	pool = pool_make("t", h, pt, NULL, 1, &p);
	start(pool, &a, NULL);
	run_until(cs, 1);
	TT_CHECK(a.ok);
	TT_CHECK_INT(upstream_conns_open(), ==, 1);	/* kept */
	start(pool, &a, NULL);
	run_until(cs, 1);
	TT_CHECK(a.ok);
	TT_CHECK_INT(ok.accepted, ==, 1);
	TT_CHECK_INT(pool->servers[0].reused, ==, 1);
	/* in-flight cap 1: the second request waits, then runs */
	start(pool, &a, NULL);
	start(pool, &b, NULL);
	TT_CHECK_INT(pool->queued, ==, 1);
	run_until(cs, 2);
	TT_CHECK(a.ok && b.ok);
	TT_CHECK_INT(pool->queued, ==, 0);
	upstream_pool_free(pool);	/* closes the kept connection */
	TT_CHECK_INT(upstream_conns_open(), ==, 0);
	tsrv_stop(&ok);
}

static void
setup(void)
{
	quiet();
	base = event_base_new();
	daemon_test_init(base, NULL);
}

static void
test_engine(void)
{
	setup();
	test_engine_ok_refused_retry();
	test_engine_failures();
	test_engine_cancel_keepalive_queue();
	upstream_shutdown();
	event_base_free(base);
}

TT_MAIN(
	{ "upstream/dead_and_probe", test_dead_and_probe },
	{ "upstream/single_server_probe", test_single_server_probe },
	{ "upstream/strategies", test_strategies },
	{ "upstream/engine", test_engine },
)
