/* json_builder.c — see json_builder.h. */
#include "json_builder.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void json_builder_init(struct json_builder *jb)
{
	memset(jb, 0, sizeof(*jb));
	buf_init(&jb->b);
	jw_init(&jb->w, &jb->b);
}

void json_builder_clear(struct json_builder *jb)
{
	buf_clear(&jb->b);
}

static void misuse(struct json_builder *jb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void misuse(struct json_builder *jb, const char *fmt, ...)
{
	if (jb->err[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(jb->err, sizeof(jb->err), fmt, ap);
	va_end(ap);
}

static int in_object(const struct json_builder *jb)
{
	return jb->depth > 0 && !jb->in_array[jb->depth - 1];
}

/* May a value be written now? Says why not. */
static int value_ok(struct json_builder *jb, const char *what)
{
	if (jb->err[0])
		return 0;
	if (jb->depth == 0 && jb->done)
		misuse(jb, "%s after the complete value: one top-level value only", what);
	else if (in_object(jb) && !jb->have_key)
		misuse(jb, "%s in an object without a key before it", what);
	else
		return 1;
	return 0;
}

/* A value was written: the object wants its next key, the top level is done. */
static void wrote_value(struct json_builder *jb)
{
	jb->have_key = 0;
	if (jb->depth == 0)
		jb->done = 1;
}

static void open_level(struct json_builder *jb, int array)
{
	if (!value_ok(jb, array ? "an array" : "an object"))
		return;
	if (jb->depth == JSON_BUILDER_MAX_DEPTH) {
		misuse(jb, "nesting deeper than %d", JSON_BUILDER_MAX_DEPTH);
		return;
	}
	if (array)
		jw_array_begin(&jb->w);
	else
		jw_object_begin(&jb->w);
	jb->in_array[jb->depth++] = (unsigned char)array;
	jb->have_key = 0;
}

void json_builder_object(struct json_builder *jb)
{
	open_level(jb, 0);
}

void json_builder_array(struct json_builder *jb)
{
	open_level(jb, 1);
}

void json_builder_end(struct json_builder *jb)
{
	if (jb->err[0])
		return;
	if (jb->depth == 0) {
		misuse(jb, "an end with no object or array open");
		return;
	}
	if (in_object(jb) && jb->have_key) {
		misuse(jb, "an end right after a key: the key has no value");
		return;
	}
	if (jb->in_array[--jb->depth])
		jw_array_end(&jb->w);
	else
		jw_object_end(&jb->w);
	wrote_value(jb);
}

void json_builder_key(struct json_builder *jb, const char *key)
{
	if (jb->err[0])
		return;
	if (!in_object(jb))
		misuse(jb, "a key (\"%.40s\") outside an object", key ? key : "");
	else if (jb->have_key)
		misuse(jb, "a key (\"%.40s\") right after another key", key ? key : "");
	else if (!key)
		misuse(jb, "a NULL key");
	else {
		jw_key(&jb->w, key);
		jb->have_key = 1;
	}
}

void json_builder_string(struct json_builder *jb, const char *s)
{
	if (!value_ok(jb, "a string"))
		return;
	jw_string(&jb->w, s);
	wrote_value(jb);
}

void json_builder_int(struct json_builder *jb, int64_t v)
{
	if (!value_ok(jb, "a number"))
		return;
	jw_int(&jb->w, v);
	wrote_value(jb);
}

void json_builder_number(struct json_builder *jb, double v)
{
	if (!value_ok(jb, "a number"))
		return;
	if (!isfinite(v)) {
		misuse(jb, "a number that is not finite (JSON has no NaN or Infinity)");
		return;
	}
	jw_double(&jb->w, v);
	wrote_value(jb);
}

void json_builder_bool(struct json_builder *jb, int v)
{
	if (!value_ok(jb, "a boolean"))
		return;
	jw_bool(&jb->w, v);
	wrote_value(jb);
}

void json_builder_null(struct json_builder *jb)
{
	if (!value_ok(jb, "null"))
		return;
	jw_null(&jb->w);
	wrote_value(jb);
}

void json_builder_raw(struct json_builder *jb, const char *json)
{
	if (!value_ok(jb, "a raw value"))
		return;
	if (!json) {
		jw_null(&jb->w);
		wrote_value(jb);
		return;
	}
	struct err e;
	struct json *v = json_parse(json, strlen(json), JSON_BUILDER_MAX_DEPTH, &e);
	if (!v) {
		misuse(jb, "raw text that is not JSON: %s", e.msg);
		return;
	}
	jw_value(&jb->w, v);
	json_free(v);
	wrote_value(jb);
}

const char *json_builder_text(struct json_builder *jb, struct err *e)
{
	if (!jb->err[0] && jb->depth > 0)
		misuse(jb, "%d object(s) or array(s) left open", jb->depth);
	else if (!jb->err[0] && !jb->done)
		misuse(jb, "nothing written");
	if (jb->err[0]) {
		err_setc(e, ERR_INVALID, "%s", jb->err);
		return NULL;
	}
	return buf_cstr(&jb->b);
}
