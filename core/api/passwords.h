/* passwords.h — passwords, secrets and login throttling.
 *
 * Passwords: bcrypt `$2b$` through libxcrypt (crypt_gensalt_rn + crypt_r).
 * One bcrypt at cost 12 takes a quarter of a second, so the daemon never runs
 * it on the event loop: struct auth_pool is a small pthread worker pool whose
 * results come back to the loop through a pipe watched by a libevent event.
 * The blocking functions (auth_password_hash/verify) are for the CLI and for
 * the workers themselves.
 *
 * Session tokens and API keys are random; only their SHA-256 is stored.
 *
 * Login throttling is an in-memory sliding window per key (one table per
 * account, one per client address): it counts login attempts within the
 * window from the moment they are admitted (so attempts still running count)
 * and is lost on restart — deliberately simple; a cluster of agents throttles
 * per process. A success takes its own attempt back (throttle_forget) or
 * clears the key (throttle_reset).
 */
#ifndef GHL_PASSWORDS_H
#define GHL_PASSWORDS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct event_base;

#define AUTH_PASSWORD_MIN 12   /* characters (UTF-8 code points) */
#define AUTH_PASSWORD_MAX 1024 /* bytes; bcrypt itself reads the first 72 */
#define AUTH_BCRYPT_MIN_COST 12
#define AUTH_WORKER_NICE 10 /* auth_pool threads run at this nice value */
#define AUTH_API_KEY_PREFIX "ghl_"
#define AUTH_API_KEY_DISPLAY 12 /* characters of the key kept for display */

/* 0 when password satisfies the policy; else -1 and a user-facing reason. */
int auth_password_policy(const char *password, struct err *e);

/* Blocking bcrypt. auth_password_hash: a new `$2b$` hash at cost
 * (clamped to ≥ 12) into a malloc'd *out. auth_password_verify: 1 when
 * password matches hash (constant-time compare), 0 when not (or when hash is
 * malformed). Both wipe their scratch memory. */
int auth_password_hash(const char *password, int cost, char **out, struct err *e);
int auth_password_verify(const char *password, const char *hash);

/* A bcrypt hash of a random password, verified against when an email is
 * unknown so that a miss takes as long as a wrong password. */
extern const char auth_dummy_hash[];

/* New session token (43 base64url characters, never starting "ghl_") and API
 * key ("ghl_" + 43 characters). Malloc'd; NULL when the RNG fails. */
char *auth_new_session_token(void);
char *auth_new_api_key(void);
/* 1 when a bearer token has the API key form. */
int auth_is_api_key(const char *token);
/* SHA-256 hex of a secret, the form stored in sessions/api_keys. */
void auth_secret_hash(const char *secret, char out[65]);

/* ---- worker pool ------------------------------------------------------- */

struct auth_pool;

/* Result callbacks run on the loop. hash: auth_pool_hash's result (malloc'd,
 * the callee owns it) or NULL on failure; ok: auth_pool_verify's answer. */
typedef void (*auth_hash_cb)(void *arg, char *hash);
typedef void (*auth_verify_cb)(void *arg, int ok);

struct auth_pool *auth_pool_new(struct event_base *base, int nthreads, struct err *e);
/* Stops the workers (after their current job). Queued jobs are dropped
 * without their callbacks. Accepts NULL; returns NULL. */
struct auth_pool *auth_pool_free(struct auth_pool *p);
/* Queue work; the password is copied (and wiped after use). cb always runs
 * later on the loop, never from inside these calls. */
void auth_pool_hash(struct auth_pool *p, const char *password, int cost, auth_hash_cb cb,
		    void *arg);
void auth_pool_verify(struct auth_pool *p, const char *password, const char *hash,
		      auth_verify_cb cb, void *arg);
/* Jobs queued or running. */
int auth_pool_pending(const struct auth_pool *p);

/* ---- throttle ---------------------------------------------------------- */

struct throttle;

/* max_keys caps memory: when full, the least recently failed key is dropped. */
struct throttle *throttle_new(size_t max_keys);
struct throttle *throttle_free(struct throttle *t);
/* 0 when key may try now; else the seconds until it may (≥ 1): `limit`
 * failures within window_ms ending at now_ms block the key. */
int64_t throttle_check(struct throttle *t, const char *key, int64_t limit, int64_t window_ms,
		       int64_t now_ms);
/* Record one attempt (admitted, or failed) of key at now_ms. */
void throttle_fail(struct throttle *t, const char *key, int64_t limit, int64_t window_ms,
		   int64_t now_ms);
/* Take back the attempt recorded at at_ms (a login that succeeded). */
void throttle_forget(struct throttle *t, const char *key, int64_t at_ms);
/* Forget key (after a successful login). */
void throttle_reset(struct throttle *t, const char *key);
/* Keys currently tracked. */
size_t throttle_size(const struct throttle *t);

#endif
