/* redis_client.c -- Redis over hiredis's async API on our libevent loop;
 * see redis_client.h.
 *
 * Lifetimes.  A server has at most one connection, a `struct rlink`,
 * wrapping one redisAsyncContext.  hiredis owns the context: it frees it
 * itself on an I/O error (after calling every pending callback with a NULL
 * reply), and defers our redisAsyncFree() when called from inside one of
 * its callbacks.  So the link is reference counted: one reference for the
 * context (dropped by the event-library cleanup hook, which hiredis calls
 * exactly once when it frees the context, after the NULL replies) and one
 * per command hiredis holds.  A command (`struct redis_cmd`) is freed when
 * hiredis calls back for it, whatever happened meanwhile (cancelled,
 * client freed); a cancelled or orphaned command just has no callback. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "conf_sections.h"
#include "daemon.h"
#include "log.h"
#include "redis_client.h"
#include "upstream.h"
#include "xmalloc.h"

enum cmd_kind { CMD_USER = 0, CMD_AUTH, CMD_SELECT };

struct redis_conn;

struct rlink {
	struct redis_client *rc;	/* NULL once the client is freed */
	struct redis_conn *conn;	/* likewise */
	redisAsyncContext *ac;		/* NULL once hiredis freed it */
	struct event *ctimer;		/* connect timeout */
	unsigned refs;			/* the context + commands in hiredis */
	unsigned pending;		/* user commands in hiredis */
	bool connected;
	bool dropping;			/* redisAsyncFree() called */
	bool broken;			/* failed or closed: no new commands */
	bool probe;			/* carries a probe of a dead server */
	char why[160];			/* why it broke */
	struct rlink *prev, *next;	/* rc->links */
};

struct redis_conn {
	struct redis_client *rc;
	struct upstream_server *srv;
	struct rlink *link;		/* the current connection, or NULL */
	char name[128];			/* "127.0.0.1:6379", "/run/r.sock" */
};

struct redis_client {
	struct upstream_pool *pool;
	struct redis_conn *conns;	/* parallel to pool->servers */
	char *password;
	char *dbname;
	uint64_t connect_timeout;
	uint64_t timeout;
	uint64_t connects;
	struct redis_cmd *cmds;		/* user commands not completed */
	struct rlink *links;		/* every link not freed yet */
};

struct redis_cmd {
	enum cmd_kind kind;
	struct redis_client *rc;	/* NULL: orphaned (client freed) */
	struct redis_conn *conn;	/* NULL: no server */
	struct rlink *link;		/* set while hiredis holds it */
	redis_reply_fn fn;		/* NULL: cancelled */
	void *ud;
	struct event *timer;		/* timeout, or the early failure */
	const struct redis_script *script;
	bool evaled;			/* NOSCRIPT: resent as EVAL */
	int argc;
	char **argv;
	size_t *lens;
	char why[160];			/* an early failure */
	struct redis_cmd *prev, *next;	/* rc->cmds */
};

static unsigned conns_open;

static void cmd_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void cmd_free(struct redis_cmd *cmd);
static void link_drop(struct rlink *l);

unsigned
redis_client_conns_open(void)
{
	return conns_open;
}

uint64_t
redis_client_connects(const struct redis_client *rc)
{
	return rc->connects;
}

struct upstream_pool *
redis_client_pool(struct redis_client *rc)
{
	return rc->pool;
}

static void
timer_set(struct event *ev, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* ---- the client ---------------------------------------------------------- */

struct redis_client *
redis_client_new(const char *name, const struct conf_serverlist *sl,
    const struct redis_client_params *p)
{
	struct redis_client *rc = xcalloc(1, sizeof(*rc));
	struct upstream_params up;
	unsigned i;

	memset(&up, 0, sizeof(up));
	up.connect_timeout = p->connect_timeout;
	up.io_timeout = p->timeout;
	up.error_time = p->error_time;
	up.dead_time = p->dead_time;
	up.maxerrors = p->maxerrors;
	up.attempts = 1;
	up.strategy = UPSTREAM_HASH;
	rc->pool = upstream_pool_new(name, sl, &up);
	rc->conns = xcalloc(rc->pool->n ? rc->pool->n : 1, sizeof(*rc->conns));
	for (i = 0; i < rc->pool->n; i++) {
		struct redis_conn *c = &rc->conns[i];
		struct upstream_server *srv = &rc->pool->servers[i];

		c->rc = rc;
		c->srv = srv;
		if (srv->path != NULL)
			snprintf(c->name, sizeof(c->name), "%s", srv->path);
		else if (strchr(srv->host, ':') != NULL)
			snprintf(c->name, sizeof(c->name), "[%s]:%u",
			    srv->host, srv->port);
		else
			snprintf(c->name, sizeof(c->name), "%s:%u",
			    srv->host, srv->port);
	}
	if (p->password != NULL && p->password[0] != '\0')
		rc->password = xstrdup(p->password);
	if (p->dbname != NULL && p->dbname[0] != '\0')
		rc->dbname = xstrdup(p->dbname);
	rc->connect_timeout = p->connect_timeout ? p->connect_timeout : 1000;
	rc->timeout = p->timeout ? p->timeout : 1000;
	return rc;
}

void
redis_client_free(struct redis_client *rc)
{
	struct redis_cmd *cmd, *cnext;
	struct rlink *l, *lnext;

	if (rc == NULL)
		return;
	/* commands: no callbacks any more; those in hiredis are freed when
	 * it calls back (below, or later if it defers the free) */
	for (cmd = rc->cmds; cmd != NULL; cmd = cnext) {
		cnext = cmd->next;
		cmd->fn = NULL;
		cmd->rc = NULL;
		cmd->conn = NULL;
		cmd->prev = cmd->next = NULL;
		if (cmd->timer != NULL) {
			event_free(cmd->timer);
			cmd->timer = NULL;
		}
		if (cmd->link == NULL)
			cmd_free(cmd);
	}
	rc->cmds = NULL;
	for (l = rc->links; l != NULL; l = lnext) {
		lnext = l->next;
		l->rc = NULL;
		l->conn = NULL;
		l->prev = l->next = NULL;
		l->probe = false;
		if (l->ctimer != NULL)
			evtimer_del(l->ctimer);
		if (l->ac != NULL && !l->dropping) {
			l->dropping = true;
			redisAsyncFree(l->ac);	/* may free l */
		}
	}
	rc->links = NULL;
	upstream_pool_free(rc->pool);
	free(rc->conns);
	free(rc->password);
	free(rc->dbname);
	free(rc);
}

struct upstream_server *
redis_client_pick(struct redis_client *rc, const void *key, size_t keylen,
    bool *probe)
{
	return upstream_pick(rc->pool, key, keylen, 0, upstream_now(), probe);
}

/* ---- links --------------------------------------------------------------- */

static void
link_unref(struct rlink *l)
{
	if (--l->refs > 0)
		return;
	if (l->rc != NULL) {
		if (l->prev != NULL)
			l->prev->next = l->next;
		else
			l->rc->links = l->next;
		if (l->next != NULL)
			l->next->prev = l->prev;
	}
	if (l->conn != NULL && l->conn->link == l)
		l->conn->link = NULL;
	if (l->ctimer != NULL)
		event_free(l->ctimer);
	free(l);
}

/* The link failed or closed: no new commands go to it; with commands in
 * flight, that is one error for the server. */
static void
link_broken(struct rlink *l, const redisAsyncContext *ac)
{
	struct redis_conn *conn = l->conn;

	if (l->broken)
		return;
	l->broken = true;
	if (l->why[0] == '\0') {
		const char *e = ac != NULL && ac->c.errstr[0] != '\0' ?
		    ac->c.errstr : "closed";

		snprintf(l->why, sizeof(l->why), "%s (%s)", l->connected ?
		    "connection lost" : "connect failed", e);
	}
	if (l->ctimer != NULL)
		evtimer_del(l->ctimer);
	if (conn == NULL)
		return;
	if (conn->link == l)
		conn->link = NULL;
	if (l->pending > 0) {
		log_debug("redis %s: %s", conn->name, l->why);
		upstream_fail(conn->srv, l->probe, l->why, upstream_now());
	} else
		log_debug("redis %s: idle connection closed (%s)", conn->name,
		    l->why);
	l->probe = false;
}

/* Drops the link: every command in flight on it fails with l->why.  May
 * free L (unless called from inside a hiredis callback, which defers). */
static void
link_drop(struct rlink *l)
{
	if (l->conn != NULL && l->conn->link == l)
		l->conn->link = NULL;
	if (l->ac == NULL || l->dropping)
		return;
	l->dropping = true;
	redisAsyncFree(l->ac);
}

/* hiredis frees the context: this runs once, after the NULL replies. */
static void
link_ev_cleanup(void *privdata)
{
	redisLibeventEvents *e = privdata;
	redisAsyncContext *ac = e->context;
	struct rlink *l = ac->data;

	redisLibeventCleanup(privdata);
	if (l == NULL)
		return;
	ac->data = NULL;
	link_broken(l, ac);
	l->ac = NULL;
	conns_open--;
	link_unref(l);
}

static void
link_on_connect(const redisAsyncContext *ac, int status)
{
	struct rlink *l = ac->data;

	if (l == NULL)
		return;
	if (l->ctimer != NULL)
		evtimer_del(l->ctimer);
	if (status != REDIS_OK) {
		/* hiredis frees the context right after this */
		if (l->why[0] == '\0')
			snprintf(l->why, sizeof(l->why), "connect failed (%s)",
			    ac->c.errstr[0] ? ac->c.errstr : "error");
		return;
	}
	l->connected = true;
	if (l->conn != NULL)
		log_debug("redis %s: connected", l->conn->name);
}

static void
link_ctimeout(evutil_socket_t fd, short what, void *arg)
{
	struct rlink *l = arg;

	snprintf(l->why, sizeof(l->why), "connect timed out (%.1f s)",
	    l->rc != NULL ? (double)l->rc->connect_timeout / 1000 : 0.0);
	link_drop(l);
}

static void
link_internal(struct rlink *l, enum cmd_kind kind, const char *verb,
    const char *arg)
{
	struct redis_cmd *cmd = xcalloc(1, sizeof(*cmd));
	const char *argv[2] = { verb, arg };

	cmd->kind = kind;
	if (redisAsyncCommandArgv(l->ac, cmd_reply, cmd, 2, argv, NULL) !=
	    REDIS_OK) {
		free(cmd);
		return;
	}
	cmd->link = l;
	l->refs++;
}

/* A new connection to CONN's server, with AUTH and SELECT queued.  NULL
 * and ERR filled when it cannot even start. */
static struct rlink *
link_open(struct redis_conn *conn, char *err, size_t errlen)
{
	struct redis_client *rc = conn->rc;
	struct upstream_server *srv = conn->srv;
	redisAsyncContext *ac;
	struct in6_addr a6;
	struct in_addr a4;
	struct rlink *l;

	if (srv->path != NULL)
		ac = redisAsyncConnectUnix(srv->path);
	else {
		const char *host = srv->host;

		if (strcmp(host, "localhost") == 0)
			host = "127.0.0.1";
		else if (inet_pton(AF_INET, host, &a4) != 1 &&
		    inet_pton(AF_INET6, host, &a6) != 1) {
			snprintf(err, errlen, "host names are not supported "
			    "(use an IP address or a unix socket path)");
			return NULL;
		}
		ac = redisAsyncConnect(host, (int)srv->port);
	}
	if (ac == NULL) {
		snprintf(err, errlen, "connect failed (out of memory)");
		return NULL;
	}
	if (ac->err) {
		snprintf(err, errlen, "connect failed (%s)", ac->c.errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	if (redisLibeventAttach(ac, daemon_base()) != REDIS_OK) {
		snprintf(err, errlen, "connect failed (event loop)");
		redisAsyncFree(ac);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->rc = rc;
	l->conn = conn;
	l->ac = ac;
	l->refs = 1;
	ac->data = l;
	ac->ev.cleanup = link_ev_cleanup;
	redisAsyncSetConnectCallback(ac, link_on_connect);
	l->ctimer = evtimer_new(daemon_base(), link_ctimeout, l);
	timer_set(l->ctimer, rc->connect_timeout);
	l->next = rc->links;
	if (rc->links != NULL)
		rc->links->prev = l;
	rc->links = l;
	conn->link = l;
	conns_open++;
	rc->connects++;
	if (rc->password != NULL)
		link_internal(l, CMD_AUTH, "AUTH", rc->password);
	if (rc->dbname != NULL)
		link_internal(l, CMD_SELECT, "SELECT", rc->dbname);
	return l;
}

/* ---- commands ------------------------------------------------------------ */

static void
cmd_unlink(struct redis_cmd *cmd)
{
	struct redis_client *rc = cmd->rc;

	if (rc == NULL)
		return;
	if (cmd->prev != NULL)
		cmd->prev->next = cmd->next;
	else
		rc->cmds = cmd->next;
	if (cmd->next != NULL)
		cmd->next->prev = cmd->prev;
	cmd->prev = cmd->next = NULL;
	cmd->rc = NULL;
}

static void
cmd_free(struct redis_cmd *cmd)
{
	int i;

	cmd_unlink(cmd);
	if (cmd->timer != NULL)
		event_free(cmd->timer);
	if (cmd->link != NULL) {
		if (cmd->kind == CMD_USER)
			cmd->link->pending--;
		link_unref(cmd->link);
	}
	for (i = 0; i < cmd->argc; i++)
		free(cmd->argv[i]);
	free(cmd->argv);
	free(cmd->lens);
	free(cmd);
}

/* Calls the user back (unless cancelled) and frees CMD. */
static void
cmd_done(struct redis_cmd *cmd, const redisReply *r, const char *why)
{
	redis_reply_fn fn = cmd->fn;
	char server[128], error[320];

	snprintf(server, sizeof(server), "%s",
	    cmd->conn != NULL ? cmd->conn->name : "");
	cmd_unlink(cmd);
	cmd->fn = NULL;
	if (fn != NULL) {
		if (why != NULL)
			snprintf(error, sizeof(error), "redis%s%s: %s",
			    server[0] ? " " : "", server, why);
		fn(cmd->ud, why == NULL ? r : NULL, why == NULL ? NULL : error,
		    server);
	}
	cmd_free(cmd);
}

static void
cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_cmd *cmd = privdata;
	struct rlink *l = cmd->link;
	redisReply *r = reply;
	char why[200];

	if (r == NULL) {
		/* the context is going away */
		link_broken(l, ac);
		if (cmd->kind != CMD_USER)
			cmd_free(cmd);
		else
			cmd_done(cmd, NULL, l->why);
		return;
	}
	if (cmd->kind != CMD_USER) {
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(l->why, sizeof(l->why), "%s refused (%.100s)",
			    cmd->kind == CMD_AUTH ? "AUTH" : "SELECT", r->str);
			link_drop(l);	/* deferred: we are in a callback */
		}
		cmd_free(cmd);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR && cmd->script != NULL &&
	    !cmd->evaled && strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* not cached on this server (yet): the script itself */
		cmd->evaled = true;
		free(cmd->argv[0]);
		free(cmd->argv[1]);
		cmd->argv[0] = xstrdup("EVAL");
		cmd->argv[1] = xstrdup(cmd->script->body);
		cmd->lens[0] = 4;
		cmd->lens[1] = strlen(cmd->script->body);
		if (redisAsyncCommandArgv(ac, cmd_reply, cmd, cmd->argc,
		    (const char **)cmd->argv, cmd->lens) == REDIS_OK) {
			/* hiredis holds it once more; this callback's hold
			 * ends here */
			return;
		}
	}
	/* a reply: the server is alive */
	if (l->conn != NULL) {
		upstream_ok(l->conn->srv, l->probe, upstream_now());
		l->probe = false;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "%.180s", r->str);
		cmd_done(cmd, NULL, why);
	} else
		cmd_done(cmd, r, NULL);
}

static void
cmd_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct redis_cmd *cmd = arg;
	struct rlink *l = cmd->link;

	if (l == NULL) {
		/* an early failure, delivered from the loop */
		cmd_done(cmd, NULL, cmd->why);
		return;
	}
	/* later replies on this connection would go to the wrong commands:
	 * drop it, failing everything in flight on it (this one too) */
	snprintf(l->why, sizeof(l->why), "timed out (%.1f s)",
	    cmd->rc != NULL ? (double)cmd->rc->timeout / 1000 : 0.0);
	link_drop(l);
}

static void
cmd_fail_soon(struct redis_cmd *cmd, const char *why)
{
	snprintf(cmd->why, sizeof(cmd->why), "%s", why);
	timer_set(cmd->timer, 0);
}

struct redis_cmd *
redis_client_send(struct redis_client *rc, struct upstream_server *srv,
    bool probe, const struct redis_script *script, int argc,
    const char *const *argv, const size_t *lens, redis_reply_fn fn, void *ud)
{
	struct redis_cmd *cmd = xcalloc(1, sizeof(*cmd));
	int i, off = script != NULL ? 2 : 0;
	struct redis_conn *conn;
	struct rlink *l;
	char err[160];

	cmd->kind = CMD_USER;
	cmd->rc = rc;
	cmd->fn = fn;
	cmd->ud = ud;
	cmd->script = script;
	cmd->argc = argc + off;
	cmd->argv = xcalloc((size_t)cmd->argc, sizeof(*cmd->argv));
	cmd->lens = xcalloc((size_t)cmd->argc, sizeof(*cmd->lens));
	if (script != NULL) {
		cmd->argv[0] = xstrdup("EVALSHA");
		cmd->argv[1] = xstrdup(script->sha1);
		cmd->lens[0] = 7;
		cmd->lens[1] = strlen(script->sha1);
	}
	for (i = 0; i < argc; i++) {
		size_t n = lens != NULL ? lens[i] : strlen(argv[i]);

		cmd->argv[off + i] = xmalloc(n + 1);
		memcpy(cmd->argv[off + i], argv[i], n);
		cmd->argv[off + i][n] = '\0';
		cmd->lens[off + i] = n;
	}
	cmd->next = rc->cmds;
	if (rc->cmds != NULL)
		rc->cmds->prev = cmd;
	rc->cmds = cmd;
	cmd->timer = evtimer_new(daemon_base(), cmd_timeout, cmd);

	if (srv == NULL) {
		snprintf(err, sizeof(err), "no server available (%u of %u "
		    "dead)", rc->pool->n - upstream_alive(rc->pool,
		    upstream_now()), rc->pool->n);
		cmd_fail_soon(cmd, err);
		return cmd;
	}
	conn = &rc->conns[srv->index];
	cmd->conn = conn;
	l = conn->link;
	if (l == NULL && (l = link_open(conn, err, sizeof(err))) == NULL) {
		upstream_fail(srv, probe, err, upstream_now());
		cmd_fail_soon(cmd, err);
		return cmd;
	}
	if (redisAsyncCommandArgv(l->ac, cmd_reply, cmd, cmd->argc,
	    (const char **)cmd->argv, cmd->lens) != REDIS_OK) {
		if (probe)
			upstream_probe_abandon(srv);
		cmd_fail_soon(cmd, "cannot queue the command");
		return cmd;
	}
	cmd->link = l;
	l->refs++;
	l->pending++;
	if (probe)
		l->probe = true;
	timer_set(cmd->timer, rc->timeout);
	return cmd;
}

void
redis_client_cancel(struct redis_cmd *cmd)
{
	if (cmd == NULL)
		return;
	cmd->fn = NULL;
	cmd->ud = NULL;
	if (cmd->link == NULL) {
		/* not in hiredis: nothing will call back */
		cmd_free(cmd);
	}
	/* else: freed when hiredis calls back; its timeout still runs, so a
	 * server that never answers is still noticed */
}
