/* schema.h — a small JSON-Schema subset for step config schemas (request
 * bodies are checked by api_validate in core/api/api.c, client data by
 * client_data.c, which shares this module's problem list).
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
 *    an embedded NUL is never accepted where a string is expected.
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
 *   unknown key (allowed: tags, role)  required
 *   must be one of: admin, user        must be >= 1 / must be <= 10
 *   must not be empty                  longer than 255 characters
 *   shorter than 3 characters          fewer than 2 items / more than 50 items
 * When a value has the wrong type (or is outside its enum), no further
 * problems are reported below it. problems may be NULL to only count. */
size_t schema_validate(const struct json *schema, const struct json *value, const char *path,
		       struct json *problems);

/* Appends {"field": field, "message": message} to problems (when not NULL);
 * returns 1. For other validators that report in the same shape. */
size_t schema_problem_add(struct json *problems, const char *field, const char *message);

/* Appends the path segment for object key `key` to b: ".key", or "key" when
 * b is empty, or ["k.e y"] when the key needs quoting. */
void schema_path_key(struct buf *b, const char *key, size_t key_len);

/* Number of Unicode code points in the UTF-8 text s[0..len) (continuation
 * bytes are not counted). */
size_t schema_utf8_len(const char *s, size_t len);

#endif
