/* dns_client.c -- a c-ares channel driven by the libevent loop.
 *
 * c-ares tells us through its socket-state callback which sockets it wants
 * watched (one persistent event per socket, re-made when the read/write
 * interest changes, freed when c-ares closes the socket); readiness is
 * handed back with ares_process_fd(), and one timer, re-armed from
 * ares_timeout() after every step, drives retries and timeouts.
 *
 * Answers are parsed at once (dns_answer_parse), kept in a small cache
 * for their TTL (at most an hour; cache_size answers, the oldest evicted),
 * and delivered from a zero-delay event, so a callback never runs inside dns_query() or inside
 * c-ares, and a cancelled query (callback pointer cleared) is simply freed
 * when c-ares lets go of it.
 *
 * A query for a name and type already being asked is not sent again: it
 * waits as a follower of the query in flight (its leader) and gets a copy
 * of the leader's answer, so a burst of messages from one domain on a cold
 * cache costs one DNS query, not one per message. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>
#include <event2/event.h>

#include "conf.h"
#include "conf_sections.h"
#include "daemon.h"
#include "dns_client.h"
#include "log.h"
#include "upstream.h"
#include "xmalloc.h"

struct dns_sock {
	ares_socket_t fd;
	short what;			/* EV_READ | EV_WRITE */
	struct event *ev;
	struct dns_sock *next;
};

enum dns_query_state {
	DQ_SENT = 0,		/* c-ares owns it: waiting for the answer */
	DQ_FOLLOWING,		/* waits for its leader's answer (not sent) */
	DQ_ANSWERED,		/* answer parsed, queued for delivery */
};

struct dns_query {
	struct dns_client *c;
	enum dns_query_state state;
	dns_done_fn cb;		/* NULL once cancelled */
	void *ud;
	int type;
	char *key;			/* cache key of a sent query */
	struct dns_answer ans;
	struct dns_query *dnext;	/* delivery queue */
	struct dns_query *fnext;	/* DQ_SENT: the in-flight table chain */
	struct dns_query *followers;	/* DQ_SENT: queries sharing it */
	struct dns_query *wnext;	/* DQ_FOLLOWING: next follower */
};

/* The answer cache: (type, name) -> answer until its TTL (at most
 * DNS_CACHE_MAX_TTL) runs out; the oldest entry goes when it is full.
 * TEMPFAIL answers are never kept. */
#define DNS_CACHE_BUCKETS	1024
#define DNS_CACHE_MAX_TTL	3600	/* s */

struct dns_cache_entry {
	char *key;			/* "TYPE:name", lowercase */
	struct dns_answer ans;
	uint64_t expires;		/* ms, monotonic */
	struct dns_cache_entry *hnext;	/* bucket chain */
	struct dns_cache_entry *older, *newer;
};

struct dns_client {
	struct event_base *base;
	struct dns_cache_entry *buckets[DNS_CACHE_BUCKETS];
	struct dns_query *flights[DNS_CACHE_BUCKETS];	/* sent, by key */
	struct dns_cache_entry *oldest, *newest;
	size_t ncache, cache_max;
	unsigned long hits, misses;
	ares_channel ch;
	bool ch_ok;
	struct dns_sock *socks;
	struct event *timer;
	struct event *deliver;
	struct dns_query *dhead, **dtail;
	unsigned inflight;
	bool destroying;
	bool delivering;	/* in client_on_deliver: a free waits */
	bool free_wanted;
};

static void client_destroy(struct dns_client *c);

static void client_timer_update(struct dns_client *c);

/* ---- sockets and the timer ------------------------------------------------ */

static void
client_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct dns_client *c = arg;

	ares_process_fd(c->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	client_timer_update(c);
}

static void
client_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_client *c = arg;

	ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	client_timer_update(c);
}

static void
client_timer_update(struct dns_client *c)
{
	struct timeval tv, *tvp;

	if (c->destroying)
		return;
	if ((tvp = ares_timeout(c->ch, NULL, &tv)) != NULL)
		evtimer_add(c->timer, tvp);
	else
		evtimer_del(c->timer);
}

/* c-ares: watch FD for READABLE / WRITABLE; both 0: the socket is closed. */
static void
client_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_client *c = data;
	struct dns_sock **pp, *s;
	short what = (short)((readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0));

	for (pp = &c->socks; (s = *pp) != NULL; pp = &s->next)
		if (s->fd == fd)
			break;
	if (what == 0) {
		if (s != NULL) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->next = c->socks;
		c->socks = s;
	} else if (s->what == what) {
		return;
	} else {
		event_free(s->ev);
	}
	s->what = what;
	s->ev = event_new(c->base, fd, what | EV_PERSIST, client_on_sock, c);
	event_add(s->ev, NULL);
}

/* ---- the answer cache ------------------------------------------------------------- */

static void
cache_key(const char *name, int type, char *key, size_t len)
{
	size_t n, i;

	n = (size_t)snprintf(key, len, "%d:", type);
	for (i = 0; name[i] != '\0' && n + 1 < len; i++)
		key[n++] = (char)tolower((unsigned char)name[i]);
	if (n > 0 && key[n - 1] == '.')
		n--;
	key[n] = '\0';
}

static unsigned
cache_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key != '\0'; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h % DNS_CACHE_BUCKETS;
}

static void
cache_remove(struct dns_client *c, struct dns_cache_entry *e)
{
	struct dns_cache_entry **pp = &c->buckets[cache_hash(e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	c->ncache--;
	dns_answer_free(&e->ans);
	free(e->key);
	free(e);
}

/* The live entry of KEY, or NULL (an expired one is dropped). */
static struct dns_cache_entry *
cache_find(struct dns_client *c, const char *key)
{
	struct dns_cache_entry *e;

	for (e = c->buckets[cache_hash(key)]; e != NULL; e = e->hnext)
		if (strcmp(e->key, key) == 0)
			break;
	if (e != NULL && e->expires <= upstream_now()) {
		cache_remove(c, e);
		e = NULL;
	}
	return e;
}

static void
cache_store(struct dns_client *c, const char *key, const struct dns_answer *a)
{
	struct dns_cache_entry *e;
	uint32_t ttl = a->ttl < DNS_CACHE_MAX_TTL ? a->ttl : DNS_CACHE_MAX_TTL;
	unsigned h;

	if (c->cache_max == 0 || a->status == DNS_TEMPFAIL || ttl == 0)
		return;
	if ((e = cache_find(c, key)) != NULL)
		cache_remove(c, e);
	while (c->ncache >= c->cache_max && c->oldest != NULL)
		cache_remove(c, c->oldest);
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	dns_answer_copy(&e->ans, a);
	e->expires = upstream_now() + (uint64_t)ttl * 1000;
	h = cache_hash(key);
	e->hnext = c->buckets[h];
	c->buckets[h] = e;
	e->older = c->newest;
	if (c->newest != NULL)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->ncache++;
}

void
dns_client_stats(const struct dns_client *c, unsigned long *hits,
    unsigned long *misses, size_t *cached)
{
	*hits = c->hits;
	*misses = c->misses;
	*cached = c->ncache;
}

/* ---- queries ------------------------------------------------------------------ */

static void
query_free(struct dns_query *q)
{
	dns_answer_free(&q->ans);
	free(q->key);
	free(q);
}

static void
query_queue(struct dns_client *c, struct dns_query *q)
{
	q->state = DQ_ANSWERED;
	q->dnext = NULL;
	*c->dtail = q;
	c->dtail = &q->dnext;
	event_active(c->deliver, EV_TIMEOUT, 1);
}

/* Runs the queued callbacks; a query cancelled meanwhile is only freed. */
static void
client_on_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_client *c = arg;
	struct dns_query *q;

	c->delivering = true;
	while ((q = c->dhead) != NULL && !c->free_wanted) {
		c->dhead = q->dnext;
		if (c->dhead == NULL)
			c->dtail = &c->dhead;
		if (q->cb != NULL)
			q->cb(q->ud, &q->ans);
		query_free(q);
	}
	c->delivering = false;
	if (c->free_wanted)
		client_destroy(c);
}

/* The sent query of KEY, or NULL. */
static struct dns_query *
flight_find(struct dns_client *c, const char *key)
{
	struct dns_query *q;

	for (q = c->flights[cache_hash(key)]; q != NULL; q = q->fnext)
		if (strcmp(q->key, key) == 0)
			return q;
	return NULL;
}

static void
flight_remove(struct dns_client *c, struct dns_query *q)
{
	struct dns_query **pp = &c->flights[cache_hash(q->key)];

	while (*pp != NULL && *pp != q)
		pp = &(*pp)->fnext;
	if (*pp == q)
		*pp = q->fnext;
	q->fnext = NULL;
}

/* c-ares: the query's final status (once per query). */
static void
client_on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query *q = arg, *f;
	struct dns_client *c = q->c;

	c->inflight--;
	flight_remove(c, q);
	if (!c->destroying) {
		dns_answer_parse(&q->ans, q->type, status, abuf,
		    alen > 0 ? (size_t)alen : 0);
		cache_store(c, q->key, &q->ans);
		if (q->ans.status == DNS_TEMPFAIL && timeouts > 0 &&
		    status == ARES_ETIMEOUT)
			snprintf(q->ans.why, sizeof(q->ans.why),
			    "timeout (%d tries)", timeouts);
	}
	while ((f = q->followers) != NULL) {
		q->followers = f->wnext;
		if (c->destroying || f->cb == NULL) {
			query_free(f);
			continue;
		}
		dns_answer_copy(&f->ans, &q->ans);
		query_queue(c, f);
	}
	if (c->destroying || q->cb == NULL) {
		query_free(q);
		return;
	}
	query_queue(c, q);
}

struct dns_query *
dns_query(struct dns_client *c, const char *name, int type, dns_done_fn cb,
    void *ud)
{
	struct dns_query *q = xcalloc(1, sizeof(*q)), *leader;
	struct dns_cache_entry *e;
	char key[300];
	unsigned h;

	q->c = c;
	q->cb = cb;
	q->ud = ud;
	q->type = type;
	q->state = DQ_SENT;
	cache_key(name, type, key, sizeof(key));
	if ((e = cache_find(c, key)) != NULL) {
		c->hits++;
		dns_answer_copy(&q->ans, &e->ans);
		query_queue(c, q);	/* delivered from the loop */
		return q;
	}
	if ((leader = flight_find(c, key)) != NULL) {
		c->hits++;	/* answered without a query of its own */
		q->state = DQ_FOLLOWING;
		q->wnext = leader->followers;
		leader->followers = q;
		return q;
	}
	c->misses++;
	q->key = xstrdup(key);
	h = cache_hash(key);
	q->fnext = c->flights[h];
	c->flights[h] = q;
	c->inflight++;
	ares_query(c->ch, name, 1 /* C_IN */, type, client_on_answer, q);
	client_timer_update(c);
	return q;
}

void
dns_query_cancel(struct dns_query *q)
{
	if (q != NULL)
		q->cb = NULL;	/* freed when c-ares or the queue lets go */
}

unsigned
dns_client_inflight(const struct dns_client *c)
{
	return c->inflight;
}

/* ---- the client --------------------------------------------------------------- */

struct dns_client *
dns_client_new(struct event_base *base, const char *servers,
    unsigned timeout_ms, unsigned tries, size_t cache_size, char *err,
    size_t errlen)
{
	struct dns_client *c = xcalloc(1, sizeof(*c));
	struct ares_options o;
	int rc;

	c->base = base;
	c->cache_max = cache_size;
	c->dtail = &c->dhead;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = client_sock_state;
	o.sock_state_cb_data = c;
	o.timeout = (int)(timeout_ms > 0 ? timeout_ms : 2000);
	o.tries = (int)(tries > 0 ? tries : 2);
	rc = ares_init_options(&c->ch, &o, ARES_OPT_SOCK_STATE_CB |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(c);
		return NULL;
	}
	c->ch_ok = true;
	if (servers != NULL && *servers != '\0' &&
	    (rc = ares_set_servers_ports_csv(c->ch, servers)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: nameservers '%s': %s", servers,
		    ares_strerror(rc));
		dns_client_free(c);
		return NULL;
	}
	c->timer = evtimer_new(base, client_on_timer, c);
	c->deliver = event_new(base, -1, 0, client_on_deliver, c);
	return c;
}

/* A callback may drop the last reference to the config, and with it this
 * client, while the delivery loop runs: the loop then frees it. */
void
dns_client_free(struct dns_client *c)
{
	if (c == NULL)
		return;
	if (c->delivering) {
		c->free_wanted = true;
		return;
	}
	client_destroy(c);
}

static void
client_destroy(struct dns_client *c)
{
	struct dns_query *q;
	struct dns_sock *s;

	c->destroying = true;
	if (c->ch_ok)
		ares_destroy(c->ch);	/* frees every query still sent */
	while ((q = c->dhead) != NULL) {
		c->dhead = q->dnext;
		query_free(q);
	}
	while ((s = c->socks) != NULL) {
		c->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->deliver != NULL)
		event_free(c->deliver);
	while (c->oldest != NULL)
		cache_remove(c, c->oldest);
	free(c);
}

void
dns_servers_csv(const struct conf_dns *d, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < d->nameserver.n && off < len; i++) {
		const struct conf_server *sv = &d->nameserver.v[i];
		int n;

		if (sv->host == NULL)
			continue;
		n = snprintf(buf + off, len - off, strchr(sv->host, ':') ?
		    "%s[%s]:%u" : "%s%s:%u", off > 0 ? "," : "", sv->host,
		    sv->port);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
}

struct dns_client *
dns_client_get(const struct rmilter_config *conf)
{
	struct rmilter_config *c = (struct rmilter_config *)conf;
	const struct conf_dns *d = &conf->sections->dns;
	char servers[1024], err[256];

	if (c->dns != NULL)
		return c->dns;
	if (c->dns_failed || daemon_base() == NULL)
		return NULL;
	dns_servers_csv(d, servers, sizeof(servers));
	c->dns = dns_client_new(daemon_base(), servers,
	    (unsigned)d->timeout, d->attempts, d->cache_size, err, sizeof(err));
	if (c->dns == NULL) {
		c->dns_failed = true;
		log_error("dns: %s", err);
		return NULL;
	}
	log_info("dns: resolver ready (%s, timeout %llu ms, %u attempts, "
	    "cache %u answers)", servers[0] ? servers : "/etc/resolv.conf",
	    (unsigned long long)d->timeout, d->attempts, d->cache_size);
	return c->dns;
}

void
dns_check_config(const struct rmilter_config *conf, struct conf_diag *diag)
{
	const struct conf_dns *d = &conf->sections->dns;
	struct in6_addr a6;
	struct in_addr a4;
	char msg[256];
	size_t i;

	for (i = 0; i < d->nameserver.n; i++) {
		const struct conf_server *sv = &d->nameserver.v[i];

		if (sv->host != NULL && (inet_pton(AF_INET, sv->host, &a4) == 1 ||
		    inet_pton(AF_INET6, sv->host, &a6) == 1))
			continue;
		snprintf(msg, sizeof(msg), "dns.nameserver: '%.64s' is not "
		    "an IP address (write ip[:port] or [ipv6]:port)",
		    sv->text != NULL ? sv->text : "?");
		diag->v = xrealloc(diag->v, (diag->n + 1) * sizeof(*diag->v));
		memset(&diag->v[diag->n], 0, sizeof(diag->v[diag->n]));
		diag->v[diag->n].level = CONF_DIAG_ERROR;
		diag->v[diag->n].file = xstrdup(conf->path ? conf->path :
		    "config");
		diag->v[diag->n].msg = xstrdup(msg);
		diag->n++;
		diag->nerrors++;
	}
}
