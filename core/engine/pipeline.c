/* pipeline.c — pipeline parsing and validation; see pipeline.h. */
#include "pipeline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_data.h"
#include "json.h"
#include "predicate.h"
#include "registry.h"
#include "schema.h"

static void problem(struct json *problems, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct json *problems, const char *field, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	schema_problem_add(problems, field, buf_cstr(&b));
	buf_clear(&b);
}

static void check_int(const struct json *settings, const char *key, long long min, long long max,
		      struct json *problems)
{
	struct json *v = json_get(settings, key);
	if (!v)
		return;
	if (v->type != JSON_NUMBER || !v->u.num.is_int || v->u.num.i < min || v->u.num.i > max)
		problem(problems, key, "must be a whole number from %lld to %lld", min, max);
}

/* A step's `when` (predicate.h): a string that parses. */
static void check_when(const struct json *when, const char *field, struct json *problems)
{
	if (!when)
		return;
	char f[128];
	snprintf(f, sizeof(f), "%s.when", field);
	struct err e;
	if (when->type != JSON_STRING)
		problem(problems, f,
			"must be a condition as a string, like \"client.country == 'US'\"");
	else if (predicate_check(when->u.str.s, when->u.str.len, &e) < 0)
		problem(problems, f, "%s", e.msg);
}

/* What a pipeline entry may hold; the values are checked in check_step. */
#define ENTRY_SCHEMA                                                                       \
	"{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"step\":{}," \
	"\"config\":{},\"on_error\":{},\"when\":{}}}"
#define ENTRY_UNKNOWN_KEY "unknown key (allowed: step, config, on_error, when)"

static void check_step(const struct step_registry *r, const struct json *entry_schema,
		       const struct json *item, size_t i, struct json *problems)
{
	char field[64];
	snprintf(field, sizeof(field), "pipeline[%zu]", i);
	if (!item || item->type != JSON_OBJECT) {
		problem(problems, field, "must be an object like {\"step\": \"CREATE_LOCATION\"}");
		return;
	}
	/* the keys, by the schema module; the values below, in words of our own */
	size_t first = json_len(problems);
	schema_validate(entry_schema, item, field, problems);
	for (size_t k = first; k < json_len(problems); k++) {
		struct json *p = json_at(problems, k);
		if (str_has_prefix(json_get_str(p, "message"), "unknown field"))
			json_object_set_take(p, "message", json_new_string(ENTRY_UNKNOWN_KEY));
	}
	char f[128];
	const char *name = json_get_str(item, "step");
	snprintf(f, sizeof(f), "%s.step", field);
	if (!name || !*name) {
		problem(problems, f, "required: the name of a registered step");
		return;
	}
	const char *on_error = json_get_str(item, "on_error");
	struct json *oe = json_get(item, "on_error");
	if (oe && (!on_error || (strcmp(on_error, "fail") && strcmp(on_error, "continue")))) {
		snprintf(f, sizeof(f), "%s.on_error", field);
		problem(problems, f, "must be \"fail\" or \"continue\"");
	}
	check_when(json_get(item, "when"), field, problems);
	struct step_impl *impl = step_registry_find(r, name);
	if (!impl) {
		char *known = step_registry_names(r);
		snprintf(f, sizeof(f), "%s.step", field);
		problem(problems, f, "unknown step \"%s\" (known steps: %s)", name, known);
		free(known);
		return;
	}
	for (size_t k = 0; k < impl->nclient_fields; k++)
		if (!client_data_field_known(impl->client_fields[k]))
			problem(problems, f,
				"step %s declares it needs client field \"%s\", which "
				"is not a client-data field (name, email, first_name, …)",
				name, impl->client_fields[k]);
	struct json *cfg = json_get(item, "config");
	snprintf(f, sizeof(f), "%s.config", field);
	if (cfg && cfg->type != JSON_OBJECT) {
		problem(problems, f, "must be an object");
		return;
	}
	struct json *empty = NULL;
	if (!cfg)
		cfg = empty = json_new_object();
	size_t before = json_len(problems);
	schema_validate(impl->schema, cfg, f, problems);
	/* name the step in its config problems: "… (step CREATE_USER)" */
	for (size_t k = before; k < json_len(problems); k++) {
		struct json *p = json_at(problems, k);
		const char *m = json_get_str(p, "message");
		char *m2 = xasprintf("%s (step %s)", m ? m : "", name);
		json_object_set_take(p, "message", json_new_string(m2));
		free(m2);
	}
	json_free(empty);
}

size_t pipeline_validate(const struct step_registry *r, const struct json *settings,
			 struct json *problems)
{
	size_t before = json_len(problems);
	if (!settings || settings->type == JSON_NULL)
		return 0;
	if (settings->type != JSON_OBJECT) {
		problem(problems, "settings", "must be an object");
		return json_len(problems) - before;
	}
	static const char *const known[] = {"pipeline", "max_retries", "max_concurrent_jobs",
					    "on_failure"};
	for (size_t k = 0; k < settings->u.obj.n; k++) {
		const char *key = settings->u.obj.keys[k];
		size_t i = 0;
		while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], key))
			i++;
		if (i == sizeof(known) / sizeof(known[0]))
			problem(problems, key,
				"unknown setting (known: pipeline, max_retries, "
				"max_concurrent_jobs, on_failure)");
	}
	check_int(settings, "max_retries", 0, 100, problems);
	check_int(settings, "max_concurrent_jobs", 1, 100000, problems);
	struct json *of = json_get(settings, "on_failure");
	if (of && (of->type != JSON_STRING ||
		   (strcmp(of->u.str.s, "fail") && strcmp(of->u.str.s, "rollback"))))
		problem(problems, "on_failure", "must be \"fail\" or \"rollback\"");
	struct json *p = json_get(settings, "pipeline");
	if (p) {
		if (p->type != JSON_ARRAY || p->u.arr.n == 0) {
			problem(problems, "pipeline", "must be a non-empty array of steps");
		} else if (p->u.arr.n > 100) {
			problem(problems, "pipeline", "has %zu steps; at most 100 are allowed",
				p->u.arr.n);
		} else {
			struct json *entry_schema = json_parse(ENTRY_SCHEMA, strlen(ENTRY_SCHEMA),
							       JSON_DEFAULT_MAX_DEPTH, NULL);
			for (size_t i = 0; i < p->u.arr.n; i++)
				check_step(r, entry_schema, p->u.arr.items[i], i, problems);
			json_free(entry_schema);
		}
	}
	return json_len(problems) - before;
}

int pipeline_check(const struct step_registry *r, const struct json *settings, struct err *e)
{
	struct json *problems = json_new_array();
	size_t n = pipeline_validate(r, settings, problems);
	if (n) {
		struct json *first = json_at(problems, 0);
		err_set(e, "%s: %s%s", json_get_str(first, "field"), json_get_str(first, "message"),
			n > 1 ? " (and more problems)" : "");
	}
	json_free(problems);
	return n ? -1 : 0;
}

struct json *pipeline_effective(const struct json *agency_settings,
				const struct json *default_settings)
{
	struct json *p = json_get(agency_settings, "pipeline");
	if (!p || p->type != JSON_ARRAY)
		p = json_get(default_settings, "pipeline");
	return p && p->type == JSON_ARRAY ? json_clone(p) : NULL;
}

/* ---- the client-data fields a pipeline needs ---------------------------------- */

static void need(struct json *needs, const char *field, const char *step)
{
	struct json *steps = NULL;
	for (size_t i = 0; i < json_len(needs) && !steps; i++)
		if (str_eq(json_get_str(json_at(needs, i), "field"), field))
			steps = json_get(json_at(needs, i), "steps");
	if (!steps) {
		struct json *it = json_new_object();
		json_object_set_take(it, "field", json_new_string(field));
		steps = json_new_array();
		json_object_set_take(it, "steps", steps);
		json_array_push_take(needs, it);
	}
	for (size_t i = 0; i < json_len(steps); i++)
		if (str_eq(json_at(steps, i)->u.str.s, step))
			return;
	json_array_push_take(steps, json_new_string(step));
}

struct json *pipeline_client_fields(const struct step_registry *r, const struct json *pipeline)
{
	struct json *needs = json_new_array();
	for (size_t i = 0; r && i < json_len(pipeline); i++) {
		const struct json *item = json_at(pipeline, i);
		const char *name = json_get_str(item, "step");
		if (!name || str_eq(json_get_str(item, "on_error"), "continue"))
			continue;
		const struct step_impl *impl = step_registry_find(r, name);
		for (size_t k = 0; impl && k < impl->nclient_fields; k++)
			need(needs, impl->client_fields[k], name);
	}
	return needs;
}

struct json *pipeline_agency_client_fields(const struct step_registry *r, const char *settings_text,
					   const char *default_text)
{
	struct json *settings = settings_text ? json_parse(settings_text, strlen(settings_text),
							   JSON_DEFAULT_MAX_DEPTH, NULL)
					      : NULL;
	struct json *def = default_text ? json_parse(default_text, strlen(default_text),
						     JSON_DEFAULT_MAX_DEPTH, NULL)
					: NULL;
	struct json *p = pipeline_effective(settings, def);
	struct json *needs = pipeline_client_fields(r, p);
	json_free(p);
	json_free(def);
	json_free(settings);
	return needs;
}

size_t pipeline_missing_client_fields(const struct json *needs, const struct json *client,
				      const char *prefix, const char *suffix, struct json *problems)
{
	size_t before = json_len(problems);
	if (!client || client->type != JSON_OBJECT)
		return 0;
	for (size_t i = 0; i < json_len(needs); i++) {
		const struct json *it = json_at(needs, i);
		const char *field = json_get_str(it, "field");
		const struct json *v = json_get(client, field);
		if (!field || (v && v->type != JSON_NULL))
			continue;
		char *path = xasprintf("%s%s", prefix ? prefix : "", field);
		int named = 0;
		for (size_t k = 0; k < before && !named; k++)
			named = str_eq(json_get_str(json_at(problems, k), "field"), path);
		if (!named) {
			const struct json *steps = json_get(it, "steps");
			struct buf b;
			buf_init(&b);
			for (size_t k = 0; k < json_len(steps); k++)
				buf_printf(&b, "%s%s", k ? ", " : "", json_at(steps, k)->u.str.s);
			problem(problems, path, "required by step%s %s of the agency's pipeline%s",
				json_len(steps) > 1 ? "s" : "", buf_cstr(&b), suffix ? suffix : "");
			buf_clear(&b);
		}
		free(path);
	}
	return json_len(problems) - before;
}

/* ---- write-only secrets ----------------------------------------------------- */

static int is_secret_key(const char *k)
{
	static const char *const names[] = {"secret", "password", "token", "api_key"};
	static const char *const ends[] = {"_secret", "_password", "_token"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(k, names[i]))
			return 1;
	size_t n = strlen(k);
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		size_t m = strlen(ends[i]);
		if (n > m && !strcmp(k + n - m, ends[i]))
			return 1;
	}
	return 0;
}

static void mask_in(struct json *v)
{
	if (!v)
		return;
	if (v->type == JSON_ARRAY) {
		for (size_t i = 0; i < v->u.arr.n; i++)
			mask_in(v->u.arr.items[i]);
		return;
	}
	if (v->type != JSON_OBJECT)
		return;
	for (size_t i = 0; i < v->u.obj.n; i++) {
		if (is_secret_key(v->u.obj.keys[i]) && v->u.obj.vals[i]->type != JSON_NULL) {
			json_free(v->u.obj.vals[i]);
			v->u.obj.vals[i] = json_new_string(PIPELINE_MASK);
		} else {
			mask_in(v->u.obj.vals[i]);
		}
	}
}

void pipeline_mask_secrets(struct json *settings)
{
	struct json *p = json_get(settings, "pipeline");
	for (size_t i = 0; p && p->type == JSON_ARRAY && i < p->u.arr.n; i++)
		mask_in(json_get(p->u.arr.items[i], "config"));
}

/* The stored step a masked value of new step i (named name) comes from. */
static const struct json *stored_step(const struct json *stored_pipeline, size_t i,
				      const char *name)
{
	const struct json *same = json_at(stored_pipeline, i);
	if (same && str_eq(json_get_str(same, "step"), name))
		return same;
	const struct json *only = NULL;
	for (size_t k = 0; k < json_len(stored_pipeline); k++) {
		const struct json *s = json_at(stored_pipeline, k);
		if (s && str_eq(json_get_str(s, "step"), name)) {
			if (only)
				return NULL; /* more than one: ambiguous */
			only = s;
		}
	}
	return only;
}

/* Replace masks in v (under field) by what `from` holds at the same keys. */
static void keep_in(struct json *v, const struct json *from, const char *field,
		    struct json *problems)
{
	if (!v || v->type != JSON_OBJECT)
		return;
	for (size_t i = 0; i < v->u.obj.n; i++) {
		const char *k = v->u.obj.keys[i];
		struct json *x = v->u.obj.vals[i];
		const struct json *old = json_get(from, k);
		char *f = xasprintf("%s.%s", field, k);
		if (x->type == JSON_STRING && !strcmp(x->u.str.s, PIPELINE_MASK) &&
		    is_secret_key(k)) {
			if (old && old->type == JSON_STRING &&
			    strcmp(old->u.str.s, PIPELINE_MASK)) {
				json_free(x);
				v->u.obj.vals[i] = json_clone(old);
			} else {
				problem(problems, f,
					"is the mask \"%s\" but no stored value is there to "
					"keep; send the secret itself",
					PIPELINE_MASK);
			}
		} else if (x->type == JSON_OBJECT) {
			keep_in(x, old, f, problems);
		}
		free(f);
	}
}

size_t pipeline_keep_secrets(struct json *settings, const struct json *stored,
			     struct json *problems)
{
	size_t before = json_len(problems);
	struct json *p = json_get(settings, "pipeline");
	const struct json *sp = json_get(stored, "pipeline");
	for (size_t i = 0; p && p->type == JSON_ARRAY && i < p->u.arr.n; i++) {
		struct json *item = p->u.arr.items[i];
		struct json *cfg = json_get(item, "config");
		if (!cfg || cfg->type != JSON_OBJECT)
			continue;
		const struct json *from = stored_step(sp, i, json_get_str(item, "step"));
		char field[64];
		snprintf(field, sizeof(field), "pipeline[%zu].config", i);
		keep_in(cfg, json_get(from, "config"), field, problems);
	}
	return json_len(problems) - before;
}
