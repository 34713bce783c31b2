/* sim_locations.c — locations (sub-accounts) and snapshots.
 *
 * A location created or updated with a snapshot starts a "push" that reports
 * `processing` until --snapshot-delay-ms (as set at that moment) has passed,
 * then `completed` with an empty `pending`. An unknown snapshotId is refused
 * with 400 (GHL checks it against the agency's snapshots after validation).
 * A create with the same company + name + prospectInfo.email as a live
 * location is allowed (GHL allows it) and counted as `duplicate_locations`.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const push_assets[] = {"funnels",   "websites",	 "workflows",
					  "pipelines", "custom_values",	 "forms",
					  "calendars", "email_templates"};
#define N_ASSETS (sizeof push_assets / sizeof push_assets[0])

static const char *const plain_fields[] = {"phone",   "address",    "city",    "state",
					   "country", "postalCode", "website", "timezone"};
#define N_PLAIN (sizeof plain_fields / sizeof plain_fields[0])

static void write_members(struct jw *w, const struct json *obj)
{
	for (size_t i = 0; i < obj->u.obj.n; i++) {
		jw_key(w, obj->u.obj.keys[i]);
		jw_value(w, obj->u.obj.vals[i]);
	}
}

static int is_country(const char *s)
{
	return strlen(s) == 2 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]);
}

/* Validates the writable fields of a create/update body into msgs.
 * Returns the prospect email (may be NULL). */
static const char *validate_location_body(const struct json *b, int create, struct vec *msgs)
{
	if (create || json_get(b, "name"))
		sim_req_str(b, "name", "name", msgs);
	sim_req_str(b, "companyId", "companyId", msgs);
	for (size_t i = 0; i < N_PLAIN; i++)
		sim_opt_str(b, plain_fields[i], plain_fields[i], msgs);
	const char *country = json_get_str(b, "country");
	if (country && !is_country(country))
		vec_push(
			msgs,
			xstrdup("country must be a valid ISO 3166-1 alpha-2 country code (e.g. US)"));
	sim_opt_str(b, "snapshotId", "snapshotId", msgs);
	static const char *const objs[] = {"settings", "social", "twilio", "mailgun",
					   "prospectInfo"};
	for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
		struct json *v = json_get(b, objs[i]);
		if (v && v->type != JSON_OBJECT && v->type != JSON_NULL)
			vec_push(msgs, xasprintf("%s must be an object", objs[i]));
	}
	struct json *pi = json_get(b, "prospectInfo");
	const char *email = NULL;
	if (pi && pi->type == JSON_OBJECT) {
		sim_req_str(pi, "firstName", "prospectInfo.firstName", msgs);
		sim_req_str(pi, "lastName", "prospectInfo.lastName", msgs);
		email = sim_req_str(pi, "email", "prospectInfo.email", msgs);
		if (email && !sim_is_email(email)) {
			vec_push(msgs, xstrdup("prospectInfo.email must be an email"));
			email = NULL;
		}
	}
	struct json *twilio = json_get(b, "twilio");
	if (twilio && twilio->type == JSON_OBJECT) {
		sim_req_str(twilio, "sid", "twilio.sid", msgs);
		sim_req_str(twilio, "authToken", "twilio.authToken", msgs);
	}
	struct json *mailgun = json_get(b, "mailgun");
	if (mailgun && mailgun->type == JSON_OBJECT) {
		sim_req_str(mailgun, "apiKey", "mailgun.apiKey", msgs);
		sim_req_str(mailgun, "domain", "mailgun.domain", msgs);
	}
	return email;
}

static struct json *default_settings(void)
{
	struct json *o = json_new_object();
	json_object_set_take(o, "allowDuplicateContact", json_new_bool(0));
	json_object_set_take(o, "allowDuplicateOpportunity", json_new_bool(0));
	json_object_set_take(o, "allowFacebookNameMerge", json_new_bool(0));
	json_object_set_take(o, "disableContactTimezone", json_new_bool(0));
	return o;
}

/* Copies the writable fields present in b onto the location object. */
static void apply_fields(struct json *obj, const struct json *b, const char *email)
{
	const char *name = json_get_str(b, "name");
	if (name)
		json_object_set_take(obj, "name", json_new_string(name));
	for (size_t i = 0; i < N_PLAIN; i++) {
		const char *v = json_get_str(b, plain_fields[i]);
		if (v)
			json_object_set_take(obj, plain_fields[i], json_new_string(v));
	}
	if (email)
		json_object_set_take(obj, "email", json_new_string(email));
	struct json *settings = json_get(b, "settings");
	if (settings && settings->type == JSON_OBJECT) {
		struct json *cur = json_get(obj, "settings");
		for (size_t i = 0; i < settings->u.obj.n; i++)
			json_object_set_take(cur, settings->u.obj.keys[i],
					     json_clone(settings->u.obj.vals[i]));
	}
	struct json *social = json_get(b, "social");
	if (social && social->type == JSON_OBJECT)
		json_object_set_take(obj, "social", json_clone(social));
}

static char *dup_key_for(const char *company, const struct json *obj)
{
	char *name = sim_lower(json_get_str(obj, "name"));
	char *email = sim_lower(json_get_str(obj, "email"));
	char *k = xasprintf("%s\x1f%s\x1f%s", company, name, email);
	free(name);
	free(email);
	return k;
}

static void dup_index_add(struct sim *s, const char *key)
{
	intptr_t n = (intptr_t)htab_get(&s->store.dup_index, key);
	htab_put(&s->store.dup_index, key, (void *)(n + 1));
}

static void dup_index_sub(struct sim *s, const char *key)
{
	intptr_t n = (intptr_t)htab_get(&s->store.dup_index, key);
	if (n <= 1)
		htab_del(&s->store.dup_index, key);
	else
		htab_put(&s->store.dup_index, key, (void *)(n - 1));
}

static void start_push(struct sim *s, struct sim_location *loc, const char *snapshot_id)
{
	free(loc->snapshot_id);
	free(loc->push_id);
	loc->snapshot_id = xstrdup(snapshot_id);
	loc->push_id = sim_new_id(s);
	loc->push_start_ms = now_wall_ms();
	loc->push_done_ms = loc->push_start_ms + s->cfg.snapshot_delay_ms;
}

static void answer_location_flat(struct sim_ctx *c, const struct sim_location *loc, int status)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	write_members(&w, loc->obj);
	sim_json_end(c, &w);
}

void sim_h_location_create(struct sim_ctx *c)
{
	struct sim *s = c->s;
	if (sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *email = validate_location_body(c->body, 1, &msgs);
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	const char *company = json_get_str(c->body, "companyId");
	if (sim_check_company(c, company) != 0)
		return;
	const char *snap = json_get_str(c->body, "snapshotId");
	if (snap && *snap && !sim_snapshot_get(s, company, snap)) {
		sim_error(c, 400, "Invalid snapshotId: no such snapshot for this company");
		return;
	}
	struct sim_location *loc = xcalloc(1, sizeof *loc);
	loc->id = sim_new_id(s);
	loc->company_id = xstrdup(company);
	loc->seq = ++s->store.seq;
	struct json *o = json_new_object();
	json_object_set_take(o, "id", json_new_string(loc->id));
	json_object_set_take(o, "companyId", json_new_string(company));
	json_object_set_take(o, "name", json_new_string(""));
	json_object_set_take(o, "email", json_new_string(""));
	json_object_set_take(o, "domain", json_new_string(""));
	for (size_t i = 0; i < N_PLAIN; i++)
		json_object_set_take(o, plain_fields[i], json_new_string(""));
	json_object_set_take(o, "settings", default_settings());
	json_object_set_take(o, "social", json_new_object());
	apply_fields(o, c->body, email);
	loc->obj = o;
	loc->custom_values = json_new_array();
	loc->custom_fields = json_new_array();
	loc->tags = json_new_array();
	loc->contacts = json_new_array();
	loc->dup_key = dup_key_for(company, o);
	if (htab_get(&s->store.dup_index, loc->dup_key))
		s->stats.duplicate_locations++;
	dup_index_add(s, loc->dup_key);
	if (snap && *snap)
		start_push(s, loc, snap);
	htab_put(&s->store.locations, loc->id, loc);
	vec_push(&s->store.location_list, loc);
	s->stats.locations_created++;
	answer_location_flat(c, loc, 200);
}

void sim_h_location_get(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc)
		return;
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "location");
	jw_value(&w, loc->obj);
	sim_json_end(c, &w);
}

void sim_h_location_update(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *email = validate_location_body(c->body, 0, &msgs);
	struct json *snapobj = json_get(c->body, "snapshot");
	const char *snap = NULL;
	if (snapobj && snapobj->type == JSON_OBJECT)
		snap = sim_req_str(snapobj, "id", "snapshot.id", &msgs);
	else if (snapobj && snapobj->type != JSON_NULL)
		vec_push(&msgs, xstrdup("snapshot must be an object"));
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	if (!str_eq(json_get_str(c->body, "companyId"), loc->company_id)) {
		sim_error(c, 403, "The token does not have access to this location.");
		return;
	}
	if (snap && !sim_snapshot_get(s, loc->company_id, snap)) {
		sim_error(c, 400, "Invalid snapshot id: no such snapshot for this company");
		return;
	}
	apply_fields(loc->obj, c->body, email);
	char *key = dup_key_for(loc->company_id, loc->obj);
	if (!str_eq(key, loc->dup_key)) {
		dup_index_sub(s, loc->dup_key);
		dup_index_add(s, key);
		free(loc->dup_key);
		loc->dup_key = key;
	} else {
		free(key);
	}
	if (snap)
		start_push(s, loc, snap);
	answer_location_flat(c, loc, 200);
}

void sim_h_location_delete(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc)
		return;
	sim_location_delete(c->s, loc);
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "success");
	jw_bool(&w, 1);
	jw_key(&w, "message");
	jw_string(&w, "Sub-account deleted successfully");
	sim_json_end(c, &w);
}

/* Parses skip/limit query values; pushes a 422 message when invalid. */
static long long query_int(struct sim_ctx *c, const char *key, long long def, long long max,
			   struct vec *msgs)
{
	const char *v = sim_query(c, key);
	long long n;
	if (!v || !*v)
		return def;
	if (str_to_ll(v, 0, max, &n) != 0) {
		vec_push(msgs, xasprintf("%s must be a number between 0 and %lld", key, max));
		return def;
	}
	return n;
}

void sim_h_location_search(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct vec msgs = {0};
	const char *company = sim_query(c, "companyId");
	const char *email = sim_query(c, "email");
	const char *order = sim_query(c, "order");
	long long skip = query_int(c, "skip", 0, 1000000000, &msgs);
	long long limit = query_int(c, "limit", 10, 1000, &msgs);
	if (order && !str_eq(order, "asc") && !str_eq(order, "desc"))
		vec_push(&msgs, xstrdup("order must be one of the following values: asc, desc"));
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	if (!company || !*company)
		company = c->tok->company_id;
	if (sim_check_company(c, company) != 0)
		return;
	char *want = email && *email ? sim_lower(email) : NULL;
	int desc = str_eq(order, "desc");
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "locations");
	jw_array_begin(&w);
	size_t n = s->store.location_list.n;
	long long seen = 0, out = 0;
	for (size_t i = 0; i < n && out < limit; i++) {
		struct sim_location *loc = s->store.location_list.v[desc ? n - 1 - i : i];
		if (!str_eq(loc->company_id, company))
			continue;
		if (c->tok->cls == CLASS_LOCATION && !str_eq(loc->id, c->tok->location_id))
			continue; /* a location token sees its own location only */
		if (want) {
			char *le = sim_lower(json_get_str(loc->obj, "email"));
			int match = str_eq(le, want);
			free(le);
			if (!match)
				continue;
		}
		if (seen++ < skip)
			continue;
		jw_value(&w, loc->obj);
		out++;
	}
	jw_array_end(&w);
	sim_json_end(c, &w);
	free(want);
}

void sim_h_snapshots_list(struct sim_ctx *c)
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
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "snapshots");
	jw_array_begin(&w);
	for (size_t i = 0; i < s->store.snapshot_list.n; i++) {
		struct sim_snapshot *sn = s->store.snapshot_list.v[i];
		if (!str_eq(sn->company_id, company))
			continue;
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, sn->id);
		jw_key(&w, "name");
		jw_string(&w, sn->name);
		jw_key(&w, "type");
		jw_string(&w, sn->type);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	sim_json_end(c, &w);
}

void sim_write_push(struct sim *s, struct jw *w, const struct sim_location *loc, int64_t now_ms)
{
	(void)s;
	size_t done = N_ASSETS;
	int processing = now_ms < loc->push_done_ms;
	if (processing) {
		int64_t span = loc->push_done_ms - loc->push_start_ms;
		int64_t el = now_ms - loc->push_start_ms;
		done = span > 0 && el > 0 ? (size_t)((double)el / (double)span * (double)N_ASSETS)
					  : 0;
		if (done >= N_ASSETS)
			done = N_ASSETS - 1;
	}
	jw_object_begin(w);
	jw_key(w, "id");
	jw_string(w, loc->push_id);
	jw_key(w, "locationId");
	jw_string(w, loc->id);
	jw_key(w, "snapshotId");
	jw_string(w, loc->snapshot_id);
	jw_key(w, "status");
	jw_string(w, processing ? "processing" : loc->push_failed ? "failed" : "completed");
	jw_key(w, "completed");
	jw_array_begin(w);
	for (size_t i = 0; i < done; i++)
		jw_string(w, push_assets[i]);
	jw_array_end(w);
	jw_key(w, "pending");
	jw_array_begin(w);
	for (size_t i = done; i < N_ASSETS; i++)
		jw_string(w, push_assets[i]);
	jw_array_end(w);
	jw_object_end(w);
}

void sim_h_snapshot_status(struct sim_ctx *c)
{
	const char *snap = c->seg[2];
	const char *company = sim_query(c, "companyId");
	if (company && *company && sim_check_company(c, company) != 0)
		return;
	struct sim_location *loc = sim_location_for(c, c->seg[4]);
	if (!loc)
		return;
	if (!loc->snapshot_id || !str_eq(loc->snapshot_id, snap)) {
		sim_error(c, 404, "No push of this snapshot found for this location");
		return;
	}
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "data");
	sim_write_push(c->s, &w, loc, now_wall_ms());
	sim_json_end(c, &w);
}

void sim_h_snapshot_share(struct sim_ctx *c)
{
	struct sim *s = c->s;
	if (sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *company = sim_query(c, "companyId");
	if (!company || !*company)
		company = json_get_str(c->body, "companyId");
	if (!company || !*company)
		vec_push(&msgs, xstrdup("companyId should not be empty"));
	const char *snap = sim_req_str(c->body, "snapshot_id", "snapshot_id", &msgs);
	const char *type = sim_req_str(c->body, "share_type", "share_type", &msgs);
	if (type && !str_eq(type, "link") && !str_eq(type, "permanent_link") &&
	    !str_eq(type, "agency_link") && !str_eq(type, "location_link"))
		vec_push(
			&msgs,
			xstrdup("share_type must be one of the following values: link, permanent_link, "
				"agency_link, location_link"));
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	if (sim_check_company(c, company) != 0)
		return;
	if (!sim_snapshot_get(s, company, snap)) {
		sim_error(c, 400, "Invalid snapshot_id: no such snapshot for this company");
		return;
	}
	char *id = sim_new_id(s);
	char *link = xasprintf("https://affiliates.gohighlevel.com/?share=%s", id);
	struct jw w;
	sim_json_begin(c, &w, 201);
	jw_key(&w, "id");
	jw_string(&w, id);
	jw_key(&w, "shareLink");
	jw_string(&w, link);
	sim_json_end(c, &w);
	free(id);
	free(link);
}
