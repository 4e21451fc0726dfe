/* test_conf.c -- unit tests of the rmilter.conf loader: grammar, every
 * value type (good and bad), includes, diagnostics with file:line, the
 * shipped sample config and the man page's coverage of the schema. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"
#include "tt.h"

static struct conf_diag D;

static void test_conf_cleanup(void) __attribute__((destructor));

static void
test_conf_cleanup(void)
{
	conf_diag_free(&D);
}

/* Loads TEXT as "t.conf" into the global diag D (reset first). */
static struct rmilter_config *
load(const char *text)
{
	conf_diag_free(&D);
	conf_diag_init(&D);
	return conf_load_buffer("t.conf", text, strlen(text), &D);
}

/* Prints every diag (for failing tests). */
static void
dump(void)
{
	char buf[1200];
	size_t i;

	for (i = 0; i < D.n; i++) {
		conf_diag_format(&D.v[i], buf, sizeof(buf));
		fprintf(stderr, "    | %s\n", buf);
	}
}

/* true if D holds a LEVEL entry at FILE:LINE whose text contains SUB. */
static bool
has(enum conf_diag_level level, const char *file, unsigned line,
    const char *sub)
{
	size_t i;

	for (i = 0; i < D.n; i++)
		if (D.v[i].level == level && D.v[i].line == line &&
		    (file == NULL || (D.v[i].file != NULL &&
		    strcmp(D.v[i].file, file) == 0)) &&
		    strstr(D.v[i].msg, sub) != NULL)
			return true;
	dump();
	return false;
}

static size_t
count(enum conf_diag_level level)
{
	size_t i, n = 0;

	for (i = 0; i < D.n; i++)
		n += D.v[i].level == level;
	return n;
}

/* Loading TEXT fails with an error at LINE containing SUB. */
static void
expect_error(const char *text, unsigned line, const char *sub)
{
	struct rmilter_config *c = load(text);

	TT_CHECK(c == NULL);
	if (!has(CONF_DIAG_ERROR, "t.conf", line, sub))
		fprintf(stderr, "  wanted error at line %u with '%s' for:\n%s\n",
		    line, sub, text);
	TT_CHECK(has(CONF_DIAG_ERROR, "t.conf", line, sub));
	conf_unref(c);
}

static struct rmilter_config *
load_ok(const char *text)
{
	struct rmilter_config *c = load(text);

	if (c == NULL) {
		fprintf(stderr, "  unexpected failure for:\n%s\n", text);
		dump();
	}
	TT_CHECK(c != NULL);
	return c;
}

static const char *
srcdir(void)
{
	static char buf[4096];
	const char *env = getenv("RMILTER_SRCDIR"), *f = __FILE__, *p;

	ssize_t n;
	int i;

	if (env != NULL)
		return env;
	p = strstr(f, "test/unit/test_conf.c");
	if (p != NULL && p != f) {
		snprintf(buf, sizeof(buf), "%.*s", (int)(p - f - 1), f);
		return buf;
	}
	if (access("conf/rmilter.conf", R_OK) == 0)
		return ".";
	/* run from elsewhere: the binary is ROOT/build/VARIANT/test/NAME */
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return ".";
	buf[n] = '\0';
	for (i = 0; i < 4; i++) {
		char *slash = strrchr(buf, '/');

		if (slash == NULL)
			return ".";
		*slash = '\0';
	}
	return buf;
}

static void
test_defaults(void)
{
	struct rmilter_config *c = load_ok("");
	struct conf_sections *s;

	if (c == NULL)
		return;
	s = c->sections;
	TT_CHECK_INT(D.n, ==, 0);
	TT_CHECK_INT(c->refcnt, ==, 1);
	TT_CHECK_INT(c->bind.kind, ==, CONF_LISTEN_UNIX);
	TT_CHECK_STR(c->bind.path, "/var/tmp/rmilter.sock");
	TT_CHECK(c->pidfile == NULL);
	TT_CHECK_INT(c->bind_socket_mode, ==, -1);
	TT_CHECK_STR(c->syslog_name, "rmilter");
	TT_CHECK_STR(c->syslog_facility, "mail");
	TT_CHECK_INT(c->log_level, ==, LOG_LEVEL_INFO);
	TT_CHECK_INT(c->max_connections, ==, 10000);
	TT_CHECK_INT(c->listen_backlog, ==, 1024);
	TT_CHECK_INT(c->handshake_timeout, ==, 30000);
	TT_CHECK_INT(c->command_timeout, ==, 600000);
	TT_CHECK_INT(c->content_timeout, ==, 300000);
	TT_CHECK_INT(c->frame_timeout, ==, 30000);
	TT_CHECK_INT(c->shutdown_timeout, ==, 30000);
	TT_CHECK(!c->test_policy);
	TT_CHECK(c->tempdir != NULL);
	TT_CHECK_INT(c->tempfiles_mode, ==, 0600);
	TT_CHECK_INT(c->max_size, ==, 0);
	TT_CHECK(!c->strict_auth && !c->use_dcc && !c->use_redis);
	TT_CHECK_INT(s->clamav.connect_timeout, ==, 1000);
	TT_CHECK_INT(s->clamav.port_timeout, ==, 3000);
	TT_CHECK_INT(s->clamav.results_timeout, ==, 20000);
	TT_CHECK_INT(s->clamav.error_time, ==, 10000);
	TT_CHECK_INT(s->clamav.dead_time, ==, 300000);
	TT_CHECK_INT(s->clamav.maxerrors, ==, 10);
	TT_CHECK(!s->clamav.present);
	TT_CHECK_INT(s->spamd.retry_count, ==, 5);
	TT_CHECK_INT(s->spamd.retry_timeout, ==, 1000);
	TT_CHECK_STR(s->spamd.reject_message,
	    "Spam message rejected; If this is not spam contact abuse team");
	TT_CHECK_STR(s->spamd.spam_header, "X-Spam");
	TT_CHECK_STR(s->spamd.spam_header_value, "yes");
	TT_CHECK(s->spamd.spamd_greylist && s->spamd.spamd_spam_add_header);
	TT_CHECK(!s->spamd.spamd_never_reject && !s->spamd.tempfail_on_error);
	TT_CHECK_INT(s->spamd.servers.n, ==, 0);
	TT_CHECK(s->redis.copy_probability == 100.0);
	TT_CHECK_STR(s->redis.grey_prefix, "grey");
	TT_CHECK_STR(s->redis.white_prefix, "white");
	TT_CHECK_STR(s->redis.id_prefix, "id");
	TT_CHECK(s->greylisting.enable);
	TT_CHECK_INT(s->greylisting.timeout, ==, 300000);
	TT_CHECK_INT(s->greylisting.expire, ==, 86400000);
	TT_CHECK_INT(s->greylisting.expire_white, ==, 3 * 86400000LL);
	TT_CHECK_STR(s->greylisting.greylisted_message, "Try again later");
	TT_CHECK_INT(s->greylisting.awl_pool, ==, 10 << 20);
	TT_CHECK(s->limits.enable && !s->limits.limit_to.set);
	TT_CHECK_INT(s->limits.limit_bounce_addrs.n, ==, 6);
	if (s->limits.limit_bounce_addrs.n == 6) {
		TT_CHECK_STR(s->limits.limit_bounce_addrs.v[0], "postmaster");
		TT_CHECK_STR(s->limits.limit_bounce_addrs.v[3], "<>");
	}
	TT_CHECK_INT(s->dkim.sign_alg, ==, CONF_DKIM_SHA256);
	TT_CHECK_INT(s->dkim.header_canon, ==, CONF_DKIM_SIMPLE);
	TT_CHECK(s->dkim.auth_only && s->dkim.enable);
	TT_CHECK_INT(s->beanstalk.lifetime, ==, 172800000LL);
	TT_CHECK(s->beanstalk.copy_probability == 100.0);
	TT_CHECK_INT(s->nrules, ==, 0);
	conf_unref(c);
}

static void
test_strings(void)
{
	struct rmilter_config *c = load_ok(
	    "syslog_name = x11mail\n"
	    "pidfile = \"/run/a b.pid\"\n"
	    "log_file = /var/log/rmilter-2.log;\n"
	    "user = _rmilter; group = mail9\n"
	    "bind_socket_owner = postfix:postdrop\n"
	    "redis { dbname = 3; password = 's3cr\\'et'; grey_prefix = \"grey.\"; }\n"
	    "spamd { spam_header = true; reject_message = \"say \\\"no\\\"\"; }\n");

	if (c == NULL)
		return;
	TT_CHECK_STR(c->syslog_name, "x11mail");
	TT_CHECK_STR(c->pidfile, "/run/a b.pid");
	TT_CHECK_STR(c->log_file, "/var/log/rmilter-2.log");
	TT_CHECK_STR(c->user, "_rmilter");
	TT_CHECK_STR(c->group, "mail9");
	TT_CHECK_STR(c->bind_socket_owner, "postfix:postdrop");
	TT_CHECK_STR(c->sections->redis.dbname, "3");
	TT_CHECK_STR(c->sections->redis.password, "s3cr'et");
	TT_CHECK_STR(c->sections->redis.grey_prefix, "grey.");
	TT_CHECK_STR(c->sections->spamd.spam_header, "true");
	TT_CHECK_STR(c->sections->spamd.reject_message, "say \"no\"");
	TT_CHECK(c->use_redis);
	conf_unref(c);
	c = load_ok("pidfile = \"\";\n");
	if (c != NULL)
		TT_CHECK(c->pidfile == NULL);
	conf_unref(c);
	expect_error("\n\nbind_socket_owner = :grp;\n", 3, "user or user:group");
	expect_error("pidfile = /a, /b;\n", 1, "expects one value");
	expect_error("pidfile = /a /b;\n", 1, "expects one value");
	expect_error("pidfile;\n", 1, "missing '='");
	expect_error("pidfile = ;\n", 1, "missing value");
	expect_error("pidfile += /x;\n", 1, "'+=' only works on lists");
}

static void
test_flags(void)
{
	static const char *const yes[] = { "yes", "YES", "Yes", "true", "TRUE",
	    "on", "On", "y", "Y", "1" };
	static const char *const no[] = { "no", "NO", "false", "False", "off",
	    "OFF", "n", "N", "0" };
	char buf[128];
	size_t i;
	struct rmilter_config *c;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(buf, sizeof(buf), "test_policy = %s;", yes[i]);
		c = load_ok(buf);
		TT_CHECK(c != NULL && c->test_policy);
		conf_unref(c);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(buf, sizeof(buf), "test_policy = yes\ntest_policy = "
		    "%s;", no[i]);
		c = load_ok(buf);
		TT_CHECK(c != NULL && !c->test_policy);
		conf_unref(c);
	}
	expect_error("\ntest_policy = maybe;\n", 2, "expected yes or no");
	expect_error("spamd {\n  compression = 2;\n}\n", 2, "'spamd.compression'");
}

static void
test_uint(void)
{
	struct rmilter_config *c = load_ok("max_connections = 1\n"
	    "listen_backlog = 65535\nclamav { maxerrors = 3; }\n");

	if (c != NULL) {
		TT_CHECK_INT(c->max_connections, ==, 1);
		TT_CHECK_INT(c->listen_backlog, ==, 65535);
		TT_CHECK_INT(c->sections->clamav.maxerrors, ==, 3);
	}
	conf_unref(c);
	expect_error("max_connections = 0;\n", 1, "out of range (1..1000000)");
	expect_error("max_connections = 1000001;\n", 1, "out of range");
	expect_error("max_connections = 99999999999999999999999;\n", 1,
	    "out of range");
	expect_error("listen_backlog = -1;\n", 1, "expected a whole number");
	expect_error("listen_backlog = 10k;\n", 1, "expected a whole number");
	expect_error("listen_backlog = \"\";\n", 1, "expected a whole number");
}

static void
test_size(void)
{
	static const struct { const char *in; uint64_t out; } ok[] = {
		{ "512", 512 }, { "10k", 10240 }, { "10K", 10240 },
		{ "10M", 10485760 }, { "10m", 10485760 }, { "1G", 1073741824 },
		{ "2kb", 2048 }, { "1MiB", 1048576 }, { "1.5k", 1536 },
		{ "0", 0 },
	};
	static const char *const bad[] = { "", "k", "10x", "10 k", "-1",
	    "1e3", "10kk", "99999999999999999999G" };
	char err[256];
	uint64_t v;
	size_t i;
	struct rmilter_config *c;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		TT_CHECK_INT(conf_parse_size(ok[i].in, &v, err, sizeof(err)),
		    ==, 0);
		TT_CHECK_INT(v, ==, ok[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TT_CHECK_INT(conf_parse_size(bad[i], &v, err, sizeof(err)),
		    ==, -1);
	c = load_ok("max_size = 10M;\ngreylisting { awl_pool = 1G; }\n");
	if (c != NULL) {
		TT_CHECK_INT(c->max_size, ==, 10485760);
		TT_CHECK_INT(c->sections->greylisting.awl_pool, ==, 1 << 30);
	}
	conf_unref(c);
	expect_error("# x\nmax_size = 10 parsecs;\n", 2, "expects one value");
	expect_error("max_size = lots;\n", 1, "expected a size like");
}

static void
test_time(void)
{
	static const struct { const char *in; uint64_t out; } ok[] = {
		{ "5m", 300000 }, { "300ms", 300 }, { "1.5s", 1500 },
		{ "10s", 10000 }, { "2h", 7200000 }, { "1d", 86400000 },
		{ "45", 45000 }, { "1h30m", 5400000 }, { "0.5", 500 },
		{ "10S", 10000 }, { "2min", 120000 }, { "1w", 604800000 },
		{ "500MS", 500 }, { "0", 0 },
	};
	static const char *const bad[] = { "", "s", "5 m", "5x", "1.2.3s",
	    "10s5", "-1s", "1e3s", "5mm", "inf" };
	char err[256];
	uint64_t v;
	size_t i;
	struct rmilter_config *c;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		TT_CHECK_INT(conf_parse_time(ok[i].in, 1000, &v, err,
		    sizeof(err)), ==, 0);
		TT_CHECK_INT(v, ==, ok[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TT_CHECK_INT(conf_parse_time(bad[i], 1000, &v, err, sizeof(err)),
		    ==, -1);
	TT_CHECK_INT(conf_parse_time("7", 1, &v, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(v, ==, 7);	/* per-entry unit: ms */
	c = load_ok("command_timeout = 5m\nhandshake_timeout = 300ms\n"
	    "content_timeout = 90\nframe_timeout = 1.5s\n"
	    "greylisting { timeout = 5m; expire = 2d; }\n"
	    "spamd { results_timeout = 20000ms; }\n");
	if (c != NULL) {
		TT_CHECK_INT(c->command_timeout, ==, 300000);
		TT_CHECK_INT(c->handshake_timeout, ==, 300);
		TT_CHECK_INT(c->content_timeout, ==, 90000);
		TT_CHECK_INT(c->frame_timeout, ==, 1500);
		TT_CHECK_INT(c->sections->greylisting.timeout, ==, 300000);
		TT_CHECK_INT(c->sections->greylisting.expire, ==, 172800000);
		TT_CHECK_INT(c->sections->spamd.results_timeout, ==, 20000);
	}
	conf_unref(c);
	/* a bare 1000 in a timeout is probably meant as milliseconds */
	c = load_ok("spamd {\n connect_timeout = 1000;\n}\n");
	TT_CHECK(has(CONF_DIAG_WARNING, "t.conf", 2, "bare number is in seconds"));
	conf_unref(c);
	expect_error("\n\ncommand_timeout = 5 minutes;\n", 3, "expects one value");
	expect_error("command_timeout = soon;\n", 1,
	    "expected a time like 10s, 500ms, 5m");
	expect_error("handshake_timeout = 2h;\n", 1, "out of range");
	expect_error("clamav {\n\n connect_timeout = 0;\n}", 3,
	    "'clamav.connect_timeout': 0 is out of range");
}

static void
test_octal(void)
{
	struct rmilter_config *c = load_ok("bind_socket_mode = 0660\n"
	    "tempfiles_mode = 640;\n");

	if (c != NULL) {
		TT_CHECK_INT(c->bind_socket_mode, ==, 0660);
		TT_CHECK_INT(c->tempfiles_mode, ==, 0640);
	}
	conf_unref(c);
	c = load_ok("bind_socket_mode = \"0600\";\n");
	TT_CHECK(c != NULL && c->bind_socket_mode == 0600);
	conf_unref(c);
	expect_error("bind_socket_mode = 0689;\n", 1, "expected an octal mode");
	expect_error("bind_socket_mode = 01777;\n", 1, "expected an octal mode");
	expect_error("bind_socket_mode = rw;\n", 1, "expected an octal mode");
}

static void
test_float(void)
{
	static const struct { const char *in; double out; } ok[] = {
		{ "0.5", 50 }, { "50", 50 }, { "25%", 25 }, { "1", 100 },
		{ "\"0.1\"", 10 }, { "0", 0 }, { "100", 100 }, { "1.0", 100 },
	};
	char buf[128];
	size_t i;
	struct rmilter_config *c;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(buf, sizeof(buf), "redis { copy_probability = %s; }",
		    ok[i].in);
		c = load_ok(buf);
		TT_CHECK(c != NULL && fabs(c->sections->redis.copy_probability -
		    ok[i].out) < 1e-9);
		conf_unref(c);
	}
	expect_error("beanstalk {\ncopy_probability = 150;\n}", 2,
	    "out of range (0..100%)");
	expect_error("beanstalk {\ncopy_probability = half;\n}", 2,
	    "expected a number");
	expect_error("redis { copy_probability = nan; }", 1, "expected a number");
	expect_error("redis { copy_probability = -5; }", 1, "out of range");
}

static void
test_enum(void)
{
	struct rmilter_config *c = load_ok("log_level = DEBUG\n"
	    "syslog_facility = Local3\n"
	    "dkim { sign_alg = sha1; header_canon = relaxed; }\n");

	if (c != NULL) {
		TT_CHECK_INT(c->log_level, ==, LOG_LEVEL_DEBUG);
		TT_CHECK_STR(c->syslog_facility, "local3");
		TT_CHECK_INT(c->sections->dkim.sign_alg, ==, CONF_DKIM_SHA1);
		TT_CHECK_INT(c->sections->dkim.header_canon, ==,
		    CONF_DKIM_RELAXED);
		TT_CHECK_INT(c->sections->dkim.body_canon, ==, CONF_DKIM_SIMPLE);
	}
	conf_unref(c);
	expect_error("log_level = loud;\n", 1,
	    "expected one of error,warning,notice,info,debug");
	expect_error("syslog_facility = kern;\n", 1, "expected one of mail");
	expect_error("dkim { sign_alg = md5; }", 1, "'dkim.sign_alg'");
}

static void
test_bucket(void)
{
	struct rmilter_config *c = load_ok("limits {\n"
	    " limit_to = 20:0.016666667;\n limit_to_ip = 30:1/m;\n"
	    " limit_to_ip_from = \"100:2/10s\";\n limit_bounce_to = 0:0;\n}\n");
	struct conf_limits *l;

	if (c != NULL) {
		l = &c->sections->limits;
		TT_CHECK(l->limit_to.set && l->limit_to.burst == 20);
		TT_CHECK(fabs(l->limit_to.rate - 0.016666667) < 1e-12);
		TT_CHECK(l->limit_to_ip.set && l->limit_to_ip.burst == 30);
		TT_CHECK(fabs(l->limit_to_ip.rate - 1.0 / 60) < 1e-12);
		TT_CHECK(fabs(l->limit_to_ip_from.rate - 0.2) < 1e-12);
		TT_CHECK(!l->limit_bounce_to.set);
		TT_CHECK(!l->limit_bounce_to_ip.set);
	}
	conf_unref(c);
	expect_error("limits {\n\nlimit_to = 20;\n}", 3, "expected a bucket");
	expect_error("limits { limit_to = a:b; }", 1, "expected a bucket");
	expect_error("limits { limit_to = 1:-1; }", 1, "expected a bucket");
	expect_error("limits { limit_to = 1:1/0s; }", 1, "expected a bucket");
	expect_error("limits { limit_to = :1; }", 1, "expected a bucket");
}

static void
test_listen(void)
{
	struct conf_listen l;
	char err[256];

	memset(&l, 0, sizeof(l));
	TT_CHECK_INT(conf_parse_listen("unix:/var/run/r.sock", &l, err,
	    sizeof(err)), ==, 0);
	TT_CHECK(l.kind == CONF_LISTEN_UNIX);
	TT_CHECK_STR(l.path, "/var/run/r.sock");
	TT_CHECK_INT(conf_parse_listen("local:/x", &l, err, sizeof(err)), ==, 0);
	TT_CHECK_STR(l.path, "/x");
	TT_CHECK_INT(conf_parse_listen("inet:11339@127.0.0.1", &l, err,
	    sizeof(err)), ==, 0);
	TT_CHECK(l.kind == CONF_LISTEN_INET && l.port == 11339);
	TT_CHECK_STR(l.host, "127.0.0.1");
	TT_CHECK_STR(l.text, "inet:11339@127.0.0.1");
	TT_CHECK_INT(conf_parse_listen("inet:25", &l, err, sizeof(err)), ==, 0);
	TT_CHECK(l.kind == CONF_LISTEN_INET && l.port == 25 && l.host == NULL);
	TT_CHECK_INT(conf_parse_listen("inet:26@localhost", &l, err,
	    sizeof(err)), ==, 0);
	TT_CHECK_STR(l.host, "127.0.0.1");
	TT_CHECK_INT(conf_parse_listen("inet6:11339@[::1]", &l, err,
	    sizeof(err)), ==, 0);
	TT_CHECK(l.kind == CONF_LISTEN_INET6 && l.port == 11339);
	TT_CHECK_STR(l.host, "::1");
	TT_CHECK_INT(conf_parse_listen("inet6:11339", &l, err, sizeof(err)),
	    ==, 0);
	TT_CHECK(l.kind == CONF_LISTEN_INET6 && l.host == NULL);
	TT_CHECK_INT(conf_parse_listen("fd:3", &l, err, sizeof(err)), ==, 0);
	TT_CHECK(l.kind == CONF_LISTEN_FD && l.fd == 3);
	TT_CHECK_INT(conf_parse_listen("inet:0@127.0.0.1", &l, err,
	    sizeof(err)), ==, -1);
	TT_CHECK_INT(conf_parse_listen("inet:70000", &l, err, sizeof(err)),
	    ==, -1);
	TT_CHECK_INT(conf_parse_listen("inet:25@mail.example.com", &l, err,
	    sizeof(err)), ==, -1);
	TT_CHECK(strstr(err, "not resolved") != NULL);
	TT_CHECK_INT(conf_parse_listen("unix:", &l, err, sizeof(err)), ==, -1);
	TT_CHECK_INT(conf_parse_listen("fd:", &l, err, sizeof(err)), ==, -1);
	TT_CHECK_INT(conf_parse_listen("fd:-1", &l, err, sizeof(err)), ==, -1);
	TT_CHECK_INT(conf_parse_listen("tcp:25", &l, err, sizeof(err)), ==, -1);
	TT_CHECK(l.kind == CONF_LISTEN_FD);	/* unchanged after errors */
	conf_listen_free(&l);

	{
		struct rmilter_config *c = load_ok(
		    "bind_socket = \"inet:11339@127.0.0.1\"\n");

		TT_CHECK(c != NULL && c->bind.kind == CONF_LISTEN_INET &&
		    c->bind.port == 11339);
		conf_unref(c);
		c = load_ok("bind_socket = inet6:11339@[::1];\n");
		TT_CHECK(c != NULL && c->bind.kind == CONF_LISTEN_INET6);
		conf_unref(c);
	}
	expect_error("\nbind_socket = inet:port@host;\n", 2, "bad port");
	expect_error("bind_socket = 127.0.0.1:25;\n", 1,
	    "expected a socket like unix:/path");
}

static void
test_netlist(void)
{
	struct rmilter_config *c = load_ok(
	    "our_networks = 127.0.0.1, ::1, [2001:db8::]/32, 10.0.0.0/8,\n"
	    "  \"192.168.0.0/16; 172.16.0.0/12 fe80::/10\", [2001:db8:1::5/128];\n"
	    "clamav { whitelist = 127.0.0.0/8; }\n"
	    "spamd { whitelist = 192.0.2.1/24; }\n");
	const struct conf_netlist *l;
	uint8_t a4[4], a6[16];

	TT_CHECK(has(CONF_DIAG_WARNING, "t.conf", 4, "host bits set"));
	if (c == NULL)
		return;
	l = &c->our_networks;
	TT_CHECK_INT(l->n, ==, 8);
	TT_CHECK(l->v[0].family == AF_INET && l->v[0].prefix == 32);
	TT_CHECK(l->v[1].family == AF_INET6 && l->v[1].prefix == 128);
	TT_CHECK(l->v[2].family == AF_INET6 && l->v[2].prefix == 32);
	inet_pton(AF_INET, "10.1.2.3", a4);
	TT_CHECK(conf_netlist_match(l, AF_INET, a4));
	inet_pton(AF_INET, "11.1.2.3", a4);
	TT_CHECK(!conf_netlist_match(l, AF_INET, a4));
	inet_pton(AF_INET, "172.31.255.255", a4);
	TT_CHECK(conf_netlist_match(l, AF_INET, a4));
	inet_pton(AF_INET, "172.32.0.0", a4);
	TT_CHECK(!conf_netlist_match(l, AF_INET, a4));
	inet_pton(AF_INET6, "::ffff:192.168.7.7", a6);	/* v4-mapped */
	TT_CHECK(conf_netlist_match(l, AF_INET6, a6));
	inet_pton(AF_INET6, "2001:db8:ffff::1", a6);
	TT_CHECK(conf_netlist_match(l, AF_INET6, a6));
	inet_pton(AF_INET6, "2001:db9::1", a6);
	TT_CHECK(!conf_netlist_match(l, AF_INET6, a6));
	inet_pton(AF_INET6, "fe80::1", a6);
	TT_CHECK(conf_netlist_match(l, AF_INET6, a6));
	TT_CHECK(!conf_netlist_match(l, AF_UNIX, a6));
	l = &c->sections->spamd.whitelist;
	TT_CHECK_INT(l->n, ==, 1);
	inet_pton(AF_INET, "192.0.2.200", a4);
	TT_CHECK(l->n == 1 && conf_netlist_match(l, AF_INET, a4) &&
	    l->v[0].addr[3] == 0);
	conf_unref(c);
	c = load_ok("our_networks = 0.0.0.0/0;\n");
	inet_pton(AF_INET, "8.8.8.8", a4);
	TT_CHECK(c != NULL && conf_netlist_match(&c->our_networks, AF_INET, a4));
	conf_unref(c);
	expect_error("\nour_networks = 127.0.0.1, mail.example.com;\n", 2,
	    "host names are not resolved");
	expect_error("our_networks = 10.0.0.0/33;\n", 1, "bad prefix length");
	expect_error("our_networks = ::1/129;\n", 1, "bad prefix length");
	expect_error("our_networks = 300.1.1.1;\n", 1,
	    "expected an IP address or network");
	expect_error("our_networks = /re/;\n", 1, "expected an IP address");
}

static void
test_rcptlist(void)
{
	struct rmilter_config *c = load_ok(
	    "whitelist = user@x11.dom, @Example.COM, PostMaster,\n"
	    "   \"<abuse@b.org>, c@d.e\";\n"
	    "limits { limit_whitelist_rcpt = postmaster, mailer-daemon; }\n");
	const struct conf_rcptlist *l;

	if (c == NULL)
		return;
	l = &c->whitelist;
	TT_CHECK_INT(l->n, ==, 5);
	TT_CHECK_STR(l->v[0].user, "user");
	TT_CHECK_STR(l->v[0].domain, "x11.dom");
	TT_CHECK(l->v[1].user == NULL);
	TT_CHECK_STR(l->v[1].domain, "example.com");
	TT_CHECK_STR(l->v[2].user, "postmaster");
	TT_CHECK(l->v[2].domain == NULL);
	TT_CHECK_STR(l->v[3].user, "abuse");
	TT_CHECK(conf_rcptlist_match(l, "<User@X11.Dom>"));
	TT_CHECK(conf_rcptlist_match(l, "user@x11.dom"));
	TT_CHECK(!conf_rcptlist_match(l, "user@x12.dom"));
	TT_CHECK(conf_rcptlist_match(l, "anyone@EXAMPLE.com"));
	TT_CHECK(!conf_rcptlist_match(l, "anyone@sub.example.com"));
	TT_CHECK(conf_rcptlist_match(l, "<postmaster@anywhere.net>"));
	TT_CHECK(conf_rcptlist_match(l, "postmaster"));
	TT_CHECK(conf_rcptlist_match(l, "<ABUSE@b.org>"));
	TT_CHECK(!conf_rcptlist_match(l, "<>"));
	TT_CHECK(!conf_rcptlist_match(l, ""));
	TT_CHECK(!conf_rcptlist_match(NULL, "x"));
	TT_CHECK_INT(c->sections->limits.limit_whitelist_rcpt.n, ==, 2);
	conf_unref(c);
	expect_error("whitelist = user@;\n", 1, "expected a recipient");
	expect_error("whitelist = \"<>\";\n", 1, "expected a recipient");
}

static void
test_lists(void)
{
	struct rmilter_config *c = load_ok(
	    "spf_domains = example.com, example.net\n"
	    "spf_domains += example.org\n"
	    "limits {\n limit_bounce_addrs += bounce9;\n}\n"
	    "whitelist = a; whitelist = b\n"
	    "our_networks = 10.0.0.1\nour_networks += \"10.0.0.2, 10.0.0.3\"\n");

	if (c != NULL) {
		TT_CHECK_INT(c->spf_domains.n, ==, 3);
		if (c->spf_domains.n == 3)
			TT_CHECK_STR(c->spf_domains.v[2], "example.org");
		TT_CHECK_INT(c->sections->limits.limit_bounce_addrs.n, ==, 7);
		TT_CHECK_INT(c->whitelist.n, ==, 1);
		TT_CHECK_STR(c->whitelist.v[0].user, "b");
		TT_CHECK_INT(c->our_networks.n, ==, 3);
	}
	conf_unref(c);
	/* empty lists */
	c = load_ok("whitelist = ;\nour_networks = \"\";\nspf_domains = \"\"\n"
	    "limits { limit_bounce_addrs = ; }\nclamav { servers = ; }\n");
	if (c != NULL) {
		TT_CHECK_INT(c->whitelist.n, ==, 0);
		TT_CHECK_INT(c->our_networks.n, ==, 0);
		TT_CHECK_INT(c->spf_domains.n, ==, 0);
		TT_CHECK_INT(c->sections->limits.limit_bounce_addrs.n, ==, 0);
		TT_CHECK_INT(c->sections->clamav.servers.n, ==, 0);
		TT_CHECK(c->sections->clamav.present);
	}
	conf_unref(c);
	/* multi-line list continued by commas */
	c = load_ok("spamd {\n  whitelist = 10.0.0.1,\n   10.0.0.2,\n"
	    "   10.0.0.3;\n}\n");
	TT_CHECK(c != NULL && c->sections->spamd.whitelist.n == 3);
	conf_unref(c);
	expect_error("spf_domains = a,,b;\n", 1, "unexpected ','");
	expect_error("spf_domains = a,;\n", 1, "expected a value after ','");
}

static void
test_regex(void)
{
	struct rmilter_config *c = load_ok(
	    "beanstalk { id_regexp = /^<[a-z0-9.]+@example\\.com>$/ixs; }\n");

	if (c != NULL) {
		const struct conf_regex *re = &c->sections->beanstalk.id_regexp;
		pcre2_match_data *md;

		TT_CHECK(re->code != NULL);
		TT_CHECK_STR(re->text, "/^<[a-z0-9.]+@example\\.com>$/ixs");
		TT_CHECK(re->options == (PCRE2_CASELESS | PCRE2_EXTENDED |
		    PCRE2_DOTALL));
		md = pcre2_match_data_create_from_pattern(re->code, NULL);
		TT_CHECK(pcre2_match(re->code, (PCRE2_SPTR)"<AB@EXAMPLE.COM>",
		    16, 0, 0, md, NULL) > 0);
		pcre2_match_data_free(md);
	}
	conf_unref(c);
	c = load_ok("beanstalk { id_regexp = /a b;c/m; }\n");
	TT_CHECK(c != NULL && c->sections->beanstalk.id_regexp.options ==
	    PCRE2_MULTILINE);
	conf_unref(c);
	c = load_ok("beanstalk { id_regexp = /caf\xc3\xa9/u; }\n");
	TT_CHECK(c != NULL);
	conf_unref(c);
	expect_error("beanstalk {\n  id_regexp = /a(b/;\n}\n", 2,
	    "'beanstalk.id_regexp': bad regex /a(b/: missing closing "
	    "parenthesis");
	expect_error("beanstalk {\n\n  id_regexp = /ab/q;\n}\n", 3,
	    "unknown regex flag 'q'");
	expect_error("beanstalk {\n  id_regexp = /ab;\n}\n", 2,
	    "unterminated regex");
	expect_error("beanstalk { id_regexp = \"ab\"; }\n", 1,
	    "expected a regex like /pattern/i");
}

static void
test_servers(void)
{
	struct rmilter_config *c = load_ok(
	    "spamd { servers = r:localhost, r:10.0.0.1:11334:5, spamhost,\n"
	    "  /var/run/spamd.sock, r:/run/rspamd.sock, [::1]:783:2, ::1; }\n"
	    "clamav { servers = clamd.local, \"127.0.0.1:3311, ./clamd.sock\"; }\n"
	    "redis { servers_grey = {a.example:6380, b.example}, c.example; }\n"
	    "beanstalk { servers = 192.0.2.7; copy_server = bean:1; }\n");
	const struct conf_serverlist *l;

	TT_CHECK(has(CONF_DIAG_WARNING, "t.conf", 4, "mirror server"));
	if (c == NULL)
		return;
	l = &c->sections->spamd.servers;
	TT_CHECK_INT(l->n, ==, 7);
	if (l->n == 7) {
		TT_CHECK(l->v[0].is_rspamd && l->v[0].port == 11333);
		TT_CHECK_STR(l->v[0].host, "localhost");
		TT_CHECK(l->v[1].is_rspamd && l->v[1].port == 11334 &&
		    l->v[1].priority == 5);
		TT_CHECK(!l->v[2].is_rspamd && l->v[2].port == 783);
		TT_CHECK_STR(l->v[3].path, "/var/run/spamd.sock");
		TT_CHECK(l->v[3].host == NULL && l->v[3].port == 0);
		TT_CHECK(l->v[4].is_rspamd);
		TT_CHECK_STR(l->v[4].path, "/run/rspamd.sock");
		TT_CHECK_STR(l->v[5].host, "::1");
		TT_CHECK(l->v[5].port == 783 && l->v[5].priority == 2);
		TT_CHECK_STR(l->v[6].host, "::1");
		TT_CHECK_STR(l->v[6].text, "::1");
	}
	l = &c->sections->clamav.servers;
	TT_CHECK_INT(l->n, ==, 3);
	if (l->n == 3) {
		TT_CHECK(l->v[0].port == 3310);
		TT_CHECK(l->v[1].port == 3311);
		TT_CHECK_STR(l->v[2].path, "./clamd.sock");
	}
	l = &c->sections->redis.servers_grey;
	TT_CHECK_INT(l->n, ==, 2);
	if (l->n == 2) {
		TT_CHECK_STR(l->v[0].host, "a.example");
		TT_CHECK(l->v[0].port == 6380 && l->v[1].port == 6379);
	}
	TT_CHECK_INT(c->sections->beanstalk.servers.v[0].port, ==, 11300);
	TT_CHECK_INT(c->sections->beanstalk.copy_server.v[0].port, ==, 1);
	conf_unref(c);
	expect_error("clamav {\n servers = host:0;\n}\n", 2, "bad port");
	expect_error("clamav { servers = host:99999; }\n", 1, "bad port");
	expect_error("clamav { servers = host:1:x; }\n", 1, "bad priority");
	expect_error("clamav { servers = r:host; }\n", 1, "'r:' prefix");
	expect_error("clamav { servers = ho$t; }\n", 1, "expected a server");
	expect_error("clamav { servers = [::1; }\n", 1, "expected a server");
	expect_error("clamav { servers = [zz]:1; }\n", 1, "expected a server");
	expect_error("spf_domains = {a, b};\n", 1, "only allowed in server");
}

static void
test_rules(void)
{
	struct rmilter_config *c = load_ok(
	    "rule {\n"
	    "  not helo /^localhost$/i;\n"
	    "  connect /\\.example\\.com$/ /^192\\.0\\.2\\./;\n"
	    "  envfrom /spammer/; envrcpt /x y/;\n"
	    "  header /^Subject$/i /viagra/i;\n"
	    "  body /buy now/;\n"
	    "  reject \"go away\";\n"
	    "}\n"
	    "rule { accept; helo /trusted/; }\n"
	    "rule { discard; body /x/ }\n"
	    "rule { tempfail; helo /y/; }\n");
	const struct conf_rule *r;

	TT_CHECK_INT(count(CONF_DIAG_NOTICE), ==, 0);	/* rules are in force */
	if (c == NULL)
		return;
	TT_CHECK_INT(c->sections->nrules, ==, 4);
	r = &c->sections->rules[0];
	TT_CHECK_INT(r->action, ==, CONF_RULE_REJECT);
	TT_CHECK_STR(r->message, "go away");
	TT_CHECK_INT(r->nconds, ==, 6);
	if (r->nconds == 6) {
		TT_CHECK(r->conds[0].kind == CONF_COND_HELO && r->conds[0].negate);
		TT_CHECK(r->conds[0].re[0].options == PCRE2_CASELESS);
		TT_CHECK(r->conds[1].kind == CONF_COND_CONNECT &&
		    r->conds[1].nre == 2 && !r->conds[1].negate);
		TT_CHECK(r->conds[4].kind == CONF_COND_HEADER &&
		    r->conds[4].nre == 2);
		TT_CHECK_STR(r->conds[5].re[0].text, "/buy now/");
	}
	TT_CHECK_INT(c->sections->rules[1].action, ==, CONF_RULE_ACCEPT);
	TT_CHECK_INT(c->sections->rules[2].action, ==, CONF_RULE_DISCARD);
	TT_CHECK_INT(c->sections->rules[3].action, ==, CONF_RULE_TEMPFAIL);
	TT_CHECK(c->sections->rules[3].message == NULL);
	TT_CHECK_INT(c->sections->rules[1].line, ==, 9);
	conf_unref(c);
	expect_error("\nrule {\n helo /x/;\n}\n", 2, "rule without an action");
	expect_error("rule {\n accept;\n reject \"x\";\n}\n", 3,
	    "a second action");
	expect_error("rule {\n accept;\n hello /x/;\n}\n", 3,
	    "did you mean 'helo'?");
	expect_error("rule {\n accept;\n helo x;\n}\n", 3, "expected a regex");
	expect_error("rule {\n accept;\n helo /(/;\n}\n", 3, "bad regex");
	expect_error("rule {\n accept;\n helo;\n}\n", 3, "takes one /regex/");
	expect_error("rule {\n accept;\n body /a/ /b/;\n}\n", 3, "takes one");
	expect_error("rule {\n accept = yes;\n}\n", 2, "not a rule statement");
	expect_error("rule {\n not accept;\n}\n", 2, "'not' cannot apply");
	expect_error("rule {\n accept \"x\";\n}\n", 2, "takes no argument");
	expect_error("rule {\n accept;\n helo /x;\n}\n", 3, "unterminated regex");
	expect_error("rule {\n accept\n helo /x/;\n}\n", 2, "missing ';'");
}

static void
test_dkim(void)
{
	struct rmilter_config *c = load_ok(
	    "dkim {\n"
	    "  domain { key = /etc/dkim; domain = \"*\"; selector = \"dkim\"; };\n"
	    "  header_canon = relaxed;\n"
	    "}\n"
	    "dkim {\n  domain {\n    key = /etc/dkim/x.key;\n"
	    "    domain = example.com;\n    selector = s2017;\n  }\n}\n");

	if (c == NULL)
		return;
	TT_CHECK(c->sections->dkim.present);
	TT_CHECK_INT(c->sections->dkim.ndomains, ==, 2);
	if (c->sections->dkim.ndomains == 2) {
		TT_CHECK_STR(c->sections->dkim.domains[0].domain, "*");
		TT_CHECK_STR(c->sections->dkim.domains[1].selector, "s2017");
		TT_CHECK_STR(c->sections->dkim.domains[1].key,
		    "/etc/dkim/x.key");
		TT_CHECK_INT(c->sections->dkim.domains[1].line, ==, 6);
	}
	TT_CHECK_INT(c->sections->dkim.header_canon, ==, CONF_DKIM_RELAXED);
	conf_unref(c);
	expect_error("dkim {\n domain {\n  key = /k; domain = a.b;\n }\n}\n", 2,
	    "missing 'selector'");
	expect_error("dkim {\n domain {\n  keys = /k;\n }\n}\n", 3,
	    "did you mean 'key'?");
	expect_error("spamd {\n domain { }\n}\n", 2,
	    "unexpected section 'domain' inside section 'spamd'");
}

static void
test_syntax(void)
{
	struct rmilter_config *c;

	/* newline ends a top-level statement; comments anywhere */
	c = load_ok("# head\npidfile = /a.pid # trailing comment\n"
	    "  syslog_name=abc#def\n"
	    "max_connections # comment between tokens\n = # and here\n 5\n"
	    "spamd { # open\n  connect_timeout = 2s; # c\n} # close\n"
	    "clamav { connect_timeout = 3s }\n"
	    ";;\nlog_level = debug;\n");
	if (c != NULL) {
		TT_CHECK_STR(c->pidfile, "/a.pid");
		TT_CHECK_STR(c->syslog_name, "abc#def");
		TT_CHECK_INT(c->max_connections, ==, 5);
		TT_CHECK_INT(c->sections->clamav.connect_timeout, ==, 3000);
		TT_CHECK_INT(c->log_level, ==, LOG_LEVEL_DEBUG);
	}
	conf_unref(c);
	/* CRLF line ends */
	c = load_ok("pidfile = /x\r\nuser = nobody\r\n");
	TT_CHECK(c != NULL && strcmp(c->user, "nobody") == 0);
	conf_unref(c);
	expect_error("\n\npidfile = \"/run/x\n", 3, "unterminated quoted string");
	expect_error("\npidfile = \"/run/x", 2, "unterminated quoted string");
	expect_error("\nspamd {\n connect_timeout = 1s;\n", 2,
	    "unterminated section 'spamd'");
	expect_error("spamd {\n connect_timeout = 1s\n results_timeout = 2s;\n}\n",
	    2, "missing ';' after 'connect_timeout'");
	expect_error("\n}\n", 2, "unexpected '}'");
	expect_error("pidfile = /a user = b\n", 1, "unexpected '='");
	expect_error("\n\nspamdd {\n}\n", 3, "unknown section 'spamdd' (did you "
	    "mean 'spamd'?)");
	expect_error("frobnicate { }\n", 1, "unknown section 'frobnicate'");
	expect_error("pidfile { }\n", 1, "is a directive, not a section");
	expect_error("spamd {\n\n  results_tiemout = 10s;\n}\n", 3,
	    "unknown directive 'results_tiemout' in section 'spamd' (did "
	    "you mean 'results_timeout'?)");
	expect_error("\nbind_sockt = fd:3;\n", 2, "did you mean 'bind_socket'?");
	expect_error("servers = localhost;\n", 1, "belongs in section");
	expect_error("clamav { pidfile = /x; }\n", 1, "top-level directive");
	expect_error("xyzzy = 1;\n", 1, "unknown directive 'xyzzy' at the top");
	expect_error("= 1;\n", 1, "expected a directive name");
	expect_error("\"pidfile\" = 1;\n", 1, "expected a directive name");
	expect_error(".inclde foo\n", 1, "unknown directive '.inclde'");
	{
		static const char nul[] = "pidfile = /a;\nuser\0 = x;\n";

		conf_diag_free(&D);
		conf_diag_init(&D);
		c = conf_load_buffer("t.conf", nul, sizeof(nul) - 1, &D);
		TT_CHECK(c == NULL);
		TT_CHECK(has(CONF_DIAG_ERROR, "t.conf", 2, "NUL byte"));
	}
	expect_error("spamd { connect_timeout = 1s; } }\n", 1, "unexpected '}'");
	expect_error("spamd { { } }\n", 1, "expected a directive name");
	expect_error("a{a{a{a{a{a{a{a{a{a{a{a{a{a{a{a{a{a{a{a{}}}}}}}}}}}}}}}}}}}}",
	    1, "nested too deeply");
	expect_error("spamd {\n servers = a\n {b};\n}\n", 3, "unexpected '{'");
}

static void
test_notices(void)
{
	struct rmilter_config *c = load_ok(
	    "spamd {\n  servers = r:localhost;\n  trace_symbol = \"A\";\n"
	    "  trace_symbol = \"B\";\n}\n"
	    "clamav { port_timeout = 1s; }\n"
	    "memcached { servers_spam = localhost; }\n"
	    "use_dcc = no; max_size = 1M; test_policy = no\n");
	char buf[512];
	size_t i;

	TT_CHECK(c != NULL);
	TT_CHECK_INT(count(CONF_DIAG_NOTICE), ==, 4);
	TT_CHECK(has(CONF_DIAG_NOTICE, "t.conf", 3,
	    "'spamd.trace_symbol' recognized, not implemented yet"));
	TT_CHECK(has(CONF_DIAG_NOTICE, "t.conf", 6, "'clamav.port_timeout'"));
	TT_CHECK(has(CONF_DIAG_NOTICE, "t.conf", 7, "'redis.servers_spam'"));
	TT_CHECK(has(CONF_DIAG_NOTICE, "t.conf", 8, "'use_dcc'"));
	for (i = 0; i < D.n; i++)
		if (D.v[i].line == 3) {
			conf_diag_format(&D.v[i], buf, sizeof(buf));
			TT_CHECK_STR(buf, "t.conf:3: notice: 'spamd.trace_symbol' "
			    "recognized, not implemented yet");
		}
	TT_CHECK(c != NULL && c->use_redis && c->sections->redis.present);
	TT_CHECK(c != NULL && c->sections->spamd.trace_symbol != NULL &&
	    strcmp(c->sections->spamd.trace_symbol, "B") == 0);
	conf_unref(c);
	/* implemented directives give no notice, nor do empty sections of
	 * implemented modules */
	c = load_ok("log_level = debug\nmax_connections = 5\nclamav { }\n"
	    "rspamd { servers = r:localhost; }\nspamassassin { }\n");
	TT_CHECK_INT(D.n, ==, 0);
	conf_unref(c);
}

static void
test_dns_spf(void)
{
	struct rmilter_config *c = load_ok(
	    "spf_domains = example.com, *\n"
	    "dns {\n nameserver = 127.0.0.1:5353, [::1];\n timeout = 500ms;\n"
	    " attempts = 3;\n cache_size = 0;\n}\n"
	    "spf {\n fail_action = tempfail;\n temperror_action = tempfail;\n"
	    " header = both;\n authserv_id = mx.example.com;\n}\n");

	TT_CHECK_INT(count(CONF_DIAG_NOTICE), ==, 0);
	if (c != NULL) {
		const struct conf_dns *d = &c->sections->dns;
		const struct conf_spf *p = &c->sections->spf;

		TT_CHECK_INT(c->spf_domains.n, ==, 2);
		TT_CHECK_INT(d->nameserver.n, ==, 2);
		if (d->nameserver.n == 2) {
			TT_CHECK_INT(d->nameserver.v[0].port, ==, 5353);
			TT_CHECK_INT(d->nameserver.v[1].port, ==, 53);
		}
		TT_CHECK_INT(d->timeout, ==, 500);
		TT_CHECK_INT(d->attempts, ==, 3);
		TT_CHECK_INT(d->cache_size, ==, 0);
		TT_CHECK_INT(p->fail_action, ==, CONF_SPF_TEMPFAIL);
		TT_CHECK_INT(p->temperror_action, ==, CONF_SPF_TEMPFAIL);
		TT_CHECK_INT(p->softfail_action, ==, CONF_SPF_PASS);
		TT_CHECK_INT(p->permerror_action, ==, CONF_SPF_PASS);
		TT_CHECK_INT(p->header, ==, CONF_SPF_HDR_BOTH);
		TT_CHECK_STR(p->authserv_id, "mx.example.com");
	}
	conf_unref(c);
	/* defaults */
	c = load_ok("spf_domains = example.com\n");
	if (c != NULL) {
		TT_CHECK_INT(c->sections->spf.fail_action, ==, CONF_SPF_REJECT);
		TT_CHECK_INT(c->sections->spf.header, ==,
		    CONF_SPF_HDR_RECEIVED);
		TT_CHECK_INT(c->sections->dns.nameserver.n, ==, 0);
		TT_CHECK_INT(c->sections->dns.attempts, ==, 2);
	}
	conf_unref(c);
	expect_error("spf {\n fail_action = maybe;\n}\n", 2,
	    "'spf.fail_action'");
	expect_error("dns {\n\n attempts = 0;\n}\n", 3,
	    "'dns.attempts': 0 is out of range");
	expect_error("spf { header = x-spf; }\n", 1, "'spf.header'");
}

static void
test_aliases(void)
{
	struct rmilter_config *c = load_ok(
	    "check_auth = yes\n"
	    "spamd { spamd_temp_fail = yes; }\n"
	    "limits { limit_whitelist_ip = 10.0.0.0/8; }\n"
	    "memcached { grey_prefix = \"g.\"; }\n");

	if (c != NULL) {
		TT_CHECK(c->strict_auth);
		TT_CHECK(c->sections->spamd.tempfail_on_error);
		TT_CHECK_INT(c->sections->limits.limit_whitelist.n, ==, 1);
		TT_CHECK_STR(c->sections->redis.grey_prefix, "g.");
	}
	conf_unref(c);
}

static void
test_diag_format(void)
{
	struct conf_diag_entry e = { CONF_DIAG_ERROR, (char *)"f.conf", 7,
	    (char *)"boom" };
	char buf[64];

	conf_diag_format(&e, buf, sizeof(buf));
	TT_CHECK_STR(buf, "f.conf:7: error: boom");
	e.level = CONF_DIAG_WARNING;
	e.line = 0;
	conf_diag_format(&e, buf, sizeof(buf));
	TT_CHECK_STR(buf, "f.conf: warning: boom");
	e.file = NULL;
	e.level = CONF_DIAG_NOTICE;
	conf_diag_format(&e, buf, sizeof(buf));
	TT_CHECK_STR(buf, "notice: boom");
	conf_diag_format(&e, buf, 4);
	TT_CHECK_STR(buf, "not");
	TT_CHECK_INT(conf_edit_distance("results_tiemout", "results_timeout"),
	    ==, 2);
	TT_CHECK_INT(conf_edit_distance("", "abc"), ==, 3);
	TT_CHECK_INT(conf_edit_distance("abc", "ABC"), ==, 0);
}

static void
test_refcount(void)
{
	struct rmilter_config *c = load_ok("");

	if (c == NULL)
		return;
	TT_CHECK(conf_ref(c) == c);
	TT_CHECK_INT(c->refcnt, ==, 2);
	conf_unref(c);
	TT_CHECK_INT(c->refcnt, ==, 1);
	conf_unref(c);
	conf_unref(NULL);
	TT_CHECK(conf_ref(NULL) == NULL);
}

/* ---- include tests: a scratch directory ------------------------------- */

static char tmpdir_[256];

static void
put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir_, rel);
	f = fopen(path, "w");
	TT_CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

static struct rmilter_config *
load_file(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir_, rel);
	conf_diag_free(&D);
	conf_diag_init(&D);
	return conf_load(path, &D);
}

static bool
has_in(const char *rel, enum conf_diag_level level, unsigned line,
    const char *sub)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir_, rel);
	return has(level, path, line, sub);
}

static void
rm_tree(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir_);
	if (tmpdir_[0] != '\0' && strncmp(tmpdir_, "/tmp/", 5) == 0)
		TT_CHECK(system(cmd) == 0);
}

static void
test_include(void)
{
	struct rmilter_config *c;
	char path[512];

	snprintf(tmpdir_, sizeof(tmpdir_), "/tmp/test_conf.XXXXXX");
	TT_CHECK(mkdtemp(tmpdir_) != NULL);
	snprintf(path, sizeof(path), "%s/conf.d", tmpdir_);
	TT_CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/sub", tmpdir_);
	TT_CHECK(mkdir(path, 0700) == 0);

	put("main.conf", "pidfile = /main.pid\n"
	    ".include conf.d/*.conf\n"
	    "spf_domains = a.example\n"
	    "beanstalk {\n .include \"sub/spamd.inc\";\n}\n"
	    ".try_include /nonexistent/rmilter.conf.local\n"
	    ".try_include conf.d/*.nothing\n");
	put("conf.d/10-first.conf", "user = first\nspf_domains += b.example\n");
	put("conf.d/20-second.conf", "user = second\n.include ../sub/nested.inc\n");
	put("sub/nested.inc", "group = nested\n");
	put("sub/spamd.inc", "connect_timeout = 7s;\nprotocol = tcp;\n");
	c = load_file("main.conf");
	TT_CHECK(c != NULL);
	if (c != NULL) {
		TT_CHECK_STR(c->user, "second");	/* glob order */
		TT_CHECK_STR(c->group, "nested");	/* nested, relative */
		TT_CHECK_INT(c->spf_domains.n, ==, 1);	/* '=' replaced */
		TT_CHECK_INT(c->sections->beanstalk.connect_timeout, ==, 7000);
		TT_CHECK(strstr(c->path, "main.conf") != NULL);
	}
	TT_CHECK(has_in("sub/spamd.inc", CONF_DIAG_NOTICE, 2,
	    "'beanstalk.protocol'"));
	conf_unref(c);

	/* errors carry the included file's name and line */
	put("bad.conf", "pidfile = /x\n\n.include sub/broken.inc\n");
	put("sub/broken.inc", "\n\nmax_connections = lots\n");
	c = load_file("bad.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("sub/broken.inc", CONF_DIAG_ERROR, 3,
	    "'max_connections': expected a whole number"));
	conf_unref(c);
	put("sub/broken2.inc", "spamd {\n");
	put("bad2.conf", ".include sub/broken2.inc\n");
	c = load_file("bad2.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("sub/broken2.inc", CONF_DIAG_ERROR, 1,
	    "unterminated section"));

	/* a missing .include is an error at its line */
	put("missing.conf", "# x\n.include nothere/*.conf;\n");
	c = load_file("missing.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("missing.conf", CONF_DIAG_ERROR, 2, "matches no file"));

	/* an include loop stops at the nesting cap */
	put("loop.conf", "user = x\n.include loop.conf\n");
	c = load_file("loop.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("loop.conf", CONF_DIAG_ERROR, 2, "nested too deeply"));

	/* including a directory, and a directive after .include on one line */
	put("dir.conf", ".include sub\n");
	c = load_file("dir.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("dir.conf", CONF_DIAG_ERROR, 1, "Is a directory"));
	put("same.conf", ".include sub/nested.inc user = x\n");
	c = load_file("same.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("same.conf", CONF_DIAG_ERROR, 1, "missing ';'"));
	put("noarg.conf", ".include\nuser = x\n");
	c = load_file("noarg.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("noarg.conf", CONF_DIAG_ERROR, 2, "a file name"));

	/* a missing top-level file */
	c = load_file("no-such.conf");
	TT_CHECK(c == NULL);
	TT_CHECK(has_in("no-such.conf", CONF_DIAG_ERROR, 0,
	    "No such file or directory"));
	rm_tree();
}

static void
test_sample(void)
{
	char path[4096];
	struct rmilter_config *c;

	snprintf(path, sizeof(path), "%s/conf/rmilter.conf", srcdir());
	conf_diag_free(&D);
	conf_diag_init(&D);
	c = conf_load(path, &D);
	TT_CHECK(c != NULL);
	TT_CHECK_INT(D.nerrors, ==, 0);
	TT_CHECK_INT(count(CONF_DIAG_WARNING), ==, 0);
	TT_CHECK_INT(count(CONF_DIAG_NOTICE), ==, 0);
	if (c == NULL) {
		dump();
		return;
	}
	TT_CHECK(c->bind.kind == CONF_LISTEN_INET && c->bind.port == 11339);
	TT_CHECK_STR(c->bind.host, "127.0.0.1");
	TT_CHECK(c->pidfile == NULL && c->user == NULL && c->group == NULL);
	TT_CHECK(!c->test_policy);
	TT_CHECK_INT(c->sections->spamd.servers.n, ==, 0);
	TT_CHECK_INT(c->sections->clamav.servers.n, ==, 0);
	conf_unref(c);
}

/* Every commented-out directive line of the sample, uncommented, is valid:
 * the example values and defaults shown in the sample all load. */
static void
test_sample_examples(void)
{
	char path[4096], *conf, *out, *line, *save, *body;
	size_t len, olen = 0, tabs;
	struct rmilter_config *c;

	snprintf(path, sizeof(path), "%s/conf/rmilter.conf", srcdir());
	conf = conf_read_file(path, &len);
	TT_CHECK(conf != NULL);
	if (conf == NULL)
		return;
	out = calloc(1, len + 1);
	for (line = strtok_r(conf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		size_t bl;

		if (line[0] == '.')
			continue;	/* the .try_include lines */
		if (line[0] != '#') {
			olen += (size_t)sprintf(out + olen, "%s\n", line);
			continue;
		}
		body = line + 1;
		tabs = strspn(body, "\t");
		body += tabs;
		if (*body == '#')
			body++;
		bl = strlen(body);
		if (strcmp(body, "}") == 0 || (*body >= 'a' && *body <= 'z' &&
		    bl > 2 && (body[bl - 1] == ';' ||
		    strcmp(body + bl - 2, " {") == 0)))
			olen += (size_t)sprintf(out + olen, "%s\n", body);
	}
	c = load(out);
	if (c == NULL)
		dump();
	TT_CHECK(c != NULL);
	TT_CHECK_INT(D.nerrors, ==, 0);
	TT_CHECK_INT(count(CONF_DIAG_WARNING), ==, 0);
	TT_CHECK(count(CONF_DIAG_NOTICE) > 10);
	if (c != NULL) {
		TT_CHECK_INT(c->sections->dkim.ndomains, ==, 1);
		TT_CHECK_INT(c->sections->nrules, ==, 1);
		TT_CHECK_STR(c->pidfile, "/var/run/rmilter.pid");
	}
	conf_unref(c);
	free(out);
	free(conf);
}

/* Every directive of the schema is in the sample config and the man page. */
static void
test_docs_complete(void)
{
	const struct conf_directive *t;
	size_t n, i, len;
	char path[4096], pat[160], *conf, *man;

	snprintf(path, sizeof(path), "%s/conf/rmilter.conf", srcdir());
	conf = conf_read_file(path, &len);
	snprintf(path, sizeof(path), "%s/man/rmilter.conf.5", srcdir());
	man = conf_read_file(path, &len);
	TT_CHECK(conf != NULL && man != NULL);
	t = conf_schema_table(&n);
	for (i = 0; conf != NULL && man != NULL && i < n; i++) {
		snprintf(pat, sizeof(pat), "%s = ", t[i].name);
		if (!(t[i].flags & CONF_F_ALIAS) && strstr(conf, pat) == NULL) {
			fprintf(stderr, "  %s.%s missing in rmilter.conf\n",
			    t[i].section, t[i].name);
			TT_CHECK(0);
		}
		snprintf(pat, sizeof(pat), "\n.B %s\n", t[i].name);
		if (strstr(man, pat) == NULL) {
			snprintf(pat, sizeof(pat), "\\fB%s\\fR", t[i].name);
			if (strstr(man, pat) == NULL) {
				fprintf(stderr, "  %s.%s missing in "
				    "rmilter.conf.5\n", t[i].section,
				    t[i].name);
				TT_CHECK(0);
			}
		}
	}
	free(conf);
	free(man);
}

TT_MAIN(
	{ "conf/defaults", test_defaults },
	{ "conf/strings", test_strings },
	{ "conf/flags", test_flags },
	{ "conf/uint", test_uint },
	{ "conf/size", test_size },
	{ "conf/time", test_time },
	{ "conf/octal", test_octal },
	{ "conf/float", test_float },
	{ "conf/enum", test_enum },
	{ "conf/bucket", test_bucket },
	{ "conf/listen", test_listen },
	{ "conf/netlist", test_netlist },
	{ "conf/rcptlist", test_rcptlist },
	{ "conf/lists", test_lists },
	{ "conf/regex", test_regex },
	{ "conf/servers", test_servers },
	{ "conf/rules", test_rules },
	{ "conf/dkim", test_dkim },
	{ "conf/syntax", test_syntax },
	{ "conf/notices", test_notices },
	{ "conf/aliases", test_aliases },
	{ "conf/dns_spf", test_dns_spf },
	{ "conf/diag_format", test_diag_format },
	{ "conf/refcount", test_refcount },
	{ "conf/include", test_include },
	{ "conf/sample", test_sample },
	{ "conf/sample_examples", test_sample_examples },
	{ "conf/docs_complete", test_docs_complete },
)
