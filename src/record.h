/* record.h -- the decision record of one message: what the summary log line,
 * the JSON audit log and the counters are made from.  Built by the pipeline
 * when a message's fate is sent to the MTA (or when it is aborted after a
 * refusal); every pointer is valid only during the record_emit() call. */
#ifndef RMILTER_RECORD_H
#define RMILTER_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "module.h"

struct rmilter_config;
struct event_base;

struct record_module {
	const char *name;
	const struct module_result *res;	/* action, stage, reason, ms... */
};

struct decision_record {
	const char *sid;		/* session id (hex) */
	unsigned generation;		/* config generation */
	double ts;			/* end time, seconds since the epoch */
	double ms;			/* MAIL -> decision */
	const char *queue_id;		/* "NOQUEUE" if unknown */
	const char *client_addr;	/* "" if unknown */
	const char *client_host;
	const char *helo;
	const char *from;		/* as sent, with <> */
	const char *const *rcpts;	/* accepted recipients, as sent */
	size_t nrcpts;
	unsigned rcpts_refused;		/* refused at RCPT by a module */
	const char *auth_user;		/* {auth_authen}, or NULL */
	bool authenticated;		/* SASL or our_networks */
	bool whitelisted;		/* every recipient in whitelist */
	uint64_t size;			/* header + body bytes seen */
	const char *message_id;		/* NULL if not seen */
	const char *subject;
	const char *action;		/* continue, accept, reject, tempfail,
					 * discard, quarantine, aborted */
	const char *stage;		/* where it was decided */
	const char *reply;		/* SMTP reply sent ("550 5.7.1 ..."), or NULL */
	const char *decided_by;		/* module name, or NULL */
	bool noop;			/* global noop was on */
	const struct record_module *modules;
	size_t nmodules;
	const struct module_edit *edits;	/* header edits applied */
	size_t nedits;
};

/* Writes the summary log line, the audit record (if audit_log is set) and
 * updates the counters.  Never fails and never blocks mail. */
void record_emit(const struct rmilter_config *conf,
    const struct decision_record *r);

/* Tests: called by record_emit with every record when set. */
extern void (*record_emit_hook)(const struct decision_record *r);

/* ---- audit log (audit_log.c) ------------------------------------------------- */
/* Appends one JSON object (one line) for R to the audit log of CONF, opening
 * it on first use; a write error is logged (rate-limited) and ignored. */
void audit_log_write(const struct rmilter_config *conf,
    const struct decision_record *r);
/* Formats R as one JSON line (no newline) into a malloc'ed string. */
char *audit_log_format(const struct decision_record *r);
void audit_log_reopen(void);	/* SIGUSR1 */
void audit_log_close(void);

/* ---- counters (stats.c) ---------------------------------------------------------- */
void stats_count(const struct decision_record *r);
/* Human-readable counters (what rmilter -s prints); malloc'ed. */
char *stats_format(void);
/* Listens on the control socket of CONF (if set); the daemon calls it once
 * its event base exists (after dropping privileges: the socket's directory
 * must be writable by `user`).  Returns -1 with ERR on failure. */
int stats_control_open(const struct rmilter_config *conf,
    struct event_base *base, char *err, size_t errlen);
void stats_control_close(void);
/* rmilter -s: connect to the control socket named in CONF and print the
 * counters; returns the exit code. */
int stats_client_run(const struct rmilter_config *conf);

#endif
