/* api_steps.c — /api/v1/steps (the registered steps and their config
 * schemas), POST /api/v1/agencies/{id}/pipeline/dry-run (run a pipeline step
 * by step against the configured GHL, outside the scheduler), and the
 * pipeline check behind PATCH /agencies/{id} (api_settings_validate_pipeline). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "client_data.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "predicate.h"
#include "registry.h"
#include "runner.h"

/* ---- the settings validator ----------------------------------------------- */

/* Add pipeline problems ({"field","message"} items) to out under "settings.". */
static void add_settings_problems(struct api_problems *out, const struct json *probs)
{
	for (size_t i = 0; i < json_len(probs); i++) {
		const struct json *it = json_at(probs, i);
		const char *f = json_get_str(it, "field");
		char *path = xasprintf("settings.%s", f ? f : "pipeline");
		api_problem(out, path, "%s", json_get_str(it, "message"));
		free(path);
	}
}

int api_settings_keep_secrets(struct api_req *r, struct json *settings, const char *stored_text)
{
	struct json *stored = json_parse(stored_text, strlen(stored_text), JSON_DEFAULT_MAX_DEPTH,
					 NULL);
	struct json *probs = json_new_array();
	size_t n = pipeline_keep_secrets(settings, stored, probs);
	json_free(stored);
	if (n) {
		struct api_problems p;
		api_problems_init(&p);
		add_settings_problems(&p, probs);
		api_reply_problems(r, &p);
	}
	json_free(probs);
	return n ? -1 : 0;
}

int api_settings_validate_pipeline(void *arg, const struct json *settings, struct api_problems *out)
{
	struct app *app = arg;
	if (api_settings_accept_objects(NULL, settings, out))
		return -1;
	/* the operator's ceiling, which no agency setting lifts */
	long long ceiling = app->cfg->max_concurrent_jobs_ceiling;
	const struct json *mcj = json_get(settings, "max_concurrent_jobs");
	if (mcj && mcj->type == JSON_NUMBER && mcj->u.num.is_int && mcj->u.num.i > ceiling)
		api_problem(out, "settings.max_concurrent_jobs",
			    "must be at most %lld (max_concurrent_jobs_ceiling, set in the "
			    "agent's configuration)",
			    ceiling);
	struct json *probs = json_new_array();
	size_t n = pipeline_validate(app->steps, settings, probs);
	add_settings_problems(out, probs);
	json_free(probs);
	return n || out->n ? -1 : 0;
}

/* ---- GET /steps ------------------------------------------------------------ */

static void steps_list(struct api_req *r)
{
	const struct step_registry *reg = r->app->steps;
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "items");
	jw_array_begin(&w);
	for (size_t i = 0; reg && i < reg->n; i++) {
		const struct step_impl *s = reg->steps[i];
		jw_object_begin(&w);
		jw_key(&w, "name");
		jw_string(&w, s->name);
		jw_key(&w, "version");
		jw_string(&w, s->version);
		jw_key(&w, "kind");
		jw_string(&w, s->kind == STEP_KIND_LUA ? "lua" : "c");
		jw_key(&w, "description");
		jw_string(&w, s->description);
		jw_key(&w, "config_schema");
		if (s->schema)
			jw_value(&w, s->schema);
		else
			jw_null(&w);
		jw_key(&w, "client_fields");
		jw_array_begin(&w);
		for (size_t k = 0; k < s->nclient_fields; k++)
			jw_string(&w, s->client_fields[k]);
		jw_array_end(&w);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_object_end(&w);
	api_reply_json(r, 200, buf_cstr(&b));
	buf_clear(&b);
}

/* ---- POST /agencies/{id}/pipeline/dry-run ---------------------------------- */

static const struct api_field dry_fields[] = {
	{.name = "client_data", .type = API_T_ANY},
	{.name = "pipeline", .type = API_T_ARRAY, .max_len = 100},
	{.name = "snapshot_id", .type = API_T_UUID},
	{0},
};

struct dry {
	struct api_req *r;
	struct json *client;
	struct json *pipeline; /* the array being run */
	const char *source;    /* "request" | "agency" | "default" */
	char *company;
	struct json *snapshot; /* the job's snapshot (snapshot_id given) or NULL */
	struct json *outputs;  /* every step's outputs so far */
	struct buf steps;      /* the answer's "steps" items */
	size_t i;
	int failed;
	int64_t started_ms;
};

static void dry_free(void *arg)
{
	struct dry *d = arg;
	json_free(d->client);
	json_free(d->pipeline);
	json_free(d->outputs);
	json_free(d->snapshot);
	free(d->company);
	buf_clear(&d->steps);
	free(d);
}

static void dry_next(struct dry *d);

static void dry_finish(struct dry *d)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"status\":");
	json_write_string(&b, d->failed ? "FAILED" : "COMPLETED");
	buf_puts(&b, ",\"pipeline_source\":");
	json_write_string(&b, d->source);
	buf_puts(&b, ",\"client_data\":");
	json_write(&b, d->client);
	buf_puts(&b, ",\"steps\":[");
	buf_append(&b, d->steps.data ? d->steps.data : "", d->steps.len);
	buf_puts(&b, "],\"outputs\":");
	json_write(&b, d->outputs);
	buf_putc(&b, '}');
	struct api_req *r = d->r;
	api_reply_json(r, 200, buf_cstr(&b)); /* frees d */
	buf_clear(&b);
}

static void dry_step_done(void *arg, const char *status, const char *outputs_json,
			  const char *log_json, const char *error)
{
	struct dry *d = arg;
	const struct json *item = json_at(d->pipeline, d->i);
	if (d->steps.len)
		buf_putc(&d->steps, ',');
	buf_printf(&d->steps, "{\"index\":%zu,\"step\":", d->i);
	json_write_string(&d->steps, json_get_str(item, "step"));
	buf_puts(&d->steps, ",\"status\":");
	json_write_string(&d->steps, status);
	buf_printf(&d->steps, ",\"duration_ms\":%lld,\"outputs\":",
		   (long long)(now_monotonic_ms() - d->started_ms));
	buf_puts(&d->steps, outputs_json && *outputs_json ? outputs_json : "{}");
	buf_puts(&d->steps, ",\"log\":");
	buf_puts(&d->steps, log_json && *log_json ? log_json : "[]");
	buf_puts(&d->steps, ",\"error\":");
	if (error)
		json_write_string(&d->steps, error);
	else
		buf_puts(&d->steps, "null");
	buf_putc(&d->steps, '}');
	struct json *outs = outputs_json ? json_parse(outputs_json, strlen(outputs_json),
						      JSON_DEFAULT_MAX_DEPTH, NULL)
					 : NULL;
	for (size_t k = 0; outs && outs->type == JSON_OBJECT && k < outs->u.obj.n; k++)
		json_object_set_take(d->outputs, outs->u.obj.keys[k],
				     json_clone(outs->u.obj.vals[k]));
	json_free(outs);
	int cont = str_eq(json_get_str(item, "on_error"), "continue");
	if (strcmp(status, "COMPLETED") && strcmp(status, "SKIPPED") && !cont) {
		d->failed = 1;
		dry_finish(d);
		return;
	}
	d->i++;
	dry_next(d);
}

/* The entry's `when` is false: the answer shows it SKIPPED and the run goes
 * on (1); 0: the step runs. The job a dry run's `when` sees is
 * runner_run_once's synthetic one. */
static int dry_skipped(struct dry *d, const struct json *item)
{
	const struct json *when = json_get(item, "when");
	if (!when || when->type != JSON_STRING)
		return 0;
	struct json *job = json_new_object();
	json_object_set_take(job, "id", json_new_string("00000000-0000-0000-0000-000000000000"));
	json_object_set_take(job, "agency_id", json_new_string(api_param(d->r, 0)));
	json_object_set_take(job, "company_id", json_new_string(d->company));
	json_object_set_take(job, "snapshot",
			     d->snapshot ? json_clone(d->snapshot) : json_new_null());
	json_object_set_take(job, "attempt", json_new_int(1));
	json_object_set_take(job, "retry_count", json_new_int(0));
	struct predicate_roots roots = {d->client, d->outputs, job};
	struct err e;
	int rc = predicate_eval(when->u.str.s, when->u.str.len, &roots, &e);
	json_free(job);
	if (rc == 1)
		return 0;
	if (rc < 0) /* the pipeline was checked first: not reached */
		dry_step_done(d, "FAILED", "{}", "[]", e.msg);
	else
		dry_step_done(d, "SKIPPED", "{}",
			      "[{\"level\":\"info\",\"message\":\"skipped: its when is false\"}]",
			      NULL);
	return 1;
}

static void dry_next(struct dry *d)
{
	if (d->i >= json_len(d->pipeline)) {
		dry_finish(d);
		return;
	}
	const struct json *item = json_at(d->pipeline, d->i);
	if (dry_skipped(d, item))
		return;
	struct step_impl *impl = step_registry_find(d->r->app->steps, json_get_str(item, "step"));
	if (!impl) { /* unregistered since the check (a reload) */
		dry_step_done(d, "FAILED", "{}", "[]", "the step is not registered any more");
		return;
	}
	d->started_ms = now_monotonic_ms();
	runner_run_once(d->r->app, impl, api_param(d->r, 0), d->company, d->snapshot, d->client,
			json_get(item, "config"), d->outputs, dry_step_done, d);
}

/* A sample client with a fresh email, so repeated dry runs create new objects. */
static struct json *sample_client(void)
{
	char *tok = crypto_random_token(6);
	for (char *p = tok; p && *p; p++)
		*p = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : 'x';
	char *email = xasprintf("dry-run-%s@example.com", tok ? tok : "0");
	struct json *c = json_new_object();
	json_object_set_take(c, "name", json_new_string("Dry Run Client"));
	json_object_set_take(c, "email", json_new_string(email));
	json_object_set_take(c, "first_name", json_new_string("Dry"));
	json_object_set_take(c, "last_name", json_new_string("Run"));
	json_object_set_take(c, "tags", json_new_array());
	json_array_push_take(json_get(c, "tags"), json_new_string("dry-run"));
	free(email);
	free(tok);
	return c;
}

static void dry_agency(struct api_req *r, PGresult *res)
{
	struct dry *d = r->data;
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	if (!PQgetisnull(res, 0, 1))
		d->company = xstrdup(PQgetvalue(res, 0, 1));
	if (json_get_str(r->body, "snapshot_id")) {
		if (PQgetisnull(res, 0, 2)) {
			struct api_problems p;
			api_problems_init(&p);
			api_problem(&p, "snapshot_id", "no such snapshot for this agency");
			api_reply_problems(r, &p);
			return;
		}
		const char *sn = PQgetvalue(res, 0, 2);
		d->snapshot = json_parse(sn, strlen(sn), JSON_DEFAULT_MAX_DEPTH, NULL);
	}
	const struct json *given = json_get(r->body, "pipeline");
	if (given) {
		/* an edited pipeline shows masks where the stored one has secrets */
		struct json *wrap = json_new_object();
		json_object_set_take(wrap, "pipeline", json_clone(given));
		if (api_settings_keep_secrets(
			    r, wrap, PQgetisnull(res, 0, 0) ? "{}" : PQgetvalue(res, 0, 0))) {
			json_free(wrap);
			return;
		}
		d->pipeline = json_clone(json_get(wrap, "pipeline"));
		json_free(wrap);
		d->source = "request";
	} else {
		const char *st = PQgetisnull(res, 0, 0) ? "{}" : PQgetvalue(res, 0, 0);
		struct json *settings = json_parse(st, strlen(st), JSON_DEFAULT_MAX_DEPTH, NULL);
		const char *dp = r->app->cfg->default_pipeline;
		struct json *def = json_parse(dp, strlen(dp), JSON_DEFAULT_MAX_DEPTH, NULL);
		d->pipeline = pipeline_effective(settings, def);
		d->source = json_get(settings, "pipeline") ? "agency" : "default";
		json_free(settings);
		json_free(def);
	}
	if (!d->pipeline) {
		api_reply_error(r, 422, "no_pipeline",
				"the agency has no pipeline and no default_pipeline is configured",
				NULL);
		return;
	}
	struct json *wrap = json_new_object();
	json_object_set_take(wrap, "pipeline", json_clone(d->pipeline));
	struct json *probs = json_new_array();
	pipeline_validate(r->app->steps, wrap, probs);
	json_free(wrap);
	if (json_len(probs)) {
		struct api_problems p;
		api_problems_init(&p);
		for (size_t i = 0; i < json_len(probs); i++)
			api_problem(&p, json_get_str(json_at(probs, i), "field"), "%s",
				    json_get_str(json_at(probs, i), "message"));
		json_free(probs);
		api_reply_problems(r, &p);
		return;
	}
	json_free(probs);
	log_info("pipeline dry run", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "source", d->source, NULL);
	dry_next(d);
}

static void pipeline_dry_run(struct api_req *r)
{
	const struct json *given = json_get(r->body, "client_data");
	if (given) {
		struct json *probs = json_new_array();
		client_data_validate(given, probs);
		if (json_len(probs)) {
			struct api_problems p;
			api_problems_init(&p);
			for (size_t i = 0; i < json_len(probs); i++)
				api_problem(&p, json_get_str(json_at(probs, i), "field"), "%s",
					    json_get_str(json_at(probs, i), "message"));
			json_free(probs);
			api_reply_problems(r, &p);
			return;
		}
		json_free(probs);
	}
	struct dry *d = xcalloc(1, sizeof(*d));
	d->r = r;
	d->client = given ? json_clone(given) : sample_client();
	d->outputs = json_new_object();
	buf_init(&d->steps);
	r->data = d;
	r->data_free = dry_free;
	const char *params[] = {api_param(r, 0), json_get_str(r->body, "snapshot_id")};
	api_query(
		r,
		"SELECT a.settings_json::text, a.ghl_agency_id,"
		" CASE WHEN s.id IS NULL THEN NULL ELSE json_build_object('id', s.id,"
		"  'ghl_snapshot_id', s.ghl_snapshot_id, 'name', s.name, 'is_active', s.is_active,"
		"  'agency_id', s.agency_id)::text END"
		" FROM agencies a LEFT JOIN snapshots s ON s.id = $2::uuid AND s.agency_id = a.id"
		" WHERE a.id = $1::uuid AND a.deleted_at IS NULL",
		2, params, dry_agency);
}

/* ---- routes --------------------------------------------------------------- */

static const struct api_endpoint ep_steps = {.allow = API_ALLOW_STAFF};
static const struct api_endpoint ep_dry = {
	.allow = API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN, .agency_scoped = 1, .body = dry_fields};

static void h_steps(struct http_ctx *c)
{
	api_handle(c, &ep_steps, steps_list);
}

static void h_dry(struct http_ctx *c)
{
	api_handle(c, &ep_dry, pipeline_dry_run);
}

static const struct http_route step_routes[] = {
	{"GET", "/api/v1/steps", h_steps},
	{"POST", "/api/v1/agencies/{id}/pipeline/dry-run", h_dry},
};

const struct route_table api_steps_route_table = {step_routes,
						  sizeof(step_routes) / sizeof(step_routes[0])};
