/* mod_spf.c -- spf: SPF (RFC 7208) for the envelope sender's domain, with
 * libspf2 evaluating and c-ares resolving, never blocking the loop.
 *
 * Which mail: the envelope-from domain (for the null sender: the HELO name)
 * is in the global spf_domains (exact, any case, or "*"); the spf section
 * may be absent (defaults) or say enable = no.  Authenticated senders and
 * our_networks are skipped, and so is mail whose recipients are all in the
 * global whitelist.  Decided at DATA, when every recipient is known.
 *
 * How: libspf2 runs over the layer of spf_dns.c, which answers from this
 * check's view and notes the names it lacks.  A round evaluates; if names
 * were wanted, they are resolved in parallel (dns_client.c) and the next
 * round evaluates again, until a round wants nothing new.  Each answer
 * also prefetches what it names (include/redirect targets, a and mx hosts:
 * spf_dns_prefetch), asked at once, so an include chain takes two rounds,
 * not one per level.  At most SPF_MAX_ROUNDS rounds, and spf.timeout for
 * the whole check: then the result is temperror.
 *
 * Results (all recorded: the summary line and the audit record):
 * pass, neutral, none -> the header; fail -> fail_action (reject: 550
 * 5.7.23 with the explanation and the client); softfail -> softfail_action;
 * temperror -> temperror_action (tempfail: 451 4.7.24); permerror ->
 * permerror_action (reject: 550 5.7.24).  Mail let through gets the
 * configured header(s) at EOM: Received-SPF and/or Authentication-Results
 * (the message's own Authentication-Results with our authserv-id are
 * deleted first: forged). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <spf2/spf.h>

#include "conf_sections.h"
#include "daemon.h"
#include "dns_client.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "spf_dns.h"
#include "xmalloc.h"

#define SPF_MAX_ROUNDS	40	/* evaluations per check */

enum spf_outcome {
	SPF_OUT_PASS = 0, SPF_OUT_FAIL, SPF_OUT_SOFTFAIL, SPF_OUT_NEUTRAL,
	SPF_OUT_NONE, SPF_OUT_TEMPERROR, SPF_OUT_PERMERROR
};

static const char *const outcome_names[] = {
	"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"
};

struct spf_check;

/* One query in flight; names ride here, view entries may move. */
struct spf_ask {
	struct spf_check *ck;
	struct dns_query *q;
	char *name;
	int type;
	struct spf_ask *next, *prev;
};

struct spf_check {
	const struct rmilter_config *conf;	/* the session's (outlives us) */
	struct spf_view view;
	SPF_server_t *server;
	SPF_dns_server_t *layer;	/* ours, freed after the server */
	SPF_request_t *req;
	SPF_response_t *resp;
	SPF_errcode_t err;		/* of the last evaluation */
	struct spf_ask *asks;		/* in flight */
	unsigned pending;
	unsigned rounds, queries;
	struct event *timer;
	uint64_t sid, serial;
	unsigned index;
	int family;			/* the client's: AF_INET or AF_INET6 */
	bool helo_identity;		/* null sender: the HELO name checked */
	bool timed_out, too_many, no_resolver;
	bool headers_due;		/* let through: headers at EOM */
	enum spf_outcome hdr_outcome;
	char hdr_why[128];
	struct timeval t0;
	char domain[256];
	char sender[512];		/* without <> ("" for the null sender) */
	char helo[256];
	char ip[64];
	char host[256];			/* the client's name as the MTA knows it */
	char authserv[256];
};

/* snprintf that truncates silently (every use here may cut peer text). */
static void __attribute__((format(printf, 3, 4)))
spf_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

static const struct conf_spf *
spf_conf(const struct rmilter_config *conf)
{
	return &conf->sections->spf;
}

static bool
spf_configured(const struct rmilter_config *conf)
{
	return conf->spf_domains.n > 0 && spf_conf(conf)->enable;
}

static bool
spf_shadow(const struct rmilter_config *conf)
{
	return spf_conf(conf)->mode == CONF_MODE_SHADOW;
}

static bool
spf_wants_ar(const struct rmilter_config *conf)
{
	return spf_conf(conf)->header == CONF_SPF_HDR_AR ||
	    spf_conf(conf)->header == CONF_SPF_HDR_BOTH;
}

/* DATA: the check; EOM: the headers; with Authentication-Results also the
 * message's headers, to drop forged ones carrying our authserv-id. */
static void
spf_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	needs->stages |= STAGE_BIT(STAGE_DATA) | STAGE_BIT(STAGE_EOM);
	needs->replies |= STAGE_BIT(STAGE_DATA);
	needs->actions |= SMFIF_ADDHDRS;
	if (spf_wants_ar(conf)) {
		needs->stages |= STAGE_BIT(STAGE_HEADER);
		needs->actions |= SMFIF_CHGHDRS;
	}
}

/* libspf2 reports through these; its errors are fatal by contract. */
static void __attribute__((noreturn))
spf_log_error(const char *file, int line, const char *msg)
{
	log_error("libspf2: %s:%d: %s", file ? file : "?", line,
	    msg ? msg : "");
	abort();
}

static void
spf_log_warning(const char *file, int line, const char *msg)
{
	log_debug("libspf2: warning: %s", msg ? msg : "");
}

static void
spf_log_info(const char *file, int line, const char *msg)
{
	log_debug("libspf2: %s", msg ? msg : "");
}

static void
spf_log_setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_info;
	SPF_debug_handler = spf_log_info;
}

/* ---- which mail --------------------------------------------------------------- */

/* true if DOMAIN is in spf_domains ("*" matches every domain). */
static bool
spf_domain_listed(const struct rmilter_config *conf, const char *domain)
{
	size_t i;

	for (i = 0; i < conf->spf_domains.n; i++) {
		const char *d = conf->spf_domains.v[i];

		if (strcmp(d, "*") == 0 || strcasecmp(d, domain) == 0)
			return true;
	}
	return false;
}

/* The sender without <> and ESMTP decoration; "" for the null sender. */
static void
spf_sender(const char *from, char *out, size_t len)
{
	const char *s = from != NULL ? from : "";
	size_t n;

	while (*s == ' ')
		s++;
	if (*s == '<')
		s++;
	n = strcspn(s, ">");
	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static void
spf_skip(struct module_ctx *ctx, const char *why)
{
	ctx->res->skipped = true;
	spf_fmt(ctx->res->why, sizeof(ctx->res->why), "%s", why);
}

/* Makes OUT safe in a header or an SMTP reply: printable ASCII only, no
 * quotes, parentheses, semicolons or "${" (the reply is a template). */
static void
spf_clean(char *out)
{
	char *p;

	for (p = out; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < ' ' || ch >= 0x7f || ch == '"' || ch == '\\' ||
		    ch == '(' || ch == ')' || ch == ';' ||
		    (ch == '$' && p[1] == '{'))
			*p = '?';
	}
}

/* Makes an SMTP reply line safe: printable ASCII, no "${" (a template). */
static void
spf_clean_reply(char *out)
{
	char *p;

	for (p = out; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < ' ' || ch >= 0x7f || (ch == '$' && p[1] == '{'))
			*p = '?';
	}
}

/* ---- the check ------------------------------------------------------------------- */

static void
spf_ask_free(struct spf_check *ck, struct spf_ask *a)
{
	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		ck->asks = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	free(a->name);
	free(a);
}

static void
spf_check_free(void *data)
{
	struct spf_check *ck = data;

	if (ck == NULL)
		return;
	while (ck->asks != NULL) {
		dns_query_cancel(ck->asks->q);
		spf_ask_free(ck, ck->asks);
	}
	if (ck->timer != NULL)
		event_free(ck->timer);
	if (ck->resp != NULL)
		SPF_response_free(ck->resp);
	if (ck->req != NULL)
		SPF_request_free(ck->req);
	if (ck->server != NULL)
		SPF_server_free(ck->server);
	if (ck->layer != NULL)
		spf_dns_layer_free(ck->layer);
	spf_view_free(&ck->view);
	free(ck);
}

static void spf_on_answer(void *ud, const struct dns_answer *ans);

/* Asks every wanted name of the view (in parallel); false without a
 * resolver. */
static bool
spf_ask_wanted(struct spf_check *ck)
{
	struct dns_client *dc;
	size_t i;

	if (ck->view.wanted == 0)
		return true;
	if ((dc = dns_client_get(ck->conf)) == NULL) {
		ck->no_resolver = true;
		return false;
	}
	for (i = 0; i < ck->view.n; i++) {
		struct spf_view_entry *e = &ck->view.v[i];
		struct spf_ask *a;

		if (e->answered || e->asked)
			continue;
		e->asked = true;
		ck->view.wanted--;
		a = xcalloc(1, sizeof(*a));
		a->ck = ck;
		a->name = xstrdup(e->name);
		a->type = e->type;
		a->next = ck->asks;
		if (ck->asks != NULL)
			ck->asks->prev = a;
		ck->asks = a;
		ck->pending++;
		ck->queries++;
		log_debug("spf: %s round %u asks %s %s", ck->domain,
		    ck->rounds, dns_type_name(e->type), e->name);
		a->q = dns_query(dc, a->name, a->type, spf_on_answer, a);
	}
	return true;
}

/* One evaluation; then the wanted names are asked.  Returns true when the
 * check is complete (nothing asked). */
static bool
spf_round(struct spf_check *ck)
{
	if (ck->resp != NULL) {
		SPF_response_free(ck->resp);
		ck->resp = NULL;
	}
	ck->err = SPF_request_query_mailfrom(ck->req, &ck->resp);
	ck->rounds++;
	if (ck->view.wanted == 0 || ck->view.full)
		return true;
	if (ck->rounds >= SPF_MAX_ROUNDS) {
		ck->too_many = true;
		return true;
	}
	if (!spf_ask_wanted(ck))
		return true;
	return ck->pending == 0;
}

static double
spf_elapsed_ms(const struct spf_check *ck)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (double)(now.tv_sec - ck->t0.tv_sec) * 1000.0 +
	    (double)(now.tv_usec - ck->t0.tv_usec) / 1000.0;
}

/* The result of the last evaluation. */
static enum spf_outcome
spf_outcome(struct spf_check *ck, const char **why)
{
	*why = "";
	if (ck->timed_out) {
		*why = "check timed out";
		return SPF_OUT_TEMPERROR;
	}
	if (ck->too_many || ck->view.full) {
		*why = "too many DNS lookups";
		return SPF_OUT_TEMPERROR;
	}
	if (ck->no_resolver) {
		*why = "no resolver";
		return SPF_OUT_TEMPERROR;
	}
	switch (ck->resp != NULL ? SPF_response_result(ck->resp) :
	    SPF_RESULT_INVALID) {
	case SPF_RESULT_PASS:
		return SPF_OUT_PASS;
	case SPF_RESULT_FAIL:
		return SPF_OUT_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return SPF_OUT_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:
		return SPF_OUT_NEUTRAL;
	case SPF_RESULT_NONE:
		return SPF_OUT_NONE;
	case SPF_RESULT_TEMPERROR:
		*why = SPF_strerror(SPF_response_errcode(ck->resp));
		return SPF_OUT_TEMPERROR;
	case SPF_RESULT_PERMERROR:
		*why = SPF_strerror(SPF_response_errcode(ck->resp));
		return SPF_OUT_PERMERROR;
	default:
		break;
	}
	/* no result set: the record lookup itself ended the check */
	if (ck->err == SPF_E_DNS_ERROR) {
		*why = "DNS error";
		return SPF_OUT_TEMPERROR;
	}
	if (ck->err == SPF_E_NOT_SPF && ck->resp != NULL) {
		int i;

		/* a record that does not compile is a permerror */
		for (i = 0; i < SPF_response_messages(ck->resp); i++) {
			SPF_error_t *e = SPF_response_message(ck->resp, i);

			if (SPF_error_errorp(e) && SPF_error_code(e) !=
			    SPF_E_NOT_SPF) {
				*why = SPF_strerror(SPF_error_code(e));
				return SPF_OUT_PERMERROR;
			}
		}
		return SPF_OUT_NONE;
	}
	if (ck->err != SPF_E_SUCCESS) {
		*why = SPF_strerror(ck->err);
		return SPF_OUT_PERMERROR;
	}
	return SPF_OUT_NONE;
}

/* The comment of the headers (libspf2's when it made one). */
static void
spf_comment(struct spf_check *ck, enum spf_outcome o, const char *why,
    char *out, size_t len)
{
	const char *c = ck->resp != NULL ?
	    SPF_response_get_header_comment(ck->resp) : NULL;
	const char *colon;

	if (c != NULL && *c != '\0' && o != SPF_OUT_TEMPERROR) {
		/* libspf2 starts it with its receiver name: ours follows */
		if ((colon = strstr(c, ": ")) != NULL)
			c = colon + 2;
		spf_fmt(out, len, "%s: %s", ck->authserv, c);
	} else {
		spf_fmt(out, len, "%s: %s for domain of %s%s%s", ck->authserv,
		    outcome_names[o], ck->domain, *why ? ": " : "", why);
	}
	spf_clean(out);
}

/* Deletes the message's Authentication-Results headers that carry our
 * authserv-id (RFC 8601 5: a sender must not be able to forge our
 * results), from the last one down so that the indexes stay valid. */
static void
spf_drop_forged(struct module_ctx *ctx, struct spf_check *ck)
{
	const struct milter_msg *m = &ctx->s->msg;
	size_t alen = strlen(ck->authserv);
	unsigned i, k = 0, idx[64], n = 0;

	for (i = 0; i < m->nhdrs; i++) {
		const char *v;

		if (strcasecmp(m->hdrs[i].name, "Authentication-Results") != 0)
			continue;
		k++;
		for (v = m->hdrs[i].value; *v == ' ' || *v == '\t' ||
		    *v == '\n' || *v == '\r'; v++)
			;
		if (strncasecmp(v, ck->authserv, alen) == 0 &&
		    (v[alen] == ';' || v[alen] == ' ' || v[alen] == '\t' ||
		    v[alen] == '\r' || v[alen] == '\n' || v[alen] == '\0') &&
		    n < sizeof(idx) / sizeof(idx[0]))
			idx[n++] = k;
	}
	while (n > 0)
		module_edit_delete(ctx, "Authentication-Results", idx[--n]);
}

static void
spf_headers(struct module_ctx *ctx, struct spf_check *ck, enum spf_outcome o,
    const char *why)
{
	int h = spf_conf(ctx->conf)->header;
	char comment[512], val[1536], from[512], helo[256];

	if (h == CONF_SPF_HDR_NONE)
		return;
	spf_comment(ck, o, why, comment, sizeof(comment));
	spf_fmt(from, sizeof(from), "%s", ck->sender);
	spf_fmt(helo, sizeof(helo), "%s", ck->helo);
	spf_clean(from);
	spf_clean(helo);
	if (h == CONF_SPF_HDR_AR || h == CONF_SPF_HDR_BOTH) {
		spf_drop_forged(ctx, ck);
		if (ck->helo_identity)
			spf_fmt(val, sizeof(val), "%s; spf=%s (%s) smtp.helo=%s",
			    ck->authserv, outcome_names[o], comment, helo);
		else
			spf_fmt(val, sizeof(val), "%s; spf=%s (%s) "
			    "smtp.mailfrom=%s", ck->authserv, outcome_names[o],
			    comment, from);
		module_edit_insert(ctx, 0, "Authentication-Results", val);
	}
	if (h == CONF_SPF_HDR_RECEIVED || h == CONF_SPF_HDR_BOTH) {
		spf_fmt(val, sizeof(val), "%s (%s) client-ip=%s; "
		    "envelope-from=\"%s\"; helo=%s; identity=%s; receiver=%s;",
		    outcome_names[o], comment, ck->ip, from, helo,
		    ck->helo_identity ? "helo" : "mailfrom", ck->authserv);
		module_edit_insert(ctx, 0, "Received-SPF", val);
	}
}

/* The check is complete: decide or note, queue the headers. */
static void
spf_finish(struct module_ctx *ctx, struct spf_check *ck)
{
	const struct conf_spf *sc = spf_conf(ctx->conf);
	const char *why, *exp;
	enum spf_outcome o = spf_outcome(ck, &why);
	int act = CONF_SPF_PASS;
	char stats[128], text[768], expl[400];

	spf_fmt(stats, sizeof(stats), "%u round%s, %u quer%s, %.1f ms",
	    ck->rounds, ck->rounds == 1 ? "" : "s", ck->queries,
	    ck->queries == 1 ? "y" : "ies", spf_elapsed_ms(ck));
	switch (o) {
	case SPF_OUT_FAIL:
		act = sc->fail_action;
		break;
	case SPF_OUT_SOFTFAIL:
		act = sc->softfail_action;
		break;
	case SPF_OUT_TEMPERROR:
		act = sc->temperror_action;
		break;
	case SPF_OUT_PERMERROR:
		act = sc->permerror_action;
		break;
	default:
		break;
	}
	if (act != CONF_SPF_PASS) {
		exp = ck->resp != NULL ?
		    SPF_response_get_explanation(ck->resp) : NULL;
		spf_fmt(expl, sizeof(expl), "%s", exp != NULL && *exp != '\0' ?
		    exp : "");
		spf_clean_reply(expl);
		if (o == SPF_OUT_FAIL || o == SPF_OUT_SOFTFAIL)
			spf_fmt(text, sizeof(text), "%s SPF %s: %s%s"
			    "client %s[%s] is not allowed to send mail as "
			    "<%s>", act == CONF_SPF_REJECT ? "550 5.7.23" :
			    "451 4.7.24", outcome_names[o], expl,
			    *expl ? "; " : "", ck->host, ck->ip,
			    ck->sender[0] ? ck->sender : ck->helo);
		else
			spf_fmt(text, sizeof(text), "%s SPF %s for %s%s%s "
			    "(client %s[%s])", act == CONF_SPF_REJECT ?
			    "550 5.7.24" : "451 4.7.24", outcome_names[o],
			    ck->domain, *why ? ": " : "", why, ck->host, ck->ip);
		spf_clean_reply(text);
		module_decide(ctx, act == CONF_SPF_REJECT ? MACT_REJECT :
		    MACT_TEMPFAIL, text, "spf %s for %s (ip %s%s%s; %s)",
		    outcome_names[o], ck->domain, ck->ip, *why ? "; " : "", why,
		    stats);
		if (!ctx->shadow)
			return;
	}
	module_note(ctx, "%s for %s (ip %s%s%s; %s)", outcome_names[o],
	    ck->domain, ck->ip, *why ? "; " : "", why, stats);
	ck->headers_due = true;
	ck->hdr_outcome = o;
	spf_fmt(ck->hdr_why, sizeof(ck->hdr_why), "%s", why);
	log_debug("spf: %s: %s for %s ip %s (%s)", ctx->s->sid,
	    outcome_names[o], ck->domain, ck->ip, stats);
}

/* Resumes the pipeline with the check's result. */
static void
spf_complete(struct spf_check *ck)
{
	struct module_ctx buf, *ctx;

	if (ck->timer != NULL)
		evtimer_del(ck->timer);
	if ((ctx = module_ctx_lookup(ck->sid, ck->serial, ck->index, &buf))
	    == NULL)
		return;
	spf_finish(ctx, ck);
	module_resume(ck->sid, ck->serial, ck->index);
}

static void
spf_on_answer(void *ud, const struct dns_answer *ans)
{
	struct spf_ask *a = ud;
	struct spf_check *ck = a->ck;

	log_debug("spf: %s %s %s: %s%s%s", ck->domain, dns_type_name(a->type),
	    a->name, dns_status_name(ans->status), ans->why[0] ? " " : "",
	    ans->why);
	spf_view_answer(&ck->view, a->name, a->type, ans);
	/* what the next rounds will want: asked now, in parallel */
	if (spf_dns_prefetch(&ck->view, a->name, a->type, ans, ck->family) > 0)
		(void)spf_ask_wanted(ck);
	spf_ask_free(ck, a);
	if (--ck->pending > 0)
		return;
	if (spf_round(ck))
		spf_complete(ck);
}

static void
spf_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct spf_check *ck = arg;

	ck->timed_out = true;
	while (ck->asks != NULL) {
		dns_query_cancel(ck->asks->q);
		spf_ask_free(ck, ck->asks);
	}
	ck->pending = 0;
	spf_complete(ck);
}

/* Sets up the libspf2 server and request; false if the client is unusable. */
static bool
spf_check_setup(struct module_ctx *ctx, struct spf_check *ck)
{
	struct milter_session *s = ctx->s;
	const struct conf_spf *sc = spf_conf(ctx->conf);
	const char *j;
	uint8_t addr[16];
	int fam;
	SPF_response_t *r = NULL;

	if ((fam = pipeline_client_ip(s, addr, NULL)) == 0)
		return false;
	if (fam == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)
	    (void *)addr)) {
		memmove(addr, addr + 12, 4);	/* ::ffff:a.b.c.d is IPv4 */
		fam = AF_INET;
	}
	inet_ntop(fam, addr, ck->ip, sizeof(ck->ip));
	ck->family = fam;
	spf_fmt(ck->host, sizeof(ck->host), "%s", s->hostname != NULL ?
	    s->hostname : "unknown");
	spf_clean(ck->host);
	if (sc->authserv_id != NULL && *sc->authserv_id != '\0')
		spf_fmt(ck->authserv, sizeof(ck->authserv), "%s",
		    sc->authserv_id);
	else if ((j = scan_macro(ctx, "j")) != NULL && *j != '\0')
		spf_fmt(ck->authserv, sizeof(ck->authserv), "%s", j);
	else if (gethostname(ck->authserv, sizeof(ck->authserv) - 1) < 0)
		spf_fmt(ck->authserv, sizeof(ck->authserv), "localhost");
	ck->authserv[sizeof(ck->authserv) - 1] = '\0';
	spf_clean(ck->authserv);
	spf_log_setup();
	ck->layer = spf_dns_layer_new(&ck->view);
	ck->server = SPF_server_new_dns(ck->layer, 0);
	SPF_server_set_rec_dom(ck->server, ck->authserv);
	SPF_server_set_sanitize(ck->server, 1);
	if (sc->explanation != NULL && *sc->explanation != '\0') {
		char *e = spf_dns_exp_text(sc->explanation);

		if (SPF_server_set_explanation(ck->server, e, &r) !=
		    SPF_E_SUCCESS)
			log_warning("spf: explanation '%s' does not compile; "
			    "using libspf2's", sc->explanation);
		free(e);
	}
	if (r != NULL)
		SPF_response_free(r);
	ck->req = SPF_request_new(ck->server);
	if (fam == AF_INET)
		SPF_request_set_ipv4(ck->req, *(struct in_addr *)(void *)addr);
	else
		SPF_request_set_ipv6(ck->req, *(struct in6_addr *)(void *)addr);
	if (ck->helo[0] != '\0')
		SPF_request_set_helo_dom(ck->req, ck->helo);
	if (ck->sender[0] != '\0')
		SPF_request_set_env_from(ck->req, ck->sender);
	else
		SPF_request_set_env_from(ck->req, "");
	return true;
}

static enum module_rc
spf_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	struct milter_session *s = ctx->s;
	struct spf_check *ck;
	char sender[512], helo[256];
	const char *at, *domain;
	struct timeval tv;
	uint64_t ms;

	if (st == STAGE_EOM && (ck = *ctx->data) != NULL && ck->headers_due) {
		ck->headers_due = false;
		spf_headers(ctx, ck, ck->hdr_outcome, ck->hdr_why);
		return MODULE_DONE;
	}
	if (st != STAGE_DATA || *ctx->data != NULL)
		return MODULE_DONE;
	if (pipeline_authenticated(s)) {
		spf_skip(ctx, "authenticated sender");
		return MODULE_DONE;
	}
	if (pipeline_whitelisted(s)) {
		spf_skip(ctx, "all recipients whitelisted");
		return MODULE_DONE;
	}
	spf_sender(s->msg.from, sender, sizeof(sender));
	spf_fmt(helo, sizeof(helo), "%s", s->helo != NULL ? s->helo : "");
	if (sender[0] != '\0' && (at = strrchr(sender, '@')) != NULL)
		domain = at + 1;
	else if (sender[0] != '\0')
		domain = sender;
	else
		domain = helo;
	if (*domain == '\0' || !spf_domain_listed(ctx->conf, domain)) {
		spf_skip(ctx, "domain not in spf_domains");
		return MODULE_DONE;
	}
	ck = xcalloc(1, sizeof(*ck));
	*ctx->data = ck;
	ck->conf = ctx->conf;
	ck->sid = ctx->sid;
	ck->serial = ctx->msg_serial;
	ck->index = ctx->index;
	ck->helo_identity = sender[0] == '\0';
	gettimeofday(&ck->t0, NULL);
	spf_fmt(ck->sender, sizeof(ck->sender), "%s", sender);
	spf_fmt(ck->helo, sizeof(ck->helo), "%s", helo);
	spf_fmt(ck->domain, sizeof(ck->domain), "%s", domain);
	spf_clean(ck->domain);
	spf_view_init(&ck->view);
	if (!spf_check_setup(ctx, ck)) {
		module_note(ctx, "client address unknown: not checked");
		return MODULE_DONE;
	}
	if (spf_round(ck)) {
		spf_finish(ctx, ck);
		return MODULE_DONE;
	}
	ms = spf_conf(ctx->conf)->timeout;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	ck->timer = evtimer_new(daemon_base(), spf_on_timeout, ck);
	evtimer_add(ck->timer, &tv);
	return MODULE_PENDING;
}

const struct module_def module_spf = {
	.name = "spf",
	.configured = spf_configured,
	.shadow = spf_shadow,
	.needs = spf_needs,
	.run = spf_run,
	.msg_free = spf_check_free,
};
