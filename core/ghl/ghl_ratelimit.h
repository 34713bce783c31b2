/* ghl_ratelimit.h — per-resource request budget for the GHL client (private
 * to its queues, core/ghl/ghl_bucket.c; pure functions over an explicit clock
 * so the unit test can drive it).
 *
 * GHL limits each app per resource (company or location): a burst of
 * X-RateLimit-Max requests per X-RateLimit-Interval-Milliseconds and a daily
 * quota (GHL_API.md "Rate limits"). Whether the burst window is fixed or
 * sliding is not documented, so the bucket is safe for both:
 *
 *   - our own sends: never more than `max` sends in any span of
 *     interval + margin (a log of recent send times);
 *   - the server's view: never more requests in flight than the lowest
 *     X-RateLimit-Remaining seen in the last interval (other processes may
 *     share the bucket);
 *   - Remaining 0 or a 429: nothing is sent until a full interval after that
 *     reply arrived (or Retry-After, when longer) — by then the window that
 *     was counted has certainly ended;
 *   - before any header was seen: at most `initial_burst` in flight.
 *   - Daily-Remaining 0: the resource is closed for GHL_RL_DAILY_BLOCK_MS (or
 *     Retry-After when the reply carried one); callers fail fast instead of
 *     holding requests for that long.
 *
 * Times are milliseconds on any monotonic clock (the client passes
 * now_monotonic_ms()).
 */
#ifndef GHL_RATELIMIT_H
#define GHL_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* How long a resource stays closed after Daily-Remaining reached 0 when the
 * reply said nothing better (the daily quota resets once a day; an hour keeps
 * the retry cheap without spinning). */
#define GHL_RL_DAILY_BLOCK_MS (60LL * 60 * 1000)
/* Window assumed for a 429 before any X-RateLimit-Interval was seen. */
#define GHL_RL_DEFAULT_INTERVAL_MS 10000LL
/* In-flight requests allowed for a resource before its first reply. */
#define GHL_RL_DEFAULT_INITIAL_BURST 10
/* Above this X-RateLimit-Max the send log is not kept (the limit is then too
 * high to matter; Remaining still applies). */
#define GHL_RL_LOG_CAP 4096

/* Rate-limit headers of one reply; -1 = absent. */
struct ghl_rl_headers {
	long long max, remaining, interval_ms, daily_max, daily_remaining;
	long long retry_after_ms;
};

void ghl_rl_headers_init(struct ghl_rl_headers *h);
/* Feed one raw header line ("Name: value", with or without CRLF) as libcurl's
 * header callback delivers it. Unknown names are ignored; malformed values
 * are ignored. Retry-After accepts delta-seconds only (an HTTP date is
 * ignored). Returns 1 when the line was a rate-limit header, else 0. */
int ghl_rl_headers_feed(struct ghl_rl_headers *h, const char *line, size_t len);

struct ghl_rl_bucket {
	int known;		   /* a reply with X-RateLimit-Max was seen */
	long long max;		   /* X-RateLimit-Max */
	long long interval_ms;	   /* X-RateLimit-Interval-Milliseconds */
	long long remaining;	   /* lowest Remaining seen in the current interval */
	int64_t remaining_ms;	   /* when that Remaining was seen */
	long long daily_remaining; /* -1 = unknown */
	long long daily_max;	   /* X-RateLimit-Limit-Daily; -1 = unknown */
	int64_t blocked_until;	   /* no sends before this (429 / Remaining 0) */
	int64_t daily_until;	   /* daily quota exhausted until this */
	int inflight;		   /* sent, no reply yet */
	int initial_burst;
	/* send log: ring of send times within the last interval + margin */
	int64_t *log;
	size_t log_cap, log_head, log_n;
};

/* Result of ghl_rl_poll besides "now" (0) and a positive delay in ms. */
#define GHL_RL_WAIT (-1)  /* wait for an in-flight reply, no timer needed */
#define GHL_RL_DAILY (-2) /* daily quota exhausted: fail fast (see daily_until) */

/* initial_burst <= 0 selects GHL_RL_DEFAULT_INITIAL_BURST. */
void ghl_rl_bucket_init(struct ghl_rl_bucket *b, int initial_burst);
void ghl_rl_bucket_clear(struct ghl_rl_bucket *b); /* frees the log */

/* Bounds of the safety margin added to the interval for the send log. */
#define GHL_RL_MARGIN_MIN_MS 50LL
#define GHL_RL_MARGIN_MAX_MS 250LL
/* Safety margin added to the interval for the send log: a tenth of the
 * interval, at least GHL_RL_MARGIN_MIN_MS, at most GHL_RL_MARGIN_MAX_MS
 * (250 ms for GHL's 10 s window, i.e. 100 sends per 10.25 s).
 *
 * Why: the log counts our send times on our monotonic clock, GHL counts
 * arrivals on its own clock, so clock skew between the two does not matter
 * (only differences of times are compared, each on one clock). What does is
 * the one-way latency of two requests `max` sends apart: if the first one
 * travels longer than the one sent an interval later, GHL sees them closer
 * than an interval. The margin covers that difference (the latency jitter),
 * plus 1 ms of clock granularity. 250 ms is several times the jitter of a
 * healthy path to GHL (tens of ms) and costs 2.5% of the throughput, where
 * the earlier 1 s cost 10%. A larger jitter is still caught by the other
 * guards: in flight never above the lowest Remaining seen, a full interval
 * closed after Remaining 0 or a 429, and a 429 is retried, not failed. */
long long ghl_rl_margin_ms(long long interval_ms);

/* May one more request be sent at `now`? Returns 0 (yes: call ghl_rl_on_send),
 * a delay in ms after which to ask again, GHL_RL_WAIT (ask again when a reply
 * arrives) or GHL_RL_DAILY. Forgets knowledge that has gone stale, hence not
 * const. */
long long ghl_rl_poll(struct ghl_rl_bucket *b, int64_t now);

/* A request for this resource left at `now`. */
void ghl_rl_on_send(struct ghl_rl_bucket *b, int64_t now);

/* The reply of a sent request arrived at `now`. status is the HTTP status;
 * h the reply's headers (NULL when unknown). A 401 does not carry the
 * resource's budget (the gateway answers before counting) and only ends the
 * in-flight slot. */
void ghl_rl_on_reply(struct ghl_rl_bucket *b, int64_t now, int status,
		     const struct ghl_rl_headers *h);

/* A sent request ended without a reply (timeout, connection error, cancel). */
void ghl_rl_on_abort(struct ghl_rl_bucket *b, int64_t now);

/* For a 429 (or a daily block): how long the caller should wait before
 * retrying, in ms (>= 1). */
long long ghl_rl_retry_after_ms(const struct ghl_rl_bucket *b, int64_t now);

/* True when the bucket holds no state worth keeping (no request in flight,
 * no block, nothing learnt in the last interval): the client may drop it. */
int ghl_rl_idle(const struct ghl_rl_bucket *b, int64_t now);

#endif
