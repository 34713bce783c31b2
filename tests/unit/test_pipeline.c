/* test_pipeline.c — pipeline validation messages and retry backoff bounds. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "plugin_loader.h"
#include "registry.h"
#include "scheduler.h"
#include "schema.h"
#include "step_host.h"
#include "testlib.h"

static struct step_registry *reg;

static void setup(void)
{
	log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
	reg = step_registry_new();
	char *dir = xasprintf("%s/plugins", tl_env("GHL_BUILD_DIR"));
	ck_assert_int_ge(plugin_loader_load_dir(reg, dir, step_host_api()), 8);
	free(dir);
}

static void teardown(void)
{
	step_registry_free(reg);
}

/* Validate settings text; return "field: message|field: message". */
static char *problems_of(const char *settings)
{
	struct err e;
	struct json *s = json_parse(settings, strlen(settings), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(s != NULL, "%s", e.msg);
	struct json *p = json_new_array();
	pipeline_validate(reg, s, p);
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < json_len(p); i++)
		buf_printf(&b, "%s%s: %s", i ? "|" : "", json_get_str(json_at(p, i), "field"),
			   json_get_str(json_at(p, i), "message"));
	json_free(p);
	json_free(s);
	return buf_take(&b);
}

START_TEST(valid_pipelines)
{
	char *p = problems_of("{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
			      "{\"step\":\"CREATE_LOCATION\"},{\"step\":\"CREATE_USER\","
			      "\"config\":{\"role\":\"admin\"}},{\"step\":\"NOOP\",\"on_error\":"
			      "\"continue\"}],\"max_retries\":3,\"max_concurrent_jobs\":5,"
			      "\"on_failure\":\"rollback\"}");
	ck_assert_str_eq(p, "");
	free(p);
	p = problems_of("{}");
	ck_assert_str_eq(p, "");
	free(p);
	/* settings nobody reads are refused by name, not stored silently */
	p = problems_of("{\"max_retries\":3,\"webhook_url\":\"https://agency.example/hook\"}");
	ck_assert_str_eq(p, "webhook_url: unknown setting (known: pipeline, max_retries, "
			    "max_concurrent_jobs, on_failure)");
	free(p);
}
END_TEST

/* Secrets in step configs are write-only: masked for reads, kept on save. */
START_TEST(secrets_masked_and_kept)
{
	const char *in = "{\"pipeline\":[{\"step\":\"NOTIFY_WEBHOOK\",\"config\":"
			 "{\"url\":\"https://x.example\",\"secret\":\"s3cret-0123456789\","
			 "\"nested\":{\"api_token\":\"t0k\",\"plain\":\"p\"}}}]}";
	struct json *s = json_parse(in, strlen(in), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_ptr_nonnull(s);
	struct json *stored = json_clone(s);
	pipeline_mask_secrets(s);
	char *text = json_to_string(s);
	ck_assert_msg(!strstr(text, "s3cret") && !strstr(text, "t0k") && strstr(text, "\"p\""),
		      "%s", text);
	free(text);
	/* saved back after a reorder: kept from the only stored step of that name */
	struct json *p = json_new_array();
	struct json *pl = json_get(s, "pipeline");
	json_array_push_take(pl,
			     json_parse("{\"step\":\"NOOP\"}", 15, JSON_DEFAULT_MAX_DEPTH, NULL));
	struct json *tmp = pl->u.arr.items[0];
	pl->u.arr.items[0] = pl->u.arr.items[1];
	pl->u.arr.items[1] = tmp;
	ck_assert_int_eq(pipeline_keep_secrets(s, stored, p), 0);
	ck_assert_str_eq(json_get_str(json_get(json_at(pl, 1), "config"), "secret"),
			 "s3cret-0123456789");
	ck_assert_str_eq(
		json_get_str(json_get(json_get(json_at(pl, 1), "config"), "nested"), "api_token"),
		"t0k");
	/* a mask with nothing stored behind it */
	ck_assert_int_eq(pipeline_keep_secrets(stored, NULL, p), 0); /* no masks: fine */
	pipeline_mask_secrets(stored);
	ck_assert_int_eq(pipeline_keep_secrets(stored, NULL, p), 2);
	ck_assert_str_eq(json_get_str(json_at(p, 0), "field"), "pipeline[0].config.secret");
	json_free(p);
	json_free(stored);
	json_free(s);
}
END_TEST

START_TEST(messages_name_index_step_and_key)
{
	char *p = problems_of("{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
			      "{\"step\":\"CREATE_LOCATON\"}]}");
	ck_assert_msg(str_has_prefix(p, "pipeline[1].step: unknown step \"CREATE_LOCATON\" "
					"(known steps: ") &&
			      strstr(p, "CREATE_LOCATION"),
		      "%s", p);
	free(p);
	p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\"},{\"step\":\"CREATE_USER\",\"config\":"
			"{\"role\":\"owner\"}}]}");
	ck_assert_msg(strstr(p, "pipeline[1].config.role: ") && strstr(p, "admin") &&
			      strstr(p, "(step CREATE_USER)"),
		      "%s", p);
	free(p);
	p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\",\"config\":{\"output\":1,\"x\":2}}]}");
	ck_assert_msg(strstr(p, "pipeline[0].config.output: ") &&
			      strstr(p, "pipeline[0].config.x: "),
		      "%s", p);
	free(p);
	p = problems_of(
		"{\"pipeline\":[{\"step\":\"NOOP\",\"retries\":2,\"on_error\":\"ignore\"}]}");
	ck_assert_msg(
		strstr(p,
		       "pipeline[0].retries: unknown key (allowed: step, config, on_error, when)") &&
			strstr(p, "pipeline[0].on_error: must be \"fail\" or \"continue\""),
		"%s", p);
	free(p);
	p = problems_of("{\"pipeline\":[],\"max_retries\":-1,\"max_concurrent_jobs\":\"5\"}");
	ck_assert_msg(strstr(p, "pipeline: must be a non-empty array") &&
			      strstr(p, "max_retries: must be a whole number from 0 to 100") &&
			      strstr(p, "max_concurrent_jobs: must be a whole number"),
		      "%s", p);
	free(p);
	p = problems_of("{\"pipeline\":[\"NOOP\",{\"config\":{}}]}");
	ck_assert_msg(strstr(p, "pipeline[0]: must be an object") &&
			      strstr(p, "pipeline[1].step: required"),
		      "%s", p);
	free(p);

	struct err e;
	const char *t = "{\"pipeline\":[{\"step\":\"NOPE\"}]}";
	struct json *s = json_parse(t, strlen(t), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pipeline_check(reg, s, &e), -1);
	ck_assert_msg(str_has_prefix(e.msg, "pipeline[0].step: unknown step \"NOPE\""), "%s",
		      e.msg);
	json_free(s);
}
END_TEST

START_TEST(effective_pipeline)
{
	struct err e;
	const char *ta = "{\"pipeline\":[{\"step\":\"NOOP\"}]}";
	const char *td = "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}]}";
	struct json *agency = json_parse(ta, strlen(ta), JSON_DEFAULT_MAX_DEPTH, &e);
	struct json *def = json_parse(td, strlen(td), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_ptr_nonnull(agency);
	ck_assert_ptr_nonnull(def);
	struct json *p = pipeline_effective(agency, def);
	ck_assert_str_eq(json_get_str(json_at(p, 0), "step"), "NOOP");
	json_free(p);
	p = pipeline_effective(NULL, def);
	ck_assert_str_eq(json_get_str(json_at(p, 0), "step"), "CREATE_LOCATION");
	json_free(p);
	json_free(agency);
	json_free(def);
}
END_TEST

/* The client-data fields a pipeline needs: the union of its steps' declared
 * client_fields, with the steps needing each; on_error "continue" steps add
 * nothing. A client lacking one gets a problem naming the field and steps. */
START_TEST(client_fields_union_and_missing)
{
	const char *text = "[{\"step\":\"VALIDATE_SNAPSHOT\"},{\"step\":\"CREATE_LOCATION\"},"
			   "{\"step\":\"CREATE_USER\"},{\"step\":\"CREATE_CONTACT\"},"
			   "{\"step\":\"NOTIFY_WEBHOOK\",\"on_error\":\"continue\"},"
			   "{\"step\":\"NO_SUCH_STEP\"}]";
	struct json *p = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *needs = pipeline_client_fields(reg, p);
	char *got = json_to_string(needs);
	ck_assert_str_eq(got, "[{\"field\":\"name\",\"steps\":[\"CREATE_LOCATION\"]},"
			      "{\"field\":\"email\",\"steps\":[\"CREATE_LOCATION\",\"CREATE_USER\","
			      "\"CREATE_CONTACT\"]},{\"field\":\"first_name\",\"steps\":"
			      "[\"CREATE_USER\"]},{\"field\":\"last_name\",\"steps\":"
			      "[\"CREATE_USER\"]}]");
	free(got);
	/* a client without last_name, and with first_name null: both named once;
	 * email already has a problem from client_data_validate: not named again */
	const char *ct = "{\"name\":\"A\",\"first_name\":null}";
	struct json *client = json_parse(ct, strlen(ct), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *probs = json_new_array();
	schema_problem_add(probs, "client_data.email", "required");
	ck_assert_int_eq(
		pipeline_missing_client_fields(needs, client, "client_data.", " (line 3)", probs),
		2);
	got = json_to_string(probs);
	ck_assert_str_eq(got, "[{\"field\":\"client_data.email\",\"message\":\"required\"},"
			      "{\"field\":\"client_data.first_name\",\"message\":\"required by "
			      "step CREATE_USER of the agency's pipeline (line 3)\"},"
			      "{\"field\":\"client_data.last_name\",\"message\":\"required by "
			      "step CREATE_USER of the agency's pipeline (line 3)\"}]");
	free(got);
	json_free(probs);
	json_free(client);
	json_free(needs);
	json_free(p);
	/* the agency's pipeline, else the default's */
	needs = pipeline_agency_client_fields(reg, "{\"max_retries\":2}",
					      "{\"pipeline\":[{\"step\":\"CREATE_USER\"}]}");
	ck_assert_int_eq(json_len(needs), 3);
	json_free(needs);
	needs = pipeline_agency_client_fields(reg, "{\"pipeline\":[{\"step\":\"NOOP\"}]}",
					      "{\"pipeline\":[{\"step\":\"CREATE_USER\"}]}");
	ck_assert_int_eq(json_len(needs), 0);
	json_free(needs);
}
END_TEST

/* A step declaring a field client data does not have is refused with the
 * pipeline, naming the step and the field. */
START_TEST(unknown_client_field_is_refused)
{
	struct step_impl *impl = step_registry_find(reg, "NOOP");
	ck_assert_ptr_nonnull(impl);
	step_impl_set_client_fields(impl, (const char *const[]){"email", "shoe_size", NULL});
	char *p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\"}]}");
	ck_assert_str_eq(p, "pipeline[0].step: step NOOP declares it needs client field "
			    "\"shoe_size\", which is not a client-data field (name, email, "
			    "first_name, …)");
	free(p);
}
END_TEST

START_TEST(backoff_is_exponential_jittered_and_bounded)
{
	for (uint64_t r = 0; r < 5000; r += 7) {
		for (int n = 1; n <= 12; n++) {
			long long d = backoff_ms(n, 1000, 60000, 0, r * 2654435761ULL);
			long long full = 1000LL << (n - 1);
			if (full > 60000)
				full = 60000;
			ck_assert_msg(d >= full / 2 && d <= full, "n=%d d=%lld full=%lld", n, d,
				      full);
		}
	}
	/* GHL's wait wins when longer, even beyond the cap */
	ck_assert_int_eq(backoff_ms(1, 1000, 60000, 90000, 3), 90000);
	ck_assert_int_le(backoff_ms(1, 1000, 60000, 10, 3), 1000);
	/* jitter spreads: not every draw the same */
	long long a = backoff_ms(5, 1000, 60000, 0, 1);
	long long b = backoff_ms(5, 1000, 60000, 0, 999983);
	ck_assert_int_ne(a, b);
	/* huge retry numbers do not overflow */
	ck_assert_int_le(backoff_ms(1000, 1000, 300000, 0, 42), 300000);
}
END_TEST

/* A step's `when` is checked at save: a string that parses, the problem
 * naming the entry and the column; pipeline_check's summary says the same. */
START_TEST(when_is_validated)
{
	char *p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\",\"when\":"
			      "\"client.country in ['US','CA'] and not exists(client.phone)\"},"
			      "{\"step\":\"NOOP\",\"when\":\"outputs.user_reused == false\"}]}");
	ck_assert_str_eq(p, "");
	free(p);
	p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\"},{\"step\":\"NOOP\"},{\"step\":"
			"\"NOOP\"},{\"step\":\"NOOP\",\"when\":\"client.city == \"}]}");
	ck_assert_str_eq(p, "pipeline[3].when: expected a value at column 16");
	free(p);
	p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\",\"when\":\"settings.x == 1\"},"
			"{\"step\":\"NOOP\",\"when\":true}]}");
	ck_assert_str_eq(p, "pipeline[0].when: unknown name \"settings\" (a path starts with "
			    "client, outputs or job) at column 1|pipeline[1].when: must be a "
			    "condition as a string, like \"client.country == 'US'\"");
	free(p);
	/* an unknown step and a bad `when` are both reported */
	p = problems_of("{\"pipeline\":[{\"step\":\"NOPE\",\"when\":\"(true\"}]}");
	ck_assert_msg(str_has_prefix(p, "pipeline[0].when: expected ')' at column 6|"
					"pipeline[0].step: unknown step \"NOPE\""),
		      "%s", p);
	free(p);

	struct err e;
	const char *t = "{\"pipeline\":[{\"step\":\"NOOP\"},{\"step\":\"NOOP\",\"when\":"
			"\"job.attempt >\"}]}";
	struct json *s = json_parse(t, strlen(t), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pipeline_check(reg, s, &e), -1);
	ck_assert_str_eq(e.msg, "pipeline[1].when: expected a value at column 14");
	json_free(s);
}
END_TEST

/* A step with a `when` still counts for the client fields a job must bring. */
START_TEST(when_steps_still_need_their_client_fields)
{
	const char *t = "[{\"step\":\"CREATE_USER\","
			"\"when\":\"client.custom_values.plan == 'pro'\"}]";
	struct json *pl = json_parse(t, strlen(t), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_ptr_nonnull(pl);
	struct json *needs = pipeline_client_fields(reg, pl);
	char *text = json_to_string(needs);
	ck_assert_msg(strstr(text, "\"steps\":[\"CREATE_USER\"]"), "%s", text);
	free(text);
	json_free(needs);
	json_free(pl);
}
END_TEST

/* An entry's keys are checked by the schema module; near misses get the
 * same words as any other unknown key. */
START_TEST(entry_keys_checked_by_schema)
{
	char *p = problems_of("{\"pipeline\":[{\"step\":\"NOOP\",\"on_eror\":\"continue\","
			      "\"wen\":\"true\"}]}");
	ck_assert_str_eq(p, "pipeline[0].on_eror: unknown key (allowed: step, config, on_error, "
			    "when)|pipeline[0].wen: unknown key (allowed: step, config, on_error, "
			    "when)");
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("pipeline");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_pipelines);
	tcase_add_test(tc, secrets_masked_and_kept);
	tcase_add_test(tc, messages_name_index_step_and_key);
	tcase_add_test(tc, effective_pipeline);
	tcase_add_test(tc, client_fields_union_and_missing);
	tcase_add_test(tc, unknown_client_field_is_refused);
	tcase_add_test(tc, backoff_is_exponential_jittered_and_bounded);
	tcase_add_test(tc, when_is_validated);
	tcase_add_test(tc, entry_keys_checked_by_schema);
	tcase_add_test(tc, when_steps_still_need_their_client_fields);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
