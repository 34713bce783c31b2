/* api_validate.c — request bodies checked against a field spec (struct
 * api_field): every problem collected as {"field", "message"} for one 422.
 * See api.h. */
#include "api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void api_problems_init(struct api_problems *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->details);
	buf_init(&p->unknown);
}

void api_problems_free(struct api_problems *p)
{
	buf_free(&p->details);
	buf_free(&p->unknown);
}

void api_problem(struct api_problems *p, const char *field, const char *fmt, ...)
{
	struct buf m;
	buf_init(&m);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	buf_puts(&p->details, p->n ? "," : "[");
	buf_puts(&p->details, "{\"field\":");
	json_write_string(&p->details, field && *field ? field : "body");
	buf_puts(&p->details, ",\"message\":");
	json_write_string(&p->details, buf_cstr(&m));
	buf_putc(&p->details, '}');
	p->n++;
	buf_free(&m);
}

char *api_problems_json(const struct api_problems *p)
{
	if (!p->n)
		return xstrdup("[]");
	return xasprintf("%s]", p->details.data);
}

static char *join_path(const char *prefix, const char *name)
{
	if (!prefix || !*prefix)
		return xstrdup(name);
	return xasprintf("%s.%s", prefix, name);
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

int api_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int is_email(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || at == s + n - 1 || memchr(at + 1, '@', (size_t)(s + n - at - 1)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i]))
			return 0;
	const char *dot = memchr(at + 1, '.', (size_t)(s + n - at - 1));
	return dot && dot != at + 1 && dot != s + n - 1;
}

static const char *type_word(enum api_type t)
{
	switch (t) {
	case API_T_STRING: return "a string";
	case API_T_INT: return "an integer";
	case API_T_NUMBER: return "a number";
	case API_T_BOOL: return "a boolean";
	case API_T_OBJECT: return "an object";
	case API_T_ARRAY: return "an array";
	case API_T_UUID: return "a UUID string";
	case API_T_EMAIL: return "an email address";
	case API_T_ANY: return "any value";
	}
	return "?";
}

static void check_value(const char *path, const struct json *v, const struct api_field *f,
			struct api_problems *p);

static void check_string(const char *path, const struct json *v, const struct api_field *f,
			 struct api_problems *p)
{
	const char *s = v->u.str.s;
	size_t n = v->u.str.len;
	if (strlen(s) != n) {
		api_problem(p, path, "must not contain NUL characters");
		return;
	}
	size_t chars = utf8_chars(s, n);
	if (f->min_len && chars < f->min_len) {
		api_problem(p, path, f->min_len == 1 ? "must not be empty"
						     : "must be at least %zu characters",
			    f->min_len);
		return;
	}
	if (f->max_len && chars > f->max_len) {
		api_problem(p, path, "must be at most %zu characters", f->max_len);
		return;
	}
	if (f->type == API_T_UUID && !api_is_uuid(s)) {
		api_problem(p, path, "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
		return;
	}
	if (f->type == API_T_EMAIL && !is_email(s, n)) {
		api_problem(p, path, "must be an email address (name@example.com)");
		return;
	}
	if (f->one_of) {
		for (const char *const *o = f->one_of; *o; o++)
			if (!strcmp(*o, s))
				return;
		struct buf b;
		buf_init(&b);
		for (const char *const *o = f->one_of; *o; o++)
			buf_printf(&b, "%s%s", o == f->one_of ? "" : ", ", *o);
		api_problem(p, path, "must be one of: %s", buf_cstr(&b));
		buf_free(&b);
	}
}

static void check_value(const char *path, const struct json *v, const struct api_field *f,
			struct api_problems *p)
{
	if (v->type == JSON_NULL) {
		if (!(f->flags & API_F_NULLABLE) && f->type != API_T_ANY)
			api_problem(p, path, "must not be null (expected %s)", type_word(f->type));
		return;
	}
	enum json_type want = JSON_NULL;
	switch (f->type) {
	case API_T_STRING:
	case API_T_UUID:
	case API_T_EMAIL: want = JSON_STRING; break;
	case API_T_INT:
	case API_T_NUMBER: want = JSON_NUMBER; break;
	case API_T_BOOL: want = JSON_BOOL; break;
	case API_T_OBJECT: want = JSON_OBJECT; break;
	case API_T_ARRAY: want = JSON_ARRAY; break;
	case API_T_ANY: return;
	}
	if (v->type != want || (f->type == API_T_INT && !v->u.num.is_int)) {
		api_problem(p, path, "expected %s, got %s", type_word(f->type),
			    v->type == JSON_NUMBER && want == JSON_NUMBER ? "a fraction"
									  : json_type_name(v->type));
		return;
	}
	switch (f->type) {
	case API_T_STRING:
	case API_T_UUID:
	case API_T_EMAIL: check_string(path, v, f, p); break;
	case API_T_INT:
		if (f->min < f->max && (v->u.num.i < f->min || v->u.num.i > f->max))
			api_problem(p, path, "must be from %lld to %lld", (long long)f->min,
				    (long long)f->max);
		break;
	case API_T_OBJECT:
		if (f->fields)
			api_validate(v, f->fields, path, p);
		break;
	case API_T_ARRAY: {
		size_t n = v->u.arr.n;
		if (f->min_len && n < f->min_len)
			api_problem(p, path, "must hold at least %zu item(s)", f->min_len);
		else if (f->max_len && n > f->max_len)
			api_problem(p, path, "must hold at most %zu item(s)", f->max_len);
		if (f->items)
			for (size_t i = 0; i < n; i++) {
				char *ip = xasprintf("%s[%zu]", path, i);
				check_value(ip, v->u.arr.items[i], f->items, p);
				free(ip);
			}
		break;
	}
	default: break;
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
	size_t n = v->u.obj.n;
	unsigned char *dup = xcalloc(n ? n : 1, 1);
	struct key_at *k = xmalloc((n ? n : 1) * sizeof(*k));
	for (size_t i = 0; i < n; i++)
		k[i] = (struct key_at){v->u.obj.keys[i], i};
	qsort(k, n, sizeof(*k), key_at_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(k[i].key, k[i - 1].key))
			dup[k[i].i] = 1;
	free(k);
	return dup;
}

size_t api_validate(const struct json *v, const struct api_field *fields, const char *prefix,
		    struct api_problems *p)
{
	size_t before = p->n;
	if (!v || v->type != JSON_OBJECT) {
		api_problem(p, prefix, "expected an object, got %s",
			    v ? json_type_name(v->type) : "nothing");
		return p->n - before;
	}
	unsigned char *dup = duplicate_keys(v);
	for (size_t i = 0; i < v->u.obj.n; i++) {
		const char *key = v->u.obj.keys[i];
		char *path = join_path(prefix, key);
		const struct api_field *f = fields;
		while (f->name && strcmp(f->name, key))
			f++;
		if (dup[i]) {
			api_problem(p, path, "duplicate field");
		} else if (!f->name) {
			api_problem(p, path, "unknown field");
			buf_printf(&p->unknown, "%s%s", p->nunknown ? ", " : "", path);
			p->nunknown++;
		} else {
			check_value(path, v->u.obj.vals[i], f, p);
		}
		free(path);
	}
	free(dup);
	for (const struct api_field *f = fields; f->name; f++) {
		if (!(f->flags & API_F_REQUIRED) || json_get(v, f->name))
			continue;
		char *path = join_path(prefix, f->name);
		api_problem(p, path, "is required (%s)", type_word(f->type));
		free(path);
	}
	return p->n - before;
}
