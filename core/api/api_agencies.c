/* api_agencies.c — /api/v1/agencies (list in scope, get, update name and
 * settings, soft delete) and /api/v1/agencies/{id}/api-keys (list, create,
 * revoke). OAuth token columns are never selected; secrets in the settings
 * are write-only (masked in every answer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "passwords.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"

/* One agency as JSON (alias a) — never the token columns. */
/* clang-format off */
#define AGENCY_JSON                                                                           \
	"json_build_object('id', a.id, 'name', a.name, 'ghl_agency_id', a.ghl_agency_id,"     \
	" 'settings', a.settings_json,"                                                        \
	" 'token_expires_at', " API_SQL_ISO("a.token_expires_at") ","                          \
	" 'needs_reconnect', a.needs_reconnect, 'reconnect_reason', a.reconnect_reason,"       \
	" 'snapshots_synced_at', " API_SQL_ISO("a.snapshots_synced_at") ","                    \
	" 'created_at', " API_SQL_ISO("a.created_at") ","                                      \
	" 'updated_at', " API_SQL_ISO("a.updated_at") ")::text"
/* clang-format on */

/* clang-format off */
#define API_KEY_JSON                                                                          \
	"json_build_object('id', k.id, 'agency_id', k.agency_id, 'name', k.name,"              \
	" 'prefix', k.prefix, 'created_by', k.created_by,"                                     \
	" 'created_at', " API_SQL_ISO("k.created_at") ","                                      \
	" 'revoked_at', " API_SQL_ISO("k.revoked_at") ","                                      \
	" 'last_used_at', " API_SQL_ISO("k.last_used_at") ")::text"
/* clang-format on */

static const char *const list_query[] = {"q", "limit", "cursor", NULL};

static const struct api_field update_fields[] = {
	{.name = "name", .type = API_T_STRING, .min_len = 1, .max_len = 255},
	{.name = "settings", .type = API_T_ANY, .flags = API_F_NULLABLE},
	{0},
};

static const struct api_field key_fields[] = {
	{.name = "name",
	 .type = API_T_STRING,
	 .flags = API_F_REQUIRED,
	 .min_len = 1,
	 .max_len = 100},
	{0},
};

/* An agency as JSON with the secrets in its settings masked: they are
 * write-only, whoever reads (pipeline_mask_secrets). */
static char *masked_agency(const char *json)
{
	struct json *a = json_parse(json, strlen(json), JSON_DEFAULT_MAX_DEPTH, NULL);
	if (!a) /* our own SQL's output: cannot happen; show nothing rather than a secret */
		return xstrdup("null");
	pipeline_mask_secrets(json_get(a, "settings"));
	char *out = json_to_string(a);
	json_free(a);
	return out;
}

/* One agency's answer (GET, PATCH): masked, with the client-data fields its
 * pipeline (else the default_pipeline) needs, each with the steps needing it:
 * "required_client_fields": [{"field":"first_name","steps":["CREATE_USER"]}]. */
static void reply_agency(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	const char *text = PQgetvalue(res, 0, 0);
	struct json *a = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, NULL);
	if (!a) { /* our own SQL's output: cannot happen; show nothing rather than a secret */
		api_reply_internal(r, "the agency could not be read");
		return;
	}
	const char *dp = r->app->cfg->default_pipeline;
	struct json *def = json_parse(dp, strlen(dp), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *p = pipeline_effective(json_get(a, "settings"), def);
	json_object_set_take(a, "required_client_fields", pipeline_client_fields(r->app->steps, p));
	json_free(p);
	json_free(def);
	pipeline_mask_secrets(json_get(a, "settings"));
	char *json = json_to_string(a);
	json_free(a);
	api_reply_json(r, 200, json);
	free(json);
}

/* ---- list -------------------------------------------------------------- */

static void list_done(struct api_req *r, PGresult *res)
{
	api_reply_page_map(r, res, 0, 1, 2, *(int *)r->data, masked_agency);
}

static void agencies_list(struct api_req *r)
{
	struct api_page pg;
	if (api_page_parse(r, &pg))
		return;
	const char *q = api_query_param(r, "q");
	char *like = q ? api_like_contains(q) : NULL;
	char *scope = api_scope_array(&r->who);
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	int *lim = xmalloc(sizeof(int));
	*lim = pg.limit;
	r->data = lim;
	r->data_free = free;
	const char *params[] = {scope, like, pg.after_ts, pg.after_id, limit};
	api_query(
		r,
		"SELECT " AGENCY_JSON ", " API_SQL_CURSOR_TS(
			"a.created_at") ", a.id"
					" FROM agencies a WHERE a.deleted_at IS NULL"
					"  AND ($1::uuid[] IS NULL OR a.id = ANY($1::uuid[]))"
					"  AND ($2::text IS NULL OR a.name ILIKE $2)"
					"  AND ($3::timestamp IS NULL OR (a.created_at, a.id) < ($3::timestamp, $4::uuid))"
					" ORDER BY a.created_at DESC, a.id DESC LIMIT $5::int",
		5, params, list_done);
	free(like);
	free(scope);
	api_page_clear(&pg);
}

/* ---- get / update / delete --------------------------------------------- */

static void agencies_get(struct api_req *r)
{
	const char *params[] = {api_param(r, 0)};
	api_query(r,
		  "SELECT " AGENCY_JSON " FROM agencies a WHERE a.id = $1 AND a.deleted_at IS NULL",
		  1, params, reply_agency);
}

/* The audit diff of an update: name and settings before and after, the
 * secrets masked on both sides (malloc'd JSON array). */
static char *update_diff(struct api_req *r, PGresult *stored)
{
	struct json *before = json_new_object(), *after = json_new_object();
	json_object_set_take(before, "name", json_new_string(PQgetvalue(stored, 0, 1)));
	const char *name = json_get_str(r->body, "name");
	json_object_set_take(after, "name",
			     json_new_string(name ? name : PQgetvalue(stored, 0, 1)));
	const char *text = PQgetisnull(stored, 0, 0) ? "null" : PQgetvalue(stored, 0, 0);
	struct json *old = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *set = json_get(r->body, "settings");
	json_object_set_take(before, "settings", old ? old : json_new_null());
	json_object_set_take(after, "settings",
			     set ? json_clone(set) : json_clone(json_get(before, "settings")));
	pipeline_mask_secrets(json_get(before, "settings"));
	pipeline_mask_secrets(json_get(after, "settings"));
	char *diff = api_audit_diff(before, after, NULL);
	json_free(before);
	json_free(after);
	return diff;
}

/* The stored settings are at hand (row 0: settings_json as text, or none;
 * the name). */
static void update_with_stored(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	struct json *settings = json_get(r->body, "settings");
	struct api_state *st = r->app->api;
	if (settings && settings->type != JSON_NULL) {
		if (api_settings_keep_secrets(
			    r, settings, PQgetisnull(res, 0, 0) ? "{}" : PQgetvalue(res, 0, 0)))
			return;
		struct api_problems p;
		api_problems_init(&p);
		api_settings_validator v = st->validate_settings ? st->validate_settings
								 : api_settings_accept_objects;
		if (v(st->validate_settings_arg, settings, &p) || p.n) {
			api_reply_problems(r, &p);
			return;
		}
		api_problems_clear(&p);
	}
	char *settings_text = settings && settings->type != JSON_NULL ? json_to_string(settings)
								      : NULL;
	char *diff = update_diff(r, res);
	const char *params[] = {api_param(r, 0),
				json_get_str(r->body, "name"),
				settings ? "true" : "false",
				settings_text,
				api_audit_user(r),
				api_audit_key(r),
				diff};
	api_query(r,
		  "WITH a AS (UPDATE agencies a SET name = COALESCE($2, a.name),"
		  " settings_json = CASE WHEN $3::boolean THEN $4::jsonb ELSE a.settings_json END,"
		  " updated_at = now()"
		  " WHERE a.id = $1 AND a.deleted_at IS NULL RETURNING a.*),"
		  " au AS (" API_AUDIT_INSERT " SELECT $5::uuid, $6::uuid, 'agency.update', a.id,"
		  "  a.id::text, $7::jsonb FROM a)"
		  " SELECT " AGENCY_JSON " FROM a",
		  7, params, reply_agency);
	free(diff);
	free(settings_text);
}

static void agencies_update(struct api_req *r)
{
	const char *params[] = {api_param(r, 0)};
	api_query(r,
		  "SELECT settings_json::text, name FROM agencies WHERE id = $1"
		  " AND deleted_at IS NULL",
		  1, params, update_with_stored);
}

static void deleted(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	api_key_cache_clear(r->app);
	log_info("agency deleted", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "by", r->who.user_id, NULL);
	api_reply_empty(r, 204);
}

/* Soft delete, and the agency's credentials go with it in the same
 * statement: its API keys are revoked and its users unlinked, so nothing
 * that brings the row back (an ADMIN reconnecting it) revives them. */
static void agencies_delete(struct api_req *r)
{
	const char *params[] = {api_param(r, 0), api_audit_user(r), api_audit_key(r)};
	api_query(r,
		  "WITH a AS (UPDATE agencies SET deleted_at = now(), updated_at = now()"
		  "  WHERE id = $1 AND deleted_at IS NULL RETURNING id, name),"
		  " au AS (" API_AUDIT_INSERT " SELECT $2::uuid, $3::uuid, 'agency.delete', a.id,"
		  "  a.name, NULL FROM a),"
		  " k AS (UPDATE api_keys SET revoked_at = now()"
		  "  WHERE agency_id IN (SELECT id FROM a) AND revoked_at IS NULL),"
		  " u AS (DELETE FROM user_agencies WHERE agency_id IN (SELECT id FROM a))"
		  " SELECT id FROM a",
		  3, params, deleted);
}

/* ---- API keys ---------------------------------------------------------- */

static void keys_listed(struct api_req *r, PGresult *res)
{
	int n = PQntuples(res);
	if (n == 0) {
		api_reply_not_found(r, "agency");
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"items\":[");
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 0))
			continue;
		buf_puts(&b, k++ ? "," : "");
		buf_puts(&b, PQgetvalue(res, i, 0));
	}
	buf_puts(&b, "]}");
	api_reply_json(r, 200, buf_cstr(&b));
	buf_clear(&b);
}

static void keys_list(struct api_req *r)
{
	const char *params[] = {api_param(r, 0)};
	/* one row per key, or one row of NULL for an agency without keys */
	api_query(r,
		  "SELECT CASE WHEN k.id IS NULL THEN NULL ELSE " API_KEY_JSON " END"
		  " FROM agencies a LEFT JOIN api_keys k ON k.agency_id = a.id"
		  " WHERE a.id = $1 AND a.deleted_at IS NULL"
		  " ORDER BY k.created_at DESC, k.id DESC",
		  1, params, keys_listed);
}

struct new_key {
	char *key;
};

static void new_key_free(void *arg)
{
	struct new_key *k = arg;
	secret_free(k->key);
	free(k);
}

static void key_created(struct api_req *r, PGresult *res)
{
	struct new_key *k = r->data;
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "id");
	jw_string(&w, PQgetvalue(res, 0, 0));
	jw_key(&w, "key");
	jw_string(&w, k->key);
	jw_key(&w, "api_key");
	jw_raw(&w, PQgetvalue(res, 0, 1));
	jw_object_end(&w);
	log_info("api key created", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "api_key_id", PQgetvalue(res, 0, 0), "by", r->who.user_id, NULL);
	api_add_header(r, "Cache-Control", "no-store");
	api_reply_json(r, 201, buf_cstr(&b));
	crypto_wipe(b.data, b.len);
	buf_clear(&b);
}

static void keys_create(struct api_req *r)
{
	struct new_key *k = xcalloc(1, sizeof(*k));
	r->data = k;
	r->data_free = new_key_free;
	k->key = auth_new_api_key();
	if (!k->key) {
		api_reply_internal(r, "the random number generator failed");
		return;
	}
	char hash[65], prefix[AUTH_API_KEY_DISPLAY + 1];
	auth_secret_hash(k->key, hash);
	snprintf(prefix, sizeof(prefix), "%s", k->key);
	const char *params[] = {api_param(r, 0),
				json_get_str(r->body, "name"),
				hash,
				prefix,
				r->who.user_id,
				api_audit_user(r),
				api_audit_key(r)};
	api_query(
		r,
		"WITH k AS (INSERT INTO api_keys (agency_id, name, key_hash, prefix, created_by)"
		"  SELECT a.id, $2, $3, $4, $5::uuid FROM agencies a"
		"  WHERE a.id = $1 AND a.deleted_at IS NULL RETURNING *),"
		" au AS (" API_AUDIT_INSERT " SELECT $6::uuid, $7::uuid, 'api_key.create',"
		"  k.agency_id, k.id::text, jsonb_build_object('name', k.name, 'prefix', k.prefix)"
		"  FROM k)"
		" SELECT k.id, " API_KEY_JSON " FROM k",
		7, params, key_created);
}

static void key_revoked(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "API key");
		return;
	}
	api_key_cache_clear(r->app);
	log_info("api key revoked", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "api_key_id", api_param(r, 1), "by", r->who.user_id, NULL);
	api_reply_empty(r, 204);
}

static void keys_revoke(struct api_req *r)
{
	const char *params[] = {api_param(r, 0), api_param(r, 1), api_audit_user(r),
				api_audit_key(r)};
	/* revoking a revoked key again answers 204 and writes no second row */
	api_query(
		r,
		"WITH old AS (SELECT k.id, k.revoked_at FROM api_keys k WHERE k.id = $2),"
		" k AS (UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, now())"
		" FROM agencies a WHERE k.id = $2 AND k.agency_id = $1 AND a.id = k.agency_id"
		" AND a.deleted_at IS NULL RETURNING k.id, k.agency_id, k.name, k.prefix),"
		" au AS (" API_AUDIT_INSERT " SELECT $3::uuid, $4::uuid, 'api_key.revoke',"
		"  k.agency_id, k.id::text, jsonb_build_object('name', k.name, 'prefix', k.prefix)"
		"  FROM k JOIN old ON old.id = k.id WHERE old.revoked_at IS NULL)"
		" SELECT id FROM k",
		4, params, key_revoked);
}

/* ---- routes ------------------------------------------------------------ */

#define MANAGERS (API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN)

static const struct api_endpoint ep_list = {.allow = API_ALLOW_ANY, .query = list_query};
static const struct api_endpoint ep_get = {.allow = API_ALLOW_ANY, .agency_scoped = 1};
static const struct api_endpoint ep_update = {
	.allow = MANAGERS, .agency_scoped = 1, .body = update_fields};
static const struct api_endpoint ep_delete = {.allow = API_ALLOW_ADMIN, .agency_scoped = 1};
static const struct api_endpoint ep_keys_list = {.allow = API_ALLOW_STAFF, .agency_scoped = 1};
static const struct api_endpoint ep_keys_create = {
	.allow = MANAGERS, .agency_scoped = 1, .body = key_fields};
static const struct api_endpoint ep_keys_revoke = {.allow = MANAGERS, .agency_scoped = 1};

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, agencies_list);
}

static void h_get(struct http_ctx *c)
{
	api_handle(c, &ep_get, agencies_get);
}

static void h_update(struct http_ctx *c)
{
	api_handle(c, &ep_update, agencies_update);
}

static void h_delete(struct http_ctx *c)
{
	api_handle(c, &ep_delete, agencies_delete);
}

static void h_keys_list(struct http_ctx *c)
{
	api_handle(c, &ep_keys_list, keys_list);
}

static void h_keys_create(struct http_ctx *c)
{
	api_handle(c, &ep_keys_create, keys_create);
}

static void h_keys_revoke(struct http_ctx *c)
{
	api_handle(c, &ep_keys_revoke, keys_revoke);
}

static const struct http_route agency_routes[] = {
	{"GET", "/api/v1/agencies", h_list},
	{"GET", "/api/v1/agencies/{id}", h_get},
	{"PATCH", "/api/v1/agencies/{id}", h_update},
	{"DELETE", "/api/v1/agencies/{id}", h_delete},
	{"GET", "/api/v1/agencies/{id}/api-keys", h_keys_list},
	{"POST", "/api/v1/agencies/{id}/api-keys", h_keys_create},
	{"DELETE", "/api/v1/agencies/{id}/api-keys/{key_id}", h_keys_revoke},
};

const struct route_table api_agencies_route_table = {
	agency_routes, sizeof(agency_routes) / sizeof(agency_routes[0])};
