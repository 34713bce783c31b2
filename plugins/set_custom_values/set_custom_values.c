/* set_custom_values — SET_CUSTOM_VALUES: writes the location's custom values,
 * one request per run() call, with the location token:
 *   - config.values: name -> template, "{{city}}" etc. replaced by the client's
 *     fields (any client_data_json path; absent ones become "");
 *   - client_data_json.custom_values: name -> value (wins over config.values).
 * Each is POSTed; a 400 (GHL refuses a duplicate name) lists the values and
 * PUTs the existing one, so a retried step converges. A last GET collects the
 * ids. Names containing '.' or '[' cannot be addressed through get() paths and
 * fail the step.
 * Config: {"values": {name: template}}. Outputs: custom_value_ids {name: id}. */
#include <string.h>
#include <strings.h>

#include "ghl_step.h"

static const struct ghl_host_api *host;

/* Phases: 0 first call; 1 + 4*i + sub for item i (sub: SUB_POST, SUB_LIST,
 * SUB_PUT the reply being waited for); i == number of items: the last list. */
enum { SUB_POST = 0, SUB_LIST = 1, SUB_PUT = 2 };
#define MAX_TEMPLATE 8192

/* A present, non-null, non-empty value, or NULL. */
static const char *val(ghl_step_ctx *ctx, const char *src, const char *path)
{
	const char *v = host->get(ctx, src, path);
	return v && *v && strcmp(v, "null") != 0 ? v : NULL;
}

static size_t n_config(ghl_step_ctx *ctx)
{
	return host->count(ctx, GHL_SRC_CONFIG, "values");
}

static size_t n_items(ghl_step_ctx *ctx)
{
	return n_config(ctx) + host->count(ctx, GHL_SRC_CLIENT, "custom_values");
}

static const char *item_name(ghl_step_ctx *ctx, size_t i)
{
	size_t nc = n_config(ctx);
	return i < nc ? host->key_at(ctx, GHL_SRC_CONFIG, "values", i)
		      : host->key_at(ctx, GHL_SRC_CLIENT, "custom_values", i - nc);
}

/* A config value the client's own custom_values overrides is skipped. */
static int shadowed(ghl_step_ctx *ctx, size_t i)
{
	return i < n_config(ctx) &&
	       host->get(ctx, GHL_SRC_CLIENT,
			 host->format(ctx, "custom_values.%s", item_name(ctx, i))) != NULL;
}

/* tmpl with each "{{ path }}" replaced by the client's value at path. */
static const char *expand(ghl_step_ctx *ctx, const char *tmpl)
{
	const char *out = "";
	const char *p = tmpl;
	const char *open;
	while ((open = strstr(p, "{{")) != NULL) {
		const char *close = strstr(open + 2, "}}");
		if (!close)
			break;
		const char *k = open + 2, *e = close;
		while (k < e && *k == ' ')
			k++;
		while (e > k && e[-1] == ' ')
			e--;
		const char *key = host->format(ctx, "%.*s", (int)(e - k), k);
		const char *v = val(ctx, GHL_SRC_CLIENT, key);
		out = host->format(ctx, "%s%.*s%s", out, (int)(open - p), p, v ? v : "");
		p = close + 2;
		if (strlen(out) > MAX_TEMPLATE)
			break;
	}
	return host->format(ctx, "%s%s", out, p);
}

static const char *item_value(ghl_step_ctx *ctx, size_t i)
{
	const char *name = item_name(ctx, i);
	if (i < n_config(ctx)) {
		const char *t = host->get(ctx, GHL_SRC_CONFIG, host->format(ctx, "values.%s", name));
		return expand(ctx, t ? t : "");
	}
	const char *v = host->get(ctx, GHL_SRC_CLIENT, host->format(ctx, "custom_values.%s", name));
	return v && strcmp(v, "null") != 0 ? v : "";
}

static const char *cv_path(ghl_step_ctx *ctx)
{
	return host->format(ctx, "/locations/%s/customValues",
			    host->urlencode(ctx, val(ctx, GHL_SRC_OUTPUTS, "location_id")));
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

static const char *cv_body(ghl_step_ctx *ctx, size_t i)
{
	return host->format(ctx, "{\"name\":%s,\"value\":%s}", host->quote(ctx, item_name(ctx, i)),
			    host->quote(ctx, item_value(ctx, i)));
}

/* Starts item i (or the final list once all are written). */
static int start(ghl_step_ctx *ctx, size_t i)
{
	size_t n = n_items(ctx);
	while (i < n && shadowed(ctx, i))
		i++;
	if (i == n)
		return send(ctx, 1 + 4 * (int)n, "GET", cv_path(ctx), NULL);
	return send(ctx, 1 + 4 * (int)i + SUB_POST, "POST", cv_path(ctx), cv_body(ctx, i));
}

static void log_reply(ghl_step_ctx *ctx)
{
	const char *trace = val(ctx, GHL_SRC_RESPONSE, "traceId");
	const char *msg = host->response_message(ctx);
	host->log(ctx, GHL_LOG_INFO, "-> %d traceId=%s%s%s", host->response_status(ctx),
		  trace ? trace : "-", msg ? " message=" : "", msg ? msg : "");
}

static int ok(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	return st >= 200 && st <= 299;
}

/* Index in the listed customValues of the one named name, or -1. */
static long listed(ghl_step_ctx *ctx, const char *name)
{
	size_t n = host->count(ctx, GHL_SRC_RESPONSE, "customValues");
	for (size_t j = 0; j < n; j++) {
		const char *nm = host->get(ctx, GHL_SRC_RESPONSE,
					   host->format(ctx, "customValues[%zu].name", j));
		if (nm && strcasecmp(nm, name) == 0)
			return (long)j;
	}
	return -1;
}

static const char *listed_field(ghl_step_ctx *ctx, long j, const char *field)
{
	return host->get(ctx, GHL_SRC_RESPONSE, host->format(ctx, "customValues[%ld].%s", j, field));
}

static int collect_ids(ghl_step_ctx *ctx)
{
	if (!ok(ctx))
		return host->fail_from_response(ctx, "listing custom values");
	const char *obj = "{";
	size_t n = n_items(ctx);
	for (size_t i = 0; i < n; i++) {
		if (shadowed(ctx, i))
			continue;
		const char *name = item_name(ctx, i);
		long j = listed(ctx, name);
		const char *id = j >= 0 ? listed_field(ctx, j, "id") : NULL;
		if (!id)
			return host->fail(ctx, 1, "custom value \"%s\" is missing after it was written",
					  name);
		obj = host->format(ctx, "%s%s%s:%s", obj, obj[1] ? "," : "", host->quote(ctx, name),
				   host->quote(ctx, id));
	}
	host->set_output(ctx, "custom_value_ids", host->format(ctx, "%s}", obj));
	return GHL_STEP_DONE;
}

static int on_reply(ghl_step_ctx *ctx, size_t i, int sub)
{
	const char *name = item_name(ctx, i);
	log_reply(ctx);
	if (sub == SUB_POST && host->response_status(ctx) == 400) /* a duplicate name */
		return send(ctx, 1 + 4 * (int)i + SUB_LIST, "GET", cv_path(ctx), NULL);
	if (sub == SUB_LIST) {
		if (!ok(ctx))
			return host->fail_from_response(ctx, "listing custom values");
		long j = listed(ctx, name);
		const char *id = j >= 0 ? listed_field(ctx, j, "id") : NULL;
		if (!id)
			return host->fail(ctx, 0, "GHL refused custom value \"%s\" with 400 (see the "
						  "step log) and no value of that name exists",
					  name);
		const char *cur = listed_field(ctx, j, "value");
		if (cur && strcmp(cur, item_value(ctx, i)) == 0)
			return start(ctx, i + 1);
		return send(ctx, 1 + 4 * (int)i + SUB_PUT, "PUT",
			    host->format(ctx, "%s/%s", cv_path(ctx), host->urlencode(ctx, id)),
			    cv_body(ctx, i));
	}
	if (!ok(ctx))
		return host->fail_from_response(
			ctx, host->format(ctx, "%s custom value \"%s\"",
					  sub == SUB_PUT ? "updating" : "creating", name));
	return start(ctx, i + 1);
}

static int set_custom_values_run(ghl_step_ctx *ctx)
{
	int ph = host->phase(ctx);
	size_t n = n_items(ctx);
	if (ph > 0) {
		size_t i = (size_t)(ph - 1) / 4;
		return i >= n ? collect_ids(ctx) : on_reply(ctx, i, (ph - 1) % 4);
	}
	if (!val(ctx, GHL_SRC_OUTPUTS, "location_id"))
		return host->fail(ctx, 0, "no location_id: CREATE_LOCATION must run before "
					  "SET_CUSTOM_VALUES");
	for (size_t i = 0; i < n; i++) {
		const char *name = item_name(ctx, i);
		if (!name || !*name || strpbrk(name, ".[]"))
			return host->fail(ctx, 0, "custom value name \"%s\" is empty or contains '.', "
						  "'[' or ']'",
					  name ? name : "");
	}
	if (n == 0) {
		host->set_output(ctx, "custom_value_ids", "{}");
		return GHL_STEP_DONE;
	}
	return start(ctx, 0);
}

static int set_custom_values_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"SET_CUSTOM_VALUES", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"values\":{\"type\":\"object\","
	 "\"description\":\"custom value name -> template; {{city}}, {{name}}, ... are replaced by "
	 "the client's fields\"}},\"additionalProperties\":false}",
	 "writes the location's custom values (client custom_values and config templates)",
	 set_custom_values_run, NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "set_custom_values", set_custom_values_init, steps,
	sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
