/* step_host.c — one run of one step and the host function table; see step_host.h. */
#include "step_host.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agency_tokens.h"
#include "app.h"
#include "crypto.h"
#include "get_cache.h"
#include "ghl_client.h"
#include "job_inflight.h"
#include "journal.h"
#include "json.h"
#include "json_builder.h"
#include "loc_tokens.h"
#include "log.h"
#include "push_poller.h"
#include "request_log.h"
#include "registry.h"
#include "tasks.h"

/* One run of one step: the plugin's ghl_step_ctx. */
struct ghl_step_ctx {
	struct app *app;
	struct journal *journal;
	struct job *job;
	struct step_impl *impl; /* referenced for the run */
	struct json *config;	/* the step's config (owned copy) */
	int phase;
	struct json *outputs; /* this step's outputs */
	struct json *log;     /* array of {"level","message"} */
	char **arena;	      /* strings handed to the step during one call */
	size_t narena, carena;

	/* the last completed request */
	struct json *resp;
	int resp_status;
	enum ghl_outcome resp_outcome;
	char *resp_message;
	char *trace_id;
	long long retry_after_ms;
	int requests;
	int recorded;	     /* requests written to job_requests */
	int64_t rq_start_ms; /* when the step asked for the request in flight */

	/* the request being prepared or in flight */
	struct ghl_client *post_client; /* one-off client of an http_post */
	int pending;
	int abandoned; /* the job went away while pending: free on completion */
	char *rq_method, *rq_path, *rq_query, *rq_body, *rq_url, *rq_headers;
	int rq_token_class;
	struct event *timer;
	/* ABI 1.2: a shared GET (request_cached) or a shared push wait */
	int rq_cache_ms;	     /* > 0: request_cached */
	char *cache_key;	     /* this run leads the shared GET of that key */
	struct get_wait *cache_wait; /* joined another run's shared GET */
	int rq_push;		     /* snapshot_push_wait: rq_path/rq_query hold the ids */
	int pw_first, pw_interval, pw_max;
	struct push_wait *push_wait; /* registered with the push poller */
	/* ABI 1.3: task() */
	struct json *rq_task; /* the task's spec, until it is stored */
	char *task_id;	      /* the OPEN task the run parked on */
	int rollback;	      /* a REJECTED task with on_reject "rollback": fail() rolls back */

	int failed, fail_retryable;
	int compensating; /* this run is the step's compensate */
	char *fail_msg;
	int64_t start_ms;

	void *state; /* the step's per-run state (set_state) */
	void (*free_state)(void *state);
	struct ghl_json *builders; /* json_new() of this call */

	void (*ended)(void *arg, ghl_step_ctx *ctx, int ok);
	void *ended_arg;
};

/* A JSON text a step is building; freed with the call's arena. */
struct ghl_json {
	struct json_builder jb;
	ghl_step_ctx *ctx;
	struct ghl_json *next;
};

static void step_call(ghl_step_ctx *ctx);

/* ---- small helpers ------------------------------------------------------ */

static const char *keep(ghl_step_ctx *ctx, char *s)
{
	if (ctx->narena == ctx->carena) {
		ctx->carena = ctx->carena ? ctx->carena * 2 : 8;
		ctx->arena = xrealloc(ctx->arena, ctx->carena * sizeof(char *));
	}
	ctx->arena[ctx->narena++] = s;
	return s;
}

static void arena_clear(ghl_step_ctx *ctx)
{
	for (size_t i = 0; i < ctx->narena; i++)
		free(ctx->arena[i]);
	ctx->narena = 0;
	while (ctx->builders) {
		struct ghl_json *j = ctx->builders;
		ctx->builders = j->next;
		json_builder_clear(&j->jb);
		free(j);
	}
}

/* Resolve "a.b[2].c" in root; NULL when absent. */
static struct json *json_path(struct json *root, const char *path)
{
	struct json *cur = root;
	const char *p = path;
	if (!p)
		return root;
	while (cur && *p) {
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p == '[') {
			char *end;
			unsigned long i = strtoul(p + 1, &end, 10);
			if (*end != ']' || cur->type != JSON_ARRAY)
				return NULL;
			cur = json_at(cur, i);
			p = end + 1;
			continue;
		}
		size_t n = strcspn(p, ".[");
		char *key = xstrndup(p, n);
		cur = cur->type == JSON_OBJECT ? json_get(cur, key) : NULL;
		free(key);
		p += n;
	}
	return cur;
}

/* Resolve a key path (ghl_step.h, GHL_PATH) in root; NULL when absent. In an
 * array a key must be a decimal index without sign or leading zeros. */
static struct json *json_walk(struct json *root, const char *const *path)
{
	struct json *cur = root;
	for (size_t k = 0; path && path[k] && cur; k++) {
		const char *key = path[k];
		if (cur->type == JSON_OBJECT) {
			cur = json_get(cur, key);
		} else if (cur->type == JSON_ARRAY) {
			size_t n = strspn(key, "0123456789");
			long long i;
			if (n == 0 || key[n] || (key[0] == '0' && n > 1) ||
			    str_to_ll(key, 0, (long long)json_len(cur) - 1, &i))
				return NULL;
			cur = json_at(cur, (size_t)i);
		} else {
			return NULL;
		}
	}
	return cur;
}

static struct json *job_doc(struct job *job)
{
	if (job->job_json)
		return job->job_json;
	struct json *j = json_new_object();
	json_object_set_take(j, "id", json_new_string(job->id));
	json_object_set_take(j, "agency_id", json_new_string(job->agency_id));
	json_object_set_take(j, "company_id", json_new_string(job->company_id));
	json_object_set_take(j, "snapshot",
			     job->snapshot ? json_clone(job->snapshot) : json_new_null());
	json_object_set_take(j, "attempt", json_new_int(job->attempt));
	json_object_set_take(j, "retry_count", json_new_int(job->retry_count));
	job->job_json = j;
	return j;
}

const struct json *step_host_job_doc(struct job *job)
{
	return job_doc(job);
}

static struct json *ctx_outputs_all(ghl_step_ctx *ctx)
{
	struct json *o = json_get(ctx->job->context, "outputs");
	if (!o) {
		o = json_new_object();
		json_object_set_take(ctx->job->context, "outputs", o);
	}
	return o;
}

static struct json *source_doc(ghl_step_ctx *ctx, const char *source)
{
	if (!source)
		return NULL;
	if (!strcmp(source, GHL_SRC_JOB))
		return job_doc(ctx->job);
	if (!strcmp(source, GHL_SRC_CLIENT))
		return ctx->job->client;
	if (!strcmp(source, GHL_SRC_CONFIG))
		return ctx->config;
	if (!strcmp(source, GHL_SRC_OUTPUTS))
		return ctx_outputs_all(ctx);
	if (!strcmp(source, GHL_SRC_RESPONSE))
		return ctx->resp;
	return NULL;
}

/* ---- host API ------------------------------------------------------------ */

static void h_log(ghl_step_ctx *ctx, int level, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	static const char *const names[] = {"debug", "info", "warn", "error"};
	if (level < 0 || level > 3)
		level = GHL_LOG_INFO;
	if (json_len(ctx->log) < 200) {
		struct json *e = json_new_object();
		json_object_set_take(e, "level", json_new_string(names[level]));
		json_object_set_take(
			e, "message",
			json_new_stringn(b.data ? b.data : "", b.len > 2000 ? 2000 : b.len));
		json_array_push_take(ctx->log, e);
	}
	log_msg(level <= GHL_LOG_INFO ? LOG_DEBUG : (enum log_level)level, buf_cstr(&b), "job_id",
		ctx->job->id, "step", ctx->impl->name, NULL);
	buf_clear(&b);
}

static const char *h_get(ghl_step_ctx *ctx, const char *source, const char *path)
{
	struct json *v = json_path(source_doc(ctx, source), path && *path ? path : NULL);
	if (!v)
		return NULL;
	if (v->type == JSON_STRING)
		return v->u.str.s;
	return keep(ctx, json_to_string(v));
}

static size_t h_count(ghl_step_ctx *ctx, const char *source, const char *path)
{
	struct json *v = json_path(source_doc(ctx, source), path && *path ? path : NULL);
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? json_len(v) : 0;
}

static const char *h_key_at(ghl_step_ctx *ctx, const char *source, const char *path, size_t i)
{
	struct json *v = json_path(source_doc(ctx, source), path && *path ? path : NULL);
	if (!v || v->type != JSON_OBJECT || i >= v->u.obj.n)
		return NULL;
	return v->u.obj.keys[i];
}

static int h_set_output(ghl_step_ctx *ctx, const char *key, const char *json_value)
{
	struct err e;
	if (!key || !*key || !json_value)
		return -1;
	struct json *v = json_parse(json_value, strlen(json_value), JSON_DEFAULT_MAX_DEPTH, &e);
	if (!v) {
		h_log(ctx, GHL_LOG_ERROR, "set_output(%s): not JSON: %s", key, e.msg);
		return -1;
	}
	if (!strcmp(key, "location_id") && v->type == JSON_STRING) {
		struct job *job = ctx->job;
		free(job->location_id);
		job->location_id = xstrdup(v->u.str.s);
		/* recorded on the job at once: a retry must find it */
		if (ctx->journal) {
			struct job_write w = {.location_id = job->location_id,
					      .retry_count = -1,
					      .run_at_delay_ms = -1};
			journal_job(ctx->journal, job->id, &w, NULL, NULL);
		}
	}
	json_object_set_take(ctx->outputs, key, v);
	return 0;
}

static int h_fail(ghl_step_ctx *ctx, int retryable, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(ctx->fail_msg);
	ctx->fail_msg = buf_take(&b);
	ctx->failed = 1;
	ctx->fail_retryable = retryable != 0;
	return GHL_STEP_FAIL;
}

static int h_fail_from_response(ghl_step_ctx *ctx, const char *what)
{
	int retryable = ctx->resp_outcome == GHL_RETRYABLE || ctx->resp_outcome == GHL_AUTH ||
			ctx->resp_outcome == GHL_CANCELLED;
	const char *msg = ctx->resp_message ? ctx->resp_message : "no message";
	if (ctx->resp_status)
		return h_fail(ctx, retryable, "%s: GHL answered %d: %s", what ? what : "request",
			      ctx->resp_status, msg);
	return h_fail(ctx, retryable, "%s: %s", what ? what : "request", msg);
}

static int h_response_status(ghl_step_ctx *ctx)
{
	return ctx->resp_status;
}

static const char *h_response_message(ghl_step_ctx *ctx)
{
	return ctx->resp_message;
}

static int h_phase(ghl_step_ctx *ctx)
{
	return ctx->phase;
}

static void h_set_phase(ghl_step_ctx *ctx, int phase)
{
	ctx->phase = phase;
}

static const char *h_quote(ghl_step_ctx *ctx, const char *s)
{
	struct buf b;
	buf_init(&b);
	json_write_string(&b, s);
	return keep(ctx, buf_take(&b));
}

static const char *h_format(ghl_step_ctx *ctx, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return keep(ctx, buf_take(&b));
}

static const char *h_urlencode(ghl_step_ctx *ctx, const char *s)
{
	struct buf b;
	buf_init(&b);
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			buf_putc(&b, (char)*p);
		} else {
			buf_putc(&b, '%');
			buf_putc(&b, hex[*p >> 4]);
			buf_putc(&b, hex[*p & 15]);
		}
	}
	return keep(ctx, buf_take(&b));
}

static const char *h_hmac(ghl_step_ctx *ctx, const char *key, const char *msg)
{
	char hex[CRYPTO_SHA256_HEX_LEN];
	if (crypto_hmac_sha256_hex(key ? key : "", key ? strlen(key) : 0, msg ? msg : "",
				   msg ? strlen(msg) : 0, hex))
		return NULL;
	return keep(ctx, xstrdup(hex));
}

static const char *h_random_token(ghl_step_ctx *ctx, int bytes)
{
	char *t = crypto_random_token((size_t)(bytes > 0 && bytes <= 256 ? bytes : 16));
	return t ? keep(ctx, t) : NULL;
}

/* ---- ABI 1.1: typed reads ----------------------------------------------- */

static struct json *at(ghl_step_ctx *ctx, const char *source, const char *const *path)
{
	return json_walk(source_doc(ctx, source), path);
}

static int h_get_type(ghl_step_ctx *ctx, const char *source, const char *const *path)
{
	const struct json *v = at(ctx, source, path);
	if (!v)
		return GHL_TYPE_ABSENT;
	switch (v->type) {
	case JSON_NULL: return GHL_TYPE_NULL;
	case JSON_BOOL: return GHL_TYPE_BOOL;
	case JSON_NUMBER: return v->u.num.is_int ? GHL_TYPE_INT : GHL_TYPE_NUMBER;
	case JSON_STRING: return GHL_TYPE_STRING;
	case JSON_ARRAY: return GHL_TYPE_ARRAY;
	case JSON_OBJECT: return GHL_TYPE_OBJECT;
	}
	return GHL_TYPE_ABSENT;
}

static const char *h_get_string(ghl_step_ctx *ctx, const char *source, const char *const *path)
{
	const struct json *v = at(ctx, source, path);
	return v && v->type == JSON_STRING ? v->u.str.s : NULL;
}

static int h_get_int(ghl_step_ctx *ctx, const char *source, const char *const *path, int64_t *out)
{
	const struct json *v = at(ctx, source, path);
	if (!v || v->type != JSON_NUMBER || !v->u.num.is_int)
		return -1;
	*out = v->u.num.i;
	return 0;
}

static int h_get_number(ghl_step_ctx *ctx, const char *source, const char *const *path, double *out)
{
	const struct json *v = at(ctx, source, path);
	if (!v || v->type != JSON_NUMBER)
		return -1;
	*out = v->u.num.is_int ? (double)v->u.num.i : v->u.num.d;
	return 0;
}

static int h_get_bool(ghl_step_ctx *ctx, const char *source, const char *const *path, int *out)
{
	const struct json *v = at(ctx, source, path);
	if (!v || v->type != JSON_BOOL)
		return -1;
	*out = v->u.boolean != 0;
	return 0;
}

static const char *h_get_json(ghl_step_ctx *ctx, const char *source, const char *const *path)
{
	const struct json *v = at(ctx, source, path);
	return v ? keep(ctx, json_to_string(v)) : NULL;
}

static size_t h_get_count(ghl_step_ctx *ctx, const char *source, const char *const *path)
{
	const struct json *v = at(ctx, source, path);
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? json_len(v) : 0;
}

static const char *h_get_key(ghl_step_ctx *ctx, const char *source, const char *const *path,
			     size_t i)
{
	const struct json *v = at(ctx, source, path);
	if (!v || v->type != JSON_OBJECT || i >= v->u.obj.n)
		return NULL;
	return v->u.obj.keys[i];
}

/* ---- ABI 1.1: per-run state ------------------------------------------------ */

/* Hand the state back to its destructor (once). */
static void drop_state(ghl_step_ctx *ctx)
{
	void *st = ctx->state;
	void (*fn)(void *) = ctx->free_state;
	ctx->state = NULL;
	ctx->free_state = NULL;
	if (st && fn)
		fn(st);
}

static void h_set_state(ghl_step_ctx *ctx, void *state, void (*free_state)(void *state))
{
	if (ctx->state != state)
		drop_state(ctx);
	ctx->state = state;
	ctx->free_state = free_state;
}

static void *h_state(ghl_step_ctx *ctx)
{
	return ctx->state;
}

static void *h_state_alloc(ghl_step_ctx *ctx, size_t size)
{
	if (!ctx->state)
		h_set_state(ctx, xcalloc(1, size ? size : 1), free);
	return ctx->state;
}

/* ---- ABI 1.1: the JSON builder --------------------------------------------- */

static ghl_json *h_json_new(ghl_step_ctx *ctx)
{
	struct ghl_json *j = xcalloc(1, sizeof(*j));
	json_builder_init(&j->jb);
	j->ctx = ctx;
	j->next = ctx->builders;
	ctx->builders = j;
	return j;
}

static void h_json_object(ghl_json *j)
{
	json_builder_object(&j->jb);
}

static void h_json_array(ghl_json *j)
{
	json_builder_array(&j->jb);
}

static void h_json_end(ghl_json *j)
{
	json_builder_end(&j->jb);
}

static void h_json_key(ghl_json *j, const char *key)
{
	json_builder_key(&j->jb, key);
}

static void h_json_string(ghl_json *j, const char *s)
{
	json_builder_string(&j->jb, s);
}

static void h_json_int(ghl_json *j, int64_t v)
{
	json_builder_int(&j->jb, v);
}

static void h_json_number(ghl_json *j, double v)
{
	json_builder_number(&j->jb, v);
}

static void h_json_bool(ghl_json *j, int v)
{
	json_builder_bool(&j->jb, v);
}

static void h_json_null(ghl_json *j)
{
	json_builder_null(&j->jb);
}

static void h_json_raw(ghl_json *j, const char *json)
{
	json_builder_raw(&j->jb, json);
}

static const char *h_json_text(ghl_json *j)
{
	struct err e;
	const char *text = json_builder_text(&j->jb, &e);
	if (!text)
		h_log(j->ctx, GHL_LOG_ERROR, "json builder: %s", e.msg);
	return text;
}

/* ---- requests ------------------------------------------------------------ */

static void clear_request(ghl_step_ctx *ctx)
{
	free(ctx->cache_key);
	ctx->cache_key = NULL;
	ctx->rq_cache_ms = 0;
	ctx->rq_push = 0;
	ctx->rq_task = json_free(ctx->rq_task);
	free(ctx->rq_method);
	free(ctx->rq_path);
	free(ctx->rq_query);
	free(ctx->rq_body);
	free(ctx->rq_url);
	free(ctx->rq_headers);
	ctx->rq_method = ctx->rq_path = ctx->rq_query = ctx->rq_body = NULL;
	ctx->rq_url = ctx->rq_headers = NULL;
}

static void ctx_release(ghl_step_ctx *ctx);

/* A request (not a sleep) ended: its job_requests row, bounded per run. */
static void record_request(ghl_step_ctx *ctx, int status, enum ghl_outcome outcome,
			   const struct json *body, const char *message, const char *trace_id)
{
	if (!ctx->journal || !(ctx->rq_method || ctx->rq_url || ctx->rq_push) ||
	    ctx->recorded >= REQUEST_LOG_MAX_PER_RUN)
		return;
	ctx->recorded++;
	char *what = ctx->rq_push
			     ? xasprintf("snapshot %s → location %s", ctx->rq_path, ctx->rq_query)
			     : NULL;
	struct request_record r = {
		.job_id = ctx->job->id,
		.step_index = ctx->job->step,
		.attempt = ctx->job->attempt,
		.compensate = ctx->compensating,
		.method = ctx->rq_push	? "PUSH_WAIT"
			  : ctx->rq_url ? "POST"
					: ctx->rq_method,
		.path = what	      ? what
			: ctx->rq_url ? ctx->rq_url
				      : ctx->rq_path,
		.query = ctx->rq_push || ctx->rq_url ? NULL : ctx->rq_query,
		.status = status,
		.duration_ms = now_monotonic_ms() - ctx->rq_start_ms,
		.trace_id = trace_id,
		.error = outcome == GHL_OK ? NULL : message,
		.request_body = ctx->rq_push ? NULL : ctx->rq_body,
		.response_body = body,
	};
	request_log_write(ctx->journal, &r);
	free(what);
}

/* The request finished (or could not start): record it and call the step. */
static void complete_request(ghl_step_ctx *ctx, int status, enum ghl_outcome outcome,
			     const struct json *body, const char *message, const char *trace_id,
			     long long retry_after_ms)
{
	ctx->pending = 0;
	if (!ctx->abandoned)
		record_request(ctx, status, outcome, body, message, trace_id);
	clear_request(ctx);
	if (ctx->abandoned) {
		ctx_release(ctx);
		return;
	}
	/* copy first: after a sleep the arguments are the current values */
	struct json *resp = body ? json_clone(body) : NULL;
	char *msg = message ? xstrdup(message) : NULL;
	char *trace = trace_id ? xstrdup(trace_id) : NULL;
	json_free(ctx->resp);
	free(ctx->resp_message);
	free(ctx->trace_id);
	ctx->resp = resp;
	ctx->resp_message = msg;
	ctx->trace_id = trace;
	ctx->resp_status = status;
	ctx->resp_outcome = outcome;
	ctx->retry_after_ms = retry_after_ms;
	step_call(ctx);
}

static void on_response(void *arg, const struct ghl_response *res)
{
	ghl_step_ctx *ctx = arg;
	struct ghl_client *one_off = ctx->post_client;
	ctx->post_client = NULL;
	if (ctx->cache_key) /* runs that joined this shared GET get its reply too */
		get_cache_finish(ctx->app->get_cache, ctx->cache_key, res, NULL,
				 now_monotonic_ms());
	if (!ctx->abandoned && res->status == 401 && ctx->rq_token_class == GHL_TOKEN_LOCATION) {
		/* the location token went stale: mint a new one next time */
		if (ctx->app->loc_tokens)
			loc_tokens_drop(ctx->app->loc_tokens, ctx->job->loc_id,
					ctx->job->loc_token);
		ctx->job->loc_token = secret_free(ctx->job->loc_token);
	}
	complete_request(ctx, res->status, res->outcome, res->json, res->message, res->trace_id,
			 res->retry_after_ms);
	ghl_client_free(one_off); /* allowed from inside its own callback */
}

static void on_shared_reply(void *arg, int status, enum ghl_outcome outcome,
			    const struct json *body, const char *message, const char *trace_id,
			    long long retry_after_ms)
{
	ghl_step_ctx *ctx = arg;
	ctx->cache_wait = NULL;
	complete_request(ctx, status, outcome, body, message, trace_id, retry_after_ms);
}

/* request_cached: served from memory, joined to another run's GET, or sent
 * by this run for all (1: done here, 0: send it). */
static int shared_get(ghl_step_ctx *ctx, const char *resource)
{
	if (!ctx->app->get_cache)
		ctx->app->get_cache = get_cache_new();
	char *key = xasprintf("%d\x1f%s\x1f%s?%s", ctx->rq_token_class, resource ? resource : "",
			      ctx->rq_path, ctx->rq_query ? ctx->rq_query : "");
	struct get_wait *w = NULL;
	enum get_cache_step st = get_cache_enter(ctx->app->get_cache, key, ctx->rq_cache_ms,
						 now_monotonic_ms(), on_shared_reply, ctx, &w);
	if (st == GET_CACHE_LEAD) {
		ctx->cache_key = key;
		return 0;
	}
	free(key);
	if (st == GET_CACHE_JOINED)
		ctx->cache_wait = w;
	return 1; /* GET_CACHE_HIT: ctx may be gone already */
}

static void send_now(ghl_step_ctx *ctx, const char *token, const char *resource)
{
	struct job *job = ctx->job;
	if (ctx->rq_cache_ms > 0 && shared_get(ctx, resource))
		return;
	struct ghl_request rq = {
		.method = ctx->rq_method,
		.path = ctx->rq_path,
		.query = ctx->rq_query,
		.json_body = ctx->rq_body,
		.token = token,
		.resource = resource,
	};
	ctx->requests++;
	if (ctx->rq_token_class == GHL_TOKEN_AGENCY && ctx->app->tokens) {
		struct ghl_token_hooks hooks;
		agency_tokens_hooks(ctx->app->tokens, job->agency_id, &hooks);
		ghl_request_send_auth(ctx->app->ghl, &rq, &hooks, on_response, ctx);
	} else {
		ghl_request_send(ctx->app->ghl, &rq, on_response, ctx);
	}
}

static void request_go(ghl_step_ctx *ctx);

static void on_agency_token(void *arg, enum agency_token_status st, const struct agency_token *tok,
			    const char *why)
{
	ghl_step_ctx *ctx = arg;
	if (ctx->abandoned) {
		complete_request(ctx, 0, GHL_CANCELLED, NULL, "abandoned", NULL, 0);
		return;
	}
	if (st != AGENCY_TOKEN_OK) {
		char msg[600];
		snprintf(msg, sizeof(msg), "no usable GHL token for the agency: %s",
			 why ? why : agency_token_status_name(st));
		complete_request(ctx, 0,
				 st == AGENCY_TOKEN_RETRYABLE ? GHL_RETRYABLE : GHL_PERMANENT, NULL,
				 msg, NULL, 0);
		return;
	}
	struct job *job = ctx->job;
	secret_free(job->token);
	job->token = xstrdup(tok->access_token);
	if (!job->company_id && tok->ghl_agency_id)
		job->company_id = xstrdup(tok->ghl_agency_id);
	request_go(ctx);
}

static void on_location_token(void *arg, const struct ghl_response *res,
			      const struct ghl_token_set *set)
{
	ghl_step_ctx *ctx = arg;
	if (ctx->abandoned) {
		complete_request(ctx, 0, GHL_CANCELLED, NULL, "abandoned", NULL, 0);
		return;
	}
	if (!set || !set->access_token) {
		char msg[600];
		snprintf(msg, sizeof(msg), "minting a location token: %s",
			 res->message ? res->message : "no token in the reply");
		complete_request(ctx, res->status,
				 res->outcome == GHL_OK ? GHL_PERMANENT : res->outcome, res->json,
				 msg, res->trace_id, res->retry_after_ms);
		return;
	}
	struct job *job = ctx->job;
	secret_free(job->loc_token);
	job->loc_token = xstrdup(set->access_token);
	if (!ctx->app->loc_tokens)
		ctx->app->loc_tokens = loc_tokens_new();
	loc_tokens_put(ctx->app->loc_tokens, job->company_id, job->loc_id, set->access_token,
		       set->expires_in, now_monotonic_ms());
	request_go(ctx);
}

static void on_push_done(void *arg, int status, enum ghl_outcome outcome, const struct json *body,
			 const char *message, const char *trace_id)
{
	ghl_step_ctx *ctx = arg;
	ctx->push_wait = NULL;
	complete_request(ctx, status, outcome, body, message, trace_id, 0);
}

/* snapshot_push_wait, once the agency token is known. */
static void push_wait_go(ghl_step_ctx *ctx)
{
	struct job *job = ctx->job;
	struct app *app = ctx->app;
	if (!app->push_poller)
		app->push_poller = push_poller_new(app->base, app->ghl);
	struct ghl_token_hooks hooks;
	if (app->tokens)
		agency_tokens_hooks(app->tokens, job->agency_id, &hooks);
	struct push_wait_req rq = {.agency_id = job->agency_id,
				   .company_id = job->company_id,
				   .snapshot_id = ctx->rq_path,
				   .location_id = ctx->rq_query,
				   .token = job->token,
				   .hooks = app->tokens ? &hooks : NULL,
				   .first_poll_ms = ctx->pw_first,
				   .interval_ms = ctx->pw_interval,
				   .max_wait_ms = ctx->pw_max};
	ctx->push_wait = push_poller_wait(app->push_poller, &rq, on_push_done, ctx);
}

static int is_url(const char *s)
{
	return s && (str_has_prefix(s, "http://") || str_has_prefix(s, "https://"));
}

/* The task is stored (or found): an OPEN one parks the job, an ended one
 * completes the call like a reply. */
static void on_task(void *arg, const struct json *task, const struct err *e)
{
	ghl_step_ctx *ctx = arg;
	const char *st = json_get_str(task, "status");
	if (!ctx->abandoned && str_eq(st, "OPEN")) {
		ctx->pending = 0;
		clear_request(ctx);
		free(ctx->task_id);
		ctx->task_id = xstrdup(json_get_str(task, "id"));
		ctx->ended(ctx->ended_arg, ctx, STEP_RUN_PARKED);
		return;
	}
	ctx->rollback = str_eq(st, "REJECTED") &&
			str_eq(json_get_str(task, "on_reject"), "rollback");
	complete_request(ctx, task ? 200 : 0, task ? GHL_OK : GHL_RETRYABLE, task,
			 task ? NULL : e->msg, NULL, 0);
}

static void task_go(ghl_step_ctx *ctx)
{
	struct job *job = ctx->job;
	if (!ctx->journal) {
		/* a dry run (or `ghl-agent step run`): no job to park, no person to
		 * ask; the run goes on as if the task were completed at once */
		const char *title = json_get_str(ctx->rq_task, "title");
		h_log(ctx, GHL_LOG_INFO,
		      "dry run: a job would wait here until a person completes the task \"%s\";"
		      " the dry run goes on as if it were completed",
		      title ? title : "");
		struct json *t = json_new_object();
		json_object_set_take(t, "id", json_new_string("dry-run"));
		json_object_set_take(t, "status", json_new_string("COMPLETED"));
		json_object_set_take(t, "completed_by", json_new_string("nobody (dry run)"));
		complete_request(ctx, 200, GHL_OK, t, NULL, NULL, 0);
		json_free(t);
		return;
	}
	tasks_open(ctx->app, job->id, job->agency_id, job->step, ctx->impl->name, ctx->rq_task,
		   on_task, ctx);
}

/* Move the request forward: get the tokens it needs, then send it. */
static void request_go(ghl_step_ctx *ctx)
{
	struct job *job = ctx->job;
	if (ctx->rq_task) {
		task_go(ctx);
		return;
	}
	if (ctx->rq_url) {
		/* http_post outside GHL: a plain client on that origin */
		const char *p = strchr(ctx->rq_url + (str_has_prefix(ctx->rq_url, "https") ? 8 : 7),
				       '/');
		char *origin = p ? xstrndup(ctx->rq_url, (size_t)(p - ctx->rq_url))
				 : xstrdup(ctx->rq_url);
		const struct config *cfg = ctx->app->cfg;
		struct ghl_client_opts o = {
			.api_base = origin,
			.timeout_ms = 15000,
			.rate_budget_off = 1,
			.public_only = !cfg || !str_eq(cfg->notify_webhook_allow_private, "on")};
		struct err e;
		struct ghl_client *c = ghl_client_new(ctx->app->base, &o, &e);
		free(origin);
		if (!c) {
			complete_request(ctx, 0, GHL_PERMANENT, NULL, e.msg, NULL, 0);
			return;
		}
		/* a one-off client: freed after the reply (see on_post_response) */
		struct ghl_request rq = {.method = "POST",
					 .path = p ? p : "/",
					 .json_body = ctx->rq_body,
					 .headers = ctx->rq_headers,
					 .version = ""};
		ctx->requests++;
		ctx->post_client = c; /* freed by on_response */
		ghl_request_send(c, &rq, on_response, ctx);
		return;
	}
	if (!job->token && ctx->app->tokens) {
		agency_tokens_get(ctx->app->tokens, job->agency_id, on_agency_token, ctx);
		return;
	}
	if (!job->token) {
		complete_request(ctx, 0, GHL_PERMANENT, NULL, "no token source configured", NULL,
				 0);
		return;
	}
	if (ctx->rq_push) {
		push_wait_go(ctx);
		return;
	}
	if (ctx->rq_token_class == GHL_TOKEN_AGENCY) {
		send_now(ctx, job->token, job->company_id);
		return;
	}
	const char *loc = job->location_id;
	struct json *lv = json_get(ctx_outputs_all(ctx), "location_id");
	if (lv && lv->type == JSON_STRING)
		loc = lv->u.str.s;
	if (!loc) {
		complete_request(ctx, 0, GHL_PERMANENT, NULL,
				 "a location token needs outputs.location_id: put CREATE_LOCATION "
				 "earlier in the pipeline",
				 NULL, 0);
		return;
	}
	if (!job->loc_token || !str_eq(job->loc_id, loc)) {
		char *id = xstrdup(loc); /* loc may be job->loc_id */
		free(job->loc_id);
		job->loc_id = id;
		job->loc_token = secret_free(job->loc_token);
		/* minted once per location: an earlier attempt's token is reused */
		const char *cached = ctx->app->loc_tokens
					     ? loc_tokens_get(ctx->app->loc_tokens, job->company_id,
							      id, now_monotonic_ms())
					     : NULL;
		if (!cached) {
			ghl_oauth_location_token(ctx->app->ghl, job->token, job->company_id, id,
						 on_location_token, ctx);
			return;
		}
		job->loc_token = xstrdup(cached);
		loc = id;
	}
	send_now(ctx, job->loc_token, loc);
}

static int h_request(ghl_step_ctx *ctx, const char *method, const char *path, const char *query,
		     const char *json_body, int token_class)
{
	if (ctx->pending || !method || !path || path[0] != '/') {
		h_log(ctx, GHL_LOG_ERROR, "request(): %s",
		      ctx->pending ? "a request is already "
				     "in flight"
				   : "method and a path starting with '/' are required");
		return -1;
	}
	ctx->pending = 1;
	ctx->rq_method = xstrdup(method);
	ctx->rq_path = xstrdup(path);
	ctx->rq_query = query ? xstrdup(query) : NULL;
	ctx->rq_body = json_body ? xstrdup(json_body) : NULL;
	ctx->rq_token_class = token_class == GHL_TOKEN_LOCATION ? GHL_TOKEN_LOCATION
								: GHL_TOKEN_AGENCY;
	/* started from the loop after the step returns WAIT */
	return 0;
}

static int h_request_cached(ghl_step_ctx *ctx, const char *path, const char *query, int token_class,
			    int max_age_ms)
{
	if (h_request(ctx, "GET", path, query, NULL, token_class) < 0)
		return -1;
	ctx->rq_cache_ms = max_age_ms > 0 ? max_age_ms : 0;
	return 0;
}

static int h_snapshot_push_wait(ghl_step_ctx *ctx, const char *snapshot_id, const char *location_id,
				int first_poll_ms, int interval_ms, int max_wait_ms)
{
	if (ctx->pending || !snapshot_id || !*snapshot_id || !location_id || !*location_id) {
		h_log(ctx, GHL_LOG_ERROR, "snapshot_push_wait(): %s",
		      ctx->pending ? "a request is "
				     "already in flight"
				   : "a snapshot id and a location id are required");
		return -1;
	}
	ctx->pending = 1;
	ctx->rq_push = 1;
	ctx->rq_path = xstrdup(snapshot_id);
	ctx->rq_query = xstrdup(location_id);
	ctx->rq_token_class = GHL_TOKEN_AGENCY;
	ctx->pw_first = first_poll_ms;
	ctx->pw_interval = interval_ms;
	ctx->pw_max = max_wait_ms;
	return 0;
}

static int h_http_post(ghl_step_ctx *ctx, const char *url, const char *headers,
		       const char *json_body)
{
	if (ctx->pending || !is_url(url)) {
		h_log(ctx, GHL_LOG_ERROR, "http_post(): %s",
		      ctx->pending ? "a request is already "
				     "in flight"
				   : "an absolute http(s) URL is required");
		return -1;
	}
	ctx->pending = 1;
	ctx->rq_url = xstrdup(url);
	ctx->rq_headers = headers ? xstrdup(headers) : NULL;
	ctx->rq_body = json_body ? xstrdup(json_body) : NULL;
	return 0;
}

static int h_task(ghl_step_ctx *ctx, const char *spec_json)
{
	struct err e;
	struct json *spec = spec_json ? json_parse(spec_json, strlen(spec_json),
						   JSON_DEFAULT_MAX_DEPTH, &e)
				      : NULL;
	if (ctx->pending || !spec || spec->type != JSON_OBJECT || ctx->compensating) {
		h_log(ctx, GHL_LOG_ERROR, "task(): %s",
		      ctx->pending	  ? "a request is already in flight"
		      : ctx->compensating ? "not while undoing a step"
		      : !spec_json	  ? "a spec is required"
		      : spec		  ? "the spec must be a JSON object"
					  : e.msg);
		json_free(spec);
		return -1;
	}
	if (tasks_spec_check(spec, &e) < 0) {
		h_log(ctx, GHL_LOG_ERROR, "task(): %s", e.msg);
		json_free(spec);
		return -1;
	}
	ctx->pending = 1;
	ctx->rq_task = spec;
	return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ghl_step_ctx *ctx = arg;
	event_free(ctx->timer);
	ctx->timer = NULL;
	complete_request(ctx, ctx->resp_status, ctx->resp_outcome, ctx->resp, ctx->resp_message,
			 ctx->trace_id, ctx->retry_after_ms);
}

static int h_sleep_ms(ghl_step_ctx *ctx, int ms)
{
	if (ctx->pending)
		return -1;
	ctx->pending = 1;
	if (ms < 0)
		ms = 0;
	ctx->timer = evtimer_new(ctx->app->base, on_timer, ctx);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(ctx->timer, &tv);
	return 0;
}

static const struct ghl_host_api host_api = {
	.size = sizeof(struct ghl_host_api),
	.abi_major = GHL_STEP_ABI_MAJOR,
	.abi_minor = GHL_STEP_ABI_MINOR,
	.log = h_log,
	.get = h_get,
	.set_output = h_set_output,
	.request = h_request,
	.response_status = h_response_status,
	.response_message = h_response_message,
	.fail = h_fail,
	.fail_from_response = h_fail_from_response,
	.phase = h_phase,
	.set_phase = h_set_phase,
	.sleep_ms = h_sleep_ms,
	.quote = h_quote,
	.format = h_format,
	.urlencode = h_urlencode,
	.hmac_sha256_hex = h_hmac,
	.http_post = h_http_post,
	.count = h_count,
	.key_at = h_key_at,
	.random_token = h_random_token,
	.get_type = h_get_type,
	.get_string = h_get_string,
	.get_int = h_get_int,
	.get_number = h_get_number,
	.get_bool = h_get_bool,
	.get_json = h_get_json,
	.get_count = h_get_count,
	.get_key = h_get_key,
	.set_state = h_set_state,
	.state = h_state,
	.state_alloc = h_state_alloc,
	.json_new = h_json_new,
	.json_object = h_json_object,
	.json_array = h_json_array,
	.json_end = h_json_end,
	.json_key = h_json_key,
	.json_string = h_json_string,
	.json_int = h_json_int,
	.json_number = h_json_number,
	.json_bool = h_json_bool,
	.json_null = h_json_null,
	.json_raw = h_json_raw,
	.json_text = h_json_text,
	.request_cached = h_request_cached,
	.snapshot_push_wait = h_snapshot_push_wait,
	.task = h_task,
};


const struct ghl_host_api *step_host_api(void)
{
	return &host_api;
}

/* ---- runs ------------------------------------------------------------------ */

ghl_step_ctx *step_ctx_new(const struct step_run *run)
{
	ghl_step_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->app = run->app;
	ctx->journal = run->journal;
	ctx->job = run->job;
	ctx->impl = step_impl_ref(run->impl);
	ctx->config = run->config ? json_clone(run->config) : json_new_object();
	ctx->compensating = run->compensate;
	ctx->ended = run->ended;
	ctx->ended_arg = run->arg;
	ctx->outputs = json_new_object();
	ctx->log = json_new_array();
	ctx->start_ms = now_monotonic_ms();
	return ctx;
}

void step_ctx_start(ghl_step_ctx *ctx)
{
	step_call(ctx);
}

/* Free a run nothing points to any more. */
static void ctx_release(ghl_step_ctx *ctx)
{
	drop_state(ctx);
	arena_clear(ctx);
	free(ctx->arena);
	clear_request(ctx);
	step_impl_unref(ctx->impl);
	json_free(ctx->config);
	json_free(ctx->outputs);
	json_free(ctx->log);
	json_free(ctx->resp);
	free(ctx->resp_message);
	free(ctx->trace_id);
	free(ctx->fail_msg);
	free(ctx->task_id);
	free(ctx);
}

ghl_step_ctx *step_ctx_free(ghl_step_ctx *ctx)
{
	if (!ctx)
		return NULL;
	drop_state(ctx); /* the step is not called again, even when a reply is still due */
	if (ctx->pending) {
		/* a request or timer is out: free when it comes back */
		if (ctx->timer) {
			event_free(ctx->timer);
			ctx->timer = NULL;
		} else if (ctx->push_wait) {
			push_poller_cancel(ctx->app->push_poller, ctx->push_wait);
			ctx->push_wait = NULL;
		} else if (ctx->cache_wait) {
			get_cache_leave(ctx->app->get_cache, ctx->cache_wait);
			ctx->cache_wait = NULL;
		} else {
			ctx->abandoned = 1;
			return NULL;
		}
	}
	ctx_release(ctx);
	return NULL;
}

struct step_impl *step_ctx_impl(const ghl_step_ctx *ctx)
{
	return ctx->impl;
}

const struct json *step_ctx_outputs(const ghl_step_ctx *ctx)
{
	return ctx->outputs;
}

const char *step_ctx_error(const ghl_step_ctx *ctx, int *retryable, long long *retry_after_ms)
{
	if (retryable)
		*retryable = ctx->fail_retryable;
	if (retry_after_ms)
		*retry_after_ms = ctx->retry_after_ms;
	if (!ctx->failed)
		return NULL;
	return ctx->fail_msg ? ctx->fail_msg : "the step failed without a message";
}

const char *step_ctx_task_id(const ghl_step_ctx *ctx)
{
	return ctx->task_id;
}

int step_ctx_rollback(const ghl_step_ctx *ctx)
{
	return ctx->failed && ctx->rollback;
}

void step_ctx_describe(const ghl_step_ctx *ctx, struct json *d)
{
	json_object_set_take(d, "duration_ms", json_new_int(now_monotonic_ms() - ctx->start_ms));
	json_object_set_take(d, "requests", json_new_int(ctx->requests));
	if (ctx->resp_status)
		json_object_set_take(d, "ghl_status", json_new_int(ctx->resp_status));
	if (ctx->trace_id)
		json_object_set_take(d, "trace_id", json_new_string(ctx->trace_id));
	if (json_len(ctx->log))
		json_object_set_take(d, "log", json_clone(ctx->log));
}

/* One call of the step's state machine; on DONE or FAIL the owner is told. */
static void step_call(ghl_step_ctx *ctx)
{
	arena_clear(ctx);
	ctx->failed = 0;
	int r = ctx->impl->ops->run(ctx->impl, ctx, ctx->compensating);
	arena_clear(ctx);
	if (r == GHL_STEP_WAIT) {
		if (!ctx->pending) {
			h_fail(ctx, 0, "returned WAIT without starting a request or a sleep");
			ctx->ended(ctx->ended_arg, ctx, STEP_RUN_FAILED);
			return;
		}
		if (!ctx->timer) {
			ctx->rq_start_ms = now_monotonic_ms();
			request_go(ctx);
		}
		return;
	}
	if (ctx->pending && !ctx->timer) {
		/* prepared a request but did not wait for it: drop it */
		ctx->pending = 0;
		clear_request(ctx);
	}
	if (r == GHL_STEP_DONE && !ctx->failed) {
		ctx->ended(ctx->ended_arg, ctx, STEP_RUN_DONE);
		return;
	}
	if (r != GHL_STEP_FAIL && !ctx->failed)
		h_fail(ctx, 0, "returned an unknown result %d", r);
	ctx->failed = 1; /* also when FAIL came without fail() */
	ctx->ended(ctx->ended_arg, ctx, STEP_RUN_FAILED);
}
