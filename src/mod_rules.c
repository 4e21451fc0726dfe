/* mod_rules.c -- the rule { } sections of rmilter 1.6 as a pipeline module:
 * PCRE2 conditions on the connection, HELO, envelope, headers and body
 * lines, combined per rule (every condition of the rule must hold), the
 * first firing rule in config order wins, each rule decided at the earliest
 * stage where all of its conditions are known.
 *
 * Evaluation is incremental: per message every condition is matched at
 * most once (a header or body condition is matched until it is known), and
 * a rule with a false condition is dead for the rest of the message, so its
 * other conditions are never matched.
 *
 * When "first" is ambiguous -- an earlier rule is still undecided while a
 * later one fires at an earlier stage (a helo rule listed after a header
 * rule) -- the rule that fires at the earlier stage decides: a refusal is
 * sent as soon as it is known. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "module.h"
#include "pipeline.h"
#include "xmalloc.h"

/* Body lines longer than this are matched in pieces of this size. */
#define RULES_LINE_MAX	65536

/* A condition's state for the current message (negation applied). */
enum { C_UNKNOWN = 0, C_TRUE, C_FALSE };

/* rule_state.flags */
#define R_DEAD		0x01	/* a condition is false: cannot fire */
#define R_FIRED		0x02	/* a shadow rule fired (noted once) */
#define R_SKIP		0x04	/* disabled */
#define R_RCPT		0x08	/* decided per recipient at RCPT */

/* rule_state.kinds: which condition kinds the rule has */
#define K_BIT(k)	(1u << (k))

struct rule_state {
	uint8_t flags;
	uint8_t last;		/* enum policy_stage where it is decided */
	uint8_t kinds;		/* K_BIT(CONF_COND_*) */
	uint32_t coff;		/* its conditions in rules_msg.c[] */
};

/* Per-message state (*ctx->data). */
struct rules_msg {
	const struct conf_sections *sec;	/* the rules it was built for */
	size_t nrules;
	struct rule_state *r;
	uint8_t *c;		/* C_* per condition, rules in order */
	bool decided;		/* an enforce message decision was made */
	bool saw_helo;		/* built before or at a HELO */
	bool rcpt_done;		/* aggregated envrcpt conditions evaluated */
	bool hdr_done;		/* header conditions final */
	bool body_done;		/* body conditions final */
	bool err_logged;	/* a PCRE2 match error was logged */
	pcre2_match_data *md;
	uint8_t *carry;		/* a body line split across chunks */
	size_t carry_len, carry_cap;
};

/* ---- configuration ------------------------------------------------------- */

static const struct conf_rule *
rules_of(const struct rmilter_config *conf, size_t *n)
{
	if (conf->sections == NULL) {
		*n = 0;
		return NULL;
	}
	*n = conf->sections->nrules;
	return conf->sections->rules;
}

static enum policy_stage
cond_stage(enum conf_rule_cond_kind k)
{
	switch (k) {
	case CONF_COND_CONNECT: return STAGE_CONNECT;
	case CONF_COND_HELO: return STAGE_HELO;
	case CONF_COND_ENVFROM: return STAGE_MAIL;
	case CONF_COND_ENVRCPT: return STAGE_RCPT;
	case CONF_COND_HEADER: return STAGE_EOH;
	case CONF_COND_BODY: return STAGE_EOM;
	}
	return STAGE_EOM;
}

/* The stage where all of R's conditions are known. */
static enum policy_stage
rule_last_stage(const struct conf_rule *r)
{
	enum policy_stage last = STAGE_CONNECT, st;
	size_t i;

	for (i = 0; i < r->nconds; i++)
		if ((st = cond_stage(r->conds[i].kind)) > last)
			last = st;
	return last;
}

static enum module_action
rule_action(const struct conf_rule *r)
{
	switch (r->action) {
	case CONF_RULE_ACCEPT: return MACT_ACCEPT;
	case CONF_RULE_REJECT: return MACT_REJECT;
	case CONF_RULE_TEMPFAIL: return MACT_TEMPFAIL;
	case CONF_RULE_DISCARD: return MACT_DISCARD;
	case CONF_RULE_QUARANTINE: return MACT_QUARANTINE;
	case CONF_RULE_NONE: break;
	}
	return MACT_NONE;
}

static bool
rules_configured(const struct rmilter_config *conf)
{
	const struct conf_rule *r;
	size_t n, i;

	r = rules_of(conf, &n);
	for (i = 0; i < n; i++)
		if (r[i].enable && r[i].action != CONF_RULE_NONE)
			return true;
	return false;
}

static bool
rules_shadow(const struct rmilter_config *conf)
{
	(void)conf;
	return false;	/* per-rule modes only */
}

static void
rules_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	const struct conf_rule *r;
	size_t n, i, k;

	r = rules_of(conf, &n);
	for (i = 0; i < n; i++) {
		enum policy_stage last;

		if (!r[i].enable || r[i].action == CONF_RULE_NONE)
			continue;
		last = rule_last_stage(&r[i]);
		if (r[i].nconds == 0)
			needs->stages |= STAGE_BIT(STAGE_CONNECT);
		for (k = 0; k < r[i].nconds; k++) {
			switch (r[i].conds[k].kind) {
			case CONF_COND_CONNECT:
				needs->stages |= STAGE_BIT(STAGE_CONNECT);
				break;
			case CONF_COND_HELO:
				needs->stages |= STAGE_BIT(STAGE_HELO);
				break;
			case CONF_COND_ENVFROM:
				needs->stages |= STAGE_BIT(STAGE_MAIL);
				break;
			case CONF_COND_ENVRCPT:
				needs->stages |= STAGE_BIT(STAGE_RCPT);
				break;
			case CONF_COND_HEADER:
				needs->stages |= STAGE_BIT(STAGE_HEADER) |
				    STAGE_BIT(STAGE_EOH);
				break;
			case CONF_COND_BODY:
				needs->stages |= STAGE_BIT(STAGE_BODY) |
				    STAGE_BIT(STAGE_EOM);
				/* body conditions look at the first max_size
				 * bytes (all of the body when it is 0) */
				needs->body_limit = conf->max_size;
				break;
			}
		}
		/* a shadow rule never changes the reply */
		if (r[i].mode == CONF_MODE_SHADOW)
			continue;
		/* A decision on the headers reaches the SMTP client after
		 * its final dot whether it is sent at EOH or at EOM, so it
		 * rides on the EOM reply: no EOH round trip per message (the
		 * record still says it was decided at EOH). */
		needs->replies |= STAGE_BIT(last == STAGE_EOH ? STAGE_EOM :
		    last);
		/* a discard known before MAIL applies to the message: say
		 * it at MAIL rather than after the DATA transfer */
		if (last <= STAGE_HELO && r[i].action == CONF_RULE_DISCARD)
			needs->replies |= STAGE_BIT(STAGE_MAIL);
		if (r[i].action == CONF_RULE_QUARANTINE)
			needs->actions |= SMFIF_QUARANTINE;
	}
}

/* ---- per-message state ---------------------------------------------------- */

static void
rules_msg_free(void *data)
{
	struct rules_msg *m = data;

	if (m == NULL)
		return;
	pcre2_match_data_free(m->md);
	free(m->carry);
	free(m);
}

static struct rules_msg *
rules_msg_get(struct module_ctx *ctx)
{
	const struct conf_rule *rules;
	struct rules_msg *m = *ctx->data;
	size_t n, i, nc = 0;

	rules = rules_of(ctx->conf, &n);
	if (m != NULL && m->sec == ctx->conf->sections)
		return m;
	rules_msg_free(m);
	for (i = 0; i < n; i++)
		nc += rules[i].nconds;
	/* one block: the state, then the rules, then the conditions */
	m = xcalloc(1, sizeof(*m) + n * sizeof(*m->r) + nc);
	m->sec = ctx->conf->sections;
	m->nrules = n;
	m->r = (struct rule_state *)(m + 1);
	m->c = (uint8_t *)(m->r + n);
	nc = 0;
	for (i = 0; i < n; i++) {
		const struct conf_rule *r = &rules[i];
		size_t k;

		m->r[i].coff = (uint32_t)nc;
		m->r[i].last = (uint8_t)rule_last_stage(r);
		for (k = 0; k < r->nconds; k++)
			m->r[i].kinds |= (uint8_t)K_BIT(r->conds[k].kind);
		if (!r->enable || rule_action(r) == MACT_NONE)
			m->r[i].flags |= R_SKIP;
		if (m->r[i].last == STAGE_RCPT)
			m->r[i].flags |= R_RCPT;
		nc += r->nconds;
	}
	/* one ovector pair is enough: only "does it match" is asked */
	m->md = pcre2_match_data_create(1, NULL);
	if (m->md == NULL) {
		log_error("out of memory");
		abort();
	}
	*ctx->data = m;
	return m;
}

/* ---- matching ------------------------------------------------------------------ */

/* Limits for every match: a pathological pattern on a long line gives up
 * after this much backtracking instead of taking the loop for seconds.
 * Created once; lives as long as the process. */
#define RULES_MATCH_LIMIT	200000
#define RULES_DEPTH_LIMIT	20000

static pcre2_match_context *
rules_match_context(void)
{
	static pcre2_match_context *mc;

	if (mc == NULL && (mc = pcre2_match_context_create(NULL)) != NULL) {
		pcre2_set_match_limit(mc, RULES_MATCH_LIMIT);
		pcre2_set_depth_limit(mc, RULES_DEPTH_LIMIT);
	}
	return mc;
}

/* true if RE matches SUBJECT.  A match error (match limit, bad UTF-8
 * under /u) counts as no match and is logged once per message. */
static bool
re_match(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rule, const struct conf_regex *re,
    const void *subject, size_t len)
{
	int rc;

	if (re->code == NULL)
		return false;
	if (subject == NULL) {
		subject = "";
		len = 0;
	}
	/* JIT-compiled patterns take the direct path (it skips the UTF
	 * check, so never for /u); others answer JIT_BADOPTION */
	rc = PCRE2_ERROR_JIT_BADOPTION;
	if (!(re->options & PCRE2_UTF))
		rc = pcre2_jit_match(re->code, (PCRE2_SPTR)subject, len, 0, 0,
		    m->md, rules_match_context());
	if (rc == PCRE2_ERROR_JIT_BADOPTION)
		rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0,
		    m->md, rules_match_context());
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH && !m->err_logged) {
		PCRE2_UCHAR msg[128];

		m->err_logged = true;
		if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "error %d", rc);
		log_info("%s rule %s: %s: match error (%s), counted as no "
		    "match", ctx->s->sid, rule->name, re->text,
		    (const char *)msg);
	}
	return false;
}

static bool
str_match(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rule, const struct conf_regex *re,
    const char *s)
{
	return re_match(ctx, m, rule, re, s, s ? strlen(s) : 0);
}

/* Sets condition K of rule I from the positive result POS. */
static void
cond_set(struct rules_msg *m, size_t i, const struct conf_rule *r, size_t k,
    bool pos)
{
	bool holds = r->conds[k].negate ? !pos : pos;

	m->c[m->r[i].coff + k] = holds ? C_TRUE : C_FALSE;
	if (!holds)
		m->r[i].flags |= R_DEAD;
}

static bool
rule_live(const struct rules_msg *m, size_t i)
{
	return (m->r[i].flags & (R_DEAD | R_FIRED | R_SKIP)) == 0;
}

/* The positive form of a connect/helo/envfrom condition. */
static bool
env_cond_match(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *r, const struct conf_rule_cond *c)
{
	struct milter_session *s = ctx->s;
	const char *ip;

	switch (c->kind) {
	case CONF_COND_CONNECT:
		if (!str_match(ctx, m, r, &c->re[0], s->hostname))
			return false;
		if (c->nre < 2)
			return true;
		pipeline_client_ip(s, (uint8_t[16]){ 0 }, &ip);
		return str_match(ctx, m, r, &c->re[1], ip);
	case CONF_COND_HELO:
		return str_match(ctx, m, r, &c->re[0], s->helo);
	case CONF_COND_ENVFROM:
		return str_match(ctx, m, r, &c->re[0], s->msg.from);
	default:
		return false;
	}
}

/* Evaluates the unknown conditions whose data is complete at ST, except
 * per-recipient envrcpt, header and body conditions (streamed). */
static void
eval_known(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, enum policy_stage st)
{
	struct milter_session *s = ctx->s;
	bool rcpt = st > STAGE_RCPT && !m->rcpt_done;
	bool hdr = st >= STAGE_EOH && !m->hdr_done;
	bool body = st >= STAGE_EOM && !m->body_done;
	size_t i, k;
	unsigned j;

	for (i = 0; i < m->nrules; i++) {
		const struct conf_rule *r = &rules[i];

		if (!rule_live(m, i))
			continue;
		if ((m->r[i].flags & R_RCPT) && st > STAGE_RCPT) {
			/* per-recipient rules are over once RCPTs are */
			m->r[i].flags |= R_DEAD;
			continue;
		}
		for (k = 0; k < r->nconds && rule_live(m, i); k++) {
			const struct conf_rule_cond *c = &r->conds[k];
			bool pos = false;

			if (m->c[m->r[i].coff + k] != C_UNKNOWN)
				continue;
			switch (c->kind) {
			case CONF_COND_CONNECT:
			case CONF_COND_HELO:
			case CONF_COND_ENVFROM:
				if (cond_stage(c->kind) > st)
					continue;
				pos = env_cond_match(ctx, m, r, c);
				break;
			case CONF_COND_ENVRCPT:
				/* any accepted recipient (refused ones are
				 * already gone from the list) */
				if (!rcpt)
					continue;
				for (j = 0; j < s->msg.nrcpts && !pos; j++)
					pos = str_match(ctx, m, r, &c->re[0],
					    s->msg.rcpts[j].addr);
				break;
			case CONF_COND_HEADER:
				if (!hdr)
					continue;
				break;	/* no header matched */
			case CONF_COND_BODY:
				if (!body)
					continue;
				break;	/* no line matched */
			}
			cond_set(m, i, r, k, pos);
		}
	}
	if (rcpt)
		m->rcpt_done = true;
	if (hdr)
		m->hdr_done = true;
	if (body)
		m->body_done = true;
}

/* Rules often share a name regex (/^Subject$/i): per header, each
 * distinct one (same text and flags) is matched once. */
#define NAME_MEMO	32

struct name_memo {
	const char *text[NAME_MEMO];
	bool hit[NAME_MEMO];
	unsigned n;
};

static bool
name_match(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *r, const struct conf_regex *re, const char *name,
    struct name_memo *memo)
{
	unsigned j;
	bool hit;

	for (j = 0; j < memo->n; j++)
		if (strcmp(memo->text[j], re->text) == 0)
			return memo->hit[j];
	hit = str_match(ctx, m, r, re, name);
	if (memo->n < NAME_MEMO && re->text != NULL) {
		memo->text[memo->n] = re->text;
		memo->hit[memo->n++] = hit;
	}
	return hit;
}

/* One header: a positive condition becomes true at its first matching
 * header, a negated one false. */
static void
eval_header(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, const char *name, const char *value)
{
	struct name_memo memo;
	size_t i, k;

	if (name == NULL || m->hdr_done)
		return;
	memo.n = 0;
	for (i = 0; i < m->nrules; i++) {
		const struct conf_rule *r = &rules[i];

		if (!(m->r[i].kinds & K_BIT(CONF_COND_HEADER)))
			continue;
		for (k = 0; k < r->nconds && rule_live(m, i); k++) {
			const struct conf_rule_cond *c = &r->conds[k];

			if (c->kind != CONF_COND_HEADER ||
			    m->c[m->r[i].coff + k] != C_UNKNOWN)
				continue;
			if (!name_match(ctx, m, r, &c->re[0], name, &memo))
				continue;
			if (c->nre > 1 && !str_match(ctx, m, r, &c->re[1],
			    value))
				continue;
			cond_set(m, i, r, k, true);
		}
	}
}

/* true if a live rule still has an undecided body condition. */
static bool
body_wanted(const struct rules_msg *m, const struct conf_rule *rules)
{
	size_t i, k;

	if (m->body_done)
		return false;
	for (i = 0; i < m->nrules; i++) {
		if (!(m->r[i].kinds & K_BIT(CONF_COND_BODY)) ||
		    !rule_live(m, i))
			continue;
		for (k = 0; k < rules[i].nconds; k++)
			if (rules[i].conds[k].kind == CONF_COND_BODY &&
			    m->c[m->r[i].coff + k] == C_UNKNOWN)
				return true;
	}
	return false;
}

/* One body line (or a piece of a long one), without its CR LF.  Returns
 * true if some condition became known. */
static bool
eval_line(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, const uint8_t *line, size_t len)
{
	const pcre2_code *pf = ctx->conf->sections->body_prefilter;
	bool changed = false;
	size_t i, k;

	/* one match of the combined body regexes rules the line out */
	if (pf != NULL) {
		struct conf_regex all = { (char *)"(body rules combined)", 0,
		    (pcre2_code *)pf };

		if (!re_match(ctx, m, &rules[0], &all, line, len))
			return false;
	}
	for (i = 0; i < m->nrules; i++) {
		const struct conf_rule *r = &rules[i];

		if (!(m->r[i].kinds & K_BIT(CONF_COND_BODY)))
			continue;
		for (k = 0; k < r->nconds && rule_live(m, i); k++) {
			const struct conf_rule_cond *c = &r->conds[k];

			if (c->kind != CONF_COND_BODY ||
			    m->c[m->r[i].coff + k] != C_UNKNOWN)
				continue;
			if (re_match(ctx, m, r, &c->re[0], line, len)) {
				cond_set(m, i, r, k, true);
				changed = true;
			}
		}
	}
	return changed;
}

/* Matches a complete line: drops one trailing CR. */
static bool
line_done(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, const uint8_t *p, size_t len)
{
	if (len > 0 && p[len - 1] == '\r')
		len--;
	return eval_line(ctx, m, rules, p, len);
}

/* Appends to the carry; a full carry is matched as a piece first. */
static bool
carry_add(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, const uint8_t *p, size_t len)
{
	bool changed = false;

	while (len > 0) {
		size_t take;

		if (m->carry_len == RULES_LINE_MAX) {
			changed |= eval_line(ctx, m, rules, m->carry,
			    m->carry_len);
			m->carry_len = 0;
		}
		take = RULES_LINE_MAX - m->carry_len;
		if (take > len)
			take = len;
		if (m->carry_len + take > m->carry_cap) {
			/* grows with the line, up to RULES_LINE_MAX */
			size_t cap = m->carry_cap ? m->carry_cap : 256;

			while (cap < m->carry_len + take)
				cap *= 2;
			if (cap > RULES_LINE_MAX)
				cap = RULES_LINE_MAX;
			m->carry = xrealloc(m->carry, cap);
			m->carry_cap = cap;
		}
		memcpy(m->carry + m->carry_len, p, take);
		m->carry_len += take;
		p += take;
		len -= take;
	}
	return changed;
}

/* One body chunk, as lines (LF, trailing CR removed), a line split over
 * chunks carried to the next one. */
static void
eval_body(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len, *nl;

	if (p == NULL || len == 0 || !body_wanted(m, rules))
		return;
	while (p < end) {
		bool changed;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			carry_add(ctx, m, rules, p, (size_t)(end - p));
			return;
		}
		if (m->carry_len > 0) {
			changed = carry_add(ctx, m, rules, p,
			    (size_t)(nl - p));
			changed |= line_done(ctx, m, rules, m->carry,
			    m->carry_len);
			m->carry_len = 0;
		} else {
			size_t l = (size_t)(nl - p);

			changed = false;
			while (l > RULES_LINE_MAX) {	/* not from a milter */
				changed |= eval_line(ctx, m, rules, p,
				    RULES_LINE_MAX);
				p += RULES_LINE_MAX;
				l -= RULES_LINE_MAX;
			}
			changed |= line_done(ctx, m, rules, p, l);
		}
		p = nl + 1;
		if (changed && !body_wanted(m, rules)) {
			m->carry_len = 0;
			return;
		}
	}
}

/* ---- decisions ------------------------------------------------------------------ */

static bool
conds_true(const struct rules_msg *m, size_t i, const struct conf_rule *r,
    bool skip_rcpt)
{
	size_t k;

	for (k = 0; k < r->nconds; k++) {
		if (skip_rcpt && r->conds[k].kind == CONF_COND_ENVRCPT)
			continue;
		if (m->c[m->r[i].coff + k] != C_TRUE)
			return false;
	}
	return true;
}

/* true if every envrcpt condition of R holds for recipient RCPT. */
static bool
rcpt_conds_true(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *r, const char *rcpt)
{
	size_t k;

	for (k = 0; k < r->nconds; k++) {
		const struct conf_rule_cond *c = &r->conds[k];
		bool pos;

		if (c->kind != CONF_COND_ENVRCPT)
			continue;
		pos = str_match(ctx, m, r, &c->re[0], rcpt);
		if (c->negate ? pos : !pos)
			return false;
	}
	return true;
}

/* Fires the first rule (config order) that holds at ST.  Shadow rules
 * only note what they would have done and let evaluation go on. */
static void
decide(struct module_ctx *ctx, struct rules_msg *m,
    const struct conf_rule *rules, enum policy_stage st,
    const struct module_event *ev)
{
	struct milter_session *s = ctx->s;
	size_t i;

	for (i = 0; i < m->nrules && !m->decided; i++) {
		const struct conf_rule *r = &rules[i];
		enum module_action a = rule_action(r);
		bool per_rcpt;

		if (!rule_live(m, i))
			continue;
		if (m->r[i].flags & R_RCPT) {
			if (st != STAGE_RCPT || ev->rcpt >= s->msg.nrcpts ||
			    !conds_true(m, i, r, true) ||
			    !rcpt_conds_true(ctx, m, r,
			    s->msg.rcpts[ev->rcpt].addr))
				continue;
		} else if (m->r[i].last > st || !conds_true(m, i, r, false)) {
			continue;
		}
		log_debug("%s rule %s fires at %s: %s%s", s->sid, r->name,
		    policy_stage_name(st), module_action_name(a),
		    r->mode == CONF_MODE_SHADOW ? " (shadow)" : "");
		if (r->mode == CONF_MODE_SHADOW) {
			m->r[i].flags |= R_FIRED;
			module_decide_shadow(ctx, a, "rule %s", r->name);
			continue;
		}
		per_rcpt = st == STAGE_RCPT &&
		    (a == MACT_REJECT || a == MACT_TEMPFAIL);
		module_decide(ctx, a, r->message, "rule %s", r->name);
		if (per_rcpt)
			return;		/* this recipient is decided */
		m->decided = true;
	}
}

static enum module_rc
rules_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	const struct conf_rule *rules;
	struct rules_msg *m;
	size_t n;

	if (st >= STAGE_UNKNOWN)
		return MODULE_DONE;
	rules = rules_of(ctx->conf, &n);
	if (n == 0)
		return MODULE_DONE;
	m = rules_msg_get(ctx);
	if (st == STAGE_HELO) {
		/* a second HELO (after STARTTLS, RSET): start over */
		if (m->saw_helo) {
			rules_msg_free(m);
			*ctx->data = NULL;
			m = rules_msg_get(ctx);
		}
		m->saw_helo = true;
	}
	if (m->decided)
		return MODULE_DONE;
	if (st == STAGE_EOM) {
		/* everything but the body is final; then the last line,
		 * without LF */
		eval_known(ctx, m, rules, STAGE_BODY);
		if (m->carry_len > 0 && body_wanted(m, rules))
			line_done(ctx, m, rules, m->carry, m->carry_len);
		m->carry_len = 0;
	}
	eval_known(ctx, m, rules, st);
	if (st == STAGE_HEADER)
		eval_header(ctx, m, rules, ev->hdr_name, ev->hdr_value);
	else if (st == STAGE_BODY)
		eval_body(ctx, m, rules, ev->body, ev->body_len);
	decide(ctx, m, rules, st, ev);
	return MODULE_DONE;
}

const struct module_def module_rules = {
	.name = "rules",
	.flags = 0,	/* also for authenticated and whitelisted mail */
	.configured = rules_configured,
	.shadow = rules_shadow,
	.needs = rules_needs,
	.run = rules_run,
	.msg_free = rules_msg_free,
};
