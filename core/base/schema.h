/* schema.h — a small JSON-Schema subset: the one validator for step config
 * schemas and request bodies (api_validate.c turns a handler's field spec
 * into a schema), whose problem reports client data (client_data.c) shares.
 *
 * Supported keywords: type (string, integer, number, boolean, array, object,
 * null, or an array of them), properties, required, additionalProperties
 * (true/false only), items (one schema for every element), enum, minimum,
 * maximum, minLength, maxLength, minItems, maxItems, default, description,
 * and format (email, e164, country, timezone, url, uuid: formats.h's checks,
 * asserted — a string that does not match is a problem). Anything else —
 * `pattern` included — is refused by schema_check.
 *
 * Semantics follow JSON Schema with two deliberate differences:
 *  - "integer" means a number written without fraction or exponent that fits
 *    an int64 (what json_get_int accepts), so 1.0 is a number, not an integer;
 *  - lengths count Unicode code points, as JSON Schema does, but a string with
 *    an embedded NUL is never accepted where a string is expected;
 *  - an object that repeats a key is refused ("duplicate field"), whatever
 *    the schema says about it: which of the two values counts is ambiguous.
 *
 * A NULL schema means {} (anything goes).
 */
#ifndef GHL_SCHEMA_H
#define GHL_SCHEMA_H

#include <stddef.h>

#include "json.h"
#include "util.h"

/* Problems recorded by one validation call are capped; past the cap one
 * final {"field": <root>, "message": "too many problems; ..."} is added. */
#define SCHEMA_MAX_PROBLEMS 100

/* Is schema one we support? Returns 0, or -1 with e->msg naming the JSON
 * pointer of the offending place, e.g.
 *   #/properties/role: unknown keyword "pattrn"
 *   #/properties/code: "pattern" is not supported (regular expressions are
 *   not part of the schema subset); use enum, minLength/maxLength, or check
 *   the value in the step
 * Also refused: malformed keyword values, min > max, duplicate names in type
 * or required, and a default that does not satisfy its own schema.
 * NULL is accepted (it means {}). */
int schema_check(const struct json *schema, struct err *e);

/* Validates value against schema (which should have passed schema_check;
 * malformed keywords are ignored rather than trusted). Appends one
 * {"field": "...", "message": "..."} object per problem to the `problems`
 * array and returns how many this call added (0 means valid).
 *
 * Field paths start at `path` (e.g. "config", or "" for none) and continue
 * with ".key" and "[i]": "config.tags[2]". A key that is not made of
 * letters, digits, '_' and '-' is written as ["..."] (JSON-quoted):
 * config["a.b"].
 *
 * Messages are short and factual:
 *   expected integer, got string       expected string or null, got number
 *   unknown field                      unknown field (did you mean "role"?)
 *   duplicate field                    required
 *   must be one of: admin, user        must be >= 1 / must be <= 10
 *   must not be empty                  longer than 255 characters
 *   shorter than 3 characters          fewer than 2 items / more than 50 items
 * When a value has the wrong type (or is outside its enum), no further
 * problems are reported below it. problems may be NULL to only count. */
size_t schema_validate(const struct json *schema, const struct json *value, const char *path,
		       struct json *problems);

/* Appends {"field": field, "message": message} to problems (when not NULL);
 * returns 1. */
size_t schema_problem_add(struct json *problems, const char *field, const char *message);

/* A validation in progress, for validators with rules of their own
 * (client_data.c) that report as schema_validate does: the problems array
 * (NULL to only count), the path of the value being looked at, and how many
 * problems were added — capped at SCHEMA_MAX_PROBLEMS plus one final
 * "too many problems" entry named `root`. */
struct schema_report {
	struct json *problems;
	struct buf path;
	const char *root;
	size_t added;
};

/* Starts a report whose paths begin at root ("" for none); clear it after. */
void schema_report_init(struct schema_report *r, struct json *problems, const char *root);
void schema_report_clear(struct schema_report *r);
/* 1 while the cap is not reached (more problems are worth looking for). */
int schema_report_open(const struct schema_report *r);
/* A problem with the value at r->path. */
void schema_problem(struct schema_report *r, const char *msg);
void schema_problemf(struct schema_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "unknown field", with a hint when key is a near miss of one of the n
 * names in known: unknown field (did you mean "email"?). */
void schema_unknown_field(struct schema_report *r, const char *key, const char *const *known,
			  size_t n);
/* r->path: returns the length to go back to with schema_path_pop after
 * appending key's segment (schema_path_key) or "[i]". */
size_t schema_path_push_key(struct schema_report *r, const char *key);
size_t schema_path_push_index(struct schema_report *r, size_t i);
void schema_path_pop(struct schema_report *r, size_t mark);

/* Appends the path segment for object key `key` to b: ".key", or "key" when
 * b is empty, or ["k.e y"] when the key needs quoting. */
void schema_path_key(struct buf *b, const char *key, size_t key_len);

/* Number of Unicode code points in the UTF-8 text s[0..len) (continuation
 * bytes are not counted). */
size_t schema_utf8_len(const char *s, size_t len);

#endif
