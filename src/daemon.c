/* daemon.c -- the process: one libevent loop, the listener (accept in
 * batches, connection cap), config generations (SIGHUP), graceful shutdown
 * (SIGTERM/SIGINT) and log reopen (SIGUSR1). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "beanstalk.h"
#include "conf.h"
#include "conf_sections.h"
#include "daemon.h"
#include "dns_client.h"
#include "store.h"
#include "upstream.h"
#include "daemon_main.h"
#include "listen.h"
#include "log.h"
#include "pipeline.h"
#include "milter_session.h"
#include "record.h"

#define ACCEPT_BATCH 128

static struct {
	struct event_base *base;
	struct rmilter_config *conf;	/* current generation */
	unsigned generation;
	const char *conf_path;
	bool foreground;
	bool debug;
	int lfd;
	bool is_tcp;
	bool own_socket;	/* we created the unix socket file */
	int nodelay_inherited;	/* -1 unknown, 0 no, 1 yes */
	struct event *ev_accept, *ev_accept_retry, *ev_shutdown;
	struct event *ev_sig[4];
	bool accept_paused;
	bool draining;
	unsigned long long accepted;
} D = { .lfd = -1, .nodelay_inherited = -1 };

void
daemon_test_init(struct event_base *base, struct rmilter_config *conf)
{
	D.base = base;
	D.conf = conf;
	D.draining = false;
}

struct event_base *
daemon_base(void)
{
	return D.base;
}

struct rmilter_config *
daemon_conf(void)
{
	return D.conf;
}

bool
daemon_is_draining(void)
{
	return D.draining;
}

static void
accept_pause(const char *why)
{
	if (D.accept_paused || D.ev_accept == NULL)
		return;
	event_del(D.ev_accept);
	D.accept_paused = true;
	log_warning("%s: not accepting new MTA connections for now", why);
}

static void
accept_resume(void)
{
	if (!D.accept_paused || D.draining || D.ev_accept == NULL)
		return;
	D.accept_paused = false;
	event_add(D.ev_accept, NULL);
	log_notice("accepting MTA connections again (%u open)",
	    milter_session_count());
}

void
daemon_session_closed(void)
{
	if (D.draining) {
		if (milter_session_count() == 0)
			event_base_loopexit(D.base, NULL);
		return;
	}
	if (D.accept_paused && milter_session_count() < D.conf->max_connections)
		accept_resume();
}

static void
on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	if (milter_session_count() < D.conf->max_connections)
		accept_resume();
}

/* TCP_NODELAY: set on the listener; Linux hands it to accepted sockets,
 * which saves a syscall per connection.  Checked once, else set each time. */
static void
nodelay_set(int fd)
{
	int one = 1, v = 0;
	socklen_t len = sizeof(v);

	if (D.nodelay_inherited == -1) {
		D.nodelay_inherited = getsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
		    &v, &len) == 0 && v != 0;
		log_debug("TCP_NODELAY %s from the listener",
		    D.nodelay_inherited ? "inherited" : "not inherited");
		if (D.nodelay_inherited)
			return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		if (milter_session_count() >= D.conf->max_connections) {
			char why[96];

			snprintf(why, sizeof(why), "connection limit "
			    "max_connections=%u reached",
			    D.conf->max_connections);
			accept_pause(why);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				struct timeval tv = { 1, 0 };
				char why[96];

				snprintf(why, sizeof(why), "accept: %s",
				    strerror(errno));
				accept_pause(why);
				evtimer_add(D.ev_accept_retry, &tv);
				return;
			}
			log_error("accept: %s", strerror(errno));
			return;
		}
		if (D.is_tcp && D.nodelay_inherited != 1)
			nodelay_set(fd);
		D.accepted++;
		milter_session_new(D.base, fd, D.is_tcp, D.conf);
	}
}

/* ---- logging from the config ---------------------------------------------- */

static int
apply_logging(const struct rmilter_config *c)
{
	enum log_level lvl = D.debug ? LOG_LEVEL_DEBUG : c->log_level;

	if (c->log_file != NULL)
		return log_configure(LOG_TO_FILE, c->syslog_name,
		    c->syslog_facility, c->log_file, lvl);
	if (D.foreground)
		return log_configure(LOG_TO_STDERR, c->syslog_name, NULL, NULL,
		    lvl);
	return log_configure(LOG_TO_SYSLOG, c->syslog_name,
	    c->syslog_facility, NULL, lvl);
}

/* Loads PATH; logs every diagnostic.  Returns NULL if there were errors. */
struct rmilter_config *
daemon_load_config(const char *path, bool print_notices)
{
	struct conf_diag diag;
	struct rmilter_config *c;
	char line[1024];
	size_t i;

	conf_diag_init(&diag);
	c = pipeline_conf_load(path, &diag);
	for (i = 0; i < diag.n; i++) {
		const struct conf_diag_entry *e = &diag.v[i];

		conf_diag_format(e, line, sizeof(line));
		if (e->level == CONF_DIAG_ERROR)
			log_error("%s", line);
		else if (e->level == CONF_DIAG_WARNING)
			log_warning("%s", line);
		else if (print_notices)
			log_notice("%s", line);
		else
			log_debug("%s", line);
	}
	conf_diag_free(&diag);
	return c;
}

static bool
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* What follows the config outside the generation: the memory store's
 * bound and the resolver of upstream host names (the dns section). */
static void
daemon_subsystems_configure(const struct rmilter_config *c)
{
	char servers[1024];

	store_mem_configure(c->store_memory_limit);
	dns_servers_csv(&c->sections->dns, servers, sizeof(servers));
	upstream_resolver_configure(servers, c->sections->dns.timeout,
	    c->sections->dns.attempts);
}

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct rmilter_config *c;

	log_notice("SIGHUP: reloading %s", D.conf_path);
	if ((c = daemon_load_config(D.conf_path, false)) == NULL) {
		log_error("reload failed: %s has errors; keeping configuration "
		    "generation %u", D.conf_path, D.generation);
		return;
	}
	if (str_differs(c->bind.text, D.conf->bind.text) ||
	    str_differs(c->user, D.conf->user) ||
	    str_differs(c->group, D.conf->group) ||
	    str_differs(c->pidfile, D.conf->pidfile))
		log_warning("bind_socket, user, group and pidfile changes take "
		    "effect only after a restart");
	c->generation = ++D.generation;
	if (apply_logging(c) < 0)
		log_warning("keeping the previous log target");
	conf_unref(D.conf);
	D.conf = c;
	daemon_subsystems_configure(c);
	log_notice("configuration generation %u loaded; open sessions finish "
	    "on the one they started with", D.generation);
}

static void
on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	log_reopen();
	audit_log_reopen();
}

static void
on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warning("%u session(s) still open after shutdown_timeout; "
	    "closing them", milter_session_count());
	event_base_loopexit(D.base, NULL);
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv;

	if (D.draining) {
		log_notice("second signal: exiting now");
		event_base_loopexit(D.base, NULL);
		return;
	}
	log_notice("%s: stop accepting, letting %u session(s) finish",
	    sig == SIGINT ? "SIGINT" : "SIGTERM", milter_session_count());
	D.draining = true;
	if (D.ev_accept != NULL)
		event_del(D.ev_accept);
	listen_close(D.conf, D.lfd, D.own_socket);
	D.lfd = -1;
	if (milter_session_drain() == 0) {
		event_base_loopexit(D.base, NULL);
		return;
	}
	tv.tv_sec = (time_t)(D.conf->shutdown_timeout / 1000);
	tv.tv_usec = (suseconds_t)((D.conf->shutdown_timeout % 1000) * 1000);
	D.ev_shutdown = evtimer_new(D.base, on_shutdown_timeout, NULL);
	evtimer_add(D.ev_shutdown, &tv);
}

/* ---- process setup ---------------------------------------------------------- */

static int
drop_privileges(const struct rmilter_config *c)
{
	struct passwd *pw = NULL;
	struct group *gr = NULL;
	gid_t gid;

	if (c->user == NULL && c->group == NULL)
		return 0;
	if (geteuid() != 0) {
		log_warning("user/group set but not running as root; "
		    "staying uid %d", (int)geteuid());
		return 0;
	}
	if (c->user != NULL && (pw = getpwnam(c->user)) == NULL) {
		log_error("user '%s' does not exist", c->user);
		return -1;
	}
	if (c->group != NULL && (gr = getgrnam(c->group)) == NULL) {
		log_error("group '%s' does not exist", c->group);
		return -1;
	}
	gid = gr ? gr->gr_gid : pw->pw_gid;
	if (pw != NULL ? initgroups(pw->pw_name, gid) < 0 :
	    setgroups(1, &gid) < 0) {
		log_error("setgroups: %s", strerror(errno));
		return -1;
	}
	if (setgid(gid) < 0) {
		log_error("setgid(%d): %s", (int)gid, strerror(errno));
		return -1;
	}
	if (pw != NULL && setuid(pw->pw_uid) < 0) {
		log_error("setuid(%d): %s", (int)pw->pw_uid, strerror(errno));
		return -1;
	}
	log_info("running as %s:%s", c->user ? c->user : "root",
	    gr ? gr->gr_name : (c->user ? "(primary)" : "root"));
	return 0;
}

static int
write_pidfile(const char *path)
{
	FILE *fp;

	if ((fp = fopen(path, "w")) == NULL) {
		log_error("cannot write pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(fp, "%d\n", (int)getpid());
	fclose(fp);
	return 0;
}

static int
daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

int
daemon_run(const char *conf_path, bool foreground, bool debug)
{
	static const int sigs[4] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
	static event_callback_fn cbs[4] = { on_sighup, on_sigterm, on_sigterm,
	    on_sigusr1 };
	struct rmilter_config *c;
	sigset_t held;
	char err[512];
	int i, rc = 1;

	D.conf_path = conf_path;
	D.foreground = foreground;
	D.debug = debug;
	if (debug)
		log_configure(LOG_TO_STDERR, "rmilter", NULL, NULL,
		    LOG_LEVEL_DEBUG);
	if ((c = daemon_load_config(conf_path, debug)) == NULL) {
		log_error("%s has errors; not starting", conf_path);
		return 1;
	}
	c->generation = D.generation = 1;
	D.conf = c;
	daemon_subsystems_configure(c);
	/* From the moment the socket exists a test or an init script may
	 * signal us: hold the signals until the loop's handlers are in place
	 * (a SIGHUP in between would otherwise kill the process). */
	sigemptyset(&held);
	for (i = 0; i < 4; i++)
		sigaddset(&held, sigs[i]);
	sigprocmask(SIG_BLOCK, &held, NULL);
	D.own_socket = !listen_is_systemd();
	if (listen_is_systemd() && c->bind.kind != CONF_LISTEN_FD)
		log_notice("systemd socket activation: using fd 3 instead of "
		    "bind_socket %s", c->bind.text ? c->bind.text : "");
	if ((D.lfd = listen_open(c, &D.is_tcp, err, sizeof(err))) < 0) {
		log_error("cannot listen: %s", err);
		goto out;
	}
	if (D.is_tcp) {
		int one = 1;

		setsockopt(D.lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (!foreground && daemonize() < 0) {
		log_error("cannot daemonize: %s", strerror(errno));
		goto out;
	}
	if (apply_logging(c) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if (c->pidfile != NULL && write_pidfile(c->pidfile) < 0)
		goto out;
	if (drop_privileges(c) < 0)
		goto out;
	if ((D.base = event_base_new()) == NULL) {
		log_error("event_base_new failed");
		goto out;
	}
	if (stats_control_open(c, D.base, err, sizeof(err)) < 0) {
		log_error("cannot open the control socket: %s", err);
		goto out;
	}
	D.ev_accept = event_new(D.base, D.lfd, EV_READ | EV_PERSIST, on_accept,
	    NULL);
	D.ev_accept_retry = evtimer_new(D.base, on_accept_retry, NULL);
	event_add(D.ev_accept, NULL);
	for (i = 0; i < 4; i++) {
		D.ev_sig[i] = evsignal_new(D.base, sigs[i], cbs[i], NULL);
		event_add(D.ev_sig[i], NULL);
	}
	sigprocmask(SIG_UNBLOCK, &held, NULL);
	log_notice("rmilter %s started: listening on %s (%s), "
	    "max_connections=%u, configuration %s generation %u",
	    RMILTER_VERSION, c->bind.text ? c->bind.text : "?",
	    event_base_get_method(D.base), c->max_connections, conf_path,
	    D.generation);
	event_base_dispatch(D.base);
	rc = 0;
	{
		/* the counters of the whole run, as rmilter -s shows them */
		char *st = stats_format(), *line, *save = NULL;

		log_notice("stopping: %llu connections", D.accepted);
		for (line = strtok_r(st, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			log_notice("stopping: %s", line);
		free(st);
	}
out:
	milter_session_free_all();
	stats_control_close();
	audit_log_close();
	if (D.lfd >= 0)
		listen_close(D.conf, D.lfd, D.own_socket);
	if (D.conf != NULL && D.conf->pidfile != NULL && rc == 0)
		unlink(D.conf->pidfile);
	for (i = 0; i < 4; i++)
		if (D.ev_sig[i] != NULL)
			event_free(D.ev_sig[i]);
	if (D.ev_accept != NULL)
		event_free(D.ev_accept);
	if (D.ev_accept_retry != NULL)
		event_free(D.ev_accept_retry);
	if (D.ev_shutdown != NULL)
		event_free(D.ev_shutdown);
	/* beanstalk jobs in flight: a short grace, then dropped */
	beanstalk_queue_shutdown();
	/* the config's upstream connections are events of the base */
	conf_unref(D.conf);
	D.conf = NULL;
	store_shutdown();
	upstream_shutdown();
	if (D.base != NULL)
		event_base_free(D.base);
	log_close();
	return rc;
}
