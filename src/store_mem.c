/* store_mem.c -- the in-process store: one process-wide hash table of
 * key -> (text value, expiry), bounded in bytes with the least recently
 * written entries evicted first; expired entries are purged when met and by
 * a small sweep at each operation.  Survives config reloads.  Results are
 * computed at the call and delivered from the loop by a zero timer.  See
 * store.h for the semantics (the same as store_redis.c's scripts). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"
#include "store_key.h"
#include "xmalloc.h"

#define MEM_MIN_BUCKETS		1024
#define MEM_SWEEP_CHAINS	8	/* hash chains swept per operation */

struct mem_entry {
	char *key;
	size_t keylen;
	char *value;
	size_t vallen;
	uint64_t hash;
	uint64_t expires;		/* ms, the store's clock domain */
	struct mem_entry *hnext;	/* hash chain */
	struct mem_entry *older, *newer;	/* write order */
};

static struct {
	struct mem_entry **tab;
	size_t nbuckets;
	struct mem_entry *oldest, *newest;
	uint64_t entries, bytes, evicted;
	uint64_t max_bytes;
	uint64_t (*clock)(void);
	size_t sweep;			/* next chain to sweep */
} M = { .max_bytes = STORE_MEM_DEFAULT_BYTES };

static const struct store_backend mem_backend;
static struct store mem_store = { .be = &mem_backend };

struct store *
store_mem_store(void)
{
	if (mem_store.sig == NULL)
		mem_store.sig = (char *)"memory";
	return &mem_store;
}

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
mem_now(void)
{
	return M.clock != NULL ? M.clock() : wall_ms();
}

void
store_mem_set_clock(uint64_t (*now_ms)(void))
{
	M.clock = now_ms;
}

static void mem_enforce(const struct mem_entry *keep, uint64_t now);

void
store_mem_configure(uint64_t max_bytes)
{
	M.max_bytes = max_bytes;
	mem_enforce(NULL, mem_now());
}

void
store_mem_stats(uint64_t *entries, uint64_t *bytes, uint64_t *evicted)
{
	if (entries != NULL)
		*entries = M.entries;
	if (bytes != NULL)
		*bytes = M.bytes;
	if (evicted != NULL)
		*evicted = M.evicted;
}

/* ---- the table ----------------------------------------------------------- */

static uint64_t
hash_key(const char *key, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t
entry_bytes(const struct mem_entry *e)
{
	return e->keylen + e->vallen + STORE_MEM_ENTRY_OVERHEAD;
}

static void
age_unlink(struct mem_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		M.oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		M.newest = e->older;
	e->older = e->newer = NULL;
}

static void
age_append(struct mem_entry *e)
{
	e->older = M.newest;
	e->newer = NULL;
	if (M.newest != NULL)
		M.newest->newer = e;
	else
		M.oldest = e;
	M.newest = e;
}

static void
entry_remove(struct mem_entry *e)
{
	struct mem_entry **pp = &M.tab[e->hash % M.nbuckets];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	age_unlink(e);
	M.entries--;
	M.bytes -= entry_bytes(e);
	free(e->key);
	free(e->value);
	free(e);
}

static void
table_grow(void)
{
	size_t n = M.nbuckets ? M.nbuckets * 2 : MEM_MIN_BUCKETS, i;
	struct mem_entry **tab = xcalloc(n, sizeof(*tab));

	for (i = 0; i < M.nbuckets; i++) {
		struct mem_entry *e = M.tab[i], *next;

		for (; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = tab[e->hash % n];
			tab[e->hash % n] = e;
		}
	}
	free(M.tab);
	M.tab = tab;
	M.nbuckets = n;
	M.sweep = 0;
}

/* KEY's live entry at NOW, or NULL (an expired one is purged). */
static struct mem_entry *
mem_get(const char *key, uint64_t now)
{
	size_t len = strlen(key);
	uint64_t h = hash_key(key, len);
	struct mem_entry *e;

	if (M.nbuckets == 0)
		return NULL;
	for (e = M.tab[h % M.nbuckets]; e != NULL; e = e->hnext)
		if (e->hash == h && e->keylen == len &&
		    memcmp(e->key, key, len) == 0)
			break;
	if (e != NULL && e->expires <= now) {
		entry_remove(e);
		e = NULL;
	}
	return e;
}

/* Frees the oldest entries until the bound holds again (KEEP stays). */
static void
mem_enforce(const struct mem_entry *keep, uint64_t now)
{
	while (M.bytes > M.max_bytes && M.oldest != NULL &&
	    M.oldest != keep) {
		if (M.oldest->expires > now)
			M.evicted++;
		entry_remove(M.oldest);
	}
}

/* Sets KEY to VALUE until EXPIRES (the newest entry then). */
static struct mem_entry *
mem_set(const char *key, const char *value, uint64_t expires, uint64_t now)
{
	size_t len = strlen(key), vlen = strlen(value);
	uint64_t h = hash_key(key, len);
	struct mem_entry *e;

	e = mem_get(key, now);
	if (e != NULL) {
		M.bytes -= entry_bytes(e);
		free(e->value);
		age_unlink(e);
	} else {
		if (M.entries >= M.nbuckets)
			table_grow();
		e = xcalloc(1, sizeof(*e));
		e->key = xmemdup(key, len + 1);
		e->keylen = len;
		e->hash = h;
		e->hnext = M.tab[h % M.nbuckets];
		M.tab[h % M.nbuckets] = e;
		M.entries++;
	}
	e->value = xmemdup(value, vlen + 1);
	e->vallen = vlen;
	e->expires = expires;
	M.bytes += entry_bytes(e);
	age_append(e);
	mem_enforce(e, now);
	return e;
}

static void
mem_del(const char *key, uint64_t now)
{
	struct mem_entry *e = mem_get(key, now);

	if (e != NULL)
		entry_remove(e);
}

/* A few hash chains per operation: expired entries nobody asks for go
 * too, without a timer. */
static void
mem_sweep(uint64_t now)
{
	unsigned k;

	for (k = 0; k < MEM_SWEEP_CHAINS && M.nbuckets > 0; k++) {
		struct mem_entry *e = M.tab[M.sweep], *next;

		for (; e != NULL; e = next) {
			next = e->hnext;
			if (e->expires <= now)
				entry_remove(e);
		}
		M.sweep = (M.sweep + 1) % M.nbuckets;
	}
}

int64_t
store_mem_pttl(const char *key)
{
	uint64_t now = mem_now();
	struct mem_entry *e = mem_get(key, now);

	return e != NULL ? (int64_t)(e->expires - now) : -2;
}

void
store_mem_reset(void)
{
	while (mem_store.ops != NULL) {
		struct store_op *op = mem_store.ops;

		mem_store.ops = op->next;
		if (op->next != NULL)
			op->next->prev = NULL;
		if (op->timer != NULL)
			event_free(op->timer);
		free(op);
	}
	while (M.oldest != NULL)
		entry_remove(M.oldest);
	free(M.tab);
	M.tab = NULL;
	M.nbuckets = 0;
	M.sweep = 0;
	M.evicted = 0;
}

/* ---- operations ---------------------------------------------------------- */

static void
mem_done(struct store_op *op, uint64_t now)
{
	mem_sweep(now);
	store_op_complete_soon(op);
}

static void
mem_greylist(struct store_op *op, const char *key, const char *awl_key,
    const struct store_grey_params *p, uint64_t now)
{
	struct store_result *r = &op->res;
	char *gk = store_key_make(p->grey_prefix ? p->grey_prefix : "grey",
	    key);
	char *wk = store_key_make(p->white_prefix ? p->white_prefix : "white",
	    key);
	bool awl = awl_key != NULL && p->awl_hits > 0;
	struct mem_entry *e;
	uint64_t first;
	char buf[32], *end;

	if ((e = mem_get(wk, now)) != NULL) {
		e->expires = now + p->expire_white;
		r->grey = STORE_GREY_WHITE;
		goto out;
	}
	if (awl && (e = mem_get(awl_key, now)) != NULL &&
	    strtoull(e->value, NULL, 10) >= p->awl_hits) {
		r->grey = STORE_GREY_AWL;
		goto out;
	}
	if ((e = mem_get(gk, now)) == NULL) {
		snprintf(buf, sizeof(buf), "%" PRIu64, now);
		mem_set(gk, buf, now + (p->expire ? p->expire : 1), now);
		r->grey = STORE_GREY_NEW;
		r->remaining = p->timeout;
		goto out;
	}
	first = strtoull(e->value, &end, 10);
	if (end == e->value || *end != '\0')
		first = now;
	r->elapsed = now > first ? now - first : 0;
	if (r->elapsed < p->timeout) {
		r->grey = STORE_GREY_WAIT;
		r->remaining = p->timeout - r->elapsed;
		r->elapsed = 0;
		goto out;
	}
	mem_set(wk, "1", now + (p->expire_white ? p->expire_white : 1), now);
	mem_del(gk, now);
	if (awl) {
		uint64_t n = 0;

		if ((e = mem_get(awl_key, now)) != NULL)
			n = strtoull(e->value, NULL, 10);
		snprintf(buf, sizeof(buf), "%" PRIu64, n + 1);
		mem_set(awl_key, buf, now + (p->awl_ttl ? p->awl_ttl : 1),
		    now);
	}
	r->grey = STORE_GREY_PASSED;
out:
	free(gk);
	free(wk);
	mem_done(op, now);
}

static void
mem_limits(struct store_op *op, struct store_bucket *b, size_t n,
    enum store_limit_mode mode, uint64_t now)
{
	char buf[64];
	size_t i;

	for (i = 0; i < n; i++) {
		struct mem_entry *e = mem_get(b[i].key, now);

		b[i].level = store_bucket_leak(e ? e->value : NULL, b[i].rate,
		    now);
		b[i].over = mode != STORE_LIMIT_REFUND &&
		    b[i].level + 1 > b[i].burst;
		if (b[i].over && op->res.over < 0)
			op->res.over = (int)i;
	}
	/* all or nothing: a reservation with a bucket over stores nothing */
	if (mode == STORE_LIMIT_CHECK ||
	    (mode == STORE_LIMIT_RESERVE && op->res.over >= 0)) {
		mem_done(op, now);
		return;
	}
	for (i = 0; i < n; i++) {
		b[i].level += mode == STORE_LIMIT_RESERVE ? 1 : -1;
		if (b[i].level < 0)
			b[i].level = 0;
		snprintf(buf, sizeof(buf), "%.17g %" PRIu64, b[i].level, now);
		mem_set(b[i].key, buf, now + store_bucket_ttl(b[i].burst,
		    b[i].rate), now);
	}
	mem_done(op, now);
}

static void
mem_id_put(struct store_op *op, const char *key, uint64_t ttl)
{
	uint64_t now = mem_now();

	mem_set(key, "1", now + (ttl ? ttl : 1), now);
	mem_done(op, now);
}

static void
mem_id_find(struct store_op *op, const char *const *keys, size_t n)
{
	uint64_t now = mem_now();
	size_t i;

	for (i = 0; i < n && !op->res.found; i++)
		if (mem_get(keys[i], now) != NULL)
			op->res.found = true;
	mem_done(op, now);
}

static void
mem_cancel(struct store_op *op)
{
}

static void
mem_free(struct store *st)
{
}

static const struct store_backend mem_backend = {
	.kind = "memory",
	.greylist = mem_greylist,
	.limits = mem_limits,
	.id_put = mem_id_put,
	.id_find = mem_id_find,
	.cancel = mem_cancel,
	.free = mem_free,
};
