/* ghl_side.c — the GHL side's start-up: vault and client. */
#include "ghl_side.h"

#include <stdlib.h>
#include <string.h>

#include "agency_tokens.h"
#include "app.h"
#include "config.h"
#include "get_cache.h"
#include "ghl_client.h"
#include "loc_tokens.h"
#include "log.h"
#include "oauth_routes.h"
#include "push_poller.h"
#include "vault.h"

/* Demo mode only (demo = on): a published development key, so that the demo
 * runs with no set-up. Never valid outside demo mode. */
#define DEMO_TOKEN_KEY "1:ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q="

struct vault *ghl_load_vault(const struct config *cfg, struct err *e)
{
	struct vault *v = vault_new();
	if (cfg->token_keys[0] && vault_add_keys(v, cfg->token_keys, e))
		goto fail;
	if (cfg->token_keys_file[0] && vault_load_file(v, cfg->token_keys_file, e))
		goto fail;
	if (vault_key_count(v) == 0) {
		if (str_eq(cfg->demo, "on")) {
			if (vault_add_keys(v, DEMO_TOKEN_KEY, e))
				goto fail;
			log_warn("demo mode: tokens are encrypted with the published demo key",
				 NULL);
			return v;
		}
		err_set(e, "no token encryption key configured; make one with `ghl-agent keygen` "
			   "and set it as token_keys (GHL_AGENT_TOKEN_KEYS=ID:BASE64KEY) or in the "
			   "file named by token_keys_file");
		goto fail;
	}
	return v;
fail:
	vault_free(v);
	return NULL;
}

/* Where a key's value came from ("default", "FILE:LINE", "env:NAME"). */
static const char *key_source(const struct config *cfg, const char *key)
{
	for (size_t i = 0; i < config_key_count(); i++)
		if (!strcmp(config_key_name(i), key))
			return cfg->sources[i];
	return "default";
}

/* Demo mode never talks to the real GHL unless told to: the GHL URLs must be
 * set (scripts/demo points them at ghl-sim), not left at GHL's defaults. */
static int check_demo_urls(const struct config *cfg, struct err *e)
{
	static const char *const keys[] = {"ghl_api_base", "ghl_oauth_authorize_url"};
	if (!str_eq(cfg->demo, "on"))
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key_source(cfg, keys[i]), "default"))
			return err_set(
				e,
				"demo mode: %s is not set and its default is the real GHL; "
				"point it at the GHL simulator (GHL_AGENT_%s=http://127.0.0.1:"
				"PORT…; `. .run/demo.env` after scripts/demo sets it), or set "
				"it to GHL's URL explicitly to use the real GHL",
				keys[i], !i ? "GHL_API_BASE" : "GHL_OAUTH_AUTHORIZE_URL");
	return 0;
}

int ghl_setup(struct app *app, struct err *e)
{
	const struct config *cfg = app->cfg;
	if (check_demo_urls(cfg, e))
		return -1;
	app->vault = ghl_load_vault(cfg, e);
	if (!app->vault)
		return -1;
	struct ghl_client_opts o = {
		.api_base = cfg->ghl_api_base,
		.timeout_ms = cfg->ghl_timeout_ms,
		.max_host_connections = (int)cfg->ghl_max_connections,
		.retry_attempts = (int)cfg->ghl_retry_attempts,
		.retry_base_ms = cfg->ghl_retry_base_ms,
		.client_id = cfg->ghl_client_id,
		.client_secret = cfg->ghl_client_secret,
	};
	app->ghl = ghl_client_new(app->base, &o, e);
	if (!app->ghl)
		return -1;
	oauth_check_config(cfg);
	app->tokens = agency_tokens_new(app);
	agency_tokens_start(app->tokens);
	return 0;
}

void ghl_teardown(struct app *app)
{
	/* refreshes in flight commit first: GHL has already rotated their tokens */
	agency_tokens_stop(app->tokens, app->cfg ? app->cfg->shutdown_timeout_ms : 0);
	app->ghl = ghl_client_free(app->ghl); /* cancels the shared polls' requests too */
	app->push_poller = push_poller_free(app->push_poller);
	app->get_cache = get_cache_free(app->get_cache);
	app->loc_tokens = loc_tokens_free(app->loc_tokens);
	app->tokens = agency_tokens_free(app->tokens);
	app->vault = vault_free(app->vault);
}
