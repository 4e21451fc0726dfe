/* audit_log.c -- the JSON audit log: one object per line per message
 * (audit_log = FILE), appended with one write(2), reopened on SIGUSR1 or when
 * the file was removed or replaced; a failure is logged (at most once a
 * minute) and the record dropped: the audit log never blocks or fails mail. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "conf.h"
#include "log.h"
#include "record.h"
#include "xmalloc.h"

#define AUDIT_FIELD_MAX		4096	/* bytes kept of one peer string */
#define AUDIT_WARN_INTERVAL	60	/* s between two failure messages */
#define AUDIT_CHECK_INTERVAL	1	/* s between two checks of the path */
#define AUDIT_FILE_MODE		0640

static struct {
	int fd;			/* -1: not open */
	char *path;		/* the path FD was opened from (owned) */
	unsigned generation;	/* newest config generation seen */
	dev_t dev;		/* identity of the open file */
	ino_t ino;
	time_t last_check;	/* monotonic s of the last stat(path) */
	time_t last_warn;	/* monotonic s of the last failure message */
	bool warned;
	unsigned long dropped;	/* records lost since the last message */
} A = { .fd = -1 };

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Counts a dropped record and logs WHAT at most once a minute. */
static void
audit_fail(const char *path, const char *what, int err)
{
	time_t now = mono_now();

	A.dropped++;
	if (A.warned && now - A.last_warn < AUDIT_WARN_INTERVAL)
		return;
	if (A.dropped > 1)
		log_error("audit log %s: %s failed: %s; records are being "
		    "dropped (%lu since the previous message)", path, what,
		    strerror(err), A.dropped);
	else
		log_error("audit log %s: %s failed: %s; records are being "
		    "dropped", path, what, strerror(err));
	A.warned = true;
	A.last_warn = now;
	A.dropped = 0;
}

static void
audit_fd_close(void)
{
	if (A.fd >= 0)
		close(A.fd);
	A.fd = -1;
}

/* Opens PATH for appending (remembered in A.path); 0 or -1 (logged). */
static int
audit_open(const char *path)
{
	struct stat st;
	int fd;

	audit_fd_close();
	if (A.path == NULL || strcmp(A.path, path) != 0) {
		char *copy = xstrdup(path);	/* PATH may be A.path */

		free(A.path);
		A.path = copy;
	}
	/* O_NONBLOCK: a FIFO without reader must not block the loop */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, AUDIT_FILE_MODE);
	if (fd < 0) {
		audit_fail(path, "open", errno);
		return -1;
	}
	if (fstat(fd, &st) == 0) {
		A.dev = st.st_dev;
		A.ino = st.st_ino;
	}
	A.fd = fd;
	A.last_check = mono_now();
	if (A.warned) {
		log_notice("audit log %s: open again", path);
		A.warned = false;
	}
	return 0;
}

/* true if the open file is no longer the one at A.path (deleted, rotated
 * without SIGUSR1); checked at most once a second. */
static bool
audit_file_replaced(void)
{
	time_t now = mono_now();
	struct stat st;

	if (now - A.last_check < AUDIT_CHECK_INTERVAL)
		return false;
	A.last_check = now;
	if (stat(A.path, &st) < 0)
		return true;
	return st.st_dev != A.dev || st.st_ino != A.ino;
}

/* Appends R to conf->audit_log (nothing if unset), opening the file on
 * first use, after a change of the path and when the file at the path is
 * no longer the open one.  The newest configuration generation seen decides
 * the path (a session on an older one writes to the new file).  Never
 * fails: problems are logged and the record dropped. */
void
audit_log_write(const struct rmilter_config *conf,
    const struct decision_record *r)
{
	const char *path;
	char *line;
	size_t len;
	ssize_t n;
	bool same;

	if (conf == NULL || r == NULL)
		return;
	/* the newest generation decides: sessions still on an older one
	 * write to the same file as the new ones */
	if (conf->generation >= A.generation) {
		A.generation = conf->generation;
		path = conf->audit_log;
	} else
		path = A.path;
	if (path == NULL) {		/* off, or turned off by a reload */
		if (A.path != NULL) {
			audit_fd_close();
			free(A.path);
			A.path = NULL;
		}
		return;
	}
	same = A.fd >= 0 && A.path != NULL && strcmp(A.path, path) == 0;
	if (same && audit_file_replaced()) {
		log_notice("audit log %s: the file was removed or replaced; "
		    "opening it again", A.path);
		same = false;
	}
	if (!same && audit_open(path) < 0)
		return;
	if ((line = audit_log_format(r)) == NULL) {
		audit_fail(A.path, "format", ENOMEM);
		return;
	}
	len = strlen(line);
	line = xrealloc(line, len + 2);
	line[len++] = '\n';
	line[len] = '\0';
	n = write(A.fd, line, len);
	if (n < 0)
		audit_fail(A.path, "write", errno);
	else if ((size_t)n < len) {
		/* end the partial line so that the next record stays valid */
		n = write(A.fd, "\n", 1);
		(void)n;
		audit_fail(A.path, "write", ENOSPC);
	}
	free(line);
}

/* Closes the file; the next record opens the configured path again.  Tries
 * at once so that a rotation problem shows up in the log right away. */
void
audit_log_reopen(void)
{
	if (A.path == NULL)
		return;
	audit_open(A.path);
}

/* Closes the file and forgets the path (shutdown, tests). */
void
audit_log_close(void)
{
	audit_fd_close();
	free(A.path);
	A.path = NULL;
	A.generation = 0;
	A.warned = false;
	A.dropped = 0;
}

/* ---- formatting -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at P (1-4), or 0 if P starts an
 * invalid one (stray continuation, overlong, surrogate, > U+10FFFF or
 * truncated); RFC 3629 table 3. */
static size_t
utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* A JSON string of S (a C string from the peer): every invalid UTF-8 byte
 * becomes U+FFFD, and over AUDIT_FIELD_MAX bytes it is cut at a character
 * boundary with "..." appended.  Control characters are escaped by jansson.
 * NULL gives JSON null. */
static json_t *
jstr(const char *s)
{
	static const char repl[] = "\xEF\xBF\xBD";
	const unsigned char *p = (const unsigned char *)s;
	size_t len, i, o, n;
	char *buf;
	json_t *j;

	if (s == NULL)
		return json_null();
	len = strlen(s);
	/* fast path: short valid strings go as they are */
	for (i = 0; i < len && i < AUDIT_FIELD_MAX; i += n)
		if ((n = utf8_seq_len(p + i, len - i)) == 0)
			break;
	if (i == len)
		return json_stringn_nocheck(s, len);
	buf = xmalloc(AUDIT_FIELD_MAX + 8);
	for (i = 0, o = 0; i < len; i += n) {
		if ((n = utf8_seq_len(p + i, len - i)) == 0) {
			if (o + 3 > AUDIT_FIELD_MAX)
				break;
			memcpy(buf + o, repl, 3);
			o += 3;
			n = 1;
			continue;
		}
		if (o + n > AUDIT_FIELD_MAX)
			break;
		memcpy(buf + o, s + i, n);
		o += n;
	}
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	j = json_stringn_nocheck(buf, o);
	free(buf);
	return j;
}

/* V rounded to 1/SCALE (no float noise such as 0.30000000004); 0 if not
 * finite (jansson refuses NaN and infinities). */
static json_t *
jreal(double v, double scale)
{
	if (!isfinite(v))
		v = 0;
	return json_real(round(v * scale) / scale);
}

static void
set(json_t *o, const char *key, json_t *v)
{
	json_object_set_new_nocheck(o, key, v);
}

static const char *
action_str(enum module_action a)
{
	static const char *const names[] = {
		"none", "accept", "reject", "tempfail", "discard", "quarantine"
	};

	return (size_t)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

static const char *
edit_op_str(enum module_edit_op op)
{
	static const char *const names[] = {
		"add", "insert", "change", "delete"
	};

	return (size_t)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

/* "2026-11-22T10:11:12.345Z"; times outside 1970..9999 are clamped. */
static json_t *
jtime(double ts)
{
	char buf[96];
	struct tm tm;
	time_t sec;
	int msec;

	if (!isfinite(ts) || ts < 0)
		ts = 0;
	if (ts > 253402300799.0)
		ts = 253402300799.0;
	sec = (time_t)ts;
	msec = (int)lround((ts - (double)sec) * 1000.0);
	if (msec >= 1000) {
		sec++;
		msec = 0;
	}
	if (gmtime_r(&sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, msec % 1000);
	return json_string_nocheck(buf);
}

static json_t *
module_json(const struct record_module *m)
{
	const struct module_result *res = m->res;
	json_t *o = json_object();

	set(o, "name", jstr(m->name));
	if (res == NULL) {
		set(o, "action", json_string_nocheck("none"));
		return o;
	}
	set(o, "action", json_string_nocheck(action_str(res->action)));
	set(o, "stage", res->action != MACT_NONE ?
	    json_string_nocheck(policy_stage_name(res->stage)) : json_null());
	set(o, "reason", res->reason[0] != '\0' ?
	    jstr(res->reason) : json_null());
	if (res->has_score)
		set(o, "score", jreal(res->score, 1e6));
	set(o, "ms", jreal(res->ms, 1e3));
	set(o, "shadow", json_boolean(res->shadow));
	set(o, "skipped", json_boolean(res->skipped));
	if (res->skipped)
		set(o, "why", jstr(res->why));
	set(o, "rcpt_refused", json_integer(res->rcpt_refused));
	if (res->server[0] != '\0')
		set(o, "server", jstr(res->server));
	if (res->error[0] != '\0')
		set(o, "error", jstr(res->error));
	return o;
}

/* Formats R as one JSON object on one line (no newline) in a malloc'ed
 * string the caller frees with free(); NULL only if jansson fails.  Peer
 * strings are made valid UTF-8 and cut at AUDIT_FIELD_MAX bytes. */
char *
audit_log_format(const struct decision_record *r)
{
	json_t *o, *a, *c, *e;
	char *s;
	size_t i;

	o = json_object();
	set(o, "ts", jtime(r->ts));
	set(o, "ts_unix", jreal(r->ts, 1e3));
	set(o, "sid", jstr(r->sid));
	set(o, "generation", json_integer(r->generation));
	set(o, "queue_id", jstr(r->queue_id));
	c = json_object();
	set(c, "addr", jstr(r->client_addr));
	set(c, "host", jstr(r->client_host));
	set(o, "client", c);
	set(o, "helo", jstr(r->helo));
	set(o, "from", jstr(r->from));
	a = json_array();
	for (i = 0; i < r->nrcpts && r->rcpts != NULL; i++)
		json_array_append_new(a, jstr(r->rcpts[i]));
	set(o, "rcpts", a);
	set(o, "rcpts_refused", json_integer(r->rcpts_refused));
	set(o, "auth_user", jstr(r->auth_user));
	set(o, "authenticated", json_boolean(r->authenticated));
	set(o, "whitelisted", json_boolean(r->whitelisted));
	set(o, "size", json_integer(r->size > (uint64_t)LLONG_MAX ?
	    LLONG_MAX : (json_int_t)r->size));
	set(o, "message_id", jstr(r->message_id));
	set(o, "subject", jstr(r->subject));
	set(o, "action", jstr(r->action));
	set(o, "stage", jstr(r->stage));
	set(o, "reply", jstr(r->reply));
	set(o, "decided_by", jstr(r->decided_by));
	set(o, "noop", json_boolean(r->noop));
	set(o, "ms", jreal(r->ms, 1e3));
	a = json_array();
	for (i = 0; i < r->nmodules && r->modules != NULL; i++)
		json_array_append_new(a, module_json(&r->modules[i]));
	set(o, "modules", a);
	a = json_array();
	for (i = 0; i < r->nedits && r->edits != NULL; i++) {
		const struct module_edit *ed = &r->edits[i];

		e = json_object();
		set(e, "op", json_string_nocheck(edit_op_str(ed->op)));
		set(e, "name", jstr(ed->name));
		set(e, "index", json_integer(ed->index));
		set(e, "value", jstr(ed->value));
		json_array_append_new(a, e);
	}
	set(o, "edits", a);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(15));
	json_decref(o);
	return s;
}
