/* test_store.c -- the policy store: one semantic suite (greylisting with
 * its exact timeout boundary, white refresh, expiry, AWL; leaky buckets;
 * ids; cancel) run against the memory store and against a real
 * redis-server that the test starts on 127.0.0.1 (a free port, no
 * persistence) and stops by PID; then Redis specifics: concurrent commits
 * from two clients, AUTH/SELECT/unix socket, NOSCRIPT fallback, a server
 * killed and restarted, a stopped server (timeout), host names refused;
 * and the memory store's bound and sweep.  Without redis-server the Redis
 * half is skipped with a message, or fails under CI=true. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "conf_sections.h"
#include "daemon.h"
#include "log.h"
#include "redis_client.h"
#include "store.h"
#include "store_internal.h"
#include "upstream.h"
#include "tt.h"

static struct event_base *base;
static uint64_t fake_now = 1700000000000ULL;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
setup(void)
{
	if (base == NULL) {
		log_configure(LOG_TO_STDERR, "test", "mail", NULL,
		    LOG_LEVEL_ERROR);
		signal(SIGPIPE, SIG_IGN);	/* as the daemon: hiredis
						 * uses write(2) */
		base = event_base_new();
		daemon_test_init(base, NULL);
		store_mem_set_clock(fake_clock);
	}
}

/* Runs the loop for MS milliseconds. */
static void
run_ms(unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs the loop until *COUNT >= WANT or MS passed. */
static void
run_until(const int *count, int want, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (*count < want && mono_ms() < end)
		run_ms(2);
}

/* ---- results ------------------------------------------------------------- */

struct res {
	int calls;
	bool ok;
	char error[160];
	char server[128];
	enum store_grey_state grey;
	uint64_t remaining, elapsed;
	int over;
	bool found;
};

static void
on_result(void *ud, const struct store_result *r)
{
	struct res *x = ud;

	x->calls++;
	x->ok = r->ok;
	snprintf(x->error, sizeof(x->error), "%s", r->error);
	snprintf(x->server, sizeof(x->server), "%s", r->server);
	x->grey = r->grey;
	x->remaining = r->remaining;
	x->elapsed = r->elapsed;
	x->over = r->over;
	x->found = r->found;
}

/* Waits for OP (started with X); cancels it if it does not complete. */
static void
finish(struct store_op *op, struct res *x)
{
	TT_CHECK_INT(x->calls, ==, 0);	/* never inside the call */
	run_until(&x->calls, 1, 5000);
	if (x->calls == 0) {
		fprintf(stderr, "  operation did not complete\n");
		store_op_cancel(op);
	}
	TT_CHECK_INT(x->calls, ==, 1);
}

static struct res
grey(struct store *st, const char *key, const char *awl,
    const struct store_grey_params *p, uint64_t now)
{
	struct res x;

	fake_now = now;		/* the memory store's clock follows NOW */
	memset(&x, 0, sizeof(x));
	finish(store_greylist(st, key, awl, p, now, on_result, &x), &x);
	if (!x.ok)
		fprintf(stderr, "  greylist failed: %s\n", x.error);
	return x;
}

static struct res
limits(struct store *st, struct store_bucket *b, size_t n, int commit,
    uint64_t now)
{
	struct res x;

	fake_now = now;
	memset(&x, 0, sizeof(x));
	finish(store_limits(st, b, n, (enum store_limit_mode)commit, now,
	    on_result, &x), &x);
	if (!x.ok)
		fprintf(stderr, "  limits failed: %s\n", x.error);
	return x;
}

static struct res
id_put(struct store *st, const char *key, uint64_t ttl)
{
	struct res x;

	memset(&x, 0, sizeof(x));
	finish(store_id_put(st, key, ttl, on_result, &x), &x);
	return x;
}

static struct res
id_find(struct store *st, const char *const *keys, size_t n)
{
	struct res x;

	memset(&x, 0, sizeof(x));
	finish(store_id_find(st, keys, n, on_result, &x), &x);
	return x;
}

/* ---- redis-server -------------------------------------------------------- */

struct rserver {
	pid_t pid;
	unsigned port;
	char sock[108];		/* unix socket, or "" */
	const char *password;	/* or NULL */
};

static struct rserver RA, RB;	/* A: plain; B: password + unix socket */
static struct rserver RC;	/* plain, for two-server pools */
static int redis_state;		/* 0 unknown, 1 running, -1 did not start,
				 * -2 not installed */

static unsigned
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static bool
port_open(unsigned port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static bool
rserver_start(struct rserver *s)
{
	char port[16];
	uint64_t end;
	pid_t pid;

	snprintf(port, sizeof(port), "%u", s->port);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		const char *argv[20];
		int k = 0, fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		argv[k++] = "redis-server";
		argv[k++] = "--save";
		argv[k++] = "";
		argv[k++] = "--appendonly";
		argv[k++] = "no";
		argv[k++] = "--port";
		argv[k++] = port;
		argv[k++] = "--bind";
		argv[k++] = "127.0.0.1";
		if (s->password != NULL) {
			argv[k++] = "--requirepass";
			argv[k++] = s->password;
		}
		if (s->sock[0] != '\0') {
			argv[k++] = "--unixsocket";
			argv[k++] = s->sock;
			argv[k++] = "--unixsocketperm";
			argv[k++] = "700";
		}
		argv[k] = NULL;
		execvp("redis-server", (char *const *)argv);
		_exit(127);
	}
	s->pid = pid;
	end = mono_ms() + 10000;
	while (mono_ms() < end) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->pid = 0;
			return false;
		}
		if (port_open(s->port))
			return true;
		usleep(20000);
	}
	return false;
}

static void
rserver_stop(struct rserver *s)
{
	uint64_t end = mono_ms() + 5000;
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGCONT);
	kill(s->pid, SIGTERM);
	while (waitpid(s->pid, &st, WNOHANG) != s->pid) {
		if (mono_ms() > end) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	s->pid = 0;
}

static void
redis_stop_all(void)
{
	rserver_stop(&RA);
	rserver_stop(&RB);
	rserver_stop(&RC);
	if (RB.sock[0] != '\0')
		unlink(RB.sock);
}

static bool
have_redis_server(void)
{
	const char *path = getenv("PATH");
	char buf[4096], *dir, *save = NULL;

	if (path == NULL)
		path = "/usr/bin:/bin";	/* what execvp() uses then */
	snprintf(buf, sizeof(buf), "%s", path);
	for (dir = strtok_r(buf, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		char p[4200];

		snprintf(p, sizeof(p), "%s/redis-server", dir);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/* Starts the two servers once; false (with a message, or a failure under
 * CI=true) when there is no redis-server. */
static bool
need_redis(void)
{
	const char *ci = getenv("CI");

	setup();
	if (redis_state == 0 && !have_redis_server())
		redis_state = -2;
	if (redis_state == -2) {
		if (ci != NULL && strcmp(ci, "true") == 0) {
			fprintf(stderr, "  redis-server not found (CI=true: "
			    "a failure, not a skip)\n");
			TT_CHECK(!"redis-server is installed");
		} else
			fprintf(stderr, "  skipped: redis-server not found "
			    "(install redis-server for the Redis half)\n");
		return false;
	}
	if (redis_state == -1) {
		TT_CHECK(!"redis-server starts");
		return false;
	}
	if (redis_state == 1)
		return true;
	RA.port = free_port();
	RB.port = free_port();
	while (RB.port == RA.port)
		RB.port = free_port();
	RB.password = "s3cret";
	snprintf(RB.sock, sizeof(RB.sock), "/tmp/rmilter-test-redis-%d.sock",
	    (int)getpid());
	atexit(redis_stop_all);
	if (!rserver_start(&RA) || !rserver_start(&RB)) {
		redis_state = -1;
		fprintf(stderr, "  redis-server did not start\n");
		TT_CHECK(!"redis-server starts");
		return false;
	}
	redis_state = 1;
	return true;
}

static struct conf_server sv_buf[4];
static char sv_text[4][128];

static struct conf_serverlist
one_server(const char *host, unsigned port, const char *path)
{
	static unsigned next;
	struct conf_serverlist sl;
	unsigned i = next++ % 4;

	memset(&sv_buf[i], 0, sizeof(sv_buf[i]));
	if (path != NULL) {
		snprintf(sv_text[i], sizeof(sv_text[i]), "%s", path);
		sv_buf[i].path = (char *)path;
	} else {
		snprintf(sv_text[i], sizeof(sv_text[i]), "%s:%u", host, port);
		sv_buf[i].host = (char *)host;
		sv_buf[i].port = port;
	}
	sv_buf[i].text = sv_text[i];
	sl.v = &sv_buf[i];
	sl.n = 1;
	return sl;
}

static const struct store_redis_params RP_DEF = {
	.connect_timeout = 1000, .timeout = 2000, .error_time = 10000,
	.dead_time = 60000, .maxerrors = 3,
};

static struct store *
redis_store(const struct rserver *s, const struct store_redis_params *p)
{
	struct conf_serverlist sl = one_server("127.0.0.1", s->port, NULL);
	struct store_redis_params rp = p != NULL ? *p : RP_DEF;

	if (s->password != NULL && rp.password == NULL)
		rp.password = s->password;
	return store_redis_new("test redis", &sl, &rp);
}

/* A raw command on a store's client: the integer reply (or the length of
 * a string reply); -100 on failure. */
struct raw {
	int calls;
	long long v;
	char str[8192];
};

static void
raw_cb(void *ud, const redisReply *r, const char *error, const char *server)
{
	struct raw *x = ud;

	x->calls++;
	x->v = -100;
	if (r == NULL) {
		snprintf(x->str, sizeof(x->str), "%s", error);
		return;
	}
	if (r->type == REDIS_REPLY_INTEGER)
		x->v = r->integer;
	else if (r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_STATUS) {
		x->v = (long long)r->len;
		snprintf(x->str, sizeof(x->str), "%s", r->str);
	}
}

static struct raw
raw3(struct store *st, const char *a0, const char *a1, const char *a2)
{
	struct redis_client *rc = store_redis_client(st);
	const char *argv[3] = { a0, a1, a2 };
	struct upstream_server *srv;
	struct raw x;
	bool probe;

	memset(&x, 0, sizeof(x));
	srv = redis_client_pick(rc, a1, strlen(a1), &probe);
	redis_client_send(rc, srv, probe, NULL, a2 != NULL ? 3 : 2, argv,
	    NULL, raw_cb, &x);
	run_until(&x.calls, 1, 5000);
	TT_CHECK_INT(x.calls, ==, 1);
	return x;
}

/* ---- the two backends behind one suite ----------------------------------- */

struct backend {
	const char *name;
	struct store *st;
	bool redis;
};

static bool
backend_open(struct backend *b, bool redis)
{
	setup();
	memset(b, 0, sizeof(*b));
	b->redis = redis;
	if (!redis) {
		store_mem_reset();
		store_mem_configure(STORE_MEM_DEFAULT_BYTES);
		b->name = "memory";
		b->st = store_mem_store();
		return true;
	}
	if (!need_redis())
		return false;
	b->name = "redis";
	b->st = redis_store(&RA, NULL);
	raw3(b->st, "FLUSHALL", "SYNC", NULL);
	return true;
}

static void
backend_close(struct backend *b)
{
	if (b->redis)
		store_free(b->st);
	else
		store_mem_reset();
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* Milliseconds before KEY expires; -2: absent. */
static long long
pttl(struct backend *b, const char *key)
{
	if (!b->redis)
		return store_mem_pttl(key);
	return raw3(b->st, "PTTL", key, NULL).v;
}

/* Time passes: the fake clock (NOW, and the memory store's clock), and for
 * Redis also real time (its TTLs are real). */
static void
pass_time(struct backend *b, unsigned ms)
{
	fake_now += ms;
	if (b->redis)
		run_ms(ms);
}

static const struct store_grey_params GP = {
	.timeout = 300000, .expire = 86400000, .expire_white = 259200000,
	.awl_hits = 0, .awl_ttl = 3600000,
};

/* NEW -> WAIT -> PASSED exactly at the timeout -> WHITE. */
static void
suite_greylist(struct backend *b)
{
	uint64_t t = fake_now;
	struct res r;
	long long ttl;

	r = grey(b->st, "k1", NULL, &GP, t);
	TT_CHECK(r.ok && r.grey == STORE_GREY_NEW);
	TT_CHECK_INT(r.remaining, ==, 300000);
	TT_CHECK(b->redis ? r.server[0] != '\0' : r.server[0] == '\0');
	r = grey(b->st, "k1", NULL, &GP, t + 1000);
	TT_CHECK(r.ok && r.grey == STORE_GREY_WAIT);
	TT_CHECK_INT(r.remaining, ==, 299000);
	r = grey(b->st, "k1", NULL, &GP, t + 299999);
	TT_CHECK(r.grey == STORE_GREY_WAIT);
	TT_CHECK_INT(r.remaining, ==, 1);
	r = grey(b->st, "k1", NULL, &GP, t + 300000);	/* the boundary */
	TT_CHECK(r.ok && r.grey == STORE_GREY_PASSED);
	TT_CHECK_INT(r.elapsed, ==, 300000);
	TT_CHECK_INT(pttl(b, "grey:k1"), ==, -2);	/* deleted */
	ttl = pttl(b, "white:k1");
	TT_CHECK(ttl > 259200000 - 5000 && ttl <= 259200000);
	r = grey(b->st, "k1", NULL, &GP, t + 300001);
	TT_CHECK(r.ok && r.grey == STORE_GREY_WHITE);
	/* the grey record has its TTL */
	r = grey(b->st, "k2", NULL, &GP, t);
	ttl = pttl(b, "grey:k2");
	TT_CHECK(ttl > 86400000 - 5000 && ttl <= 86400000);
	r = grey(b->st, "k2", NULL, &GP, t + 450000);
	TT_CHECK(r.grey == STORE_GREY_PASSED);
	TT_CHECK_INT(r.elapsed, ==, 450000);
	/* a clock going backwards never passes early */
	r = grey(b->st, "k3", NULL, &GP, t);
	r = grey(b->st, "k3", NULL, &GP, t - 5000);
	TT_CHECK(r.grey == STORE_GREY_WAIT);
	TT_CHECK_INT(r.remaining, ==, 300000);
}

/* A white record's TTL is refreshed at each hit. */
static void
suite_white_refresh(struct backend *b)
{
	struct store_grey_params p = GP;
	uint64_t t = fake_now;
	long long before, after;
	struct res r;

	p.timeout = 1000;
	p.expire_white = 60000;
	grey(b->st, "wr", NULL, &p, t);
	r = grey(b->st, "wr", NULL, &p, t + 1000);
	TT_CHECK(r.grey == STORE_GREY_PASSED);
	pass_time(b, 300);
	before = pttl(b, "white:wr");
	TT_CHECK(before > 0 && before <= 59700);
	r = grey(b->st, "wr", NULL, &p, fake_now);
	TT_CHECK(r.grey == STORE_GREY_WHITE);
	after = pttl(b, "white:wr");
	TT_CHECK(after > before && after <= 60000);
	if (!b->redis) {
		/* past the first expiry, kept alive by the refreshes */
		fake_now += 50000;
		r = grey(b->st, "wr", NULL, &p, fake_now);
		TT_CHECK(r.grey == STORE_GREY_WHITE);
		fake_now += 50000;
		r = grey(b->st, "wr", NULL, &p, fake_now);
		TT_CHECK(r.grey == STORE_GREY_WHITE);
		fake_now += 60001;
		r = grey(b->st, "wr", NULL, &p, fake_now);
		TT_CHECK(r.grey == STORE_GREY_NEW);
	}
}

/* Grey and white records expire (short real TTLs for Redis). */
static void
suite_expire(struct backend *b)
{
	struct store_grey_params p = GP;
	struct res r;

	p.expire = 300;
	p.expire_white = 300;
	p.timeout = 100;
	r = grey(b->st, "ex", NULL, &p, fake_now);
	TT_CHECK(r.grey == STORE_GREY_NEW);
	pass_time(b, 400);
	r = grey(b->st, "ex", NULL, &p, fake_now);
	TT_CHECK(r.grey == STORE_GREY_NEW);	/* forgotten: new again */
	pass_time(b, 100);
	r = grey(b->st, "ex", NULL, &p, fake_now);
	TT_CHECK(r.grey == STORE_GREY_PASSED);
	r = grey(b->st, "ex", NULL, &p, fake_now);
	TT_CHECK(r.grey == STORE_GREY_WHITE);
	pass_time(b, 400);
	r = grey(b->st, "ex", NULL, &p, fake_now);
	TT_CHECK(r.grey == STORE_GREY_NEW);	/* white expired too */
}

/* After awl_hits passed triplets the client's network is whitelisted. */
static void
suite_awl(struct backend *b)
{
	struct store_grey_params p = GP;
	const char *net = "awl:192.0.2.0/24", *other = "awl:198.51.100.0/24";
	uint64_t t = fake_now;
	long long ttl;
	struct res r;

	p.timeout = 1000;
	p.awl_hits = 2;
	p.awl_ttl = 3600000;
	grey(b->st, "t1", net, &p, t);
	r = grey(b->st, "t1", net, &p, t + 1000);
	TT_CHECK(r.grey == STORE_GREY_PASSED);
	r = grey(b->st, "t2", net, &p, t + 1000);
	TT_CHECK(r.grey == STORE_GREY_NEW);	/* one hit is not enough */
	r = grey(b->st, "t2", net, &p, t + 2000);
	TT_CHECK(r.grey == STORE_GREY_PASSED);
	r = grey(b->st, "t3", net, &p, t + 2000);
	TT_CHECK(r.ok && r.grey == STORE_GREY_AWL);
	TT_CHECK_INT(pttl(b, "grey:t3"), ==, -2);	/* nothing stored */
	ttl = pttl(b, net);
	TT_CHECK(ttl > 3600000 - 5000 && ttl <= 3600000);
	r = grey(b->st, "t3", other, &p, t + 2000);
	TT_CHECK(r.grey == STORE_GREY_NEW);	/* another network */
	p.awl_hits = 3;
	r = grey(b->st, "t4", net, &p, t + 2000);
	TT_CHECK(r.grey == STORE_GREY_NEW);	/* 2 < 3 */
	p.awl_hits = 0;				/* AWL off */
	r = grey(b->st, "t5", net, &p, t + 2000);
	TT_CHECK(r.grey == STORE_GREY_NEW);
}

static void
bucket_init(struct store_bucket *b, const char *key, double burst,
    double rate)
{
	memset(b, 0, sizeof(*b));
	b->key = (char *)key;
	b->burst = burst;
	b->rate = rate;
}

static void
suite_buckets(struct backend *b)
{
	struct store_bucket k[2];
	uint64_t t = fake_now;
	long long ttl;
	struct res r;

	bucket_init(&k[0], "lim:a", 3, 1);
	r = limits(b->st, k, 1, false, t);
	TT_CHECK(r.ok && r.over == -1 && !k[0].over);
	TT_CHECK(k[0].level == 0);
	TT_CHECK_INT(pttl(b, "lim:a"), ==, -2);	/* a check stores nothing */
	r = limits(b->st, k, 1, true, t);
	TT_CHECK(r.ok && k[0].level == 1 && !k[0].over);
	r = limits(b->st, k, 1, true, t);
	r = limits(b->st, k, 1, true, t);
	TT_CHECK(k[0].level == 3 && !k[0].over && r.over == -1);
	ttl = pttl(b, "lim:a");
	TT_CHECK(ttl > 0 && ttl <= 3000);		/* burst / rate */
	r = limits(b->st, k, 1, false, t);		/* the check */
	TT_CHECK(r.ok && k[0].over && r.over == 0);	/* 3 + 1 > 3 */
	TT_CHECK(k[0].level == 3);
	r = limits(b->st, k, 1, true, t);	/* a full bucket reserves nothing */
	TT_CHECK(k[0].level == 3 && k[0].over && r.over == 0);
	r = limits(b->st, k, 1, STORE_LIMIT_REFUND, t);	/* one given back */
	TT_CHECK(r.ok && k[0].level == 2 && r.over == -1);
	r = limits(b->st, k, 1, true, t);
	TT_CHECK(k[0].level == 3 && !k[0].over);
	/* the leak: 1 per second */
	r = limits(b->st, k, 1, false, t + 1500);
	TT_CHECK(k[0].level == 1.5 && !k[0].over);
	r = limits(b->st, k, 1, false, t + 500);
	TT_CHECK(k[0].level == 2.5 && k[0].over && r.over == 0);
	r = limits(b->st, k, 1, false, t + 2000);	/* nothing stored */
	TT_CHECK(k[0].level == 1);
	r = limits(b->st, k, 1, STORE_LIMIT_REFUND, t + 9000);
	TT_CHECK(k[0].level == 0);			/* not below 0 */

	/* several buckets at once: the first one over is named */
	bucket_init(&k[0], "lim:b1", 10, 2);
	bucket_init(&k[1], "lim:b2", 1, 0.5);
	r = limits(b->st, k, 2, true, t);
	TT_CHECK(r.ok && k[0].level == 1 && k[1].level == 1);
	r = limits(b->st, k, 2, false, t);
	TT_CHECK(r.over == 1 && !k[0].over && k[1].over);
	ttl = pttl(b, "lim:b2");
	TT_CHECK(ttl > 0 && ttl <= 2000);
	/* all or nothing: b2 is full, so b1 is not touched either */
	r = limits(b->st, k, 2, true, t);
	r = limits(b->st, k, 2, true, t);
	TT_CHECK(r.over == 1 && k[0].level == 1 && k[1].level == 1);
	r = limits(b->st, k, 2, false, t + 500);
	TT_CHECK(k[0].level == 0 && k[1].level == 0.75);
	/* no buckets: completes, nothing over */
	r = limits(b->st, k, 0, true, t);
	TT_CHECK(r.ok && r.over == -1);
}

static void
suite_ids(struct backend *b)
{
	const char *both[] = { "id:nope", "id:x" }, *none[] = { "id:nope" };
	const char *shortk[] = { "id:short" }, *quiet[] = { "id:quiet" };
	struct res r;
	int i;

	r = id_put(b->st, "id:x", 60000);
	TT_CHECK(r.ok);
	r = id_find(b->st, both, 2);
	TT_CHECK(r.ok && r.found);
	r = id_find(b->st, none, 1);
	TT_CHECK(r.ok && !r.found);
	r = id_find(b->st, none, 0);
	TT_CHECK(r.ok && !r.found);
	TT_CHECK(pttl(b, "id:x") > 55000);
	/* fire and forget */
	store_id_put(b->st, "id:quiet", 60000, NULL, NULL);
	for (i = 0; i < 100 && !id_find(b->st, quiet, 1).found; i++)
		;
	TT_CHECK(i < 100);
	r = id_put(b->st, "id:short", 300);
	pass_time(b, 400);
	r = id_find(b->st, shortk, 1);
	TT_CHECK(r.ok && !r.found);
}

/* A cancelled operation never calls back; nothing leaks. */
static void
suite_cancel(struct backend *b)
{
	struct store_bucket k;
	const char *keys[] = { "id:c" };
	struct res x;

	memset(&x, 0, sizeof(x));
	bucket_init(&k, "lim:c", 5, 1);
	store_op_cancel(store_greylist(b->st, "c1", NULL, &GP, fake_now,
	    on_result, &x));
	store_op_cancel(store_limits(b->st, &k, 1, true, fake_now, on_result,
	    &x));
	store_op_cancel(store_id_put(b->st, "id:c", 1000, on_result, &x));
	store_op_cancel(store_id_find(b->st, keys, 1, on_result, &x));
	run_ms(100);
	TT_CHECK_INT(x.calls, ==, 0);
	/* the store still works */
	TT_CHECK(grey(b->st, "c2", NULL, &GP, fake_now).ok);
	store_op_cancel(NULL);
}

static void
run_suite(bool redis, void (*fn)(struct backend *))
{
	struct backend b;

	if (!backend_open(&b, redis))
		return;
	fn(&b);
	backend_close(&b);
}

#define SUITE(name)							\
	static void test_mem_##name(void)				\
	{ run_suite(false, suite_##name); }				\
	static void test_redis_##name(void)				\
	{ run_suite(true, suite_##name); }

SUITE(greylist)
SUITE(white_refresh)
SUITE(expire)
SUITE(awl)
SUITE(buckets)
SUITE(ids)
SUITE(cancel)

/* ---- the scripts' digests ------------------------------------------------ */

static void
sha1_hex(const char *text, char out[41])
{
	char path[] = "/tmp/rmilter-test-sha1-XXXXXX", cmd[200];
	int fd = mkstemp(path);
	FILE *f;

	out[0] = '\0';
	if (fd < 0)
		return;
	(void)!write(fd, text, strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "sha1sum %s", path);
	if ((f = popen(cmd, "r")) != NULL) {
		if (fscanf(f, "%40s", out) != 1)
			out[0] = '\0';
		pclose(f);
	}
	unlink(path);
}

static void
test_script_sha1(void)
{
	const struct redis_script *s[] = { &store_script_greylist,
	    &store_script_limits };
	char hex[41];
	size_t i;

	for (i = 0; i < 2; i++) {
		sha1_hex(s[i]->body, hex);
		if (strcmp(hex, s[i]->sha1) != 0)
			fprintf(stderr, "  script %s: sha1 is %s\n",
			    s[i]->name, hex);
		TT_CHECK_STR(hex, s[i]->sha1);
	}
}

/* A server without the scripts cached: EVAL once, then EVALSHA works. */
static void
test_redis_noscript(void)
{
	struct backend b;
	struct raw x;
	struct res r;

	if (!backend_open(&b, true))
		return;
	x = raw3(b.st, "SCRIPT", "FLUSH", NULL);
	TT_CHECK_STR(x.str, "OK");
	x = raw3(b.st, "SCRIPT", "EXISTS", store_script_greylist.sha1);
	r = grey(b.st, "ns", NULL, &GP, fake_now);
	TT_CHECK(r.ok && r.grey == STORE_GREY_NEW);
	x = raw3(b.st, "SCRIPT", "LOAD", store_script_limits.body);
	TT_CHECK_STR(x.str, store_script_limits.sha1);
	x = raw3(b.st, "SCRIPT", "LOAD", store_script_greylist.body);
	TT_CHECK_STR(x.str, store_script_greylist.sha1);
	backend_close(&b);
}

/* ---- Redis: concurrency -------------------------------------------------- */

struct conc {
	int calls;
	int accepted;		/* commits that did not overflow */
	int failed;
};

static void
conc_cb(void *ud, const struct store_result *r)
{
	struct conc *c = ud;

	c->calls++;
	if (!r->ok)
		c->failed++;
	else if (r->over < 0)
		c->accepted++;
}

/* N commits on one bucket, alternating between two clients. */
static void
commit_burst(struct store *s1, struct store *s2, struct store_bucket *b,
    int n, struct conc *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < n; i++) {
		bucket_init(&b[i], "lim:conc", 50, 0.001);
		store_limits(i % 2 ? s2 : s1, &b[i], 1, true, fake_now, conc_cb,
		    c);
	}
	run_until(&c->calls, n, 10000);
	TT_CHECK_INT(c->calls, ==, n);
	TT_CHECK_INT(c->failed, ==, 0);
}

static void
test_redis_concurrency(void)
{
	struct store *s1, *s2;
	struct store_bucket *b;
	struct backend bk;
	struct conc c;
	struct res r;
	int i, seen51 = 0;

	if (!backend_open(&bk, true))
		return;
	s1 = redis_store(&RA, NULL);
	s2 = redis_store(&RA, NULL);
	b = calloc(200, sizeof(*b));
	/* below the burst: no update is lost */
	commit_burst(s1, s2, b, 40, &c);
	TT_CHECK_INT(c.accepted, ==, 40);
	bucket_init(&b[0], "lim:conc", 50, 0.001);
	r = limits(bk.st, b, 1, false, fake_now);
	TT_CHECK(r.ok && b[0].level == 40);
	/* 200 more: exactly 10 fit (reservations are atomic), the level
	 * stops at the burst */
	commit_burst(s1, s2, b, 200, &c);
	TT_CHECK_INT(c.accepted, ==, 10);
	for (i = 0; i < 200; i++)
		if (b[i].level == 50 && b[i].over)
			seen51++;
	TT_CHECK_INT(seen51, ==, 190);
	bucket_init(&b[0], "lim:conc", 50, 0.001);
	r = limits(bk.st, b, 1, false, fake_now);
	TT_CHECK(r.ok && b[0].level == 50 && r.over == 0);
	/* one connection per client, reused by every command */
	TT_CHECK_INT(redis_client_connects(store_redis_client(s1)), ==, 1);
	TT_CHECK_INT(redis_client_connects(store_redis_client(s2)), ==, 1);
	free(b);
	store_free(s1);
	store_free(s2);
	backend_close(&bk);
}

/* ---- Redis: two servers --------------------------------------------- */

/* EVALSHA calls the server has run since the last CONFIG RESETSTAT. */
static long long
evalsha_calls(struct store *st)
{
	struct raw x = raw3(st, "INFO", "commandstats", NULL);
	const char *p = strstr(x.str, "cmdstat_evalsha:calls=");

	return p != NULL ? atoll(p + 22) : 0;
}

static bool
has_key(struct store *st, const char *key)
{
	return raw3(st, "EXISTS", key, NULL).v == 1;
}

/* Keys spread over two servers, one command per server per operation;
 * a client's greylist records follow its AWL key. */
static void
test_redis_two_servers(void)
{
	static char text[2][64];
	struct conf_server v[2];
	struct conf_serverlist sl;
	struct store *st, *a, *c;
	struct store_bucket b[16];
	char keys[16][24];
	const char *kp[16], *missing[2] = { "id:m1", "id:m2" };
	struct store_grey_params p = GP;
	int i, on_a = 0, on_c = 0;
	struct res r;

	if (!need_redis())
		return;
	if (RC.pid == 0) {
		RC.port = free_port();
		TT_CHECK(rserver_start(&RC));
	}
	memset(v, 0, sizeof(v));
	snprintf(text[0], sizeof(text[0]), "127.0.0.1:%u", RA.port);
	snprintf(text[1], sizeof(text[1]), "127.0.0.1:%u", RC.port);
	v[0].text = text[0];
	v[0].host = (char *)"127.0.0.1";
	v[0].port = RA.port;
	v[1].text = text[1];
	v[1].host = (char *)"127.0.0.1";
	v[1].port = RC.port;
	sl.v = v;
	sl.n = 2;
	st = store_redis_new("two", &sl, &RP_DEF);
	a = redis_store(&RA, NULL);
	c = redis_store(&RC, NULL);
	raw3(a, "FLUSHALL", "SYNC", NULL);
	raw3(c, "FLUSHALL", "SYNC", NULL);
	/* make sure the scripts are cached, then count */
	TT_CHECK(limits(st, b, 0, true, fake_now).ok);
	for (i = 0; i < 16; i++) {
		snprintf(keys[i], sizeof(keys[i]), "lim:k%02d", i);
		bucket_init(&b[i], keys[i], 5, 1);
		kp[i] = keys[i];
	}
	TT_CHECK(limits(st, b, 16, true, fake_now).ok);
	raw3(a, "CONFIG", "RESETSTAT", NULL);
	raw3(c, "CONFIG", "RESETSTAT", NULL);
	r = limits(st, b, 16, true, fake_now);
	TT_CHECK(r.ok && r.over == -1);
	TT_CHECK_INT(evalsha_calls(a) + evalsha_calls(c), ==, 2);
	for (i = 0; i < 16; i++) {
		bool ina = has_key(a, keys[i]), inc = has_key(c, keys[i]);

		TT_CHECK(b[i].level == 2);
		TT_CHECK(ina != inc);		/* on exactly one */
		on_a += ina;
		on_c += inc;
	}
	TT_CHECK(on_a > 0 && on_c > 0);
	bucket_init(&b[0], keys[0], 2, 1);	/* over: 2 + 1 > 2 */
	r = limits(st, b, 16, false, fake_now);
	TT_CHECK(r.over == 0 && b[0].over && !b[15].over);
	/* ids */
	for (i = 0; i < 16; i++) {
		snprintf(keys[i], sizeof(keys[i]), "id:%02d", i);
		TT_CHECK(id_put(st, keys[i], 60000).ok);
	}
	for (i = 0; i < 16; i++)
		TT_CHECK(id_find(st, &kp[i], 1).found);
	TT_CHECK(id_find(st, kp, 16).found);
	r = id_find(st, missing, 2);
	TT_CHECK(r.ok && !r.found);
	/* one client's triplets and AWL counter share a server */
	p.timeout = 1000;
	p.awl_hits = 100;
	for (i = 0; i < 8; i++) {
		snprintf(keys[i], sizeof(keys[i]), "tr%02d", i);
		grey(st, keys[i], "awl:net1", &p, fake_now);
		grey(st, keys[i], "awl:net1", &p, fake_now + 1000);
	}
	for (i = 0; i < 8; i++) {
		char wk[64];

		snprintf(wk, sizeof(wk), "white:%.23s", keys[i]);
		TT_CHECK(has_key(has_key(a, "awl:net1") ? a : c, wk));
	}
	store_free(st);
	store_free(a);
	store_free(c);
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* ---- Redis: AUTH, SELECT, unix socket ------------------------------------ */

static void
test_redis_auth_select_unix(void)
{
	struct store_redis_params p = RP_DEF;
	struct conf_serverlist sl;
	struct store *st, *st2;
	const char *k[] = { "id:db" };
	struct raw x;
	struct res r;

	if (!need_redis())
		return;
	/* over the unix socket, with AUTH and SELECT 3 */
	p.password = RB.password;
	p.dbname = "3";
	sl = one_server(NULL, 0, RB.sock);
	st = store_redis_new("unix", &sl, &p);
	r = id_put(st, "id:db", 60000);
	TT_CHECK(r.ok);
	TT_CHECK_STR(r.server, RB.sock);
	x = raw3(st, "EXISTS", "id:db", NULL);
	TT_CHECK_INT(x.v, ==, 1);
	/* db 0 over TCP does not have it */
	st2 = redis_store(&RB, NULL);
	TT_CHECK(!id_find(st2, k, 1).found);
	store_free(st2);
	/* db 3 over TCP has it */
	p.dbname = "3";
	st2 = redis_store(&RB, &p);
	TT_CHECK(id_find(st2, k, 1).found);
	store_free(st2);
	store_free(st);

	/* a wrong password: a clear error */
	p.password = "wrong";
	st = redis_store(&RB, &p);
	r = id_put(st, "id:db", 60000);
	TT_CHECK(!r.ok && strstr(r.error, "AUTH refused") != NULL);
	if (r.ok || strstr(r.error, "AUTH refused") == NULL)
		fprintf(stderr, "  error: %s\n", r.error);
	store_free(st);
	/* no password at all */
	p.password = NULL;
	p.dbname = NULL;
	sl = one_server("127.0.0.1", RB.port, NULL);
	st = store_redis_new("nopass", &sl, &p);
	r = id_put(st, "id:db", 60000);
	TT_CHECK(!r.ok && strstr(r.error, "NOAUTH") != NULL);
	store_free(st);
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* ---- Redis: failures ----------------------------------------------------- */

/* A server killed: operations fail fast; after maxerrors the server is
 * dead; restarted: it is probed, revived, and works again. */
static void
test_redis_killed(void)
{
	struct store_redis_params p = RP_DEF;
	struct upstream_server *srv;
	const char *k[] = { "id:kill" };
	struct store *st;
	uint64_t t0;
	struct res r;
	int i;

	if (!need_redis())
		return;
	p.maxerrors = 2;
	p.error_time = 10000;
	p.dead_time = 60000;
	p.timeout = 3000;
	st = redis_store(&RB, &p);
	srv = &redis_client_pool(store_redis_client(st))->servers[0];
	r = id_put(st, "id:kill", 60000);
	TT_CHECK(r.ok);
	rserver_stop(&RB);
	for (i = 0; i < 2; i++) {
		t0 = mono_ms();
		r = id_find(st, k, 1);
		TT_CHECK(!r.ok);
		TT_CHECK(mono_ms() - t0 < 1000);	/* no hang */
		TT_CHECK(strstr(r.error, "redis 127.0.0.1:") == r.error);
	}
	TT_CHECK(srv->dead);
	/* dead: still fails at once (a probe each time, refused) */
	t0 = mono_ms();
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok && mono_ms() - t0 < 1000);
	TT_CHECK(srv->dead);
	/* restarted (empty: no persistence) */
	TT_CHECK(rserver_start(&RB));
	r = id_find(st, k, 1);
	TT_CHECK(r.ok && !r.found);
	if (!r.ok)
		fprintf(stderr, "  after the restart: %s\n", r.error);
	TT_CHECK(!srv->dead);
	r = id_put(st, "id:kill", 60000);
	TT_CHECK(r.ok);
	TT_CHECK(id_find(st, k, 1).found);
	store_free(st);
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* A server that stops answering: the command times out, the connection
 * is remade for the next one. */
static void
test_redis_timeout(void)
{
	struct store_redis_params p = RP_DEF;
	const char *k[] = { "id:to" };
	struct redis_client *rc;
	struct store *st;
	struct res r, x;
	uint64_t t0;

	if (!need_redis())
		return;
	p.timeout = 300;
	st = redis_store(&RA, &p);
	rc = store_redis_client(st);
	TT_CHECK(id_put(st, "id:to", 60000).ok);
	TT_CHECK_INT(redis_client_connects(rc), ==, 1);
	kill(RA.pid, SIGSTOP);
	t0 = mono_ms();
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok && strstr(r.error, "timed out (0.3 s)") != NULL);
	TT_CHECK(mono_ms() - t0 >= 250 && mono_ms() - t0 < 2000);
	/* two in flight on one connection: both fail with it */
	memset(&x, 0, sizeof(x));
	store_id_find(st, k, 1, on_result, &x);
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok);
	run_until(&x.calls, 1, 2000);
	TT_CHECK(x.calls == 1 && !x.ok);
	kill(RA.pid, SIGCONT);
	r = id_find(st, k, 1);
	TT_CHECK(r.ok && r.found);
	TT_CHECK_INT(redis_client_connects(rc), ==, 3);
	store_free(st);
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* Unusable addresses fail from the loop with a clear error. */
static void
test_redis_bad_servers(void)
{
	struct store_redis_params p = RP_DEF;
	const char *k[] = { "id:x" };
	struct conf_serverlist sl;
	struct store *st;
	struct res r;

	setup();
	sl = one_server("redis.example", 6379, NULL);
	st = store_redis_new("name", &sl, &p);
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok && strstr(r.error, "host names are not supported"));
	store_free(st);
	sl = one_server(NULL, 0, "/nonexistent/redis.sock");
	st = store_redis_new("nosock", &sl, &p);
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok && strstr(r.error, "connect failed") != NULL);
	store_free(st);
	/* a closed port: refused, fast */
	sl = one_server("127.0.0.1", free_port(), NULL);
	p.maxerrors = 1;
	st = store_redis_new("closed", &sl, &p);
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok && strstr(r.error, "connect failed") != NULL);
	TT_CHECK(redis_client_pool(store_redis_client(st))->servers[0].dead);
	store_free(st);
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* A server that never completes the handshake (a full accept queue):
 * our own connect timeout. */
static void
test_redis_connect_timeout(void)
{
	struct store_redis_params p = RP_DEF;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	const char *k[] = { "id:x" };
	struct conf_serverlist sl;
	int lfd, fill[3], i;
	struct store *st;
	uint64_t t0;
	struct res r;

	setup();
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	TT_CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	TT_CHECK(listen(lfd, 0) == 0);
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	for (i = 0; i < 3; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(50000);
	p.connect_timeout = 300;
	p.timeout = 3000;
	sl = one_server("127.0.0.1", ntohs(sin.sin_port), NULL);
	st = store_redis_new("blackhole", &sl, &p);
	t0 = mono_ms();
	r = id_find(st, k, 1);
	TT_CHECK(!r.ok && strstr(r.error, "connect timed out (0.3 s)"));
	if (r.ok || strstr(r.error, "connect timed out") == NULL)
		fprintf(stderr, "  error: %s\n", r.error);
	TT_CHECK(mono_ms() - t0 >= 250 && mono_ms() - t0 < 2000);
	store_free(st);
	for (i = 0; i < 3; i++)
		close(fill[i]);
	close(lfd);
	run_ms(1);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* Cancel in every state, and a store freed with operations in flight. */
static void
test_redis_cancel_states(void)
{
	struct store_redis_params p = RP_DEF;
	struct conf_serverlist sl;
	struct store_op *op;
	struct store *st;
	struct res x, y;
	int i;

	if (!need_redis())
		return;
	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	/* while connecting (a fresh store), then once connected */
	st = redis_store(&RA, NULL);
	store_op_cancel(store_greylist(st, "cs", NULL, &GP, fake_now,
	    on_result, &x));
	run_ms(50);
	op = store_greylist(st, "cs", NULL, &GP, fake_now, on_result, &x);
	run_ms(0);
	store_op_cancel(op);
	run_ms(100);
	TT_CHECK_INT(x.calls, ==, 0);
	TT_CHECK(grey(st, "cs", NULL, &GP, fake_now).ok);
	/* the store freed with 20 operations in flight: no callbacks */
	for (i = 0; i < 20; i++)
		store_greylist(st, "cs2", NULL, &GP, fake_now, on_result, &x);
	store_free(st);
	run_ms(100);
	TT_CHECK_INT(x.calls, ==, 0);
	/* an early failure cancelled before the loop ran */
	sl = one_server("redis.example", 1, NULL);
	st = store_redis_new("bad", &sl, &p);
	store_op_cancel(store_id_put(st, "id:q", 1000, on_result, &y));
	store_id_put(st, "id:q", 1000, on_result, &y);
	store_free(st);		/* pending early failure dropped */
	run_ms(50);
	TT_CHECK_INT(y.calls, ==, 0);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* The client's callback may free the store (the config went away). */
struct freeer {
	struct store *st;
	int calls;
};

static void
free_in_cb(void *ud, const struct store_result *r)
{
	struct freeer *f = ud;

	f->calls++;
	store_free(f->st);
}

static void
test_redis_free_in_callback(void)
{
	struct freeer f;
	struct res other;
	int i;

	if (!need_redis())
		return;
	memset(&f, 0, sizeof(f));
	memset(&other, 0, sizeof(other));
	f.st = redis_store(&RA, NULL);
	TT_CHECK(grey(f.st, "fc", NULL, &GP, fake_now).ok);
	store_greylist(f.st, "fc", NULL, &GP, fake_now, free_in_cb, &f);
	for (i = 0; i < 5; i++)
		store_greylist(f.st, "fc2", NULL, &GP, fake_now, on_result,
		    &other);
	run_until(&f.calls, 1, 3000);
	TT_CHECK_INT(f.calls, ==, 1);
	run_ms(50);
	TT_CHECK_INT(other.calls, ==, 0);
	TT_CHECK_INT(redis_client_conns_open(), ==, 0);
}

/* ---- store_get: per role, cached with the config ------------------------- */

static void
test_store_get(void)
{
	char text[512];
	struct rmilter_config *c;
	struct conf_diag d;

	setup();
	conf_diag_init(&d);
	c = conf_load_buffer("t.conf", "", 0, &d);
	TT_CHECK(c != NULL);
	TT_CHECK(store_get(c, STORE_GREY) == store_mem_store());
	TT_CHECK(store_get(c, STORE_LIMITS) == store_mem_store());
	TT_CHECK_STR(store_kind(store_get(c, STORE_ID)), "memory");
	conf_unref(c);
	snprintf(text, sizeof(text), "redis {\n servers_grey = 127.0.0.1:%u;\n"
	    " servers_limits = 127.0.0.1:%u;\n servers_id = 127.0.0.1:%u;\n"
	    "}\n", 6000, 6000, 6001);
	c = conf_load_buffer("t.conf", text, strlen(text), &d);
	TT_CHECK(c != NULL);
	if (c != NULL) {
		struct store *g = store_get(c, STORE_GREY);

		TT_CHECK_STR(store_kind(g), "redis");
		TT_CHECK(store_get(c, STORE_GREY) == g);	/* cached */
		TT_CHECK(store_get(c, STORE_WHITE) == g);	/* default */
		TT_CHECK(store_get(c, STORE_LIMITS) == g);	/* same list */
		TT_CHECK(store_get(c, STORE_ID) != g);
		TT_CHECK_STR(store_kind(store_get(c, STORE_ID)), "redis");
		conf_unref(c);
	}
	conf_diag_free(&d);
	store_shutdown();
}

/* ---- the memory store's own properties ----------------------------------- */

static void
test_mem_async(void)
{
	struct backend b;
	struct res x;

	backend_open(&b, false);
	memset(&x, 0, sizeof(x));
	store_greylist(b.st, "a", NULL, &GP, fake_now, on_result, &x);
	TT_CHECK_INT(x.calls, ==, 0);
	run_ms(0);
	run_ms(1);
	TT_CHECK_INT(x.calls, ==, 1);
	backend_close(&b);
}

static void
test_mem_bound(void)
{
	const uint64_t per = STORE_MEM_ENTRY_OVERHEAD + 5 + 1;
	uint64_t entries, bytes, evicted;
	struct backend b;
	char key[16];
	const char *k[1] = { key };
	int i;

	backend_open(&b, false);
	store_mem_configure(10 * per + 5);
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "id:%02d", i);
		TT_CHECK(id_put(b.st, key, 60000).ok);
	}
	store_mem_stats(&entries, &bytes, &evicted);
	TT_CHECK_INT(entries, ==, 10);
	TT_CHECK_INT(bytes, ==, 10 * per);
	TT_CHECK_INT(evicted, ==, 10);
	snprintf(key, sizeof(key), "id:09");
	TT_CHECK(!id_find(b.st, k, 1).found);	/* the oldest went */
	snprintf(key, sizeof(key), "id:10");
	TT_CHECK(id_find(b.st, k, 1).found);
	snprintf(key, sizeof(key), "id:19");
	TT_CHECK(id_find(b.st, k, 1).found);
	/* a rewrite makes an entry the newest */
	TT_CHECK(id_put(b.st, "id:10", 60000).ok);
	TT_CHECK(id_put(b.st, "id:20", 60000).ok);
	snprintf(key, sizeof(key), "id:10");
	TT_CHECK(id_find(b.st, k, 1).found);
	snprintf(key, sizeof(key), "id:11");
	TT_CHECK(!id_find(b.st, k, 1).found);
	store_mem_stats(NULL, NULL, &evicted);
	TT_CHECK_INT(evicted, ==, 11);
	/* a lower bound applies at once */
	store_mem_configure(5 * per);
	store_mem_stats(&entries, &bytes, &evicted);
	TT_CHECK_INT(entries, ==, 5);
	TT_CHECK_INT(bytes, ==, 5 * per);
	TT_CHECK_INT(evicted, ==, 16);
	snprintf(key, sizeof(key), "id:20");
	TT_CHECK(id_find(b.st, k, 1).found);
	/* expired entries are purged without being asked for */
	store_mem_reset();
	store_mem_configure(STORE_MEM_DEFAULT_BYTES);
	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "id:s%02d", i);
		id_put(b.st, key, 100);
	}
	fake_now += 200;
	snprintf(key, sizeof(key), "id:other");
	for (i = 0; i < 200; i++)
		id_find(b.st, k, 1);
	store_mem_stats(&entries, &bytes, &evicted);
	TT_CHECK_INT(entries, ==, 0);
	TT_CHECK_INT(bytes, ==, 0);
	TT_CHECK_INT(evicted, ==, 0);	/* expiry is not eviction */
	backend_close(&b);
}

static void
test_end(void)
{
	/* frees what the process-wide pieces hold (valgrind) */
	store_shutdown();
	redis_stop_all();
	if (base != NULL) {
		run_ms(1);
		event_base_free(base);
		base = NULL;
	}
}

TT_MAIN(
	{ "store/script_sha1", test_script_sha1 },
	{ "store/mem/async", test_mem_async },
	{ "store/mem/greylist", test_mem_greylist },
	{ "store/mem/white_refresh", test_mem_white_refresh },
	{ "store/mem/expire", test_mem_expire },
	{ "store/mem/awl", test_mem_awl },
	{ "store/mem/buckets", test_mem_buckets },
	{ "store/mem/ids", test_mem_ids },
	{ "store/mem/cancel", test_mem_cancel },
	{ "store/mem/bound", test_mem_bound },
	{ "store/get", test_store_get },
	{ "store/redis/greylist", test_redis_greylist },
	{ "store/redis/white_refresh", test_redis_white_refresh },
	{ "store/redis/expire", test_redis_expire },
	{ "store/redis/awl", test_redis_awl },
	{ "store/redis/buckets", test_redis_buckets },
	{ "store/redis/ids", test_redis_ids },
	{ "store/redis/cancel", test_redis_cancel },
	{ "store/redis/noscript", test_redis_noscript },
	{ "store/redis/concurrency", test_redis_concurrency },
	{ "store/redis/two_servers", test_redis_two_servers },
	{ "store/redis/auth_select_unix", test_redis_auth_select_unix },
	{ "store/redis/cancel_states", test_redis_cancel_states },
	{ "store/redis/free_in_callback", test_redis_free_in_callback },
	{ "store/redis/timeout", test_redis_timeout },
	{ "store/redis/bad_servers", test_redis_bad_servers },
	{ "store/redis/connect_timeout", test_redis_connect_timeout },
	{ "store/redis/killed", test_redis_killed },
	{ "store/end", test_end },
)
