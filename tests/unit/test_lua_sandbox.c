/* test_lua_sandbox.c — core/lua/lua_host.c and core/lua/lua_sandbox.c: the script
 * contract, the host API inside a run, every sandbox escape we know of, the
 * limits (which pcall cannot catch), isolation between runs, and reload.
 * Runs scripts through runner_run_once (no database, no GHL: a request
 * completes at once with "no token source configured"). */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app.h"
#include "json.h"
#include "lua_host.h"
#include "lua_host_int.h"
#include "registry.h"
#include "runner.h"
#include "testlib.h"

static struct app app;
static char dir[64];

/* The clock is far out of the way: a million instructions under valgrind on a
 * loaded machine take seconds, and the instruction limit must be the one hit.
 * The time limit has its own case (slow.lua in test_infinite_loops). */
static const struct lua_host_limits test_limits = {
	.instructions = 1000000, .memory = 4 * 1024 * 1024, .wall_ms = 120000};

struct outcome {
	int done;
	char *status, *outputs, *log, *error;
};

static void on_done(void *arg, const char *status, const char *outputs, const char *log,
		    const char *error)
{
	struct outcome *o = arg;
	o->done = 1;
	o->status = xstrdup(status);
	o->outputs = xstrdup(outputs ? outputs : "");
	o->log = xstrdup(log ? log : "");
	o->error = error ? xstrdup(error) : NULL;
}

static void outcome_free(struct outcome *o)
{
	free(o->status);
	free(o->outputs);
	free(o->log);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

static void setup(void)
{
	memset(&app, 0, sizeof(app));
	app.base = event_base_new();
	snprintf(dir, sizeof(dir), "/tmp/lua-sandbox-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char *cmd = xasprintf("rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	event_base_free(app.base);
}

static char *write_script(const char *file, const char *src)
{
	char *path = xasprintf("%s/%s", dir, file);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(src, f);
	fclose(f);
	return path;
}

/* Load file with src, or fail the test with the load error. */
static struct step_impl *load_lim(const char *file, const char *src,
				  const struct lua_host_limits *lim)
{
	char *path = write_script(file, src);
	struct err e;
	struct step_impl *impl = lua_host_load(path, lim, &e);
	ck_assert_msg(impl != NULL, "%s did not load: %s", file, e.msg);
	free(path);
	return impl;
}

static struct step_impl *load(const char *file, const char *src)
{
	return load_lim(file, src, &test_limits);
}

/* The load error of src (the test fails when it loads). */
static void load_error(const char *file, const char *src, char *out, size_t outlen)
{
	char *path = write_script(file, src);
	struct err e;
	struct step_impl *impl = lua_host_load(path, &test_limits, &e);
	ck_assert_msg(impl == NULL, "%s loaded but should not", file);
	snprintf(out, outlen, "%s", e.msg);
	free(path);
}

static struct json *parse(const char *text)
{
	return text ? json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, NULL) : NULL;
}

/* Start a run; the caller drives the loop if it waits. */
static void start(struct step_impl *impl, const char *client, const char *config,
		  const char *outputs, struct outcome *o)
{
	struct json *c = parse(client), *cf = parse(config), *out = parse(outputs);
	runner_run_once(&app, impl, "agency-1", "company-1", NULL, c, cf, out, on_done, o);
	json_free(c);
	json_free(cf);
	json_free(out);
}

static void finish(struct outcome *o)
{
	for (int i = 0; i < 500 && !o->done; i++)
		event_base_loop(app.base, EVLOOP_ONCE);
	ck_assert_msg(o->done, "the run did not finish");
}

static void run(struct step_impl *impl, const char *client, const char *config, const char *outputs,
		struct outcome *o)
{
	start(impl, client, config, outputs, o);
	finish(o);
}

/* Run src once; returns the outcome (caller frees). */
static struct outcome run_src(const char *file, const char *src)
{
	struct step_impl *impl = load(file, src);
	struct outcome o = {0};
	run(impl, "{\"name\":\"Acme\",\"email\":\"a@acme.example\"}", NULL, NULL, &o);
	step_impl_unref(impl);
	return o;
}

/* clang-format off */
#define ASSERT_FAILED_WITH(o, needle)                                                      \
	do {                                                                               \
		ck_assert_msg(!strcmp((o).status, "FAILED"), "status %s (outputs %s)",     \
			      (o).status, (o).outputs);                                   \
		ck_assert_msg((o).error && strstr((o).error, needle),                      \
			      "error \"%s\" lacks \"%s\"", (o).error, needle);             \
	} while (0)
/* clang-format on */

#define ASSERT_COMPLETED(o)                                                                \
	ck_assert_msg(!strcmp((o).status, "COMPLETED"), "status %s, error %s", (o).status, \
		      (o).error ? (o).error : "-")

/* A script body: run(ctx) is BODY; returns a malloc'd script. */
static char *script(const char *name, const char *body)
{
	return xasprintf("return {name = \"%s\", version = \"1.0\",\n"
			 "run = function(ctx)\n%s\nend}\n",
			 name, body);
}

static struct outcome run_body(const char *name, const char *body)
{
	char *src = script(name, body);
	char *file = xasprintf("%s.lua", name);
	struct outcome o = run_src(file, src);
	free(file);
	free(src);
	return o;
}

/* ---- the contract and the host API ---- */

START_TEST(test_trivial_and_outputs)
{
	struct step_impl *impl = load(
		"hello.lua",
		"return {\n"
		"  name = 'hello', version = '1.2.3', description = 'says hello',\n"
		"  config_schema = {type = 'object', properties = {greeting = {type = 'string'}},\n"
		"                   additionalProperties = false},\n"
		"  run = function(ctx)\n"
		"    ctx:set('greeting', (ctx.config.greeting or 'hi') .. ' ' .. ctx.client.name)\n"
		"    ctx:set('n', 42); ctx:set('f', 1.5); ctx:set('list', {1, 'two', true})\n"
		"    ctx:set('obj', {a = {b = json.null}})\n"
		"    log.info('location', ctx.outputs.location_id, 'job', ctx.job.id)\n"
		"    print('printed')\n"
		"    return {returned = 'yes'}\n"
		"  end}\n");
	ck_assert_str_eq(impl->name, "hello");
	ck_assert_str_eq(impl->version, "1.2.3");
	ck_assert_str_eq(impl->description, "says hello");
	ck_assert_int_eq(impl->kind, STEP_KIND_LUA);
	ck_assert_ptr_nonnull(impl->schema);
	struct outcome o = {0};
	run(impl, "{\"name\":\"Acme\"}", "{\"greeting\":\"hello\"}", "{\"location_id\":\"L1\"}",
	    &o);
	ASSERT_COMPLETED(o);
	struct json *out = parse(o.outputs);
	ck_assert_str_eq(json_get_str(out, "greeting"), "hello Acme");
	int64_t n = 0;
	ck_assert_int_eq(json_get_int(out, "n", &n), 0);
	ck_assert_int_eq(n, 42);
	ck_assert_str_eq(json_get_str(out, "returned"), "yes");
	char *list = json_to_string(json_get(out, "list"));
	ck_assert_str_eq(list, "[1,\"two\",true]");
	free(list);
	char *obj = json_to_string(json_get(out, "obj"));
	ck_assert_str_eq(obj, "{\"a\":{\"b\":null}}");
	free(obj);
	json_free(out);
	ck_assert_msg(strstr(o.log, "location L1 job 00000000-0000-0000-0000-000000000000") &&
			      strstr(o.log, "printed"),
		      "log: %s", o.log);
	outcome_free(&o);
	step_impl_unref(impl);
}
END_TEST

START_TEST(test_load_errors)
{
	char msg[600];
	load_error("syntax.lua", "return {name = 'x',\n version = '1'\n run = 3}\n", msg,
		   sizeof msg);
	ck_assert_msg(strstr(msg, "syntax.lua:3:"), "%s", msg);
	load_error("norun.lua", "return {name = 'x', version = '1'}", msg, sizeof msg);
	ck_assert_msg(strstr(msg, "norun.lua: run must be a function"), "%s", msg);
	load_error("noname.lua", "return {name = 'bad name!', version = '1', run = print}", msg,
		   sizeof msg);
	ck_assert_msg(strstr(msg, "name must be"), "%s", msg);
	load_error("nothing.lua", "local x = 1", msg, sizeof msg);
	ck_assert_msg(strstr(msg, "returned nothing"), "%s", msg);
	load_error("schema.lua",
		   "return {name = 'x', version = '1', run = print,\n"
		   " config_schema = {type = 'object', properties = {a = {type = 'strin'}}}}",
		   msg, sizeof msg);
	ck_assert_msg(strstr(msg, "schema.lua: config_schema:"), "%s", msg);
	load_error("raise.lua", "local t = nil\nreturn t.x", msg, sizeof msg);
	ck_assert_msg(strstr(msg, "raise.lua:2:"), "%s", msg);
	load_error("spin.lua", "while true do end", msg, sizeof msg);
	ck_assert_msg(strstr(msg, "spin.lua:1: instruction limit"), "%s", msg);
	load_error("ghl.lua", "ghl.request{path = '/x'}\nreturn {}", msg, sizeof msg);
	ck_assert_msg(strstr(msg, "only available while run() executes"), "%s", msg);
	load_error("bytes.lua", "\x1bLua", msg, sizeof msg);
	ck_assert_msg(strstr(msg, "bytes.lua"), "%s", msg);
}
END_TEST

/* client_fields: the client-data fields a script needs, read from its table. */
START_TEST(test_client_fields)
{
	struct step_impl *impl = load("needs.lua",
				      "return {name = 'needs', version = '1',"
				      " client_fields = {'email', 'first_name'}, run = print}");
	ck_assert_uint_eq(impl->nclient_fields, 2);
	ck_assert_str_eq(impl->client_fields[0], "email");
	ck_assert_str_eq(impl->client_fields[1], "first_name");
	step_impl_unref(impl);
	impl = load("none.lua", "return {name = 'none', version = '1', run = print}");
	ck_assert_uint_eq(impl->nclient_fields, 0);
	step_impl_unref(impl);
	char msg[600];
	load_error("notlist.lua",
		   "return {name = 'x', version = '1', run = print,"
		   " client_fields = 'email'}",
		   msg, sizeof msg);
	ck_assert_msg(strstr(msg, "notlist.lua: client_fields must be an array"), "%s", msg);
	load_error("notstr.lua",
		   "return {name = 'x', version = '1', run = print,"
		   " client_fields = {'email', 3}}",
		   msg, sizeof msg);
	ck_assert_msg(strstr(msg, "notstr.lua: client_fields[2] must be a field name"), "%s", msg);
}
END_TEST

START_TEST(test_load_dir_duplicates)
{
	struct step_registry *r = step_registry_new();
	char *a = write_script("a.lua", "return {name = 'dup', version = '1', run = print}");
	char *b = write_script("b.lua", "return {name = 'dup', version = '2', run = print}");
	char *c = write_script("c.lua", "return {name = 'other', version = '1', run = print}");
	char *d = write_script("d.lua", "syntax error here");
	ck_assert_uint_eq(lua_host_load_dir(r, dir, &test_limits, 0), 2);
	ck_assert_ptr_nonnull(step_registry_find(r, "dup"));
	ck_assert_str_eq(step_registry_find(r, "dup")->version, "1");
	ck_assert_uint_eq(r->nrefusals, 2);
	ck_assert_msg(strstr(r->refusals[0].reason, "duplicate step name \"dup\"") &&
			      strstr(r->refusals[0].reason, a) &&
			      strstr(r->refusals[0].source, "b.lua"),
		      "%s: %s", r->refusals[0].source, r->refusals[0].reason);
	ck_assert_msg(strstr(r->refusals[1].reason, "d.lua:1:"), "%s", r->refusals[1].reason);
	free(a);
	free(b);
	free(c);
	free(d);
	step_registry_free(r);
}
END_TEST

START_TEST(test_errors_permanent_and_retryable)
{
	struct outcome o = run_body("perm", "error('the client has no email')");
	ASSERT_FAILED_WITH(o, "perm.lua:3: the client has no email");
	outcome_free(&o);
	o = run_body("retry", "\n error({retry = true, message = 'GHL is busy'})");
	ASSERT_FAILED_WITH(o, "retry.lua:4: GHL is busy");
	outcome_free(&o);
	o = run_body("obj", "error(42)");
	ASSERT_FAILED_WITH(o, "obj.lua:3: error object is a number value");
	outcome_free(&o);
}
END_TEST

START_TEST(test_request_yields_and_resumes)
{
	/* no GHL configured: the request completes (status 0) with the reason */
	struct outcome o = run_body(
		"req",
		"local st, body, h = ghl.request{method = 'POST', path = '/contacts/',\n"
		"  query = {a = 'x y', b = {1, 2}}, json = {x = 1}, token = 'location'}\n"
		"ctx:set('status', st); ctx:set('body', body == nil); ctx:set('msg', h.message)\n"
		"local ok = pcall(function() return ghl.request{path = '/again'} end)\n"
		"ctx:set('again', ok)");
	ASSERT_COMPLETED(o);
	struct json *out = parse(o.outputs);
	int64_t st = -1;
	json_get_int(out, "status", &st);
	ck_assert_int_eq(st, 0);
	ck_assert_int_eq(json_get_bool(out, "body"), 1);
	ck_assert_int_eq(json_get_bool(out, "again"), 1);
	ck_assert_msg(json_get_str(out, "msg") && strstr(json_get_str(out, "msg"), "token"), "%s",
		      o.outputs);
	json_free(out);
	outcome_free(&o);

	o = run_body("fail",
		     "ghl.request{path = '/locations/x'}\nghl.fail('reading the location')");
	ASSERT_FAILED_WITH(o, "reading the location");
	outcome_free(&o);

	o = run_body("badpath", "ghl.request{path = 'locations'}");
	ASSERT_FAILED_WITH(o, "badpath.lua:3: ghl.request: path must be");
	outcome_free(&o);
}
END_TEST

START_TEST(test_sleep_on_the_loop)
{
	struct step_impl *impl = load(
		"sleepy.lua", "return {name = 'sleepy', version = '1', run = function(ctx)\n"
			      "  local t = os.clock(); ghl.sleep(20); ghl.sleep(0)\n"
			      "  ctx:set('woke', true) end}");
	struct outcome o = {0};
	start(impl, NULL, NULL, NULL, &o);
	ck_assert_int_eq(o.done, 0); /* suspended, not blocking */
	finish(&o);
	ASSERT_COMPLETED(o);
	ck_assert_msg(strstr(o.outputs, "\"woke\":true"), "%s", o.outputs);
	outcome_free(&o);
	step_impl_unref(impl);
}
END_TEST

/* ---- escapes ---- */

START_TEST(test_no_dangerous_globals)
{
	struct outcome o = run_body(
		"globals",
		"for _, n in ipairs{'io', 'debug', 'package', 'require', 'dofile', 'loadfile',\n"
		"                   'loadstring', 'module', 'setfenv', 'getfenv', 'warn'} do\n"
		"  if _ENV[n] ~= nil then error('global ' .. n .. ' is reachable') end\n"
		"end\n"
		"for _, n in ipairs{'execute', 'getenv', 'exit', 'remove', 'rename', 'tmpname',\n"
		"                   'setlocale'} do\n"
		"  if os[n] ~= nil then error('os.' .. n .. ' is reachable') end\n"
		"end\n"
		"if string.dump ~= nil or ('').dump ~= nil then error('string.dump') end\n"
		"if math.randomseed ~= nil then error('randomseed') end\n"
		"assert(os.time() > 0 and os.date('%Y') and os.clock() >= 0)\n"
		"assert(utf8.len('é') == 1 and math.floor(2.5) == 2 and table.concat({1,2}) == '12')");
	ASSERT_COMPLETED(o);
	outcome_free(&o);
	o = run_body("osexec", "os.execute('touch /tmp/pwned')");
	ASSERT_FAILED_WITH(o, "osexec.lua:3: attempt to call a nil value (field 'execute')");
	outcome_free(&o);
	o = run_body("ioopen", "io.open('/etc/passwd')");
	ASSERT_FAILED_WITH(o, "ioopen.lua:3: attempt to index a nil value (global 'io')");
	outcome_free(&o);
	o = run_body("req", "require('os')");
	ASSERT_FAILED_WITH(o, "req.lua:3: attempt to call a nil value (global 'require')");
	outcome_free(&o);
	o = run_body("dbg", "debug.sethook()");
	ASSERT_FAILED_WITH(o, "dbg.lua:3: attempt to index a nil value (global 'debug')");
	outcome_free(&o);
	o = run_body("gc", "collectgarbage('stop')");
	ASSERT_FAILED_WITH(o, "collectgarbage(\"stop\") is not allowed");
	outcome_free(&o);
}
END_TEST

START_TEST(test_load_text_only_env_forced)
{
	struct outcome o = run_body("ld", "local f, err = load('\\27Lua\\84\\0')\n"
					  "assert(f == nil and err:find('binary chunk'), err)\n"
					  "local g = assert(load('return io, os.execute, X'))\n"
					  "X = 5\n"
					  "local a, b, c = g()\n"
					  "assert(a == nil and b == nil and c == 5)\n"
					  "local h = assert(load('Y = 1', 'chunk', 'bt', {}))\n"
					  "h(); assert(Y == nil)\n"
					  "local env = {}\n"
					  "assert(load(function() return nil end, 'x', 'b', env))\n"
					  "ctx:set('ok', true)");
	ASSERT_COMPLETED(o);
	outcome_free(&o);
}
END_TEST

START_TEST(test_shared_tables_frozen)
{
	/* each attempt and the error that refuses it (not any failure) */
#define RO "frozen.lua:3: attempt to modify a read-only table (shared by every run)"
#define PROTECTED "frozen.lua:3: cannot change a protected metatable"
	static const char *const attempts[][2] = {
		{"string.upper = nil", RO},
		{"string.evil = function() end", RO},
		{"rawset(string, 'upper', nil)", RO},
		{"setmetatable(string, {})", PROTECTED},
		{"table.insert(math, 1)", RO},
		{"json.encode = nil", RO},
		{"ghl.request = nil", RO},
		{"log.info = nil", RO},
		{"os.time = nil", RO},
		/* the string metatable is hidden behind __metatable = 'locked' */
		{"getmetatable('').__index.upper = nil",
		 "frozen.lua:3: attempt to index a nil value (field '__index')"},
		{"setmetatable({}, {__gc = function() while true do end end})",
		 "frozen.lua:3: __gc metamethods are not allowed in steps"},
		{"setmetatable(ctx, nil)", PROTECTED},
		{"setmetatable(_ENV, nil)", PROTECTED},
	};
#undef RO
#undef PROTECTED
	for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		struct outcome o = run_body("frozen", attempts[i][0]);
		ck_assert_msg(!strcmp(o.status, "FAILED"), "\"%s\" was allowed", attempts[i][0]);
		ck_assert_msg(o.error && !strcmp(o.error, attempts[i][1]),
			      "\"%s\" failed with \"%s\", want \"%s\"", attempts[i][0], o.error,
			      attempts[i][1]);
		outcome_free(&o);
	}
	struct outcome o = run_body(
		"meta",
		"assert(getmetatable('') == 'locked' and getmetatable(string) == 'locked')\n"
		"local n = 0; for k in pairs(string) do n = n + 1 end; assert(n > 10)\n"
		"assert(('abc'):upper() == 'ABC')");
	ASSERT_COMPLETED(o);
	outcome_free(&o);
}
END_TEST

START_TEST(test_runs_are_isolated)
{
	struct step_impl *impl = load("iso.lua",
				      "local cache = {}\n"
				      "return {name = 'iso', version = '1', run = function(ctx)\n"
				      "  ctx:set('global_seen', Counter ~= nil)\n"
				      "  ctx:set('cache_seen', #cache)\n"
				      "  Counter = 1; cache[#cache + 1] = 1\n"
				      "  string.format = nil\n"
				      "end}");
	for (int i = 0; i < 3; i++) {
		struct outcome o = {0};
		run(impl, NULL, NULL, NULL, &o);
		/* the last line fails (frozen string); what it saw before must be clean */
		ASSERT_FAILED_WITH(o, "iso.lua:6: attempt to modify a read-only table");
		ck_assert_msg(strstr(o.outputs, "\"global_seen\":false") &&
				      strstr(o.outputs, "\"cache_seen\":0"),
			      "run %d saw another run's state: %s", i, o.outputs);
		outcome_free(&o);
	}
	step_impl_unref(impl);
}
END_TEST

/* ---- limits ---- */

START_TEST(test_memory_bomb)
{
	struct outcome o = run_body("bomb", "local s = string.rep('x', 1 << 30)");
	ASSERT_FAILED_WITH(o, "bomb.lua:3: memory limit of 4194304 bytes exceeded");
	outcome_free(&o);
	o = run_body("grow", "local t = {}\nwhile true do t[#t + 1] = ('y'):rep(1000) .. #t end");
	ASSERT_FAILED_WITH(o, "memory limit");
	outcome_free(&o);
	/* caught by pcall: the run still dies */
	o = run_body("pbomb", "for i = 1, 100 do pcall(string.rep, 'x', 1 << 30) end\n"
			      "ctx:set('survived', true)");
	ASSERT_FAILED_WITH(o, "memory limit");
	ck_assert_msg(!strstr(o.outputs, "survived"), "%s", o.outputs);
	outcome_free(&o);
}
END_TEST

START_TEST(test_infinite_loops)
{
	struct outcome o = run_body("spin", "while true do end");
	ASSERT_FAILED_WITH(o, "spin.lua:3: instruction limit of 1000000 exceeded");
	outcome_free(&o);
	o = run_body(
		"pspin",
		"while true do\n"
		"  pcall(function() while true do end end)\n"
		"  xpcall(function() while true do end end, function(m) while true do end end)\n"
		"end");
	ASSERT_FAILED_WITH(o, "instruction limit of 1000000 exceeded");
	outcome_free(&o);
	o = run_body(
		"cspin",
		"local co = coroutine.wrap(function() while true do coroutine.yield() end end)\n"
		"while true do pcall(co) end");
	ASSERT_FAILED_WITH(o, "instruction limit");
	outcome_free(&o);
	/* time: a generous instruction budget, a short clock */
	struct lua_host_limits lim = {.instructions = 1LL << 40, .memory = 1 << 22, .wall_ms = 50};
	struct step_impl *impl = load_lim(
		"slow.lua",
		"return {name = 'slow', version = '1', run = function(ctx)\n"
		"  while true do pcall(function() local x = 0 for i = 1, 1e9 do x = x + i end end) end\n"
		"end}",
		&lim);
	run(impl, NULL, NULL, NULL, &o);
	ASSERT_FAILED_WITH(o, "slow.lua:2: time limit of 50 ms exceeded");
	outcome_free(&o);
	step_impl_unref(impl);
}
END_TEST

START_TEST(test_per_script_limits)
{
	struct step_impl *impl = load(
		"tight.lua",
		"return {name = 'tight', version = '1', limits = {instructions = 5000},\n"
		"run = function(ctx) for i = 1, 100000 do end end}");
	struct outcome o = {0};
	run(impl, NULL, NULL, NULL, &o);
	ASSERT_FAILED_WITH(o, "instruction limit of 5000 exceeded");
	outcome_free(&o);
	step_impl_unref(impl);
}
END_TEST

START_TEST(test_deep_recursion)
{
	struct outcome o = run_body("deep", "local function f(n) return 1 + f(n + 1) end\nf(1)");
	ck_assert_str_eq(o.status, "FAILED");
	ck_assert_msg(strstr(o.error, "deep.lua:") && (strstr(o.error, "stack overflow") ||
						       strstr(o.error, "memory limit")),
		      "%s", o.error);
	outcome_free(&o);
	o = run_body("deepc", "local function f() return pcall(f) end\nwhile true do f() end");
	ck_assert_str_eq(o.status, "FAILED");
	outcome_free(&o);
	o = run_body("deepstr",
		     "local s = setmetatable({}, {__index = function(t, k) return t[k] end})\n"
		     "return s.x");
	ck_assert_str_eq(o.status, "FAILED");
	outcome_free(&o);
}
END_TEST

START_TEST(test_coroutine_abuse)
{
	struct outcome o = run_body("yield", "coroutine.yield(1)");
	ASSERT_FAILED_WITH(o, "yield.lua:3: coroutine.yield() outside a coroutine");
	outcome_free(&o);
	o = run_body("coreq",
		     "local co = coroutine.create(function() return ghl.request{path = '/x'} end)\n"
		     "local ok, err = coroutine.resume(co)\n"
		     "error(err, 0)");
	ASSERT_FAILED_WITH(o, "must be called from run() itself");
	outcome_free(&o);
	o = run_body("comany",
		     "local t = {}\nwhile true do t[#t + 1] = coroutine.create(print) end");
	ASSERT_FAILED_WITH(o, "limit");
	outcome_free(&o);
	o = run_body(
		"conest",
		"local function nest(n) return coroutine.wrap(function() return nest(n + 1)() end) end\n"
		"nest(1)()");
	ck_assert_str_eq(o.status, "FAILED");
	outcome_free(&o);
	o = run_body("coclose", "local me = coroutine.running()\n"
				"local ok = pcall(coroutine.close, me)\n"
				"assert(not ok)\n"
				"assert(not coroutine.resume(me))\n"
				"ctx:set('ok', true)");
	ASSERT_COMPLETED(o);
	outcome_free(&o);
	o = run_body("cosort",
		     "table.sort({3, 2, 1}, function(a, b) ghl.sleep(1) return a < b end)");
	ASSERT_FAILED_WITH(o, "cannot be called here");
	outcome_free(&o);
}
END_TEST

START_TEST(test_json)
{
	struct outcome o = run_body(
		"js", "local t = json.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}')\n"
		      "assert(t.a[3].b == json.null and t.c == 'd')\n"
		      "ctx:set('enc', json.decode(json.encode({x = {1, 2}})))");
	ASSERT_COMPLETED(o);
	ck_assert_msg(strstr(o.outputs, "\"enc\":{\"x\":[1,2]}"), "%s", o.outputs);
	outcome_free(&o);
	o = run_body("jsdeep", "json.decode(string.rep('[', 100000))");
	ASSERT_FAILED_WITH(o, "jsdeep.lua:3:");
	outcome_free(&o);
	o = run_body("jsbig", "json.decode('[' .. string.rep('1,', 200000) .. '1]')");
	ASSERT_FAILED_WITH(o, "is over the limit");
	outcome_free(&o);
	o = run_body("jsmem", "local s = '[' .. string.rep('[],', 30000) .. '[]]'\n"
			      "for i = 1, 100 do local t = json.decode(s); _ENV['k' .. i] = t end");
	ASSERT_FAILED_WITH(o, "memory limit");
	outcome_free(&o);
	o = run_body("jscycle", "local t = {}; t.t = t; ctx:set('x', t)");
	ASSERT_FAILED_WITH(o, "nested deeper");
	outcome_free(&o);
	o = run_body("jsfn", "ctx:set('x', print)");
	ASSERT_FAILED_WITH(o, "cannot be written as JSON");
	outcome_free(&o);
}
END_TEST

/* Peak resident set size of this process in MiB. */
static long peak_rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/* Run body under a 16 MiB cap and a generous time; return the outcome. */
static struct outcome run_capped(const char *name, const char *body)
{
	/* the memory cap is under test; the time limit only stops a runaway
	 * (valgrind on a loaded machine took more than 20 s for "hostok") */
	struct lua_host_limits lim = {
		.instructions = 100000000, .memory = 16 << 20, .wall_ms = 300000};
	char *src = script(name, body);
	char *file = xasprintf("%s.lua", name);
	struct step_impl *impl = load_lim(file, src, &lim);
	struct outcome o = {0};
	run(impl, NULL, NULL, NULL, &o);
	step_impl_unref(impl);
	free(file);
	free(src);
	return o;
}

/* What a script makes the host allocate (JSON text of ctx:set, json.encode,
 * request bodies and queries, outputs kept) counts against its memory cap:
 * 600 references to one 1 MiB string are 600 MiB of JSON. */
START_TEST(test_host_memory_counted)
{
	static const char *const bodies[] = {
		"ctx:set('big', T)",
		"local s = json.encode(T)\nctx:set('len', #s)",
		"for i = 1, 50 do pcall(json.encode, T) end\nctx:set('survived', true)",
		"ghl.request{method = 'POST', path = '/x', json = T}",
		"ghl.request{path = '/x', query = {q = T}}",
		"for i = 1, 20 do ctx:set('k' .. i, S) end", /* 20 MiB of outputs kept */
		"return {big = T}",
	};
	long before = peak_rss_mib();
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *body = xasprintf("local S = string.rep('x', 1 << 20)\n"
				       "T = {}\nfor i = 1, 600 do T[i] = S end\n%s",
				       bodies[i]);
		struct outcome o = run_capped("hostmem", body);
		ck_assert_msg(!strcmp(o.status, "FAILED") && o.error &&
				      strstr(o.error, "memory limit of 16777216 bytes exceeded"),
			      "case %zu: status %s, error %.300s, outputs %.200s", i, o.status,
			      o.error ? o.error : "-", o.outputs);
		outcome_free(&o);
		free(body);
	}
	long grew = peak_rss_mib() - before;
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps 256 MiB of freed memory */
	ck_assert_msg(grew < 200, "peak RSS grew by %ld MiB under a 16 MiB cap", grew);
#else
	(void)grew;
#endif
	/* what fits still works; a key set again counts once */
	struct outcome o = run_capped(
		"hostok", "ctx:set('s', string.rep('y', 1 << 20))\n"
			  "for i = 1, 40 do ctx:set('again', S or string.rep('w', 1 << 20)) end\n"
			  "ctx:set('n', #json.encode({string.rep('z', 4096)}))");
	ASSERT_COMPLETED(o);
	ck_assert_msg(strstr(o.outputs, "\"n\":4100"), "%.200s", o.outputs);
	outcome_free(&o);
}
END_TEST

/* Time spent inside one C call counts: a pattern that backtracks for minutes
 * is stopped at the limit (the matcher checks the budget), and any other
 * long C call fails the step once it returns. Each call below runs for
 * minutes uninterrupted (90 times the 2-6 s that a third of the length
 * took with the stock matcher; 64 times for the plain find): a matcher that stopped checking the
 * budget would hang this test past its timeout, so the outcome (the limit's
 * error) is all it asserts; the time is printed. */
START_TEST(test_long_c_calls_timed)
{
	struct lua_host_limits lim = {
		.instructions = 1LL << 40, .memory = 32 << 20, .wall_ms = 200};
	static const char *const bodies[] = {
		/* backtracking, O(n^4) */
		"local s = string.rep('a', 400)\n"
		"ctx:set('r', tostring(s:find('.-.-.-.-b')))",
		"local s = string.rep('a', 800)\n"
		"ctx:set('r', tostring(s:match('^(.-)(.-)(.-)(.-)$x')))",
		"local s = string.rep('a', 400)\n"
		"for w in s:gmatch('.-.-.-.-b') do end\nctx:set('r', 1)",
		"local s = string.rep('a', 400)\n"
		"ctx:set('r', (s:gsub('.-.-.-.-b', '')))",
		/* plain find: O(n·m) comparisons (the strings made of 1 KiB pieces:
		 * string.rep of one character is slow under valgrind) */
		"local k = string.rep('a', 1024)\n"
		"local s = string.rep(k, 1 << 13)\nlocal p = string.rep(k, 1 << 12) .. 'b'\n"
		"s:find(p, 1, true)\nctx:set('r', 1)",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *src = script("slowpat", bodies[i]);
		struct step_impl *impl = load_lim("slowpat.lua", src, &lim);
		struct outcome o = {0};
		int64_t t0 = now_monotonic_ms();
		run(impl, NULL, NULL, NULL, &o);
		int64_t took = now_monotonic_ms() - t0;
		ASSERT_FAILED_WITH(o, "time limit of 200 ms exceeded");
		fprintf(stderr, "long C call %zu: stopped after %lld ms\n", i, (long long)took);
		outcome_free(&o);
		step_impl_unref(impl);
		free(src);
	}
	/* a C call that cannot be interrupted (a C comparator: no Lua runs) is
	 * charged when it returns, and the step fails */
	lim.wall_ms = 20;
	lim.memory = 32 << 20;
	char *src = script("slowsort",
			   "local t = table.pack(string.byte(string.rep('a', 400000), 1, -1))\n"
			   "table.sort(t, rawequal)\nctx:set('sorted', true)");
	struct step_impl *impl = load_lim("slowsort.lua", src, &lim);
	free(src);
	struct outcome o = {0};
	run(impl, NULL, NULL, NULL, &o);
	ASSERT_FAILED_WITH(o, "time limit of 20 ms exceeded");
	outcome_free(&o);
	step_impl_unref(impl);
	/* the instruction budget counts matcher steps too (deterministic) */
	lim = (struct lua_host_limits){.instructions = 100000, .memory = 4 << 20, .wall_ms = 60000};
	src = script("steppat",
		     "local s = string.rep('a', 200)\nctx:set('r', tostring(s:find('.-.-.-b')))");
	impl = load_lim("steppat.lua", src, &lim);
	free(src);
	run(impl, NULL, NULL, NULL, &o);
	ASSERT_FAILED_WITH(o, "instruction limit of 100000 exceeded");
	outcome_free(&o);
	step_impl_unref(impl);
	/* ordinary pattern use is unaffected */
	o = run_body(
		"okpat",
		"local t = {}\nfor k, v in ('a=1, b=2'):gmatch('(%w+)=(%w+)') do t[k] = v end\n"
		"ctx:set('r', ('x-y'):gsub('%-', '+') .. (('abc'):find('b', 1, true)) ..\n"
		"  ('hello'):match('^(h)') .. t.b .. (('%d'):find('%', 1, true)))");
	ASSERT_COMPLETED(o);
	ck_assert_msg(strstr(o.outputs, "\"r\":\"x+y2h21\""), "%s", o.outputs);
	outcome_free(&o);
}
END_TEST

/* The state does not grow with the number of runs (garbage is collected). */
START_TEST(test_many_runs_bounded_memory)
{
	struct step_impl *impl = load(
		"many.lua", "return {name = 'many', version = '1', run = function(ctx)\n"
			    "  local t = {}; for i = 1, 100 do t[i] = tostring(i) end; X = t\n"
			    "  ctx:set('n', #t) end}");
	struct lua_script *s = impl->data;
	size_t after_first = 0;
	for (int i = 0; i < 20000; i++) {
		struct outcome o = {0};
		run(impl, NULL, NULL, NULL, &o);
		ASSERT_COMPLETED(o);
		outcome_free(&o);
		if (i == 100)
			after_first = s->total;
	}
	ck_assert_msg(s->total < after_first * 4 + 1024 * 1024, "state grew from %zu to %zu",
		      after_first, s->total);
	step_impl_unref(impl);
}
END_TEST

/* A run keeps its version across a reload; new runs get the new one. */
START_TEST(test_reload_keeps_running_version)
{
	struct step_registry *r = step_registry_new();
	char *path = write_script("ver.lua",
				  "return {name = 'ver', version = '1', run = function(ctx)\n"
				  "  ghl.sleep(30); ctx:set('v', 1) end}");
	ck_assert_uint_eq(lua_host_load_dir(r, dir, &test_limits, 0), 1);
	struct outcome o1 = {0};
	start(step_registry_find(r, "ver"), NULL, NULL, NULL, &o1);
	ck_assert_int_eq(o1.done, 0);
	free(write_script("ver.lua", "return {name = 'ver', version = '2', run = function(ctx)\n"
				     "  ctx:set('v', 2) end}"));
	ck_assert_uint_eq(lua_host_load_dir(r, dir, &test_limits, 1), 1);
	ck_assert_str_eq(step_registry_find(r, "ver")->version, "2");
	struct outcome o2 = {0};
	run(step_registry_find(r, "ver"), NULL, NULL, NULL, &o2);
	ck_assert_msg(strstr(o2.outputs, "\"v\":2"), "%s", o2.outputs);
	finish(&o1);
	ASSERT_COMPLETED(o1);
	ck_assert_msg(strstr(o1.outputs, "\"v\":1"), "%s", o1.outputs);
	/* a broken new version is refused; the running one stays */
	free(write_script("ver.lua", "return {name = 'ver', version = '3', run = }"));
	size_t before = r->nrefusals;
	ck_assert_uint_eq(lua_host_load_dir(r, dir, &test_limits, 1), 0);
	ck_assert_uint_eq(r->nrefusals, before + 1);
	ck_assert_msg(strstr(r->refusals[before].reason, "ver.lua:1:") &&
			      strstr(r->refusals[before].reason, "running version stays"),
		      "%s", r->refusals[before].reason);
	ck_assert_str_eq(step_registry_find(r, "ver")->version, "2");
	outcome_free(&o1);
	outcome_free(&o2);
	free(path);
	step_registry_free(r);
}
END_TEST

/* A name held by a C step is refused on reload as on start. */
START_TEST(test_reload_refuses_c_name)
{
	struct step_registry *r = step_registry_new();
	struct step_impl *c = xcalloc(1, sizeof(*c));
	c->name = xstrdup("NOOP");
	c->version = xstrdup("1");
	c->description = xstrdup("");
	c->source = xstrdup("/x/noop.so");
	c->kind = STEP_KIND_C;
	c->refs = 1;
	struct err e;
	ck_assert_int_eq(step_registry_add(r, c, &e), 0);
	free(write_script("noop.lua", "return {name = 'NOOP', version = '9', run = print}"));
	ck_assert_uint_eq(lua_host_load_dir(r, dir, &test_limits, 1), 0);
	ck_assert_msg(strstr(r->refusals[0].reason, "already registered by /x/noop.so"), "%s",
		      r->refusals[0].reason);
	ck_assert_int_eq(step_registry_find(r, "NOOP")->kind, STEP_KIND_C);
	step_registry_free(r);
}
END_TEST

/* The shipped scripts load and their schemas pass schema_check. */
START_TEST(test_shipped_scripts_load)
{
	struct step_registry *r = step_registry_new();
	char *steps = xasprintf("%s/steps", tl_env("GHL_SOURCE_DIR"));
	ck_assert_uint_ge(lua_host_load_dir(r, steps, &test_limits, 0), 3);
	ck_assert_msg(r->nrefusals == 0, "%s: %s", r->refusals[0].source, r->refusals[0].reason);
	ck_assert_ptr_nonnull(step_registry_find(r, "tag_new_client"));
	ck_assert_ptr_nonnull(step_registry_find(r, "custom_values_from_template"));
	ck_assert_ptr_nonnull(step_registry_find(r, "enable_saas"));
	/* without a location they fail with a hint, not a crash */
	struct outcome o = {0};
	run(step_registry_find(r, "tag_new_client"), "{\"name\":\"A\"}", NULL, NULL, &o);
	ASSERT_FAILED_WITH(o, "put CREATE_LOCATION before tag_new_client");
	outcome_free(&o);
	free(steps);
	step_registry_free(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("lua_sandbox");
	TCase *t = tcase_create("all");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_trivial_and_outputs);
	tcase_add_test(t, test_load_errors);
	tcase_add_test(t, test_client_fields);
	tcase_add_test(t, test_load_dir_duplicates);
	tcase_add_test(t, test_errors_permanent_and_retryable);
	tcase_add_test(t, test_request_yields_and_resumes);
	tcase_add_test(t, test_sleep_on_the_loop);
	tcase_add_test(t, test_no_dangerous_globals);
	tcase_add_test(t, test_load_text_only_env_forced);
	tcase_add_test(t, test_shared_tables_frozen);
	tcase_add_test(t, test_runs_are_isolated);
	tcase_add_test(t, test_memory_bomb);
	tcase_add_test(t, test_infinite_loops);
	tcase_add_test(t, test_per_script_limits);
	tcase_add_test(t, test_deep_recursion);
	tcase_add_test(t, test_coroutine_abuse);
	tcase_add_test(t, test_json);
	tcase_add_test(t, test_host_memory_counted);
	tcase_add_test(t, test_long_c_calls_timed);
	tcase_add_test(t, test_many_runs_bounded_memory);
	tcase_add_test(t, test_reload_keeps_running_version);
	tcase_add_test(t, test_reload_refuses_c_name);
	tcase_add_test(t, test_shipped_scripts_load);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
