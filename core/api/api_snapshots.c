/* api_snapshots.c — /api/v1 snapshots: list an agency's snapshots (niche,
 * active, q filters, pagination), sync them from GHL (GET /snapshots/ with the
 * agency's token; upsert on (agency_id, ghl_snapshot_id), deactivate the ones
 * GHL no longer lists), and update is_active / niche / description.
 *
 * Access: reading as for the agency (API keys: their agency); sync and update
 * ADMIN and the agency's AGENCY_ADMIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agency_tokens.h"
#include "api.h"
#include "app.h"
#include "ghl_client.h"
#include "http.h"
#include "json.h"
#include "log.h"

/* clang-format off */
#define SNAPSHOT_JSON                                                                         \
	"json_build_object('id', s.id, 'agency_id', s.agency_id,"                              \
	" 'ghl_snapshot_id', s.ghl_snapshot_id, 'name', s.name, 'niche', s.niche,"             \
	" 'description', s.description, 'is_active', s.is_active,"                             \
	" 'created_at', " API_SQL_ISO("s.created_at") ","                                      \
	" 'updated_at', " API_SQL_ISO("s.updated_at") ")::text"
/* clang-format on */

/* ---- GET /agencies/{id}/snapshots ----------------------------------------- */

static const char *const list_query[] = {"niche", "active", "q", "limit", "cursor", NULL};

static void list_done(struct api_req *r, PGresult *res)
{
	int n = PQntuples(res);
	if (n == 0) {
		api_reply_not_found(r, "agency");
		return;
	}
	if (n == 1 && PQgetisnull(res, 0, 0)) {
		api_reply_json(r, 200, "{\"items\":[],\"next_cursor\":null}");
		return;
	}
	api_reply_page(r, res, 0, 1, 2, *(int *)r->data);
}

static void snapshots_list(struct api_req *r)
{
	int active;
	api_query_bool(r, "active", &active);
	struct api_page pg;
	if (api_page_parse(r, &pg)) /* replies with the problem of active, too */
		return;
	const char *niche = api_query_param(r, "niche");
	const char *q = api_query_param(r, "q");
	char *like = q ? api_like_contains(q) : NULL;
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	int *lim = xmalloc(sizeof(int));
	*lim = pg.limit;
	r->data = lim;
	r->data_free = free;
	const char *params[] = {
		api_param(r, 0), niche,	      like, active < 0 ? NULL : active ? "true" : "false",
		pg.after_ts,	 pg.after_id, limit};
	/* one row per snapshot, or one row of NULLs for a live agency with none */
	api_query(
		r,
		"SELECT s.j, s.ts, s.id FROM agencies a"
		" LEFT JOIN LATERAL (SELECT " SNAPSHOT_JSON " AS j,"
		"   " API_SQL_CURSOR_TS(
			"s.created_at") " AS ts, s.id, s.created_at"
					"  FROM snapshots s WHERE s.agency_id = a.id"
					"   AND ($2::text IS NULL OR lower(s.niche) = lower($2::text))"
					"   AND ($3::text IS NULL OR s.name ILIKE $3::text OR s.description ILIKE $3::text)"
					"   AND ($4::boolean IS NULL OR s.is_active = $4::boolean)"
					"   AND ($5::timestamp IS NULL OR (s.created_at, s.id) < ($5::timestamp, $6::uuid))"
					"  ORDER BY s.created_at DESC, s.id DESC LIMIT $7::int) s ON true"
					" WHERE a.id = $1::uuid AND a.deleted_at IS NULL"
					" ORDER BY s.created_at DESC, s.id DESC",
		7, params, list_done);
	free(like);
	api_page_clear(&pg);
}

/* ---- POST /agencies/{id}/snapshots/sync ----------------------------------- */

/* $2 = GHL's "snapshots" array. Names are refreshed; is_active is left as
 * staff set it, except that snapshots GHL no longer lists are deactivated. */
static const char sync_sql[] =
	"WITH g AS (SELECT DISTINCT ON (x->>'id') x->>'id' AS gid,"
	"   left(COALESCE(NULLIF(x->>'name', ''), x->>'id'), 255) AS name"
	"  FROM jsonb_array_elements($2::jsonb) x"
	"  WHERE jsonb_typeof(x) = 'object' AND jsonb_typeof(x->'id') = 'string'"
	"   AND length(x->>'id') BETWEEN 1 AND 255),"
	" up AS (INSERT INTO snapshots (agency_id, ghl_snapshot_id, name)"
	"  SELECT $1::uuid, gid, name FROM g"
	"  ON CONFLICT (agency_id, ghl_snapshot_id) DO UPDATE SET name = EXCLUDED.name,"
	"   updated_at = now() WHERE snapshots.name IS DISTINCT FROM EXCLUDED.name"
	"  RETURNING (xmax = 0) AS added),"
	" gone AS (UPDATE snapshots s SET is_active = false, updated_at = now()"
	"  WHERE s.agency_id = $1::uuid AND s.is_active"
	"   AND NOT EXISTS (SELECT 1 FROM g WHERE g.gid = s.ghl_snapshot_id) RETURNING 1),"
	" seen AS (UPDATE agencies SET snapshots_synced_at = now() WHERE id = $1::uuid)"
	" SELECT (SELECT count(*) FROM g), count(*) FILTER (WHERE added),"
	"  count(*) FILTER (WHERE NOT added), (SELECT count(*) FROM gone) FROM up";

static void synced(struct api_req *r, PGresult *res)
{
	char *out = xasprintf("{\"listed\":%s,\"added\":%s,\"updated\":%s,\"deactivated\":%s}",
			      PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
			      PQgetvalue(res, 0, 3));
	log_info("snapshots synced", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "result", out, NULL);
	api_reply_json(r, 200, out);
	free(out);
}

static void ghl_listed(void *arg, const struct ghl_response *res)
{
	struct api_req *r = arg;
	if (res->outcome != GHL_OK) {
		char *msg = xasprintf("GoHighLevel refused to list the snapshots (HTTP %d): %s",
				      res->status, res->message ? res->message : "no message");
		int retry = res->outcome == GHL_RETRYABLE || res->outcome == GHL_CANCELLED;
		api_reply_error(r, retry ? 503 : 502, retry ? "ghl_unavailable" : "ghl_error", msg,
				NULL);
		free(msg);
		return;
	}
	const struct json *list = json_get(res->json, "snapshots");
	if (!list || list->type != JSON_ARRAY) {
		api_reply_error(r, 502, "ghl_error",
				"GoHighLevel answered GET /snapshots/ without a snapshots array",
				NULL);
		return;
	}
	char *text = json_to_string(list);
	const char *params[] = {api_param(r, 0), text};
	api_query(r, sync_sql, 2, params, synced);
	free(text);
}

static void token_got(void *arg, enum agency_token_status st, const struct agency_token *tok,
		      const char *why)
{
	struct api_req *r = arg;
	switch (st) {
	case AGENCY_TOKEN_OK: break;
	case AGENCY_TOKEN_NOT_FOUND: api_reply_not_found(r, "agency"); return;
	case AGENCY_TOKEN_RECONNECT: {
		char *msg = xasprintf("the agency must be connected to GoHighLevel again "
				      "(/oauth/connect): %s",
				      why ? why : "");
		api_reply_error(r, 409, "agency_needs_reconnect", msg, NULL);
		free(msg);
		return;
	}
	case AGENCY_TOKEN_RETRYABLE:
		api_reply_error(
			r, 503, "ghl_unavailable",
			"the agency's GoHighLevel token cannot be read right now; try again "
			"shortly",
			NULL);
		return;
	default: {
		char *msg = xasprintf("the agency has no usable GoHighLevel token: %s",
				      why ? why : "unknown reason");
		api_reply_error(r, 409, "agency_not_connected", msg, NULL);
		free(msg);
		return;
	}
	}
	char *enc = ghl_urlencode(tok->ghl_agency_id ? tok->ghl_agency_id : "");
	char *query = xasprintf("companyId=%s", enc);
	free(enc);
	struct ghl_request req = {.method = "GET",
				  .path = "/snapshots/",
				  .query = query,
				  .token = tok->access_token,
				  .resource = tok->ghl_agency_id};
	struct ghl_token_hooks hooks;
	agency_tokens_hooks(r->app->tokens, tok->agency_id, &hooks);
	ghl_request_send_auth(r->app->ghl, &req, &hooks, ghl_listed, r);
	free(query);
}

static void snapshots_sync(struct api_req *r)
{
	if (!r->app->tokens || !r->app->ghl) {
		api_reply_error(r, 503, "ghl_unavailable", "the GoHighLevel client is not running",
				NULL);
		return;
	}
	agency_tokens_get(r->app->tokens, api_param(r, 0), token_got, r);
}

/* ---- PATCH /snapshots/{id} ------------------------------------------------ */

static const struct api_field update_fields[] = {
	{.name = "is_active", .type = API_T_BOOL},
	{.name = "niche",
	 .type = API_T_STRING,
	 .flags = API_F_NULLABLE,
	 .min_len = 1,
	 .max_len = 255},
	{.name = "description", .type = API_T_STRING, .flags = API_F_NULLABLE, .max_len = 10000},
	{0},
};

static void updated(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "snapshot");
		return;
	}
	api_reply_json(r, 200, PQgetvalue(res, 0, 0));
}

static void snapshots_update(struct api_req *r)
{
	const struct json *active = json_get(r->body, "is_active");
	const struct json *niche = json_get(r->body, "niche");
	const struct json *desc = json_get(r->body, "description");
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0),
				scope,
				active ? (active->u.boolean ? "true" : "false") : NULL,
				niche ? "true" : "false",
				json_get_str(r->body, "niche"),
				desc ? "true" : "false",
				json_get_str(r->body, "description"),
				api_audit_user(r),
				api_audit_key(r)};
	/* the audit row's diff: the fields that changed, from the row before */
	api_query(r,
		  "WITH old AS (SELECT jsonb_build_object('niche', niche, 'description',"
		  "  description, 'is_active', is_active) AS o FROM snapshots WHERE id = $1::uuid),"
		  " s AS (UPDATE snapshots s SET is_active = COALESCE($3::boolean, s.is_active),"
		  " niche = CASE WHEN $4::boolean THEN $5::text ELSE s.niche END,"
		  " description = CASE WHEN $6::boolean THEN $7::text ELSE s.description END,"
		  " updated_at = now()"
		  " FROM agencies a WHERE s.id = $1::uuid AND a.id = s.agency_id"
		  "  AND a.deleted_at IS NULL"
		  "  AND ($2::uuid[] IS NULL OR s.agency_id = ANY($2::uuid[]))"
		  " RETURNING s.*, jsonb_build_object('niche', s.niche, 'description',"
		  "  s.description, 'is_active', s.is_active) AS n),"
		  " au AS (" API_AUDIT_INSERT " SELECT $8::uuid, $9::uuid, 'snapshot.update',"
		  "  s.agency_id, s.id::text, (SELECT COALESCE(jsonb_agg(jsonb_build_object("
		  "   'path', k, 'from', old.o->k, 'to', s.n->k) ORDER BY k), '[]'::jsonb)"
		  "   FROM jsonb_object_keys(s.n) k WHERE old.o->k IS DISTINCT FROM s.n->k)"
		  "  FROM s, old)"
		  " SELECT " SNAPSHOT_JSON " FROM s",
		  9, params, updated);
	free(scope);
}

/* ---- routes --------------------------------------------------------------- */

#define MANAGERS (API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN)

static const struct api_endpoint ep_list = {
	.allow = API_ALLOW_ANY, .agency_scoped = 1, .query = list_query};
static const struct api_endpoint ep_sync = {.allow = MANAGERS, .agency_scoped = 1};
static const struct api_endpoint ep_update = {.allow = MANAGERS, .body = update_fields};

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, snapshots_list);
}

static void h_sync(struct http_ctx *c)
{
	api_handle(c, &ep_sync, snapshots_sync);
}

static void h_update(struct http_ctx *c)
{
	api_handle(c, &ep_update, snapshots_update);
}

static const struct http_route snapshot_routes[] = {
	{"GET", "/api/v1/agencies/{id}/snapshots", h_list},
	{"POST", "/api/v1/agencies/{id}/snapshots/sync", h_sync},
	{"PATCH", "/api/v1/snapshots/{id}", h_update},
};

const struct route_table api_snapshots_route_table = {
	snapshot_routes, sizeof(snapshot_routes) / sizeof(snapshot_routes[0])};
