/* schema.h — a small JSON-Schema subset: the one validator, for step config
 * schemas, request bodies (api_validate.c turns a handler's field spec into
 * a schema) and client data (client_data.c's schema).
 *
 * Supported keywords: type (string, integer, number, boolean, array, object,
 * null, or an array of them), properties, required, additionalProperties
 * (true/false only), items (one schema for every element), enum, minimum,
 * maximum, minLength, maxLength, minItems, maxItems, default, description,
 * and format (email, e164, country, timezone, url, uuid: formats.h's checks,
 * asserted — a string that does not match is a problem). For objects also
 * minProperties, maxProperties, propertyNames (a schema every member's name,
 * as a string, must satisfy) and unevaluatedProperties (a schema for the
 * members "properties" does not name; with no applicators in the subset it
 * is what a schema-valued additionalProperties would be). Two keywords of
 * our own, for strings: noControlCharacters (true: no character below 0x20
 * nor 0x7f, NUL included) and notBlank (true: not only spaces and tabs).
 * Anything else — `pattern` included — is refused by schema_check.
 *
 * Semantics follow JSON Schema with these deliberate differences:
 *  - "integer" means a number written without fraction or exponent that fits
 *    an int64 (what json_get_int accepts), so 1.0 is a number, not an integer;
 *  - lengths count Unicode code points, as JSON Schema does, but a string with
 *    an embedded NUL is never accepted where a string is expected;
 *  - an object that repeats a key is refused ("duplicate field"), whatever
 *    the schema says about it: which of the two values counts is ambiguous;
 *  - a value gets one problem at most: a string the first of control
 *    characters, NUL, length, blankness and format; an object member the
 *    first of duplicate, unknown, its name (propertyNames) and its value.
 *
 * A NULL schema means {} (anything goes).
 */
#ifndef GHL_SCHEMA_H
#define GHL_SCHEMA_H

#include <stddef.h>

#include "json.h"
#include "util.h"

/* The problems list: a JSON array of {"field": "...", "message": "..."}
 * objects, what a 422's details are (api_problems in api.h wraps one).
 * Problems recorded by one validation call are capped; past the cap one
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
 *   contains a control character       must not be blank
 *   more than 100 keys                 fewer than 2 keys
 *   empty key                          key longer than 100 characters
 * (a member name's problem reads "key " and a value's message; an empty
 * name's is "empty key").
 * When a value has the wrong type (or is outside its enum), no further
 * problems are reported below it. problems may be NULL to only count. */
size_t schema_validate(const struct json *schema, const struct json *value, const char *path,
		       struct json *problems);

/* Appends {"field": field, "message": message} to problems (when not NULL);
 * returns 1. */
size_t schema_problem_add(struct json *problems, const char *field, const char *message);

/* Appends the path segment for object key `key` to b: ".key", or "key" when
 * b is empty, or ["k.e y"] when the key needs quoting. */
void schema_path_key(struct buf *b, const char *key, size_t key_len);

/* Number of Unicode code points in the UTF-8 text s[0..len) (continuation
 * bytes are not counted). */
size_t schema_utf8_len(const char *s, size_t len);

#endif
