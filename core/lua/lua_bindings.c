/* lua_bindings.c — what a Lua step sees inside a run: ctx (the job's data
 * and the step's outputs), ghl.request / ghl.sleep / ghl.task (yielding the
 * coroutine until the host answers), ghl.fail, log.* and print. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "lua_host_int.h"

/* Raised by ghl.fail(): the host already holds the failure (message, retryable). */
char lua_host_failed_sentinel;

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

/* The bytes the host keeps for output `key` (the string at key_idx), as
 * recorded in r's held table; with len >= 0, record len instead. */
static long long held_bytes(lua_State *L, struct lua_run *r, int key_idx, long long len)
{
	if (r->held_ref <= 0) {
		lua_newtable(L);
		r->held_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->held_ref);
	lua_pushvalue(L, key_idx);
	if (len >= 0) {
		lua_pushinteger(L, (lua_Integer)len);
		lua_rawset(L, -3);
		lua_pop(L, 1);
		return len;
	}
	lua_rawget(L, -2);
	long long old = lua_tointeger(L, -1);
	lua_pop(L, 2);
	return old;
}

/* ctx:set(key, value): record an output (any JSON-able value). The host
 * keeps its text until the step ends: it counts against the memory limit
 * (a key set again counts once, with its new value). */
static int ctx_set(lua_State *L)
{
	struct lua_run *r = need_run(L, "ctx:set");
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *key = luaL_checkstring(L, 2);
	luaL_checkany(L, 3);
	long long old = held_bytes(L, r, 2, -1);
	struct buf b;
	struct err e;
	buf_init(&b);
	r->held -= old; /* replaced if the new value is taken */
	int rc = lua_sandbox_to_json(L, 3, &b, &e);
	if (rc == 0)
		rc = r->host->set_output(r->ctx, key, buf_cstr(&b)) ? 1 : 0;
	r->held += rc ? old : (long long)b.len;
	size_t len = b.len;
	buf_clear(&b);
	if (rc < 0)
		return luaL_error(L, "ctx:set(\"%s\"): %s", key, e.msg);
	if (rc)
		return luaL_error(L, "ctx:set(\"%s\"): the value was refused", key);
	held_bytes(L, r, 2, (long long)len);
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
		luaL_error(L,
			   "%s must be called from run() itself, not from a coroutine of the "
			   "script's own",
			   what);
	if (!lua_isyieldable(L))
		luaL_error(L,
			   "%s cannot be called here (inside a metamethod, an iterator or a "
			   "sort comparator)",
			   what);
}

/* Append the query given as a table: k=v&k2=v2 (array values repeat k).
 * -1: not a table of strings; -2: over the memory limit (the run is dead). */
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
			const char *v = lua_isboolean(L, -1)
						? (lua_toboolean(L, -1) ? "true" : "false")
						: lua_tostring(L, -1);
			if (!v) {
				lua_pop(L, 3);
				return -1;
			}
			/* encoded, each byte may become 3, once in q and once in the
			 * host's copy of the piece */
			if (lua_sandbox_host_room(L, 2 * q->len, 6 * (strlen(k) + strlen(v)) + 2)) {
				lua_pop(L, 3);
				return -2;
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
		bad = query_from_table(L, r, &q);
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
			buf_clear(&q);
			buf_clear(&body);
			return luaL_error(L, "ghl.request: json: %s", e.msg);
		}
		has_body = 1;
	}
	int rc = bad ? -1
		     : r->host->request(r->ctx, method ? method : "GET", path,
					has_query ? buf_cstr(&q) : NULL,
					has_body ? buf_cstr(&body) : NULL, tclass);
	buf_clear(&q);
	buf_clear(&body);
	if (bad == -2)
		return luaL_error(L, "%s", r->dead_msg);
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

/* ghl.task{title=, checklist=, due_in_days=, assignee_role=, on_reject=}:
 * people in the loop, as the TASK step (the host's task()). The first call
 * parks the job — this run ends there, holding nothing — and once a person
 * completes or rejects the task the step runs again from the top, where the
 * same call answers the ended task: {id, status = "COMPLETED" | "REJECTED",
 * note, outputs, completed_by}. */
static int task_cont(lua_State *L, int status, lua_KContext kctx)
{
	(void)status;
	(void)kctx;
	struct lua_run *r = need_run(L, "ghl.task");
	lua_settop(L, 0);
	const char *body = r->host->get(r->ctx, GHL_SRC_RESPONSE, "");
	if (r->host->response_status(r->ctx) != 200 || !body) {
		r->host->fail_from_response(r->ctx, "storing the task");
		lua_pushlightuserdata(L, &lua_host_failed_sentinel);
		return lua_error(L);
	}
	lua_sandbox_push_json_text(L, body, strlen(body));
	return 1;
}

static int l_ghl_task(lua_State *L)
{
	struct lua_run *r = need_run(L, "ghl.task");
	check_yieldable(L, r, "ghl.task");
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	struct buf spec;
	struct err e;
	buf_init(&spec);
	if (lua_sandbox_to_json(L, 1, &spec, &e)) {
		buf_clear(&spec);
		return luaL_error(L, "ghl.task: %s", e.msg);
	}
	int rc = r->host->task(r->ctx, buf_cstr(&spec));
	buf_clear(&spec);
	if (rc)
		return luaL_error(L, "ghl.task: the task was refused (see the step log)");
	r->waiting = 1;
	return lua_yieldk(L, 0, 0, task_cont);
}

/* ghl.fail(what): end the step the way the last response says (401/429/5xx/
 * timeouts retryable, other 4xx permanent with GHL's message). */
static int l_ghl_fail(lua_State *L)
{
	struct lua_run *r = need_run(L, "ghl.fail");
	r->host->fail_from_response(r->ctx, luaL_optstring(L, 1, "request"));
	lua_pushlightuserdata(L, &lua_host_failed_sentinel);
	return lua_error(L);
}

void lua_host_open_api(lua_State *L, struct lua_script *s)
{
	(void)s;
	int base = lua_gettop(L);
	static const luaL_Reg ghl_fns[] = {{"request", l_ghl_request},
					   {"sleep", l_ghl_sleep},
					   {"fail", l_ghl_fail},
					   {"task", l_ghl_task},
					   {NULL, NULL}};
	static const luaL_Reg log_fns[] = {{"debug", l_log_debug},
					   {"info", l_log_info},
					   {"warn", l_log_warn},
					   {"error", l_log_error},
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
