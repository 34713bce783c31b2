/* api_batches.c — GET /api/v1/agencies/{id}/batches and
 * /batches/{batch_id}: the uploads of an agency (POST …/jobs/batch, JSON or
 * CSV), each with its jobs counted per state. The batch row is written by
 * that upload (api_jobs.c); completed_at and the batch.completed event come
 * from the sweep in core/engine/event_delivery.c.
 *
 * Access: every role, within its agencies (the path's agency). */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "http.h"

/* One batch as JSON, from job_batches `b`: progress has every job state
 * (0 when none), finished the jobs COMPLETED, FAILED or CANCELLED. */
/* clang-format off */
#define BATCH_JSON                                                                            \
	"json_build_object('id', b.id, 'agency_id', b.agency_id, 'source', b.source,"          \
	" 'filename', b.filename, 'total', b.total, 'created_by', b.created_by,"               \
	" 'api_key_id', b.api_key_id, 'created_at', " API_SQL_ISO("b.created_at") ","          \
	" 'completed_at', " API_SQL_ISO("b.completed_at") ","                                  \
	" 'progress', pr.by_state, 'finished', pr.finished)::text"
#define BATCH_FROM                                                                            \
	" FROM job_batches b, LATERAL (SELECT json_object_agg(s::text, COALESCE(c.n, 0)"       \
	"  ORDER BY s) AS by_state, COALESCE(sum(c.n) FILTER (WHERE s IN ('COMPLETED',"         \
	"  'FAILED', 'CANCELLED')), 0) AS finished"                                            \
	"  FROM unnest(enum_range(NULL::provisioning_job_status)) s"                          \
	"  LEFT JOIN (SELECT status, count(*) AS n FROM provisioning_jobs"                    \
	"   WHERE batch_id = b.id GROUP BY status) c ON c.status = s) pr"
/* clang-format on */

static const char *const page_query[] = {"limit", "cursor", NULL};

static void page_done(struct api_req *r, PGresult *res)
{
	api_reply_page(r, res, 0, 1, 2, *(int *)r->data);
}

static void batches_list(struct api_req *r)
{
	struct api_page pg;
	if (api_page_parse(r, &pg))
		return;
	int *limit = xmalloc(sizeof(int));
	*limit = pg.limit;
	r->data = limit;
	r->data_free = free;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", pg.limit + 1);
	const char *params[] = {api_param(r, 0), pg.after_ts, pg.after_id, lim};
	api_query(
		r,
		"SELECT " BATCH_JSON ", " API_SQL_CURSOR_TS(
			"b.created_at") ", b.id" BATCH_FROM
					" WHERE b.agency_id = $1::uuid AND ($2::timestamp IS NULL"
					"  OR (b.created_at, b.id) < ($2::timestamp::timestamptz, $3::uuid))"
					" ORDER BY b.created_at DESC, b.id DESC LIMIT $4::int",
		4, params, page_done);
	api_page_clear(&pg);
}

static void batch_done(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "batch");
		return;
	}
	api_reply_json(r, 200, PQgetvalue(res, 0, 0));
}

static void batches_get(struct api_req *r)
{
	const char *params[] = {api_param(r, 0), api_param(r, 1)};
	api_query(r,
		  "SELECT " BATCH_JSON BATCH_FROM
		  " WHERE b.id = $2::uuid AND b.agency_id = $1::uuid",
		  2, params, batch_done);
}

static const struct api_endpoint ep_list = {
	.allow = API_ALLOW_ANY, .agency_scoped = 1, .query = page_query};
static const struct api_endpoint ep_get = {.allow = API_ALLOW_ANY, .agency_scoped = 1};

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, batches_list);
}

static void h_get(struct http_ctx *c)
{
	api_handle(c, &ep_get, batches_get);
}

static const struct http_route batch_routes[] = {
	{"GET", "/api/v1/agencies/{id}/batches", h_list},
	{"GET", "/api/v1/agencies/{id}/batches/{batch_id}", h_get},
};

const struct route_table api_batch_route_table = {batch_routes,
						  sizeof(batch_routes) / sizeof(batch_routes[0])};
