/* noop — a step that does nothing: NOOP (benchmarks, tests, and the smallest
 * example of the ABI). Config: {"output": string, optional}, copied to the
 * output "noop". */
#include "ghl_step.h"

GHL_STEP_HOST;

static int noop_run(ghl_step_ctx *ctx)
{
	const char *out = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH("output"));
	if (out)
		host->set_output(ctx, "noop", host->quote(ctx, out));
	return GHL_STEP_DONE;
}

static const struct ghl_step_def steps[] = {
	{"NOOP", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"output\":{\"type\":\"string\"}},"
	 "\"additionalProperties\":false}",
	 "does nothing (benchmarks and tests)", noop_run, NULL, NULL},
};

GHL_STEP_PLUGIN(noop, "1.0.0", NULL, steps)
