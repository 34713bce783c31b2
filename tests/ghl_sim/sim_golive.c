/* sim_golive.c — the store of the go-live resources (phone numbers,
 * calendars, menu links, SaaS pause and rebilling: sim_phone.c,
 * sim_calendars.c, sim_menus.c, sim_saas.c) and the answer helpers they share.
 *
 * The store is one JSON object, s->store.golive, made on first use and freed
 * with the rest of the store (so POST /_sim/reset forgets it too):
 *   {"numbers":   {locationId: [number, ...]},   active phone numbers
 *    "purchases": {fingerprintId: purchase},     every purchase, by its id
 *    "calendars": [calendar, ...],
 *    "menus":     [custom menu link, ...]        (each with its companyId)
 *    "paused":    {locationId: bool},
 *    "rebilling": {companyId: {product: {"locationIds": [...], "config": {...}}}}}
 * GET /_sim/state shows it as "golive".
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct json *sim_golive(struct sim *s, const char *name, int array)
{
	if (!s->store.golive)
		s->store.golive = json_new_object();
	struct json *v = json_get(s->store.golive, name);
	if (!v) {
		v = array ? json_new_array() : json_new_object();
		json_object_set_take(s->store.golive, name, v);
	}
	return v;
}

struct json *sim_golive_member(struct json *obj, const char *key, int array)
{
	struct json *v = json_get(obj, key);
	if (!v) {
		v = array ? json_new_array() : json_new_object();
		json_object_set_take(obj, key, v);
	}
	return v;
}

void sim_golive_remove(struct json *arr, size_t i)
{
	json_free(arr->u.arr.items[i]);
	memmove(&arr->u.arr.items[i], &arr->u.arr.items[i + 1],
		(arr->u.arr.n - i - 1) * sizeof *arr->u.arr.items);
	arr->u.arr.n--;
}

int sim_golive_422(struct sim_ctx *c, struct vec *msgs)
{
	if (!msgs->n)
		return 0;
	sim_error_422(c, msgs);
	sim_msgs_free(msgs);
	return -1;
}

void sim_golive_wrapped(struct sim_ctx *c, int status, const char *key, const struct json *v)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, key);
	jw_value(&w, v);
	sim_json_end(c, &w);
}

/* GHL's write answer: {"success": true, "message": msg}. */
void sim_golive_success(struct sim_ctx *c, int status, const char *msg)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, "success");
	jw_bool(&w, 1);
	jw_key(&w, "message");
	jw_string(&w, msg);
	sim_json_end(c, &w);
}
