/* create_location — CREATE_LOCATION: the client's sub-account, loaded with the
 * job's snapshot. Exactly-once: on a retry — any attempt of the job after its
 * first, the only ones an interrupted POST /locations/ can precede — it
 * searches for a location an earlier attempt may have created and reuses it
 * (the first attempt creates at once: one agency-bucket call, not two):
 *   - with prospectInfo (first_name, last_name, email all present): search by
 *     the client's email, reuse a location with the same name;
 *   - then, and without prospectInfo: whether GHL copies prospectInfo.email
 *     onto the location is not documented, so it scans the company's
 *     locations newest first and reuses one with the same name, no email (or
 *     the client's) and every other field it would send equal.
 * With "find_existing": "always" it searches on every attempt, so that a new
 * job for a client already onboarded reuses the client's location too.
 * Outputs: location_id (also stored on the job), location_reused.
 * Config: {"settings": object passed through as GHL's location settings,
 *          "find_existing": "on_retry" (default) | "always",
 *          "rollback": "delete" (default) | "pause"}.
 * Compensate (pipelines with "on_failure": "rollback"): deletes the location
 * it created (DELETE needs GHL's internal-only scope, so against real GHL
 * "rollback": "pause" takes it out of service instead: POST /saas/pause/{id}
 * {paused: true, companyId}); the journal says which. A location it found
 * (location_reused) is left alone, since it cannot prove that no one else
 * uses it. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "ghl_step.h"

GHL_STEP_HOST;

#define PAGE 100
#define MAX_PAGES 20

/* Phases: what the step waits for. */
enum { PH_START = 0, PH_SEARCHED = 1, PH_CREATED = 2 };
/* Phases of compensate. */
enum { PH_UNDO_START = 0, PH_DELETED = 1, PH_PAUSED = 2 };

/* Per-run state: the search page asked for, and whether it is the scan by
 * name (else the search by email). */
struct run {
	int page;
	int by_name;
};

/* client_data_json key -> GHL location field (name and email apart). */
static const char *const fields[][2] = {
	{"phone", "phone"},	{"address", "address"},	  {"city", "city"},
	{"state", "state"},	{"country", "country"},	  {"postal_code", "postalCode"},
	{"website", "website"}, {"timezone", "timezone"},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* A non-empty string at path, or NULL. */
static const char *str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

#define CLIENT(key) str(ctx, GHL_SRC_CLIENT, GHL_PATH(key))
#define COMPANY_ID() str(ctx, GHL_SRC_JOB, GHL_PATH("company_id"))

/* "key": s, when s is there. */
static void put(ghl_json *j, const char *key, const char *s)
{
	if (s) {
		host->json_key(j, key);
		host->json_string(j, s);
	}
}

static int has_prospect(ghl_step_ctx *ctx)
{
	return CLIENT("first_name") && CLIENT("last_name") && CLIENT("email");
}

static int send(ghl_step_ctx *ctx, int phase, const char *method, const char *path,
		const char *query, const char *body)
{
	host->set_phase(ctx, phase);
	if (host->request(ctx, method, path, query, body, GHL_TOKEN_AGENCY) < 0)
		return host->fail(ctx, 1, "could not start %s %s", method, path);
	return GHL_STEP_WAIT;
}

static int search(ghl_step_ctx *ctx, struct run *r)
{
	const char *company = host->urlencode(ctx, COMPANY_ID());
	const char *q;
	if (!r->by_name)
		q = host->format(ctx, "companyId=%s&email=%s&skip=%d&limit=%d", company,
				 host->urlencode(ctx, CLIENT("email")), r->page * PAGE, PAGE);
	else
		q = host->format(ctx, "companyId=%s&order=desc&skip=%d&limit=%d", company,
				 r->page * PAGE, PAGE);
	host->log(ctx, GHL_LOG_INFO,
		  "GET /locations/search %s page %d (looking for an earlier "
		  "attempt)",
		  r->by_name ? "newest first" : "by email", r->page);
	return send(ctx, PH_SEARCHED, "GET", "/locations/search", q, NULL);
}

static int same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Does response locations[ix] look like what create() would have made? */
static int matches(ghl_step_ctx *ctx, const char *ix, int by_name)
{
	if (!same(str(ctx, GHL_SRC_RESPONSE, GHL_PATH("locations", ix, "name")), CLIENT("name")))
		return 0;
	if (!by_name) /* the search already matched the email */
		return 1;
	const char *email = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("locations", ix, "email"));
	if (email && !(has_prospect(ctx) && strcasecmp(email, CLIENT("email")) == 0))
		return 0;
	for (size_t f = 0; f < N_FIELDS; f++)
		if (!same(str(ctx, GHL_SRC_RESPONSE, GHL_PATH("locations", ix, fields[f][1])),
			  CLIENT(fields[f][0])))
			return 0;
	return 1;
}

static const char *snapshot_id(ghl_step_ctx *ctx)
{
	const char *id = str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("ghl_snapshot_id"));
	return id ? id : str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "ghl_snapshot_id"));
}

/* The body of POST /locations/. */
static const char *location_json(ghl_step_ctx *ctx, const char *snap)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "name", CLIENT("name"));
	put(j, "companyId", COMPANY_ID());
	for (size_t f = 0; f < N_FIELDS; f++)
		put(j, fields[f][1], CLIENT(fields[f][0]));
	if (has_prospect(ctx)) {
		host->json_key(j, "prospectInfo");
		host->json_object(j);
		put(j, "firstName", CLIENT("first_name"));
		put(j, "lastName", CLIENT("last_name"));
		put(j, "email", CLIENT("email"));
		host->json_end(j);
	}
	if (host->get_type(ctx, GHL_SRC_CONFIG, GHL_PATH("settings")) == GHL_TYPE_OBJECT) {
		host->json_key(j, "settings");
		host->json_raw(j, host->get_json(ctx, GHL_SRC_CONFIG, GHL_PATH("settings")));
	}
	put(j, "snapshotId", snap);
	host->json_end(j);
	return host->json_text(j);
}

static int create(ghl_step_ctx *ctx)
{
	const char *snap = snapshot_id(ctx);
	const char *body = location_json(ctx, snap);
	if (!body)
		return host->fail(ctx, 0, "could not build the location (see the log)");
	host->log(ctx, GHL_LOG_INFO, "POST /locations/ name=%s snapshot=%s", CLIENT("name"),
		  snap ? snap : "none");
	return send(ctx, PH_CREATED, "POST", "/locations/", NULL, body);
}

static void log_reply(ghl_step_ctx *ctx, const char *what)
{
	const char *trace = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
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

static int searched(ghl_step_ctx *ctx, struct run *r)
{
	log_reply(ctx, "GET /locations/search");
	if (!ok(ctx))
		return host->fail_from_response(ctx, "searching locations");
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("locations"));
	for (size_t i = 0; i < n; i++) {
		const char *ix = host->format(ctx, "%zu", i);
		if (!matches(ctx, ix, r->by_name))
			continue;
		const char *id = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("locations", ix, "id"));
		if (!id)
			continue;
		host->log(ctx, GHL_LOG_INFO, "reusing location %s from an earlier attempt", id);
		return done(ctx, id, 1);
	}
	if (n >= PAGE && r->page + 1 < MAX_PAGES) {
		r->page++;
		return search(ctx, r);
	}
	if (n >= PAGE)
		host->log(ctx, GHL_LOG_WARN, "stopped searching after %d pages", MAX_PAGES);
	if (!r->by_name) { /* not found by email: GHL may not have copied it */
		r->by_name = 1;
		r->page = 0;
		return search(ctx, r);
	}
	return create(ctx);
}

static int created(ghl_step_ctx *ctx)
{
	log_reply(ctx, "POST /locations/");
	if (!ok(ctx))
		return host->fail_from_response(ctx, "creating location");
	const char *id = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("id"));
	if (!id)
		return host->fail(ctx, 1, "creating location: GHL answered without an id");
	return done(ctx, id, 0);
}

/* Create without searching: find_existing is "on_retry" and no earlier
 * attempt of this job ran (a claim that crashed, timed out or failed counts),
 * so nothing can have been created before. */
static int create_at_once(ghl_step_ctx *ctx)
{
	const char *mode = str(ctx, GHL_SRC_CONFIG, GHL_PATH("find_existing"));
	if (mode && strcmp(mode, "always") == 0)
		return 0;
	int64_t attempt = 0, retries = 0;
	if (host->get_int(ctx, GHL_SRC_JOB, GHL_PATH("attempt"), &attempt) ||
	    host->get_int(ctx, GHL_SRC_JOB, GHL_PATH("retry_count"), &retries))
		return 0; /* not known: search to be safe */
	return attempt <= 1 && retries == 0;
}

static int create_location_run(ghl_step_ctx *ctx)
{
	struct run *r = host->state_alloc(ctx, sizeof(*r));
	switch (host->phase(ctx)) {
	case PH_SEARCHED: return searched(ctx, r);
	case PH_CREATED: return created(ctx);
	default: break;
	}
	if (!CLIENT("name") || !CLIENT("email"))
		return host->fail(ctx, 0, "client data needs name and email");
	if (!COMPANY_ID())
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	if (create_at_once(ctx))
		return create(ctx);
	r->by_name = !has_prospect(ctx);
	return search(ctx, r);
}

/* rollback = pause: POST /saas/pause/{id} (the public way out of service). */
static int pause(ghl_step_ctx *ctx, const char *id)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "paused");
	host->json_bool(j, 1);
	put(j, "companyId", COMPANY_ID());
	host->json_end(j);
	host->log(ctx, GHL_LOG_INFO, "POST /saas/pause/%s (rollback: pause, as configured)", id);
	const char *path = host->format(ctx, "/saas/pause/%s", host->urlencode(ctx, id));
	return send(ctx, PH_PAUSED, "POST", path, NULL, host->json_text(j));
}

static int create_location_compensate(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	if (host->phase(ctx) == PH_PAUSED) {
		if (st == 200 || st == 201 || st == 404)
			return GHL_STEP_DONE;
		return host->fail_from_response(ctx, "pausing the location");
	}
	if (host->phase(ctx) == PH_DELETED) {
		if (st == 200 || st == 404) /* gone either way */
			return GHL_STEP_DONE;
		return host->fail_from_response(ctx, "deleting the location");
	}
	const char *id = str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
	if (!id)
		return GHL_STEP_DONE;
	int reused = 0;
	if (!host->get_bool(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_reused"), &reused) && reused) {
		host->log(ctx, GHL_LOG_WARN,
			  "kept location %s: it was found, not created, by this job", id);
		return GHL_STEP_DONE;
	}
	const char *mode = str(ctx, GHL_SRC_CONFIG, GHL_PATH("rollback"));
	if (mode && strcmp(mode, "pause") == 0)
		return pause(ctx, id);
	host->log(ctx, GHL_LOG_INFO, "DELETE /locations/%s (rollback: delete, as configured)", id);
	return send(ctx, PH_DELETED, "DELETE",
		    host->format(ctx, "/locations/%s", host->urlencode(ctx, id)),
		    "deleteTwilioAccount=false", NULL);
}

static const struct ghl_step_def steps[] = {
	{"CREATE_LOCATION", "1.1.0",
	 "{\"type\":\"object\",\"properties\":{\"settings\":{\"type\":\"object\","
	 "\"description\":\"GHL location settings passed through, e.g. "
	 "{\\\"allowDuplicateContact\\\":false}\"},\"find_existing\":{\"type\":\"string\","
	 "\"enum\":[\"on_retry\",\"always\"],\"default\":\"on_retry\",\"description\":"
	 "\"look for the client's location before creating it on a retry only (an interrupted "
	 "attempt may have made it), or on every job (a client onboarded before)\"},"
	 "\"rollback\":{\"type\":\"string\","
	 "\"enum\":[\"delete\",\"pause\"],\"default\":\"delete\",\"description\":\"undo by "
	 "DELETE (needs GHL's internal-only scope) or by POST /saas/pause\"}},"
	 "\"additionalProperties\":false}",
	 "creates the client's location (sub-account) with the snapshot; reuses an earlier attempt's",
	 create_location_run, create_location_compensate, GHL_CLIENT_FIELDS("name", "email")},
};

GHL_STEP_PLUGIN(create_location, "1.0.0", NULL, steps)
