/* client_data.c — validation of client_data_json (DESIGN.md "Client data"):
 * a table of fields, each with its kind and length cap; the string formats
 * (e-mail, E.164, country, time zone, URL) are formats.c's. */
#include "client_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "schema.h"
#include "util.h"

#define ROOT "client_data"
#define EMAIL_MAX 254
#define TZ_NAME_MAX 64
#define CUSTOM_MAX_KEYS 100
#define CUSTOM_KEY_MAX 100
#define CUSTOM_VALUE_MAX 5000
#define TAGS_MAX 50
#define TAG_MAX 100

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int is_ctl(int c)
{
	return c < 0x20 || c == 0x7f;
}

/* ---- client_data_validate ------------------------------------------------ */

enum kind { K_TEXT, K_EMAIL, K_PHONE, K_COUNTRY, K_TIMEZONE, K_URL, K_CUSTOM, K_TAGS };

struct field {
	const char *name;
	enum kind kind;
	unsigned max; /* characters, for strings */
	int required;
};

static const struct field fields[] = {
	{"name", K_TEXT, 255, 1},	   {"email", K_EMAIL, EMAIL_MAX, 1},
	{"first_name", K_TEXT, 100, 0},	   {"last_name", K_TEXT, 100, 0},
	{"phone", K_PHONE, 16, 0},	   {"address", K_TEXT, 255, 0},
	{"city", K_TEXT, 100, 0},	   {"state", K_TEXT, 100, 0},
	{"postal_code", K_TEXT, 20, 0},	   {"country", K_COUNTRY, 2, 0},
	{"website", K_URL, 2048, 0},	   {"timezone", K_TIMEZONE, TZ_NAME_MAX, 0},
	{"custom_values", K_CUSTOM, 0, 0}, {"tags", K_TAGS, 0, 0},
	{"external_id", K_TEXT, 255, 0},
};

int client_data_field_known(const char *name)
{
	for (size_t i = 0; name && i < N_ELEMS(fields); i++)
		if (!strcmp(fields[i].name, name))
			return 1;
	return 0;
}

static const char *type_of(const struct json *v)
{
	if (v->type == JSON_NUMBER && v->u.num.is_int)
		return "integer";
	return json_type_name(v->type);
}

static int has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (is_ctl((unsigned char)s[i]))
			return 1;
	return 0;
}

static int blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* A string of 1..max characters without control characters; 0 or -1 after
 * reporting. */
static int check_text(struct schema_report *c, const struct json *v, unsigned max)
{
	if (v->type != JSON_STRING) {
		schema_problemf(c, "expected string, got %s", type_of(v));
		return -1;
	}
	if (v->u.str.len == 0) {
		schema_problem(c, "must not be empty");
		return -1;
	}
	if (has_ctl(v->u.str.s, v->u.str.len)) {
		schema_problem(c, "contains a control character");
		return -1;
	}
	if (max && schema_utf8_len(v->u.str.s, v->u.str.len) > max) {
		schema_problemf(c, "longer than %u characters", max);
		return -1;
	}
	if (blank(v->u.str.s, v->u.str.len)) {
		schema_problem(c, "must not be blank");
		return -1;
	}
	return 0;
}

static void check_custom_values(struct schema_report *c, const struct json *v)
{
	size_t i, mark = c->path.len;

	if (v->type != JSON_OBJECT) {
		schema_problemf(c, "expected object, got %s", type_of(v));
		return;
	}
	if (v->u.obj.n > CUSTOM_MAX_KEYS)
		schema_problemf(c, "more than %d keys", CUSTOM_MAX_KEYS);
	for (i = 0; i < v->u.obj.n && schema_report_open(c); i++) {
		const char *k = v->u.obj.keys[i];
		const struct json *x = v->u.obj.vals[i];
		size_t klen = strlen(k);

		schema_path_push_key(c, k);
		if (klen == 0)
			schema_problem(c, "empty key");
		else if (has_ctl(k, klen))
			schema_problem(c, "key contains a control character");
		else if (schema_utf8_len(k, klen) > CUSTOM_KEY_MAX)
			schema_problemf(c, "key longer than %d characters", CUSTOM_KEY_MAX);
		else if (x->type == JSON_STRING &&
			 schema_utf8_len(x->u.str.s, x->u.str.len) > CUSTOM_VALUE_MAX)
			schema_problemf(c, "longer than %d characters", CUSTOM_VALUE_MAX);
		else if (x->type == JSON_STRING && strlen(x->u.str.s) != x->u.str.len)
			schema_problem(c, "must not contain NUL characters");
		else if (x->type != JSON_STRING && x->type != JSON_NUMBER && x->type != JSON_BOOL)
			schema_problemf(c, "expected string, number or boolean, got %s",
					type_of(x));
		schema_path_pop(c, mark);
	}
}

static void check_tags(struct schema_report *c, const struct json *v)
{
	size_t i, mark = c->path.len;

	if (v->type != JSON_ARRAY) {
		schema_problemf(c, "expected array, got %s", type_of(v));
		return;
	}
	if (v->u.arr.n > TAGS_MAX)
		schema_problemf(c, "more than %d items", TAGS_MAX);
	for (i = 0; i < v->u.arr.n && schema_report_open(c); i++) {
		schema_path_push_index(c, i);
		check_text(c, v->u.arr.items[i], TAG_MAX);
		schema_path_pop(c, mark);
	}
}

static void check_field(struct schema_report *c, const struct field *f, const struct json *v)
{
	struct err e;
	const char *s;

	if (f->kind == K_CUSTOM) {
		check_custom_values(c, v);
		return;
	}
	if (f->kind == K_TAGS) {
		check_tags(c, v);
		return;
	}
	if (check_text(c, v, f->kind == K_TEXT || f->kind == K_URL ? f->max : 0) < 0)
		return;
	s = v->u.str.s;
	static const char *const format_of[] = {
		[K_EMAIL] = "email",	   [K_PHONE] = "e164", [K_COUNTRY] = "country",
		[K_TIMEZONE] = "timezone", [K_URL] = "url",
	};
	switch (f->kind) {
	case K_EMAIL:
	case K_PHONE:
	case K_COUNTRY:
	case K_TIMEZONE:
	case K_URL:
		if (format_check(format_of[f->kind], s, v->u.str.len, &e) < 0)
			schema_problem(c, e.msg);
		break;
	case K_TEXT:
	case K_CUSTOM:
	case K_TAGS: break;
	}
}

static void unknown_field(struct schema_report *c, const char *key)
{
	const char *names[N_ELEMS(fields)];
	size_t i;

	for (i = 0; i < N_ELEMS(fields); i++)
		names[i] = fields[i].name;
	schema_unknown_field(c, key, names, N_ELEMS(fields));
}

static const struct field *field_find(const char *key)
{
	size_t i;

	for (i = 0; i < N_ELEMS(fields); i++)
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	return NULL;
}

static void check_object(struct schema_report *c, const struct json *data)
{
	unsigned char seen[N_ELEMS(fields)] = {0};
	size_t i, mark = c->path.len;

	for (i = 0; i < data->u.obj.n && schema_report_open(c); i++) {
		const char *k = data->u.obj.keys[i];
		const struct field *f = field_find(k);

		schema_path_push_key(c, k);
		if (!f) {
			unknown_field(c, k);
		} else if (seen[f - fields]) {
			schema_problem(c, "duplicate field");
		} else {
			seen[f - fields] = 1;
			check_field(c, f, data->u.obj.vals[i]);
		}
		schema_path_pop(c, mark);
	}
	for (i = 0; i < N_ELEMS(fields); i++) {
		if (!fields[i].required || seen[i])
			continue;
		schema_path_push_key(c, fields[i].name);
		schema_problem(c, "required");
		schema_path_pop(c, mark);
	}
}

size_t client_data_validate(const struct json *data, struct json *problems)
{
	struct schema_report c;

	schema_report_init(&c, problems, ROOT);
	if (!data)
		schema_problem(&c, "required");
	else if (data->type != JSON_OBJECT)
		schema_problemf(&c, "expected object, got %s", type_of(data));
	else
		check_object(&c, data);
	schema_report_clear(&c);
	return c.added;
}
