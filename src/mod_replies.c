/* mod_replies.c -- reply whitelisting: the Message-ID of every message a
 * local sender (authenticated, or from our_networks) sends is remembered in
 * the store (redis servers_id, else the memory store) for id_ttl; incoming
 * mail whose In-Reply-To or References names one of them (any token) is a
 * reply to local mail: greylisting and spam scanning skip it (the virus
 * scan does not).  rmilter 1.x only ever read these records. */
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

#define REPLY_MAX_IDS	32	/* tokens looked up per message */

struct reply_state {
	struct store_op *op;
	uint64_t sid, serial;
	unsigned index;
	char *keys[REPLY_MAX_IDS];
	size_t nkeys;
};

static bool
replies_configured(const struct rmilter_config *conf)
{
	return conf->reply_whitelist ||
	    conf->sections->redis.servers_id.n > 0;
}

static bool
replies_shadow(const struct rmilter_config *conf)
{
	return false;
}

static void
replies_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->stages |= STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOH) |
	    STAGE_BIT(STAGE_EOM);
}

/* Appends the <...> tokens of V to the state's keys. */
static void
collect(struct reply_state *st, const char *prefix, const char *v)
{
	while (v != NULL && st->nkeys < REPLY_MAX_IDS) {
		const char *a = strchr(v, '<'), *b;
		char *id;

		if (a == NULL || (b = strchr(a + 1, '>')) == NULL)
			return;
		if (b - a > 1 && b - a < 1000) {
			id = xstrndup(a + 1, (size_t)(b - a - 1));
			st->keys[st->nkeys++] = store_key_make(prefix, id);
			free(id);
		}
		v = b + 1;
	}
}

static void
replies_found(void *ud, const struct store_result *r)
{
	struct reply_state *st = ud;
	struct module_ctx buf, *ctx;

	st->op = NULL;
	if ((ctx = module_ctx_lookup(st->sid, st->serial, st->index, &buf))
	    == NULL)
		return;
	if (!r->ok) {
		module_set_server(ctx, r->server);
		module_set_error(ctx, r->error);
		module_note(ctx, "reply lookup failed; checks not skipped");
	} else if (r->found) {
		ctx->s->msg.pipe->reply_whitelisted = true;
		module_note(ctx, "reply to local mail: greylisting and spam "
		    "scanning skipped");
	} else {
		module_note(ctx, "not a reply to local mail");
	}
	module_resume(st->sid, st->serial, st->index);
}

static enum module_rc
replies_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	const struct conf_redis *rc = &ctx->conf->sections->redis;
	const struct milter_msg *m = &ctx->s->msg;
	struct reply_state *rs;
	const char *id = NULL;
	unsigned i;

	if (pipeline_authenticated(ctx->s)) {
		char *key;

		/* a local sender: remember its Message-ID at the end */
		if (st != STAGE_EOM || scan_header_count(ctx, "Message-ID",
		    &id) == 0 || id == NULL)
			return MODULE_DONE;
		while (*id == ' ' || *id == '\t' || *id == '<')
			id++;
		key = xstrndup(id, strcspn(id, "> \t\r\n"));
		if (*key != '\0') {
			char *k = store_key_make(rc->id_prefix, key);

			store_id_put(store_get(ctx->conf, STORE_ID), k,
			    rc->id_ttl, NULL, NULL);
			module_note(ctx, "Message-ID of a local sender "
			    "remembered");
			free(k);
		}
		free(key);
		return MODULE_DONE;
	}
	if (st != STAGE_EOH)
		return MODULE_DONE;
	rs = xcalloc(1, sizeof(*rs));
	*ctx->data = rs;
	for (i = 0; i < m->nhdrs; i++)
		if (strcasecmp(m->hdrs[i].name, "In-Reply-To") == 0 ||
		    strcasecmp(m->hdrs[i].name, "References") == 0)
			collect(rs, rc->id_prefix, m->hdrs[i].value);
	if (rs->nkeys == 0)
		return MODULE_DONE;
	rs->sid = ctx->sid;
	rs->serial = ctx->msg_serial;
	rs->index = ctx->index;
	rs->op = store_id_find(store_get(ctx->conf, STORE_ID),
	    (const char *const *)rs->keys, rs->nkeys, replies_found, rs);
	return MODULE_PENDING;
}

static void
replies_msg_free(void *data)
{
	struct reply_state *rs = data;
	size_t i;

	if (rs->op != NULL)
		store_op_cancel(rs->op);
	for (i = 0; i < rs->nkeys; i++)
		free(rs->keys[i]);
	free(rs);
}

const struct module_def module_replies = {
	.name = "replies",
	.flags = 0,
	.configured = replies_configured,
	.shadow = replies_shadow,
	.needs = replies_needs,
	.run = replies_run,
	.msg_free = replies_msg_free,
};
