/* api_drift.c — GET /api/v1/reports/drift: what reconciliation
 * (core/engine/reconcile.c) and GHL's webhooks found drifted from the
 * COMPLETED jobs' work, newest first, cursor-paged. Scoped like jobs: an
 * AGENCY_ADMIN or an API key sees its agencies only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "http.h"

static const char *const drift_query[] = {"agency_id", "kind", "open", "limit", "cursor", NULL};
static const char *const drift_kinds[] = {"location_missing", "snapshot_failed", "user_missing",
					  "app_uninstalled", NULL};

/* clang-format off */
#define DRIFT_JSON                                                                            \
	"json_build_object('id', d.id, 'job_id', d.job_id, 'agency_id', d.agency_id,"         \
	" 'location_id', j.location_id, 'kind', d.kind, 'detail', d.detail,"                  \
	" 'first_seen', " API_SQL_ISO("d.first_seen") ","                                     \
	" 'last_seen', " API_SQL_ISO("d.last_seen") ","                                       \
	" 'resolved_at', " API_SQL_ISO("d.resolved_at") ")::text"
/* clang-format on */

static void drift_done(struct api_req *r, PGresult *res)
{
	api_reply_page(r, res, 0, 1, 2, *(int *)r->data);
}

static void drift_list(struct api_req *r)
{
	const char *agency = api_query_param(r, "agency_id");
	const char *kind = api_query_param(r, "kind");
	int open = -1;
	if (agency && !api_is_uuid(agency))
		api_query_problem(r, "agency_id", "must be a UUID");
	if (kind) {
		const char *const *k = drift_kinds;
		while (*k && strcmp(*k, kind))
			k++;
		if (!*k)
			api_query_problem(r, "kind",
					  "must be location_missing, snapshot_failed, "
					  "user_missing or app_uninstalled");
	}
	api_query_bool(r, "open", &open);
	struct api_page pg;
	if (api_page_parse(r, &pg))
		return;
	int *limit_n = xmalloc(sizeof(int));
	*limit_n = pg.limit;
	r->data = limit_n;
	r->data_free = free;
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	char *scope = api_scope_array(&r->who);
	/* open defaults to true: the drift still to fix */
	const char *open_s = open == 0 ? "false" : "true";
	const char *params[] = {scope, agency, kind, open_s, pg.after_ts, pg.after_id, limit};
	api_query(
		r,
		"SELECT " DRIFT_JSON ", " API_SQL_CURSOR_TS(
			"d.first_seen") ", d.id"
					" FROM job_drift d JOIN provisioning_jobs j ON j.id = d.job_id"
					" WHERE ($1::uuid[] IS NULL OR d.agency_id = ANY($1::uuid[]))"
					" AND ($2::uuid IS NULL OR d.agency_id = $2::uuid)"
					" AND ($3::text IS NULL OR d.kind = $3::text)"
					" AND ((d.resolved_at IS NULL) = $4::boolean)"
					" AND ($5::timestamp IS NULL OR (d.first_seen, d.id) < ($5::timestamp, $6::uuid))"
					" ORDER BY d.first_seen DESC, d.id DESC LIMIT $7::int",
		7, params, drift_done);
	free(scope);
	api_page_clear(&pg);
}

static const struct api_endpoint ep_drift = {.allow = API_ALLOW_ANY, .query = drift_query};

static void h_drift(struct http_ctx *c)
{
	api_handle(c, &ep_drift, drift_list);
}

static const struct http_route drift_routes[] = {
	{"GET", "/api/v1/reports/drift", h_drift},
};

const struct route_table api_drift_route_table = {drift_routes,
						  sizeof(drift_routes) / sizeof(drift_routes[0])};
