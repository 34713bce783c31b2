/* api_audit.c — the audit log: who the caller is for an audit_log row
 * (api_audit_user, api_audit_key), the diff of a change (api_audit_diff),
 * and GET /api/v1/audit (filters agency_id, actor, action; scoped like jobs:
 * an AGENCY_ADMIN or an API key sees its agencies' rows, ADMIN and SUPPORT
 * all). How a change writes its row: api.h "audit". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "http.h"
#include "json.h"

const char *api_audit_user(const struct api_req *r)
{
	return r->who.kind == PRINCIPAL_SESSION && r->who.user_id[0] ? r->who.user_id : NULL;
}

const char *api_audit_key(const struct api_req *r)
{
	return r->who.kind == PRINCIPAL_API_KEY && r->who.api_key_id[0] ? r->who.api_key_id : NULL;
}

/* ---- diff ------------------------------------------------------------------ */

static void change(struct json *out, const char *path, const struct json *from,
		   const struct json *to)
{
	struct json *c = json_new_object();
	json_object_set_take(c, "path", json_new_string(path));
	json_object_set_take(c, "from", from ? json_clone(from) : json_new_null());
	json_object_set_take(c, "to", to ? json_clone(to) : json_new_null());
	json_array_push_take(out, c);
}

static int same_kind(const struct json *a, const struct json *b, enum json_type t)
{
	return a && b && a->type == t && b->type == t;
}

static void diff_into(struct json *out, const char *path, const struct json *a,
		      const struct json *b)
{
	if (same_kind(a, b, JSON_OBJECT)) {
		for (size_t i = 0; i < a->u.obj.n; i++) {
			char *p = *path ? xasprintf("%s.%s", path, a->u.obj.keys[i])
					: xstrdup(a->u.obj.keys[i]);
			diff_into(out, p, a->u.obj.vals[i], json_get(b, a->u.obj.keys[i]));
			free(p);
		}
		for (size_t i = 0; i < b->u.obj.n; i++) {
			if (json_get(a, b->u.obj.keys[i]))
				continue;
			char *p = *path ? xasprintf("%s.%s", path, b->u.obj.keys[i])
					: xstrdup(b->u.obj.keys[i]);
			change(out, p, NULL, b->u.obj.vals[i]);
			free(p);
		}
		return;
	}
	if (same_kind(a, b, JSON_ARRAY)) {
		size_t n = a->u.arr.n > b->u.arr.n ? a->u.arr.n : b->u.arr.n;
		for (size_t i = 0; i < n; i++) {
			char *p = xasprintf("%s[%zu]", path, i);
			diff_into(out, p, json_at(a, i), json_at(b, i));
			free(p);
		}
		return;
	}
	int a_null = !a || a->type == JSON_NULL, b_null = !b || b->type == JSON_NULL;
	if (a_null && b_null)
		return;
	if (!a_null && !b_null && json_equal(a, b))
		return;
	change(out, path, a, b);
}

char *api_audit_diff(const struct json *before, const struct json *after, const char *prefix)
{
	struct json *out = json_new_array();
	diff_into(out, prefix ? prefix : "", before, after);
	char *text = json_to_string(out);
	json_free(out);
	return text;
}

/* ---- GET /api/v1/audit -------------------------------------------------------- */

static const char *const audit_query[] = {"agency_id", "actor", "action", "limit", "cursor", NULL};

/* clang-format off */
#define AUDIT_JSON                                                                            \
	"json_build_object('id', l.id, 'at', " API_SQL_ISO("l.at") ","                         \
	" 'actor', json_build_object("                                                         \
	"  'kind', CASE WHEN l.actor_user_id IS NOT NULL THEN 'user'"                          \
	"   WHEN l.actor_key_id IS NOT NULL THEN 'api_key' ELSE 'agent' END,"                  \
	"  'id', COALESCE(l.actor_user_id, l.actor_key_id),"                                   \
	"  'label', COALESCE(u.email, k.prefix || '… (' || k.name || ')')),"                   \
	" 'action', l.action, 'agency_id', l.agency_id, 'agency_name', a.name,"                \
	" 'target', l.target, 'diff', l.diff)::text"
/* clang-format on */

static void audit_listed(struct api_req *r, PGresult *res)
{
	api_reply_page(r, res, 0, 1, 2, *(int *)r->data);
}

static int valid_action(const char *s)
{
	int dots = 0;
	if (!*s)
		return 0;
	for (const char *p = s; *p; p++) {
		if (*p == '.' && p != s && p[1] && p[-1] != '.')
			dots++;
		else if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
			return 0;
	}
	return dots <= 1;
}

static void audit_list(struct api_req *r)
{
	const char *agency = api_query_param(r, "agency_id");
	const char *actor = api_query_param(r, "actor");
	const char *action = api_query_param(r, "action");
	if (agency && !api_is_uuid(agency))
		api_query_problem(r, "agency_id", "must be a UUID");
	if (action && !valid_action(action))
		api_query_problem(r, "action",
				  "must be an action such as job.retry, or its object (job)");
	if (actor && strlen(actor) > 320)
		api_query_problem(r, "actor", "must be a user's email or a user or API key id");
	struct api_page pg;
	if (api_page_parse(r, &pg))
		return;
	char *scope = api_scope_array(&r->who);
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	int *lim = xmalloc(sizeof(int));
	*lim = pg.limit;
	r->data = lim;
	r->data_free = free;
	const char *params[] = {scope, agency, actor, action, pg.after_ts, pg.after_id, limit};
	api_query(
		r,
		"SELECT " AUDIT_JSON ", " API_SQL_CURSOR_TS(
			"l.at") ", l.id"
				" FROM audit_log l LEFT JOIN users u ON u.id = l.actor_user_id"
				" LEFT JOIN api_keys k ON k.id = l.actor_key_id"
				" LEFT JOIN agencies a ON a.id = l.agency_id"
				" WHERE ($1::uuid[] IS NULL OR l.agency_id = ANY($1::uuid[]))"
				"  AND ($2::uuid IS NULL OR l.agency_id = $2::uuid)"
				"  AND ($3::text IS NULL OR l.actor_user_id::text = lower($3)"
				"   OR l.actor_key_id::text = lower($3) OR u.email = lower($3))"
				"  AND ($4::text IS NULL OR l.action = $4 OR l.action LIKE $4 || '.%')"
				"  AND ($5::timestamp IS NULL OR (l.at, l.id) < ($5::timestamp, $6::uuid))"
				" ORDER BY l.at DESC, l.id DESC LIMIT $7::int",
		7, params, audit_listed);
	free(scope);
	api_page_clear(&pg);
}

static const struct api_endpoint ep_audit = {.allow = API_ALLOW_ANY, .query = audit_query};

static void h_audit(struct http_ctx *c)
{
	api_handle(c, &ep_audit, audit_list);
}

static const struct http_route audit_routes[] = {
	{"GET", "/api/v1/audit", h_audit},
};

const struct route_table api_audit_route_table = {audit_routes,
						  sizeof(audit_routes) / sizeof(audit_routes[0])};
