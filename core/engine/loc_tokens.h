/* loc_tokens.h — the location tokens this process minted, one per location,
 * reused by every step (and every retry) of that location's job until it
 * expires or GHL refuses it. Memory only: a token leaves the cache wiped
 * (crypto_wipe) — when it expires, when it has not been used for
 * LOC_TOKEN_IDLE_MS, when a 401 drops it, and when the cache is freed. Tokens
 * are never logged. Single-threaded (the loop's thread). */
#ifndef GHL_LOC_TOKENS_H
#define GHL_LOC_TOKENS_H

#include <stdint.h>

/* A token nobody used for this long is wiped (its job is long done). */
#define LOC_TOKEN_IDLE_MS (5LL * 60 * 1000)
/* Kept at most until this long before GHL says it expires. */
#define LOC_TOKEN_MARGIN_MS (5LL * 60 * 1000)

struct loc_tokens;

struct loc_tokens *loc_tokens_new(void);
/* Wipes and frees every token; NULL is fine. Returns NULL. */
struct loc_tokens *loc_tokens_free(struct loc_tokens *t);

/* The token for location_id of company_id, or NULL. Valid until the next
 * call into the cache: copy it before anything else may run. */
const char *loc_tokens_get(struct loc_tokens *t, const char *company_id, const char *location_id,
			   int64_t now_ms);

/* Keep a freshly minted token; expires_in in seconds (<= 0: unknown, kept
 * for an hour at most). */
void loc_tokens_put(struct loc_tokens *t, const char *company_id, const char *location_id,
		    const char *token, long long expires_in, int64_t now_ms);

/* GHL refused the token (401): forget it when it is still the one cached. */
void loc_tokens_drop(struct loc_tokens *t, const char *location_id, const char *token);

/* Tokens held (for tests and metrics). */
int loc_tokens_count(const struct loc_tokens *t);

#endif
