/* step_loader.c — see step_loader.h. */
#include "step_loader.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "lua_host.h"
#include "paths.h"
#include "plugin_loader.h"
#include "registry.h"
#include "step_host.h"

static char *plugin_dir(const struct config *cfg)
{
	return cfg->plugin_dir[0] ? xstrdup(cfg->plugin_dir) : paths_plugin_dir();
}

static const struct step_builtin *builtins;

void step_loader_set_builtins(const struct step_builtin *table)
{
	builtins = table;
}

void step_loader_load_all(struct step_registry *r, const struct config *cfg)
{
	for (const struct step_builtin *b = builtins; b && b->name; b++) {
		char *source = xasprintf("built-in %s", b->name);
		plugin_loader_add_static(r, source, b->entry, step_host_api());
		free(source);
	}
	char *pdir = plugin_dir(cfg);
	struct stat st;
	if (cfg->plugin_dir[0] || !builtins || !stat(pdir, &st))
		plugin_loader_load_dir(r, pdir, step_host_api());
	free(pdir);
	lua_host_load_all(r, cfg, 0);
}

void step_loader_reload_all(struct step_registry *r, const struct config *cfg)
{
	char *pdir = plugin_dir(cfg);
	plugin_loader_reload_dir(r, pdir, step_host_api());
	free(pdir);
	lua_host_load_all(r, cfg, 1);
}

/* The step of a plugin file: the one named, or the only one. */
static struct step_impl *plugin_step(const char *path, const char *step, struct err *e)
{
	struct step_registry *r = step_registry_new();
	struct step_impl *impl = NULL;
	if (!plugin_loader_load_file(r, path, step_host_api())) {
		err_set(e, "%s: %s", path, r->nrefusals ? r->refusals[0].reason : "refused");
	} else if (step) {
		impl = step_registry_find(r, step);
		if (!impl) {
			char *names = step_registry_names(r);
			err_set(e, "%s has no step \"%s\"; its steps: %s", path, step, names);
			free(names);
		}
	} else if (r->n == 1) {
		impl = r->steps[0];
	} else {
		char *names = step_registry_names(r);
		err_set(e, "%s has %zu steps (%s): name one with --step", path, r->n, names);
		free(names);
	}
	if (impl)
		step_impl_ref(impl);
	step_registry_free(r);
	return impl;
}

struct step_impl *step_loader_load_file(const char *path, const char *step,
					const struct config *cfg, struct err *e)
{
	size_t l = strlen(path);
	if (l > 3 && !strcmp(path + l - 3, ".so"))
		return plugin_step(path, step, e);
	struct lua_host_limits lim;
	lua_host_limits_from_config(cfg, &lim);
	struct step_impl *impl = lua_host_load(path, &lim, e);
	if (impl && step && strcmp(impl->name, step)) {
		err_set(e, "%s defines step \"%s\", not \"%s\"", path, impl->name, step);
		step_impl_unref(impl);
		return NULL;
	}
	return impl;
}
