/* agency_tokens.h — the agencies' GHL OAuth tokens: read, refresh, sweep.
 *
 * Tokens are stored encrypted (core/ghl/vault.h) in agencies.oauth_*_encrypted.
 * GHL refresh tokens are single-use (GHL_API.md "OAuth"), so a refresh is
 * single-flight across every process sharing the database:
 *
 *   BEGIN;
 *   SELECT … FROM agencies WHERE … FOR UPDATE SKIP LOCKED;  -- on an acquired
 *   POST /oauth/token (refresh_token)                       -- pool connection
 *   UPDATE agencies SET <new pair, encrypted>, token_expires_at …;
 *   COMMIT;                                                 -- then, only then,
 *                                                           -- the token is used
 *
 * A process that finds the row locked does not refresh: it waits for the
 * holder's commit and reads the pair the holder stored.
 *
 * The sweep (every token_refresh_interval) refreshes, one agency at a time,
 * the live agencies whose token_expires_at is within token_refresh_margin.
 * GHL refusing a refresh (invalid_grant) marks the agency needs_reconnect with
 * a reason (agencies.reconnect_reason, a warning in the log); its tokens are
 * then neither refreshed nor handed out until it is connected again through
 * /oauth/connect, and callers get AGENCY_TOKEN_RECONNECT with that reason.
 *
 * Each value is encrypted bound to its row and column (the vault's additional
 * data: the agency id and one of the column names below), so a ciphertext
 * copied into another agency's row, or into the other column, does not decrypt.
 *
 * Plaintext tokens exist only in memory and are wiped after use; logs carry
 * crypto_token_fingerprint only. Everything runs on the app's event loop.
 */
#ifndef GHL_AGENCY_TOKENS_H
#define GHL_AGENCY_TOKENS_H

#include "ghl_client.h"

#define AGENCY_TOKENS_COL_ACCESS "oauth_access_token_encrypted"
#define AGENCY_TOKENS_COL_REFRESH "oauth_refresh_token_encrypted"

struct app;
struct agency_tokens;

enum agency_token_status {
	AGENCY_TOKEN_OK,
	AGENCY_TOKEN_RECONNECT, /* the agency must be connected again (why = reason) */
	AGENCY_TOKEN_NOT_FOUND, /* no such agency, or uninstalled (deleted_at set) */
	AGENCY_TOKEN_RETRYABLE, /* GHL or the database failed for now: try later */
	AGENCY_TOKEN_ERROR,	/* anything else (undecryptable value, GHL refused) */
};

const char *agency_token_status_name(enum agency_token_status st);

/* What a caller gets; every string is valid during the callback only, and
 * access_token is wiped right after it returns. */
struct agency_token {
	const char *agency_id;	   /* agencies.id */
	const char *ghl_agency_id; /* GHL companyId */
	const char *access_token;  /* plaintext bearer token */
};

/* st == AGENCY_TOKEN_OK: tok is set, why NULL. Otherwise tok NULL and why
 * says what went wrong (for RECONNECT: the agency's reconnect_reason). */
typedef void (*agency_token_fn)(void *arg, enum agency_token_status st,
				const struct agency_token *tok, const char *why);

/* The "why" of a refresh that failed because the agency must reconnect
 * starts with this, also when it reaches a caller through the GHL client's
 * 401 path (GHL_AUTH with res->message = why). */
#define AGENCY_TOKENS_RECONNECT_PREFIX "agency needs reconnection: "

/* A module bound to app (db, ghl, vault and cfg are read through app at each
 * use, so a SIGHUP reload applies). Never NULL. */
struct agency_tokens *agency_tokens_new(struct app *app);

/* Start the periodic sweep (first pass at once) and the start-up check of
 * stored tokens: live agencies whose tokens cannot work (a placeholder, or a
 * value no key of token_keys decrypts) get needs_reconnect with a reason
 * "stored tokens unusable: …"; one whose tokens decrypt again loses that mark.
 * The check is retried until the database answers. */
void agency_tokens_start(struct agency_tokens *t);

/* 1 once the start-up check is done. */
int agency_tokens_checked(const struct agency_tokens *t);

/* cb(arg, 1) once the start-up check is done, cb(arg, 0) when its attempt
 * failed (the database; it is retried) or the module stops. When the check
 * is done or cannot run, cb is called before this returns; a check waiting to
 * retry is started at once (/readyz waits on this). Exactly one call. */
void agency_tokens_when_checked(struct agency_tokens *t, void (*cb)(void *arg, int ok), void *arg);

/* Shutdown, part 1: stop the sweep and run the loop until the refreshes in
 * flight have committed (or deadline_ms passed), so that no refresh token GHL
 * already rotated is lost. Later requests fail with AGENCY_TOKEN_RETRYABLE. */
void agency_tokens_stop(struct agency_tokens *t, long long deadline_ms);

/* Shutdown, part 2: after the GHL client is freed. Operations still waiting
 * for the database finish (without side effects) when the pool is freed;
 * the module's memory goes with the last of them. Accepts NULL; returns NULL. */
struct agency_tokens *agency_tokens_free(struct agency_tokens *t);

/* The agency's access token, refreshed first (single-flight) when it expires
 * within a minute. cb is called exactly once, always from the loop. */
void agency_tokens_get(struct agency_tokens *t, const char *agency_id, agency_token_fn cb,
		       void *arg);

/* Refresh the agency's token because stale_token was refused (GHL 401).
 * When another request or process already replaced stale_token, the current
 * token is returned without a new refresh. stale_token may be NULL (refresh
 * unconditionally unless someone else just did). cb as for agency_tokens_get. */
void agency_tokens_refresh(struct agency_tokens *t, const char *agency_id, const char *stale_token,
			   agency_token_fn cb, void *arg);

/* Hooks for ghl_request_send_auth: a 401 on a request carrying this agency's
 * token runs agency_tokens_refresh. The hooks stay valid until
 * agency_tokens_free. */
void agency_tokens_hooks(struct agency_tokens *t, const char *agency_id,
			 struct ghl_token_hooks *out);

/* Refreshes done and refused (invalid_grant) since start, for tests/metrics. */
struct agency_tokens_stats {
	long long refreshes;
	long long refused;
	long long failed;
	long long sweeps;
};
void agency_tokens_get_stats(const struct agency_tokens *t, struct agency_tokens_stats *out);

#endif
