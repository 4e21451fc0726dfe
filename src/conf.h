/* conf.h -- the loaded rmilter.conf: value types, the config object, load/ref/unref. */
#ifndef RMILTER_CONF_H
#define RMILTER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- diagnostics: every error/warning carries file:line ---------------- */

enum conf_diag_level { CONF_DIAG_ERROR, CONF_DIAG_WARNING, CONF_DIAG_NOTICE };

struct conf_diag_entry {
	enum conf_diag_level level;
	char *file;	/* may be NULL for errors not tied to a file */
	unsigned line;	/* 0 when unknown */
	char *msg;	/* "unknown directive 'foo' in section 'spamd' (did you mean 'servers'?)" */
};

struct conf_diag {
	struct conf_diag_entry *v;
	size_t n, cap;
	size_t nerrors;
};

void conf_diag_init(struct conf_diag *d);
void conf_diag_free(struct conf_diag *d);
/* Formats "FILE:LINE: error: MSG" (or warning/notice) into buf. */
void conf_diag_format(const struct conf_diag_entry *e, char *buf, size_t len);

/* ---- value types -------------------------------------------------------- */

struct conf_net {		/* an address with a prefix length */
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order; IPv4 in addr[0..3] */
	unsigned prefix;	/* 0..32 or 0..128 */
};

struct conf_netlist {
	struct conf_net *v;
	size_t n;
};

struct conf_strlist {
	char **v;
	size_t n;
};

struct conf_rcpt {		/* recipient list entry, stored lowercased */
	char *user;		/* NULL: any local part ("@domain") */
	char *domain;		/* NULL: any domain ("user") */
};

struct conf_rcptlist {
	struct conf_rcpt *v;
	size_t n;
};

struct conf_bucket {
	double burst;
	double rate;		/* messages per second */
	bool set;
};

enum conf_listen_kind {
	CONF_LISTEN_NONE = 0,
	CONF_LISTEN_UNIX,	/* unix:/path or local:/path */
	CONF_LISTEN_INET,	/* inet:port@host (host optional: any) */
	CONF_LISTEN_INET6,	/* inet6:port@[addr] */
	CONF_LISTEN_FD,		/* fd:N (fd:3 = systemd socket activation) */
};

struct conf_listen {
	enum conf_listen_kind kind;
	char *path;		/* UNIX */
	char *host;		/* INET/INET6; NULL = any address */
	unsigned port;		/* INET/INET6 */
	int fd;			/* FD */
	char *text;		/* the original text, for logs */
};

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* ---- the configuration object -------------------------------------------
 * Reference counted: the daemon holds one reference to the current config,
 * every session holds one to the config it started with (SIGHUP reload swaps
 * the daemon's reference; open sessions finish on theirs). */

struct conf_sections;		/* later-issue sections, defined in conf_sections.h */

struct rmilter_config {
	unsigned refcnt;
	unsigned generation;	/* set by the daemon: 1, 2, ... per load */
	char *path;

	/* daemon */
	char *pidfile;			/* NULL: none */
	struct conf_listen bind;	/* bind_socket; default unix:/var/tmp/rmilter.sock */
	int bind_socket_mode;		/* -1: leave umask default; else e.g. 0660 */
	char *bind_socket_owner;	/* "user" or "user:group"; NULL: unchanged */
	char *user;			/* privilege drop after binding; NULL: none */
	char *group;
	char *syslog_name;		/* default "rmilter" */
	char *syslog_facility;		/* default "mail" */
	char *log_file;			/* NULL: syslog (stderr with -n) */
	enum log_level log_level;	/* default info */
	unsigned max_connections;	/* default 10000 */
	unsigned listen_backlog;	/* default 1024 */
	uint64_t handshake_timeout;	/* ms; accept -> OPTNEG done, default 30s */
	uint64_t command_timeout;	/* ms; idle between envelope commands, default 600s */
	uint64_t content_timeout;	/* ms; idle between DATA..EOM commands, default 300s */
	uint64_t frame_timeout;		/* ms; a started frame must complete, default 30s */
	uint64_t shutdown_timeout;	/* ms; SIGTERM grace for open sessions, default 30s */
	bool test_policy;		/* built-in test policy (X-Rmilter-Test), default no */

	/* policy core */
	bool noop;			/* every module in shadow mode */
	struct conf_strlist module_order;	/* module names, in running order */
	char *reject_message;		/* default reject text (template) */
	char *tempfail_message;		/* default tempfail text (template) */
	char *audit_log;		/* JSON lines file; NULL: off */
	char *control_socket;		/* unix socket for rmilter -s; NULL: off */
	uint64_t spool_memory_limit;	/* bytes kept in memory before a file */
	uint64_t store_memory_limit;	/* the in-memory policy store, bytes */
	bool reply_whitelist;		/* replies to local mail skip checks */

	/* rmilter 1.6 globals */
	char *tempdir;			/* default $TMPDIR or /tmp */
	unsigned tempfiles_mode;	/* default 0600 */
	uint64_t max_size;		/* bytes, 0 = no limit */
	bool strict_auth;		/* alias check_auth */
	struct conf_netlist our_networks;
	struct conf_rcptlist whitelist;
	bool use_dcc;
	struct conf_strlist spf_domains;
	bool use_redis;

	struct conf_sections *sections;	/* clamav, spamd, redis, ... (owned) */
	/* derived once per config by the pipeline (its modules and what to
	 * negotiate); plain memory, freed with the config */
	void *pipeline_cache;
	/* the scanners' server pools, made at first use (struct
	 * upstream_pool list; kept connections close with the config) */
	struct upstream_pool *upstreams;
	/* the redis policy stores, made at first use (store.c) */
	struct store *stores;
	/* the resolver of the dns section, made at first use (dns_client.c) */
	struct dns_client *dns;
	bool dns_failed;		/* could not be made: not retried */
};
#define RMILTER_CONFIG_HAS_STORES 1

struct upstream_pool;
struct store;
struct dns_client;

/* Parses PATH (following .include/.try_include), validates every directive
 * and fills a new config with refcnt 1.  Every problem is appended to DIAG
 * with file:line; returns NULL if DIAG has at least one error.  Notices such
 * as "recognized, not implemented yet" are added for directives whose module
 * does not exist yet. */
struct rmilter_config *conf_load(const char *path, struct conf_diag *diag);

/* Same, from a memory buffer (NAME is used as the file name in diagnostics;
 * includes are resolved relative to the current directory). */
struct rmilter_config *conf_load_buffer(const char *name, const char *buf,
    size_t len, struct conf_diag *diag);

struct rmilter_config *conf_ref(struct rmilter_config *c);
void conf_unref(struct rmilter_config *c);	/* frees at zero; NULL ok */

/* true if ADDR (family AF_INET/AF_INET6, bytes in network order) is in LIST;
 * IPv4-mapped IPv6 addresses match IPv4 entries. */
bool conf_netlist_match(const struct conf_netlist *list, int family,
    const void *addr);

/* true if RCPT ("<User@Dom>" or "user@dom", any case) matches LIST. */
bool conf_rcptlist_match(const struct conf_rcptlist *list, const char *rcpt);

#endif
