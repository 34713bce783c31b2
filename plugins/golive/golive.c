/* golive.c — the go-live steps plugin (issue 13): the steps that take a new
 * location from created to ready (GHL_API.md "Go-live endpoints"), each in
 * its own file, and the helpers they share. One plugin, golive.so, so the
 * helpers are written once; each step is registered by its own name. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "golive.h"

const struct ghl_host_api *host;

const char *gl_str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

int gl_flag(ghl_step_ctx *ctx, const char *key, int def)
{
	int v;
	return host->get_bool(ctx, GHL_SRC_CONFIG, GHL_PATH(key), &v) == 0 ? v : def;
}

const char *gl_ix(ghl_step_ctx *ctx, size_t i)
{
	return host->format(ctx, "%zu", i);
}

int gl_send(ghl_step_ctx *ctx, int phase, const char *method, const char *path, const char *query,
	    const char *body, int token_class)
{
	host->set_phase(ctx, phase);
	if (host->request(ctx, method, path, query, body, token_class) < 0)
		return host->fail(ctx, 1, "could not start %s %s", method, path);
	return GHL_STEP_WAIT;
}

int gl_ok(ghl_step_ctx *ctx, const char *what)
{
	const char *trace = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
	int st = host->response_status(ctx);
	host->log(ctx, GHL_LOG_INFO, "%s -> %d traceId=%s", what, st, trace ? trace : "-");
	return st >= 200 && st <= 299;
}

const char *gl_message_has(ghl_step_ctx *ctx, int status, const char *needle)
{
	const char *msg = host->response_message(ctx);
	if (host->response_status(ctx) != status || !msg || !strcasestr(msg, needle))
		return NULL;
	return msg;
}

const char *gl_company_query(ghl_step_ctx *ctx)
{
	return host->format(ctx, "companyId=%s", host->urlencode(ctx, GL_COMPANY_ID(ctx)));
}

char *gl_dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static const struct ghl_step_def steps[] = {
	{"BUY_PHONE_NUMBER", "1.0.0", buy_phone_number_schema,
	 "buys a phone number for the location (reuses one it has; fingerprintId per job)",
	 buy_phone_number_run, NULL, NULL},
	{"CREATE_CUSTOM_FIELDS", "1.0.0", create_custom_fields_schema,
	 "creates the config's custom fields in the location (reuses ones with the same name)",
	 create_custom_fields_run, create_custom_fields_compensate, NULL},
	{"CREATE_CALENDARS", "1.0.0", create_calendars_schema,
	 "creates the config's calendars in the location (reuses ones with the same name)",
	 create_calendars_run, create_calendars_compensate, NULL},
	{"ENABLE_SAAS", "1.0.0", enable_saas_schema,
	 "puts the location in SaaS mode on a plan (left alone when already on it)",
	 enable_saas_run, NULL, GHL_CLIENT_FIELDS("name", "email")},
	{"SET_REBILLING", "1.0.0", set_rebilling_schema,
	 "sets the location's rebilling (markup) for the configured products", set_rebilling_run,
	 NULL, NULL},
	{"SET_USER_PERMISSIONS", "1.0.0", set_user_permissions_schema,
	 "sets the permissions of the user CREATE_USER made (undo: puts the old ones back)",
	 set_user_permissions_run, set_user_permissions_compensate, NULL},
	{"ADD_MENU_LINKS", "1.0.0", add_menu_links_schema,
	 "adds custom menu links to the location (reuses ones with the same title)",
	 add_menu_links_run, add_menu_links_compensate, NULL},
	{"LOAD_SNAPSHOT", "1.0.0", load_snapshot_schema,
	 "loads a snapshot into an existing location (refuses a second load unless override)",
	 load_snapshot_run, NULL, NULL},
};

GHL_STEP_PLUGIN(golive, "1.0.0", NULL, steps)
