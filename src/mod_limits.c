/* mod_limits.c -- leaky-bucket rate limits on the policy store (redis
 * servers_limits, else the in-memory store).
 *
 * Buckets (burst:rate, rate in messages per second), per recipient:
 *   limit_to            to:RCPT
 *   limit_to_ip         to_ip:RCPT:IP
 *   limit_to_ip_from    to_ip_from:RCPT:IP:FROM
 *   limit_bounce_to     bounce_to:RCPT          (bounces only)
 *   limit_bounce_to_ip  bounce_to_ip:RCPT:IP    (bounces only)
 * A bounce has the null sender, or a sender whose local part is in
 * limit_bounce_addrs.  At RCPT the recipient's buckets are checked and,
 * when every one has room, its place is reserved in the same atomic step
 * (a full bucket refuses that recipient with 451 4.7.1), so messages in
 * flight on MTAs sharing a redis cannot overshoot together.  A message that
 * is not delivered in the end (refused or greylisted by another module,
 * tempfailed, aborted) gives its places back: only delivered mail counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "store.h"
#include "store_key.h"
#include "xmalloc.h"

#define LIM_KINDS	5
#define LIM_MAX_RCPTS	100

struct lim_state {
	struct store_op *op;
	struct store_bucket b[LIM_KINDS * LIM_MAX_RCPTS];
	size_t nb;
	bool accepted[LIM_MAX_RCPTS];	/* recipients reserved in buckets */
	uint64_t sid, serial;
	unsigned index;
	unsigned rcpt;			/* the recipient being checked */
	unsigned reserved;		/* recipients holding places */
};

static const struct conf_limits *
lim_conf(const struct rmilter_config *conf)
{
	return &conf->sections->limits;
}

static bool
lim_any(const struct conf_limits *l)
{
	return l->limit_to.set || l->limit_to_ip.set ||
	    l->limit_to_ip_from.set || l->limit_bounce_to.set ||
	    l->limit_bounce_to_ip.set;
}

static bool
lim_configured(const struct rmilter_config *conf)
{
	return lim_conf(conf)->present && lim_conf(conf)->enable &&
	    lim_any(lim_conf(conf));
}

static bool
lim_shadow(const struct rmilter_config *conf)
{
	return lim_conf(conf)->mode == CONF_MODE_SHADOW;
}

static void
lim_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->stages |= STAGE_BIT(STAGE_RCPT);
	needs->replies |= STAGE_BIT(STAGE_RCPT);
}

/* A bounce: the null sender, or a listed local part (the whole local
 * part, any case). */
static bool
lim_bounce(const struct conf_limits *l, const char *from)
{
	char addr[512], *at;
	size_t i;

	store_key_addr(from, addr, sizeof(addr));
	if (addr[0] == '\0')
		return true;
	if ((at = strrchr(addr, '@')) != NULL)
		*at = '\0';
	for (i = 0; i < l->limit_bounce_addrs.n; i++)
		if (strcasecmp(addr, l->limit_bounce_addrs.v[i]) == 0)
			return true;
	return false;
}

static void
lim_add(struct lim_state *ls, const char *prefix, const struct conf_bucket *cb,
    const char *fmt, const char *a, const char *b, const char *c)
{
	char body[1600];
	struct store_bucket *sb;

	if (!cb->set || ls->nb >= sizeof(ls->b) / sizeof(ls->b[0]))
		return;
	snprintf(body, sizeof(body), fmt, a, b, c);
	sb = &ls->b[ls->nb++];
	memset(sb, 0, sizeof(*sb));
	sb->key = store_key_make(prefix, body);
	sb->burst = cb->burst;
	sb->rate = cb->rate;
}

/* The buckets of recipient I. */
static void
lim_buckets(struct module_ctx *ctx, struct lim_state *ls, unsigned i)
{
	const struct conf_limits *l = lim_conf(ctx->conf);
	const char *prefix = ctx->conf->sections->redis.limits_prefix;
	const struct milter_msg *m = &ctx->s->msg;
	char rcpt[512], from[512];
	const char *ip = NULL;
	uint8_t addr[16];

	store_key_addr(m->rcpts[i].addr, rcpt, sizeof(rcpt));
	store_key_addr(m->from, from, sizeof(from));
	if (pipeline_client_ip(ctx->s, addr, &ip) == 0 || ip == NULL)
		ip = "unknown";
	lim_add(ls, prefix, &l->limit_to, "to:%s", rcpt, "", "");
	lim_add(ls, prefix, &l->limit_to_ip, "to_ip:%s:%s", rcpt, ip, "");
	lim_add(ls, prefix, &l->limit_to_ip_from, "to_ip_from:%s:%s:%s", rcpt,
	    ip, from);
	if (lim_bounce(l, m->from)) {
		lim_add(ls, prefix, &l->limit_bounce_to, "bounce_to:%s", rcpt,
		    "", "");
		lim_add(ls, prefix, &l->limit_bounce_to_ip, "bounce_to_ip:%s:%s",
		    rcpt, ip, "");
	}
}

static void
lim_clear(struct lim_state *ls)
{
	size_t i;

	for (i = 0; i < ls->nb; i++)
		free(ls->b[i].key);
	ls->nb = 0;
}

static void
lim_done(void *ud, const struct store_result *r)
{
	struct lim_state *ls = ud;
	const struct conf_limits *l;
	struct module_ctx buf, *ctx;

	ls->op = NULL;
	if ((ctx = module_ctx_lookup(ls->sid, ls->serial, ls->index, &buf))
	    == NULL)
		return;
	l = lim_conf(ctx->conf);
	if (!r->ok) {
		module_set_server(ctx, r->server);
		module_set_error(ctx, r->error);
		if (l->tempfail_on_error)
			module_decide(ctx, MACT_TEMPFAIL, "451 4.7.1 Temporary "
			    "service failure, try again later",
			    "rate limit store unavailable");
		else
			module_note(ctx, "rate limit store unavailable; "
			    "recipient passed (tempfail_on_error = no)");
	} else if (r->over >= 0 && (size_t)r->over < ls->nb) {
		const struct store_bucket *b = &ls->b[r->over];

		module_decide(ctx, MACT_TEMPFAIL,
		    "451 4.7.1 Rate limit exceeded, try again later",
		    "bucket %s full: level %.1f, burst %.0f, rate %g/s",
		    b->key, b->level, b->burst, b->rate);
	} else {
		if (ls->rcpt < LIM_MAX_RCPTS && !ls->accepted[ls->rcpt]) {
			ls->accepted[ls->rcpt] = true;
			ls->reserved++;
		}
		module_note(ctx, "%u recipient%s counted (%s: level %.1f / "
		    "%.0f)", ls->reserved, ls->reserved == 1 ? "" : "s",
		    ls->b[0].key, ls->b[0].level, ls->b[0].burst);
	}
	lim_clear(ls);
	module_resume(ls->sid, ls->serial, ls->index);
}

/* A refund ended: free its buckets (nobody waits for it). */
static void
lim_refunded(void *ud, const struct store_result *r)
{
	struct store_bucket *b = ud;
	size_t i;

	if (!r->ok)
		log_info("limits: refund of %zu bucket%s failed: %s",
		    r->nbuckets, r->nbuckets == 1 ? "" : "s", r->error);
	for (i = 0; i < r->nbuckets; i++)
		free(b[i].key);
	free(b);
}

static enum module_rc
lim_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	const struct conf_limits *l = lim_conf(ctx->conf);
	const struct milter_msg *m = &ctx->s->msg;
	struct lim_state *ls = *ctx->data;
	uint8_t addr[16];
	int fam;
	unsigned i;

	if (st != STAGE_RCPT)
		return MODULE_DONE;
	if (ls == NULL) {
		if ((fam = pipeline_client_ip(ctx->s, addr, NULL)) != 0 &&
		    conf_netlist_match(&l->limit_whitelist, fam, addr)) {
			ctx->res->skipped = true;
			snprintf(ctx->res->why, sizeof(ctx->res->why),
			    "client whitelisted");
			return MODULE_DONE;
		}
		ls = xcalloc(1, sizeof(*ls));
		*ctx->data = ls;
		ls->sid = ctx->sid;
		ls->serial = ctx->msg_serial;
		ls->index = ctx->index;
	}
	i = ev->rcpt;
	if (i >= LIM_MAX_RCPTS || i >= m->nrcpts)
		return MODULE_DONE;
	/* refused by an earlier module: holds no place */
	if (ctx->s->msg.pipe->rcpt_action != MACT_NONE)
		return MODULE_DONE;
	if (conf_rcptlist_match(&l->limit_whitelist_rcpt,
	    m->rcpts[i].addr))
		return MODULE_DONE;	/* not limited, not counted */
	lim_buckets(ctx, ls, i);
	if (ls->nb == 0)
		return MODULE_DONE;
	ls->rcpt = i;
	/* shadow mode looks without taking a place */
	ls->op = store_limits(store_get(ctx->conf, STORE_LIMITS), ls->b,
	    ls->nb, ctx->shadow ? STORE_LIMIT_CHECK :
	    STORE_LIMIT_RESERVE, store_now(), lim_done, ls);
	return MODULE_PENDING;
}

/* Not delivered: give the reserved places back (fire and forget). */
static void
lim_msg_end(struct module_ctx *ctx, bool delivered)
{
	struct lim_state *ls = *ctx->data;
	struct store_bucket *b;
	size_t i, n = 0;
	unsigned r;

	if (ls == NULL || delivered || ls->reserved == 0 || ctx->shadow)
		return;
	if (ls->op != NULL) {
		store_op_cancel(ls->op);
		ls->op = NULL;
	}
	lim_clear(ls);
	for (r = 0; r < ctx->s->msg.nrcpts && r < LIM_MAX_RCPTS; r++)
		if (ls->accepted[r])
			lim_buckets(ctx, ls, r);
	/* the store keeps the array until the operation ends: a copy that
	 * the completion frees */
	b = xcalloc(ls->nb + 1, sizeof(*b));
	for (i = 0; i < ls->nb; i++) {
		b[i] = ls->b[i];
		ls->b[i].key = NULL;
		n++;
	}
	ls->nb = 0;
	store_limits(store_get(ctx->conf, STORE_LIMITS), b, n,
	    STORE_LIMIT_REFUND, store_now(), lim_refunded, b);
}

static void
lim_msg_free(void *data)
{
	struct lim_state *ls = data;

	if (ls->op != NULL)
		store_op_cancel(ls->op);
	lim_clear(ls);
	free(ls);
}

const struct module_def module_limits = {
	.name = "limits",
	.flags = 0,
	.configured = lim_configured,
	.shadow = lim_shadow,
	.needs = lim_needs,
	.run = lim_run,
	.msg_end = lim_msg_end,
	.msg_free = lim_msg_free,
};
