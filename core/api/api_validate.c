/* api_validate.c — request bodies checked against a field spec (struct
 * api_field), which is turned into a JSON Schema and validated by the schema
 * module (schema.c): every problem collected in schema.h's problems list
 * (struct api_problems) for one 422. See api.h. */
#include "api.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "json.h"
#include "schema.h"

void api_problems_init(struct api_problems *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->unknown);
}

void api_problems_clear(struct api_problems *p)
{
	json_free(p->list);
	buf_clear(&p->unknown);
	api_problems_init(p);
}

void api_problem(struct api_problems *p, const char *field, const char *fmt, ...)
{
	struct buf m;
	buf_init(&m);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	if (!p->list)
		p->list = json_new_array();
	p->n += schema_problem_add(p->list, field && *field ? field : "body", buf_cstr(&m));
	buf_clear(&m);
}

char *api_problems_json(const struct api_problems *p)
{
	return p->list ? json_to_string(p->list) : xstrdup("[]");
}

int api_is_uuid(const char *s)
{
	return s && format_uuid_valid(s);
}

static struct json *object_schema(const struct api_field *fields);

static const char *type_name(enum api_type t)
{
	switch (t) {
	case API_T_STRING:
	case API_T_UUID:
	case API_T_EMAIL: return "string";
	case API_T_INT: return "integer";
	case API_T_NUMBER: return "number";
	case API_T_BOOL: return "boolean";
	case API_T_OBJECT: return "object";
	case API_T_ARRAY: return "array";
	case API_T_ANY: break;
	}
	return NULL;
}

/* The JSON Schema saying what f says. */
static struct json *field_schema(const struct api_field *f)
{
	struct json *s = f->type == API_T_OBJECT && f->fields ? object_schema(f->fields)
							      : json_new_object();
	const char *t = type_name(f->type);
	int nullable = f->flags & API_F_NULLABLE;
	if (t && nullable) {
		struct json *ts = json_new_array();
		json_array_push_take(ts, json_new_string(t));
		json_array_push_take(ts, json_new_string("null"));
		json_object_set_take(s, "type", ts);
	} else if (t && !json_get(s, "type")) {
		json_object_set_take(s, "type", json_new_string(t));
	}
	int is_string = f->type == API_T_STRING || f->type == API_T_UUID || f->type == API_T_EMAIL;
	if (is_string || f->type == API_T_ARRAY) {
		if (f->min_len)
			json_object_set_take(s, is_string ? "minLength" : "minItems",
					     json_new_int((int64_t)f->min_len));
		if (f->max_len)
			json_object_set_take(s, is_string ? "maxLength" : "maxItems",
					     json_new_int((int64_t)f->max_len));
	}
	if (f->type == API_T_UUID || f->type == API_T_EMAIL)
		json_object_set_take(s, "format",
				     json_new_string(f->type == API_T_UUID ? "uuid" : "email"));
	if (is_string && f->one_of) {
		struct json *en = json_new_array();
		for (const char *const *o = f->one_of; *o; o++)
			json_array_push_take(en, json_new_string(*o));
		if (nullable)
			json_array_push_take(en, json_new_null());
		json_object_set_take(s, "enum", en);
	}
	if (f->type == API_T_INT && f->min < f->max) {
		json_object_set_take(s, "minimum", json_new_int(f->min));
		json_object_set_take(s, "maximum", json_new_int(f->max));
	}
	if (f->type == API_T_ARRAY && f->items)
		json_object_set_take(s, "items", field_schema(f->items));
	return s;
}

/* {"type": "object", "properties": …, "required": […], "additionalProperties": false} */
static struct json *object_schema(const struct api_field *fields)
{
	struct json *s = json_new_object(), *props = json_new_object(), *req = json_new_array();
	json_object_set_take(s, "type", json_new_string("object"));
	for (const struct api_field *f = fields; f->name; f++) {
		json_object_set_take(props, f->name, field_schema(f));
		if (f->flags & API_F_REQUIRED)
			json_array_push_take(req, json_new_string(f->name));
	}
	json_object_set_take(s, "properties", props);
	if (req->u.arr.n)
		json_object_set_take(s, "required", req);
	else
		json_free(req);
	json_object_set_take(s, "additionalProperties", json_new_bool(0));
	return s;
}

/* Field specs are static tables: each one's schema is built once (the
 * process's life; a spec beyond the slots is built per call). */
#define SCHEMA_CACHE_SLOTS 64

static struct {
	const struct api_field *fields;
	struct json *schema;
} schema_cache[SCHEMA_CACHE_SLOTS];

static const struct json *spec_schema(const struct api_field *fields, struct json **own)
{
	size_t i;
	*own = NULL;
	for (i = 0; i < SCHEMA_CACHE_SLOTS && schema_cache[i].fields; i++)
		if (schema_cache[i].fields == fields)
			return schema_cache[i].schema;
	struct json *s = object_schema(fields);
	if (i == SCHEMA_CACHE_SLOTS)
		return *own = s;
	schema_cache[i].fields = fields;
	schema_cache[i].schema = s;
	return s;
}

size_t api_validate(const struct json *v, const struct api_field *fields, const char *prefix,
		    struct api_problems *p)
{
	struct json *own;
	const struct json *schema = spec_schema(fields, &own);
	if (!p->list)
		p->list = json_new_array();
	size_t from = json_len(p->list);
	size_t n = v ? schema_validate(schema, v, prefix, p->list)
		     : schema_problem_add(p->list, prefix ? prefix : "",
					  "expected object, got nothing");
	for (size_t i = from; i < json_len(p->list); i++) {
		struct json *it = json_at(p->list, i);
		if (!*json_get_str(it, "field")) /* the body itself */
			json_object_set_take(it, "field", json_new_string("body"));
		if (!strncmp(json_get_str(it, "message"), "unknown field", 13)) {
			buf_printf(&p->unknown, "%s%s", p->nunknown ? ", " : "",
				   json_get_str(it, "field"));
			p->nunknown++;
		}
	}
	p->n += n;
	json_free(own);
	return n;
}
