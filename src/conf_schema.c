/* conf_schema.c -- the declarative table of every rmilter.conf directive
 * (section, name, type, offset, range, default, flags, help), one generic
 * setter per value type, and the walk that applies an AST to a config. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf_internal.h"
#include "dkim_keys.h"
#include "xmalloc.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* JIT-compiles CODE where PCRE2 can.  Not under valgrind: the JIT code
 * reads whole vectors past the end of the subject, which valgrind reports;
 * the interpreter gives the same answers.  Never in fuzzing builds. */
static void
conf_regex_jit(pcre2_code *code)
{
#ifndef FUZZING
	if (code != NULL && !RUNNING_ON_VALGRIND)
		(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
#else
	(void)code;
#endif
}

#define S_MS	1000.0			/* ms per second */
#define S_DAY	(86400.0 * 1000)
#define NI	CONF_F_NOTIMPL
#define AL	CONF_F_ALIAS

#define G(name, type, field, min, max, def, flags, unit, ch, help)	\
	{ "", name, type, offsetof(struct rmilter_config, field), min, max, \
	    def, flags, unit, ch, help }
#define SEC(sec, st, name, type, field, min, max, def, flags, unit, ch, help) \
	{ sec, name, type, offsetof(st, field), min, max, def,		\
	    (flags) | NI, unit, ch, help }

/* scanner sections (implemented: no notice) */
#define SCAN(sec, st, name, type, field, min, max, def, flags, unit, ch, help) \
	{ sec, name, type, offsetof(st, field), min, max, def, flags, unit, \
	    ch, help }
#define SCANPOOL(sec, st, retries, inflight)				\
	SCAN(sec, st, "connect_timeout", CONF_T_TIME, connect_timeout,	\
	    1, 3600 * S_MS, "1s", 0, 1000, NULL,			\
	    "timeout for connecting to a server"),			\
	SCAN(sec, st, "error_time", CONF_T_TIME, error_time, 0,	\
	    S_DAY, "10s", 0, 1000, NULL,				\
	    "window in which a server's errors are counted"),		\
	SCAN(sec, st, "dead_time", CONF_T_TIME, dead_time, 0, 7 * S_DAY, \
	    "300s", 0, 1000, NULL,					\
	    "how long a failed server is left alone before a probe"),	\
	SCAN(sec, st, "maxerrors", CONF_T_UINT, maxerrors, 1, 1000000,	\
	    "10", 0, 0, NULL,						\
	    "errors within error_time that mark a server dead"),	\
	SCAN(sec, st, "retry_count", CONF_T_UINT, retry_count, 1, 100,	\
	    retries, 0, 0, NULL, "attempts in total per message, each on "	\
	    "another live server when there is one"),			\
	SCAN(sec, st, "retry_timeout", CONF_T_TIME, retry_timeout, 0,	\
	    3600 * S_MS, "1s", 0, 1000, NULL,				\
	    "pause before retrying the same server"),			\
	SCAN(sec, st, "strategy", CONF_T_ENUM, strategy, 0, 0,		\
	    "round_robin", 0, 0, "round_robin|random|master_slave",	\
	    "server selection (master_slave: highest priority alive)"), \
	SCAN(sec, st, "max_inflight", CONF_T_UINT, max_inflight, 1,	\
	    100000, inflight, 0, 0, NULL,				\
	    "scans per server at once; more wait in a queue")

#define CLAM struct conf_clamav
#define SA struct conf_spamassassin
#define SPAMD struct conf_spamd
#define REDIS struct conf_redis
#define GREY struct conf_greylisting
#define LIM struct conf_limits
#define DKIM struct conf_dkim
#define DDOM struct conf_dkim_domain
#define BEAN struct conf_beanstalk
#define DNSS struct conf_dns
#define SPFS struct conf_spf

static const struct conf_directive conf_table[] = {
	/* ---- global: the daemon ---- */
	G("pidfile", CONF_T_STRING, pidfile, 0, 0, NULL, 0, 0, NULL,
	    "write the daemon's pid to this file (none by default)"),
	G("bind_socket", CONF_T_LISTEN, bind, 0, 0, "unix:/var/tmp/rmilter.sock",
	    0, 0, NULL, "where to listen for the MTA"),
	G("bind_socket_mode", CONF_T_OCTAL, bind_socket_mode, 0, 0777, NULL,
	    0, 0, NULL, "mode of a unix listen socket (default: umask)"),
	G("bind_socket_owner", CONF_T_STRING, bind_socket_owner, 0, 0, NULL,
	    0, 1, NULL, "owner of a unix listen socket: user or user:group"),
	G("user", CONF_T_STRING, user, 0, 0, NULL, 0, 0, NULL,
	    "drop privileges to this user after binding"),
	G("group", CONF_T_STRING, group, 0, 0, NULL, 0, 0, NULL,
	    "drop privileges to this group after binding"),
	G("syslog_name", CONF_T_STRING, syslog_name, 0, 0, "rmilter", 0, 0,
	    NULL, "syslog identity"),
	G("syslog_facility", CONF_T_KEYWORD, syslog_facility, 0, 0, "mail", 0,
	    0, "mail|daemon|user|local0|local1|local2|local3|local4|local5|"
	    "local6|local7", "syslog facility"),
	G("log_file", CONF_T_STRING, log_file, 0, 0, NULL, 0, 0, NULL,
	    "log to this file instead of syslog"),
	G("log_level", CONF_T_ENUM, log_level, 0, 0, "info", 0, 0,
	    "error|warning|notice|info|debug", "least severe level logged"),
	G("max_connections", CONF_T_UINT, max_connections, 1, 1000000, "10000",
	    0, 0, NULL, "most MTA connections served at once"),
	G("listen_backlog", CONF_T_UINT, listen_backlog, 1, 65535, "1024", 0,
	    0, NULL, "listen(2) backlog"),
	G("handshake_timeout", CONF_T_TIME, handshake_timeout, 100,
	    3600 * S_MS, "30s", 0, 1000, NULL,
	    "from accept to the end of option negotiation"),
	G("command_timeout", CONF_T_TIME, command_timeout, 100, S_DAY, "600s",
	    0, 1000, NULL, "idle time allowed between envelope commands"),
	G("content_timeout", CONF_T_TIME, content_timeout, 100, S_DAY, "300s",
	    0, 1000, NULL, "idle time allowed between DATA and end of message"),
	G("frame_timeout", CONF_T_TIME, frame_timeout, 100, 3600 * S_MS, "30s",
	    0, 1000, NULL, "time allowed to complete a started protocol frame"),
	G("shutdown_timeout", CONF_T_TIME, shutdown_timeout, 0, 3600 * S_MS,
	    "30s", 0, 1000, NULL, "grace time for open sessions on SIGTERM"),
	G("test_policy", CONF_T_FLAG, test_policy, 0, 0, "no", 0, 0, NULL,
	    "for the test suite only: enables a built-in policy driven by "
	    "X-Rmilter-Test headers"),
	/* ---- global: policy core ---- */
	G("noop", CONF_T_FLAG, noop, 0, 0, "no", 0, 0, NULL,
	    "put every module in shadow mode: decide and record, change nothing"),
	G("module_order", CONF_T_STRLIST, module_order, 0, 0, NULL, 0, 0,
	    NULL, "order in which modules run (default: rules, replies, "
	    "clamav, rspamd, spamassassin, greylisting, limits, then the "
	    "others; names not listed run after the listed ones)"),
	G("reject_message", CONF_T_QSTRING, reject_message, 0, 0,
	    "\"Rejected by policy (${reason}); queue id ${queue_id}\"", 0, 0,
	    NULL, "default reject text, a template"),
	G("tempfail_message", CONF_T_QSTRING, tempfail_message, 0, 0,
	    "\"Try again later (${reason}); queue id ${queue_id}\"", 0, 0,
	    NULL, "default tempfail text, a template"),
	G("audit_log", CONF_T_STRING, audit_log, 0, 0, NULL, 0, 0, NULL,
	    "one JSON record per message in this file (off by default)"),
	G("control_socket", CONF_T_STRING, control_socket, 0, 0, NULL, 0, 0,
	    NULL, "unix socket answering rmilter -s (off by default)"),
	G("store_memory_limit", CONF_T_SIZE, store_memory_limit, 65536, 0,
	    "64M", 0, 0, NULL, "size of the in-memory policy store "
	    "(greylisting, limits, replies without redis); oldest evicted"),
	G("reply_whitelist", CONF_T_FLAG, reply_whitelist, 0, 0, "no", 0, 0,
	    NULL, "replies to mail of local senders skip greylisting and spam "
	    "scanning (on when redis servers_id is set)"),
	G("spool_memory_limit", CONF_T_SIZE, spool_memory_limit, 0, 0, "1M",
	    0, 0, NULL, "message bytes kept in memory before the spool moves "
	    "to a file in tempdir"),
	/* ---- global: rmilter 1.6 ---- */
	G("tempdir", CONF_T_STRING, tempdir, 0, 0, NULL, 0, 0, NULL,
	    "directory for message spool files (default $TMPDIR, else /tmp)"),
	G("tempfiles_mode", CONF_T_OCTAL, tempfiles_mode, 0, 0777, "0600", 0,
	    0, NULL, "mode of spool files"),
	G("max_size", CONF_T_SIZE, max_size, 0, 0, "0", 0, 0, NULL,
	    "larger messages skip the content scanners (0 = no limit)"),
	G("strict_auth", CONF_T_FLAG, strict_auth, 0, 0, "no", 0, 0, NULL,
	    "also check mail from authenticated senders"),
	G("check_auth", CONF_T_FLAG, strict_auth, 0, 0, NULL, AL, 0, NULL,
	    "alias of strict_auth"),
	G("our_networks", CONF_T_NETLIST, our_networks, 0, 0, NULL, 0, 0,
	    NULL, "clients treated as authenticated senders"),
	G("whitelist", CONF_T_RCPTLIST, whitelist, 0, 0, NULL, 0, 0, NULL,
	    "recipients whose mail is not scanned (all recipients must match)"),
	G("use_dcc", CONF_T_FLAG, use_dcc, 0, 0, "no", NI, 0, NULL,
	    "check mail with DCC"),
	G("spf_domains", CONF_T_STRLIST, spf_domains, 0, 0, NULL, 0, 0, NULL,
	    "envelope-from domains checked with SPF (exact, any case; "
	    "\"*\" = every domain)"),
	G("use_redis", CONF_T_FLAG, use_redis, 0, 0, "no", NI, 0, NULL,
	    "use redis (a redis section also sets it)"),

	/* ---- dns (the spf module's resolver) ---- */
	SCAN("dns", DNSS, "nameserver", CONF_T_SERVERS, nameserver, 0, 0,
	    NULL, 0, 53, NULL, "nameservers: ip[:port] or [ipv6]:port, "
	    "several allowed (default: those of /etc/resolv.conf)"),
	SCAN("dns", DNSS, "timeout", CONF_T_TIME, timeout, 10, 60 * S_MS,
	    "2s", 0, 1000, NULL, "time a nameserver has to answer one try "
	    "(doubled on each further try)"),
	SCAN("dns", DNSS, "attempts", CONF_T_UINT, attempts, 1, 10, "2", 0,
	    0, NULL, "tries per nameserver before a query fails"),
	SCAN("dns", DNSS, "cache_size", CONF_T_UINT, cache_size, 0, 1000000,
	    "4096", 0, 0, NULL, "answers kept for their TTL (at most 1h; "
	    "0 = no cache)"),

	/* ---- spf ---- */
	SCAN("spf", SPFS, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0, 0,
	    NULL, "use this module (it also needs spf_domains)"),
	SCAN("spf", SPFS, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0, 0,
	    "enforce|shadow", "shadow: decide and record, change nothing"),
	SCAN("spf", SPFS, "fail_action", CONF_T_ENUM, fail_action, 0, 0,
	    "reject", 0, 0, "reject|tempfail|pass",
	    "SPF fail: reject (550 5.7.23), tempfail (451 4.7.24) or pass"),
	SCAN("spf", SPFS, "softfail_action", CONF_T_ENUM, softfail_action, 0,
	    0, "pass", 0, 0, "reject|tempfail|pass",
	    "SPF softfail: reject, tempfail or pass"),
	SCAN("spf", SPFS, "temperror_action", CONF_T_ENUM, temperror_action,
	    0, 0, "pass", 0, 0, "reject|tempfail|pass",
	    "SPF temperror (DNS failed or timed out): pass or tempfail "
	    "(451 4.7.24)"),
	SCAN("spf", SPFS, "permerror_action", CONF_T_ENUM, permerror_action,
	    0, 0, "pass", 0, 0, "reject|tempfail|pass",
	    "SPF permerror (a broken record): pass or reject (550 5.7.24)"),
	SCAN("spf", SPFS, "header", CONF_T_ENUM, header, 0, 0, "received-spf",
	    0, 0, "received-spf|authentication-results|both|none",
	    "header added to checked mail that passes"),
	SCAN("spf", SPFS, "authserv_id", CONF_T_STRING, authserv_id, 0, 0,
	    NULL, 0, 0, NULL, "host name in the headers (default: the MTA's "
	    "j macro, else the host name)"),
	SCAN("spf", SPFS, "timeout", CONF_T_TIME, timeout, 100, 300 * S_MS,
	    "10s", 0, 1000, NULL, "time for a whole check (every lookup); "
	    "then the result is temperror"),
	SCAN("spf", SPFS, "explanation", CONF_T_QSTRING, explanation, 0, 0,
	    "\"%{i} is not allowed to send mail for %{d}\"", 0, 0, NULL,
	    "explanation when the domain publishes none (SPF macros)"),

	/* ---- clamav ---- */
	SCAN("clamav", CLAM, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0, 0,
	    NULL, "use this module"),
	SCAN("clamav", CLAM, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0, 0,
	    "enforce|shadow", "shadow: decide and record, change nothing"),
	SCAN("clamav", CLAM, "servers", CONF_T_SERVERS, servers, 0, 0, NULL, 0,
	    CONF_PORT_CLAMD, NULL, "clamd servers: host[:port[:priority]], "
	    "[ipv6]:port or /path/to/clamd.ctl; empty = no virus scan"),
	SCANPOOL("clamav", CLAM, "3", "64"),
	SEC("clamav", CLAM, "port_timeout", CONF_T_TIME, port_timeout, 1,
	    3600 * S_MS, "3s", 0, 1000, NULL,
	    "wait for the legacy STREAM port reply"),
	SCAN("clamav", CLAM, "results_timeout", CONF_T_TIME, results_timeout,
	    1, 3600 * S_MS, "20s", 0, 1000, NULL,
	    "time allowed to send the message and get clamd's verdict"),
	SCAN("clamav", CLAM, "tempfail_on_error", CONF_T_FLAG,
	    tempfail_on_error, 0, 0, "no", 0, 0, NULL,
	    "tempfail the message when no clamd answers (else pass it "
	    "unscanned)"),
	SCAN("clamav", CLAM, "whitelist", CONF_T_NETLIST, whitelist, 0, 0,
	    NULL, 0, 0, NULL, "clients whose mail is not scanned"),
	SCAN("clamav", CLAM, "stream_max_length", CONF_T_SIZE,
	    stream_max_length, 1024, 4.0 * 1024 * 1024 * 1024, "25M", 0, 0,
	    NULL, "clamd's StreamMaxLength: larger messages are not sent "
	    "(recorded as skipped)"),
	SCAN("clamav", CLAM, "virus_action", CONF_T_ENUM, virus_action, 0, 0,
	    "reject", 0, 0, "reject|discard|quarantine|header",
	    "what to do with an infected message"),
	SCAN("clamav", CLAM, "virus_message", CONF_T_QSTRING, virus_message,
	    0, 0, "\"554 5.7.1 Infected: ${virus}\"", 0, 0, NULL,
	    "reply for reject (a template; ${virus} is the virus name), or "
	    "the quarantine reason"),
	SCAN("clamav", CLAM, "virus_header", CONF_T_QSTRING, virus_header, 0,
	    0, "X-Virus", 0, 0, NULL,
	    "header added with virus_action = header"),

	/* ---- spamd (rspamd or SpamAssassin) and its alias rspamd ---- */
	SCAN("spamd", SPAMD, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0, 0,
	    NULL, "use this module"),
	SCAN("spamd", SPAMD, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0, 0,
	    "enforce|shadow", "shadow: decide and record, change nothing"),
	SCAN("spamd", SPAMD, "servers", CONF_T_SERVERS, servers, 0, 0, NULL,
	    CONF_F_RSPAMD, CONF_PORT_SPAMD, NULL,
	    "r:host[:port] = rspamd (11333), host[:port] = SpamAssassin spamd "
	    "(783); empty = no spam scan"),
	SCAN("rspamd", SPAMD, "servers", CONF_T_SERVERS, rspamd_servers, 0, 0,
	    NULL, CONF_F_RSPAMD, CONF_PORT_RSPAMD, NULL,
	    "in a rspamd { } section: rspamd servers (default port 11333)"),
	SCANPOOL("spamd", SPAMD, "5", "64"),
	SCAN("spamd", SPAMD, "results_timeout", CONF_T_TIME, results_timeout,
	    1, 3600 * S_MS, "20s", 0, 1000, NULL,
	    "time allowed to send the message and get the scan result"),
	SCAN("spamd", SPAMD, "keepalive_timeout", CONF_T_TIME,
	    keepalive_timeout, 0, 3600 * S_MS, "30s", 0, 1000, NULL,
	    "keep idle rspamd connections this long for reuse (0 = a new "
	    "connection per scan)"),
	SCAN("spamd", SPAMD, "tempfail_on_error", CONF_T_FLAG,
	    tempfail_on_error, 0, 0, "no", 0, 0, NULL,
	    "tempfail the message when no server answers (else pass it)"),
	SCAN("spamd", SPAMD, "spamd_temp_fail", CONF_T_FLAG, tempfail_on_error,
	    0, 0, NULL, AL, 0, NULL, "alias of tempfail_on_error"),
	SCAN("spamd", SPAMD, "reject_message", CONF_T_QSTRING, reject_message,
	    0, 0, "\"Spam message rejected; If this is not spam contact abuse "
	    "team\"", 0, 0, NULL,
	    "reply text when spam is rejected and rspamd gives none"),
	SCAN("spamd", SPAMD, "whitelist", CONF_T_NETLIST, whitelist, 0, 0,
	    NULL, 0, 0, NULL, "clients whose mail is not scanned"),
	SCAN("spamd", SPAMD, "spamd_greylist", CONF_T_FLAG, spamd_greylist, 0,
	    0, "yes", 0, 0, NULL, "rspamd's greylist action tempfails the "
	    "message (451 4.7.1); no: passes it"),
	SCAN("spamd", SPAMD, "spamd_never_reject", CONF_T_FLAG,
	    spamd_never_reject, 0, 0, "no", 0, 0, NULL,
	    "add the spam header instead of rejecting"),
	SCAN("spamd", SPAMD, "spamd_spam_add_header", CONF_T_FLAG,
	    spamd_spam_add_header, 0, 0, "yes", 0, 0, NULL,
	    "also add the spam header when rewriting the subject"),
	SEC("spamd", SPAMD, "spamd_soft_fail", CONF_T_FLAG, spamd_soft_fail, 0,
	    0, "yes", 0, 0, NULL, "apply the soft actions (not only reject)"),
	SCAN("spamd", SPAMD, "spam_header", CONF_T_QSTRING, spam_header, 0, 0,
	    "X-Spam", 0, 0, NULL, "name of the spam header"),
	SCAN("spamd", SPAMD, "spam_header_value", CONF_T_QSTRING,
	    spam_header_value, 0, 0, "yes", 0, 0, NULL,
	    "value of the spam header"),
	SCAN("spamd", SPAMD, "spam_no_auth_header", CONF_T_FLAG,
	    spam_no_auth_header, 0, 0, "no", 0, 0, NULL,
	    "authenticated senders get no spam header or subject change"),
	SCAN("spamd", SPAMD, "extended_spam_headers", CONF_T_FLAG,
	    extended_spam_headers, 0, 0, "no", 0, 0, NULL,
	    "add X-Spamd-Result, X-Rspamd-Server, X-Rspamd-Scan-Time and "
	    "X-Rspamd-Queue-ID for unauthenticated senders"),
	SCAN("spamd", SPAMD, "extended_headers_rcpt", CONF_T_RCPTLIST,
	    extended_headers_rcpt, 0, 0, NULL, 0, 0, NULL,
	    "the extended headers also when every recipient is in this list"),
	SCAN("spamd", SPAMD, "spamd_settings_id", CONF_T_QSTRING,
	    spamd_settings_id, 0, 0, NULL, 0, 0, NULL,
	    "rspamd Settings-ID sent with each scan"),
	SEC("spamd", SPAMD, "compression", CONF_T_FLAG, compression, 0, 0,
	    "no", 0, 0, NULL, "zstd-compress rspamd requests"),
	SEC("spamd", SPAMD, "trace_symbol", CONF_T_QSTRING, trace_symbol, 0, 0,
	    NULL, 0, 0, NULL, "when this symbol fires, add trace_addr"),
	SEC("spamd", SPAMD, "trace_addr", CONF_T_QSTRING, trace_addr, 0, 0,
	    NULL, 0, 0, NULL, "recipient added when trace_symbol fires"),
	SEC("spamd", SPAMD, "rspamd_metric", CONF_T_QSTRING, rspamd_metric, 0,
	    0, "default", 0, 0, NULL, "rspamd metric that decides"),
	SEC("spamd", SPAMD, "also_check", CONF_T_SERVERS, also_check, 0, 0,
	    NULL, CONF_F_RSPAMD, CONF_PORT_SPAMD, NULL,
	    "extra scanners whose result is only reported"),
	SEC("spamd", SPAMD, "spam_bar_char", CONF_T_QSTRING, spam_bar_char, 0,
	    0, "x", 0, 0, NULL, "character of the X-Spam-Level bar"),
	SEC("spamd", SPAMD, "diff_dir", CONF_T_STRING, diff_dir, 0, 0, NULL, 0,
	    0, NULL, "directory for messages the scanners disagree on"),
	SEC("spamd", SPAMD, "symbols_dir", CONF_T_STRING, symbols_dir, 0, 0,
	    NULL, 0, 0, NULL, "directory for messages with check_symbols"),
	SEC("spamd", SPAMD, "check_symbols", CONF_T_STRLIST, check_symbols, 0,
	    0, NULL, 0, 0, NULL, "symbols whose messages go to symbols_dir"),

	/* ---- spamassassin (SpamAssassin spamd) ---- */
	SCAN("spamassassin", SA, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0,
	    0, NULL, "use this module"),
	SCAN("spamassassin", SA, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0,
	    0, "enforce|shadow", "shadow: decide and record, change nothing"),
	SCAN("spamassassin", SA, "servers", CONF_T_SERVERS, servers, 0, 0,
	    NULL, 0, CONF_PORT_SPAMD, NULL, "SpamAssassin spamd servers "
	    "(default port 783); empty = off"),
	SCANPOOL("spamassassin", SA, "2", "16"),
	SCAN("spamassassin", SA, "results_timeout", CONF_T_TIME,
	    results_timeout, 1, 3600 * S_MS, "30s", 0, 1000, NULL,
	    "time allowed to send the message and get spamd's verdict"),
	SCAN("spamassassin", SA, "tempfail_on_error", CONF_T_FLAG,
	    tempfail_on_error, 0, 0, "no", 0, 0, NULL,
	    "tempfail the message when no server answers (else pass it)"),
	SCAN("spamassassin", SA, "whitelist", CONF_T_NETLIST, whitelist, 0, 0,
	    NULL, 0, 0, NULL, "clients whose mail is not scanned"),
	SCAN("spamassassin", SA, "spam_tag_level", CONF_T_FLOAT,
	    spam_tag_level, -1000, 1000, "-1000", 0, 0, NULL,
	    "add X-Spam-Status, X-Spam-Score and X-Spam-Level at or above this "
	    "score (default: to every scanned message)"),
	SCAN("spamassassin", SA, "spam_kill_level", CONF_T_FLOAT,
	    spam_kill_level, -1000, 1000, "0", 0, 0, NULL,
	    "reject at or above this score (0: when spamd says the message "
	    "is spam); spam below it gets the spam header"),
	SCAN("spamassassin", SA, "spamd_never_reject", CONF_T_FLAG,
	    spamd_never_reject, 0, 0, "no", 0, 0, NULL,
	    "add the spam header instead of rejecting"),
	SCAN("spamassassin", SA, "reject_message", CONF_T_QSTRING,
	    reject_message, 0, 0, "\"Spam message rejected; If this is not "
	    "spam contact abuse team\"", 0, 0, NULL,
	    "reply text when spam is rejected"),
	SCAN("spamassassin", SA, "spam_header", CONF_T_QSTRING, spam_header, 0,
	    0, "X-Spam", 0, 0, NULL, "header added to spam that is not "
	    "rejected"),
	SCAN("spamassassin", SA, "spam_header_value", CONF_T_QSTRING,
	    spam_header_value, 0, 0, "yes", 0, 0, NULL,
	    "value of the spam header"),
	SCAN("spamassassin", SA, "user", CONF_T_QSTRING, user, 0, 0,
	    "rmilter", 0, 0, NULL, "user name sent to spamd (its per-user "
	    "settings)"),
	SCAN("spamassassin", SA, "request", CONF_T_ENUM, request, 0, 0,
	    "symbols", 0, 0, "symbols|report",
	    "SPAMC command: rule names only, or the full report"),
	SCAN("spamassassin", SA, "spam_level_char", CONF_T_QSTRING,
	    spam_level_char, 0, 0, "*", 0, 0, NULL,
	    "character repeated once per score point in X-Spam-Level"),

	/* ---- redis (alias memcached) ---- */
	SCAN("redis", REDIS, "servers_grey", CONF_T_SERVERS, servers_grey, 0, 0,
	    NULL, 0, CONF_PORT_REDIS, NULL,
	    "greylisting records; empty = the in-memory store"),
	SCAN("redis", REDIS, "servers_white", CONF_T_SERVERS, servers_white, 0,
	    0, NULL, 0, CONF_PORT_REDIS, NULL,
	    "greylisting whitelist records (default: servers_grey)"),
	SCAN("redis", REDIS, "servers_limits", CONF_T_SERVERS, servers_limits,
	    0, 0, NULL, 0, CONF_PORT_REDIS, NULL,
	    "rate limit buckets; empty = the in-memory store"),
	SCAN("redis", REDIS, "servers_id", CONF_T_SERVERS, servers_id, 0, 0,
	    NULL, 0, CONF_PORT_REDIS, NULL, "Message-ID records for replies"),
	SEC("redis", REDIS, "servers_spam", CONF_T_SERVERS, servers_spam, 0, 0,
	    NULL, 0, CONF_PORT_REDIS, NULL, "publish rejected spam here"),
	SEC("redis", REDIS, "servers_copy", CONF_T_SERVERS, servers_copy, 0, 0,
	    NULL, 0, CONF_PORT_REDIS, NULL, "publish message copies here"),
	SEC("redis", REDIS, "spam_channel", CONF_T_QSTRING, spam_channel, 0, 0,
	    NULL, 0, 0, NULL, "channel for spam"),
	SEC("redis", REDIS, "copy_channel", CONF_T_QSTRING, copy_channel, 0, 0,
	    NULL, 0, 0, NULL, "channel for copies"),
	SEC("redis", REDIS, "copy_probability", CONF_T_PERCENT,
	    copy_probability, 0, 100, "100", 0, 0, NULL,
	    "percentage of messages copied (a value <= 1 is a fraction)"),
	SCAN("redis", REDIS, "grey_prefix", CONF_T_QSTRING, grey_prefix, 0, 0,
	    "grey", 0, 0, NULL, "key prefix of greylisting records"),
	SCAN("redis", REDIS, "white_prefix", CONF_T_QSTRING, white_prefix, 0, 0,
	    "white", 0, 0, NULL, "key prefix of whitelist records"),
	SCAN("redis", REDIS, "id_prefix", CONF_T_QSTRING, id_prefix, 0, 0, "id",
	    0, 0, NULL, "key prefix of Message-ID records"),
	SCAN("redis", REDIS, "password", CONF_T_QSTRING, password, 0, 0, NULL, 0,
	    0, NULL, "AUTH password"),
	SCAN("redis", REDIS, "dbname", CONF_T_QSTRING, dbname, 0, 0, NULL, 0, 0,
	    NULL, "database selected with SELECT"),
	SCAN("redis", REDIS, "connect_timeout", CONF_T_TIME, connect_timeout,
	    1, 3600 * S_MS, "1s", 0, 1000, NULL,
	    "timeout for connecting to a redis server"),
	SCAN("redis", REDIS, "error_time", CONF_T_TIME, error_time, 0, S_DAY,
	    "10s", 0, 1000, NULL, "window in which a server's errors are counted"),
	SCAN("redis", REDIS, "dead_time", CONF_T_TIME, dead_time, 0, 7 * S_DAY,
	    "300s", 0, 1000, NULL,
	    "how long a failed server is left alone before a probe"),
	SCAN("redis", REDIS, "maxerrors", CONF_T_UINT, maxerrors, 1, 1000000,
	    "10", 0, 0, NULL, "errors within error_time that mark a server dead"),
	SCAN("redis", REDIS, "command_timeout", CONF_T_TIME, command_timeout,
	    1, 3600 * S_MS, "1s", 0, 1000, NULL,
	    "time allowed for a command's reply (then the connection is "
	    "remade)"),
	SCAN("redis", REDIS, "limits_prefix", CONF_T_QSTRING, limits_prefix, 0,
	    0, "rl", 0, 0, NULL, "key prefix of rate limit buckets"),
	SCAN("redis", REDIS, "awl_prefix", CONF_T_QSTRING, awl_prefix, 0, 0,
	    "awl", 0, 0, NULL, "key prefix of auto-whitelist counters"),
	SCAN("redis", REDIS, "id_ttl", CONF_T_TIME, id_ttl, 1000, 365 * S_DAY,
	    "7d", 0, 1000, NULL, "lifetime of a local sender's Message-ID "
	    "record"),
	SEC("redis", REDIS, "protocol", CONF_T_KEYWORD, protocol, 0, 0, NULL, 0,
	    0, "tcp|udp", "ignored (rmilter 1.6 memcached protocol)"),

	/* ---- greylisting ---- */
	SCAN("greylisting", GREY, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0,
	    0, NULL, "use this module (redis servers_grey, else the in-memory "
	    "store)"),
	SCAN("greylisting", GREY, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0, 0,
	    "enforce|shadow", "shadow: decide and record, change nothing"),
	SCAN("greylisting", GREY, "timeout", CONF_T_TIME, timeout, 0, 30 * S_DAY,
	    "300s", 0, 1000, NULL, "minimum delay before a retry is accepted"),
	SCAN("greylisting", GREY, "expire", CONF_T_TIME, expire, 0, 365 * S_DAY,
	    "1d", 0, 1000, NULL, "lifetime of greylisting records"),
	SCAN("greylisting", GREY, "expire_white", CONF_T_TIME, expire_white, 0,
	    365 * S_DAY, "3d", 0, 1000, NULL,
	    "lifetime of whitelisted (passed) records"),
	SCAN("greylisting", GREY, "whitelist", CONF_T_NETLIST, whitelist, 0, 0,
	    NULL, 0, 0, NULL, "clients never greylisted"),
	SCAN("greylisting", GREY, "greylisted_message", CONF_T_QSTRING,
	    greylisted_message, 0, 0, "\"Try again later\"", 0, 0, NULL,
	    "reply text for greylisted mail"),
	SCAN("greylisting", GREY, "awl_enable", CONF_T_FLAG, awl_enable, 0, 0,
	    "no", 0, 0, NULL, "auto-whitelist clients that passed greylisting "
	    "awl_hits times"),
	SCAN("greylisting", GREY, "awl_hits", CONF_T_UINT, awl_hits, 0, 1000000,
	    "10", 0, 0, NULL, "passes before an IP is auto-whitelisted"),
	SEC("greylisting", GREY, "awl_pool", CONF_T_SIZE, awl_pool, 0, 0, "10M",
	    0, 0, NULL, "memory for the auto-whitelist"),
	SCAN("greylisting", GREY, "awl_ttl", CONF_T_TIME, awl_ttl, 0,
	    365 * S_DAY, "3600s", 0, 1000, NULL,
	    "lifetime of an auto-whitelist entry"),
	SCAN("greylisting", GREY, "ipv4_mask", CONF_T_UINT, ipv4_mask, 8, 32,
	    "24", 0, 0, NULL, "IPv4 clients are grouped by this network"),
	SCAN("greylisting", GREY, "ipv6_mask", CONF_T_UINT, ipv6_mask, 16, 128,
	    "64", 0, 0, NULL, "IPv6 clients are grouped by this network"),
	SCAN("greylisting", GREY, "tempfail_on_error", CONF_T_FLAG,
	    tempfail_on_error, 0, 0, "no", 0, 0, NULL,
	    "tempfail when the store fails (else pass)"),

	/* ---- limits ---- */
	SCAN("limits", LIM, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0, 0,
	    NULL, "use this module (redis servers_limits, else the in-memory "
	    "store)"),
	SCAN("limits", LIM, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0, 0,
	    "enforce|shadow", "shadow: decide and record, change nothing"),
	SCAN("limits", LIM, "limit_to", CONF_T_BUCKET, limit_to, 0, 0, NULL, 0,
	    0, NULL, "per recipient (e.g. 20:0.016666667, or 20:1/m)"),
	SCAN("limits", LIM, "limit_to_ip", CONF_T_BUCKET, limit_to_ip, 0, 0,
	    NULL, 0, 0, NULL, "per recipient and client IP (e.g. 30:0.025)"),
	SCAN("limits", LIM, "limit_to_ip_from", CONF_T_BUCKET, limit_to_ip_from,
	    0, 0, NULL, 0, 0, NULL,
	    "per recipient, client IP and sender (e.g. 100:0.033333333)"),
	SCAN("limits", LIM, "limit_bounce_to", CONF_T_BUCKET, limit_bounce_to, 0,
	    0, NULL, 0, 0, NULL, "bounces per recipient (e.g. 5:0.000277778)"),
	SCAN("limits", LIM, "limit_bounce_to_ip", CONF_T_BUCKET,
	    limit_bounce_to_ip, 0, 0, NULL, 0, 0, NULL,
	    "bounces per recipient and client IP (e.g. 5:0.000277778)"),
	SCAN("limits", LIM, "limit_whitelist", CONF_T_NETLIST, limit_whitelist,
	    0, 0, NULL, 0, 0, NULL, "clients without limits"),
	SCAN("limits", LIM, "limit_whitelist_ip", CONF_T_NETLIST,
	    limit_whitelist, 0, 0, NULL, AL, 0, NULL,
	    "alias of limit_whitelist"),
	SCAN("limits", LIM, "limit_whitelist_rcpt", CONF_T_RCPTLIST,
	    limit_whitelist_rcpt, 0, 0, NULL, 0, 0, NULL,
	    "recipients without limits"),
	SCAN("limits", LIM, "limit_bounce_addrs", CONF_T_STRLIST,
	    limit_bounce_addrs, 0, 0, "postmaster, mailer-daemon, "
	    "symantec_antivirus_for_smtp_gateways, <>, null, fetchmail-daemon",
	    0, 0, NULL, "sender local parts that make a message a bounce"),
	SCAN("limits", LIM, "tempfail_on_error", CONF_T_FLAG,
	    tempfail_on_error, 0, 0, "no", 0, 0, NULL,
	    "tempfail when the store fails (else pass)"),

	/* ---- dkim ---- */
	SCAN("dkim", DKIM, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0, 0,
	    NULL, "sign mail (no: every message is recorded as not signed)"),
	SCAN("dkim", DKIM, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0, 0,
	    "enforce|shadow", "shadow: sign and record, add no header"),
	SCAN("dkim", DKIM, "header_canon", CONF_T_ENUM, header_canon, 0, 0,
	    "simple", 0, 0, "simple|relaxed", "header canonicalization"),
	SCAN("dkim", DKIM, "body_canon", CONF_T_ENUM, body_canon, 0, 0,
	    "simple", 0, 0, "simple|relaxed", "body canonicalization"),
	SCAN("dkim", DKIM, "sign_alg", CONF_T_ENUM, sign_alg, 0, 0, "sha256", 0,
	    0, "sha1|sha256|ed25519", "signature algorithm: rsa-sha1, "
	    "rsa-sha256 or ed25519-sha256 (the keys must match)"),
	SCAN("dkim", DKIM, "auth_only", CONF_T_FLAG, auth_only, 0, 0, "yes", 0,
	    0, NULL, "sign only for authenticated senders (SASL or "
	    "our_networks) and sign_networks"),
	SCAN("dkim", DKIM, "sign_networks", CONF_T_NETLIST, sign_networks, 0, 0,
	    NULL, 0, 0, NULL, "also sign for these clients"),
	SCAN("dkim", DKIM, "fold_header", CONF_T_FLAG, fold_header, 0, 0, "no",
	    0, 0, NULL, "fold the DKIM-Signature header"),
	SEC("dkim", DKIM, "rspamd_sign", CONF_T_FLAG, rspamd_sign, 0, 0, "no", 0,
	    0, NULL, "ask rspamd to sign mail that was not scanned"),
	SCAN("dkim", DKIM, "sign_headers", CONF_T_STRLIST, sign_headers, 0, 0,
	    NULL, 0, 0, NULL, "headers signed when present (default: from, "
	    "sender, reply-to, subject, date, message-id, to, cc, mime and "
	    "list headers, resent-*, in-reply-to, references)"),
	SCAN("dkim", DKIM, "oversign_headers", CONF_T_STRLIST, oversign_headers,
	    0, 0, "from", 0, 0, NULL, "headers signed once more than present, "
	    "so none can be added after signing"),
	SCAN("dkim", DKIM, "use_domain", CONF_T_ENUM, use_domain, 0, 0,
	    "header", 0, 0, "header|envelope", "the domain signed for: the "
	    "From header's or the envelope sender's"),
	SCAN("dkim", DKIM, "max_size", CONF_T_SIZE, max_size, 0, 0, "0", 0, 0,
	    NULL, "larger messages are not signed (0: no limit)"),
	SCAN("dkim.domain", DDOM, "key", CONF_T_STRING, key, 0, 0, NULL, 0, 0,
	    NULL, "private key file (PEM or DER), or a key directory with "
	    "<domain>.<selector>.key files"),
	SCAN("dkim.domain", DDOM, "domain", CONF_T_QSTRING, domain, 0, 0, NULL,
	    0, 0, NULL, "sender domain signed with this key; \"*\" = any"),
	SCAN("dkim.domain", DDOM, "selector", CONF_T_QSTRING, selector, 0, 0,
	    NULL, 0, 0, NULL, "DKIM selector"),
	SCAN("dkim.domain", DDOM, "sign_subdomains", CONF_T_FLAG,
	    sign_subdomains, 0, 0, "no", 0, 0, NULL, "also sign for "
	    "subdomains of domain (as domain, with its key)"),

	/* ---- beanstalk ---- */
	SCAN("beanstalk", BEAN, "enable", CONF_T_FLAG, enable, 0, 0, "yes", 0,
	    0, NULL, "use this module"),
	SCAN("beanstalk", BEAN, "mode", CONF_T_ENUM, mode, 0, 0, "enforce", 0,
	    0, "enforce|shadow", "accepted; no effect (the module never "
	    "changes a message, and sends its jobs in either mode)"),
	SCAN("beanstalk", BEAN, "servers", CONF_T_SERVERS, servers, 0, 0, NULL,
	    0, CONF_PORT_BEANSTALK, NULL, "beanstalkd servers that get the "
	    "headers of every message (send_beanstalk_headers)"),
	SCAN("beanstalk", BEAN, "copy_server", CONF_T_SERVERS, copy_server, 0,
	    0, NULL, 0, CONF_PORT_BEANSTALK, NULL, "beanstalkd servers that "
	    "get whole copies (send_beanstalk_copy)"),
	SCAN("beanstalk", BEAN, "spam_server", CONF_T_SERVERS, spam_server, 0,
	    0, NULL, 0, CONF_PORT_BEANSTALK, NULL, "beanstalkd servers that "
	    "get the mail a spam scanner acted on (send_beanstalk_spam)"),
	SCAN("beanstalk", BEAN, "connect_timeout", CONF_T_TIME,
	    connect_timeout, 1, 3600 * S_MS, "1s", 0, 1000, NULL,
	    "timeout for connecting to a server"),
	SCAN("beanstalk", BEAN, "error_time", CONF_T_TIME, error_time, 0,
	    S_DAY, "10s", 0, 1000, NULL,
	    "window in which a server's errors are counted"),
	SCAN("beanstalk", BEAN, "dead_time", CONF_T_TIME, dead_time, 0,
	    7 * S_DAY, "300s", 0, 1000, NULL,
	    "how long a failed server is left alone before a probe"),
	SCAN("beanstalk", BEAN, "maxerrors", CONF_T_UINT, maxerrors, 1,
	    1000000, "10", 0, 0, NULL,
	    "errors within error_time that mark a server dead"),
	SCAN("beanstalk", BEAN, "timeout", CONF_T_TIME, timeout, 1,
	    3600 * S_MS, "5s", 0, 1000, NULL,
	    "time allowed to send a job and get beanstalkd's answer"),
	SCAN("beanstalk", BEAN, "tube", CONF_T_QSTRING, tube, 0, 0, "default",
	    0, 0, NULL, "tube the jobs are put in"),
	SCAN("beanstalk", BEAN, "max_queue", CONF_T_UINT, max_queue, 1,
	    1000000, "1000", 0, 0, NULL, "jobs in flight at most (all "
	    "servers); more are dropped and logged"),
	SCAN("beanstalk", BEAN, "max_queue_bytes", CONF_T_SIZE,
	    max_queue_bytes, 1024, 4.0 * 1024 * 1024 * 1024, "64M", 0, 0, NULL,
	    "job data in flight at most; more is dropped and logged"),
	SEC("beanstalk", BEAN, "protocol", CONF_T_KEYWORD, protocol, 0, 0, NULL,
	    0, 0, "tcp|udp", "ignored"),
	SCAN("beanstalk", BEAN, "id_regexp", CONF_T_REGEX, id_regexp, 0, 0,
	    NULL, 0, 0, NULL, "messages whose In-Reply-To matches go whole "
	    "(not only their headers) to servers"),
	SCAN("beanstalk", BEAN, "lifetime", CONF_T_TIME, lifetime, 1000,
	    365 * S_DAY, "172800s", 0, 1000, NULL,
	    "the jobs' time-to-run (TTR, whole seconds)"),
	SCAN("beanstalk", BEAN, "copy_probability", CONF_T_PERCENT,
	    copy_probability, 0, 100, "100", 0, 0, NULL,
	    "percentage of messages copied (a value <= 1 is a fraction)"),
	SCAN("beanstalk", BEAN, "send_beanstalk_headers", CONF_T_FLAG,
	    send_beanstalk_headers, 0, 0, "no", 0, 0, NULL,
	    "send the headers of every message to servers"),
	SCAN("beanstalk", BEAN, "send_beanstalk_copy", CONF_T_FLAG,
	    send_beanstalk_copy, 0, 0, "no", 0, 0, NULL,
	    "send copies to copy_server"),
	SCAN("beanstalk", BEAN, "send_beanstalk_spam", CONF_T_FLAG,
	    send_beanstalk_spam, 0, 0, "no", 0, 0, NULL,
	    "send spam to spam_server"),
	SEC("beanstalk", BEAN, "send_beanstalk_spam_extra_diff", CONF_T_FLAG,
	    send_beanstalk_spam_extra_diff, 0, 0, "no", 0, 0, NULL,
	    "send to spam_server when also_check disagrees"),
};

static const char *const conf_section_names[] = {
	"clamav", "spamd", "rspamd", "spamassassin", "redis", "memcached", "greylisting", "limits",
	"dkim", "rule", "beanstalk", "dns", "spf", NULL,
};

static const char *const conf_rule_words[] = {
	"accept", "reject", "tempfail", "discard", "quarantine", "not",
	"connect", "helo", "envfrom", "envrcpt", "header", "body", "name",
	"enable", "mode", NULL,
};

/* State of one conf_schema_apply() run. */
struct conf_apply {
	struct rmilter_config *c;
	struct conf_diag *d;
	char **noticed;		/* keys that already got their notice */
	size_t nnoticed;
};

typedef int (*conf_setter)(struct conf_apply *a,
    const struct conf_directive *e, const struct conf_node *n, void *field);

static const char *conf_key(const struct conf_directive *e, char *buf,
    size_t len);
static void conf_notice(struct conf_apply *a, const char *key,
    const char *file, unsigned line);
static int conf_err(struct conf_apply *a, const struct conf_node *n,
    unsigned line, const struct conf_directive *e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void *conf_section_base(struct rmilter_config *c, const char *sec);
static const struct conf_directive *conf_lookup(const char *sec,
    const char *name);
static void conf_unknown(struct conf_apply *a, const struct conf_node *n,
    const char *sec);
static int conf_set_scalar(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, void *field);
static int conf_set_list(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, void *field);
static int conf_set_regex(struct conf_apply *a, const struct conf_directive *e,
    const char *file, const struct conf_val *v, struct conf_regex *re);
static void conf_regex_free(struct conf_regex *re);
static void conf_field_free(const struct conf_directive *e, void *field);
static void conf_apply_block(struct conf_apply *a, const struct conf_node *blk,
    const char *sec, void *base);
static void conf_apply_rule(struct conf_apply *a, const struct conf_node *blk);
static void conf_apply_dkim_domain(struct conf_apply *a,
    const struct conf_node *blk);
static void conf_node_default(struct conf_node *n, struct conf_val *vals,
    char *buf, const char *def);
static int conf_one_value(struct conf_apply *a,
    const struct conf_directive *e, const struct conf_node *n,
    const struct conf_val **vp);
static int conf_choice(const char *choices, const char *s, char *out,
    size_t outlen);
static int conf_each(const struct conf_val *v, bool split,
    int (*fn)(void *, const char *), void *arg);
static int conf_list_net(void *arg, const char *s);
static int conf_list_rcpt(void *arg, const char *s);
static int conf_list_str(void *arg, const char *s);
static int conf_list_server(void *arg, const char *s);
static int conf_set(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, void *base);
static void conf_apply_defaults(struct conf_apply *a, const char *sec,
    void *base);
static int conf_rule_regex(struct conf_apply *a, const struct conf_node *n,
    const struct conf_val *v, struct conf_regex *re);
static void conf_free_section(const char *sec, void *base);

const struct conf_directive *
conf_schema_table(size_t *n)
{
	*n = sizeof(conf_table) / sizeof(conf_table[0]);
	return conf_table;
}

const char *const *
conf_schema_sections(void)
{
	return conf_section_names;
}

bool
conf_schema_wants_regex(const char *section, const char *name)
{
	const struct conf_directive *e = conf_lookup(
	    strcmp(section, "memcached") == 0 ? "redis" : section, name);

	return e != NULL && e->type == CONF_T_REGEX;
}

static const char *
conf_key(const struct conf_directive *e, char *buf, size_t len)
{
	if (e->section[0] == '\0')
		snprintf(buf, len, "%s", e->name);
	else
		snprintf(buf, len, "%s.%s", e->section, e->name);
	return buf;
}

static void
conf_notice(struct conf_apply *a, const char *key, const char *file,
    unsigned line)
{
	size_t i;

	for (i = 0; i < a->nnoticed; i++)
		if (strcmp(a->noticed[i], key) == 0)
			return;
	a->noticed = xrealloc(a->noticed, (a->nnoticed + 1) *
	    sizeof(*a->noticed));
	a->noticed[a->nnoticed++] = xstrdup(key);
	conf_diag_add(a->d, CONF_DIAG_NOTICE, file, line,
	    "'%s' recognized, not implemented yet", key);
}

/* true if some directive of section SEC works (its module exists). */
static bool
section_implemented(const char *sec)
{
	size_t i;

	for (i = 0; i < sizeof(conf_table) / sizeof(conf_table[0]); i++)
		if (strcmp(conf_table[i].section, sec) == 0 &&
		    !(conf_table[i].flags & NI))
			return true;
	return false;
}

/* An error about directive E (may be NULL) of statement N at LINE. */
static int
conf_err(struct conf_apply *a, const struct conf_node *n, unsigned line,
    const struct conf_directive *e, const char *fmt, ...)
{
	char key[128], msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e != NULL)
		conf_diag_add(a->d, CONF_DIAG_ERROR, n->file, line ? line :
		    n->line, "'%s': %s", conf_key(e, key, sizeof(key)), msg);
	else
		conf_diag_add(a->d, CONF_DIAG_ERROR, n->file, line ? line :
		    n->line, "%s", msg);
	return -1;
}

static void *
conf_section_base(struct rmilter_config *c, const char *sec)
{
	struct conf_sections *s = c->sections;

	if (sec[0] == '\0')
		return c;
	if (strcmp(sec, "clamav") == 0)
		return &s->clamav;
	if (strcmp(sec, "spamd") == 0 || strcmp(sec, "rspamd") == 0)
		return &s->spamd;
	if (strcmp(sec, "spamassassin") == 0)
		return &s->spamassassin;
	if (strcmp(sec, "redis") == 0 || strcmp(sec, "memcached") == 0)
		return &s->redis;
	if (strcmp(sec, "greylisting") == 0)
		return &s->greylisting;
	if (strcmp(sec, "limits") == 0)
		return &s->limits;
	if (strcmp(sec, "dkim") == 0)
		return &s->dkim;
	if (strcmp(sec, "beanstalk") == 0)
		return &s->beanstalk;
	if (strcmp(sec, "dns") == 0)
		return &s->dns;
	if (strcmp(sec, "spf") == 0)
		return &s->spf;
	return NULL;
}

static const struct conf_directive *
conf_lookup(const char *sec, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(conf_table) / sizeof(conf_table[0]); i++)
		if (strcmp(conf_table[i].section, sec) == 0 &&
		    strcmp(conf_table[i].name, name) == 0)
			return &conf_table[i];
	/* rspamd { } is spamd { } with its own server list */
	if (strcmp(sec, "rspamd") == 0)
		return conf_lookup("spamd", name);
	return NULL;
}

/* "unknown directive" with a did-you-mean hint from the same section, or
 * the section the name belongs to. */
static void
conf_unknown(struct conf_apply *a, const struct conf_node *n, const char *sec)
{
	const struct conf_directive *best = NULL, *other = NULL;
	unsigned bestd = 100, d, limit;
	size_t i, len = strlen(n->name);
	char where[80];

	for (i = 0; i < sizeof(conf_table) / sizeof(conf_table[0]); i++) {
		const struct conf_directive *e = &conf_table[i];

		if (strcmp(e->section, sec) != 0) {
			if (other == NULL && strcmp(e->name, n->name) == 0)
				other = e;
			continue;
		}
		d = conf_edit_distance(n->name, e->name);
		if (d < bestd) {
			bestd = d;
			best = e;
		}
	}
	if (sec[0] == '\0')
		snprintf(where, sizeof(where), "at the top level");
	else
		snprintf(where, sizeof(where), "in section '%s'", sec);
	limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	if (best != NULL && bestd <= limit)
		conf_err(a, n, 0, NULL, "unknown directive '%.64s' %s (did you "
		    "mean '%s'?)", n->name, where, best->name);
	else if (other != NULL && other->section[0] == '\0')
		conf_err(a, n, 0, NULL, "unknown directive '%.64s' %s ('%s' "
		    "is a top-level directive)", n->name, where, n->name);
	else if (other != NULL)
		conf_err(a, n, 0, NULL, "unknown directive '%.64s' %s (it "
		    "belongs in section '%s')", n->name, where, other->section);
	else
		conf_err(a, n, 0, NULL, "unknown directive '%.64s' %s",
		    n->name, where);
}

static int
conf_one_value(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, const struct conf_val **vp)
{
	if (n->kind == CONF_NODE_APPEND)
		return conf_err(a, n, 0, e, "'+=' only works on lists; use '='");
	if (n->nvals == 0)
		return conf_err(a, n, 0, e, "missing value");
	if (n->nvals > 1)
		return conf_err(a, n, n->vals[1].line, e, "expects one value, "
		    "got %zu (quote text that contains spaces or commas)",
		    n->nvals);
	if (n->vals[0].group)
		return conf_err(a, n, n->vals[0].line, e, "a {a, b} group is "
		    "only allowed in server lists");
	if (n->vals[0].kind == CONF_VAL_REGEX && e->type != CONF_T_REGEX)
		return conf_err(a, n, n->vals[0].line, e, "unexpected regex");
	*vp = &n->vals[0];
	return 0;
}

static int
conf_choice(const char *choices, const char *s, char *out, size_t outlen)
{
	const char *p = choices;
	int idx = 0;

	while (*p != '\0') {
		size_t l = strcspn(p, "|");

		if (strlen(s) == l && strncasecmp(p, s, l) == 0) {
			snprintf(out, outlen, "%.*s", (int)l, p);
			return idx;
		}
		p += l;
		if (*p == '|')
			p++;
		idx++;
	}
	return -1;
}

/* Every type whose value is one word or string. */
static int
conf_set_scalar(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, void *field)
{
	const struct conf_val *v = NULL;
	const char *s;
	char err[512], buf[64], *end;
	bool warn_ms = false;
	double dv;
	uint64_t u;
	int idx;

	if (conf_one_value(a, e, n, &v) < 0)
		return -1;
	s = v->text;
	switch (e->type) {
	case CONF_T_STRING:
		if (e->unit == 1) {	/* bind_socket_owner: user[:group] */
			const char *colon = strchr(s, ':');

			if (colon == s || (colon && (colon[1] == '\0' ||
			    strchr(colon + 1, ':'))))
				return conf_err(a, n, v->line, e, "expected "
				    "user or user:group; got '%.64s'", s);
		}
		free(*(char **)field);
		*(char **)field = s[0] ? xstrdup(s) : NULL;
		return 0;
	case CONF_T_QSTRING:
		free(*(char **)field);
		*(char **)field = xstrdup(s);
		return 0;
	case CONF_T_FLAG:
		if (conf_parse_flag(s, (bool *)field) < 0)
			return conf_err(a, n, v->line, e, "expected yes or no "
			    "(true/false, on/off); got '%.64s'", s);
		return 0;
	case CONF_T_UINT:
		if (*s < '0' || *s > '9' ||
		    (u = strtoull(s, &end, 10), *end != '\0'))
			return conf_err(a, n, v->line, e, "expected a whole "
			    "number; got '%.64s'", s);
		if ((double)u < e->min || (double)u > e->max ||
		    u > 0xffffffffu)
			return conf_err(a, n, v->line, e, "%s is out of range "
			    "(%.0f..%.0f)", s, e->min, e->max);
		*(unsigned *)field = (unsigned)u;
		return 0;
	case CONF_T_SIZE:
		if (conf_parse_size(s, &u, err, sizeof(err)) < 0)
			return conf_err(a, n, v->line, e, "%s", err);
		if (e->max > 0 && ((double)u < e->min || (double)u > e->max))
			return conf_err(a, n, v->line, e, "%s is out of range",
			    s);
		*(uint64_t *)field = u;
		return 0;
	case CONF_T_TIME:
		if (conf_parse_time(s, e->unit, &u, err, sizeof(err)) < 0)
			return conf_err(a, n, v->line, e, "%s", err);
		if (e->max > 0 && ((double)u < e->min || (double)u > e->max))
			return conf_err(a, n, v->line, e, "%s is out of range "
			    "(%.0fms..%.0fs)", s, e->min, e->max / 1000);
		if (e->unit == 1000 && s[strspn(s, "0123456789.")] == '\0' &&
		    u >= 1000 * 1000 && strstr(e->name, "timeout"))
			warn_ms = true;
		*(uint64_t *)field = u;
		if (warn_ms && n->file != NULL)
			conf_diag_add(a->d, CONF_DIAG_WARNING, n->file, v->line,
			    "'%s': a bare number is in seconds (%s = %llus); "
			    "write %sms for milliseconds", conf_key(e, buf,
			    sizeof(buf)), s, (unsigned long long)(u / 1000), s);
		return 0;
	case CONF_T_OCTAL:
		if (*s == '\0' || s[strspn(s, "01234567")] != '\0' ||
		    strlen(s) > 6 || (u = strtoull(s, NULL, 8)) > e->max)
			return conf_err(a, n, v->line, e, "expected an octal "
			    "mode like 0600 or 0660; got '%.64s'", s);
		*(int *)field = (int)u;
		return 0;
	case CONF_T_FLOAT:
	case CONF_T_PERCENT:
		if (*s == '\0' || isspace((unsigned char)*s) ||
		    strpbrk(s, "xXnNiI") != NULL)
			goto badfloat;
		dv = strtod(s, &end);
		if (e->type == CONF_T_PERCENT && *end == '%' &&
		    end[1] == '\0')
			end++;
		else if (e->type == CONF_T_PERCENT && dv <= 1.0)
			dv *= 100;
		if (*end != '\0' || !isfinite(dv))
			goto badfloat;
		if (dv < e->min || dv > e->max)
			return conf_err(a, n, v->line, e, "%s is out of range "
			    "(%g..%g%s)", s, e->min, e->max,
			    e->type == CONF_T_PERCENT ? "%" : "");
		*(double *)field = dv;
		return 0;
	badfloat:
		return conf_err(a, n, v->line, e, "expected a number like "
		    "%s; got '%.64s'", e->type == CONF_T_PERCENT ?
		    "50, 50% or 0.5" : "0.5", s);
	case CONF_T_ENUM:
	case CONF_T_KEYWORD:
		if ((idx = conf_choice(e->choices, s, buf, sizeof(buf))) < 0) {
			char list[256];
			size_t i;

			snprintf(list, sizeof(list), "%s", e->choices);
			for (i = 0; list[i]; i++)
				if (list[i] == '|')
					list[i] = ',';
			return conf_err(a, n, v->line, e, "expected one of "
			    "%s; got '%.64s'", list, s);
		}
		if (e->type == CONF_T_ENUM)
			*(int *)field = idx;
		else {
			free(*(char **)field);
			*(char **)field = xstrdup(buf);
		}
		return 0;
	case CONF_T_BUCKET: {
		struct conf_bucket *b = field;
		const char *colon = strchr(s, ':'), *slash;
		double burst, rate;
		uint64_t per;

		if (colon == NULL || colon == s)
			goto badbucket;
		burst = strtod(s, &end);
		if (end != colon || !isfinite(burst) || burst < 0 ||
		    *s == '-' || strpbrk(s, "xXnNiI"))
			goto badbucket;
		slash = strchr(colon + 1, '/');
		rate = strtod(colon + 1, &end);
		if (colon[1] == '\0' || colon[1] == '-' ||
		    !isfinite(rate) || rate < 0 ||
		    end != (slash ? slash : colon + 1 + strlen(colon + 1)))
			goto badbucket;
		if (slash != NULL) {	/* N/unit: N per time unit */
			char tmp[64];

			snprintf(tmp, sizeof(tmp), "%s%s", isdigit(
			    (unsigned char)slash[1]) ? "" : "1", slash + 1);
			if (conf_parse_time(tmp, 1000, &per, err,
			    sizeof(err)) < 0 || per == 0)
				goto badbucket;
			rate = rate * 1000.0 / (double)per;
		}
		b->burst = burst;
		b->rate = rate;
		b->set = burst > 0 && rate > 0;
		return 0;
	badbucket:
		return conf_err(a, n, v->line, e, "expected a bucket "
		    "burst:rate like 20:0.016666667 or 20:1/m (rate in "
		    "messages per second unless /unit); got '%.64s'", s);
	}
	case CONF_T_LISTEN:
		if (conf_parse_listen(s, field, err, sizeof(err)) < 0)
			return conf_err(a, n, v->line, e, "%s", err);
		return 0;
	case CONF_T_REGEX:
		if (v->kind != CONF_VAL_REGEX)
			return conf_err(a, n, v->line, e, "expected a regex "
			    "like /pattern/i; got '%.64s'", s);
		return conf_set_regex(a, e, n->file, v, field);
	default:
		return conf_err(a, n, 0, e, "internal: not a scalar type");
	}
}

/* Calls FN for each element of value V: a quoted string is split on
 * ",; \t" when SPLIT; an empty one yields nothing. */
static int
conf_each(const struct conf_val *v, bool split,
    int (*fn)(void *, const char *), void *arg)
{
	char *copy, *p, *tok;
	int rc = 0;

	if (v->kind != CONF_VAL_STRING || !split)
		return v->len == 0 ? 0 : fn(arg, v->text);
	copy = xstrdup(v->text);
	for (p = copy; (tok = strsep(&p, ",; \t")) != NULL; )
		if (*tok != '\0' && fn(arg, tok) < 0)
			rc = -1;
	free(copy);
	return rc;
}

struct conf_list_ctx {
	struct conf_apply *a;
	const struct conf_directive *e;
	const struct conf_node *n;
	const struct conf_val *v;
	void *list;		/* the list being built */
};

static int
conf_list_net(void *arg, const char *s)
{
	struct conf_list_ctx *x = arg;
	struct conf_netlist *l = x->list;
	struct conf_net net;
	char err[512], key[128];
	int rc;

	if ((rc = conf_parse_net(s, &net, err, sizeof(err))) < 0)
		return conf_err(x->a, x->n, x->v->line, x->e, "%s", err);
	if (rc == 1 && x->n->file != NULL)
		conf_diag_add(x->a->d, CONF_DIAG_WARNING, x->n->file,
		    x->v->line, "'%s': '%.64s' has host bits set; using the "
		    "network address", conf_key(x->e, key, sizeof(key)), s);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = net;
	return 0;
}

static int
conf_list_rcpt(void *arg, const char *s)
{
	struct conf_list_ctx *x = arg;
	struct conf_rcptlist *l = x->list;
	struct conf_rcpt r = { NULL, NULL };
	size_t len = strlen(s), i;
	char *t, *at;

	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	t = xstrndup(s, len);
	for (i = 0; t[i]; i++)
		t[i] = (char)tolower((unsigned char)t[i]);
	at = strrchr(t, '@');
	if (len == 0 || (at != NULL && at[1] == '\0') ||
	    strpbrk(t, "<> \t\"") != NULL) {
		free(t);
		return conf_err(x->a, x->n, x->v->line, x->e, "expected a "
		    "recipient like user, @domain or user@domain; got "
		    "'%.64s'", s);
	}
	if (at != NULL) {
		r.domain = xstrdup(at + 1);
		*at = '\0';
	}
	if (t[0] != '\0')
		r.user = t;
	else
		free(t);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = r;
	return 0;
}

static int
conf_list_str(void *arg, const char *s)
{
	struct conf_list_ctx *x = arg;
	struct conf_strlist *l = x->list;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
	return 0;
}

static int
conf_list_server(void *arg, const char *s)
{
	struct conf_list_ctx *x = arg;
	struct conf_serverlist *l = x->list;
	struct conf_server sv;
	char err[512];

	if (conf_parse_server(s, x->e->unit, (x->e->flags & CONF_F_RSPAMD) != 0,
	    &sv, err, sizeof(err)) < 0)
		return conf_err(x->a, x->n, x->v->line, x->e, "%s", err);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = sv;
	return 0;
}

/* Lists: '=' replaces, '+=' appends. */
static int
conf_set_list(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, void *field)
{
	union {
		struct conf_netlist net;
		struct conf_rcptlist rcpt;
		struct conf_strlist str;
		struct conf_serverlist srv;
	} tmp;
	struct conf_list_ctx x = { a, e, n, NULL, &tmp };
	int (*fn)(void *, const char *);
	bool split = e->type != CONF_T_STRLIST;
	unsigned lastgroup = 0;
	size_t i, sz;
	int rc = 0;
	char key[128];

	memset(&tmp, 0, sizeof(tmp));
	switch (e->type) {
	case CONF_T_NETLIST:
		fn = conf_list_net;
		sz = sizeof(struct conf_net);
		break;
	case CONF_T_RCPTLIST:
		fn = conf_list_rcpt;
		sz = sizeof(struct conf_rcpt);
		break;
	case CONF_T_STRLIST:
		fn = conf_list_str;
		sz = sizeof(char *);
		break;
	default:
		fn = conf_list_server;
		sz = sizeof(struct conf_server);
		break;
	}
	for (i = 0; i < n->nvals; i++) {
		const struct conf_val *v = &n->vals[i];

		x.v = v;
		if (v->kind == CONF_VAL_REGEX) {
			rc = conf_err(a, n, v->line, e, "unexpected regex");
			continue;
		}
		if (v->group != 0 && e->type != CONF_T_SERVERS) {
			rc = conf_err(a, n, v->line, e, "a {a, b} group is "
			    "only allowed in server lists");
			continue;
		}
		if (v->group != 0 && v->group == lastgroup) {
			if (n->file != NULL)
				conf_diag_add(a->d, CONF_DIAG_WARNING, n->file,
				    v->line, "'%s': mirror server '%.64s' "
				    "ignored (only the first of a {a, b} "
				    "group is used)", conf_key(e, key,
				    sizeof(key)), v->text);
			continue;
		}
		lastgroup = v->group;
		if (conf_each(v, split, fn, &x) < 0)
			rc = -1;
	}
	if (rc < 0) {
		conf_field_free(e, &tmp);
		return -1;
	}
	if (n->kind == CONF_NODE_APPEND) {
		/* all list structs are { T *v; size_t n; } */
		struct { char *v; size_t n; } *dst = field, *src = (void *)&tmp;

		dst->v = xrealloc(dst->v, (dst->n + src->n) * sz + 1);
		if (src->n)
			memcpy(dst->v + dst->n * sz, src->v, src->n * sz);
		dst->n += src->n;
		free(src->v);
	} else {
		conf_field_free(e, field);
		memcpy(field, &tmp, sizeof(struct conf_netlist));
	}
	return 0;
}

static int
conf_set_regex(struct conf_apply *a, const struct conf_directive *e,
    const char *file, const struct conf_val *v, struct conf_regex *re)
{
	uint32_t opts = 0;
	const char *f;
	pcre2_code *code;
	int errcode;
	PCRE2_SIZE erroff;
	PCRE2_UCHAR msg[256];
	char key[128], name[132];
	size_t tl;

	name[0] = '\0';
	if (e != NULL)
		snprintf(name, sizeof(name), "'%s': ", conf_key(e, key,
		    sizeof(key)));
	for (f = v->flags ? v->flags : ""; *f; f++) {
		switch (*f) {
		case 'i': opts |= PCRE2_CASELESS; break;
		case 'm': opts |= PCRE2_MULTILINE; break;
		case 's': opts |= PCRE2_DOTALL; break;
		case 'x': opts |= PCRE2_EXTENDED; break;
		case 'u': opts |= PCRE2_UTF | PCRE2_UCP; break;
		default:
			conf_diag_add(a->d, CONF_DIAG_ERROR, file, v->line,
			    "%sunknown regex flag '%c' in /%.64s/%s (known: "
			    "i m s x u)", name, *f,
			    v->text, v->flags);
			return -1;
		}
	}
	code = pcre2_compile((PCRE2_SPTR)v->text, v->len, opts, &errcode,
	    &erroff, NULL);
	if (code == NULL) {
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		conf_diag_add(a->d, CONF_DIAG_ERROR, file, v->line,
		    "%sbad regex /%.64s/: %s at offset %zu", name, v->text,
		    (const char *)msg, (size_t)erroff);
		return -1;
	}
	conf_regex_jit(code);
	conf_regex_free(re);
	re->code = code;
	re->options = opts;
	tl = v->len + strlen(v->flags ? v->flags : "") + 3;
	re->text = xmalloc(tl);
	snprintf(re->text, tl, "/%s/%s", v->text, v->flags ? v->flags : "");
	return 0;
}

static void
conf_regex_free(struct conf_regex *re)
{
	pcre2_code_free(re->code);
	free(re->text);
	memset(re, 0, sizeof(*re));
}

static void
conf_field_free(const struct conf_directive *e, void *field)
{
	size_t i;

	switch (e->type) {
	case CONF_T_STRING:
	case CONF_T_QSTRING:
	case CONF_T_KEYWORD:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case CONF_T_LISTEN:
		conf_listen_free(field);
		break;
	case CONF_T_NETLIST: {
		struct conf_netlist *l = field;

		free(l->v);
		memset(l, 0, sizeof(*l));
		break;
	}
	case CONF_T_RCPTLIST: {
		struct conf_rcptlist *l = field;

		for (i = 0; i < l->n; i++) {
			free(l->v[i].user);
			free(l->v[i].domain);
		}
		free(l->v);
		memset(l, 0, sizeof(*l));
		break;
	}
	case CONF_T_STRLIST: {
		struct conf_strlist *l = field;

		for (i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		memset(l, 0, sizeof(*l));
		break;
	}
	case CONF_T_SERVERS: {
		struct conf_serverlist *l = field;

		for (i = 0; i < l->n; i++)
			conf_server_free(&l->v[i]);
		free(l->v);
		memset(l, 0, sizeof(*l));
		break;
	}
	case CONF_T_REGEX:
		conf_regex_free(field);
		break;
	default:
		break;
	}
}

static int
conf_set(struct conf_apply *a, const struct conf_directive *e,
    const struct conf_node *n, void *base)
{
	void *field = (char *)base + e->offset;

	switch (e->type) {
	case CONF_T_NETLIST:
	case CONF_T_RCPTLIST:
	case CONF_T_STRLIST:
	case CONF_T_SERVERS:
		return conf_set_list(a, e, n, field);
	default:
		return conf_set_scalar(a, e, n, field);
	}
}

/* A synthetic statement holding default text DEF (comma separated). */
static void
conf_node_default(struct conf_node *n, struct conf_val *vals, char *buf,
    const char *def)
{
	char *p = buf, *tok;

	memset(n, 0, sizeof(*n));
	n->kind = CONF_NODE_SET;
	n->name = (char *)"default";
	n->vals = vals;
	snprintf(buf, 256, "%s", def);
	if (def[0] == '"') {		/* one quoted string */
		buf[strlen(buf) - 1] = '\0';
		vals[0].kind = CONF_VAL_STRING;
		vals[0].text = buf + 1;
		vals[0].len = strlen(buf + 1);
		n->nvals = 1;
		return;
	}
	while ((tok = strsep(&p, ",")) != NULL && n->nvals < 8) {
		while (*tok == ' ')
			tok++;
		vals[n->nvals].kind = CONF_VAL_WORD;
		vals[n->nvals].text = tok;
		vals[n->nvals].len = strlen(tok);
		n->nvals++;
	}
}

static void
conf_apply_defaults(struct conf_apply *a, const char *sec, void *base)
{
	size_t i;

	for (i = 0; i < sizeof(conf_table) / sizeof(conf_table[0]); i++) {
		const struct conf_directive *e = &conf_table[i];
		struct conf_node n;
		struct conf_val vals[8];
		char buf[256];

		if (e->def == NULL || strcmp(e->section, sec) != 0)
			continue;
		memset(vals, 0, sizeof(vals));
		conf_node_default(&n, vals, buf, e->def);
		if (conf_set(a, e, &n, base) < 0) {
			fprintf(stderr, "rmilter: bad built-in default for "
			    "%s.%s\n", e->section, e->name);
			abort();
		}
	}
}

void
conf_schema_defaults(struct rmilter_config *c)
{
	struct conf_apply a;
	struct conf_diag d;
	const char *tmp;
	const char *const *s;

	conf_diag_init(&d);
	memset(&a, 0, sizeof(a));
	a.c = c;
	a.d = &d;
	if (c->sections == NULL)
		c->sections = xcalloc(1, sizeof(*c->sections));
	c->bind_socket_mode = -1;
	conf_apply_defaults(&a, "", c);
	for (s = conf_section_names; *s != NULL; s++)
		if (conf_section_base(c, *s) != NULL)
			conf_apply_defaults(&a, *s, conf_section_base(c, *s));
	tmp = getenv("TMPDIR");
	c->tempdir = xstrdup(tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	conf_diag_free(&d);
}

static void
conf_apply_dkim_domain(struct conf_apply *a, const struct conf_node *blk)
{
	struct conf_dkim *dk = &a->c->sections->dkim;
	struct conf_dkim_domain *dom;

	dk->domains = xrealloc(dk->domains, (dk->ndomains + 1) *
	    sizeof(*dk->domains));
	dom = &dk->domains[dk->ndomains++];
	memset(dom, 0, sizeof(*dom));
	dom->line = blk->line;
	dom->file = xstrdup(blk->file != NULL ? blk->file : "config");
	conf_apply_defaults(a, "dkim.domain", dom);
	conf_apply_block(a, blk, "dkim.domain", dom);
	if (dom->key == NULL || dom->domain == NULL || dom->selector == NULL)
		conf_err(a, blk, 0, NULL, "dkim domain section needs 'key', "
		    "'domain' and 'selector' (missing '%s')", dom->key == NULL ?
		    "key" : dom->domain == NULL ? "domain" : "selector");
}

/* Where the beanstalk { } section is, for the module's load-time checks. */
static void
conf_beanstalk_where(struct conf_beanstalk *b, const struct conf_node *n)
{
	free(b->file);
	b->file = xstrdup(n->file != NULL ? n->file : "config");
	b->line = n->line;
}

static void
conf_apply_block(struct conf_apply *a, const struct conf_node *blk,
    const char *sec, void *base)
{
	size_t i;
	char key[128];

	for (i = 0; i < blk->nkids; i++) {
		const struct conf_node *n = blk->kids[i];
		const struct conf_directive *e;

		if (n->kind == CONF_NODE_SECTION) {
			const char *const *s;
			const char *best = NULL;
			unsigned bd = 100, d;

			if (strcmp(sec, "dkim") == 0 &&
			    strcmp(n->name, "domain") == 0) {
				conf_apply_dkim_domain(a, n);
				continue;
			}
			if (sec[0] != '\0') {
				conf_err(a, n, 0, NULL, "unexpected section "
				    "'%.64s' inside section '%s'", n->name, sec);
				continue;
			}
			if (strcmp(n->name, "rule") == 0) {
				conf_apply_rule(a, n);
				continue;
			}
			if (conf_section_base(a->c, n->name) != NULL) {
				void *sb = conf_section_base(a->c, n->name);

				*(bool *)sb = true;	/* 'present' is first */
				if (n->nkids == 0 && !section_implemented(
				    strcmp(n->name, "memcached") ? n->name :
				    "redis"))
					conf_notice(a, strcmp(n->name,
					    "memcached") ? n->name : "redis",
					    n->file, n->line);
				conf_apply_block(a, n, strcmp(n->name,
				    "memcached") ? n->name : "redis", sb);
				if (strcmp(n->name, "redis") == 0 ||
				    strcmp(n->name, "memcached") == 0)
					a->c->use_redis = true;
				if (strcmp(n->name, "beanstalk") == 0)
					conf_beanstalk_where(sb, n);
				continue;
			}
			if (conf_lookup("", n->name) != NULL) {
				conf_err(a, n, 0, NULL, "'%.64s' is a "
				    "directive, not a section (write '%s = "
				    "VALUE;')", n->name, n->name);
				continue;
			}
			for (s = conf_section_names; *s != NULL; s++)
				if ((d = conf_edit_distance(n->name, *s)) < bd) {
					bd = d;
					best = *s;
				}
			if (best != NULL && bd <= 3)
				conf_err(a, n, 0, NULL, "unknown section "
				    "'%.64s' (did you mean '%s'?)", n->name,
				    best);
			else
				conf_err(a, n, 0, NULL, "unknown section "
				    "'%.64s'", n->name);
			continue;
		}
		if ((e = conf_lookup(sec, n->name)) == NULL) {
			conf_unknown(a, n, sec);
			continue;
		}
		if (n->kind == CONF_NODE_CMD) {
			conf_err(a, n, 0, e, "missing '=' (write '%s = "
			    "VALUE;')", n->name);
			continue;
		}
		if (conf_set(a, e, n, base) == 0 && (e->flags & NI))
			conf_notice(a, conf_key(e, key, sizeof(key)), n->file,
			    n->line);
	}
}

static int
conf_rule_regex(struct conf_apply *a, const struct conf_node *n,
    const struct conf_val *v, struct conf_regex *re)
{
	if (v->kind != CONF_VAL_REGEX)
		return conf_err(a, n, v->line, NULL, "rule '%s': expected a "
		    "regex like /pattern/i; got '%.64s'", n->name, v->text);
	return conf_set_regex(a, NULL, n->file, v, re);
}

/* name = "..."; enable = yes|no; mode = enforce|shadow inside a rule {}.
 * Returns 0 if N was one of them (errors reported), -1 otherwise. */
static int
conf_rule_setting(struct conf_apply *a, const struct conf_node *n,
    struct conf_rule *r, size_t idx)
{
	const char *v = n->nvals == 1 ? n->vals[0].text : NULL;

	if (strcmp(n->name, "name") == 0) {
		if (v == NULL || *v == '\0')
			conf_err(a, n, 0, NULL, "rule: name takes one word or "
			    "quoted string");
		else {
			free(r->name);
			r->name = xstrdup(v);
		}
		return 0;
	}
	if (strcmp(n->name, "enable") == 0) {
		if (v == NULL || conf_parse_flag(v, &r->enable) < 0)
			conf_err(a, n, 0, NULL, "rule: enable takes yes or no");
		return 0;
	}
	if (strcmp(n->name, "mode") == 0) {
		if (v != NULL && strcasecmp(v, "enforce") == 0)
			r->mode = CONF_MODE_ENFORCE;
		else if (v != NULL && strcasecmp(v, "shadow") == 0)
			r->mode = CONF_MODE_SHADOW;
		else
			conf_err(a, n, 0, NULL, "rule: mode takes enforce or "
			    "shadow");
		return 0;
	}
	(void)idx;
	return -1;
}

static void
conf_apply_rule(struct conf_apply *a, const struct conf_node *blk)
{
	static const char *const conds[] = {
		"connect", "helo", "envfrom", "envrcpt", "header", "body", NULL,
	};
	static const char *const acts[] = {
		"", "accept", "reject", "tempfail", "discard", "quarantine",
		NULL,
	};
	struct conf_sections *s = a->c->sections;
	struct conf_rule *r;
	size_t i, j, k;

	s->rules = xrealloc(s->rules, (s->nrules + 1) * sizeof(*s->rules));
	r = &s->rules[s->nrules++];
	memset(r, 0, sizeof(*r));
	r->line = blk->line;
	r->enable = true;
	for (i = 0; i < blk->nkids; i++) {
		const struct conf_node *n = blk->kids[i];
		const struct conf_val *args = n->vals;
		size_t nargs = n->nvals;
		const char *word = n->name;
		bool negate = false;
		struct conf_rule_cond *c;

		if (n->kind == CONF_NODE_SET &&
		    conf_rule_setting(a, n, r, s->nrules) == 0)
			continue;
		if (n->kind != CONF_NODE_CMD) {
			conf_err(a, n, 0, NULL, "rule: '%.64s' is not a rule "
			    "statement (write e.g. 'reject \"text\";' or "
			    "'helo /re/i;' without '=' or braces)", n->name);
			continue;
		}
		if (strcmp(word, "not") == 0) {
			if (nargs == 0 || args[0].kind != CONF_VAL_WORD) {
				conf_err(a, n, 0, NULL, "rule: 'not' must be "
				    "followed by a condition");
				continue;
			}
			negate = true;
			word = args[0].text;
			args++;
			nargs--;
		}
		for (j = 1; acts[j] != NULL; j++)
			if (strcmp(word, acts[j]) == 0)
				break;
		if (acts[j] != NULL) {
			bool msg = j == CONF_RULE_REJECT ||
			    j == CONF_RULE_TEMPFAIL ||
			    j == CONF_RULE_QUARANTINE;

			if (negate)
				conf_err(a, n, 0, NULL, "rule: 'not' cannot "
				    "apply to the action '%s'", word);
			else if (r->action != CONF_RULE_NONE)
				conf_err(a, n, 0, NULL, "rule: a second action "
				    "'%s' (a rule has one action)", word);
			else if (nargs > (msg ? 1u : 0u) || (nargs == 1 &&
			    args[0].kind == CONF_VAL_REGEX))
				conf_err(a, n, 0, NULL, "rule: '%s' takes %s",
				    word, msg ? "one quoted message" :
				    "no argument");
			else {
				r->action = (enum conf_rule_action)j;
				if (nargs == 1)
					r->message = xstrdup(args[0].text);
			}
			continue;
		}
		for (k = 0; conds[k] != NULL; k++)
			if (strcmp(word, conds[k]) == 0)
				break;
		if (conds[k] == NULL) {
			const char *const *w, *best = NULL;
			unsigned bd = 100, d;

			for (w = conf_rule_words; *w != NULL; w++)
				if ((d = conf_edit_distance(word, *w)) < bd) {
					bd = d;
					best = *w;
				}
			if (best != NULL && bd <= 2)
				conf_err(a, n, 0, NULL, "rule: unknown statement "
				    "'%.64s' (did you mean '%s'?)", word, best);
			else
				conf_err(a, n, 0, NULL, "rule: unknown statement "
				    "'%.64s' (actions: accept, reject, tempfail, "
				    "discard, quarantine; conditions: connect, "
				    "helo, envfrom, envrcpt, header, body)",
				    word);
			continue;
		}
		if (nargs == 0 || nargs > ((k == CONF_COND_CONNECT ||
		    k == CONF_COND_HEADER) ? 2u : 1u)) {
			conf_err(a, n, 0, NULL, "rule: '%s' takes %s", word,
			    k == CONF_COND_CONNECT ? "/host/ [/ip/]" :
			    k == CONF_COND_HEADER ? "/name/ [/value/]" :
			    "one /regex/");
			continue;
		}
		r->conds = xrealloc(r->conds, (r->nconds + 1) *
		    sizeof(*r->conds));
		c = &r->conds[r->nconds];
		memset(c, 0, sizeof(*c));
		c->kind = (enum conf_rule_cond_kind)k;
		c->negate = negate;
		for (j = 0; j < nargs; j++)
			if (conf_rule_regex(a, n, &args[j], &c->re[j]) == 0)
				c->nre++;
		r->nconds++;
	}
	if (r->name == NULL) {
		char nm[32];

		snprintf(nm, sizeof(nm), "rule%zu", s->nrules);
		r->name = xstrdup(nm);
	}
	if (r->action == CONF_RULE_NONE)
		conf_err(a, blk, 0, NULL, "rule without an action (one of "
		    "accept; reject \"text\"; tempfail \"text\"; discard; "
		    "quarantine \"text\")");
}

/* true if PAT can be embedded in a larger alternation without changing
 * its meaning (no references to group numbers, no verbs, no recursion). */
static bool
conf_regex_embeddable(const char *pat)
{
	static const char *const bad[] = {
		"\\g", "\\k", "(?P", "(?R", "(?&", "(?|", "(*", "(?+", "(?-",
		"(?0", "(?1", "(?2", "(?3", "(?4", "(?5", "(?6", "(?7", "(?8",
		"(?9", "(?C", NULL,
	};
	const char *const *b, *p;

	for (b = bad; *b != NULL; b++)
		if (strstr(pat, *b) != NULL)
			return false;
	for (p = strchr(pat, '\\'); p != NULL; p = strchr(p + 2, '\\')) {
		if (p[1] >= '1' && p[1] <= '9')
			return false;	/* \1 back-reference */
		if (p[1] == '\0')
			break;
	}
	return true;
}

/* Builds sections->body_prefilter from the enabled rules' body regexes. */
static void
conf_rules_prefilter(struct rmilter_config *c)
{
	struct conf_sections *s = c->sections;
	char *pat = NULL, *text;
	size_t len = 0, i, k, n = 0;
	int errcode;
	PCRE2_SIZE erroff;

	for (i = 0; i < s->nrules; i++) {
		if (!s->rules[i].enable)
			continue;
		for (k = 0; k < s->rules[i].nconds; k++) {
			const struct conf_rule_cond *cd = &s->rules[i].conds[k];
			const struct conf_regex *re = &cd->re[0];
			const char *slash, *body;
			char flags[8] = "";
			size_t bl, fl = 0;

			if (cd->kind != CONF_COND_BODY)
				continue;
			if (re->code == NULL || (re->options & PCRE2_UTF))
				goto give_up;
			/* re->text is "/pattern/flags" */
			body = re->text + 1;
			slash = strrchr(body, '/');
			if (slash == NULL)
				goto give_up;
			bl = (size_t)(slash - body);
			text = xstrndup(body, bl);
			if (!conf_regex_embeddable(text)) {
				free(text);
				goto give_up;
			}
			if (re->options & PCRE2_CASELESS)
				flags[fl++] = 'i';
			if (re->options & PCRE2_MULTILINE)
				flags[fl++] = 'm';
			if (re->options & PCRE2_DOTALL)
				flags[fl++] = 's';
			if (re->options & PCRE2_EXTENDED)
				flags[fl++] = 'x';
			flags[fl] = '\0';
			/* "(?flags:pattern)" or "(?:pattern)", joined by | */
			pat = xrealloc(pat, len + bl + fl + 8);
			len += (size_t)sprintf(pat + len, "%s(?%s:%s)",
			    n ? "|" : "", flags, text);
			free(text);
			n++;
		}
	}
	if (n < 2)
		goto done;	/* nothing to gain */
	s->body_prefilter = pcre2_compile((PCRE2_SPTR)pat, len, 0, &errcode,
	    &erroff, NULL);
	conf_regex_jit(s->body_prefilter);
	goto done;
give_up:
	s->body_prefilter = NULL;
done:
	free(pat);
}

void
conf_schema_apply(struct rmilter_config *c, const struct conf_ast *ast,
    struct conf_diag *d)
{
	struct conf_apply a;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.c = c;
	a.d = d;
	conf_apply_block(&a, &ast->root, "", c);
	for (i = 0; i < a.nnoticed; i++)
		free(a.noticed[i]);
	free(a.noticed);
	if (d->nerrors == 0)
		conf_rules_prefilter(c);
}

static void
conf_free_section(const char *sec, void *base)
{
	size_t i;

	for (i = 0; i < sizeof(conf_table) / sizeof(conf_table[0]); i++)
		if (strcmp(conf_table[i].section, sec) == 0 &&
		    !(conf_table[i].flags & AL))
			conf_field_free(&conf_table[i],
			    (char *)base + conf_table[i].offset);
}

void
conf_schema_free(struct rmilter_config *c)
{
	struct conf_sections *s = c->sections;
	const char *const *sec;
	size_t i, j, k;

	conf_free_section("", c);
	if (s == NULL)
		return;
	for (sec = conf_section_names; *sec != NULL; sec++)
		if (strcmp(*sec, "memcached") != 0 &&
		    conf_section_base(c, *sec) != NULL)
			conf_free_section(*sec, conf_section_base(c, *sec));
	for (i = 0; i < s->dkim.ndomains; i++) {
		conf_free_section("dkim.domain", &s->dkim.domains[i]);
		free(s->dkim.domains[i].file);
	}
	free(s->dkim.domains);
	dkim_keyset_free(s->dkim.keys);
	free(s->beanstalk.file);
	for (i = 0; i < s->nrules; i++) {
		struct conf_rule *r = &s->rules[i];

		for (j = 0; j < r->nconds; j++)
			for (k = 0; k < 2; k++)
				conf_regex_free(&r->conds[j].re[k]);
		free(r->conds);
		free(r->message);
		free(r->name);
	}
	free(s->rules);
	if (s->body_prefilter != NULL)
		pcre2_code_free(s->body_prefilter);
	free(s);
	c->sections = NULL;
}
