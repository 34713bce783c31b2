/* step_loader.h — fill a registry with every step the configuration names:
 * C plugins from plugin_dir (default: the built-in ones, build tree or
 * installed) and, when the Lua host is present, scripts from step_dir. */
#ifndef GHL_STEP_LOADER_H
#define GHL_STEP_LOADER_H

#include "util.h"

struct config;
struct step_impl;
struct step_registry;

void step_loader_load_all(struct step_registry *r, const struct config *cfg);

/* SIGHUP: the plugins whose files changed, then the Lua scripts; new jobs
 * get the new versions, runs in flight keep the ones they hold, and a
 * refused new version leaves the running one in place (logged). */
void step_loader_reload_all(struct step_registry *r, const struct config *cfg);

/* One step from one file, for `ghl-agent step run`: a Lua script, or a C
 * plugin (.so) — the step named `step`, or its only one when step is NULL.
 * Returns a reference (drop it with step_impl_unref), or NULL with e saying
 * why. */
struct step_impl *step_loader_load_file(const char *path, const char *step,
					const struct config *cfg, struct err *e);

#endif
