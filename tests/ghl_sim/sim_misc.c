/* sim_misc.c — location-scoped calls (custom values, tags, contacts), SaaS
 * enable, and the validation helpers the handlers share.
 *
 * Choices where GHL's behaviour is not documented (GHL_API.md "uncertain"):
 * a second custom value with the same name (case-insensitive) is refused
 * with 400; a second tag with the same name answers 200 with the existing
 * tag (new tags 201); a contact whose email or phone matches an existing one
 * is refused with 400 + meta.contactId unless the location's settings allow
 * duplicate contacts (GHL's "This location does not allow duplicated
 * contacts."); /contacts/upsert updates the match (200) or creates (201).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sim.h"

/* ---- validation helpers ---- */

int sim_is_email(const char *s)
{
	const char *at = s ? strchr(s, '@') : NULL;
	if (!at || at == s || strchr(at + 1, '@'))
		return 0;
	const char *dot = strrchr(at + 1, '.');
	if (!dot || dot == at + 1 || !dot[1])
		return 0;
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char)*p))
			return 0;
	return 1;
}

const char *sim_req_str(const struct json *o, const char *key, const char *label, struct vec *msgs)
{
	struct json *v = json_get(o, key);
	if (!v || v->type == JSON_NULL) {
		vec_push(msgs, xasprintf("%s should not be empty", label));
		vec_push(msgs, xasprintf("%s must be a string", label));
		return NULL;
	}
	if (v->type != JSON_STRING) {
		vec_push(msgs, xasprintf("%s must be a string", label));
		return NULL;
	}
	const char *p = v->u.str.s;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p) {
		vec_push(msgs, xasprintf("%s should not be empty", label));
		return NULL;
	}
	return v->u.str.s;
}

const char *sim_opt_str(const struct json *o, const char *key, const char *label, struct vec *msgs)
{
	struct json *v = json_get(o, key);
	if (!v || v->type == JSON_NULL)
		return NULL;
	if (v->type != JSON_STRING) {
		vec_push(msgs, xasprintf("%s must be a string", label));
		return NULL;
	}
	return v->u.str.s;
}

void sim_msgs_free(struct vec *msgs)
{
	for (size_t i = 0; i < msgs->n; i++)
		free(msgs->v[i]);
	vec_free(msgs);
}

void sim_iso_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static int answer_422(struct sim_ctx *c, struct vec *msgs)
{
	if (!msgs->n)
		return 0;
	sim_error_422(c, msgs);
	sim_msgs_free(msgs);
	return -1;
}

static void answer_wrapped(struct sim_ctx *c, int status, const char *key, const struct json *v)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, key);
	jw_value(&w, v);
	sim_json_end(c, &w);
}

static long find_by_str(const struct json *arr, const char *key, const char *val, int nocase)
{
	for (size_t i = 0; i < json_len(arr); i++) {
		const char *v = json_get_str(json_at(arr, i), key);
		if (v && val && (nocase ? strcasecmp(v, val) == 0 : strcmp(v, val) == 0))
			return (long)i;
	}
	return -1;
}

/* ---- custom values ---- */

/* prefix + name in lower case, runs of other characters as one '_' + suffix. */
static char *field_key_as(const char *prefix, const char *name, const char *suffix)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, prefix);
	int last_us = 1;
	for (const char *p = name; *p; p++) {
		if (isalnum((unsigned char)*p)) {
			buf_putc(&b, (char)tolower((unsigned char)*p));
			last_us = 0;
		} else if (!last_us) {
			buf_putc(&b, '_');
			last_us = 1;
		}
	}
	if (b.len && b.data[b.len - 1] == '_')
		b.len--;
	buf_puts(&b, suffix);
	return buf_take(&b);
}

static char *field_key(const char *name)
{
	return field_key_as("{{ custom_values.", name, " }}");
}

void sim_h_cv_list(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (loc)
		answer_wrapped(c, 200, "customValues", loc->custom_values);
}

static int cv_validate(struct sim_ctx *c)
{
	if (sim_body_json(c) != 0)
		return -1;
	struct vec msgs = {0};
	sim_req_str(c->body, "name", "name", &msgs);
	struct json *v = json_get(c->body, "value");
	if (!v || v->type == JSON_NULL)
		vec_push(&msgs, xstrdup("value should not be empty"));
	else if (v->type != JSON_STRING)
		vec_push(&msgs, xstrdup("value must be a string"));
	return answer_422(c, &msgs);
}

void sim_h_cv_create(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc || cv_validate(c) != 0)
		return;
	const char *name = json_get_str(c->body, "name");
	if (find_by_str(loc->custom_values, "name", name, 1) >= 0) {
		sim_error(c, 400, "A custom value with this name already exists");
		return;
	}
	struct json *cv = json_new_object();
	char *id = sim_new_id(c->s);
	char *fk = field_key(name);
	json_object_set_take(cv, "id", json_new_string(id));
	json_object_set_take(cv, "name", json_new_string(name));
	json_object_set_take(cv, "fieldKey", json_new_string(fk));
	json_object_set_take(cv, "value", json_new_string(json_get_str(c->body, "value")));
	json_object_set_take(cv, "locationId", json_new_string(loc->id));
	free(id);
	free(fk);
	json_array_push_take(loc->custom_values, cv);
	answer_wrapped(c, 201, "customValue", cv);
}

/* ---- custom fields (contact fields: list, create, delete) ---- */

static const char *const cf_types[] = {
	"TEXT",	    "LARGE_TEXT",   "NUMERICAL",      "PHONE",
	"MONETORY", "CHECKBOX",	    "SINGLE_OPTIONS", "MULTIPLE_OPTIONS",
	"DATE",	    "TEXTBOX_LIST", "FILE_UPLOAD",    "RADIO",
	NULL};

void sim_h_cf_list(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (loc)
		answer_wrapped(c, 200, "customFields", loc->custom_fields);
}

void sim_h_cf_create(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *name = sim_req_str(c->body, "name", "name", &msgs);
	const char *type = sim_req_str(c->body, "dataType", "dataType", &msgs);
	int known = 0;
	for (size_t i = 0; type && cf_types[i]; i++)
		known |= !strcmp(type, cf_types[i]);
	if (type && !known)
		vec_push(&msgs, xasprintf("dataType must be one of the following values: TEXT, "
					  "LARGE_TEXT, NUMERICAL, PHONE, MONETORY, CHECKBOX, ..."));
	if (answer_422(c, &msgs) != 0)
		return;
	if (find_by_str(loc->custom_fields, "name", name, 1) >= 0) {
		sim_error(c, 400, "A custom field with this name already exists");
		return;
	}
	struct json *cf = json_new_object();
	char *id = sim_new_id(c->s);
	char *fk = field_key_as("contact.", name, "");
	json_object_set_take(cf, "id", json_new_string(id));
	json_object_set_take(cf, "name", json_new_string(name));
	json_object_set_take(cf, "fieldKey", json_new_string(fk));
	json_object_set_take(cf, "dataType", json_new_string(type));
	json_object_set_take(cf, "placeholder",
			     json_new_string(json_get_str(c->body, "placeholder")
						     ? json_get_str(c->body, "placeholder")
						     : ""));
	json_object_set_take(cf, "model", json_new_string("contact"));
	json_object_set_take(cf, "locationId", json_new_string(loc->id));
	free(id);
	free(fk);
	json_array_push_take(loc->custom_fields, cf);
	answer_wrapped(c, 201, "customField", cf);
}

/* The custom value (fields 0) or field (1) of /locations/{id}/…/{itemId}. */
static struct json *item_find(struct sim_ctx *c, int fields, struct sim_location **locp, long *idx)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc)
		return NULL;
	struct json *arr = fields ? loc->custom_fields : loc->custom_values;
	long i = find_by_str(arr, "id", c->seg[3], 0);
	if (i < 0) {
		sim_error(c, 404, fields ? "Custom field not found" : "Custom value not found");
		return NULL;
	}
	*locp = loc;
	*idx = i;
	return json_at(arr, (size_t)i);
}

static struct json *cv_find(struct sim_ctx *c, struct sim_location **locp, long *idx)
{
	return item_find(c, 0, locp, idx);
}

void sim_h_cv_get(struct sim_ctx *c)
{
	struct sim_location *loc;
	long i;
	struct json *cv = cv_find(c, &loc, &i);
	if (cv)
		answer_wrapped(c, 200, "customValue", cv);
}

void sim_h_cv_update(struct sim_ctx *c)
{
	struct sim_location *loc;
	long i;
	struct json *cv = cv_find(c, &loc, &i);
	if (!cv || cv_validate(c) != 0)
		return;
	const char *name = json_get_str(c->body, "name");
	long other = find_by_str(loc->custom_values, "name", name, 1);
	if (other >= 0 && other != i) {
		sim_error(c, 400, "A custom value with this name already exists");
		return;
	}
	char *fk = field_key(name);
	json_object_set_take(cv, "name", json_new_string(name));
	json_object_set_take(cv, "fieldKey", json_new_string(fk));
	json_object_set_take(cv, "value", json_new_string(json_get_str(c->body, "value")));
	free(fk);
	answer_wrapped(c, 200, "customValue", cv);
}

static void item_delete(struct sim_ctx *c, int fields)
{
	struct sim_location *loc;
	long i;
	struct json *item = item_find(c, fields, &loc, &i);
	if (!item)
		return;
	struct json *arr = fields ? loc->custom_fields : loc->custom_values;
	json_free(item);
	memmove(&arr->u.arr.items[i], &arr->u.arr.items[i + 1],
		(arr->u.arr.n - (size_t)i - 1) * sizeof *arr->u.arr.items);
	arr->u.arr.n--;
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "succeded"); /* GHL's spelling */
	jw_bool(&w, 1);
	jw_key(&w, "success");
	jw_bool(&w, 1);
	sim_json_end(c, &w);
}

void sim_h_cv_delete(struct sim_ctx *c)
{
	item_delete(c, 0);
}

void sim_h_cf_delete(struct sim_ctx *c)
{
	item_delete(c, 1);
}

/* ---- tags ---- */

void sim_h_tag_list(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (loc)
		answer_wrapped(c, 200, "tags", loc->tags);
}

void sim_h_tag_create(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[1]);
	if (!loc || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *name = sim_req_str(c->body, "name", "name", &msgs);
	if (answer_422(c, &msgs) != 0)
		return;
	long i = find_by_str(loc->tags, "name", name, 1);
	if (i >= 0) {
		answer_wrapped(c, 200, "tag", json_at(loc->tags, (size_t)i));
		return;
	}
	struct json *tag = json_new_object();
	char *id = sim_new_id(c->s);
	json_object_set_take(tag, "id", json_new_string(id));
	json_object_set_take(tag, "name", json_new_string(name));
	json_object_set_take(tag, "locationId", json_new_string(loc->id));
	free(id);
	json_array_push_take(loc->tags, tag);
	answer_wrapped(c, 201, "tag", tag);
}

/* ---- contacts ---- */

static int contact_validate(struct sim_ctx *c, struct sim_location **locp)
{
	if (sim_body_json(c) != 0)
		return -1;
	struct vec msgs = {0};
	const char *location = sim_req_str(c->body, "locationId", "locationId", &msgs);
	static const char *const strs[] = {
		"firstName", "lastName", "name",       "phone",	  "companyName", "address1", "city",
		"state",     "country",	 "postalCode", "website", "timezone",	 "source"};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		sim_opt_str(c->body, strs[i], strs[i], &msgs);
	const char *email = sim_opt_str(c->body, "email", "email", &msgs);
	if (email && *email && !sim_is_email(email))
		vec_push(&msgs, xstrdup("email must be an email"));
	struct json *tags = json_get(c->body, "tags");
	if (tags && tags->type != JSON_ARRAY)
		vec_push(&msgs, xstrdup("tags must be an array"));
	for (size_t i = 0; tags && i < json_len(tags); i++)
		if (json_at(tags, i)->type != JSON_STRING) {
			vec_push(&msgs, xstrdup("each value in tags must be a string"));
			break;
		}
	if (answer_422(c, &msgs) != 0)
		return -1;
	*locp = sim_location_for(c, location);
	return *locp ? 0 : -1;
}

/* Index of the contact matching the body's email (then phone), or -1. */
static long contact_match(const struct sim_location *loc, const struct json *body,
			  const char **field)
{
	const char *email = json_get_str(body, "email");
	const char *phone = json_get_str(body, "phone");
	long i = email && *email ? find_by_str(loc->contacts, "email", email, 1) : -1;
	*field = "email";
	if (i < 0 && phone && *phone) {
		i = find_by_str(loc->contacts, "phone", phone, 0);
		*field = "phone";
	}
	return i;
}

static void contact_merge(struct json *contact, const struct json *body)
{
	for (size_t i = 0; i < body->u.obj.n; i++) {
		const char *k = body->u.obj.keys[i];
		if (str_eq(k, "id") || str_eq(k, "locationId") || str_eq(k, "tags"))
			continue;
		json_object_set_take(contact, k, json_clone(body->u.obj.vals[i]));
	}
	const char *email = json_get_str(contact, "email");
	struct json *lower = email ? json_new_string(email) : NULL;
	if (lower) {
		for (char *p = lower->u.str.s; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		json_object_set_take(contact, "email", lower);
	}
	struct json *tags = json_get(contact, "tags");
	struct json *add = json_get(body, "tags");
	for (size_t i = 0; i < json_len(add); i++) {
		const char *t = json_at(add, i)->u.str.s;
		int have = 0;
		for (size_t j = 0; j < json_len(tags); j++)
			if (json_at(tags, j)->type == JSON_STRING &&
			    strcasecmp(json_at(tags, j)->u.str.s, t) == 0)
				have = 1;
		if (!have)
			json_array_push_take(tags, json_new_string(t));
	}
	const char *first = json_get_str(contact, "firstName");
	const char *last = json_get_str(contact, "lastName");
	if (!json_get_str(body, "name") && (first || last)) {
		char *name = xasprintf("%s%s%s", first ? first : "", first && last ? " " : "",
				       last ? last : "");
		json_object_set_take(contact, "contactName", json_new_string(name));
		free(name);
	}
}

static struct json *contact_new(struct sim_ctx *c, struct sim_location *loc)
{
	struct json *ct = json_new_object();
	char *id = sim_new_id(c->s);
	char ts[32];
	sim_iso_time(now_wall_ms(), ts);
	json_object_set_take(ct, "id", json_new_string(id));
	json_object_set_take(ct, "locationId", json_new_string(loc->id));
	json_object_set_take(ct, "tags", json_new_array());
	json_object_set_take(ct, "dateAdded", json_new_string(ts));
	free(id);
	contact_merge(ct, c->body);
	json_array_push_take(loc->contacts, ct);
	return ct;
}

void sim_h_contact_create(struct sim_ctx *c)
{
	struct sim_location *loc;
	if (contact_validate(c, &loc) != 0)
		return;
	const char *field;
	long i = contact_match(loc, c->body, &field);
	int allow = json_get_bool(json_get(loc->obj, "settings"), "allowDuplicateContact") == 1;
	if (i >= 0 && !allow) {
		struct json *old = json_at(loc->contacts, (size_t)i);
		struct jw w;
		sim_json_begin(c, &w, 400);
		jw_key(&w, "statusCode");
		jw_int(&w, 400);
		jw_key(&w, "message");
		jw_string(&w, "This location does not allow duplicated contacts.");
		jw_key(&w, "meta");
		jw_object_begin(&w);
		jw_key(&w, "contactName");
		jw_string(&w, json_get_str(old, "contactName"));
		jw_key(&w, "contactId");
		jw_string(&w, json_get_str(old, "id"));
		jw_key(&w, "matchingField");
		jw_string(&w, field);
		jw_object_end(&w);
		sim_json_end(c, &w);
		return;
	}
	answer_wrapped(c, 201, "contact", contact_new(c, loc));
}

void sim_h_contact_upsert(struct sim_ctx *c)
{
	struct sim_location *loc;
	if (contact_validate(c, &loc) != 0)
		return;
	const char *field;
	long i = contact_match(loc, c->body, &field);
	struct json *ct;
	int created = i < 0;
	if (created) {
		ct = contact_new(c, loc);
	} else {
		ct = json_at(loc->contacts, (size_t)i);
		contact_merge(ct, c->body);
	}
	struct jw w;
	sim_json_begin(c, &w, created ? 201 : 200);
	jw_key(&w, "new");
	jw_bool(&w, created);
	jw_key(&w, "contact");
	jw_value(&w, ct);
	sim_json_end(c, &w);
}

/* ---- SaaS ---- */

void sim_h_saas_enable(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[2]);
	if (!loc || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *company = sim_req_str(c->body, "companyId", "companyId", &msgs);
	struct json *v2 = json_get(c->body, "isSaaSV2");
	if (v2 && v2->type != JSON_BOOL)
		vec_push(&msgs, xstrdup("isSaaSV2 must be a boolean value"));
	if (answer_422(c, &msgs) != 0)
		return;
	if (!str_eq(company, loc->company_id)) {
		sim_error(c, 403, "The token does not have access to this location.");
		return;
	}
	char ts[32];
	sim_iso_time(now_wall_ms(), ts);
	json_free(loc->saas);
	loc->saas = json_clone(c->body);
	json_object_set_take(loc->saas, "enabledAt", json_new_string(ts));
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "success");
	jw_bool(&w, 1);
	jw_key(&w, "message");
	jw_string(&w, "SaaS enabled for the location");
	jw_key(&w, "locationId");
	jw_string(&w, loc->id);
	jw_key(&w, "companyId");
	jw_string(&w, loc->company_id);
	jw_key(&w, "isSaaSV2");
	jw_bool(&w, json_get_bool(c->body, "isSaaSV2") == 1);
	sim_json_end(c, &w);
}
