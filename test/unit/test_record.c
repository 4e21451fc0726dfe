/* test_record.c -- the decision record's outputs: the JSON audit log
 * (format, UTF-8 repair, limits, file handling, write failures) and the
 * counters with their control socket (parser, round trips, rmilter -s). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"
#include "log.h"
#include "record.h"
#include "stats_internal.h"
#include "tt.h"

/* ---- helpers ---------------------------------------------------------------- */

static char tmpdir[256];

static void tmp_cleanup(void);

static const char *
tmp_path(const char *name)
{
	static char buf[4][512];
	static int k;

	if (tmpdir[0] == '\0') {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_record.XXXXXX");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			exit(2);
		}
		atexit(tmp_cleanup);
	}
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static void
tmp_cleanup(void)
{
	char cmd[600];

	if (tmpdir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* reads a whole file into a malloc'ed string (NULL if missing) */
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; s != NULL && *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

static int
count_substr(const char *s, const char *sub)
{
	int n = 0;

	while (s != NULL && (s = strstr(s, sub)) != NULL) {
		n++;
		s += strlen(sub);
	}
	return n;
}

/* every line of PATH parses as a JSON object; returns the number of lines */
static int
file_json_lines(const char *path)
{
	char *buf = slurp(path), *line, *save = NULL;
	int n = 0;

	if (buf == NULL)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		json_error_t e;
		json_t *j = json_loads(line, 0, &e);

		if (j == NULL || !json_is_object(j)) {
			fprintf(stderr, "  bad JSON line in %s: %s\n", path,
			    e.text);
			n = -1000;
		}
		json_decref(j);
		n++;
	}
	free(buf);
	return n;
}

static const char *
jget_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long
jget_int(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* a full record: two modules, two recipients, two edits */
struct full {
	struct module_result res[3];
	struct record_module mods[3];
	struct module_edit edits[2];
	const char *rcpts[2];
	struct decision_record r;
};

static void
full_init(struct full *f)
{
	memset(f, 0, sizeof(*f));
	f->res[0].action = MACT_REJECT;
	f->res[0].stage = STAGE_EOM;
	snprintf(f->res[0].reason, sizeof(f->res[0].reason), "rule spam1");
	f->res[0].ms = 1.25;
	f->res[0].rcpt_refused = 1;
	f->res[0].ran = true;
	f->res[1].action = MACT_TEMPFAIL;
	f->res[1].stage = STAGE_RCPT;
	f->res[1].shadow = true;
	f->res[1].has_score = true;
	f->res[1].score = 7.5;
	snprintf(f->res[1].reason, sizeof(f->res[1].reason), "score 7.5");
	f->res[1].ms = 0.5004;	/* rounded to 0.5 */
	f->res[1].ran = true;
	f->res[2].skipped = true;
	snprintf(f->res[2].why, sizeof(f->res[2].why), "max_size");
	f->mods[0].name = "rules";
	f->mods[0].res = &f->res[0];
	f->mods[1].name = "spamd";
	f->mods[1].res = &f->res[1];
	f->mods[2].name = "clamav";
	f->mods[2].res = &f->res[2];
	f->edits[0].op = EDIT_ADD;
	f->edits[0].name = "X-Spam";
	f->edits[0].value = "yes";
	f->edits[1].op = EDIT_DELETE;
	f->edits[1].name = "X-Old";
	f->edits[1].index = 2;
	f->rcpts[0] = "<b@example.net>";
	f->rcpts[1] = "<c@example.net>";
	f->r.sid = "b0263cb033d6";
	f->r.generation = 3;
	f->r.ts = 1795000000.123;	/* 2026-11-18T11:06:40.123Z */
	f->r.ms = 12.5;
	f->r.queue_id = "4C1F2A72801";
	f->r.client_addr = "192.0.2.1";
	f->r.client_host = "mx.example";
	f->r.helo = "mx.example";
	f->r.from = "<a@example.org>";
	f->r.rcpts = f->rcpts;
	f->r.nrcpts = 2;
	f->r.rcpts_refused = 1;
	f->r.auth_user = "alice";
	f->r.authenticated = true;
	f->r.whitelisted = false;
	f->r.size = 2130;
	f->r.message_id = "<id1@example.org>";
	f->r.subject = "Hello";
	f->r.action = "reject";
	f->r.stage = "eom";
	f->r.reply = "550 5.7.1 Rejected by policy (rule spam1); queue id "
	    "4C1F2A72801";
	f->r.decided_by = "rules";
	f->r.noop = false;
	f->r.modules = f->mods;
	f->r.nmodules = 3;
	f->r.edits = f->edits;
	f->r.nedits = 2;
}

static json_t *
format_parse(const struct decision_record *r)
{
	json_error_t e;
	char *s = audit_log_format(r);
	json_t *j;

	if (s == NULL)
		return NULL;
	if (strchr(s, '\n') != NULL) {
		fprintf(stderr, "  newline in the formatted record\n");
		tt_failed_checks++;
	}
	j = json_loads(s, 0, &e);
	if (j == NULL)
		fprintf(stderr, "  cannot parse %s: %s\n", s, e.text);
	free(s);
	return j;
}

/* ---- audit_log_format ---------------------------------------------------------- */

static void
test_format_full(void)
{
	struct full f;
	json_t *j, *c, *a, *m, *e;

	full_init(&f);
	j = format_parse(&f.r);
	TT_CHECK(j != NULL);
	if (j == NULL)
		return;
	TT_CHECK_STR(jget_str(j, "ts"), "2026-11-18T11:06:40.123Z");
	TT_CHECK(fabs(json_real_value(json_object_get(j, "ts_unix")) -
	    1795000000.123) < 1e-6);
	TT_CHECK_STR(jget_str(j, "sid"), "b0263cb033d6");
	TT_CHECK_INT(jget_int(j, "generation"), ==, 3);
	TT_CHECK_STR(jget_str(j, "queue_id"), "4C1F2A72801");
	c = json_object_get(j, "client");
	TT_CHECK(json_is_object(c));
	TT_CHECK_STR(jget_str(c, "addr"), "192.0.2.1");
	TT_CHECK_STR(jget_str(c, "host"), "mx.example");
	TT_CHECK_STR(jget_str(j, "helo"), "mx.example");
	TT_CHECK_STR(jget_str(j, "from"), "<a@example.org>");
	a = json_object_get(j, "rcpts");
	TT_CHECK_INT(json_array_size(a), ==, 2);
	TT_CHECK_STR(json_string_value(json_array_get(a, 0)),
	    "<b@example.net>");
	TT_CHECK_STR(json_string_value(json_array_get(a, 1)),
	    "<c@example.net>");
	TT_CHECK_INT(jget_int(j, "rcpts_refused"), ==, 1);
	TT_CHECK_STR(jget_str(j, "auth_user"), "alice");
	TT_CHECK(json_is_true(json_object_get(j, "authenticated")));
	TT_CHECK(json_is_false(json_object_get(j, "whitelisted")));
	TT_CHECK_INT(jget_int(j, "size"), ==, 2130);
	TT_CHECK_STR(jget_str(j, "message_id"), "<id1@example.org>");
	TT_CHECK_STR(jget_str(j, "subject"), "Hello");
	TT_CHECK_STR(jget_str(j, "action"), "reject");
	TT_CHECK_STR(jget_str(j, "stage"), "eom");
	TT_CHECK_STR(jget_str(j, "reply"), f.r.reply);
	TT_CHECK_STR(jget_str(j, "decided_by"), "rules");
	TT_CHECK(json_is_false(json_object_get(j, "noop")));
	TT_CHECK(json_real_value(json_object_get(j, "ms")) == 12.5);

	a = json_object_get(j, "modules");
	TT_CHECK_INT(json_array_size(a), ==, 3);
	m = json_array_get(a, 0);
	TT_CHECK_STR(jget_str(m, "name"), "rules");
	TT_CHECK_STR(jget_str(m, "action"), "reject");
	TT_CHECK_STR(jget_str(m, "stage"), "eom");
	TT_CHECK_STR(jget_str(m, "reason"), "rule spam1");
	TT_CHECK(json_object_get(m, "score") == NULL);
	TT_CHECK(json_real_value(json_object_get(m, "ms")) == 1.25);
	TT_CHECK(json_is_false(json_object_get(m, "shadow")));
	TT_CHECK(json_is_false(json_object_get(m, "skipped")));
	TT_CHECK(json_object_get(m, "why") == NULL);
	TT_CHECK_INT(jget_int(m, "rcpt_refused"), ==, 1);
	m = json_array_get(a, 1);
	TT_CHECK_STR(jget_str(m, "name"), "spamd");
	TT_CHECK_STR(jget_str(m, "action"), "tempfail");
	TT_CHECK_STR(jget_str(m, "stage"), "rcpt");
	TT_CHECK(json_real_value(json_object_get(m, "score")) == 7.5);
	TT_CHECK(json_real_value(json_object_get(m, "ms")) == 0.5);
	TT_CHECK(json_is_true(json_object_get(m, "shadow")));
	m = json_array_get(a, 2);
	TT_CHECK_STR(jget_str(m, "name"), "clamav");
	TT_CHECK_STR(jget_str(m, "action"), "none");
	TT_CHECK(json_is_null(json_object_get(m, "stage")));
	TT_CHECK(json_is_null(json_object_get(m, "reason")));
	TT_CHECK(json_is_true(json_object_get(m, "skipped")));
	TT_CHECK_STR(jget_str(m, "why"), "max_size");

	a = json_object_get(j, "edits");
	TT_CHECK_INT(json_array_size(a), ==, 2);
	e = json_array_get(a, 0);
	TT_CHECK_STR(jget_str(e, "op"), "add");
	TT_CHECK_STR(jget_str(e, "name"), "X-Spam");
	TT_CHECK_INT(jget_int(e, "index"), ==, 0);
	TT_CHECK_STR(jget_str(e, "value"), "yes");
	e = json_array_get(a, 1);
	TT_CHECK_STR(jget_str(e, "op"), "delete");
	TT_CHECK_INT(jget_int(e, "index"), ==, 2);
	TT_CHECK(json_is_null(json_object_get(e, "value")));
	json_decref(j);
}

/* field order is stable: ts first, edits last */
static void
test_format_order(void)
{
	struct full f;
	char *s;

	full_init(&f);
	s = audit_log_format(&f.r);
	TT_CHECK(s != NULL && strncmp(s, "{\"ts\":\"", 7) == 0);
	TT_CHECK(s != NULL && strstr(s, "\"edits\":[") != NULL &&
	    strcmp(s + strlen(s) - 2, "]}") == 0);
	TT_CHECK(s != NULL && strstr(s, "\"ms\":12.5,") != NULL);
	free(s);
}

static void
test_format_utf8(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
		    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80" },
		{ "a\xFF" "b", "a\xEF\xBF\xBD" "b" },
		{ "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD" },	/* overlong */
		{ "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
		{ "x\xE2\x82", "x\xEF\xBF\xBD\xEF\xBF\xBD" },	/* truncated */
		{ "\xF4\x90\x80\x80",	/* > U+10FFFF */
		    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
		{ "\x80" "z", "\xEF\xBF\xBD" "z" },	/* stray continuation */
		{ "tab\there\r\nnl\x01\x1F\x7F\"\\/", 
		    "tab\there\r\nnl\x01\x1F\x7F\"\\/" },
	};
	struct full f;
	size_t i;
	json_t *j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		full_init(&f);
		f.r.subject = cases[i].in;
		f.r.helo = cases[i].in;
		f.rcpts[1] = cases[i].in;
		f.edits[0].value = (char *)(uintptr_t)cases[i].in;
		f.r.client_host = cases[i].in;
		j = format_parse(&f.r);
		TT_CHECK(j != NULL);
		if (j == NULL)
			continue;
		TT_CHECK_STR(jget_str(j, "subject"), cases[i].out);
		TT_CHECK_STR(jget_str(j, "helo"), cases[i].out);
		TT_CHECK_STR(json_string_value(json_array_get(
		    json_object_get(j, "rcpts"), 1)), cases[i].out);
		TT_CHECK_STR(jget_str(json_array_get(json_object_get(j,
		    "edits"), 0), "value"), cases[i].out);
		TT_CHECK_STR(jget_str(json_object_get(j, "client"), "host"),
		    cases[i].out);
		json_decref(j);
	}
}

static void
test_format_huge(void)
{
	size_t big = 1 << 20, i;
	char *s = malloc(big + 1), *u = malloc(big + 1);
	const char *v;
	struct full f;
	json_t *j;

	memset(s, 'x', big);
	s[big] = '\0';
	/* two-byte characters with invalid bytes sprinkled in */
	for (i = 0; i + 2 <= big; i += 2) {
		u[i] = (char)0xC3;
		u[i + 1] = (char)0xA9;
		if (i % 998 == 0)
			u[i + 1] = (char)0xFF;
	}
	u[i] = '\0';
	full_init(&f);
	f.r.subject = s;
	f.r.message_id = u;
	f.rcpts[0] = s;
	j = format_parse(&f.r);
	TT_CHECK(j != NULL);
	if (j != NULL) {
		v = jget_str(j, "subject");
		TT_CHECK(v != NULL && strlen(v) >= 1000 && strlen(v) <= 8192);
		TT_CHECK(v != NULL && strcmp(v + strlen(v) - 3, "...") == 0);
		v = jget_str(j, "message_id");
		TT_CHECK(v != NULL && strlen(v) >= 1000 && strlen(v) <= 8192);
		TT_CHECK(v != NULL && strstr(v, "\xEF\xBF\xBD") != NULL);
		v = json_string_value(json_array_get(json_object_get(j,
		    "rcpts"), 0));
		TT_CHECK(v != NULL && strlen(v) <= 8192);
		json_decref(j);
	}
	free(s);
	free(u);
}

static void
test_format_null(void)
{
	struct decision_record r;
	struct record_module m = { "rules", NULL };
	json_t *j, *c;

	memset(&r, 0, sizeof(r));
	r.modules = &m;
	r.nmodules = 1;
	r.nrcpts = 5;		/* rcpts NULL: ignored */
	r.ts = NAN;
	r.ms = INFINITY;
	j = format_parse(&r);
	TT_CHECK(j != NULL);
	if (j == NULL)
		return;
	TT_CHECK(json_is_null(json_object_get(j, "sid")));
	TT_CHECK(json_is_null(json_object_get(j, "queue_id")));
	c = json_object_get(j, "client");
	TT_CHECK(json_is_null(json_object_get(c, "addr")));
	TT_CHECK(json_is_null(json_object_get(c, "host")));
	TT_CHECK(json_is_null(json_object_get(j, "helo")));
	TT_CHECK(json_is_null(json_object_get(j, "from")));
	TT_CHECK_INT(json_array_size(json_object_get(j, "rcpts")), ==, 0);
	TT_CHECK(json_is_null(json_object_get(j, "auth_user")));
	TT_CHECK(json_is_null(json_object_get(j, "message_id")));
	TT_CHECK(json_is_null(json_object_get(j, "subject")));
	TT_CHECK(json_is_null(json_object_get(j, "action")));
	TT_CHECK(json_is_null(json_object_get(j, "reply")));
	TT_CHECK(json_is_null(json_object_get(j, "decided_by")));
	TT_CHECK_STR(jget_str(j, "ts"), "1970-01-01T00:00:00.000Z");
	TT_CHECK(json_real_value(json_object_get(j, "ms")) == 0);
	TT_CHECK_STR(jget_str(json_array_get(json_object_get(j, "modules"),
	    0), "action"), "none");
	TT_CHECK_INT(json_array_size(json_object_get(j, "edits")), ==, 0);
	json_decref(j);

	r.ts = 1e300;		/* clamped, still valid */
	r.size = UINT64_MAX;
	j = format_parse(&r);
	TT_CHECK(j != NULL);
	TT_CHECK_STR(jget_str(j, "ts"), "9999-12-31T23:59:59.000Z");
	TT_CHECK(jget_int(j, "size") > 0);
	json_decref(j);
}

/* ---- audit_log_write -------------------------------------------------------------- */

static struct rmilter_config *
conf_new(void)
{
	struct rmilter_config *c = calloc(1, sizeof(*c));

	c->path = "test.conf";
	return c;
}

static void
test_write_rotate(void)
{
	struct rmilter_config *c = conf_new();
	struct full f;
	struct stat st;
	char *buf;
	int i;

	full_init(&f);
	umask(022);
	c->audit_log = strdup(tmp_path("a.jsonl"));
	for (i = 0; i < 3; i++)
		audit_log_write(c, &f.r);
	TT_CHECK_INT(file_json_lines(c->audit_log), ==, 3);
	TT_CHECK(stat(c->audit_log, &st) == 0 && (st.st_mode & 0777) == 0640);
	buf = slurp(c->audit_log);
	TT_CHECK_INT(count_lines(buf), ==, 3);
	TT_CHECK(buf != NULL && buf[strlen(buf) - 1] == '\n');
	free(buf);

	/* logrotate: rename, then SIGUSR1 */
	TT_CHECK(rename(c->audit_log, tmp_path("a.jsonl.1")) == 0);
	audit_log_reopen();
	audit_log_write(c, &f.r);
	TT_CHECK_INT(file_json_lines(tmp_path("a.jsonl.1")), ==, 3);
	TT_CHECK_INT(file_json_lines(c->audit_log), ==, 1);

	/* a new generation with another path */
	free(c->audit_log);
	c->audit_log = strdup(tmp_path("b.jsonl"));
	audit_log_write(c, &f.r);
	audit_log_write(c, &f.r);
	TT_CHECK_INT(file_json_lines(tmp_path("a.jsonl")), ==, 1);
	TT_CHECK_INT(file_json_lines(c->audit_log), ==, 2);

	/* turned off */
	free(c->audit_log);
	c->audit_log = NULL;
	audit_log_write(c, &f.r);
	TT_CHECK_INT(file_json_lines(tmp_path("b.jsonl")), ==, 2);
	audit_log_reopen();	/* nothing open: a no-op */
	audit_log_close();
	audit_log_close();
	free(c);
}

/* a reload changes the path: the newest generation wins, also for records
 * of sessions still on the old one */
static void
test_write_generations(void)
{
	struct rmilter_config *c1 = conf_new(), *c2 = conf_new(),
	    *c3 = conf_new();
	struct full f;

	full_init(&f);
	c1->generation = 1;
	c1->audit_log = strdup(tmp_path("g1.jsonl"));
	c2->generation = 2;
	c2->audit_log = strdup(tmp_path("g2.jsonl"));
	c3->generation = 3;
	audit_log_write(c1, &f.r);
	audit_log_write(c2, &f.r);
	audit_log_write(c1, &f.r);
	audit_log_write(c2, &f.r);
	TT_CHECK_INT(file_json_lines(c1->audit_log), ==, 1);
	TT_CHECK_INT(file_json_lines(c2->audit_log), ==, 3);
	audit_log_write(c3, &f.r);	/* turned off */
	audit_log_write(c1, &f.r);
	audit_log_write(c2, &f.r);
	TT_CHECK_INT(file_json_lines(c1->audit_log), ==, 1);
	TT_CHECK_INT(file_json_lines(c2->audit_log), ==, 3);
	audit_log_close();
	free(c1->audit_log);
	free(c2->audit_log);
	free(c1);
	free(c2);
	free(c3);
}

/* the file removed under us: noticed within a second, created again */
static void
test_write_deleted(void)
{
	struct rmilter_config *c = conf_new();
	struct timespec ts = { 1, 100 * 1000 * 1000 };
	struct full f;

	full_init(&f);
	c->audit_log = strdup(tmp_path("d.jsonl"));
	audit_log_write(c, &f.r);
	TT_CHECK(unlink(c->audit_log) == 0);
	nanosleep(&ts, NULL);
	audit_log_write(c, &f.r);
	TT_CHECK_INT(file_json_lines(c->audit_log), ==, 1);
	audit_log_close();
	free(c->audit_log);
	free(c);
}

/* /dev/full, a removed directory, a directory as the file: no crash, mail
 * goes on, and one log line per minute */
static void
test_write_failure(void)
{
	struct rmilter_config *c = conf_new();
	const char *logf = tmp_path("rmilter.log");
	struct timespec ts = { 1, 100 * 1000 * 1000 };
	char dir[512];
	struct full f;
	char *buf;
	int i;

	full_init(&f);
	TT_CHECK(log_configure(LOG_TO_FILE, "t", NULL, logf,
	    LOG_LEVEL_DEBUG) == 0);
	c->audit_log = strdup("/dev/full");
	for (i = 0; i < 100; i++)
		audit_log_write(c, &f.r);
	audit_log_close();
	free(c->audit_log);

	/* a directory that goes away: open fine, then unlink + rmdir */
	snprintf(dir, sizeof(dir), "%s", tmp_path("sub"));
	TT_CHECK(mkdir(dir, 0700) == 0);
	c->audit_log = strdup(tmp_path("sub/x.jsonl"));
	audit_log_write(c, &f.r);
	TT_CHECK_INT(file_json_lines(c->audit_log), ==, 1);
	TT_CHECK(unlink(c->audit_log) == 0 && rmdir(dir) == 0);
	nanosleep(&ts, NULL);
	for (i = 0; i < 50; i++)
		audit_log_write(c, &f.r);
	audit_log_reopen();
	audit_log_close();
	free(c->audit_log);

	/* a directory as the file */
	c->audit_log = strdup(tmpdir);
	for (i = 0; i < 10; i++)
		audit_log_write(c, &f.r);
	audit_log_close();
	free(c->audit_log);

	log_configure(LOG_TO_STDERR, "t", NULL, NULL, LOG_LEVEL_INFO);
	buf = slurp(logf);
	TT_CHECK(buf != NULL);
	TT_CHECK_INT(count_substr(buf, "audit log /dev/full: write failed: "
	    "No space left on device; records are being dropped"), ==, 1);
	TT_CHECK_INT(count_substr(buf, "sub/x.jsonl: open failed"), ==, 1);
	TT_CHECK_INT(count_substr(buf, "records are being dropped"), ==, 3);
	if (tt_failed_checks)
		fprintf(stderr, "%s", buf ? buf : "");
	free(buf);
	free(c);
}

/* ---- counters ---------------------------------------------------------------------- */

static void
count_one(const char *action, enum module_action rules, bool shadow,
    bool skipped)
{
	struct module_result res[2];
	struct record_module mods[2];
	const char *rcpts[2] = { "<a@x>", "<b@x>" };
	struct decision_record r;

	memset(res, 0, sizeof(res));
	memset(&r, 0, sizeof(r));
	res[0].action = rules;
	res[0].shadow = shadow;
	res[0].skipped = skipped;
	res[1].rcpt_refused = 1;
	mods[0].name = "rules";
	mods[0].res = &res[0];
	mods[1].name = "test";
	mods[1].res = &res[1];
	r.action = action;
	r.generation = 4;
	r.rcpts = rcpts;
	r.nrcpts = 2;
	r.rcpts_refused = 1;
	r.modules = mods;
	r.nmodules = 2;
	stats_count(&r);
}

static void
test_stats_count(void)
{
	char *s, *js;
	json_t *j, *m;
	int i;

	stats_reset();
	for (i = 0; i < 7; i++)
		count_one("continue", MACT_NONE, false, false);
	count_one("reject", MACT_REJECT, false, false);
	count_one("reject", MACT_REJECT, false, false);
	count_one("tempfail", MACT_TEMPFAIL, true, false);
	count_one("aborted", MACT_NONE, false, true);
	count_one("quarantine", MACT_QUARANTINE, false, false);
	count_one(NULL, MACT_DISCARD, true, false);
	stats_count(NULL);
	s = stats_format();
	TT_CHECK(strncmp(s, "uptime ", 7) == 0);
	TT_CHECK(strstr(s, "\ngeneration 4\n") != NULL);
	TT_CHECK(strstr(s, "\nmessages 13 continue 7 accept 0 reject 2 "
	    "tempfail 1 discard 0 quarantine 1 aborted 1 other 1\n") != NULL);
	TT_CHECK(strstr(s, "\nrecipients 26 refused 13\n") != NULL);
	TT_CHECK(strstr(s, "\nmodule rules: none 7 reject 2 quarantine 1 "
	    "shadow:tempfail 1 shadow:discard 1 skipped 1\n") != NULL);
	TT_CHECK(strstr(s, "\nmodule test: none 13 rcpt_refused 13\n") != NULL);
	if (tt_failed_checks)
		fprintf(stderr, "%s", s);
	free(s);

	js = stats_format_json();
	TT_CHECK(js[strlen(js) - 1] == '\n');
	j = json_loads(js, 0, NULL);
	TT_CHECK(j != NULL);
	TT_CHECK_INT(jget_int(j, "generation"), ==, 4);
	TT_CHECK_INT(jget_int(json_object_get(j, "messages"), "total"), ==, 13);
	TT_CHECK_INT(jget_int(json_object_get(j, "messages"), "reject"), ==, 2);
	m = json_object_get(json_object_get(j, "modules"), "rules");
	TT_CHECK_INT(jget_int(m, "shadow:tempfail"), ==, 1);
	TT_CHECK_INT(jget_int(m, "none"), ==, 7);
	TT_CHECK_INT(jget_int(j, "recipients_refused"), ==, 13);
	json_decref(j);
	free(js);

	stats_reset();
	s = stats_format();
	TT_CHECK(strstr(s, "\ngeneration -\n") != NULL);
	TT_CHECK(strstr(s, "\nmessages 0 continue 0 accept 0 reject 0 "
	    "tempfail 0 discard 0 quarantine 0 aborted 0\n") != NULL);
	TT_CHECK(strstr(s, "module ") == NULL);
	free(s);
}

/* more module names than the table holds: counted apart, no overflow */
static void
test_stats_many_modules(void)
{
	struct module_result res[40];
	struct record_module mods[40];
	char names[40][40];
	struct decision_record r;
	char *s;
	int i;

	stats_reset();
	memset(res, 0, sizeof(res));
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "module_with_a_long_name_%02d",
		    i);
		mods[i].name = names[i];
		mods[i].res = &res[i];
	}
	r.action = "continue";
	r.modules = mods;
	r.nmodules = 40;
	stats_count(&r);
	stats_count(&r);
	s = stats_format();
	TT_CHECK_INT(count_substr(s, "\nmodule "), ==, STATS_MAX_MODULES);
	TT_CHECK(strstr(s, "\nuntracked module results 16\n") != NULL);
	free(s);
	stats_reset();
}

/* ---- control socket ----------------------------------------------------------------- */

static void
test_control_parse(void)
{
	static const struct {
		const char *in;
		size_t len;
		bool eof;
		enum stats_cmd want;
	} cases[] = {
		{ "", 0, false, STATS_CMD_MORE },
		{ "", 0, true, STATS_CMD_EMPTY },
		{ "sta", 3, false, STATS_CMD_MORE },
		{ "stats", 5, false, STATS_CMD_MORE },
		{ "stats", 5, true, STATS_CMD_STATS },
		{ "stats\n", 6, false, STATS_CMD_STATS },
		{ "stats\r\n", 7, false, STATS_CMD_STATS },
		{ "  stats \t\r\n", 11, false, STATS_CMD_STATS },
		{ "stats\nstats json\n", 17, false, STATS_CMD_STATS },
		{ "stats json\n", 11, false, STATS_CMD_JSON },
		{ "STATS\n", 6, false, STATS_CMD_UNKNOWN },
		{ "stat\n", 5, false, STATS_CMD_UNKNOWN },
		{ "statsx\n", 7, false, STATS_CMD_UNKNOWN },
		{ "stats\0\n", 7, false, STATS_CMD_UNKNOWN },
		{ "\n", 1, false, STATS_CMD_UNKNOWN },
		{ "stats  json\n", 12, false, STATS_CMD_UNKNOWN },
		{ "hello", 5, true, STATS_CMD_UNKNOWN },
	};
	char big[STATS_CONTROL_MAX_LINE + 10];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum stats_cmd got = stats_control_parse(cases[i].in,
		    cases[i].len, cases[i].eof);

		if (got != cases[i].want)
			fprintf(stderr, "  case %zu\n", i);
		TT_CHECK_INT(got, ==, cases[i].want);
	}
	memset(big, 'a', sizeof(big));
	TT_CHECK_INT(stats_control_parse(big, STATS_CONTROL_MAX_LINE - 1,
	    false), ==, STATS_CMD_MORE);
	TT_CHECK_INT(stats_control_parse(big, STATS_CONTROL_MAX_LINE, false),
	    ==, STATS_CMD_TOO_LONG);
	TT_CHECK_INT(stats_control_parse(big, sizeof(big), true), ==,
	    STATS_CMD_TOO_LONG);
	big[STATS_CONTROL_MAX_LINE + 2] = '\n';
	TT_CHECK_INT(stats_control_parse(big, sizeof(big), false), ==,
	    STATS_CMD_TOO_LONG);
}

static int
client_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* drives BASE until FD is closed by the server or MAX_MS passed; returns
 * what was read (malloc'ed), *CLOSED tells whether EOF was seen */
static char *
client_read_all(struct event_base *base, int fd, int max_ms, bool *closed)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	struct timespec t0, now, nap = { 0, 2 * 1000 * 1000 };
	ssize_t n;

	*closed = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n == 0) {
			*closed = true;
			break;
		}
		if (n > 0) {
			len += (size_t)n;
			if (cap - len < 1024)
				buf = realloc(buf, cap *= 2);
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*closed = true;		/* reset counts as closed */
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000 > max_ms)
			break;
		nanosleep(&nap, NULL);
	}
	buf[len] = '\0';
	return buf;
}

static char *
roundtrip(struct event_base *base, const char *path, const char *req,
    size_t len, bool shut)
{
	bool closed;
	char *out;
	int fd = client_connect(path);

	TT_CHECK(fd >= 0);
	if (fd < 0)
		return strdup("");
	if (len > 0)
		TT_CHECK(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
	if (shut)
		shutdown(fd, SHUT_WR);
	out = client_read_all(base, fd, 3000, &closed);
	TT_CHECK(closed);
	close(fd);
	return out;
}

static void
test_control_roundtrip(void)
{
	struct rmilter_config *c = conf_new();
	struct event_base *base = event_base_new();
	char err[256], big[5000], *out;
	struct stat st;
	json_t *j;

	stats_reset();
	count_one("reject", MACT_REJECT, false, false);
	c->control_socket = strdup(tmp_path("ctl.sock"));
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == 0);
	TT_CHECK(lstat(c->control_socket, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    (st.st_mode & 0777) == 0660);

	out = roundtrip(base, c->control_socket, "stats\n", 6, false);
	TT_CHECK(strncmp(out, "uptime ", 7) == 0);
	TT_CHECK(strstr(out, "\nmessages 1 continue 0 accept 0 reject 1 ")
	    != NULL);
	TT_CHECK(strstr(out, "\nmodule rules: reject 1\n") != NULL);
	free(out);

	out = roundtrip(base, c->control_socket, "stats json\r\n", 12, false);
	j = json_loads(out, 0, NULL);
	TT_CHECK(j != NULL);
	TT_CHECK_INT(jget_int(json_object_get(j, "messages"), "reject"), ==, 1);
	json_decref(j);
	free(out);

	out = roundtrip(base, c->control_socket, "stats", 5, true);
	TT_CHECK(strncmp(out, "uptime ", 7) == 0);
	free(out);

	out = roundtrip(base, c->control_socket, "help\n", 5, false);
	TT_CHECK_STR(out, "error: unknown command\n");
	free(out);

	memset(big, 'A', sizeof(big));
	out = roundtrip(base, c->control_socket, big, sizeof(big), false);
	TT_CHECK_STR(out, "error: command too long\n");
	free(out);

	out = roundtrip(base, c->control_socket, "", 0, true);
	TT_CHECK_STR(out, "");
	free(out);

	/* split across reads */
	{
		int fd = client_connect(c->control_socket);
		bool closed;

		TT_CHECK(send(fd, "sta", 3, 0) == 3);
		out = client_read_all(base, fd, 100, &closed);
		TT_CHECK(!closed && out[0] == '\0');
		free(out);
		TT_CHECK(send(fd, "ts\n", 3, 0) == 3);
		out = client_read_all(base, fd, 3000, &closed);
		TT_CHECK(closed && strncmp(out, "uptime ", 7) == 0);
		free(out);
		close(fd);
	}

	stats_control_close();
	TT_CHECK(lstat(c->control_socket, &st) < 0 && errno == ENOENT);
	event_base_free(base);
	free(c->control_socket);
	free(c);
	stats_reset();
}

/* a silent client is closed after STATS_CONTROL_TIMEOUT; too many clients
 * at once are closed at once; the listener keeps working */
static void
test_control_limits(void)
{
	struct rmilter_config *c = conf_new();
	struct event_base *base = event_base_new();
	int fds[STATS_CONTROL_MAX_CONNS + 2];
	char err[256], *out;
	bool closed;
	int i;

	c->control_socket = strdup(tmp_path("ctl2.sock"));
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == 0);
	for (i = 0; i < STATS_CONTROL_MAX_CONNS + 2; i++) {
		fds[i] = client_connect(c->control_socket);
		TT_CHECK(fds[i] >= 0);
		event_base_loop(base, EVLOOP_NONBLOCK);	/* accept */
	}
	/* the extra ones are closed at once */
	out = client_read_all(base, fds[STATS_CONTROL_MAX_CONNS + 1], 500,
	    &closed);
	TT_CHECK(closed);
	free(out);
	/* a silent one: closed after the timeout, not before */
	out = client_read_all(base, fds[0], 1000, &closed);
	TT_CHECK(!closed);
	free(out);
	out = client_read_all(base, fds[0], (STATS_CONTROL_TIMEOUT + 1) * 1000,
	    &closed);
	TT_CHECK(closed && out[0] == '\0');
	free(out);
	for (i = 0; i < STATS_CONTROL_MAX_CONNS + 2; i++)
		close(fds[i]);
	out = roundtrip(base, c->control_socket, "stats\n", 6, false);
	TT_CHECK(strncmp(out, "uptime ", 7) == 0);
	free(out);
	/* connections still open at close are freed (valgrind) */
	fds[0] = client_connect(c->control_socket);
	event_base_loop(base, EVLOOP_NONBLOCK);
	stats_control_close();
	close(fds[0]);
	event_base_free(base);
	free(c->control_socket);
	free(c);
}

static void
test_control_open_errors(void)
{
	struct rmilter_config *c = conf_new();
	struct event_base *base = event_base_new();
	struct sockaddr_un sun;
	char err[256], longp[200];
	int fd;
	FILE *fp;

	/* not set: off */
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == 0);
	stats_control_close();

	/* a stale socket file is replaced */
	c->control_socket = strdup(tmp_path("stale.sock"));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->control_socket);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	TT_CHECK(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == 0);
	stats_control_close();

	/* in use by someone else */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	TT_CHECK(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	TT_CHECK(listen(fd, 1) == 0);
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == -1);
	TT_CHECK(strstr(err, "in use") != NULL);
	close(fd);
	unlink(c->control_socket);
	free(c->control_socket);

	/* a regular file */
	c->control_socket = strdup(tmp_path("file"));
	fp = fopen(c->control_socket, "w");
	fclose(fp);
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == -1);
	TT_CHECK(strstr(err, "not a socket") != NULL);
	TT_CHECK(access(c->control_socket, F_OK) == 0);
	free(c->control_socket);

	/* too long, missing directory */
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	c->control_socket = longp;
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == -1);
	TT_CHECK(strstr(err, "too long") != NULL);
	c->control_socket = "/nonexistent-dir-rmilter/ctl.sock";
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == -1);
	TT_CHECK(strstr(err, "No such file") != NULL);
	stats_control_close();
	event_base_free(base);
	free(c);
}

/* rmilter -s: the blocking client in a child, the server here */
static int
client_run_child(struct event_base *base, struct rmilter_config *c,
    const char *outpath)
{
	pid_t pid;
	int status = -1, i;
	struct timespec nap = { 0, 2 * 1000 * 1000 };

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		_exit(stats_client_run(c));
	}
	for (i = 0; i < 5000; i++) {
		if (base != NULL)
			event_base_loop(base, EVLOOP_NONBLOCK);
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void
test_client_run(void)
{
	struct rmilter_config *c = conf_new();
	struct event_base *base = event_base_new();
	const char *outp = tmp_path("client.out");
	char err[256], *out;

	stats_reset();
	count_one("continue", MACT_NONE, false, false);
	c->control_socket = strdup(tmp_path("ctl3.sock"));
	TT_CHECK(stats_control_open(c, base, err, sizeof(err)) == 0);
	TT_CHECK_INT(client_run_child(base, c, outp), ==, 0);
	out = slurp(outp);
	TT_CHECK(out != NULL && strncmp(out, "uptime ", 7) == 0);
	TT_CHECK(out != NULL && strstr(out, "\nmessages 1 continue 1 ") != NULL);
	free(out);
	stats_control_close();

	/* nothing listening */
	TT_CHECK_INT(client_run_child(NULL, c, outp), ==, 1);
	out = slurp(outp);
	TT_CHECK(out != NULL && strstr(out, "cannot connect to control_socket")
	    != NULL);
	free(out);
	free(c->control_socket);

	/* not configured */
	c->control_socket = NULL;
	TT_CHECK_INT(client_run_child(NULL, c, outp), ==, 1);
	out = slurp(outp);
	TT_CHECK_STR(out, "rmilter: control_socket is not set in test.conf\n");
	free(out);
	event_base_free(base);
	free(c);
	stats_reset();
}

TT_MAIN(
	{ "record/format_full", test_format_full },
	{ "record/format_order", test_format_order },
	{ "record/format_utf8", test_format_utf8 },
	{ "record/format_huge", test_format_huge },
	{ "record/format_null", test_format_null },
	{ "record/write_rotate", test_write_rotate },
	{ "record/write_generations", test_write_generations },
	{ "record/write_deleted", test_write_deleted },
	{ "record/write_failure", test_write_failure },
	{ "record/stats_count", test_stats_count },
	{ "record/stats_many_modules", test_stats_many_modules },
	{ "record/control_parse", test_control_parse },
	{ "record/control_roundtrip", test_control_roundtrip },
	{ "record/control_limits", test_control_limits },
	{ "record/control_open_errors", test_control_open_errors },
	{ "record/client_run", test_client_run },
)
