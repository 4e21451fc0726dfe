/* scan_common.c -- shared parts of the content-scanner modules; see scan.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_internal.h"
#include "conf_sections.h"
#include "log.h"
#include "milter_session.h"
#include "pipeline.h"
#include "scan.h"
#include "xmalloc.h"

/* Postfix's default milter_content_timeout: a scan that takes longer makes
 * Postfix give up on the milter and apply milter_default_action. */
#define MTA_CONTENT_TIMEOUT_MS	300000

struct upstream_pool *
scan_pool(const struct rmilter_config *conf, const char *name,
    const struct conf_serverlist *sl, const struct upstream_params *p)
{
	/* the pools are a cache of the (otherwise read-only) config */
	struct rmilter_config *c = (struct rmilter_config *)conf;
	struct upstream_pool *pool;

	for (pool = c->upstreams; pool != NULL; pool = pool->next)
		if (strcmp(pool->name, name) == 0)
			return pool;
	pool = upstream_pool_new(name, sl, p);
	pool->next = c->upstreams;
	c->upstreams = pool;
	return pool;
}

struct upstream_pool *
scan_pool_split(const struct rmilter_config *conf, const char *name,
    const struct conf_serverlist *a, bool rspamd,
    const struct conf_serverlist *b, const struct upstream_params *p)
{
	struct upstream_pool *pool;
	struct conf_serverlist sl;
	size_t i;

	for (pool = conf->upstreams; pool != NULL; pool = pool->next)
		if (strcmp(pool->name, name) == 0)
			return pool;
	sl.n = 0;
	sl.v = xcalloc(a->n + (b ? b->n : 0) + 1, sizeof(*sl.v));
	for (i = 0; i < a->n; i++)
		if (a->v[i].is_rspamd == rspamd)
			sl.v[sl.n++] = a->v[i];	/* shallow: the pool copies */
	for (i = 0; b != NULL && i < b->n; i++)
		sl.v[sl.n++] = b->v[i];
	pool = scan_pool(conf, name, &sl, p);
	free(sl.v);
	return pool;
}

void
scan_job_start(struct scan_job *job, struct module_ctx *ctx,
    struct upstream_pool *pool, struct upstream_payload *pl,
    const struct upstream_codec *codec, void *ud, upstream_done_fn done)
{
	job->sid = ctx->sid;
	job->serial = ctx->msg_serial;
	job->index = ctx->index;
	job->req = upstream_request(pool, pl, codec, ud, done);
}

struct module_ctx *
scan_job_ctx(struct scan_job *job, struct module_ctx *buf)
{
	job->req = NULL;	/* the engine frees it after the callback */
	return module_ctx_lookup(job->sid, job->serial, job->index, buf);
}

void
scan_job_resume(struct scan_job *job)
{
	module_resume(job->sid, job->serial, job->index);
}

void
scan_job_cancel(struct scan_job *job)
{
	if (job->req != NULL) {
		upstream_request_cancel(job->req);
		job->req = NULL;
	}
}

bool
scan_client_skip(struct module_ctx *ctx, const struct conf_netlist *wl)
{
	uint8_t addr[16];
	const char *text;
	int family;

	if (wl->n == 0)
		return false;
	family = pipeline_client_ip(ctx->s, addr, &text);
	if (family == 0 || !conf_netlist_match(wl, family, addr))
		return false;
	ctx->res->skipped = true;
	snprintf(ctx->res->why, sizeof(ctx->res->why), "client whitelisted");
	return true;
}

void
scan_failed(struct module_ctx *ctx, const char *scanner, bool tempfail,
    const struct upstream_result *r)
{
	module_set_server(ctx, r->server);
	module_set_error(ctx, r->error);
	if (tempfail) {
		module_decide(ctx, MACT_TEMPFAIL,
		    "451 4.7.1 Temporary service failure, try again later",
		    "%s unavailable after %u attempt%s", scanner, r->attempts,
		    r->attempts == 1 ? "" : "s");
		return;
	}
	module_note(ctx, "%s unavailable after %u attempt%s; message passed "
	    "unscanned (tempfail_on_error = no)", scanner, r->attempts,
	    r->attempts == 1 ? "" : "s");
}

unsigned
scan_header_count(struct module_ctx *ctx, const char *name,
    const char **first)
{
	const struct milter_msg *m = &ctx->s->msg;
	unsigned i, k = 0;

	if (first != NULL)
		*first = NULL;
	for (i = 0; i < m->nhdrs; i++)
		if (strcasecmp(m->hdrs[i].name, name) == 0) {
			if (k == 0 && first != NULL)
				*first = m->hdrs[i].value;
			k++;
		}
	return k;
}

void
scan_header_set(struct module_ctx *ctx, const char *name, const char *value)
{
	unsigned k = scan_header_count(ctx, name, NULL);

	/* from the last one down, so the indexes stay valid */
	for (; k > 0; k--)
		module_edit_delete(ctx, name, k);
	module_edit_add(ctx, name, value);
}

const char *
scan_macro(struct module_ctx *ctx, const char *name)
{
	return milter_session_macro(ctx->s, name);
}

/* ---- config test -------------------------------------------------------- */

struct scan_budget {
	const char *name;
	unsigned attempts;
	uint64_t connect, results, pause;
};

static uint64_t
budget_ms(const struct scan_budget *b)
{
	return b->attempts * (b->connect + b->results) +
	    (b->attempts > 0 ? b->attempts - 1 : 0) * b->pause;
}

void
scan_check_config(const struct rmilter_config *conf, struct conf_diag *diag)
{
	const struct conf_sections *s = conf->sections;
	const struct conf_spamd *sd = &s->spamd;
	const struct conf_spamassassin *sa = &s->spamassassin;
	struct scan_budget b[3];
	char parts[256];
	size_t i, n = 0, off = 0, nr = 0, ns = 0;
	uint64_t total = 0;

	for (i = 0; i < sd->servers.n; i++)
		if (sd->servers.v[i].is_rspamd)
			nr++;
		else
			ns++;
	nr += sd->rspamd_servers.n;
	if (s->clamav.enable && s->clamav.servers.n > 0)
		b[n++] = (struct scan_budget){ "clamav", s->clamav.retry_count,
		    s->clamav.connect_timeout, s->clamav.results_timeout,
		    s->clamav.retry_timeout };
	if (sd->enable && nr > 0)
		b[n++] = (struct scan_budget){ "rspamd", sd->retry_count,
		    sd->connect_timeout, sd->results_timeout,
		    sd->retry_timeout };
	if (sa->present && sa->enable && sa->servers.n > 0)
		b[n++] = (struct scan_budget){ "spamassassin", sa->retry_count,
		    sa->connect_timeout, sa->results_timeout,
		    sa->retry_timeout };
	else if (sd->enable && ns > 0)
		b[n++] = (struct scan_budget){ "spamassassin (spamd)",
		    sd->retry_count, sd->connect_timeout, sd->results_timeout,
		    sd->retry_timeout };
	parts[0] = '\0';
	for (i = 0; i < n; i++) {
		uint64_t ms = budget_ms(&b[i]);

		total += ms;
		off += (size_t)snprintf(parts + off, sizeof(parts) - off,
		    "%s%s %u x (%.1f + %.1f s)%s = %.1f s", i ? ", " : "",
		    b[i].name, b[i].attempts, (double)b[i].connect / 1000.0,
		    (double)b[i].results / 1000.0, b[i].attempts > 1 ?
		    " + pauses" : "", (double)ms / 1000.0);
		if (off >= sizeof(parts))
			off = sizeof(parts) - 1;
	}
	if (total > MTA_CONTENT_TIMEOUT_MS)
		conf_diag_add(diag, CONF_DIAG_WARNING, conf->path, 0,
		    "the scanners may take up to %.0f s per message when "
		    "servers fail (%s), longer than Postfix's default "
		    "milter_content_timeout (300 s): lower retry_count or "
		    "results_timeout, or raise milter_content_timeout",
		    (double)total / 1000.0, parts);
}
