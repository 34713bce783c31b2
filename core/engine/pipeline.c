/* pipeline.c — pipeline parsing and validation; see pipeline.h. */
#include "pipeline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
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
	buf_free(&b);
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

static void check_step(const struct step_registry *r, const struct json *item, size_t i,
		       struct json *problems)
{
	char field[64];
	snprintf(field, sizeof(field), "pipeline[%zu]", i);
	if (!item || item->type != JSON_OBJECT) {
		problem(problems, field, "must be an object like {\"step\": \"CREATE_LOCATION\"}");
		return;
	}
	for (size_t k = 0; k < item->u.obj.n; k++) {
		const char *key = item->u.obj.keys[k];
		if (strcmp(key, "step") && strcmp(key, "config") && strcmp(key, "on_error")) {
			char f[128];
			snprintf(f, sizeof(f), "%s.%s", field, key);
			problem(problems, f, "unknown key (allowed: step, config, on_error)");
		}
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
	struct step_impl *impl = step_registry_find(r, name);
	if (!impl) {
		char *known = step_registry_names(r);
		snprintf(f, sizeof(f), "%s.step", field);
		problem(problems, f, "unknown step \"%s\" (known steps: %s)", name, known);
		free(known);
		return;
	}
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
			for (size_t i = 0; i < p->u.arr.n; i++)
				check_step(r, p->u.arr.items[i], i, problems);
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
