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
	{ "name", K_TEXT, 255, 1 },
	{ "email", K_EMAIL, EMAIL_MAX, 1 },
	{ "first_name", K_TEXT, 100, 0 },
	{ "last_name", K_TEXT, 100, 0 },
	{ "phone", K_PHONE, 16, 0 },
	{ "address", K_TEXT, 255, 0 },
	{ "city", K_TEXT, 100, 0 },
	{ "state", K_TEXT, 100, 0 },
	{ "postal_code", K_TEXT, 20, 0 },
	{ "country", K_COUNTRY, 2, 0 },
	{ "website", K_URL, 2048, 0 },
	{ "timezone", K_TIMEZONE, TZ_NAME_MAX, 0 },
	{ "custom_values", K_CUSTOM, 0, 0 },
	{ "tags", K_TAGS, 0, 0 },
	{ "external_id", K_TEXT, 255, 0 },
};

struct ctx {
	struct json *problems;
	struct buf path;
	size_t added;
};

static void problem(struct ctx *c, const char *msg)
{
	if (c->added > SCHEMA_MAX_PROBLEMS)
		return;
	if (c->added == SCHEMA_MAX_PROBLEMS) {
		char tmp[96];

		snprintf(tmp, sizeof(tmp), "too many problems; only the first %d are listed",
			 SCHEMA_MAX_PROBLEMS);
		c->added += schema_problem_add(c->problems, ROOT, tmp);
		return;
	}
	c->added += schema_problem_add(c->problems, buf_cstr(&c->path), msg);
}

static void problemf(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problemf(struct ctx *c, const char *fmt, ...)
{
	struct buf m;
	va_list ap;

	buf_init(&m);
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	problem(c, buf_cstr(&m));
	buf_clear(&m);
}

static void path_push_key(struct ctx *c, const char *key)
{
	schema_path_key(&c->path, key, strlen(key));
}

static void path_pop(struct ctx *c, size_t mark)
{
	c->path.len = mark;
	if (c->path.data)
		c->path.data[mark] = '\0';
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
static int check_text(struct ctx *c, const struct json *v, unsigned max)
{
	if (v->type != JSON_STRING) {
		problemf(c, "expected string, got %s", type_of(v));
		return -1;
	}
	if (v->u.str.len == 0) {
		problem(c, "must not be empty");
		return -1;
	}
	if (has_ctl(v->u.str.s, v->u.str.len)) {
		problem(c, "contains a control character");
		return -1;
	}
	if (max && schema_utf8_len(v->u.str.s, v->u.str.len) > max) {
		problemf(c, "longer than %u characters", max);
		return -1;
	}
	if (blank(v->u.str.s, v->u.str.len)) {
		problem(c, "must not be blank");
		return -1;
	}
	return 0;
}

static void check_custom_values(struct ctx *c, const struct json *v)
{
	size_t i, mark = c->path.len;

	if (v->type != JSON_OBJECT) {
		problemf(c, "expected object, got %s", type_of(v));
		return;
	}
	if (v->u.obj.n > CUSTOM_MAX_KEYS)
		problemf(c, "more than %d keys", CUSTOM_MAX_KEYS);
	for (i = 0; i < v->u.obj.n && c->added <= SCHEMA_MAX_PROBLEMS; i++) {
		const char *k = v->u.obj.keys[i];
		const struct json *x = v->u.obj.vals[i];
		size_t klen = strlen(k);

		path_push_key(c, k);
		if (klen == 0)
			problem(c, "empty key");
		else if (has_ctl(k, klen))
			problem(c, "key contains a control character");
		else if (schema_utf8_len(k, klen) > CUSTOM_KEY_MAX)
			problemf(c, "key longer than %d characters", CUSTOM_KEY_MAX);
		else if (x->type == JSON_STRING &&
			 schema_utf8_len(x->u.str.s, x->u.str.len) > CUSTOM_VALUE_MAX)
			problemf(c, "longer than %d characters", CUSTOM_VALUE_MAX);
		else if (x->type == JSON_STRING && strlen(x->u.str.s) != x->u.str.len)
			problem(c, "must not contain NUL characters");
		else if (x->type != JSON_STRING && x->type != JSON_NUMBER && x->type != JSON_BOOL)
			problemf(c, "expected string, number or boolean, got %s", type_of(x));
		path_pop(c, mark);
	}
}

static void check_tags(struct ctx *c, const struct json *v)
{
	size_t i, mark = c->path.len;

	if (v->type != JSON_ARRAY) {
		problemf(c, "expected array, got %s", type_of(v));
		return;
	}
	if (v->u.arr.n > TAGS_MAX)
		problemf(c, "more than %d items", TAGS_MAX);
	for (i = 0; i < v->u.arr.n && c->added <= SCHEMA_MAX_PROBLEMS; i++) {
		buf_printf(&c->path, "[%zu]", i);
		check_text(c, v->u.arr.items[i], TAG_MAX);
		path_pop(c, mark);
	}
}

static void check_field(struct ctx *c, const struct field *f, const struct json *v)
{
	char why[256];
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
		[K_EMAIL] = "email", [K_PHONE] = "e164", [K_COUNTRY] = "country",
		[K_TIMEZONE] = "timezone", [K_URL] = "url",
	};
	switch (f->kind) {
	case K_EMAIL:
	case K_PHONE:
	case K_COUNTRY:
	case K_TIMEZONE:
	case K_URL:
		if (format_check(format_of[f->kind], s, v->u.str.len, why, sizeof(why)) < 0)
			problem(c, why);
		break;
	case K_TEXT:
	case K_CUSTOM:
	case K_TAGS:
		break;
	}
}

/* Levenshtein distance of short strings, capped at 3. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[33];

	if (la > 32 || lb > 32)
		return 3;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] < 3 ? row[lb] : 3;
}

static void unknown_field(struct ctx *c, const char *key)
{
	size_t i, best = 3, at = 0;

	for (i = 0; i < N_ELEMS(fields); i++) {
		size_t d = edit_distance(key, fields[i].name);

		if (d < best) {
			best = d;
			at = i;
		}
	}
	if (best <= 2 && strlen(key) > best)
		problemf(c, "unknown field (did you mean \"%s\"?)", fields[at].name);
	else
		problem(c, "unknown field");
}

static const struct field *field_find(const char *key)
{
	size_t i;

	for (i = 0; i < N_ELEMS(fields); i++)
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	return NULL;
}

static void check_object(struct ctx *c, const struct json *data)
{
	unsigned char seen[N_ELEMS(fields)] = { 0 };
	size_t i, mark = c->path.len;

	for (i = 0; i < data->u.obj.n && c->added <= SCHEMA_MAX_PROBLEMS; i++) {
		const char *k = data->u.obj.keys[i];
		const struct field *f = field_find(k);

		path_push_key(c, k);
		if (!f) {
			unknown_field(c, k);
		} else if (seen[f - fields]) {
			problem(c, "duplicate field");
		} else {
			seen[f - fields] = 1;
			check_field(c, f, data->u.obj.vals[i]);
		}
		path_pop(c, mark);
	}
	for (i = 0; i < N_ELEMS(fields); i++) {
		if (!fields[i].required || seen[i])
			continue;
		path_push_key(c, fields[i].name);
		problem(c, "required");
		path_pop(c, mark);
	}
}

size_t client_data_validate(const struct json *data, struct json *problems)
{
	struct ctx c;

	c.problems = problems;
	c.added = 0;
	buf_init(&c.path);
	buf_puts(&c.path, ROOT);
	if (!data)
		problem(&c, "required");
	else if (data->type != JSON_OBJECT)
		problemf(&c, "expected object, got %s", type_of(data));
	else
		check_object(&c, data);
	buf_clear(&c.path);
	return c.added;
}
