/* bench_jobs.c — the job engine's figures (issue 4), printed as a table:
 *   (a) drain: 20,000 queued jobs through a one-step NOOP pipeline — jobs/s
 *   (b) pickup latency at a steady 100 jobs/s: insert → IN_PROGRESS, p50/p99,
 *       from the insert's start (created_at, as the anchors' "from the add
 *       call") and from its commit's acknowledgement (the client's clock)
 *   (c) provisioning: 2,000 jobs over 200 agencies, default pipeline, ghl-sim
 *       at 200 ms per call, rate limit off — jobs/s, peak in flight, share of
 *       the simulator-bound ideal (in flight ÷ per-job latency)
 *   (d) the agent's peak RSS during (c)
 *   (e) rate-limited: one agency, 300 jobs, ghl-sim at GHL's 100 per 10 s —
 *       429s received, the company-level call rate and the calls per job
 *       the simulator counted
 * Run by scripts/bench (which starts PostgreSQL with default durability).
 * Usage: bench_jobs [a|b|c|e ...]   (default: all; d comes with c)
 * BENCH_KEEP_DB=1: the last figure's database is kept (its DSN printed).
 * BENCH_SMOKE=1: tiny sizes, so the test command runs it in seconds (a smoke
 * test that it still works; its figures mean nothing).
 */
#include <stdarg.h>

#include "bench_cost.h"
#include "ghl_harness.h"

static char results[5][512];

static PGconn *db;
static char *dsn;
static int smoke; /* BENCH_SMOKE */

static long long qn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long qn(const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	char *v = tl_sql_value(db, buf_cstr(&b));
	buf_clear(&b);
	long long n = 0;
	str_to_ll(v, -(1LL << 60), 1LL << 60, &n);
	free(v);
	return n;
}

static double qd(const char *sql)
{
	char *v = tl_sql_value(db, sql);
	double d = strtod(v, NULL);
	free(v);
	return d;
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	PQclear(tl_sql(db, buf_cstr(&b)));
	buf_clear(&b);
}

/* The GHL API requests the simulator accepted (not /_sim/, not the OAuth
 * token and authorize routes, not refused with 429), from its stats. */
static long long sim_api_calls(struct hsim *sim)
{
	struct json *stats = hsim_admin(sim, "GET", "stats", NULL);
	struct json *reqs = json_get(stats, "requests");
	long long calls = 0;
	for (size_t i = 0; i < json_len(reqs); i++) {
		const char *route = reqs->u.obj.keys[i];
		if (strstr(route, "/_sim/") || strstr(route, "/oauth/token") ||
		    strstr(route, "chooselocation"))
			continue;
		struct json *by = reqs->u.obj.vals[i];
		for (size_t k = 0; k < json_len(by); k++)
			if (strcmp(by->u.obj.keys[k], "429"))
				calls += by->u.obj.vals[k]->u.num.i;
	}
	json_free(stats);
	return calls;
}

static void fresh_db(const char *name)
{
	if (db) {
		PQfinish(db);
		tl_drop_db(dsn);
		free(dsn);
	}
	dsn = tl_create_migrated_db(name);
	db = tl_connect(dsn);
}

static const char *agency_sql =
	"INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted, "
	"oauth_refresh_token_encrypted, token_expires_at, settings_json) VALUES "
	"('22222222-2222-4222-8222-222222222222', 'Bench', 'bench-co', 'x', 'x', "
	"now() + interval '1 day', '{\"pipeline\":[{\"step\":\"NOOP\"}],"
	"\"max_concurrent_jobs\":100000}')";

static long rss_peak_kb(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *t = tl_read_file(path);
	char *p = strstr(t, "VmHWM:");
	long kb = p ? strtol(p + 6, NULL, 10) : -1;
	free(t);
	return kb;
}

static void wait_done(long long total, int timeout_s)
{
	for (int i = 0; i < timeout_s * 20; i++) {
		if (qn("SELECT count(*) FROM provisioning_jobs WHERE status IN ('COMPLETED', "
		       "'FAILED')") >= total)
			return;
		usleep(50000);
	}
	fprintf(stderr, "timed out; states: %s\n",
		tl_sql_value(db, "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, "
				 "count(*) n FROM provisioning_jobs GROUP BY 1) s"));
	exit(1);
}

static void bench_drain(void)
{
	const int n = smoke ? 200 : 20000;
	fresh_db("bench_drain");
	sql("%s", agency_sql);
	sql("INSERT INTO provisioning_jobs (agency_id, client_data_json) SELECT "
	    "'22222222-2222-4222-8222-222222222222', jsonb_build_object('name', 'C' || g, "
	    "'email', 'c' || g || '@x.example') FROM generate_series(1, %d) g",
	    n);
	sql("VACUUM ANALYZE provisioning_jobs");
	const char *extra[] = {"GHL_AGENT_LOG_LEVEL=warn", "GHL_AGENT_WORKER_CONCURRENCY=4000",
			       "GHL_AGENT_CLAIM_BATCH=2000",
			       "GHL_AGENT_MAX_CONCURRENT_JOBS_CEILING=100000", NULL};
	struct hagent a;
	struct cost cost;
	cost_begin(&cost, db);
	int64_t t0 = now_monotonic_ms();
	hagent_start(&a, dsn, NULL, extra);
	wait_done(n, 300);
	int64_t wall = now_monotonic_ms() - t0;
	long long wal = cost_wal(&cost, db);
	double pg_us = cost_pg_us(&cost, db);
	cost_wal_stats(&cost, db, n);
	double span = qd("SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM "
			 "provisioning_jobs");
	long long logs = qn("SELECT count(*) FROM provisioning_logs");
	hagent_stop(&a);
	unlink(a.log);
	snprintf(results[0], sizeof(results[0]),
		 "%.0f jobs/s (%d jobs in %.2f s first claim to last finish; %lld journal rows; "
		 "wall %.1f s incl. start-up; CPU per job: agent %.0f us, PostgreSQL %.0f us; "
		 "WAL %.1f KB/job)",
		 n / span, n, span, logs, wall / 1000.0, cost_cpu_us(&cost) / n, pg_us / n,
		 wal / 1024.0 / n);
	printf("(a) drain: %s\n", results[0]);
	fflush(stdout);
}

/* one job, one transaction; the warm-up ones are marked in error_message */
#define PICKUP_INSERT(mark)                                                                  \
	"INSERT INTO provisioning_jobs (agency_id, client_data_json, error_message) VALUES " \
	"('22222222-2222-4222-8222-222222222222', '{\"name\":\"P\",\"email\":"               \
	"\"p@x.example\"}', " mark ") RETURNING id"

static void bench_pickup(void)
{
	fresh_db("bench_pickup");
	sql("%s", agency_sql);
	const char *extra[] = {"GHL_AGENT_LOG_LEVEL=warn",
			       "GHL_AGENT_MAX_CONCURRENT_JOBS_CEILING=100000", NULL};
	struct hagent a;
	hagent_start(&a, dsn, NULL, extra);
	/* warm up, then a steady 100 inserts/s for 10 s, one transaction each */
	/* BENCH_PICKUP_JOBS: more jobs for a steadier p99 (10 s per 1,000) */
	const char *pj = getenv("BENCH_PICKUP_JOBS");
	const int n = smoke ? 50 : (pj && atoi(pj) > 0 ? atoi(pj) : 1000), warm = smoke ? 5 : 50;
	/* each measured job's id, the wall clock when its insert's commit was
	 * acknowledged (for the figure from the commit) and the insert's round
	 * trip (its execution and commit, what the figure from its start adds) */
	struct buf acks;
	buf_init(&acks);
	int64_t start = now_monotonic_ms();
	for (int i = 0; i < n + warm; i++) {
		int64_t due = start + (int64_t)i * 10;
		int64_t now = now_monotonic_ms();
		if (due > now)
			usleep((useconds_t)(due - now) * 1000);
		struct timespec t0, t1, ts;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		PGresult *r = tl_sql(db,
				     i < warm ? PICKUP_INSERT("'warmup'") : PICKUP_INSERT("NULL"));
		clock_gettime(CLOCK_REALTIME, &ts);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double rtt = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (i >= warm)
			buf_printf(&acks, "%s('%s',%lld.%06ld,%.3f)", acks.len ? "," : "",
				   PQgetvalue(r, 0, 0), (long long)ts.tv_sec, ts.tv_nsec / 1000,
				   rtt);
		PQclear(r);
	}
	wait_done(n + warm, 60);
	sql("CREATE TEMP TABLE pickup_ack (id uuid PRIMARY KEY, ack float8 NOT NULL, rtt float8 "
	    "NOT NULL)");
	sql("INSERT INTO pickup_ack VALUES %s", buf_cstr(&acks));
	buf_clear(&acks);
	char *pc = tl_sql_value(
		db,
		"SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) || "
		"' ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) "
		"|| ' ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY rtt)::numeric, 2) "
		"|| ' ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY rtt)::numeric, 2) "
		"FROM (SELECT (extract(epoch FROM j.started_at) - extract(epoch FROM "
		"to_timestamp(a.ack)::timestamp)) * 1000 AS ms, a.rtt FROM pickup_ack a JOIN "
		"provisioning_jobs j ON j.id = a.id) s");
	double c50 = 0, c99 = 0, i50 = 0, i99 = 0;
	sscanf(pc, "%lf %lf %lf %lf", &c50, &c99, &i50, &i99);
	free(pc);
	char *p = tl_sql_value(db,
			       "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::"
			       "numeric, 2) || ' ' || round(percentile_cont(0.99) WITHIN GROUP "
			       "(ORDER BY ms)::numeric, 2) || ' ' || round(max(ms)::numeric, 2) "
			       "FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 "
			       "AS ms FROM provisioning_jobs WHERE error_message IS NULL OR "
			       "error_message <> 'warmup') s");
	double p50 = 0, p99 = 0, mx = 0;
	sscanf(p, "%lf %lf %lf", &p50, &p99, &mx);
	free(p);
	hagent_stop(&a);
	unlink(a.log);
	snprintf(results[1], sizeof(results[1]),
		 "p50 %.2f ms, p99 %.2f ms, max %.2f ms from the insert's start; "
		 "from its commit: p50 %.2f ms, p99 %.2f ms; the insert's round trip: p50 "
		 "%.2f ms, p99 %.2f ms (%d jobs at 100/s)",
		 p50, p99, mx, c50, c99, i50, i99, n);
	printf("(b) pickup latency: %s\n", results[1]);
	fflush(stdout);
}

static void bench_provision(void)
{
	const int agencies = smoke ? 3 : 200, per = smoke ? 2 : 10, total = agencies * per;
	fresh_db("bench_prov");
	struct hsim sim;
	const char *sim_flags[] = {
		"--latency-ms", "200", "--rate-limit", "0", "--snapshot-delay-ms", "0", NULL};
	hsim_start(&sim, sim_flags);
	/* a connection per job in flight, unless BENCH_GHL_MAX_CONNECTIONS (the
	 * agent's default is 512: the requests beyond wait in its queue) */
	char maxconn[64];
	const char *mc = getenv("BENCH_GHL_MAX_CONNECTIONS");
	snprintf(maxconn, sizeof(maxconn), "GHL_AGENT_GHL_MAX_CONNECTIONS=%d",
		 mc && atoi(mc) > 0 ? atoi(mc) : 4000);
	const char *extra[] = {
		"GHL_AGENT_LOG_LEVEL=warn", "GHL_AGENT_WORKER_CONCURRENCY=4000",
		"GHL_AGENT_CLAIM_BATCH=1000", "GHL_AGENT_MAX_CONCURRENT_JOBS=10",
		"GHL_AGENT_WORKER_CONCURRENCY=1000", "GHL_AGENT_GHL_TIMEOUT=30s", maxconn,
		/* the default six steps; WAIT_FOR_SNAPSHOT told the simulator's push
		 * time (it pushes at once): with its default first poll after 3 s,
		 * meant for GHL's pushes, that wait alone was ~3.8 s of every job */
		"GHL_AGENT_DEFAULT_PIPELINE={\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
		"{\"step\":\"CREATE_LOCATION\"},{\"step\":\"WAIT_FOR_SNAPSHOT\",\"config\":"
		"{\"first_poll_ms\":0,\"poll_interval_ms\":200}},{\"step\":\"CREATE_USER\"},"
		"{\"step\":\"SET_CUSTOM_VALUES\"},{\"step\":\"CREATE_CONTACT\"}]}",
		NULL};
	struct hagent a;
	struct cost cost;
	cost_begin(&cost, db);
	hagent_start(&a, dsn, &sim, extra);
	/* 200 agencies connected through the real OAuth flow, each with a snapshot */
	for (int i = 0; i < agencies; i++) {
		char co[32];
		snprintf(co, sizeof(co), "bench-co-%03d", i);
		struct hresp cb;
		char *url = hconnect(&a, co, &cb);
		if (cb.status != 200) {
			fprintf(stderr, "connect %s: %ld %s\n", co, cb.status, cb.body);
			exit(1);
		}
		hresp_free(&cb);
		free(url);
	}
	sql("INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche) SELECT id, "
	    "'snap-dental-001', 'Dental Practice', 'Dental' FROM agencies");
	/* the agent's default pipeline: six steps, about nine GHL calls per job */
	int64_t t0 = now_monotonic_ms();
	double cpu0 = proc_cpu_us(a.pid), sim_cpu0 = proc_cpu_us(sim.pid);
	sql("INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id) SELECT a.id, "
	    "jsonb_build_object('name', 'Client ' || g || ' of ' || a.ghl_agency_id, 'email', "
	    "'owner' || g || '@' || a.ghl_agency_id || '.example', 'first_name', 'Ada', "
	    "'last_name', 'Lovelace', 'custom_values', jsonb_build_object('welcome', 'Hi'), "
	    "'tags', jsonb_build_array('bench')), s.id FROM agencies a JOIN snapshots s ON "
	    "s.agency_id = a.id CROSS JOIN generate_series(1, %d) g",
	    per);
	long long peak = 0;
	char *metrics_url = hagent_url(&a, "/metrics");
	for (int i = 0; i < 6000; i++) {
		/* jobs running in the agent (its own gauge, not rows awaiting a flush) */
		char *m = NULL;
		tl_http("GET", metrics_url, NULL, NULL, &m);
		const char *g = m ? strstr(m, "\nghl_agent_jobs_in_flight ") : NULL;
		long long inflight = g ? strtoll(g + 26, NULL, 10) : 0;
		free(m);
		if (inflight > peak)
			peak = inflight;
		if (qn("SELECT count(*) FROM provisioning_jobs WHERE status IN ('COMPLETED', "
		       "'FAILED')") >= total)
			break;
		usleep(100000);
	}
	free(metrics_url);
	double cpu_jobs = proc_cpu_us(a.pid) - cpu0, sim_cpu = proc_cpu_us(sim.pid) - sim_cpu0;
	double wall = (now_monotonic_ms() - t0) / 1000.0;
	long long failed = qn("SELECT count(*) FROM provisioning_jobs WHERE status = 'FAILED'");
	double per_job = qd("SELECT avg(extract(epoch FROM finished_at - started_at)) FROM "
			    "provisioning_jobs");
	double span = qd("SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM "
			 "provisioning_jobs");
	double rate = total / span;
	long kb = rss_peak_kb(a.pid);
	long long locations = hsim_stat(&sim, "locations_created");
	/* GHL calls the jobs made: every API request the sim answered */
	long long calls = sim_api_calls(&sim);
	/* the simulator-bound ideal: every job's calls back to back at 200 ms */
	double per_job_ideal = (double)calls / total * 0.2;
	double ideal = peak / per_job_ideal;
	snprintf(results[2], sizeof(results[2]),
		 "%.0f jobs/s, peak %lld in flight, %.2f s per job (%.1f calls x 200 ms = %.2f s; "
		 "ideal %.0f jobs/s: %.0f%%), %lld failed, %lld locations, wall %.1f s",
		 rate, peak, per_job, (double)calls / total, per_job_ideal, ideal,
		 100.0 * rate / ideal, failed, locations, wall);
	snprintf(results[3], sizeof(results[3]), "%.1f MiB (VmHWM)", kb / 1024.0);
	/* where a job's time goes: each step's own time (its COMPLETED row's
	 * duration_ms), the rest of the job's time (claim to first step, between
	 * steps, to the end), and the GHL requests as the steps timed them */
	char *steps = tl_sql_value(
		db, "SELECT string_agg(step || ' ' || round(ms) || ' ms', ', ' ORDER BY idx) FROM "
		    "(SELECT step, min((details_json->>'index')::int) AS idx, "
		    "avg((details_json->>'duration_ms')::numeric) AS ms FROM provisioning_logs "
		    "WHERE status = 'COMPLETED' GROUP BY step) s");
	double outside = qd(
		"SELECT avg(extract(epoch FROM j.finished_at - j.started_at) * 1000 - "
		"s.ms) FROM provisioning_jobs j JOIN (SELECT job_id, sum((details_json"
		"->>'duration_ms')::numeric) AS ms FROM provisioning_logs WHERE status = "
		"'COMPLETED' GROUP BY job_id) s ON s.job_id = j.id");
	char *reqs = tl_sql_value(db, "SELECT round(avg(duration_ms)) || ' ms, p99 ' || "
				      "round(percentile_cont(0.99) WITHIN GROUP (ORDER BY "
				      "duration_ms)::numeric) || ' ms' FROM job_requests");
	printf("(c) a job's time: steps: %s; outside the steps %.0f ms; GHL requests avg %s\n",
	       steps, outside, reqs);
	free(steps);
	free(reqs);
	hagent_stop(&a);
	unlink(a.log);
	/* the jobs' part (the whole life's includes the harness's 200 logins,
	 * each a password hash check) */
	size_t len = strlen(results[2]);
	snprintf(results[2] + len, sizeof(results[2]) - len,
		 "; agent CPU %.1f us per GHL call (%.1f with start-up and the 200 connections)"
		 "; ghl-sim CPU %.1f us per call, busy %.0f%% of the wall time",
		 cpu_jobs / (double)calls, cost_cpu_us(&cost) / (double)calls,
		 sim_cpu / (double)calls, 100.0 * sim_cpu / 1e6 / wall);
	printf("(c) provisioning: %s\n(d) peak RSS: %s\n", results[2], results[3]);
	fflush(stdout);
	hsim_stop(&sim);
}

static void bench_rate_limited(void)
{
	const int n = smoke ? 10 : 300;
	fresh_db("bench_rl");
	struct hsim sim;
	const char *sim_flags[] = {"--rate-limit", "100", "--rate-window-ms", "10000", NULL};
	hsim_start(&sim, sim_flags);
	const char *extra[] = {"GHL_AGENT_LOG_LEVEL=warn", "GHL_AGENT_GHL_TIMEOUT=60s",
			       "GHL_AGENT_MAX_CONCURRENT_JOBS_CEILING=300", NULL};
	struct hagent a;
	hagent_start(&a, dsn, &sim, extra);
	struct hresp cb;
	char *url = hconnect(&a, "rl-co", &cb);
	hresp_free(&cb);
	free(url);
	/* company-level calls only: CREATE_LOCATION (a search and a create) */
	sql("UPDATE agencies SET settings_json = '{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"}],"
	    "\"max_concurrent_jobs\":300}'");
	long long before_429 = hsim_stat(&sim, "rate_limited");
	long long before_calls = sim_api_calls(&sim);
	sql("INSERT INTO provisioning_jobs (agency_id, client_data_json) SELECT id, "
	    "jsonb_build_object('name', 'RL ' || g, 'email', 'rl' || g || '@x.example') FROM "
	    "agencies CROSS JOIN generate_series(1, %d) g",
	    n);
	int64_t t0 = now_monotonic_ms();
	wait_done(n, 600);
	double secs = (now_monotonic_ms() - t0) / 1000.0;
	long long r429 = hsim_stat(&sim, "rate_limited") - before_429;
	long long failed = qn("SELECT count(*) FROM provisioning_jobs WHERE status = 'FAILED'");
	/* the company-level calls GHL accepted (CREATE_LOCATION's search and create),
	 * as the simulator counted them */
	long long calls = sim_api_calls(&sim) - before_calls;
	double cps = calls / secs;
	snprintf(results[4], sizeof(results[4]),
		 "%lld 429s, %.2f company calls/s (%.0f%% of the 10/s budget), %d jobs in %.1f s, "
		 "%lld failed, %.2f calls per job (%lld counted by ghl-sim)",
		 r429, cps, cps * 10.0, n, secs, failed, (double)calls / n, calls);
	printf("(e) rate-limited: %s\n", results[4]);
	fflush(stdout);
	hagent_stop(&a);
	unlink(a.log);
	hsim_stop(&sim);
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

/* Runs inside a Check test so the shared test helpers can report failures. */
static void run_benchmarks(void)
{
	int argc = g_argc;
	char **argv = g_argv;
	smoke = getenv("BENCH_SMOKE") && atoi(getenv("BENCH_SMOKE")) > 0;
	if (wanted(argc, argv, "a"))
		bench_drain();
	if (wanted(argc, argv, "b"))
		bench_pickup();
	if (wanted(argc, argv, "c"))
		bench_provision();
	if (wanted(argc, argv, "e"))
		bench_rate_limited();
	static const char *const names[] = {
		"(a) drain, 1-step NOOP pipeline (target >= 10,000 jobs/s)",
		"(b) pickup latency at 100 jobs/s (target p50 <= 2 ms, p99 <= 5 ms)",
		"(c) provisioning, 200 agencies (target >= 90% of ideal, >= 1,000 in flight, "
		"<= 50 us CPU per GHL call)",
		"(d) agent peak RSS during (c) (target <= 64 MiB)",
		"(e) rate-limited, 1 agency (target 0 429s, >= 90% of 10 calls/s)",
	};
	printf("\n%-78s | %s\n",
	       smoke ? "job engine benchmark (BENCH_SMOKE: tiny sizes)" : "job engine benchmark",
	       "measured");
	for (int i = 0; i < 5; i++)
		if (results[i][0])
			printf("%-78s | %s\n", names[i], results[i]);
	if (db) {
		PQfinish(db);
		/* BENCH_KEEP_DB=1: the last figure's database stays, to look into */
		if (getenv("BENCH_KEEP_DB") && !strcmp(getenv("BENCH_KEEP_DB"), "1"))
			printf("kept: %s\n", dsn);
		else
			tl_drop_db(dsn);
		free(dsn);
	}
}

int main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	return tl_run_bench("bench_jobs", run_benchmarks);
}
