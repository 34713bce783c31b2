#include "bad_plugins.h"
static const struct ghl_step_def steps[] = {{"BAD_MAJOR", "1", NULL, "", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_STEP_ABI_MAJOR + 1,
				    0,
				    sizeof(struct ghl_plugin),
				    sizeof(struct ghl_step_def),
				    "bad_major",
				    NULL,
				    steps,
				    1,
				    "1"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
