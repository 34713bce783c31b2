#include "bad_plugins.h"
static const struct ghl_step_def steps[] = {
	{"BAD_SCHEMA", "1", "{\"type\":\"object\",\"pattern\":\"x\"}", "", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_PLUGIN_HEADER, "bad_schema", NULL, steps, 1, "1"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
