/* ghl_side.h — start and stop the GHL side of the daemon: the token vault,
 * the GHL client, and (core/ghl/agency_tokens.c, core/api/oauth_routes.c, core/api/webhook_routes.c)
 * token refresh, OAuth and webhooks. */
#ifndef GHL_SETUP_H
#define GHL_SETUP_H

#include "util.h"

struct app;
struct config;
struct vault;

/* Load the token keys named by cfg (token_keys, token_keys_file). Outside
 * demo mode at least one key is required; in demo mode a fixed development
 * key is used when none is configured. NULL with e set on error. */
struct vault *ghl_load_vault(const struct config *cfg, struct err *e);

int ghl_setup(struct app *app, struct err *e);
void ghl_teardown(struct app *app);

#endif
