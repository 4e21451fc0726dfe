/* mod_dkim.c -- the dkim module: signs mail of our own senders with
 * libopendkim and inserts the DKIM-Signature as the first header.
 *
 * Who is signed: with auth_only = yes (the default) SASL-authenticated
 * senders, clients in our_networks and clients in sign_networks; with
 * auth_only = no every sender.  For which domain: the From header's domain
 * (use_domain = header, the default: the d= that DMARC aligns with) or the
 * envelope sender's (use_domain = envelope, rmilter 1.6).  With which key:
 * dkim_keys.h (exact domain, then sign_subdomains parents, then "*").
 *
 * When: at the end of the message, after every module before it in the
 * pipeline (by default all but beanstalk and test_policy), so the header
 * edits they queued (a rewritten Subject, added headers, deletions) are
 * applied to the header list before it is signed: the signature covers
 * the message as delivered.  Mail that another module refused is never
 * signed; mail it accepted is (MODULE_F_AFTER_ACCEPT).  The body is read
 * from the pipeline's spool; the module asks for the whole body, so a
 * body limit of another module (max_size) never cuts it short.
 *
 * Every message gets a note in the record: "signed d=.. s=.. a=.." or
 * "not signed: <why>" (disabled, sender not authenticated, oversized, no
 * From domain, no key for domain x, key error, library error).  Signing is
 * synchronous: one RSA or Ed25519 signature and a hash of the body. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "conf_sections.h"
#include "dkim_keys.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "spool.h"
#include "xmalloc.h"

#define DKIM_READ_CHUNK		(64 * 1024)
#define DKIM_SIG_NAME		"DKIM-Signature"

/* Per-message state, made at the first stage the module sees. */
struct dkim_msg {
	unsigned nhdrs;		/* headers seen (the session keeps 10k) */
};

/* One header of the message as it will be delivered. */
struct dkim_hdr {
	const char *name;
	const char *value;	/* leading space stripped, LF folding */
	bool nosp;		/* "Name:value" (as received, no space) */
};

struct dkim_hdrlist {
	struct dkim_hdr *v;
	size_t n, cap;
};

static const struct conf_dkim *
dkim_conf(const struct rmilter_config *conf)
{
	return &conf->sections->dkim;
}

static bool
dkim_configured(const struct rmilter_config *conf)
{
	return conf->sections != NULL && dkim_conf(conf)->present;
}

static bool
dkim_shadow(const struct rmilter_config *conf)
{
	return dkim_conf(conf)->mode == CONF_MODE_SHADOW;
}

static void
dkim_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	if (!dkim_conf(conf)->enable) {
		/* only the "not signed: disabled" note, at EOM */
		needs->stages |= STAGE_BIT(STAGE_EOM);
		return;
	}
	needs->stages |= STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_BODY) |
	    STAGE_BIT(STAGE_EOM);
	needs->body_limit = 0;	/* the whole body, whatever others want */
	needs->spool = true;
	needs->actions |= SMFIF_ADDHDRS;
}

/* ---- the header list as delivered --------------------------------------------- */

static void
hdrlist_insert(struct dkim_hdrlist *l, size_t pos, const char *name,
    const char *value, bool nosp)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	if (pos > l->n)
		pos = l->n;
	memmove(&l->v[pos + 1], &l->v[pos], (l->n - pos) * sizeof(*l->v));
	l->v[pos].name = name;
	l->v[pos].value = value;
	l->v[pos].nosp = nosp;
	l->n++;
}

/* Index of the IDX-th (1-based) header NAME, or -1. */
static long
hdrlist_find(const struct dkim_hdrlist *l, const char *name, uint32_t idx)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, name) == 0 && --idx == 0)
			return (long)i;
	return -1;
}

/* Applies edit E the way the MTA will: add appends, insert at an index
 * (0 = top), change the IDX-th instance (an empty value deletes it; a
 * missing instance is appended, as Sendmail and Postfix do). */
static void
hdrlist_edit(struct dkim_hdrlist *l, const struct module_edit *e)
{
	long at;

	switch (e->op) {
	case EDIT_ADD:
		hdrlist_insert(l, l->n, e->name, e->value, false);
		break;
	case EDIT_INSERT:
		hdrlist_insert(l, e->index, e->name, e->value, false);
		break;
	case EDIT_CHANGE:
	case EDIT_DELETE:
		at = e->index > 0 ? hdrlist_find(l, e->name, e->index) : -1;
		if (e->op == EDIT_DELETE || e->value == NULL ||
		    e->value[0] == '\0') {
			if (at >= 0) {
				memmove(&l->v[at], &l->v[at + 1], (l->n -
				    (size_t)at - 1) * sizeof(*l->v));
				l->n--;
			}
		} else if (at >= 0) {
			/* the MTA writes a changed header "Name: value" */
			l->v[at].value = e->value;
			l->v[at].nosp = false;
		} else {
			hdrlist_insert(l, l->n, e->name, e->value, false);
		}
		break;
	}
}

/* The message's headers with the queued edits of every other module that
 * is not in shadow mode applied, in module order (as the pipeline will
 * apply them). */
static void
dkim_headers_delivered(struct module_ctx *ctx, struct dkim_hdrlist *l)
{
	struct milter_session *s = ctx->s;
	struct pipeline_msg *p = s->msg.pipe;
	unsigned i;
	size_t k;

	memset(l, 0, sizeof(*l));
	for (i = 0; i < s->msg.nhdrs; i++)
		hdrlist_insert(l, l->n, s->msg.hdrs[i].name,
		    s->msg.hdrs[i].value, s->msg.hdrs[i].nosp);
	for (i = 0; i < s->pipe.nmods; i++) {
		if (i == ctx->index || s->pipe.shadow[i])
			continue;
		for (k = 0; k < p->res[i].nedits; k++)
			hdrlist_edit(l, &p->res[i].edits[k]);
	}
}

/* ---- the sender domain -------------------------------------------------------- */

/* The domain of address ADDR (a header value or "<a@b>") into OUT, via
 * libopendkim's RFC 5322 parser; false if there is none. */
static bool
dkim_addr_domain(const char *addr, char *out, size_t outlen)
{
	unsigned char *copy = (unsigned char *)xstrdup(addr);
	unsigned char *user = NULL, *dom = NULL;
	bool ok;

	ok = dkim_mail_parse(copy, &user, &dom) == 0 && dom != NULL &&
	    *dom != '\0';
	if (ok)
		snprintf(out, outlen, "%s", (const char *)dom);
	free(copy);
	return ok;
}

/* The domain to sign for, or false with WHY set. */
static bool
dkim_sender_domain(struct module_ctx *ctx, const struct dkim_hdrlist *l,
    char *out, size_t outlen, char *why, size_t whylen)
{
	const char *from = NULL;
	unsigned n = 0;
	size_t i;

	if (dkim_conf(ctx->conf)->use_domain == CONF_DKIM_USE_ENVELOPE) {
		const char *env = ctx->s->msg.from;

		if (env == NULL || strcmp(env, "<>") == 0 || *env == '\0') {
			snprintf(why, whylen, "null envelope sender");
			return false;
		}
		if (!dkim_addr_domain(env, out, outlen)) {
			snprintf(why, whylen, "no domain in the envelope "
			    "sender");
			return false;
		}
		return true;
	}
	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, "From") == 0 && n++ == 0)
			from = l->v[i].value;
	if (n == 0) {
		snprintf(why, whylen, "no From header");
		return false;
	}
	if (n > 1) {
		snprintf(why, whylen, "%u From headers", n);
		return false;
	}
	if (!dkim_addr_domain(from, out, outlen)) {
		snprintf(why, whylen, "no domain in the From header");
		return false;
	}
	return true;
}

/* ---- signing ------------------------------------------------------------------ */

/* Feeds "Name: value" ("Name:value" as received) with CRLF line ends;
 * false on a library error. */
static bool
dkim_feed_header(DKIM *d, const struct dkim_hdr *h, char **buf,
    size_t *cap)
{
	size_t nl = strlen(h->name), vl = strlen(h->value), need, o = 0;
	const char *v;

	need = nl + 2 + 2 * vl + 1;
	if (need > *cap) {
		*cap = need;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf, h->name, nl);
	o = nl;
	(*buf)[o++] = ':';
	if (!h->nosp)
		(*buf)[o++] = ' ';
	for (v = h->value; *v != '\0'; v++) {
		if (*v == '\n' && (v == h->value || v[-1] != '\r'))
			(*buf)[o++] = '\r';
		(*buf)[o++] = *v;
	}
	return dkim_header(d, (u_char *)*buf, o) == DKIM_STAT_OK;
}

/* Feeds the body (the spool from OFF on); false on an error (WHY). */
static bool
dkim_feed_body(DKIM *d, struct spool *sp, uint64_t off, char *why,
    size_t whylen)
{
	uint64_t total = spool_size(sp);
	const uint8_t *mem;
	size_t len;
	uint8_t *buf;
	ssize_t r;

	if (off > total) {
		snprintf(why, whylen, "spool shorter than the headers");
		return false;
	}
	if ((mem = spool_memory(sp, &len)) != NULL) {
		if (len > off && dkim_body(d, (u_char *)(uintptr_t)(mem + off),
		    len - (size_t)off) != DKIM_STAT_OK) {
			snprintf(why, whylen, "libopendkim: %s",
			    dkim_geterror(d) ? dkim_geterror(d) : "body");
			return false;
		}
		return true;
	}
	buf = xmalloc(DKIM_READ_CHUNK);
	while (off < total) {
		r = spool_read(sp, off, buf, DKIM_READ_CHUNK);
		if (r <= 0) {
			snprintf(why, whylen, "cannot read the spool");
			free(buf);
			return false;
		}
		if (dkim_body(d, buf, (size_t)r) != DKIM_STAT_OK) {
			snprintf(why, whylen, "libopendkim: %s",
			    dkim_geterror(d) ? dkim_geterror(d) : "body");
			free(buf);
			return false;
		}
		off += (uint64_t)r;
	}
	free(buf);
	return true;
}

static const char *
dkim_alg_name(int alg)
{
	switch (alg) {
	case CONF_DKIM_SHA1: return "rsa-sha1";
	case CONF_DKIM_ED25519: return "ed25519-sha256";
	default: return "rsa-sha256";
	}
}

/* Signs the message with M's key; the signature header value (CRs
 * removed, folded with "\n\t" when fold_header = yes) in *SIG (caller
 * frees), or NULL and WHY. */
static char *
dkim_make_signature(struct module_ctx *ctx, struct dkim_keyset *ks,
    const struct dkim_match *m, const struct dkim_hdrlist *l,
    struct spool *sp, uint64_t body_off, char *why, size_t whylen)
{
	const struct conf_dkim *dk = dkim_conf(ctx->conf);
	DKIM *d;
	DKIM_STAT st;
	unsigned char *hdr = NULL;
	char *buf = NULL, *sig = NULL, *o;
	const char *e;
	size_t cap = 0, len = 0, i;
	dkim_alg_t alg = dk->sign_alg == CONF_DKIM_SHA1 ? DKIM_SIGN_RSASHA1 :
	    dk->sign_alg == CONF_DKIM_ED25519 ? DKIM_SIGN_ED25519SHA256 :
	    DKIM_SIGN_RSASHA256;

	d = dkim_sign(dkim_keyset_lib(ks), (const u_char *)ctx->s->sid, NULL,
	    (dkim_sigkey_t)m->key->pem, (const u_char *)m->selector,
	    (const u_char *)m->domain, dk->header_canon == CONF_DKIM_RELAXED ?
	    DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE, dk->body_canon ==
	    CONF_DKIM_RELAXED ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE, alg,
	    -1, &st);
	if (d == NULL) {
		snprintf(why, whylen, "libopendkim: %s", dkim_getresultstr(st));
		return NULL;
	}
	if (!dk->fold_header)
		(void)dkim_set_margin(d, 0);
	for (i = 0; i < l->n; i++) {
		const char *nm = l->v[i].name;
		char lname[128];
		size_t k;

		for (k = 0; k + 1 < sizeof(lname) && nm[k] != '\0'; k++)
			lname[k] = (char)tolower((unsigned char)nm[k]);
		lname[k] = '\0';
		if (!dkim_keyset_signs(ks, lname))
			continue;
		if (!dkim_feed_header(d, &l->v[i], &buf, &cap)) {
			e = dkim_geterror(d);
			snprintf(why, whylen, "libopendkim: header %s: %s",
			    lname, e ? e : "rejected");
			goto out;
		}
	}
	if ((st = dkim_eoh(d)) != DKIM_STAT_OK) {
		e = dkim_geterror(d);
		snprintf(why, whylen, "libopendkim: %s", e ? e :
		    dkim_getresultstr(st));
		goto out;
	}
	if (!dkim_feed_body(d, sp, body_off, why, whylen))
		goto out;
	if ((st = dkim_eom(d, NULL)) != DKIM_STAT_OK ||
	    (st = dkim_getsighdr_d(d, strlen(DKIM_SIG_NAME) + 2, &hdr,
	    &len)) != DKIM_STAT_OK || hdr == NULL) {
		e = dkim_geterror(d);
		snprintf(why, whylen, "libopendkim: %s", e ? e :
		    dkim_getresultstr(st));
		goto out;
	}
	sig = xmalloc(len + 1);
	for (o = sig, i = 0; i < len && hdr[i] != '\0'; i++)
		if (hdr[i] != '\r')
			*o++ = (char)hdr[i];
	*o = '\0';
out:
	free(buf);
	dkim_free(d);
	return sig;
}

/* true if the sender may have mail signed; WHY otherwise. */
static bool
dkim_sender_allowed(struct module_ctx *ctx, char *why, size_t whylen)
{
	const struct conf_dkim *dk = dkim_conf(ctx->conf);
	uint8_t addr[16];
	int fam;

	if (!dk->auth_only || pipeline_authenticated(ctx->s))
		return true;
	fam = pipeline_client_ip(ctx->s, addr, NULL);
	if (fam != 0 && conf_netlist_match(&dk->sign_networks, fam, addr))
		return true;
	snprintf(why, whylen, "sender not authenticated (auth_only = yes)");
	return false;
}

/* The end of the message: decide, sign, queue the header. */
static void
dkim_msg_sign(struct module_ctx *ctx, struct dkim_msg *dm)
{
	const struct conf_dkim *dk = dkim_conf(ctx->conf);
	struct milter_session *s = ctx->s;
	struct dkim_hdrlist l = { NULL, 0, 0 };
	struct dkim_keyset *ks;
	struct dkim_match m;
	struct spool *sp;
	char why[400], domain[256], *sig;
	uint64_t size = s->msg.hdr_bytes + s->msg.body_bytes, body_off = 0;
	bool eoh = pipeline_spool_body(s, &body_off);

	if (!dk->enable) {
		module_note(ctx, "not signed: disabled (enable = no)");
		return;
	}
	if (!dkim_sender_allowed(ctx, why, sizeof(why)))
		goto unsigned_;
	if (dk->max_size > 0 && size > dk->max_size) {
		snprintf(why, sizeof(why), "oversized (%llu bytes > max_size "
		    "%llu)", (unsigned long long)size,
		    (unsigned long long)dk->max_size);
		goto unsigned_;
	}
	if (s->msg.skip_body || !eoh || dm->nhdrs != s->msg.nhdrs) {
		snprintf(why, sizeof(why), "%s", s->msg.skip_body ?
		    "body not complete" : !eoh ? "no end of headers" :
		    "too many headers");
		goto unsigned_;
	}
	if ((sp = pipeline_spool(s)) == NULL) {
		snprintf(why, sizeof(why), "no message spool");
		goto unsigned_;
	}
	dkim_headers_delivered(ctx, &l);
	if (!dkim_sender_domain(ctx, &l, domain, sizeof(domain), why,
	    sizeof(why)))
		goto unsigned_;
	if ((ks = dkim_keys_get(ctx->conf)) == NULL) {
		snprintf(why, sizeof(why), "the keys did not load");
		goto unsigned_;
	}
	switch (dkim_keyset_lookup(ks, domain, &m, why, sizeof(why))) {
	case DKIM_LOOKUP_OK:
		break;
	case DKIM_LOOKUP_NONE:
		goto unsigned_;
	case DKIM_LOOKUP_ERROR:
		log_warning("%s dkim: not signed: %s", s->sid, why);
		goto unsigned_;
	}
	sig = dkim_make_signature(ctx, ks, &m, &l, sp, body_off, why,
	    sizeof(why));
	if (sig == NULL) {
		log_warning("%s dkim: not signed (d=%s s=%s key %s): %s",
		    s->sid, m.domain, m.selector, m.path, why);
		goto unsigned_;
	}
	/* (the pipeline does not apply it in shadow mode) */
	module_edit_insert(ctx, 0, DKIM_SIG_NAME, sig);
	module_note(ctx, "%s d=%s s=%s a=%s", ctx->shadow ? "shadow: signed, "
	    "not added:" : "signed", m.domain, m.selector,
	    dkim_alg_name(dk->sign_alg));
	log_debug("%s dkim: signed d=%s s=%s with %s", s->sid, m.domain,
	    m.selector, m.path);
	free(sig);
	free(l.v);
	return;
unsigned_:
	module_note(ctx, "not signed: %s", why);
	free(l.v);
}

static enum module_rc
dkim_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	struct dkim_msg *dm = *ctx->data;

	if (dm == NULL)
		*ctx->data = dm = xcalloc(1, sizeof(*dm));
	switch (st) {
	case STAGE_HEADER:
		if (ev->hdr_name != NULL)
			dm->nhdrs++;
		break;
	case STAGE_EOM:
		dkim_msg_sign(ctx, dm);
		break;
	default:
		break;
	}
	return MODULE_DONE;
}

static void
dkim_msg_free(void *data)
{
	free(data);
}

const struct module_def module_dkim = {
	.name = "dkim",
	.flags = MODULE_F_AFTER_ACCEPT,
	.configured = dkim_configured,
	.shadow = dkim_shadow,
	.needs = dkim_needs,
	.run = dkim_run,
	.msg_free = dkim_msg_free,
};
