/* stats.c -- counters of finished messages (by final action, by module and
 * action, refused recipients), the control socket that serves them
 * ("stats" / "stats json" on control_socket), and the client side of
 * rmilter -s.  The control socket is non-blocking, bounded in input, time
 * and connections, and shares nothing with mail sessions. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "beanstalk.h"
#include "conf.h"
#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "record.h"
#include "stats_internal.h"
#include "store.h"
#include "upstream.h"
#include "xmalloc.h"

/* ---- counters ------------------------------------------------------------------ */

enum msg_col {
	MSG_CONTINUE, MSG_ACCEPT, MSG_REJECT, MSG_TEMPFAIL, MSG_DISCARD,
	MSG_QUARANTINE, MSG_ABORTED, MSG_OTHER, MSG_COUNT
};

static const char *const msg_col_names[MSG_COUNT] = {
	"continue", "accept", "reject", "tempfail", "discard", "quarantine",
	"aborted", "other"
};

/* module columns: MACT_* as they are, then shadow:MACT_ACCEPT.., skipped */
#define MOD_SHADOW(a)	(MACT_QUARANTINE + (int)(a))
#define MOD_SKIPPED	(MOD_SHADOW(MACT_QUARANTINE) + 1)
#define MOD_COUNT	(MOD_SKIPPED + 1)

static const char *const mod_col_names[MOD_COUNT] = {
	"none", "accept", "reject", "tempfail", "discard", "quarantine",
	"shadow:accept", "shadow:reject", "shadow:tempfail", "shadow:discard",
	"shadow:quarantine", "skipped"
};

struct stats_module {
	char name[32];
	unsigned long long n[MOD_COUNT];
	unsigned long long rcpt_refused;
};

static struct {
	struct timespec start;
	unsigned generation;		/* of the last record */
	unsigned long long messages;
	unsigned long long by_action[MSG_COUNT];
	unsigned long long rcpts;	/* accepted recipients */
	unsigned long long rcpts_refused;
	unsigned long long noop;	/* messages under global noop */
	struct stats_module mod[STATS_MAX_MODULES];
	size_t nmod;
	unsigned long long untracked;	/* module results past the table */
} S;

static void stats_start(void) __attribute__((constructor));

static void
stats_start(void)
{
	clock_gettime(CLOCK_MONOTONIC, &S.start);
}

void
stats_reset(void)
{
	struct timespec start = S.start;

	memset(&S, 0, sizeof(S));
	S.start = start;
}

static struct stats_module *
stats_module_find(const char *name)
{
	size_t i;

	for (i = 0; i < S.nmod; i++)
		if (strcmp(S.mod[i].name, name) == 0)
			return &S.mod[i];
	if (S.nmod == STATS_MAX_MODULES)
		return NULL;
	snprintf(S.mod[S.nmod].name, sizeof(S.mod[0].name), "%s", name);
	return &S.mod[S.nmod++];
}

static enum msg_col
msg_col_of(const char *action)
{
	int i;

	if (action == NULL)
		return MSG_OTHER;
	for (i = 0; i < MSG_OTHER; i++)
		if (strcmp(action, msg_col_names[i]) == 0)
			return (enum msg_col)i;
	return MSG_OTHER;
}

static int
mod_col_of(const struct module_result *res)
{
	if (res == NULL)
		return MACT_NONE;
	if (res->skipped)
		return MOD_SKIPPED;
	if (res->action <= MACT_NONE || res->action > MACT_QUARANTINE)
		return MACT_NONE;
	return res->shadow ? MOD_SHADOW(res->action) : (int)res->action;
}

/* Counts the finished message R: its final action, its recipients and each
 * module's result.  Cheap (no allocation); never fails. */
void
stats_count(const struct decision_record *r)
{
	struct stats_module *m;
	size_t i;

	if (r == NULL)
		return;
	S.generation = r->generation;
	S.messages++;
	S.by_action[msg_col_of(r->action)]++;
	S.rcpts += r->nrcpts;
	S.rcpts_refused += r->rcpts_refused;
	if (r->noop)
		S.noop++;
	for (i = 0; i < r->nmodules && r->modules != NULL; i++) {
		const struct record_module *rm = &r->modules[i];

		if (rm->name == NULL ||
		    (m = stats_module_find(rm->name)) == NULL) {
			S.untracked++;
			continue;
		}
		m->n[mod_col_of(rm->res)]++;
		if (rm->res != NULL)
			m->rcpt_refused += rm->res->rcpt_refused;
	}
}

static long long
stats_uptime(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - S.start.tv_sec);
}

/* a growable string; xrealloc aborts on out-of-memory */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
}

/* One line per scanner server of the current config (pools are made at
 * first use, so a scanner that has not scanned yet is not listed):
 *   upstream rspamd 127.0.0.1:11333: alive requests 120 failures 2 ...
 *   upstream clamav /run/clamd.ctl: dead, next probe in 212 s ... */
static void
stats_format_upstreams(struct sbuf *b)
{
	const struct rmilter_config *conf = daemon_conf();
	const struct upstream_pool *pool;
	uint64_t now = upstream_now();
	unsigned i;

	if (conf == NULL)
		return;
	{
		uint64_t entries, bytes, evicted;

		store_mem_stats(&entries, &bytes, &evicted);
		if (entries != 0 || evicted != 0)
			sbuf_printf(b, "store memory: entries %llu bytes %llu "
			    "evicted %llu\n", (unsigned long long)entries,
			    (unsigned long long)bytes,
			    (unsigned long long)evicted);
	}
	for (pool = conf->upstreams; pool != NULL; pool = pool->next)
		for (i = 0; i < pool->n; i++) {
			const struct upstream_server *s = &pool->servers[i];

			sbuf_printf(b, "upstream %s %s: ", pool->name, s->name);
			if (s->dead)
				sbuf_printf(b, "dead, %s %llu s", s->probing ?
				    "probing; retry in" : "next probe in",
				    (unsigned long long)(s->dead_until > now ?
				    (s->dead_until - now) / 1000 : 0));
			else
				sbuf_printf(b, "alive");
			sbuf_printf(b, " requests %llu failures %llu reused "
			    "%llu inflight %u queued %u",
			    (unsigned long long)s->requests,
			    (unsigned long long)s->failures,
			    (unsigned long long)s->reused, s->inflight,
			    pool->queued);
			if (s->last_error[0] != '\0')
				sbuf_printf(b, " last_error \"%s\"",
				    s->last_error);
			sbuf_printf(b, "\n");
		}
}

/* The beanstalk jobs, when there were any (or the module is configured):
 *   beanstalk headers: sent 120 failed 2 dropped 0
 *   beanstalk queue: inflight 3 bytes 5120 */
static void
stats_format_beanstalk(struct sbuf *b)
{
	const struct rmilter_config *conf = daemon_conf();
	struct beanstalk_counters c;
	bool any;
	int k;

	beanstalk_queue_counters(&c);
	any = c.inflight > 0 || (conf != NULL && module_beanstalk.configured(
	    conf));
	for (k = 0; k < BEANSTALK_NKINDS; k++)
		any = any || c.sent[k] || c.failed[k] || c.dropped[k];
	if (!any)
		return;
	for (k = 0; k < BEANSTALK_NKINDS; k++)
		sbuf_printf(b, "beanstalk %s: sent %llu failed %llu dropped "
		    "%llu\n", beanstalk_kind_name(k),
		    (unsigned long long)c.sent[k],
		    (unsigned long long)c.failed[k],
		    (unsigned long long)c.dropped[k]);
	sbuf_printf(b, "beanstalk queue: inflight %u bytes %llu\n",
	    c.inflight, (unsigned long long)c.inflight_bytes);
}

/* The counters as text, one "key value ..." line per group:
 *   uptime 123s
 *   generation 2			(of the last record; "-": none yet)
 *   messages 10 continue 7 accept 0 reject 2 ...
 *   recipients 14 refused 3
 *   module rules: none 7 reject 2 shadow:reject 1
 *   upstream rspamd 127.0.0.1:11333: alive requests 5 ...
 * Malloc'ed (free with free()); never NULL. */
char *
stats_format(void)
{
	struct sbuf b = { xmalloc(256), 0, 256 };
	size_t i;
	int k;

	b.s[0] = '\0';
	sbuf_printf(&b, "uptime %llds\n", stats_uptime());
	if (S.messages != 0)
		sbuf_printf(&b, "generation %u\n", S.generation);
	else
		sbuf_printf(&b, "generation -\n");	/* no record yet */
	sbuf_printf(&b, "messages %llu", S.messages);
	for (k = 0; k < MSG_COUNT; k++)
		if (k != MSG_OTHER || S.by_action[k] != 0)
			sbuf_printf(&b, " %s %llu", msg_col_names[k],
			    S.by_action[k]);
	sbuf_printf(&b, "\nrecipients %llu refused %llu\n", S.rcpts,
	    S.rcpts_refused);
	if (S.noop != 0)
		sbuf_printf(&b, "noop %llu\n", S.noop);
	for (i = 0; i < S.nmod; i++) {
		const struct stats_module *m = &S.mod[i];

		sbuf_printf(&b, "module %s:", m->name);
		for (k = 0; k < MOD_COUNT; k++)
			if (m->n[k] != 0)
				sbuf_printf(&b, " %s %llu", mod_col_names[k],
				    m->n[k]);
		if (m->rcpt_refused != 0)
			sbuf_printf(&b, " rcpt_refused %llu", m->rcpt_refused);
		sbuf_printf(&b, "\n");
	}
	if (S.untracked != 0)
		sbuf_printf(&b, "untracked module results %llu\n",
		    S.untracked);
	stats_format_beanstalk(&b);
	stats_format_upstreams(&b);
	return b.s;
}

static json_t *
jcount(unsigned long long v)
{
	return json_integer((json_int_t)(v > (unsigned long long)INT64_MAX ?
	    INT64_MAX : v));
}

/* See stats_internal.h. */
char *
stats_format_json(void)
{
	json_t *o, *msg, *mods, *m;
	char *s, *line;
	size_t i, len;
	int k;

	o = json_object();
	json_object_set_new(o, "uptime", json_integer(stats_uptime()));
	json_object_set_new(o, "generation", S.messages != 0 ?
	    json_integer(S.generation) : json_null());
	msg = json_object();
	json_object_set_new(msg, "total", jcount(S.messages));
	for (k = 0; k < MSG_COUNT; k++)
		json_object_set_new(msg, msg_col_names[k],
		    jcount(S.by_action[k]));
	json_object_set_new(o, "messages", msg);
	json_object_set_new(o, "recipients", jcount(S.rcpts));
	json_object_set_new(o, "recipients_refused", jcount(S.rcpts_refused));
	json_object_set_new(o, "noop", jcount(S.noop));
	mods = json_object();
	for (i = 0; i < S.nmod; i++) {
		m = json_object();
		for (k = 0; k < MOD_COUNT; k++)
			json_object_set_new(m, mod_col_names[k],
			    jcount(S.mod[i].n[k]));
		json_object_set_new(m, "rcpt_refused",
		    jcount(S.mod[i].rcpt_refused));
		/* module names are ours (module_def), but stay safe */
		if (json_object_set_new(mods, S.mod[i].name, m) < 0)
			json_decref(m);
	}
	json_object_set_new(o, "modules", mods);
	{
		struct beanstalk_counters c;
		json_t *bs = json_object(), *one;

		beanstalk_queue_counters(&c);
		for (k = 0; k < BEANSTALK_NKINDS; k++) {
			one = json_object();
			json_object_set_new(one, "sent", jcount(c.sent[k]));
			json_object_set_new(one, "failed", jcount(c.failed[k]));
			json_object_set_new(one, "dropped",
			    jcount(c.dropped[k]));
			json_object_set_new(bs, beanstalk_kind_name(k), one);
		}
		json_object_set_new(bs, "inflight", jcount(c.inflight));
		json_object_set_new(bs, "inflight_bytes",
		    jcount(c.inflight_bytes));
		json_object_set_new(o, "beanstalk", bs);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return xstrdup("{}\n");
	len = strlen(s);
	line = xmalloc(len + 2);
	memcpy(line, s, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	free(s);
	return line;
}

/* ---- control socket: parser ------------------------------------------------- */

/* See stats_internal.h. */
enum stats_cmd
stats_control_parse(const char *buf, size_t len, bool eof)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n;

	if (nl == NULL) {
		if (len >= STATS_CONTROL_MAX_LINE)
			return STATS_CMD_TOO_LONG;
		if (!eof)
			return STATS_CMD_MORE;
		if (len == 0)
			return STATS_CMD_EMPTY;
		n = len;
	} else
		n = (size_t)(nl - buf);
	if (n >= STATS_CONTROL_MAX_LINE)
		return STATS_CMD_TOO_LONG;
	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	    buf[n - 1] == '\t'))
		n--;
	while (n > 0 && (buf[0] == ' ' || buf[0] == '\t')) {
		buf++;
		n--;
	}
	if (n == 5 && memcmp(buf, "stats", 5) == 0)
		return STATS_CMD_STATS;
	if (n == 10 && memcmp(buf, "stats json", 10) == 0)
		return STATS_CMD_JSON;
	return STATS_CMD_UNKNOWN;
}

/* ---- control socket: server ------------------------------------------------- */

struct ctl_conn {
	int fd;
	struct event *rev, *wev, *tmo;
	char in[STATS_CONTROL_MAX_LINE];
	size_t inlen;
	char *out;		/* reply (owned) */
	size_t outlen, outoff;
	struct ctl_conn *prev, *next;
};

static struct {
	int fd;
	char *path;		/* the socket file we created (owned) */
	dev_t dev;
	ino_t ino;
	struct event_base *base;
	struct event *ev;
	struct ctl_conn *conns;
	unsigned nconns;
} C = { .fd = -1 };

static void
ctl_conn_free(struct ctl_conn *cc)
{
	if (cc->prev != NULL)
		cc->prev->next = cc->next;
	else
		C.conns = cc->next;
	if (cc->next != NULL)
		cc->next->prev = cc->prev;
	C.nconns--;
	event_free(cc->rev);
	event_free(cc->wev);
	event_free(cc->tmo);
	close(cc->fd);
	free(cc->out);
	free(cc);
}

static void
ctl_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_debug("control socket: client too slow; closed");
	ctl_conn_free(arg);
}

static void
ctl_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *cc = arg;
	ssize_t n;

	while (cc->outoff < cc->outlen) {
		n = send(fd, cc->out + cc->outoff, cc->outlen - cc->outoff,
		    MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			break;
		}
		cc->outoff += (size_t)n;
	}
	ctl_conn_free(cc);
}

static void
ctl_reply(struct ctl_conn *cc, enum stats_cmd cmd)
{
	switch (cmd) {
	case STATS_CMD_STATS:
		cc->out = stats_format();
		break;
	case STATS_CMD_JSON:
		cc->out = stats_format_json();
		break;
	case STATS_CMD_TOO_LONG:
		cc->out = xstrdup("error: command too long\n");
		break;
	default:
		cc->out = xstrdup("error: unknown command\n");
		break;
	}
	cc->outlen = strlen(cc->out);
	event_del(cc->rev);
	event_add(cc->wev, NULL);
}

static void
ctl_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *cc = arg;
	enum stats_cmd cmd;
	bool eof = false;
	ssize_t n;

	n = recv(fd, cc->in + cc->inlen, sizeof(cc->in) - cc->inlen, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		ctl_conn_free(cc);
		return;
	}
	if (n == 0)
		eof = true;
	cc->inlen += (size_t)n;
	cmd = stats_control_parse(cc->in, cc->inlen, eof);
	if (cmd == STATS_CMD_MORE)
		return;
	if (cmd == STATS_CMD_EMPTY) {
		ctl_conn_free(cc);
		return;
	}
	if (cmd == STATS_CMD_UNKNOWN || cmd == STATS_CMD_TOO_LONG)
		log_debug("control socket: %s", cmd == STATS_CMD_UNKNOWN ?
		    "unknown command" : "command too long");
	ctl_reply(cc, cmd);
}

static void
ctl_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct timeval tv = { STATS_CONTROL_TIMEOUT, 0 };
	struct ctl_conn *cc;
	int i, fd;

	for (i = 0; i < STATS_CONTROL_MAX_CONNS; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warning("control socket: accept: %s",
				    strerror(errno));
			return;
		}
		if (C.nconns >= STATS_CONTROL_MAX_CONNS) {
			log_debug("control socket: %u clients open; closing "
			    "a new one", C.nconns);
			close(fd);
			continue;
		}
		cc = xcalloc(1, sizeof(*cc));
		cc->fd = fd;
		cc->rev = event_new(C.base, fd, EV_READ | EV_PERSIST,
		    ctl_on_read, cc);
		cc->wev = event_new(C.base, fd, EV_WRITE | EV_PERSIST,
		    ctl_on_write, cc);
		cc->tmo = evtimer_new(C.base, ctl_on_timeout, cc);
		if (cc->rev == NULL || cc->wev == NULL || cc->tmo == NULL) {
			if (cc->rev != NULL)
				event_free(cc->rev);
			if (cc->wev != NULL)
				event_free(cc->wev);
			if (cc->tmo != NULL)
				event_free(cc->tmo);
			close(fd);
			free(cc);
			return;
		}
		cc->next = C.conns;
		if (C.conns != NULL)
			C.conns->prev = cc;
		C.conns = cc;
		C.nconns++;
		event_add(cc->rev, NULL);
		evtimer_add(cc->tmo, &tv);
	}
}

/* Creates conf->control_socket (mode 0660; a stale socket file is removed)
 * and serves it on BASE.  Does nothing and returns 0 if it is not set;
 * returns -1 with a message in ERR on failure.  Call stats_control_close()
 * before freeing BASE. */
int
stats_control_open(const struct rmilter_config *conf,
    struct event_base *base, char *err, size_t errlen)
{
	const char *path = conf != NULL ? conf->control_socket : NULL;
	char msg[512];
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd;

	if (errlen > 0)
		err[0] = '\0';
	stats_control_close();
	if (path == NULL)
		return 0;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control_socket path too long: %s", path);
		return -1;
	}
	if (listen_unix_remove_stale(path, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "control_socket %s", msg);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		snprintf(err, errlen, "control_socket: socket: %s",
		    strerror(errno));
		return -1;
	}
	old = umask(0117);		/* the socket file gets mode 0660 */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		snprintf(err, errlen, "control_socket %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, 16) < 0) {
		snprintf(err, errlen, "control_socket %s: listen: %s", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		C.dev = st.st_dev;
		C.ino = st.st_ino;
	}
	C.ev = event_new(base, fd, EV_READ | EV_PERSIST, ctl_on_accept, NULL);
	if (C.ev == NULL || event_add(C.ev, NULL) < 0) {
		snprintf(err, errlen, "control_socket %s: cannot add the event",
		    path);
		if (C.ev != NULL)
			event_free(C.ev);
		C.ev = NULL;
		close(fd);
		unlink(path);
		return -1;
	}
	C.fd = fd;
	C.base = base;
	C.path = xstrdup(path);
	log_info("control socket %s: listening", path);
	return 0;
}

/* Closes every control connection and the socket, and removes the socket
 * file if it is still the one we created.  Safe to call when not open. */
void
stats_control_close(void)
{
	struct stat st;

	while (C.conns != NULL)
		ctl_conn_free(C.conns);
	if (C.ev != NULL)
		event_free(C.ev);
	C.ev = NULL;
	if (C.fd >= 0)
		close(C.fd);
	C.fd = -1;
	if (C.path != NULL && lstat(C.path, &st) == 0 &&
	    st.st_dev == C.dev && st.st_ino == C.ino && unlink(C.path) < 0)
		log_debug("control socket %s: cannot remove: %s", C.path,
		    strerror(errno));
	free(C.path);
	C.path = NULL;
	C.base = NULL;
}

/* ---- rmilter -s ---------------------------------------------------------------- */

/* Connects to conf->control_socket, sends "stats" and copies the reply to
 * stdout.  Blocking, bounded by 5 s socket timeouts.  Returns the exit code:
 * 0, or 1 with a message on stderr (not configured, not running, error). */
int
stats_client_run(const struct rmilter_config *conf)
{
	struct timeval tv = { 5, 0 };
	struct sockaddr_un sun;
	const char *path = conf->control_socket;
	char buf[4096];
	bool first = true, error = false;
	ssize_t n;
	int fd;

	if (path == NULL) {
		fprintf(stderr, "rmilter: control_socket is not set in %s\n",
		    conf->path != NULL ? conf->path : "the configuration");
		return 1;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "rmilter: control_socket path too long: %s\n",
		    path);
		return 1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		fprintf(stderr, "rmilter: socket: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "rmilter: cannot connect to control_socket "
		    "%s: %s (is rmilter running with this configuration?)\n",
		    path, strerror(errno));
		close(fd);
		return 1;
	}
	if (send(fd, "stats\n", 6, MSG_NOSIGNAL) != 6) {
		fprintf(stderr, "rmilter: control_socket %s: send: %s\n",
		    path, strerror(errno));
		close(fd);
		return 1;
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "rmilter: control_socket %s: %s\n",
			    path, errno == EAGAIN || errno == EWOULDBLOCK ?
			    "no answer within 5 s" : strerror(errno));
			close(fd);
			return 1;
		}
		if (first && (size_t)n >= 6 && memcmp(buf, "error:", 6) == 0)
			error = true;
		first = false;
		fwrite(buf, 1, (size_t)n, error ? stderr : stdout);
	}
	close(fd);
	if (first) {
		fprintf(stderr, "rmilter: control_socket %s: empty answer\n",
		    path);
		return 1;
	}
	fflush(stdout);
	return error ? 1 : 0;
}
