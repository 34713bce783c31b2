/* golive.h — private to the go-live steps plugin (golive.so): the helpers
 * its step files share and each step's entry points. The plugin sees only
 * ghl_step.h of the agent, like any other. */
#ifndef GOLIVE_H
#define GOLIVE_H

#include <stddef.h>

#include "ghl_step.h"

/* The host table, set by the plugin's init (golive.c). */
extern const struct ghl_host_api *host;

/* A non-empty string at path, or NULL. */
const char *gl_str(ghl_step_ctx *ctx, const char *src, const char *const *path);
/* A boolean of the step's config at key, or def. */
int gl_flag(ghl_step_ctx *ctx, const char *key, int def);
/* i as an array index key. */
const char *gl_ix(ghl_step_ctx *ctx, size_t i);
/* Sets phase and starts a GHL request: GHL_STEP_WAIT, or a retryable failure. */
int gl_send(ghl_step_ctx *ctx, int phase, const char *method, const char *path, const char *query,
	    const char *body, int token_class);
/* Logs "<what> -> <status> traceId=…" in the journal; 1 for a 2xx answer. */
int gl_ok(ghl_step_ctx *ctx, const char *what);
/* The message of a 4xx answer that contains needle (any case), or NULL. */
const char *gl_message_has(ghl_step_ctx *ctx, int status, const char *needle);
/* "companyId=<the job's company>", the query of agency-scoped reads. */
const char *gl_company_query(ghl_step_ctx *ctx);
/* malloc'd copy (NULL when out of memory). */
char *gl_dup(const char *s);

#define GL_LOCATION_ID(ctx) gl_str((ctx), GHL_SRC_OUTPUTS, GHL_PATH("location_id"))
#define GL_COMPANY_ID(ctx) gl_str((ctx), GHL_SRC_JOB, GHL_PATH("company_id"))
#define GL_CONFIG(ctx, key) gl_str((ctx), GHL_SRC_CONFIG, GHL_PATH(key))

/* ensure.c: "these named things exist in the location" (CREATE_CUSTOM_FIELDS,
 * CREATE_CALENDARS). */
struct gl_kind {
	const char *step;	 /* "CREATE_CALENDARS", for messages */
	const char *what;	 /* "calendar" */
	const char *config_key;	 /* the config's array of items, each named by name_key */
	const char *name_key;	 /* the name's key, in config items and listings (NULL: "name") */
	const char *ids_out;	 /* the output name → id */
	const char *created_out; /* the output [names this run created] */
	int token;		 /* GHL_TOKEN_LOCATION or GHL_TOKEN_AGENCY */
	const char *(*list_path)(ghl_step_ctx *ctx);
	const char *(*list_query)(ghl_step_ctx *ctx); /* NULL: none */
	const char *list_key;			      /* the listing's array */
	const char *(*create_path)(ghl_step_ctx *ctx);
	const char *created_key; /* the create answer's object holding "id" */
	/* The POST body of config item i (JSON builder text), NULL on error. */
	const char *(*body)(ghl_step_ctx *ctx, size_t i);
	const char *(*delete_path)(ghl_step_ctx *ctx, const char *id);
	/* More checks before any call: GHL_STEP_DONE to go on, else a failure. */
	int (*check)(ghl_step_ctx *ctx);
};

/* Config item i's string member key (NULL when absent or empty). */
const char *gl_item(ghl_step_ctx *ctx, const struct gl_kind *k, size_t i, const char *key);
int gl_ensure_run(ghl_step_ctx *ctx, const struct gl_kind *k);
int gl_ensure_compensate(ghl_step_ctx *ctx, const struct gl_kind *k);

/* The steps: run, compensate (NULL: none) and config schema of each. */
int buy_phone_number_run(ghl_step_ctx *ctx);
extern const char buy_phone_number_schema[];

int create_custom_fields_run(ghl_step_ctx *ctx);
int create_custom_fields_compensate(ghl_step_ctx *ctx);
extern const char create_custom_fields_schema[];

int create_calendars_run(ghl_step_ctx *ctx);
int create_calendars_compensate(ghl_step_ctx *ctx);
extern const char create_calendars_schema[];

int enable_saas_run(ghl_step_ctx *ctx);
extern const char enable_saas_schema[];
int set_rebilling_run(ghl_step_ctx *ctx);
extern const char set_rebilling_schema[];

int add_menu_links_run(ghl_step_ctx *ctx);
int add_menu_links_compensate(ghl_step_ctx *ctx);
extern const char add_menu_links_schema[];

int set_user_permissions_run(ghl_step_ctx *ctx);
int set_user_permissions_compensate(ghl_step_ctx *ctx);
extern const char set_user_permissions_schema[];

int load_snapshot_run(ghl_step_ctx *ctx);
extern const char load_snapshot_schema[];

#endif
