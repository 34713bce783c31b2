/* test_step_host.c — core/engine/step_host.c and plugin_loader.c through ABI
 * 1.1 as a plugin sees it: typed reads at key paths (any key, absent apart
 * from null), the JSON builder and its misuse, per-run state freed however a
 * run ends (done, failed, aborted while waiting: lease loss, cancel and
 * shutdown all end that way), plugins linked into the program under their
 * own entry names, and struct size tolerance (a plugin built against the
 * ABI 1.0 header loads and runs; structs smaller than 1.0's are refused).
 * The test's own steps are a plugin defined here with GHL_STEP_PLUGIN. No
 * database, no GHL. */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "job_inflight.h"
#include "json.h"
#include "log.h"
#include "plugin_loader.h"
#include "registry.h"
#include "runner.h"
#include "step_host.h"
#include "testlib.h"

#undef fail /* Check's deprecated fail(): here host->fail is the plugin API's */

/* ---- the test's plugin -------------------------------------------------------- */

GHL_STEP_HOST;

static int states_freed; /* calls of free_probe */

static void free_probe(void *p)
{
	states_freed++;
	free(p);
}

/* "key": get_type at path of the client. */
static void put_type(ghl_json *j, ghl_step_ctx *ctx, const char *key, const char *const *path)
{
	host->json_key(j, key);
	host->json_int(j, host->get_type(ctx, GHL_SRC_CLIENT, path));
}

static void put_str(ghl_json *j, const char *key, const char *s)
{
	host->json_key(j, key);
	host->json_string(j, s);
}

/* Reads the client document every way there is; the answers as output "r". */
static int typed_run(ghl_step_ctx *ctx)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put_type(j, ctx, "absent", GHL_PATH("nope"));
	put_type(j, ctx, "null", GHL_PATH("n"));
	put_type(j, ctx, "bool", GHL_PATH("b"));
	put_type(j, ctx, "int", GHL_PATH("i"));
	put_type(j, ctx, "number", GHL_PATH("d"));
	put_type(j, ctx, "string", GHL_PATH("name"));
	put_type(j, ctx, "array", GHL_PATH("tags"));
	put_type(j, ctx, "object", GHL_PATH("custom_values"));
	put_type(j, ctx, "root", (const char *const[]){NULL});
	put_type(j, ctx, "root_null", NULL);
	put_type(j, ctx, "below_string", GHL_PATH("name", "x"));
	put_type(j, ctx, "index_leading_zero", GHL_PATH("tags", "01"));
	put_type(j, ctx, "index_sign", GHL_PATH("tags", "-1"));
	put_type(j, ctx, "index_past_end", GHL_PATH("tags", "2"));
	put_str(j, "dot",
		host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", "welcome.text")));
	put_str(j, "bracket",
		host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", "a[0]")));
	put_str(j, "quote",
		host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", "say \"hi\"")));
	put_str(j, "utf8",
		host->get_string(ctx, GHL_SRC_CLIENT,
				 GHL_PATH("custom_values", "caf\xc3\xa9 \xe2\x98\x95")));
	put_str(j, "empty_key",
		host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", "")));
	put_str(j, "tag1", host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("tags", "1")));
	put_str(j, "string_of_int", host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("i")));
	put_str(j, "json_null", host->get_json(ctx, GHL_SRC_CLIENT, GHL_PATH("n")));
	put_str(j, "json_absent", host->get_json(ctx, GHL_SRC_CLIENT, GHL_PATH("nope")));
	put_str(j, "json_tags", host->get_json(ctx, GHL_SRC_CLIENT, GHL_PATH("tags")));
	put_str(j, "nosuch_source", host->get_string(ctx, "nosuch", GHL_PATH("name")));
	int64_t i = -7;
	double d = -7;
	int b = -7;
	host->json_key(j, "get_int");
	host->json_array(j);
	host->json_int(j, host->get_int(ctx, GHL_SRC_CLIENT, GHL_PATH("i"), &i));
	host->json_int(j, i);
	host->json_int(j, host->get_int(ctx, GHL_SRC_CLIENT, GHL_PATH("d"), &i));
	host->json_int(j, host->get_int(ctx, GHL_SRC_CLIENT, GHL_PATH("name"), &i));
	host->json_int(j, i); /* untouched by the failures */
	host->json_end(j);
	host->json_key(j, "get_number");
	host->json_array(j);
	host->json_int(j, host->get_number(ctx, GHL_SRC_CLIENT, GHL_PATH("d"), &d));
	host->json_number(j, d);
	host->json_int(j, host->get_number(ctx, GHL_SRC_CLIENT, GHL_PATH("i"), &d));
	host->json_number(j, d);
	host->json_int(j, host->get_number(ctx, GHL_SRC_CLIENT, GHL_PATH("n"), &d));
	host->json_end(j);
	host->json_key(j, "get_bool");
	host->json_array(j);
	host->json_int(j, host->get_bool(ctx, GHL_SRC_CLIENT, GHL_PATH("b"), &b));
	host->json_bool(j, b);
	host->json_int(j, host->get_bool(ctx, GHL_SRC_CLIENT, GHL_PATH("n"), &b));
	host->json_end(j);
	host->json_key(j, "counts");
	host->json_array(j);
	host->json_int(j, (int64_t)host->get_count(ctx, GHL_SRC_CLIENT, GHL_PATH("tags")));
	host->json_int(j, (int64_t)host->get_count(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values")));
	host->json_int(j, (int64_t)host->get_count(ctx, GHL_SRC_CLIENT, GHL_PATH("name")));
	host->json_end(j);
	host->json_key(j, "keys");
	host->json_array(j);
	size_t n = host->get_count(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values"));
	for (size_t k = 0; k <= n; k++)
		host->json_string(j,
				  host->get_key(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values"), k));
	host->json_end(j);
	host->json_end(j);
	const char *text = host->json_text(j);
	if (!text)
		return host->fail(ctx, 0, "the builder refused the results");
	host->set_output(ctx, "r", text);
	return GHL_STEP_DONE;
}

/* One misuse of the builder per config "case"; output "text": what json_text gave. */
static int builder_run(ghl_step_ctx *ctx)
{
	const char *c = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH("case"));
	ghl_json *j = host->json_new(ctx);
	if (!strcmp(c, "ok")) {
		host->json_object(j);
		host->json_key(j, "s \"q\" \xc3\xa9");
		host->json_string(j, "line\nbreak");
		host->json_key(j, "raw");
		host->json_raw(j, " { \"a\" : [1, 2.5, null, true] } ");
		host->json_key(j, "null");
		host->json_string(j, NULL);
		host->json_key(j, "n");
		host->json_number(j, 0.5);
		host->json_key(j, "empty");
		host->json_array(j);
		host->json_end(j);
		host->json_end(j);
	} else if (!strcmp(c, "value_without_key")) {
		host->json_object(j);
		host->json_string(j, "x");
		host->json_end(j);
	} else if (!strcmp(c, "key_in_array")) {
		host->json_array(j);
		host->json_key(j, "k");
		host->json_end(j);
	} else if (!strcmp(c, "unbalanced")) {
		host->json_object(j);
	} else if (!strcmp(c, "extra_end")) {
		host->json_array(j);
		host->json_end(j);
		host->json_end(j);
	} else if (!strcmp(c, "bad_raw")) {
		host->json_raw(j, "{\"a\":");
	} else if (!strcmp(c, "nan")) {
		host->json_number(j, 0.0 / 0.0);
	} else if (!strcmp(c, "two_values")) {
		host->json_int(j, 1);
		host->json_int(j, 2);
	} else if (!strcmp(c, "deep")) {
		for (int i = 0; i < 40; i++)
			host->json_array(j);
	} else if (!strcmp(c, "key_without_value")) {
		host->json_object(j);
		host->json_key(j, "k");
		host->json_end(j);
	}
	const char *text = host->json_text(j);
	host->set_output(ctx, "text", text ? host->quote(ctx, text) : "null");
	return GHL_STEP_DONE;
}

/* Sleeps once keeping state, then ends as config "end" says: done or fail.
 * Config "replace": set_state twice (the first state is freed at once). */
static int stateful_run(ghl_step_ctx *ctx)
{
	int *st = host->state(ctx);
	if (!st) {
		int rep = 0;
		host->get_bool(ctx, GHL_SRC_CONFIG, GHL_PATH("replace"), &rep);
		if (rep)
			host->set_state(ctx, calloc(1, sizeof(int)), free_probe);
		st = calloc(1, sizeof(int));
		*st = 41;
		host->set_state(ctx, st, free_probe);
		int64_t ms = 1;
		host->get_int(ctx, GHL_SRC_CONFIG, GHL_PATH("sleep_ms"), &ms);
		host->sleep_ms(ctx, (int)ms);
		return GHL_STEP_WAIT;
	}
	int *same = host->state_alloc(ctx, 64); /* the state there is, not a new one */
	host->set_output(ctx, "state", host->format(ctx, "%d", ++*same));
	const char *end = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH("end"));
	if (end && !strcmp(end, "fail"))
		return host->fail(ctx, 1, "failed as asked, state %d", *st);
	return GHL_STEP_DONE;
}

static const struct ghl_step_def steps[] = {
	{"TYPED", "1.1.0", NULL, "typed reads", typed_run, NULL, NULL},
	{"BUILDER", "1.1.0", NULL, "the JSON builder", builder_run, NULL, NULL},
	{"STATEFUL", "1.1.0", NULL, "per-run state", stateful_run, NULL,
	 GHL_CLIENT_FIELDS("first_name", "email")},
};

GHL_STEP_PLUGIN(test_step_host, "1.1.0", NULL, steps)

/* Built-in plugins linked into this program (tests/CMakeLists.txt). */
const struct ghl_plugin *ghl_plugin_entry_noop(void);
const struct ghl_plugin *ghl_plugin_entry_create_contact(void);

/* ---- harness -------------------------------------------------------------------- */

static struct app app;
static struct step_registry *reg;

struct outcome {
	int done;
	char *status;
	struct json *outputs, *log;
	char *error;
};

static void on_done(void *arg, const char *status, const char *outputs, const char *log,
		    const char *error)
{
	struct outcome *o = arg;
	o->done = 1;
	o->status = xstrdup(status);
	o->outputs = json_parse(outputs, strlen(outputs), JSON_DEFAULT_MAX_DEPTH, NULL);
	o->log = json_parse(log, strlen(log), JSON_DEFAULT_MAX_DEPTH, NULL);
	o->error = error ? xstrdup(error) : NULL;
}

static void outcome_free(struct outcome *o)
{
	free(o->status);
	json_free(o->outputs);
	json_free(o->log);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

static void setup(void)
{
	log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
	memset(&app, 0, sizeof(app));
	app.base = event_base_new();
	reg = step_registry_new();
	app.steps = reg;
	ck_assert_int_eq(plugin_loader_add_static(reg, "test_step_host.c",
						  ghl_plugin_entry_test_step_host, step_host_api()),
			 3);
	states_freed = 0;
}

static void teardown(void)
{
	step_registry_free(reg);
	event_base_free(app.base);
}

static struct json *parse(const char *text)
{
	struct err e;
	struct json *j = text ? json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e) : NULL;
	ck_assert_msg(!text || j, "bad test JSON %s: %s", text, e.msg);
	return j;
}

/* Run step `name` once (runner_run_once) to its end. */
static void run(const char *name, const char *client, const char *config, struct outcome *o)
{
	struct step_impl *impl = step_registry_find(reg, name);
	ck_assert_msg(impl, "no step %s", name);
	struct json *c = parse(client), *cf = parse(config);
	runner_run_once(&app, impl, "agency-1", "company-1", NULL, c, cf, NULL, on_done, o);
	json_free(c);
	json_free(cf);
	for (int i = 0; i < 500 && !o->done; i++)
		event_base_loop(app.base, EVLOOP_ONCE);
	ck_assert_msg(o->done, "%s did not finish", name);
}

static const char *out_str(const struct outcome *o, const char *key)
{
	const char *v = json_get_str(o->outputs, key);
	ck_assert_msg(v, "no string output %s", key);
	return v;
}

/* ---- typed reads at key paths ------------------------------------------------------ */

/* clang-format off */
#define TYPED_CLIENT                                                                           \
	"{\"name\":\"Acme\",\"n\":null,\"b\":true,\"i\":42,\"d\":2.5,\"tags\":[\"a\",\"b\"],"  \
	"\"custom_values\":{\"welcome.text\":\"Hello\",\"a[0]\":\"x\",\"say \\\"hi\\\"\":\"y\"," \
	"\"caf\xc3\xa9 \xe2\x98\x95\":\"z\",\"\":\"empty\"}}"
/* clang-format on */

START_TEST(typed_reads_any_key)
{
	struct outcome o = {0};
	run("TYPED", TYPED_CLIENT, NULL, &o);
	ck_assert_msg(!strcmp(o.status, "COMPLETED"), "%s: %s", o.status, o.error);
	struct json *r = json_get(o.outputs, "r");
	ck_assert_ptr_nonnull(r);
	static const struct {
		const char *key;
		int type;
	} types[] = {
		{"absent", GHL_TYPE_ABSENT},	   {"null", GHL_TYPE_NULL},
		{"bool", GHL_TYPE_BOOL},	   {"int", GHL_TYPE_INT},
		{"number", GHL_TYPE_NUMBER},	   {"string", GHL_TYPE_STRING},
		{"array", GHL_TYPE_ARRAY},	   {"object", GHL_TYPE_OBJECT},
		{"root", GHL_TYPE_OBJECT},	   {"root_null", GHL_TYPE_OBJECT},
		{"below_string", GHL_TYPE_ABSENT}, {"index_leading_zero", GHL_TYPE_ABSENT},
		{"index_sign", GHL_TYPE_ABSENT},   {"index_past_end", GHL_TYPE_ABSENT},
	};
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		int64_t t = -1;
		ck_assert_msg(!json_get_int(r, types[k].key, &t) && t == types[k].type,
			      "get_type %s: %lld, want %d", types[k].key, (long long)t,
			      types[k].type);
	}
	/* keys are keys: '.', '[', '"', non-ASCII and "" are not parsed */
	ck_assert_str_eq(json_get_str(r, "dot"), "Hello");
	ck_assert_str_eq(json_get_str(r, "bracket"), "x");
	ck_assert_str_eq(json_get_str(r, "quote"), "y");
	ck_assert_str_eq(json_get_str(r, "utf8"), "z");
	ck_assert_str_eq(json_get_str(r, "empty_key"), "empty");
	ck_assert_str_eq(json_get_str(r, "tag1"), "b");
	/* typed: a number is no string; null is "null" as JSON, absent is nothing */
	ck_assert_int_eq(json_get(r, "string_of_int")->type, JSON_NULL);
	ck_assert_str_eq(json_get_str(r, "json_null"), "null");
	ck_assert_int_eq(json_get(r, "json_absent")->type, JSON_NULL);
	ck_assert_str_eq(json_get_str(r, "json_tags"), "[\"a\",\"b\"]");
	ck_assert_int_eq(json_get(r, "nosuch_source")->type, JSON_NULL);
	char *s = json_to_string(json_get(r, "get_int"));
	ck_assert_str_eq(s, "[0,42,-1,-1,42]");
	free(s);
	s = json_to_string(json_get(r, "get_number"));
	ck_assert_str_eq(s, "[0,2.5,0,42,-1]");
	free(s);
	s = json_to_string(json_get(r, "get_bool"));
	ck_assert_str_eq(s, "[0,true,-1]");
	free(s);
	s = json_to_string(json_get(r, "counts"));
	ck_assert_str_eq(s, "[2,5,0]");
	free(s);
	s = json_to_string(json_get(r, "keys"));
	ck_assert_str_eq(s, "[\"welcome.text\",\"a[0]\",\"say \\\"hi\\\"\",\"caf\xc3\xa9 "
			    "\xe2\x98\x95\",\"\",null]");
	free(s);
	outcome_free(&o);
}
END_TEST

/* ---- the JSON builder ---------------------------------------------------------------- */

START_TEST(builder_writes_valid_json)
{
	struct outcome o = {0};
	run("BUILDER", "{}", "{\"case\":\"ok\"}", &o);
	ck_assert_str_eq(o.status, "COMPLETED");
	ck_assert_str_eq(
		out_str(&o, "text"),
		"{\"s \\\"q\\\" \xc3\xa9\":\"line\\nbreak\",\"raw\":{\"a\":[1,2.5,null,true]},"
		"\"null\":null,\"n\":0.5,\"empty\":[]}");
	ck_assert_int_eq(json_len(o.log), 0);
	outcome_free(&o);
}
END_TEST

START_TEST(builder_refuses_misuse_and_says_why)
{
	static const char *const cases[][2] = {
		{"value_without_key", "a string in an object without a key before it"},
		{"key_in_array", "a key (\"k\") outside an object"},
		{"unbalanced", "1 object(s) or array(s) left open"},
		{"extra_end", "an end with no object or array open"},
		{"bad_raw", "raw text that is not JSON"},
		{"nan", "a number that is not finite"},
		{"two_values", "a number after the complete value"},
		{"deep", "nesting deeper than 32"},
		{"key_without_value", "an end right after a key"},
		{"nothing", "nothing written"},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct outcome o = {0};
		char *config = xasprintf("{\"case\":\"%s\"}", cases[k][0]);
		run("BUILDER", "{}", config, &o);
		ck_assert_str_eq(o.status, "COMPLETED");
		ck_assert_msg(json_get(o.outputs, "text")->type == JSON_NULL,
			      "%s: the builder gave text", cases[k][0]);
		const char *msg = json_get_str(json_at(o.log, 0), "message");
		ck_assert_msg(msg && strstr(msg, "json builder: ") && strstr(msg, cases[k][1]),
			      "%s: log says %s, want %s", cases[k][0], msg ? msg : "nothing",
			      cases[k][1]);
		free(config);
		outcome_free(&o);
	}
}
END_TEST

/* ---- per-run state ---------------------------------------------------------------------- */

START_TEST(state_is_freed_when_the_run_ends)
{
	struct outcome o = {0};
	run("STATEFUL", "{}", "{}", &o);
	ck_assert_str_eq(o.status, "COMPLETED");
	int64_t st = 0;
	ck_assert(!json_get_int(o.outputs, "state", &st) && st == 42); /* kept across the wait */
	ck_assert_int_eq(states_freed, 1);
	outcome_free(&o);

	run("STATEFUL", "{}", "{\"end\":\"fail\"}", &o);
	ck_assert_str_eq(o.status, "FAILED");
	ck_assert_str_eq(o.error, "failed as asked, state 42");
	ck_assert_int_eq(states_freed, 2);
	outcome_free(&o);

	/* set_state over a state frees the old one at once, the new one at the end */
	run("STATEFUL", "{}", "{\"replace\":true}", &o);
	ck_assert_str_eq(o.status, "COMPLETED");
	ck_assert_int_eq(states_freed, 4);
	outcome_free(&o);
}
END_TEST

static const char *ended_outcome;

static void job_ended(void *arg, struct job *job, const char *outcome)
{
	(void)arg;
	ended_outcome = outcome;
	job_clear(job);
	free(job);
}

/* A job whose step waits is aborted (lease lost; shutdown and cancel go the
 * same way): the run's state is freed then, not when the timer would fire. */
START_TEST(state_is_freed_when_the_job_is_aborted)
{
	struct runner_env env = {.app = &app, .job_ended = job_ended};
	env.default_settings = parse(
		"{\"pipeline\":[{\"step\":\"STATEFUL\",\"config\":{\"sleep_ms\":60000}}]}");
	for (int release = 0; release < 2; release++) {
		struct job *job = xcalloc(1, sizeof(*job));
		job->id = xstrdup("11111111-1111-4111-8111-111111111111");
		job->agency_id = xstrdup("agency-1");
		job->client = json_new_object();
		job->context = json_new_object();
		ended_outcome = NULL;
		states_freed = 0;
		runner_run(&env, job);
		ck_assert_ptr_null(ended_outcome); /* waiting */
		ck_assert_int_eq(states_freed, 0);
		if (!release)
			job->lost = 1;
		runner_abort(job, release);
		ck_assert_int_eq(states_freed, 1);
		ck_assert_str_eq(ended_outcome, release ? "RELEASED" : "LOST");
	}
	json_free(env.default_settings);
}
END_TEST

/* ---- linking and loading ---------------------------------------------------------------- */

/* ABI 1.2: a step's client_fields reach the registry (copied), none → 0. */
START_TEST(client_fields_are_registered)
{
	const struct step_impl *st = step_registry_find(reg, "STATEFUL");
	ck_assert_uint_eq(st->nclient_fields, 2);
	ck_assert_str_eq(st->client_fields[0], "first_name");
	ck_assert_str_eq(st->client_fields[1], "email");
	ck_assert_uint_eq(step_registry_find(reg, "TYPED")->nclient_fields, 0);
}
END_TEST

START_TEST(builtins_link_into_one_program)
{
	ck_assert_int_eq(
		plugin_loader_add_static(reg, "noop.c", ghl_plugin_entry_noop, step_host_api()), 1);
	ck_assert_int_eq(plugin_loader_add_static(reg, "create_contact.c",
						  ghl_plugin_entry_create_contact, step_host_api()),
			 1);
	struct outcome o = {0};
	run("NOOP", "{}", "{\"output\":\"linked\"}", &o);
	ck_assert_str_eq(o.status, "COMPLETED");
	ck_assert_str_eq(out_str(&o, "noop"), "linked");
	outcome_free(&o);
	/* the same plugin twice is a duplicate, refused as a whole */
	ck_assert_int_eq(
		plugin_loader_add_static(reg, "noop again", ghl_plugin_entry_noop, step_host_api()),
		0);
	ck_assert_msg(reg->nrefusals == 1 &&
			      strstr(reg->refusals[0].reason, "duplicate step name \"NOOP\""),
		      "%s", reg->nrefusals ? reg->refusals[0].reason : "no refusal");
}
END_TEST

static char *fixture(const char *name)
{
	return xasprintf("%s/test-plugins/%s.so", tl_env("GHL_BUILD_DIR"), name);
}

START_TEST(a_plugin_built_against_abi_1_0_loads_and_runs)
{
	char *path = fixture("abi_1_0");
	ck_assert_int_eq(plugin_loader_load_file(reg, path, step_host_api()), 1);
	struct outcome o = {0};
	run("ABI_1_0", "{\"name\":\"Old\"}", NULL, &o);
	ck_assert_msg(!strcmp(o.status, "COMPLETED"), "%s: %s", o.status, o.error);
	ck_assert_str_eq(out_str(&o, "greeting"), "hello Old");
	/* ABI 1.2's client_fields, which its smaller step struct lacks, read as none */
	ck_assert_uint_eq(step_registry_find(reg, "ABI_1_0")->nclient_fields, 0);
	int64_t minor = -1;
	ck_assert(!json_get_int(o.outputs, "host_minor", &minor) && minor == GHL_STEP_ABI_MINOR);
	outcome_free(&o);
	free(path);

	path = fixture("small_def");
	ck_assert_int_eq(plugin_loader_load_file(reg, path, step_host_api()), 0);
	ck_assert_msg(reg->nrefusals == 1 && strstr(reg->refusals[0].reason,
						    "struct sizes smaller than ABI 1.0's"),
		      "%s", reg->nrefusals ? reg->refusals[0].reason : "no refusal");
	ck_assert_ptr_null(step_registry_find(reg, "SMALL_DEF"));
	free(path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("step_host");
	TCase *tc = tcase_create("step_host");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, typed_reads_any_key);
	tcase_add_test(tc, builder_writes_valid_json);
	tcase_add_test(tc, builder_refuses_misuse_and_says_why);
	tcase_add_test(tc, state_is_freed_when_the_run_ends);
	tcase_add_test(tc, state_is_freed_when_the_job_is_aborted);
	tcase_add_test(tc, client_fields_are_registered);
	tcase_add_test(tc, builtins_link_into_one_program);
	tcase_add_test(tc, a_plugin_built_against_abi_1_0_loads_and_runs);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
