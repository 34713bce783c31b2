/* plugin_loader.h — C step plugins into the registry: dlopen, the checks of
 * plugins/ghl_step.h (ABI versions, struct sizes up to the agent's with the
 * rest read as zeros, names, schemas, init), all or nothing per plugin, and
 * reload on SIGHUP. A plugin's code stays mapped while any of its steps is
 * referenced — by the registry or by a run in flight — and is unmapped
 * (dlclose) when the last reference goes. */
#ifndef GHL_PLUGIN_LOADER_H
#define GHL_PLUGIN_LOADER_H

#include <stddef.h>

#include "ghl_step.h"

struct step_registry;

/* Load every *.so in dir (sorted by name). Each plugin's init() is handed
 * host, the host function table its steps will call (step_host_api(); as
 * SQLite hands sqlite3_api_routines to an extension). Refusals are recorded
 * (and logged), never fatal; a missing dir is one. Returns the number of
 * steps registered. */
size_t plugin_loader_load_dir(struct step_registry *r, const char *dir,
			      const struct ghl_host_api *host);

/* SIGHUP: load again the *.so in dir that are new or changed since they
 * were last read (device, inode, size, mtime). A new version replaces the
 * steps of the old one: new jobs get it, runs in flight keep the old code
 * until they end. A refused new version leaves the running one registered,
 * and the refusal says so. Files that vanished, and steps a new version no
 * longer has, stay registered (with the code they had) until exit.
 * Returns the number of steps (re)registered. */
size_t plugin_loader_reload_dir(struct step_registry *r, const char *dir,
				const struct ghl_host_api *host);

/* Load one plugin file (`ghl-agent step run plugin.so`). Returns the number
 * of steps registered; 0 with the refusal recorded in r. */
size_t plugin_loader_load_file(struct step_registry *r, const char *path,
			       const struct ghl_host_api *host);

/* Register a plugin linked into the program (its per-plugin entry, e.g.
 * ghl_plugin_entry_noop), under source (a name for messages). Same checks
 * as a file; nothing is ever unmapped. A plugin file loaded later that has a
 * step of the same name replaces it (the built-ins linked into ghl-agent are
 * overridden by plugin_dir's .so of the same step name), where a second
 * linked-in one is refused as a duplicate. */
size_t plugin_loader_add_static(struct step_registry *r, const char *source,
				ghl_plugin_entry_fn entry, const struct ghl_host_api *host);

#endif
