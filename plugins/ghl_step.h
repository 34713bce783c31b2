/* ghl_step.h — the step-plugin ABI of the GHL Provisioning Agent.
 *
 * This header is all a step plugin includes; plugins never link against the
 * agent. A plugin is a shared object exporting an entry function that returns
 * its descriptor: ghl_plugin_entry_<stem> for a file <stem>.so (what
 * GHL_STEP_PLUGIN() defines), or plain ghl_plugin_entry (ABI 1.0). The agent
 * checks, in this order:
 *   1. descriptor->abi_major == GHL_STEP_ABI_MAJOR of the host;
 *   2. descriptor->abi_minor <= the host's GHL_STEP_ABI_MINOR;
 *   3. the struct sizes the plugin was built with (plugin_size, step_def_size)
 *      are at least ABI 1.0's and at most the host's: members a plugin built
 *      against an older header does not have read as zero (NULL);
 *   4. every step has a name and run(), its config schema parses, and no step
 *      name is already registered (built-in, plugin or Lua script);
 *   5. init() returns 0.
 * A plugin failing any check is refused, all its steps with it, with a message
 * naming the file and the reason; the agent runs on without it. On SIGHUP the
 * agent loads the plugins whose files changed: new jobs get the new version,
 * runs in flight finish with the one they started with, and a refused new
 * version leaves the running one in place.
 *
 * Compatibility rules (SQLite's sqlite3_api_routines, GStreamer's versions):
 *   - the structs below only ever grow AT THEIR END; a new member bumps
 *     GHL_STEP_ABI_MINOR. A plugin built against minor N may use every member
 *     of minor N (the host refuses plugins newer than itself).
 *   - anything else changing (a member's meaning, order or type) bumps MAJOR.
 *
 * A plugin file, with the boilerplate in two macros (see the end of this
 * header, and docs/examples/plugin/ for a complete one):
 *
 *   #include <ghl_step.h>
 *   GHL_STEP_HOST;                       // `host`, the host function table
 *   static int hello_run(ghl_step_ctx *ctx) { ...; return GHL_STEP_DONE; }
 *   static const struct ghl_step_def steps[] = {
 *           {"HELLO", "1.0.0", NULL, "greets", hello_run, NULL,
 *            GHL_CLIENT_FIELDS("name")}};
 *   GHL_STEP_PLUGIN(hello, "1.0.0", NULL, steps)   // for hello.so
 *
 * Concurrency: a step never blocks. run() is a re-entrant state machine:
 *   - it returns GHL_STEP_DONE when finished (outputs set with set_output),
 *   - GHL_STEP_WAIT after starting exactly one asynchronous operation
 *     (request(), http_post() or sleep_ms()); the agent calls run() again
 *     when it has completed, with phase() as the step left it (set_phase()),
 *   - GHL_STEP_FAIL after calling fail().
 * Thousands of runs may be waiting at once in one process; all calls happen
 * on the agent's event-loop thread. Keep per-run state in phase() (where the
 * state machine is) and set_state() (anything else: a page, an index), not
 * in globals.
 *
 * Memory: strings the host returns stay valid until run() returns (they live
 * in a per-call arena); copy what you keep. Strings you pass are copied.
 */
#ifndef GHL_STEP_H
#define GHL_STEP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GHL_STEP_ABI_MAJOR 1
#define GHL_STEP_ABI_MINOR 3

/* The symbol the loader looks up with dlsym(): GHL_PLUGIN_ENTRY "_" <stem>
 * first — the file's name without its directory and without everything from
 * the first '.', other characters than letters and digits read as '_'
 * ("create_location.so": ghl_plugin_entry_create_location) — then
 * GHL_PLUGIN_ENTRY alone. A per-plugin name lets several plugins be linked
 * into one program. */
#define GHL_PLUGIN_ENTRY "ghl_plugin_entry"

typedef struct ghl_step_ctx ghl_step_ctx; /* one run of one step for one job */
typedef struct ghl_json ghl_json;	  /* a JSON text being built (json_new) */

enum ghl_step_result {
	GHL_STEP_DONE = 0,
	GHL_STEP_WAIT = 1,
	GHL_STEP_FAIL = 2,
};

enum ghl_log_level { GHL_LOG_DEBUG = 0, GHL_LOG_INFO = 1, GHL_LOG_WARN = 2, GHL_LOG_ERROR = 3 };

/* Which token a GHL request carries. */
enum ghl_token_class {
	GHL_TOKEN_AGENCY = 0,  /* the agency (Company) token */
	GHL_TOKEN_LOCATION = 1 /* a token for the job's location (outputs.location_id) */
};

/* What get_type() finds at a path (anchors: SQLite's sqlite3_value_type,
 * Redis's RedisModule_CallReplyType). */
enum ghl_type {
	GHL_TYPE_ABSENT = 0, /* nothing there: no such source, key or index */
	GHL_TYPE_NULL = 1,   /* a JSON null */
	GHL_TYPE_BOOL = 2,
	GHL_TYPE_INT = 3,    /* a number written without fraction or exponent, in int64 range */
	GHL_TYPE_NUMBER = 4, /* any other number */
	GHL_TYPE_STRING = 5,
	GHL_TYPE_ARRAY = 6,
	GHL_TYPE_OBJECT = 7,
};

/* A path into a source (ABI 1.1): the keys from the document's root, ending
 * with NULL. In an object a key is used as it is, whatever characters it has
 * ('.', '[', '"', non-ASCII); in an array it must be a decimal index ("0").
 * NULL, or a path of no keys, is the whole document. GHL_PATH() builds one in
 * place: host->get_string(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", name)).
 * (A C compound literal; C++ callers declare the array.) */
#define GHL_PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Sources readable with get() and the get_*() functions. */
#define GHL_SRC_JOB "job" /* {"id","agency_id","company_id","snapshot":{...}|null,"attempt"} */
#define GHL_SRC_CLIENT "client"	    /* the job's client_data_json */
#define GHL_SRC_CONFIG "config"	    /* this step's config from the pipeline */
#define GHL_SRC_OUTPUTS "outputs"   /* outputs of earlier steps, merged: {"location_id":..} */
#define GHL_SRC_RESPONSE "response" /* the body of the last completed request() */

struct ghl_host_api {
	uint32_t size; /* sizeof(struct ghl_host_api) in the host */
	uint32_t abi_major;
	uint32_t abi_minor;

	/* Write to the step's journal details and the agent log. printf-style. */
	void (*log)(ghl_step_ctx *ctx, int level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* Read a value: path is "" for the whole document, or dotted keys with
	 * [index] for arrays: "custom_values.welcome_text", "tags[0]".
	 * Returns strings unquoted, numbers/booleans/null as their JSON text,
	 * objects/arrays as compact JSON; NULL when absent. */
	const char *(*get)(ghl_step_ctx *ctx, const char *source, const char *path);

	/* Record an output of this step (json_value: any JSON text, e.g. a quoted
	 * string from quote()). Later steps read it under GHL_SRC_OUTPUTS.
	 * The key "location_id" is also stored on the job itself. 0 or -1. */
	int (*set_output)(ghl_step_ctx *ctx, const char *key, const char *json_value);

	/* Start a GHL request; return GHL_STEP_WAIT right after. path starts with
	 * '/', query is percent-encoded or NULL, json_body NULL for none. The
	 * client applies Version, auth, refresh on 401, and the rate budget. */
	int (*request)(ghl_step_ctx *ctx, const char *method, const char *path, const char *query,
		       const char *json_body, int token_class);

	/* Status of the last completed request (0: no reply), and GHL's message
	 * for errors (422 arrays joined) or NULL. */
	int (*response_status)(ghl_step_ctx *ctx);
	const char *(*response_message)(ghl_step_ctx *ctx);

	/* Fail this run: retryable (1) or permanent (0); return GHL_STEP_FAIL. */
	int (*fail)(ghl_step_ctx *ctx, int retryable, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	/* Fail the way the last response says: 401/429/5xx/timeout → retryable,
	 * other 4xx → permanent with GHL's message, prefixed by `what`. */
	int (*fail_from_response)(ghl_step_ctx *ctx, const char *what);

	/* The state machine's position, 0 on the first call of a run. */
	int (*phase)(ghl_step_ctx *ctx);
	void (*set_phase)(ghl_step_ctx *ctx, int phase);

	/* Ask to be called again after ms milliseconds; return GHL_STEP_WAIT. */
	int (*sleep_ms)(ghl_step_ctx *ctx, int ms);

	/* Helpers so plugins need no JSON or string library:
	 * quote(): s as a JSON string literal ("…" escaped; NULL → null);
	 * format(): printf into the per-call arena;
	 * urlencode(): percent-encode a query value. */
	const char *(*quote)(ghl_step_ctx *ctx, const char *s);
	const char *(*format)(ghl_step_ctx *ctx, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	const char *(*urlencode)(ghl_step_ctx *ctx, const char *s);

	/* HMAC-SHA256(key, msg) as lowercase hex (for signing webhooks). */
	const char *(*hmac_sha256_hex)(ghl_step_ctx *ctx, const char *key, const char *msg);

	/* POST json_body to an absolute https/http URL outside GHL (webhooks);
	 * headers: "Name: value\n"-separated or NULL. Completes like request(). */
	int (*http_post)(ghl_step_ctx *ctx, const char *url, const char *headers,
			 const char *json_body);
	/* Number of members of the array/object at path (0 when absent or
	 * scalar), and the key of an object's i-th member (NULL past the end),
	 * for iterating: get(ctx, src, "tags[2]"), get(ctx, src, "custom_values.k"). */
	size_t (*count)(ghl_step_ctx *ctx, const char *source, const char *path);
	const char *(*key_at)(ghl_step_ctx *ctx, const char *source, const char *path, size_t i);

	/* A random URL-safe string from `bytes` random bytes (passwords, nonces). */
	const char *(*random_token)(ghl_step_ctx *ctx, int bytes);

	/* ---- ABI 1.1 ---- */

	/* Typed reads at a path (see GHL_PATH). get_type() tells absent from
	 * JSON null. The others answer only for their own type:
	 * get_string(): the string (NULL when absent or not a string);
	 * get_int() / get_number() / get_bool(): 0 and *out set, or -1 (absent or
	 * another type; *out untouched; get_number() takes integers too);
	 * get_json(): any value as compact JSON text ("null" for null; NULL
	 * when absent); get_count(): members of the array or object (0 for
	 * anything else); get_key(): the key of an object's i-th member (NULL
	 * past the end), for iterating objects whose keys you do not know. */
	int (*get_type)(ghl_step_ctx *ctx, const char *source, const char *const *path);
	const char *(*get_string)(ghl_step_ctx *ctx, const char *source, const char *const *path);
	int (*get_int)(ghl_step_ctx *ctx, const char *source, const char *const *path,
		       int64_t *out);
	int (*get_number)(ghl_step_ctx *ctx, const char *source, const char *const *path,
			  double *out);
	int (*get_bool)(ghl_step_ctx *ctx, const char *source, const char *const *path, int *out);
	const char *(*get_json)(ghl_step_ctx *ctx, const char *source, const char *const *path);
	size_t (*get_count)(ghl_step_ctx *ctx, const char *source, const char *const *path);
	const char *(*get_key)(ghl_step_ctx *ctx, const char *source, const char *const *path,
			       size_t i);

	/* Per-run private state (Redis's RM_BlockClient privdata): state() is
	 * NULL on a run's first call and then what set_state() stored. The host
	 * calls free_state(state) exactly once — when the run ends in any way
	 * (done, failed, the job cancelled or released, the lease lost, the
	 * agent stopping) or when set_state() replaces it. free_state may be
	 * NULL (nothing to free). */
	void (*set_state)(ghl_step_ctx *ctx, void *state, void (*free_state)(void *state));
	void *(*state)(ghl_step_ctx *ctx);
	/* The common case of both: the run's state as `size` zeroed bytes the
	 * host allocates on the first call (and frees at the end); every later
	 * call of the run returns the same memory. */
	void *(*state_alloc)(ghl_step_ctx *ctx, size_t size);

	/* A JSON builder, for request bodies and outputs (no string-built
	 * JSON): json_new() starts an empty text that lives until run()
	 * returns; commas are written for you; json_key() goes before each
	 * member of an object; json_end() closes the innermost object or array;
	 * json_string(NULL) writes null; json_raw() writes a JSON value given as
	 * text (get_json()'s, say), checked. json_text() is the text once every
	 * object and array is closed; after a misuse (a value without its key,
	 * unbalanced ends, invalid raw text, a non-finite number, nesting deeper
	 * than 32) it is NULL and the reason is in the step's log. */
	ghl_json *(*json_new)(ghl_step_ctx *ctx);
	void (*json_object)(ghl_json *j);
	void (*json_array)(ghl_json *j);
	void (*json_end)(ghl_json *j);
	void (*json_key)(ghl_json *j, const char *key);
	void (*json_string)(ghl_json *j, const char *s);
	void (*json_int)(ghl_json *j, int64_t v);
	void (*json_number)(ghl_json *j, double v);
	void (*json_bool)(ghl_json *j, int v);
	void (*json_null)(ghl_json *j);
	void (*json_raw)(ghl_json *j, const char *json);
	const char *(*json_text)(ghl_json *j);

	/* ---- ABI 1.2: fewer GHL calls ---- */

	/* A GET many runs share: like request("GET", ...), but an identical GET
	 * (same token class and rate-limit bucket, path and query) that another
	 * run has in flight is not sent again — this run gets that reply — and a
	 * 2xx reply at most max_age_ms old is served from the agent's memory
	 * without asking GHL. For reads that change slowly (the agency's snapshot
	 * list). max_age_ms <= 0 is request(). */
	int (*request_cached)(ghl_step_ctx *ctx, const char *path, const char *query,
			      int token_class, int max_age_ms);

	/* Wait for GHL to finish loading snapshot_id into location_id (the
	 * job's agency). The agent polls GET /snapshots/snapshot-status/{snapshotId}
	 * (the snapshot's pushes, agency token) once per tick for every run
	 * waiting for that snapshot: not before first_poll_ms from now (the
	 * typical push time), then every interval_ms. Completes like request(),
	 * within max_wait_ms:
	 *   200, GHL_SRC_RESPONSE {"data": {"id","locationId","status",...}}: the
	 *   push as GHL lists it — finished (a status other than "processing"),
	 *   or still processing when max_wait_ms ran out;
	 *   any other status: the list did not tell (the push was not listed,
	 *   GHL refused the list); ask
	 *   GET /snapshots/snapshot-status/{snapshotId}/location/{locationId}. */
	int (*snapshot_push_wait)(ghl_step_ctx *ctx, const char *snapshot_id,
				  const char *location_id, int first_poll_ms, int interval_ms,
				  int max_wait_ms);

	/* ---- ABI 1.3: people in the loop ---- */

	/* Hand the job to a person: make the task of this job's pipeline step
	 * (spec: {"title", "checklist": [strings], "due_in_days": number,
	 * "assignee_role": "AGENCY_ADMIN"|"SUPPORT"|"ADMIN", "on_reject":
	 * "fail"|"rollback"}), or find the one an earlier run made (one per job
	 * and step). Return GHL_STEP_WAIT right after. While the task is OPEN the
	 * job parks: it stays IN_PROGRESS but holds no lease and no slot, its
	 * journal row says WAITING, and run() is not called again in this run.
	 * Once a person completes or rejects the task (dashboard, POST
	 * /api/v1/tasks/{id}/complete|reject) the job is claimed again and the
	 * step runs again from phase 0; this time the task is found ended and
	 * the call completes like request(): status 200, GHL_SRC_RESPONSE
	 * {"id", "status": "COMPLETED"|"REJECTED", "note", "outputs": {...},
	 * "on_reject", "completed_by"}. After a REJECTED answer with on_reject
	 * "rollback", the run's fail() rolls the job back (its completed steps
	 * undo themselves, newest first) whatever the pipeline's on_failure.
	 * Status 0 with a message: the task could not be stored (retryable).
	 * Returns -1, the reason in the step log ("task(): task.title:
	 * required"), for a spec that is not such an object: title 1..300
	 * characters, checklist at most 50 strings of 1..500, due_in_days
	 * 0..365, no other keys. In a dry run (no job to park) the call
	 * completes at once: {"id": "dry-run", "status": "COMPLETED"}. */
	int (*task)(ghl_step_ctx *ctx, const char *spec_json);

	/* --- add new members here only; bump GHL_STEP_ABI_MINOR --- */
};

struct ghl_step_def {
	const char *name;	   /* unique across all plugins and scripts */
	const char *version;	   /* e.g. "1.0.0" */
	const char *config_schema; /* JSON Schema subset (object/properties/required/
				    * additionalProperties/type/enum/items/minimum/
				    * maximum/minLength/maxLength) or NULL for {} */
	const char *description;   /* one line, shown by `ghl-agent plugins` */
	int (*run)(ghl_step_ctx *ctx);
	int (*compensate)(ghl_step_ctx *ctx); /* optional undo; NULL if none */
	/* ---- ABI 1.2 ---- */
	/* The client-data fields run() cannot work without (GHL_CLIENT_FIELDS(
	 * "email", "first_name")), NULL for none. Each must be a top-level field
	 * of client_data_json (core/base/client_data.h: name, email, first_name,
	 * last_name, phone, address, city, state, postal_code, country, website,
	 * timezone, custom_values, tags, external_id). The agent refuses a job
	 * that lacks one at submission (422, naming the field and this step)
	 * instead of failing it in this step after earlier steps changed GHL;
	 * a plugin built against an older header declares nothing. */
	const char *const *client_fields;
	/* --- add new members here only; bump GHL_STEP_ABI_MINOR --- */
};

/* A NULL-terminated list of client-data field names, for a step's
 * client_fields: GHL_CLIENT_FIELDS("email", "first_name", "last_name"). */
#define GHL_CLIENT_FIELDS(...) ((const char *const[]){__VA_ARGS__, NULL})

struct ghl_plugin {
	uint32_t abi_major;	/* GHL_STEP_ABI_MAJOR the plugin was built with */
	uint32_t abi_minor;	/* GHL_STEP_ABI_MINOR the plugin was built with */
	uint32_t plugin_size;	/* sizeof(struct ghl_plugin) */
	uint32_t step_def_size; /* sizeof(struct ghl_step_def) */
	const char *name;	/* the plugin's name, for messages */
	/* Called once after the checks; 0 on success, else write a reason into
	 * err (errlen bytes) and return non-zero. The host table outlives the
	 * plugin; keep the pointer. */
	int (*init)(const struct ghl_host_api *host, char *err, size_t errlen);
	const struct ghl_step_def *steps;
	size_t nsteps;
	/* ---- ABI 1.1 ---- */
	const char *version; /* the plugin's version, logged when it is loaded */

	/* --- add new members here only; bump GHL_STEP_ABI_MINOR --- */
};

typedef const struct ghl_plugin *(*ghl_plugin_entry_fn)(void);

/* Convenience for the descriptor's first four members. */
#define GHL_PLUGIN_HEADER                                                  \
	GHL_STEP_ABI_MAJOR, GHL_STEP_ABI_MINOR, sizeof(struct ghl_plugin), \
		sizeof(struct ghl_step_def)

#define GHL_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The boilerplate of a plugin file (SQLite's SQLITE_EXTENSION_INIT1/2, nginx's
 * NGX_MODULE_V1). GHL_STEP_HOST, at the top, declares `host`, the host table
 * the step functions call. GHL_STEP_PLUGIN(NAME, VERSION, INIT, STEPS), at the
 * end, defines the descriptor and the exported entry ghl_plugin_entry_NAME:
 *   NAME    the plugin's name and its file's stem (NAME.so), an identifier;
 *   VERSION a string, logged at load;
 *   INIT    NULL, or int init(char *err, size_t errlen), called once `host`
 *           is set: 0, or a reason written into err and non-zero to refuse;
 *   STEPS   a static array of struct ghl_step_def. */
#define GHL_STEP_HOST static const struct ghl_host_api *host

#define GHL_STEP_PLUGIN(NAME, VERSION, INIT, STEPS)                                         \
	static int ghl_plugin_init_(const struct ghl_host_api *h, char *err, size_t errlen) \
	{                                                                                   \
		int (*user_init)(char *, size_t) = (INIT);                                  \
		host = h;                                                                   \
		return user_init ? user_init(err, errlen) : 0;                              \
	}                                                                                   \
	static const struct ghl_plugin ghl_plugin_ = {                                      \
		GHL_PLUGIN_HEADER,                                                          \
		#NAME,                                                                      \
		ghl_plugin_init_,                                                           \
		(STEPS),                                                                    \
		sizeof(STEPS) / sizeof((STEPS)[0]),                                         \
		(VERSION),                                                                  \
	};                                                                                  \
	GHL_PLUGIN_EXPORT const struct ghl_plugin *ghl_plugin_entry_##NAME(void);           \
	const struct ghl_plugin *ghl_plugin_entry_##NAME(void)                              \
	{                                                                                   \
		return &ghl_plugin_;                                                        \
	}

#ifdef __cplusplus
}
#endif

#endif
