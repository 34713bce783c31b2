/* schema.c — the JSON-Schema subset of schema.h: checking a schema, and
 * validating a value against one into a list of named problems. */
#include "schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"

/* How many values a "one of: ..." list shows. */
#define LIST_MAX 20

static const char *const keywords[] = {
	"type",
	"properties",
	"required",
	"additionalProperties",
	"items",
	"enum",
	"minimum",
	"maximum",
	"minLength",
	"maxLength",
	"minItems",
	"maxItems",
	"default",
	"description",
	"format",
	"minProperties",
	"maxProperties",
	"propertyNames",
	"unevaluatedProperties",
	"noControlCharacters",
	"notBlank",
};

static const char *const type_names[] = {
	"string", "integer", "number", "boolean", "array", "object", "null",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* ---- shared helpers ------------------------------------------------------ */

/* Cuts b back to n bytes (n <= b->len), keeping it NUL-terminated. */
static void buf_truncate(struct buf *b, size_t n)
{
	b->len = n;
	if (b->data)
		b->data[n] = '\0';
}

size_t schema_utf8_len(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

static int plain_key(const char *k, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

void schema_path_key(struct buf *b, const char *key, size_t key_len)
{
	if (plain_key(key, key_len)) {
		if (b->len > 0)
			buf_putc(b, '.');
		buf_append(b, key, key_len);
		return;
	}
	buf_putc(b, '[');
	json_write_stringn(b, key, key_len);
	buf_putc(b, ']');
}

size_t schema_problem_add(struct json *problems, const char *field, const char *message)
{
	struct json *p;

	if (!problems)
		return 1;
	p = json_new_object();
	json_object_set_take(p, "field", json_new_string(field));
	json_object_set_take(p, "message", json_new_string(message));
	json_array_push_take(problems, p);
	return 1;
}

/* Shortest "%.*g" that reads back as d (1 rather than 1.0000000000000000). */
static void put_number(struct buf *b, double d)
{
	char tmp[40];
	int prec;

	if (d == floor(d) && fabs(d) < 1e15) {
		buf_printf(b, "%lld", (long long)d);
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	buf_puts(b, tmp);
}

/* A non-negative integer keyword (minLength & co.); 1 when present and sane. */
static int get_count(const struct json *schema, const char *kw, long long *out)
{
	const struct json *v = json_get(schema, kw);

	if (!v || v->type != JSON_NUMBER || !v->u.num.is_int || v->u.num.i < 0)
		return 0;
	*out = (long long)v->u.num.i;
	return 1;
}

static int get_number(const struct json *schema, const char *kw, double *out)
{
	const struct json *v = json_get(schema, kw);

	if (!v || v->type != JSON_NUMBER)
		return 0;
	*out = v->u.num.d;
	return 1;
}

/* ---- schema_check -------------------------------------------------------- */

/* JSON pointer segment (RFC 6901: '~' -> "~0", '/' -> "~1"). */
static void ptr_push(struct buf *ptr, const char *seg)
{
	buf_putc(ptr, '/');
	for (; *seg; seg++) {
		if (*seg == '~')
			buf_puts(ptr, "~0");
		else if (*seg == '/')
			buf_puts(ptr, "~1");
		else
			buf_putc(ptr, *seg);
	}
}

static int check_schema(const struct json *s, struct buf *ptr, int depth, struct err *e);

static int check_type(const struct json *t, const char *at, struct err *e)
{
	size_t i, j;

	if (t->type == JSON_STRING) {
		if (!in_list(t->u.str.s, type_names, N_ELEMS(type_names)))
			return err_set(e,
				       "%s: unknown type \"%s\"\n"
				       "known types: string, integer, number, boolean, array, "
				       "object, null",
				       at, t->u.str.s);
		return 0;
	}
	if (t->type != JSON_ARRAY || t->u.arr.n == 0)
		return err_set(e, "%s: \"type\" must be a type name or a non-empty array of them",
			       at);
	for (i = 0; i < t->u.arr.n; i++) {
		const struct json *x = t->u.arr.items[i];

		if (x->type != JSON_STRING)
			return err_set(e, "%s: \"type\" must be a type name or an array of them",
				       at);
		if (check_type(x, at, e) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (json_equal(x, t->u.arr.items[j]))
				return err_set(e, "%s: type \"%s\" is listed twice", at,
					       x->u.str.s);
	}
	return 0;
}

static int check_properties(const struct json *props, struct buf *ptr, int depth, struct err *e)
{
	size_t i, j, mark = ptr->len;

	if (props->type != JSON_OBJECT)
		return err_set(e, "%s: \"properties\" must be an object, got %s", buf_cstr(ptr),
			       json_type_name(props->type));
	for (i = 0; i < props->u.obj.n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(props->u.obj.keys[i], props->u.obj.keys[j]) == 0)
				return err_set(e, "%s: property \"%s\" is defined twice",
					       buf_cstr(ptr), props->u.obj.keys[i]);
		ptr_push(ptr, "properties");
		ptr_push(ptr, props->u.obj.keys[i]);
		if (check_schema(props->u.obj.vals[i], ptr, depth + 1, e) < 0)
			return -1;
		buf_truncate(ptr, mark);
	}
	return 0;
}

static int check_required(const struct json *schema, const struct json *req, const char *at,
			  struct err *e)
{
	const struct json *props = json_get(schema, "properties");
	const struct json *extra = json_get(schema, "additionalProperties");
	size_t i, j;

	if (req->type != JSON_ARRAY)
		return err_set(e, "%s: \"required\" must be an array of property names", at);
	for (i = 0; i < req->u.arr.n; i++) {
		const struct json *r = req->u.arr.items[i];

		if (r->type != JSON_STRING)
			return err_set(e, "%s: \"required\" must be an array of property names",
				       at);
		for (j = 0; j < i; j++)
			if (json_equal(r, req->u.arr.items[j]))
				return err_set(e, "%s: \"%s\" is required twice", at, r->u.str.s);
		if (extra && extra->type == JSON_BOOL && !extra->u.boolean &&
		    !json_get(props, r->u.str.s))
			return err_set(e,
				       "%s: required property \"%s\" is not in \"properties\" "
				       "and additionalProperties is false",
				       at, r->u.str.s);
	}
	return 0;
}

static int check_count_pair(const struct json *s, const char *lo, const char *hi, const char *at,
			    struct err *e)
{
	const char *kws[2] = {lo, hi};
	long long vals[2];
	int i;

	for (i = 0; i < 2; i++) {
		const struct json *v = json_get(s, kws[i]);

		if (v && !get_count(s, kws[i], &vals[i]))
			return err_set(e, "%s: \"%s\" must be a non-negative integer", at, kws[i]);
	}
	if (json_get(s, lo) && json_get(s, hi) && vals[0] > vals[1])
		return err_set(e, "%s: \"%s\" (%lld) is greater than \"%s\" (%lld)", at, lo,
			       vals[0], hi, vals[1]);
	return 0;
}

static int check_bounds(const struct json *s, const char *at, struct err *e)
{
	const struct json *lo = json_get(s, "minimum"), *hi = json_get(s, "maximum");

	if (lo && lo->type != JSON_NUMBER)
		return err_set(e, "%s: \"minimum\" must be a number", at);
	if (hi && hi->type != JSON_NUMBER)
		return err_set(e, "%s: \"maximum\" must be a number", at);
	if (lo && hi && lo->u.num.d > hi->u.num.d)
		return err_set(e, "%s: \"minimum\" is greater than \"maximum\"", at);
	return 0;
}

/* The default must satisfy the schema it sits in. */
static int check_default(const struct json *s, const char *at, struct err *e)
{
	const struct json *def = json_get(s, "default");
	struct json *problems;
	const char *field, *msg;
	int rc = 0;

	if (!def)
		return 0;
	problems = json_new_array();
	if (schema_validate(s, def, "", problems) > 0) {
		field = json_get_str(json_at(problems, 0), "field");
		msg = json_get_str(json_at(problems, 0), "message");
		if (field && *field)
			rc = err_set(e, "%s: \"default\" does not match the schema: %s: %s", at,
				     field, msg);
		else
			rc = err_set(e, "%s: \"default\" does not match the schema: %s", at, msg);
	}
	json_free(problems);
	return rc;
}

/* A boolean keyword (noControlCharacters, notBlank). */
static int check_flag(const struct json *s, const char *kw, const char *at, struct err *e)
{
	const struct json *v = json_get(s, kw);

	if (v && v->type != JSON_BOOL)
		return err_set(e, "%s: \"%s\" must be true or false", at, kw);
	return 0;
}

/* The keywords whose value is one schema. */
static const char *const sub_keywords[] = {"items", "propertyNames", "unevaluatedProperties"};

static int check_keywords(const struct json *s, const char *at, struct err *e)
{
	size_t i, j;

	for (i = 0; i < s->u.obj.n; i++) {
		const char *k = s->u.obj.keys[i];

		if (strcmp(k, "pattern") == 0 || strcmp(k, "patternProperties") == 0)
			return err_set(e,
				       "%s: \"%s\" is not supported (regular expressions are not "
				       "part of the schema subset)\n"
				       "use enum or minLength/maxLength, or check the value in "
				       "the step",
				       at, k);
		if (!in_list(k, keywords, N_ELEMS(keywords)))
			return err_set(e,
				       "%s: unknown keyword \"%s\"\n"
				       "supported: type, properties, required, "
				       "additionalProperties, items, enum, minimum, maximum, "
				       "minLength, maxLength, minItems, maxItems, default, "
				       "description, format, minProperties, maxProperties, "
				       "propertyNames, unevaluatedProperties, noControlCharacters, "
				       "notBlank",
				       at, k);
		for (j = 0; j < i; j++)
			if (strcmp(k, s->u.obj.keys[j]) == 0)
				return err_set(e, "%s: keyword \"%s\" appears twice", at, k);
	}
	return 0;
}

static int check_schema(const struct json *s, struct buf *ptr, int depth, struct err *e)
{
	const struct json *v;
	size_t mark = ptr->len;
	const char *at = buf_cstr(ptr);

	if (depth > JSON_DEFAULT_MAX_DEPTH)
		return err_set(e, "%s: schema nested deeper than %d levels", at,
			       JSON_DEFAULT_MAX_DEPTH);
	if (s->type != JSON_OBJECT)
		return err_set(e, "%s: a schema must be a JSON object, got %s", at,
			       json_type_name(s->type));
	if (check_keywords(s, at, e) < 0)
		return -1;
	if ((v = json_get(s, "type")) && check_type(v, at, e) < 0)
		return -1;
	if ((v = json_get(s, "additionalProperties")) && v->type != JSON_BOOL)
		return err_set(e,
			       "%s: \"additionalProperties\" must be true or false (schemas are "
			       "not supported there)\n"
			       "use \"unevaluatedProperties\" for a schema the other members must "
			       "satisfy",
			       at);
	if (check_flag(s, "noControlCharacters", at, e) < 0 || check_flag(s, "notBlank", at, e) < 0)
		return -1;
	if ((v = json_get(s, "required")) && check_required(s, v, at, e) < 0)
		return -1;
	if ((v = json_get(s, "format")) && (v->type != JSON_STRING || !format_known(v->u.str.s)))
		return err_set(
			e,
			"%s: \"format\" must be one of: email, e164, country, timezone, url, "
			"uuid",
			at);
	if ((v = json_get(s, "enum")) && (v->type != JSON_ARRAY || v->u.arr.n == 0))
		return err_set(e, "%s: \"enum\" must be a non-empty array", at);
	if ((v = json_get(s, "description")) && v->type != JSON_STRING)
		return err_set(e, "%s: \"description\" must be a string", at);
	if (check_bounds(s, at, e) < 0 ||
	    check_count_pair(s, "minLength", "maxLength", at, e) < 0 ||
	    check_count_pair(s, "minItems", "maxItems", at, e) < 0 ||
	    check_count_pair(s, "minProperties", "maxProperties", at, e) < 0)
		return -1;
	/* Children last: `at` points into ptr, which they extend. */
	if ((v = json_get(s, "properties")) && check_properties(v, ptr, depth, e) < 0)
		return -1;
	for (size_t i = 0; i < N_ELEMS(sub_keywords); i++) {
		if (!(v = json_get(s, sub_keywords[i])))
			continue;
		ptr_push(ptr, sub_keywords[i]);
		if (check_schema(v, ptr, depth + 1, e) < 0)
			return -1;
		buf_truncate(ptr, mark);
	}
	return check_default(s, buf_cstr(ptr), e);
}

int schema_check(const struct json *schema, struct err *e)
{
	struct buf ptr;
	int rc;

	if (!schema)
		return 0;
	buf_init(&ptr);
	buf_putc(&ptr, '#');
	rc = check_schema(schema, &ptr, 0, e);
	buf_clear(&ptr);
	return rc;
}

/* ---- schema_validate ----------------------------------------------------- */

/* A validation in progress: the problems array (NULL to only count), the
 * path of the value being looked at, how many problems were added (capped at
 * SCHEMA_MAX_PROBLEMS plus one final "too many problems" entry named root),
 * and whether the value is a member's name (propertyNames). */
struct report {
	struct json *problems;
	struct buf path;
	const char *root;
	size_t added;
	int key;
};

/* 1 while the cap is not reached (more problems are worth looking for). */
static int report_open(const struct report *r)
{
	return r->added <= SCHEMA_MAX_PROBLEMS;
}

/* Adds msg as it is, named by the path. */
static void add_problem(struct report *c, const char *msg)
{
	if (c->added > SCHEMA_MAX_PROBLEMS)
		return;
	if (c->added == SCHEMA_MAX_PROBLEMS) {
		char tmp[96];

		snprintf(tmp, sizeof(tmp), "too many problems; only the first %d are listed",
			 SCHEMA_MAX_PROBLEMS);
		c->added += schema_problem_add(c->problems, c->root, tmp);
		return;
	}
	c->added += schema_problem_add(c->problems, buf_cstr(&c->path), msg);
}

/* A problem with the value at the path; about a member's name, "key ...". */
static void problem(struct report *c, const char *msg)
{
	char *keyed;

	if (!c->key) {
		add_problem(c, msg);
		return;
	}
	keyed = xasprintf("key %s", msg);
	add_problem(c, keyed);
	free(keyed);
}

static void problemf(struct report *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problemf(struct report *c, const char *fmt, ...)
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

static void path_pop(struct report *r, size_t mark)
{
	buf_truncate(&r->path, mark);
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

/* "unknown field", with a hint when key is a near miss of one of the n
 * names in known: unknown field (did you mean "email"?). */
static void unknown_field(struct report *r, const char *key, const char *const *known, size_t n)
{
	size_t i, best = 3, at = 0;

	for (i = 0; i < n; i++) {
		size_t d = edit_distance(key, known[i]);

		if (d < best) {
			best = d;
			at = i;
		}
	}
	if (best <= 2 && strlen(key) > best)
		problemf(r, "unknown field (did you mean \"%s\"?)", known[at]);
	else
		problem(r, "unknown field");
}

static const char *value_type_name(const struct json *v)
{
	if (v->type == JSON_NUMBER && v->u.num.is_int)
		return "integer";
	return json_type_name(v->type);
}

static int type_is(const char *name, const struct json *v)
{
	switch (v->type) {
	case JSON_NULL: return strcmp(name, "null") == 0;
	case JSON_BOOL: return strcmp(name, "boolean") == 0;
	case JSON_NUMBER:
		return strcmp(name, "number") == 0 ||
		       (strcmp(name, "integer") == 0 && v->u.num.is_int);
	case JSON_STRING: return strcmp(name, "string") == 0;
	case JSON_ARRAY: return strcmp(name, "array") == 0;
	case JSON_OBJECT: return strcmp(name, "object") == 0;
	}
	return 0;
}

/* 1 when t (a name or an array of names) admits v; malformed t admits all. */
static int type_matches(const struct json *t, const struct json *v)
{
	size_t i;

	if (t->type == JSON_STRING)
		return type_is(t->u.str.s, v);
	if (t->type != JSON_ARRAY || t->u.arr.n == 0)
		return 1;
	for (i = 0; i < t->u.arr.n; i++)
		if (t->u.arr.items[i]->type != JSON_STRING ||
		    type_is(t->u.arr.items[i]->u.str.s, v))
			return 1;
	return 0;
}

static int type_allows(const struct json *t, const char *name)
{
	size_t i;

	if (!t)
		return 0;
	if (t->type == JSON_STRING)
		return strcmp(t->u.str.s, name) == 0;
	for (i = 0; t->type == JSON_ARRAY && i < t->u.arr.n; i++)
		if (t->u.arr.items[i]->type == JSON_STRING &&
		    strcmp(t->u.arr.items[i]->u.str.s, name) == 0)
			return 1;
	return 0;
}

/* "expected string", "expected string or null", "expected a, b or c". */
static void type_mismatch(struct report *c, const struct json *t, const struct json *v)
{
	struct buf m;
	size_t i;

	buf_init(&m);
	buf_puts(&m, "expected ");
	if (t->type == JSON_STRING) {
		buf_puts(&m, t->u.str.s);
	} else {
		for (i = 0; i < t->u.arr.n; i++) {
			if (i > 0)
				buf_puts(&m, i + 1 == t->u.arr.n ? " or " : ", ");
			buf_puts(&m, t->u.arr.items[i]->u.str.s);
		}
	}
	buf_printf(&m, ", got %s", value_type_name(v));
	problem(c, buf_cstr(&m));
	buf_clear(&m);
}

/* Enum members as a human list: strings bare unless that would be ambiguous. */
static void put_enum_value(struct buf *m, const struct json *v)
{
	if (v->type == JSON_STRING && v->u.str.len > 0 && strlen(v->u.str.s) == v->u.str.len &&
	    !strchr(v->u.str.s, ',') && v->u.str.s[0] != ' ' && v->u.str.s[v->u.str.len - 1] != ' ')
		buf_append(m, v->u.str.s, v->u.str.len);
	else
		json_write(m, v);
}

static int check_enum(struct report *c, const struct json *en, const struct json *v)
{
	struct buf m;
	size_t i;

	if (en->type != JSON_ARRAY || en->u.arr.n == 0)
		return 0;
	for (i = 0; i < en->u.arr.n; i++)
		if (json_equal(en->u.arr.items[i], v))
			return 0;
	buf_init(&m);
	buf_puts(&m, "must be one of: ");
	for (i = 0; i < en->u.arr.n && i < LIST_MAX; i++) {
		if (i > 0)
			buf_puts(&m, ", ");
		put_enum_value(&m, en->u.arr.items[i]);
	}
	if (en->u.arr.n > LIST_MAX)
		buf_puts(&m, ", ...");
	problem(c, buf_cstr(&m));
	buf_clear(&m);
	return -1;
}

static const char *plural(long long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int flag_set(const struct json *schema, const char *kw)
{
	const struct json *v = json_get(schema, kw);

	return v && v->type == JSON_BOOL && v->u.boolean;
}

static int has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/* Nothing but spaces and tabs (an empty string is not blank: it is empty). */
static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return len > 0;
}

/* One problem at most: the first of control characters (NUL included), NUL,
 * length, blankness and format. */
static void validate_string(struct report *c, const struct json *schema, const struct json *v)
{
	long long lo, hi;
	const char *s = v->u.str.s;
	size_t len = v->u.str.len, n = schema_utf8_len(s, len);
	const struct json *f = json_get(schema, "format");
	struct err e;

	if (flag_set(schema, "noControlCharacters") && has_control(s, len)) {
		problem(c, "contains a control character");
		return;
	}
	if (strlen(s) != len && type_allows(json_get(schema, "type"), "string")) {
		problem(c, "must not contain NUL characters");
		return;
	}
	if (get_count(schema, "minLength", &lo) && (long long)n < lo) {
		if (n > 0)
			problemf(c, "shorter than %lld %s", lo,
				 plural(lo, "character", "characters"));
		else if (c->key)
			add_problem(c, "empty key");
		else
			problem(c, "must not be empty");
		return;
	}
	if (get_count(schema, "maxLength", &hi) && (long long)n > hi) {
		problemf(c, "longer than %lld %s", hi, plural(hi, "character", "characters"));
		return;
	}
	if (flag_set(schema, "notBlank") && blank(s, len)) {
		problem(c, "must not be blank");
		return;
	}
	if (f && f->type == JSON_STRING && format_known(f->u.str.s) &&
	    format_check(f->u.str.s, s, len, &e) < 0)
		problem(c, e.msg);
}

static void validate_number(struct report *c, const struct json *schema, const struct json *v)
{
	struct buf m;
	double lo, hi;

	buf_init(&m);
	if (get_number(schema, "minimum", &lo) && v->u.num.d < lo) {
		buf_puts(&m, "must be >= ");
		put_number(&m, lo);
		problem(c, buf_cstr(&m));
	}
	buf_reset(&m);
	if (get_number(schema, "maximum", &hi) && v->u.num.d > hi) {
		buf_puts(&m, "must be <= ");
		put_number(&m, hi);
		problem(c, buf_cstr(&m));
	}
	buf_clear(&m);
}

static void validate(struct report *c, const struct json *schema, const struct json *v);

/* minItems/maxItems or minProperties/maxProperties against n members, what
 * ("item", "key") counts them: "must not be empty", "fewer than 2 items",
 * "more than 100 keys". */
static void count_problems(struct report *c, const struct json *schema, const char *min_kw,
			   const char *max_kw, size_t n, const char *what)
{
	long long lo, hi;

	if (get_count(schema, min_kw, &lo) && (long long)n < lo) {
		if (n == 0)
			problem(c, "must not be empty");
		else
			problemf(c, "fewer than %lld %s%s", lo, what, lo == 1 ? "" : "s");
	}
	if (get_count(schema, max_kw, &hi) && (long long)n > hi)
		problemf(c, "more than %lld %s%s", hi, what, hi == 1 ? "" : "s");
}

static void validate_array(struct report *c, const struct json *schema, const struct json *v)
{
	const struct json *items = json_get(schema, "items");
	size_t i, mark = c->path.len;

	count_problems(c, schema, "minItems", "maxItems", v->u.arr.n, "item");
	if (!items)
		return;
	for (i = 0; i < v->u.arr.n && report_open(c); i++) {
		buf_printf(&c->path, "[%zu]", i);
		validate(c, items, v->u.arr.items[i]);
		path_pop(c, mark);
	}
}

struct key_at {
	const char *key;
	size_t i;
};

static int key_at_cmp(const void *a, const void *b)
{
	const struct key_at *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* dup[i] = 1 when member i repeats an earlier key of object v (malloc'd).
 * Sorting keeps this n·log n whatever the keys are. */
static unsigned char *duplicate_keys(const struct json *v)
{
	size_t i, n = v->u.obj.n;
	unsigned char *dup = xcalloc(n ? n : 1, 1);
	struct key_at *k = xmalloc((n ? n : 1) * sizeof(*k));

	for (i = 0; i < n; i++)
		k[i] = (struct key_at){v->u.obj.keys[i], i};
	qsort(k, n, sizeof(*k), key_at_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(k[i].key, k[i - 1].key))
			dup[k[i].i] = 1;
	free(k);
	return dup;
}

static void unknown_key(struct report *c, const char *key, const struct json *props)
{
	size_t n = props ? props->u.obj.n : 0;

	unknown_field(c, key, (const char *const *)(n ? props->u.obj.keys : NULL), n);
}

/* Checks member name k against propertyNames' schema; 1 when it reported. */
static int key_problem(struct report *c, const struct json *names, const char *k)
{
	struct json *name = json_new_string(k);
	size_t before = c->added;

	c->key = 1;
	validate(c, names, name);
	c->key = 0;
	json_free(name);
	return c->added > before;
}

/* Each member gets one problem at most: duplicate, unknown, its name
 * (propertyNames), or its value's (properties, else unevaluatedProperties). */
static void validate_object(struct report *c, const struct json *schema, const struct json *v)
{
	const struct json *props = json_get(schema, "properties");
	const struct json *extra = json_get(schema, "additionalProperties");
	const struct json *rest = json_get(schema, "unevaluatedProperties");
	const struct json *names = json_get(schema, "propertyNames");
	const struct json *req = json_get(schema, "required");
	int closed = extra && extra->type == JSON_BOOL && !extra->u.boolean;
	size_t i, mark = c->path.len;
	unsigned char *dup = duplicate_keys(v);

	if (props && props->type != JSON_OBJECT)
		props = NULL;
	count_problems(c, schema, "minProperties", "maxProperties", v->u.obj.n, "key");
	for (i = 0; i < v->u.obj.n && report_open(c); i++) {
		const char *k = v->u.obj.keys[i];
		const struct json *sub = json_get(props, k);

		if (!sub && !closed)
			sub = rest;
		if (!sub && !closed && !dup[i] && !names)
			continue;
		schema_path_key(&c->path, k, strlen(k));
		if (dup[i])
			problem(c, "duplicate field");
		else if (!sub && closed)
			unknown_key(c, k, props);
		else if (names && key_problem(c, names, k))
			; /* the name's problem is the member's */
		else if (sub)
			validate(c, sub, v->u.obj.vals[i]);
		path_pop(c, mark);
	}
	free(dup);
	for (i = 0; req && req->type == JSON_ARRAY && i < req->u.arr.n; i++) {
		const struct json *r = req->u.arr.items[i];

		if (r->type != JSON_STRING || json_get(v, r->u.str.s))
			continue;
		schema_path_key(&c->path, r->u.str.s, strlen(r->u.str.s));
		problem(c, "required");
		path_pop(c, mark);
	}
}

static void validate(struct report *c, const struct json *schema, const struct json *v)
{
	const struct json *t, *en;

	if (!schema || schema->type != JSON_OBJECT)
		return;
	t = json_get(schema, "type");
	if (t && !type_matches(t, v)) {
		type_mismatch(c, t, v);
		return;
	}
	en = json_get(schema, "enum");
	if (en && check_enum(c, en, v) < 0)
		return;
	switch (v->type) {
	case JSON_STRING: validate_string(c, schema, v); break;
	case JSON_NUMBER: validate_number(c, schema, v); break;
	case JSON_ARRAY: validate_array(c, schema, v); break;
	case JSON_OBJECT: validate_object(c, schema, v); break;
	case JSON_NULL:
	case JSON_BOOL: break;
	}
}

size_t schema_validate(const struct json *schema, const struct json *value, const char *path,
		       struct json *problems)
{
	struct report c = {.problems = problems, .root = path ? path : ""};

	if (!schema || !value)
		return 0;
	buf_init(&c.path);
	buf_puts(&c.path, c.root);
	validate(&c, schema, value);
	buf_clear(&c.path);
	return c.added;
}
