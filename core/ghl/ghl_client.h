/* ghl_client.h — the only code that speaks HTTP to GoHighLevel.
 *
 * libcurl's multi interface driven by the caller's libevent loop (curl's
 * docs/examples/hiperfifo.c pattern): nothing here blocks, connections are
 * kept alive and reused, every callback runs from the loop.
 *
 * Contract with GHL: /work/shared/GHL_API.md. What the client does per call:
 *   - URL = api_base + path [+ "?" + query]; `Version` header picked from the
 *     path ("2021-04-15" for /saas/ and /calendars/, else "2021-07-28"; none for
 *     /oauth/token);
 *     `Authorization: Bearer` when a token is given; JSON or form body.
 *   - per-resource rate budget (core/ghl/ghl_ratelimit.h): requests whose
 *     resource has no budget left are held on an evtimer, never slept on, so
 *     a burst larger than X-RateLimit-Max produces no 429.
 *   - classification of the reply into enum ghl_outcome;
 *   - with ghl_request_send_auth: 401 → one token refresh (coalesced across
 *     concurrent requests holding the same stale token) → one retry.
 *   - transient faults (5xx, 408, timeout, dropped or refused connection) of
 *     a request that is safe to repeat — GET/HEAD, the location-token mint
 *     (POST /oauth/locationToken), upserts (POST …/upsert) — are retried up
 *     to retry_attempts in all, after a jittered backoff on an evtimer (the
 *     loop never sleeps). Other writes are never repeated here: they may
 *     have been applied before the fault, so the step decides (find before
 *     create); libcurl's own resend of one (after a reused connection
 *     closed without a reply) is refused too. 429 keeps its own path (max_attempts, the budget).
 *   - one debug log line per attempt: method, path with ids replaced by
 *     "{id}", status, duration, traceId, token fingerprint. Tokens, bodies and
 *     queries are never logged.
 *
 * Single-threaded: every function must be called from the loop's thread.
 */
#ifndef GHL_CLIENT_H
#define GHL_CLIENT_H

#include <stddef.h>

struct event_base;
struct json;
struct ghl_client;
struct err;

struct ghl_client_opts {
	const char *api_base;	   /* e.g. "https://services.leadconnectorhq.com" (required) */
	long long timeout_ms;	   /* whole attempt, connect included; <= 0 → 30000 */
	const char *client_id;	   /* for ghl_oauth_token */
	const char *client_secret; /* for ghl_oauth_token; copied, wiped on free */
	const char *user_agent;	   /* NULL → "ghl-agent/<version>" */
	int max_attempts;	   /* attempts per request when GHL answers 429 (held
				    * until the bucket reopens in between; needs the
				    * budget on); <= 1 → one attempt: the
				    * caller/scheduler retries */
	int max_host_connections;  /* requests on the wire at once (and libcurl's
				    * CURLMOPT_MAX_HOST_CONNECTIONS); the attempts
				    * beyond wait in the client, in order; <= 0 → 64 */
	int initial_burst;	   /* in flight per resource before its first
				    * rate-limit headers; <= 0 → 10 (a resource whose
				    * X-RateLimit-Max is below this can see 429s on
				    * first contact) */
	int rate_budget_off;	   /* 1: never hold requests (tests, diagnostics) */
	size_t max_body;	   /* largest reply body accepted; 0 → 8 MiB */
	int retry_attempts;	   /* attempts in all for a request safe to repeat
				    * that fails transiently (see above); <= 1 → one
				    * attempt (the caller retries) */
	long long retry_base_ms;   /* backoff before transient retry n: jittered in
				    * [d/2, d], d = base * 2^(n-1), at most 30 s;
				    * <= 0 → 500 ms. A 5xx whose Retry-After is
				    * beyond 30 s is not retried here. */
	int public_only;	   /* 1: connect only to public addresses (ssrf_guard.h),
				    * and every transport failure gets one message,
				    * so a refusal looks like an unreachable host */
};

enum ghl_outcome {
	GHL_OK,	       /* 2xx */
	GHL_AUTH,      /* 401 (after the one refresh + retry, when hooks were given) */
	GHL_RETRYABLE, /* 429, 408, 5xx, timeout, connection error, daily quota */
	GHL_PERMANENT, /* other 4xx, 3xx, unusable request, reply too large */
	GHL_CANCELLED, /* ghl_client_free ran before the request finished */
};

const char *ghl_outcome_name(enum ghl_outcome o); /* "ok", "auth", ... */

struct ghl_request {
	const char *method;    /* "GET", "POST", "PUT", "DELETE", "PATCH" */
	const char *path;      /* "/locations/abc"; must start with '/' */
	const char *query;     /* already percent-encoded, without '?'; may be NULL */
	const char *json_body; /* may be NULL */
	const char *form_body; /* x-www-form-urlencoded (OAuth endpoints); may be NULL */
	const char *version;   /* NULL → picked from the path (see above) */
	const char *token;     /* bearer; NULL for /oauth/token */
	const char *headers;   /* extra "Name: value" lines separated by '\n' (webhooks
				* to non-GHL URLs); may be NULL. Never logged. */
	const char *resource;  /* rate-limit bucket: the company id for an agency
				* token, the location id for a location token.
				* NULL → the token's own bucket; no token and no
				* resource → not limited */
	int low_priority;      /* 1: background work (reconciliation): waits in its
				* bucket behind every normal request queued there,
				* so job traffic is never starved by it */
};

/* Everything points into the client's memory and is valid only during the
 * callback: copy what you keep (json_clone for the tree). */
struct ghl_response {
	int status; /* HTTP status; 0 when no reply (transport failure,
				   * cancelled, daily quota refused locally) */
	enum ghl_outcome outcome;
	const char *body; /* reply body, NUL-terminated ("" when none) */
	size_t body_len;
	struct json *json;	  /* parsed body or NULL */
	const char *message;	  /* GHL's "message" (a 422 array joined with "; "),
				   * OAuth's error_description, or the transport error;
				   * NULL on success */
	const char *trace_id;	  /* body "traceId" or X-Trace-Id header; NULL if none */
	long long retry_after_ms; /* > 0 for 429/daily quota: when the budget reopens;
				   * for 5xx: Retry-After when GHL sent one; else 0 */
	double duration_ms;	  /* from ghl_request_send to this callback, holds
				   * and refresh included */
	int attempts;		  /* HTTP attempts made (0 when none was sent) */
};

typedef void (*ghl_done_fn)(void *arg, const struct ghl_response *res);

/* Token provider for ghl_request_send_auth. refresh() must eventually call
 * done(done_arg, new_token, e) exactly once — synchronously or later —
 * with new_token NULL when the refresh failed (e says why; may be NULL).
 * stale_token is valid during the refresh() call only; done copies its
 * strings. done stays safe to call after the client was freed (it then only
 * releases its state). Cross-process single-flight (the agency row lock) is
 * the provider's business; the client guarantees that concurrent 401s for the
 * same stale token (same refresh/ctx pair) call refresh() once: 401s arriving
 * while it runs wait for it, and for 60 s after it succeeded (5 s after it
 * failed) 401s for that stale token reuse its result. */
struct ghl_token_hooks {
	void (*refresh)(void *ctx, const char *stale_token,
			void (*done)(void *done_arg, const char *new_token, const struct err *e),
			void *done_arg);
	void *ctx;
};

/* Creates a client on base. Returns NULL with *e set when opts are unusable
 * (no api_base) or libcurl cannot be initialised. Free with ghl_client_free. */
struct ghl_client *ghl_client_new(struct event_base *base, const struct ghl_client_opts *opts,
				  struct err *e);

/* Cancels whatever is still in flight, queued or waiting for a refresh: each
 * of those callbacks is called once, synchronously from here, with status 0,
 * outcome GHL_CANCELLED and message "cancelled", so owners can release their
 * args. A ghl_request_send made from such a callback completes at once the
 * same way. May be called from inside a client callback (the teardown then
 * finishes when that callback returns). Accepts NULL; returns NULL. */
struct ghl_client *ghl_client_free(struct ghl_client *c);

/* Sends req; cb (required) is called exactly once with arg, always from the
 * event loop (never from inside this call). Everything in req is copied. */
void ghl_request_send(struct ghl_client *c, const struct ghl_request *req, ghl_done_fn cb,
		      void *arg);

/* Like ghl_request_send, but a 401 calls hooks->refresh (coalesced, see
 * struct ghl_token_hooks) and retries once with the new token; a second 401,
 * or a failed refresh, ends as GHL_AUTH (status 401). *hooks is copied. */
void ghl_request_send_auth(struct ghl_client *c, const struct ghl_request *req,
			   const struct ghl_token_hooks *hooks, ghl_done_fn cb, void *arg);

/* Requests accepted and not yet completed (queued, held, on the wire or
 * waiting for a refresh). */
int ghl_client_inflight(const struct ghl_client *c);

/* Of those, the attempts waiting for one of max_host_connections. */
int ghl_client_waiting(const struct ghl_client *c);

/* Transient retries made since the client was created (see retry_attempts). */
long long ghl_client_retries(const struct ghl_client *c);

/* What this process knows of one resource's GHL rate budget (a company id or
 * a location id), from the X-RateLimit-* headers of its latest replies; -1 =
 * not known yet. A bucket idle for a full interval is forgotten (swept). */
struct ghl_budget {
	const char *resource;
	long long max, remaining, interval_ms; /* the burst window */
	long long daily_max, daily_remaining;
	long long blocked_ms; /* nothing sent for this long (429, Remaining 0), else 0 */
	int in_flight, queued;
};
typedef void (*ghl_budget_fn)(void *arg, const struct ghl_budget *b);
/* Calls fn for every resource bucket the client holds (not the per-token
 * buckets of calls without a resource). */
void ghl_client_budgets(struct ghl_client *c, ghl_budget_fn fn, void *arg);

/* ---- OAuth ---- */

struct ghl_oauth_form {
	const char *grant_type;	   /* "authorization_code" | "refresh_token" */
	const char *code;	   /* authorization_code */
	const char *refresh_token; /* refresh_token */
	const char *redirect_uri;  /* optional */
	const char *user_type;	   /* optional: "Company" | "Location" */
};

/* A token reply; strings valid during the callback only, NULL when absent. */
struct ghl_token_set {
	const char *access_token;
	const char *refresh_token;
	const char *token_type;
	const char *scope;
	const char *user_type; /* "Company" | "Location" */
	const char *company_id;
	const char *location_id; /* location tokens only */
	const char *user_id;
	long long expires_in; /* seconds; -1 when absent */
};

/* tok is non-NULL only when res->outcome == GHL_OK and the reply had an
 * access_token; otherwise res says what went wrong (a reply without
 * access_token is reported as GHL_PERMANENT, "token reply without access_token"). */
typedef void (*ghl_oauth_fn)(void *arg, const struct ghl_response *res,
			     const struct ghl_token_set *tok);

/* POST /oauth/token with the client's client_id/client_secret and the given
 * fields, form-urlencoded, without Version or Authorization. Neither the
 * body nor the returned tokens are logged. */
void ghl_oauth_token(struct ghl_client *c, const struct ghl_oauth_form *form, ghl_oauth_fn cb,
		     void *arg);

/* POST /oauth/locationToken: mints a location token from an agency token
 * (rate-limited in company_id's bucket). */
void ghl_oauth_location_token(struct ghl_client *c, const char *agency_token,
			      const char *company_id, const char *location_id, ghl_oauth_fn cb,
			      void *arg);

/* Percent-encodes s for a query string or form body (RFC 3986 unreserved
 * characters kept, everything else %XX). Malloc'd, never NULL. */
char *ghl_urlencode(const char *s);

#endif
