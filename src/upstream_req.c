/* upstream_req.c -- the request engine of the upstream layer: non-blocking
 * connect, write, read with deadlines, retries on another server, kept
 * connections, a per-server in-flight cap with a bounded queue.  See the
 * contract in upstream.h.
 *
 * Every request is in exactly one state:
 *   QUEUED      waiting for a free slot (pool queue, timer = wait limit)
 *   RESOLVING   waiting for the host name lookup of its server
 *   CONNECTING  socket connecting (conn->ev EV_WRITE, connect_timeout)
 *   EXCHANGE    writing the request / reading the reply (io_timeout)
 *   DELAY       waiting retry_delay before retrying the same server
 *   FINISHED    outcome known; the timer fires the callback next turn */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include "daemon.h"
#include "log.h"
#include "spool.h"
#include "upstream.h"
#include "xmalloc.h"

#define RESOLVE_TTL_MS	60000	/* host name lookups are reused this long */
#define READ_CHUNK	65536

enum req_state {
	RQ_NEW = 0, RQ_QUEUED, RQ_RESOLVING, RQ_CONNECTING, RQ_EXCHANGE,
	RQ_DELAY, RQ_FINISHED
};

struct upstream_conn {
	int fd;
	struct event ev;
	struct upstream_server *srv;
	struct upstream_req *req;	/* NULL while idle */
	struct upstream_conn *next;	/* idle list */
	bool reused;
};

struct dns_wait {			/* a lookup's callback argument */
	struct upstream_req *req;	/* NULL once the request went away */
	struct upstream_server *srv;
};

struct upstream_req {
	struct upstream_pool *pool;
	const struct upstream_codec *codec;
	void *ud;
	upstream_done_fn done;
	struct upstream_payload pl;
	uint64_t body_size;
	uint64_t total;			/* bytes to write per attempt */
	uint64_t wpos;
	enum req_state state;
	struct upstream_server *srv;	/* the current attempt's server */
	bool probe;
	bool slot;			/* counted in srv->inflight */
	struct upstream_conn *conn;
	struct dns_wait *dns;
	uint64_t tried;			/* servers tried (bit per index) */
	unsigned attempts;
	bool got_reply_bytes;
	bool stale_retry_used;
	uint64_t t_start;
	uint64_t deadline;
	struct event timer;
	struct upstream_req *qnext, *qprev;
	struct upstream_result res;
};

static unsigned conns_open;
static struct evdns_base *dns_base;
/* what upstream_resolver_configure() was last given */
static struct {
	char servers[1024];	/* "" = /etc/resolv.conf */
	uint64_t timeout_ms;
	unsigned attempts;
} resolver = { "", 0, 0 };

static void req_attempt(struct upstream_req *req);
static void req_fail_attempt(struct upstream_req *req, bool count,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void conn_io(evutil_socket_t fd, short what, void *arg);
static void pool_pump(struct upstream_pool *pool);
static bool resolve(struct upstream_req *req);

unsigned
upstream_conns_open(void)
{
	return conns_open;
}

/* ---- connections ------------------------------------------------------ */

static void
conn_close(struct upstream_conn *c)
{
	if (c == NULL)
		return;
	event_del(&c->ev);
	close(c->fd);
	conns_open--;
	free(c);
}

static void
idle_event(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *c = arg, **pp;
	struct upstream_server *srv = c->srv;

	/* readable (peer closed, or stray bytes) or idle too long */
	for (pp = &srv->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			srv->nidle--;
			break;
		}
	conn_close(c);
}

static void
conn_keep(struct upstream_conn *c)
{
	struct upstream_server *srv = c->srv;
	const struct upstream_params *p = &srv->pool->p;
	unsigned cap = p->max_inflight ? p->max_inflight : 16;
	struct timeval tv;

	c->req = NULL;
	event_del(&c->ev);
	if (p->idle_timeout == 0 || srv->nidle >= cap) {
		conn_close(c);
		return;
	}
	tv.tv_sec = (time_t)(p->idle_timeout / 1000);
	tv.tv_usec = (suseconds_t)(p->idle_timeout % 1000) * 1000;
	event_assign(&c->ev, daemon_base(), c->fd, EV_READ, idle_event, c);
	event_add(&c->ev, &tv);
	c->next = srv->idle;
	srv->idle = c;
	srv->nidle++;
}

void upstream_server_release(struct upstream_server *srv);

void
upstream_server_release(struct upstream_server *srv)
{
	while (srv->idle != NULL) {
		struct upstream_conn *c = srv->idle;

		srv->idle = c->next;
		conn_close(c);
	}
	srv->nidle = 0;
}

/* Points DNS_BASE at the configured nameservers (or resolv.conf's) and
 * sets its timeout and attempts. */
static void
resolver_apply(void)
{
	char list[sizeof(resolver.servers)], *tok, *save = NULL, v[32];

	if (resolver.servers[0] != '\0') {
		memcpy(list, resolver.servers, sizeof(list));
		for (tok = strtok_r(list, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save))
			if (evdns_base_nameserver_ip_add(dns_base, tok) != 0)
				log_warning("upstream resolver: cannot use "
				    "nameserver %s", tok);
	} else if (evdns_base_resolv_conf_parse(dns_base,
	    DNS_OPTION_NAMESERVERS, "/etc/resolv.conf") != 0) {
		log_warning("upstream resolver: no nameserver in "
		    "/etc/resolv.conf");
	}
	if (resolver.timeout_ms > 0) {
		snprintf(v, sizeof(v), "%.3f", resolver.timeout_ms / 1000.0);
		(void)evdns_base_set_option(dns_base, "timeout:", v);
	}
	if (resolver.attempts > 0) {
		snprintf(v, sizeof(v), "%u", resolver.attempts);
		(void)evdns_base_set_option(dns_base, "attempts:", v);
	}
}

void
upstream_resolver_configure(const char *servers, uint64_t timeout_ms,
    unsigned attempts)
{
	if (servers == NULL)
		servers = "";
	if (strcmp(servers, resolver.servers) == 0 &&
	    timeout_ms == resolver.timeout_ms && attempts == resolver.attempts)
		return;
	snprintf(resolver.servers, sizeof(resolver.servers), "%s", servers);
	resolver.timeout_ms = timeout_ms;
	resolver.attempts = attempts;
	if (dns_base == NULL)
		return;		/* applied when it is made */
	evdns_base_clear_nameservers_and_suspend(dns_base);
	resolver_apply();
	evdns_base_resume(dns_base);
}

void
upstream_shutdown(void)
{
	if (dns_base != NULL) {
		evdns_base_free(dns_base, 1);
		dns_base = NULL;
	}
}

/* ---- request lifetime ------------------------------------------------- */

static void
queue_remove(struct upstream_req *req)
{
	struct upstream_pool *pool = req->pool;

	if (req->qprev != NULL)
		req->qprev->qnext = req->qnext;
	else
		pool->queue_head = req->qnext;
	if (req->qnext != NULL)
		req->qnext->qprev = req->qprev;
	else
		pool->queue_tail = req->qprev;
	req->qnext = req->qprev = NULL;
	pool->queued--;
}

/* Gives back the server slot (and the probe) of the current attempt. */
static void
req_release_server(struct upstream_req *req, bool abandoned)
{
	struct upstream_server *srv = req->srv;

	if (srv == NULL)
		return;
	if (req->slot) {
		srv->inflight--;
		req->slot = false;
	}
	if (abandoned && req->probe)
		upstream_probe_abandon(srv);
	req->probe = false;
	req->srv = NULL;
	pool_pump(req->pool);
}

/* Stops whatever the request is doing (no callback). */
static void
req_stop(struct upstream_req *req)
{
	evtimer_del(&req->timer);
	if (req->state == RQ_QUEUED)
		queue_remove(req);
	if (req->dns != NULL) {
		req->dns->req = NULL;	/* the lookup's callback frees it */
		req->dns = NULL;
	}
	conn_close(req->conn);
	req->conn = NULL;
	req_release_server(req, true);
}

static void
req_free(struct upstream_req *req)
{
	mbuf_free(&req->pl.head);
	mbuf_free(&req->pl.tail);
	free(req);
}

static void
finish_fire(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *req = arg;

	req->res.ms = (double)(upstream_now() - req->t_start);
	req->done(req->ud, &req->res);
	req_free(req);
}

/* The outcome is known: the callback runs on the next loop turn. */
static void
req_finish(struct upstream_req *req, bool ok)
{
	static const struct timeval zero;

	req_stop(req);
	req->res.ok = ok;
	req->res.attempts = req->attempts;
	req->state = RQ_FINISHED;
	evtimer_assign(&req->timer, daemon_base(), finish_fire, req);
	evtimer_add(&req->timer, &zero);
}

void
upstream_request_cancel(struct upstream_req *req)
{
	if (req == NULL)
		return;
	req_stop(req);
	req_free(req);
}

/* ---- queue ------------------------------------------------------------ */

static void
queue_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *req = arg;
	struct upstream_pool *pool = req->pool;

	queue_remove(req);
	req->state = RQ_NEW;
	snprintf(req->res.error, sizeof(req->res.error),
	    "no free connection to any %s server within %.1f s "
	    "(max_inflight = %u per server)", pool->name,
	    (double)pool->p.io_timeout / 1000.0, pool->p.max_inflight);
	req_finish(req, false);
}

static void
queue_add(struct upstream_req *req)
{
	struct upstream_pool *pool = req->pool;
	struct timeval tv;

	if (pool->queued >= pool->p.max_queue) {
		snprintf(req->res.error, sizeof(req->res.error),
		    "%u %s requests already waiting for a connection",
		    pool->queued, pool->name);
		req_finish(req, false);
		return;
	}
	req->state = RQ_QUEUED;
	req->qprev = pool->queue_tail;
	req->qnext = NULL;
	if (pool->queue_tail != NULL)
		pool->queue_tail->qnext = req;
	else
		pool->queue_head = req;
	pool->queue_tail = req;
	pool->queued++;
	tv.tv_sec = (time_t)(pool->p.io_timeout / 1000);
	tv.tv_usec = (suseconds_t)(pool->p.io_timeout % 1000) * 1000;
	evtimer_assign(&req->timer, daemon_base(), queue_timeout, req);
	evtimer_add(&req->timer, &tv);
}

/* A slot was freed: start waiting requests while there is room. */
static void
pool_pump(struct upstream_pool *pool)
{
	unsigned guard = pool->queued;

	while (pool->queue_head != NULL && guard-- > 0) {
		struct upstream_req *req = pool->queue_head;
		unsigned i;
		bool room = false;

		for (i = 0; i < pool->n && !room; i++)
			room = pool->p.max_inflight == 0 ||
			    pool->servers[i].inflight < pool->p.max_inflight;
		if (!room)
			return;
		queue_remove(req);
		evtimer_del(&req->timer);
		req->state = RQ_NEW;
		req_attempt(req);
		if (req->state == RQ_QUEUED)
			return;		/* went back: no usable room */
	}
}

/* ---- attempts --------------------------------------------------------- */

static void req_go(struct upstream_req *req);

static void
timer_retry_same(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *req = arg;

	req->state = RQ_NEW;
	req_go(req);
}

static void
set_deadline_event(struct upstream_req *req, short what)
{
	struct upstream_conn *c = req->conn;
	uint64_t now = upstream_now();
	uint64_t left = req->deadline > now ? req->deadline - now : 0;
	struct timeval tv;

	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	event_del(&c->ev);
	event_assign(&c->ev, daemon_base(), c->fd, what, conn_io, c);
	event_add(&c->ev, &tv);
}

/* Writes what the socket takes: 1 all written, 0 would block, -1 error. */
static int
req_write(struct upstream_req *req)
{
	struct upstream_payload *pl = &req->pl;
	size_t hlen = mbuf_avail(&pl->head);
	int fd = req->conn->fd;

	while (req->wpos < req->total) {
		size_t mlen = 0;
		const uint8_t *mem = pl->body != NULL ?
		    spool_memory(pl->body, &mlen) : NULL;
		ssize_t n;

		if (pl->body == NULL || mem != NULL) {
			/* all in memory: head, body and tail in one call */
			struct iovec iov[3];
			struct msghdr mh;
			const uint8_t *part[3] = { mbuf_data(&pl->head), mem,
			    mbuf_data(&pl->tail) };
			uint64_t plen[3] = { hlen, req->body_size,
			    mbuf_avail(&pl->tail) }, at = 0;
			int k, niov = 0;

			for (k = 0; k < 3; k++) {
				if (req->wpos < at + plen[k] && plen[k] > 0) {
					uint64_t skip = req->wpos > at ?
					    req->wpos - at : 0;

					iov[niov].iov_base = (void *)(part[k] +
					    skip);
					iov[niov].iov_len = (size_t)(plen[k] -
					    skip);
					niov++;
				}
				at += plen[k];
			}
			memset(&mh, 0, sizeof(mh));
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)niov;
			n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		} else if (req->wpos < hlen) {
			n = send(fd, mbuf_data(&pl->head) + req->wpos,
			    hlen - req->wpos, MSG_NOSIGNAL);
		} else if (req->wpos < hlen + req->body_size) {
			/* a file spool: sendfile, 1 MiB at a time */
			off_t o = (off_t)(req->wpos - hlen);
			uint64_t left = req->body_size - (uint64_t)o;

			n = sendfile(fd, spool_fd(pl->body), &o,
			    left > (1u << 20) ? (1u << 20) : (size_t)left);
			if (n == 0) {
				errno = EIO;	/* the spool shrank */
				return -1;
			}
		} else {
			uint64_t off = req->wpos - hlen - req->body_size;

			n = send(fd, mbuf_data(&pl->tail) + off,
			    mbuf_avail(&pl->tail) - off, MSG_NOSIGNAL);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		req->wpos += (uint64_t)n;
	}
	return 1;
}

static void
req_success(struct upstream_req *req, bool keep)
{
	struct upstream_conn *c = req->conn;
	struct upstream_server *srv = req->srv;

	upstream_ok(srv, req->probe, upstream_now());
	req->probe = false;
	req->conn = NULL;
	snprintf(req->res.error, sizeof(req->res.error), "%s", "");
	req->res.server = srv->name;
	if (keep)
		conn_keep(c);
	else
		conn_close(c);
	req_finish(req, true);
}

/* The exchange made progress or timed out. */
static void
exchange_step(struct upstream_req *req, short what)
{
	struct upstream_conn *c = req->conn;
	const struct upstream_codec *codec = req->codec;
	uint8_t buf[READ_CHUNK];

	if (what & EV_TIMEOUT) {
		if (req->wpos < req->total)
			req_fail_attempt(req, true, "timed out sending the "
			    "request (%.1f s)",
			    (double)req->pool->p.io_timeout / 1000.0);
		else
			req_fail_attempt(req, true, "timed out waiting for the "
			    "reply (%.1f s)",
			    (double)req->pool->p.io_timeout / 1000.0);
		return;
	}
	if (req->wpos < req->total) {
		int w = req_write(req);

		if (w < 0) {
			bool stale = c->reused && !req->stale_retry_used &&
			    (errno == EPIPE || errno == ECONNRESET);

			req_fail_attempt(req, !stale, "sending the request: %s",
			    strerror(errno));
			return;
		}
		if (w == 0) {
			set_deadline_event(req, EV_WRITE);
			return;
		}
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		enum upstream_parse rc;
		size_t off = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_deadline_event(req, EV_READ);
				return;
			}
			req_fail_attempt(req, !(c->reused &&
			    !req->got_reply_bytes && !req->stale_retry_used &&
			    errno == ECONNRESET),
			    "reading the reply: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			if (!req->got_reply_bytes && c->reused &&
			    !req->stale_retry_used) {
				req_fail_attempt(req, false, "kept connection "
				    "closed by the server");
				return;
			}
			rc = codec->eof(req->ud);
			if (rc == UPSTREAM_DONE) {
				req_success(req, false);
				return;
			}
			if (!req->got_reply_bytes)
				req_fail_attempt(req, true, "connection closed "
				    "without a reply");
			else
				req_fail_attempt(req, true, "%s",
				    codec->error(req->ud));
			return;
		}
		req->got_reply_bytes = true;
		while (off < (size_t)n) {
			size_t used = 0;

			rc = codec->feed(req->ud, buf + off, (size_t)n - off,
			    &used);
			off += used;
			if (rc == UPSTREAM_ERROR) {
				req_fail_attempt(req, true, "bad reply: %s",
				    codec->error(req->ud));
				return;
			}
			if (rc == UPSTREAM_DONE) {
				/* bytes after the reply: do not reuse */
				req_success(req, off == (size_t)n &&
				    codec->keepalive != NULL &&
				    codec->keepalive(req->ud));
				return;
			}
			if (used == 0)
				break;
		}
	}
}

static void
exchange_start(struct upstream_req *req)
{
	req->state = RQ_EXCHANGE;
	req->wpos = 0;
	req->got_reply_bytes = false;
	req->deadline = upstream_now() + req->pool->p.io_timeout;
	req->codec->begin(req->ud);
	exchange_step(req, EV_WRITE);
}

static void
conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *c = arg;
	struct upstream_req *req = c->req;

	if (req->state == RQ_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (what & EV_TIMEOUT) {
			req_fail_attempt(req, true, "timed out connecting "
			    "(%.1f s)",
			    (double)req->pool->p.connect_timeout / 1000.0);
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			req_fail_attempt(req, true, "connect: %s",
			    strerror(err));
			return;
		}
		exchange_start(req);
		return;
	}
	exchange_step(req, what);
}

static void
req_connect(struct upstream_req *req)
{
	struct upstream_server *srv = req->srv;
	struct sockaddr_un sun;
	const struct sockaddr *sa;
	socklen_t salen;
	struct upstream_conn *c;
	int fd, one = 1;

	if (srv->path != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(srv->path) >= sizeof(sun.sun_path)) {
			req_fail_attempt(req, true, "socket path too long");
			return;
		}
		memcpy(sun.sun_path, srv->path, strlen(srv->path));
		sa = (const struct sockaddr *)&sun;
		salen = sizeof(sun);
	} else {
		sa = (const struct sockaddr *)&srv->addr;
		salen = srv->addrlen;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		req_fail_attempt(req, false, "socket: %s", strerror(errno));
		return;
	}
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->srv = srv;
	c->req = req;
	conns_open++;
	event_assign(&c->ev, daemon_base(), fd, EV_WRITE, conn_io, c);
	req->conn = c;
	if (connect(fd, sa, salen) == 0) {
		exchange_start(req);
		return;
	}
	if (errno != EINPROGRESS) {
		req_fail_attempt(req, true, "connect: %s", strerror(errno));
		return;
	}
	req->state = RQ_CONNECTING;
	req->deadline = upstream_now() + req->pool->p.connect_timeout;
	set_deadline_event(req, EV_WRITE);
}

/* The attempt failed.  COUNT: the server is to blame (health); a kept
 * connection the server had closed is not counted and is retried once on a
 * fresh connection without using an attempt. */
static void
req_fail_attempt(struct upstream_req *req, bool count, const char *fmt, ...)
{
	struct upstream_server *srv = req->srv;
	bool stale = !count && req->conn != NULL && req->conn->reused &&
	    !req->stale_retry_used;
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	conn_close(req->conn);
	req->conn = NULL;
	if (stale) {
		req->stale_retry_used = true;
		log_debug("upstream %s: %s: %s; retrying on a new connection",
		    req->pool->name, srv->name, why);
		if (resolve(req))
			req_connect(req);
		return;
	}
	snprintf(req->res.error, sizeof(req->res.error), "%s: %s", srv->name,
	    why);
	log_info("upstream %s: %s: %s (attempt %u of %u)", req->pool->name,
	    srv->name, why, req->attempts, req->pool->p.attempts);
	if (count)
		upstream_fail(srv, req->probe, why, upstream_now());
	else if (req->probe)
		upstream_probe_abandon(srv);
	req->probe = false;
	req_release_server(req, false);
	req->state = RQ_NEW;
	req_attempt(req);
}

static void
dns_done(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct dns_wait *w = arg;
	struct upstream_req *req = w->req;
	struct upstream_server *srv = w->srv;

	if (req == NULL) {		/* the request went away */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		free(w);
		return;
	}
	req->dns = NULL;
	free(w);
	srv->dns = NULL;
	if (result != 0 || ai == NULL) {
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		req_fail_attempt(req, true, "cannot resolve %s: %s",
		    srv->host, evutil_gai_strerror(result));
		return;
	}
	memcpy(&srv->addr, ai->ai_addr, ai->ai_addrlen);
	srv->addrlen = (socklen_t)ai->ai_addrlen;
	srv->resolved_at = upstream_now();
	evutil_freeaddrinfo(ai);
	req_connect(req);
}

/* Fills srv->addr for a numeric host now; otherwise starts a lookup
 * (returns false: the request continues in dns_done). */
static bool
resolve(struct upstream_req *req)
{
	struct upstream_server *srv = req->srv;
	struct sockaddr_in *sin = (struct sockaddr_in *)&srv->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&srv->addr;
	struct evutil_addrinfo hints;
	char port[8];
	struct dns_wait *w;

	if (srv->path != NULL)
		return true;
	if (srv->addrlen != 0 && (srv->resolved_at == 0 ||
	    upstream_now() - srv->resolved_at < RESOLVE_TTL_MS))
		return true;
	memset(&srv->addr, 0, sizeof(srv->addr));
	if (inet_pton(AF_INET, srv->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)srv->port);
		srv->addrlen = sizeof(*sin);
		srv->resolved_at = 0;	/* never expires */
		return true;
	}
	if (inet_pton(AF_INET6, srv->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)srv->port);
		srv->addrlen = sizeof(*sin6);
		srv->resolved_at = 0;
		return true;
	}
	if (dns_base == NULL &&
	    (dns_base = evdns_base_new(daemon_base(),
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) != NULL)
		resolver_apply();
	if (dns_base == NULL) {
		req_fail_attempt(req, false, "no resolver for %s", srv->host);
		return false;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", srv->port);
	w = xcalloc(1, sizeof(*w));
	w->req = req;
	w->srv = srv;
	req->dns = w;
	req->state = RQ_RESOLVING;
	srv->dns = evdns_getaddrinfo(dns_base, srv->host, port, &hints,
	    dns_done, w);
	return false;
}

/* One more try, on a server not tried yet if one is usable. */
static void
req_attempt(struct upstream_req *req)
{
	struct upstream_pool *pool = req->pool;
	uint64_t now = upstream_now(), full = 0;
	struct upstream_server *srv;
	bool probe, same = false;
	unsigned i;

	if (req->attempts >= pool->p.attempts) {
		req_finish(req, false);
		return;
	}
	for (i = 0; i < pool->n; i++)
		if (pool->p.max_inflight != 0 &&
		    pool->servers[i].inflight >= pool->p.max_inflight)
			full |= 1ULL << i;
	srv = upstream_pick(pool, NULL, 0, req->tried | full, now, &probe);
	if (srv == NULL && req->tried != 0) {
		/* every other server was tried: the same one again */
		srv = upstream_pick(pool, NULL, 0, full, now, &probe);
		same = srv != NULL;
	}
	if (srv == NULL) {
		if (full != 0 && upstream_alive(pool, now) > 0) {
			queue_add(req);
			return;
		}
		if (req->res.error[0] == '\0') {
			if (pool->n == 0)
				snprintf(req->res.error, sizeof(req->res.error),
				    "no %s servers configured", pool->name);
			else
				snprintf(req->res.error, sizeof(req->res.error),
				    "every %s server is dead (a probe is in "
				    "flight)", pool->name);
		}
		req_finish(req, false);
		return;
	}
	req->srv = srv;
	req->probe = probe;
	req->slot = true;
	srv->inflight++;
	srv->requests++;
	req->attempts++;
	req->tried |= 1ULL << srv->index;
	req->res.server = srv->name;
	if (same && pool->p.retry_delay > 0) {
		struct timeval tv;

		tv.tv_sec = (time_t)(pool->p.retry_delay / 1000);
		tv.tv_usec = (suseconds_t)(pool->p.retry_delay % 1000) * 1000;
		req->state = RQ_DELAY;
		evtimer_assign(&req->timer, daemon_base(), timer_retry_same,
		    req);
		evtimer_add(&req->timer, &tv);
		return;
	}
	req_go(req);
}

/* Starts the attempt on req->srv: a kept connection, or a new one. */
static void
req_go(struct upstream_req *req)
{
	struct upstream_server *srv = req->srv;

	if (srv->idle != NULL) {
		struct upstream_conn *c = srv->idle;

		srv->idle = c->next;
		srv->nidle--;
		c->next = NULL;
		event_del(&c->ev);
		c->req = req;
		c->reused = true;
		srv->reused++;
		req->conn = c;
		event_assign(&c->ev, daemon_base(), c->fd, EV_WRITE, conn_io, c);
		exchange_start(req);
		return;
	}
	if (resolve(req))
		req_connect(req);
}

struct upstream_req *
upstream_request(struct upstream_pool *pool, struct upstream_payload *pl,
    const struct upstream_codec *codec, void *ud, upstream_done_fn done)
{
	struct upstream_req *req = xcalloc(1, sizeof(*req));

	req->pool = pool;
	req->codec = codec;
	req->ud = ud;
	req->done = done;
	req->pl = *pl;
	memset(pl, 0, sizeof(*pl));
	req->body_size = req->pl.body != NULL ? spool_size(req->pl.body) : 0;
	req->total = mbuf_avail(&req->pl.head) + req->body_size +
	    mbuf_avail(&req->pl.tail);
	req->t_start = upstream_now();
	req->res.server = "";
	evtimer_assign(&req->timer, daemon_base(), finish_fire, req);
	req_attempt(req);
	return req;
}
