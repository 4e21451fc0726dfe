/* mod_dkim.c -- placeholder: the dkim module (issue #6) is being written. */
#include <stdbool.h>

#include "conf_sections.h"
#include "module.h"

static bool
dkim_configured(const struct rmilter_config *conf)
{
	(void)conf;
	return false;
}

static void
dkim_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	(void)conf;
	(void)needs;
}

static enum module_rc
dkim_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	(void)ctx;
	(void)st;
	(void)ev;
	return MODULE_DONE;
}

const struct module_def module_dkim = {
	.name = "dkim",
	.configured = dkim_configured,
	.needs = dkim_needs,
	.run = dkim_run,
};
