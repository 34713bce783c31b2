/* lua_host.c — loading Lua scripts as steps: reading a script's descriptor,
 * compiling it into a sandboxed state, and filling a registry from step_dir.
 * Runs are in lua_run.c, the API scripts see in lua_bindings.c. */
#include "lua_host.h"

#include <dirent.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "lua_host_int.h"
#include "paths.h"
#include "registry.h"
#include "schema.h"

#define SCRIPT_MAX_BYTES (1024 * 1024)
#define CLIENT_FIELDS_MAX 32

/* The script's chunk runs once per run with a fresh environment: the host
 * compiles "local _ENV=...;" + source, and this driver calls it. */
static const char driver_src[] =
	"local chunk, env, ctx, which = ...\n"
	"local d = chunk(env)\n"
	"if type(d) ~= 'table' or type(rawget(d, 'run')) ~= 'function' then\n"
	"  error('the script must return a table with a run function', 0)\n"
	"end\n"
	"local f = rawget(d, which)\n"
	"if type(f) ~= 'function' then return end\n"
	"return f(ctx)\n";

/* ---- loading ------------------------------------------------------------------ */

/* What a script's returned table says, read by read_descriptor(). */
struct descriptor {
	char *name, *version, *description;
	struct buf schema; /* JSON text; empty when none */
	int has_compensate;
	long long lim[3];		     /* instructions, memory, wall_ms; 0 = global */
	char *fields[CLIENT_FIELDS_MAX + 1]; /* client_fields, NULL-terminated */
	char problem[600];
};

static const char *raw_string(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	lua_rawget(L, t);
	const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	lua_pop(L, 1); /* the table anchors the string */
	return v;
}

static int raw_type(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	int ty = lua_rawget(L, t);
	lua_pop(L, 1);
	return ty;
}

static int valid_name(const char *n)
{
	size_t len = strlen(n);
	if (!len || len > 64 || !((n[0] >= 'A' && n[0] <= 'Z') || (n[0] >= 'a' && n[0] <= 'z')))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* client_fields = {"email", "first_name"}: the client-data fields run()
 * needs (an array of non-empty strings, or absent). 0, or -1 with d->problem. */
static int read_client_fields(lua_State *L, struct descriptor *d)
{
	lua_pushliteral(L, "client_fields");
	lua_rawget(L, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	size_t n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
	if (!lua_istable(L, -1) || n > CLIENT_FIELDS_MAX) {
		snprintf(d->problem, sizeof d->problem,
			 "client_fields must be an array of at most "
			 "%d field names, e.g. {\"email\", \"first_name\"}",
			 CLIENT_FIELDS_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i + 1);
		if (lua_type(L, -1) != LUA_TSTRING || !lua_rawlen(L, -1)) {
			snprintf(d->problem, sizeof d->problem,
				 "client_fields[%zu] must be a field name (a non-empty string)",
				 i + 1);
			return -1;
		}
		d->fields[i] = xstrdup(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

/* Protected: (descriptor table, struct descriptor *) → fields or d->problem. */
static int read_descriptor(lua_State *L)
{
	struct descriptor *d = lua_touserdata(L, 2);
	if (!lua_istable(L, 1)) {
		snprintf(d->problem, sizeof d->problem, "the script returned a %s, not a table",
			 luaL_typename(L, 1));
		return 0;
	}
	const char *name = raw_string(L, 1, "name");
	if (!name || !valid_name(name)) {
		snprintf(d->problem, sizeof d->problem,
			 "name must be a string of letters, digits, "
			 "'_' and '-' starting with a letter (at most 64)");
		return 0;
	}
	d->name = xstrdup(name);
	lua_pushliteral(L, "version");
	lua_rawget(L, 1);
	if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
		d->version = xstrdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	if (!d->version) {
		snprintf(d->problem, sizeof d->problem, "version must be a string, e.g. \"1.0.0\"");
		return 0;
	}
	const char *desc = raw_string(L, 1, "description");
	d->description = xstrdup(desc ? desc : "");
	if (raw_type(L, 1, "run") != LUA_TFUNCTION) {
		snprintf(d->problem, sizeof d->problem, "run must be a function(ctx)");
		return 0;
	}
	int ct = raw_type(L, 1, "compensate");
	if (ct != LUA_TNIL && ct != LUA_TFUNCTION) {
		snprintf(d->problem, sizeof d->problem, "compensate must be a function or absent");
		return 0;
	}
	d->has_compensate = ct == LUA_TFUNCTION;
	lua_pushliteral(L, "config_schema");
	lua_rawget(L, 1);
	if (lua_istable(L, -1)) {
		struct err e;
		if (lua_sandbox_to_json(L, -1, &d->schema, &e)) {
			snprintf(d->problem, sizeof d->problem, "config_schema: %s", e.msg);
			return 0;
		}
	} else if (!lua_isnil(L, -1)) {
		snprintf(d->problem, sizeof d->problem, "config_schema must be a table or absent");
		return 0;
	}
	lua_pop(L, 1);
	if (read_client_fields(L, d))
		return 0;
	lua_pushliteral(L, "limits");
	lua_rawget(L, 1);
	if (lua_istable(L, -1)) {
		static const char *const keys[] = {"instructions", "memory", "wall_ms"};
		for (int i = 0; i < 3; i++) {
			lua_pushstring(L, keys[i]);
			lua_rawget(L, -2);
			if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0)
				d->lim[i] = lua_tointeger(L, -1);
			else if (!lua_isnil(L, -1)) {
				snprintf(d->problem, sizeof d->problem,
					 "limits.%s must be a positive integer", keys[i]);
				return 0;
			}
			lua_pop(L, 1);
		}
	} else if (!lua_isnil(L, -1)) {
		snprintf(d->problem, sizeof d->problem, "limits must be a table or absent");
		return 0;
	}
	return 0;
}

/* Protected: compile the driver and the script (chunk source in upvalue-free
 * argument 2, length 3); leaves the load error message on failure. */
static int compile(lua_State *L)
{
	struct lua_script *s = lua_touserdata(L, 1);
	size_t len;
	const char *src = lua_tolstring(L, 2, &len);
	if (luaL_loadbufferx(L, driver_src, sizeof(driver_src) - 1, "=driver", "t") != LUA_OK)
		return lua_error(L);
	s->driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	char *chunkname = xasprintf("@%s", s->file);
	int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
	free(chunkname);
	if (rc != LUA_OK)
		return lua_error(L);
	s->chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

/* Run the chunk once (limits on, no ctx) to read its descriptor. */
static int describe(struct lua_script *s, struct descriptor *d, struct err *e)
{
	lua_State *L = s->L;
	struct lua_run *r = xcalloc(1, sizeof(*r));
	r->s = s;
	s->cur = r;
	lua_pushcfunction(L, lua_run_setup);
	lua_pushlightuserdata(L, r);
	int rc = -1;
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		lua_pop(L, 1);
		err_set(e, "%s: not enough memory", s->file);
		goto out;
	}
	/* resume the chunk alone: (chunk, env) — drop the driver, ctx and which */
	lua_State *th = r->th;
	lua_pop(th, 2);
	lua_remove(th, 1);
	int nres = 0;
	r->resumed_us = lua_sandbox_now_us();
	int st = lua_resume(th, NULL, 1, &nres);
	if (st == LUA_YIELD) {
		err_set(e, "%s: the script yielded while loading", s->file);
		goto out;
	}
	if (st != LUA_OK) {
		char msg[600];
		int retryable;
		if (lua_run_error(r, st, msg, sizeof(msg), &retryable))
			snprintf(msg, sizeof(msg), "%s: ghl.fail() while loading", s->file);
		err_set(e, "%s", msg);
		goto out;
	}
	if (nres < 1) {
		err_set(e,
			"%s: the script returned nothing; it must return a table with name, "
			"version and run",
			s->file);
		goto out;
	}
	lua_settop(th, lua_gettop(th) - nres + 1);
	lua_xmove(th, L, 1);
	lua_pushcfunction(L, read_descriptor);
	lua_insert(L, -2);
	lua_pushlightuserdata(L, d);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		lua_pop(L, 1);
		err_set(e, "%s: not enough memory", s->file);
		goto out;
	}
	if (d->problem[0]) {
		err_set(e, "%s: %s", s->file, d->problem);
		goto out;
	}
	rc = 0;
out:
	s->cur = NULL;
	lua_run_free(r);
	return rc;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

struct step_impl *lua_host_load(const char *path, const struct lua_host_limits *lim, struct err *e)
{
	char *text = NULL;
	size_t len = 0;
	struct step_impl *impl = NULL;
	struct descriptor d;
	memset(&d, 0, sizeof(d));
	buf_init(&d.schema);
	if (file_read_all(path, &text, &len, e))
		return NULL;
	if (len > SCRIPT_MAX_BYTES) {
		err_set(e, "%s: larger than %d bytes", path, SCRIPT_MAX_BYTES);
		free(text);
		return NULL;
	}
	struct lua_script *s = xcalloc(1, sizeof(*s));
	s->file = xstrdup(base_name(path));
	s->lim = *lim;
	s->L = lua_sandbox_new(s);
	if (!s->L) {
		err_set(e, "%s: cannot create a Lua state", s->file);
		goto out_free_script;
	}
	/* one line: the script's line numbers stay; a #! line becomes a comment */
	char *src = xasprintf("local _ENV = ...; %s%s", text[0] == '#' ? "--" : "", text);
	lua_pushcfunction(s->L, compile);
	lua_pushlightuserdata(s->L, s);
	lua_pushstring(s->L, src);
	free(src);
	if (lua_pcall(s->L, 2, 0, 0) != LUA_OK) {
		err_set(e, "%s",
			lua_tostring(s->L, -1) ? lua_tostring(s->L, -1) : "cannot compile");
		goto out_free_script;
	}
	if (describe(s, &d, e))
		goto out_free_script;
	/* the script's own limits, then collect the load's garbage */
	for (int i = 0; i < 3; i++) {
		if (!d.lim[i])
			continue;
		long long *dst = i == 0	  ? &s->lim.instructions
				 : i == 1 ? &s->lim.memory
					  : &s->lim.wall_ms;
		*dst = d.lim[i];
	}
	lua_sethook(s->L, lua_gethook(s->L), LUA_MASKCOUNT,
		    s->lim.instructions < 1000 ? (int)s->lim.instructions : 1000);
	lua_gc(s->L, LUA_GCCOLLECT);
	struct json *schema = NULL;
	if (d.schema.len) {
		schema = json_parse(d.schema.data, d.schema.len, JSON_DEFAULT_MAX_DEPTH, e);
		if (!schema || schema_check(schema, e)) {
			err_prefix(e, "%s: config_schema: ", s->file);
			json_free(schema);
			goto out_free_script;
		}
	}
	s->has_compensate = d.has_compensate;
	impl = xcalloc(1, sizeof(*impl));
	impl->name = d.name;
	impl->version = d.version;
	impl->description = d.description;
	d.name = d.version = d.description = NULL;
	impl->source = xstrdup(path);
	impl->schema = schema;
	impl->kind = STEP_KIND_LUA;
	impl->ops = &lua_step_ops;
	impl->has_compensate = s->has_compensate;
	impl->data = s;
	impl->refs = 1;
	step_impl_set_client_fields(impl, (const char *const *)d.fields);
	s = NULL;
out_free_script:
	lua_script_free(s);
	free(text);
	free(d.name);
	free(d.version);
	free(d.description);
	for (size_t i = 0; d.fields[i]; i++)
		free(d.fields[i]);
	buf_clear(&d.schema);
	return impl;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t lua_host_load_dir(struct step_registry *r, const char *dir,
			 const struct lua_host_limits *lim, int replace)
{
	DIR *dh = opendir(dir);
	if (!dh) {
		step_registry_refuse(r, dir, "cannot open step_dir: %m");
		return 0;
	}
	char **names = NULL;
	size_t n = 0, ok = 0;
	struct dirent *de;
	while ((de = readdir(dh)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l > 4 && de->d_name[0] != '.' && !strcmp(de->d_name + l - 4, ".lua")) {
			names = xrealloc(names, (n + 1) * sizeof(char *));
			names[n++] = xstrdup(de->d_name);
		}
	}
	closedir(dh);
	if (n)
		qsort(names, n, sizeof(char *), cmp_str);
	char **seen = xcalloc(n + 1, sizeof(char *)); /* names loaded in this pass */
	size_t nseen = 0;
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		struct err e;
		struct step_impl *impl = lua_host_load(path, lim, &e);
		struct step_impl *old = impl ? step_registry_find(r, impl->name) : NULL;
		const char *dup = NULL;
		for (size_t k = 0; impl && k < nseen; k++)
			if (!strcmp(seen[k], impl->name))
				dup = impl->name;
		if (!impl) {
			step_registry_refuse(r, path, "%s%s", e.msg,
					     replace ? " (the running version stays)" : "");
		} else if (dup || (old && (!replace || old->kind != STEP_KIND_LUA))) {
			step_registry_refuse(r, path,
					     "duplicate step name \"%s\": already registered "
					     "by %s",
					     impl->name, old ? old->source : "another script");
			step_impl_unref(impl);
		} else {
			seen[nseen++] = xstrdup(impl->name);
			log_info(replace && old ? "Lua step reloaded" : "Lua step loaded", "file",
				 path, "step", impl->name, "version", impl->version, NULL);
			if (replace)
				step_registry_replace(r, impl);
			else
				step_registry_add(r, impl, &e);
			ok++;
		}
		free(path);
		free(names[i]);
	}
	for (size_t k = 0; k < nseen; k++)
		free(seen[k]);
	free(seen);
	free(names);
	return ok;
}

void lua_host_limits_from_config(const struct config *cfg, struct lua_host_limits *out)
{
	out->instructions = cfg->lua_max_instructions;
	out->memory = cfg->lua_max_memory;
	out->wall_ms = cfg->lua_max_wall_ms;
}

char *lua_host_step_dir(const struct config *cfg)
{
	return cfg->step_dir[0] ? xstrdup(cfg->step_dir) : paths_data_dir("steps");
}

size_t lua_host_load_all(struct step_registry *r, const struct config *cfg, int replace)
{
	struct lua_host_limits lim;
	lua_host_limits_from_config(cfg, &lim);
	char *dir = lua_host_step_dir(cfg);
	size_t n = lua_host_load_dir(r, dir, &lim, replace);
	free(dir);
	return n;
}
