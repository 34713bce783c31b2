/* lua_sandbox.c — the sandboxed Lua state of a script: allocator with a
 * per-run memory cap, count hook with instruction and time budgets, frozen
 * standard libraries, safe base functions, and JSON ↔ Lua conversion (whose
 * text, made outside the allocator, is counted against the same cap).
 * See lua_host.h for the model and lua_host_int.h for the contracts. */
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "lua_host_int.h"

/* Instructions between two hook calls (accuracy of the instruction budget). */
#define SB_HOOK_COUNT 1000

int64_t lua_sandbox_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct lua_run *lua_sandbox_run(lua_State *L)
{
	void *ud = NULL;
	lua_getallocf(L, &ud);
	return ud ? ((struct lua_script *)ud)->cur : NULL;
}

static void sb_hook(lua_State *L, lua_Debug *ar);
static int push_json_protected(lua_State *L);

void lua_sandbox_kill(struct lua_run *r, const char *fmt, ...)
{
	if (r->dead)
		return;
	r->dead = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->dead_msg, sizeof(r->dead_msg), fmt, ap);
	va_end(ap);
	/* the run's own thread raises at its next instruction (lua_sethook is
	 * safe from anywhere, the allocator included) */
	if (r->th)
		lua_sethook(r->th, sb_hook, LUA_MASKCOUNT, 1);
}

/* ---- limits ------------------------------------------------------------- */

/* Every allocation of the state; growth is charged to the run executing. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lua_script *s = ud;
	struct lua_run *r = s->cur;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		s->total -= old;
		if (r)
			r->mem -= (long long)old;
		return NULL;
	}
	if (r && nsize > old && r->mem + r->held + (long long)(nsize - old) > s->lim.memory) {
		lua_sandbox_kill(r, "memory limit of %lld bytes exceeded", s->lim.memory);
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	s->total += nsize - old;
	if (r)
		r->mem += (long long)nsize - (long long)old;
	return p;
}

int lua_sandbox_charge(struct lua_run *r, long long n)
{
	if (r->dead)
		return 1;
	struct lua_script *s = r->s;
	r->instructions += n;
	if (r->instructions > s->lim.instructions)
		lua_sandbox_kill(r, "instruction limit of %lld exceeded", s->lim.instructions);
	else if (r->lua_us + (lua_sandbox_now_us() - r->resumed_us) > s->lim.wall_ms * 1000)
		lua_sandbox_kill(r, "time limit of %lld ms exceeded", s->lim.wall_ms);
	return r->dead;
}

/* The bytes the run executing on L may still have the host allocate. */
static long long host_room(lua_State *L, struct lua_run **rp)
{
	void *ud = NULL;
	lua_getallocf(L, &ud);
	struct lua_script *s = ud;
	struct lua_run *r = s ? s->cur : NULL;
	*rp = r;
	if (!r)
		return s ? s->lim.memory : 0;
	return s->lim.memory - r->mem - r->held;
}

int lua_sandbox_host_room(lua_State *L, size_t used, size_t more)
{
	struct lua_run *r;
	long long room = host_room(L, &r);
	if (!r || (used <= (size_t)LLONG_MAX - more && (long long)(used + more) <= room))
		return 0;
	lua_sandbox_kill(r, "memory limit of %lld bytes exceeded", r->s->lim.memory);
	return -1;
}

/* Count hook: charge instructions, check the clock; once a limit is hit,
 * raise on every instruction so no pcall can keep the script alive. */
static void sb_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	struct lua_run *r = lua_sandbox_run(L);
	if (!r)
		return;
	long long lim = r->s->lim.instructions;
	lua_sandbox_charge(r, lim < SB_HOOK_COUNT ? lim : SB_HOOK_COUNT);
	if (r->dead) {
		lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
		lua_pushstring(L, r->dead_msg);
		lua_error(L);
	}
}

void lua_sandbox_where(struct lua_script *s, lua_State *th, char *out, size_t outlen)
{
	lua_Debug ar;
	for (int level = 0; level < 64 && lua_getstack(th, level, &ar); level++) {
		if (lua_getinfo(th, "Sl", &ar) && ar.currentline > 0) {
			snprintf(out, outlen, "%s:%d", ar.short_src, ar.currentline);
			return;
		}
	}
	snprintf(out, outlen, "%s", s->file);
}

/* ---- frozen tables -------------------------------------------------------- */

static int frozen_newindex(lua_State *L)
{
	return luaL_error(L, "attempt to modify a read-only table (shared by every run)");
}

static int frozen_next(lua_State *L)
{
	lua_settop(L, 2);
	lua_pushvalue(L, 2);
	if (lua_next(L, lua_upvalueindex(1)))
		return 2;
	lua_pushnil(L);
	return 1;
}

static int frozen_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushcclosure(L, frozen_next, 1);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

void lua_sandbox_freeze_top(lua_State *L)
{
	int real = lua_gettop(L);
	lua_newtable(L); /* the proxy */
	lua_createtable(L, 0, 5);
	lua_pushvalue(L, real);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, frozen_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushvalue(L, real);
	lua_pushcclosure(L, frozen_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "__frozen");
	lua_setmetatable(L, -2);
	lua_replace(L, real);
}

static int is_frozen(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	lua_pushliteral(L, "__frozen");
	lua_rawget(L, -2);
	int f = lua_toboolean(L, -1);
	lua_pop(L, 2);
	return f;
}

/* ---- safe base functions -------------------------------------------------- */

static int sb_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	if (is_frozen(L, 1))
		return luaL_error(L, "attempt to modify a read-only table (shared by every run)");
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

static int sb_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		lua_rawget(L, 2);
		if (!lua_isnil(L, -1))
			return luaL_error(L, "__gc metamethods are not allowed in steps");
		lua_pop(L, 1);
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/* load(chunk [, name [, mode [, env]]]): text only; env defaults to the
 * run's environment (never the state's real globals). */
static int sb_load(lua_State *L)
{
	struct lua_run *r = lua_sandbox_run(L);
	lua_settop(L, 4);
	lua_pushvalue(L, lua_upvalueindex(1)); /* the real load */
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (lua_istable(L, 4))
		lua_pushvalue(L, 4);
	else if (r && r->env_ref > 0)
		lua_rawgeti(L, LUA_REGISTRYINDEX, r->env_ref);
	else
		lua_newtable(L);
	lua_call(L, 4, 2);
	return 2;
}

static int sb_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "count");
	if (strcmp(opt, "count"))
		return luaL_error(
			L, "collectgarbage(\"%s\") is not allowed in steps (only \"count\")", opt);
	struct lua_run *r = lua_sandbox_run(L);
	lua_pushnumber(L, r ? (lua_Number)r->mem / 1024.0 : 0);
	return 1;
}

/* json.decode: core/base/json.c's parser (depth 64) and a protected push, so a
 * memory error half-way leaks nothing; the input is capped because the
 * parse tree lives outside the run's allocator. */
static int sb_json_decode(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	struct lua_run *r = lua_sandbox_run(L);
	long long cap = r ? r->s->lim.memory / 32 : 1 << 20;
	if (cap < 65536)
		cap = 65536;
	if ((long long)len > cap)
		return luaL_error(L, "json.decode: text of %I bytes is over the limit of %I bytes",
				  (lua_Integer)len, (lua_Integer)cap);
	struct err e;
	struct json *doc = json_parse(text, len, JSON_DEFAULT_MAX_DEPTH, &e);
	if (!doc)
		return luaL_error(L, "json.decode: %s", e.msg);
	lua_pushcfunction(L, push_json_protected);
	lua_pushlightuserdata(L, doc);
	int rc = lua_pcall(L, 1, 1, 0);
	json_free(doc);
	if (rc != LUA_OK)
		return lua_error(L);
	return 1;
}

static int push_buf_protected(lua_State *L)
{
	const struct buf *b = lua_touserdata(L, 1);
	lua_pushlstring(L, b->data ? b->data : "", b->len);
	return 1;
}

/* json.encode(v): lua_sandbox_to_json, so the text counts against the run's
 * memory (the stock lua-cjson encoder mallocs outside the cap and exits the
 * process when malloc fails). */
static int sb_json_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	struct buf b;
	struct err e;
	buf_init(&b);
	if (lua_sandbox_to_json(L, 1, &b, &e)) {
		buf_clear(&b);
		return luaL_error(L, "json.encode: %s", e.msg);
	}
	lua_pushcfunction(L, push_buf_protected);
	lua_pushlightuserdata(L, &b);
	int rc = lua_pcall(L, 1, 1, 0);
	buf_clear(&b);
	if (rc != LUA_OK)
		return lua_error(L);
	return 1;
}

static const char *const safe_base[] = {
	"assert",   "error",	"getmetatable", "ipairs",   "next",   "pairs",
	"pcall",    "rawequal", "rawget",	"rawlen",   "select", "tonumber",
	"tostring", "type",	"xpcall",	"_VERSION", NULL,
};

/* Copy the named fields of the table at src into the table at dst. */
static void copy_fields(lua_State *L, int src, int dst, const char *const *names)
{
	for (size_t i = 0; names[i]; i++) {
		lua_getfield(L, src, names[i]);
		lua_setfield(L, dst, names[i]);
	}
}

/* Open lib, drop the fields in `drop`, freeze it and store it as base[name].
 * The string library gets the budgeted pattern functions (lua_pattern.c). */
static void add_lib(lua_State *L, int base, const char *name, lua_CFunction open,
		    const char *const *drop)
{
	luaL_requiref(L, name, open, 0);
	for (size_t i = 0; drop && drop[i]; i++) {
		lua_pushnil(L);
		lua_setfield(L, -2, drop[i]);
	}
	if (!strcmp(name, LUA_STRLIBNAME))
		lua_pattern_install(L, -1);
	lua_sandbox_freeze_top(L);
	lua_setfield(L, base, name);
}

static int sb_setup(lua_State *L)
{
	struct lua_script *s = lua_touserdata(L, 1);
	luaL_requiref(L, "_G", luaopen_base, 1); /* the real globals, never exposed */
	int g = lua_gettop(L);
	lua_newtable(L); /* base: what every run's environment reads through */
	int base = lua_gettop(L);
	copy_fields(L, g, base, safe_base);
	lua_pushcfunction(L, sb_rawset);
	lua_setfield(L, base, "rawset");
	lua_pushcfunction(L, sb_setmetatable);
	lua_setfield(L, base, "setmetatable");
	lua_getfield(L, g, "load");
	lua_pushcclosure(L, sb_load, 1);
	lua_setfield(L, base, "load");
	lua_pushcfunction(L, sb_collectgarbage);
	lua_setfield(L, base, "collectgarbage");

	static const char *const string_drop[] = {"dump", NULL};
	static const char *const math_drop[] = {"randomseed", NULL};
	add_lib(L, base, LUA_STRLIBNAME, luaopen_string, string_drop);
	add_lib(L, base, LUA_TABLIBNAME, luaopen_table, NULL);
	add_lib(L, base, LUA_MATHLIBNAME, luaopen_math, math_drop);
	add_lib(L, base, LUA_UTF8LIBNAME, luaopen_utf8, NULL);
	add_lib(L, base, LUA_COLIBNAME, luaopen_coroutine, NULL);

	/* os: time, date, clock only */
	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_createtable(L, 0, 3);
	static const char *const os_keep[] = {"time", "date", "clock", NULL};
	copy_fields(L, -2, lua_gettop(L), os_keep);
	lua_sandbox_freeze_top(L);
	lua_setfield(L, base, "os");
	lua_pop(L, 1);

	/* json: encode, decode and null */
	lua_createtable(L, 0, 3);
	lua_pushcfunction(L, sb_json_encode);
	lua_setfield(L, -2, "encode");
	lua_pushcfunction(L, sb_json_decode);
	lua_setfield(L, -2, "decode");
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	lua_sandbox_freeze_top(L);
	lua_setfield(L, base, "json");

	/* the string metatable stays out of reach (its __index is the real string table) */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);

	lua_pushvalue(L, base);
	lua_host_open_api(L, s); /* ghl, log, print, ctx metatable */
	lua_settop(L, base);

	/* every run's environment: {} with __index = base */
	lua_createtable(L, 0, 3);
	lua_pushvalue(L, base);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	s->env_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

lua_State *lua_sandbox_new(struct lua_script *s)
{
	lua_State *L = lua_newstate(sb_alloc, s);
	if (!L)
		return NULL;
	lua_pushcfunction(L, sb_setup);
	lua_pushlightuserdata(L, s);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		lua_close(L);
		return NULL;
	}
	/* threads inherit the hook of the thread that creates them */
	lua_sethook(L, sb_hook, LUA_MASKCOUNT,
		    s->lim.instructions < SB_HOOK_COUNT ? (int)s->lim.instructions : SB_HOOK_COUNT);
	return L;
}

/* ---- JSON ↔ Lua ------------------------------------------------------------ */

static void push_json(lua_State *L, const struct json *v)
{
	if (!lua_checkstack(L, 4))
		luaL_error(L, "JSON nested too deep");
	switch (v->type) {
	case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
	case JSON_BOOL: lua_pushboolean(L, v->u.boolean); break;
	case JSON_NUMBER:
		if (v->u.num.is_int)
			lua_pushinteger(L, (lua_Integer)v->u.num.i);
		else
			lua_pushnumber(L, v->u.num.d);
		break;
	case JSON_STRING: lua_pushlstring(L, v->u.str.s, v->u.str.len); break;
	case JSON_ARRAY:
		lua_createtable(L, (int)v->u.arr.n, 0);
		for (size_t i = 0; i < v->u.arr.n; i++) {
			push_json(L, v->u.arr.items[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case JSON_OBJECT:
		lua_createtable(L, 0, (int)v->u.obj.n);
		for (size_t i = 0; i < v->u.obj.n; i++) {
			lua_pushstring(L, v->u.obj.keys[i]);
			push_json(L, v->u.obj.vals[i]);
			lua_rawset(L, -3);
		}
		break;
	}
}

static int push_json_protected(lua_State *L)
{
	push_json(L, lua_touserdata(L, 1));
	return 1;
}

void lua_sandbox_push_json_text(lua_State *L, const char *text, size_t len)
{
	struct err e;
	struct json *doc = json_parse(text, len, JSON_DEFAULT_MAX_DEPTH, &e);
	if (!doc) {
		lua_pushlstring(L, text, len); /* not JSON: the text itself */
		return;
	}
	lua_pushcfunction(L, push_json_protected);
	lua_pushlightuserdata(L, doc);
	int rc = lua_pcall(L, 1, 1, 0);
	json_free(doc);
	if (rc != LUA_OK)
		lua_error(L);
}

/* Writing Lua values as JSON text: the text is host memory, so it may not
 * grow past what the run could still allocate (room). */
struct jwriter {
	lua_State *L;
	struct buf *b;
	struct err *e;
	struct lua_run *r;
	size_t limit; /* b->len may not exceed this */
};

/* -1 with the run killed when `more` bytes would not fit. */
static int jw_room(struct jwriter *w, size_t more)
{
	if (w->b->len <= w->limit && more <= w->limit - w->b->len)
		return 0;
	long long cap = w->r ? w->r->s->lim.memory : (long long)w->limit;
	if (w->r)
		lua_sandbox_kill(w->r, "memory limit of %lld bytes exceeded", cap);
	return err_set(w->e, "memory limit of %lld bytes exceeded", cap);
}

/* The most bytes json_write_stringn() writes for s: 6 for a control or
 * non-ASCII byte (\u00XX, \ufffd), 2 for '"' and '\', else 1; plus quotes. */
static size_t escaped_max(const char *s, size_t n)
{
	size_t out = n + 2;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x80)
			out += 5;
		else if (c == '"' || c == '\\')
			out += 1;
	}
	return out;
}

static int write_string(struct jwriter *w, const char *s, size_t n)
{
	if (jw_room(w, n + 2) || jw_room(w, escaped_max(s, n)))
		return -1;
	json_write_stringn(w->b, s, n);
	return 0;
}

static int write_raw(struct jwriter *w, const char *s)
{
	if (jw_room(w, strlen(s)))
		return -1;
	buf_puts(w->b, s);
	return 0;
}

static int write_number(struct jwriter *w, int idx)
{
	char num[40];
	if (lua_isinteger(w->L, idx)) {
		snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(w->L, idx));
		return write_raw(w, num);
	}
	double d = lua_tonumber(w->L, idx);
	if (!isfinite(d))
		return err_set(w->e, "cannot write %g as JSON", d);
	if (d == floor(d) && fabs(d) < 9007199254740992.0)
		snprintf(num, sizeof num, "%.0f", d);
	else
		snprintf(num, sizeof num, "%.17g", d);
	return write_raw(w, num);
}

/* An object key: a string, or a number written as a string. */
static int write_key(struct jwriter *w, int idx)
{
	int kt = lua_type(w->L, idx);
	if (kt == LUA_TSTRING) {
		size_t kl;
		const char *k = lua_tolstring(w->L, idx, &kl);
		return write_string(w, k, kl);
	}
	if (kt == LUA_TNUMBER)
		return write_raw(w, "\"") || write_number(w, idx) || write_raw(w, "\"") ? -1 : 0;
	return err_set(w->e, "a %s key cannot be written as JSON", lua_typename(w->L, kt));
}

static int to_json(struct jwriter *w, int idx, int depth);

static int table_to_json(struct jwriter *w, int idx, int depth)
{
	lua_State *L = w->L;
	if (depth > JSON_DEFAULT_MAX_DEPTH)
		return err_set(w->e, "tables nested deeper than %d (or a cycle)",
			       JSON_DEFAULT_MAX_DEPTH);
	if (!lua_checkstack(L, 4))
		return err_set(w->e, "out of Lua stack");
	size_t n = lua_rawlen(L, idx), count = 0;
	int array = n > 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		count++;
		if (array && (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
			      (size_t)lua_tointeger(L, -2) > n))
			array = 0;
		lua_pop(L, 1);
	}
	if (array && count == n) {
		if (write_raw(w, "["))
			return -1;
		for (size_t i = 1; i <= n; i++) {
			if (i > 1 && write_raw(w, ","))
				return -1;
			lua_rawgeti(L, idx, (lua_Integer)i);
			int rc = to_json(w, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
			if (rc)
				return rc;
		}
		return write_raw(w, "]");
	}
	if (write_raw(w, "{"))
		return -1;
	int first = 1;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int rc = first ? 0 : write_raw(w, ",");
		first = 0;
		if (!rc)
			rc = write_key(w, lua_gettop(L) - 1);
		if (!rc)
			rc = write_raw(w, ":");
		if (!rc)
			rc = to_json(w, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
		if (rc) {
			lua_pop(L, 1);
			return rc;
		}
	}
	return write_raw(w, "}");
}

static int to_json(struct jwriter *w, int idx, int depth)
{
	lua_State *L = w->L;
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return write_raw(w, "null");
	case LUA_TBOOLEAN: return write_raw(w, lua_toboolean(L, idx) ? "true" : "false");
	case LUA_TNUMBER: return write_number(w, idx);
	case LUA_TSTRING: {
		size_t l;
		const char *s = lua_tolstring(L, idx, &l);
		return write_string(w, s, l);
	}
	case LUA_TLIGHTUSERDATA:
		if (!lua_touserdata(L, idx))
			return write_raw(w, "null"); /* json.null */
		break;
	case LUA_TTABLE: return table_to_json(w, idx, depth);
	default: break;
	}
	return err_set(w->e, "a %s value cannot be written as JSON", luaL_typename(L, idx));
}

int lua_sandbox_to_json(lua_State *L, int idx, struct buf *b, struct err *e)
{
	struct jwriter w = {.L = L, .b = b, .e = e};
	long long room = host_room(L, &w.r);
	w.limit = b->len + (room > 0 ? (size_t)room : 0);
	if (w.r && w.r->dead)
		return err_set(e, "%s", w.r->dead_msg);
	return to_json(&w, lua_absindex(L, idx), 0);
}
