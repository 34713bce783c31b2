/* test_jobs.c — the job engine end to end: real `ghl-agent serve`, real
 * PostgreSQL, real ghl-sim. States, retries and the cap, permanent errors,
 * cancel, per-agency caps, kill -9 and resume, GHL faults, two workers. */
#include <stdarg.h>

#include "ghl_harness.h"

struct world {
	char *dsn;
	PGconn *db;
	struct hsim sim;
	struct hagent agent;
	int agent_running;
	char *agency;	/* agencies.id of the connected agency */
	char *snapshot; /* snapshots.id of an active snapshot of it */
};

static int company_seq;

#define q1(w, ...) tl_sqlf((w)->db, __VA_ARGS__)

#define q1n(w, ...) tl_sqlf_n((w)->db, __VA_ARGS__)

#define exec_sql(w, ...) tl_execf((w)->db, __VA_ARGS__)

/* Connect a new agency through the agent's real OAuth flow against the sim. */
static char *connect_agency(struct world *w, const char *settings_json)
{
	char company[64];
	snprintf(company, sizeof(company), "co-%d-%d", (int)getpid(), ++company_seq);
	char *id = hconnect_agency(&w->agent, w->db, company);
	if (settings_json)
		exec_sql(w, "UPDATE agencies SET settings_json = '%s' WHERE id = '%s'",
			 settings_json, id);
	return id;
}

static char *add_snapshot(struct world *w, const char *agency, const char *ghl_id)
{
	return q1(w,
		  "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche) VALUES "
		  "('%s', '%s', 'Dental Practice', 'Dental') RETURNING id",
		  agency, ghl_id);
}

static void world_start(struct world *w, const char *const *sim_flags,
			const char *const *agent_extra)
{
	memset(w, 0, sizeof(*w));
	w->dsn = tl_create_migrated_db("jobs");
	w->db = tl_connect(w->dsn);
	hsim_start(&w->sim, sim_flags);
	hagent_start(&w->agent, w->dsn, &w->sim, agent_extra);
	w->agent_running = 1;
}

static void world_stop(struct world *w)
{
	if (w->agent_running) {
		int st = hagent_stop(&w->agent);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
	}
	unlink(w->agent.log);
	hsim_stop(&w->sim);
	PQfinish(w->db);
	tl_drop_db(w->dsn);
	free(w->dsn);
	free(w->agency);
	free(w->snapshot);
}

static void insert_jobs_snap(struct world *w, const char *agency, int n, const char *snapshot)
{
	exec_sql(
		w,
		"INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id) "
		"SELECT '%s', jsonb_build_object('name', 'Client ' || g || ' %s', 'email', "
		"'owner' || g || '@client%s.example', 'first_name', 'Ada', 'last_name', 'Lovelace', "
		"'phone', '+15555550100', 'country', 'US', 'timezone', 'US/Central', "
		"'custom_values', jsonb_build_object('welcome_text', 'Hi ' || g), "
		"'tags', jsonb_build_array('dental', 'vip')), %s%s%s "
		"FROM generate_series(1, %d) g",
		agency, agency, agency, snapshot ? "'" : "", snapshot ? snapshot : "NULL",
		snapshot ? "'" : "", n);
}

/* Insert n jobs directly (the CLI path is tested separately). */
static void insert_jobs(struct world *w, const char *agency, int n, const char *unused)
{
	(void)unused;
	insert_jobs_snap(w, agency, n, NULL);
}

/* Wait until the SQL answers 't'; fail with the job table otherwise. */
static void wait_for(struct world *w, const char *sql, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		char *v = tl_sql_value(w->db, sql);
		int ok = !strcmp(v, "t");
		free(v);
		if (ok)
			return;
		usleep(100000);
	}
	char *states = tl_sql_value(w->db, "SELECT string_agg(status || ' ' || COALESCE("
					   "error_message, ''), E'\\n') FROM provisioning_jobs");
	char *log = tl_read_file(w->agent.log);
	size_t n = strlen(log);
	ck_abort_msg("timed out waiting for: %s\njobs:\n%s\nagent log tail:\n%s", sql, states,
		     log + (n > 3000 ? n - 3000 : 0));
}

static const char *const fast_retry[] = {"GHL_AGENT_RETRY_BASE=100ms", "GHL_AGENT_RETRY_MAX=300ms",
					 "GHL_AGENT_POLL_INTERVAL=100ms",
					 "GHL_AGENT_LOG_LEVEL=info", NULL};

START_TEST(default_pipeline_provisions_everything)
{
	struct world w;
	const char *sim_flags[] = {"--snapshot-delay-ms", "300", NULL};
	world_start(&w, sim_flags, fast_retry);
	w.agency = connect_agency(&w, NULL);
	w.snapshot = add_snapshot(&w, w.agency, "snap-dental-001");
	/* the CLI path for one job; SQL for the rest */
	char *path = tl_write_temp("ghl-client", "{\"name\":\"Acme Dental\",\"email\":"
						 "\"owner@acme.example\",\"first_name\":\"Ada\","
						 "\"last_name\":\"Lovelace\",\"tags\":[\"dental\"],"
						 "\"custom_values\":{\"welcome_text\":\"Hi\"}}");
	char *env_dsn = xasprintf("DATABASE_URL=%s", w.dsn);
	char *env[] = {env_dsn, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"),
			(char *)"job",
			(char *)"submit",
			(char *)"--agency",
			w.agency,
			(char *)"--client-json",
			path,
			(char *)"--snapshot",
			w.snapshot,
			NULL};
	char *out;
	ck_assert_msg(tl_run(argv, env, &out) == 0, "submit: %s", out);
	str_trim(out);
	char *cli_job = xstrdup(out);
	free(out);
	insert_jobs_snap(&w, w.agency, 4, w.snapshot);
	wait_for(&w, "SELECT count(*) = 5 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 60000);

	/* every job: location recorded, six steps journaled STARTED + COMPLETED */
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE location_id IS NULL "
				 "OR finished_at IS NULL OR locked_by IS NOT NULL"),
			 0);
	ck_assert_int_eq(
		q1n(&w, "SELECT count(*) FROM provisioning_logs WHERE status = 'COMPLETED'"), 30);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_logs WHERE status = 'STARTED'"),
			 30);
	char *steps = q1(&w,
			 "SELECT string_agg(step || ':' || status, ',' ORDER BY \"timestamp\") "
			 "FROM provisioning_logs WHERE job_id = '%s'",
			 cli_job);
	ck_assert_str_eq(steps, "VALIDATE_SNAPSHOT:STARTED,VALIDATE_SNAPSHOT:COMPLETED,"
				"CREATE_LOCATION:STARTED,CREATE_LOCATION:COMPLETED,"
				"WAIT_FOR_SNAPSHOT:STARTED,WAIT_FOR_SNAPSHOT:COMPLETED,"
				"CREATE_USER:STARTED,CREATE_USER:COMPLETED,"
				"SET_CUSTOM_VALUES:STARTED,SET_CUSTOM_VALUES:COMPLETED,"
				"CREATE_CONTACT:STARTED,CREATE_CONTACT:COMPLETED");
	free(steps);
	/* GHL saw exactly what we asked for */
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 5);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	char *text = json_to_string(state);
	char *loc = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", cli_job);
	ck_assert_msg(strstr(text, loc), "location %s not in the sim", loc);
	ck_assert_msg(strstr(text, "owner@acme.example"), "user/contact not in the sim");
	ck_assert_msg(strstr(text, "welcome_text"), "custom value not in the sim");
	free(loc);
	free(text);
	json_free(state);
	/* a job's journal details carry outputs, GHL status and trace id */
	char *d = q1(&w,
		     "SELECT details_json::text FROM provisioning_logs WHERE job_id = '%s' AND "
		     "step = 'CREATE_LOCATION' AND status = 'COMPLETED'",
		     cli_job);
	ck_assert_msg(strstr(d, "\"location_id\"") && strstr(d, "\"trace_id\"") &&
			      strstr(d, "\"ghl_status\"") && strstr(d, "\"duration_ms\""),
		      "%s", d);
	free(d);
	/* `job show` prints the job and its journal */
	char *show[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"job", (char *)"show", cli_job,
			NULL};
	ck_assert_int_eq(tl_run(show, env, &out), 0);
	ck_assert_msg(strstr(out, "COMPLETED") && strstr(out, "CREATE_CONTACT"), "%s", out);
	free(out);
	/* no token reached the database in plaintext */
	char *dump = hpg_dump(w.dsn);
	hassert_no_tokens(&w.sim, "pg_dump", dump, 2);
	free(dump);
	free(cli_job);
	free(env_dsn);
	unlink(path);
	free(path);
	world_stop(&w);
}
END_TEST

START_TEST(retryable_failures_retry_then_fail_at_the_cap)
{
	struct world w;
	world_start(&w, NULL, fast_retry);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}],"
				      "\"max_retries\":2}");
	json_free(hsim_admin(&w.sim, "POST", "faults", "{\"error_rate\":1.0}"));
	insert_jobs(&w, w.agency, 1, NULL);
	wait_for(&w, "SELECT count(*) = 1 FROM provisioning_jobs WHERE status = 'RETRYING'", 15000);
	wait_for(&w, "SELECT count(*) = 1 FROM provisioning_jobs WHERE status = 'FAILED'", 20000);
	ck_assert_int_eq(q1n(&w, "SELECT retry_count FROM provisioning_jobs"), 2);
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs");
	ck_assert_msg(strstr(err, "CREATE_LOCATION") && strstr(err, "gave up after 2 retries") &&
			      strstr(err, "GHL answered 5"),
		      "%s", err);
	free(err);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_logs WHERE status = 'FAILED'"),
			 3);
	char *d = q1(&w, "SELECT details_json->>'retryable' FROM provisioning_logs WHERE status = "
			 "'FAILED' LIMIT 1");
	ck_assert_str_eq(d, "true");
	free(d);

	/* GHL recovers: a new job completes, retrying meanwhile if needed */
	json_free(hsim_admin(&w.sim, "POST", "faults", "{\"error_rate\":0.0}"));
	insert_jobs(&w, w.agency, 1, NULL);
	wait_for(&w, "SELECT count(*) = 1 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 15000);
	world_stop(&w);
}
END_TEST

START_TEST(permanent_failures_fail_at_once)
{
	struct world w;
	world_start(&w, NULL, fast_retry);
	/* CREATE_USER needs a location; GHL 422 for a bad body is permanent too */
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_USER\"}]}");
	insert_jobs(&w, w.agency, 1, NULL);
	wait_for(&w, "SELECT count(*) = 1 FROM provisioning_jobs WHERE status = 'FAILED'", 15000);
	ck_assert_int_eq(q1n(&w, "SELECT retry_count FROM provisioning_jobs"), 0);
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs");
	ck_assert_msg(strstr(err, "CREATE_USER") && strstr(err, "location"), "%s", err);
	free(err);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_logs WHERE status = 'FAILED' "
				 "AND details_json->>'retryable' = 'false'"),
			 1);

	/* an inactive snapshot is refused by VALIDATE_SNAPSHOT, permanently */
	char *other = connect_agency(&w, "{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"}]}");
	char *snap = add_snapshot(&w, other, "snap-dental-001");
	exec_sql(&w, "UPDATE snapshots SET is_active = false WHERE id = '%s'", snap);
	insert_jobs_snap(&w, other, 1, snap);
	wait_for(&w, "SELECT count(*) = 2 FROM provisioning_jobs WHERE status = 'FAILED'", 15000);
	err = q1(&w, "SELECT error_message FROM provisioning_jobs WHERE agency_id = '%s'", other);
	ck_assert_msg(strstr(err, "VALIDATE_SNAPSHOT") && strstr(err, "not active"), "%s", err);
	free(err);
	free(snap);
	free(other);
	world_stop(&w);
}
END_TEST

/* An agency GHL disconnected fails its jobs with that reason, without retrying. */
START_TEST(agency_needing_reconnection_fails_jobs_with_the_reason)
{
	struct world w;
	world_start(&w, NULL, fast_retry);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}],"
				      "\"max_retries\":3}");
	exec_sql(&w,
		 "UPDATE agencies SET needs_reconnect = true, reconnect_reason = "
		 "'GHL refused the refresh token (invalid_grant)' WHERE id = '%s'",
		 w.agency);
	insert_jobs(&w, w.agency, 1, NULL);
	wait_for(&w, "SELECT count(*) = 1 FROM provisioning_jobs WHERE status = 'FAILED'", 15000);
	ck_assert_int_eq(q1n(&w, "SELECT retry_count FROM provisioning_jobs"), 0);
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs");
	ck_assert_msg(strstr(err, "needs reconnection") && strstr(err, "invalid_grant"), "%s", err);
	free(err);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 0);
	world_stop(&w);
}
END_TEST

/* "on_failure": "rollback": completed steps undo themselves, newest first. */
START_TEST(rollback_compensates_completed_steps)
{
	char tmpl[] = "/tmp/ghl-steps-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *script = xasprintf("%s/undo_me.lua", dir);
	FILE *f = fopen(script, "w");
	fputs("return {name = 'undo_me', version = '1.0.0',\n"
	      "  run = function(ctx) ctx:set('undo_me_ran', true) end,\n"
	      "  compensate = function(ctx)\n"
	      "    log.info('undoing for location', ctx.outputs.location_id)\n"
	      "  end}\n",
	      f);
	fclose(f);
	char *env_dir = xasprintf("GHL_AGENT_STEP_DIR=%s", dir);
	const char *extra[] = {"GHL_AGENT_RETRY_BASE=100ms", "GHL_AGENT_POLL_INTERVAL=100ms",
			       env_dir, NULL};
	struct world w;
	world_start(&w, NULL, extra);
	/* CREATE_USER fails for good: the client has no first/last name */
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
				      "{\"step\":\"undo_me\"},{\"step\":\"CREATE_USER\"}],"
				      "\"on_failure\":\"rollback\"}");
	exec_sql(&w,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json) VALUES ('%s', "
		 "'{\"name\":\"Roll Back\",\"email\":\"rb@x.example\"}')",
		 w.agency);
	wait_for(&w, "SELECT count(*) = 1 FROM provisioning_jobs WHERE status = 'FAILED'", 20000);
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs");
	ck_assert_msg(strstr(err, "CREATE_USER") &&
			      strstr(err, "rollback: undid undo_me; undid CREATE_LOCATION"),
		      "%s", err);
	free(err);
	/* newest first, each journaled as a compensation */
	char *steps = q1(&w, "SELECT string_agg(step || ':' || status, ',' ORDER BY \"timestamp\") "
			     "FROM provisioning_logs WHERE details_json->>'compensate' = 'true'");
	ck_assert_str_eq(steps, "undo_me:STARTED,undo_me:COMPLETED,CREATE_LOCATION:STARTED,"
				"CREATE_LOCATION:COMPLETED");
	free(steps);
	char *log = q1(&w, "SELECT details_json->'log'->0->>'message' FROM provisioning_logs WHERE "
			   "step = 'undo_me' AND details_json->>'compensate' = 'true' AND status = "
			   "'COMPLETED'");
	ck_assert_msg(strstr(log, "undoing for location "), "%s", log);
	free(log);
	/* the location GHL created is gone */
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 1);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	ck_assert_ptr_nonnull(json_get(state, "locations"));
	ck_assert_int_eq((long)json_len(json_get(state, "locations")), 0);
	json_free(state);
	world_stop(&w);
	unlink(script);
	rmdir(dir);
	free(script);
	free(env_dir);
}
END_TEST

/* Outputs with U+0000 (jsonb cannot store it) do not wedge the journal. */
START_TEST(nul_characters_do_not_wedge_the_journal)
{
	char tmpl[] = "/tmp/ghl-steps-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *script = xasprintf("%s/nul_out.lua", dir);
	FILE *f = fopen(script, "w");
	fputs("return {name = 'nul_out', version = '1.0.0',\n"
	      "  run = function(ctx) log.info('a\\0b'); ctx:set('odd', 'x\\0y') end}\n",
	      f);
	fclose(f);
	char *env_dir = xasprintf("GHL_AGENT_STEP_DIR=%s", dir);
	const char *extra[] = {"GHL_AGENT_POLL_INTERVAL=100ms", env_dir, NULL};
	struct world w;
	world_start(&w, NULL, extra);
	w.agency = connect_agency(&w,
				  "{\"pipeline\":[{\"step\":\"nul_out\"},{\"step\":\"NOOP\"}]}");
	insert_jobs(&w, w.agency, 3, NULL);
	wait_for(&w, "SELECT count(*) = 3 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 15000);
	char *odd = q1(&w, "SELECT details_json->'outputs'->>'odd' FROM provisioning_logs WHERE "
			   "step = 'nul_out' AND status = 'COMPLETED' LIMIT 1");
	ck_assert_str_eq(odd, "x\xef\xbf\xbdy"); /* U+FFFD in place of U+0000 */
	free(odd);
	world_stop(&w);
	unlink(script);
	rmdir(dir);
	free(script);
	free(env_dir);
}
END_TEST

/* The retry budget is per step: faults spread over the steps (more than
 * max_retries in all, at most max_retries in a row) do not fail the job;
 * faults of safe requests are absorbed by the GHL client. */
static const char *const step_budget_env[] = {"GHL_AGENT_RETRY_BASE=100ms",
					      "GHL_AGENT_RETRY_MAX=300ms",
					      "GHL_AGENT_POLL_INTERVAL=100ms",
					      "GHL_AGENT_GHL_RETRY_ATTEMPTS=3",
					      "GHL_AGENT_GHL_RETRY_BASE=20ms",
					      "GHL_AGENT_LOG_LEVEL=info",
					      NULL};

/* FAILED journal rows of one step. */
static long long step_failures(struct world *w, const char *step)
{
	return q1n(w,
		   "SELECT count(*) FROM provisioning_logs WHERE step = '%s' AND status = "
		   "'FAILED'",
		   step);
}

START_TEST(step_budget_starts_again_when_a_step_completes)
{
	struct world w;
	world_start(&w, NULL, step_budget_env);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
				      "{\"step\":\"CREATE_USER\"},{\"step\":\"SET_CUSTOM_VALUES\"},"
				      "{\"step\":\"CREATE_CONTACT\"}],\"max_retries\":2}");
	/* two transient faults for each write of three steps (not repeated by
	 * the client: each fails its step), two for the location-token mint and
	 * two for the contact upsert (repeated by the client) */
	json_free(hsim_admin(&w.sim, "POST", "faults",
			     "{\"fail_routes\":{"
			     "\"POST /locations/\":2,\"POST /users/\":2,"
			     "\"POST /locations/{locationId}/customValues\":2,"
			     "\"POST /oauth/locationToken\":2,\"POST /contacts/upsert\":2}}"));
	insert_jobs(&w, w.agency, 1, NULL);
	wait_for(&w, "SELECT status IN ('COMPLETED', 'FAILED') FROM provisioning_jobs", 60000);
	char *st = q1(&w, "SELECT status || ' ' || COALESCE(error_message, '') FROM "
			  "provisioning_jobs");
	ck_assert_msg(!strcmp(st, "COMPLETED "), "job: %s", st);
	free(st);
	/* retry_count is the total: six retries, two in a row at most */
	ck_assert_int_eq(q1n(&w, "SELECT retry_count FROM provisioning_jobs"), 6);
	ck_assert_int_eq(step_failures(&w, "CREATE_LOCATION"), 2);
	ck_assert_int_eq(step_failures(&w, "CREATE_USER"), 2);
	ck_assert_int_eq(step_failures(&w, "SET_CUSTOM_VALUES"), 2);
	ck_assert_int_eq(step_failures(&w, "CREATE_CONTACT"), 0);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE context_json ? "
				 "'step_retries'"),
			 0);
	ck_assert_int_eq(hsim_stat(&w.sim, "errors_injected"), 10);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 1);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	/* the client's retries are counted in /metrics */
	char *url = hagent_url(&w.agent, "/metrics");
	char *metrics = NULL;
	ck_assert_int_eq(tl_http("GET", url, NULL, NULL, &metrics), 200);
	const char *m = strstr(metrics, "\nghl_agent_ghl_retries_total ");
	ck_assert_msg(m, "no ghl_retries_total in:\n%s", metrics);
	long long retries = strtoll(m + strlen("\nghl_agent_ghl_retries_total "), NULL, 10);
	ck_assert_msg(retries >= 4, "ghl_retries_total %lld", retries);
	free(metrics);
	free(url);
	world_stop(&w);
}
END_TEST

/* One connection to GHL and five jobs: the requests beyond it wait in the
 * client, /metrics shows them waiting, and every job still completes. */
START_TEST(requests_beyond_max_connections_wait_and_show_in_metrics)
{
	struct world w;
	const char *sim_flags[] = {"--latency-ms", "300", "--rate-limit", "0", NULL};
	const char *extra[] = {"GHL_AGENT_GHL_MAX_CONNECTIONS=1", "GHL_AGENT_LOG_LEVEL=info", NULL};
	world_start(&w, sim_flags, extra);
	char *a = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}]}");
	insert_jobs(&w, a, 5, NULL);
	char *url = hagent_url(&w.agent, "/metrics");
	long long most = 0;
	for (int i = 0; i < 600 && most < 1; i++) {
		char *metrics = NULL;
		ck_assert_int_eq(tl_http("GET", url, NULL, NULL, &metrics), 200);
		const char *m = strstr(metrics, "\nghl_agent_ghl_requests_waiting ");
		ck_assert_msg(m, "no ghl_requests_waiting in:\n%s", metrics);
		long long n = strtoll(m + strlen("\nghl_agent_ghl_requests_waiting "), NULL, 10);
		if (n > most)
			most = n;
		free(metrics);
		usleep(50000);
	}
	ck_assert_msg(most >= 1, "no request was seen waiting for the one connection");
	wait_for(&w, "SELECT count(*) = 5 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 60000);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 5);
	free(url);
	free(a);
	world_stop(&w);
}
END_TEST

START_TEST(step_failing_more_than_max_retries_in_a_row_fails_the_job)
{
	struct world w;
	world_start(&w, NULL, step_budget_env);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
				      "{\"step\":\"CREATE_USER\"}],\"max_retries\":2}");
	json_free(hsim_admin(&w.sim, "POST", "faults",
			     "{\"fail_routes\":{"
			     "\"POST /locations/\":1,\"POST /users/\":3}}"));
	insert_jobs(&w, w.agency, 1, NULL);
	wait_for(&w, "SELECT status = 'FAILED' FROM provisioning_jobs", 60000);
	/* one retry of CREATE_LOCATION, then CREATE_USER failed three times in a row */
	ck_assert_int_eq(q1n(&w, "SELECT retry_count FROM provisioning_jobs"), 3);
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs");
	ck_assert_msg(strstr(err, "CREATE_USER") && strstr(err, "GHL answered 503") &&
			      strstr(err, "gave up after 2 retries in a row; 3 retries in all"),
		      "%s", err);
	free(err);
	ck_assert_int_eq(step_failures(&w, "CREATE_LOCATION"), 1);
	ck_assert_int_eq(step_failures(&w, "CREATE_USER"), 3);
	char *sr = q1(&w, "SELECT context_json->>'step_retries' FROM provisioning_jobs");
	ck_assert_str_eq(sr, "{\"step\": 1, \"count\": 2}");
	free(sr);

	/* retried by request: retry_count and with it the budget start again */
	json_free(hsim_admin(&w.sim, "POST", "faults", "{\"fail_routes\":{\"POST /users/\":1}}"));
	char *id = q1(&w, "SELECT id FROM provisioning_jobs");
	char *url = xasprintf("%s/api/v1/jobs/%s/retry", w.agent.base, id);
	char *authz = hagent_admin_header(&w.agent);
	const char *h[] = {authz, NULL};
	char *body = NULL;
	ck_assert_int_eq(tl_http("POST", url, h, NULL, &body), 200);
	wait_for(&w, "SELECT status IN ('COMPLETED', 'FAILED') FROM provisioning_jobs", 60000);
	char *st = q1(&w, "SELECT status || ' ' || retry_count FROM provisioning_jobs");
	ck_assert_str_eq(st, "COMPLETED 1");
	free(st);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	free(body);
	free(authz);
	free(url);
	free(id);
	world_stop(&w);
}
END_TEST

/* A new job whose CREATE_LOCATION fails once (retryably), held at ghl-sim's
 * gate with the failure on its way back: its id. The caller opens the gate. */
static char *failing_at_gate(struct world *w, const char *name)
{
	json_free(hsim_admin(&w->sim, "POST", "faults",
			     "{\"fail_routes\":{\"POST /locations/\":1}}"));
	hsim_gate(&w->sim, 1000000);
	char *id = q1(w,
		      "INSERT INTO provisioning_jobs (agency_id, client_data_json) VALUES ('%s',"
		      " jsonb_build_object('name', '%s', 'email', lower('%s') || '@x.example'))"
		      " RETURNING id",
		      w->agency, name, name);
	char *sql = xasprintf(
		"SELECT status = 'IN_PROGRESS' FROM provisioning_jobs WHERE id = '%s'", id);
	wait_for(w, sql, 10000);
	free(sql);
	hsim_gate_wait(&w->sim, 1);
	return id;
}

/* Waits until job id has left PENDING/IN_PROGRESS and holds no lease. */
static void wait_released(struct world *w, const char *id)
{
	char *sql = xasprintf(
		"SELECT status NOT IN ('PENDING', 'IN_PROGRESS') FROM provisioning_jobs"
		" WHERE id = '%s' AND NOT EXISTS (SELECT 1 FROM job_leases WHERE job_id = '%s')",
		id, id);
	wait_for(w, sql, 15000);
	free(sql);
}

START_TEST(cancel_pending_and_running)
{
	struct world w;
	world_start(&w, NULL, fast_retry);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
				      "{\"step\":\"NOOP\"}]}");
	char *env_dsn = xasprintf("DATABASE_URL=%s", w.dsn);
	char *env[] = {env_dsn, NULL};
	/* a job waiting for a later attempt stops at once */
	char *later = q1(&w,
			 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, "
			 "run_at) VALUES ('%s', '{\"name\":\"L\",\"email\":\"l@x.example\"}', "
			 "'RETRYING', now() + interval '1 hour') RETURNING id",
			 w.agency);
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"job", (char *)"cancel", later,
			NULL};
	char *out;
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	ck_assert_msg(strstr(out, "cancelled"), "%s", out);
	free(out);
	char *st = q1(
		&w, "SELECT status || '/' || error_message FROM provisioning_jobs WHERE id = '%s'",
		later);
	ck_assert_str_eq(st, "CANCELLED/cancelled by request");
	free(st);

	/* a running job finishes its current step, then becomes CANCELLED */
	hsim_gate(&w.sim, 1000000);
	char *running = q1(&w,
			   "INSERT INTO provisioning_jobs (agency_id, client_data_json) VALUES "
			   "('%s', '{\"name\":\"R\",\"email\":\"r@x.example\"}') RETURNING id",
			   w.agency);
	char *sql = xasprintf(
		"SELECT status = 'IN_PROGRESS' FROM provisioning_jobs WHERE id = '%s'", running);
	wait_for(&w, sql, 10000);
	free(sql);
	hsim_gate_wait(&w.sim, 1); /* its CREATE_LOCATION is at GHL */
	argv[3] = running;
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	ck_assert_msg(strstr(out, "stops after its current step"), "%s", out);
	free(out);
	hsim_gate(&w.sim, 0);
	sql = xasprintf("SELECT status = 'CANCELLED' FROM provisioning_jobs WHERE id = '%s'",
			running);
	wait_for(&w, sql, 15000);
	free(sql);
	char *e = q1(&w, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'", running);
	ck_assert_str_eq(e, "cancelled by request");
	free(e);
	/* the step in flight finished; the next one never started */
	ck_assert_int_eq(q1n(&w,
			     "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s' AND "
			     "step = 'CREATE_LOCATION' AND status = 'COMPLETED'",
			     running),
			 1);
	ck_assert_int_eq(q1n(&w,
			     "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s' AND "
			     "step = 'NOOP'",
			     running),
			 0);
	/* cancelling a finished job is refused, in the API's words */
	ck_assert_int_eq(tl_run(argv, env, &out), 1);
	ck_assert_msg(strstr(out, "the job is already CANCELLED"), "%s", out);
	free(out);

	/* its current step failing (retryably) ends it CANCELLED too, not RETRYING */
	char *failing = failing_at_gate(&w, "F");
	argv[3] = failing;
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	free(out);
	hsim_gate(&w.sim, 0);
	wait_released(&w, failing);
	st = q1(&w, "SELECT status FROM provisioning_jobs WHERE id = '%s'", failing);
	ck_assert_str_eq(st, "CANCELLED");
	free(st);
	ck_assert_int_eq(q1n(&w,
			     "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s' AND "
			     "step = 'CREATE_LOCATION' AND status = 'FAILED'",
			     failing),
			 1);
	free(failing);

	/* ... also when the runner never heard of the cancel (its notification
	 * can come after the step's failure was decided): the row says so, and
	 * the journal's write makes it CANCELLED, not a RETRYING that no claim
	 * would take. Set here without a notification, so the runner decides
	 * RETRYING every time. */
	long long retrying0 = hagent_metric(&w.agent, "jobs_total{outcome=\"retrying\"}");
	long long cancelled0 = hagent_metric(&w.agent, "jobs_total{outcome=\"cancelled\"}");
	char *unheard = failing_at_gate(&w, "U");
	free(q1(&w,
		"UPDATE provisioning_jobs SET cancel_requested = true WHERE id = '%s' RETURNING id",
		unheard));
	hsim_gate(&w.sim, 0);
	wait_released(&w, unheard);
	st = q1(&w,
		"SELECT status || ' ' || error_message || ' ' || (finished_at IS NOT NULL)"
		" FROM provisioning_jobs WHERE id = '%s'",
		unheard);
	ck_assert_str_eq(st, "CANCELLED cancelled by request true");
	free(st);
	/* and /metrics counts it as the row ended it: cancelled, not retrying
	 * (once the journal's result has reached the agent: the commit is
	 * visible here first) */
	ck_assert_int_eq(hagent_metric_wait(&w.agent, "jobs_total{outcome=\"cancelled\"}",
					    cancelled0 + 1, 10000),
			 cancelled0 + 1);
	ck_assert_int_eq(hagent_metric(&w.agent, "jobs_total{outcome=\"retrying\"}"), retrying0);
	free(unheard);
	free(later);
	free(running);
	free(env_dsn);
	world_stop(&w);
}
END_TEST

START_TEST(per_agency_cap_and_fairness)
{
	struct world w;
	const char *sim_flags[] = {"--latency-ms", "300", "--rate-limit", "0", NULL};
	world_start(&w, sim_flags, fast_retry);
	char *a = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}],"
				     "\"max_concurrent_jobs\":2}");
	char *b = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}],"
				     "\"max_concurrent_jobs\":3}");
	insert_jobs(&w, a, 12, NULL);
	insert_jobs(&w, b, 6, NULL);
	long long max_a = 0, max_b = 0;
	int b_while_a_waits = 0;
	for (int i = 0; i < 400; i++) {
		char *v = q1(&w,
			     "SELECT count(*) FILTER (WHERE agency_id = '%s' AND status = "
			     "'IN_PROGRESS') || ' ' || count(*) FILTER (WHERE agency_id = '%s' AND "
			     "status = 'IN_PROGRESS') || ' ' || count(*) FILTER (WHERE agency_id = "
			     "'%s' AND status = 'PENDING') || ' ' || count(*) FILTER (WHERE status "
			     "<> 'COMPLETED') FROM provisioning_jobs",
			     a, b, a);
		long long ia, ib, pa, left;
		ck_assert_int_eq(sscanf(v, "%lld %lld %lld %lld", &ia, &ib, &pa, &left), 4);
		free(v);
		if (ia > max_a)
			max_a = ia;
		if (ib > max_b)
			max_b = ib;
		if (ib > 0 && pa > 0)
			b_while_a_waits = 1;
		if (left == 0)
			break;
		usleep(25000);
	}
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE status <> "
				 "'COMPLETED'"),
			 0);
	ck_assert_msg(max_a <= 2 && max_a >= 1, "agency A had %lld in flight (cap 2)", max_a);
	ck_assert_msg(max_b <= 3 && max_b >= 1, "agency B had %lld in flight (cap 3)", max_b);
	ck_assert_msg(b_while_a_waits, "agency B never ran while A's backlog waited");
	free(a);
	free(b);
	world_stop(&w);
}
END_TEST

/* The poll is an hour away, so every claim after the first must come from a
 * notification, a job's end or the journal's release of a lease: an agency at
 * its cap gets room back only when the journal has dropped a finished job's
 * lease (a claim at the job's end still counts it), and two workers' slots
 * come back when a job ends. Before the journal told the scheduler, the capped
 * agency's second job waited for the poll. */
START_TEST(claims_follow_releases_not_the_poll)
{
	struct world w;
	const char *extra[] = {"GHL_AGENT_POLL_INTERVAL=1h", "GHL_AGENT_WORKER_CONCURRENCY=2",
			       "GHL_AGENT_LOG_LEVEL=info", NULL};
	world_start(&w, NULL, extra);
	char *capped = connect_agency(&w, "{\"pipeline\":[{\"step\":\"NOOP\"}],"
					  "\"max_concurrent_jobs\":1}");
	char *open = connect_agency(&w, "{\"pipeline\":[{\"step\":\"NOOP\"}]}");
	insert_jobs(&w, capped, 6, NULL);
	insert_jobs(&w, open, 6, NULL);
	wait_for(&w, "SELECT count(*) = 12 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 30000);
	/* one run each: nothing was claimed twice or left leased */
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE attempt <> 1"), 0);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM job_leases"), 0);
	free(capped);
	free(open);
	world_stop(&w);
}
END_TEST

START_TEST(kill9_mid_pipeline_then_resume_without_duplicates)
{
	struct world w;
	const char *sim_flags[] = {
		"--latency-ms", "150", "--snapshot-delay-ms", "300", "--rate-limit", "0", NULL};
	const char *extra[] = {"GHL_AGENT_RETRY_BASE=100ms",	"GHL_AGENT_RETRY_MAX=300ms",
			       "GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_LEASE_TIMEOUT=1500ms",
			       "GHL_AGENT_LOG_LEVEL=info",	NULL};
	world_start(&w, sim_flags, extra);
	w.agency = connect_agency(&w, "{\"max_concurrent_jobs\":50}");
	w.snapshot = add_snapshot(&w, w.agency, "snap-dental-001");
	insert_jobs_snap(&w, w.agency, 20, w.snapshot);
	/* once five pipelines are inside CREATE_LOCATION (journaled, so their jobs
	 * are IN_PROGRESS under this worker's lease), kill the worker without warning */
	wait_for(&w,
		 "SELECT count(*) >= 5 FROM provisioning_logs WHERE step = 'CREATE_LOCATION' "
		 "AND status = 'STARTED'",
		 15000);
	kill(w.agent.pid, SIGKILL);
	int st;
	waitpid(w.agent.pid, &st, 0);
	ck_assert_int_gt(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE status = "
				 "'IN_PROGRESS'"),
			 0);
	/* one of them gets a cancel while its dead worker's lease still holds it
	 * (what POST …/cancel records then): it must end CANCELLED, not wait */
	char *victim = q1(&w, "UPDATE provisioning_jobs SET cancel_requested = true WHERE id = "
			      "(SELECT id FROM provisioning_jobs WHERE status = 'IN_PROGRESS' "
			      "ORDER BY id LIMIT 1) RETURNING id");
	unlink(w.agent.log);
	/* a new worker resumes the others once the leases run out */
	hagent_start(&w.agent, w.dsn, &w.sim, extra);
	wait_for(&w, "SELECT count(*) = 19 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 60000);
	char *vst = q1(&w,
		       "SELECT status || '/' || error_message FROM provisioning_jobs WHERE id = "
		       "'%s'",
		       victim);
	ck_assert_str_eq(vst, "CANCELLED/cancelled by request");
	free(vst);
	free(victim);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	/* 19, or 20 when the cancelled job's location was made before the kill */
	ck_assert_int_ge(hsim_stat(&w.sim, "locations_created"), 19);
	ck_assert_int_le(hsim_stat(&w.sim, "locations_created"), 20);
	ck_assert_int_eq(q1n(&w, "SELECT count(DISTINCT location_id) FROM provisioning_jobs "
				 "WHERE status = 'COMPLETED'"),
			 19);
	/* some jobs ran twice (attempt 2) yet made one location each */
	ck_assert_int_gt(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE attempt > 1"), 0);
	world_stop(&w);
}
END_TEST

START_TEST(ghl_faults_every_job_ends_clearly_no_duplicates)
{
	struct world w;
	const char *sim_flags[] = {"--rate-limit", "0", "--snapshot-delay-ms", "200", NULL};
	const char *extra[] = {"GHL_AGENT_RETRY_BASE=100ms",
			       "GHL_AGENT_RETRY_MAX=400ms",
			       "GHL_AGENT_POLL_INTERVAL=100ms",
			       "GHL_AGENT_GHL_TIMEOUT=1s",
			       "GHL_AGENT_MAX_RETRIES=8",
			       "GHL_AGENT_LOG_LEVEL=info",
			       NULL};
	world_start(&w, sim_flags, extra);
	w.agency = connect_agency(&w, "{\"max_concurrent_jobs\":30}");
	w.snapshot = add_snapshot(&w, w.agency, "snap-dental-001");
	/* GHL turns flaky once the agency is connected */
	json_free(
		hsim_admin(&w.sim, "POST", "faults", "{\"error_rate\":0.2,\"timeout_rate\":0.05}"));
	insert_jobs_snap(&w, w.agency, 30, w.snapshot);
	wait_for(&w,
		 "SELECT count(*) = 30 FROM provisioning_jobs WHERE status IN ('COMPLETED', "
		 "'FAILED')",
		 120000);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE status = 'FAILED' "
				 "AND COALESCE(error_message, '') = ''"),
			 0);
	ck_assert_int_gt(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE status = "
				 "'COMPLETED'"),
			 15);
	ck_assert_int_gt(hsim_stat(&w.sim, "errors_injected"), 0);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	world_stop(&w);
}
END_TEST

START_TEST(two_workers_run_every_job_once)
{
	struct world w;
	const char *extra[] = {"GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_CLAIM_BATCH=20",
			       "GHL_AGENT_LOG_LEVEL=warn", NULL};
	world_start(&w, NULL, extra);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"NOOP\"},{\"step\":\"NOOP\"}],"
				      "\"max_concurrent_jobs\":1000}");
	struct hagent second;
	hagent_start(&second, w.dsn, &w.sim, extra);
	insert_jobs(&w, w.agency, 400, NULL);
	wait_for(&w, "SELECT count(*) = 400 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 60000);
	/* each job: one attempt, each step started once */
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE attempt <> 1"), 0);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM (SELECT job_id, details_json->>'index' FROM "
				 "provisioning_logs WHERE status = 'STARTED' GROUP BY 1, 2 HAVING "
				 "count(*) > 1) d"),
			 0);
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_logs WHERE status = 'STARTED'"),
			 800);
	int st = hagent_stop(&second);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "second agent exit %d", st);
	unlink(second.log);
	world_stop(&w);
}
END_TEST

START_TEST(sigterm_releases_running_jobs)
{
	struct world w;
	const char *extra[] = {"GHL_AGENT_SHUTDOWN_TIMEOUT=1s", "GHL_AGENT_POLL_INTERVAL=100ms",
			       NULL};
	world_start(&w, NULL, extra);
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}]}");
	hsim_gate(&w.sim, 1000000); /* GHL answers neither until the restart */
	insert_jobs(&w, w.agency, 2, NULL);
	wait_for(&w, "SELECT count(*) = 2 FROM provisioning_jobs WHERE status = 'IN_PROGRESS'",
		 10000);
	hsim_gate_wait(&w.sim, 2);
	int st = hagent_stop(&w.agent);
	w.agent_running = 0;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	/* released: runnable again, owned by nobody, not counted as a retry */
	ck_assert_int_eq(q1n(&w, "SELECT count(*) FROM provisioning_jobs WHERE status = 'PENDING' "
				 "AND locked_by IS NULL AND COALESCE(retry_count, 0) = 0"),
			 2);
	hsim_gate(&w.sim, 0);
	unlink(w.agent.log);
	hagent_start(&w.agent, w.dsn, &w.sim, extra);
	w.agent_running = 1;
	wait_for(&w, "SELECT count(*) = 2 FROM provisioning_jobs WHERE status = 'COMPLETED'",
		 20000);
	/* the interrupted CREATE_LOCATION had created them: reused, not duplicated */
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	world_stop(&w);
}
END_TEST

/* ---- conditional steps (`when`) ----------------------------------------------- */

/* A pipeline whose entries carry `when`: a false one is journaled SKIPPED with
 * its predicate, recorded so in the job's context and the job goes on; a true
 * one runs, seeing the outputs of the steps before it. The job API's journal
 * shows the SKIPPED rows. A `when` that does not parse is refused at save
 * (PATCH /agencies/{id}) naming the entry and the column. */
START_TEST(when_skips_and_runs_steps)
{
	struct world w;
	world_start(&w, NULL, fast_retry);
	w.agency = connect_agency(
		&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
		    "{\"step\":\"NOOP\",\"config\":{\"output\":\"pro\"},"
		    "\"when\":\"client.custom_values.plan == \\\"pro\\\"\"},"
		    "{\"step\":\"CREATE_USER\",\"when\":\"exists(outputs.location_id) and "
		    "client.country in [\\\"US\\\", \\\"CA\\\"]\"},"
		    "{\"step\":\"NOOP\",\"config\":{\"output\":\"reused\"},"
		    "\"when\":\"outputs.user_reused == true\"}]}");
	char *pro = hjob_add(w.db, w.agency,
			     "{\"name\":\"Pro Co\",\"email\":\"pro@when.example\",\"first_name\":"
			     "\"Ada\",\"last_name\":\"Lovelace\",\"country\":\"US\","
			     "\"custom_values\":{\"plan\":\"pro\"}}",
			     NULL);
	char *basic = hjob_add(
		w.db, w.agency,
		"{\"name\":\"Basic Co\",\"email\":\"basic@when.example\",\"country\":"
		"\"DE\",\"custom_values\":{\"plan\":\"basic\"}}",
		NULL);
	hjob_assert_completed(w.db, pro, w.agent.log);
	hjob_assert_completed(w.db, basic, w.agent.log);

	/* the journal, in order: what ran and what was skipped */
#define JOURNAL_ORDER                                                                            \
	"SELECT string_agg(step || ':' || status, ',' ORDER BY \"timestamp\", CASE status WHEN " \
	"'STARTED' THEN 0 ELSE 1 END) FROM provisioning_logs WHERE job_id = '%s'"
	char *got = q1(&w, JOURNAL_ORDER, pro);
	ck_assert_str_eq(got, "CREATE_LOCATION:STARTED,CREATE_LOCATION:COMPLETED,NOOP:STARTED,"
			      "NOOP:COMPLETED,CREATE_USER:STARTED,CREATE_USER:COMPLETED,"
			      "NOOP:SKIPPED");
	free(got);
	got = q1(&w, JOURNAL_ORDER, basic);
	ck_assert_str_eq(got, "CREATE_LOCATION:STARTED,CREATE_LOCATION:COMPLETED,NOOP:SKIPPED,"
			      "CREATE_USER:SKIPPED,NOOP:SKIPPED");
	free(got);
	/* a skipped row says which entry and which predicate */
	got = q1(&w,
		 "SELECT (details_json->>'index') || ' ' || (details_json->>'when') FROM "
		 "provisioning_logs WHERE job_id = '%s' AND status = 'SKIPPED' AND step = "
		 "'CREATE_USER'",
		 basic);
	ck_assert_str_eq(got,
			 "2 exists(outputs.location_id) and client.country in [\"US\", \"CA\"]");
	free(got);
	/* the context records each step's fate */
	got = q1(&w,
		 "SELECT string_agg(k || '=' || (v->>'status'), ',' ORDER BY k) FROM "
		 "provisioning_jobs, jsonb_each(context_json->'steps') AS s(k, v) WHERE id = '%s'",
		 basic);
	ck_assert_str_eq(got, "0=COMPLETED,1=SKIPPED,2=SKIPPED,3=SKIPPED");
	free(got);
	ck_assert_int_eq(hsim_stat(&w.sim, "users"), 1);
	char *out = hjob_output(w.db, pro, "NOOP", "noop");
	ck_assert_str_eq(out, "pro");
	free(out);

	/* the job API shows the SKIPPED rows */
	char *path = xasprintf("/api/v1/jobs/%s/logs", basic);
	char *url = hagent_url(&w.agent, path);
	char *authz = hagent_admin_header(&w.agent);
	const char *h[] = {authz, "Content-Type: application/json", NULL};
	char *body = NULL;
	long st = tl_http("GET", url, h, NULL, &body);
	ck_assert_msg(st == 200, "%ld %s", st, body);
	struct json *page = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_ptr_nonnull(page);
	int skipped = 0;
	for (size_t i = 0; i < json_len(json_get(page, "items")); i++) {
		const struct json *it = json_at(json_get(page, "items"), i);
		if (str_eq(json_get_str(it, "status"), "SKIPPED")) {
			skipped++;
			ck_assert_ptr_nonnull(json_get_str(json_get(it, "details"), "when"));
		}
	}
	ck_assert_int_eq(skipped, 3);
	json_free(page);
	free(body);
	free(url);
	free(path);

	/* a bad `when` is refused at save, by entry and column */
	path = xasprintf("/api/v1/agencies/%s", w.agency);
	url = hagent_url(&w.agent, path);
	st = tl_http("PATCH", url, h,
		     "{\"settings\":{\"pipeline\":[{\"step\":\"NOOP\"},{\"step\":\"NOOP\","
		     "\"when\":\"client.country ==\"}]}}",
		     &body);
	ck_assert_msg(st == 422 && strstr(body, "settings.pipeline[1].when") &&
			      strstr(body, "expected a value at column 18"),
		      "%ld %s", st, body);
	free(body);
	free(url);
	free(path);
	free(authz);
	free(pro);
	free(basic);
	world_stop(&w);
}
END_TEST

/* Rollback passes over a skipped step: only what ran is undone. */
START_TEST(when_skipped_steps_are_not_rolled_back)
{
	struct world w;
	world_start(&w, NULL, fast_retry);
	/* the first CREATE_LOCATION runs, the second is skipped, CREATE_USER fails
	 * for good (no first/last name): only the first is undone */
	w.agency = connect_agency(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
				      "{\"step\":\"CREATE_LOCATION\",\"when\":\"client.country == "
				      "\\\"US\\\"\"},{\"step\":\"CREATE_USER\"}],"
				      "\"on_failure\":\"rollback\"}");
	char *job = hjob_add(w.db, w.agency,
			     "{\"name\":\"Roll Back\",\"email\":\"rb@x.example\",\"country\":"
			     "\"CA\"}",
			     NULL);
	char *st = hjob_wait(w.db, job, 20000, w.agent.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs");
	ck_assert_msg(strstr(err, "CREATE_USER") &&
			      strstr(err, "(rollback: undid CREATE_LOCATION)"),
		      "%s", err);
	free(err);
	char *steps = q1(&w, "SELECT string_agg((details_json->>'index') || ':' || status || "
			     "COALESCE(':' || (details_json->>'compensate'), ''), ',' ORDER BY "
			     "\"timestamp\", CASE status WHEN 'STARTED' THEN 0 ELSE 1 END) FROM "
			     "provisioning_logs WHERE step = 'CREATE_LOCATION'");
	ck_assert_str_eq(steps, "0:STARTED,0:COMPLETED,1:SKIPPED,0:STARTED:true,0:COMPLETED:true");
	free(steps);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 1);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	ck_assert_int_eq((long)json_len(json_get(state, "locations")), 0);
	json_free(state);
	free(job);
	world_stop(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jobs");
	TCase *tc = tcase_create("jobs");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, default_pipeline_provisions_everything);
	tcase_add_test(tc, retryable_failures_retry_then_fail_at_the_cap);
	tcase_add_test(tc, step_budget_starts_again_when_a_step_completes);
	tcase_add_test(tc, step_failing_more_than_max_retries_in_a_row_fails_the_job);
	tcase_add_test(tc, permanent_failures_fail_at_once);
	tcase_add_test(tc, agency_needing_reconnection_fails_jobs_with_the_reason);
	tcase_add_test(tc, rollback_compensates_completed_steps);
	tcase_add_test(tc, nul_characters_do_not_wedge_the_journal);
	tcase_add_test(tc, cancel_pending_and_running);
	tcase_add_test(tc, per_agency_cap_and_fairness);
	tcase_add_test(tc, requests_beyond_max_connections_wait_and_show_in_metrics);
	tcase_add_test(tc, claims_follow_releases_not_the_poll);
	tcase_add_test(tc, kill9_mid_pipeline_then_resume_without_duplicates);
	tcase_add_test(tc, ghl_faults_every_job_ends_clearly_no_duplicates);
	tcase_add_test(tc, two_workers_run_every_job_once);
	tcase_add_test(tc, sigterm_releases_running_jobs);
	suite_add_tcase(s, tc);
	TCase *when = tcase_create("when");
	tcase_set_timeout(when, 180);
	tcase_add_test(when, when_skips_and_runs_steps);
	tcase_add_test(when, when_skipped_steps_are_not_rolled_back);
	suite_add_tcase(s, when);
	return tl_run_suite(s);
}
