/* module.h -- the policy module interface and the per-message results the
 * pipeline combines into one verdict.
 *
 * A module is a table of hooks (struct module_def).  For every milter stage
 * it declared in needs(), the pipeline calls run() in the configured order.
 * run() may decide (module_decide), queue header edits (module_edit_*),
 * and either finish now (MODULE_DONE) or later (MODULE_PENDING: it must
 * then call module_resume() exactly once with the ids from module_ctx;
 * the session may be gone by then, which module_resume() handles).
 *
 * Decisions of a module in shadow mode (its own mode = shadow, or global
 * noop = yes) are recorded and counted but never change the message. */
#ifndef RMILTER_MODULE_H
#define RMILTER_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct milter_session;
struct rmilter_config;

enum module_action {
	MACT_NONE = 0,		/* no opinion */
	MACT_ACCEPT,		/* accept the message: skip the other checks */
	MACT_REJECT,
	MACT_TEMPFAIL,
	MACT_DISCARD,
	MACT_QUARANTINE,	/* hold queue, delivery decided by an admin */
};

enum module_rc { MODULE_DONE = 0, MODULE_PENDING };

/* module_def.flags */
#define MODULE_F_CONTENT	0x01	/* a content scanner: skipped when the
					 * message is over max_size or every
					 * recipient is whitelisted */
#define MODULE_F_SKIP_AUTH	0x02	/* skipped for authenticated senders
					 * unless strict_auth = yes */
#define MODULE_F_SKIP_REPLY	0x04	/* skipped for replies to mail of
					 * local senders (reply_whitelist) */
#define MODULE_F_AFTER_ACCEPT	0x08	/* still runs when another module
					 * accepted the message (dkim signs
					 * accepted mail) */

/* What a stage hands to the modules (fields by stage). */
struct module_event {
	unsigned rcpt;			/* RCPT: index in s->msg.rcpts */
	const char *hdr_name;		/* HEADER */
	const char *hdr_value;		/* HEADER (leading space stripped) */
	bool hdr_nosp;			/* HEADER: no space after the colon */
	const uint8_t *body;		/* BODY: this chunk */
	size_t body_len;
};

/* One queued header edit (applied at EOM unless refused or shadowed). */
enum module_edit_op { EDIT_ADD, EDIT_INSERT, EDIT_CHANGE, EDIT_DELETE };

struct module_edit {
	enum module_edit_op op;
	uint32_t index;		/* INSERT: position; CHANGE/DELETE: 1-based */
	char *name;
	char *value;		/* NULL for DELETE */
};

/* A module's result for the current message; reset with the message. */
struct module_result {
	enum module_action action;	/* the message-level decision */
	enum policy_stage stage;	/* where it was decided */
	char *text;		/* reply text (template) or NULL: default */
	char code[4];		/* "550"; empty: default for the action */
	char xcode[12];		/* "5.7.1"; empty: default */
	double score;
	bool has_score;
	char reason[160];	/* short, for logs and ${reason} */
	bool shadow;		/* the module runs in shadow mode */
	/* what a shadow decision would have done (module in shadow mode, noop,
	 * or a shadow-mode rule): recorded and counted, never applied */
	enum module_action shadow_action;
	enum policy_stage shadow_stage;
	char shadow_reason[160];
	bool skipped;		/* not run: why says why */
	char why[48];
	unsigned rcpt_refused;	/* recipients this module refused at RCPT */
	struct module_edit *edits;
	size_t nedits;
	char server[80];	/* the upstream server that answered or failed */
	char error[200];	/* why a scan failed (the message may pass) */
	double ms;		/* time spent in the module */
	bool ran;		/* run() was called for this message */
};

/* The handle a hook gets; valid only during the call.  For an async
 * completion keep SID, MSG_SERIAL and INDEX, never the pointers. */
struct module_ctx {
	struct milter_session *s;
	const struct rmilter_config *conf;
	struct module_result *res;
	void **data;		/* the module's per-message state (owned by
				 * the module: freed in msg_free) */
	uint64_t sid;
	uint64_t msg_serial;
	unsigned index;		/* position of the module in the pipeline */
	bool shadow;
};

struct module_def {
	const char *name;	/* as in module_order and the records */
	unsigned flags;		/* MODULE_F_* */
	/* true if CONF enables the module (configured and enable = yes) */
	bool (*configured)(const struct rmilter_config *conf);
	/* true if the module runs in shadow mode per its own section */
	bool (*shadow)(const struct rmilter_config *conf);
	/* adds the stages, replies, actions and macros the module needs */
	void (*needs)(const struct rmilter_config *conf,
	    struct policy_needs *needs);
	/* one stage of the message; see the contract at the top */
	enum module_rc (*run)(struct module_ctx *ctx, enum policy_stage st,
	    const struct module_event *ev);
	/* the message ended, DELIVERED (accepted by the MTA at EOM) or not
	 * (refused, tempfailed, discarded, aborted, connection lost); called
	 * before msg_free with the session still valid; may be NULL */
	void (*msg_end)(struct module_ctx *ctx, bool delivered);
	/* frees *ctx->data (message reset, abort, close); may be NULL */
	void (*msg_free)(void *data);
};

/* Records a decision.  TEXT may be NULL (the default text of the action)
 * or a template, optionally starting with "DDD X.Y.Z " to set the code.
 * At RCPT, REJECT/TEMPFAIL refuse only the current recipient.  The first
 * decision of a module for a message stands; later calls are ignored. */
void module_decide(struct module_ctx *ctx, enum module_action a,
    const char *text, const char *reason_fmt, ...)
    __attribute__((format(printf, 4, 5)));
void module_set_score(struct module_ctx *ctx, double score);
/* Records what a shadow-mode part of a module (e.g. one rule with mode =
 * shadow) would have done; the first such note per message stands.  Never
 * changes the message.  (module_decide() itself records into the shadow
 * fields when the whole module is in shadow mode or noop is on.) */
void module_decide_shadow(struct module_ctx *ctx, enum module_action a,
    const char *reason_fmt, ...) __attribute__((format(printf, 3, 4)));

/* Notes, for the record, what a module found without deciding ("no
 * action, score 1.20"); ignored once the module decided. */
void module_note(struct module_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The upstream server that answered, and the error when a scan failed. */
void module_set_server(struct module_ctx *ctx, const char *server);
void module_set_error(struct module_ctx *ctx, const char *error);

/* Queues header edits (applied at EOM by the pipeline, in order). */
void module_edit_add(struct module_ctx *ctx, const char *name,
    const char *value);
void module_edit_insert(struct module_ctx *ctx, uint32_t index,
    const char *name, const char *value);
void module_edit_change(struct module_ctx *ctx, const char *name,
    uint32_t index, const char *value);
void module_edit_delete(struct module_ctx *ctx, const char *name,
    uint32_t index);

/* Completes a MODULE_PENDING stage.  Looks the session up by SID; does
 * nothing if it is gone or moved on to another message (MSG_SERIAL).  The
 * module's decision must have been recorded before via the context found
 * with module_ctx_lookup(). */
struct module_ctx *module_ctx_lookup(uint64_t sid, uint64_t msg_serial,
    unsigned index, struct module_ctx *buf);
void module_resume(uint64_t sid, uint64_t msg_serial, unsigned index);

const char *module_action_name(enum module_action a);

/* The registry of every module, in default order. */
extern const struct module_def module_rules;
extern const struct module_def module_test;
extern const struct module_def module_clamav;
extern const struct module_def module_rspamd;
extern const struct module_def module_spamassassin;
extern const struct module_def module_replies;
extern const struct module_def module_greylisting;
extern const struct module_def module_limits;
extern const struct module_def module_spf;
extern const struct module_def module_dkim;
extern const struct module_def module_beanstalk;

/* true when greylisting waits for a spam scanner's verdict at EOM
 * (spamd_greylist = yes and a spam scanner configured): the scanners then
 * set pipeline_msg.greylist_wanted instead of deferring mail themselves. */
bool greylist_eom_mode(const struct rmilter_config *conf);

#endif
