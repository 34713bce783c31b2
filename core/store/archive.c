/* archive.c — see archive.h. */
#include "archive.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "db.h"
#include "log.h"

#define ARCHIVE_BATCH 1000

const char archive_batch_sql[] =
	"WITH due AS ("
	" SELECT id FROM provisioning_jobs"
	" WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')"
	"  AND finished_at < LOCALTIMESTAMP - $1::bigint * interval '1 millisecond'"
	" ORDER BY finished_at LIMIT $2::int FOR UPDATE SKIP LOCKED),"
	" logs AS (INSERT INTO provisioning_logs_archive"
	"  SELECT l.* FROM provisioning_logs l JOIN due ON due.id = l.job_id RETURNING 1),"
	" reqs AS (INSERT INTO job_requests_archive"
	"  SELECT q.* FROM job_requests q JOIN due ON due.id = q.job_id RETURNING 1),"
	" jobs AS (INSERT INTO provisioning_jobs_archive"
	"  SELECT j.* FROM provisioning_jobs j JOIN due ON due.id = j.id RETURNING 1),"
	/* deleting the job deletes its live logs and requests (ON DELETE CASCADE) */
	" gone AS (DELETE FROM provisioning_jobs j USING due WHERE j.id = due.id RETURNING 1)"
	" SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM logs),"
	"  (SELECT count(*) FROM gone)";

const char archive_count_sql[] =
	"SELECT count(*), COALESCE(sum((SELECT count(*) FROM provisioning_logs l"
	"  WHERE l.job_id = j.id)), 0)"
	" FROM provisioning_jobs j WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')"
	" AND finished_at < LOCALTIMESTAMP - $1::bigint * interval '1 millisecond'";

static long long col(PGresult *r, int c)
{
	long long v = 0;
	str_to_ll(PQgetvalue(r, 0, c), 0, 1LL << 62, &v);
	return v;
}

int archive_run_blocking(PGconn *conn, long long older_than_ms, int batch, int dry_run,
			 long long *jobs, long long *logs, struct err *e)
{
	char age[32], n[16];
	snprintf(age, sizeof(age), "%lld", older_than_ms);
	snprintf(n, sizeof(n), "%d", batch > 0 ? batch : ARCHIVE_BATCH);
	*jobs = *logs = 0;
	if (dry_run) {
		const char *p[1] = {age};
		PGresult *r = db_query(conn, archive_count_sql, 1, p, e);
		if (!r)
			return -1;
		*jobs = col(r, 0);
		*logs = col(r, 1);
		PQclear(r);
		return 0;
	}
	for (;;) {
		const char *p[2] = {age, n};
		PGresult *r = db_query(conn, archive_batch_sql, 2, p, e);
		if (!r)
			return -1;
		long long moved = col(r, 0);
		*jobs += moved;
		*logs += col(r, 1);
		PQclear(r);
		if (moved < (batch > 0 ? batch : ARCHIVE_BATCH))
			return 0;
	}
}

/* ---- the daemon's periodic run: archive what is due ------------------------
 * (The reports read job_report_days, brought up to date by the report
 * requests themselves: nothing to refresh here. The job_success_rates view
 * stays in the schema, no longer refreshed nor read.) */

struct archiver {
	struct app *app;
	struct event *timer;
	int running;
	long long jobs, logs;
};

static void batch_done(void *arg, PGresult *res, const struct err *e);

static void run_batch(struct archiver *a)
{
	char age[32], n[16];
	snprintf(age, sizeof(age), "%lld", a->app->cfg->archive_after_ms);
	snprintf(n, sizeof(n), "%d", ARCHIVE_BATCH);
	const char *p[2] = {age, n};
	db_pool_query(a->app->db, archive_batch_sql, 2, p, batch_done, a);
}

static void batch_done(void *arg, PGresult *res, const struct err *e)
{
	struct archiver *a = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (!a->app->stopping)
			log_warn("archiving failed; trying again at the next interval", "error",
				 db_why(res, e), NULL);
		a->running = 0;
		return;
	}
	long long moved = col(res, 0);
	a->jobs += moved;
	a->logs += col(res, 1);
	if (moved == ARCHIVE_BATCH && !a->app->stopping) {
		run_batch(a); /* more are due: the next batch, from the loop */
		return;
	}
	if (a->jobs) {
		char j[24], l[24];
		snprintf(j, sizeof(j), "%lld", a->jobs);
		snprintf(l, sizeof(l), "%lld", a->logs);
		log_info("archived finished jobs", "jobs", j, "log_rows", l, NULL);
	}
	a->running = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct archiver *a = arg;
	if (a->running || a->app->stopping || !db_pool_is_up(a->app->db) ||
	    a->app->cfg->archive_after_ms <= 0)
		return;
	a->running = 1;
	a->jobs = a->logs = 0;
	run_batch(a);
}

struct archiver *archiver_start(struct app *app)
{
	const struct config *cfg = app->cfg;
	if (cfg->archive_interval_ms <= 0)
		return NULL;
	struct archiver *a = xcalloc(1, sizeof(*a));
	a->app = app;
	a->timer = event_new(app->base, -1, EV_PERSIST, on_timer, a);
	long long ms = cfg->archive_interval_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	event_add(a->timer, &tv);
	return a;
}

struct archiver *archiver_free(struct archiver *a)
{
	if (!a)
		return NULL;
	event_free(a->timer);
	free(a);
	return NULL;
}
