/* api.h — what every /api/v1 handler shares: authentication (sessions,
 * cookies + CSRF, API keys) into a `struct principal`, role and agency-scope
 * checks, JSON bodies read and validated against a field spec, query strings,
 * cursor pagination, database calls and replies in the DESIGN error shape.
 *
 * A handler declares a `struct api_endpoint` and hands the request over:
 *
 *     static const struct api_endpoint ep_get = {
 *             .allow = API_ALLOW_STAFF | API_ALLOW_API_KEY, .agency_scoped = 1};
 *     static void get_agency(struct api_req *r) { ... api_query(r, sql, ...); }
 *     static void h_get_agency(struct http_ctx *c) { api_handle(c, &ep_get, get_agency); }
 *
 * api_handle answers on its own — 401 (no, bad, expired or revoked
 * credentials), 403 (cookie session without a matching X-CSRF-Token on an
 * unsafe method; a role the endpoint does not allow), 404 (params[0] names an
 * agency outside the caller's scope, or a {param} is not a UUID: never 403,
 * so nothing leaks about other agencies), 400 (unknown query parameter,
 * malformed JSON or cursor), 413 (body too large, or over a JSON limit
 * below), 415 and 422 (body problems, each listed in
 * `details` as {"field": "a.b[2]", "message": "..."}), 429 (a GET or HEAD
 * while the caller's read bucket is empty: api_rate_take) — and only then calls
 * the handler with a struct api_req. The request ends with one api_reply_*;
 * after it, r is freed.
 *
 * SQL: always parameters ($1 …), never text built from input.
 */
#ifndef GHL_API_H
#define GHL_API_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct app;
struct http_ctx;
struct json;
struct evkeyvalq;
struct auth_pool;
struct throttle;

/* ---- principal --------------------------------------------------------- */

enum principal_kind { PRINCIPAL_NONE, PRINCIPAL_SESSION, PRINCIPAL_API_KEY };
enum api_role { API_ROLE_NONE, API_ROLE_ADMIN, API_ROLE_AGENCY_ADMIN, API_ROLE_SUPPORT };

#define API_UUID_LEN 37 /* 36 characters + NUL */

/* Who is calling. Sessions carry a user; API keys carry their agency. */
struct principal {
	enum principal_kind kind;
	enum api_role role;	       /* API_ROLE_NONE for API keys */
	char user_id[API_UUID_LEN];    /* sessions */
	char session_id[API_UUID_LEN]; /* sessions */
	char *email;		       /* sessions */
	int via_cookie;		       /* session taken from the cookie (CSRF applies) */
	char api_key_id[API_UUID_LEN]; /* API keys */
	/* Agencies in scope: AGENCY_ADMIN: the linked, not deleted agencies;
	 * API key: its agency (agency_ids[0]); ADMIN, SUPPORT: unused (all). */
	char **agency_ids;
	size_t nagencies;
};

const char *api_role_name(enum api_role r);  /* "ADMIN" …, or NULL */
enum api_role api_role_parse(const char *s); /* API_ROLE_NONE when unknown */

/* 1 when p may see agency_id (ADMIN and SUPPORT see all). */
int api_agency_in_scope(const struct principal *p, const char *agency_id);
/* For SQL filters: NULL when p sees every agency, else a malloc'd uuid[]
 * literal "{id,…}" (possibly "{}") of the agencies in scope, to be bound as
 * `($n::uuid[] IS NULL OR agency_id = ANY($n::uuid[]))`. */
char *api_scope_array(const struct principal *p);
/* 1 when p may change agency_id's settings, API keys, snapshots, jobs:
 * ADMIN, or AGENCY_ADMIN linked to it. */
int api_can_manage_agency(const struct principal *p, const char *agency_id);

/* ---- field specs and validation --------------------------------------- */

enum api_type {
	API_T_STRING,
	API_T_INT,
	API_T_NUMBER,
	API_T_BOOL,
	API_T_OBJECT,
	API_T_ARRAY,
	API_T_UUID,  /* a string holding a UUID (format "uuid") */
	API_T_EMAIL, /* a string holding an email address (format "email", formats.h) */
	API_T_ANY,
};

#define API_F_REQUIRED 0x1
#define API_F_NULLABLE 0x2 /* null accepted (as "clear") */

/* One field of a JSON object. Lists end with an entry whose name is NULL. */
struct api_field {
	const char *name;
	enum api_type type;
	unsigned flags;
	size_t min_len;			/* strings: characters; arrays: items */
	size_t max_len;			/* strings: characters; arrays: items; 0 = no cap */
	const char *const *one_of;	/* strings: allowed values, NULL-terminated */
	const struct api_field *fields; /* objects: known keys (others are refused); NULL = any */
	const struct api_field *items;	/* arrays: one spec for every item; NULL = any */
	int64_t min, max;		/* integers: range, applied when min < max */
};

/* Problems found in a request: schema.h's problems list, which is the 422's
 * `details`, and what the reply's message needs besides it. */
struct api_problems {
	struct json *list;  /* [{"field", "message"}, …]; NULL until the first problem */
	size_t n;	    /* the problems in list */
	struct buf unknown; /* "a, b.c" — the unknown fields api_validate found */
	size_t nunknown;
};

/* How many problems the 422's message names (the details list them all). */
#define API_PROBLEMS_NAMED 3
void api_problems_init(struct api_problems *p);
void api_problems_clear(struct api_problems *p);
void api_problem(struct api_problems *p, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The list as JSON text (malloc'd); "[]" when none. */
char *api_problems_json(const struct api_problems *p);

/* Check object v against fields, as the JSON Schema they describe (a closed
 * object: "properties", "required", "additionalProperties": false), with
 * schema_validate (schema.h): every problem (unknown or duplicate field,
 * missing required field, wrong type, enum, length, range, format) is added
 * to p with its path under `prefix` (NULL or "" for the top) and schema.h's
 * message ("required", "expected string, got integer", "unknown field", …).
 * Returns the problems added. */
size_t api_validate(const struct json *v, const struct api_field *fields, const char *prefix,
		    struct api_problems *p);

/* ---- pagination -------------------------------------------------------- */

#define API_PAGE_DEFAULT 50
#define API_PAGE_MAX 200

/* Opaque cursor = base64url("<created_at>|<id>"); created_at as rendered by
 * API_SQL_CURSOR_TS ("YYYY-MM-DDTHH:MM:SS.ffffff"). Malloc'd. */
char *api_cursor_encode(const char *created_at, const char *id);
/* 0 and malloc'd *created_at, *id when cursor is well formed; else -1. */
int api_cursor_decode(const char *cursor, char **created_at, char **id);

/* SQL fragments: a column as the cursor's timestamp text, and as the API's
 * UTC ISO-8601 output. Both work on timestamp and timestamptz columns. */
#define API_SQL_CURSOR_TS(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
/* clang-format off */
#define API_SQL_ISO(col)                                                                      \
	"to_char(" col "::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* clang-format on */

struct api_page {
	int limit;	/* 1..API_PAGE_MAX */
	char *after_ts; /* NULL on the first page */
	char *after_id;
};

/* ---- the request ------------------------------------------------------- */

/* Who may call (bits of api_endpoint.allow). */
#define API_ALLOW_ADMIN 0x01u
#define API_ALLOW_AGENCY_ADMIN 0x02u
#define API_ALLOW_SUPPORT 0x04u
#define API_ALLOW_API_KEY 0x08u
#define API_ALLOW_PUBLIC 0x10u /* no authentication at all */
#define API_ALLOW_STAFF (API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN | API_ALLOW_SUPPORT)
#define API_ALLOW_ANY (API_ALLOW_STAFF | API_ALLOW_API_KEY)

struct api_endpoint {
	unsigned allow;
	int agency_scoped;	      /* params[0] names an agency: checked against scope */
	int raw_params;		      /* {params} are not UUIDs (skip the 404 check) */
	const struct api_field *body; /* a JSON object is required; NULL = body ignored */
	const char *const *query;     /* accepted query parameters; NULL = none */
	size_t max_body;	      /* 0 = max_body_bytes from the config */
};

struct api_req;
struct api_qproblems;
typedef void (*api_handler_fn)(struct api_req *r);
typedef void (*api_result_fn)(struct api_req *r, PGresult *res);

struct api_req {
	struct http_ctx *c;
	struct app *app;
	const struct api_endpoint *ep;
	struct principal who;
	struct json *body;	 /* the validated body, or NULL */
	struct evkeyvalq *query; /* parsed query string */
	api_handler_fn fn;
	void *data; /* the handler's state, freed with data_free */
	void (*data_free)(void *);
	const char *conflict_msg; /* api_query: message for a unique violation */
	char key_hash[65];	  /* internal: the API key's hash while it is looked up */
	api_result_fn qcb;	  /* internal: api_query's pending callback */
	struct api_qproblems *qp; /* internal: query-string problems until api_query_ok */
};

/* JSON bodies are parsed with these limits before anything else looks at
 * them, so the work one request can cause is linear in its size: nesting
 * depth (JSON_DEFAULT_MAX_DEPTH, json.h), members per object, items per array
 * (the largest batch of jobs). */
#define API_JSON_MAX_MEMBERS 1000
#define API_JSON_MAX_ITEMS 10000

/* Parse a request body with the limits above. NULL after replying: 400
 * malformed_json, or 413 json_limit_exceeded naming the limit. */
struct json *api_parse_json(struct api_req *r, const char *text, size_t len);

/* Authenticate, check, read the body, then call fn (see the top). */
void api_handle(struct http_ctx *c, const struct api_endpoint *ep, api_handler_fn fn);

/* {param} i of the route (NULL when absent). */
const char *api_param(const struct api_req *r, int i);
/* Query parameters, one rule for every endpoint: an empty value is the same
 * as an absent one (`?niche=` filters nothing), and a bad value is collected
 * on the request instead of answered at once, so that one 400 lists every
 * problem ({"field": "status", "message": "must be …"} per parameter).
 * Read and check all parameters first, then call api_query_ok (api_page_parse
 * does, after limit and cursor). */
/* The value, or NULL when absent or empty. */
const char *api_query_param(const struct api_req *r, const char *name);
/* Collect a problem with parameter `name` ("must be …"). */
void api_query_problem(struct api_req *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 0 when no problem was collected; else -1 after replying 400 listing them
 * all (code invalid_parameter, or invalid_cursor when the cursor is the only one). */
int api_query_ok(struct api_req *r);
/* Query integer in [min, max], def when absent: 0, or -1 with a problem collected. */
int api_query_int(struct api_req *r, const char *name, long long min, long long max, long long def,
		  long long *out);
/* Query boolean (true/false/1/0) into *out (-1 when absent): 0, or -1 with a
 * problem collected. */
int api_query_bool(struct api_req *r, const char *name, int *out);
/* `limit` and `cursor` from the query, then api_query_ok: 0, or -1 after
 * replying 400 with every problem collected so far. */
int api_page_parse(struct api_req *r, struct api_page *pg);
void api_page_clear(struct api_page *pg);
/* A LIKE pattern matching s literally anywhere ("%s%" with \ % _ escaped). */
char *api_like_contains(const char *s);
/* A list's optional filter: when value is set, it becomes params[*n] (*n
 * grows by one) and fragment — whose one "%d" stands for that $n, as in
 * " AND j.status = $%d" — is appended to sql. Filters absent leave no
 * `$n IS NULL OR …` behind to hide an index from the planner. */
void api_sql_filter(struct buf *sql, const char **params, int *n, const char *value,
		    const char *fragment);
/* 1 when s is a canonical UUID (8-4-4-4-12 hex). */
int api_is_uuid(const char *s);

/* Database: run a parameterised query; cb gets only successful results.
 * Failures are answered here: unique violation → 409 (r->conflict_msg),
 * foreign key → 422, bad input syntax → 400, anything else → 500 (logged). */
void api_query(struct api_req *r, const char *sql, int nparams, const char *const *params,
	       api_result_fn cb);

/* Replies; each ends the request and frees r. */
void api_reply_json(struct api_req *r, int status, const char *json);
void api_reply_empty(struct api_req *r, int status); /* e.g. 204 */
void api_reply_error(struct api_req *r, int status, const char *code, const char *message,
		     const char *details_json);
/* 422 with p's details (unknown fields named in the message); frees p. */
void api_reply_problems(struct api_req *r, struct api_problems *p);
void api_reply_not_found(struct api_req *r, const char *what);
/* The one row's column 0 (a JSON text) as 200, or 404 "<what> not found"
 * when the query found none (an object outside the caller's scope too). */
void api_reply_one(struct api_req *r, PGresult *res, const char *what);
/* 500 and a log line with the reason (never shown to the caller). */
void api_reply_internal(struct api_req *r, const char *why);
/* {"items":[<col json_col of each row>…], "next_cursor": …} from rows fetched
 * with LIMIT limit+1 ordered by (created_at, id) DESC. */
void api_reply_page(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
		    int limit);
/* The same, each item passed through map (returns a new malloc'd text). */
typedef char *(*api_row_map_fn)(const char *json);
void api_reply_page_map(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
			int limit, api_row_map_fn map);
/* The same (map may be NULL), trailing rows whose json_col is NULL left out
 * (a page LEFT JOINed to a one-row total), and `extra` (",\"total\":3", or
 * NULL) added after next_cursor. */
void api_reply_page_extra(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
			  int limit, api_row_map_fn map, const char *extra);
/* End r without an API reply, for handlers that answered on r->c
 * themselves (HTML pages, redirects); frees r. */
void api_req_done(struct api_req *r);
/* The value of cookie `name` in a Cookie header (malloc'd) or NULL. */
char *api_cookie_value(const char *header, const char *name);
/* Add a response header before replying (Set-Cookie, Retry-After, …). */
void api_add_header(struct api_req *r, const char *name, const char *value);

/* ---- fair use (api_ratelimit.c) ---------------------------------------- */

/* Each API key and each user has one token bucket per class, sized by the
 * rate_limit_* config keys. api_handle takes a read token for every GET and
 * HEAD of an authenticated caller; job submissions take one per job (a batch:
 * its rows). */
enum api_rate_class { API_RATE_READ, API_RATE_SUBMIT };

/* Take cost tokens from the caller's bucket of class cls: 0, with the
 * RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset headers added to
 * the answer; or -1 after replying 429 rate_limited with Retry-After (r is
 * gone). 0 without headers when the class is off (per minute = 0) or the
 * request has no caller. */
int api_rate_take(struct api_req *r, enum api_rate_class cls, size_t cost);

/* ---- module state (app->api) ------------------------------------------- */

/* Checks agencies.settings_json on PATCH /agencies/{id}; 0 when valid, else
 * problems added (with paths under "settings"). The job engine installs its
 * pipeline validation here; the default accepts any JSON object. */
typedef int (*api_settings_validator)(void *arg, const struct json *settings,
				      struct api_problems *out);

/* Valid API keys are cached this long per process (api_key_cache.c): a key
 * revoked (or an agency deleted) through another process stops working
 * within this time; through this one, at once. */
#define API_KEY_CACHE_TTL_MS 5000

struct api_key_cache;
struct api_rate;

struct api_state {
	struct api_key_cache *key_cache;
	struct api_rate *rate; /* fair-use buckets (api_ratelimit.c) */
	struct auth_pool *pool;
	struct throttle *throttle_account;
	struct throttle *throttle_address;
	int logins_pending; /* admitted, not answered (≤ login_max_pending) */
	api_settings_validator validate_settings;
	void *validate_settings_arg;
};

int api_settings_accept_objects(void *arg, const struct json *settings, struct api_problems *out);
/* The job engine's check (core/api/api_steps.c): an object whose pipeline passes
 * pipeline_validate against arg's (a struct app *) step registry; problems
 * named "settings.pipeline[2].config.role". Installed by `serve`. */
int api_settings_validate_pipeline(void *arg, const struct json *settings,
				   struct api_problems *out);

/* Settings being saved (or a pipeline being dry-run) keep the stored secret
 * wherever they carry the mask a read showed (pipeline_keep_secrets against
 * stored_text, the agency's settings_json). 0, or -1 after replying 422. */
int api_settings_keep_secrets(struct api_req *r, struct json *settings, const char *stored_text);

/* Forget every cached API key (after a revocation or an agency deletion). */
void api_key_cache_clear(struct app *app);

/* Start/stop the API module (auth worker pool, throttles) on app. */
int api_start(struct app *app, struct err *e);
void api_stop(struct app *app);

/* ---- audit (api_audit.c) ----------------------------------------------- */

/* A change and its audit_log row are written by one statement, so that a
 * change never commits without its row and a failed change leaves none:
 * append a data-modifying CTE that inserts from the CTE that changed rows,
 *
 *     WITH ch AS (UPDATE things SET … WHERE … RETURNING id, agency_id),
 *      au AS (" API_AUDIT_INSERT " SELECT $5::uuid, $6::uuid, 'thing.update',
 *             ch.agency_id, ch.id::text, $7::jsonb FROM ch)
 *     SELECT … FROM ch
 *
 * with $5 = api_audit_user(r) and $6 = api_audit_key(r) (the caller; NULL
 * for the other kind), and $7 a diff or NULL. A change that matched no row
 * writes no audit row. action is "object.verb" in lower case (agency.update,
 * api_key.create, job.retry, task.complete, …); target names the object
 * (its id). Diffs never carry secrets: mask both sides first
 * (pipeline_mask_secrets). GET /api/v1/audit lists the rows. */
#define API_AUDIT_INSERT \
	"INSERT INTO audit_log (actor_user_id, actor_key_id, action, agency_id, target, diff)"
const char *api_audit_user(const struct api_req *r); /* the session's user, or NULL */
const char *api_audit_key(const struct api_req *r);  /* the API key, or NULL */
/* What changed from before to after, as a JSON array of {"path": "settings.
 * pipeline[1].config.role", "from": …, "to": …} (malloc'd; "[]" when equal):
 * objects member by member, arrays item by item, paths under prefix. */
char *api_audit_diff(const struct json *before, const struct json *after, const char *prefix);

#endif
