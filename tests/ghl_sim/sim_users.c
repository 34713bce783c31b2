/* sim_users.c — POST /users/, GET /users/search, GET /users/{id}.
 *
 * The password is validated and then forgotten (never stored or echoed).
 * An email already used by a user of the same company is refused with 400,
 * which is why clients search before they create.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static struct json *permissions_from(const struct json *given)
{
	static const char *const keys[] = {
		"campaignsEnabled",	"contactsEnabled",	 "workflowsEnabled",
		"opportunitiesEnabled", "dashboardStatsEnabled", "settingsEnabled",
		"funnelsEnabled",	"websitesEnabled",	 "appointmentsEnabled"};
	struct json *o = json_new_object();
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		int b = json_get_bool(given, keys[i]);
		json_object_set_take(o, keys[i], json_new_bool(b != 0));
	}
	if (given && given->type == JSON_OBJECT)
		for (size_t i = 0; i < given->u.obj.n; i++)
			if (given->u.obj.vals[i]->type == JSON_BOOL)
				json_object_set_take(o, given->u.obj.keys[i],
						     json_clone(given->u.obj.vals[i]));
	return o;
}

static void validate_user(struct sim_ctx *c, struct vec *msgs)
{
	const struct json *b = c->body;
	sim_req_str(b, "companyId", "companyId", msgs);
	sim_req_str(b, "firstName", "firstName", msgs);
	sim_req_str(b, "lastName", "lastName", msgs);
	const char *email = sim_req_str(b, "email", "email", msgs);
	if (email && !sim_is_email(email))
		vec_push(msgs, xstrdup("email must be an email"));
	const char *pw = sim_req_str(b, "password", "password", msgs);
	if (pw && strlen(pw) < 8)
		vec_push(msgs, xstrdup("password must be longer than or equal to 8 characters"));
	const char *type = sim_req_str(b, "type", "type", msgs);
	if (type && !str_eq(type, "account") && !str_eq(type, "agency"))
		vec_push(msgs,
			 xstrdup("type must be one of the following values: account, agency"));
	const char *role = sim_req_str(b, "role", "role", msgs);
	if (role && !str_eq(role, "admin") && !str_eq(role, "user"))
		vec_push(msgs, xstrdup("role must be one of the following values: admin, user"));
	struct json *ids = json_get(b, "locationIds");
	if (!ids || ids->type != JSON_ARRAY) {
		vec_push(msgs, xstrdup("locationIds must be an array"));
	} else {
		for (size_t i = 0; i < json_len(ids); i++)
			if (json_at(ids, i)->type != JSON_STRING) {
				vec_push(msgs,
					 xstrdup("each value in locationIds must be a string"));
				break;
			}
		if (str_eq(type, "account") && json_len(ids) == 0)
			vec_push(msgs, xstrdup("locationIds should not be empty"));
	}
	sim_opt_str(b, "phone", "phone", msgs);
	struct json *perm = json_get(b, "permissions");
	if (perm && perm->type != JSON_OBJECT)
		vec_push(msgs, xstrdup("permissions must be an object"));
	struct json *scopes = json_get(b, "scopes");
	if (scopes && scopes->type != JSON_ARRAY)
		vec_push(msgs, xstrdup("scopes must be an array"));
}

void sim_h_user_create(struct sim_ctx *c)
{
	struct sim *s = c->s;
	if (sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	validate_user(c, &msgs);
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	const struct json *b = c->body;
	const char *company = json_get_str(b, "companyId");
	if (sim_check_company(c, company) != 0)
		return;
	struct json *ids = json_get(b, "locationIds");
	for (size_t i = 0; i < json_len(ids); i++) {
		if (c->tok->cls == CLASS_LOCATION &&
		    !str_eq(json_at(ids, i)->u.str.s, c->tok->location_id)) {
			sim_error(c, 403, "The token does not have access to this location.");
			return;
		}
		struct sim_location *loc = sim_location_get(s, json_at(ids, i)->u.str.s);
		if (!loc || !str_eq(loc->company_id, company)) {
			sim_error(c, 400,
				  "Invalid locationIds: location not found in this company");
			return;
		}
	}
	char *lemail = sim_lower(json_get_str(b, "email"));
	char *ekey = xasprintf("%s\x1f%s", company, lemail);
	if (htab_get(&s->store.user_emails, ekey)) {
		free(lemail);
		free(ekey);
		sim_error(c, 400, "This email is already in use by another user");
		return;
	}
	struct sim_user *u = xcalloc(1, sizeof *u);
	u->id = sim_new_id(s);
	u->company_id = xstrdup(company);
	u->email_key = ekey;
	const char *first = json_get_str(b, "firstName");
	const char *last = json_get_str(b, "lastName");
	char *name = xasprintf("%s %s", first, last);
	struct json *o = json_new_object();
	json_object_set_take(o, "id", json_new_string(u->id));
	json_object_set_take(o, "name", json_new_string(name));
	json_object_set_take(o, "firstName", json_new_string(first));
	json_object_set_take(o, "lastName", json_new_string(last));
	json_object_set_take(o, "email", json_new_string(lemail));
	json_object_set_take(
		o, "phone",
		json_new_string(json_get_str(b, "phone") ? json_get_str(b, "phone") : ""));
	json_object_set_take(o, "extension", json_new_string(""));
	json_object_set_take(o, "permissions", permissions_from(json_get(b, "permissions")));
	struct json *scopes = json_get(b, "scopes");
	json_object_set_take(o, "scopes", scopes ? json_clone(scopes) : json_new_array());
	struct json *roles = json_new_object();
	json_object_set_take(roles, "type", json_new_string(json_get_str(b, "type")));
	json_object_set_take(roles, "role", json_new_string(json_get_str(b, "role")));
	json_object_set_take(roles, "locationIds", json_clone(ids));
	json_object_set_take(o, "roles", roles);
	u->obj = o;
	free(name);
	free(lemail);
	htab_put(&s->store.users, u->id, u);
	htab_put(&s->store.user_emails, u->email_key, u);
	vec_push(&s->store.user_list, u);

	struct jw w;
	sim_json_begin(c, &w, 201);
	for (size_t i = 0; i < o->u.obj.n; i++) {
		jw_key(&w, o->u.obj.keys[i]);
		jw_value(&w, o->u.obj.vals[i]);
	}
	sim_json_end(c, &w);
}

static int user_in_location(const struct sim_user *u, const char *location)
{
	struct json *ids = json_get(json_get(u->obj, "roles"), "locationIds");
	for (size_t i = 0; i < json_len(ids); i++)
		if (str_eq(json_at(ids, i)->u.str.s, location))
			return 1;
	return 0;
}

static int user_matches(const struct sim_user *u, const char *lq)
{
	if (!lq || !*lq)
		return 1;
	static const char *const fields[] = {"name", "email", "firstName", "lastName", "phone"};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		char *v = sim_lower(json_get_str(u->obj, fields[i]));
		int hit = strstr(v, lq) != NULL;
		free(v);
		if (hit)
			return 1;
	}
	return 0;
}

void sim_h_user_search(struct sim_ctx *c)
{
	struct sim *s = c->s;
	const char *company = sim_query(c, "companyId");
	if (!company || !*company) {
		struct vec msgs = {0};
		vec_push(&msgs, xstrdup("companyId should not be empty"));
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	if (sim_check_company(c, company) != 0)
		return;
	const char *location = sim_query(c, "locationId");
	char *lq = sim_lower(sim_query(c, "query"));
	long long skip = 0, limit = 25;
	const char *v = sim_query(c, "skip");
	if (v && str_to_ll(v, 0, 1000000000, &skip) != 0)
		skip = 0;
	v = sim_query(c, "limit");
	if (v && str_to_ll(v, 1, 1000, &limit) != 0)
		limit = 25;
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "users");
	jw_array_begin(&w);
	long long count = 0, out = 0;
	for (size_t i = 0; i < s->store.user_list.n; i++) {
		struct sim_user *u = s->store.user_list.v[i];
		if (!str_eq(u->company_id, company) || !user_matches(u, lq))
			continue;
		if (location && *location && !user_in_location(u, location))
			continue;
		if (count++ < skip || out >= limit)
			continue;
		jw_value(&w, u->obj);
		out++;
	}
	jw_array_end(&w);
	jw_key(&w, "count");
	jw_int(&w, count);
	sim_json_end(c, &w);
	free(lq);
}

void sim_h_user_get(struct sim_ctx *c)
{
	struct sim_user *u = htab_get(&c->s->store.users, c->seg[1]);
	if (!u) {
		sim_error(c, 404, "User not found");
		return;
	}
	int ok = c->tok->cls == CLASS_COMPANY ? str_eq(c->tok->company_id, u->company_id)
					      : user_in_location(u, c->tok->location_id);
	if (!ok) {
		sim_error(c, 403, "The token does not have access to this user.");
		return;
	}
	struct jw w;
	sim_json_begin(c, &w, 200);
	for (size_t i = 0; i < u->obj->u.obj.n; i++) {
		jw_key(&w, u->obj->u.obj.keys[i]);
		jw_value(&w, u->obj->u.obj.vals[i]);
	}
	sim_json_end(c, &w);
}
