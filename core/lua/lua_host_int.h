/* lua_host_int.h — private to the Lua host: lua_host.c (loading), lua_run.c
 * (runs), lua_bindings.c (the API scripts see) and lua_sandbox.c (the state). */
#ifndef GHL_LUA_HOST_INT_H
#define GHL_LUA_HOST_INT_H

#include <lua.h>
#include <stdint.h>

#include "ghl_step.h"
#include "lua_host.h"
#include "registry.h"

struct json;

/* One loaded version of one script: a sandboxed state (impl->data). */
struct lua_script {
	lua_State *L;
	char *file; /* basename, for messages ("tag_contact.lua") */
	struct lua_host_limits lim;
	struct lua_run *cur; /* the run executing Lua right now, or NULL */
	size_t total;	     /* bytes held by the state */
	int chunk_ref;	     /* the compiled script: function(env) */
	int driver_ref;	     /* function(chunk, env, ctx) → run(ctx)'s results */
	int env_mt_ref;	     /* metatable of every run's environment */
	int ctx_mt_ref;	     /* metatable of every run's ctx */
	int has_compensate;
};

/* One run of a script: a coroutine of the script's state (kind data). */
struct lua_run {
	struct lua_script *s;
	ghl_step_ctx *ctx; /* NULL while loading */
	const struct ghl_host_api *host;
	lua_State *th;
	int th_ref, env_ref;
	long long instructions;
	long long mem;	    /* bytes allocated minus freed while this run was current */
	long long held;	    /* bytes the host keeps for this run (outputs set); counted
			      * against the memory limit like mem */
	int held_ref;	    /* {output key = bytes kept} of ctx:set, or 0 */
	int64_t lua_us;	    /* time spent running Lua so far */
	int64_t resumed_us; /* when the current resume began */
	int compensate;	    /* this run is the script's compensate */
	int started;
	int waiting; /* yielded in ghl.request / ghl.sleep */
	int finished;
	int dead; /* a limit was hit: raise on every instruction, never resume */
	char dead_msg[160];
};

/* ---- lua_sandbox.c ---- */

/* A new state with the sandboxed environment's metatable in s->env_mt_ref
 * (its __index: frozen string, table, math, utf8, coroutine, os subset, json,
 * and the safe base functions) and host functions registered by
 * lua_host_open_api(). NULL on allocation failure. */
lua_State *lua_sandbox_new(struct lua_script *s);

/* Monotonic microseconds. */
int64_t lua_sandbox_now_us(void);

/* The run executing on L (via the state's allocator data), or NULL. */
struct lua_run *lua_sandbox_run(lua_State *L);

/* Replace the table at the top of L with a read-only proxy of it (pairs
 * works, writes and rawset raise, the metatable is hidden). */
void lua_sandbox_freeze_top(lua_State *L);

/* Mark r dead with a message (first one wins). */
void lua_sandbox_kill(struct lua_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Charge n instructions to r and look at its clock: returns 1 (r is then
 * dead, with the limit's message) when a limit is exceeded, else 0. For C
 * code that works for long without running Lua (the count hook cannot). */
int lua_sandbox_charge(struct lua_run *r, long long n);

/* Memory the host is about to allocate for the run executing on L (query
 * strings, request bodies): 0 when used + more fits in the run's memory
 * limit next to what it holds, else -1 with the run killed ("memory limit
 * of N bytes exceeded"; the caller raises). No run: always 0. */
int lua_sandbox_host_room(lua_State *L, size_t used, size_t more);

/* "file.lua:12" of the innermost Lua frame of th (after an error too), or
 * the script's file name alone. */
void lua_sandbox_where(struct lua_script *s, lua_State *th, char *out, size_t outlen);

/* JSON ↔ Lua. Push a parsed document (null → json.null, the NULL light
 * userdata); raises on allocation failure but frees nothing: call
 * lua_sandbox_push_json_text() for text, which parses and pushes protected. */
void lua_sandbox_push_json_text(lua_State *L, const char *text, size_t len);

/* Append v (at idx) as JSON to b; integers stay integers; a table is an
 * array when its keys are 1..n (n ≥ 1), else an object of string/number
 * keys. Returns 0, or -1 with e set (functions, cycles/depth > 32, NaN, or
 * text that would not fit in the memory the run has left: the run is then
 * killed with "memory limit of N bytes exceeded"). Never allocates Lua
 * memory, so it may run outside a protected call. */
int lua_sandbox_to_json(lua_State *L, int idx, struct buf *b, struct err *e);

/* ---- lua_pattern.c ---- */

/* Replace find, match, gmatch and gsub in the string library table at
 * strlib with the budgeted matcher (steps charged via lua_sandbox_charge). */
void lua_pattern_install(lua_State *L, int strlib);

/* ---- lua_bindings.c ---- */

/* Register ghl.*, log.*, print and ctx's metatable into the state (called
 * by lua_sandbox_new with the base table on top of the stack). */
void lua_host_open_api(lua_State *L, struct lua_script *s);

/* What ghl.fail() raises: the run already holds the failure. */
extern char lua_host_failed_sentinel;

/* ---- lua_run.c ---- */

/* The step ops of every Lua step (impl->data is its struct lua_script). */
extern const struct step_ops lua_step_ops;

/* Protected (lua_pcall with r as light userdata): r's coroutine with the
 * driver, the chunk, a fresh environment and ctx on its stack. */
int lua_run_setup(lua_State *L);
/* Release r's coroutine and environment, then r itself (NULL is fine). */
struct lua_run *lua_run_free(struct lua_run *r);
/* The error at the top of r's coroutine as a message naming script and line;
 * sets *retryable for {retry=true, message=…}; returns 1 for ghl.fail(). */
int lua_run_error(struct lua_run *r, int status, char *out, size_t outlen, int *retryable);
/* Close a script's state and free it (NULL is fine). */
struct lua_script *lua_script_free(struct lua_script *s);

#endif
