/* store_redis.c -- the Redis store: each operation is one round trip per
 * server, a Lua script where it reads and writes (atomic on that server).
 * Greylisting routes by the AWL key (the client's network), so a client's
 * triplets and its AWL counter live on one server; limits and ids route by
 * each key, grouped per server.  Values are text, every key has a TTL.
 * See store.h for the semantics (the same as store_mem.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_sections.h"
#include "store_internal.h"
#include "store_key.h"
#include "upstream.h"
#include "xmalloc.h"

/* KEYS: grey record, white record[, AWL counter].  ARGV: now, timeout,
 * expire, expire_white, awl_hits, awl_ttl (ms).  Returns {state, ms}:
 * state 0 NEW, 1 WAIT, 2 PASSED, 3 WHITE, 4 AWL; ms = remaining (NEW,
 * WAIT) or elapsed (PASSED). */
const struct redis_script store_script_greylist = {
	.name = "greylist",
	.body =
	"local now = tonumber(ARGV[1])\n"
	"local timeout = tonumber(ARGV[2])\n"
	"local hits = tonumber(ARGV[5])\n"
	"if redis.call('EXISTS', KEYS[2]) == 1 then\n"
	"  redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
	"  return {3, 0}\n"
	"end\n"
	"if KEYS[3] and hits > 0 then\n"
	"  local c = tonumber(redis.call('GET', KEYS[3]) or 0)\n"
	"  if c and c >= hits then\n"
	"    return {4, 0}\n"
	"  end\n"
	"end\n"
	"local first = redis.call('GET', KEYS[1])\n"
	"if not first then\n"
	"  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
	"  return {0, timeout}\n"
	"end\n"
	"local elapsed = now - (tonumber(first) or now)\n"
	"if elapsed < 0 then\n"
	"  elapsed = 0\n"
	"end\n"
	"if elapsed < timeout then\n"
	"  return {1, timeout - elapsed}\n"
	"end\n"
	"redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])\n"
	"redis.call('DEL', KEYS[1])\n"
	"if KEYS[3] and hits > 0 then\n"
	"  redis.call('INCR', KEYS[3])\n"
	"  redis.call('PEXPIRE', KEYS[3], ARGV[6])\n"
	"end\n"
	"return {2, elapsed}\n",
	.sha1 = "9b3db7927d6fd65512fe6259d5d51a98436bbafb",
};

/* KEYS: the buckets.  ARGV: now, mode (0 check, 1 reserve: all or
 * nothing, 2 refund), then per key burst, rate (per second), ttl (ms).
 * Values "level last_ms".  Returns per key the level (text, after the leak
 * and the update) and 1 if one more message would overflow the bucket. */
const struct redis_script store_script_limits = {
	.name = "limits",
	.body =
	"local now = tonumber(ARGV[1])\n"
	"local mode = ARGV[2]\n"
	"local out = {}\n"
	"local levels = {}\n"
	"local anyover = false\n"
	"for i = 1, #KEYS do\n"
	"  local burst = tonumber(ARGV[3 * i])\n"
	"  local rate = tonumber(ARGV[3 * i + 1])\n"
	"  local level = 0\n"
	"  local v = redis.call('GET', KEYS[i])\n"
	"  if v then\n"
	"    local l, t = string.match(v, '^(%S+) (%S+)$')\n"
	"    l = tonumber(l)\n"
	"    t = tonumber(t)\n"
	"    if l and t then\n"
	"      level = l\n"
	"      if now > t then\n"
	"        level = l - (now - t) / 1000 * rate\n"
	"      end\n"
	"      if level < 0 then\n"
	"        level = 0\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  local over = 0\n"
	"  if mode ~= '2' and level + 1 > burst then\n"
	"    over = 1\n"
	"    anyover = true\n"
	"  end\n"
	"  levels[i] = level\n"
	"  out[2 * i] = over\n"
	"end\n"
	"for i = 1, #KEYS do\n"
	"  local level = levels[i]\n"
	"  if mode == '2' or (mode == '1' and not anyover) then\n"
	"    if mode == '1' then\n"
	"      level = level + 1\n"
	"    else\n"
	"      level = level - 1\n"
	"      if level < 0 then\n"
	"        level = 0\n"
	"      end\n"
	"    end\n"
	"    redis.call('SET', KEYS[i], string.format('%.17g %d', level, now), 'PX', ARGV[3 * i + 2])\n"
	"  end\n"
	"  out[2 * i - 1] = string.format('%.17g', level)\n"
	"end\n"
	"return out\n",
	.sha1 = "d39238fa289a941976c84aa4f7600921b8d27c75",
};

struct rstore {
	struct redis_client *rc;
};

/* One command of an operation: the keys that went to one server. */
struct rgroup {
	struct store_op *op;
	struct redis_cmd *cmd;		/* NULL once answered */
	struct upstream_server *srv;
	bool probe;
	size_t *idx;			/* the keys' (buckets') indices */
	size_t n;
};

struct rop {
	struct rgroup *g;
	size_t ng;
	size_t pending;
	bool failed;
	char server[128];
	char error[160];
};

static struct rop *
rop_new(struct store_op *op, size_t ngroups)
{
	struct rop *ro = xcalloc(1, sizeof(*ro));

	ro->g = xcalloc(ngroups ? ngroups : 1, sizeof(*ro->g));
	op->be = ro;
	return ro;
}

static struct redis_client *
rclient(struct store_op *op)
{
	return ((struct rstore *)op->st->priv)->rc;
}

/* A group answered: once all have, the operation completes. */
static bool
group_done(struct rgroup *g, const char *error, const char *server)
{
	struct store_op *op = g->op;
	struct rop *ro = op->be;

	g->cmd = NULL;
	if (ro->server[0] == '\0' || (error != NULL && !ro->failed))
		snprintf(ro->server, sizeof(ro->server), "%s", server);
	if (error != NULL && !ro->failed) {
		ro->failed = true;
		snprintf(ro->error, sizeof(ro->error), "%s", error);
	}
	return --ro->pending == 0;
}

static void
op_finish(struct store_op *op)
{
	struct rop *ro = op->be;

	op->res.server = ro->server;
	if (ro->failed) {
		op->res.ok = false;
		snprintf(op->res.error, sizeof(op->res.error), "%s",
		    ro->error);
	}
	store_op_complete(op);
}

static void
group_send(struct rgroup *g, const struct redis_script *script, int argc,
    const char *const *argv, redis_reply_fn fn)
{
	struct store_op *op = g->op;

	((struct rop *)op->be)->pending++;
	g->cmd = redis_client_send(rclient(op), g->srv, g->probe, script,
	    argc, argv, NULL, fn, g);
}

static bool
reply_int(const redisReply *r, long long *v)
{
	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		return false;
	*v = r->integer;
	return true;
}

/* ---- greylist ------------------------------------------------------------ */

static void
grey_reply(void *ud, const redisReply *r, const char *error,
    const char *server)
{
	struct rgroup *g = ud;
	struct store_op *op = g->op;
	struct store_result *res = &op->res;
	long long state = -1, ms = 0;
	char bad[200];

	if (error == NULL) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    !reply_int(r->element[0], &state) ||
		    !reply_int(r->element[1], &ms) || state < 0 ||
		    state > STORE_GREY_AWL || ms < 0) {
			snprintf(bad, sizeof(bad), "redis %s: unexpected "
			    "reply to the greylist script", server);
			error = bad;
		} else {
			res->grey = (enum store_grey_state)state;
			if (state == STORE_GREY_NEW || state == STORE_GREY_WAIT)
				res->remaining = (uint64_t)ms;
			else if (state == STORE_GREY_PASSED)
				res->elapsed = (uint64_t)ms;
		}
	}
	if (group_done(g, error, server))
		op_finish(op);
}

static void
redis_greylist(struct store_op *op, const char *key, const char *awl_key,
    const struct store_grey_params *p, uint64_t now)
{
	struct rop *ro = rop_new(op, 1);
	struct rgroup *g = &ro->g[0];
	const char *route = awl_key != NULL ? awl_key : key;
	char a[6][24], *gk, *wk;
	const char *argv[10];
	int argc = 0;

	gk = store_key_make(p->grey_prefix ? p->grey_prefix : "grey", key);
	wk = store_key_make(p->white_prefix ? p->white_prefix : "white", key);
	snprintf(a[0], sizeof(a[0]), "%" PRIu64, now);
	snprintf(a[1], sizeof(a[1]), "%" PRIu64, p->timeout);
	snprintf(a[2], sizeof(a[2]), "%" PRIu64, p->expire ? p->expire : 1);
	snprintf(a[3], sizeof(a[3]), "%" PRIu64,
	    p->expire_white ? p->expire_white : 1);
	snprintf(a[4], sizeof(a[4]), "%u", awl_key != NULL ? p->awl_hits : 0);
	snprintf(a[5], sizeof(a[5]), "%" PRIu64, p->awl_ttl ? p->awl_ttl : 1);
	argv[argc++] = awl_key != NULL ? "3" : "2";
	argv[argc++] = gk;
	argv[argc++] = wk;
	if (awl_key != NULL)
		argv[argc++] = awl_key;
	argv[argc++] = a[0];
	argv[argc++] = a[1];
	argv[argc++] = a[2];
	argv[argc++] = a[3];
	argv[argc++] = a[4];
	argv[argc++] = a[5];
	ro->ng = 1;
	g->op = op;
	g->srv = redis_client_pick(rclient(op), route, strlen(route),
	    &g->probe);
	group_send(g, &store_script_greylist, argc, argv, grey_reply);
	free(gk);
	free(wk);
}

/* ---- grouping keys by server --------------------------------------------- */

/* Splits the N keys into groups, one per server (keys with no server
 * usable form one group, which fails). */
static void
group_keys(struct store_op *op, const char *(*key_at)(const void *, size_t),
    const void *keys, size_t n)
{
	struct rop *ro = rop_new(op, n);
	struct redis_client *rc = rclient(op);
	size_t i, j;

	for (i = 0; i < n; i++) {
		const char *k = key_at(keys, i);
		struct upstream_server *srv;
		bool probe = false;

		/* a probe is handed out once, to the first key that gets
		 * it; the other keys hash over the live servers */
		srv = redis_client_pick(rc, k, strlen(k), &probe);
		for (j = 0; j < ro->ng; j++)
			if (ro->g[j].srv == srv)
				break;
		if (j == ro->ng) {
			ro->g[j].op = op;
			ro->g[j].srv = srv;
			ro->g[j].probe = probe;
			ro->g[j].idx = xcalloc(n, sizeof(size_t));
			ro->ng++;
		}
		ro->g[j].idx[ro->g[j].n++] = i;
	}
}

/* ---- limits -------------------------------------------------------------- */

static const char *
bucket_key(const void *keys, size_t i)
{
	return ((const struct store_bucket *)keys)[i].key;
}

static void
limits_reply(void *ud, const redisReply *r, const char *error,
    const char *server)
{
	struct rgroup *g = ud;
	struct store_op *op = g->op;
	struct store_bucket *b = op->res.buckets;
	char bad[200], *end;
	size_t i;

	if (error == NULL && (r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 2 * g->n)) {
		snprintf(bad, sizeof(bad), "redis %s: unexpected reply to the "
		    "limits script", server);
		error = bad;
	}
	for (i = 0; error == NULL && i < g->n; i++) {
		const redisReply *lv = r->element[2 * i];
		long long over;
		double level;

		if (lv->type != REDIS_REPLY_STRING ||
		    !reply_int(r->element[2 * i + 1], &over)) {
			snprintf(bad, sizeof(bad), "redis %s: unexpected "
			    "reply to the limits script", server);
			error = bad;
			break;
		}
		level = strtod(lv->str, &end);
		if (end == lv->str)
			level = 0;
		b[g->idx[i]].level = level;
		b[g->idx[i]].over = over != 0;
	}
	if (group_done(g, error, server)) {
		for (i = 0; i < op->res.nbuckets; i++)
			if (b[i].over) {
				op->res.over = (int)i;
				break;
			}
		op_finish(op);
	}
}

static void
redis_limits(struct store_op *op, struct store_bucket *b, size_t n,
    enum store_limit_mode mode, uint64_t now)
{
	struct rop *ro;
	size_t i, j;

	for (i = 0; i < n; i++) {
		b[i].level = 0;
		b[i].over = false;
	}
	group_keys(op, bucket_key, b, n);
	ro = op->be;
	if (n == 0) {
		/* nothing to ask; still completes from the loop */
		store_op_complete_soon(op);
		return;
	}
	for (j = 0; j < ro->ng; j++) {
		struct rgroup *g = &ro->g[j];
		size_t argc = 0, cap = 3 + 4 * g->n;
		const char **argv = xcalloc(cap, sizeof(*argv));
		char (*num)[32] = xcalloc(2 + 3 * g->n, sizeof(*num));

		snprintf(num[0], sizeof(num[0]), "%zu", g->n);
		argv[argc++] = num[0];
		for (i = 0; i < g->n; i++)
			argv[argc++] = b[g->idx[i]].key;
		snprintf(num[1], sizeof(num[1]), "%" PRIu64, now);
		argv[argc++] = num[1];
		argv[argc++] = mode == STORE_LIMIT_RESERVE ? "1" :
		    mode == STORE_LIMIT_REFUND ? "2" : "0";
		for (i = 0; i < g->n; i++) {
			const struct store_bucket *k = &b[g->idx[i]];
			char *v = num[2 + 3 * i];

			snprintf(v, 32, "%.17g", k->burst);
			argv[argc++] = v;
			snprintf(num[3 + 3 * i], 32, "%.17g", k->rate);
			argv[argc++] = num[3 + 3 * i];
			snprintf(num[4 + 3 * i], 32, "%" PRIu64,
			    store_bucket_ttl(k->burst, k->rate));
			argv[argc++] = num[4 + 3 * i];
		}
		group_send(g, &store_script_limits, (int)argc, argv,
		    limits_reply);
		free(argv);
		free(num);
	}
}

/* ---- ids ----------------------------------------------------------------- */

static void
put_reply(void *ud, const redisReply *r, const char *error,
    const char *server)
{
	struct rgroup *g = ud;

	if (group_done(g, error, server))
		op_finish(g->op);
}

static void
redis_id_put(struct store_op *op, const char *key, uint64_t ttl)
{
	struct rop *ro = rop_new(op, 1);
	struct rgroup *g = &ro->g[0];
	char px[24];

	snprintf(px, sizeof(px), "%" PRIu64, ttl ? ttl : 1);
	ro->ng = 1;
	g->op = op;
	g->srv = redis_client_pick(rclient(op), key, strlen(key), &g->probe);
	group_send(g, NULL, 5, (const char *[]){ "SET", key, "1", "PX", px },
	    put_reply);
}

static const char *
str_key(const void *keys, size_t i)
{
	return ((const char *const *)keys)[i];
}

static void
find_reply(void *ud, const redisReply *r, const char *error,
    const char *server)
{
	struct rgroup *g = ud;
	struct store_op *op = g->op;
	long long k;
	char bad[200];

	if (error == NULL) {
		if (!reply_int(r, &k)) {
			snprintf(bad, sizeof(bad), "redis %s: unexpected "
			    "reply to EXISTS", server);
			error = bad;
		} else if (k > 0)
			op->res.found = true;
	}
	if (group_done(g, error, server))
		op_finish(op);
}

static void
redis_id_find(struct store_op *op, const char *const *keys, size_t n)
{
	struct rop *ro;
	size_t i, j;

	group_keys(op, str_key, keys, n);
	ro = op->be;
	if (n == 0) {
		store_op_complete_soon(op);
		return;
	}
	for (j = 0; j < ro->ng; j++) {
		struct rgroup *g = &ro->g[j];
		const char **argv = xcalloc(g->n + 1, sizeof(*argv));

		argv[0] = "EXISTS";
		for (i = 0; i < g->n; i++)
			argv[1 + i] = keys[g->idx[i]];
		group_send(g, NULL, (int)g->n + 1, argv, find_reply);
		free(argv);
	}
}

/* ---- the backend --------------------------------------------------------- */

static void
redis_cancel(struct store_op *op)
{
	struct rop *ro = op->be;
	size_t j;

	if (ro == NULL)
		return;
	for (j = 0; j < ro->ng; j++) {
		if (ro->g[j].cmd != NULL)
			redis_client_cancel(ro->g[j].cmd);
		free(ro->g[j].idx);
	}
	free(ro->g);
	free(ro);
	op->be = NULL;
}

static void
redis_free(struct store *st)
{
	struct rstore *rs = st->priv;

	redis_client_free(rs->rc);
	free(rs);
}

static const struct store_backend redis_backend = {
	.kind = "redis",
	.greylist = redis_greylist,
	.limits = redis_limits,
	.id_put = redis_id_put,
	.id_find = redis_id_find,
	.cancel = redis_cancel,
	.free = redis_free,
};

struct store *
store_redis_new(const char *name, const struct conf_serverlist *sl,
    const struct store_redis_params *p)
{
	struct redis_client_params cp;
	struct rstore *rs = xcalloc(1, sizeof(*rs));

	memset(&cp, 0, sizeof(cp));
	cp.password = p->password;
	cp.dbname = p->dbname;
	cp.connect_timeout = p->connect_timeout;
	cp.timeout = p->timeout;
	cp.error_time = p->error_time;
	cp.dead_time = p->dead_time;
	cp.maxerrors = p->maxerrors;
	rs->rc = redis_client_new(name, sl, &cp);
	return store_new(&redis_backend, rs, name);
}

struct redis_client *
store_redis_client(struct store *st)
{
	return st->be == &redis_backend ? ((struct rstore *)st->priv)->rc :
	    NULL;
}
