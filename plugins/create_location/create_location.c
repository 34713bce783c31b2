/* create_location — CREATE_LOCATION: the client's sub-account, loaded with the
 * job's snapshot. Exactly-once: before POST /locations/ it searches for a
 * location an interrupted earlier attempt may have created and reuses it.
 *   - with prospectInfo (first_name, last_name, email all present): search by
 *     the client's email, reuse a location with the same name;
 *   - without: GHL stores no email on the location, so it scans the company's
 *     locations newest first and reuses one with the same name, no email and
 *     every other field it would send equal.
 * Outputs: location_id (also stored on the job), location_reused.
 * Config: {"settings": object passed through as GHL's location settings}.
 * Compensate (pipelines with "on_failure": "rollback"): deletes the location
 * it created; a location it found (location_reused) is left alone, since it
 * cannot prove that no one else uses it. */
#include <string.h>

#include "ghl_step.h"

static const struct ghl_host_api *host;

#define PAGE 100
#define MAX_PAGES 20

enum { PH_START = 0, PH_CREATED = 1, PH_SEARCH = 16 /* + page */ };

/* client_data_json key -> GHL location field (name and email apart). */
static const char *const fields[][2] = {
	{"phone", "phone"},     {"address", "address"},         {"city", "city"},
	{"state", "state"},     {"country", "country"},         {"postal_code", "postalCode"},
	{"website", "website"}, {"timezone", "timezone"},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

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

static int has_prospect(ghl_step_ctx *ctx)
{
	return val(ctx, GHL_SRC_CLIENT, "first_name") && val(ctx, GHL_SRC_CLIENT, "last_name") &&
	       val(ctx, GHL_SRC_CLIENT, "email");
}

static int send(ghl_step_ctx *ctx, int phase, const char *method, const char *path,
		const char *query, const char *body)
{
	host->set_phase(ctx, phase);
	if (host->request(ctx, method, path, query, body, GHL_TOKEN_AGENCY) < 0)
		return host->fail(ctx, 1, "could not start %s %s", method, path);
	return GHL_STEP_WAIT;
}

static int search(ghl_step_ctx *ctx, int page)
{
	const char *company = host->urlencode(ctx, val(ctx, GHL_SRC_JOB, "company_id"));
	const char *q;
	if (has_prospect(ctx))
		q = host->format(ctx, "companyId=%s&email=%s&skip=%d&limit=%d", company,
				 host->urlencode(ctx, val(ctx, GHL_SRC_CLIENT, "email")), page * PAGE,
				 PAGE);
	else
		q = host->format(ctx, "companyId=%s&order=desc&skip=%d&limit=%d", company,
				 page * PAGE, PAGE);
	host->log(ctx, GHL_LOG_INFO, "GET /locations/search page %d (looking for an earlier attempt)",
		  page);
	return send(ctx, PH_SEARCH + page, "GET", "/locations/search", q, NULL);
}

static int same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Does response locations[i] look like what create() would have made? */
static int matches(ghl_step_ctx *ctx, size_t i, int prospect)
{
	const char *pre = host->format(ctx, "locations[%zu].", i);
	if (!same(val(ctx, GHL_SRC_RESPONSE, host->format(ctx, "%sname", pre)),
		  val(ctx, GHL_SRC_CLIENT, "name")))
		return 0;
	if (prospect) /* the search already matched the email */
		return 1;
	if (val(ctx, GHL_SRC_RESPONSE, host->format(ctx, "%semail", pre)))
		return 0;
	for (size_t f = 0; f < N_FIELDS; f++)
		if (!same(val(ctx, GHL_SRC_RESPONSE, host->format(ctx, "%s%s", pre, fields[f][1])),
			  val(ctx, GHL_SRC_CLIENT, fields[f][0])))
			return 0;
	return 1;
}

static const char *snapshot_id(ghl_step_ctx *ctx)
{
	const char *id = val(ctx, GHL_SRC_OUTPUTS, "ghl_snapshot_id");
	return id ? id : val(ctx, GHL_SRC_JOB, "snapshot.ghl_snapshot_id");
}

static int create(ghl_step_ctx *ctx)
{
	const char *b = "{";
	b = add(ctx, b, "name", host->quote(ctx, val(ctx, GHL_SRC_CLIENT, "name")));
	b = add(ctx, b, "companyId", host->quote(ctx, val(ctx, GHL_SRC_JOB, "company_id")));
	for (size_t f = 0; f < N_FIELDS; f++) {
		const char *v = val(ctx, GHL_SRC_CLIENT, fields[f][0]);
		b = add(ctx, b, fields[f][1], v ? host->quote(ctx, v) : NULL);
	}
	if (has_prospect(ctx))
		b = add(ctx, b, "prospectInfo",
			host->format(ctx, "{\"firstName\":%s,\"lastName\":%s,\"email\":%s}",
				     host->quote(ctx, val(ctx, GHL_SRC_CLIENT, "first_name")),
				     host->quote(ctx, val(ctx, GHL_SRC_CLIENT, "last_name")),
				     host->quote(ctx, val(ctx, GHL_SRC_CLIENT, "email"))));
	b = add(ctx, b, "settings", val(ctx, GHL_SRC_CONFIG, "settings"));
	const char *snap = snapshot_id(ctx);
	b = add(ctx, b, "snapshotId", snap ? host->quote(ctx, snap) : NULL);
	host->log(ctx, GHL_LOG_INFO, "POST /locations/ name=%s snapshot=%s",
		  val(ctx, GHL_SRC_CLIENT, "name"), snap ? snap : "none");
	return send(ctx, PH_CREATED, "POST", "/locations/", NULL, host->format(ctx, "%s}", b));
}

static void log_reply(ghl_step_ctx *ctx, const char *what)
{
	const char *trace = val(ctx, GHL_SRC_RESPONSE, "traceId");
	host->log(ctx, GHL_LOG_INFO, "%s -> %d traceId=%s", what, host->response_status(ctx),
		  trace ? trace : "-");
}

static int ok(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	return st >= 200 && st <= 299;
}

static int done(ghl_step_ctx *ctx, const char *id, int reused)
{
	host->set_output(ctx, "location_id", host->quote(ctx, id));
	host->set_output(ctx, "location_reused", reused ? "true" : "false");
	return GHL_STEP_DONE;
}

static int searched(ghl_step_ctx *ctx, int page)
{
	log_reply(ctx, "GET /locations/search");
	if (!ok(ctx))
		return host->fail_from_response(ctx, "searching locations");
	int prospect = has_prospect(ctx);
	size_t n = host->count(ctx, GHL_SRC_RESPONSE, "locations");
	for (size_t i = 0; i < n; i++) {
		if (!matches(ctx, i, prospect))
			continue;
		const char *id = val(ctx, GHL_SRC_RESPONSE, host->format(ctx, "locations[%zu].id", i));
		if (!id)
			continue;
		host->log(ctx, GHL_LOG_INFO, "reusing location %s from an earlier attempt", id);
		return done(ctx, id, 1);
	}
	if (n >= PAGE && page + 1 < MAX_PAGES)
		return search(ctx, page + 1);
	if (n >= PAGE)
		host->log(ctx, GHL_LOG_WARN, "stopped searching after %d pages", MAX_PAGES);
	return create(ctx);
}

static int created(ghl_step_ctx *ctx)
{
	log_reply(ctx, "POST /locations/");
	if (!ok(ctx))
		return host->fail_from_response(ctx, "creating location");
	const char *id = val(ctx, GHL_SRC_RESPONSE, "id");
	if (!id)
		return host->fail(ctx, 1, "creating location: GHL answered without an id");
	return done(ctx, id, 0);
}

static int create_location_run(ghl_step_ctx *ctx)
{
	int ph = host->phase(ctx);
	if (ph == PH_CREATED)
		return created(ctx);
	if (ph >= PH_SEARCH)
		return searched(ctx, ph - PH_SEARCH);
	if (!val(ctx, GHL_SRC_CLIENT, "name") || !val(ctx, GHL_SRC_CLIENT, "email"))
		return host->fail(ctx, 0, "client data needs name and email");
	if (!val(ctx, GHL_SRC_JOB, "company_id"))
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	return search(ctx, 0);
}

static int create_location_compensate(ghl_step_ctx *ctx)
{
	const char *id = host->get(ctx, GHL_SRC_OUTPUTS, "location_id");
	if (host->phase(ctx) == 1) {
		int st = host->response_status(ctx);
		if (st == 200 || st == 404) /* gone either way */
			return GHL_STEP_DONE;
		return host->fail_from_response(ctx, "deleting the location");
	}
	if (!id)
		return GHL_STEP_DONE;
	const char *reused = host->get(ctx, GHL_SRC_OUTPUTS, "location_reused");
	if (reused && !strcmp(reused, "true")) {
		host->log(ctx, GHL_LOG_WARN, "kept location %s: it was found, not created, by this job",
			  id);
		return GHL_STEP_DONE;
	}
	host->log(ctx, GHL_LOG_INFO, "DELETE /locations/%s (rollback)", id);
	host->set_phase(ctx, 1);
	host->request(ctx, "DELETE", host->format(ctx, "/locations/%s", host->urlencode(ctx, id)),
		      "deleteTwilioAccount=false", NULL, GHL_TOKEN_AGENCY);
	return GHL_STEP_WAIT;
}

static int create_location_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"CREATE_LOCATION", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"settings\":{\"type\":\"object\","
	 "\"description\":\"GHL location settings passed through, e.g. "
	 "{\\\"allowDuplicateContact\\\":false}\"}},\"additionalProperties\":false}",
	 "creates the client's location (sub-account) with the snapshot; reuses an earlier attempt's",
	 create_location_run, create_location_compensate},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "create_location", create_location_init, steps,
	sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
