/* step_loader.h — fill a registry with every step the configuration names:
 * C plugins from plugin_dir (default: the built-in ones, build tree or
 * installed) and, when the Lua host is present, scripts from step_dir. */
#ifndef GHL_STEP_LOADER_H
#define GHL_STEP_LOADER_H

struct config;
struct step_registry;

void step_loader_load_all(struct step_registry *r, const struct config *cfg);

#endif
