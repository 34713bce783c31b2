/* get_cache.h — shared GHL reads: a GET that many step runs ask for at once
 * (the agency's snapshot list, say) goes to GHL once, and its successful
 * answer serves every identical GET for max_age_ms (the caller's TTL).
 *
 * The key is the caller's (the rate-limit bucket, the path and the query, so
 * that one agency never reads another's answer). The first caller of a key
 * with nothing fresh becomes its leader: it sends the request and hands the
 * reply to get_cache_finish, which serves the callers that joined in the
 * meantime and keeps a 2xx reply. Single-threaded (the loop's thread). */
#ifndef GHL_GET_CACHE_H
#define GHL_GET_CACHE_H

#include <stdint.h>

#include "ghl_client.h"

struct get_cache;
struct get_wait;

/* A reply as the waiters get it (the body is theirs to copy, valid during the
 * call only). */
typedef void (*get_cache_fn)(void *arg, int status, enum ghl_outcome outcome,
			     const struct json *body, const char *message, const char *trace_id,
			     long long retry_after_ms);

struct get_cache *get_cache_new(void);
/* Frees everything; waiters still joined are dropped without a call (their
 * owners are gone by then). NULL is fine; returns NULL. */
struct get_cache *get_cache_free(struct get_cache *c);

enum get_cache_step {
	GET_CACHE_HIT = 0, /* fresh: cb was called before this returned */
	GET_CACHE_JOINED,  /* another caller's request is in flight: cb comes with its reply */
	GET_CACHE_LEAD,	   /* send the request yourself, then call get_cache_finish */
};

/* Look key up for a caller that accepts answers up to max_age_ms old. On
 * GET_CACHE_JOINED *wait is the handle for get_cache_leave. */
enum get_cache_step get_cache_enter(struct get_cache *c, const char *key, long long max_age_ms,
				    int64_t now_ms, get_cache_fn cb, void *arg,
				    struct get_wait **wait);

/* The leader's reply (res NULL: the request could not be sent; message says
 * why): kept when 2xx, handed to every joined caller either way. */
void get_cache_finish(struct get_cache *c, const char *key, const struct ghl_response *res,
		      const char *message, int64_t now_ms);

/* A joined caller goes away before the reply: it will not be called. */
void get_cache_leave(struct get_cache *c, struct get_wait *wait);

#endif
