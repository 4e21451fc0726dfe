/* mod_beanstalk.c -- placeholder: the beanstalk module (issue #6) is being written. */
#include <stdbool.h>

#include "conf_sections.h"
#include "module.h"

static bool
beanstalk_configured(const struct rmilter_config *conf)
{
	(void)conf;
	return false;
}

static void
beanstalk_needs(const struct rmilter_config *conf, struct policy_needs *needs)
{
	(void)conf;
	(void)needs;
}

static enum module_rc
beanstalk_run(struct module_ctx *ctx, enum policy_stage st,
    const struct module_event *ev)
{
	(void)ctx;
	(void)st;
	(void)ev;
	return MODULE_DONE;
}

const struct module_def module_beanstalk = {
	.name = "beanstalk",
	.configured = beanstalk_configured,
	.needs = beanstalk_needs,
	.run = beanstalk_run,
};
