#include <stdio.h>
#include "bad_plugins.h"
static int init(const struct ghl_host_api *h, char *err, size_t n)
{
	(void)h;
	snprintf(err, n, "missing licence file /etc/example.lic");
	return -1;
}
static const struct ghl_step_def steps[] = {{"INIT_FAILS", "1", NULL, "", bp_run, NULL, NULL}};
static const struct ghl_plugin p = {GHL_PLUGIN_HEADER, "init_fails", init, steps, 1, "1"};
BP_EXPORT const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &p;
}
