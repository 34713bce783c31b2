/* create_contact — CREATE_CONTACT: the client as a contact of their own new
 * location, tagged with client_data_json.tags + config.tags, through
 * POST /contacts/upsert (location token), which GHL matches by email then
 * phone, so a retry updates instead of duplicating.
 * Config: {"tags": [string]}. Outputs: contact_id. */
#include <string.h>
#include <strings.h>

#include "ghl_step.h"

GHL_STEP_HOST;

enum { PH_START = 0, PH_UPSERTED = 1 };

/* A non-empty string at path, or NULL. */
static const char *str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

/* "key": s, when s is there. */
static void put(ghl_json *j, const char *key, const char *s)
{
	if (s) {
		host->json_key(j, key);
		host->json_string(j, s);
	}
}

static const char *const tag_src[2] = {GHL_SRC_CLIENT, GHL_SRC_CONFIG};

static const char *tag_at(ghl_step_ctx *ctx, int s, size_t i)
{
	return str(ctx, tag_src[s], GHL_PATH("tags", host->format(ctx, "%zu", i)));
}

/* Does a tag before (s, i) equal t (case-insensitive)? */
static int seen_before(ghl_step_ctx *ctx, int s, size_t i, const char *t)
{
	for (int ps = 0; ps <= s; ps++) {
		size_t end = ps < s ? host->get_count(ctx, tag_src[ps], GHL_PATH("tags")) : i;
		for (size_t pi = 0; pi < end; pi++) {
			const char *p = tag_at(ctx, ps, pi);
			if (p && strcasecmp(p, t) == 0)
				return 1;
		}
	}
	return 0;
}

/* "tags": client.tags then config.tags, without repeats; returns how many. */
static size_t put_tags(ghl_json *j, ghl_step_ctx *ctx)
{
	size_t n = 0;
	host->json_key(j, "tags");
	host->json_array(j);
	for (int s = 0; s < 2; s++) {
		size_t c = host->get_count(ctx, tag_src[s], GHL_PATH("tags"));
		for (size_t i = 0; i < c; i++) {
			const char *t = tag_at(ctx, s, i);
			if (!t || seen_before(ctx, s, i, t))
				continue;
			host->json_string(j, t);
			n++;
		}
	}
	host->json_end(j);
	return n;
}

static int upsert(ghl_step_ctx *ctx)
{
	const char *first = str(ctx, GHL_SRC_CLIENT, GHL_PATH("first_name"));
	const char *last = str(ctx, GHL_SRC_CLIENT, GHL_PATH("last_name"));
	const char *company = str(ctx, GHL_SRC_CLIENT, GHL_PATH("name"));
	const char *loc = str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "locationId", loc);
	put(j, "firstName", first);
	put(j, "lastName", last);
	put(j, "name", first && last ? host->format(ctx, "%s %s", first, last) : company);
	put(j, "companyName", company);
	put(j, "email", str(ctx, GHL_SRC_CLIENT, GHL_PATH("email")));
	put(j, "phone", str(ctx, GHL_SRC_CLIENT, GHL_PATH("phone")));
	size_t ntags = put_tags(j, ctx);
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build the contact (see the log)");
	host->log(ctx, GHL_LOG_INFO, "POST /contacts/upsert location=%s tags=%zu", loc, ntags);
	host->set_phase(ctx, PH_UPSERTED);
	if (host->request(ctx, "POST", "/contacts/upsert", NULL, body, GHL_TOKEN_LOCATION) < 0)
		return host->fail(ctx, 1, "could not start POST /contacts/upsert");
	return GHL_STEP_WAIT;
}

static int upserted(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	const char *trace = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
	host->log(ctx, GHL_LOG_INFO, "POST /contacts/upsert -> %d traceId=%s", st,
		  trace ? trace : "-");
	if (st < 200 || st > 299)
		return host->fail_from_response(ctx, "upserting contact");
	const char *id = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("contact", "id"));
	if (!id)
		return host->fail(ctx, 1, "upserting contact: GHL answered without contact.id");
	host->set_output(ctx, "contact_id", host->quote(ctx, id));
	return GHL_STEP_DONE;
}

static int create_contact_run(ghl_step_ctx *ctx)
{
	if (host->phase(ctx) == PH_UPSERTED)
		return upserted(ctx);
	if (!str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id")))
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before "
				  "CREATE_CONTACT");
	if (!str(ctx, GHL_SRC_CLIENT, GHL_PATH("email")) &&
	    !str(ctx, GHL_SRC_CLIENT, GHL_PATH("phone")))
		return host->fail(ctx, 0, "client data has neither email nor phone");
	return upsert(ctx);
}

static const struct ghl_step_def steps[] = {
	{"CREATE_CONTACT", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\","
	 "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	 "\"description\":\"tags added to the client's own tags\"}},"
	 "\"additionalProperties\":false}",
	 "creates (or updates) the client as a tagged contact in the location", create_contact_run,
	 NULL, GHL_CLIENT_FIELDS("email")},
};

GHL_STEP_PLUGIN(create_contact, "1.0.0", NULL, steps)
