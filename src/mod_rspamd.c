/* mod_rspamd.c -- the rspamd module: POST /checkv2 with the message and its
 * envelope, over kept HTTP/1.1 connections, then rmilter's action mapping
 * (reject, soft reject, greylist, add header, rewrite subject), the reply's
 * milter block, rspamd's DKIM signature and the extended headers.
 *
 * Servers: "r:host[:port]" in spamd { servers }, or any entry of a
 * rspamd { servers } section (the rest of both sections is shared). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_sections.h"
#include "http_reply.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "rspamd_reply.h"
#include "scan.h"
#include "spool.h"
#include "xmalloc.h"

#define RSPAMD_REPLY_MAX	(8u * 1024 * 1024)

struct rsp_job {
	struct scan_job job;
	struct http_reply http;
	struct rspamd_result result;
	bool parsed;
	char err[160];
};

static const struct conf_spamd *
rsp_conf(const struct rmilter_config *conf)
{
	return &conf->sections->spamd;
}

static size_t
rsp_nservers(const struct conf_spamd *sd)
{
	size_t i, n = sd->rspamd_servers.n;

	for (i = 0; i < sd->servers.n; i++)
		if (sd->servers.v[i].is_rspamd)
			n++;
	return n;
}

static bool
rsp_configured(const struct rmilter_config *conf)
{
	return rsp_conf(conf)->enable && rsp_nservers(rsp_conf(conf)) > 0;
}

static bool
rsp_shadow(const struct rmilter_config *conf)
{
	return rsp_conf(conf)->mode == CONF_MODE_SHADOW;
}

static void
rsp_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->stages |= STAGE_BIT(STAGE_EOM);
	needs->replies |= STAGE_BIT(STAGE_EOM);
	needs->spool = true;
	needs->actions |= SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
}

/* ---- the codec seam: HTTP, then JSON ---------------------------------------- */

static void
rsp_begin(void *ud)
{
	struct rsp_job *j = ud;

	http_reply_free(&j->http);
	http_reply_init(&j->http, RSPAMD_REPLY_MAX);
	if (j->parsed)
		rspamd_result_free(&j->result);
	j->parsed = false;
	j->err[0] = '\0';
}

static enum upstream_parse
rsp_complete(struct rsp_job *j)
{
	if (j->http.status != 200) {
		snprintf(j->err, sizeof(j->err), "HTTP status %d",
		    j->http.status);
		return UPSTREAM_ERROR;
	}
	if (rspamd_result_parse(&j->result, (const char *)mbuf_data(
	    &j->http.body), mbuf_avail(&j->http.body), j->err,
	    sizeof(j->err)) < 0)
		return UPSTREAM_ERROR;
	j->parsed = true;
	return UPSTREAM_DONE;
}

static enum upstream_parse
rsp_feed(void *ud, const uint8_t *p, size_t n, size_t *used)
{
	struct rsp_job *j = ud;

	switch (http_reply_feed(&j->http, p, n, used)) {
	case HTTP_MORE:
		return UPSTREAM_MORE;
	case HTTP_DONE:
		return rsp_complete(j);
	default:
		snprintf(j->err, sizeof(j->err), "%s", j->http.error);
		return UPSTREAM_ERROR;
	}
}

static enum upstream_parse
rsp_eof(void *ud)
{
	struct rsp_job *j = ud;

	if (http_reply_eof(&j->http) != HTTP_DONE) {
		snprintf(j->err, sizeof(j->err), "%s", j->http.error);
		return UPSTREAM_ERROR;
	}
	return rsp_complete(j);
}

static bool
rsp_keepalive(void *ud)
{
	return ((struct rsp_job *)ud)->http.keepalive;
}

static const char *
rsp_error(void *ud)
{
	struct rsp_job *j = ud;

	return j->err[0] ? j->err : "unreadable reply";
}

static const struct upstream_codec rsp_codec = {
	.begin = rsp_begin,
	.feed = rsp_feed,
	.eof = rsp_eof,
	.keepalive = rsp_keepalive,
	.error = rsp_error,
};

/* ---- the request ----------------------------------------------------------- */

static void
hdr(struct mbuf *out, const char *name, const char *value)
{
	if (value != NULL && *value != '\0')
		http_request_header(out, name, value);
}

static void
rsp_request(struct module_ctx *ctx, const struct spool *sp, struct mbuf *out)
{
	const struct conf_spamd *sd = rsp_conf(ctx->conf);
	struct milter_session *s = ctx->s;
	uint8_t addr[16];
	const char *ip = NULL, *user;
	char num[32];
	unsigned i;

	http_request_line(out, "POST", "/checkv2");
	http_request_header(out, "Host", "rspamd");
	snprintf(num, sizeof(num), "%" PRIu64, spool_size(sp));
	http_request_header(out, "Content-Length", num);
	if (pipeline_client_ip(s, addr, &ip) == 0)
		ip = NULL;
	hdr(out, "IP", ip);
	hdr(out, "Helo", s->helo);
	if (s->hostname != NULL && strcmp(s->hostname, "unknown") != 0 &&
	    s->hostname[0] != '[')
		hdr(out, "Hostname", s->hostname);
	hdr(out, "From", s->msg.from);
	for (i = 0; i < s->msg.nrcpts; i++)
		hdr(out, "Rcpt", s->msg.rcpts[i].addr);
	hdr(out, "Queue-Id", scan_macro(ctx, "i"));
	user = scan_macro(ctx, "{auth_authen}");
	hdr(out, "User", user);
	hdr(out, "MTA-Tag", scan_macro(ctx, "{daemon_name}"));
	hdr(out, "MTA-Name", scan_macro(ctx, "j"));
	hdr(out, "Settings-ID", sd->spamd_settings_id);
	http_request_end(out);
}

/* ---- the verdict ------------------------------------------------------------ */

static bool
rsp_extended(struct module_ctx *ctx)
{
	const struct conf_spamd *sd = rsp_conf(ctx->conf);
	const struct milter_msg *m = &ctx->s->msg;
	unsigned i;

	if (sd->extended_headers_rcpt.n > 0 && m->nrcpts > 0) {
		for (i = 0; i < m->nrcpts; i++)
			if (!conf_rcptlist_match(&sd->extended_headers_rcpt,
			    m->rcpts[i].addr))
				break;
		if (i == m->nrcpts)
			return true;
	}
	return sd->extended_spam_headers && !pipeline_authenticated(ctx->s);
}

/* The reply's milter (or rmilter) block. */
static void
rsp_milter_block(struct module_ctx *ctx, const struct rspamd_result *r)
{
	size_t i;

	for (i = 0; i < r->nrm; i++) {
		unsigned k = scan_header_count(ctx, r->rm[i].name, NULL);
		int idx = r->rm[i].index;

		if (idx == 0) {
			for (; k > 0; k--)
				module_edit_delete(ctx, r->rm[i].name, k);
		} else if (idx > 0 && (unsigned)idx <= k) {
			module_edit_delete(ctx, r->rm[i].name, (uint32_t)idx);
		} else if (idx < 0 && (long)k + idx + 1 > 0) {
			module_edit_delete(ctx, r->rm[i].name,
			    (uint32_t)((long)k + idx + 1));
		}
	}
	for (i = 0; i < r->nadd; i++) {
		if (r->add[i].has_order && r->add[i].order >= 0)
			module_edit_insert(ctx, (uint32_t)r->add[i].order,
			    r->add[i].name, r->add[i].value);
		else
			module_edit_add(ctx, r->add[i].name, r->add[i].value);
	}
}

static void
rsp_spam_header(struct module_ctx *ctx)
{
	const struct conf_spamd *sd = rsp_conf(ctx->conf);

	scan_header_set(ctx, sd->spam_header, sd->spam_header_value);
}

static void
rsp_verdict(struct module_ctx *ctx, const struct rspamd_result *r,
    const char *server, double ms)
{
	const struct conf_spamd *sd = rsp_conf(ctx->conf);
	bool no_tag = sd->spam_no_auth_header &&
	    pipeline_authenticated(ctx->s);
	const char *act = rspamd_action_name(r->action);
	char *text;
	size_t len;

	module_set_score(ctx, r->score);
	module_set_server(ctx, server);
	if (r->action != RSPAMD_NO_ACTION)
		ctx->s->msg.pipe->spam = true;	/* for beanstalk */
	switch (r->action) {
	case RSPAMD_REJECT:
		if (sd->spamd_never_reject) {
			if (!no_tag)
				rsp_spam_header(ctx);
			module_note(ctx, "reject turned into the spam header "
			    "(spamd_never_reject), score %.2f / %.2f",
			    r->score, r->required_score);
			break;
		}
		len = strlen(r->smtp_message ? r->smtp_message :
		    sd->reject_message) + 16;
		text = xmalloc(len);
		snprintf(text, len, "554 5.7.1 %s", r->smtp_message ?
		    r->smtp_message : sd->reject_message);
		module_decide(ctx, MACT_REJECT, text, "rspamd %s, score %.2f / "
		    "%.2f", act, r->score, r->required_score);
		free(text);
		break;
	case RSPAMD_SOFT_REJECT:
		len = strlen(r->smtp_message ? r->smtp_message :
		    "Try again later") + 16;
		text = xmalloc(len);
		snprintf(text, len, "451 4.7.1 %s", r->smtp_message ?
		    r->smtp_message : "Try again later");
		module_decide(ctx, MACT_TEMPFAIL, text, "rspamd %s, score %.2f "
		    "/ %.2f", act, r->score, r->required_score);
		free(text);
		break;
	case RSPAMD_GREYLIST:
		if (greylist_eom_mode(ctx->conf)) {
			ctx->s->msg.pipe->greylist_wanted = true;
			module_note(ctx, "greylist (left to the greylisting "
			    "module), score %.2f / %.2f", r->score,
			    r->required_score);
			break;
		}
		if (sd->spamd_greylist) {
			module_decide(ctx, MACT_TEMPFAIL,
			    "451 4.7.1 Greylisted, try again later",
			    "rspamd greylist, score %.2f / %.2f", r->score,
			    r->required_score);
			break;
		}
		module_note(ctx, "greylist passed (spamd_greylist = no), "
		    "score %.2f / %.2f", r->score, r->required_score);
		break;
	case RSPAMD_DISCARD:
		module_decide(ctx, MACT_DISCARD, NULL, "rspamd %s, score %.2f "
		    "/ %.2f", act, r->score, r->required_score);
		break;
	case RSPAMD_QUARANTINE:
		module_decide(ctx, MACT_QUARANTINE, r->smtp_message ?
		    r->smtp_message : "Spam message quarantined", "rspamd %s, "
		    "score %.2f / %.2f", act, r->score, r->required_score);
		break;
	case RSPAMD_ADD_HEADER:
		if (greylist_eom_mode(ctx->conf))
			ctx->s->msg.pipe->greylist_wanted = true;
		if (!no_tag)
			rsp_spam_header(ctx);
		module_note(ctx, "%s%s, score %.2f / %.2f", act, no_tag ?
		    " (authenticated: not tagged)" : "", r->score,
		    r->required_score);
		break;
	case RSPAMD_REWRITE_SUBJECT:
		if (greylist_eom_mode(ctx->conf))
			ctx->s->msg.pipe->greylist_wanted = true;
		if (!no_tag) {
			const char *orig = NULL;
			char *subj;

			if (r->subject != NULL) {
				subj = xstrdup(r->subject);
			} else {
				scan_header_count(ctx, "Subject", &orig);
				len = (orig ? strlen(orig) : 0) + 16;
				subj = xmalloc(len);
				snprintf(subj, len, "***SPAM***%s%s", orig ?
				    " " : "", orig ? orig : "");
			}
			if (scan_header_count(ctx, "Subject", NULL) > 0)
				module_edit_change(ctx, "Subject", 1, subj);
			else
				module_edit_add(ctx, "Subject", subj);
			free(subj);
			if (sd->spamd_spam_add_header)
				rsp_spam_header(ctx);
		}
		module_note(ctx, "%s%s, score %.2f / %.2f", act, no_tag ?
		    " (authenticated: not tagged)" : "", r->score,
		    r->required_score);
		break;
	case RSPAMD_NO_ACTION:
	default:
		module_note(ctx, "%s, score %.2f / %.2f%s", act, r->score,
		    r->required_score, r->is_skipped ? " (skipped by rspamd)" :
		    "");
		break;
	}
	rsp_milter_block(ctx, r);
	if (r->dkim_signature != NULL)
		module_edit_insert(ctx, 0, "DKIM-Signature", r->dkim_signature);
	if (rsp_extended(ctx)) {
		char *res = rspamd_result_format(r);
		char t[32];
		const char *qid = scan_macro(ctx, "i");

		scan_header_set(ctx, "X-Spamd-Result", res);
		free(res);
		scan_header_set(ctx, "X-Rspamd-Server", server);
		snprintf(t, sizeof(t), "%.2f", ms / 1000.0);
		scan_header_set(ctx, "X-Rspamd-Scan-Time", t);
		if (qid != NULL && *qid != '\0')
			scan_header_set(ctx, "X-Rspamd-Queue-ID", qid);
	}
}

static void
rsp_done(void *ud, const struct upstream_result *r)
{
	struct rsp_job *j = ud;
	struct module_ctx buf, *ctx;

	if ((ctx = scan_job_ctx(&j->job, &buf)) == NULL)
		return;
	ctx->res->ms += r->ms;
	if (!r->ok || !j->parsed)
		scan_failed(ctx, "rspamd", rsp_conf(ctx->conf)->tempfail_on_error,
		    r);
	else
		rsp_verdict(ctx, &j->result, r->server, r->ms);
	scan_job_resume(&j->job);
}

/* ---- the module ------------------------------------------------------------- */

static struct upstream_pool *
rsp_pool(const struct rmilter_config *conf)
{
	const struct conf_spamd *sd = rsp_conf(conf);
	struct upstream_params p = {
		.connect_timeout = sd->connect_timeout,
		.io_timeout = sd->results_timeout,
		.error_time = sd->error_time,
		.dead_time = sd->dead_time,
		.maxerrors = sd->maxerrors,
		.attempts = sd->retry_count,
		.retry_delay = sd->retry_timeout,
		.max_inflight = sd->max_inflight,
		.max_queue = 4096,
		.idle_timeout = sd->keepalive_timeout,
		.strategy = (enum upstream_strategy)sd->strategy,
	};

	/* the r: entries of spamd { } and every rspamd { } entry */
	return scan_pool_split(conf, "rspamd", &sd->servers, true,
	    &sd->rspamd_servers, &p);
}

static enum module_rc
rsp_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	const struct conf_spamd *sd = rsp_conf(ctx->conf);
	struct spool *sp;
	struct rsp_job *j;
	struct upstream_payload pl;

	if (st != STAGE_EOM || scan_client_skip(ctx, &sd->whitelist))
		return MODULE_DONE;
	if ((sp = pipeline_spool(ctx->s)) == NULL) {
		module_decide(ctx, MACT_TEMPFAIL, NULL, "message spool failed");
		return MODULE_DONE;
	}
	j = xcalloc(1, sizeof(*j));
	http_reply_init(&j->http, RSPAMD_REPLY_MAX);
	*ctx->data = j;
	memset(&pl, 0, sizeof(pl));
	rsp_request(ctx, sp, &pl.head);
	pl.body = sp;
	scan_job_start(&j->job, ctx, rsp_pool(ctx->conf), &pl, &rsp_codec, j,
	    rsp_done);
	return MODULE_PENDING;
}

static void
rsp_msg_free(void *data)
{
	struct rsp_job *j = data;

	scan_job_cancel(&j->job);
	http_reply_free(&j->http);
	if (j->parsed)
		rspamd_result_free(&j->result);
	free(j);
}

const struct module_def module_rspamd = {
	.name = "rspamd",
	.flags = MODULE_F_CONTENT | MODULE_F_SKIP_AUTH | MODULE_F_SKIP_REPLY,
	.configured = rsp_configured,
	.shadow = rsp_shadow,
	.needs = rsp_needs,
	.run = rsp_run,
	.msg_free = rsp_msg_free,
};
