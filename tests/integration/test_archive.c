/* test_archive.c — old finished jobs and their logs move to the archive
 * tables, by `ghl-agent archive` and by the daemon's periodic run. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ghl_harness.h"

static void seed(PGconn *db)
{
	PQclear(tl_sql(db, "INSERT INTO agencies (id, name, ghl_agency_id, "
			   "oauth_access_token_encrypted, oauth_refresh_token_encrypted, "
			   "token_expires_at) VALUES ('33333333-3333-4333-8333-333333333333', 'A', "
			   "'arch-co', 'x', 'y', now() + interval '1 day')"));
	/* 3 old finished, 1 recent finished, 1 old still pending */
	PQclear(tl_sql(
		db, "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, "
		    "finished_at, error_message) SELECT "
		    "'33333333-3333-4333-8333-333333333333', jsonb_build_object('name', "
		    "'J' || g), (CASE WHEN g = 2 THEN 'FAILED' WHEN g = 5 THEN 'PENDING' ELSE "
		    "'COMPLETED' END)::provisioning_job_status, CASE WHEN g = 4 THEN now() - "
		    "interval '1 day' WHEN g = 5 THEN NULL ELSE now() - interval '100 days' END, "
		    "'j' || g FROM generate_series(1, 5) g"));
	/* j5 waits for a later attempt: the daemon's scheduler leaves it alone */
	PQclear(tl_sql(db, "UPDATE provisioning_jobs SET status = 'RETRYING', run_at = now() + "
			   "interval '1 day' WHERE error_message = 'j5'"));
	PQclear(tl_sql(db, "INSERT INTO provisioning_logs (job_id, step, status, details_json) "
			   "SELECT id, 'NOOP', s::provisioning_step_status, '{}' FROM "
			   "provisioning_jobs, unnest(ARRAY['STARTED', 'COMPLETED']) s"));
	/* one GHL request of each job's step (job_requests), archived with it */
	PQclear(tl_sql(db, "INSERT INTO job_requests (job_id, step_index, attempt, method, path, "
			   "status, duration_ms) SELECT id, 0, 1, 'GET', '/x', 200, 1 FROM "
			   "provisioning_jobs"));
}

static int run_archive(const char *dsn, const char *a1, const char *a2, const char *a3, char **out)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[] = {env_dsn, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"),
			(char *)"archive",
			(char *)a1,
			(char *)a2,
			(char *)a3,
			NULL};
	int rc = tl_run(argv, env, out);
	free(env_dsn);
	return rc;
}

START_TEST(archive_tables_mirror_the_live_tables)
{
	char *dsn = tl_create_migrated_db("archive_cols");
	PGconn *db = tl_connect(dsn);
	static const char *const pairs[][2] = {{"provisioning_jobs", "provisioning_jobs_archive"},
					       {"provisioning_logs", "provisioning_logs_archive"},
					       {"job_requests", "job_requests_archive"}};
	for (int i = 0; i < 3; i++) {
		char *live = tl_sqlf(db,
				     "SELECT string_agg(column_name || ' ' || data_type, ', ' "
				     "ORDER BY ordinal_position) FROM information_schema.columns "
				     "WHERE table_name = '%s'",
				     pairs[i][0]);
		char *arch = tl_sqlf(db,
				     "SELECT string_agg(column_name || ' ' || data_type, ', ' "
				     "ORDER BY ordinal_position) FROM information_schema.columns "
				     "WHERE table_name = '%s'",
				     pairs[i][1]);
		char *want = xasprintf("%s, archived_at timestamp without time zone", live);
		ck_assert_msg(!strcmp(arch, want),
			      "%s must have %s's columns in order, then archived_at (a migration "
			      "added a column to one and not the other?)\nlive:    %s\narchive: %s",
			      pairs[i][1], pairs[i][0], live, arch);
		free(live);
		free(arch);
		free(want);
	}
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(cli_moves_old_finished_jobs_with_their_logs)
{
	char *dsn = tl_create_migrated_db("archive_cli");
	PGconn *db = tl_connect(dsn);
	seed(db);
	char *out;
	ck_assert_int_eq(run_archive(dsn, "--dry-run", NULL, NULL, &out), 0);
	ck_assert_msg(strstr(out, "3 job(s) and 6 log row(s) are due"), "%s", out);
	free(out);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs_archive"), 0);
	ck_assert_int_eq(run_archive(dsn, NULL, NULL, NULL, &out), 0);
	ck_assert_msg(strstr(out, "archived 3 job(s) and 6 log row(s)"), "%s", out);
	free(out);
	char *left = tl_sqlf(db, "SELECT string_agg(error_message, ',' ORDER BY error_message) "
				 "FROM provisioning_jobs");
	ck_assert_str_eq(left, "j4,j5");
	free(left);
	char *moved = tl_sqlf(db,
			      "SELECT string_agg(error_message || ':' || status, ',' ORDER BY "
			      "error_message) FROM provisioning_jobs_archive WHERE archived_at > "
			      "now() - interval '1 minute'");
	ck_assert_str_eq(moved, "j1:COMPLETED,j2:FAILED,j3:COMPLETED");
	free(moved);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_logs_archive"), 6);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_logs"), 4);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM job_requests_archive"), 3);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM job_requests"), 2);
	/* nothing is due any more; a shorter age takes the recent one too */
	ck_assert_int_eq(run_archive(dsn, NULL, NULL, NULL, &out), 0);
	ck_assert_msg(strstr(out, "archived 0 job(s)"), "%s", out);
	free(out);
	ck_assert_int_eq(run_archive(dsn, "--older-than", "12h", NULL, &out), 0);
	ck_assert_msg(strstr(out, "archived 1 job(s) and 2 log row(s)"), "%s", out);
	free(out);
	ck_assert_int_eq(run_archive(dsn, "--older-than", "soon", NULL, &out), 2);
	ck_assert_msg(strstr(out, "invalid duration"), "%s", out);
	free(out);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(daemon_archives_periodically)
{
	char *dsn = tl_create_migrated_db("archive_daemon");
	PGconn *db = tl_connect(dsn);
	seed(db);
	/* CANCELLED is final too: an old one is archived, a recent one is reported */
	PQclear(tl_sql(db,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, "
		       "finished_at) SELECT '33333333-3333-4333-8333-333333333333', '{}', "
		       "'CANCELLED', now() - d * interval '1 day' FROM unnest(ARRAY[100, 1]) d"));
	struct hagent a;
	const char *extra[] = {"GHL_AGENT_ARCHIVE_INTERVAL=200ms", "GHL_AGENT_ARCHIVE_AFTER=30d",
			       "GHL_AGENT_LOG_LEVEL=info", NULL};
	hagent_start(&a, dsn, NULL, extra);
	long long n = 0;
	for (int i = 0; i < 100 && n < 4; i++) {
		n = tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs_archive");
		usleep(100000);
	}
	ck_assert_int_eq(n, 4);
	ck_assert_msg(tl_wait_file_contains(a.log, "archived finished jobs", 5000), "no log line");
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs"), 3);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs_archive"
				       " WHERE status = 'CANCELLED'"),
			 1);
	/* then the report view is refreshed: the three live jobs, one completed, one
	 * cancelled (not a failure: the rate stays 1) */
	char *url = hagent_url(&a, "/api/v1/reports/success-rates?days=3");
	char *authz = hagent_admin_header(&a);
	const char *h[] = {authz, NULL};
	char *body = NULL;
	int ok = 0;
	for (int i = 0; i < 50 && !ok; i++) {
		free(body);
		ck_assert_int_eq(tl_http("GET", url, h, NULL, &body), 200);
		struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, NULL);
		struct json *it = json_at(json_get(j, "items"), 0);
		int64_t total = -1, done = -1, failed = -1, cancelled = -1;
		json_get_int(it, "total", &total);
		json_get_int(it, "completed", &done);
		json_get_int(it, "failed", &failed);
		json_get_int(it, "cancelled", &cancelled);
		struct json *rate = json_get(it, "success_rate");
		ok = total == 3 && done == 1 && failed == 0 && cancelled == 1 && rate &&
		     rate->type == JSON_NUMBER && rate->u.num.d == 1.0 &&
		     str_eq(json_get_str(it, "agency_name"), "A") &&
		     json_get_str(j, "refreshed_at");
		json_free(j);
		if (!ok)
			usleep(100000);
	}
	ck_assert_msg(ok, "report: %s", body);
	free(body);
	free(url);
	free(authz);
	int st = hagent_stop(&a);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit %d", st);
	unlink(a.log);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("archive");
	TCase *tc = tcase_create("archive");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, archive_tables_mirror_the_live_tables);
	tcase_add_test(tc, cli_moves_old_finished_jobs_with_their_logs);
	tcase_add_test(tc, daemon_archives_periodically);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
