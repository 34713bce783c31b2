/* permissions.c — SET_USER_PERMISSIONS: the feature permissions (and
 * optionally scopes and role) of the user CREATE_USER made (outputs.user_id),
 * agency token, scope users.write (GHL_API.md "Go-live endpoints"):
 * GET /users/{id} records what the user had (user_permissions_before), then
 * PUT /users/{id} {permissions, scopes, role}. A PUT sets, so a repeat is
 * harmless. Compensate puts user_permissions_before back (best effort: after
 * a crash between the PUT and the journal write, "before" is already the
 * new set). Config permissions are merged over the user's: flags not named
 * keep their value. Outputs: user_permissions (what GHL answered),
 * user_permissions_before. */
#include <string.h>

#include "golive.h"

enum { PH_START = 0, PH_READ, PH_PUT };

static const char *user_path(ghl_step_ctx *ctx)
{
	return host->format(
		ctx, "/users/%s",
		host->urlencode(ctx, gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("user_id"))));
}

/* {"permissions": before + config, "scopes": …, "role": …} */
static const char *update_json(ghl_step_ctx *ctx, const char *before_src)
{
	const char *const *cfg = GHL_PATH("permissions");
	const char *const *had = GHL_PATH("permissions");
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "permissions");
	host->json_object(j);
	size_t n = before_src ? host->get_count(ctx, before_src, had) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *key = host->get_key(ctx, before_src, had, i);
		if (!key || host->get_type(ctx, GHL_SRC_CONFIG, GHL_PATH("permissions", key)) !=
				    GHL_TYPE_ABSENT)
			continue;
		host->json_key(j, key);
		host->json_raw(j, host->get_json(ctx, before_src, GHL_PATH("permissions", key)));
	}
	n = host->get_count(ctx, GHL_SRC_CONFIG, cfg);
	for (size_t i = 0; i < n; i++) {
		const char *key = host->get_key(ctx, GHL_SRC_CONFIG, cfg, i);
		host->json_key(j, key);
		host->json_raw(j,
			       host->get_json(ctx, GHL_SRC_CONFIG, GHL_PATH("permissions", key)));
	}
	host->json_end(j);
	if (host->get_type(ctx, GHL_SRC_CONFIG, GHL_PATH("scopes")) == GHL_TYPE_ARRAY) {
		host->json_key(j, "scopes");
		host->json_raw(j, host->get_json(ctx, GHL_SRC_CONFIG, GHL_PATH("scopes")));
	}
	if (GL_CONFIG(ctx, "role")) {
		host->json_key(j, "role");
		host->json_string(j, GL_CONFIG(ctx, "role"));
	}
	host->json_end(j);
	return host->json_text(j);
}

static int put_permissions(ghl_step_ctx *ctx)
{
	const char *before = host->get_json(ctx, GHL_SRC_RESPONSE, GHL_PATH("permissions"));
	host->set_output(ctx, "user_permissions_before", before ? before : "{}");
	const char *body = update_json(ctx, GHL_SRC_RESPONSE);
	if (!body)
		return host->fail(ctx, 0, "could not build the update (see the log)");
	host->log(ctx, GHL_LOG_INFO, "PUT %s (permissions)", user_path(ctx));
	return gl_send(ctx, PH_PUT, "PUT", user_path(ctx), NULL, body, GHL_TOKEN_AGENCY);
}

int set_user_permissions_run(ghl_step_ctx *ctx)
{
	switch (host->phase(ctx)) {
	case PH_READ:
		if (!gl_ok(ctx, "GET user"))
			return host->fail_from_response(ctx, "reading the user");
		return put_permissions(ctx);
	case PH_PUT: {
		if (!gl_ok(ctx, "PUT user"))
			return host->fail_from_response(ctx, "updating the user's permissions");
		const char *now = host->get_json(ctx, GHL_SRC_RESPONSE, GHL_PATH("permissions"));
		host->set_output(ctx, "user_permissions", now ? now : "{}");
		return GHL_STEP_DONE;
	}
	default: break;
	}
	if (!gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("user_id")))
		return host->fail(ctx, 0,
				  "no user_id: CREATE_USER must run before "
				  "SET_USER_PERMISSIONS");
	return gl_send(ctx, PH_READ, "GET", user_path(ctx), NULL, NULL, GHL_TOKEN_AGENCY);
}

/* Puts user_permissions_before back. */
int set_user_permissions_compensate(ghl_step_ctx *ctx)
{
	if (host->phase(ctx) == PH_PUT) {
		int st = host->response_status(ctx);
		if (st == 200 || st == 404)
			return GHL_STEP_DONE;
		return host->fail_from_response(ctx, "restoring the user's permissions");
	}
	const char *before = host->get_json(ctx, GHL_SRC_OUTPUTS,
					    GHL_PATH("user_permissions_before"));
	if (!before || !gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("user_id")))
		return GHL_STEP_DONE;
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "permissions");
	host->json_raw(j, before);
	host->json_end(j);
	host->log(ctx, GHL_LOG_INFO, "PUT %s (rollback: the permissions it had)", user_path(ctx));
	return gl_send(ctx, PH_PUT, "PUT", user_path(ctx), NULL, host->json_text(j),
		       GHL_TOKEN_AGENCY);
}

const char set_user_permissions_schema[] =
	"{\"type\":\"object\",\"required\":[\"permissions\"],\"properties\":{"
	"\"permissions\":{\"type\":\"object\",\"description\":\"GHL feature flags to set, e.g. "
	"{\\\"campaignsEnabled\\\": false, \\\"workflowsEnabled\\\": true}; others are kept\"},"
	"\"scopes\":{\"type\":\"array\",\"maxItems\":200,\"items\":{\"type\":\"string\","
	"\"minLength\":1,\"maxLength\":100},\"description\":\"GHL scopes of the user, replaced\"},"
	"\"role\":{\"type\":\"string\",\"enum\":[\"admin\",\"user\"]}},"
	"\"additionalProperties\":false}";
