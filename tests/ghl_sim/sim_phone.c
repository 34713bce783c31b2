/* sim_phone.c — LC Phone numbers of a location (GHL_API.md "Go-live
 * endpoints", location token):
 *   GET  /phone-system/numbers/location/{locationId}/available  numbers to buy
 *   POST /phone-system/numbers/location/{locationId}/purchase   buy one
 *   GET  /phone-system/numbers/location/{locationId}            the active ones
 *
 * Choices where GHL is not documented: available numbers are made up per
 * country and area code (firstPart), +<cc><area>555<0100..0119>, each with
 * voice/SMS/MMS capabilities that follow from its last four digits, minus
 * the numbers already bought; lists answer {"numbers": [...]}. A purchase
 * is idempotent by fingerprintId: the same id again answers the first
 * purchase (201, nothing bought), the same id for another number or
 * location is refused (400); a number someone owns is refused with 400
 * "Phone number is not available".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define CANDIDATES 20

struct country {
	const char *iso, *prefix, *area;
};

static const struct country countries[] = {
	{"US", "+1", "512"},
	{"CA", "+1", "416"},
	{"GB", "+44", "20"},
	{"AU", "+61", "2"},
};

static const struct country *country_find(const char *iso)
{
	for (size_t i = 0; iso && i < sizeof countries / sizeof countries[0]; i++)
		if (!strcmp(countries[i].iso, iso))
			return &countries[i];
	return NULL;
}

static int all_digits(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* The capabilities of a number: from its last four digits. */
static void caps(const char *number, int *voice, int *sms)
{
	size_t n = strlen(number);
	long tail = n >= 4 ? strtol(number + n - 4, NULL, 10) : 0;
	*sms = tail % 4 != 3;
	*voice = tail % 5 != 4;
}

static void write_caps(struct jw *w, const char *number)
{
	int voice, sms;
	caps(number, &voice, &sms);
	jw_key(w, "capabilities");
	jw_object_begin(w);
	jw_key(w, "voice");
	jw_bool(w, voice);
	jw_key(w, "SMS");
	jw_bool(w, sms);
	jw_key(w, "MMS");
	jw_bool(w, sms);
	jw_object_end(w);
}

static struct json *caps_json(const char *number)
{
	int voice, sms;
	caps(number, &voice, &sms);
	struct json *o = json_new_object();
	json_object_set_take(o, "voice", json_new_bool(voice));
	json_object_set_take(o, "SMS", json_new_bool(sms));
	json_object_set_take(o, "MMS", json_new_bool(sms));
	return o;
}

/* The location that owns number, or NULL. */
static const char *owner(struct sim *s, const char *number)
{
	struct json *all = sim_golive(s, "numbers", 0);
	for (size_t i = 0; i < json_len(all); i++) {
		struct json *list = all->u.obj.vals[i];
		for (size_t k = 0; k < json_len(list); k++)
			if (str_eq(json_get_str(json_at(list, k), "phoneNumber"), number))
				return all->u.obj.keys[i];
	}
	return NULL;
}

static int want(struct sim_ctx *c, const char *key)
{
	const char *v = sim_query(c, key);
	return v && str_eq(v, "true");
}

void sim_h_phone_available(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[3]);
	if (!loc)
		return;
	struct vec msgs = {0};
	const char *iso = sim_query(c, "countryCode");
	const struct country *co = country_find(iso);
	if (!iso || !*iso)
		vec_push(&msgs, xstrdup("countryCode should not be empty"));
	else if (!co)
		vec_push(
			&msgs,
			xstrdup("countryCode must be one of the following values: US, CA, GB, AU"));
	const char *first = sim_query(c, "firstPart");
	if (first && *first && (!all_digits(first) || strlen(first) > 6))
		vec_push(&msgs, xstrdup("firstPart must be a number string of at most 6 digits"));
	const char *types = sim_query(c, "numberTypes");
	char type[16] = "local";
	if (types && *types) {
		size_t n = strcspn(types, ",");
		snprintf(type, sizeof type, "%.*s", (int)(n < 15 ? n : 15), types);
		if (!str_eq(type, "local") && !str_eq(type, "tollfree") && !str_eq(type, "mobile"))
			vec_push(&msgs,
				 xstrdup("numberTypes must be a comma-separated list of local, "
					 "tollfree, mobile"));
	}
	if (sim_golive_422(c, &msgs) != 0)
		return;
	const char *area = first && *first ? first : str_eq(type, "tollfree") ? "800" : co->area;
	int sms_only = want(c, "smsEnabled"), voice_only = want(c, "voiceEnabled");
	int mms_only = want(c, "mmsEnabled");
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "numbers");
	jw_array_begin(&w);
	for (int i = 0; i < CANDIDATES; i++) {
		char number[40];
		snprintf(number, sizeof number, "%s%s555%04d", co->prefix, area, 100 + i);
		int voice, sms;
		caps(number, &voice, &sms);
		if ((sms_only && !sms) || (mms_only && !sms) || (voice_only && !voice) ||
		    owner(c->s, number))
			continue;
		jw_object_begin(&w);
		jw_key(&w, "phoneNumber");
		jw_string(&w, number);
		jw_key(&w, "friendlyName");
		char friendly[48];
		snprintf(friendly, sizeof friendly, "(%s) 555-%04d", area, 100 + i);
		jw_string(&w, friendly);
		jw_key(&w, "isoCountry");
		jw_string(&w, co->iso);
		jw_key(&w, "numberType");
		jw_string(&w, type);
		write_caps(&w, number);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	sim_json_end(c, &w);
}

void sim_h_phone_list(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[3]);
	if (!loc)
		return;
	struct json *list = sim_golive_member(sim_golive(c->s, "numbers", 0), loc->id, 1);
	sim_golive_wrapped(c, 200, "numbers", list);
}

static void answer_purchase(struct sim_ctx *c, const struct json *number)
{
	struct jw w;
	sim_json_begin(c, &w, 201);
	jw_key(&w, "status");
	jw_string(&w, "success");
	jw_key(&w, "data");
	jw_value(&w, number);
	jw_key(&w, "message");
	jw_string(&w, "Phone number purchased successfully");
	jw_key(&w, "statusCode");
	jw_int(&w, 201);
	sim_json_end(c, &w);
}

static void purchase_validate(struct sim_ctx *c, struct vec *msgs)
{
	const char *number = sim_req_str(c->body, "phoneNumber", "phoneNumber", msgs);
	if (number && (number[0] != '+' || !all_digits(number + 1) || strlen(number) < 8))
		vec_push(msgs, xstrdup("phoneNumber must be a valid phone number in E.164 format"));
	const char *iso = sim_req_str(c->body, "countryCode", "countryCode", msgs);
	if (iso && !country_find(iso))
		vec_push(
			msgs,
			xstrdup("countryCode must be one of the following values: US, CA, GB, AU"));
	const char *type = sim_req_str(c->body, "numberType", "numberType", msgs);
	if (type && !str_eq(type, "local") && !str_eq(type, "tollfree") && !str_eq(type, "mobile"))
		vec_push(msgs, xstrdup("numberType must be one of the following values: local, "
				       "tollfree, mobile"));
	sim_req_str(c->body, "fingerprintId", "fingerprintId", msgs);
}

void sim_h_phone_purchase(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[3]);
	if (!loc || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	purchase_validate(c, &msgs);
	if (sim_golive_422(c, &msgs) != 0)
		return;
	const char *number = json_get_str(c->body, "phoneNumber");
	const char *fp = json_get_str(c->body, "fingerprintId");
	struct json *purchases = sim_golive(c->s, "purchases", 0);
	struct json *prev = json_get(purchases, fp);
	if (prev) {
		if (str_eq(json_get_str(prev, "phoneNumber"), number) &&
		    str_eq(json_get_str(prev, "locationId"), loc->id))
			answer_purchase(c, prev);
		else
			sim_error(c, 400, "fingerprintId was already used for another purchase");
		return;
	}
	if (owner(c->s, number)) {
		sim_error(c, 400, "Phone number is not available");
		return;
	}
	char *id = sim_new_id(c->s);
	char *sid = xasprintf("PN%s", id);
	char ts[32];
	sim_iso_time(now_wall_ms(), ts);
	struct json *n = json_new_object();
	json_object_set_take(n, "phoneNumber", json_new_string(number));
	json_object_set_take(n, "sid", json_new_string(sid));
	json_object_set_take(n, "locationId", json_new_string(loc->id));
	json_object_set_take(n, "countryCode",
			     json_new_string(json_get_str(c->body, "countryCode")));
	json_object_set_take(n, "numberType", json_new_string(json_get_str(c->body, "numberType")));
	json_object_set_take(n, "fingerprintId", json_new_string(fp));
	json_object_set_take(n, "capabilities", caps_json(number));
	json_object_set_take(n, "dateAdded", json_new_string(ts));
	free(sid);
	free(id);
	json_object_set_take(purchases, fp, json_clone(n));
	json_array_push_take(sim_golive_member(sim_golive(c->s, "numbers", 0), loc->id, 1), n);
	answer_purchase(c, n);
}
