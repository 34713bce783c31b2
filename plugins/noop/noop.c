/* noop — a step that does nothing: NOOP (benchmarks, tests, and the smallest
 * example of the ABI). Config: {"output": any JSON value, optional}. */
#include "ghl_step.h"

static const struct ghl_host_api *host;

static int noop_run(ghl_step_ctx *ctx)
{
	const char *out = host->get(ctx, GHL_SRC_CONFIG, "output");
	if (out)
		host->set_output(ctx, "noop", host->quote(ctx, out));
	return GHL_STEP_DONE;
}

static int noop_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"NOOP", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"output\":{\"type\":\"string\"}},"
	 "\"additionalProperties\":false}",
	 "does nothing (benchmarks and tests)", noop_run, NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "noop", noop_init, steps, sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
