/* pipeline.c -- the policy core: runs the configured modules stage by stage
 * (possibly asynchronously), combines their decisions into one verdict
 * (refusals as early as possible, per-recipient refusals at RCPT, shadow
 * and noop never applied), expands reply templates, applies EOM edits and
 * emits the decision record. */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "beanstalk.h"
#include "conf.h"
#include "conf_sections.h"
#include "dkim_keys.h"
#include "dns_client.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "record.h"
#include "spool.h"
#include "template.h"
#include "xmalloc.h"

/* Every module, in the default running order. */
static const struct module_def *const all_modules[] = {
	&module_rules,
	&module_replies,
	&module_spf,
	&module_clamav,
	&module_rspamd,
	&module_spamassassin,
	&module_greylisting,
	&module_limits,
	&module_dkim,
	&module_beanstalk,
	&module_test,
};
#define NALL (sizeof(all_modules) / sizeof(all_modules[0]))

static uint64_t msg_serial_next = 1;

const char *
module_action_name(enum module_action a)
{
	switch (a) {
	case MACT_NONE: return "continue";
	case MACT_ACCEPT: return "accept";
	case MACT_REJECT: return "reject";
	case MACT_TEMPFAIL: return "tempfail";
	case MACT_DISCARD: return "discard";
	case MACT_QUARANTINE: return "quarantine";
	}
	return "?";
}

static const struct module_def *
module_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < NALL; i++)
		if (strcasecmp(all_modules[i]->name, name) == 0)
			return all_modules[i];
	return NULL;
}

/* Appends an error about CONF (no line: it concerns a value as a whole). */
static void
diag_error(struct conf_diag *d, const struct rmilter_config *conf,
    const char *msg)
{
	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	memset(&d->v[d->n], 0, sizeof(d->v[d->n]));
	d->v[d->n].level = CONF_DIAG_ERROR;
	d->v[d->n].file = xstrdup(conf->path ? conf->path : "config");
	d->v[d->n].msg = xstrdup(msg);
	d->n++;
	d->nerrors++;
}

/* Redis servers must be IP addresses or unix sockets: hiredis would resolve
 * a host name with a blocking lookup on every connect. */
static void
redis_check_hosts(const struct rmilter_config *conf, struct conf_diag *d)
{
	const struct conf_redis *r = &conf->sections->redis;
	const struct conf_serverlist *lists[] = { &r->servers_grey,
	    &r->servers_white, &r->servers_limits, &r->servers_id };
	static const char *const names[] = { "servers_grey", "servers_white",
	    "servers_limits", "servers_id" };
	uint8_t buf[16];
	char msg[512];
	size_t i, j;

	for (i = 0; i < 4; i++)
		for (j = 0; j < lists[i]->n; j++) {
			const char *h = lists[i]->v[j].host;

			if (h == NULL || strcmp(h, "localhost") == 0 ||
			    inet_pton(AF_INET, h, buf) == 1 ||
			    inet_pton(AF_INET6, h, buf) == 1)
				continue;
			snprintf(msg, sizeof(msg), "redis.%s: '%.64s' is a host "
			    "name; use an IP address or a unix socket path "
			    "(hiredis would resolve it with a blocking lookup)",
			    names[i], lists[i]->v[j].text);
			diag_error(d, conf, msg);
		}
}

void
pipeline_check_config(const struct rmilter_config *conf, struct conf_diag *d)
{
	char msg[512];
	struct stat st;
	size_t i;

	for (i = 0; i < conf->module_order.n; i++) {
		size_t len, k;

		if (module_by_name(conf->module_order.v[i]) != NULL)
			continue;
		len = (size_t)snprintf(msg, sizeof(msg), "module_order: "
		    "unknown module '%.64s' (modules:",
		    conf->module_order.v[i]);
		for (k = 0; k < NALL && len < sizeof(msg); k++)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len,
			    "%s %s", k ? "," : "", all_modules[k]->name);
		if (len < sizeof(msg))
			snprintf(msg + len, sizeof(msg) - len, ")");
		diag_error(d, conf, msg);
	}
	if (conf->tempdir != NULL && (stat(conf->tempdir, &st) < 0 ||
	    !S_ISDIR(st.st_mode))) {
		snprintf(msg, sizeof(msg), "tempdir %.200s is not a directory "
		    "(message spool files go there)", conf->tempdir);
		diag_error(d, conf, msg);
	}
	scan_check_config(conf, d);
	dkim_keys_check_config(conf, d);
	redis_check_hosts(conf, d);
	beanstalk_check_config(conf, d);
	dns_check_config(conf, d);
}

struct rmilter_config *
pipeline_conf_load(const char *path, struct conf_diag *d)
{
	struct rmilter_config *c = conf_load(path, d);
	size_t before = d->nerrors;

	if (c == NULL)
		return NULL;
	pipeline_check_config(c, d);
	if (d->nerrors > before) {
		conf_unref(c);
		return NULL;
	}
	return c;
}

static void
conn_add(struct pipeline_conn *pc, const struct module_def *m,
    const struct rmilter_config *conf)
{
	struct policy_needs n;
	unsigned i;

	for (i = 0; i < pc->nmods; i++)
		if (pc->mods[i] == m)
			return;
	if (pc->nmods == PIPELINE_MAX_MODULES || !m->configured(conf))
		return;
	memset(&n, 0, sizeof(n));
	m->needs(conf, &n);
	pc->mods[pc->nmods] = m;
	pc->shadow[pc->nmods] = conf->noop || (m->shadow && m->shadow(conf));
	pc->stages[pc->nmods] = n.stages | STAGE_BIT(STAGE_EOM);
	if (n.spool)
		pc->needs_spool = true;
	pc->nmods++;
}

static void
conn_build(struct pipeline_conn *pc, const struct rmilter_config *conf)
{
	size_t i;
	const struct module_def *m;

	memset(pc, 0, sizeof(*pc));
	for (i = 0; i < conf->module_order.n; i++)
		if ((m = module_by_name(conf->module_order.v[i])) != NULL)
			conn_add(pc, m, conf);
	for (i = 0; i < NALL; i++)
		conn_add(pc, all_modules[i], conf);
}

/* ---- the policy seam used by the engine ------------------------------------ */

static const char *const base_macros[SMFIM_COUNT] = {
	[SMFIM_CONNECT] = "j {daemon_name} {daemon_addr} {client_addr} "
	    "{client_name} {client_port} _",
	[SMFIM_HELO] = "{tls_version} {cipher} {cipher_bits} {client_addr}",
	[SMFIM_ENVFROM] = "i {auth_type} {auth_authen} {auth_author} "
	    "{mail_addr} {client_addr}",
	[SMFIM_ENVRCPT] = "i {rcpt_addr} {rcpt_mailer} {rcpt_host}",
	[SMFIM_DATA] = "i",
	[SMFIM_EOM] = "i {msg_id}",
	[SMFIM_EOH] = "i",
};

static void
needs_build(const struct rmilter_config *conf,
    const struct pipeline_conn *pc, struct policy_needs *needs)
{
	uint64_t limit = 0;
	bool body_all = false;
	unsigned i;

	memset(needs, 0, sizeof(*needs));
	memcpy(needs->macros, base_macros, sizeof(base_macros));
	/* the engine records the envelope of every message */
	needs->stages = STAGE_BIT(STAGE_CONNECT) | STAGE_BIT(STAGE_HELO) |
	    STAGE_BIT(STAGE_MAIL) | STAGE_BIT(STAGE_RCPT);
	needs->replies = STAGE_BIT(STAGE_EOM);
	for (i = 0; i < pc->nmods; i++) {
		struct policy_needs one;

		memset(&one, 0, sizeof(one));
		pc->mods[i]->needs(conf, &one);
		needs->stages |= one.stages;
		needs->replies |= one.replies;
		needs->actions |= one.actions;
		/* the body is cut only if every module reading it allows it */
		if (one.stages & STAGE_BIT(STAGE_BODY)) {
			if (one.body_limit == 0)
				body_all = true;
			else if (one.body_limit > limit)
				limit = one.body_limit;
		}
	}
	needs->body_limit = body_all ? 0 : limit;
	if (pc->needs_spool)
		needs->stages |= STAGE_BIT(STAGE_HEADER) |
		    STAGE_BIT(STAGE_EOH) | STAGE_BIT(STAGE_BODY);
	/* every module may refuse a recipient it saw */
	if (conf->audit_log != NULL)
		needs->stages |= STAGE_BIT(STAGE_HEADER); /* subject, msg-id */
}

/* What every session of a config derives from it, computed once: a config
 * never changes after loading. */
struct pipeline_cache {
	struct pipeline_conn pc;
	struct policy_needs needs;
};

static const struct pipeline_cache *
cache_get(const struct rmilter_config *conf)
{
	struct rmilter_config *c = (struct rmilter_config *)conf;
	struct pipeline_cache *pc = c->pipeline_cache;

	if (pc == NULL) {
		pc = xcalloc(1, sizeof(*pc));
		conn_build(&pc->pc, conf);
		needs_build(conf, &pc->pc, &pc->needs);
		c->pipeline_cache = pc;
	}
	return pc;
}

void
pipeline_conn_init(struct pipeline_conn *pc, const struct rmilter_config *conf)
{
	*pc = cache_get(conf)->pc;
}

void
policy_needs_get(const struct rmilter_config *conf, struct policy_needs *needs)
{
	*needs = cache_get(conf)->needs;
}

/* ---- client facts -------------------------------------------------------------- */

int
pipeline_client_ip(const struct milter_session *s, uint8_t addr[16],
    const char **text)
{
	const char *a = NULL;

	if ((s->family == '4' || s->family == '6') && s->addr != NULL &&
	    *s->addr != '\0')
		a = s->addr;
	else
		a = milter_session_macro(s, "{client_addr}");
	if (text != NULL)
		*text = a ? a : "";
	if (a == NULL || *a == '\0')
		return 0;
	if (a[0] == '[') {	/* "[1.2.3.4]" or "[IPv6:...]" forms */
		char tmp[64];
		const char *p = a + 1;

		if (strncasecmp(p, "IPv6:", 5) == 0)
			p += 5;
		snprintf(tmp, sizeof(tmp), "%s", p);
		tmp[strcspn(tmp, "]")] = '\0';
		if (inet_pton(AF_INET, tmp, addr) == 1)
			return AF_INET;
		return inet_pton(AF_INET6, tmp, addr) == 1 ? AF_INET6 : 0;
	}
	if (strncasecmp(a, "IPv6:", 5) == 0)
		a += 5;
	if (inet_pton(AF_INET, a, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, a, addr) == 1)
		return AF_INET6;
	return 0;
}

bool
pipeline_authenticated(struct milter_session *s)
{
	struct pipeline_msg *p = s->msg.pipe;
	const char *auth = milter_session_macro(s, "{auth_authen}");
	uint8_t addr[16];
	int fam;

	if (p != NULL && p->auth_known)
		return p->authenticated;
	if (auth != NULL && *auth != '\0')
		fam = 1;
	else if ((fam = pipeline_client_ip(s, addr, NULL)) != 0)
		fam = conf_netlist_match(&s->conf->our_networks, fam, addr);
	if (p != NULL) {
		p->auth_known = true;
		p->authenticated = fam != 0;
	}
	return fam != 0;
}

bool
pipeline_whitelisted(struct milter_session *s)
{
	struct pipeline_msg *p = s->msg.pipe;
	bool all = s->msg.nrcpts > 0 && s->conf->whitelist.n > 0;
	unsigned i;

	if (p != NULL && p->wl_known)
		return p->whitelisted;
	for (i = 0; all && i < s->msg.nrcpts; i++)
		if (!conf_rcptlist_match(&s->conf->whitelist,
		    s->msg.rcpts[i].addr))
			all = false;
	if (p != NULL && s->phase >= PH_DATA) {	/* recipients complete */
		p->wl_known = true;
		p->whitelisted = all;
	}
	return all;
}

/* ---- per-message state ------------------------------------------------------- */

static struct pipeline_msg *
msg_state(struct milter_session *s)
{
	struct pipeline_msg *p = s->msg.pipe;

	if (p == NULL) {
		unsigned n = s->pipe.nmods;

		/* one allocation: the state, then a result and a data slot
		 * per configured module */
		p = xcalloc(1, sizeof(*p) + n * (sizeof(*p->res) +
		    sizeof(*p->data)));
		p->res = (struct module_result *)(p + 1);
		p->data = (void **)(p->res + n);
		p->serial = msg_serial_next++;
		p->pending = -1;
		p->decided_by = -1;
		p->rcpt_by = -1;
		s->msg.pipe = p;
	}
	return p;
}

static void
edits_free(struct module_edit *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
}

static void ctx_fill(struct module_ctx *ctx, struct milter_session *s,
    unsigned i);

static void
msg_state_free(struct milter_session *s)
{
	struct pipeline_msg *p = s->msg.pipe;
	struct module_ctx ctx;
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; i < s->pipe.nmods; i++)
		if (p->data[i] != NULL && s->pipe.mods[i]->msg_end != NULL) {
			ctx_fill(&ctx, s, i);
			s->pipe.mods[i]->msg_end(&ctx, p->delivered);
		}
	for (i = 0; i < s->pipe.nmods; i++) {
		if (p->data[i] != NULL && s->pipe.mods[i]->msg_free != NULL)
			s->pipe.mods[i]->msg_free(p->data[i]);
		free(p->res[i].text);
		edits_free(p->res[i].edits, p->res[i].nedits);
	}
	spool_free(p->spool);
	free(p->reply_sent);
	free(p->applied);	/* names/values are owned by res[].edits */
	free(p);
	s->msg.pipe = NULL;
}

struct spool *
pipeline_spool(struct milter_session *s)
{
	struct pipeline_msg *p = msg_state(s);

	if (p->spool_failed || !s->pipe.needs_spool)
		return NULL;
	if (p->spool == NULL) {
		const char *dir = s->conf->tempdir ? s->conf->tempdir :
		    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

		p->spool = spool_new(dir, s->conf->tempfiles_mode,
		    s->conf->spool_memory_limit);
	}
	return p->spool;
}

bool
pipeline_spool_body(struct milter_session *s, uint64_t *off)
{
	struct pipeline_msg *p = s->msg.pipe;

	if (p == NULL || p->spool == NULL || p->spool_failed ||
	    !p->body_off_known)
		return false;
	*off = p->body_off;
	return true;
}

/* Adds to the spool what the message looks like as delivered. */
static void
spool_feed(struct milter_session *s, enum policy_stage st,
    const struct module_event *ev)
{
	struct pipeline_msg *p = s->msg.pipe;
	struct spool *sp;
	char err[256];
	int rc = 0;

	if (!s->pipe.needs_spool || p->spool_failed ||
	    (sp = pipeline_spool(s)) == NULL)
		return;
	if (st == STAGE_HEADER && ev->hdr_name != NULL) {
		const char *v = ev->hdr_value ? ev->hdr_value : "", *nl;

		rc |= spool_append(sp, ev->hdr_name, strlen(ev->hdr_name), err,
		    sizeof(err));
		/* the separator as written ("Name:value" stays so) */
		rc |= spool_append(sp, ": ", ev->hdr_nosp ? 1 : 2, err,
		    sizeof(err));
		/* folded values arrive with bare LF: deliver CRLF */
		while (rc == 0 && (nl = strchr(v, '\n')) != NULL) {
			size_t l = (size_t)(nl - v);

			if (l > 0 && v[l - 1] == '\r')
				l--;
			rc |= spool_append(sp, v, l, err, sizeof(err));
			rc |= spool_append(sp, "\r\n", 2, err, sizeof(err));
			v = nl + 1;
		}
		rc |= spool_append(sp, v, strlen(v), err, sizeof(err));
		rc |= spool_append(sp, "\r\n", 2, err, sizeof(err));
	} else if (st == STAGE_EOH) {
		rc = spool_append(sp, "\r\n", 2, err, sizeof(err));
		p->body_off = spool_size(sp);
		p->body_off_known = true;
	} else if (st == STAGE_BODY && ev->body_len > 0) {
		rc = spool_append(sp, ev->body, ev->body_len, err, sizeof(err));
	}
	if (rc != 0) {
		log_error("%s %s; the message will be tempfailed", s->sid, err);
		p->spool_failed = true;
		if (p->final == MACT_NONE) {
			p->final = MACT_TEMPFAIL;
			p->decided_stage = st;
		}
	}
}

/* ---- decisions ---------------------------------------------------------------- */

static void
module_result_reason(char *dst, size_t len, const char *fmt, va_list ap)
{
	if (fmt == NULL) {
		dst[0] = '\0';
		return;
	}
	vsnprintf(dst, len, fmt, ap);
}

/* "DDD X.Y.Z text" at the start of TEXT sets the code; returns the rest. */
static const char *
split_code(const char *text, char code[4], char xcode[12])
{
	size_t xl;

	code[0] = xcode[0] = '\0';
	if (text == NULL || strlen(text) < 4 || (text[0] != '4' &&
	    text[0] != '5') || text[1] < '0' || text[1] > '9' ||
	    text[2] < '0' || text[2] > '9' || text[3] != ' ')
		return text;
	memcpy(code, text, 3);
	code[3] = '\0';
	text += 4;
	xl = strcspn(text, " ");
	if (xl > 0 && xl < 12 && text[0] == code[0] && text[1] == '.') {
		memcpy(xcode, text, xl);
		xcode[xl] = '\0';
		text += xl;
		while (*text == ' ')
			text++;
	}
	return text;
}

void
module_decide(struct module_ctx *ctx, enum module_action a, const char *text,
    const char *reason_fmt, ...)
{
	struct pipeline_msg *p = ctx->s->msg.pipe;
	struct module_result *r = ctx->res;
	enum policy_stage st = p->pending >= 0 ? p->pending_stage :
	    ctx->s->msg.cur_stage;
	bool per_rcpt = st == STAGE_RCPT &&
	    (a == MACT_REJECT || a == MACT_TEMPFAIL);
	char reason[160];
	va_list ap;

	if (a == MACT_NONE)
		return;
	va_start(ap, reason_fmt);
	module_result_reason(reason, sizeof(reason), reason_fmt, ap);
	va_end(ap);
	if (ctx->shadow) {
		if (r->shadow_action == MACT_NONE) {
			r->shadow_action = a;
			r->shadow_stage = st;
			snprintf(r->shadow_reason, sizeof(r->shadow_reason),
			    "%s%s", reason, per_rcpt ? " (recipient)" : "");
		}
		return;
	}
	if (per_rcpt) {
		r->rcpt_refused++;
		if (p->rcpt_action == MACT_NONE) {
			p->rcpt_action = a;
			p->rcpt_by = (int)ctx->index;
			free(r->text);
			r->text = text ? xstrdup(text) : NULL;
			snprintf(r->reason, sizeof(r->reason), "%s", reason);
			r->stage = st;
		}
		return;
	}
	if (r->action != MACT_NONE)
		return;		/* a module's first decision stands */
	r->action = a;
	r->stage = st;
	free(r->text);
	r->text = text ? xstrdup(text) : NULL;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	if (p->final == MACT_NONE && !p->accepted) {
		p->final = a;
		p->decided_by = (int)ctx->index;
		p->decided_stage = st;
	}
}

void
module_note(struct module_ctx *ctx, const char *fmt, ...)
{
	struct module_result *r = ctx->res;
	va_list ap;

	if (r->action != MACT_NONE)
		return;
	va_start(ap, fmt);
	module_result_reason(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

void
module_set_server(struct module_ctx *ctx, const char *server)
{
	snprintf(ctx->res->server, sizeof(ctx->res->server), "%s",
	    server != NULL ? server : "");
}

void
module_set_error(struct module_ctx *ctx, const char *error)
{
	snprintf(ctx->res->error, sizeof(ctx->res->error), "%s",
	    error != NULL ? error : "");
}

void
module_decide_shadow(struct module_ctx *ctx, enum module_action a,
    const char *reason_fmt, ...)
{
	struct module_result *r = ctx->res;
	struct pipeline_msg *p = ctx->s->msg.pipe;
	va_list ap;

	if (a == MACT_NONE || r->shadow_action != MACT_NONE)
		return;
	r->shadow_action = a;
	r->shadow_stage = p->pending >= 0 ? p->pending_stage :
	    ctx->s->msg.cur_stage;
	va_start(ap, reason_fmt);
	module_result_reason(r->shadow_reason, sizeof(r->shadow_reason),
	    reason_fmt, ap);
	va_end(ap);
}

void
module_set_score(struct module_ctx *ctx, double score)
{
	ctx->res->score = score;
	ctx->res->has_score = true;
}

static void
edit_push(struct module_ctx *ctx, enum module_edit_op op, uint32_t idx,
    const char *name, const char *value)
{
	struct module_result *r = ctx->res;
	struct module_edit *e;

	r->edits = xrealloc(r->edits, (r->nedits + 1) * sizeof(*r->edits));
	e = &r->edits[r->nedits++];
	e->op = op;
	e->index = idx;
	e->name = xstrdup(name);
	e->value = value ? xstrdup(value) : NULL;
}

void
module_edit_add(struct module_ctx *ctx, const char *name, const char *value)
{
	edit_push(ctx, EDIT_ADD, 0, name, value);
}

void
module_edit_insert(struct module_ctx *ctx, uint32_t index, const char *name,
    const char *value)
{
	edit_push(ctx, EDIT_INSERT, index, name, value);
}

void
module_edit_change(struct module_ctx *ctx, const char *name, uint32_t index,
    const char *value)
{
	edit_push(ctx, EDIT_CHANGE, index, name, value);
}

void
module_edit_delete(struct module_ctx *ctx, const char *name, uint32_t index)
{
	edit_push(ctx, EDIT_DELETE, index, name, NULL);
}

/* ---- the stage loop --------------------------------------------------------------- */

static void
ctx_fill(struct module_ctx *ctx, struct milter_session *s, unsigned i)
{
	struct pipeline_msg *p = s->msg.pipe;

	ctx->s = s;
	ctx->conf = s->conf;
	ctx->res = &p->res[i];
	ctx->data = &p->data[i];
	ctx->sid = s->id;
	ctx->msg_serial = p->serial;
	ctx->index = i;
	ctx->shadow = s->pipe.shadow[i];
}

static double
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0;
}

/* Should module I run for this message at all? */
static bool
module_applies(struct milter_session *s, unsigned i, enum policy_stage st)
{
	struct pipeline_msg *p = s->msg.pipe;
	const struct module_def *m = s->pipe.mods[i];
	struct module_result *r = &p->res[i];

	if (!(s->pipe.stages[i] & STAGE_BIT(st)) || r->skipped)
		return false;
	if (p->accepted && (int)i != p->decided_by &&
	    !(m->flags & MODULE_F_AFTER_ACCEPT)) {
		snprintf(r->why, sizeof(r->why), "message accepted");
		r->skipped = !r->ran;
		return false;
	}
	if ((m->flags & MODULE_F_SKIP_AUTH) && !s->conf->strict_auth &&
	    pipeline_authenticated(s)) {
		r->skipped = true;
		snprintf(r->why, sizeof(r->why), "authenticated sender");
		return false;
	}
	if ((m->flags & MODULE_F_SKIP_REPLY) && p->reply_whitelisted) {
		r->skipped = true;
		snprintf(r->why, sizeof(r->why), "reply to local mail");
		return false;
	}
	if ((m->flags & MODULE_F_CONTENT) && st >= STAGE_DATA &&
	    pipeline_whitelisted(s)) {
		r->skipped = true;
		snprintf(r->why, sizeof(r->why), "all recipients whitelisted");
		return false;
	}
	if ((m->flags & MODULE_F_CONTENT) && st == STAGE_EOM &&
	    s->conf->max_size > 0 &&
	    s->msg.hdr_bytes + s->msg.body_bytes > s->conf->max_size) {
		r->skipped = true;
		snprintf(r->why, sizeof(r->why), "over max_size");
		return false;
	}
	return true;
}

static bool
refused(enum module_action a)
{
	return a == MACT_REJECT || a == MACT_TEMPFAIL || a == MACT_DISCARD;
}

static enum policy_action stage_verdict(struct milter_session *s,
    enum policy_stage st, struct policy_verdict *v);

/* Runs the modules from p->next on; PENDING if one answers later. */
static enum policy_action
stage_loop(struct milter_session *s, enum policy_stage st,
    const struct module_event *ev, struct policy_verdict *v)
{
	struct pipeline_msg *p = s->msg.pipe;
	struct module_ctx ctx;
	unsigned i;

	for (i = p->next; i < s->pipe.nmods; i++) {
		enum module_rc rc;
		double t0;

		if (refused(p->final))
			break;		/* decided: nothing else to ask */
		if (!module_applies(s, i, st))
			continue;
		ctx_fill(&ctx, s, i);
		p->res[i].ran = true;
		t0 = now_ms();
		rc = s->pipe.mods[i]->run(&ctx, st, ev);
		p->res[i].ms += now_ms() - t0;
		if (rc == MODULE_PENDING) {
			p->pending = (int)i;
			p->pending_stage = st;
			p->pending_ev = *ev;
			/* stage data does not survive the async hop */
			p->pending_ev.hdr_name = p->pending_ev.hdr_value = NULL;
			p->pending_ev.body = NULL;
			p->pending_ev.body_len = 0;
			p->next = i + 1;
			v->action = POLICY_PENDING;
			return POLICY_PENDING;
		}
	}
	p->next = 0;
	return stage_verdict(s, st, v);
}

/* A message's module state starts empty, but modules decide on the
 * connection too (a connect or helo rule combined with a header rule): the
 * CONNECT and HELO stages are replayed, without replies, into the state of
 * every message that did not see them. */
static void
replay_connection(struct milter_session *s, struct pipeline_msg *p)
{
	static const struct module_event none;
	struct policy_verdict v = { POLICY_CONTINUE, NULL, "" };

	if (!p->saw_connect && s->hostname != NULL) {
		p->saw_connect = true;
		s->msg.cur_stage = STAGE_CONNECT;
		p->next = 0;
		if (stage_loop(s, STAGE_CONNECT, &none, &v) == POLICY_PENDING)
			p->pending = -1;	/* replays are synchronous */
		policy_verdict_clear(&v);
	}
	if (!p->saw_helo && s->helo != NULL) {
		p->saw_helo = true;
		s->msg.cur_stage = STAGE_HELO;
		p->next = 0;
		if (stage_loop(s, STAGE_HELO, &none, &v) == POLICY_PENDING)
			p->pending = -1;
		policy_verdict_clear(&v);
	}
}

enum policy_action
pipeline_run(struct milter_session *s, enum policy_stage st,
    const struct module_event *ev, struct policy_verdict *v)
{
	struct pipeline_msg *p;

	v->action = POLICY_CONTINUE;
	v->reply = NULL;
	v->reason[0] = '\0';
	if (s->pipe.nmods == 0 && st != STAGE_EOM)
		return POLICY_CONTINUE;
	p = msg_state(s);
	if (st == STAGE_CONNECT)
		p->saw_connect = true;
	else if (st == STAGE_HELO)
		p->saw_helo = true;
	else if (st != STAGE_UNKNOWN)
		replay_connection(s, p);
	s->msg.cur_stage = st;
	spool_feed(s, st, ev);
	p->next = 0;
	return stage_loop(s, st, ev, v);
}

struct module_ctx *
module_ctx_lookup(uint64_t sid, uint64_t serial, unsigned index,
    struct module_ctx *buf)
{
	struct milter_session *s = milter_session_lookup(sid);

	if (s == NULL || s->msg.pipe == NULL || s->msg.pipe->serial != serial ||
	    index >= s->pipe.nmods)
		return NULL;
	ctx_fill(buf, s, index);
	return buf;
}

void
module_resume(uint64_t sid, uint64_t serial, unsigned index)
{
	struct milter_session *s = milter_session_lookup(sid);
	struct policy_verdict v = { POLICY_CONTINUE, NULL, "" };
	struct pipeline_msg *p;
	struct module_event ev;

	if (s == NULL || (p = s->msg.pipe) == NULL || p->serial != serial ||
	    p->pending != (int)index)
		return;		/* the session or the message is gone */
	p->pending = -1;
	ev = p->pending_ev;
	s->msg.cur_stage = p->pending_stage;
	if (stage_loop(s, p->pending_stage, &ev, &v) == POLICY_PENDING)
		return;
	milter_session_resume(s, &v);
}

/* ---- verdicts ------------------------------------------------------------------------ */

static void
reply_build(struct milter_session *s, int by, enum module_action a,
    struct policy_verdict *v)
{
	const struct module_result *r = by >= 0 ? &s->msg.pipe->res[by] : NULL;
	struct template_vars tv;
	char code[4], xcode[12], text[1024], out[4096];
	const char *tmpl, *rcpt = NULL, *q = milter_session_macro(s, "i");
	const char *ip;

	memset(&tv, 0, sizeof(tv));
	pipeline_client_ip(s, (uint8_t[16]){ 0 }, &ip);
	if (s->msg.nrcpts > 0)
		rcpt = s->msg.rcpts[s->msg.nrcpts - 1].addr;
	tv.queue_id = q ? q : "NOQUEUE";
	tv.from = s->msg.from;
	tv.rcpt = rcpt;
	tv.ip = ip;
	tv.helo = s->helo;
	tv.module = by >= 0 ? s->pipe.mods[by]->name : "rmilter";
	tv.reason = r && r->reason[0] ? r->reason : "policy";
	if (r != NULL && r->has_score) {
		tv.score = r->score;
		tv.has_score = true;
	}
	tmpl = split_code(r ? r->text : NULL, code, xcode);
	if (tmpl == NULL || *tmpl == '\0')
		tmpl = a == MACT_REJECT ? s->conf->reject_message :
		    s->conf->tempfail_message;
	if (tmpl == NULL)
		tmpl = a == MACT_REJECT ? "Rejected by policy; queue id "
		    "${queue_id}" : "Try again later; queue id ${queue_id}";
	if (code[0] == '\0' || (code[0] == '5') != (a == MACT_REJECT)) {
		snprintf(code, sizeof(code), "%s",
		    a == MACT_REJECT ? "550" : "451");
		snprintf(xcode, sizeof(xcode), "%s",
		    a == MACT_REJECT ? "5.7.1" : "4.7.1");
	}
	/* each line of a multi-line text is expanded on its own */
	{
		size_t off = 0;
		const char *line = tmpl, *nl;

		off = (size_t)snprintf(out, sizeof(out), "%s %s%s", code,
		    xcode, xcode[0] ? " " : "");
		for (;;) {
			char one[1024];
			size_t l;

			nl = strchr(line, '\n');
			l = nl ? (size_t)(nl - line) : strlen(line);
			if (l > 0 && line[l - 1] == '\r')
				l--;	/* CRLF line ends */
			if (l >= sizeof(one))
				l = sizeof(one) - 1;
			memcpy(one, line, l);
			one[l] = '\0';
			template_expand(one, &tv, text, sizeof(text));
			off += (size_t)snprintf(out + off, sizeof(out) - off,
			    "%s%s", text, nl ? "\n" : "");
			if (nl == NULL || off >= sizeof(out) - 1)
				break;
			line = nl + 1;
		}
	}
	v->reply = xstrdup(out);
}

static enum policy_action
action_to_policy(enum module_action a)
{
	switch (a) {
	case MACT_REJECT: return POLICY_REJECT;
	case MACT_TEMPFAIL: return POLICY_TEMPFAIL;
	case MACT_DISCARD: return POLICY_DISCARD;
	case MACT_ACCEPT: return POLICY_ACCEPT;
	default: return POLICY_CONTINUE;
	}
}

/* Applies the queued edits of every enforce module, in module order. */
static void
apply_edits(struct milter_session *s)
{
	struct pipeline_msg *p = s->msg.pipe;
	unsigned i;
	size_t k;

	for (i = 0; i < s->pipe.nmods; i++) {
		struct module_result *r = &p->res[i];

		if (s->pipe.shadow[i])
			continue;
		for (k = 0; k < r->nedits; k++) {
			struct module_edit *e = &r->edits[k];
			int rc = -1;

			switch (e->op) {
			case EDIT_ADD:
				rc = milter_session_add_header(s, e->name,
				    e->value);
				break;
			case EDIT_INSERT:
				rc = milter_session_ins_header(s, e->index,
				    e->name, e->value);
				break;
			case EDIT_CHANGE:
				rc = milter_session_chg_header(s, e->name,
				    e->index, e->value);
				break;
			case EDIT_DELETE:
				rc = milter_session_chg_header(s, e->name,
				    e->index, "");
				break;
			}
			if (rc == 0) {
				p->applied = xrealloc(p->applied,
				    (p->napplied + 1) * sizeof(*p->applied));
				p->applied[p->napplied++] = *e;
			}
		}
	}
}

static enum policy_action
stage_verdict(struct milter_session *s, enum policy_stage st,
    struct policy_verdict *v)
{
	struct pipeline_msg *p = s->msg.pipe;

	if (st == STAGE_RCPT && p->rcpt_action != MACT_NONE) {
		reply_build(s, p->rcpt_by, p->rcpt_action, v);
		v->action = action_to_policy(p->rcpt_action);
		snprintf(v->reason, sizeof(v->reason), "%s",
		    s->pipe.mods[p->rcpt_by]->name);
		p->rcpt_action = MACT_NONE;
		return v->action;
	}
	if (refused(p->final) && p->final_given && st != STAGE_EOM)
		return v->action;	/* already handed out: continue */
	switch (p->final) {
	case MACT_REJECT:
	case MACT_TEMPFAIL:
		reply_build(s, p->decided_by, p->final, v);
		v->action = action_to_policy(p->final);
		p->final_given = true;
		break;
	case MACT_DISCARD:
		v->action = st <= STAGE_HELO ? POLICY_CONTINUE :
		    POLICY_DISCARD;
		p->final_given = v->action == POLICY_DISCARD;
		break;
	case MACT_ACCEPT:
		p->accepted = true;
		v->action = st == STAGE_EOM ? POLICY_ACCEPT : POLICY_CONTINUE;
		break;
	case MACT_QUARANTINE:
	case MACT_NONE:
		v->action = POLICY_CONTINUE;
		break;
	}
	if (p->decided_by >= 0)
		snprintf(v->reason, sizeof(v->reason), "%s",
		    s->pipe.mods[p->decided_by]->name);
	if (st == STAGE_EOM && !refused(p->final)) {
		if (p->final == MACT_QUARANTINE && p->decided_by >= 0) {
			const struct module_result *r =
			    &p->res[p->decided_by];

			milter_session_quarantine(s, r->text && *r->text ?
			    r->text : r->reason);
		}
		apply_edits(s);
	}
	return v->action;
}

/* ---- the record ------------------------------------------------------------------------ */

const char *
pipeline_header_value(const struct milter_session *s, const char *name)
{
	unsigned i;

	for (i = 0; i < s->msg.nhdrs; i++)
		if (strcasecmp(s->msg.hdrs[i].name, name) == 0)
			return s->msg.hdrs[i].value;
	return NULL;
}

void
pipeline_msg_end(struct milter_session *s, const char *final,
    const struct policy_verdict *v, enum policy_stage stage)
{
	struct pipeline_msg *p = msg_state(s);
	struct record_module mods[PIPELINE_MAX_MODULES];
	struct decision_record rec;
	const char *rcpts[256], *ip, *q;
	unsigned i, refused_rcpts = 0;
	struct timeval tv;

	if (p->recorded) {
		msg_state_free(s);
		return;
	}
	p->recorded = true;
	if (p->final == MACT_QUARANTINE && strcmp(final, "continue") == 0)
		final = "quarantine";
	p->delivered = stage == STAGE_EOM && (strcmp(final, "continue") == 0 ||
	    strcmp(final, "accept") == 0 || strcmp(final, "quarantine") == 0);
	memset(&rec, 0, sizeof(rec));
	gettimeofday(&tv, NULL);
	rec.sid = s->sid;
	rec.generation = s->conf->generation;
	rec.ts = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	{
		/* from MAIL, or from the connection for earlier decisions */
		const struct timeval *t0 = s->msg.start.tv_sec != 0 ?
		    &s->msg.start : &s->accepted;

		rec.ms = (double)(tv.tv_sec - t0->tv_sec) * 1000.0 +
		    (double)(tv.tv_usec - t0->tv_usec) / 1000.0;
	}
	q = milter_session_macro(s, "i");
	rec.queue_id = q && *q ? q : "NOQUEUE";
	pipeline_client_ip(s, (uint8_t[16]){ 0 }, &ip);
	rec.client_addr = ip;
	rec.client_host = s->hostname ? s->hostname : "unknown";
	rec.helo = s->helo ? s->helo : "";
	rec.from = s->msg.from ? s->msg.from : "";
	for (i = 0; i < s->msg.nrcpts && i < 256; i++)
		rcpts[i] = s->msg.rcpts[i].addr;
	rec.rcpts = rcpts;
	rec.nrcpts = i;
	rec.auth_user = milter_session_macro(s, "{auth_authen}");
	rec.authenticated = pipeline_authenticated(s);
	rec.whitelisted = pipeline_whitelisted(s);
	rec.size = s->msg.hdr_bytes + s->msg.body_bytes;
	rec.message_id = pipeline_header_value(s, "Message-Id");
	rec.subject = pipeline_header_value(s, "Subject");
	rec.action = final;
	/* where the deciding module decided (a HELO accept shows "helo") */
	rec.stage = policy_stage_name(p->decided_by >= 0 ? p->decided_stage :
	    stage);
	rec.reply = v != NULL ? v->reply : NULL;
	rec.decided_by = p->decided_by >= 0 ?
	    s->pipe.mods[p->decided_by]->name : NULL;
	rec.noop = s->conf->noop;
	for (i = 0; i < s->pipe.nmods; i++) {
		mods[i].name = s->pipe.mods[i]->name;
		mods[i].res = &p->res[i];
		p->res[i].shadow = s->pipe.shadow[i];
		refused_rcpts += p->res[i].rcpt_refused;
	}
	rec.rcpts_refused = refused_rcpts;
	rec.modules = mods;
	rec.nmodules = s->pipe.nmods;
	rec.edits = p->applied;
	rec.nedits = p->napplied;
	record_emit(s->conf, &rec);
	/* refused before EOM: keep the (recorded) state until the message
	 * really ends, so late events neither rerun modules nor re-record */
	if (stage == STAGE_EOM || !s->msg.active)
		msg_state_free(s);
}

void
pipeline_msg_abort(struct milter_session *s)
{
	struct pipeline_msg *p = s->msg.pipe;
	bool decided = false;
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; i < s->pipe.nmods && !decided; i++)
		decided = p->res[i].action != MACT_NONE ||
		    p->res[i].shadow_action != MACT_NONE ||
		    p->res[i].rcpt_refused > 0;
	if (decided && !p->recorded && s->msg.active)
		pipeline_msg_end(s, "aborted", NULL, s->msg.cur_stage);
	msg_state_free(s);	/* the message is gone, whatever was recorded */
}
