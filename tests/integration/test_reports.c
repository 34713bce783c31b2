/* test_reports.c — GET /api/v1/reports/overview (and the success rates) over
 * real HTTP against a spawned `ghl-agent serve` (roles=api: jobs keep the
 * state the test gives them), a real PostgreSQL and a real ghl-sim: the
 * numbers of a seeded set of jobs, a job that ended a second ago counted at
 * once, the scope of each kind of caller, the GHL budget the process saw,
 * and the parameter errors. */
#include <curl/curl.h>
#include <libpq-fe.h>

#include "ghl_harness.h"

static char *dsn;
static struct hsim sim;
static struct hagent ag;
static PGconn *db;
static char *agency_a, *agency_b, *admin_b, *key_a;

/* GET path as token (NULL: the harness ADMIN): the parsed 200 answer. */
static struct json *get(const char *token, const char *path)
{
	char *url = hagent_url(&ag, path);
	char *authz = token ? xasprintf("Authorization: Bearer %s", token)
			    : hagent_admin_header(&ag);
	const char *h[] = {authz, NULL};
	char *body = NULL;
	long st = tl_http("GET", url, h, NULL, &body);
	ck_assert_msg(st == 200, "GET %s: %ld %s", path, st, body);
	struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j, "not JSON: %s", body);
	free(body);
	free(authz);
	free(url);
	return j;
}

static int64_t num(const struct json *o, const char *k)
{
	int64_t v = -1;
	ck_assert_msg(json_get_int(o, k, &v) == 0, "no integer %s", k);
	return v;
}

static double real(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);
	ck_assert_msg(v && v->type == JSON_NUMBER, "no number %s", k);
	return v->u.num.d;
}

/* The element of array whose key equals value (NULL when none). */
static const struct json *find(const struct json *array, const char *key, const char *value)
{
	for (size_t i = 0; i < json_len(array); i++)
		if (str_eq(json_get_str(json_at(array, i), key), value))
			return json_at(array, i);
	return NULL;
}

static void states_are(const struct json *j, int64_t pending, int64_t running, int64_t completed,
		       int64_t failed, int64_t cancelled)
{
	const struct json *s = json_get(j, "states");
	ck_assert_int_eq(num(s, "pending"), pending);
	ck_assert_int_eq(num(s, "in_progress"), running);
	ck_assert_int_eq(num(s, "retrying"), 0);
	ck_assert_int_eq(num(s, "completed"), completed);
	ck_assert_int_eq(num(s, "failed"), failed);
	ck_assert_int_eq(num(s, "cancelled"), cancelled);
}

/* A job of agency in state st created `age` seconds ago, finished `took`
 * seconds after (took < 0: not finished), with the snapshot or none; its id. */
static char *job(const char *agency, const char *st, int age, int took, const char *snapshot)
{
	char q[48];
	snprintf(q, sizeof(q), "'%s'", snapshot ? snapshot : "");
	return tl_sqlf(db,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
		       " snapshot_id, created_at, finished_at) VALUES ('%s', '{}', '%s', %s::uuid,"
		       " LOCALTIMESTAMP - %d * interval '1 second', CASE WHEN %d >= 0 THEN"
		       " LOCALTIMESTAMP - %d * interval '1 second' + %d * interval '1 second'"
		       " END) RETURNING id",
		       agency, st, snapshot ? q : "NULL", age, took, age, took);
}

static void failed_log(const char *job_id, const char *step)
{
	tl_execf(db,
		 "INSERT INTO provisioning_logs (job_id, step, status, details_json)"
		 " VALUES ('%s', '%s', 'FAILED', '{}')",
		 job_id, step);
}

/* job_report_days as if its last refresh were 31 s old: the next report
 * recomputes the days whose jobs changed since. */
static void report_days_stale(void)
{
	tl_execf(db,
		 "UPDATE report_refreshes SET refreshed_at = refreshed_at - interval '31 seconds'"
		 " WHERE view_name = 'job_report_days'");
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hsim_start(&sim, NULL);
	dsn = tl_create_migrated_db("reports");
	db = tl_connect(dsn);
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, &sim, extra);
	agency_a = hconnect_agency(&ag, db, "co-rep-a");
	agency_b = hconnect_agency(&ag, db, "co-rep-b");
	char *ids = xasprintf("[\"%s\"]", agency_b);
	admin_b = huser_token(&ag, "admin-b@example.com", "AGENCY_ADMIN", ids);
	free(ids);
	key_a = hkey_new(&ag, agency_a);
	char *snap = tl_sqlf(db,
			     "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)"
			     " VALUES ('%s', 'snap-d', 'Dental', 'dental') RETURNING id",
			     agency_a);
	/* A: three completed in 10, 20 and 30 s and one failed (dental), one
	 * pending and one cancelled without a snapshot, one completed 40 days
	 * ago (outside the period) */
	free(job(agency_a, "COMPLETED", 3600, 10, snap));
	free(job(agency_a, "COMPLETED", 7200, 20, snap));
	free(job(agency_a, "COMPLETED", 86400 * 3, 30, snap));
	char *fa = job(agency_a, "FAILED", 600, 5, snap);
	free(job(agency_a, "PENDING", 60, -1, NULL));
	free(job(agency_a, "CANCELLED", 120, 1, NULL));
	free(job(agency_a, "COMPLETED", 86400 * 40, 10, NULL));
	/* B: two failed, one running */
	char *fb1 = job(agency_b, "FAILED", 300, 2, NULL);
	char *fb2 = job(agency_b, "FAILED", 400, 2, NULL);
	free(job(agency_b, "IN_PROGRESS", 30, -1, NULL));
	/* CREATE_USER failed three times in two jobs, ADD_TAGS once */
	failed_log(fa, "CREATE_USER");
	failed_log(fb1, "CREATE_USER");
	failed_log(fb1, "CREATE_USER");
	failed_log(fb2, "ADD_TAGS");
	free(fa);
	free(fb1);
	free(fb2);
	free(snap);
	/* the days before today as the first report after a quiet minute finds them */
	report_days_stale();
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	free(agency_a);
	free(agency_b);
	free(admin_b);
	free(key_a);
	curl_global_cleanup();
}

START_TEST(overview_numbers_of_seeded_jobs)
{
	struct json *j = get(NULL, "/api/v1/reports/overview");
	ck_assert_int_eq(num(j, "days"), 30);
	ck_assert_ptr_nonnull(json_get_str(j, "generated_at"));
	states_are(j, 1, 1, 3, 3, 1);
	/* one entry per day, oldest first, ending today, summing to the states */
	const struct json *pd = json_get(j, "per_day");
	ck_assert_int_eq(json_len(pd), 30);
	char *today = tl_sqlf(db, "SELECT to_char(LOCALTIMESTAMP, 'YYYY-MM-DD')");
	ck_assert_str_eq(json_get_str(json_at(pd, 29), "day"), today);
	char *first = tl_sqlf(db,
			      "SELECT to_char(LOCALTIMESTAMP - interval '29 days', 'YYYY-MM-DD')");
	ck_assert_str_eq(json_get_str(json_at(pd, 0), "day"), first);
	int64_t completed = 0, failed = 0;
	for (size_t i = 0; i < json_len(pd); i++) {
		completed += num(json_at(pd, i), "completed");
		failed += num(json_at(pd, i), "failed");
	}
	ck_assert_int_eq(completed, 3);
	ck_assert_int_eq(failed, 3);
	/* success rates: A 3 of 4 finished, B 0 of 2 */
	const struct json *a = find(json_get(j, "agencies"), "agency_id", agency_a);
	const struct json *b = find(json_get(j, "agencies"), "agency_id", agency_b);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(num(a, "total"), 6);
	ck_assert_int_eq(num(a, "cancelled"), 1);
	ck_assert_double_eq_tol(real(a, "success_rate"), 0.75, 1e-9);
	ck_assert_double_eq_tol(real(b, "success_rate"), 0.0, 1e-9);
	const struct json *dental = find(json_get(j, "niches"), "niche", "dental");
	const struct json *none = find(json_get(j, "niches"), "niche", "");
	ck_assert_int_eq(num(dental, "total"), 4);
	ck_assert_double_eq_tol(real(dental, "success_rate"), 0.75, 1e-9);
	ck_assert_int_eq(num(none, "total"), 5); /* A's pending and cancelled, B's three */
	/* 10, 20, 30 s: median 20, p95 30 (nearest rank), each within the
	 * histogram's 4.5% */
	const struct json *pt = json_get(j, "provision_seconds");
	ck_assert_int_eq(num(pt, "completed"), 3);
	ck_assert_double_eq_tol(real(pt, "median"), 20.0, 20 * 0.045);
	ck_assert_double_eq_tol(real(pt, "p95"), 30.0, 30 * 0.045);
	/* failing steps, most failures first */
	const struct json *fs = json_get(j, "failing_steps");
	ck_assert_int_eq(json_len(fs), 2);
	ck_assert_str_eq(json_get_str(json_at(fs, 0), "step"), "CREATE_USER");
	ck_assert_int_eq(num(json_at(fs, 0), "failures"), 3);
	ck_assert_int_eq(num(json_at(fs, 0), "jobs"), 2);
	ck_assert_str_eq(json_get_str(json_at(fs, 1), "step"), "ADD_TAGS");
	free(today);
	free(first);
	json_free(j);
	/* a shorter period leaves out the job of three days ago */
	j = get(NULL, "/api/v1/reports/overview?days=2");
	ck_assert_int_eq(json_len(json_get(j, "per_day")), 2);
	ck_assert_int_eq(num(json_get(j, "provision_seconds"), "completed"), 2);
	json_free(j);
}
END_TEST

/* The success rates of agency in a report (its items by agency_id). */
static void rates_are(const struct json *j, const char *agency, int64_t total, int64_t completed,
		      int64_t failed, int64_t cancelled)
{
	const struct json *a = find(json_get(j, "items"), "agency_id", agency);
	ck_assert_msg(a, "no item of agency %s", agency);
	ck_assert_int_eq(num(a, "total"), total);
	ck_assert_int_eq(num(a, "completed"), completed);
	ck_assert_int_eq(num(a, "failed"), failed);
	ck_assert_int_eq(num(a, "cancelled"), cancelled);
}

START_TEST(success_rates_of_seeded_jobs)
{
	/* the days before today from job_report_days, today from the jobs */
	struct json *j = get(NULL, "/api/v1/reports/success-rates");
	ck_assert_str_eq(json_get_str(j, "group_by"), "agency");
	ck_assert_int_eq(num(j, "days"), 30);
	ck_assert_int_eq(json_len(json_get(j, "items")), 2);
	rates_are(j, agency_a, 6, 3, 1, 1);
	rates_are(j, agency_b, 3, 0, 2, 0);
	ck_assert_double_eq_tol(
		real(find(json_get(j, "items"), "agency_id", agency_a), "success_rate"), 0.75,
		1e-9);
	char *name = tl_sqlf(db, "SELECT name FROM agencies WHERE id = '%s'", agency_a);
	ck_assert_str_eq(json_get_str(json_at(json_get(j, "items"), 0), "agency_name"), name);
	free(name);
	json_free(j);
	j = get(NULL, "/api/v1/reports/success-rates?group_by=niche");
	const struct json *dental = find(json_get(j, "items"), "niche", "dental");
	const struct json *none = find(json_get(j, "items"), "niche", "");
	ck_assert_int_eq(num(dental, "total"), 4);
	ck_assert_int_eq(num(dental, "completed"), 3);
	ck_assert_double_eq_tol(real(dental, "success_rate"), 0.75, 1e-9);
	ck_assert_int_eq(num(none, "total"), 5);
	ck_assert_int_eq(num(none, "failed"), 2);
	json_free(j);
	/* two days back leaves out the job of three days ago; 60 has the one of 40 */
	j = get(NULL, "/api/v1/reports/success-rates?days=2");
	rates_are(j, agency_a, 5, 2, 1, 1);
	json_free(j);
	j = get(NULL, "/api/v1/reports/success-rates?days=60");
	rates_are(j, agency_a, 7, 4, 1, 1);
	json_free(j);
	/* an API key of A: A only */
	j = get(key_a, "/api/v1/reports/success-rates");
	ck_assert_int_eq(json_len(json_get(j, "items")), 1);
	rates_are(j, agency_a, 6, 3, 1, 1);
	json_free(j);
}
END_TEST

START_TEST(a_job_that_just_ended_counts_at_once)
{
	char *id = job(agency_a, "IN_PROGRESS", 5, -1, NULL);
	struct json *j = get(NULL, "/api/v1/reports/overview");
	states_are(j, 1, 2, 3, 3, 1);
	json_free(j);
	tl_execf(db,
		 "UPDATE provisioning_jobs SET status = 'COMPLETED', finished_at = LOCALTIMESTAMP,"
		 " created_at = LOCALTIMESTAMP - interval '5 seconds' WHERE id = '%s'",
		 id);
	j = get(NULL, "/api/v1/reports/overview");
	states_are(j, 1, 1, 4, 3, 1);
	const struct json *pd = json_get(j, "per_day");
	ck_assert_int_ge(num(json_at(pd, json_len(pd) - 1), "completed"), 1);
	/* 5, 10, 20, 30 s: median 10 (nearest rank) */
	ck_assert_double_eq_tol(real(json_get(j, "provision_seconds"), "median"), 10.0, 10 * 0.045);
	json_free(j);
	/* the success rates read the jobs too: A's four completions, now */
	j = get(NULL, "/api/v1/reports/success-rates");
	const struct json *a = find(json_get(j, "items"), "agency_id", agency_a);
	ck_assert_int_eq(num(a, "completed"), 4);
	json_free(j);
	tl_execf(db, "DELETE FROM provisioning_jobs WHERE id = '%s'", id);
	free(id);
}
END_TEST

START_TEST(an_older_job_that_changed_counts_after_the_next_refresh)
{
	/* the job completed three days ago fails after a retry: its day comes
	 * from job_report_days, recomputed when the last refresh is 30 s old */
	char *id = tl_sqlf(db,
			   "SELECT id FROM provisioning_jobs WHERE agency_id = '%s' AND"
			   " created_at < LOCALTIMESTAMP - interval '2 days' AND"
			   " created_at > LOCALTIMESTAMP - interval '4 days'",
			   agency_a);
	tl_execf(
		db,
		"UPDATE provisioning_jobs SET status = 'FAILED', updated_at = now() WHERE id = '%s'",
		id);
	report_days_stale();
	/* the success rates bring job_report_days up to date themselves */
	struct json *j = get(NULL, "/api/v1/reports/success-rates");
	rates_are(j, agency_a, 6, 2, 2, 1);
	json_free(j);
	j = get(NULL, "/api/v1/reports/overview");
	states_are(j, 1, 1, 2, 4, 1);
	json_free(j);
	tl_execf(
		db,
		"UPDATE provisioning_jobs SET status = 'COMPLETED', updated_at = now() WHERE id = '%s'",
		id);
	report_days_stale();
	j = get(NULL, "/api/v1/reports/overview");
	states_are(j, 1, 1, 3, 3, 1);
	json_free(j);
	free(id);
}
END_TEST

START_TEST(each_caller_sees_its_agencies)
{
	/* an AGENCY_ADMIN of B: B's jobs, steps and budget only */
	struct json *j = get(admin_b, "/api/v1/reports/overview");
	states_are(j, 0, 1, 0, 2, 0);
	ck_assert_int_eq(json_len(json_get(j, "agencies")), 1);
	ck_assert_ptr_nonnull(find(json_get(j, "agencies"), "agency_id", agency_b));
	ck_assert_int_eq(json_len(json_get(j, "ghl_budget")), 1);
	ck_assert_ptr_nonnull(find(json_get(j, "ghl_budget"), "agency_id", agency_b));
	const struct json *fs = json_get(j, "failing_steps");
	ck_assert_int_eq(num(find(fs, "step", "CREATE_USER"), "failures"), 2);
	json_free(j);
	/* asking for A changes nothing but the filter: nothing of A */
	char *path = xasprintf("/api/v1/reports/overview?agency_id=%s", agency_a);
	j = get(admin_b, path);
	states_are(j, 0, 0, 0, 0, 0);
	ck_assert_int_eq(json_len(json_get(j, "agencies")), 0);
	ck_assert_int_eq(json_len(json_get(j, "failing_steps")), 0);
	ck_assert_int_eq(json_len(json_get(j, "ghl_budget")), 0);
	json_free(j);
	/* the API key of A */
	j = get(key_a, "/api/v1/reports/overview");
	states_are(j, 1, 0, 3, 1, 1);
	ck_assert_int_eq(json_len(json_get(j, "agencies")), 1);
	ck_assert_int_eq(num(json_at(json_get(j, "failing_steps"), 0), "failures"), 1);
	json_free(j);
	/* the ADMIN narrowed to A */
	j = get(NULL, path);
	states_are(j, 1, 0, 3, 1, 1);
	json_free(j);
	free(path);
}
END_TEST

START_TEST(ghl_budget_from_the_rate_headers)
{
	/* a snapshot sync calls GHL in A's company bucket */
	char *path = xasprintf("/api/v1/agencies/%s/snapshots/sync", agency_a);
	char *url = hagent_url(&ag, path);
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {authz, NULL};
	char *body = NULL;
	long st = tl_http("POST", url, h, NULL, &body);
	ck_assert_msg(st == 200, "sync: %ld %s", st, body);
	free(body);
	struct json *j = get(NULL, "/api/v1/reports/overview");
	const struct json *a = find(json_get(j, "ghl_budget"), "agency_id", agency_a);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_gt(num(a, "max"), 0);
	ck_assert_int_ge(num(a, "remaining"), 0);
	ck_assert_int_gt(num(a, "daily_max"), 0);
	ck_assert_int_le(num(a, "daily_remaining"), num(a, "daily_max"));
	ck_assert_int_eq(num(a, "queued"), 0);
	json_free(j);
	free(authz);
	free(url);
	free(path);
}
END_TEST

/* Issue 14's wording: errors say what to do and where to look; the OAuth
 * result page looks like the dashboard and leads back to the agency. */
START_TEST(errors_say_what_to_do)
{
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	char *url = hagent_url(&ag, "/api/v1/jobs/00000000-0000-4000-8000-000000000000");
	char *body = NULL;
	ck_assert_int_eq(tl_http("GET", url, h, NULL, &body), 404);
	ck_assert_msg(strstr(body, "job not found: check the id; GET /api/v1/jobs"), "%s", body);
	free(body);
	free(url);
	char *path = xasprintf("/api/v1/agencies/%s/jobs", agency_b);
	url = hagent_url(&ag, path);
	ck_assert_int_eq(tl_http("POST", url, h, "{\"client_data\":{\"name\":\"N\"}}", &body), 422);
	ck_assert_msg(strstr(body, "send the request again: client_data.email (required)"), "%s",
		      body);
	free(body);
	free(url);
	free(path);
	free(authz);
	struct hresp cb;
	free(hconnect(&ag, "co-rep-c", &cb));
	ck_assert_int_eq(cb.status, 200);
	char *id = tl_sqlf(db, "SELECT id FROM agencies WHERE ghl_agency_id = 'co-rep-c'");
	char *link = xasprintf("href=\"/#/agencies/%s\"", id);
	ck_assert_msg(strstr(cb.body, "href=\"/web/style.css\"") && strstr(cb.body, link) &&
			      !strstr(cb.body, "<style") && strstr(cb.headers, "style-src 'self'"),
		      "%s", cb.body);
	free(link);
	free(id);
	hresp_free(&cb);
}
END_TEST

START_TEST(bad_parameters_are_named)
{
	char *url = hagent_url(&ag, "/api/v1/reports/overview?days=91&agency_id=acme");
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {authz, NULL};
	char *body = NULL;
	long st = tl_http("GET", url, h, NULL, &body);
	ck_assert_int_eq(st, 400);
	ck_assert_msg(strstr(body, "\"days\"") && strstr(body, "\"agency_id\"") &&
			      strstr(body, "invalid_parameter"),
		      "%s", body);
	free(body);
	free(authz);
	free(url);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reports");
	TCase *tc = tcase_create("overview");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, overview_numbers_of_seeded_jobs);
	tcase_add_test(tc, success_rates_of_seeded_jobs);
	tcase_add_test(tc, a_job_that_just_ended_counts_at_once);
	tcase_add_test(tc, an_older_job_that_changed_counts_after_the_next_refresh);
	tcase_add_test(tc, each_caller_sees_its_agencies);
	tcase_add_test(tc, ghl_budget_from_the_rate_headers);
	tcase_add_test(tc, bad_parameters_are_named);
	tcase_add_test(tc, errors_say_what_to_do);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
