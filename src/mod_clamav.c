/* mod_clamav.c -- the clamav module: the message goes to clamd with
 * zINSTREAM (one chunk, so it must fit clamd's StreamMaxLength, which
 * stream_max_length mirrors) over TCP or a unix socket; a virus is
 * rejected, discarded, quarantined or tagged per virus_action. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamd_proto.h"
#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "spool.h"
#include "xmalloc.h"

struct clam_job {
	struct scan_job job;
	struct clamd_reply reply;
};

static const struct conf_clamav *
clam_conf(const struct rmilter_config *conf)
{
	return &conf->sections->clamav;
}

static bool
clam_configured(const struct rmilter_config *conf)
{
	return clam_conf(conf)->enable && clam_conf(conf)->servers.n > 0;
}

static bool
clam_shadow(const struct rmilter_config *conf)
{
	return clam_conf(conf)->mode == CONF_MODE_SHADOW;
}

static void
clam_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->stages |= STAGE_BIT(STAGE_EOM);
	needs->replies |= STAGE_BIT(STAGE_EOM);
	needs->spool = true;
	if (clam_conf(conf)->virus_action == CONF_VIRUS_HEADER)
		needs->actions |= SMFIF_ADDHDRS | SMFIF_CHGHDRS;
	if (clam_conf(conf)->virus_action == CONF_VIRUS_QUARANTINE)
		needs->actions |= SMFIF_QUARANTINE;
}

/* ---- the codec seam ------------------------------------------------------ */

static void
clam_begin(void *ud)
{
	struct clam_job *j = ud;

	clamd_reply_free(&j->reply);
	clamd_reply_init(&j->reply);
}

static enum upstream_parse
clam_feed(void *ud, const uint8_t *p, size_t n, size_t *used)
{
	struct clam_job *j = ud;

	switch (clamd_reply_feed(&j->reply, p, n, used)) {
	case CLAMD_MORE:
		return UPSTREAM_MORE;
	case CLAMD_DONE:
		/* clamd's own errors are worth a retry elsewhere, except the
		 * size limit (every clamd of the pool has the same) */
		if (j->reply.status == CLAMD_FAILED && !j->reply.size_limit)
			return UPSTREAM_ERROR;
		return UPSTREAM_DONE;
	default:
		return UPSTREAM_ERROR;
	}
}

static enum upstream_parse
clam_eof(void *ud)
{
	struct clam_job *j = ud;

	if (clamd_reply_eof(&j->reply) != CLAMD_DONE)
		return UPSTREAM_ERROR;
	if (j->reply.status == CLAMD_FAILED && !j->reply.size_limit)
		return UPSTREAM_ERROR;
	return UPSTREAM_DONE;
}

static const char *
clam_error(void *ud)
{
	struct clam_job *j = ud;

	return j->reply.error[0] ? j->reply.error : "unreadable reply";
}

static const struct upstream_codec clam_codec = {
	.begin = clam_begin,
	.feed = clam_feed,
	.eof = clam_eof,
	.keepalive = NULL,	/* clamd closes after an INSTREAM reply */
	.error = clam_error,
};

/* ---- verdict --------------------------------------------------------------- */

/* TMPL with every ${virus} replaced by NAME (the rest is a reply template
 * the pipeline expands). */
static char *
virus_text(const char *tmpl, const char *name)
{
	size_t nlen = strlen(name), cap = strlen(tmpl) + 1, len = 0;
	const char *p = tmpl, *q;
	char *out;

	for (q = tmpl; (q = strstr(q, "${virus}")) != NULL; q += 8)
		cap += nlen;
	out = xmalloc(cap);
	while ((q = strstr(p, "${virus}")) != NULL) {
		memcpy(out + len, p, (size_t)(q - p));
		len += (size_t)(q - p);
		memcpy(out + len, name, nlen);
		len += nlen;
		p = q + 8;
	}
	memcpy(out + len, p, strlen(p) + 1);
	return out;
}

static void
clam_verdict(struct module_ctx *ctx, const struct clamd_reply *rep)
{
	const struct conf_clamav *cc = clam_conf(ctx->conf);
	char *text;

	if (rep->status == CLAMD_CLEAN) {
		module_note(ctx, "clean");
		return;
	}
	if (rep->status == CLAMD_FAILED) {	/* the size limit */
		struct upstream_result r;

		memset(&r, 0, sizeof(r));
		r.attempts = 1;
		r.server = ctx->res->server;
		snprintf(r.error, sizeof(r.error), "clamd: %.100s (clamd's "
		    "StreamMaxLength is below clamav.stream_max_length)",
		    rep->error);
		scan_failed(ctx, "clamav", cc->tempfail_on_error, &r);
		return;
	}
	switch (cc->virus_action) {
	case CONF_VIRUS_DISCARD:
		module_decide(ctx, MACT_DISCARD, NULL, "virus %s", rep->virus);
		break;
	case CONF_VIRUS_QUARANTINE:
		text = virus_text(cc->virus_message, rep->virus);
		module_decide(ctx, MACT_QUARANTINE, text, "virus %s",
		    rep->virus);
		free(text);
		break;
	case CONF_VIRUS_HEADER:
		scan_header_set(ctx, cc->virus_header, rep->virus);
		module_note(ctx, "virus %s, tagged with %s", rep->virus,
		    cc->virus_header);
		break;
	case CONF_VIRUS_REJECT:
	default:
		text = virus_text(cc->virus_message, rep->virus);
		module_decide(ctx, MACT_REJECT, text, "virus %s", rep->virus);
		free(text);
		break;
	}
}

static void
clam_done(void *ud, const struct upstream_result *r)
{
	struct clam_job *j = ud;
	struct module_ctx buf, *ctx;

	if ((ctx = scan_job_ctx(&j->job, &buf)) == NULL)
		return;
	ctx->res->ms += r->ms;
	if (!r->ok) {
		scan_failed(ctx, "clamav", clam_conf(ctx->conf)->tempfail_on_error,
		    r);
	} else {
		module_set_server(ctx, r->server);
		clam_verdict(ctx, &j->reply);
	}
	scan_job_resume(&j->job);
}

/* ---- the module ------------------------------------------------------------ */

static struct upstream_pool *
clam_pool(const struct rmilter_config *conf)
{
	const struct conf_clamav *cc = clam_conf(conf);
	struct upstream_params p = {
		.connect_timeout = cc->connect_timeout,
		.io_timeout = cc->results_timeout,
		.error_time = cc->error_time,
		.dead_time = cc->dead_time,
		.maxerrors = cc->maxerrors,
		.attempts = cc->retry_count,
		.retry_delay = cc->retry_timeout,
		.max_inflight = cc->max_inflight,
		.max_queue = 4096,
		.idle_timeout = 0,
		.strategy = (enum upstream_strategy)cc->strategy,
	};

	return scan_pool(conf, "clamav", &cc->servers, &p);
}

static enum module_rc
clam_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	const struct conf_clamav *cc = clam_conf(ctx->conf);
	struct spool *sp;
	struct clam_job *j;
	struct upstream_payload pl;
	uint64_t size;

	if (st != STAGE_EOM || scan_client_skip(ctx, &cc->whitelist))
		return MODULE_DONE;
	if ((sp = pipeline_spool(ctx->s)) == NULL) {
		module_decide(ctx, MACT_TEMPFAIL, NULL, "message spool failed");
		return MODULE_DONE;
	}
	size = spool_size(sp);
	if (size > cc->stream_max_length) {
		ctx->res->skipped = true;
		snprintf(ctx->res->why, sizeof(ctx->res->why),
		    "over stream_max_length");
		return MODULE_DONE;
	}
	j = xcalloc(1, sizeof(*j));
	clamd_reply_init(&j->reply);
	*ctx->data = j;
	memset(&pl, 0, sizeof(pl));
	clamd_instream_begin(&pl.head);
	if (size > 0)
		mbuf_append_u32(&pl.head, (uint32_t)size);
	pl.body = sp;
	clamd_instream_end(&pl.tail);
	scan_job_start(&j->job, ctx, clam_pool(ctx->conf), &pl, &clam_codec,
	    j, clam_done);
	return MODULE_PENDING;
}

static void
clam_msg_free(void *data)
{
	struct clam_job *j = data;

	scan_job_cancel(&j->job);
	clamd_reply_free(&j->reply);
	free(j);
}

const struct module_def module_clamav = {
	.name = "clamav",
	.flags = MODULE_F_CONTENT,
	.configured = clam_configured,
	.shadow = clam_shadow,
	.needs = clam_needs,
	.run = clam_run,
	.msg_free = clam_msg_free,
};
