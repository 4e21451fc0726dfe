/* pipeline.h -- runs the configured modules for each milter stage and
 * combines their results into one verdict; what the session calls. */
#ifndef RMILTER_PIPELINE_H
#define RMILTER_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "module.h"
#include "policy.h"

struct milter_session;
struct rmilter_config;
struct spool;

#define PIPELINE_MAX_MODULES 16

/* Per-connection: the modules of the session's config, in order. */
struct pipeline_conn {
	const struct module_def *mods[PIPELINE_MAX_MODULES];
	bool shadow[PIPELINE_MAX_MODULES];	/* module mode or noop */
	uint32_t stages[PIPELINE_MAX_MODULES];	/* STAGE_BIT()s each needs */
	unsigned nmods;
	bool needs_spool;
};

/* Per-message state; created at MAIL, freed at ABORT/EOM/close. */
struct pipeline_msg {
	uint64_t serial;
	struct module_result *res;	/* one per module (same allocation) */
	void **data;
	unsigned next;			/* next module to run in this stage */
	int pending;			/* module index awaited, or -1 */
	enum policy_stage pending_stage;
	struct module_event pending_ev;	/* copy (pointers cleared) */
	enum module_action final;	/* first enforce message decision */
	bool final_given;		/* its refusal was handed to the engine */
	int decided_by;			/* module index, or -1 */
	enum policy_stage decided_stage;
	enum module_action rcpt_action;	/* this RCPT's refusal, if any */
	int rcpt_by;
	bool accepted;			/* ACCEPT: other modules skipped */
	bool saw_connect, saw_helo;	/* those stages ran on this state */
	bool recorded;			/* the record was emitted */
	bool delivered;			/* accepted at EOM (continue/accept/
					 * quarantine) */
	bool auth_known, authenticated;
	bool wl_known, whitelisted;
	bool oversize;
	bool reply_whitelisted;		/* a reply to local mail (replies) */
	bool greylist_wanted;		/* a scanner asks for greylisting */
	bool spam;			/* a spam scanner gave an action other
					 * than "no action" (beanstalk) */
	struct spool *spool;		/* when a module reads the message */
	bool spool_failed;
	uint64_t body_off;		/* spool offset of the body, once the
					 * end of headers was spooled */
	bool body_off_known;
	char *reply_sent;		/* the reply of the message verdict */
	struct module_edit *applied;	/* edits applied at EOM (for the record) */
	size_t napplied;
};

/* The ordered modules for CONF (config generation); fills PC. */
void pipeline_conn_init(struct pipeline_conn *pc,
    const struct rmilter_config *conf);

/* Validates module_order etc. for CONF; appends errors to DIAG (used at
 * load time, so a bad order is refused like any config error). */
struct conf_diag;
void pipeline_check_config(const struct rmilter_config *conf,
    struct conf_diag *diag);

/* conf_load() plus the checks above: what the daemon, -t and -s use. */
struct rmilter_config *pipeline_conf_load(const char *path,
    struct conf_diag *diag);

/* Runs STAGE for session S (EV: the stage's data).  Returns the verdict
 * (also in V) or POLICY_PENDING when a module answers later; the pipeline
 * then calls milter_session_resume() itself. */
enum policy_action pipeline_run(struct milter_session *s,
    enum policy_stage stage, const struct module_event *ev,
    struct policy_verdict *v);

/* The message ended: FINAL is the action sent (or "aborted"), V the
 * verdict sent (may be NULL).  Emits the record once per message and frees
 * the per-message state. */
void pipeline_msg_end(struct milter_session *s, const char *final,
    const struct policy_verdict *v, enum policy_stage stage);

/* The message is reset (ABORT, new MAIL, close): a record is emitted if a
 * module decided or refused something, then the state is freed. */
void pipeline_msg_abort(struct milter_session *s);

/* Spool of the current message, or NULL (not needed / failed). */
struct spool *pipeline_spool(struct milter_session *s);
/* The value of the message's first header NAME (any case), or NULL. */
const char *pipeline_header_value(const struct milter_session *s,
    const char *name);
/* Where the body starts in that spool (after the blank line): false until
 * the end of headers was spooled. */
bool pipeline_spool_body(struct milter_session *s, uint64_t *off);

/* The client address for policy decisions: the CONNECT address, or for a
 * unix-socket / unknown-family connection the MTA's {client_addr} macro.
 * Returns the family (AF_INET/AF_INET6) and fills ADDR, or 0 if unknown. */
int pipeline_client_ip(const struct milter_session *s, uint8_t addr[16],
    const char **text);

/* Message-level facts (computed once per message). */
bool pipeline_authenticated(struct milter_session *s);
bool pipeline_whitelisted(struct milter_session *s);

#endif
