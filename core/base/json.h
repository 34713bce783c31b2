/* json.h — a small JSON DOM parser and writer (RFC 8259).
 *
 * The parser is a pure function over (buffer, length) with a depth cap, so it
 * can be fuzzed (tests/fuzz/fuzz_json.c). Numbers are kept as double plus, when
 * the literal is an integer that fits, as int64 (`is_int`).
 * Objects keep their keys in input order; duplicate keys: the last one wins on
 * lookup (json_get scans from the end).
 */
#ifndef GHL_JSON_H
#define GHL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	union {
		int boolean;
		struct {
			double d;
			int64_t i;
			int is_int;
		} num;
		struct {
			char *s; /* NUL-terminated; may contain embedded NULs (see len) */
			size_t len;
		} str;
		struct {
			struct json **items;
			size_t n, cap;
		} arr;
		struct {
			char **keys;
			struct json **vals;
			size_t n, cap;
		} obj;
	} u;
};

/* The one nesting limit of JSON documents: request bodies, webhooks, stored
 * documents, step config schemas and the JSON builder all stop here. */
#define JSON_DEFAULT_MAX_DEPTH 32

/* Parse text[0..len). Returns a new tree (caller frees with json_free) or NULL
 * with e->msg like "line 3, column 7: expected ':' after object key".
 * Nesting deeper than max_depth is refused. Trailing non-space is refused. */
struct json *json_parse(const char *text, size_t len, int max_depth, struct err *e);

/* Limits for untrusted text (the REST API's bodies): nesting depth
 * (<= 0: JSON_DEFAULT_MAX_DEPTH), members per object and items per array
 * (0: no limit). The parser stops at the first member or item over a limit,
 * so the work done is bounded by the limits, not by the text. */
struct json_limits {
	int max_depth;
	size_t max_members;
	size_t max_items;
};

/* json_parse with limits. *over_limit (may be NULL) is set to 1 when the text
 * was refused for a limit ("line 1, column 9: an object has more than 1000
 * members"), to 0 otherwise. */
struct json *json_parse_limited(const char *text, size_t len, const struct json_limits *lim,
				int *over_limit, struct err *e);

/* Frees v and everything below it; accepts NULL; returns NULL. */
struct json *json_free(struct json *v);

/* Deep copy. */
struct json *json_clone(const struct json *v);

/* Structural equality (object key order ignored). */
int json_equal(const struct json *a, const struct json *b);

/* Lookups: NULL when v is not an object / the key is absent / the type differs. */
struct json *json_get(const struct json *obj, const char *key);
const char *json_get_str(const struct json *obj, const char *key);
/* Returns 0 and sets *out when key holds an integer number; else -1. */
int json_get_int(const struct json *obj, const char *key, int64_t *out);
/* Returns 0/1 for a boolean, -1 when absent or not boolean. */
int json_get_bool(const struct json *obj, const char *key);
/* Array element or NULL. */
struct json *json_at(const struct json *arr, size_t i);
size_t json_len(const struct json *v); /* items of array/object, 0 otherwise */
const char *json_type_name(enum json_type t);

/* Builders. New values are owned by the caller until handed over with a
 * _take function, which transfers ownership into the container. */
struct json *json_new_null(void);
struct json *json_new_bool(int b);
struct json *json_new_int(int64_t i);
struct json *json_new_double(double d);
struct json *json_new_string(const char *s); /* NULL -> json null */
struct json *json_new_stringn(const char *s, size_t n);
struct json *json_new_array(void);
struct json *json_new_object(void);
/* Replaces an existing key. */
void json_object_set_take(struct json *obj, const char *key, struct json *val);
/* Removes key if present (frees its value); returns 1 if removed. */
int json_object_remove(struct json *obj, const char *key);
void json_array_push_take(struct json *arr, struct json *val);

/* Serialise compactly (no spaces) onto b. */
void json_write(struct buf *b, const struct json *v);
/* Serialise to a new malloc'd string. */
char *json_to_string(const struct json *v);
/* Write s as a quoted, escaped JSON string (NULL -> null). */
void json_write_string(struct buf *b, const char *s);
void json_write_stringn(struct buf *b, const char *s, size_t n);

/* Streaming writer with automatic commas, for building responses. */
struct jw {
	struct buf *b;
	int depth;
	unsigned char need_comma[64];
	int after_key;
};
void jw_init(struct jw *w, struct buf *b);
void jw_object_begin(struct jw *w);
void jw_object_end(struct jw *w);
void jw_array_begin(struct jw *w);
void jw_array_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_string(struct jw *w, const char *s); /* NULL -> null */
void jw_int(struct jw *w, int64_t i);
void jw_double(struct jw *w, double d);
void jw_bool(struct jw *w, int b);
void jw_null(struct jw *w);
void jw_value(struct jw *w, const struct json *v);
/* Insert already-serialised JSON text verbatim (caller guarantees validity). */
void jw_raw(struct jw *w, const char *json_text);

/* Append valid JSON text to b without the whitespace between tokens
 * (PostgreSQL's json_build_object writes {"id" : 1}): the same document as
 * json_write would print, without parsing it. Strings are copied as they are. */
void json_text_compact(struct buf *b, const char *json_text);

#endif
