/* create_contact — CREATE_CONTACT: the client as a contact of their own new
 * location, tagged with client_data_json.tags + config.tags, through
 * POST /contacts/upsert (location token), which GHL matches by email then
 * phone, so a retry updates instead of duplicating.
 * Config: {"tags": [string]}. Outputs: contact_id. */
#include <string.h>
#include <strings.h>

#include "ghl_step.h"

static const struct ghl_host_api *host;

enum { PH_START = 0, PH_UPSERTED = 1 };

/* A present, non-null, non-empty value, or NULL. */
static const char *val(ghl_step_ctx *ctx, const char *src, const char *path)
{
	const char *v = host->get(ctx, src, path);
	return v && *v && strcmp(v, "null") != 0 ? v : NULL;
}

/* body + "key":json (body is an object being built, without its closing brace). */
static const char *add(ghl_step_ctx *ctx, const char *body, const char *key, const char *json)
{
	if (!json)
		return body;
	return host->format(ctx, "%s%s\"%s\":%s", body, body[1] ? "," : "", key, json);
}

static const char *qval(ghl_step_ctx *ctx, const char *src, const char *path)
{
	const char *v = val(ctx, src, path);
	return v ? host->quote(ctx, v) : NULL;
}

static const char *const tag_src[2] = {GHL_SRC_CLIENT, GHL_SRC_CONFIG};

static const char *tag_at(ghl_step_ctx *ctx, int s, size_t i)
{
	return val(ctx, tag_src[s], host->format(ctx, "tags[%zu]", i));
}

/* Does a tag before (s, i) equal t (case-insensitive)? */
static int seen_before(ghl_step_ctx *ctx, int s, size_t i, const char *t)
{
	for (int ps = 0; ps <= s; ps++) {
		size_t end = ps < s ? host->count(ctx, tag_src[ps], "tags") : i;
		for (size_t pi = 0; pi < end; pi++) {
			const char *p = tag_at(ctx, ps, pi);
			if (p && strcasecmp(p, t) == 0)
				return 1;
		}
	}
	return 0;
}

/* client.tags then config.tags as a JSON array, without repeats. */
static const char *tags_json(ghl_step_ctx *ctx, size_t *ntags)
{
	const char *arr = "[";
	size_t n = 0;
	for (int s = 0; s < 2; s++) {
		size_t c = host->count(ctx, tag_src[s], "tags");
		for (size_t i = 0; i < c; i++) {
			const char *t = tag_at(ctx, s, i);
			if (!t || seen_before(ctx, s, i, t))
				continue;
			arr = host->format(ctx, "%s%s%s", arr, n++ ? "," : "", host->quote(ctx, t));
		}
	}
	*ntags = n;
	return host->format(ctx, "%s]", arr);
}

static int upsert(ghl_step_ctx *ctx)
{
	const char *first = val(ctx, GHL_SRC_CLIENT, "first_name");
	const char *last = val(ctx, GHL_SRC_CLIENT, "last_name");
	const char *name = first && last ? host->format(ctx, "%s %s", first, last)
					 : val(ctx, GHL_SRC_CLIENT, "name");
	size_t ntags;
	const char *b = "{";
	b = add(ctx, b, "locationId", qval(ctx, GHL_SRC_OUTPUTS, "location_id"));
	b = add(ctx, b, "firstName", first ? host->quote(ctx, first) : NULL);
	b = add(ctx, b, "lastName", last ? host->quote(ctx, last) : NULL);
	b = add(ctx, b, "name", name ? host->quote(ctx, name) : NULL);
	b = add(ctx, b, "companyName", qval(ctx, GHL_SRC_CLIENT, "name"));
	b = add(ctx, b, "email", qval(ctx, GHL_SRC_CLIENT, "email"));
	b = add(ctx, b, "phone", qval(ctx, GHL_SRC_CLIENT, "phone"));
	b = add(ctx, b, "tags", tags_json(ctx, &ntags));
	host->log(ctx, GHL_LOG_INFO, "POST /contacts/upsert location=%s tags=%zu",
		  val(ctx, GHL_SRC_OUTPUTS, "location_id"), ntags);
	host->set_phase(ctx, PH_UPSERTED);
	if (host->request(ctx, "POST", "/contacts/upsert", NULL, host->format(ctx, "%s}", b),
			  GHL_TOKEN_LOCATION) < 0)
		return host->fail(ctx, 1, "could not start POST /contacts/upsert");
	return GHL_STEP_WAIT;
}

static int upserted(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	const char *trace = val(ctx, GHL_SRC_RESPONSE, "traceId");
	host->log(ctx, GHL_LOG_INFO, "POST /contacts/upsert -> %d traceId=%s", st,
		  trace ? trace : "-");
	if (st < 200 || st > 299)
		return host->fail_from_response(ctx, "upserting contact");
	const char *id = val(ctx, GHL_SRC_RESPONSE, "contact.id");
	if (!id)
		return host->fail(ctx, 1, "upserting contact: GHL answered without contact.id");
	host->set_output(ctx, "contact_id", host->quote(ctx, id));
	return GHL_STEP_DONE;
}

static int create_contact_run(ghl_step_ctx *ctx)
{
	if (host->phase(ctx) == PH_UPSERTED)
		return upserted(ctx);
	if (!val(ctx, GHL_SRC_OUTPUTS, "location_id"))
		return host->fail(ctx, 0, "no location_id: CREATE_LOCATION must run before "
					  "CREATE_CONTACT");
	if (!val(ctx, GHL_SRC_CLIENT, "email") && !val(ctx, GHL_SRC_CLIENT, "phone"))
		return host->fail(ctx, 0, "client data has neither email nor phone");
	return upsert(ctx);
}

static int create_contact_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"CREATE_CONTACT", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\","
	 "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	 "\"description\":\"tags added to the client's own tags\"}},"
	 "\"additionalProperties\":false}",
	 "creates (or updates) the client as a tagged contact in the location", create_contact_run,
	 NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "create_contact", create_contact_init, steps,
	sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
