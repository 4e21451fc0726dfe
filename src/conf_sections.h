/* conf_sections.h -- typed structs for the rmilter.conf sections whose
 * modules come later: clamav, spamd, redis (alias memcached), greylisting,
 * limits, dkim, rule and beanstalk.  Every field is filled and validated by
 * conf_load(); times are milliseconds, sizes bytes. */
#ifndef RMILTER_CONF_SECTIONS_H
#define RMILTER_CONF_SECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "conf.h"

#define CONF_PORT_CLAMD		3310
#define CONF_PORT_RSPAMD	11333
#define CONF_PORT_SPAMD		783
#define CONF_PORT_REDIS		6379
#define CONF_PORT_BEANSTALK	11300

/* Every module: enforce decides; shadow decides, records and counts but
 * never changes the message's fate or content. */
enum conf_mode { CONF_MODE_ENFORCE = 0, CONF_MODE_SHADOW };

/* One entry of a server list: "[r:]host[:port[:priority]]", "[ipv6]:port",
 * "/path/to/socket" or "./relative/socket". */
struct conf_server {
	char *text;		/* as written, for logs */
	char *host;		/* NULL for a unix socket; no brackets for IPv6 */
	char *path;		/* unix socket path, else NULL */
	unsigned port;		/* default applied; 0 for a unix socket */
	unsigned priority;	/* 0 unless given */
	bool is_rspamd;		/* spamd.servers: "r:" prefix (rspamd protocol) */
};

struct conf_serverlist {
	struct conf_server *v;
	size_t n;
};

/* A regex written /pattern/flags, compiled at load time. */
struct conf_regex {
	char *text;		/* "/pattern/flags" as written */
	uint32_t options;	/* PCRE2_CASELESS etc. */
	pcre2_code *code;	/* NULL when unset */
};

struct conf_clamav {
	bool present;			/* a clamav {} section was seen */
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce */
	struct conf_serverlist servers;	/* default port 3310; empty = off */
	uint64_t connect_timeout;	/* 1s */
	uint64_t port_timeout;		/* 3s (legacy STREAM protocol) */
	uint64_t results_timeout;	/* 20s */
	uint64_t error_time;		/* 10s */
	uint64_t dead_time;		/* 300s */
	unsigned maxerrors;		/* 10 */
	struct conf_netlist whitelist;	/* clients not scanned */
	unsigned retry_count;		/* 3: attempts in total */
	uint64_t retry_timeout;		/* 1s: pause before retrying a server */
	bool tempfail_on_error;		/* no */
	int strategy;			/* enum conf_strategy, round_robin */
	unsigned max_inflight;		/* 64 scans per server at once */
	uint64_t stream_max_length;	/* 25M: clamd's StreamMaxLength */
	int virus_action;		/* enum conf_virus_action, reject */
	char *virus_message;		/* "554 5.7.1 Infected: ${virus}" */
	char *virus_header;		/* X-Virus */
};

/* Server selection of a scanner pool (enum upstream_strategy order). */
enum conf_strategy {
	CONF_STRATEGY_ROUND_ROBIN = 0, CONF_STRATEGY_RANDOM,
	CONF_STRATEGY_MASTER_SLAVE
};

enum conf_virus_action {
	CONF_VIRUS_REJECT = 0, CONF_VIRUS_DISCARD, CONF_VIRUS_QUARANTINE,
	CONF_VIRUS_HEADER
};

struct conf_spamd {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce */
	struct conf_serverlist servers;	/* r:host = rspamd (11333), host = spamd (783) */
	struct conf_serverlist rspamd_servers;	/* rspamd { servers } (11333) */
	int strategy;			/* enum conf_strategy */
	unsigned max_inflight;		/* 64 */
	uint64_t keepalive_timeout;	/* 30s; 0 = a connection per scan */
	uint64_t connect_timeout;	/* 1s */
	uint64_t results_timeout;	/* 20s */
	uint64_t error_time;		/* 10s */
	uint64_t dead_time;		/* 300s */
	unsigned maxerrors;		/* 10 */
	unsigned retry_count;		/* 5 */
	uint64_t retry_timeout;		/* 1s */
	bool tempfail_on_error;		/* alias spamd_temp_fail; no */
	char *reject_message;
	struct conf_netlist whitelist;
	bool spamd_greylist;		/* yes */
	bool spamd_never_reject;	/* no */
	bool spamd_spam_add_header;	/* yes */
	bool spamd_soft_fail;		/* yes */
	char *spam_header;		/* X-Spam */
	char *spam_header_value;	/* yes */
	bool spam_no_auth_header;	/* no */
	bool extended_spam_headers;	/* no */
	struct conf_rcptlist extended_headers_rcpt;
	char *spamd_settings_id;	/* NULL: none */
	bool compression;		/* no */
	char *trace_symbol;
	char *trace_addr;
	char *rspamd_metric;		/* default */
	struct conf_serverlist also_check;	/* extra scanners, only reported */
	char *spam_bar_char;		/* x */
	char *diff_dir;
	char *symbols_dir;
	struct conf_strlist check_symbols;
};

/* spamassassin { }: SpamAssassin's spamd; the retry and health knobs are
 * those of the spamd section (also used for a legacy non-r: server). */
struct conf_spamassassin {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode */
	struct conf_serverlist servers;	/* default port 783 */
	uint64_t connect_timeout;	/* 1s */
	uint64_t results_timeout;	/* 30s */
	uint64_t error_time;		/* 10s */
	uint64_t dead_time;		/* 300s */
	unsigned maxerrors;		/* 10 */
	unsigned retry_count;		/* 2 */
	uint64_t retry_timeout;		/* 1s */
	bool tempfail_on_error;		/* no */
	int strategy;			/* enum conf_strategy */
	unsigned max_inflight;		/* 16 (spamd forks a child per scan) */
	struct conf_netlist whitelist;
	double spam_tag_level;		/* -1000: info headers on every message */
	double spam_kill_level;		/* 0: reject when spamd says spam */
	bool spamd_never_reject;	/* no */
	char *reject_message;
	char *spam_header;		/* X-Spam */
	char *spam_header_value;	/* yes */
	char *user;			/* rmilter: User: sent to spamd */
	int request;			/* 0 symbols, 1 report */
	char *spam_level_char;		/* "*" */
};

struct conf_redis {
	bool present;			/* redis {} or memcached {} seen */
	struct conf_serverlist servers_grey;	/* default port 6379 */
	struct conf_serverlist servers_white;
	struct conf_serverlist servers_limits;
	struct conf_serverlist servers_id;
	struct conf_serverlist servers_spam;
	struct conf_serverlist servers_copy;
	char *spam_channel;
	char *copy_channel;
	double copy_probability;	/* percent 0..100; default 100 */
	char *grey_prefix;		/* grey */
	char *white_prefix;		/* white */
	char *id_prefix;		/* id */
	char *password;
	char *dbname;
	uint64_t connect_timeout;	/* 1s */
	uint64_t error_time;		/* 10s */
	uint64_t dead_time;		/* 300s */
	unsigned maxerrors;		/* 10 */
	char *protocol;			/* ignored (tcp|udp) */
	uint64_t command_timeout;	/* 1s: a command's reply */
	char *limits_prefix;		/* rl */
	char *awl_prefix;		/* awl */
	uint64_t id_ttl;		/* 7d: Message-ID records */
};

struct conf_greylisting {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce */
	uint64_t timeout;		/* 300s */
	uint64_t expire;		/* 1d */
	uint64_t expire_white;		/* 3d */
	struct conf_netlist whitelist;
	char *greylisted_message;	/* Try again later */
	bool awl_enable;		/* no */
	unsigned awl_hits;		/* 10 */
	uint64_t awl_pool;		/* 10M */
	uint64_t awl_ttl;		/* 3600s */
	unsigned ipv4_mask;		/* 24: a client's network */
	unsigned ipv6_mask;		/* 64 */
	bool tempfail_on_error;		/* no: the store failed -> pass */
};

struct conf_limits {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce */
	struct conf_bucket limit_to;	/* all off (set = false) by default */
	struct conf_bucket limit_to_ip;
	struct conf_bucket limit_to_ip_from;
	struct conf_bucket limit_bounce_to;
	struct conf_bucket limit_bounce_to_ip;
	struct conf_netlist limit_whitelist;	/* alias limit_whitelist_ip */
	struct conf_rcptlist limit_whitelist_rcpt;
	struct conf_strlist limit_bounce_addrs;
	bool tempfail_on_error;		/* no: the store failed -> pass */
};

enum conf_dkim_canon { CONF_DKIM_SIMPLE = 0, CONF_DKIM_RELAXED };
enum conf_dkim_alg { CONF_DKIM_SHA1 = 0, CONF_DKIM_SHA256, CONF_DKIM_ED25519 };
/* whose domain is signed: the From header's (DMARC alignment) or the
 * envelope sender's (rmilter 1.6) */
enum conf_dkim_use_domain { CONF_DKIM_USE_HEADER = 0, CONF_DKIM_USE_ENVELOPE };

struct conf_dkim_domain {
	char *key;		/* key file, or a key directory (DIR/<domain>.
				 * <selector>.key) */
	char *domain;		/* "*" = any */
	char *selector;
	bool sign_subdomains;	/* no: a named domain matches only itself */
	unsigned line;		/* line of the domain {} section */
	char *file;		/* ... and its file (owned) */
};

struct dkim_keyset;		/* dkim_keys.h: loaded by the config check */

struct conf_dkim {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce */
	struct conf_dkim_domain *domains;	/* one per domain {} */
	size_t ndomains;
	int header_canon;		/* enum conf_dkim_canon, simple */
	int body_canon;			/* simple */
	int sign_alg;			/* enum conf_dkim_alg, sha256 */
	bool auth_only;			/* yes */
	struct conf_netlist sign_networks;
	bool fold_header;		/* no */
	bool rspamd_sign;		/* no */
	struct conf_strlist sign_headers;	/* headers signed (if present) */
	struct conf_strlist oversign_headers;	/* signed once more: from */
	int use_domain;			/* enum conf_dkim_use_domain, header */
	uint64_t max_size;		/* bytes; 0 = no limit */
	/* the keys and the libopendkim handle of this config generation:
	 * made by dkim_keys_check_config(), freed with the config */
	struct dkim_keyset *keys;
};

enum conf_rule_action {
	CONF_RULE_NONE = 0,
	CONF_RULE_ACCEPT,
	CONF_RULE_REJECT,
	CONF_RULE_TEMPFAIL,
	CONF_RULE_DISCARD,
	CONF_RULE_QUARANTINE,
};

enum conf_rule_cond_kind {
	CONF_COND_CONNECT,	/* /host/ /ip/ */
	CONF_COND_HELO,
	CONF_COND_ENVFROM,
	CONF_COND_ENVRCPT,
	CONF_COND_HEADER,	/* /name/ /value/ */
	CONF_COND_BODY,
};

struct conf_rule_cond {
	enum conf_rule_cond_kind kind;
	bool negate;			/* "not" prefix */
	struct conf_regex re[2];	/* re[1] used by connect and header */
	unsigned nre;
};

struct conf_rule {
	char *name;			/* name = "..."; default "ruleN" */
	bool enable;			/* enable = yes|no; yes */
	int mode;			/* mode = enforce|shadow (enum conf_mode) */
	enum conf_rule_action action;
	char *message;			/* reject/tempfail/quarantine text */
	struct conf_rule_cond *conds;
	size_t nconds;
	unsigned line;
};

/* beanstalk { }: message headers and copies put as beanstalkd jobs (fire
 * and forget: mod_beanstalk.c, beanstalk_queue.c). */
struct conf_beanstalk {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce (no effect) */
	struct conf_serverlist servers;	/* headers; default port 11300 */
	struct conf_serverlist copy_server;
	struct conf_serverlist spam_server;
	uint64_t connect_timeout;	/* 1s */
	uint64_t error_time;		/* 10s */
	uint64_t dead_time;		/* 300s */
	unsigned maxerrors;		/* 10 */
	char *protocol;			/* ignored (tcp|udp) */
	struct conf_regex id_regexp;	/* In-Reply-To: whole message */
	uint64_t lifetime;		/* 172800s: the jobs' TTR */
	double copy_probability;	/* percent, 100 */
	bool send_beanstalk_headers;	/* no */
	bool send_beanstalk_copy;	/* no */
	bool send_beanstalk_spam;	/* no */
	bool send_beanstalk_spam_extra_diff;	/* not implemented */
	char *tube;			/* "default" */
	uint64_t timeout;		/* 5s: send a job, get the answer */
	unsigned max_queue;		/* 1000 jobs in flight (all pools) */
	uint64_t max_queue_bytes;	/* 64M of job data in flight */
	unsigned line;			/* of the (last) beanstalk { } */
	char *file;			/* ... and its file (owned) */
};

/* dns { }: the resolver of the spf module (c-ares, dns_client.c). */
struct conf_dns {
	bool present;
	struct conf_serverlist nameserver;	/* ip[:port]; empty: resolv.conf */
	uint64_t timeout;		/* 2s: per try */
	unsigned attempts;		/* 2 */
	unsigned cache_size;		/* 4096 answers; 0 = no cache */
};

/* What the spf module does with a result (spf { *_action }). */
enum conf_spf_action { CONF_SPF_REJECT = 0, CONF_SPF_TEMPFAIL, CONF_SPF_PASS };
enum conf_spf_header {
	CONF_SPF_HDR_RECEIVED = 0, CONF_SPF_HDR_AR, CONF_SPF_HDR_BOTH,
	CONF_SPF_HDR_NONE
};

/* spf { }: how mail of the global spf_domains is checked. */
struct conf_spf {
	bool present;
	bool enable;			/* yes */
	int mode;			/* enum conf_mode, enforce */
	int fail_action;		/* enum conf_spf_action, reject */
	int softfail_action;		/* pass */
	int temperror_action;		/* pass */
	int permerror_action;		/* pass */
	int header;			/* enum conf_spf_header, received-spf */
	char *authserv_id;		/* NULL: the MTA's j macro, else hostname */
	uint64_t timeout;		/* 10s: the whole check */
	char *explanation;		/* default explanation (SPF macros) */
};

struct conf_sections {
	struct conf_clamav clamav;
	struct conf_spamd spamd;
	struct conf_spamassassin spamassassin;
	struct conf_redis redis;
	struct conf_greylisting greylisting;
	struct conf_limits limits;
	struct conf_dkim dkim;
	struct conf_rule *rules;	/* in config order */
	size_t nrules;
	/* every enabled rule's body regex as one alternation (NULL when
	 * there is none or one cannot be combined safely): a body line it
	 * does not match matches no body condition */
	pcre2_code *body_prefilter;
	struct conf_beanstalk beanstalk;
	struct conf_dns dns;
	struct conf_spf spf;
};

#endif
