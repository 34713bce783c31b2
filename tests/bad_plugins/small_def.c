/* Struct sizes below ABI 1.0's: not built against any ghl_step.h. */
#include "bad_plugins.h"
static const struct ghl_step_def steps[] = {{"SMALL_DEF", "1", NULL, "", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_STEP_ABI_MAJOR,
				    GHL_STEP_ABI_MINOR,
				    sizeof(struct ghl_plugin),
				    offsetof(struct ghl_step_def, compensate),
				    "small_def",
				    NULL,
				    steps,
				    1,
				    "1"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
