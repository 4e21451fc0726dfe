/* redis_client.h -- Redis over hiredis's async API on our event loop: one
 * persistent, pipelined connection per server of a pool (upstream.h's
 * health and selection half), AUTH and SELECT on every (re)connection, a
 * connect timeout and a per-command timeout of our own, and Lua scripts by
 * EVALSHA with a transparent EVAL fallback on NOSCRIPT.
 *
 * Servers are IP addresses or unix socket paths; "localhost" is taken as
 * 127.0.0.1.  Other host names are refused (the command fails with a clear
 * error): hiredis would resolve them with a blocking getaddrinfo().
 *
 * Health: a failed connection (refused, connect timeout, I/O error, lost
 * with commands in flight, AUTH/SELECT refused) or a command timeout is one
 * upstream_fail() for the server; any reply is an upstream_ok().  There are
 * no retries: a failed command fails, the caller's policy applies.  A
 * command timeout drops the connection (replies still due on it would be
 * given to the wrong commands) and fails every command in flight on it;
 * the next command connects again.
 *
 * Every completion runs from the event loop, never inside the call that
 * started the command, exactly once unless the command was cancelled.
 * hiredis writes with write(2): the process must ignore SIGPIPE (the daemon
 * does). */
#ifndef RMILTER_REDIS_CLIENT_H
#define RMILTER_REDIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

struct conf_serverlist;
struct redis_client;
struct redis_cmd;
struct upstream_pool;
struct upstream_server;

struct redis_client_params {
	const char *password;		/* AUTH; NULL or "": none */
	const char *dbname;		/* SELECT; NULL or "": none */
	uint64_t connect_timeout;	/* ms */
	uint64_t timeout;		/* ms per command, from the send */
	uint64_t error_time;		/* ms: see upstream.h */
	uint64_t dead_time;		/* ms */
	unsigned maxerrors;
};

/* A Lua script: BODY and the lower-case hex SHA-1 of BODY (checked by the
 * unit test). */
struct redis_script {
	const char *name;		/* for logs */
	const char *body;
	const char *sha1;
};

/* The outcome of a command.  R: the reply (never an error reply) or NULL;
 * ERROR: NULL on success, else "redis 127.0.0.1:6379: timed out (1.0 s)"
 * (error replies too: "redis 127.0.0.1:6379: ERR ...").  SERVER: the
 * server's name ("" when none could be used).  All valid only during the
 * call. */
typedef void (*redis_reply_fn)(void *ud, const redisReply *r,
    const char *error, const char *server);

/* A client for the servers of SL (copied).  NAME is for logs. */
struct redis_client *redis_client_new(const char *name,
    const struct conf_serverlist *sl, const struct redis_client_params *p);
/* Closes the connections.  Commands still in flight are dropped without
 * their callbacks.  Safe from inside a callback of this client. */
void redis_client_free(struct redis_client *rc);

/* The server for KEY (jump consistent hash over the live servers), NULL
 * when none may be used now.  *PROBE: the pick is a probe of a dead
 * server; the returned server must then be given to redis_client_send()
 * right away (which reports its outcome). */
struct upstream_server *redis_client_pick(struct redis_client *rc,
    const void *key, size_t keylen, bool *probe);

/* Sends ARGV (ARGC strings of LENS bytes; LENS NULL: NUL-terminated) to
 * SRV (from redis_client_pick; NULL: the command fails "no server
 * available").  With SCRIPT, ARGV is what follows the script in EVALSHA:
 * numkeys, the keys, the arguments.  The arguments are copied.  Returns a
 * handle for redis_client_cancel(), valid until FN is called. */
struct redis_cmd *redis_client_send(struct redis_client *rc,
    struct upstream_server *srv, bool probe, const struct redis_script *script,
    int argc, const char *const *argv, const size_t *lens, redis_reply_fn fn,
    void *ud);
/* FN will not be called.  Not from inside FN of the same command. */
void redis_client_cancel(struct redis_cmd *cmd);

/* For tests and stats. */
struct upstream_pool *redis_client_pool(struct redis_client *rc);
/* Connections open (or being opened) by every client. */
unsigned redis_client_conns_open(void);
/* Connections made so far by RC (a reconnection counts again). */
uint64_t redis_client_connects(const struct redis_client *rc);

#endif
