#include "bad_plugins.h"
static const struct ghl_step_def steps[] = {{"BAD_SIZE", "1", NULL, "", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_STEP_ABI_MAJOR,
				    GHL_STEP_ABI_MINOR,
				    sizeof(struct ghl_plugin) + 8,
				    sizeof(struct ghl_step_def),
				    "bad_size",
				    NULL,
				    steps,
				    1,
				    "1"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
