/* bench_economy.c — the GHL call economy (issue 15 item 1), printed:
 *   (f) the per-job call list of the default pipeline (method, path, bucket,
 *       calls per job) over 20 jobs of one agency with a snapshot, counted
 *       from ghl-sim's per-token request log — not assumed;
 *   (g) 500 jobs of the default pipeline for one agency under GHL's 100
 *       requests per 10 s: the time from insert to the last job finished
 *       against the bound the agency bucket sets (its counted calls ÷ 10 per
 *       second), and the 429s.
 * Run by scripts/bench (`./scripts/bench economy`).
 * Usage: bench_economy [f|g ...]   (default: both)
 * BENCH_SMOKE=1: tiny sizes (a smoke test that the scene still builds).
 */
#include "economy_harness.h"

static char results[2][240];
static int smoke;

static const char *const agent_env[] = {"GHL_AGENT_LOG_LEVEL=warn", "GHL_AGENT_GHL_TIMEOUT=60s",
					NULL};

static void bench_call_list(void)
{
	const int n = smoke ? 4 : 20;
	struct econ e;
	econ_start(&e, "bench_econ_f", NULL, agent_env, 100);
	long long since = econ_log_seq(&e);
	econ_insert(&e, n);
	econ_wait(&e, 600);
	struct econ_count c;
	econ_count(&e, since, &c);
	long long failed = tl_sqlf_n(e.db, "SELECT count(*) FROM provisioning_jobs WHERE status "
					   "<> 'COMPLETED'");
	printf("(f) per-job GHL calls, default pipeline, %d jobs, one agency:\n", n);
	econ_print(stdout, &c, n);
	snprintf(results[0], sizeof(results[0]),
		 "%.2f agency-bucket calls per job (%.2f location-bucket), %lld not completed",
		 (double)c.agency / n, (double)c.location / n, failed);
	econ_count_free(&c);
	econ_stop(&e);
	fflush(stdout);
}

static void bench_500(void)
{
	const int n = smoke ? 10 : 500;
	struct econ e;
	const char *flags[] = {"--rate-limit", "100", "--rate-window-ms", "10000", NULL};
	econ_start(&e, "bench_econ_g", flags, agent_env, 100);
	long long since = econ_log_seq(&e);
	int64_t t0 = now_monotonic_ms();
	econ_insert(&e, n);
	econ_wait(&e, 3600);
	double secs = (now_monotonic_ms() - t0) / 1000.0;
	struct econ_count c;
	econ_count(&e, since, &c);
	long long failed = tl_sqlf_n(e.db, "SELECT count(*) FROM provisioning_jobs WHERE status "
					   "<> 'COMPLETED'");
	/* the agency bucket's 100 per 10 s is what bounds one agency */
	double bound = c.agency / 10.0;
	printf("(g) %d jobs, one agency, 100 per 10 s:\n", n);
	econ_print(stdout, &c, n);
	snprintf(results[1], sizeof(results[1]),
		 "%d jobs in %.1f s; bound %.1f s (%lld agency-bucket calls / 10 per s): %.0f%% "
		 "of the bound; %lld 429s; %lld not completed",
		 n, secs, bound, c.agency, bound > 0 ? 100.0 * secs / bound : 0.0, c.limited,
		 failed);
	econ_count_free(&c);
	econ_stop(&e);
	fflush(stdout);
}

static int wanted(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

static int g_argc;
static char **g_argv;

static void run_benchmarks(void)
{
	smoke = getenv("BENCH_SMOKE") && atoi(getenv("BENCH_SMOKE")) > 0;
	if (wanted(g_argc, g_argv, "f"))
		bench_call_list();
	if (wanted(g_argc, g_argv, "g"))
		bench_500();
	static const char *const names[] = {
		"(f) agency-bucket calls per job, default pipeline (target <= 2.2)",
		"(g) 500 jobs, one agency, 100/10 s (target within 10% of the bound, 0 429s)",
	};
	printf("\n%-78s | %s\n",
	       smoke ? "GHL call economy (BENCH_SMOKE: tiny sizes)" : "GHL call economy",
	       "measured");
	for (int i = 0; i < 2; i++)
		if (results[i][0])
			printf("%-78s | %s\n", names[i], results[i]);
}

int main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	return tl_run_bench("bench_economy", run_benchmarks);
}
