/* test_economy.c — the GHL call economy (issue 15 item 1), counted from
 * ghl-sim's per-token request log: the default pipeline spends at most 2.2
 * agency-bucket calls per job (the floor is POST /locations/ plus the
 * location-token mint), jobs still complete, and a retry after a timeout or a
 * crash around POST /locations/ reuses the location instead of making a
 * second one. */
#include "economy_harness.h"

static const char *const env_fast[] = {"GHL_AGENT_RETRY_BASE=100ms",
				       "GHL_AGENT_RETRY_MAX=300ms",
				       "GHL_AGENT_POLL_INTERVAL=100ms",
				       "GHL_AGENT_GHL_TIMEOUT=2s",
				       "GHL_AGENT_LEASE_TIMEOUT=1500ms",
				       "GHL_AGENT_LOG_LEVEL=info",
				       NULL};

static long long route_n(const struct econ_count *c, const char *key)
{
	int64_t n = 0;
	json_get_int(c->by_route, key, &n);
	return (long long)n;
}

static void assert_no_duplicates(struct econ *e, int n)
{
	ck_assert_int_eq(tl_sqlf_n(e->db, "SELECT count(*) FROM provisioning_jobs WHERE status = "
					  "'COMPLETED'"),
			 n);
	ck_assert_int_eq(hsim_stat(&e->sim, "duplicate_locations"), 0);
	ck_assert_int_eq(hsim_stat(&e->sim, "locations_created"), n);
	ck_assert_int_eq(tl_sqlf_n(e->db, "SELECT count(DISTINCT location_id) FROM "
					  "provisioning_jobs"),
			 n);
}

START_TEST(default_pipeline_spends_at_most_2_2_agency_calls_per_job)
{
	const int n = 40;
	struct econ e;
	const char *flags[] = {"--snapshot-delay-ms", "1000", NULL};
	econ_start(&e, "test_economy", flags, env_fast, 100);
	/* the first POST /locations/ is processed and never answered: that job
	 * times out, retries, and must find the location it made */
	struct json *f = hsim_admin(&e.sim, "POST", "faults",
				    "{\"hold_routes\": {\"POST /locations/\": 1}}");
	json_free(f);
	long long since = econ_log_seq(&e);
	econ_insert(&e, n);
	econ_wait(&e, 120);
	assert_no_duplicates(&e, n);
	char *reused = tl_sqlf(e.db, "SELECT count(*) FROM provisioning_logs WHERE step = "
				     "'CREATE_LOCATION' AND status = 'COMPLETED' AND "
				     "details_json->'outputs'->>'location_reused' = 'true'");
	ck_assert_str_eq(reused, "1");
	free(reused);

	struct econ_count c;
	econ_count(&e, since, &c);
	econ_print(stderr, &c, n);
	ck_assert_msg(c.agency <= n * 22 / 10,
		      "%lld agency-bucket calls for %d jobs (%.2f per job)", c.agency, n,
		      (double)c.agency / n);
	ck_assert_int_eq(c.limited, 0);
	/* what each economy did: */
	ck_assert_int_eq(route_n(&c, "POST /locations/ agency"), n); /* the held one included */
	ck_assert_int_eq(route_n(&c, "GET /snapshots/ agency"), 1);  /* one list per TTL */
	ck_assert_int_le(route_n(&c, "GET /snapshots/snapshot-status/{snapshotId} agency"), 4);
	ck_assert_int_eq(route_n(&c, "GET /snapshots/snapshot-status/{snapshotId}/location/"
				     "{locationId} agency"),
			 0);
	/* searches only for the retry: by email, then by name */
	ck_assert_int_ge(route_n(&c, "GET /locations/search agency"), 1);
	ck_assert_int_le(route_n(&c, "GET /locations/search agency"), 2);
	/* users through the location's token; one mint per location */
	ck_assert_int_eq(route_n(&c, "GET /users/search agency"), 0);
	ck_assert_int_eq(route_n(&c, "POST /users/ agency"), 0);
	ck_assert_int_eq(route_n(&c, "POST /users/ location"), n);
	ck_assert_int_eq(route_n(&c, "POST /oauth/locationToken agency"), n);
	econ_count_free(&c);

	/* the bucket of every call is the token's resource */
	struct json *log = hsim_admin(&e.sim, "GET", "calls", NULL);
	struct json *calls = json_get(log, "calls");
	ck_assert_int_gt(json_len(calls), 0);
	for (size_t i = 0; i < json_len(calls); i++) {
		struct json *k = json_at(calls, i);
		const char *cls = json_get_str(k, "tokenClass");
		const char *bucket = json_get_str(k, "bucket");
		if (str_eq(cls, "Company"))
			ck_assert_str_eq(bucket, e.company);
		else
			ck_assert_str_ne(bucket, e.company);
	}
	json_free(log);
	econ_stop(&e);
}
END_TEST

START_TEST(crash_after_post_locations_reuses_the_location)
{
	const int n = 3;
	struct econ e;
	econ_start(&e, "test_economy_crash", NULL, env_fast, 100);
	struct json *f = hsim_admin(&e.sim, "POST", "faults",
				    "{\"hold_routes\": {\"POST /locations/\": 1}}");
	json_free(f);
	econ_insert(&e, n);
	/* GHL has made the location, the agent has no answer yet: kill it */
	for (int i = 0; i < 200 && hsim_stat(&e.sim, "timeouts_injected") < 1; i++)
		usleep(50000);
	ck_assert_int_eq(hsim_stat(&e.sim, "timeouts_injected"), 1);
	kill(e.agent.pid, SIGKILL);
	int st;
	waitpid(e.agent.pid, &st, 0);
	unlink(e.agent.log);
	hagent_start(&e.agent, e.dsn, &e.sim, env_fast);
	econ_wait(&e, 60);
	assert_no_duplicates(&e, n);
	ck_assert_int_gt(
		tl_sqlf_n(e.db, "SELECT count(*) FROM provisioning_jobs WHERE attempt > 1"), 0);
	econ_stop(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("economy");
	TCase *tc = tcase_create("economy");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, default_pipeline_spends_at_most_2_2_agency_calls_per_job);
	tcase_add_test(tc, crash_after_post_locations_reuses_the_location);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
