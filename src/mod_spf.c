/* mod_spf.c -- placeholder: the spf module (issue #6) is being written. */
#include <stdbool.h>

#include "conf_sections.h"
#include "module.h"

static bool
spf_configured(const struct rmilter_config *conf)
{
	(void)conf;
	return false;
}

static void
spf_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	(void)conf;
	(void)needs;
}

static enum module_rc
spf_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	(void)ctx;
	(void)st;
	(void)ev;
	return MODULE_DONE;
}

const struct module_def module_spf = {
	.name = "spf",
	.configured = spf_configured,
	.needs = spf_needs,
	.run = spf_run,
};
