/* sim.h — private header shared by the ghl-sim modules.
 *
 * ghl-sim is a standalone GoHighLevel simulator (see /work/shared/GHL_API.md).
 * Everything runs on one libevent loop; the store is in memory; nothing here
 * is thread-safe and nothing needs to be.
 */
#ifndef GHL_SIM_H
#define GHL_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "json.h"
#include "util.h"

/* ---- hash table (string key -> pointer), chained, power-of-two buckets ---- */

struct htab_ent {
	char *key;
	void *val;
	uint64_t h;
	struct htab_ent *next;
};

struct htab {
	struct htab_ent **b;
	size_t nb, n;
};

struct htab_iter {
	size_t i;
	struct htab_ent *e;
};

void htab_init(struct htab *t);
void *htab_get(const struct htab *t, const char *key);
/* Inserts or replaces; the key is copied. Returns the previous value or NULL. */
void *htab_put(struct htab *t, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *htab_del(struct htab *t, const char *key);
/* Frees every entry (values through free_val when not NULL). */
void htab_clear(struct htab *t, void (*free_val)(void *));
/* Iteration: returns the next entry or NULL. Start with a zeroed iterator. */
struct htab_ent *htab_next(const struct htab *t, struct htab_iter *it);

/* ---- vector of pointers (insertion order) ---- */

struct vec {
	void **v;
	size_t n, cap;
};

void vec_push(struct vec *v, void *p);
void vec_remove(struct vec *v, const void *p); /* keeps order */
void vec_free(struct vec *v);

/* ---- random numbers: xoshiro256** streams ---- */

struct sim_rng {
	uint64_t s[4];
};

enum sim_stream { RNG_IDS, RNG_TOKENS, RNG_TRACE, RNG_FAULTS, RNG_NSTREAMS };

/* ---- configuration (flags, GHL_SIM_* env, /_sim/faults) ---- */

#define SIM_FAIL_ROUTES 16

/* Fail the next n requests of one route (its stats key, "POST /users/"). */
struct sim_fail_route {
	char key[96];
	int64_t n;
};

struct sim_config {
	char *listen;
	char *client_id;
	char *client_secret;
	char *company_id;
	char *webhook_key_file;
	int64_t access_ttl; /* seconds */
	int64_t latency_ms, jitter_ms;
	double error_rate, timeout_rate, drop_rate;
	int64_t rate_limit, rate_window_ms, daily_limit;
	int64_t snapshot_delay_ms;
	int64_t seed;
	int seeded;
	int verbose;
	int print_webhook_key;
	int help;
	/* run-time only: a timed outage (/_sim/faults outage_ms, the length last set) */
	int64_t outage_ms;
	int64_t outage_until_ms; /* monotonic: every API request answers fail_status until then */
	/* run-time only */
	int64_t fail_next; /* answer the next N API requests with fail_status */
	int64_t fail_status;
	struct sim_fail_route fail_routes[SIM_FAIL_ROUTES]; /* n = 0: free slot */
	/* process the next n requests of a route, then never answer (a timeout
	 * after the write: /_sim/faults hold_routes) */
	struct sim_fail_route hold_routes[SIM_FAIL_ROUTES];
	/* a gate (/_sim/faults gate): answers wait until this many wait at
	 * once, then all go and the gate is 0 (off) again */
	int64_t gate;
};

/* ---- store entities ---- */

enum tok_kind { TOK_ACCESS, TOK_REFRESH };
enum tok_class { CLASS_COMPANY, CLASS_LOCATION };

struct sim_token {
	char *token;
	char fingerprint[65]; /* sha256 hex */
	enum tok_kind kind;
	enum tok_class cls;
	char *company_id;
	char *location_id; /* CLASS_LOCATION only */
	char *client_id;
	char *user_id;
	char *scope;
	int64_t issued_ms, expires_ms; /* wall clock; refresh tokens: 0 = no expiry */
	int used;		       /* refresh tokens: consumed */
	int revoked;
};

struct sim_code {
	char *code;
	char *client_id;
	char *company_id;
	char *location_id;
	char *redirect_uri;
	char *scope;
	char *user_id;
	int64_t issued_ms;
	int used;
};

struct sim_company {
	char *id;
	char *name;
};

struct sim_snapshot {
	char *id;
	char *company_id;
	char *name;
	char *type;
};

struct sim_location {
	char *id;
	char *company_id;
	struct json *obj; /* the public GHL shape */
	char *dup_key;	  /* company|name|prospect email, lower-cased */
	char *snapshot_id;
	char *push_id;
	int64_t push_start_ms, push_done_ms;
	int push_failed;	    /* /_sim/locations/{id}/push: the push reports "failed" */
	struct json *saas;	    /* NULL until enabled */
	struct json *custom_values; /* array of objects */
	struct json *custom_fields; /* array of objects */
	struct json *tags;	    /* array of objects */
	struct json *contacts;	    /* array of objects */
	int64_t seq;
};

struct sim_user {
	char *id;
	char *company_id;
	char *email_key; /* company|email lower-cased */
	struct json *obj;
};

struct sim_store {
	struct htab companies;
	struct vec company_list;
	struct htab snapshots; /* "company\x1fid" */
	struct vec snapshot_list;
	struct htab locations;
	struct vec location_list;
	struct htab dup_index; /* dup_key -> live count (intptr_t) */
	struct htab users;
	struct vec user_list;
	struct htab user_emails;
	struct htab tokens;
	struct vec token_list;
	struct htab codes;
	struct vec code_list;
	int64_t seq;
	struct json
		*golive; /* sim_golive.c: phone numbers, calendars, menus, SaaS pause, rebilling */
};

/* ---- statistics ---- */

#define SIM_MAX_STATUS 24

struct route_stats {
	int n;
	int status[SIM_MAX_STATUS]; /* -1 = timeout (never answered) */
	int64_t count[SIM_MAX_STATUS];
};

struct sim_stats {
	int64_t requests_total;
	int64_t locations_created, duplicate_locations;
	int64_t refreshes, invalid_grant;
	int64_t rate_limited, errors_injected, timeouts_injected, drops_injected;
	int64_t webhooks_sent;
	int64_t in_flight;
	int64_t gates_opened, gate_waiting; /* /_sim/faults gate */
	struct htab routes;		    /* "METHOD /template" -> struct route_stats */
};

/* ---- rate limiting ---- */

struct rl_bucket {
	int64_t window_start_ms;
	int64_t count;
	int64_t day;
	int64_t day_count;
};

struct rl_info {
	int64_t max, remaining, interval_ms, daily_max, daily_remaining;
	int64_t retry_after_s; /* > 0 when limited */
	int limited;
};

/* ---- the simulator ---- */

struct sim_pending; /* a response that waits (latency) or never comes (timeout) */

struct sim {
	struct sim_config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct event *sigterm, *sigint, *reaper;
	struct sim_store store;
	struct sim_stats stats;
	struct htab buckets; /* "client\x1fresource" -> struct rl_bucket */
	struct sim_rng rng[RNG_NSTREAMS];
	EVP_PKEY *webhook_key;
	struct sim_pending *pending; /* doubly linked */
	struct vec deliveries;	     /* outgoing webhook deliveries */
	int64_t started_ms;
	struct vec calls; /* the per-token request log (sim_calls.c) */
	int64_t calls_seq, calls_dropped;
};

/* ---- one API request being answered ---- */

enum auth_need { AUTH_NONE, AUTH_COMPANY, AUTH_LOCATION, AUTH_ANY };
enum version_need { VER_NONE, VER_ANY, VER_SAAS };

#define SIM_MAX_SEGS 10

struct sim_ctx;
typedef void (*sim_handler)(struct sim_ctx *c);

struct sim_route {
	enum evhttp_cmd_type method;
	const char *tmpl; /* e.g. "/locations/{locationId}"; also the stats key */
	enum auth_need auth;
	enum version_need version;
	sim_handler fn;
	const char *stats_key; /* "GET /locations/{locationId}" */
};

struct sim_ctx {
	struct sim *s;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *method_name;
	char *path; /* decoded, without query */
	char *segbuf;
	char *seg[SIM_MAX_SEGS];
	int nseg;
	struct evkeyvalq query;
	const struct sim_route *route;
	struct sim_token *tok;
	struct json *body;
	int status;
	struct buf out;
	char trace_id[40];
	struct rl_info rl;
	int have_rl;
	int admin;    /* /_sim/ endpoints: no faults, no rate headers */
	int deferred; /* the handler answers later (webhook delivery) */
	int64_t start_ms;
};

/* sim_main.c */
extern const char sim_usage_text[];

/* sim_config.c */
/* Applies GHL_SIM_* env then argv; 0 or -1 with e->msg. */
int sim_config_load(struct sim_config *cfg, int argc, char **argv, struct err *e);
void sim_config_free(struct sim_config *cfg);
/* Splits "HOST:PORT"; host is malloc'd. */
int sim_parse_listen(const char *s, char **host, int *port, struct err *e);

/* sim_rand.c */
void sim_rng_init(struct sim *s);
uint64_t sim_rng_next(struct sim *s, enum sim_stream st);
double sim_rng_double(struct sim *s, enum sim_stream st); /* [0,1) */
void sim_rng_bytes(struct sim *s, enum sim_stream st, unsigned char *out, size_t n);
/* New 20-char alphanumeric id (malloc'd). */
char *sim_new_id(struct sim *s);
/* New opaque token "prefix" + base64url(48 random bytes) (malloc'd). */
char *sim_new_token(struct sim *s, const char *prefix);
void sim_new_trace_id(struct sim *s, char out[40]);
/* base64 (standard alphabet, padded) of n bytes into a malloc'd string. */
char *sim_base64(const unsigned char *p, size_t n);
void sim_sha256_hex(const char *s, char out[65]);

/* sim_store.c */
void sim_store_init(struct sim *s);
void sim_store_free(struct sim *s);
void sim_store_reset(struct sim *s);
struct sim_company *sim_company_get_or_create(struct sim *s, const char *id, const char *name);
struct sim_snapshot *sim_snapshot_get(struct sim *s, const char *company_id, const char *id);
struct sim_snapshot *sim_snapshot_add(struct sim *s, const char *company_id, const char *id,
				      const char *name, const char *type);
struct sim_token *sim_token_issue(struct sim *s, enum tok_kind kind, enum tok_class cls,
				  const char *company_id, const char *location_id,
				  const char *user_id, const char *scope);
struct sim_token *sim_token_find(struct sim *s, const char *token);
struct sim_code *sim_code_issue(struct sim *s, const char *company_id, const char *location_id,
				const char *redirect_uri, const char *scope);
struct sim_location *sim_location_get(struct sim *s, const char *id);
void sim_location_delete(struct sim *s, struct sim_location *loc);
void sim_location_free(struct sim_location *loc);
char *sim_lower(const char *s);

/* sim_http.c */
int sim_http_start(struct sim *s, struct err *e);
/* 1 when key is the stats key of an API route ("POST /users/"). */
int sim_route_known(const char *key);
void sim_http_stop(struct sim *s);
/* Response helpers: set c->status and write c->out. */
void sim_json_begin(struct sim_ctx *c, struct jw *w, int status);
void sim_json_end(struct sim_ctx *c, struct jw *w);
void sim_error(struct sim_ctx *c, int status, const char *message);
/* 422 with message array; msgs is NULL-terminated style vector of char*. */
void sim_error_422(struct sim_ctx *c, struct vec *msgs);
void sim_oauth_error(struct sim_ctx *c, int status, const char *error, const char *desc);
/* Parses the JSON body into c->body; on failure answers 400 and returns -1.
 * An empty body gives an empty object. Non-objects are refused. */
int sim_body_json(struct sim_ctx *c);
/* Body as NUL-terminated string (malloc'd). */
char *sim_body_string(struct sim_ctx *c);
const char *sim_query(struct sim_ctx *c, const char *key);
/* Sends c's response now (admin paths) or through the fault machinery. */
void sim_finish(struct sim_ctx *c);
/* Opens the gate (/_sim/faults gate) when enough answers wait, or lets the
 * waiting ones go when it was switched off. */
void sim_gate_check(struct sim *s);
void sim_log_request(struct sim_ctx *c, int status, const char *note);
/* Token's access to a company / location; on failure answers 403 and returns -1. */
int sim_check_company(struct sim_ctx *c, const char *company_id);
int sim_check_location(struct sim_ctx *c, struct sim_location *loc);
/* Looks up a location by id for the token; on failure answers and returns NULL. */
struct sim_location *sim_location_for(struct sim_ctx *c, const char *id);
void sim_record_status(struct sim *s, const char *key, int status);

/* sim_ratelimit.c */
void sim_rl_check(struct sim *s, const struct sim_token *t, int64_t now_ms, struct rl_info *out);
void sim_rl_nominal(struct sim *s, struct rl_info *out);
void sim_rl_free(struct sim *s);

/* sim_oauth.c */
void sim_h_chooselocation(struct sim_ctx *c);
void sim_h_oauth_token(struct sim_ctx *c);
void sim_h_location_token(struct sim_ctx *c);
void sim_write_token_response(struct sim_ctx *c, struct sim_token *at, struct sim_token *rt,
			      int status);

/* sim_locations.c */
void sim_h_location_create(struct sim_ctx *c);
void sim_h_location_get(struct sim_ctx *c);
void sim_h_location_update(struct sim_ctx *c);
void sim_h_location_delete(struct sim_ctx *c);
void sim_h_location_search(struct sim_ctx *c);
void sim_h_snapshots_list(struct sim_ctx *c);
void sim_h_snapshot_status(struct sim_ctx *c);
void sim_h_snapshot_share(struct sim_ctx *c);
/* Status of a location's latest snapshot push into w (an object value). */
void sim_write_push(struct sim *s, struct jw *w, const struct sim_location *loc, int64_t now_ms);

/* sim_users.c */
void sim_h_user_create(struct sim_ctx *c);
void sim_h_user_search(struct sim_ctx *c);
void sim_h_user_get(struct sim_ctx *c);
void sim_user_free(struct sim_user *u);

/* sim_misc.c */
void sim_h_cv_list(struct sim_ctx *c);
void sim_h_cv_create(struct sim_ctx *c);
void sim_h_cv_get(struct sim_ctx *c);
void sim_h_cv_update(struct sim_ctx *c);
void sim_h_cv_delete(struct sim_ctx *c);
void sim_h_cf_list(struct sim_ctx *c);
void sim_h_cf_create(struct sim_ctx *c);
void sim_h_cf_delete(struct sim_ctx *c);
void sim_h_tag_create(struct sim_ctx *c);
void sim_h_tag_list(struct sim_ctx *c);
void sim_h_contact_create(struct sim_ctx *c);
void sim_h_contact_upsert(struct sim_ctx *c);
void sim_h_saas_enable(struct sim_ctx *c);
/* Validation helpers shared by handlers. */
int sim_is_email(const char *s);
/* Checks a required non-empty string field; appends messages to msgs. */
const char *sim_req_str(const struct json *o, const char *key, const char *label, struct vec *msgs);
const char *sim_opt_str(const struct json *o, const char *key, const char *label, struct vec *msgs);
void sim_msgs_free(struct vec *msgs);
/* ISO 8601 UTC with milliseconds, e.g. 2024-05-01T12:00:00.000Z. */
void sim_iso_time(int64_t ms, char out[32]);

/* sim_calls.c */
/* Log c's request (token-authenticated API requests only) with its final status. */
void sim_calls_record(struct sim_ctx *c, int status);
void sim_calls_clear(struct sim *s);
/* /_sim/calls, /_sim/calls/reset: answers and returns 1, else 0. */
int sim_calls_admin(struct sim_ctx *c);

/* sim_drift.c: /_sim/locations/{id}, /_sim/locations/{id}/push, /_sim/users/{id}:
 * answers and returns 1, else 0. */
int sim_drift_admin(struct sim_ctx *c);

/* sim_pushes.c */
void sim_h_snapshot_pushes(struct sim_ctx *c);

/* sim_golive.c: the go-live store (s->store.golive) and shared answers */
/* The store's member name, made (an array or an object) on first use. */
struct json *sim_golive(struct sim *s, const char *name, int array);
/* obj's member key, made (an array or an object) when missing. */
struct json *sim_golive_member(struct json *obj, const char *key, int array);
/* Frees arr's item i and closes the gap. */
void sim_golive_remove(struct json *arr, size_t i);
/* 422 with msgs (freed) when there are any: -1; else 0. */
int sim_golive_422(struct sim_ctx *c, struct vec *msgs);
void sim_golive_wrapped(struct sim_ctx *c, int status, const char *key, const struct json *v);
void sim_golive_success(struct sim_ctx *c, int status, const char *msg);

/* sim_phone.c */
void sim_h_phone_available(struct sim_ctx *c);
void sim_h_phone_purchase(struct sim_ctx *c);
void sim_h_phone_list(struct sim_ctx *c);

/* sim_calendars.c */
void sim_h_calendar_list(struct sim_ctx *c);
void sim_h_calendar_create(struct sim_ctx *c);
void sim_h_calendar_delete(struct sim_ctx *c);

/* sim_saas.c */
void sim_h_saas_subscription(struct sim_ctx *c);
void sim_h_saas_pause(struct sim_ctx *c);
void sim_h_saas_rebilling(struct sim_ctx *c);

/* sim_menus.c */
void sim_h_menu_list(struct sim_ctx *c);
void sim_h_menu_create(struct sim_ctx *c);
void sim_h_menu_delete(struct sim_ctx *c);

/* sim_user_update.c */
void sim_h_user_update(struct sim_ctx *c);

/* sim_admin.c */
void sim_admin_dispatch(struct sim_ctx *c);

/* sim_webhooks.c */
int sim_webhook_key_load(struct sim *s, struct err *e);
int sim_webhook_print_key(struct sim *s, struct err *e);
void sim_h_webhook_send(struct sim_ctx *c);
void sim_webhooks_stop(struct sim *s);

#endif
