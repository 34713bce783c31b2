/* sim_calendars.c — calendars of a location (GHL_API.md "Go-live endpoints"):
 *   GET    /calendars/?locationId=   {"calendars": [...]}
 *   POST   /calendars/               *locationId, *name, ... → 200 {"calendar": {...}}
 *   DELETE /calendars/{calendarId}   {"succeeded": true}
 * Either token, as long as it reaches the calendar's location; Version
 * 2021-04-15 (GHL's calendars API; 2023-02-21 too, as for /saas/). Choices where
 * GHL is not documented: names may repeat (so a step must look before it
 * creates); calendarType defaults to "event", slotDuration to 30 "mins".
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void sim_h_calendar_list(struct sim_ctx *c)
{
	const char *id = sim_query(c, "locationId");
	if (!id || !*id) {
		struct vec msgs = {0};
		vec_push(&msgs, xstrdup("locationId should not be empty"));
		sim_golive_422(c, &msgs);
		return;
	}
	struct sim_location *loc = sim_location_for(c, id);
	if (!loc)
		return;
	struct json *all = sim_golive(c->s, "calendars", 1);
	struct json *mine = json_new_array();
	for (size_t i = 0; i < json_len(all); i++)
		if (str_eq(json_get_str(json_at(all, i), "locationId"), loc->id))
			json_array_push_take(mine, json_clone(json_at(all, i)));
	sim_golive_wrapped(c, 200, "calendars", mine);
	json_free(mine);
}

static void set_default(struct json *o, const char *key, struct json *v)
{
	if (!json_get(o, key))
		json_object_set_take(o, key, v);
	else
		json_free(v);
}

void sim_h_calendar_create(struct sim_ctx *c)
{
	if (sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *loc_id = sim_req_str(c->body, "locationId", "locationId", &msgs);
	sim_req_str(c->body, "name", "name", &msgs);
	sim_opt_str(c->body, "description", "description", &msgs);
	sim_opt_str(c->body, "slug", "slug", &msgs);
	const char *type = sim_opt_str(c->body, "calendarType", "calendarType", &msgs);
	static const char *const types[] = {"round_robin", "event",	      "class_booking",
					    "collective",  "service_booking", "personal",
					    NULL};
	int known = !type;
	for (size_t i = 0; type && types[i]; i++)
		known |= str_eq(type, types[i]);
	if (!known)
		vec_push(&msgs, xstrdup("calendarType must be one of the following values: "
					"round_robin, event, class_booking, collective, "
					"service_booking, personal"));
	struct json *slot = json_get(c->body, "slotDuration");
	if (slot && (slot->type != JSON_NUMBER || !slot->u.num.is_int))
		vec_push(&msgs, xstrdup("slotDuration must be a number"));
	if (sim_golive_422(c, &msgs) != 0)
		return;
	struct sim_location *loc = sim_location_for(c, loc_id);
	if (!loc)
		return;
	struct json *cal = json_clone(c->body);
	char *id = sim_new_id(c->s);
	json_object_set_take(cal, "id", json_new_string(id));
	free(id);
	set_default(cal, "calendarType", json_new_string("event"));
	set_default(cal, "slotDuration", json_new_int(30));
	set_default(cal, "slotDurationUnit", json_new_string("mins"));
	set_default(cal, "isActive", json_new_bool(1));
	json_array_push_take(sim_golive(c->s, "calendars", 1), cal);
	sim_golive_wrapped(c, 200, "calendar", cal);
}

void sim_h_calendar_delete(struct sim_ctx *c)
{
	struct json *all = sim_golive(c->s, "calendars", 1);
	for (size_t i = 0; i < json_len(all); i++) {
		struct json *cal = json_at(all, i);
		if (!str_eq(json_get_str(cal, "id"), c->seg[1]))
			continue;
		if (!sim_location_for(c, json_get_str(cal, "locationId")))
			return;
		sim_golive_remove(all, i);
		struct jw w;
		sim_json_begin(c, &w, 200);
		jw_key(&w, "succeeded");
		jw_bool(&w, 1);
		sim_json_end(c, &w);
		return;
	}
	sim_error(c, 404, "Calendar not found");
}
