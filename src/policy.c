/* policy.c -- verdict helpers and names shared by the engine and the
 * pipeline (policy_needs_get lives in pipeline.c). */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "policy.h"

void
policy_verdict_clear(struct policy_verdict *v)
{
	free(v->reply);
	v->reply = NULL;
	v->action = POLICY_CONTINUE;
	v->reason[0] = '\0';
}

const char *
policy_action_name(enum policy_action a)
{
	switch (a) {
	case POLICY_CONTINUE: return "continue";
	case POLICY_ACCEPT: return "accept";
	case POLICY_REJECT: return "reject";
	case POLICY_TEMPFAIL: return "tempfail";
	case POLICY_DISCARD: return "discard";
	case POLICY_SKIP: return "skip";
	case POLICY_PENDING: return "pending";
	}
	return "?";
}

const char *
policy_stage_name(enum policy_stage st)
{
	static const char *const names[STAGE_COUNT] = {
		"connect", "helo", "mail", "rcpt", "data", "header", "eoh",
		"body", "eom", "unknown"
	};

	return st < STAGE_COUNT ? names[st] : "?";
}
