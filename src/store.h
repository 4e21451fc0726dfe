/* store.h -- the policy store shared by greylisting, rate limits and reply
 * whitelisting: a few atomic operations with one meaning and two backends,
 * Redis (several MTAs share the state; store_redis.c, one round trip per
 * operation, a Lua script where an operation reads and writes) and an
 * in-process memory store (one host, no Redis; store_mem.c, bounded, the
 * oldest entries evicted first).
 *
 * Every operation completes through its callback, always from the event
 * loop (never inside the call that started it), exactly once unless
 * cancelled; a cancelled operation never calls back.  Values are portable
 * text; every key gets a TTL.  Times are milliseconds; NOW is passed in (the
 * caller's clock), so the semantics are testable with a fake clock.
 *
 * Semantics (identical in both backends):
 *
 * greylist(KEY, AWL_KEY): KEY names a triplet (or the body-hash retry key).
 *   white:KEY exists                -> WHITE (refresh its TTL: expire_white)
 *   AWL_KEY counter >= awl_hits     -> AWL (client auto-whitelisted)
 *   grey:KEY absent                 -> NEW: grey:KEY = NOW, TTL expire;
 *                                      remaining = timeout
 *   NOW - first < timeout           -> WAIT, remaining = timeout - elapsed
 *   else                            -> PASSED: white:KEY set (TTL
 *                                      expire_white), grey:KEY deleted, the
 *                                      AWL_KEY counter incremented (TTL
 *                                      awl_ttl), elapsed = NOW - first
 *
 * limits(BUCKETS, MODE): leaky buckets "level leaks at RATE per second,
 *   BURST at most".  Each bucket's stored level first leaks by
 *   (NOW - last) * rate.  CHECK: the result says which bucket would
 *   overflow if one more message came (level + 1 > burst); nothing is
 *   stored.  RESERVE (at RCPT): the same test, and when every bucket has
 *   room, every level += 1, all at once (a message in flight holds its
 *   place, so concurrent MTAs cannot overshoot); when one is over, nothing
 *   is stored.  REFUND (the message was not delivered): every level -= 1
 *   (not below 0).  Stored values carry last = NOW and a TTL of burst /
 *   rate (at least 1 s).  Levels are reported for the record.
 *
 * id_put(ID, TTL): remembers a Message-ID of mail sent by a local
 *   (authenticated) sender.  id_find(IDS): true if any of IDS was put and
 *   has not expired. */
#ifndef RMILTER_STORE_H
#define RMILTER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rmilter_config;
struct store;
struct store_op;

/* Which set of servers an operation goes to (redis { servers_* }). */
enum store_role {
	STORE_GREY = 0,		/* servers_grey */
	STORE_WHITE,		/* servers_white (default: servers_grey) */
	STORE_LIMITS,		/* servers_limits */
	STORE_ID,		/* servers_id */
	STORE_ROLE_COUNT
};

enum store_grey_state {
	STORE_GREY_NEW = 0,	/* first seen now: tempfail */
	STORE_GREY_WAIT,	/* seen, timeout not over: tempfail */
	STORE_GREY_PASSED,	/* retried after the timeout: whitelisted now */
	STORE_GREY_WHITE,	/* whitelisted triplet */
	STORE_GREY_AWL,		/* auto-whitelisted client */
};

struct store_grey_params {
	uint64_t timeout;	/* ms */
	uint64_t expire;	/* ms: grey record TTL */
	uint64_t expire_white;	/* ms: white record TTL */
	unsigned awl_hits;	/* 0: no auto-whitelist */
	uint64_t awl_ttl;	/* ms */
	/* record names: PREFIX ":" KEY (no ':' added after a prefix ending
	 * in '.', ':', '_' or '-'); NULL: "grey" and "white" */
	const char *grey_prefix, *white_prefix;
};

struct store_bucket {
	char *key;		/* "to:user@dom", "to_ip:192.0.2.0" ... (full
				 * key incl. prefix; owned by the caller) */
	double burst;
	double rate;		/* messages per second */
	/* filled by the operation */
	double level;		/* after leaking (and the update) */
	bool over;		/* the check: one more would overflow */
};

/* The outcome; valid only during the callback. */
struct store_result {
	bool ok;		/* false: the store failed (error[]) */
	char error[160];	/* "redis 127.0.0.1:6379: timed out (1.0 s)" */
	const char *server;	/* "" for the memory store */
	/* greylist */
	enum store_grey_state grey;
	uint64_t remaining;	/* ms until a retry passes (NEW/WAIT) */
	uint64_t elapsed;	/* ms the sender waited (PASSED) */
	/* limits: the caller's array, levels and over flags filled */
	struct store_bucket *buckets;
	size_t nbuckets;
	int over;		/* index of the first bucket over, or -1 */
	/* id_find */
	bool found;
};

typedef void (*store_cb)(void *ud, const struct store_result *r);

/* The store for CONF: Redis when CONF has servers for ROLE (each role may
 * use its own servers), else the process-wide memory store.  Made at first
 * use and kept with the config like the scanner pools (roles with the same
 * server list share one store and its connections). */
struct store *store_get(const struct rmilter_config *conf, enum store_role role);

struct store_op *store_greylist(struct store *st, const char *key,
    const char *awl_key, const struct store_grey_params *p, uint64_t now,
    store_cb cb, void *ud);
enum store_limit_mode { STORE_LIMIT_CHECK = 0, STORE_LIMIT_RESERVE,
	STORE_LIMIT_REFUND };

struct store_op *store_limits(struct store *st, struct store_bucket *b,
    size_t n, enum store_limit_mode mode, uint64_t now, store_cb cb,
    void *ud);
struct store_op *store_id_put(struct store *st, const char *key,
    uint64_t ttl, store_cb cb, void *ud);	/* CB may be NULL */
struct store_op *store_id_find(struct store *st, const char *const *keys,
    size_t n, store_cb cb, void *ud);
/* The operation's callback will not be called (its effect may still
 * happen).  Not from inside its own callback: the operation is freed when
 * the callback returns.
 *
 * Arguments are copied or sent at once, except the bucket array of
 * store_limits(), which must stay valid until the callback or the cancel.
 * NOW is wall-clock milliseconds (shared with other MTAs through Redis). */
void store_op_cancel(struct store_op *op);

/* "memory" or "redis", for logs and records. */
const char *store_kind(const struct store *st);

/* ---- stores outside the config cache ---------------------------------- */

struct conf_serverlist;

struct store_redis_params {
	const char *password;		/* NULL: no AUTH */
	const char *dbname;		/* NULL: no SELECT */
	uint64_t connect_timeout;	/* ms */
	uint64_t timeout;		/* ms per operation */
	uint64_t error_time;		/* ms, see upstream.h */
	uint64_t dead_time;		/* ms */
	unsigned maxerrors;
};

/* A Redis store on the servers of SL with its own connections (store_get
 * makes these from the config; tests make their own).  NAME is for logs. */
struct store *store_redis_new(const char *name,
    const struct conf_serverlist *sl, const struct store_redis_params *p);
/* Frees a Redis store (operations still pending are dropped without
 * callbacks); the memory store is left alone.  NULL ok. */
void store_free(struct store *st);
/* Frees a config's list of stores (conf_unref). */
void store_free_list(struct store *head);
/* Shutdown and tests: frees the stores cached without a config field
 * (see store.c) and empties the memory store. */
void store_shutdown(void);

/* ---- the memory backend (store_mem.c) --------------------------------- */

/* Limits of the process-wide memory store (from the config; the newest
 * settings apply): at most MAX_BYTES of keys, values and a per-entry
 * overhead (STORE_MEM_ENTRY_OVERHEAD).  Default STORE_MEM_DEFAULT_BYTES. */
#define STORE_MEM_ENTRY_OVERHEAD	96
#define STORE_MEM_DEFAULT_BYTES		(64ULL * 1024 * 1024)
void store_mem_configure(uint64_t max_bytes);
/* Counters: entries, bytes, evicted (oldest first) since start. */
void store_mem_stats(uint64_t *entries, uint64_t *bytes, uint64_t *evicted);
/* Frees every entry and drops pending memory operations without their
 * callbacks (shutdown, tests). */
void store_mem_reset(void);
/* The memory store's clock for expiry (id records, sweeps); greylist and
 * limits use their NOW.  Tests: a fake clock; NULL: the wall clock (ms). */
void store_mem_set_clock(uint64_t (*now_ms)(void));

#endif
