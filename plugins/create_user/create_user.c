/* create_user — CREATE_USER: the client's admin user in the new location.
 * Exactly-once by email: it first searches the company's users
 * (GET /users/search?query=<email>) and reuses one with exactly that email;
 * a 400 "already ..." reply to POST /users/ (a race, or a search GHL had not
 * indexed yet) searches again and reuses. The password is random and never
 * logged: the client sets their own through GHL's reset flow.
 * Both calls carry the location's token (GHL accepts one on GET /users/search
 * and POST /users/), so they count in the location's rate-limit bucket, not
 * the agency's; the host mints that token once per location.
 * Config: {"role": "admin"|"user"}. Outputs: user_id, user_reused. */
#include <string.h>
#include <strings.h>

#include "ghl_step.h"

GHL_STEP_HOST;

enum { PH_START = 0, PH_SEARCHED = 1, PH_CREATED = 2, PH_RESEARCHED = 3 };

/* A non-empty string at path, or NULL. */
static const char *str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

#define CLIENT(key) str(ctx, GHL_SRC_CLIENT, GHL_PATH(key))
#define LOCATION_ID() str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"))
#define COMPANY_ID() str(ctx, GHL_SRC_JOB, GHL_PATH("company_id"))

static int send(ghl_step_ctx *ctx, int phase, const char *method, const char *path,
		const char *query, const char *body)
{
	host->set_phase(ctx, phase);
	if (host->request(ctx, method, path, query, body, GHL_TOKEN_LOCATION) < 0)
		return host->fail(ctx, 1, "could not start %s %s", method, path);
	return GHL_STEP_WAIT;
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

static int search(ghl_step_ctx *ctx, int phase)
{
	const char *q = host->format(ctx, "companyId=%s&query=%s",
				     host->urlencode(ctx, COMPANY_ID()),
				     host->urlencode(ctx, CLIENT("email")));
	host->log(ctx, GHL_LOG_INFO, "GET /users/search (looking for the client's user)");
	return send(ctx, phase, "GET", "/users/search", q, NULL);
}

static const char *role(ghl_step_ctx *ctx)
{
	const char *r = str(ctx, GHL_SRC_CONFIG, GHL_PATH("role"));
	return r ? r : "admin";
}

/* "key": s (null when s is NULL). */
static void put(ghl_json *j, const char *key, const char *s)
{
	host->json_key(j, key);
	host->json_string(j, s);
}

static int create(ghl_step_ctx *ctx)
{
	const char *loc = LOCATION_ID();
	const char *phone = CLIENT("phone");
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "companyId", COMPANY_ID());
	put(j, "firstName", CLIENT("first_name"));
	put(j, "lastName", CLIENT("last_name"));
	put(j, "email", CLIENT("email"));
	put(j, "password", host->random_token(ctx, 24));
	put(j, "type", "account");
	put(j, "role", role(ctx));
	host->json_key(j, "locationIds");
	host->json_array(j);
	host->json_string(j, loc);
	host->json_end(j);
	if (phone)
		put(j, "phone", phone);
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build the user (see the log)");
	host->log(ctx, GHL_LOG_INFO, "POST /users/ role=%s location=%s", role(ctx), loc);
	return send(ctx, PH_CREATED, "POST", "/users/", NULL, body);
}

/* The id of the searched user with exactly the client's email, or NULL. */
static const char *find(ghl_step_ctx *ctx)
{
	const char *email = CLIENT("email");
	const char *loc = LOCATION_ID();
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("users"));
	for (size_t i = 0; i < n; i++) {
		const char *ix = host->format(ctx, "%zu", i);
		const char *e = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("users", ix, "email"));
		if (!e || strcasecmp(e, email) != 0)
			continue;
		const char *id = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("users", ix, "id"));
		if (!id)
			continue;
		const char *const *ids = GHL_PATH("users", ix, "roles", "locationIds");
		size_t nl = host->get_count(ctx, GHL_SRC_RESPONSE, ids);
		int in_loc = 0;
		for (size_t j = 0; j < nl && !in_loc; j++) {
			const char *l = str(ctx, GHL_SRC_RESPONSE,
					    GHL_PATH("users", ix, "roles", "locationIds",
						     host->format(ctx, "%zu", j)));
			in_loc = l && strcmp(l, loc) == 0;
		}
		if (!in_loc)
			host->log(ctx, GHL_LOG_WARN,
				  "user %s already exists in the company but not in location %s; "
				  "reused as is",
				  id, loc);
		return id;
	}
	return NULL;
}

static int done(ghl_step_ctx *ctx, const char *id, int reused)
{
	if (reused)
		host->log(ctx, GHL_LOG_INFO, "reusing user %s", id);
	host->set_output(ctx, "user_id", host->quote(ctx, id));
	host->set_output(ctx, "user_reused", reused ? "true" : "false");
	return GHL_STEP_DONE;
}

static int searched(ghl_step_ctx *ctx, int again)
{
	log_reply(ctx, "GET /users/search");
	if (!ok(ctx))
		return host->fail_from_response(ctx, "searching users");
	const char *id = find(ctx);
	if (id)
		return done(ctx, id, 1);
	if (again)
		return host->fail(ctx, 1,
				  "GHL says the email is in use but no user with it was found");
	return create(ctx);
}

static int created(ghl_step_ctx *ctx)
{
	log_reply(ctx, "POST /users/");
	if (host->response_status(ctx) == 400) {
		const char *msg = host->response_message(ctx);
		if (msg && strcasestr(msg, "already")) {
			host->log(ctx, GHL_LOG_INFO, "GHL: %s; searching again", msg);
			return search(ctx, PH_RESEARCHED);
		}
	}
	if (!ok(ctx))
		return host->fail_from_response(ctx, "creating user");
	const char *id = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("id"));
	if (!id)
		return host->fail(ctx, 1, "creating user: GHL answered without an id");
	return done(ctx, id, 0);
}

static int create_user_run(ghl_step_ctx *ctx)
{
	switch (host->phase(ctx)) {
	case PH_SEARCHED: return searched(ctx, 0);
	case PH_CREATED: return created(ctx);
	case PH_RESEARCHED: return searched(ctx, 1);
	default: break;
	}
	if (!LOCATION_ID())
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before CREATE_USER");
	if (!CLIENT("email"))
		return host->fail(ctx, 0, "client data has no email");
	if (!CLIENT("first_name") || !CLIENT("last_name"))
		return host->fail(ctx, 0,
				  "client data needs first_name and last_name for the "
				  "client's user");
	const char *r = role(ctx);
	if (strcmp(r, "admin") != 0 && strcmp(r, "user") != 0)
		return host->fail(ctx, 0, "config role \"%s\" is not admin or user", r);
	if (!COMPANY_ID())
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	return search(ctx, PH_SEARCHED);
}

static const struct ghl_step_def steps[] = {
	{"CREATE_USER", "1.1.0",
	 "{\"type\":\"object\",\"properties\":{\"role\":{\"type\":\"string\","
	 "\"enum\":[\"admin\",\"user\"],\"default\":\"admin\","
	 "\"description\":\"the user's role in the location\"}},\"additionalProperties\":false}",
	 "creates the client's user in the location (reuses one with the same email)",
	 create_user_run, NULL, GHL_CLIENT_FIELDS("email", "first_name", "last_name")},
};

GHL_STEP_PLUGIN(create_user, "1.0.0", NULL, steps)
