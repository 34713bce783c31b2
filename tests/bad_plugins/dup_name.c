#include "bad_plugins.h"
/* "zz_" sorts after noop.so, so NOOP is already registered when this loads */
static const struct ghl_step_def steps[] = {{"NOOP", "9", NULL, "", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_PLUGIN_HEADER, "dup_name", NULL, steps, 1, "1"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
