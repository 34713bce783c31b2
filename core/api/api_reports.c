/* api_reports.c — GET /api/v1/reports/success-rates: jobs, completions,
 * failures and the success rate by agency or by niche over a period; GET
 * /api/v1/reports/overview: the dashboard's landing page in one answer (jobs
 * per state and per day, success rates, time to provision, failing steps, the
 * GHL budget this process sees per agency). Both read the days before today
 * from job_report_days (brought up to date first when its last refresh is
 * 30 s old) and today from the jobs (an index-only scan, migration
 * 20261208_000401), so a job that just ended counts at once, an older one
 * that changed within 30 s, and neither scans the period's jobs. Scoped like
 * every listing: an AGENCY_ADMIN or an API key sees its agencies only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "ghl_client.h"
#include "http.h"
#include "json_builder.h"

/* The time of the answer, as the reports' `refreshed_at` / `generated_at`. */
#define API_SQL_NOW_UTC "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* Brings job_report_days up to date before a report: the days before today
 * recomputed where jobs changed, at most every 30 s and skipped while
 * another request does it (migration 20261208_000402). */
#define REPORT_DAYS_REFRESH "SELECT job_report_days_refresh('30 seconds')"
/* total … cancelled of the groups (n jobs each) grouped again. */
#define RATE_COUNTS                                                                      \
	"sum(n)::bigint AS total,"                                                       \
	" COALESCE(sum(n) FILTER (WHERE status = 'COMPLETED'), 0)::bigint AS completed," \
	" COALESCE(sum(n) FILTER (WHERE status = 'FAILED'), 0)::bigint AS failed,"       \
	" COALESCE(sum(n) FILTER (WHERE status = 'CANCELLED'), 0)::bigint AS cancelled"
/* success_rate of a row with completed and failed */
#define RATE_OF(t)                                                                         \
	"CASE WHEN " t ".completed + " t ".failed > 0 THEN round(" t ".completed::numeric" \
	" / (" t ".completed + " t ".failed), 4) END"

/* " AND <col> = ANY($s::uuid[]) AND <col> = $a::uuid" for the filters present */
static void scope_filter(struct buf *sql, const char *col, int scope_n, int agency_n)
{
	if (scope_n)
		buf_printf(sql, " AND %s = ANY($%d::uuid[])", col, scope_n);
	if (agency_n)
		buf_printf(sql, " AND %s = $%d::uuid", col, agency_n);
}

/* The caller's scope (and the agency asked for) as parameters: one agency
 * (asked for, an API key, most AGENCY_ADMINs) as an equality, so the
 * (agency_id, day / created_at) indexes serve the period; several as an
 * array; none (ADMIN, SUPPORT) as no filter. scope is api_scope_array's. */
static void scope_params(const struct api_req *r, const char *agency, const char *scope,
			 const char **params, int *n, int *scope_n, int *agency_n)
{
	*scope_n = *agency_n = 0;
	if (agency) {
		params[(*n)++] = agency;
		*agency_n = *n;
	}
	if (!agency && scope && r->who.nagencies == 1) {
		params[(*n)++] = r->who.agency_ids[0];
		*agency_n = *n;
	} else if (scope) {
		params[(*n)++] = scope;
		*scope_n = *n;
	}
}

static const char *const report_query[] = {"group_by", "days", NULL};

static void report_done(struct api_req *r, PGresult *res)
{
	/* one row: the JSON document built by the query */
	api_reply_json(r, 200, PQntuples(res) ? PQgetvalue(res, 0, 0) : "{\"items\":[]}");
}

/* The success rates, once job_report_days is up to date (the parameters
 * were checked by success_rates()). Jobs created since midnight $1 days ago:
 * the days before today from job_report_days, today from the jobs (an
 * index-only scan), grouped by agency or by the snapshot's niche. */
static void rates_report(struct api_req *r, PGresult *res)
{
	(void)res;
	const char *group = api_query_param(r, "group_by");
	int niche = group && !strcmp(group, "niche");
	long long days;
	api_query_int(r, "days", 1, 3660, 30, &days);
	char d[16];
	snprintf(d, sizeof(d), "%lld", days);
	char *scope = api_scope_array(&r->who);
	const char *params[3] = {d};
	int n = 1, scope_n, agency_n;
	scope_params(r, NULL, scope, params, &n, &scope_n, &agency_n);
	struct buf sql;
	buf_init(&sql);
	buf_puts(
		&sql,
		"WITH g AS MATERIALIZED (SELECT r.agency_id, r.snapshot_id, r.status,"
		"  sum(r.jobs) AS n FROM job_report_days r"
		"  WHERE r.day >= LOCALTIMESTAMP::date - $1::int AND r.day < LOCALTIMESTAMP::date");
	scope_filter(&sql, "r.agency_id", scope_n, agency_n);
	buf_puts(&sql,
		 "  GROUP BY 1, 2, 3 UNION ALL"
		 "  SELECT j.agency_id, j.snapshot_id, j.status, count(*) FROM provisioning_jobs j"
		 "  WHERE j.created_at >= LOCALTIMESTAMP::date::timestamp");
	scope_filter(&sql, "j.agency_id", scope_n, agency_n);
	buf_puts(&sql, "  GROUP BY 1, 2, 3),");
	/* only the grouping changes: both texts are constants */
	buf_puts(&sql,
		 niche ? " x AS (SELECT COALESCE(s.niche, '') AS niche, " RATE_COUNTS
			 "  FROM g LEFT JOIN snapshots s ON s.id = g.snapshot_id GROUP BY 1)"
			 " SELECT json_build_object('group_by', 'niche', 'days', $1::int,"
			 " 'refreshed_at', " API_SQL_NOW_UTC ","
			 " 'items', COALESCE(json_agg(json_build_object('niche', x.niche,"
			 "  'total', x.total, 'completed', x.completed, 'failed', x.failed,"
			 "  'cancelled', x.cancelled, 'success_rate', " RATE_OF(
				 "x") ") ORDER BY x.total DESC, x.niche), '[]'::json))::text FROM x"
		       : " x AS (SELECT agency_id, " RATE_COUNTS " FROM g GROUP BY 1)"
			 " SELECT json_build_object('group_by', 'agency', 'days', $1::int,"
			 " 'refreshed_at', " API_SQL_NOW_UTC ","
			 " 'items', COALESCE(json_agg(json_build_object('agency_id', x.agency_id,"
			 "  'agency_name', a.name, 'total', x.total, 'completed', x.completed,"
			 "  'failed', x.failed, 'cancelled', x.cancelled, 'success_rate', " RATE_OF(
				 "x") ") ORDER BY x.total DESC, a.name), '[]'::json))::text"
				      " FROM x JOIN agencies a ON a.id = x.agency_id");
	api_query(r, buf_cstr(&sql), n, params, report_done);
	buf_clear(&sql);
	free(scope);
}

static void success_rates(struct api_req *r)
{
	const char *group = api_query_param(r, "group_by");
	if (group && strcmp(group, "agency") && strcmp(group, "niche"))
		api_query_problem(r, "group_by", "must be agency or niche");
	long long days;
	api_query_int(r, "days", 1, 3660, 30, &days);
	if (api_query_ok(r))
		return;
	/* the days before today, recomputed where jobs changed (at most every
	 * 30 s, and skipped while another request does it) */
	api_query(r, REPORT_DAYS_REFRESH, 0, NULL, rates_report);
}

static const struct api_endpoint ep_rates = {.allow = API_ALLOW_ANY, .query = report_query};

static void h_rates(struct http_ctx *c)
{
	api_handle(c, &ep_rates, success_rates);
}

/* ---- GET /api/v1/reports/overview ---------------------------------------- */

static const char *const overview_query[] = {"agency_id", "days", NULL};

/* Sums of n per job state, as the columns pending … cancelled. */
#define BY_STATE(n)                                                                              \
	"COALESCE(sum(" n ") FILTER (WHERE status = 'PENDING'), 0)::bigint AS pending,"          \
	" COALESCE(sum(" n ") FILTER (WHERE status = 'IN_PROGRESS'), 0)::bigint AS in_progress," \
	" COALESCE(sum(" n ") FILTER (WHERE status = 'RETRYING'), 0)::bigint AS retrying,"       \
	" COALESCE(sum(" n ") FILTER (WHERE status = 'COMPLETED'), 0)::bigint AS completed,"     \
	" COALESCE(sum(" n ") FILTER (WHERE status = 'FAILED'), 0)::bigint AS failed,"           \
	" COALESCE(sum(" n ") FILTER (WHERE status = 'CANCELLED'), 0)::bigint AS cancelled"

/* The budgets the GHL client holds, as a JSON array for the query. */
static void budget_row(void *arg, const struct ghl_budget *b)
{
	struct json_builder *jb = arg;
	json_builder_object(jb);
	json_builder_key(jb, "resource");
	json_builder_string(jb, b->resource);
#define NUM(k, v)                                  \
	do {                                       \
		json_builder_key(jb, k);           \
		if ((v) >= 0)                      \
			json_builder_int(jb, (v)); \
		else                               \
			json_builder_null(jb);     \
	} while (0)
	NUM("max", b->max);
	NUM("remaining", b->remaining);
	NUM("interval_ms", b->interval_ms);
	NUM("daily_max", b->daily_max);
	NUM("daily_remaining", b->daily_remaining);
	NUM("blocked_ms", b->blocked_ms);
	NUM("in_flight", b->in_flight);
	NUM("queued", b->queued);
#undef NUM
	json_builder_end(jb);
}

/* The report, once job_report_days is up to date (the parameters were
 * checked by overview()). */
static void overview_report(struct api_req *r, PGresult *res)
{
	(void)res;
	const char *agency = api_query_param(r, "agency_id");
	long long days;
	api_query_int(r, "days", 1, 90, 30, &days);
	char d[16];
	snprintf(d, sizeof(d), "%lld", days);
	char *scope = api_scope_array(&r->who);
	struct json_builder jb;
	json_builder_init(&jb);
	json_builder_array(&jb);
	ghl_client_budgets(r->app->ghl, budget_row, &jb);
	json_builder_end(&jb);
	const char *budgets = json_builder_text(&jb, NULL);
	const char *params[5] = {d, budgets ? budgets : "[]"};
	int n = 2, agency_n, scope_n;
	scope_params(r, agency, scope, params, &n, &scope_n, &agency_n);
	/* The filters are fixed fragments for what is present (values are
	 * parameters): no `$n IS NULL OR …` to hide an index from the planner. */
	struct buf sql;
	buf_init(&sql);
	buf_puts(&sql,
		 "WITH since AS (SELECT (LOCALTIMESTAMP::date - ($1::int - 1))::timestamp AS t),"
		 /* the period's jobs grouped so small that everything else is
		 * computed from the groups: the days before today from
		 * job_report_days (kept up to date by report_refresh), today from
		 * the jobs (an index-only scan); a completed job's time to
		 * provision goes into its histogram bucket */
		 " g AS MATERIALIZED (SELECT r.day, r.agency_id, r.snapshot_id, r.status,"
		 "  r.secs_bucket AS b, sum(r.jobs) AS n FROM job_report_days r"
		 "  WHERE r.day >= (SELECT t FROM since)::date AND r.day < LOCALTIMESTAMP::date");
	scope_filter(&sql, "r.agency_id", scope_n, agency_n);
	buf_puts(&sql,
		 "  GROUP BY 1, 2, 3, 4, 5 UNION ALL"
		 "  SELECT j.created_at::date, j.agency_id, j.snapshot_id, j.status,"
		 "  CASE WHEN j.status = 'COMPLETED' AND j.finished_at IS NOT NULL THEN"
		 "  job_secs_bucket(date_part('epoch', j.finished_at - j.created_at)) END, count(*)"
		 "  FROM provisioning_jobs j"
		 "  WHERE j.created_at >= GREATEST((SELECT t FROM since), LOCALTIMESTAMP::date)");
	scope_filter(&sql, "j.agency_id", scope_n, agency_n);
	buf_puts(
		&sql,
		"  GROUP BY 1, 2, 3, 4, 5),"
		" st AS (SELECT status, sum(n) AS n FROM g GROUP BY status),"
		" pd AS (SELECT day, status, sum(n) AS n FROM g GROUP BY 1, 2),"
		" dl AS (SELECT d::date AS day FROM since,"
		"  generate_series(since.t, LOCALTIMESTAMP::date, interval '1 day') d),"
		" pdc AS (SELECT dl.day, " BY_STATE(
			"pd.n") " FROM dl LEFT JOIN pd ON pd.day = dl.day"
				"  GROUP BY dl.day),"
				" ag AS (SELECT agency_id, " RATE_COUNTS
				" FROM g GROUP BY agency_id),"
				" sn AS (SELECT snapshot_id, " RATE_COUNTS
				" FROM g GROUP BY snapshot_id),"
				" ni AS (SELECT COALESCE(s.niche, '') AS niche, sum(total)::bigint AS total,"
				"  sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,"
				"  sum(cancelled)::bigint AS cancelled"
				"  FROM sn LEFT JOIN snapshots s ON s.id = sn.snapshot_id GROUP BY 1),"
				" hc AS (SELECT b, sum(sum(n)) OVER (ORDER BY b) AS cum, sum(sum(n)) OVER () AS tot"
				"  FROM g WHERE b IS NOT NULL GROUP BY b),"
				" pt AS (SELECT COALESCE(max(tot), 0)::bigint AS n,"
				"  job_bucket_secs(min(b) FILTER (WHERE cum >= ceil(0.5 * tot))) AS median,"
				"  job_bucket_secs(min(b) FILTER (WHERE cum >= ceil(0.95 * tot))) AS p95 FROM hc),"
				" fs AS (SELECT l.step, count(*) AS failures, count(DISTINCT l.job_id) AS jobs"
				"  FROM provisioning_logs l");
	if (scope_n || agency_n)
		buf_puts(&sql, " JOIN provisioning_jobs j ON j.id = l.job_id");
	buf_puts(&sql, " WHERE l.status = 'FAILED' AND l.timestamp >= (SELECT t FROM since)");
	scope_filter(&sql, "j.agency_id", scope_n, agency_n);
	buf_puts(
		&sql,
		"  GROUP BY l.step ORDER BY failures DESC, l.step LIMIT 10),"
		" bu AS (SELECT a.id, a.name, b.* FROM agencies a LEFT JOIN jsonb_to_recordset($2::jsonb)"
		"  AS b(resource text, max bigint, remaining bigint, interval_ms bigint,"
		"  daily_max bigint, daily_remaining bigint, blocked_ms bigint, in_flight bigint,"
		"  queued bigint) ON b.resource = a.ghl_agency_id WHERE a.deleted_at IS NULL");
	scope_filter(&sql, "a.id", scope_n, agency_n);
	buf_puts(
		&sql,
		")"
		" SELECT json_build_object('days', $1::int, 'generated_at', " API_SQL_NOW_UTC ","
		" 'states', (SELECT row_to_json(x) FROM (SELECT " BY_STATE(
			"st.n") " FROM st) x),"
				" 'per_day', (SELECT json_agg(pdc ORDER BY pdc.day) FROM pdc),"
				" 'agencies', (SELECT COALESCE(json_agg(json_build_object('agency_id', ag.agency_id,"
				"  'agency_name', a.name, 'total', ag.total, 'completed', ag.completed,"
				"  'failed', ag.failed, 'cancelled', ag.cancelled, 'success_rate', " RATE_OF(
					"ag") ") ORDER BY ag.total DESC, a.name), '[]') FROM ag JOIN agencies a ON a.id = ag.agency_id),"
					      " 'niches', (SELECT COALESCE(json_agg(json_build_object('niche', ni.niche,"
					      "  'total', ni.total, 'completed', ni.completed, 'failed', ni.failed,"
					      "  'cancelled', ni.cancelled, 'success_rate', " RATE_OF(
						      "ni") ") ORDER BY ni.total DESC, ni.niche), '[]') FROM ni),"
							    " 'provision_seconds', (SELECT json_build_object('completed', n,"
							    "  'median', round(median::numeric, 1), 'p95', round(p95::numeric, 1)) FROM pt),"
							    " 'failing_steps', (SELECT COALESCE(json_agg(json_build_object('step', step,"
							    "  'failures', failures, 'jobs', jobs) ORDER BY failures DESC, step), '[]') FROM fs),"
							    " 'ghl_budget', (SELECT COALESCE(json_agg(json_build_object('agency_id', id,"
							    "  'agency_name', name, 'max', max, 'remaining', remaining, 'interval_ms', interval_ms,"
							    "  'daily_max', daily_max, 'daily_remaining', daily_remaining,"
							    "  'blocked_ms', COALESCE(blocked_ms, 0), 'in_flight', COALESCE(in_flight, 0),"
							    "  'queued', COALESCE(queued, 0)) ORDER BY name, id), '[]') FROM bu))::text");
	api_query(r, sql.data, n, params, report_done);
	buf_clear(&sql);
	json_builder_clear(&jb);
	free(scope);
}

static void overview(struct api_req *r)
{
	const char *agency = api_query_param(r, "agency_id");
	if (agency && !api_is_uuid(agency))
		api_query_problem(r, "agency_id", "must be an agency's id (a UUID) or left out");
	long long days;
	api_query_int(r, "days", 1, 90, 30, &days);
	if (api_query_ok(r))
		return;
	api_query(r, REPORT_DAYS_REFRESH, 0, NULL, overview_report);
}

static const struct api_endpoint ep_overview = {.allow = API_ALLOW_ANY, .query = overview_query};

static void h_overview(struct http_ctx *c)
{
	api_handle(c, &ep_overview, overview);
}

static const struct http_route report_routes[] = {
	{"GET", "/api/v1/reports/success-rates", h_rates},
	{"GET", "/api/v1/reports/overview", h_overview},
};

const struct route_table api_reports_route_table = {
	report_routes, sizeof(report_routes) / sizeof(report_routes[0])};
