/* custom_field.c — CREATE_CUSTOM_FIELD, an out-of-tree step plugin: a contact
 * custom field in the client's new location (for the forms and automations the
 * agency's snapshot brings). Built against the installed ABI header alone:
 *
 *   cc $(pkg-config --cflags ghl-agent-plugin) -Wall -Wextra -shared -fPIC \
 *      -o custom_field.so custom_field.c
 *   cp custom_field.so "$(pkg-config --variable=plugindir ghl-agent-plugin)"
 *
 * The file name matters: GHL_STEP_PLUGIN(custom_field, …) exports
 * ghl_plugin_entry_custom_field, which the agent looks up for custom_field.so.
 *
 * Idempotent (find before create): it lists the location's custom fields and
 * reuses one of the same name, which an earlier attempt may have created
 * before it died; a 400 to the POST (created meanwhile) lists again.
 * Compensate (pipelines with "on_failure": "rollback") deletes the field, but
 * only when this job created it.
 * Config: {"name": "Preferred dentist", "data_type": "TEXT", "placeholder": "…"}.
 * Outputs: custom_field_id, custom_field_key, custom_field_reused. */
#include <ghl_step.h>
#include <strings.h>

GHL_STEP_HOST;

/* run() waits for one of these replies ... */
enum { PH_START = 0, PH_LISTED = 1, PH_CREATED = 2, PH_RELISTED = 3 };
/* ... and compensate() for this one. */
enum { PH_DELETED = 1 };

static const char *config(ghl_step_ctx *ctx, const char *key)
{
	return host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH(key));
}

static const char *location_id(ghl_step_ctx *ctx)
{
	return host->get_string(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
}

static const char *fields_path(ghl_step_ctx *ctx)
{
	return host->format(ctx, "/locations/%s/customFields",
			    host->urlencode(ctx, location_id(ctx)));
}

/* Start a request with the location's token; the step returns what this does. */
static int send(ghl_step_ctx *ctx, int phase, const char *method, const char *path,
		const char *body)
{
	host->set_phase(ctx, phase);
	host->log(ctx, GHL_LOG_INFO, "%s %s", method, path);
	if (host->request(ctx, method, path, NULL, body, GHL_TOKEN_LOCATION) < 0)
		return host->fail(ctx, 1, "could not start %s %s", method, path);
	return GHL_STEP_WAIT;
}

static int ok(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	return st >= 200 && st <= 299;
}

/* The outputs, from the field in the response: customFields[ix] when the
 * list had it (reused), else the customField just created. */
static int done(ghl_step_ctx *ctx, const char *ix)
{
	const char *id = host->get_string(ctx, GHL_SRC_RESPONSE,
					  ix ? GHL_PATH("customFields", ix, "id")
					     : GHL_PATH("customField", "id"));
	const char *key = host->get_string(ctx, GHL_SRC_RESPONSE,
					   ix ? GHL_PATH("customFields", ix, "fieldKey")
					      : GHL_PATH("customField", "fieldKey"));
	if (!id)
		return host->fail(ctx, 1, "GHL answered without the custom field's id");
	host->set_output(ctx, "custom_field_id", host->quote(ctx, id));
	host->set_output(ctx, "custom_field_key", host->quote(ctx, key));
	host->set_output(ctx, "custom_field_reused", ix ? "true" : "false");
	host->log(ctx, GHL_LOG_INFO, "%s custom field %s", ix ? "reusing" : "created", id);
	return GHL_STEP_DONE;
}

/* The listed field named like config.name: the index as a path key, or NULL. */
static const char *find(ghl_step_ctx *ctx)
{
	const char *name = config(ctx, "name");
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("customFields"));
	for (size_t i = 0; i < n; i++) {
		const char *ix = host->format(ctx, "%zu", i);
		const char *nm = host->get_string(ctx, GHL_SRC_RESPONSE,
						  GHL_PATH("customFields", ix, "name"));
		if (nm && strcasecmp(nm, name) == 0)
			return ix;
	}
	return NULL;
}

static int create(ghl_step_ctx *ctx)
{
	const char *type = config(ctx, "data_type");
	const char *placeholder = config(ctx, "placeholder");
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "name");
	host->json_string(j, config(ctx, "name"));
	host->json_key(j, "dataType");
	host->json_string(j, type ? type : "TEXT");
	if (placeholder) {
		host->json_key(j, "placeholder");
		host->json_string(j, placeholder);
	}
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build the request (see the log)");
	return send(ctx, PH_CREATED, "POST", fields_path(ctx), body);
}

static int listed(ghl_step_ctx *ctx, int again)
{
	if (!ok(ctx))
		return host->fail_from_response(ctx, "listing custom fields");
	const char *ix = find(ctx);
	if (ix)
		return done(ctx, ix);
	if (again)
		return host->fail(ctx, 1,
				  "GHL refused custom field \"%s\" as a duplicate, yet "
				  "lists none of that name",
				  config(ctx, "name"));
	return create(ctx);
}

static int created(ghl_step_ctx *ctx)
{
	if (host->response_status(ctx) == 400)
		return send(ctx, PH_RELISTED, "GET", fields_path(ctx), NULL);
	if (!ok(ctx))
		return host->fail_from_response(ctx, "creating custom field");
	return done(ctx, NULL);
}

static int custom_field_run(ghl_step_ctx *ctx)
{
	switch (host->phase(ctx)) {
	case PH_LISTED: return listed(ctx, 0);
	case PH_CREATED: return created(ctx);
	case PH_RELISTED: return listed(ctx, 1);
	default: break;
	}
	if (!location_id(ctx))
		return host->fail(ctx, 0,
				  "no location_id: put CREATE_LOCATION before "
				  "CREATE_CUSTOM_FIELD");
	return send(ctx, PH_LISTED, "GET", fields_path(ctx), NULL);
}

/* Undo: delete the field this job created; leave one it found. */
static int custom_field_compensate(ghl_step_ctx *ctx)
{
	if (host->phase(ctx) == PH_DELETED) {
		int st = host->response_status(ctx);
		if (st == 200 || st == 404) /* gone either way */
			return GHL_STEP_DONE;
		return host->fail_from_response(ctx, "deleting the custom field");
	}
	const char *id = host->get_string(ctx, GHL_SRC_OUTPUTS, GHL_PATH("custom_field_id"));
	int reused = 0;
	host->get_bool(ctx, GHL_SRC_OUTPUTS, GHL_PATH("custom_field_reused"), &reused);
	if (!id || !location_id(ctx))
		return GHL_STEP_DONE;
	if (reused) {
		host->log(ctx, GHL_LOG_WARN, "kept custom field %s: this job found it", id);
		return GHL_STEP_DONE;
	}
	return send(ctx, PH_DELETED, "DELETE",
		    host->format(ctx, "%s/%s", fields_path(ctx), host->urlencode(ctx, id)), NULL);
}

static const struct ghl_step_def steps[] = {
	{"CREATE_CUSTOM_FIELD", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{"
	 "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,"
	 "\"description\":\"the field's name in GHL\"},"
	 "\"data_type\":{\"type\":\"string\",\"enum\":[\"TEXT\",\"LARGE_TEXT\",\"NUMERICAL\","
	 "\"PHONE\",\"DATE\",\"CHECKBOX\"],\"default\":\"TEXT\"},"
	 "\"placeholder\":{\"type\":\"string\",\"maxLength\":200}},"
	 "\"required\":[\"name\"],\"additionalProperties\":false}",
	 "creates a contact custom field in the location (reuses one of the same name)",
	 custom_field_run, custom_field_compensate, NULL},
};

GHL_STEP_PLUGIN(custom_field, "1.0.0", NULL, steps)
