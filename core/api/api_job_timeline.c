/* api_job_timeline.c — a job's full timeline, like a CI run view: GET
 * /jobs/{id}/timeline (every step of the job's pinned pipeline with its state,
 * attempts, outputs and compensation, and the objects a failed job left in
 * GHL) and GET /jobs/{id}/requests (the GHL requests of its step runs, from
 * job_requests: bodies masked and cut by core/engine/request_log.c). Scoped
 * like GET /jobs/{id}: a job outside the caller's scope answers 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "json.h"

/* Log rows read per job (a job retried without end stops showing old ones). */
#define TIMELINE_MAX_LOGS_S "5000"
/* job_requests rows answered per call */
#define REQUESTS_MAX_S "1000"

/* ---- GET /jobs/{id}/timeline ---------------------------------------------- */

static const char timeline_sql[] =
	"SELECT j.status::text, COALESCE(j.context_json->'pipeline', '[]'::jsonb)::text,"
	" (SELECT COALESCE(json_agg(json_build_object('step', l.step, 'status', l.status,"
	"   'details', l.details_json, 'at', " API_SQL_ISO(
		"l.timestamp") ")"
			       "   ORDER BY l.timestamp, l.id), '[]'::json)"
			       "  FROM (SELECT * FROM provisioning_logs l WHERE l.job_id = j.id"
			       "        ORDER BY l.timestamp DESC, l.id DESC LIMIT " TIMELINE_MAX_LOGS_S
			       ") l)::text,"
			       " j.cancel_requested, " API_SQL_ISO(
				       "now()") ", j.error_message"
						" FROM provisioning_jobs j WHERE j.id = $1::uuid"
						" AND ($2::uuid[] IS NULL OR j.agency_id = ANY($2::uuid[]))";

/* One attempt of one step, from its log rows. */
struct attempt {
	int64_t n;
	const char *status; /* the last row's */
	const char *started, *ended;
	const struct json *end; /* the last row's details */
};

struct step_view {
	struct attempt *att;
	size_t natt;
	const char *comp_status, *comp_at, *comp_error; /* its compensation, if any */
};

static int finished(const char *job_status)
{
	return !strcmp(job_status, "COMPLETED") || !strcmp(job_status, "FAILED") ||
	       !strcmp(job_status, "CANCELLED");
}

static void collect(struct step_view *v, size_t n, const struct json *logs)
{
	for (size_t i = 0; i < json_len(logs); i++) {
		const struct json *l = json_at(logs, i);
		const struct json *d = json_get(l, "details");
		int64_t index, att = 0;
		if (json_get_int(d, "index", &index) || index < 0 || (size_t)index >= n)
			continue;
		json_get_int(d, "attempt", &att);
		const char *st = json_get_str(l, "status");
		const char *at = json_get_str(l, "at");
		struct step_view *s = &v[index];
		if (json_get_bool(d, "compensate") == 1) {
			if (st && strcmp(st, "STARTED")) {
				s->comp_status = st;
				s->comp_at = at;
				s->comp_error = json_get_str(d, "error");
			}
			continue;
		}
		struct attempt *a = s->natt ? &s->att[s->natt - 1] : NULL;
		if (!a || a->n != att) {
			s->att = xrealloc(s->att, (s->natt + 1) * sizeof(*s->att));
			a = &s->att[s->natt++];
			memset(a, 0, sizeof(*a));
			a->n = att;
		}
		if (st && !strcmp(st, "STARTED") && !a->started)
			a->started = at;
		else if (st && strcmp(st, "STARTED"))
			a->ended = at;
		a->status = st;
		a->end = d;
	}
}

/* The step's state: done, running, waiting, skipped, pending, failed,
 * retrying, compensated or not_run. */
static const char *state_of(const struct step_view *s, const char *job_status)
{
	if (s->comp_status && !strcmp(s->comp_status, "COMPLETED"))
		return "compensated";
	if (!s->natt)
		return finished(job_status) ? "not_run" : "pending";
	const char *st = s->att[s->natt - 1].status;
	if (!st)
		return "pending";
	if (!strcmp(st, "COMPLETED"))
		return "done";
	if (!strcmp(st, "SKIPPED"))
		return "skipped";
	if (!strcmp(st, "WAITING"))
		return "waiting";
	if (!strcmp(st, "FAILED"))
		return !strcmp(job_status, "RETRYING") || !strcmp(job_status, "PENDING")
			       ? "retrying"
			       : "failed";
	/* STARTED without an end: running now, or cut off (a restart re-runs it) */
	if (!strcmp(job_status, "IN_PROGRESS"))
		return "running";
	return finished(job_status) ? "failed" : "pending";
}

static void put_str_or_null(struct jw *w, const char *key, const char *v)
{
	jw_key(w, key);
	jw_string(w, v);
}

static void put_value(struct jw *w, const char *key, const struct json *v)
{
	jw_key(w, key);
	if (v)
		jw_value(w, v);
	else
		jw_null(w);
}

static void put_attempt(struct jw *w, const struct attempt *a)
{
	jw_object_begin(w);
	jw_key(w, "attempt");
	jw_int(w, a->n);
	put_str_or_null(w, "status", a->status);
	put_str_or_null(w, "started_at", a->started);
	put_str_or_null(w, "finished_at", a->ended);
	const struct json *d = a->end;
	put_value(w, "duration_ms", a->ended ? json_get(d, "duration_ms") : NULL);
	put_value(w, "requests", a->ended ? json_get(d, "requests") : NULL);
	put_value(w, "ghl_status", json_get(d, "ghl_status"));
	put_str_or_null(w, "trace_id", json_get_str(d, "trace_id"));
	put_str_or_null(w, "error", json_get_str(d, "error"));
	put_value(w, "log", json_get(d, "log"));
	jw_object_end(w);
}

/* An output naming something the step created in GHL: "id" or "…_id". */
static int is_object_key(const char *k)
{
	size_t n = strlen(k);
	return !strcmp(k, "id") || (n > 3 && !strcmp(k + n - 3, "_id"));
}

static void put_left(struct jw *w, const struct json *pipeline, const struct step_view *v,
		     const char *job_status)
{
	jw_key(w, "left_in_ghl");
	jw_array_begin(w);
	for (size_t i = 0;
	     strcmp(job_status, "COMPLETED") && finished(job_status) && i < json_len(pipeline);
	     i++) {
		if (strcmp(state_of(&v[i], job_status), "done"))
			continue;
		const struct json *out = json_get(v[i].att[v[i].natt - 1].end, "outputs");
		for (size_t k = 0; out && out->type == JSON_OBJECT && k < out->u.obj.n; k++) {
			const struct json *val = out->u.obj.vals[k];
			if (!is_object_key(out->u.obj.keys[k]) || val->type != JSON_STRING)
				continue;
			jw_object_begin(w);
			jw_key(w, "index");
			jw_int(w, (int64_t)i);
			put_str_or_null(w, "step", json_get_str(json_at(pipeline, i), "step"));
			put_str_or_null(w, "key", out->u.obj.keys[k]);
			put_str_or_null(w, "value", val->u.str.s);
			jw_object_end(w);
		}
	}
	jw_array_end(w);
}

static void put_step(struct jw *w, const struct json *item, size_t i, const struct step_view *s,
		     const char *job_status)
{
	const struct attempt *last = s->natt ? &s->att[s->natt - 1] : NULL;
	jw_object_begin(w);
	jw_key(w, "index");
	jw_int(w, (int64_t)i);
	put_str_or_null(w, "step", json_get_str(item, "step"));
	put_str_or_null(w, "state", state_of(s, job_status));
	put_str_or_null(w, "on_error", json_get_str(item, "on_error"));
	put_str_or_null(w, "started_at", s->natt ? s->att[0].started : NULL);
	put_str_or_null(w, "finished_at", last ? last->ended : NULL);
	put_str_or_null(w, "error",
			last && last->status && !strcmp(last->status, "FAILED")
				? json_get_str(last->end, "error")
				: NULL);
	put_value(w, "outputs",
		  last && last->status && !strcmp(last->status, "COMPLETED")
			  ? json_get(last->end, "outputs")
			  : NULL);
	jw_key(w, "attempts");
	jw_array_begin(w);
	for (size_t k = 0; k < s->natt; k++)
		put_attempt(w, &s->att[k]);
	jw_array_end(w);
	jw_key(w, "compensation");
	if (s->comp_status) {
		jw_object_begin(w);
		put_str_or_null(w, "status", s->comp_status);
		put_str_or_null(w, "finished_at", s->comp_at);
		put_str_or_null(w, "error", s->comp_error);
		jw_object_end(w);
	} else {
		jw_null(w);
	}
	jw_object_end(w);
}

static void timeline_done(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "job");
		return;
	}
	const char *status = PQgetvalue(res, 0, 0);
	struct err e;
	struct json *pipeline = json_parse(PQgetvalue(res, 0, 1), strlen(PQgetvalue(res, 0, 1)),
					   JSON_DEFAULT_MAX_DEPTH, &e);
	struct json *logs = json_parse(PQgetvalue(res, 0, 2), strlen(PQgetvalue(res, 0, 2)),
				       JSON_DEFAULT_MAX_DEPTH, &e);
	if (!pipeline || !logs) {
		json_free(pipeline);
		json_free(logs);
		api_reply_internal(r, "timeline: unreadable pipeline or logs");
		return;
	}
	size_t n = json_len(pipeline);
	struct step_view *v = xcalloc(n ? n : 1, sizeof(*v));
	collect(v, n, logs);
	size_t done = 0;
	const char *current = NULL;
	int current_index = -1;
	for (size_t i = 0; i < n; i++) {
		const char *st = state_of(&v[i], status);
		if (!strcmp(st, "done") || !strcmp(st, "skipped") || !strcmp(st, "compensated"))
			done++;
		if (current_index < 0 && (!strcmp(st, "running") || !strcmp(st, "waiting"))) {
			current_index = (int)i;
			current = json_get_str(json_at(pipeline, i), "step");
		}
	}
	struct buf b;
	buf_init(&b);
	struct jw w;
	jw_init(&w, &b);
	jw_object_begin(&w);
	put_str_or_null(&w, "job_id", api_param(r, 0));
	put_str_or_null(&w, "status", status);
	put_str_or_null(&w, "error_message", PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5));
	jw_key(&w, "total");
	jw_int(&w, (int64_t)n);
	jw_key(&w, "done");
	jw_int(&w, (int64_t)done);
	jw_key(&w, "current_index");
	if (current_index >= 0)
		jw_int(&w, current_index);
	else
		jw_null(&w);
	/* a cancel waits for the step in flight, then stops */
	jw_key(&w, "cancel");
	if (!strcmp(PQgetvalue(res, 0, 3), "t") && !finished(status)) {
		jw_object_begin(&w);
		put_str_or_null(&w, "waits_for", current);
		jw_object_end(&w);
	} else {
		jw_null(&w);
	}
	put_str_or_null(&w, "server_time", PQgetvalue(res, 0, 4));
	jw_key(&w, "steps");
	jw_array_begin(&w);
	for (size_t i = 0; i < n; i++)
		put_step(&w, json_at(pipeline, i), i, &v[i], status);
	jw_array_end(&w);
	put_left(&w, pipeline, v, status);
	jw_object_end(&w);
	api_reply_json(r, 200, buf_cstr(&b));
	buf_clear(&b);
	for (size_t i = 0; i < n; i++)
		free(v[i].att);
	free(v);
	json_free(pipeline);
	json_free(logs);
}

static void job_timeline(struct api_req *r)
{
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0), scope};
	api_query(r, timeline_sql, 2, params, timeline_done);
	free(scope);
}

/* ---- GET /jobs/{id}/requests ---------------------------------------------- */

static const char *const requests_query[] = {"step", NULL};

static const char requests_sql[] =
	"SELECT (SELECT COALESCE(json_agg(json_build_object('id', q.id::text,"
	"   'step_index', q.step_index, 'attempt', q.attempt, 'compensate', q.compensate,"
	"   'method', q.method, 'path', q.path, 'status', q.status,"
	"   'duration_ms', q.duration_ms, 'trace_id', q.trace_id, 'error', q.error,"
	"   'request_body', q.request_body, 'response_body', q.response_body,"
	"   'created_at', " API_SQL_ISO(
		"q.created_at") ") ORDER BY q.id), '[]'::json)"
				"  FROM (SELECT * FROM job_requests q WHERE q.job_id = j.id"
				"        AND ($3::int IS NULL OR q.step_index = $3::int)"
				"        ORDER BY q.id LIMIT " REQUESTS_MAX_S ") q)::text"
				" FROM provisioning_jobs j WHERE j.id = $1::uuid"
				" AND ($2::uuid[] IS NULL OR j.agency_id = ANY($2::uuid[]))";

static void requests_done(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "job");
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"items\":");
	json_text_compact(&b, PQgetvalue(res, 0, 0));
	buf_putc(&b, '}');
	api_reply_json(r, 200, buf_cstr(&b));
	buf_clear(&b);
}

static void job_requests(struct api_req *r)
{
	long long step = -1;
	api_query_int(r, "step", 0, 1000, -1, &step);
	if (api_query_ok(r))
		return;
	char *scope = api_scope_array(&r->who);
	char sb[24];
	snprintf(sb, sizeof(sb), "%lld", step);
	const char *params[] = {api_param(r, 0), scope, step >= 0 ? sb : NULL};
	api_query(r, requests_sql, 3, params, requests_done);
	free(scope);
}

/* ---- routes --------------------------------------------------------------- */

static const struct api_endpoint ep_timeline = {.allow = API_ALLOW_ANY};
static const struct api_endpoint ep_requests = {.allow = API_ALLOW_ANY, .query = requests_query};

static void h_timeline(struct http_ctx *c)
{
	api_handle(c, &ep_timeline, job_timeline);
}

static void h_requests(struct http_ctx *c)
{
	api_handle(c, &ep_requests, job_requests);
}

static const struct http_route timeline_routes[] = {
	{"GET", "/api/v1/jobs/{id}/timeline", h_timeline},
	{"GET", "/api/v1/jobs/{id}/requests", h_requests},
};

const struct route_table api_job_timeline_route_table = {
	timeline_routes, sizeof(timeline_routes) / sizeof(timeline_routes[0])};
