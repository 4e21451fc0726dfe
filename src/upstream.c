/* upstream.c -- server pools: health tracking and server selection (no
 * I/O; the request engine is upstream_req.c).  See upstream.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_sections.h"
#include "log.h"
#include "upstream.h"
#include "xmalloc.h"

uint64_t
upstream_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct upstream_pool *
upstream_pool_new(const char *name, const struct conf_serverlist *sl,
    const struct upstream_params *p)
{
	struct upstream_pool *pool = xcalloc(1, sizeof(*pool));
	size_t i, n = sl->n;

	if (n > UPSTREAM_MAX_SERVERS) {
		log_warning("upstream %s: %zu servers configured, only the "
		    "first %d are used", name, n, UPSTREAM_MAX_SERVERS);
		n = UPSTREAM_MAX_SERVERS;
	}
	pool->name = xstrdup(name);
	pool->p = *p;
	if (pool->p.attempts == 0)
		pool->p.attempts = 1;
	if (pool->p.maxerrors == 0)
		pool->p.maxerrors = 1;
	pool->servers = xcalloc(n ? n : 1, sizeof(*pool->servers));
	pool->n = (unsigned)n;
	for (i = 0; i < n; i++) {
		struct upstream_server *srv = &pool->servers[i];
		const struct conf_server *cs = &sl->v[i];

		srv->pool = pool;
		srv->index = (unsigned)i;
		srv->name = xstrdup(cs->text);
		srv->host = cs->host ? xstrdup(cs->host) : NULL;
		srv->path = cs->path ? xstrdup(cs->path) : NULL;
		srv->port = cs->port;
		srv->priority = cs->priority;
	}
	/* round robin starts at a random server so that several daemons
	 * sharing one list do not all hit the first one */
	pool->rr = n ? (unsigned)random() % (unsigned)n : 0;
	return pool;
}

/* upstream_req.c closes the kept connections and lookups of a server. */
void upstream_server_release(struct upstream_server *srv);

void
upstream_pool_free(struct upstream_pool *pool)
{
	unsigned i;

	if (pool == NULL)
		return;
	for (i = 0; i < pool->n; i++) {
		struct upstream_server *srv = &pool->servers[i];

		upstream_server_release(srv);
		free(srv->name);
		free(srv->host);
		free(srv->path);
	}
	free(pool->servers);
	free(pool->name);
	free(pool);
}

void
upstream_pool_free_list(struct upstream_pool *head)
{
	while (head != NULL) {
		struct upstream_pool *next = head->next;

		upstream_pool_free(head);
		head = next;
	}
}

/* A dead server whose dead_time is over and that has no probe in flight. */
static bool
probe_due(const struct upstream_server *srv, uint64_t now)
{
	return srv->dead && !srv->probing && now >= srv->dead_until;
}

static bool
usable(const struct upstream_server *srv, uint64_t now)
{
	return !srv->dead || probe_due(srv, now);
}

unsigned
upstream_alive(const struct upstream_pool *pool, uint64_t now)
{
	unsigned i, k = 0;

	for (i = 0; i < pool->n; i++)
		if (usable(&pool->servers[i], now))
			k++;
	return k;
}

/* Jump consistent hash (Lamping & Veach): a bucket in [0, n). */
static unsigned
jump_hash(uint64_t key, unsigned n)
{
	int64_t b = -1, j = 0;

	while (j < (int64_t)n) {
		b = j;
		key = key * 2862933555777941757ULL + 1;
		j = (int64_t)((double)(b + 1) *
		    ((double)(1LL << 31) / (double)((key >> 33) + 1)));
	}
	return (unsigned)b;
}

static uint64_t
fnv1a(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

struct upstream_server *
upstream_pick(struct upstream_pool *pool, const void *key, size_t keylen,
    uint64_t exclude, uint64_t now, bool *probe)
{
	struct upstream_server *cand[UPSTREAM_MAX_SERVERS];
	struct upstream_server *srv = NULL, *soonest = NULL;
	unsigned i, k = 0;

	*probe = false;
	for (i = 0; i < pool->n; i++) {
		struct upstream_server *s = &pool->servers[i];

		if (exclude & (1ULL << i))
			continue;
		if (usable(s, now))
			cand[k++] = s;
		else if (s->dead && !s->probing &&
		    (soonest == NULL || s->dead_until < soonest->dead_until))
			soonest = s;
	}
	if (k == 0) {
		/* every allowed server is dead: probe the one due first,
		 * unless another request is probing already */
		for (i = 0; i < pool->n; i++)
			if (pool->servers[i].probing &&
			    !(exclude & (1ULL << i)))
				return NULL;
		if (soonest == NULL)
			return NULL;
		srv = soonest;
	} else {
		/* a dead server due for its probe gets this one request (if
		 * it fails, the retry goes to a live server); else the
		 * strategy picks among the live ones */
		for (i = 0; i < k && srv == NULL; i++)
			if (cand[i]->dead)
				srv = cand[i];
		if (srv != NULL)
			goto picked;
		switch (pool->p.strategy) {
		case UPSTREAM_RANDOM:
			srv = cand[(unsigned)random() % k];
			break;
		case UPSTREAM_MASTER_SLAVE:
			srv = cand[0];
			for (i = 1; i < k; i++)
				if (cand[i]->priority > srv->priority)
					srv = cand[i];
			break;
		case UPSTREAM_HASH:
			srv = cand[jump_hash(fnv1a(key, keylen), k)];
			break;
		case UPSTREAM_ROUND_ROBIN:
		default:
			/* the first candidate at or after the cursor */
			srv = cand[0];
			for (i = 0; i < k; i++)
				if (cand[i]->index >= pool->rr % pool->n) {
					srv = cand[i];
					break;
				}
			pool->rr = srv->index + 1;
			break;
		}
	}
picked:
	if (srv->dead) {
		srv->probing = true;
		*probe = true;
		log_info("upstream %s: probing %s (dead since %llu s)",
		    pool->name, srv->name, (unsigned long long)
		    ((now - (srv->dead_until - pool->p.dead_time)) / 1000));
	}
	return srv;
}

void
upstream_ok(struct upstream_server *srv, bool probe, uint64_t now)
{
	if (probe)
		srv->probing = false;
	if (srv->dead) {
		log_notice("upstream %s: %s revived (probe succeeded)",
		    srv->pool->name, srv->name);
		srv->dead = false;
	}
	srv->errors = 0;
	srv->window_start = 0;
}

void
upstream_fail(struct upstream_server *srv, bool probe, const char *why,
    uint64_t now)
{
	const struct upstream_params *p = &srv->pool->p;

	srv->failures++;
	snprintf(srv->last_error, sizeof(srv->last_error), "%s", why);
	if (probe)
		srv->probing = false;
	if (srv->dead) {
		/* a failed probe, or a request that started before the
		 * server was marked dead */
		if (probe) {
			srv->dead_until = now + p->dead_time;
			log_warning("upstream %s: %s still dead (probe failed: "
			    "%s); next probe in %llu s", srv->pool->name,
			    srv->name, why,
			    (unsigned long long)(p->dead_time / 1000));
		}
		return;
	}
	if (srv->errors == 0 || now - srv->window_start > p->error_time) {
		srv->errors = 0;
		srv->window_start = now;
	}
	srv->errors++;
	if (srv->errors >= p->maxerrors) {
		srv->dead = true;
		srv->dead_until = now + p->dead_time;
		log_warning("upstream %s: %s marked dead for %llu s after %u "
		    "error%s in %llu ms (last: %s)", srv->pool->name,
		    srv->name, (unsigned long long)(p->dead_time / 1000),
		    srv->errors, srv->errors == 1 ? "" : "s",
		    (unsigned long long)(now - srv->window_start), why);
		srv->errors = 0;
		upstream_server_release(srv);	/* kept connections too */
	}
}

void
upstream_probe_abandon(struct upstream_server *srv)
{
	srv->probing = false;
}
