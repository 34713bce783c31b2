/* api_users.c — /api/v1/users: list, create, get, update (role, agency links,
 * password), delete. ADMIN only. Passwords are hashed on the auth worker
 * pool; password_hash never leaves the database. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "app.h"
#include "passwords.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"

/* One user as JSON (alias u; agency links from user_agencies). */
/* clang-format off */
#define USER_JSON                                                                             \
	"json_build_object('id', u.id, 'email', u.email, 'role', u.role,"                     \
	" 'agency_ids', COALESCE((SELECT json_agg(ua.agency_id ORDER BY ua.agency_id)"         \
	"  FROM user_agencies ua WHERE ua.user_id = u.id), '[]'::json),"                       \
	" 'created_at', " API_SQL_ISO("u.created_at") ","                                      \
	" 'updated_at', " API_SQL_ISO("u.updated_at") ")::text"
/* clang-format on */

static const char *const roles[] = {"ADMIN", "AGENCY_ADMIN", "SUPPORT", NULL};

static const struct api_field uuid_item = {.name = "item", .type = API_T_UUID};

static const struct api_field create_fields[] = {
	{.name = "email", .type = API_T_EMAIL, .flags = API_F_REQUIRED, .max_len = 255},
	{.name = "password",
	 .type = API_T_STRING,
	 .flags = API_F_REQUIRED,
	 .max_len = AUTH_PASSWORD_MAX},
	{.name = "role", .type = API_T_STRING, .one_of = roles},
	{.name = "agency_ids", .type = API_T_ARRAY, .max_len = 1000, .items = &uuid_item},
	{0},
};

static const struct api_field update_fields[] = {
	{.name = "role", .type = API_T_STRING, .one_of = roles},
	{.name = "agency_ids", .type = API_T_ARRAY, .max_len = 1000, .items = &uuid_item},
	{.name = "password", .type = API_T_STRING, .max_len = AUTH_PASSWORD_MAX},
	{0},
};

static const char *const list_query[] = {"role", "q", "limit", "cursor", NULL};

/* The body's agency_ids as a uuid[] literal (validated UUIDs only), or NULL. */
static char *agency_array(const struct json *body)
{
	const struct json *a = json_get(body, "agency_ids");
	if (!a || a->type != JSON_ARRAY)
		return NULL;
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '{');
	for (size_t i = 0; i < json_len(a); i++)
		buf_printf(&b, "%s%s", i ? "," : "", json_at(a, i)->u.str.s);
	buf_putc(&b, '}');
	return buf_take(&b);
}

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* 0 when the body's password (if any) meets the policy; else replies 422. */
static int check_password(struct api_req *r)
{
	const char *pw = json_get_str(r->body, "password");
	struct err e;
	if (!pw || !auth_password_policy(pw, &e))
		return 0;
	struct api_problems p;
	api_problems_init(&p);
	api_problem(&p, "password", "%s", e.msg);
	api_reply_problems(r, &p);
	return -1;
}

static void reply_one(struct api_req *r, PGresult *res, int status)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "user");
		return;
	}
	api_reply_json(r, status, PQgetvalue(res, 0, 0));
}

static void reply_200(struct api_req *r, PGresult *res)
{
	reply_one(r, res, 200);
}

static void reply_201(struct api_req *r, PGresult *res)
{
	reply_one(r, res, 201);
}

/* ---- list -------------------------------------------------------------- */

struct list_state {
	int limit;
};

static void list_done(struct api_req *r, PGresult *res)
{
	struct list_state *s = r->data;
	api_reply_page(r, res, 0, 1, 2, s->limit);
}

static void users_list(struct api_req *r)
{
	const char *role = api_query_param(r, "role");
	if (role && api_role_parse(role) == API_ROLE_NONE)
		api_query_problem(r, "role", "must be ADMIN, AGENCY_ADMIN or SUPPORT");
	struct api_page pg;
	if (api_page_parse(r, &pg)) /* replies with the problem of role, too */
		return;
	const char *q = api_query_param(r, "q");
	char *like = q ? api_like_contains(q) : NULL;
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	struct list_state *s = xcalloc(1, sizeof(*s));
	s->limit = pg.limit;
	r->data = s;
	r->data_free = free;
	const char *params[] = {role, like, pg.after_ts, pg.after_id, limit};
	api_query(
		r,
		"SELECT " USER_JSON ", " API_SQL_CURSOR_TS(
			"u.created_at") ", u.id FROM users u"
					" WHERE ($1::user_role IS NULL OR u.role = $1::user_role)"
					"  AND ($2::text IS NULL OR u.email ILIKE $2)"
					"  AND ($3::timestamp IS NULL OR (u.created_at, u.id) < ($3::timestamp, $4::uuid))"
					" ORDER BY u.created_at DESC, u.id DESC LIMIT $5::int",
		5, params, list_done);
	free(like);
	api_page_clear(&pg);
}

/* ---- create ------------------------------------------------------------ */

static void create_hashed(void *arg, char *hash)
{
	struct api_req *r = arg;
	if (!hash) {
		api_reply_internal(r, "bcrypt failed");
		return;
	}
	char *email = lower_dup(json_get_str(r->body, "email"));
	const char *role = json_get_str(r->body, "role");
	char *agencies = agency_array(r->body);
	const char *params[] = {email,
				hash,
				role ? role : "AGENCY_ADMIN",
				agencies ? agencies : "{}",
				api_audit_user(r),
				api_audit_key(r)};
	r->conflict_msg = "a user with this email already exists";
	api_query(r,
		  "WITH u AS (INSERT INTO users (email, password_hash, role)"
		  "  VALUES ($1, $2, $3::user_role) RETURNING *),"
		  " l AS (INSERT INTO user_agencies (user_id, agency_id)"
		  "  SELECT u.id, x.a FROM u, (SELECT DISTINCT unnest($4::uuid[]) AS a) x"
		  "  RETURNING agency_id),"
		  " au AS (" API_AUDIT_INSERT " SELECT $5::uuid, $6::uuid, 'user.create', NULL,"
		  "  u.id::text, jsonb_build_object('email', u.email, 'role', u.role,"
		  "  'agency_ids', $4::uuid[]) FROM u)"
		  " SELECT json_build_object('id', u.id, 'email', u.email, 'role', u.role,"
		  "  'agency_ids', COALESCE((SELECT json_agg(agency_id ORDER BY agency_id) FROM l),"
		  "   '[]'::json),"
		  "  'created_at', " API_SQL_ISO(
			  "u.created_at") ","
					  "  'updated_at', " API_SQL_ISO(
						  "u.updated_at") ")::text FROM u",
		  6, params, reply_201);
	free(email);
	free(agencies);
	free(hash);
}

static void users_create(struct api_req *r)
{
	if (check_password(r))
		return;
	struct api_state *st = r->app->api;
	auth_pool_hash(st->pool, json_get_str(r->body, "password"), (int)r->app->cfg->bcrypt_cost,
		       create_hashed, r);
}

/* ---- get --------------------------------------------------------------- */

static void users_get(struct api_req *r)
{
	const char *params[] = {api_param(r, 0)};
	api_query(r, "SELECT " USER_JSON " FROM users u WHERE u.id = $1", 1, params, reply_200);
}

/* ---- update ------------------------------------------------------------ */

static void update_run(struct api_req *r, const char *hash)
{
	char *agencies = agency_array(r->body);
	const char *params[] = {
		api_param(r, 0), json_get_str(r->body, "role"), hash, agencies, api_audit_user(r),
		api_audit_key(r)};
	/* the audit diff: role and agencies before (old, the statement's snapshot)
	 * and after; a new password is named, never shown */
	api_query(
		r,
		"WITH old AS (SELECT u.id, jsonb_build_object('role', u.role, 'agency_ids',"
		"  COALESCE((SELECT jsonb_agg(ua.agency_id ORDER BY ua.agency_id) FROM user_agencies ua"
		"  WHERE ua.user_id = u.id), '[]'::jsonb)) AS o FROM users u WHERE u.id = $1),"
		" u AS (UPDATE users SET role = COALESCE($2::user_role, role),"
		"  password_hash = COALESCE($3::text, password_hash), updated_at = now()"
		"  WHERE id = $1 RETURNING *),"
		" d AS (DELETE FROM user_agencies ua USING u WHERE ua.user_id = u.id"
		"  AND $4::uuid[] IS NOT NULL AND NOT (ua.agency_id = ANY($4::uuid[]))),"
		" i AS (INSERT INTO user_agencies (user_id, agency_id)"
		"  SELECT u.id, x.a FROM u, (SELECT DISTINCT unnest($4::uuid[]) AS a) x"
		"  ON CONFLICT DO NOTHING),"
		" s AS (UPDATE sessions SET revoked_at = now() FROM u"
		"  WHERE sessions.user_id = u.id AND $3::text IS NOT NULL"
		"  AND sessions.revoked_at IS NULL),"
		" au AS (" API_AUDIT_INSERT " SELECT $5::uuid, $6::uuid, 'user.update', NULL,"
		"  u.id::text, (SELECT COALESCE(jsonb_agg(jsonb_build_object('path', k, 'from',"
		"   old.o->k, 'to', n.n->k) ORDER BY k), '[]'::jsonb) FROM jsonb_object_keys(n.n) k"
		"   WHERE old.o->k IS DISTINCT FROM n.n->k)"
		"   || CASE WHEN $3::text IS NULL THEN '[]'::jsonb ELSE jsonb_build_array("
		"   jsonb_build_object('path', 'password', 'from', '***', 'to', '***')) END"
		"  FROM u JOIN old ON old.id = u.id, LATERAL (SELECT jsonb_build_object('role', u.role,"
		"   'agency_ids', CASE WHEN $4::uuid[] IS NULL THEN old.o->'agency_ids' ELSE"
		"   (SELECT COALESCE(jsonb_agg(DISTINCT a ORDER BY a), '[]'::jsonb)"
		"    FROM unnest($4::uuid[]) a) END) AS n) n)"
		" SELECT json_build_object('id', u.id, 'email', u.email, 'role', u.role,"
		"  'agency_ids', COALESCE(CASE WHEN $4::uuid[] IS NULL THEN"
		"   (SELECT json_agg(ua.agency_id ORDER BY ua.agency_id) FROM user_agencies ua"
		"    WHERE ua.user_id = u.id)"
		"   ELSE (SELECT json_agg(DISTINCT a) FROM unnest($4::uuid[]) a) END, '[]'::json),"
		"  'created_at', " API_SQL_ISO(
			"u.created_at") ","
					"  'updated_at', " API_SQL_ISO(
						"u.updated_at") ")::text FROM u",
		6, params, reply_200);
	free(agencies);
}

static void update_hashed(void *arg, char *hash)
{
	struct api_req *r = arg;
	if (!hash) {
		api_reply_internal(r, "bcrypt failed");
		return;
	}
	update_run(r, hash);
	free(hash);
}

static void users_update(struct api_req *r)
{
	const char *role = json_get_str(r->body, "role");
	if (role && strcmp(role, "ADMIN") && !strcasecmp(api_param(r, 0), r->who.user_id)) {
		api_reply_error(r, 409, "conflict",
				"you cannot remove your own ADMIN role; ask another ADMIN", NULL);
		return;
	}
	if (check_password(r))
		return;
	const char *pw = json_get_str(r->body, "password");
	if (pw) {
		struct api_state *st = r->app->api;
		auth_pool_hash(st->pool, pw, (int)r->app->cfg->bcrypt_cost, update_hashed, r);
		return;
	}
	update_run(r, NULL);
}

/* ---- delete ------------------------------------------------------------ */

static void delete_done(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "user");
		return;
	}
	log_info("user deleted", "request_id", r->c->request_id, "user_id", api_param(r, 0), "by",
		 r->who.user_id, NULL);
	api_reply_empty(r, 204);
}

static void users_delete(struct api_req *r)
{
	if (!strcasecmp(api_param(r, 0), r->who.user_id)) {
		api_reply_error(r, 409, "conflict", "you cannot delete your own user", NULL);
		return;
	}
	const char *params[] = {api_param(r, 0), api_audit_user(r), api_audit_key(r)};
	api_query(r,
		  "WITH u AS (DELETE FROM users WHERE id = $1 RETURNING id, email, role),"
		  " au AS (" API_AUDIT_INSERT " SELECT $2::uuid, $3::uuid, 'user.delete', NULL,"
		  "  u.id::text, jsonb_build_object('email', u.email, 'role', u.role) FROM u)"
		  " SELECT id FROM u",
		  3, params, delete_done);
}

/* ---- routes ------------------------------------------------------------ */

static const struct api_endpoint ep_list = {.allow = API_ALLOW_ADMIN, .query = list_query};
static const struct api_endpoint ep_create = {.allow = API_ALLOW_ADMIN, .body = create_fields};
static const struct api_endpoint ep_get = {.allow = API_ALLOW_ADMIN};
static const struct api_endpoint ep_update = {.allow = API_ALLOW_ADMIN, .body = update_fields};
static const struct api_endpoint ep_delete = {.allow = API_ALLOW_ADMIN};

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, users_list);
}

static void h_create(struct http_ctx *c)
{
	api_handle(c, &ep_create, users_create);
}

static void h_get(struct http_ctx *c)
{
	api_handle(c, &ep_get, users_get);
}

static void h_update(struct http_ctx *c)
{
	api_handle(c, &ep_update, users_update);
}

static void h_delete(struct http_ctx *c)
{
	api_handle(c, &ep_delete, users_delete);
}

static const struct http_route user_routes[] = {
	{"GET", "/api/v1/users", h_list},	    {"POST", "/api/v1/users", h_create},
	{"GET", "/api/v1/users/{id}", h_get},	    {"PATCH", "/api/v1/users/{id}", h_update},
	{"DELETE", "/api/v1/users/{id}", h_delete},
};

const struct route_table api_users_route_table = {user_routes,
						  sizeof(user_routes) / sizeof(user_routes[0])};
