/* oauth_routes.h — connecting an agency to GoHighLevel (GHL_API.md "OAuth").
 *
 *   GET /oauth/connect   302 to ghl_oauth_authorize_url with response_type=code,
 *                        redirect_uri, client_id, scope and a signed, expiring
 *                        state (crypto_state_sign, oauth_state_secret,
 *                        oauth_state_ttl), remembered in oauth_states with who
 *                        asked and bound to this browser by the cookie
 *                        ghl_oauth (HttpOnly, SameSite=Lax).
 *   GET /oauth/callback  checks the state, spends it (once, from the browser
 *                        holding its cookie), exchanges the code
 *                        (ghl_oauth_token), checks that the user who started
 *                        the connection may bind it to the company (an ADMIN:
 *                        any; an AGENCY_ADMIN: only a live agency linked to
 *                        them), stores both tokens encrypted for that agency's
 *                        row with token_expires_at (an ADMIN may create the
 *                        agency or bring a deleted one back), and answers an
 *                        HTML page saying the agency is connected. A bad,
 *                        expired, spent or foreign state, GHL's error, a
 *                        refused code or a binding the user may not make gives
 *                        an error page and writes nothing.
 */
#ifndef GHL_OAUTH_ROUTES_H
#define GHL_OAUTH_ROUTES_H

#include "util.h"

struct app;
struct config;
struct route_table;

extern const struct route_table oauth_route_table;

/* The secret that signs OAuth state: oauth_state_secret, or in demo mode
 * (when that is empty) one derived from the token keys. Malloc'd, release
 * with secret_free; NULL with e set when none is configured. */
char *oauth_state_secret(const struct config *cfg, struct err *e);

/* Logs, once at start-up, what is missing for /oauth/connect to work. */
void oauth_check_config(const struct config *cfg);

#endif
