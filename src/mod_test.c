/* mod_test.c -- the built-in test policy (test_policy = yes) as a pipeline
 * module: envelope addresses and X-Rmilter-Test headers choose the verdict
 * and the EOM edits.  Spec: test/e2e/TEST_POLICY.md.  Never active by
 * default; it exists so the engine and the pipeline can be tested end to
 * end. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "milter_session.h"
#include "module.h"
#include "pipeline.h"
#include "spool.h"
#include "xmalloc.h"

/* Per-message state: a pending "delay" timer. */
struct test_delay {
	struct event ev;
	uint64_t sid, serial;
	unsigned index;
};

static bool
test_configured(const struct rmilter_config *conf)
{
	return conf->test_policy;
}

static void
test_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->body_limit = conf->max_size;
	/* a spool (for "spoolinfo") only when the tests ask for one by
	 * setting spool_memory_limit away from its default of 1M: the
	 * benchmark runs the test policy and must not pay for a spool */
	needs->spool = conf->spool_memory_limit != 1024 * 1024;
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
	struct module_ctx buf, *ctx;
	uint64_t sid = d->sid, serial = d->serial;
	unsigned index = d->index;

	/* the message still exists (msg_free cancels this timer) */
	if ((ctx = module_ctx_lookup(sid, serial, index, &buf)) != NULL &&
	    *ctx->data == d)
		*ctx->data = NULL;
	free(d);
	module_resume(sid, serial, index);
}

static void
test_msg_free(void *data)
{
	struct test_delay *d = data;

	if (d == NULL)
		return;
	event_del(&d->ev);
	free(d);
}

/* "spoolinfo": what the spool holds, as a header (for the tests). */
static void
spool_info(struct module_ctx *ctx)
{
	struct spool *sp = pipeline_spool(ctx->s);
	char v[128];

	if (sp == NULL) {
		module_edit_add(ctx, "X-Rmilter-Spool", "none");
		return;
	}
	snprintf(v, sizeof(v), "size=%llu file=%s",
	    (unsigned long long)spool_size(sp),
	    spool_fd(sp) >= 0 ? "yes" : "no");
	module_edit_add(ctx, "X-Rmilter-Spool", v);
}

/* Executes one command; returns a delay in ms (0 if none). */
static long
run_command(struct module_ctx *ctx, char *cmd)
{
	struct milter_session *s = ctx->s;
	char *p = cmd, *verb, *a, *b;
	long delay = 0;

	if ((verb = next_word(&p)) == NULL)
		return 0;
	if (strcasecmp(verb, "reject") == 0) {
		a = rest(p);
		module_decide(ctx, MACT_REJECT,
		    *a ? a : "550 5.7.1 Rejected by test policy",
		    "test_policy");
	} else if (strcasecmp(verb, "tempfail") == 0) {
		a = rest(p);
		module_decide(ctx, MACT_TEMPFAIL,
		    *a ? a : "451 4.7.1 Deferred by test policy",
		    "test_policy");
	} else if (strcasecmp(verb, "reject-multi") == 0) {
		module_decide(ctx, MACT_REJECT,
		    "550 5.7.1 first line\nsecond line", "test_policy");
	} else if (strcasecmp(verb, "discard") == 0) {
		module_decide(ctx, MACT_DISCARD, NULL, "test_policy");
	} else if (strcasecmp(verb, "accept") == 0) {
		module_decide(ctx, MACT_ACCEPT, NULL, "test_policy");
	} else if (strcasecmp(verb, "quarantine") == 0) {
		a = rest(p);
		module_decide(ctx, MACT_QUARANTINE, *a ? a : "test policy",
		    "test_policy");
	} else if (strcasecmp(verb, "addheader") == 0) {
		if ((a = next_word(&p)) != NULL)
			module_edit_add(ctx, a, rest(p));
	} else if (strcasecmp(verb, "insheader") == 0) {
		b = next_word(&p);
		if (b != NULL && (a = next_word(&p)) != NULL)
			module_edit_insert(ctx, (uint32_t)atol(b), a,
			    rest(p));
	} else if (strcasecmp(verb, "chgheader") == 0) {
		a = next_word(&p);
		b = next_word(&p);
		if (a != NULL && b != NULL)
			module_edit_change(ctx, a, (uint32_t)atol(b),
			    rest(p));
	} else if (strcasecmp(verb, "delheader") == 0) {
		a = next_word(&p);
		b = next_word(&p);
		if (a != NULL)
			module_edit_delete(ctx, a,
			    b ? (uint32_t)atol(b) : 1);
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
	} else if (strcasecmp(verb, "spoolinfo") == 0) {
		spool_info(ctx);
	} else {
		log_info("%s test_policy: unknown command '%.40s'", s->sid,
		    verb);
	}
	return delay;
}

static enum module_rc
test_eom(struct module_ctx *ctx)
{
	struct milter_session *s = ctx->s;
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
			if ((d = run_command(ctx, cmd)) > 0)
				delay = d;
		}
		free(val);
	}
	if (delay > 0 && delay < 3600 * 1000) {
		struct test_delay *t = xcalloc(1, sizeof(*t));
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };

		t->sid = ctx->sid;
		t->serial = ctx->msg_serial;
		t->index = ctx->index;
		evtimer_assign(&t->ev, daemon_base(), delay_fire, t);
		evtimer_add(&t->ev, &tv);
		test_msg_free(*ctx->data);	/* an older one, if any */
		*ctx->data = t;
		return MODULE_PENDING;
	}
	return MODULE_DONE;
}

static enum module_rc
test_run(struct module_ctx *ctx, enum policy_stage stage,
    const struct module_event *ev)
{
	struct milter_session *s = ctx->s;

	switch (stage) {
	case STAGE_MAIL:
		if (s->msg.from != NULL &&
		    local_part_is(s->msg.from, "test-reject-mail"))
			module_decide(ctx, MACT_REJECT,
			    "550 5.7.1 Sender rejected by test policy",
			    "test_policy");
		break;
	case STAGE_RCPT: {
		const char *r = ev->rcpt < s->msg.nrcpts ?
		    s->msg.rcpts[ev->rcpt].addr : "";

		if (local_part_is(r, "test-reject-rcpt"))
			module_decide(ctx, MACT_REJECT,
			    "550 5.1.1 Recipient rejected by test policy",
			    "test_policy");
		else if (local_part_is(r, "test-tempfail-rcpt"))
			module_decide(ctx, MACT_TEMPFAIL,
			    "451 4.7.1 Recipient deferred by test policy",
			    "test_policy");
		break;
	}
	case STAGE_EOM:
		return test_eom(ctx);
	default:
		break;
	}
	return MODULE_DONE;
}

const struct module_def module_test = {
	.name = "test_policy",
	.flags = 0,
	.configured = test_configured,
	.shadow = NULL,
	.needs = test_needs,
	.run = test_run,
	.msg_free = test_msg_free,
};
