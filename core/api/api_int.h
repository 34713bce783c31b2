/* api_int.h — private to the /api/v1 request helpers (api.c and its parts
 * api_roles.c, api_params.c, api_reply.c, api_db.c, api_authn.c,
 * api_key_cache.c): what one part calls in another. Handlers include api.h. */
#ifndef GHL_API_INT_H
#define GHL_API_INT_H

#include <stddef.h>

#include "api.h"

#define SESSION_COOKIE "ghl_session"

/* api_roles.c: the principal's memory. */
void api_principal_clear(struct principal *p);
void api_principal_add_agency(struct principal *p, const char *id, size_t n);

/* api.c: everything after authentication (scope, role, query, body, handler). */
void api_proceed(struct api_req *r);

/* api_authn.c: GET, HEAD, OPTIONS (no CSRF check; queries may be replayed). */
int api_is_safe_method(const char *m);

/* api_key_cache.c: an empty cache (freed with api_key_cache_free, NULL
 * accepted); fills r->who from the cache (1 on a hit); remembers
 * r->who's key under hash. */
int api_key_cached(struct api_req *r, const char *hash);
void api_key_remember(struct api_req *r, const char *hash);
struct api_key_cache *api_key_cache_new(void);
struct api_key_cache *api_key_cache_free(struct api_key_cache *c);

/* api_ratelimit.c: the buckets of a process (freed with api_rate_free, NULL
 * accepted). */
struct api_rate *api_rate_new(void);
struct api_rate *api_rate_free(struct api_rate *rt);

/* api_params.c: the query-string problems of a request (NULL accepted). */
struct api_qproblems *api_qproblems_free(struct api_qproblems *q);

/* api_reply.c: frees r; 503 with Retry-After when no database connection came
 * within db_wait_timeout (or the wait queue was full). */
struct api_req *api_req_free(struct api_req *r);
void api_reply_db_unavailable(struct api_req *r, const char *message);

#endif
