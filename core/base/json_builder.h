/* json_builder.h — a checked JSON writer: the jw writer of json.h plus the
 * rules it leaves to its caller (a key before each member of an object, none
 * in an array, balanced ends, one top-level value, valid raw text, finite
 * numbers, bounded depth). The first misuse is kept and every later call is
 * ignored, so a caller checks once, at the end. Backs the step host's JSON
 * builder (plugins/ghl_step.h, json_new()). */
#ifndef GHL_JSON_BUILDER_H
#define GHL_JSON_BUILDER_H

#include <stdint.h>

#include "json.h"
#include "util.h"

#define JSON_BUILDER_MAX_DEPTH JSON_DEFAULT_MAX_DEPTH

struct json_builder {
	struct buf b;
	struct jw w;
	int depth;
	unsigned char in_array[JSON_BUILDER_MAX_DEPTH]; /* per open level: 1 array, 0 object */
	int have_key; /* in an object: a key was written, its value is next */
	int done;     /* the top-level value is complete */
	char err[160];
};

void json_builder_init(struct json_builder *jb);
/* Free the text; the builder may be initialised again. */
void json_builder_clear(struct json_builder *jb);

void json_builder_object(struct json_builder *jb);
void json_builder_array(struct json_builder *jb);
void json_builder_end(struct json_builder *jb);
void json_builder_key(struct json_builder *jb, const char *key);
void json_builder_string(struct json_builder *jb, const char *s); /* NULL → null */
void json_builder_int(struct json_builder *jb, int64_t v);
void json_builder_number(struct json_builder *jb, double v);
void json_builder_bool(struct json_builder *jb, int v);
void json_builder_null(struct json_builder *jb);
/* A JSON value given as text (NULL → null); parsed, then written compactly. */
void json_builder_raw(struct json_builder *jb, const char *json);

/* The text (owned by jb) once it is one complete value; else NULL with
 * what went wrong first in e (ERR_INVALID; e may be NULL). */
const char *json_builder_text(struct json_builder *jb, struct err *e);

#endif
