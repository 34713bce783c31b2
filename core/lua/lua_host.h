/* lua_host.h — Lua 5.4 scripts as pipeline steps (DESIGN.md "Lua steps").
 *
 * A script steps/NAME.lua returns
 *   {name=, version=, description=, config_schema=, limits=, run=function(ctx) … end,
 *    compensate=function(ctx) … end}
 * and becomes a step_impl of kind STEP_KIND_LUA in the same registry as the C
 * plugins. Each loaded version of a script owns one sandboxed lua_State; every
 * run of the step is a fresh coroutine of that state with a fresh global
 * environment, in which the script's chunk is executed again, so runs share
 * no mutable state. ghl.request yields the coroutine: the step returns
 * GHL_STEP_WAIT and is resumed when the runner calls it again.
 *
 * Limits (instructions, memory, Lua execution time) hold per run; hitting one
 * ends the run FAILED, and the script cannot catch it with pcall.
 */
#ifndef GHL_LUA_HOST_H
#define GHL_LUA_HOST_H

#include <stddef.h>

#include "util.h"

struct config;
struct step_impl;
struct step_registry;

struct lua_host_limits {
	long long instructions; /* VM instructions per run (count hook) */
	long long memory;	/* bytes a run may hold (allocator) */
	long long wall_ms;	/* time spent running Lua per run (waits on GHL excluded) */
};

/* The global limits of cfg (lua_max_instructions, lua_max_memory, lua_max_wall_ms). */
void lua_host_limits_from_config(const struct config *cfg, struct lua_host_limits *out);

/* Where scripts are read from: cfg->step_dir, else the shipped steps/
 * folder (build tree or installed). malloc'd. */
char *lua_host_step_dir(const struct config *cfg);

/* Load one script. Returns a step_impl holding one reference (the caller's),
 * or NULL with e->msg naming the file and, where Lua knows it, the line. */
struct step_impl *lua_host_load(const char *path, const struct lua_host_limits *lim, struct err *e);

/* Load every *.lua in dir (sorted by name) into r. A script that fails to
 * load, or whose name is taken (by a plugin or another script), is recorded
 * as a refusal. With replace set (SIGHUP), a script replaces the Lua step of
 * the same name — runs in flight keep the version they hold — while a name
 * held by a C plugin is still refused; on failure the old version stays.
 * Returns the number of scripts registered. */
size_t lua_host_load_dir(struct step_registry *r, const char *dir,
			 const struct lua_host_limits *lim, int replace);

/* Load (or, with replace, reload) the scripts cfg names. */
size_t lua_host_load_all(struct step_registry *r, const struct config *cfg, int replace);

#endif
