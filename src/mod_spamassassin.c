/* mod_spamassassin.c -- the spamassassin module: SpamAssassin's spamd over
 * SPAMC/1.5 (SYMBOLS or REPORT), one connection per scan (spamd closes
 * after its reply).  Scores map amavis-style: spam_kill_level rejects (or,
 * when 0, spamd's own spam flag), spam below it gets the spam header, and
 * X-Spam-Status / X-Spam-Score / X-Spam-Level go on every scanned message
 * at or above spam_tag_level.
 *
 * Servers: a spamassassin { } section, or (rmilter 1.6) the entries of
 * spamd { servers } without the "r:" prefix, which then use the spamd
 * section's timeouts, retries, whitelist and reply settings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "spamd_proto.h"
#include "spool.h"
#include "xmalloc.h"

#define SPAMD_BODY_MAX	(1u * 1024 * 1024)

/* The settings in effect: the spamassassin section, or the legacy view. */
struct sa_view {
	const struct conf_spamassassin *sa;	/* thresholds, user, request */
	bool legacy;				/* servers from spamd { } */
	bool enable, shadow, tempfail, never_reject;
	const struct conf_netlist *whitelist;
	const char *reject_message, *spam_header, *spam_header_value;
	struct upstream_params p;
};

struct sa_job {
	struct scan_job job;
	struct spamd_reply reply;
};

static size_t
legacy_servers(const struct conf_spamd *sd)
{
	size_t i, n = 0;

	for (i = 0; i < sd->servers.n; i++)
		if (!sd->servers.v[i].is_rspamd)
			n++;
	return n;
}

static void
sa_view(const struct rmilter_config *conf, struct sa_view *v)
{
	const struct conf_spamassassin *sa = &conf->sections->spamassassin;
	const struct conf_spamd *sd = &conf->sections->spamd;

	memset(v, 0, sizeof(*v));
	v->sa = sa;
	v->legacy = !(sa->present && sa->servers.n > 0) &&
	    legacy_servers(sd) > 0;
	if (!v->legacy) {
		v->enable = sa->enable && sa->servers.n > 0;
		v->shadow = sa->mode == CONF_MODE_SHADOW;
		v->tempfail = sa->tempfail_on_error;
		v->never_reject = sa->spamd_never_reject;
		v->whitelist = &sa->whitelist;
		v->reject_message = sa->reject_message;
		v->spam_header = sa->spam_header;
		v->spam_header_value = sa->spam_header_value;
		v->p = (struct upstream_params){
			.connect_timeout = sa->connect_timeout,
			.io_timeout = sa->results_timeout,
			.error_time = sa->error_time,
			.dead_time = sa->dead_time,
			.maxerrors = sa->maxerrors,
			.attempts = sa->retry_count,
			.retry_delay = sa->retry_timeout,
			.max_inflight = sa->max_inflight,
			.strategy = (enum upstream_strategy)sa->strategy,
		};
	} else {
		v->enable = sd->enable;
		v->shadow = sd->mode == CONF_MODE_SHADOW;
		v->tempfail = sd->tempfail_on_error;
		v->never_reject = sd->spamd_never_reject;
		v->whitelist = &sd->whitelist;
		v->reject_message = sd->reject_message;
		v->spam_header = sd->spam_header;
		v->spam_header_value = sd->spam_header_value;
		v->p = (struct upstream_params){
			.connect_timeout = sd->connect_timeout,
			.io_timeout = sd->results_timeout,
			.error_time = sd->error_time,
			.dead_time = sd->dead_time,
			.maxerrors = sd->maxerrors,
			.attempts = sd->retry_count,
			.retry_delay = sd->retry_timeout,
			.max_inflight = sa->max_inflight,
			.strategy = (enum upstream_strategy)sd->strategy,
		};
	}
	v->p.max_queue = 4096;
	v->p.idle_timeout = 0;		/* spamd closes after each reply */
}

static bool
sa_configured(const struct rmilter_config *conf)
{
	struct sa_view v;

	sa_view(conf, &v);
	return v.enable;
}

static bool
sa_shadow(const struct rmilter_config *conf)
{
	struct sa_view v;

	sa_view(conf, &v);
	return v.shadow;
}

static void
sa_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->stages |= STAGE_BIT(STAGE_EOM);
	needs->replies |= STAGE_BIT(STAGE_EOM);
	needs->spool = true;
	needs->actions |= SMFIF_ADDHDRS | SMFIF_CHGHDRS;
}

/* ---- the codec seam ---------------------------------------------------------- */

static void
sa_begin(void *ud)
{
	struct sa_job *j = ud;

	spamd_reply_free(&j->reply);
	spamd_reply_init(&j->reply, SPAMD_BODY_MAX);
}

static enum upstream_parse
sa_map(enum spamd_rc rc)
{
	return rc == SPAMD_MORE ? UPSTREAM_MORE : rc == SPAMD_DONE ?
	    UPSTREAM_DONE : UPSTREAM_ERROR;
}

static enum upstream_parse
sa_feed(void *ud, const uint8_t *p, size_t n, size_t *used)
{
	return sa_map(spamd_reply_feed(&((struct sa_job *)ud)->reply, p, n,
	    used));
}

static enum upstream_parse
sa_eof(void *ud)
{
	return sa_map(spamd_reply_eof(&((struct sa_job *)ud)->reply));
}

static const char *
sa_error(void *ud)
{
	struct sa_job *j = ud;

	return j->reply.error[0] ? j->reply.error : "unreadable reply";
}

static const struct upstream_codec sa_codec = {
	.begin = sa_begin,
	.feed = sa_feed,
	.eof = sa_eof,
	.keepalive = NULL,
	.error = sa_error,
};

/* ---- the verdict -------------------------------------------------------------- */

/* "Yes, score=7.1 required=5.0 tests=A,B,C" folded after commas. */
static char *
sa_status(const struct spamd_reply *r, bool spam)
{
	const char *t = r->symbols ? r->symbols : "none";
	size_t cap = strlen(t) * 2 + 96, len, col;
	char *out = xmalloc(cap);
	const char *p;

	len = (size_t)snprintf(out, cap, "%s, score=%.1f required=%.1f tests=",
	    spam ? "Yes" : "No", r->score, r->threshold);
	col = len + 15;		/* "X-Spam-Status: " */
	for (p = t; *p != '\0'; p++) {
		out[len++] = *p;
		col++;
		if (*p == ',' && col > 64 && p[1] != '\0') {
			out[len++] = '\n';
			out[len++] = '\t';
			col = 8;
		}
	}
	out[len] = '\0';
	return out;
}

static void
sa_info_headers(struct module_ctx *ctx, const struct sa_view *v,
    const struct spamd_reply *r, bool spam)
{
	char *status = sa_status(r, spam), score[32], level[64];
	const char *ch = v->sa->spam_level_char[0] ? v->sa->spam_level_char :
	    "*";
	int i, n = r->score >= 1 ? (int)floor(r->score) : 0;

	if (n > 50)
		n = 50;
	scan_header_set(ctx, "X-Spam-Status", status);
	free(status);
	snprintf(score, sizeof(score), "%.1f", r->score);
	scan_header_set(ctx, "X-Spam-Score", score);
	for (i = 0; i < n; i++)
		level[i] = ch[0];
	level[n] = '\0';
	if (n > 0)
		scan_header_set(ctx, "X-Spam-Level", level);
}

static void
sa_verdict(struct module_ctx *ctx, const struct spamd_reply *r)
{
	struct sa_view v;
	bool spam, kill;
	char *text;
	size_t len;

	sa_view(ctx->conf, &v);
	module_set_score(ctx, r->score);
	spam = r->is_spam || r->score >= r->threshold;
	kill = v.sa->spam_kill_level != 0 ? r->score >= v.sa->spam_kill_level :
	    r->is_spam;
	if (spam || kill)
		ctx->s->msg.pipe->spam = true;	/* for beanstalk */
	if (r->score >= v.sa->spam_tag_level)
		sa_info_headers(ctx, &v, r, spam);
	if (kill && !v.never_reject) {
		len = strlen(v.reject_message) + 16;
		text = xmalloc(len);
		snprintf(text, len, "554 5.7.1 %s", v.reject_message);
		module_decide(ctx, MACT_REJECT, text, "spam, score %.1f / %.1f%s",
		    r->score, r->threshold, v.sa->spam_kill_level != 0 ?
		    " (spam_kill_level)" : "");
		free(text);
		return;
	}
	if (spam || kill) {
		if (greylist_eom_mode(ctx->conf))
			ctx->s->msg.pipe->greylist_wanted = true;
		scan_header_set(ctx, v.spam_header, v.spam_header_value);
		module_note(ctx, "spam, score %.1f / %.1f: tagged with %s",
		    r->score, r->threshold, v.spam_header);
		return;
	}
	module_note(ctx, "ham, score %.1f / %.1f", r->score, r->threshold);
}

static void
sa_done(void *ud, const struct upstream_result *r)
{
	struct sa_job *j = ud;
	struct module_ctx buf, *ctx;
	struct sa_view v;

	if ((ctx = scan_job_ctx(&j->job, &buf)) == NULL)
		return;
	ctx->res->ms += r->ms;
	if (!r->ok) {
		sa_view(ctx->conf, &v);
		scan_failed(ctx, "spamd", v.tempfail, r);
	} else {
		module_set_server(ctx, r->server);
		sa_verdict(ctx, &j->reply);
	}
	scan_job_resume(&j->job);
}

/* ---- the module ----------------------------------------------------------------- */

static struct upstream_pool *
sa_pool(const struct rmilter_config *conf, const struct sa_view *v)
{
	if (!v->legacy)
		return scan_pool(conf, "spamassassin", &v->sa->servers, &v->p);
	/* rmilter 1.6: the entries of spamd { servers } without "r:" */
	return scan_pool_split(conf, "spamassassin",
	    &conf->sections->spamd.servers, false, NULL, &v->p);
}

static enum module_rc
sa_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	struct sa_view v;
	struct spool *sp;
	struct sa_job *j;
	struct upstream_payload pl;

	sa_view(ctx->conf, &v);
	if (st != STAGE_EOM || scan_client_skip(ctx, v.whitelist))
		return MODULE_DONE;
	if ((sp = pipeline_spool(ctx->s)) == NULL) {
		module_decide(ctx, MACT_TEMPFAIL, NULL, "message spool failed");
		return MODULE_DONE;
	}
	j = xcalloc(1, sizeof(*j));
	spamd_reply_init(&j->reply, SPAMD_BODY_MAX);
	*ctx->data = j;
	memset(&pl, 0, sizeof(pl));
	spamd_request_head(&pl.head, v.sa->request == 1 ? "REPORT" :
	    "SYMBOLS", spool_size(sp), v.sa->user);
	pl.body = sp;
	scan_job_start(&j->job, ctx, sa_pool(ctx->conf, &v), &pl, &sa_codec,
	    j, sa_done);
	return MODULE_PENDING;
}

static void
sa_msg_free(void *data)
{
	struct sa_job *j = data;

	scan_job_cancel(&j->job);
	spamd_reply_free(&j->reply);
	free(j);
}

const struct module_def module_spamassassin = {
	.name = "spamassassin",
	.flags = MODULE_F_CONTENT | MODULE_F_SKIP_AUTH | MODULE_F_SKIP_REPLY,
	.configured = sa_configured,
	.shadow = sa_shadow,
	.needs = sa_needs,
	.run = sa_run,
	.msg_free = sa_msg_free,
};
