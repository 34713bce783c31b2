/* sim_user_update.c — PUT /users/{userId} (agency token of the user's
 * company, or a token of one of its locations; GHL_API.md "Go-live
 * endpoints"): permissions (an object of booleans, merged into the user's),
 * scopes (an array of strings, replaced), role (admin | user) → 200 the user.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static int may_update(struct sim_ctx *c, const struct sim_user *u)
{
	if (c->tok->cls == CLASS_COMPANY)
		return str_eq(c->tok->company_id, u->company_id);
	struct json *ids = json_get(json_get(u->obj, "roles"), "locationIds");
	for (size_t i = 0; i < json_len(ids); i++)
		if (str_eq(json_at(ids, i)->u.str.s, c->tok->location_id))
			return 1;
	return 0;
}

static void update_validate(struct sim_ctx *c, struct vec *msgs)
{
	struct json *perm = json_get(c->body, "permissions");
	if (perm && perm->type != JSON_OBJECT)
		vec_push(msgs, xstrdup("permissions must be an object"));
	for (size_t i = 0; perm && perm->type == JSON_OBJECT && i < perm->u.obj.n; i++)
		if (perm->u.obj.vals[i]->type != JSON_BOOL)
			vec_push(msgs, xasprintf("permissions.%s must be a boolean value",
						 perm->u.obj.keys[i]));
	struct json *scopes = json_get(c->body, "scopes");
	if (scopes && scopes->type != JSON_ARRAY)
		vec_push(msgs, xstrdup("scopes must be an array"));
	for (size_t i = 0; scopes && scopes->type == JSON_ARRAY && i < json_len(scopes); i++)
		if (json_at(scopes, i)->type != JSON_STRING) {
			vec_push(msgs, xstrdup("each value in scopes must be a string"));
			break;
		}
	const char *role = sim_opt_str(c->body, "role", "role", msgs);
	if (role && !str_eq(role, "admin") && !str_eq(role, "user"))
		vec_push(msgs, xstrdup("role must be one of the following values: admin, user"));
}

void sim_h_user_update(struct sim_ctx *c)
{
	struct sim_user *u = htab_get(&c->s->store.users, c->seg[1]);
	if (!u) {
		sim_error(c, 404, "User not found");
		return;
	}
	if (!may_update(c, u)) {
		sim_error(c, 403, "The token does not have access to this user.");
		return;
	}
	if (sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	update_validate(c, &msgs);
	if (sim_golive_422(c, &msgs) != 0)
		return;
	struct json *perm = json_get(c->body, "permissions");
	struct json *have = sim_golive_member(u->obj, "permissions", 0);
	for (size_t i = 0; perm && i < perm->u.obj.n; i++)
		json_object_set_take(have, perm->u.obj.keys[i], json_clone(perm->u.obj.vals[i]));
	if (json_get(c->body, "scopes"))
		json_object_set_take(u->obj, "scopes", json_clone(json_get(c->body, "scopes")));
	const char *role = json_get_str(c->body, "role");
	if (role)
		json_object_set_take(sim_golive_member(u->obj, "roles", 0), "role",
				     json_new_string(role));
	struct jw w;
	sim_json_begin(c, &w, 200);
	for (size_t i = 0; i < u->obj->u.obj.n; i++) {
		jw_key(&w, u->obj->u.obj.keys[i]);
		jw_value(&w, u->obj->u.obj.vals[i]);
	}
	sim_json_end(c, &w);
}
