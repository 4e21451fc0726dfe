/* mod_greylist.c -- greylisting on the policy store (redis servers_grey,
 * else the in-memory store).
 *
 * A triplet is (client network: IPv4 /ipv4_mask, IPv6 /ipv6_mask; envelope
 * sender; one recipient); its first attempt is tempfailed (451 4.7.1 with
 * the remaining delay), a retry after `timeout` passes and whitelists the
 * triplet for expire_white, and the message gets an X-Greylist header.  A
 * client that passed awl_hits times is auto-whitelisted for awl_ttl.
 *
 * Which mail (rmilter's two modes):
 *  - spamd_greylist = no, or no spam scanner: every message of an
 *    unauthenticated sender, decided at DATA (before the body is sent), or
 *    at end of headers when reply_whitelist needs In-Reply-To first;
 *  - spamd_greylist = yes with a spam scanner: at end of message, only the
 *    mail the scanner marks greylist / add header / rewrite subject; the
 *    message body (hashed) is then a second key, so a retry whose envelope
 *    changed (VERP) still passes.
 * Authenticated senders, our_networks and the greylisting whitelist are
 * never greylisted; replies to local mail neither (module replies). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "spool.h"
#include "store.h"
#include "store_key.h"
#include "xmalloc.h"

#define GREY_MAX_KEYS	101	/* recipients + the body key */

struct grey_state;

/* One completion per key: which key rides in a cookie. */
struct gl_cookie {
	struct grey_state *gs;
	size_t i;
};

struct grey_state {
	struct gl_cookie ck[GREY_MAX_KEYS];
	struct store_op *ops[GREY_MAX_KEYS];
	enum store_grey_state res[GREY_MAX_KEYS];
	uint64_t remaining[GREY_MAX_KEYS], elapsed[GREY_MAX_KEYS];
	char *keys[GREY_MAX_KEYS];
	size_t nkeys, pending;
	bool body_key;		/* keys[nkeys - 1] is the body hash */
	bool failed;
	char error[160];
	char server[80];
	char *awl_key;
	uint64_t sid, serial;
	unsigned index;
	enum policy_stage stage;
	uint64_t delayed;	/* ms, for X-Greylist (0: not delayed) */
	bool decided;
};

static const struct conf_greylisting *
gl_conf(const struct rmilter_config *conf)
{
	return &conf->sections->greylisting;
}

static bool
gl_configured(const struct rmilter_config *conf)
{
	return gl_conf(conf)->present && gl_conf(conf)->enable;
}

static bool
gl_shadow(const struct rmilter_config *conf)
{
	return gl_conf(conf)->mode == CONF_MODE_SHADOW;
}

bool
greylist_eom_mode(const struct rmilter_config *conf)
{
	const struct conf_spamd *sd = &conf->sections->spamd;

	return gl_configured(conf) && sd->spamd_greylist &&
	    (module_rspamd.configured(conf) ||
	    module_spamassassin.configured(conf));
}

/* The stage of the decision in the first mode. */
static enum policy_stage
gl_early_stage(const struct rmilter_config *conf)
{
	return module_replies.configured(conf) ? STAGE_EOH : STAGE_DATA;
}

static void
gl_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	enum policy_stage st = greylist_eom_mode(conf) ? STAGE_EOM :
	    gl_early_stage(conf);

	needs->stages |= STAGE_BIT(st) | STAGE_BIT(STAGE_EOM);
	needs->replies |= STAGE_BIT(st) | STAGE_BIT(STAGE_EOM);
	needs->actions |= SMFIF_ADDHDRS;
	if (st == STAGE_EOM)
		needs->spool = true;	/* the body key */
}

/* ---- keys ------------------------------------------------------------------- */

static bool
gl_keys(struct module_ctx *ctx, struct grey_state *gs, const char *net,
    bool with_body)
{
	const struct milter_msg *m = &ctx->s->msg;
	char from[512], rcpt[512];
	const char *parts[3];
	unsigned i;

	store_key_addr(m->from, from, sizeof(from));
	parts[0] = net;
	parts[1] = from;
	for (i = 0; i < m->nrcpts && gs->nkeys < GREY_MAX_KEYS - 1; i++) {
		parts[2] = store_key_addr(m->rcpts[i].addr, rcpt,
		    sizeof(rcpt));
		gs->keys[gs->nkeys++] = store_key_hash("", parts, 3);
	}
	if (with_body) {
		struct spool *sp = pipeline_spool(ctx->s);
		const uint8_t *mem;
		size_t len;
		char buf[65536];
		ssize_t n;
		uint64_t off = 0;
		const char *bp[2];
		char *data;

		if (sp == NULL)
			return gs->nkeys > 0;
		/* the body key: the sender's network and the body (the MTA's
		 * own Received: header changes with every attempt) */
		if (!pipeline_spool_body(ctx->s, &off))
			off = 0;
		if ((mem = spool_memory(sp, &len)) != NULL) {
			if (off > len)
				off = len;
			mem += off;
			len -= (size_t)off;
			data = xmalloc(len + 1);
			memcpy(data, mem, len);
		} else {
			len = 0;
			data = xmalloc(1);
			while ((n = spool_read(sp, off, buf, sizeof(buf))) > 0) {
				data = xrealloc(data, len + (size_t)n + 1);
				memcpy(data + len, buf, (size_t)n);
				len += (size_t)n;
				off += (uint64_t)n;
			}
		}
		/* NULs would cut the hashed text: map them */
		for (off = 0; off < len; off++)
			if (data[off] == '\0')
				data[off] = ' ';
		data[len] = '\0';
		bp[0] = net;
		bp[1] = data;
		gs->keys[gs->nkeys++] = store_key_hash("", bp, 2);
		gs->body_key = true;
		free(data);
	}
	return gs->nkeys > 0;
}

/* ---- the verdict -------------------------------------------------------------- */

static void gl_x_greylist(struct module_ctx *ctx, struct grey_state *gs);

static void
gl_decide(struct module_ctx *ctx, struct grey_state *gs)
{
	const struct conf_greylisting *g = gl_conf(ctx->conf);
	size_t i, nt = gs->nkeys - (gs->body_key ? 1 : 0);
	uint64_t wait = 0, waited = 0;
	bool all_pass = true, body_pass = false, awl = false;
	char text[512];

	if (gs->failed) {
		module_set_server(ctx, gs->server);
		module_set_error(ctx, gs->error);
		if (g->tempfail_on_error)
			module_decide(ctx, MACT_TEMPFAIL, "451 4.7.1 Temporary "
			    "service failure, try again later",
			    "greylisting store unavailable");
		else
			module_note(ctx, "greylisting store unavailable; "
			    "message passed (tempfail_on_error = no)");
		return;
	}
	for (i = 0; i < gs->nkeys; i++) {
		bool pass = gs->res[i] == STORE_GREY_PASSED ||
		    gs->res[i] == STORE_GREY_WHITE ||
		    gs->res[i] == STORE_GREY_AWL;

		if (gs->res[i] == STORE_GREY_AWL)
			awl = true;
		if (gs->res[i] == STORE_GREY_PASSED &&
		    gs->elapsed[i] > waited)
			waited = gs->elapsed[i];
		if (i < nt) {
			if (!pass)
				all_pass = false;
			if (!pass && gs->remaining[i] > wait)
				wait = gs->remaining[i];
		} else {
			body_pass = pass;
		}
	}
	if (all_pass || body_pass) {
		gs->delayed = waited;
		if (waited > 0)
			module_note(ctx, "passed after %llu s",
			    (unsigned long long)(waited / 1000));
		else
			module_note(ctx, "%s", awl ? "client auto-whitelisted" :
			    "whitelisted");
		/* decided at EOM itself: no later EOM call adds it */
		if (waited > 0 && gs->stage == STAGE_EOM)
			gl_x_greylist(ctx, gs);
		return;
	}
	snprintf(text, sizeof(text), "451 4.7.1 %s, retry in %llu seconds",
	    g->greylisted_message, (unsigned long long)((wait + 999) / 1000));
	module_decide(ctx, MACT_TEMPFAIL, text, "greylisted, %llu s to wait",
	    (unsigned long long)((wait + 999) / 1000));
}

static void
gl_key_done(void *ud, const struct store_result *r)
{
	struct gl_cookie *ck = ud;
	struct grey_state *gs = ck->gs;
	size_t i = ck->i;
	struct module_ctx buf, *ctx;

	gs->ops[i] = NULL;
	if (!r->ok) {
		if (!gs->failed) {
			gs->failed = true;
			snprintf(gs->error, sizeof(gs->error), "%s", r->error);
			snprintf(gs->server, sizeof(gs->server), "%s",
			    r->server ? r->server : "");
		}
	} else {
		gs->res[i] = r->grey;
		gs->remaining[i] = r->remaining;
		gs->elapsed[i] = r->elapsed;
	}
	if (--gs->pending > 0)
		return;
	if ((ctx = module_ctx_lookup(gs->sid, gs->serial, gs->index, &buf))
	    == NULL)
		return;
	gl_decide(ctx, gs);
	gs->decided = true;
	module_resume(gs->sid, gs->serial, gs->index);
}

static void
gl_x_greylist(struct module_ctx *ctx, struct grey_state *gs)
{
	const char *host = scan_macro(ctx, "j");
	char val[256], date[64];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(val, sizeof(val), "delayed %llu seconds by rmilter%s%s; %s",
	    (unsigned long long)(gs->delayed / 1000), host ? " at " : "",
	    host ? host : "", date);
	scan_header_set(ctx, "X-Greylist", val);
}

static enum module_rc
gl_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	const struct conf_greylisting *g = gl_conf(ctx->conf);
	const struct conf_redis *rc = &ctx->conf->sections->redis;
	struct grey_state *gs = *ctx->data;
	bool eom_mode = greylist_eom_mode(ctx->conf);
	enum policy_stage want = eom_mode ? STAGE_EOM :
	    gl_early_stage(ctx->conf);
	struct store_grey_params p = { 0 };
	struct store *store;
	uint8_t addr[16];
	char net[64];
	int fam;
	size_t i;
	uint64_t now;

	if (st == STAGE_EOM && gs != NULL && gs->decided) {
		if (gs->delayed > 0)
			gl_x_greylist(ctx, gs);
		return MODULE_DONE;
	}
	if (st != want)
		return MODULE_DONE;
	if (eom_mode && !ctx->s->msg.pipe->greylist_wanted) {
		module_note(ctx, "not asked for by the spam scanner");
		return MODULE_DONE;
	}
	if (pipeline_authenticated(ctx->s)) {
		ctx->res->skipped = true;
		snprintf(ctx->res->why, sizeof(ctx->res->why),
		    "authenticated sender");
		return MODULE_DONE;
	}
	if ((fam = pipeline_client_ip(ctx->s, addr, NULL)) == 0) {
		module_note(ctx, "client address unknown: not greylisted");
		return MODULE_DONE;
	}
	if (scan_client_skip(ctx, &g->whitelist))
		return MODULE_DONE;
	gs = xcalloc(1, sizeof(*gs));
	*ctx->data = gs;
	store_key_net(fam, addr, g->ipv4_mask, g->ipv6_mask, net, sizeof(net));
	if (!gl_keys(ctx, gs, net, eom_mode))
		return MODULE_DONE;
	/* the client's AWL counter; also the route of every key of the
	 * client, so that they share a redis server */
	gs->awl_key = store_key_make(rc->awl_prefix, net);
	p.timeout = g->timeout;
	p.expire = g->expire;
	p.expire_white = g->expire_white;
	p.awl_hits = g->awl_enable ? g->awl_hits : 0;
	p.awl_ttl = g->awl_ttl;
	p.grey_prefix = rc->grey_prefix;
	p.white_prefix = rc->white_prefix;
	gs->sid = ctx->sid;
	gs->serial = ctx->msg_serial;
	gs->index = ctx->index;
	gs->stage = st;
	gs->pending = gs->nkeys;
	store = store_get(ctx->conf, STORE_GREY);
	now = store_now();
	for (i = 0; i < gs->nkeys; i++) {
		gs->ck[i].gs = gs;
		gs->ck[i].i = i;
		gs->ops[i] = store_greylist(store, gs->keys[i], gs->awl_key, &p,
		    now, gl_key_done, &gs->ck[i]);
	}
	return MODULE_PENDING;
}

static void
gl_msg_free(void *data)
{
	struct grey_state *gs = data;
	size_t i;

	for (i = 0; i < gs->nkeys; i++) {
		if (gs->ops[i] != NULL)
			store_op_cancel(gs->ops[i]);
		free(gs->keys[i]);
	}
	free(gs->awl_key);
	free(gs);
}

const struct module_def module_greylisting = {
	.name = "greylisting",
	.flags = MODULE_F_SKIP_REPLY,
	.configured = gl_configured,
	.shadow = gl_shadow,
	.needs = gl_needs,
	.run = gl_run,
	.msg_free = gl_msg_free,
};
