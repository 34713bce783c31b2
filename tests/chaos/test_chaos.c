/* test_chaos.c — the chaos suite (issue 9): jobs must survive crashes of the
 * agent processes and of PostgreSQL, and GHL's faults and outages.
 *
 *   crash_recovery  two agents (roles=both serving the API, roles=worker) on
 *                   one PostgreSQL, ghl-sim answering 5% 5xx and 2% timeouts;
 *                   jobs submitted over REST in three parts; during the drain:
 *                   kill -9 of the worker (restarted), an immediate PostgreSQL
 *                   stop and start (then part two is submitted at once), kill -9
 *                   of the API process (restarted, then part three).
 *   ghl_outage      ghl-sim answers every request with 503 for a while, then
 *                   is healthy: jobs wait (retry with backoff), then complete.
 *
 * Both assert: every job COMPLETED, zero FAILED, none stuck; distinct location
 * ids, each in ghl-sim under its client's name; zero duplicate locations in
 * ghl-sim; a COMPLETED journal entry for every pipeline step of every job. They
 * print the time to drain and the counts.
 *
 * Sizes (environment): CHAOS_JOBS (120; ./scripts/chaos: 1000), CHAOS_OUTAGE_S
 * (8; ./scripts/chaos: 20), CHAOS_OUTAGE_JOBS (CHAOS_JOBS / 4, at least 20),
 * CHAOS_ERROR_RATE (0.05), CHAOS_TIMEOUT_RATE (0.02), CHAOS_DRAIN_TIMEOUT_S
 * (120 + CHAOS_JOBS / 2), CHAOS_PG_DOWN_MS (2000), CHAOS_EVENT_GAP_MS (3000:
 * the least time between two crashes). It starts its own
 * PostgreSQL (CHAOS_PG_BIN, default /usr/lib/postgresql/15/bin) in a folder
 * under /tmp, removed when every test passed (the logs are kept otherwise;
 * CHAOS_KEEP=1 keeps the clusters too, to look at the data afterwards).
 */
#include <ftw.h>

#include "chaos.h"

static char run_dir[] = "/tmp/ghl-chaos-XXXXXX";
static int n_jobs, outage_s, outage_jobs, drain_timeout_s, pg_down_ms, event_gap_ms;
static double error_rate, timeout_rate;

static long env_long(const char *name, long def, long min, long max)
{
	const char *v = getenv(name);
	long long n;
	if (!v || !*v)
		return def;
	if (str_to_ll(v, min, max, &n) != 0) {
		fprintf(stderr, "%s=%s: expected an integer in [%ld, %ld]\n", name, v, min, max);
		exit(2);
	}
	return (long)n;
}

static double env_rate(const char *name, double def)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	double d = strtod(v, &end);
	if (*end || !(d >= 0.0 && d <= 1.0)) {
		fprintf(stderr, "%s=%s: expected a fraction between 0 and 1\n", name, v);
		exit(2);
	}
	return d;
}

static void chaos_init(struct chaos *c)
{
	memset(c, 0, sizeof *c);
	c->dir = run_dir;
}

static void start_clock(struct chaos *c)
{
	c->t0 = now_monotonic_ms();
	c->deadline = c->t0 + (int64_t)drain_timeout_s * 1000;
}

/* Jobs in progress held by the agent (its scheduler's owner id is
 * "host:pid:random"). */
static long long held_by(struct chaos *c, const struct chaos_agent *a)
{
	char *sql = xasprintf("SELECT count(*) FROM provisioning_jobs WHERE status = "
			      "'IN_PROGRESS' AND locked_by LIKE '%%:%d:%%'",
			      (int)a->pid);
	long long n = chaos_count(c, sql);
	free(sql);
	return n;
}

/* Wait until `finished` jobs are done, and at least a few seconds after the
 * last event, so each recovery is seen on its own. */
static void wait_for_event(struct chaos *c, long long finished)
{
	chaos_wait_finished(c, finished);
	chaos_watch(c, c->last_event + event_gap_ms);
}

START_TEST(crash_recovery)
{
	struct chaos c;
	chaos_init(&c);
	printf("crash recovery: %d jobs, ghl-sim faults %.0f%% 5xx + %.0f%% timeouts\n", n_jobs,
	       error_rate * 100, timeout_rate * 100);
	/* the default retry budget (max_retries 3); up to 100 jobs in flight */
	chaos_up(&c, "s1", "{\"max_concurrent_jobs\": 100}");
	char *faults = xasprintf("{\"error_rate\": %.4f, \"timeout_rate\": %.4f}", error_rate,
				 timeout_rate);
	json_free(hsim_admin(&c.sim, "POST", "faults", faults));
	free(faults);
	start_clock(&c);

	int part1 = n_jobs * 4 / 10, part2 = n_jobs * 7 / 10;
	chaos_submit(&c, 0, part1);

	wait_for_event(&c, n_jobs / 10);
	long long held = held_by(&c, &c.worker);
	chaos_agent_kill(&c.worker);
	chaos_event(&c, "kill -9 of the worker (it held %lld jobs in progress)", held);
	chaos_agent_start(&c, &c.worker);
	chaos_event(&c, "worker restarted and ready");

	wait_for_event(&c, n_jobs * 2 / 10);
	chaos_pg_crash(&c.pg);
	chaos_event(&c, "PostgreSQL stopped in immediate mode");
	usleep((useconds_t)pg_down_ms * 1000);
	chaos_pg_start(&c.pg);
	chaos_event(&c, "PostgreSQL started again (crash recovery done)");
	/* at once, while the agents reconnect */
	chaos_submit(&c, part1, part2);

	wait_for_event(&c, n_jobs * 45 / 100);
	held = held_by(&c, &c.api);
	chaos_agent_kill(&c.api);
	chaos_event(&c, "kill -9 of the API process (roles=both; it held %lld jobs in progress)",
		    held);
	chaos_agent_start(&c, &c.api);
	chaos_event(&c, "API process restarted and ready");
	chaos_submit(&c, part2, n_jobs);

	chaos_wait_drained(&c);
	chaos_event(&c, "drained");
	chaos_verify(&c, "crash recovery", n_jobs);
	chaos_down(&c);
}
END_TEST

/* ghl-sim's answer to a token request that is bad on purpose: 400 or 401 when
 * healthy, the outage's status during one. */
static long sim_probe(struct chaos *c)
{
	char *url = xasprintf("%s/oauth/token", c->sim.base);
	const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	long st = tl_http("POST", url, h, "grant_type=refresh_token&refresh_token=probe", NULL);
	free(url);
	return st;
}

START_TEST(ghl_outage)
{
	struct chaos c;
	chaos_init(&c);
	printf("GHL outage: %d jobs, every GHL request answered 503 for %d s\n", outage_jobs,
	       outage_s);
	/* The budget must outlast the outage: with retry_max 10s the waits are
	 * 1-2, 2-4, 4-8, 5-10, 5-10 … s, so 10 retries span at least 42 s, and a
	 * job is at most 10 s late once GHL is back. */
	static const char *const env[] = {"GHL_AGENT_RETRY_MAX=10s", NULL};
	c.env = env;
	chaos_up(&c, "s2", "{\"max_concurrent_jobs\": 100, \"max_retries\": 10}");
	start_clock(&c);
	/* half before the outage (some finish, the others are caught in it), the
	 * other half during it (every one of them must wait) */
	int half = outage_jobs / 2;
	chaos_submit(&c, 0, half);
	chaos_wait_finished(&c, 1);

	long long errors_before = hsim_stat(&c.sim, "errors_injected");
	char *outage = xasprintf("{\"outage_ms\": %d}", outage_s * 1000);
	json_free(hsim_admin(&c.sim, "POST", "faults", outage));
	free(outage);
	int64_t outage_end = now_monotonic_ms() + outage_s * 1000LL;
	chaos_event(&c, "GHL outage begins: every request answers 503 for %d s", outage_s);
	long st = sim_probe(&c);
	ck_assert_msg(st == 503, "ghl-sim during the outage answered %ld, not 503", st);
	chaos_submit(&c, half, outage_jobs);
	chaos_watch(&c, outage_end + 200);
	st = sim_probe(&c);
	ck_assert_msg(st == 400 || st == 401, "ghl-sim after the outage answered %ld", st);
	long long refused = hsim_stat(&c.sim, "errors_injected") - errors_before;
	long long waiting = chaos_count(&c, "SELECT count(*) FROM provisioning_jobs WHERE status "
					    "<> 'COMPLETED' AND retry_count > 0");
	chaos_event(&c, "GHL healthy again (%lld requests refused; %lld jobs waiting to retry)",
		    refused, waiting);
	ck_assert_msg(refused > 0 && waiting > 0,
		      "the outage caught no job (%lld requests "
		      "refused, %lld jobs waiting)",
		      refused, waiting);
	int64_t healthy = now_monotonic_ms();

	chaos_wait_drained(&c);
	chaos_event(&c, "drained %.1f s after GHL was back",
		    (now_monotonic_ms() - healthy) / 1000.0);
	chaos_verify(&c, "GHL outage", outage_jobs);
	chaos_down(&c);
}
END_TEST

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	n_jobs = (int)env_long("CHAOS_JOBS", 120, 20, 100000);
	outage_s = (int)env_long("CHAOS_OUTAGE_S", 8, 1, 3600);
	outage_jobs = (int)env_long("CHAOS_OUTAGE_JOBS", n_jobs / 4 > 20 ? n_jobs / 4 : 20, 10,
				    100000);
	drain_timeout_s = (int)env_long("CHAOS_DRAIN_TIMEOUT_S", 120 + n_jobs / 2, 10, 86400);
	pg_down_ms = (int)env_long("CHAOS_PG_DOWN_MS", 2000, 0, 600000);
	event_gap_ms = (int)env_long("CHAOS_EVENT_GAP_MS", 3000, 0, 600000);
	error_rate = env_rate("CHAOS_ERROR_RATE", 0.05);
	timeout_rate = env_rate("CHAOS_TIMEOUT_RATE", 0.02);
	if (!mkdtemp(run_dir) || chmod(run_dir, 0755) != 0) {
		perror("mkdtemp /tmp/ghl-chaos-XXXXXX");
		return 1;
	}
	printf("chaos suite: run folder %s\n", run_dir);
	fflush(stdout);

	Suite *s = suite_create("chaos");
	/* set-up, the drain's limit, and the stops and restarts */
	int limit = drain_timeout_s + outage_s + 300;
	TCase *tc = tcase_create("crash_recovery");
	tcase_set_timeout(tc, limit);
	tcase_add_test(tc, crash_recovery);
	suite_add_tcase(s, tc);
	tc = tcase_create("ghl_outage");
	tcase_set_timeout(tc, limit);
	tcase_add_test(tc, ghl_outage);
	suite_add_tcase(s, tc);
	int rc = tl_run_suite(s);

	/* the clusters go unless CHAOS_KEEP is set; the logs stay when something failed */
	char *clusters = xasprintf("%s/clusters", run_dir);
	const char *keep = getenv("CHAOS_KEEP");
	if (!keep || !*keep)
		nftw(rc ? clusters : run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(clusters);
	if (rc)
		fprintf(stderr, "chaos suite failed; logs in %s\n", run_dir);
	return rc;
}
