/* chaos_jobs.c — submitting, draining and checking; see chaos.h. */
#include "chaos.h"

#define SUBMIT_PATIENCE_MS 120000
#define PROGRESS_EVERY_MS 5000

/* ---- submitting ---- */

static int transient(long status)
{
	return status == 0 || status == 502 || status == 503 || status == 504;
}

/* Submit job i; returns how long it took until it was stored (ms). */
static int64_t submit_one(struct chaos *c, const char *url, const char *auth, int i)
{
	int64_t start = now_monotonic_ms();
	char *body = xasprintf(
		"{\"client_data\": {\"name\": \"Chaos %s client %d\", \"email\": "
		"\"owner%d@chaos-%s.example\", \"first_name\": \"Ada\", \"last_name\": "
		"\"Lovelace\", \"custom_values\": {\"welcome\": \"Hello %d\"}, \"tags\": "
		"[\"chaos\"]}, \"snapshot_id\": \"%s\"}",
		c->name, i, i, c->name, i, c->snapshot);
	char *idem = xasprintf("Idempotency-Key: %s-%d", c->name, i);
	const char *h[] = {auth, idem, "Content-Type: application/json", NULL};
	int64_t until = now_monotonic_ms() + SUBMIT_PATIENCE_MS;
	for (int attempt = 0;; attempt++) {
		char *out = NULL;
		long st = tl_http("POST", url, h, body, &out);
		if (st == 201 || (st == 200 && attempt > 0)) {
			if (st == 200)
				c->submit_replayed++;
			free(out);
			break;
		}
		if (!transient(st) || now_monotonic_ms() > until)
			chaos_fail(c, "submitting job %d (attempt %d): %ld %s", i, attempt + 1, st,
				   out ? out : "");
		free(out);
		if (st == 503)
			c->submit_503++;
		else
			c->submit_lost++;
		usleep(250000);
	}
	free(idem);
	free(body);
	return now_monotonic_ms() - start;
}

void chaos_submit(struct chaos *c, int from, int to)
{
	if (!c->t0)
		c->t0 = now_monotonic_ms();
	char *url = xasprintf("%s/api/v1/agencies/%s/jobs", c->api.base, c->agency);
	char *auth = xasprintf("Authorization: Bearer %s", c->key);
	long n503 = c->submit_503, lost = c->submit_lost;
	int64_t start = now_monotonic_ms(), slowest = 0;
	for (int i = from; i < to; i++) {
		int64_t took = submit_one(c, url, auth, i);
		if (took > slowest)
			slowest = took;
		c->submitted++;
	}
	chaos_event(c,
		    "submitted jobs %d..%d over REST in %.1f s (slowest %.2f s; answers 503: "
		    "%ld, lost or other 5xx: %ld, each sent again)",
		    from + 1, to, (now_monotonic_ms() - start) / 1000.0, slowest / 1000.0,
		    c->submit_503 - n503, c->submit_lost - lost);
	free(auth);
	free(url);
}

/* ---- watching ---- */

/* The server's notices ("terminating connection due to immediate shutdown")
 * are expected here. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

long long chaos_count(struct chaos *c, const char *sql)
{
	if (c->db && PQstatus(c->db) != CONNECTION_OK) {
		PQfinish(c->db);
		c->db = NULL;
	}
	if (!c->db) {
		c->db = PQconnectdb(c->dsn);
		if (PQstatus(c->db) != CONNECTION_OK) {
			PQfinish(c->db);
			c->db = NULL;
			return -1;
		}
		PQsetNoticeProcessor(c->db, quiet, NULL);
	}
	PGresult *r = PQexec(c->db, sql);
	long long n = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (n < 0) { /* the server went away under us: reconnect next time */
		PQfinish(c->db);
		c->db = NULL;
	}
	return n;
}

static const char states_sql[] =
	"SELECT count(*) FILTER (WHERE status = 'COMPLETED') || ' ' ||"
	" count(*) FILTER (WHERE status = 'FAILED') || ' ' ||"
	" count(*) FILTER (WHERE status = 'IN_PROGRESS') || ' ' ||"
	" count(*) FILTER (WHERE status = 'RETRYING') || ' ' ||"
	" count(*) FILTER (WHERE status = 'PENDING') FROM provisioning_jobs";

struct states {
	long long completed, failed, running, retrying, pending;
};

/* 0, or -1 while the database cannot be reached. */
static int states(struct chaos *c, struct states *s)
{
	if (chaos_count(c, "SELECT 1") < 0)
		return -1;
	PGresult *r = PQexec(c->db, states_sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		 sscanf(PQgetvalue(r, 0, 0), "%lld %lld %lld %lld %lld", &s->completed, &s->failed,
			&s->running, &s->retrying, &s->pending) == 5;
	PQclear(r);
	return ok ? 0 : -1;
}

/* Dump what is not finished and fail. */
static void stuck(struct chaos *c, const char *what)
{
	char *rows =
		c->db ? tl_sqlf(c->db,
				"SELECT string_agg(format('%%s %%s attempt=%%s retries=%%s run_at=%%s lease=%%s "
				"locked_by=%%s error=%%s', id, status, attempt, retry_count, run_at, lease_until, "
				"locked_by, error_message), E'\\n') FROM (SELECT * FROM provisioning_jobs WHERE "
				"status NOT IN ('COMPLETED', 'FAILED') ORDER BY created_at LIMIT 10) j")
		      : xstrdup("(database unreachable)");
	fprintf(stderr, "jobs not finished (first 10):\n%s\n", rows);
	free(rows);
	chaos_fail(c, "%s", what);
}

/* Until `finished` jobs are (all: and nothing else is left), or until the
 * clock reaches `until` when that is set. */
static void wait_until(struct chaos *c, long long finished, int all, int64_t until)
{
	int64_t next_print = now_monotonic_ms();
	for (;;) {
		struct states s;
		int ok = states(c, &s) == 0;
		int64_t now = now_monotonic_ms();
		if (until ? now >= until
			  : ok && s.completed + s.failed >= finished &&
				    (!all || s.running + s.retrying + s.pending == 0))
			return;
		if (now >= next_print) {
			double at = (now - c->t0) / 1000.0;
			if (ok)
				printf("  [%s +%5.1fs] %lld/%d finished (%lld FAILED); %lld running, "
				       "%lld retrying, %lld pending\n",
				       c->name, at, s.completed + s.failed, c->submitted, s.failed,
				       s.running, s.retrying, s.pending);
			else
				printf("  [%s +%5.1fs] database unreachable\n", c->name, at);
			fflush(stdout);
			next_print = now + PROGRESS_EVERY_MS;
		}
		if (now > c->deadline) {
			char *what = xasprintf(
				"not drained within the time limit (%.0f s after the "
				"first submission; CHAOS_DRAIN_TIMEOUT_S)",
				(c->deadline - c->t0) / 1000.0);
			stuck(c, what);
		}
		usleep(200000);
	}
}

void chaos_wait_finished(struct chaos *c, long long n)
{
	wait_until(c, n, 0, 0);
}

void chaos_wait_drained(struct chaos *c)
{
	wait_until(c, c->submitted, 1, 0);
}

void chaos_watch(struct chaos *c, int64_t until)
{
	wait_until(c, 0, 0, until);
}

/* ---- checking ---- */

/* Jobs whose journal lacks a COMPLETED entry for a pipeline step. */
static const char missing_journal_sql[] =
	"SELECT count(DISTINCT j.id) FROM provisioning_jobs j"
	" CROSS JOIN unnest(ARRAY[" CHAOS_STEPS "]) AS s(step)"
	" WHERE j.status = 'COMPLETED' AND NOT EXISTS (SELECT 1 FROM provisioning_logs l"
	"  WHERE l.job_id = j.id AND l.step = s.step AND l.status = 'COMPLETED')";

/* Completed jobs whose location is not in ghl-sim under the client's name. */
static const char unknown_location_sql[] =
	"WITH sim AS (SELECT x->>'id' AS id, x->>'name' AS name"
	"  FROM jsonb_array_elements($1::jsonb->'locations') x)"
	" SELECT count(*) FROM provisioning_jobs j WHERE j.status = 'COMPLETED'"
	"  AND NOT EXISTS (SELECT 1 FROM sim WHERE sim.id = j.location_id"
	"  AND sim.name = j.client_data_json->>'name')";

static long long unknown_locations(struct chaos *c)
{
	char *url = xasprintf("%s/_sim/state", c->sim.base);
	char *state = NULL;
	long st = tl_http("GET", url, NULL, NULL, &state);
	ck_assert_msg(st == 200, "GET %s: %ld", url, st);
	const char *params[] = {state};
	PGresult *r = PQexecParams(c->db, unknown_location_sql, 1, NULL, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	free(state);
	free(url);
	return n;
}

static void print_failed(struct chaos *c)
{
	char *rows = tl_sqlf(
		c->db,
		"SELECT string_agg(format('  %%s retries=%%s %%s%%s', j.id, j.retry_count, "
		"j.error_message, (SELECT E'\\n    failed steps: ' || string_agg(l.step || ' (' || "
		"COALESCE(l.details_json->>'error', '?') || ')', '; ' ORDER BY l.timestamp) FROM "
		"provisioning_logs l WHERE l.job_id = j.id AND l.status = 'FAILED')), E'\\n') FROM "
		"(SELECT * FROM provisioning_jobs WHERE status = 'FAILED' ORDER BY created_at "
		"LIMIT 20) j");
	if (*rows)
		printf("  FAILED jobs (first 20):\n%s\n", rows);
	free(rows);
}

void chaos_verify(struct chaos *c, const char *title, int expect)
{
	if (chaos_count(c, "SELECT 1") < 0 || !c->db)
		chaos_fail(c, "database unreachable after the drain");
	PGconn *db = c->db;
	long long jobs = tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs");
	long long keys = tl_sqlf_n(db, "SELECT count(DISTINCT idempotency_key) FROM "
				       "provisioning_jobs");
	long long completed = tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs WHERE "
					    "status = 'COMPLETED'");
	long long failed = tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs WHERE status = "
					 "'FAILED'");
	long long locs = tl_sqlf_n(db, "SELECT count(DISTINCT location_id) FROM "
				       "provisioning_jobs WHERE status = 'COMPLETED'");
	long long no_loc = tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs WHERE status = "
					 "'COMPLETED' AND location_id IS NULL");
	long long thin = tl_sqlf_n(db, "%s", missing_journal_sql);
	long long unknown = unknown_locations(c);
	char *drain = tl_sqlf(db, "SELECT round(extract(epoch FROM max(finished_at) - "
				  "min(created_at))::numeric, 1) FROM provisioning_jobs");
	char *retries = tl_sqlf(db, "SELECT sum(retry_count) || ' retries in ' || count(*) "
				    "FILTER (WHERE retry_count > 0) || ' jobs (most: ' || "
				    "max(retry_count) || ')' FROM provisioning_jobs");
	char *reruns = tl_sqlf(db,
			       "SELECT count(*) FROM (SELECT 1 FROM provisioning_logs WHERE "
			       "status = 'COMPLETED' GROUP BY job_id, step HAVING count(*) > 1) x");
	long long created = hsim_stat(&c->sim, "locations_created");
	long long dups = hsim_stat(&c->sim, "duplicate_locations");
	long long errs = hsim_stat(&c->sim, "errors_injected");
	long long touts = hsim_stat(&c->sim, "timeouts_injected");

	printf("\n%s: %d jobs submitted, drained in %s s (first submission to last finish)\n",
	       title, expect, drain);
	printf("  jobs: %lld stored (%lld idempotency keys), %lld COMPLETED, %lld FAILED, "
	       "%lld other\n",
	       jobs, keys, completed, failed, jobs - completed - failed);
	printf("  locations: %lld distinct ids in completed jobs, %lld without one, %lld not in "
	       "ghl-sim under the client's name; ghl-sim created %lld, %lld duplicates\n",
	       locs, no_loc, unknown, created, dups);
	printf("  journal: %lld completed jobs lack a step's COMPLETED entry; %s step runs "
	       "journaled COMPLETED twice (re-run after a crash)\n",
	       thin, reruns);
	printf("  retries: %s; submissions sent again: %ld after a 503, %ld after a lost answer "
	       "or another 5xx (%ld had been stored already)\n",
	       retries, c->submit_503, c->submit_lost, c->submit_replayed);
	printf("  ghl-sim faults: %lld 5xx, %lld timeouts injected\n", errs, touts);
	for (int i = 0; i < c->nevents; i++)
		printf("  event %s\n", c->events[i]);
	print_failed(c);
	fflush(stdout);
	free(drain);
	free(retries);
	free(reruns);

	/* the figures above say what went wrong; the agents' logs are in c->dir */
	ck_assert_msg(jobs == expect && keys == expect,
		      "%s: %lld jobs stored with %lld keys, %d "
		      "submitted",
		      c->name, jobs, keys, expect);
	ck_assert_msg(!failed && completed == expect,
		      "%s: %lld of %d jobs COMPLETED, %lld "
		      "FAILED (logs: %s)",
		      c->name, completed, expect, failed, c->dir);
	ck_assert_msg(locs == expect && !no_loc && !unknown,
		      "%s: location ids: %lld distinct, "
		      "%lld missing, %lld unknown to ghl-sim",
		      c->name, locs, no_loc, unknown);
	ck_assert_msg(!dups && created == expect,
		      "%s: ghl-sim: %lld duplicate locations, %lld "
		      "created for %d jobs",
		      c->name, dups, created, expect);
	ck_assert_msg(!thin, "%s: %lld completed jobs have an incomplete journal", c->name, thin);
}
