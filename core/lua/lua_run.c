/* lua_run.c — one run of a Lua step as a coroutine of its script's state:
 * set-up, resume, the returned outputs, error messages naming script and
 * line, and the step ops a run calls (run, release). The run lives in the
 * host's per-run state (set_state), which frees it however the run ends. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "lua_host_int.h"
#include "step_host.h"

/* ---- runs ------------------------------------------------------------------- */

/* Protected: a coroutine with driver, chunk, a fresh environment and ctx. */
int lua_run_setup(lua_State *L)
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
	lua_pushstring(L, r->compensate ? "compensate" : "run");
	lua_xmove(L, r->th, 5);
	return 0;
}

/* Protected: let the run's coroutine and environment be collected. */
static int run_teardown(lua_State *L)
{
	struct lua_run *r = lua_touserdata(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, r->th_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, r->env_ref);
	if (r->held_ref > 0)
		luaL_unref(L, LUA_REGISTRYINDEX, r->held_ref);
	return 0;
}

struct lua_run *lua_run_free(struct lua_run *r)
{
	if (!r)
		return NULL;
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
	return NULL;
}

/* The error at the top of th as a message naming script and line; sets
 * *retryable for {retry=true, message=…}; returns 1 for ghl.fail(). */
int lua_run_error(struct lua_run *r, int status, char *out, size_t outlen, int *retryable)
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
	if (t == LUA_TLIGHTUSERDATA && lua_touserdata(th, -1) == &lua_host_failed_sentinel)
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
		snprintf(out, outlen, "%s: %s", where,
			 msg ? msg : "error raised without a message");
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
			else if (rc == 0)
				r->held += (long long)b.len;
			buf_clear(&b);
			if (rc) {
				lua_pop(th, 2);
				return r->host->fail(r->ctx, 0,
						     "%s: output \"%s\" returned by run(): %s",
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
	/* a long C call ran where no hook could look at the clock: charge it now */
	if (r->lua_us > s->lim.wall_ms * 1000)
		lua_sandbox_kill(r, "time limit of %lld ms exceeded", s->lim.wall_ms);
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
		rc = r->host->fail(r->ctx, 0,
				   "%s: coroutine.yield() outside a coroutine of the "
				   "script's own; only ghl.request and ghl.sleep suspend a step",
				   where);
	} else if (st == LUA_OK) {
		r->finished = 1;
		rc = nres > 0 ? returned_outputs(r, lua_gettop(r->th) - nres + 1) : GHL_STEP_DONE;
	} else {
		char msg[600];
		int retryable;
		r->finished = 1;
		if (lua_run_error(r, st, msg, sizeof(msg), &retryable))
			rc = GHL_STEP_FAIL; /* ghl.fail(): the host holds the failure */
		else
			rc = r->host->fail(r->ctx, retryable, "%s", msg);
	}
	s->cur = NULL;
	return rc;
}

static void run_state_free(void *r)
{
	lua_run_free(r);
}

static int lua_step_run(struct step_impl *impl, ghl_step_ctx *ctx, int compensate)
{
	struct lua_script *s = impl->data;
	const struct ghl_host_api *host = step_host_api();
	struct lua_run *r = host->state(ctx);
	if (r) {
		if (r->finished || r->dead || !r->waiting)
			return host->fail(ctx, 0, "%s: the run cannot be resumed", s->file);
		return resume(r, 0);
	}
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->ctx = ctx;
	r->host = host;
	r->compensate = compensate;
	host->set_state(ctx, r, run_state_free);
	s->cur = r;
	lua_pushcfunction(s->L, lua_run_setup);
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

struct lua_script *lua_script_free(struct lua_script *s)
{
	if (!s)
		return NULL;
	if (s->L)
		lua_close(s->L);
	free(s->file);
	free(s);
	return NULL;
}

static void lua_step_release(struct step_impl *impl)
{
	impl->data = lua_script_free(impl->data);
}

const struct step_ops lua_step_ops = {lua_step_run, lua_step_release};
