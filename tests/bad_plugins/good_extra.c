/* A valid plugin with two steps, loaded beside the broken ones. */
#include "bad_plugins.h"
static const struct ghl_step_def steps[] = {
	{"EXTRA_ONE", "2.0.0", NULL, "first", bp_run, NULL, NULL},
	{"EXTRA_TWO", "2.0.0", NULL, "second", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_PLUGIN_HEADER, "good_extra", NULL, steps, 2, "2.0.0"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
