/* test_job_timeline.c — a job's full timeline and fixing a failed job, end
 * to end (real `ghl-agent serve` with its scheduler, PostgreSQL, ghl-sim):
 * every step of the pinned pipeline with its state and attempts, the GHL
 * requests of each step recorded with secrets masked, the objects a failed
 * job left in GHL, and edit-and-retry: bad client data answers 422 naming the
 * field, good data resumes at the failed step without running the earlier
 * ones again (counted in ghl-sim's call log). */
#include <curl/curl.h>

#include "ghl_harness.h"

static char *dsn;
static PGconn *db;
static struct hsim sim;
static struct hagent ag;
static char *agency;

static struct json *parse(const char *body)
{
	struct err e;
	struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(j, "not JSON (%s): %.300s", e.msg, body);
	return j;
}

/* As the ADMIN: status, body in *out (malloc'd). */
static long call(const char *method, const char *path, const char *body, char **out)
{
	char *url = hagent_url(&ag, path);
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {authz, "Content-Type: application/json", NULL};
	long st = tl_http(method, url, h, body, out);
	free(authz);
	free(url);
	return st;
}

/* GET /api/v1/jobs/{job}/{what} as the ADMIN: 200 and its JSON. */
static struct json *get_json(const char *job, const char *what)
{
	char *path = xasprintf("/api/v1/jobs/%s/%s", job, what);
	char *out = NULL;
	long st = call("GET", path, NULL, &out);
	ck_assert_msg(st == 200, "GET %s: %ld %s", path, st, out);
	struct json *j = parse(out);
	free(out);
	free(path);
	return j;
}

/* Calls ghl-sim answered to method route ("POST", "/locations/"). */
static long long sim_calls(const char *method, const char *route)
{
	struct json *log = hsim_admin(&sim, "GET", "calls", NULL);
	struct json *calls = json_get(log, "calls");
	long long n = 0;
	for (size_t i = 0; i < json_len(calls); i++)
		if (str_eq(json_get_str(json_at(calls, i), "method"), method) &&
		    str_eq(json_get_str(json_at(calls, i), "route"), route))
			n++;
	json_free(log);
	return n;
}

static const char *state_at(const struct json *tl, size_t i)
{
	return json_get_str(json_at(json_get(tl, "steps"), i), "state");
}

static int64_t int_of(const struct json *o, const char *key)
{
	int64_t v = -1;
	json_get_int(o, key, &v);
	return v;
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *flags[] = {"--snapshot-delay-ms", "0", NULL};
	hsim_start(&sim, flags);
	dsn = tl_create_migrated_db("job_timeline");
	db = tl_connect(dsn);
	const char *extra[] = {"GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_RETRY_BASE=100ms",
			       "GHL_AGENT_RETRY_MAX=300ms", NULL};
	hagent_start(&ag, dsn, &sim, extra);
	agency = hconnect_agency(&ag, db, "co-timeline");
	tl_execf(db,
		 "UPDATE agencies SET settings_json = '{\"pipeline\":[{\"step\":"
		 "\"CREATE_LOCATION\"},{\"step\":\"CREATE_USER\"}]}' WHERE id = '%s'",
		 agency);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	free(agency);
	curl_global_cleanup();
}

START_TEST(timeline_requests_and_edit_and_retry)
{
	/* stored without first and last name (as before the pipeline needed them):
	 * CREATE_LOCATION succeeds, CREATE_USER fails for good */
	char *job = hjob_add(db, agency,
			     "{\"name\":\"Fixme Dental\",\"email\":\"fix@example.com\"}", NULL);
	char *st = hjob_wait(db, job, 30000, ag.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);
	ck_assert_int_eq(sim_calls("POST", "/locations/"), 1);

	/* the timeline: both steps of the pinned pipeline, "1 of 2", and the
	 * location the failed job left in GHL */
	struct json *tl = get_json(job, "timeline");
	ck_assert_int_eq(int_of(tl, "total"), 2);
	ck_assert_int_eq(int_of(tl, "done"), 1);
	ck_assert_str_eq(state_at(tl, 0), "done");
	ck_assert_str_eq(state_at(tl, 1), "failed");
	struct json *s0 = json_at(json_get(tl, "steps"), 0);
	struct json *s1 = json_at(json_get(tl, "steps"), 1);
	ck_assert_str_eq(json_get_str(s0, "step"), "CREATE_LOCATION");
	const char *loc = json_get_str(json_get(s0, "outputs"), "location_id");
	ck_assert_msg(loc && *loc, "no per-step outputs: %s", json_to_string(s0));
	ck_assert_msg(strstr(json_get_str(s1, "error"), "first_name"), "%s",
		      json_get_str(s1, "error"));
	ck_assert_int_eq(json_len(json_get(s1, "attempts")), 1);
	struct json *left = json_get(tl, "left_in_ghl");
	ck_assert_int_eq(json_len(left), 1);
	ck_assert_str_eq(json_get_str(json_at(left, 0), "key"), "location_id");
	ck_assert_str_eq(json_get_str(json_at(left, 0), "value"), loc);
	char *loc_id = xstrdup(loc);
	json_free(tl);

	/* the requests of step 0: recorded with status, duration and the reply */
	struct json *rq = get_json(job, "requests?step=0");
	struct json *items = json_get(rq, "items");
	ck_assert_int_ge(json_len(items), 1);
	int seen_post = 0;
	for (size_t i = 0; i < json_len(items); i++) {
		struct json *it = json_at(items, i);
		ck_assert_int_eq(int_of(it, "step_index"), 0);
		if (str_eq(json_get_str(it, "method"), "POST") &&
		    str_eq(json_get_str(it, "path"), "/locations/")) {
			seen_post = 1;
			ck_assert_int_eq(int_of(it, "status") / 100, 2);
			ck_assert_int_ge(int_of(it, "duration_ms"), 0);
			ck_assert_msg(strstr(json_get_str(it, "response_body"), loc_id), "%s",
				      json_get_str(it, "response_body"));
			ck_assert_msg(strstr(json_get_str(it, "request_body"), "Fixme Dental"),
				      "%s", json_get_str(it, "request_body"));
		}
	}
	ck_assert_msg(seen_post, "no POST /locations/ recorded");
	json_free(rq);

	/* edit and retry: checked like a submission, the field named */
	char *path = xasprintf("/api/v1/jobs/%s/edit-and-retry", job);
	char *out = NULL;
	long code = call(
		"POST", path,
		"{\"client_data\":{\"name\":\"Fixme Dental\",\"email\":\"fix@example.com\","
		"\"first_name\":\"Ada\"}}",
		&out);
	ck_assert_msg(code == 422 && strstr(out, "client_data.last_name") &&
			      !strstr(out, "client_data.first_name"),
		      "%ld %s", code, out);
	free(out);
	code = call("POST", path, "{\"client_data\":{\"name\":\"\",\"email\":\"nope\"}}", &out);
	ck_assert_msg(code == 422 && strstr(out, "client_data.email"), "%ld %s", code, out);
	free(out);
	char *still = tl_sqlf(db,
			      "SELECT status || ' ' || (client_data_json ? 'first_name')"
			      " FROM provisioning_jobs WHERE id = '%s'",
			      job);
	ck_assert_str_eq(still, "FAILED false");
	free(still);
	code = call("POST", path,
		    "{\"client_data\":{\"name\":\"Fixme Dental\",\"email\":\"fix@example.com\","
		    "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}}",
		    &out);
	ck_assert_msg(code == 200 && strstr(out, "\"first_name\":\"Ada\""), "%ld %s", code, out);
	free(out);
	hjob_assert_completed(db, job, ag.log);
	/* resumed at the failed step: the location was not created again */
	ck_assert_int_eq(sim_calls("POST", "/locations/"), 1);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s'"
				   " AND step = 'CREATE_LOCATION' AND status = 'STARTED'",
				   job),
			 1);
	/* the same job, edited: no second job */
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs"), 1);
	/* an edit of a job that is not FAILED is refused */
	code = call("POST", path,
		    "{\"client_data\":{\"name\":\"X\",\"email\":\"x@example.com\","
		    "\"first_name\":\"A\",\"last_name\":\"B\"}}",
		    &out);
	ck_assert_msg(code == 409 && strstr(out, "this one is COMPLETED"), "%ld %s", code, out);
	free(out);
	free(path);

	tl = get_json(job, "timeline");
	ck_assert_int_eq(int_of(tl, "done"), 2);
	ck_assert_str_eq(state_at(tl, 1), "done");
	s1 = json_at(json_get(tl, "steps"), 1);
	ck_assert_int_eq(json_len(json_get(s1, "attempts")), 2);
	ck_assert_str_eq(json_get_str(json_at(json_get(s1, "attempts"), 0), "status"), "FAILED");
	ck_assert_str_eq(json_get_str(json_at(json_get(s1, "attempts"), 1), "status"), "COMPLETED");
	ck_assert_int_eq(json_len(json_get(tl, "left_in_ghl")), 0);
	json_free(tl);

	/* CREATE_USER's POST carried a generated password: masked */
	out = NULL;
	char *rpath = xasprintf("/api/v1/jobs/%s/requests", job);
	ck_assert_int_eq(call("GET", rpath, NULL, &out), 200);
	ck_assert_msg(strstr(out, "\\\"password\\\":\\\"***\\\""), "password not masked: %s", out);
	hassert_no_tokens(&sim, "the job's requests", out, 1);
	free(out);
	free(rpath);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM job_requests WHERE job_id = '%s'"
				   " AND request_body ~ '\"password\":\"[^*]'",
				   job),
			 0);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM job_requests WHERE job_id = '%s'"
				   " AND step_index = 1 AND method = 'POST' AND path = '/users/'",
				   job),
			 1);
	free(loc_id);
	free(job);
}
END_TEST

START_TEST(unknown_job_and_bad_query)
{
	char *out = NULL;
	long st = call("GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/timeline", NULL,
		       &out);
	ck_assert_msg(st == 404 && strstr(out, "not_found"), "%ld %s", st, out);
	free(out);
	st = call("GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/requests?step=x", NULL,
		  &out);
	ck_assert_msg(st == 400 && strstr(out, "step"), "%ld %s", st, out);
	free(out);
	st = call("POST", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/edit-and-retry",
		  "{\"client_data\":{\"name\":\"X\",\"email\":\"x@example.com\"}}", &out);
	ck_assert_msg(st == 404, "%ld %s", st, out);
	free(out);
	st = call("POST", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/edit-and-retry", "{}",
		  &out);
	ck_assert_msg(st == 422 && strstr(out, "client_data"), "%ld %s", st, out);
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("job_timeline");
	TCase *tc = tcase_create("timeline");
	tcase_set_timeout(tc, 180);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, timeline_requests_and_edit_and_retry);
	tcase_add_test(tc, unknown_job_and_bad_query);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
