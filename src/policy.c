/* policy.c -- the policy seam: what to negotiate, and the verdict per stage.
 * The engine itself always records the envelope (for the summary line), so
 * CONNECT/HELO/MAIL/RCPT are received, without replies unless a policy
 * may refuse there. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "milter_session.h"
#include "policy.h"
#include "test_policy.h"

static const char *const base_macros[SMFIM_COUNT] = {
	[SMFIM_CONNECT] = "j {daemon_name} {daemon_addr} {client_addr} "
	    "{client_name} {client_port} _",
	[SMFIM_HELO] = "{tls_version} {cipher} {cipher_bits}",
	[SMFIM_ENVFROM] = "i {auth_type} {auth_authen} {auth_author} "
	    "{mail_addr}",
	[SMFIM_ENVRCPT] = "i {rcpt_addr} {rcpt_mailer} {rcpt_host}",
	[SMFIM_DATA] = "i",
	[SMFIM_EOM] = "i {msg_id}",
	[SMFIM_EOH] = "i",
};

void
policy_needs_get(const struct rmilter_config *conf, struct policy_needs *needs)
{
	memset(needs, 0, sizeof(*needs));
	memcpy(needs->macros, base_macros, sizeof(base_macros));
	needs->stages = STAGE_BIT(STAGE_CONNECT) | STAGE_BIT(STAGE_HELO) |
	    STAGE_BIT(STAGE_MAIL) | STAGE_BIT(STAGE_RCPT);
	needs->replies = STAGE_BIT(STAGE_EOM);
	if (conf->test_policy)
		test_policy_needs(conf, needs);
}

enum policy_action
policy_run(struct milter_session *s, enum policy_stage stage,
    struct policy_verdict *v)
{
	v->action = POLICY_CONTINUE;
	v->reply = NULL;
	v->reason[0] = '\0';
	if (s->conf->test_policy)
		return test_policy_run(s, stage, v);
	return v->action;
}

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
