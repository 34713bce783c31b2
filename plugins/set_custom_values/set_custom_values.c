/* set_custom_values — SET_CUSTOM_VALUES: writes the location's custom values,
 * one request per run() call, with the location token:
 *   - config.values: name -> template, "{{city}}" etc. replaced by the client's
 *     fields (a client_data_json path: keys joined by '.', array indexes in
 *     brackets, "{{address.lines[0]}}"; absent ones become "");
 *   - client_data_json.custom_values: name -> value (wins over config.values).
 * Names may hold any character ('.', '[', '"', non-ASCII): they are read as
 * keys, never parsed. Each is POSTed; a 400 (GHL refuses a duplicate name)
 * lists the values and PUTs the existing one, so a retried step converges. A
 * last GET collects the ids.
 * Config: {"values": {name: template}}. Outputs: custom_value_ids {name: id}. */
#include <string.h>
#include <strings.h>

#include "ghl_step.h"
#include "step_template.h"

GHL_STEP_HOST;

/* Phases: the reply the step waits for, about item run->i. */
enum { PH_START = 0, PH_POSTED = 1, PH_LISTED = 2, PH_PUT = 3, PH_COLLECTED = 4 };

/* Per-run state: the item being written. */
struct run {
	size_t i;
};

static size_t n_config(ghl_step_ctx *ctx)
{
	return host->get_count(ctx, GHL_SRC_CONFIG, GHL_PATH("values"));
}

static size_t n_items(ghl_step_ctx *ctx)
{
	return n_config(ctx) + host->get_count(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values"));
}

static const char *item_name(ghl_step_ctx *ctx, size_t i)
{
	size_t nc = n_config(ctx);
	return i < nc ? host->get_key(ctx, GHL_SRC_CONFIG, GHL_PATH("values"), i)
		      : host->get_key(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values"), i - nc);
}

/* A config value the client's own custom_values overrides is skipped. */
static int shadowed(ghl_step_ctx *ctx, size_t i)
{
	return i < n_config(ctx) &&
	       host->get_type(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", item_name(ctx, i))) !=
		       GHL_TYPE_ABSENT;
}

static const char *item_value(ghl_step_ctx *ctx, size_t i)
{
	const char *name = item_name(ctx, i);
	if (i < n_config(ctx)) {
		const char *t = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH("values", name));
		return step_template_expand(host, ctx, t ? t : "");
	}
	return step_text_at(host, ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", name));
}

static const char *cv_path(ghl_step_ctx *ctx)
{
	const char *loc = host->get_string(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
	return host->format(ctx, "/locations/%s/customValues", host->urlencode(ctx, loc));
}

static int send(ghl_step_ctx *ctx, int phase, const char *method, const char *path,
		const char *body)
{
	host->set_phase(ctx, phase);
	host->log(ctx, GHL_LOG_INFO, "%s %s", method, path);
	if (host->request(ctx, method, path, NULL, body, GHL_TOKEN_LOCATION) < 0)
		return host->fail(ctx, 1, "could not start %s %s", method, path);
	return GHL_STEP_WAIT;
}

/* {"name": …, "value": …} of item i, then the request. */
static int send_item(ghl_step_ctx *ctx, int phase, const char *method, const char *path, size_t i)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "name");
	host->json_string(j, item_name(ctx, i));
	host->json_key(j, "value");
	host->json_string(j, item_value(ctx, i));
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build custom value %zu (see the log)", i);
	return send(ctx, phase, method, path, body);
}

/* Starts item r->i, or the next one not shadowed, or the final list. */
static int start(ghl_step_ctx *ctx, struct run *r)
{
	size_t n = n_items(ctx);
	while (r->i < n && shadowed(ctx, r->i))
		r->i++;
	if (r->i == n)
		return send(ctx, PH_COLLECTED, "GET", cv_path(ctx), NULL);
	return send_item(ctx, PH_POSTED, "POST", cv_path(ctx), r->i);
}

static void log_reply(ghl_step_ctx *ctx)
{
	const char *trace = host->get_string(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
	const char *msg = host->response_message(ctx);
	host->log(ctx, GHL_LOG_INFO, "-> %d traceId=%s%s%s", host->response_status(ctx),
		  trace ? trace : "-", msg ? " message=" : "", msg ? msg : "");
}

static int ok(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	return st >= 200 && st <= 299;
}

/* A field of the listed customValue named name, or NULL. */
static const char *listed(ghl_step_ctx *ctx, const char *name, const char *field)
{
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("customValues"));
	for (size_t j = 0; j < n; j++) {
		const char *ix = host->format(ctx, "%zu", j);
		const char *nm = host->get_string(ctx, GHL_SRC_RESPONSE,
						  GHL_PATH("customValues", ix, "name"));
		if (nm && strcasecmp(nm, name) == 0)
			return host->get_string(ctx, GHL_SRC_RESPONSE,
						GHL_PATH("customValues", ix, field));
	}
	return NULL;
}

static int collect_ids(ghl_step_ctx *ctx)
{
	if (!ok(ctx))
		return host->fail_from_response(ctx, "listing custom values");
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	size_t n = n_items(ctx);
	for (size_t i = 0; i < n; i++) {
		if (shadowed(ctx, i))
			continue;
		const char *name = item_name(ctx, i);
		const char *id = listed(ctx, name, "id");
		if (!id)
			return host->fail(ctx, 1,
					  "custom value \"%s\" is missing after it was written",
					  name);
		host->json_key(j, name);
		host->json_string(j, id);
	}
	host->json_end(j);
	const char *ids = host->json_text(j);
	if (!ids || host->set_output(ctx, "custom_value_ids", ids))
		return host->fail(ctx, 0, "could not record custom_value_ids (see the log)");
	return GHL_STEP_DONE;
}

/* GHL refused the POST of item i with 400: is it there already? */
static int on_listed(ghl_step_ctx *ctx, struct run *r)
{
	const char *name = item_name(ctx, r->i);
	if (!ok(ctx))
		return host->fail_from_response(ctx, "listing custom values");
	const char *id = listed(ctx, name, "id");
	if (!id)
		return host->fail(ctx, 0,
				  "GHL refused custom value \"%s\" with 400 (see the step "
				  "log) and no value of that name exists",
				  name);
	const char *cur = listed(ctx, name, "value");
	if (cur && strcmp(cur, item_value(ctx, r->i)) == 0) {
		r->i++;
		return start(ctx, r);
	}
	return send_item(ctx, PH_PUT, "PUT",
			 host->format(ctx, "%s/%s", cv_path(ctx), host->urlencode(ctx, id)), r->i);
}

static int on_reply(ghl_step_ctx *ctx, struct run *r, int phase)
{
	log_reply(ctx);
	if (phase == PH_POSTED && host->response_status(ctx) == 400) /* a duplicate name */
		return send(ctx, PH_LISTED, "GET", cv_path(ctx), NULL);
	if (phase == PH_LISTED)
		return on_listed(ctx, r);
	if (!ok(ctx))
		return host->fail_from_response(
			ctx, host->format(ctx, "%s custom value \"%s\"",
					  phase == PH_PUT ? "updating" : "creating",
					  item_name(ctx, r->i)));
	r->i++;
	return start(ctx, r);
}

static int set_custom_values_run(ghl_step_ctx *ctx)
{
	struct run *r = host->state_alloc(ctx, sizeof(*r));
	int ph = host->phase(ctx);
	if (ph == PH_COLLECTED)
		return collect_ids(ctx);
	if (ph != PH_START)
		return on_reply(ctx, r, ph);
	if (!host->get_string(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id")))
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before "
				  "SET_CUSTOM_VALUES");
	size_t n = n_items(ctx);
	for (size_t i = 0; i < n; i++) {
		const char *name = item_name(ctx, i);
		if (!name || !*name)
			return host->fail(ctx, 0, "a custom value name is empty");
	}
	if (n == 0) {
		host->set_output(ctx, "custom_value_ids", "{}");
		return GHL_STEP_DONE;
	}
	return start(ctx, r);
}

static const struct ghl_step_def steps[] = {
	{"SET_CUSTOM_VALUES", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"values\":{\"type\":\"object\","
	 "\"description\":\"custom value name -> template; {{city}}, {{name}}, ... are replaced by "
	 "the client's fields\"}},\"additionalProperties\":false}",
	 "writes the location's custom values (client custom_values and config templates)",
	 set_custom_values_run, NULL, NULL},
};

GHL_STEP_PLUGIN(set_custom_values, "1.0.0", NULL, steps)
