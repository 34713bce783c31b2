/* ghl_client_int.h — the GHL client's private header: its structs and the
 * functions its files share (core/ghl/ghl_client.c, ghl_bucket.c, ghl_curl.c,
 * ghl_attempt.c, ghl_refresh.c, ghl_oauth.c). Nothing outside core/ghl/'s
 * client includes it; see ghl_client.h for the contract.
 */
#ifndef GHL_CLIENT_INT_H
#define GHL_CLIENT_INT_H

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h> /* events embedded in their owners, as hiperfifo.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ghl_client.h"
#include "ghl_ratelimit.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define MAX_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_HOST_CONNECTIONS 64
#define DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define MESSAGE_MAX 2048
#define BUCKET_HEADS 256
#define SWEEP_INTERVAL_MS 60000
#define ROTATION_TTL_MS 60000 /* how long a refresh result serves late 401s */
#define FAILED_TTL_MS 5000    /* ... and a failed refresh */
#define ROTATION_MAX 32
#define DEFAULT_429_RETRY_MS 10000
#define DEFAULT_RETRY_BASE_MS 500
#define MAX_RETRY_DELAY_MS 30000 /* longer waits are the scheduler's business */

/* CS_CONNWAIT: admitted by its bucket, waiting in the client's own queue for
 * one of max_active transfers to end (ghl_curl.c) */
enum call_state { CS_QUEUED, CS_ACTIVE, CS_REFRESH, CS_FINISHING, CS_BACKOFF, CS_CONNWAIT };

struct bucket {
	struct ghl_client *c;
	char *key;
	uint64_t hash;
	struct ghl_rl_bucket rl;
	struct ghl_call *qhead, *qtail;
	struct ghl_call *qlast_hi; /* last normal-priority call queued (low ones follow) */
	struct event timer;
	int refs;	     /* calls pointing here (they may wait for a refresh) */
	struct bucket *next; /* hash chain */
};

struct ghl_call {
	struct ghl_client *c;
	struct ghl_call *prev, *next; /* c->calls */
	enum call_state state;
	char *method, *path, *url, *body, *version, *token, *bucket_key, *extra_headers;
	const char *content_type;
	size_t body_len;
	int has_hooks;
	struct ghl_token_hooks hooks;
	int refreshed;
	int attempts;
	int repeatable;	      /* safe to send again after a transient fault */
	int low;	      /* low priority: queued behind normal calls */
	int transient;	      /* transient retries made */
	struct event backoff; /* assigned on first use */
	ghl_done_fn cb;
	void *arg;
	struct bucket *bk;
	struct ghl_call *qnext;	 /* bucket queue or refresh waiters */
	struct ghl_call *cwnext; /* the client's connection-wait queue */
	/* the current / last attempt */
	CURL *easy;
	struct curl_slist *hdrs;
	struct buf resp;
	int too_large;
	int sends;	    /* requests libcurl sent (a write that is not repeatable) */
	int resend_refused; /* ... and its resend that on_prereq refused */
	struct json *json;
	struct ghl_rl_headers rlh;
	char trace_hdr[128];
	char errbuf[CURL_ERROR_SIZE];
	int64_t t_start, t_attempt;
	/* a result delivered from the loop later (local failures) */
	struct event timer; /* assigned on first use */
	int fin_status;
	enum ghl_outcome fin_outcome;
	char *fin_msg;
	long long fin_retry_ms;
};

/* A refresh in progress for one stale token; outlives the client when the
 * provider answers after ghl_client_free (c is then NULL). */
struct refresh {
	struct ghl_client *c;
	struct refresh *next;
	struct ghl_token_hooks hooks;
	char *stale;
	struct ghl_call *waiters;
};

/* A finished refresh: 401s that arrive late for the same stale token reuse
 * its result instead of refreshing again. fresh is NULL when it failed (why
 * then says why). */
struct rotation {
	struct ghl_token_hooks hooks;
	char *stale, *fresh, *why;
	int64_t at;
};

struct sockinfo {
	struct ghl_client *c;
	curl_socket_t fd;
	struct event ev;
	struct sockinfo *prev, *next;
};

struct ghl_client {
	struct event_base *base;
	CURLM *multi;
	struct event curl_timer, sweep;
	char *api_base, *client_id, *client_secret, *user_agent;
	long long timeout_ms, retry_base_ms;
	int max_attempts, initial_burst, rate_off, retry_attempts, public_only;
	long long retries;
	size_t max_body;
	struct ghl_call *calls;
	int ncalls;
	struct bucket *heads[BUCKET_HEADS];
	struct refresh *refreshes;
	struct rotation rot[ROTATION_MAX];
	int nrot;
	struct sockinfo *socks;
	/* transfers handed to libcurl, at most max_active (ghl_max_connections);
	 * the attempts beyond wait in cw_head..cw_tail, not in libcurl's own
	 * pending list, which costs more CPU per request than the request */
	int max_active, nactive;
	struct ghl_call *cw_head, *cw_tail;
	int depth;
	int freeing, destroy_pending;
};

/* ghl_client.c: entry points count themselves so that ghl_client_free from
 * inside a callback finishes the teardown once the outermost one returns */
void ghl_client_enter(struct ghl_client *c);
void ghl_client_leave(struct ghl_client *c);
/* Calls the user's callback with the call's last reply and frees the call. */
void ghl_call_deliver(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
		      long long retry_after_ms);
/* Delivers a local result from the loop, never from the caller's stack. */
void ghl_call_finish_later(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
			   long long retry_after_ms);

/* ghl_bucket.c: per-resource queues paced by the rate budget */
struct bucket *ghl_bucket_get(struct ghl_client *c, const char *key);
struct bucket *ghl_bucket_free(struct bucket *bk);
void ghl_bucket_kick(struct bucket *bk, long long delay_ms);
/* Frees the buckets nobody uses that have been idle long enough. */
void ghl_bucket_sweep(struct ghl_client *c, int64_t now);
/* Puts a call (new, refreshed or retried) on its way. */
void ghl_call_submit(struct ghl_call *call);

/* ghl_curl.c: libcurl's multi-socket API on the libevent loop */
/* Wires c->multi to the loop; 0, or -1 when libcurl refuses an option. */
int ghl_curl_init(struct ghl_client *c, long maxconn);
void ghl_curl_cleanup(struct ghl_client *c);
/* Starts an attempt, or queues it until fewer than max_active transfers run. */
void ghl_attempt_start(struct ghl_call *call);
/* Forgets the attempts waiting for a connection (ghl_client_free delivers them). */
void ghl_curl_drop_waiting(struct ghl_client *c);
void ghl_call_easy_release(struct ghl_call *call);
void ghl_call_resp_reset(struct ghl_call *call);
/* Logs a failed libcurl multi call (where names it); 0 for CURLM_OK, else -1. */
int ghl_mcode_check(const char *where, CURLMcode mc);

/* ghl_attempt.c: what follows a finished attempt */
void ghl_attempt_done(struct ghl_call *call, CURLcode rc);

/* ghl_refresh.c: the single-flight token refresh after a 401 */
void ghl_refresh_begin(struct ghl_call *call);
/* Forgets refresh results older than ROTATION_TTL_MS. */
void ghl_rotation_sweep(struct ghl_client *c, int64_t now);
void ghl_rotation_clear_all(struct ghl_client *c);
/* Detaches the refreshes in progress from a client being freed. */
void ghl_refresh_orphan_all(struct ghl_client *c);

#endif
