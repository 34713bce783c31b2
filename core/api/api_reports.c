/* api_reports.c — GET /api/v1/reports/success-rates: jobs, completions,
 * failures and the success rate by agency or by niche over a period, from
 * the job_success_rates materialized view (refreshed every archive_interval;
 * the answer says when). Scoped like every listing: an AGENCY_ADMIN or an
 * API key sees its agencies only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "http.h"

static const char *const report_query[] = {"group_by", "days", NULL};

static void report_done(struct api_req *r, PGresult *res)
{
	/* one row: the JSON document built by the query */
	api_reply_json(r, 200, PQntuples(res) ? PQgetvalue(res, 0, 0) : "{\"items\":[]}");
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
	char d[16];
	snprintf(d, sizeof(d), "%lld", days);
	char *scope = api_scope_array(&r->who);
	const char *params[2] = {d, scope};
	/* only the grouping column changes: both texts are constants */
	const char *sql =
		group && !strcmp(group, "niche")
			? "SELECT json_build_object('group_by', 'niche', 'days', $1::int,"
			  " 'refreshed_at', (SELECT to_char(refreshed_at AT TIME ZONE 'UTC',"
			  "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM report_refreshes"
			  "  WHERE view_name = 'job_success_rates'),"
			  " 'items', COALESCE(json_agg(json_build_object('niche', niche, 'total', total,"
			  "  'completed', completed, 'failed', failed, 'cancelled', cancelled, 'success_rate',"
			  "  CASE WHEN completed + failed > 0 THEN round(completed::numeric /"
			  "  (completed + failed), 4) END) ORDER BY total DESC, niche), '[]'::json))::text"
			  " FROM (SELECT niche, sum(total)::bigint AS total, sum(completed)::bigint AS completed,"
			  "  sum(failed)::bigint AS failed, sum(cancelled)::bigint AS cancelled"
			  "  FROM job_success_rates"
			  "  WHERE day >= current_date - $1::int"
			  "  AND ($2::uuid[] IS NULL OR agency_id = ANY($2::uuid[])) GROUP BY niche) g"
			: "SELECT json_build_object('group_by', 'agency', 'days', $1::int,"
			  " 'refreshed_at', (SELECT to_char(refreshed_at AT TIME ZONE 'UTC',"
			  "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM report_refreshes"
			  "  WHERE view_name = 'job_success_rates'),"
			  " 'items', COALESCE(json_agg(json_build_object('agency_id', g.agency_id,"
			  "  'agency_name', a.name, 'total', total, 'completed', completed, 'failed', failed,"
			  "  'cancelled', cancelled,"
			  "  'success_rate', CASE WHEN completed + failed > 0 THEN round(completed::numeric /"
			  "  (completed + failed), 4) END) ORDER BY total DESC, a.name), '[]'::json))::text"
			  " FROM (SELECT agency_id, sum(total)::bigint AS total,"
			  "  sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,"
			  "  sum(cancelled)::bigint AS cancelled"
			  "  FROM job_success_rates WHERE day >= current_date - $1::int"
			  "  AND ($2::uuid[] IS NULL OR agency_id = ANY($2::uuid[])) GROUP BY agency_id) g"
			  " JOIN agencies a ON a.id = g.agency_id";
	api_query(r, sql, 2, params, report_done);
	free(scope);
}

static const struct api_endpoint ep_rates = {.allow = API_ALLOW_ANY, .query = report_query};

static void h_rates(struct http_ctx *c)
{
	api_handle(c, &ep_rates, success_rates);
}

static const struct http_route report_routes[] = {
	{"GET", "/api/v1/reports/success-rates", h_rates},
};

const struct route_table api_reports_route_table = {
	report_routes, sizeof(report_routes) / sizeof(report_routes[0])};
