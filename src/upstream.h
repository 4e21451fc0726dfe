/* upstream.h -- server pools shared by every network client (rspamd,
 * SpamAssassin spamd and clamd now; redis and beanstalk use the health and
 * selection half).
 *
 * Health (per server): an error opens a window of error_time; maxerrors
 * errors inside one window mark the server dead for dead_time.  After
 * dead_time the next request goes to it as a probe (even while other
 * servers are alive; a failed probe's retry goes to a live one): success
 * revives the server, failure keeps it dead for another dead_time.  When every
 * server of a pool is dead, the one due first is still used for a probe
 * (a pool of one server keeps working, one request at a time), and the
 * other requests fail at once instead of waiting on a dead peer.
 *
 * Requests (upstream_request): one exchange of bytes with a reply parser
 * supplied by the client (a sans-IO codec).  The engine picks a server,
 * connects without blocking (connect_timeout), writes the request (head,
 * the message from the spool, tail), reads until the codec says done
 * (io_timeout for the whole exchange), and on any failure retries on a
 * different live server until `attempts` are used.  Connections are kept
 * for reuse when the codec says the peer allows it.  At most max_inflight
 * requests run per server; the rest wait in the pool's queue (bounded).
 * The completion callback always runs from the event loop, never from
 * upstream_request() itself, and never after upstream_request_cancel(). */
#ifndef RMILTER_UPSTREAM_H
#define RMILTER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbuf.h"

struct conf_serverlist;
struct spool;
struct upstream_conn;
struct upstream_req;
struct evdns_getaddrinfo_request;

enum upstream_strategy {
	UPSTREAM_ROUND_ROBIN = 0,
	UPSTREAM_RANDOM,
	UPSTREAM_MASTER_SLAVE,	/* highest priority alive, then list order */
	UPSTREAM_HASH,		/* consistent (jump) hash of a key */
};

struct upstream_params {
	uint64_t connect_timeout;	/* ms */
	uint64_t io_timeout;		/* ms: write the request, read the reply */
	uint64_t error_time;		/* ms */
	uint64_t dead_time;		/* ms */
	unsigned maxerrors;		/* >= 1 */
	unsigned attempts;		/* >= 1: tries in total per request */
	uint64_t retry_delay;		/* ms before retrying the same server */
	unsigned max_inflight;		/* per server; 0 = no cap */
	unsigned max_queue;		/* waiting requests per pool */
	uint64_t idle_timeout;		/* ms a kept connection may idle; 0 = none */
	enum upstream_strategy strategy;
};

struct upstream_server {
	struct upstream_pool *pool;
	unsigned index;
	char *name;		/* as written in the config, for logs */
	char *host;		/* NULL for a unix socket */
	char *path;		/* unix socket */
	unsigned port;
	unsigned priority;
	struct sockaddr_storage addr;	/* resolved address */
	socklen_t addrlen;		/* 0: not resolved yet */
	uint64_t resolved_at;
	struct evdns_getaddrinfo_request *dns;	/* lookup in flight */
	/* health */
	unsigned errors;	/* in the current window */
	uint64_t window_start;
	bool dead;
	uint64_t dead_until;
	bool probing;		/* a probe request is in flight */
	char last_error[120];
	/* traffic */
	unsigned inflight;
	struct upstream_conn *idle;	/* kept connections */
	unsigned nidle;
	uint64_t requests, failures, reused;
};

struct upstream_pool {
	char *name;		/* "rspamd", for logs and records */
	struct upstream_params p;
	struct upstream_server *servers;
	unsigned n;
	unsigned rr;		/* round-robin cursor */
	struct upstream_req *queue_head, *queue_tail;
	unsigned queued;
	unsigned waiting_dns;	/* requests waiting for a lookup */
	struct upstream_pool *next;	/* owner's list */
};

/* ---- pools, health and selection (no I/O) --------------------------- */

/* A pool for SL (at most UPSTREAM_MAX_SERVERS entries are used). */
#define UPSTREAM_MAX_SERVERS 64
struct upstream_pool *upstream_pool_new(const char *name,
    const struct conf_serverlist *sl, const struct upstream_params *p);
/* Closes kept connections; requests must be gone (cancelled) first. */
void upstream_pool_free(struct upstream_pool *pool);
void upstream_pool_free_list(struct upstream_pool *head);

/* Monotonic milliseconds. */
uint64_t upstream_now(void);

/* Picks a server for a request: skips servers whose bit is set in EXCLUDE
 * (tried already, or full).  Returns NULL when no server may be used now.
 * *PROBE is set when the pick is a probe of a dead server (the caller must
 * then report upstream_ok/upstream_fail/upstream_probe_abandon). */
struct upstream_server *upstream_pick(struct upstream_pool *pool,
    const void *key, size_t keylen, uint64_t exclude, uint64_t now,
    bool *probe);
/* The outcome of one request on SRV. */
void upstream_ok(struct upstream_server *srv, bool probe, uint64_t now);
void upstream_fail(struct upstream_server *srv, bool probe, const char *why,
    uint64_t now);
/* A probe request went away without an outcome. */
void upstream_probe_abandon(struct upstream_server *srv);
/* Number of servers that are not dead (or due for a probe) at NOW. */
unsigned upstream_alive(const struct upstream_pool *pool, uint64_t now);

/* ---- requests -------------------------------------------------------- */

enum upstream_parse { UPSTREAM_MORE = 0, UPSTREAM_DONE, UPSTREAM_ERROR };

/* The client's reply parser; UD is the client's state. */
struct upstream_codec {
	void (*begin)(void *ud);	/* a new attempt: reset the parser */
	enum upstream_parse (*feed)(void *ud, const uint8_t *p, size_t n,
	    size_t *used);
	enum upstream_parse (*eof)(void *ud);	/* the peer closed */
	bool (*keepalive)(void *ud);	/* after DONE; NULL: never reuse */
	const char *(*error)(void *ud);	/* after ERROR: why */
};

/* What is written on each attempt: HEAD, then BODY (the spool, which must
 * outlive the request), then TAIL.  The request owns the mbufs. */
struct upstream_payload {
	struct mbuf head;
	const struct spool *body;
	struct mbuf tail;
};

struct upstream_result {
	bool ok;
	const char *server;	/* last server tried, or "" */
	char error[200];	/* why it failed: "127.0.0.1:11333: timed out
				 * reading the reply (20 s)" */
	unsigned attempts;
	double ms;		/* from upstream_request() to now */
};

typedef void (*upstream_done_fn)(void *ud, const struct upstream_result *r);

/* Starts a request; takes PL's buffers.  Never fails synchronously: the
 * outcome always arrives through DONE from the event loop. */
struct upstream_req *upstream_request(struct upstream_pool *pool,
    struct upstream_payload *pl, const struct upstream_codec *codec,
    void *ud, upstream_done_fn done);
/* Stops a request that has not completed; DONE is not called.  Not from
 * inside DONE (the request is freed right after DONE returns). */
void upstream_request_cancel(struct upstream_req *req);

/* Open upstream sockets (for tests: an fd-leak check). */
unsigned upstream_conns_open(void);

/* The resolver of upstream host names follows the dns section: SERVERS
 * "ip:port,[ipv6]:port" ("" or NULL: /etc/resolv.conf), per-try
 * TIMEOUT_MS and ATTEMPTS.  Called at start and on every reload; lookups
 * in flight move to the new servers. */
void upstream_resolver_configure(const char *servers, uint64_t timeout_ms,
    unsigned attempts);

/* Frees the resolver (shutdown). */
void upstream_shutdown(void);

#endif
