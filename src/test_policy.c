/* test_policy.c -- a tiny built-in policy for the test suite (test_policy =
 * yes): envelope addresses and X-Rmilter-Test headers choose the verdict and
 * the EOM edits.  Spec: test/e2e/TEST_POLICY.md.  Never active by default. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "milter_session.h"
#include "test_policy.h"
#include "xmalloc.h"

/* A delayed EOM verdict (the "delay MS" command). */
struct test_delay {
	struct event ev;
	uint64_t sid;
	struct policy_verdict v;
};

void
test_policy_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->body_limit = conf->max_size;
	needs->stages |= STAGE_BIT(STAGE_MAIL) | STAGE_BIT(STAGE_RCPT) |
	    STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_BODY);
	needs->replies |= STAGE_BIT(STAGE_MAIL) | STAGE_BIT(STAGE_RCPT) |
	    STAGE_BIT(STAGE_EOM);
	needs->actions |= SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
	    SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_CHGFROM |
	    SMFIF_ADDRCPT_PAR;
}

/* true if the local part of ADDR ("<a@b>" or "a@b") equals LOCAL. */
static bool
local_part_is(const char *addr, const char *local)
{
	size_t n = strlen(local);

	if (*addr == '<')
		addr++;
	return strncasecmp(addr, local, n) == 0 &&
	    (addr[n] == '@' || addr[n] == '>' || addr[n] == '\0');
}

static void
set_verdict(struct policy_verdict *v, enum policy_action a, const char *reply)
{
	if (v->action != POLICY_CONTINUE)
		return;		/* the first final action wins */
	v->action = a;
	free(v->reply);
	v->reply = reply ? xstrdup(reply) : NULL;
	snprintf(v->reason, sizeof(v->reason), "test_policy");
}

/* Splits off the next whitespace-separated word of *P. */
static char *
next_word(char **p)
{
	char *w;

	while (isspace((unsigned char)**p))
		(*p)++;
	if (**p == '\0')
		return NULL;
	w = *p;
	while (**p != '\0' && !isspace((unsigned char)**p))
		(*p)++;
	if (**p != '\0')
		*(*p)++ = '\0';
	return w;
}

static char *
rest(char *p)
{
	size_t n;

	while (isspace((unsigned char)*p))
		p++;
	n = strlen(p);
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		p[--n] = '\0';
	return p;
}

static void
delay_fire(evutil_socket_t fd, short what, void *arg)
{
	struct test_delay *d = arg;
	struct milter_session *s = milter_session_lookup(d->sid);

	if (s == NULL || s->policy_data != d) {
		/* the session went away; it freed D already if it owned it */
		return;
	}
	s->policy_data = NULL;
	milter_session_resume(s, &d->v);
	policy_verdict_clear(&d->v);
	free(d);
}

/* Executes one command; returns a delay in ms (0 if none). */
static long
run_command(struct milter_session *s, char *cmd, struct policy_verdict *v)
{
	char *p = cmd, *verb, *a, *b;
	long delay = 0;

	if ((verb = next_word(&p)) == NULL)
		return 0;
	if (strcasecmp(verb, "reject") == 0) {
		a = rest(p);
		set_verdict(v, POLICY_REJECT,
		    *a ? a : "550 5.7.1 Rejected by test policy");
	} else if (strcasecmp(verb, "tempfail") == 0) {
		a = rest(p);
		set_verdict(v, POLICY_TEMPFAIL,
		    *a ? a : "451 4.7.1 Deferred by test policy");
	} else if (strcasecmp(verb, "reject-multi") == 0) {
		set_verdict(v, POLICY_REJECT,
		    "550 5.7.1 first line\nsecond line");
	} else if (strcasecmp(verb, "discard") == 0) {
		set_verdict(v, POLICY_DISCARD, NULL);
	} else if (strcasecmp(verb, "accept") == 0) {
		set_verdict(v, POLICY_ACCEPT, NULL);
	} else if (strcasecmp(verb, "quarantine") == 0) {
		a = rest(p);
		milter_session_quarantine(s, *a ? a : "test policy");
	} else if (strcasecmp(verb, "addheader") == 0) {
		if ((a = next_word(&p)) != NULL)
			milter_session_add_header(s, a, rest(p));
	} else if (strcasecmp(verb, "insheader") == 0) {
		b = next_word(&p);
		if (b != NULL && (a = next_word(&p)) != NULL)
			milter_session_ins_header(s, (uint32_t)atol(b), a,
			    rest(p));
	} else if (strcasecmp(verb, "chgheader") == 0) {
		a = next_word(&p);
		b = next_word(&p);
		if (a != NULL && b != NULL)
			milter_session_chg_header(s, a, (uint32_t)atol(b),
			    rest(p));
	} else if (strcasecmp(verb, "delheader") == 0) {
		a = next_word(&p);
		b = next_word(&p);
		if (a != NULL)
			milter_session_chg_header(s, a,
			    b ? (uint32_t)atol(b) : 1, "");
	} else if (strcasecmp(verb, "chgfrom") == 0) {
		if ((a = next_word(&p)) != NULL) {
			b = rest(p);
			milter_session_chg_from(s, a, *b ? b : NULL);
		}
	} else if (strcasecmp(verb, "addrcpt") == 0) {
		if ((a = next_word(&p)) != NULL) {
			b = rest(p);
			milter_session_add_rcpt(s, a, *b ? b : NULL);
		}
	} else if (strcasecmp(verb, "delrcpt") == 0) {
		if ((a = next_word(&p)) != NULL)
			milter_session_del_rcpt(s, a);
	} else if (strcasecmp(verb, "replbody") == 0) {
		struct mbuf body = { 0 };

		for (a = rest(p); *a != '\0'; a++) {
			if (a[0] == '\\' && a[1] == 'n') {
				mbuf_append(&body, "\r\n", 2);
				a++;
			} else {
				mbuf_append_u8(&body, (uint8_t)*a);
			}
		}
		mbuf_append(&body, "\r\n", 2);
		milter_session_replace_body(s, mbuf_data(&body),
		    mbuf_avail(&body));
		mbuf_free(&body);
	} else if (strcasecmp(verb, "delay") == 0) {
		if ((a = next_word(&p)) != NULL)
			delay = atol(a);
	} else if (strcasecmp(verb, "progress") == 0) {
		milter_session_progress(s);
	} else {
		log_info("%s test_policy: unknown command '%.40s'", s->sid,
		    verb);
	}
	return delay;
}

static enum policy_action
test_policy_eom(struct milter_session *s, struct policy_verdict *v)
{
	long delay = 0, d;
	unsigned i;

	for (i = 0; i < s->msg.nhdrs; i++) {
		char *val, *cmd, *save = NULL, *q;

		if (strcasecmp(s->msg.hdrs[i].name, "X-Rmilter-Test") != 0)
			continue;
		val = xstrdup(s->msg.hdrs[i].value);
		for (q = val; *q; q++)	/* unfold */
			if (*q == '\n' || *q == '\r' || *q == '\t')
				*q = ' ';
		for (cmd = strtok_r(val, ";", &save); cmd != NULL;
		    cmd = strtok_r(NULL, ";", &save)) {
			if ((d = run_command(s, cmd, v)) > 0)
				delay = d;
		}
		free(val);
	}
	snprintf(s->msg.action_note, sizeof(s->msg.action_note),
	    "test_policy=%s", policy_action_name(v->action));
	if (delay > 0 && delay < 3600 * 1000) {
		struct test_delay *t = xcalloc(1, sizeof(*t));
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };

		t->sid = s->id;
		t->v = *v;
		v->reply = NULL;
		evtimer_assign(&t->ev, daemon_base(), delay_fire, t);
		evtimer_add(&t->ev, &tv);
		test_policy_session_free(s);	/* drop an older one */
		s->policy_data = t;
		v->action = POLICY_PENDING;
	}
	return v->action;
}

enum policy_action
test_policy_run(struct milter_session *s, enum policy_stage stage,
    struct policy_verdict *v)
{
	switch (stage) {
	case STAGE_MAIL:
		if (s->msg.from != NULL &&
		    local_part_is(s->msg.from, "test-reject-mail"))
			set_verdict(v, POLICY_REJECT,
			    "550 5.7.1 Sender rejected by test policy");
		break;
	case STAGE_RCPT: {
		const char *r = s->msg.nrcpts ?
		    s->msg.rcpts[s->msg.nrcpts - 1].addr : "";

		if (local_part_is(r, "test-reject-rcpt"))
			set_verdict(v, POLICY_REJECT,
			    "550 5.1.1 Recipient rejected by test policy");
		else if (local_part_is(r, "test-tempfail-rcpt"))
			set_verdict(v, POLICY_TEMPFAIL,
			    "451 4.7.1 Recipient deferred by test policy");
		break;
	}
	case STAGE_EOM:
		return test_policy_eom(s, v);
	default:
		break;
	}
	return v->action;
}

void
test_policy_msg_reset(struct milter_session *s)
{
	/* a pending delay belongs to the message being reset */
	if (!s->pending)
		test_policy_session_free(s);
}

void
test_policy_session_free(struct milter_session *s)
{
	struct test_delay *t = s->policy_data;

	if (t == NULL)
		return;
	event_del(&t->ev);
	policy_verdict_clear(&t->v);
	free(t);
	s->policy_data = NULL;
}
