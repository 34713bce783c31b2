/* lua_host.c — Lua scripts as steps: loading, the step ops (runs as
 * coroutines that yield in ghl.request), and the host API scripts see
 * (ctx, ghl, log). See lua_host.h. */
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
#include "runner.h"
#include "schema.h"

#define SCRIPT_MAX_BYTES (1024 * 1024)

/* Raised by ghl.fail(): the host already holds the failure (message, retryable). */
static char failed_sentinel;

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

/* ---- the API inside a run ---------------------------------------------------- */

static struct lua_run *need_run(lua_State *L, const char *what)
{
	struct lua_run *r = lua_sandbox_run(L);
	if (!r || !r->ctx)
		luaL_error(L, "%s is only available while run() executes", what);
	if (r->dead) {
		lua_pushstring(L, r->dead_msg);
		lua_error(L);
	}
	return r;
}

static const char *const ctx_sources[] = {"job", "client", "config", "outputs", NULL};

static int ctx_set(lua_State *L);

/* ctx.job / ctx.client / ctx.config / ctx.outputs are built on first use. */
static int ctx_index(lua_State *L)
{
	const char *key = lua_tostring(L, 2);
	if (!key)
		return 0;
	if (!strcmp(key, "set")) {
		lua_pushcfunction(L, ctx_set);
		return 1;
	}
	int known = 0;
	for (size_t i = 0; ctx_sources[i]; i++)
		known |= !strcmp(key, ctx_sources[i]);
	if (!known)
		return 0;
	struct lua_run *r = need_run(L, "ctx");
	const char *text = r->host->get(r->ctx, key, "");
	if (text)
		lua_sandbox_push_json_text(L, text, strlen(text));
	else
		lua_newtable(L);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

/* ctx:set(key, value): record an output (any JSON-able value). */
static int ctx_set(lua_State *L)
{
	struct lua_run *r = need_run(L, "ctx:set");
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *key = luaL_checkstring(L, 2);
	luaL_checkany(L, 3);
	struct buf b;
	struct err e;
	buf_init(&b);
	if (lua_sandbox_to_json(L, 3, &b, &e)) {
		buf_free(&b);
		return luaL_error(L, "ctx:set(\"%s\"): %s", key, e.msg);
	}
	int rc = r->host->set_output(r->ctx, key, buf_cstr(&b));
	buf_free(&b);
	if (rc)
		return luaL_error(L, "ctx:set(\"%s\"): the value was refused", key);
	return 0;
}

/* The arguments joined with spaces, as tostring() writes them. */
static const char *join_args(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

static int do_log(lua_State *L, int level)
{
	const char *msg = join_args(L);
	struct lua_run *r = lua_sandbox_run(L);
	if (r && r->ctx) {
		r->host->log(r->ctx, level, "%s", msg);
	} else {
		void *ud;
		lua_getallocf(L, &ud);
		log_msg(level <= GHL_LOG_INFO ? LOG_INFO : (enum log_level)level, msg, "script",
			((struct lua_script *)ud)->file, NULL);
	}
	return 0;
}

static int l_log_debug(lua_State *L)
{
	return do_log(L, GHL_LOG_DEBUG);
}

static int l_log_info(lua_State *L)
{
	return do_log(L, GHL_LOG_INFO);
}

static int l_log_warn(lua_State *L)
{
	return do_log(L, GHL_LOG_WARN);
}

static int l_log_error(lua_State *L)
{
	return do_log(L, GHL_LOG_ERROR);
}

/* Resumed after ghl.request: status, body (decoded, or nil), headers. */
static int request_cont(lua_State *L, int status, lua_KContext kctx)
{
	(void)status;
	(void)kctx;
	struct lua_run *r = need_run(L, "ghl.request");
	lua_settop(L, 0);
	lua_pushinteger(L, r->host->response_status(r->ctx));
	const char *body = r->host->get(r->ctx, GHL_SRC_RESPONSE, "");
	if (body)
		lua_sandbox_push_json_text(L, body, strlen(body));
	else
		lua_pushnil(L);
	lua_createtable(L, 0, 1);
	const char *msg = r->host->response_message(r->ctx);
	if (msg) {
		lua_pushstring(L, msg);
		lua_setfield(L, -2, "message");
	}
	return 3;
}

static void check_yieldable(lua_State *L, struct lua_run *r, const char *what)
{
	if (L != r->th)
		luaL_error(L, "%s must be called from run() itself, not from a coroutine of the "
			      "script's own", what);
	if (!lua_isyieldable(L))
		luaL_error(L, "%s cannot be called here (inside a metamethod, an iterator or a "
			      "sort comparator)", what);
}

/* Append the query given as a table: k=v&k2=v2 (array values repeat k). */
static int query_from_table(lua_State *L, struct lua_run *r, struct buf *q)
{
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 2);
			return -1;
		}
		const char *k = lua_tostring(L, -2);
		int nv = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 1;
		for (int i = 1; i <= nv; i++) {
			if (lua_istable(L, -1))
				lua_rawgeti(L, -1, i);
			else
				lua_pushvalue(L, -1);
			const char *v = lua_isboolean(L, -1) ? (lua_toboolean(L, -1) ? "true" : "false")
							     : lua_tostring(L, -1);
			if (!v) {
				lua_pop(L, 3);
				return -1;
			}
			buf_printf(q, "%s%s=%s", q->len ? "&" : "", r->host->urlencode(r->ctx, k),
				   r->host->urlencode(r->ctx, v));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	return 0;
}

static const char *opt_field(lua_State *L, const char *name)
{
	lua_getfield(L, 1, name);
	const char *v = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
	if (!v && !lua_isnil(L, -1))
		luaL_error(L, "ghl.request: %s must be a string", name);
	return v; /* stays on the stack, so it stays valid */
}

/* ghl.request{method=, path=, query=, json=, token="agency"|"location"}
 * → status, body, headers. Yields until GHL answers. */
static int l_ghl_request(lua_State *L)
{
	struct lua_run *r = need_run(L, "ghl.request");
	check_yieldable(L, r, "ghl.request");
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	const char *method = opt_field(L, "method");
	const char *path = opt_field(L, "path");
	const char *token = opt_field(L, "token");
	if (!path || path[0] != '/')
		return luaL_error(L, "ghl.request: path must be a string starting with '/'");
	int tclass = GHL_TOKEN_AGENCY;
	if (token && !strcmp(token, "location"))
		tclass = GHL_TOKEN_LOCATION;
	else if (token && strcmp(token, "agency"))
		return luaL_error(L, "ghl.request: token must be \"agency\" or \"location\"");
	struct buf q, body;
	struct err e;
	buf_init(&q);
	buf_init(&body);
	int has_query = 0, has_body = 0, bad = 0;
	lua_getfield(L, 1, "query");
	if (lua_type(L, -1) == LUA_TSTRING) {
		buf_puts(&q, lua_tostring(L, -1));
		has_query = 1;
	} else if (lua_istable(L, -1)) {
		bad = query_from_table(L, r, &q) ? 1 : 0;
		has_query = 1;
	} else if (!lua_isnil(L, -1)) {
		bad = 1;
	}
	lua_getfield(L, 1, "json");
	if (!bad && lua_type(L, -1) == LUA_TSTRING) {
		buf_puts(&body, lua_tostring(L, -1));
		has_body = 1;
	} else if (!bad && !lua_isnil(L, -1)) {
		if (lua_sandbox_to_json(L, -1, &body, &e)) {
			buf_free(&q);
			buf_free(&body);
			return luaL_error(L, "ghl.request: json: %s", e.msg);
		}
		has_body = 1;
	}
	int rc = bad ? -1
		     : r->host->request(r->ctx, method ? method : "GET", path,
					has_query ? buf_cstr(&q) : NULL,
					has_body ? buf_cstr(&body) : NULL, tclass);
	buf_free(&q);
	buf_free(&body);
	if (bad)
		return luaL_error(L, "ghl.request: query must be a string or a table of strings");
	if (rc)
		return luaL_error(L, "ghl.request: the request was refused (see the step log)");
	r->waiting = 1;
	return lua_yieldk(L, 0, 0, request_cont);
}

static int sleep_cont(lua_State *L, int status, lua_KContext kctx)
{
	(void)L;
	(void)status;
	(void)kctx;
	return 0;
}

/* ghl.sleep(ms): suspend the run without holding the loop. */
static int l_ghl_sleep(lua_State *L)
{
	struct lua_run *r = need_run(L, "ghl.sleep");
	check_yieldable(L, r, "ghl.sleep");
	lua_Integer ms = luaL_checkinteger(L, 1);
	if (ms < 0 || ms > 3600000)
		return luaL_error(L, "ghl.sleep: ms must be between 0 and 3600000");
	if (r->host->sleep_ms(r->ctx, (int)ms))
		return luaL_error(L, "ghl.sleep: refused");
	r->waiting = 1;
	return lua_yieldk(L, 0, 0, sleep_cont);
}

/* ghl.fail(what): end the step the way the last response says (401/429/5xx/
 * timeouts retryable, other 4xx permanent with GHL's message). */
static int l_ghl_fail(lua_State *L)
{
	struct lua_run *r = need_run(L, "ghl.fail");
	r->host->fail_from_response(r->ctx, luaL_optstring(L, 1, "request"));
	lua_pushlightuserdata(L, &failed_sentinel);
	return lua_error(L);
}

void lua_host_open_api(lua_State *L, struct lua_script *s)
{
	(void)s;
	int base = lua_gettop(L);
	static const luaL_Reg ghl_fns[] = {
		{"request", l_ghl_request}, {"sleep", l_ghl_sleep}, {"fail", l_ghl_fail}, {NULL, NULL}};
	static const luaL_Reg log_fns[] = {{"debug", l_log_debug}, {"info", l_log_info},
					   {"warn", l_log_warn},   {"error", l_log_error},
					   {NULL, NULL}};
	luaL_newlib(L, ghl_fns);
	lua_sandbox_freeze_top(L);
	lua_setfield(L, base, "ghl");
	luaL_newlib(L, log_fns);
	lua_sandbox_freeze_top(L);
	lua_setfield(L, base, "log");
	lua_pushcfunction(L, l_log_info);
	lua_setfield(L, base, "print");

	lua_createtable(L, 0, 2); /* ctx's metatable */
	lua_pushcfunction(L, ctx_index);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	s->ctx_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- runs ------------------------------------------------------------------- */

/* Protected: a coroutine with driver, chunk, a fresh environment and ctx. */
static int run_setup(lua_State *L)
{
	struct lua_run *r = lua_touserdata(L, 1);
	struct lua_script *s = r->s;
	r->th = lua_newthread(L);
	lua_pushvalue(L, -1);
	r->th_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->driver_ref);
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->chunk_ref);
	lua_createtable(L, 0, 2); /* env */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_mt_ref);
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "_G");
	lua_pushvalue(L, -1);
	r->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_createtable(L, 0, 4); /* ctx */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ctx_mt_ref);
	lua_setmetatable(L, -2);
	lua_pushstring(L, r->ctx && runner_ctx_compensating(r->ctx) ? "compensate" : "run");
	lua_xmove(L, r->th, 5);
	return 0;
}

/* Protected: let the run's coroutine and environment be collected. */
static int run_teardown(lua_State *L)
{
	struct lua_run *r = lua_touserdata(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, r->th_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, r->env_ref);
	return 0;
}

static void run_free(struct lua_run *r)
{
	if (!r)
		return;
	struct lua_script *s = r->s;
	if (s->cur == r)
		s->cur = NULL;
	if (r->th_ref > 0 || r->env_ref > 0) {
		lua_pushcfunction(s->L, run_teardown);
		lua_pushlightuserdata(s->L, r);
		if (lua_pcall(s->L, 1, 0, 0) != LUA_OK)
			lua_pop(s->L, 1);
	}
	free(r);
}

/* The error at the top of th as a message naming script and line; sets
 * *retryable for {retry=true, message=…}; returns 1 for ghl.fail(). */
static int error_message(struct lua_run *r, int status, char *out, size_t outlen, int *retryable)
{
	lua_State *th = r->th;
	char where[200];
	lua_sandbox_where(r->s, th, where, sizeof(where));
	*retryable = 0;
	if (r->dead) {
		snprintf(out, outlen, "%s: %s", where, r->dead_msg);
		return 0;
	}
	int t = lua_type(th, -1);
	if (t == LUA_TLIGHTUSERDATA && lua_touserdata(th, -1) == &failed_sentinel)
		return 1;
	if (t == LUA_TSTRING) {
		/* Lua's own "file.lua:N:" prefix, else ours */
		const char *m = lua_tostring(th, -1);
		size_t fl = strlen(r->s->file);
		if (!strncmp(m, r->s->file, fl) && m[fl] == ':')
			snprintf(out, outlen, "%s", m);
		else
			snprintf(out, outlen, "%s: %s", where, m);
		return 0;
	}
	if (t == LUA_TTABLE) {
		const char *msg = NULL;
		lua_pushnil(th);
		while (lua_next(th, -2)) {
			if (lua_type(th, -2) == LUA_TSTRING) {
				const char *k = lua_tostring(th, -2);
				if (!strcmp(k, "retry"))
					*retryable = lua_toboolean(th, -1);
				else if (!strcmp(k, "message") && lua_type(th, -1) == LUA_TSTRING)
					msg = lua_tostring(th, -1); /* anchored in the table */
			}
			lua_pop(th, 1);
		}
		snprintf(out, outlen, "%s: %s", where, msg ? msg : "error raised without a message");
		return 0;
	}
	if (status == LUA_ERRMEM)
		snprintf(out, outlen, "%s: not enough memory", where);
	else
		snprintf(out, outlen, "%s: error object is a %s value", where, lua_typename(th, t));
	return 0;
}

/* Outputs returned by run() as a table: each string key becomes an output. */
static int returned_outputs(struct lua_run *r, int idx)
{
	lua_State *th = r->th;
	if (!lua_istable(th, idx))
		return GHL_STEP_DONE;
	lua_pushnil(th);
	while (lua_next(th, idx)) {
		if (lua_type(th, -2) == LUA_TSTRING) {
			struct buf b;
			struct err e;
			buf_init(&b);
			const char *k = lua_tostring(th, -2);
			int rc = lua_sandbox_to_json(th, -1, &b, &e);
			if (rc == 0 && r->host->set_output(r->ctx, k, buf_cstr(&b)))
				rc = err_set(&e, "refused");
			buf_free(&b);
			if (rc) {
				lua_pop(th, 2);
				return r->host->fail(r->ctx, 0, "%s: output \"%s\" returned by run(): %s",
						     r->s->file, k, e.msg);
			}
		}
		lua_pop(th, 1);
	}
	return GHL_STEP_DONE;
}

static int resume(struct lua_run *r, int nargs)
{
	struct lua_script *s = r->s;
	int nres = 0;
	r->waiting = 0;
	s->cur = r;
	r->resumed_us = lua_sandbox_now_us();
	int st = lua_resume(r->th, NULL, nargs, &nres);
	r->lua_us += lua_sandbox_now_us() - r->resumed_us;
	int rc;
	if (r->dead && st != LUA_OK && st != LUA_YIELD) {
		/* reported below with the limit's message */
	} else if (r->dead) {
		/* a limit was hit where no hook ran again (e.g. inside pcall at the end) */
		char where[200];
		lua_sandbox_where(s, r->th, where, sizeof(where));
		r->finished = 1;
		s->cur = NULL;
		return r->host->fail(r->ctx, 0, "%s: %s", where, r->dead_msg);
	}
	if (st == LUA_YIELD && r->waiting && !r->dead) {
		lua_pop(r->th, nres);
		rc = GHL_STEP_WAIT;
	} else if (st == LUA_YIELD) {
		char where[200];
		lua_sandbox_where(s, r->th, where, sizeof(where));
		r->finished = 1;
		rc = r->host->fail(r->ctx, 0, "%s: coroutine.yield() outside a coroutine of the "
					      "script's own; only ghl.request and ghl.sleep suspend a step",
				   where);
	} else if (st == LUA_OK) {
		r->finished = 1;
		rc = nres > 0 ? returned_outputs(r, lua_gettop(r->th) - nres + 1) : GHL_STEP_DONE;
	} else {
		char msg[600];
		int retryable;
		r->finished = 1;
		if (error_message(r, st, msg, sizeof(msg), &retryable))
			rc = GHL_STEP_FAIL; /* ghl.fail(): the host holds the failure */
		else
			rc = r->host->fail(r->ctx, retryable, "%s", msg);
	}
	s->cur = NULL;
	return rc;
}

static int lua_step_run(struct step_impl *impl, ghl_step_ctx *ctx)
{
	struct lua_script *s = impl->data;
	const struct ghl_host_api *host = runner_host_api();
	struct lua_run *r = runner_ctx_kind_data(ctx);
	if (r) {
		if (r->finished || r->dead || !r->waiting)
			return host->fail(ctx, 0, "%s: the run cannot be resumed", s->file);
		return resume(r, 0);
	}
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->ctx = ctx;
	r->host = host;
	runner_ctx_set_kind_data(ctx, r);
	s->cur = r;
	lua_pushcfunction(s->L, run_setup);
	lua_pushlightuserdata(s->L, r);
	int st = lua_pcall(s->L, 1, 0, 0);
	s->cur = NULL;
	if (st != LUA_OK) {
		lua_pop(s->L, 1);
		r->finished = 1;
		return host->fail(ctx, 0, "%s: cannot start the run: %s", s->file,
				  r->dead ? r->dead_msg : "not enough memory");
	}
	return resume(r, 4);
}

static void lua_step_end(struct step_impl *impl, ghl_step_ctx *ctx)
{
	(void)impl;
	struct lua_run *r = runner_ctx_kind_data(ctx);
	runner_ctx_set_kind_data(ctx, NULL);
	run_free(r);
}

static void script_free(struct lua_script *s)
{
	if (!s)
		return;
	if (s->L)
		lua_close(s->L);
	free(s->file);
	free(s);
}

static void lua_step_release(struct step_impl *impl)
{
	script_free(impl->data);
	impl->data = NULL;
}

static const struct step_ops lua_ops = {lua_step_run, lua_step_end, lua_step_release};

/* ---- loading ------------------------------------------------------------------ */

/* What a script's returned table says, read by read_descriptor(). */
struct descriptor {
	char *name, *version, *description;
	struct buf schema; /* JSON text; empty when none */
	int has_compensate;
	long long lim[3];  /* instructions, memory, wall_ms; 0 = global */
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
		snprintf(d->problem, sizeof d->problem, "name must be a string of letters, digits, "
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
	lua_pushcfunction(L, run_setup);
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
		if (error_message(r, st, msg, sizeof(msg), &retryable))
			snprintf(msg, sizeof(msg), "%s: ghl.fail() while loading", s->file);
		err_set(e, "%s", msg);
		goto out;
	}
	if (nres < 1) {
		err_set(e, "%s: the script returned nothing; it must return a table with name, "
			   "version and run", s->file);
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
	run_free(r);
	return rc;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

struct step_impl *lua_host_load(const char *path, const struct lua_host_limits *lim,
				struct err *e)
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
		err_set(e, "%s", lua_tostring(s->L, -1) ? lua_tostring(s->L, -1) : "cannot compile");
		goto out_free_script;
	}
	if (describe(s, &d, e))
		goto out_free_script;
	/* the script's own limits, then collect the load's garbage */
	for (int i = 0; i < 3; i++) {
		if (!d.lim[i])
			continue;
		long long *dst = i == 0 ? &s->lim.instructions : i == 1 ? &s->lim.memory
									: &s->lim.wall_ms;
		*dst = d.lim[i];
	}
	lua_sethook(s->L, lua_gethook(s->L), LUA_MASKCOUNT,
		    s->lim.instructions < 1000 ? (int)s->lim.instructions : 1000);
	lua_gc(s->L, LUA_GCCOLLECT);
	struct json *schema = NULL;
	if (d.schema.len) {
		schema = json_parse(d.schema.data, d.schema.len, 32, e);
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
	impl->ops = &lua_ops;
	impl->has_compensate = s->has_compensate;
	impl->data = s;
	impl->refs = 1;
	s = NULL;
out_free_script:
	script_free(s);
	free(text);
	free(d.name);
	free(d.version);
	free(d.description);
	buf_free(&d.schema);
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
			step_registry_refuse(r, path, "duplicate step name \"%s\": already registered "
						     "by %s", impl->name,
					     old ? old->source : "another script");
			step_impl_unref(impl);
		} else {
			seen[nseen++] = xstrdup(impl->name);
			log_info(replace && old ? "Lua step reloaded" : "Lua step loaded", "file", path,
				 "step", impl->name, "version", impl->version, NULL);
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
