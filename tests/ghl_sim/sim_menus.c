/* sim_menus.c — custom menu links of a company (agency token; GHL's
 * apps/custom-menus.json):
 *   GET    /custom-menus/?locationId=&skip=&limit=&query=  {"customMenus": [...], "totalLinks"}
 *   POST   /custom-menus/          the nine required fields → 201 {"customMenu": {...}}
 *   DELETE /custom-menus/{id}      {"success", "message", "deletedMenuId", "deletedAt"}
 * With locationId the list holds the links that location shows (to all
 * locations, or to it by id); query matches titles, any part, any case.
 * Titles may repeat (not documented), so a client looks before it creates.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"

static int shows_in(const struct json *m, const char *loc)
{
	if (json_get_bool(m, "showOnLocation") != 1)
		return 0;
	if (json_get_bool(m, "showToAllLocations") == 1)
		return 1;
	struct json *locs = json_get(m, "locations");
	for (size_t i = 0; i < json_len(locs); i++)
		if (str_eq(json_at(locs, i)->u.str.s, loc))
			return 1;
	return 0;
}

static long long query_num(struct sim_ctx *c, const char *key, long long def, long long min,
			   struct vec *msgs)
{
	const char *v = sim_query(c, key);
	long long n;
	if (!v || !*v)
		return def;
	if (str_to_ll(v, min, 1000000, &n) != 0) {
		vec_push(msgs, xasprintf("%s must not be less than %lld", key, min));
		return def;
	}
	return n;
}

void sim_h_menu_list(struct sim_ctx *c)
{
	struct vec msgs = {0};
	long long skip = query_num(c, "skip", 0, 0, &msgs);
	long long limit = query_num(c, "limit", 20, 1, &msgs);
	if (sim_golive_422(c, &msgs) != 0)
		return;
	const char *loc_id = sim_query(c, "locationId");
	if (loc_id && *loc_id && !sim_location_for(c, loc_id))
		return;
	const char *q = sim_query(c, "query");
	struct json *all = sim_golive(c->s, "menus", 1);
	struct json *out = json_new_array();
	long long seen = 0;
	for (size_t i = 0; i < json_len(all); i++) {
		struct json *m = json_at(all, i);
		if (!str_eq(json_get_str(m, "companyId"), c->tok->company_id))
			continue;
		if (loc_id && *loc_id && !shows_in(m, loc_id))
			continue;
		if (q && *q && !strcasestr(json_get_str(m, "title"), q))
			continue;
		if (seen++ >= skip && (long long)json_len(out) < limit)
			json_array_push_take(out, json_clone(m));
	}
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "customMenus");
	jw_value(&w, out);
	jw_key(&w, "totalLinks");
	jw_int(&w, seen);
	sim_json_end(c, &w);
	json_free(out);
}

static int one_of(const char *v, const char *const *set)
{
	for (size_t i = 0; v && set[i]; i++)
		if (str_eq(v, set[i]))
			return 1;
	return 0;
}

static void menu_validate(struct sim_ctx *c, struct vec *msgs)
{
	static const char *const modes[] = {"iframe", "new_tab", "current_tab", NULL};
	static const char *const roles[] = {"all", "admin", "user", NULL};
	static const char *const families[] = {"fab", "fas", "far", NULL};
	const struct json *b = c->body;
	sim_req_str(b, "title", "title", msgs);
	sim_req_str(b, "url", "url", msgs);
	struct json *icon = json_get(b, "icon");
	if (!icon || icon->type != JSON_OBJECT) {
		vec_push(msgs, xstrdup("icon must be an object"));
	} else {
		sim_req_str(icon, "name", "icon.name", msgs);
		if (!one_of(json_get_str(icon, "fontFamily"), families))
			vec_push(msgs,
				 xstrdup("icon.fontFamily must be one of the following values: "
					 "fab, fas, far"));
	}
	static const char *const flags[] = {"showOnCompany", "showOnLocation",
					    "showToAllLocations"};
	for (size_t i = 0; i < 3; i++) {
		struct json *f = json_get(b, flags[i]);
		if (!f || f->type != JSON_BOOL)
			vec_push(msgs, xasprintf("%s must be a boolean value", flags[i]));
	}
	if (!one_of(json_get_str(b, "openMode"), modes))
		vec_push(msgs, xstrdup("openMode must be one of the following values: iframe, "
				       "new_tab, current_tab"));
	if (!one_of(json_get_str(b, "userRole"), roles))
		vec_push(msgs,
			 xstrdup("userRole must be one of the following values: all, admin, user"));
	struct json *locs = json_get(b, "locations");
	if (!locs || locs->type != JSON_ARRAY)
		vec_push(msgs, xstrdup("locations must be an array"));
	for (size_t i = 0; locs && locs->type == JSON_ARRAY && i < json_len(locs); i++)
		if (json_at(locs, i)->type != JSON_STRING) {
			vec_push(msgs, xstrdup("each value in locations must be a string"));
			break;
		}
}

void sim_h_menu_create(struct sim_ctx *c)
{
	if (sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	menu_validate(c, &msgs);
	if (sim_golive_422(c, &msgs) != 0)
		return;
	struct json *locs = json_get(c->body, "locations");
	for (size_t i = 0; i < json_len(locs); i++) {
		struct sim_location *loc = sim_location_get(c->s, json_at(locs, i)->u.str.s);
		if (!loc || !str_eq(loc->company_id, c->tok->company_id)) {
			sim_error(c, 400, "locations must be sub-accounts of this company");
			return;
		}
	}
	struct json *m = json_clone(c->body);
	char *id = sim_new_id(c->s);
	json_object_set_take(m, "id", json_new_string(id));
	json_object_set_take(m, "companyId", json_new_string(c->tok->company_id));
	free(id);
	json_array_push_take(sim_golive(c->s, "menus", 1), m);
	sim_golive_wrapped(c, 201, "customMenu", m);
}

void sim_h_menu_delete(struct sim_ctx *c)
{
	struct json *all = sim_golive(c->s, "menus", 1);
	for (size_t i = 0; i < json_len(all); i++) {
		struct json *m = json_at(all, i);
		if (!str_eq(json_get_str(m, "id"), c->seg[1]) ||
		    !str_eq(json_get_str(m, "companyId"), c->tok->company_id))
			continue;
		sim_golive_remove(all, i);
		char ts[32];
		sim_iso_time(now_wall_ms(), ts);
		struct jw w;
		sim_json_begin(c, &w, 200);
		jw_key(&w, "success");
		jw_bool(&w, 1);
		jw_key(&w, "message");
		jw_string(&w, "Custom menu successfully deleted");
		jw_key(&w, "deletedMenuId");
		jw_string(&w, c->seg[1]);
		jw_key(&w, "deletedAt");
		jw_string(&w, ts);
		sim_json_end(c, &w);
		return;
	}
	sim_error(c, 404, "Custom menu not found");
}
