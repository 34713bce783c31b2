/* ghl_step_1_0.h — a verbatim copy of plugins/ghl_step.h as released with ABI
 * 1.0, for tests/bad_plugins/abi_1_0.c: a plugin built against an older, smaller
 * header must keep loading. Do not update it.
 *
 * ghl_step.h — the step-plugin ABI of the GHL Provisioning Agent.
 *
 * This header is all a step plugin includes; plugins never link against the
 * agent. A plugin is a shared object exporting one symbol, GHL_PLUGIN_ENTRY,
 * a function returning its descriptor. The agent checks, in this order:
 *   1. descriptor->abi_major == GHL_STEP_ABI_MAJOR of the host;
 *   2. descriptor->abi_minor <= the host's GHL_STEP_ABI_MINOR;
 *   3. the struct sizes the plugin was built with (plugin_size, step_def_size)
 *      are ones the host knows;
 *   4. init() returns 0;
 *   5. no step name is already registered (built-in, plugin or Lua script).
 * A plugin failing any check is refused with a message naming the file and
 * the reason; the agent runs on without it.
 *
 * Compatibility rules (SQLite's sqlite3_api_routines, GStreamer's versions):
 *   - struct ghl_host_api only ever grows AT ITS END; a new member bumps
 *     GHL_STEP_ABI_MINOR. A plugin built against minor N may use every member
 *     of minor N and must check `host->size` before using newer ones.
 *   - anything else changing (a member's meaning, order or type) bumps MAJOR.
 *
 * Concurrency: a step never blocks. run() is a re-entrant state machine:
 *   - it returns GHL_STEP_DONE when finished (outputs set with set_output),
 *   - GHL_STEP_WAIT after starting exactly one asynchronous operation
 *     (request() or sleep_ms()); the agent calls run() again when it has
 *     completed, with phase() as the step left it (set_phase()),
 *   - GHL_STEP_FAIL after calling fail().
 * Thousands of runs may be waiting at once in one process; all calls happen
 * on the agent's event-loop thread. Keep per-run state in phase() and
 * outputs, not in globals.
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
#define GHL_STEP_ABI_MINOR 0

/* The symbol the loader looks up with dlsym(). */
#define GHL_PLUGIN_ENTRY "ghl_plugin_entry"

typedef struct ghl_step_ctx ghl_step_ctx; /* one run of one step for one job */

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

/* Sources readable with get(). */
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
};

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
};

typedef const struct ghl_plugin *(*ghl_plugin_entry_fn)(void);

/* Convenience for the descriptor's first four members. */
#define GHL_PLUGIN_HEADER                                                  \
	GHL_STEP_ABI_MAJOR, GHL_STEP_ABI_MINOR, sizeof(struct ghl_plugin), \
		sizeof(struct ghl_step_def)

#ifdef __cplusplus
}
#endif

#endif
