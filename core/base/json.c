/* json.c — JSON DOM parser and writer (RFC 8259).
 *
 * Parsing is recursive descent bounded by max_depth, so stack use is bounded
 * by what the caller allows. json_free/clone/equal/write recurse too: trees
 * from the parser are at most max_depth deep, and builders must keep to the
 * same order of magnitude (JSON_DEFAULT_MAX_DEPTH levels; jw_* supports 64).
 *
 * Number conversion uses strtod/snprintf and so assumes the "C" LC_NUMERIC
 * locale (the agent never calls setlocale).
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), or 0
 * when it is malformed: overlong, a surrogate, above U+10FFFF or truncated. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

static void utf8_put(struct buf *b, uint32_t cp)
{
	char o[4];
	size_t n;

	if (cp < 0x80) {
		o[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		o[0] = (char)(0xF0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	buf_append(b, o, n);
}

/* ---- values ------------------------------------------------------------ */

static struct json *json_new(enum json_type t)
{
	struct json *v = xcalloc(1, sizeof(*v));
	v->type = t;
	return v;
}

struct json *json_new_null(void)
{
	return json_new(JSON_NULL);
}

struct json *json_new_bool(int b)
{
	struct json *v = json_new(JSON_BOOL);
	v->u.boolean = !!b;
	return v;
}

struct json *json_new_int(int64_t i)
{
	struct json *v = json_new(JSON_NUMBER);
	v->u.num.i = i;
	v->u.num.d = (double)i;
	v->u.num.is_int = 1;
	return v;
}

struct json *json_new_double(double d)
{
	struct json *v = json_new(JSON_NUMBER);
	v->u.num.d = d;
	return v;
}

/* Copies s[0..n), which may contain NULs; NULL -> json null. */
struct json *json_new_stringn(const char *s, size_t n)
{
	struct json *v;

	if (!s)
		return json_new_null();
	v = json_new(JSON_STRING);
	v->u.str.s = xstrndup(s, n);
	v->u.str.len = n;
	return v;
}

struct json *json_new_string(const char *s)
{
	if (!s)
		return json_new_null();
	return json_new_stringn(s, strlen(s));
}

struct json *json_new_array(void)
{
	return json_new(JSON_ARRAY);
}

struct json *json_new_object(void)
{
	return json_new(JSON_OBJECT);
}

struct json *json_free(struct json *v)
{
	size_t i;

	if (!v)
		return NULL;
	switch (v->type) {
	case JSON_STRING: free(v->u.str.s); break;
	case JSON_ARRAY:
		for (i = 0; i < v->u.arr.n; i++)
			json_free(v->u.arr.items[i]);
		free(v->u.arr.items);
		break;
	case JSON_OBJECT:
		for (i = 0; i < v->u.obj.n; i++) {
			free(v->u.obj.keys[i]);
			json_free(v->u.obj.vals[i]);
		}
		free(v->u.obj.keys);
		free(v->u.obj.vals);
		break;
	default: break;
	}
	free(v);
	return NULL;
}

static void arr_push(struct json *arr, struct json *val)
{
	if (arr->u.arr.n == arr->u.arr.cap) {
		arr->u.arr.cap = arr->u.arr.cap ? arr->u.arr.cap * 2 : 4;
		arr->u.arr.items = xrealloc(arr->u.arr.items,
					    arr->u.arr.cap * sizeof(*arr->u.arr.items));
	}
	arr->u.arr.items[arr->u.arr.n++] = val;
}

/* Appends (key, val) without looking for duplicates; takes both. */
static void obj_append(struct json *obj, char *key, struct json *val)
{
	if (obj->u.obj.n == obj->u.obj.cap) {
		obj->u.obj.cap = obj->u.obj.cap ? obj->u.obj.cap * 2 : 4;
		obj->u.obj.keys = xrealloc(obj->u.obj.keys,
					   obj->u.obj.cap * sizeof(*obj->u.obj.keys));
		obj->u.obj.vals = xrealloc(obj->u.obj.vals,
					   obj->u.obj.cap * sizeof(*obj->u.obj.vals));
	}
	obj->u.obj.keys[obj->u.obj.n] = key;
	obj->u.obj.vals[obj->u.obj.n] = val;
	obj->u.obj.n++;
}

/* Index of the last occurrence of key, or -1. */
static long obj_find(const struct json *obj, const char *key)
{
	size_t i;

	for (i = obj->u.obj.n; i > 0; i--)
		if (strcmp(obj->u.obj.keys[i - 1], key) == 0)
			return (long)(i - 1);
	return -1;
}

/* Takes val (NULL means json null). When obj is not an object, val is freed. */
void json_array_push_take(struct json *arr, struct json *val)
{
	if (!val)
		val = json_new_null();
	if (!arr || arr->type != JSON_ARRAY) {
		json_free(val);
		return;
	}
	arr_push(arr, val);
}

/* Takes val (NULL means json null); the value json_get would return for key
 * is replaced. When obj is not an object, val is freed. */
void json_object_set_take(struct json *obj, const char *key, struct json *val)
{
	long at;

	if (!val)
		val = json_new_null();
	if (!obj || obj->type != JSON_OBJECT || !key) {
		json_free(val);
		return;
	}
	at = obj_find(obj, key);
	if (at >= 0) {
		json_free(obj->u.obj.vals[at]);
		obj->u.obj.vals[at] = val;
		return;
	}
	obj_append(obj, xstrdup(key), val);
}

/* Removes every occurrence of key (parsed objects may hold duplicates). */
int json_object_remove(struct json *obj, const char *key)
{
	size_t i, w = 0;
	int removed = 0;

	if (!obj || obj->type != JSON_OBJECT || !key)
		return 0;
	for (i = 0; i < obj->u.obj.n; i++) {
		if (strcmp(obj->u.obj.keys[i], key) == 0) {
			free(obj->u.obj.keys[i]);
			json_free(obj->u.obj.vals[i]);
			removed = 1;
			continue;
		}
		obj->u.obj.keys[w] = obj->u.obj.keys[i];
		obj->u.obj.vals[w] = obj->u.obj.vals[i];
		w++;
	}
	obj->u.obj.n = w;
	return removed;
}

struct json *json_clone(const struct json *v)
{
	struct json *c;
	size_t i;

	if (!v)
		return NULL;
	switch (v->type) {
	case JSON_STRING: return json_new_stringn(v->u.str.s, v->u.str.len);
	case JSON_ARRAY:
		c = json_new_array();
		for (i = 0; i < v->u.arr.n; i++)
			arr_push(c, json_clone(v->u.arr.items[i]));
		return c;
	case JSON_OBJECT:
		c = json_new_object();
		for (i = 0; i < v->u.obj.n; i++)
			obj_append(c, xstrdup(v->u.obj.keys[i]), json_clone(v->u.obj.vals[i]));
		return c;
	default:
		c = json_new(v->type);
		c->u = v->u;
		return c;
	}
}

/* ---- lookups ----------------------------------------------------------- */

struct json *json_get(const struct json *obj, const char *key)
{
	long at;

	if (!obj || obj->type != JSON_OBJECT || !key)
		return NULL;
	at = obj_find(obj, key);
	return at < 0 ? NULL : obj->u.obj.vals[at];
}

const char *json_get_str(const struct json *obj, const char *key)
{
	struct json *v = json_get(obj, key);
	return v && v->type == JSON_STRING ? v->u.str.s : NULL;
}

int json_get_int(const struct json *obj, const char *key, int64_t *out)
{
	struct json *v = json_get(obj, key);

	if (!v || v->type != JSON_NUMBER || !v->u.num.is_int)
		return -1;
	if (out)
		*out = v->u.num.i;
	return 0;
}

int json_get_bool(const struct json *obj, const char *key)
{
	struct json *v = json_get(obj, key);
	return v && v->type == JSON_BOOL ? v->u.boolean : -1;
}

struct json *json_at(const struct json *arr, size_t i)
{
	if (!arr || arr->type != JSON_ARRAY || i >= arr->u.arr.n)
		return NULL;
	return arr->u.arr.items[i];
}

size_t json_len(const struct json *v)
{
	if (!v)
		return 0;
	if (v->type == JSON_ARRAY)
		return v->u.arr.n;
	if (v->type == JSON_OBJECT)
		return v->u.obj.n;
	return 0;
}

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_BOOL: return "boolean";
	case JSON_NUMBER: return "number";
	case JSON_STRING: return "string";
	case JSON_ARRAY: return "array";
	case JSON_OBJECT: return "object";
	}
	return "unknown";
}

/* ---- equality ---------------------------------------------------------- */

struct kv {
	const char *k;
	size_t idx;
	const struct json *v;
};

static int kv_cmp(const void *pa, const void *pb)
{
	const struct kv *a = pa, *b = pb;
	int c = strcmp(a->k, b->k);

	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The members that lookups see (last duplicate wins), sorted by key. */
static struct kv *obj_effective(const struct json *obj, size_t *n_out)
{
	size_t n = obj->u.obj.n, i, w = 0;
	struct kv *kv = xmalloc((n ? n : 1) * sizeof(*kv));

	for (i = 0; i < n; i++) {
		kv[i].k = obj->u.obj.keys[i];
		kv[i].idx = i;
		kv[i].v = obj->u.obj.vals[i];
	}
	qsort(kv, n, sizeof(*kv), kv_cmp);
	for (i = 0; i < n; i++) {
		if (i + 1 < n && strcmp(kv[i].k, kv[i + 1].k) == 0)
			continue;
		kv[w++] = kv[i];
	}
	*n_out = w;
	return kv;
}

static int obj_equal(const struct json *a, const struct json *b)
{
	struct kv *ka, *kb;
	size_t na, nb, i;
	int eq;

	ka = obj_effective(a, &na);
	kb = obj_effective(b, &nb);
	eq = na == nb;
	for (i = 0; eq && i < na; i++)
		eq = strcmp(ka[i].k, kb[i].k) == 0 && json_equal(ka[i].v, kb[i].v);
	free(ka);
	free(kb);
	return eq;
}

/* Numbers compare as int64 when both are integers, else as doubles. Objects
 * compare by what lookups see: key order and shadowed duplicates ignored. */
int json_equal(const struct json *a, const struct json *b)
{
	size_t i;

	if (a == b)
		return 1;
	if (!a || !b || a->type != b->type)
		return 0;
	switch (a->type) {
	case JSON_NULL: return 1;
	case JSON_BOOL: return !a->u.boolean == !b->u.boolean;
	case JSON_NUMBER:
		if (a->u.num.is_int && b->u.num.is_int)
			return a->u.num.i == b->u.num.i;
		return a->u.num.d == b->u.num.d;
	case JSON_STRING:
		return a->u.str.len == b->u.str.len &&
		       memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case JSON_ARRAY:
		if (a->u.arr.n != b->u.arr.n)
			return 0;
		for (i = 0; i < a->u.arr.n; i++)
			if (!json_equal(a->u.arr.items[i], b->u.arr.items[i]))
				return 0;
		return 1;
	case JSON_OBJECT: return obj_equal(a, b);
	}
	return 0;
}

/* ---- parser ------------------------------------------------------------ */

struct parser {
	const unsigned char *s;
	size_t len, pos;
	int depth, max_depth;
	size_t max_members, max_items; /* 0: no limit */
	int over_limit;
	struct err *e;
};

/* Sets "line L, column C: <what>" for byte offset at. Columns count
 * characters (UTF-8 continuation bytes are skipped), both are 1-based. */
__attribute__((format(printf, 3, 4))) static struct json *perr(struct parser *p, size_t at,
							       const char *fmt, ...)
{
	char what[256];
	size_t i, line = 1, col = 1;
	va_list ap;

	if (!p->e)
		return NULL;
	for (i = 0; i < at && i < p->len; i++) {
		if (p->s[i] == '\n') {
			line++;
			col = 1;
		} else if ((p->s[i] & 0xC0) != 0x80) {
			col++;
		}
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	err_set(p->e, "line %zu, column %zu: %s", line, col, what);
	return NULL;
}

/* "found 'x'" / "found byte 0xNN" / "found end of input" for messages. */
static struct json *perr_found(struct parser *p, const char *expected)
{
	unsigned char c;

	if (p->pos >= p->len)
		return perr(p, p->pos, "%s, found end of input", expected);
	c = p->s[p->pos];
	if (c > 0x20 && c < 0x7F)
		return perr(p, p->pos, "%s, found '%c'", expected, c);
	return perr(p, p->pos, "%s, found byte 0x%02X", expected, c);
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static int hex4(const unsigned char *s, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* At the backslash of "\uXXXX" (possibly a surrogate pair); appends UTF-8. */
static int parse_uescape(struct parser *p, struct buf *b)
{
	size_t at = p->pos;
	uint32_t cp, lo;

	if (p->len - p->pos < 6 || hex4(p->s + p->pos + 2, &cp) < 0) {
		perr(p, at, "invalid \\u escape (expected 4 hex digits)");
		return -1;
	}
	p->pos += 6;
	if (cp >= 0xDC00 && cp <= 0xDFFF) {
		perr(p, at, "unpaired low surrogate \\u%04X", (unsigned)cp);
		return -1;
	}
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
		    hex4(p->s + p->pos + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
			perr(p, at, "unpaired high surrogate \\u%04X", (unsigned)cp);
			return -1;
		}
		p->pos += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	utf8_put(b, cp);
	return 0;
}

static int parse_escape(struct parser *p, struct buf *b)
{
	char c;

	if (p->pos + 1 >= p->len) {
		perr(p, p->pos, "unterminated escape sequence");
		return -1;
	}
	switch (p->s[p->pos + 1]) {
	case '"': c = '"'; break;
	case '\\': c = '\\'; break;
	case '/': c = '/'; break;
	case 'b': c = '\b'; break;
	case 'f': c = '\f'; break;
	case 'n': c = '\n'; break;
	case 'r': c = '\r'; break;
	case 't': c = '\t'; break;
	case 'u': return parse_uescape(p, b);
	default:
		if (p->s[p->pos + 1] > 0x20 && p->s[p->pos + 1] < 0x7F)
			perr(p, p->pos, "invalid escape '\\%c' in string", p->s[p->pos + 1]);
		else
			perr(p, p->pos, "invalid escape in string");
		return -1;
	}
	buf_putc(b, c);
	p->pos += 2;
	return 0;
}

/* At the opening quote. On success b holds the decoded bytes. */
static int parse_string_raw(struct parser *p, struct buf *b)
{
	size_t open = p->pos, run;

	p->pos++;
	for (;;) {
		run = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x80 &&
		       p->s[p->pos] != '"' && p->s[p->pos] != '\\')
			p->pos++;
		buf_append(b, p->s + run, p->pos - run);
		if (p->pos >= p->len) {
			perr(p, open, "unterminated string");
			return -1;
		}
		unsigned char c = p->s[p->pos];
		if (c == '"') {
			p->pos++;
			buf_cstr(b);
			return 0;
		}
		if (c == '\\') {
			if (parse_escape(p, b) < 0)
				return -1;
		} else if (c < 0x20) {
			perr(p, p->pos, "unescaped control character 0x%02X in string", c);
			return -1;
		} else {
			size_t n = utf8_seq_len(p->s + p->pos, p->len - p->pos);
			if (!n) {
				perr(p, p->pos, "invalid UTF-8 in string");
				return -1;
			}
			buf_append(b, p->s + p->pos, n);
			p->pos += n;
		}
	}
}

static struct json *parse_string(struct parser *p)
{
	struct buf b;
	struct json *v;

	buf_init(&b);
	if (parse_string_raw(p, &b) < 0) {
		buf_clear(&b);
		return NULL;
	}
	v = json_new(JSON_STRING);
	v->u.str.len = b.len;
	v->u.str.s = buf_take(&b);
	return v;
}

static int is_digit(const struct parser *p, size_t at)
{
	return at < p->len && p->s[at] >= '0' && p->s[at] <= '9';
}

/* Exact int64 value of an integer literal [start, end); -1 on overflow. */
static int literal_int64(const unsigned char *s, size_t n, int64_t *out)
{
	int neg = s[0] == '-';
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t i;

	for (i = neg; i < n; i++) {
		unsigned d = s[i] - '0';
		if (v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

static struct json *parse_number(struct parser *p)
{
	size_t start = p->pos, n;
	int integral = 1;
	char small[64], *tmp;
	struct json *v;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (!is_digit(p, p->pos))
		return perr_found(p, "invalid number: expected a digit");
	if (p->s[p->pos] == '0' && is_digit(p, p->pos + 1))
		return perr(p, p->pos, "invalid number: leading zeros are not allowed");
	while (is_digit(p, p->pos))
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		integral = 0;
		p->pos++;
		if (!is_digit(p, p->pos))
			return perr_found(p, "invalid number: expected a digit after '.'");
		while (is_digit(p, p->pos))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		integral = 0;
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!is_digit(p, p->pos))
			return perr_found(p, "invalid number: expected a digit in the exponent");
		while (is_digit(p, p->pos))
			p->pos++;
	}

	n = p->pos - start;
	tmp = n < sizeof(small) ? small : xmalloc(n + 1);
	memcpy(tmp, p->s + start, n);
	tmp[n] = '\0';
	v = json_new(JSON_NUMBER);
	v->u.num.d = strtod(tmp, NULL);
	if (tmp != small)
		free(tmp);
	if (isinf(v->u.num.d)) {
		json_free(v);
		return perr(p, start, "number out of range");
	}
	if (integral && literal_int64(p->s + start, n, &v->u.num.i) == 0)
		v->u.num.is_int = 1;
	return v;
}

static struct json *parse_literal(struct parser *p, const char *word, struct json *v)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
		json_free(v);
		return perr(p, p->pos, "invalid literal (expected true, false or null)");
	}
	p->pos += n;
	return v;
}

static struct json *parse_value(struct parser *p);

static struct json *parse_array(struct parser *p)
{
	struct json *arr = json_new_array(), *item;

	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		return arr;
	}
	for (;;) {
		if (p->max_items && arr->u.arr.n >= p->max_items) {
			p->over_limit = 1;
			perr(p, p->pos, "an array has more than %zu items", p->max_items);
			return json_free(arr);
		}
		item = parse_value(p);
		if (!item)
			return json_free(arr);
		arr_push(arr, item);
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == ']') {
			p->pos++;
			return arr;
		}
		perr_found(p, "expected ',' or ']' after array element");
		return json_free(arr);
	}
}

static struct json *parse_object(struct parser *p)
{
	struct json *obj = json_new_object(), *val;
	struct buf key;
	size_t key_at;

	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		return obj;
	}
	buf_init(&key);
	for (;;) {
		skip_ws(p);
		if (p->max_members && obj->u.obj.n >= p->max_members) {
			p->over_limit = 1;
			perr(p, p->pos, "an object has more than %zu members", p->max_members);
			goto out_free;
		}
		if (p->pos >= p->len || p->s[p->pos] != '"') {
			perr_found(p, "expected a string as object key");
			goto out_free;
		}
		key_at = p->pos;
		buf_reset(&key);
		if (parse_string_raw(p, &key) < 0)
			goto out_free;
		if (memchr(buf_cstr(&key), '\0', key.len)) {
			perr(p, key_at, "object key contains \\u0000");
			goto out_free;
		}
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			perr_found(p, "expected ':' after object key");
			goto out_free;
		}
		p->pos++;
		val = parse_value(p);
		if (!val)
			goto out_free;
		obj_append(obj, xstrndup(key.data, key.len), val);
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			buf_clear(&key);
			return obj;
		}
		perr_found(p, "expected ',' or '}' after object member");
		goto out_free;
	}
out_free:
	buf_clear(&key);
	return json_free(obj);
}

static struct json *parse_container(struct parser *p, int is_object)
{
	struct json *v;

	if (p->depth >= p->max_depth)
		return perr(p, p->pos, "nesting deeper than %d", p->max_depth);
	p->depth++;
	v = is_object ? parse_object(p) : parse_array(p);
	p->depth--;
	return v;
}

static struct json *parse_value(struct parser *p)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return perr(p, p->pos, "unexpected end of input, expected a value");
	switch (p->s[p->pos]) {
	case '{': return parse_container(p, 1);
	case '[': return parse_container(p, 0);
	case '"': return parse_string(p);
	case 't': return parse_literal(p, "true", json_new_bool(1));
	case 'f': return parse_literal(p, "false", json_new_bool(0));
	case 'n': return parse_literal(p, "null", json_new_null());
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9': return parse_number(p);
	default: return perr_found(p, "expected a value");
	}
}

/* max_depth <= 0 means JSON_DEFAULT_MAX_DEPTH. Object keys containing
 * \u0000 are refused since keys are C strings. */
struct json *json_parse_limited(const char *text, size_t len, const struct json_limits *lim,
				int *over_limit, struct err *e)
{
	struct parser p = {
		.s = (const unsigned char *)text,
		.len = text ? len : 0,
		.max_depth = lim->max_depth > 0 ? lim->max_depth : JSON_DEFAULT_MAX_DEPTH,
		.max_members = lim->max_members,
		.max_items = lim->max_items,
		.e = e,
	};
	struct json *v;

	v = parse_value(&p);
	if (over_limit)
		*over_limit = p.over_limit;
	if (!v)
		return NULL;
	skip_ws(&p);
	if (p.pos < p.len) {
		perr_found(&p, "trailing characters after JSON value");
		return json_free(v);
	}
	return v;
}

struct json *json_parse(const char *text, size_t len, int max_depth, struct err *e)
{
	const struct json_limits lim = {.max_depth = max_depth};
	return json_parse_limited(text, len, &lim, NULL, e);
}

/* ---- writer ------------------------------------------------------------ */

void json_write_stringn(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;

	buf_reserve(b, n + 2);
	buf_putc(b, '"');
	while (i < n) {
		run = i;
		while (i < n && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' && u[i] != '\\')
			i++;
		buf_append(b, s + run, i - run);
		if (i >= n)
			break;
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t sl = utf8_seq_len(u + i, n - i);
			if (!sl) {
				buf_puts(b, "\\ufffd"); /* never emit invalid UTF-8 */
				i++;
			} else if (sl == 3 && c == 0xE2 && u[i + 1] == 0x80 &&
				   (u[i + 2] == 0xA8 || u[i + 2] == 0xA9)) {
				buf_puts(b, u[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
				i += 3;
			} else {
				buf_append(b, s + i, sl);
				i += sl;
			}
			continue;
		}
		switch (c) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\b': buf_puts(b, "\\b"); break;
		case '\f': buf_puts(b, "\\f"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default: {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			buf_append(b, esc, sizeof(esc));
		}
		}
		i++;
	}
	buf_putc(b, '"');
}

void json_write_string(struct buf *b, const char *s)
{
	if (!s) {
		buf_puts(b, "null");
		return;
	}
	json_write_stringn(b, s, strlen(s));
}

/* Integral values below 1e17 print as plain integers; others use the
 * shortest %.Ng that reads back to the same double. NaN/Inf print null. */
static void write_double(struct buf *b, double d)
{
	char tmp[40];
	int prec;

	if (!isfinite(d)) {
		buf_puts(b, "null");
		return;
	}
	if (d == trunc(d) && fabs(d) < 1e17) {
		snprintf(tmp, sizeof(tmp), "%.0f", d);
	} else {
		for (prec = 15; prec < 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
		if (prec == 17)
			snprintf(tmp, sizeof(tmp), "%.17g", d);
	}
	buf_puts(b, tmp);
}

void json_write(struct buf *b, const struct json *v)
{
	size_t i;

	if (!v) {
		buf_puts(b, "null");
		return;
	}
	switch (v->type) {
	case JSON_NULL: buf_puts(b, "null"); break;
	case JSON_BOOL: buf_puts(b, v->u.boolean ? "true" : "false"); break;
	case JSON_NUMBER:
		if (v->u.num.is_int)
			buf_printf(b, "%" PRId64, v->u.num.i);
		else
			write_double(b, v->u.num.d);
		break;
	case JSON_STRING: json_write_stringn(b, v->u.str.s, v->u.str.len); break;
	case JSON_ARRAY:
		buf_putc(b, '[');
		for (i = 0; i < v->u.arr.n; i++) {
			if (i)
				buf_putc(b, ',');
			json_write(b, v->u.arr.items[i]);
		}
		buf_putc(b, ']');
		break;
	case JSON_OBJECT:
		buf_putc(b, '{');
		for (i = 0; i < v->u.obj.n; i++) {
			if (i)
				buf_putc(b, ',');
			json_write_string(b, v->u.obj.keys[i]);
			buf_putc(b, ':');
			json_write(b, v->u.obj.vals[i]);
		}
		buf_putc(b, '}');
		break;
	}
}

char *json_to_string(const struct json *v)
{
	struct buf b;

	buf_init(&b);
	json_write(&b, v);
	return buf_take(&b);
}

/* ---- streaming writer -------------------------------------------------- */

/* need_comma[depth - 1] tracks the innermost open container. Nesting beyond
 * 64 levels is a caller bug: the output stays memory-safe but not valid. */
static unsigned char *jw_slot(struct jw *w)
{
	int d = w->depth;

	if (d > (int)sizeof(w->need_comma))
		d = (int)sizeof(w->need_comma);
	return &w->need_comma[d - 1];
}

static void jw_before_value(struct jw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth <= 0)
		return;
	if (*jw_slot(w))
		buf_putc(w->b, ',');
	*jw_slot(w) = 1;
}

void jw_init(struct jw *w, struct buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
}

static void jw_open(struct jw *w, char c)
{
	jw_before_value(w);
	buf_putc(w->b, c);
	w->depth++;
	*jw_slot(w) = 0;
}

static void jw_close(struct jw *w, char c)
{
	buf_putc(w->b, c);
	if (w->depth > 0)
		w->depth--;
	w->after_key = 0;
}

void jw_object_begin(struct jw *w)
{
	jw_open(w, '{');
}

void jw_object_end(struct jw *w)
{
	jw_close(w, '}');
}

void jw_array_begin(struct jw *w)
{
	jw_open(w, '[');
}

void jw_array_end(struct jw *w)
{
	jw_close(w, ']');
}

void jw_key(struct jw *w, const char *key)
{
	w->after_key = 0;
	jw_before_value(w);
	json_write_string(w->b, key ? key : "");
	buf_putc(w->b, ':');
	w->after_key = 1;
}

void jw_string(struct jw *w, const char *s)
{
	jw_before_value(w);
	json_write_string(w->b, s);
}

void jw_int(struct jw *w, int64_t i)
{
	jw_before_value(w);
	buf_printf(w->b, "%" PRId64, i);
}

void jw_double(struct jw *w, double d)
{
	jw_before_value(w);
	write_double(w->b, d);
}

void jw_bool(struct jw *w, int b)
{
	jw_before_value(w);
	buf_puts(w->b, b ? "true" : "false");
}

void jw_null(struct jw *w)
{
	jw_before_value(w);
	buf_puts(w->b, "null");
}

void jw_value(struct jw *w, const struct json *v)
{
	jw_before_value(w);
	json_write(w->b, v);
}

void jw_raw(struct jw *w, const char *json_text)
{
	jw_before_value(w);
	buf_puts(w->b, json_text);
}

void json_text_compact(struct buf *b, const char *json_text)
{
	const char *p = json_text, *run = p;
	while (*p) {
		if (*p == '"') { /* copy the string, escapes and all */
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
		} else if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
			buf_append(b, run, (size_t)(p - run));
			while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
				p++;
			run = p;
		} else {
			p++;
		}
	}
	buf_append(b, run, (size_t)(p - run));
}
