/* mod_beanstalk.c -- the beanstalk module (rmilter 1.6's beanstalk { }):
 * after a message's verdict was sent, its headers, a copy, or a spam copy
 * are put as beanstalkd jobs.  Which jobs, per message that reached the end
 * of message:
 *   headers  (send_beanstalk_headers, to servers) for delivered mail: the
 *            headers and the blank line after them, or the whole message
 *            when id_regexp matches its In-Reply-To
 *   copy     (send_beanstalk_copy, to copy_server) for delivered mail, with
 *            probability copy_probability percent: the whole message
 *   spam     (send_beanstalk_spam, to spam_server) for any message a spam
 *            scanner (rspamd, spamassassin) gave an action other than "no
 *            action", delivered or refused: the whole message
 * The message is the one the MTA handed us (headers as received, CRLF line
 * ends), as the content scanners see it in the spool.  Jobs never delay or
 * fail mail: beanstalk_queue.c sends them fire and forget.
 *
 * The module runs at EOH (to note where the headers end) and so gets its
 * msg_end even when an earlier module refuses the message at EOM; it never
 * decides anything, so its mode (enforce|shadow) makes no difference. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "beanstalk.h"
#include "beanstalk_proto.h"
#include "conf_internal.h"
#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "spool.h"
#include "xmalloc.h"

/* Per message: only a mark (msg_end is called for modules with state). */
struct bs_msg {
	bool seen;
};

static const struct conf_beanstalk *
bs_conf(const struct rmilter_config *conf)
{
	return &conf->sections->beanstalk;
}

static bool
bs_want_headers(const struct conf_beanstalk *bc)
{
	return bc->send_beanstalk_headers && bc->servers.n > 0;
}

static bool
bs_want_copy(const struct conf_beanstalk *bc)
{
	return bc->send_beanstalk_copy && bc->copy_server.n > 0 &&
	    bc->copy_probability > 0;
}

static bool
bs_want_spam(const struct conf_beanstalk *bc)
{
	return bc->send_beanstalk_spam && bc->spam_server.n > 0;
}

static bool
bs_configured(const struct rmilter_config *conf)
{
	const struct conf_beanstalk *bc = bs_conf(conf);

	return bc->enable && (bs_want_headers(bc) || bs_want_copy(bc) ||
	    bs_want_spam(bc));
}

static bool
bs_shadow(const struct rmilter_config *conf)
{
	return bs_conf(conf)->mode == CONF_MODE_SHADOW;
}

static void
bs_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	const struct conf_beanstalk *bc = bs_conf(conf);

	needs->stages |= STAGE_BIT(STAGE_EOH) | STAGE_BIT(STAGE_EOM);
	needs->spool = true;
	/* BODY only so that the body is never cut short (SMFIR_SKIP) for
	 * another module, when a job may be the whole message */
	if (bs_want_copy(bc) || bs_want_spam(bc) ||
	    (bs_want_headers(bc) && bc->id_regexp.code != NULL)) {
		needs->stages |= STAGE_BIT(STAGE_BODY);
		needs->body_limit = 0;
	}
}

static enum module_rc
bs_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	struct bs_msg *m = *ctx->data;

	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		m->seen = true;
		*ctx->data = m;
	}
	return MODULE_DONE;
}

/* true if the message's In-Reply-To matches id_regexp. */
static bool
bs_id_match(struct module_ctx *ctx, const struct conf_regex *re)
{
	const char *v = pipeline_header_value(ctx->s, "In-Reply-To");
	pcre2_match_data *md;
	int rc;

	if (re->code == NULL || v == NULL)
		return false;
	md = pcre2_match_data_create_from_pattern(re->code, NULL);
	if (md == NULL)
		return false;
	rc = pcre2_match(re->code, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
	pcre2_match_data_free(md);
	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
		log_info("%s beanstalk: id_regexp %s: match error %d, counted "
		    "as no match", ctx->s->sid, re->text, rc);
	return rc >= 0;
}

/* true with probability PERCENT / 100. */
static bool
bs_roll(double percent)
{
	if (percent >= 100)
		return true;
	/* in steps of 0.0001 % */
	return arc4random_uniform(1000000) < (uint32_t)(percent * 10000);
}

/* The message ended: queue its jobs if it reached the end of message and
 * its verdict was sent (not lost in a closed or timed-out session). */
static void
bs_msg_end(struct module_ctx *ctx, bool delivered)
{
	const struct conf_beanstalk *bc = bs_conf(ctx->conf);
	struct milter_session *s = ctx->s;
	struct pipeline_msg *p = s->msg.pipe;
	const char *qid = milter_session_macro(s, "i");
	uint64_t size;

	if (s->phase != PH_EOM || s->closing || p == NULL || !p->recorded)
		return;
	if (p->spool == NULL || p->spool_failed) {
		if (delivered || p->spam)
			log_info("%s beanstalk: no message spool; no jobs",
			    s->sid);
		return;
	}
	size = spool_size(p->spool);
	if (delivered && bs_want_headers(bc)) {
		uint64_t len;

		if (!pipeline_spool_body(s, &len))
			len = size;
		if (bs_id_match(ctx, &bc->id_regexp))
			len = size;
		beanstalk_queue_put(ctx->conf, BEANSTALK_HEADERS, p->spool, len,
		    s->sid, qid);
	}
	if (delivered && bs_want_copy(bc) && bs_roll(bc->copy_probability))
		beanstalk_queue_put(ctx->conf, BEANSTALK_COPY, p->spool, size,
		    s->sid, qid);
	if (p->spam && bs_want_spam(bc))
		beanstalk_queue_put(ctx->conf, BEANSTALK_SPAM, p->spool, size,
		    s->sid, qid);
}

static void
bs_msg_free(void *data)
{
	free(data);
}

const struct module_def module_beanstalk = {
	.name = "beanstalk",
	.configured = bs_configured,
	.shadow = bs_shadow,
	.needs = bs_needs,
	.run = bs_run,
	.msg_end = bs_msg_end,
	.msg_free = bs_msg_free,
};

/* ---- load-time checks ------------------------------------------------------ */

static bool
spam_scanner_configured(const struct rmilter_config *conf)
{
	return module_rspamd.configured(conf) ||
	    module_spamassassin.configured(conf);
}

void
beanstalk_check_config(const struct rmilter_config *conf, struct conf_diag *d)
{
	const struct conf_beanstalk *bc = bs_conf(conf);
	const char *file = bc->file != NULL ? bc->file : conf->path;
	static const char *const flags[BEANSTALK_NKINDS] = {
	    "send_beanstalk_headers", "send_beanstalk_copy",
	    "send_beanstalk_spam" };
	static const char *const lists[BEANSTALK_NKINDS] = {
	    "servers", "copy_server", "spam_server" };
	bool on[BEANSTALK_NKINDS];
	size_t n[BEANSTALK_NKINDS];
	unsigned k;

	if (!bc->present || !bc->enable)
		return;
	if (bc->tube == NULL || !beanstalk_tube_valid(bc->tube))
		conf_diag_add(d, CONF_DIAG_ERROR, file, bc->line, "beanstalk."
		    "tube: '%.64s' is not a beanstalkd tube name (1 to 200 "
		    "letters, digits and -+/;.$_(), not starting with -)",
		    bc->tube ? bc->tube : "");
	on[BEANSTALK_HEADERS] = bc->send_beanstalk_headers;
	on[BEANSTALK_COPY] = bc->send_beanstalk_copy;
	on[BEANSTALK_SPAM] = bc->send_beanstalk_spam;
	n[BEANSTALK_HEADERS] = bc->servers.n;
	n[BEANSTALK_COPY] = bc->copy_server.n;
	n[BEANSTALK_SPAM] = bc->spam_server.n;
	for (k = 0; k < BEANSTALK_NKINDS; k++) {
		if (on[k] && n[k] == 0)
			conf_diag_add(d, CONF_DIAG_WARNING, file, bc->line,
			    "beanstalk: %s = yes but %s is empty: no %s jobs "
			    "are sent", flags[k], lists[k],
			    beanstalk_kind_name(k));
		else if (!on[k] && n[k] > 0)
			conf_diag_add(d, CONF_DIAG_WARNING, file, bc->line,
			    "beanstalk: %s is set but %s = no: nothing is "
			    "sent to it", lists[k], flags[k]);
	}
	if (on[BEANSTALK_SPAM] && n[BEANSTALK_SPAM] > 0 &&
	    !spam_scanner_configured(conf))
		conf_diag_add(d, CONF_DIAG_WARNING, file, bc->line,
		    "beanstalk: send_beanstalk_spam = yes but no spam scanner "
		    "(rspamd, spamassassin) is configured: no spam jobs are "
		    "sent");
	if (on[BEANSTALK_COPY] && n[BEANSTALK_COPY] > 0 &&
	    bc->copy_probability <= 0)
		conf_diag_add(d, CONF_DIAG_WARNING, file, bc->line,
		    "beanstalk: copy_probability is 0: no copies are sent");
}
