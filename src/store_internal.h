/* store_internal.h -- what store.c shares with its backends (store_mem.c,
 * store_redis.c) and their unit test: the backend vtable, the operation
 * object, the semantics helpers both backends use, the Lua scripts. */
#ifndef RMILTER_STORE_INTERNAL_H
#define RMILTER_STORE_INTERNAL_H

#include <event2/event.h>

#include "redis_client.h"
#include "store.h"

enum store_op_kind { STORE_OP_GREY, STORE_OP_LIMITS, STORE_OP_ID_PUT,
    STORE_OP_ID_FIND };

struct store_backend {
	const char *kind;	/* "memory", "redis" */
	/* start OP (op->kind and the result's inputs are set); complete it
	 * later from the loop with store_op_complete() */
	void (*greylist)(struct store_op *op, const char *key,
	    const char *awl_key, const struct store_grey_params *p,
	    uint64_t now);
	void (*limits)(struct store_op *op, struct store_bucket *b, size_t n,
	    enum store_limit_mode mode, uint64_t now);
	void (*id_put)(struct store_op *op, const char *key, uint64_t ttl);
	void (*id_find)(struct store_op *op, const char *const *keys,
	    size_t n);
	/* stops the backend's part of OP (no completion after this) and
	 * frees what op->be holds; also called right after a completion,
	 * when nothing is pending any more */
	void (*cancel)(struct store_op *op);
	void (*free)(struct store *st);
};

struct store {
	const struct store_backend *be;
	void *priv;			/* the backend's */
	char *sig;			/* what it was made from (cache key) */
	struct store_op *ops;		/* operations not completed */
	struct store *next;		/* the config's list */
};

struct store_op {
	struct store *st;		/* NULL once completing */
	const struct store_backend *backend;
	enum store_op_kind kind;
	store_cb cb;			/* NULL: nobody waits (id_put) */
	void *ud;
	struct store_result res;
	struct event *timer;		/* store_op_complete_soon() */
	void *be;			/* the backend's state */
	struct store_op *prev, *next;	/* st->ops */
};

/* store.c */
struct store *store_new(const struct store_backend *be, void *priv,
    const char *sig);
/* Calls OP's callback (unless NULL) and frees OP. */
void store_op_complete(struct store_op *op);
/* The same from the loop, as soon as it runs (op->timer). */
void store_op_complete_soon(struct store_op *op);

/* The semantics both backends implement (store.h), as plain functions. */
/* TTL of a bucket record: burst / rate (at least 1 s, at most 30 days). */
uint64_t store_bucket_ttl(double burst, double rate);
/* The stored level leaked to NOW; VALUE is "level last_ms" or NULL. */
double store_bucket_leak(const char *value, double rate, uint64_t now);
/* The greylist records of KEY: "grey:" KEY and "white:" KEY. */

/* store_mem.c */
struct store *store_mem_store(void);
/* Milliseconds left before KEY expires in the memory store (the store's
 * clock), -2 when absent; tests. */
int64_t store_mem_pttl(const char *key);

/* store_redis.c: the scripts (their SHA-1s are checked by the test). */
extern const struct redis_script store_script_greylist;
extern const struct redis_script store_script_limits;
/* The client of a Redis store (tests). */
struct redis_client *store_redis_client(struct store *st);

#endif
