/* policy.h -- what the engine asks of the policy layer: which stages, macros
 * and actions to negotiate, and a verdict per stage (possibly asynchronous).
 *
 * The module pipeline (pipeline.c) implements it. */
#ifndef RMILTER_POLICY_H
#define RMILTER_POLICY_H

#include <stdint.h>

#include "milter_proto.h"

struct milter_session;
struct rmilter_config;

enum policy_stage {
	STAGE_CONNECT = 0,
	STAGE_HELO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_DATA,
	STAGE_HEADER,
	STAGE_EOH,
	STAGE_BODY,
	STAGE_EOM,
	STAGE_UNKNOWN,
	STAGE_COUNT,
};

#define STAGE_BIT(s)	(1u << (s))

enum policy_action {
	POLICY_CONTINUE = 0,
	POLICY_ACCEPT,
	POLICY_REJECT,
	POLICY_TEMPFAIL,
	POLICY_DISCARD,
	POLICY_SKIP,		/* body: skip the remaining chunks */
	POLICY_PENDING,		/* answer later with milter_session_resume() */
};

/* A verdict; REPLY ("550 5.7.1 text", lines separated by '\n') is optional
 * for reject/tempfail and owned by the verdict (free with policy_verdict_clear). */
struct policy_verdict {
	enum policy_action action;
	char *reply;
	char reason[64];	/* short, for the summary log line */
};

struct policy_needs {
	uint32_t stages;	/* STAGE_BIT()s the policy must see */
	uint32_t replies;	/* stages where it may answer other than continue */
	uint32_t actions;	/* SMFIF_* it may use at EOM */
	bool spool;		/* keep the whole message (spool) for the module */
	uint64_t body_limit;	/* body wanted only up to this many bytes (0:
				 * all): chunks are then answered, and SKIP
				 * is sent once the limit is reached */
	const char *macros[SMFIM_COUNT];	/* macro lists to request */
};

/* Fills NEEDS for the policy configured in CONF. */
void policy_needs_get(const struct rmilter_config *conf,
    struct policy_needs *needs);

void policy_verdict_clear(struct policy_verdict *v);
const char *policy_action_name(enum policy_action a);
const char *policy_stage_name(enum policy_stage st);

#endif
