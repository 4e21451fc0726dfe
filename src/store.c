/* store.c -- the policy store: per-role choice of backend, the config's
 * cache of Redis stores, and the operations dispatching to the backend
 * (store_mem.c, store_redis.c).  See store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_sections.h"
#include "daemon.h"
#include "store_internal.h"
#include "xmalloc.h"

/* The config's list of stores.  With RMILTER_CONFIG_HAS_STORES (conf.h),
 * it is the field `struct store *stores` of struct rmilter_config, freed by
 * conf_unref() through store_free_list().  Without it, a private cache
 * keeps a reference to each config it serves and lets go of a config (and
 * its stores) once that reference is the last one: checked at each
 * store_get(), and at store_shutdown(). */
#ifdef RMILTER_CONFIG_HAS_STORES
static struct store **
conf_stores(const struct rmilter_config *conf)
{
	/* a cache of the (otherwise read-only) config, like its pools */
	return &((struct rmilter_config *)conf)->stores;
}

static void
cache_free_all(void)
{
}
#else
struct store_cache {
	struct rmilter_config *conf;	/* one reference held */
	struct store *stores;
	struct store_cache *next;
};

static struct store_cache *caches;

static struct store **
conf_stores(const struct rmilter_config *conf)
{
	struct store_cache **pp, *c;

	for (pp = &caches; (c = *pp) != NULL;) {
		if (c->conf != conf && c->conf->refcnt == 1) {
			*pp = c->next;
			store_free_list(c->stores);
			conf_unref(c->conf);
			free(c);
			continue;
		}
		pp = &c->next;
	}
	for (c = caches; c != NULL; c = c->next)
		if (c->conf == conf)
			return &c->stores;
	c = xcalloc(1, sizeof(*c));
	c->conf = conf_ref((struct rmilter_config *)conf);
	c->next = caches;
	caches = c;
	return &c->stores;
}

static void
cache_free_all(void)
{
	while (caches != NULL) {
		struct store_cache *c = caches;

		caches = c->next;
		store_free_list(c->stores);
		conf_unref(c->conf);
		free(c);
	}
}
#endif

/* ---- stores -------------------------------------------------------------- */

struct store *
store_new(const struct store_backend *be, void *priv, const char *sig)
{
	struct store *st = xcalloc(1, sizeof(*st));

	st->be = be;
	st->priv = priv;
	st->sig = xstrdup(sig != NULL ? sig : "");
	return st;
}

const char *
store_kind(const struct store *st)
{
	return st->be->kind;
}

static void
op_unlink(struct store_op *op)
{
	struct store *st = op->st;

	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (st != NULL && st->ops == op)
		st->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
}

/* The backend's state, the timer, the op. */
static void
op_free(struct store_op *op)
{
	op->backend->cancel(op);
	if (op->timer != NULL)
		event_free(op->timer);
	free(op);
}

void
store_free(struct store *st)
{
	if (st == NULL || st == store_mem_store())
		return;
	while (st->ops != NULL) {
		struct store_op *op = st->ops;

		op_unlink(op);
		op_free(op);
	}
	st->be->free(st);
	free(st->sig);
	free(st);
}

void
store_free_list(struct store *head)
{
	while (head != NULL) {
		struct store *next = head->next;

		store_free(head);
		head = next;
	}
}

void
store_shutdown(void)
{
	cache_free_all();
	store_mem_reset();
}

static const struct conf_serverlist *
role_servers(const struct conf_redis *r, enum store_role role)
{
	switch (role) {
	case STORE_WHITE:
		return r->servers_white.n > 0 ? &r->servers_white :
		    &r->servers_grey;
	case STORE_LIMITS:
		return &r->servers_limits;
	case STORE_ID:
		return &r->servers_id;
	case STORE_GREY:
	default:
		return &r->servers_grey;
	}
}

static const char *const role_names[STORE_ROLE_COUNT] = {
	"redis servers_grey", "redis servers_white", "redis servers_limits",
	"redis servers_id",
};

struct store *
store_get(const struct rmilter_config *conf, enum store_role role)
{
	const struct conf_serverlist *sl;
	const struct conf_redis *r;
	struct store_redis_params p;
	struct store **list, *st;
	char sig[2048];
	size_t i, off = 0;

	if (conf == NULL || conf->sections == NULL || role < 0 ||
	    role >= STORE_ROLE_COUNT)
		return store_mem_store();
	r = &conf->sections->redis;
	sl = role_servers(r, role);
	if (sl->n == 0)
		return store_mem_store();
	/* roles with the same servers share a store */
	sig[0] = '\0';
	for (i = 0; i < sl->n && off < sizeof(sig); i++) {
		int k = snprintf(sig + off, sizeof(sig) - off, "%s%s",
		    i ? "," : "", sl->v[i].text);

		if (k < 0)
			break;
		off += (size_t)k;
	}
	list = conf_stores(conf);
	for (st = *list; st != NULL; st = st->next)
		if (strcmp(st->sig, sig) == 0)
			return st;
	memset(&p, 0, sizeof(p));
	p.password = r->password;
	p.dbname = r->dbname;
	p.connect_timeout = r->connect_timeout ? r->connect_timeout : 1000;
	/* from the send, including connecting when that is needed */
	p.timeout = r->command_timeout ? r->command_timeout :
	    2 * p.connect_timeout;
	p.error_time = r->error_time;
	p.dead_time = r->dead_time;
	p.maxerrors = r->maxerrors;
	st = store_redis_new(role_names[role], sl, &p);
	free(st->sig);
	st->sig = xstrdup(sig);
	st->next = *list;
	*list = st;
	return st;
}

/* ---- operations ---------------------------------------------------------- */

static struct store_op *
op_new(struct store *st, enum store_op_kind kind, store_cb cb, void *ud)
{
	struct store_op *op = xcalloc(1, sizeof(*op));

	op->st = st;
	op->backend = st->be;
	op->kind = kind;
	op->cb = cb;
	op->ud = ud;
	op->res.ok = true;
	op->res.server = "";
	op->res.over = -1;
	op->next = st->ops;
	if (st->ops != NULL)
		st->ops->prev = op;
	st->ops = op;
	return op;
}

void
store_op_complete(struct store_op *op)
{
	op_unlink(op);
	op->st = NULL;
	if (op->cb != NULL)
		op->cb(op->ud, &op->res);
	/* the backend's state goes after the callback (the result may
	 * point into it); nothing is pending any more */
	op_free(op);
}

static void
op_deliver(evutil_socket_t fd, short what, void *arg)
{
	store_op_complete(arg);
}

void
store_op_complete_soon(struct store_op *op)
{
	struct timeval tv = { 0, 0 };

	if (op->timer == NULL)
		op->timer = evtimer_new(daemon_base(), op_deliver, op);
	evtimer_add(op->timer, &tv);
}

void
store_op_cancel(struct store_op *op)
{
	if (op == NULL)
		return;
	op_unlink(op);
	op_free(op);
}

struct store_op *
store_greylist(struct store *st, const char *key, const char *awl_key,
    const struct store_grey_params *p, uint64_t now, store_cb cb, void *ud)
{
	struct store_op *op = op_new(st, STORE_OP_GREY, cb, ud);

	st->be->greylist(op, key, awl_key, p, now);
	return op;
}

struct store_op *
store_limits(struct store *st, struct store_bucket *b, size_t n,
    enum store_limit_mode commit,
    uint64_t now, store_cb cb, void *ud)
{
	struct store_op *op = op_new(st, STORE_OP_LIMITS, cb, ud);

	op->res.buckets = b;
	op->res.nbuckets = n;
	st->be->limits(op, b, n, commit, now);
	return op;
}

struct store_op *
store_id_put(struct store *st, const char *key, uint64_t ttl, store_cb cb,
    void *ud)
{
	struct store_op *op = op_new(st, STORE_OP_ID_PUT, cb, ud);

	st->be->id_put(op, key, ttl);
	return op;
}

struct store_op *
store_id_find(struct store *st, const char *const *keys, size_t n,
    store_cb cb, void *ud)
{
	struct store_op *op = op_new(st, STORE_OP_ID_FIND, cb, ud);

	st->be->id_find(op, keys, n);
	return op;
}

/* ---- the semantics shared by the backends -------------------------------- */

uint64_t
store_bucket_ttl(double burst, double rate)
{
	double ms;

	if (!(rate > 0) || !(burst >= 0))
		return 30ULL * 86400 * 1000;
	ms = burst / rate * 1000;
	if (ms < 1000)
		ms = 1000;
	if (ms > 30.0 * 86400 * 1000)
		ms = 30.0 * 86400 * 1000;
	return (uint64_t)ms;
}

double
store_bucket_leak(const char *value, double rate, uint64_t now)
{
	unsigned long long last;
	double level;
	char *end;

	if (value == NULL)
		return 0;
	level = strtod(value, &end);
	if (end == value || *end != ' ')
		return 0;
	last = strtoull(end + 1, &end, 10);
	if (*end != '\0')
		return 0;
	if (now > last)
		level = level - (double)(now - last) / 1000 * rate;
	if (level < 0)
		level = 0;
	return level;
}
