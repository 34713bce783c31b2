/* step_loader.c — see step_loader.h. */
#include "step_loader.h"

#include <stdlib.h>

#include "config.h"
#include "lua_host.h"
#include "paths.h"
#include "registry.h"
#include "step_host.h"

void step_loader_load_all(struct step_registry *r, const struct config *cfg)
{
	char *pdir = cfg->plugin_dir[0] ? xstrdup(cfg->plugin_dir) : paths_plugin_dir();
	step_registry_load_plugins(r, pdir, step_host_api());
	free(pdir);
	lua_host_load_all(r, cfg, 0);
}
