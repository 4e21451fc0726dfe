/* scan.h -- what the content-scanner modules (clamav, rspamd, spamassassin)
 * share: their server pools, the asynchronous job bookkeeping, the client
 * whitelist, the failure policy and header helpers.
 *
 * A scan runs at EOM: the module builds the request, starts it with
 * scan_job_start() and returns MODULE_PENDING.  The upstream layer calls
 * the module's completion, which finds its context again with
 * scan_job_ctx(), records the outcome and calls scan_job_resume().  The
 * module's msg_free calls scan_job_cancel(), so a completion never runs for
 * a message that is gone. */
#ifndef RMILTER_SCAN_H
#define RMILTER_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "module.h"
#include "upstream.h"

struct conf_diag;
struct conf_netlist;
struct conf_serverlist;
struct rmilter_config;

struct scan_job {
	struct upstream_req *req;	/* NULL when none in flight */
	uint64_t sid, serial;
	unsigned index;
};

/* The pool NAME of CONF; made from SL and P at first use. */
struct upstream_pool *scan_pool(const struct rmilter_config *conf,
    const char *name, const struct conf_serverlist *sl,
    const struct upstream_params *p);

/* The same for a pool made of the entries of A whose "r:" flag equals
 * RSPAMD, then every entry of B (may be NULL): spamd { servers } mixes
 * rspamd and SpamAssassin servers. */
struct upstream_pool *scan_pool_split(const struct rmilter_config *conf,
    const char *name, const struct conf_serverlist *a, bool rspamd,
    const struct conf_serverlist *b, const struct upstream_params *p);

/* Starts the request; the module then returns MODULE_PENDING. */
void scan_job_start(struct scan_job *job, struct module_ctx *ctx,
    struct upstream_pool *pool, struct upstream_payload *pl,
    const struct upstream_codec *codec, void *ud, upstream_done_fn done);
/* In the completion: the module's context (NULL if the message is gone). */
struct module_ctx *scan_job_ctx(struct scan_job *job, struct module_ctx *buf);
/* Ends the completion: the pipeline goes on with the next module. */
void scan_job_resume(struct scan_job *job);
void scan_job_cancel(struct scan_job *job);

/* true (and the module marked skipped) if the client is in WL. */
bool scan_client_skip(struct module_ctx *ctx, const struct conf_netlist *wl);

/* Every server failed: tempfail the message or let it pass, per policy;
 * the record gets the server and the error either way. */
void scan_failed(struct module_ctx *ctx, const char *scanner, bool tempfail,
    const struct upstream_result *r);

/* Sets header NAME to VALUE: every existing instance is removed first, so
 * a sender cannot forge it. */
void scan_header_set(struct module_ctx *ctx, const char *name,
    const char *value);
/* Number of headers NAME the message has; the first one's value in *FIRST. */
unsigned scan_header_count(struct module_ctx *ctx, const char *name,
    const char **first);

/* The macro value, or NULL. */
const char *scan_macro(struct module_ctx *ctx, const char *name);

/* Config test: warns when the scanners' worst case (attempts x (connect +
 * results timeout) + pauses) exceeds Postfix's milter_content_timeout. */
void scan_check_config(const struct rmilter_config *conf,
    struct conf_diag *diag);

#endif
