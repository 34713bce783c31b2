/* A plugin built against the ABI 1.0 header (a smaller struct ghl_plugin,
 * the 1.0 host table, the plain entry name): it must keep loading and running. */
#include "ghl_step_1_0.h"

static const struct ghl_host_api *host;

static int run(ghl_step_ctx *ctx)
{
	const char *name = host->get(ctx, GHL_SRC_CLIENT, "name");
	host->set_output(ctx, "greeting",
			 host->quote(ctx, host->format(ctx, "hello %s", name ? name : "?")));
	host->set_output(ctx, "host_minor", host->format(ctx, "%u", host->abi_minor));
	return GHL_STEP_DONE;
}

static int init(const struct ghl_host_api *h, char *err, size_t n)
{
	(void)err;
	(void)n;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"ABI_1_0", "1.0.0", NULL, "built against ABI 1.0", run, NULL}};
static const struct ghl_plugin p = {GHL_PLUGIN_HEADER, "abi_1_0", init, steps, 1};
__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
