/* api_jobs.c — /api/v1 jobs: submit (with Idempotency-Key), batch submit
 * (JSON array or CSV, all or nothing), list with filters and keyset
 * pagination, get, logs newest first, retry (FAILED → PENDING, resuming at
 * the first step not COMPLETED), edit-and-retry (the same with new client
 * data, checked like a submission) and cancel.
 *
 * Access: ADMIN everything; AGENCY_ADMIN and API keys their agencies (submit,
 * read, retry, cancel); SUPPORT reads everything and may retry and cancel,
 * but not submit (nor edit-and-retry). A job outside the caller's scope answers 404. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_job_search.h"
#include "app.h"
#include "client_data.h"
#include "csv.h"
#include "http.h"
#include "job_submit.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"

#define BATCH_MAX_ROWS 10000
#define BATCH_MAX_PROBLEMS 1000
#define IDEMPOTENCY_KEY_MAX 255

/* One job as JSON, from a row of provisioning_jobs aliased `a`. */
/* clang-format off */
#define JOB_JSON(a)                                                                           \
	"json_build_object('id', " a ".id, 'agency_id', " a ".agency_id,"                     \
	" 'status', " a ".status, 'client_data', " a ".client_data_json,"                      \
	" 'snapshot_id', " a ".snapshot_id, 'location_id', " a ".location_id,"                 \
	" 'error_message', " a ".error_message, 'retry_count', " a ".retry_count,"             \
	" 'attempt', " a ".attempt, 'idempotency_key', " a ".idempotency_key,"                 \
	" 'cancel_requested', " a ".cancel_requested,"                                         \
	" 'batch_id', " a ".batch_id,"                                                         \
	" 'current_step', CASE WHEN " a ".status = 'IN_PROGRESS' THEN (SELECT l.step"         \
	"  FROM provisioning_logs l WHERE l.job_id = " a ".id AND l.status = 'STARTED'"        \
	"  ORDER BY l.\"timestamp\" DESC LIMIT 1) END,"                                      \
	" 'outputs', COALESCE(" a ".context_json->'outputs', '{}'::jsonb),"                    \
	" 'run_at', " API_SQL_ISO(a ".run_at") ","                                             \
	" 'started_at', " API_SQL_ISO(a ".started_at") ","                                     \
	" 'finished_at', " API_SQL_ISO(a ".finished_at") ","                                   \
	" 'created_at', " API_SQL_ISO(a ".created_at") ","                                     \
	" 'updated_at', " API_SQL_ISO(a ".updated_at") ")::text"
/* clang-format on */

/* The open drift of job `j`: [{kind, detail, first_seen, last_seen}]. */
/* clang-format off */
#define JOB_DRIFT_JSON                                                                        \
	"(SELECT COALESCE(jsonb_agg(jsonb_build_object('kind', d.kind, 'detail', d.detail,"   \
	" 'first_seen', " API_SQL_ISO("d.first_seen") ", 'last_seen', "                       \
	API_SQL_ISO("d.last_seen") ") ORDER BY d.first_seen), '[]'::jsonb)"                    \
	" FROM job_drift d WHERE d.job_id = j.id AND d.resolved_at IS NULL)"
/* clang-format on */

/* `j` is in the caller's scope ($n = api_scope_array). */
#define IN_SCOPE(n) "($" n "::uuid[] IS NULL OR j.agency_id = ANY($" n "::uuid[]))"

static const char *const job_statuses[] = {"PENDING",  "IN_PROGRESS", "COMPLETED", "FAILED",
					   "RETRYING", "CANCELLED",   NULL};

/* ---- shared helpers ------------------------------------------------------- */

/* Add the {"field","message"} items of a problems array (client_data_validate's
 * output) to p, the field under prefix ("rows[3]") and the message + suffix. */
static void add_problems(struct api_problems *p, const struct json *arr, const char *prefix,
			 const char *suffix)
{
	for (size_t i = 0; i < json_len(arr); i++) {
		const struct json *it = json_at(arr, i);
		const char *f = json_get_str(it, "field");
		const char *m = json_get_str(it, "message");
		char *path = prefix ? xasprintf("%s.%s", prefix, f ? f : "client_data")
				    : xstrdup(f ? f : "client_data");
		api_problem(p, path, "%s%s", m ? m : "invalid", suffix ? suffix : "");
		free(path);
	}
}

static const char *header(const struct api_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->c->req), name);
}

static int *int_data(struct api_req *r, int v)
{
	int *p = xmalloc(sizeof(int));
	*p = v;
	r->data = p;
	r->data_free = free;
	return p;
}

/* ---- POST /agencies/{id}/jobs --------------------------------------------- */

static const struct api_field submit_loose[] = {
	{.name = "client_data", .type = API_T_ANY},
	{.name = "snapshot_id", .type = API_T_ANY},
	{0},
};

static const struct api_field submit_fields[] = {
	{.name = "client_data", .type = API_T_ANY, .flags = API_F_REQUIRED},
	{.name = "snapshot_id", .type = API_T_UUID, .flags = API_F_NULLABLE},
	{0},
};

/* Insert, or find by Idempotency-Key, in one round trip. The same rules as
 * jobs_insert_sql (core/engine/job_submit.h) — agency live, snapshot the agency's, key
 * unique per agency — but answering the whole row. Four texts, by whether a
 * snapshot and a key were given, rather than one with "$3 IS NULL OR …": a
 * statement whose plan depends on a parameter's nullness is planned again on
 * every call (PostgreSQL keeps choosing custom plans), and planning an insert
 * into a table with many indexes cost more than running it. Each of these
 * keeps one generic plan. */
#define SUBMIT_INSERT(snapshot_owned)                                                                      \
	"WITH ins AS ("                                                                                    \
	" INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id,"                        \
	"  idempotency_key, request_hash)"                                                                 \
	" SELECT $1::uuid, $2::jsonb, $3::uuid, $4, $5"                                                    \
	" WHERE EXISTS (SELECT 1 FROM agencies WHERE id = $1::uuid AND deleted_at IS NULL)" snapshot_owned \
	" ON CONFLICT (agency_id, idempotency_key) WHERE idempotency_key IS NOT NULL"                      \
	" DO NOTHING RETURNING *)"                                                                         \
	" SELECT true, ins.request_hash, " JOB_JSON("ins") " FROM ins"
#define SUBMIT_SNAPSHOT_OWNED \
	" AND EXISTS (SELECT 1 FROM snapshots WHERE id = $3::uuid AND agency_id = $1::uuid)"
#define SUBMIT_KEYED                                                            \
	" UNION ALL"                                                            \
	" SELECT false, j.request_hash, " JOB_JSON(                             \
		"j") " FROM provisioning_jobs j"                                \
		     " WHERE j.agency_id = $1::uuid AND j.idempotency_key = $4" \
		     "  AND NOT EXISTS (SELECT 1 FROM ins)"

/* [snapshot given][key given] */
static const char *const submit_sql[2][2] = {
	{SUBMIT_INSERT(""), SUBMIT_INSERT("") SUBMIT_KEYED},
	{SUBMIT_INSERT(SUBMIT_SNAPSHOT_OWNED), SUBMIT_INSERT(SUBMIT_SNAPSHOT_OWNED) SUBMIT_KEYED},
};

/* When submit_sql answered nothing: why (a new statement, so a key another
 * transaction just committed is visible). */
static const char submit_why_sql[] =
	"SELECT EXISTS (SELECT 1 FROM agencies WHERE id = $1::uuid AND deleted_at IS NULL),"
	" (SELECT j.request_hash FROM provisioning_jobs j"
	"  WHERE $2::text IS NOT NULL AND j.agency_id = $1::uuid AND j.idempotency_key = $2),"
	" (SELECT " JOB_JSON(
		"j") " FROM provisioning_jobs j"
		     "  WHERE $2::text IS NOT NULL AND j.agency_id = $1::uuid AND j.idempotency_key = $2)";

struct submit {
	char hash[65];
	char *key;
	int retried;
	struct api_problems p; /* the body's problems, until the pipeline's needs are known */
	struct json *cp;       /* client_data_validate's part of them */
};

static void submit_free(void *arg)
{
	struct submit *s = arg;
	free(s->key);
	api_problems_clear(&s->p);
	json_free(s->cp);
	free(s);
}

/* The agency's settings, for the client-data fields its pipeline needs. */
static const char agency_settings_sql[] =
	"SELECT settings_json::text FROM agencies WHERE id = $1::uuid AND deleted_at IS NULL";

/* The fields the agency's pipeline needs (res: agency_settings_sql's answer;
 * no row: none — the insert then answers 404). */
static struct json *needs_of(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1)
		return json_new_array();
	const char *settings = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
	return pipeline_agency_client_fields(r->app->steps, settings,
					     r->app->cfg->default_pipeline);
}

static void reply_existing(struct api_req *r, const char *stored_hash, const char *job_json)
{
	struct submit *s = r->data;
	if (!str_eq(stored_hash, s->hash)) {
		api_reply_error(
			r, 409, "idempotency_conflict",
			"this Idempotency-Key was used with another request body; use a new "
			"key for a new job",
			NULL);
		return;
	}
	api_add_header(r, "Idempotent-Replayed", "true");
	api_reply_json(r, 200, job_json);
}

static void submit_why(struct api_req *r, PGresult *res)
{
	if (strcmp(PQgetvalue(res, 0, 0), "t")) {
		api_reply_not_found(r, "agency");
		return;
	}
	if (!PQgetisnull(res, 0, 2)) {
		reply_existing(r, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		return;
	}
	struct api_problems p;
	api_problems_init(&p);
	api_problem(&p, "snapshot_id",
		    "no such snapshot for this agency (GET "
		    "/api/v1/agencies/{id}/snapshots lists them)");
	api_reply_problems(r, &p);
}

static void submitted(struct api_req *r, PGresult *res)
{
	struct submit *s = r->data;
	if (PQntuples(res) == 0) {
		const char *params[] = {api_param(r, 0), s->key};
		api_query(r, submit_why_sql, 2, params, submit_why);
		return;
	}
	if (!strcmp(PQgetvalue(res, 0, 0), "t")) {
		api_reply_json(r, 201, PQgetvalue(res, 0, 2));
		return;
	}
	reply_existing(r, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
}

/* 1 when key is a usable Idempotency-Key: 1..255 visible ASCII characters. */
static int key_ok(const char *key)
{
	size_t n = strlen(key);
	if (!n || n > IDEMPOTENCY_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			return 0;
	return 1;
}

/* The agency's settings are at hand: add the fields its pipeline needs that
 * the client lacks to the body's problems, then insert or answer 422. */
static void submit_with_needs(struct api_req *r, PGresult *res)
{
	struct submit *s = r->data;
	const struct json *client = json_get(r->body, "client_data");
	struct json *needs = needs_of(r, res);
	size_t before = json_len(s->cp); /* a field named there is not named twice */
	pipeline_missing_client_fields(needs, client, "client_data.", NULL, s->cp);
	for (size_t i = before; i < json_len(s->cp); i++)
		api_problem(&s->p, json_get_str(json_at(s->cp, i), "field"), "%s",
			    json_get_str(json_at(s->cp, i), "message"));
	json_free(needs);
	if (s->p.n) {
		struct api_problems p = s->p; /* api_reply_problems frees p after r (and s) */
		api_problems_init(&s->p);
		api_reply_problems(r, &p);
		return;
	}
	const char *snap = json_get_str(r->body, "snapshot_id");
	char *text = json_to_string(client);
	const char *params[] = {api_param(r, 0), text, snap, s->key, s->hash};
	api_query(r, submit_sql[snap != NULL][s->key != NULL], 5, params, submitted);
	free(text);
}

static void jobs_submit(struct api_req *r)
{
	if (api_rate_take(r, API_RATE_SUBMIT, 1))
		return;
	struct submit *s = xcalloc(1, sizeof(*s));
	r->data = s;
	r->data_free = submit_free;
	api_problems_init(&s->p);
	api_validate(r->body, submit_fields, NULL, &s->p);
	const struct json *client = json_get(r->body, "client_data");
	s->cp = json_new_array();
	if (client) {
		client_data_validate(client, s->cp);
		add_problems(&s->p, s->cp, NULL, NULL);
	}
	const char *key = header(r, "Idempotency-Key");
	if (key && !key_ok(key))
		api_problem(&s->p, "Idempotency-Key",
			    "must be 1 to %d visible ASCII characters (e.g. a UUID)",
			    IDEMPOTENCY_KEY_MAX);
	if (!client || client->type != JSON_OBJECT) { /* nothing a pipeline could check */
		struct api_problems p = s->p;
		api_problems_init(&s->p);
		api_reply_problems(r, &p);
		return;
	}
	const char *snap = json_get_str(r->body, "snapshot_id");
	s->key = key ? xstrdup(key) : NULL;
	jobs_request_hash(client, snap, s->hash);
	const char *params[] = {api_param(r, 0)};
	api_query(r, agency_settings_sql, 1, params, submit_with_needs);
}

/* ---- POST /agencies/{id}/jobs/batch --------------------------------------- */

static const struct api_field batch_row_fields[] = {
	{.name = "client_data", .type = API_T_ANY, .flags = API_F_REQUIRED},
	{.name = "snapshot_id", .type = API_T_UUID, .flags = API_F_NULLABLE},
	{0},
};

/* All rows in one statement: nothing is inserted when the agency is gone or
 * any row names a snapshot that is not the agency's. Ids are drawn first so
 * job_ids come back in row order. One statement = one transaction, and the
 * insert trigger sends one NOTIFY ghl_jobs for all rows. */
static const char batch_sql[] =
	"WITH rows AS MATERIALIZED ("
	"  SELECT gen_random_uuid() AS id, x.ord, x.v->'c' AS client,"
	"   (x.v->>'s')::uuid AS snap"
	"  FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(v, ord)),"
	" agency AS (SELECT id FROM agencies WHERE id = $1::uuid AND deleted_at IS NULL),"
	" bad AS (SELECT r.ord FROM rows r WHERE r.snap IS NOT NULL AND NOT EXISTS"
	"  (SELECT 1 FROM snapshots s WHERE s.id = r.snap AND s.agency_id = $1::uuid)),"
	" batch AS (INSERT INTO job_batches (agency_id, source, filename, total, created_by,"
	"  api_key_id) SELECT $1::uuid, $3, $4, (SELECT count(*) FROM rows), $5::uuid, $6::uuid"
	"  WHERE EXISTS (SELECT 1 FROM agency) AND NOT EXISTS (SELECT 1 FROM bad) RETURNING id),"
	" ins AS (INSERT INTO provisioning_jobs (id, agency_id, client_data_json, snapshot_id,"
	"  batch_id)"
	"  SELECT r.id, $1::uuid, r.client, r.snap, (SELECT id FROM batch) FROM rows r"
	"  WHERE EXISTS (SELECT 1 FROM agency) AND NOT EXISTS (SELECT 1 FROM bad)"
	"  ORDER BY r.ord RETURNING 1)"
	" SELECT (SELECT count(*) FROM agency), (SELECT count(*) FROM ins),"
	"  (SELECT COALESCE(json_agg(ord - 1 ORDER BY ord), '[]'::json) FROM bad)::text,"
	"  (SELECT COALESCE(json_agg(id ORDER BY ord), '[]'::json) FROM rows)::text,"
	"  (SELECT id FROM batch)";

/* The rows being built: payload = [{"c": client, "s": snapshot|null}, …]. */
struct batch {
	struct buf payload;
	size_t n;
	struct api_problems p;
	struct json *needs; /* the client-data fields the agency's pipeline needs */
	int is_csv;
	size_t *lines; /* CSV: the file's line of each row, for the problems */
};

static void batch_free(void *arg)
{
	struct batch *b = arg;
	json_free(b->needs);
	free(b->lines);
	buf_clear(&b->payload);
	api_problems_clear(&b->p);
	free(b);
}

static int batch_full(struct batch *b)
{
	if (b->p.n < BATCH_MAX_PROBLEMS)
		return 0;
	if (b->p.n == BATCH_MAX_PROBLEMS)
		api_problem(&b->p, "rows", "too many problems; fix these first");
	return 1;
}

/* Where row i is, for a problem: rows[i] (its index in a JSON batch), or
 * line[n] (its line in the CSV file, header included, as an editor shows it). */
static char *row_path(const struct batch *b, size_t i)
{
	return b->lines ? xasprintf("line[%zu]", b->lines[i]) : xasprintf("rows[%zu]", i);
}

/* Validate one row and add it to the payload. */
static void batch_row(struct batch *b, size_t i, const struct json *client, const char *snap)
{
	char *prefix = row_path(b, i);
	if (client && !batch_full(b)) {
		struct json *cp = json_new_array();
		client_data_validate(client, cp);
		pipeline_missing_client_fields(b->needs, client, "client_data.", NULL, cp);
		add_problems(&b->p, cp, prefix, NULL);
		json_free(cp);
	}
	free(prefix);
	buf_puts(&b->payload, b->n ? ",{\"c\":" : "[{\"c\":");
	if (client)
		json_write(&b->payload, client);
	else
		buf_puts(&b->payload, "null");
	buf_puts(&b->payload, ",\"s\":");
	if (snap)
		json_write_string(&b->payload, snap);
	else
		buf_puts(&b->payload, "null");
	buf_putc(&b->payload, '}');
	b->n++;
}

/* Rows of a JSON batch into b: 0, or -1 after replying (malformed JSON). */
static int batch_json(struct api_req *r, struct batch *b, const char *text, size_t len)
{
	struct json *doc = api_parse_json(r, text, len);
	if (!doc)
		return -1;
	r->body = doc; /* freed with r */
	const struct json *rows = doc;
	if (doc->type == JSON_OBJECT) {
		static const struct api_field wrap[] = {
			{.name = "jobs", .type = API_T_ARRAY, .flags = API_F_REQUIRED}, {0}};
		if (api_validate(doc, wrap, NULL, &b->p))
			return 0;
		rows = json_get(doc, "jobs");
	} else if (doc->type != JSON_ARRAY) {
		api_problem(&b->p, "body", "expected an array of jobs or {\"jobs\": [...]}, got %s",
			    json_type_name(doc->type));
		return 0;
	}
	size_t n = json_len(rows);
	if (n == 0 || n > BATCH_MAX_ROWS) {
		api_problem(&b->p, "rows", "must hold 1 to %d jobs (got %zu)", BATCH_MAX_ROWS, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct json *row = json_at(rows, i);
		char *prefix = xasprintf("rows[%zu]", i);
		if (!batch_full(b))
			api_validate(row, batch_row_fields, prefix, &b->p);
		free(prefix);
		const struct json *client = row->type == JSON_OBJECT ? json_get(row, "client_data")
								     : NULL;
		const struct json *snap = row->type == JSON_OBJECT ? json_get(row, "snapshot_id")
								   : NULL;
		batch_row(b, i, client,
			  snap && snap->type == JSON_STRING && api_is_uuid(snap->u.str.s)
				  ? snap->u.str.s
				  : NULL);
	}
	return 0;
}

/* client_data keys a CSV column may name (core/base/client_data.h), besides
 * custom_values.<key> and snapshot_id. */
static const char *const csv_columns[] = {"name",	 "email",   "first_name", "last_name",
					  "phone",	 "address", "city",	  "state",
					  "postal_code", "country", "website",	  "timezone",
					  "external_id", "tags",    NULL};

static int csv_column_known(const char *c)
{
	if (!strcmp(c, "snapshot_id") || (str_has_prefix(c, "custom_values.") && c[14]))
		return 1;
	for (const char *const *k = csv_columns; *k; k++)
		if (!strcmp(*k, c))
			return 1;
	return 0;
}

/* One CSV record → client_data (empty cells are omitted; tags split on ';'). */
static struct json *csv_client(const struct csv_record *hdr, const struct csv_record *rec,
			       const char **snap)
{
	struct json *c = json_new_object();
	*snap = NULL;
	for (size_t k = 0; k < hdr->n && k < rec->n; k++) {
		const char *col = hdr->fields[k], *v = rec->fields[k];
		if (!*v)
			continue;
		if (!strcmp(col, "snapshot_id")) {
			*snap = v;
		} else if (!strcmp(col, "tags")) {
			struct json *tags = json_new_array();
			const char *p = v;
			while (*p) {
				size_t n = strcspn(p, ";");
				char *t = xstrndup(p, n);
				char *tt = str_trim(t);
				if (*tt)
					json_array_push_take(tags, json_new_string(tt));
				free(t);
				p += n + (p[n] == ';');
			}
			json_object_set_take(c, "tags", tags);
		} else if (str_has_prefix(col, "custom_values.")) {
			struct json *cv = json_get(c, "custom_values");
			if (!cv) {
				cv = json_new_object();
				json_object_set_take(c, "custom_values", cv);
			}
			json_object_set_take(cv, col + 14, json_new_string(v));
		} else {
			json_object_set_take(c, col, json_new_string(v));
		}
	}
	return c;
}

/* Rows of a CSV batch into b: 0, or -1 after replying (unreadable CSV). */
static int batch_csv(struct api_req *r, struct batch *b, const char *text, size_t len)
{
	struct csv_limits lim = {
		.max_records = BATCH_MAX_ROWS + 1, .max_fields = 200, .max_field = 8192};
	struct csv csv;
	struct err e;
	if (csv_parse(text, len, &lim, &csv, &e)) {
		char *msg = xasprintf("the CSV cannot be read: %s", e.msg);
		api_reply_error(r, 400, "malformed_csv", msg, NULL);
		free(msg);
		return -1;
	}
	if (csv.n < 2) {
		api_problem(&b->p, "rows", "a header row and 1 to %d data rows are required",
			    BATCH_MAX_ROWS);
		csv_clear(&csv);
		return 0;
	}
	const struct csv_record *hdr = &csv.records[0];
	for (size_t k = 0; k < hdr->n; k++) {
		char *col = str_trim(hdr->fields[k]);
		memmove(hdr->fields[k], col, strlen(col) + 1);
		char *path = xasprintf("header[%zu]", k);
		if (!csv_column_known(hdr->fields[k]))
			api_problem(&b->p, path,
				    "unknown column \"%s\" (columns: name, email, "
				    "first_name, …, tags (separated by ';'), "
				    "custom_values.<key>, snapshot_id)",
				    hdr->fields[k]);
		for (size_t j = 0; j < k; j++)
			if (!strcmp(hdr->fields[j], hdr->fields[k]))
				api_problem(&b->p, path, "duplicate column \"%s\"", hdr->fields[k]);
		free(path);
	}
	if (b->p.n) {
		csv_clear(&csv);
		return 0;
	}
	b->lines = xcalloc(csv.n, sizeof(*b->lines));
	for (size_t i = 1; i < csv.n; i++) {
		const struct csv_record *rec = &csv.records[i];
		b->lines[i - 1] = rec->line;
		char *at = row_path(b, i - 1);
		if (rec->n != hdr->n && !batch_full(b))
			api_problem(&b->p, at, "has %zu fields, the header has %zu", rec->n,
				    hdr->n);
		const char *snap;
		struct json *client = csv_client(hdr, rec, &snap);
		if (snap && !api_is_uuid(snap) && !batch_full(b)) {
			char *path = xasprintf("%s.snapshot_id", at);
			api_problem(&b->p, path, "must be a snapshot's id (a UUID)");
			free(path);
		}
		free(at);
		batch_row(b, i - 1, client, snap && api_is_uuid(snap) ? snap : NULL);
		json_free(client);
	}
	csv_clear(&csv);
	return 0;
}

static void batch_done(struct api_req *r, PGresult *res)
{
	if (strcmp(PQgetvalue(res, 0, 0), "1")) {
		api_reply_not_found(r, "agency");
		return;
	}
	struct err e;
	const char *bad_text = PQgetvalue(res, 0, 2);
	struct json *bad = json_parse(bad_text, strlen(bad_text), JSON_DEFAULT_MAX_DEPTH, &e);
	if (json_len(bad)) {
		struct api_problems p;
		api_problems_init(&p);
		const struct batch *b = r->data;
		for (size_t i = 0; i < json_len(bad) && i < BATCH_MAX_PROBLEMS; i++) {
			int64_t row = json_at(bad, i)->u.num.i;
			char *at = row >= 0 && (size_t)row < b->n
					   ? row_path(b, (size_t)row)
					   : xasprintf("rows[%lld]", (long long)row);
			char *path = xasprintf("%s.snapshot_id", at);
			api_problem(&p, path,
				    "no such snapshot for this agency (GET "
				    "/api/v1/agencies/{id}/snapshots lists them; sync first when "
				    "it is new in GHL)");
			free(path);
			free(at);
		}
		json_free(bad);
		api_reply_problems(r, &p);
		return;
	}
	json_free(bad);
	struct buf out;
	buf_init(&out);
	buf_printf(&out, "{\"count\":%s,\"job_ids\":%s,\"batch_id\":\"%s\"}", PQgetvalue(res, 0, 1),
		   PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	log_info("batch submitted", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "count", PQgetvalue(res, 0, 1), NULL);
	api_reply_json(r, 201, buf_cstr(&out));
	buf_clear(&out);
}

static int content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);
	return ct && !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void batch_with_needs(struct api_req *r, PGresult *res);

static void jobs_batch(struct api_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->c->req);
	size_t len = evbuffer_get_length(in);
	size_t max = (size_t)r->app->cfg->max_batch_body_bytes;
	const char *ct = header(r, "Content-Type");
	if (len > max) {
		char *msg = xasprintf(
			"request body is larger than %zu bytes (max_batch_body_bytes)", max);
		api_reply_error(r, 413, "body_too_large", msg, NULL);
		free(msg);
		return;
	}
	int is_csv = content_type_is(ct, "text/csv");
	if (!is_csv && !content_type_is(ct, "application/json")) {
		api_reply_error(r, 415, "unsupported_media_type",
				"a batch is JSON (Content-Type: application/json) or CSV "
				"(Content-Type: text/csv)",
				NULL);
		return;
	}
	if (len == 0) {
		api_reply_error(r, 400, "empty_body", "the batch is empty", NULL);
		return;
	}
	const char *filename = api_query_param(r, "filename");
	if (filename && strlen(filename) > 255)
		api_query_problem(r, "filename", "must be at most 255 characters");
	if (api_query_ok(r))
		return;
	struct batch *b = xcalloc(1, sizeof(*b));
	buf_init(&b->payload);
	api_problems_init(&b->p);
	b->is_csv = is_csv;
	r->data = b;
	r->data_free = batch_free;
	const char *params[] = {api_param(r, 0)};
	api_query(r, agency_settings_sql, 1, params, batch_with_needs);
}

/* The agency's settings are at hand: check every row, with the fields its
 * pipeline needs, and insert them all or answer 422. */
static void batch_with_needs(struct api_req *r, PGresult *res)
{
	struct batch *b = r->data;
	b->needs = needs_of(r, res);
	struct evbuffer *in = evhttp_request_get_input_buffer(r->c->req);
	size_t len = evbuffer_get_length(in);
	const char *text = (const char *)evbuffer_pullup(in, -1);
	if (b->is_csv ? batch_csv(r, b, text, len) : batch_json(r, b, text, len))
		return; /* replied: r is gone */
	if (api_rate_take(r, API_RATE_SUBMIT, b->n ? b->n : 1))
		return; /* every row counts */
	if (b->p.n) {
		struct api_problems p = b->p; /* api_reply_problems frees p after r (and b) */
		api_problems_init(&b->p);
		api_reply_problems(r, &p);
		return;
	}
	buf_putc(&b->payload, ']');
	const char *user = r->who.kind == PRINCIPAL_SESSION ? r->who.user_id : NULL;
	const char *key = r->who.kind == PRINCIPAL_API_KEY ? r->who.api_key_id : NULL;
	const char *params[] = {api_param(r, 0),
				buf_cstr(&b->payload),
				b->is_csv ? "csv" : "json",
				api_query_param(r, "filename"),
				user,
				key};
	api_query(r, batch_sql, 6, params, batch_done);
}

/* ---- GET /jobs ------------------------------------------------------------ */

static const char *const list_query[] = {"status", "agency_id", "created_after", "created_before",
					 "q",	   "batch_id",	"include_total", "limit",
					 "cursor", NULL};

/* An ISO 8601 date or date-time: YYYY-MM-DD[(T| )HH:MM[:SS[.f…]]][Z|±HH[:MM]]. */
static int is_iso_time(const char *s)
{
	static const char date[] = "dddd-dd-dd";
	size_t i = 0;
	for (; date[i]; i++)
		if (date[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != date[i])
			return 0;
	if (!s[i])
		return 1;
	if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
		return 0;
	i++;
	static const char tm[] = "dd:dd";
	for (size_t k = 0; tm[k]; k++, i++)
		if (tm[k] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != tm[k])
			return 0;
	if (s[i] == ':') {
		if (!(s[i + 1] >= '0' && s[i + 1] <= '9' && s[i + 2] >= '0' && s[i + 2] <= '9'))
			return 0;
		i += 3;
		if (s[i] == '.') {
			size_t d = 0;
			for (i++; s[i] >= '0' && s[i] <= '9'; i++)
				d++;
			if (!d || d > 9)
				return 0;
		}
	}
	if (s[i] == 'Z' || s[i] == 'z')
		return s[i + 1] == '\0';
	if (s[i] == '+' || s[i] == '-') {
		i++;
		if (!(s[i] >= '0' && s[i] <= '9' && s[i + 1] >= '0' && s[i + 1] <= '9'))
			return 0;
		i += 2;
		if (s[i] == ':')
			i++;
		if (s[i] >= '0' && s[i] <= '9' && s[i + 1] >= '0' && s[i + 1] <= '9')
			i += 2;
	}
	return s[i] == '\0';
}

static void list_done(struct api_req *r, PGresult *res)
{
	/* one row at least; the count is NULL unless include_total asked for it */
	char *total = PQgetisnull(res, 0, 3) ? NULL : job_total_members(PQgetvalue(res, 0, 3));
	api_reply_page_extra(r, res, 0, 1, 2, *(int *)r->data, NULL, total);
	free(total);
}

static void check_time(struct api_req *r, const char *name, const char *v)
{
	if (v && !is_iso_time(v))
		api_query_problem(r, name,
				  "must be an ISO 8601 time (2026-01-31T12:00:00Z or "
				  "2026-01-31)");
}

static void jobs_list(struct api_req *r)
{
	const char *status = api_query_param(r, "status");
	const char *agency = api_query_param(r, "agency_id");
	const char *after = api_query_param(r, "created_after");
	const char *before = api_query_param(r, "created_before");
	const char *q = api_query_param(r, "q");
	const char *batch = api_query_param(r, "batch_id");
	if (status) {
		const char *const *s = job_statuses;
		while (*s && strcmp(*s, status))
			s++;
		if (!*s)
			api_query_problem(r, "status",
					  "must be PENDING, IN_PROGRESS, COMPLETED, "
					  "FAILED, RETRYING or CANCELLED");
	}
	if (agency && !api_is_uuid(agency))
		api_query_problem(r, "agency_id", "must be a UUID");
	if (batch && !api_is_uuid(batch))
		api_query_problem(r, "batch_id", "must be a UUID");
	if (q)
		job_search_check(r, q);
	check_time(r, "created_after", after);
	check_time(r, "created_before", before);
	int with_total;
	api_query_bool(r, "include_total", &with_total);
	struct api_page pg;
	if (api_page_parse(r, &pg)) /* replies with every problem above, too */
		return;
	char *scope = api_scope_array(&r->who);
	int_data(r, pg.limit);
	/* One agency in scope (an API key, most AGENCY_ADMINs): an equality, so
	 * the (agency_id, status, created_at, id) index serves the page in order. */
	if (!agency && r->who.nagencies == 1 && scope)
		agency = r->who.agency_ids[0];
	/* ...and then the scope says nothing more: left out, since the planner
	 * multiplies the two equal conditions' selectivities and, with a
	 * search, would AND a bitmap of the agency's every job to the search's
	 * few (bench_job_search: 300 ms instead of 20 at 1 M jobs) */
	const char *in_scope = scope;
	if (scope && agency && r->who.nagencies == 1 && str_eq(agency, r->who.agency_ids[0]))
		in_scope = NULL;
	/* The WHERE clause is assembled from fixed fragments for the filters
	 * present (values are always parameters): an absent filter leaves no
	 * `$n IS NULL OR …` behind to hide an index from the planner. */
	/* The page's ids first, from (…, created_at, id) indexes alone (an
	 * index-only scan whatever the filters but q), then the rows by primary
	 * key: filtering a created_at scan by status would walk past every newer
	 * row of another status (a burst of fresh PENDING jobs in front of
	 * FAILED). The total, when asked for (include_total: counting up to
	 * JOB_TOTAL_CAP rows costs more than the page), is counted over the same
	 * filters (without the cursor); the page is LEFT JOINed to it so an
	 * empty page still answers one row. */
	struct buf where;
	buf_init(&where);
	const char *params[10];
	char *like = NULL;
	int n = 0;
	api_sql_filter(&where, params, &n, in_scope, " AND j.agency_id = ANY($%d::uuid[])");
	api_sql_filter(&where, params, &n, agency, " AND j.agency_id = $%d::uuid");
	api_sql_filter(&where, params, &n, status, " AND j.status = $%d::provisioning_job_status");
	/* timestamptz → timestamp (the session's zone, as stored) keeps the index usable */
	api_sql_filter(&where, params, &n, after,
		       " AND j.created_at >= $%d::timestamptz::timestamp");
	api_sql_filter(&where, params, &n, before,
		       " AND j.created_at < $%d::timestamptz::timestamp");
	api_sql_filter(&where, params, &n, batch, " AND j.batch_id = $%d::uuid");
	if (q)
		job_search_where(&where, q, params, &n, &like);
	char *total = with_total == 1 ? job_total_sql(buf_cstr(&where))
				      : xstrdup("SELECT NULL::bigint AS n");
	struct buf sql;
	buf_init(&sql);
	buf_printf(&sql,
		   "WITH total AS (%s), page AS (SELECT j.id, j.created_at FROM provisioning_jobs j"
		   " WHERE true%s",
		   total, buf_cstr(&where));
	if (pg.after_ts) {
		params[n++] = pg.after_ts;
		params[n++] = pg.after_id;
		buf_printf(&sql, " AND (j.created_at, j.id) < ($%d::timestamp, $%d::uuid)", n - 1,
			   n);
	}
	/* The limit is written in, not a parameter: with LIMIT $n PostgreSQL
	 * plans the statement again on every call (a custom plan always looks
	 * cheaper than the generic one), which cost more than the page itself. */
	buf_printf(
		&sql,
		" ORDER BY j.created_at DESC, j.id DESC LIMIT %d)"
		" SELECT CASE WHEN j.id IS NOT NULL THEN " JOB_JSON(
			"j") " END,"
			     "  " API_SQL_CURSOR_TS(
				     "p.created_at") ", p.id, total.n"
						     " FROM total LEFT JOIN (page p JOIN provisioning_jobs j ON j.id = p.id) ON true"
						     " ORDER BY p.created_at DESC, p.id DESC",
		pg.limit + 1);
	api_query(r, buf_cstr(&sql), n, params, list_done);
	buf_clear(&sql);
	buf_clear(&where);
	free(total);
	free(like);
	free(scope);
	api_page_clear(&pg);
}

/* ---- GET /jobs/{id} ------------------------------------------------------- */

static void reply_job(struct api_req *r, PGresult *res)
{
	api_reply_one(r, res, "job");
}

/* The detail adds the job's open drift (core/engine/reconcile.c). */
/* clang-format off */
static const char sql_job_detail[] =
	"SELECT ((" JOB_JSON("j") ")::jsonb || jsonb_build_object('drift', " JOB_DRIFT_JSON "))::text"
	" FROM provisioning_jobs j WHERE j.id = $1::uuid AND " IN_SCOPE("2");
/* clang-format on */

static void jobs_get(struct api_req *r)
{
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0), scope};
	api_query(r, sql_job_detail, 2, params, reply_job);
	free(scope);
}

/* ---- GET /jobs/{id}/logs -------------------------------------------------- */

static const char *const page_query[] = {"limit", "cursor", NULL};

/* clang-format off */
#define LOG_JSON                                                                              \
	"json_build_object('id', l.id, 'job_id', l.job_id, 'step', l.step, 'status', l.status,"\
	" 'details', l.details_json, 'timestamp', " API_SQL_ISO("l.timestamp") ","             \
	" 'created_at', " API_SQL_ISO("l.created_at") ")::text"
/* clang-format on */

static void logs_done(struct api_req *r, PGresult *res)
{
	int limit = *(int *)r->data;
	int n = PQntuples(res);
	if (n == 0) {
		api_reply_not_found(r, "job");
		return;
	}
	if (n == 1 && PQgetisnull(res, 0, 0)) {
		api_reply_json(r, 200, "{\"items\":[],\"next_cursor\":null}");
		return;
	}
	api_reply_page(r, res, 0, 1, 2, limit);
}

static void jobs_logs(struct api_req *r)
{
	struct api_page pg;
	if (api_page_parse(r, &pg))
		return;
	char *scope = api_scope_array(&r->who);
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	int_data(r, pg.limit);
	/* one row per log entry, or one row of NULLs for a job without (more) entries */
	const char *params[] = {api_param(r, 0), scope, pg.after_ts, pg.after_id, limit};
	api_query(
		r,
		"SELECT l.j, l.ts, l.id FROM provisioning_jobs j"
		" LEFT JOIN LATERAL (SELECT " LOG_JSON " AS j,"
		"   " API_SQL_CURSOR_TS(
			"l.timestamp") " AS ts, l.id, l.timestamp"
				       "  FROM provisioning_logs l WHERE l.job_id = j.id"
				       "   AND ($3::timestamp IS NULL OR (l.timestamp, l.id) < ($3::timestamp, $4::uuid))"
				       "  ORDER BY l.timestamp DESC, l.id DESC LIMIT $5::int) l ON true"
				       " WHERE j.id = $1::uuid AND " IN_SCOPE(
					       "2") " ORDER BY l.timestamp DESC, l.id DESC",
		5, params, logs_done);
	free(scope);
	api_page_clear(&pg);
}

/* ---- POST /jobs/{id}/retry ------------------------------------------------ */

/* FAILED → PENDING. context_json stays, so the runner resumes at the first
 * step not COMPLETED with the earlier outputs; the retry budget starts again. */
const char jobs_retry_sql[] =
	"WITH j AS (SELECT id, agency_id, status FROM provisioning_jobs"
	"  WHERE id = $1::uuid AND ($2::uuid[] IS NULL OR agency_id = ANY($2::uuid[]))),"
	" upd AS (UPDATE provisioning_jobs p SET status = 'PENDING', retry_count = 0,"
	"  error_message = NULL, finished_at = NULL, cancel_requested = false, run_at = now(),"
	"  locked_by = NULL, lease_until = NULL, updated_at = now(),"
	"  client_data_json = COALESCE($3::jsonb, p.client_data_json)"
	"  FROM j WHERE p.id = j.id AND j.status = 'FAILED'"
	"  RETURNING p.*, pg_notify('ghl_jobs', '')),"
	" au AS (" API_AUDIT_INSERT " SELECT $4::uuid, $5::uuid, 'job.retry', upd.agency_id,"
	"  upd.id::text, NULL FROM upd)"
	" SELECT j.status::text, (SELECT " JOB_JSON("upd") " FROM upd) FROM j";

static void retried(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "job");
		return;
	}
	if (PQgetisnull(res, 0, 1)) {
		const char *st = PQgetvalue(res, 0, 0);
		char *msg = !strcmp(st, "CANCELLED")
				    ? xstrdup("a CANCELLED job is final and cannot be retried;"
					      " submit it again as a new job")
				    : xasprintf("only FAILED jobs can be retried; this one is %s",
						st);
		api_reply_error(r, 409, "invalid_state", msg, NULL);
		free(msg);
		return;
	}
	log_info("job retry requested", "request_id", r->c->request_id, "job_id", api_param(r, 0),
		 NULL);
	api_reply_json(r, 200, PQgetvalue(res, 0, 1));
}

static void jobs_retry(struct api_req *r)
{
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0), scope, NULL, api_audit_user(r), api_audit_key(r)};
	api_query(r, jobs_retry_sql, 5, params, retried);
	free(scope);
}

/* ---- POST /jobs/{id}/edit-and-retry ----------------------------------------- */

/* A FAILED job's client data replaced, checked like a submission against
 * the job's pinned pipeline (the agency's when it never ran), then retried
 * as above: steps already COMPLETED are not run again. */

static const struct api_field edit_retry_fields[] = {
	{.name = "client_data", .type = API_T_OBJECT, .flags = API_F_REQUIRED},
	{0},
};

static const char edit_retry_job_sql[] =
	"SELECT j.status::text, CASE WHEN jsonb_typeof(j.context_json->'pipeline') = 'array'"
	"  THEN jsonb_build_object('pipeline', j.context_json->'pipeline')::text"
	"  ELSE a.settings_json::text END"
	" FROM provisioning_jobs j JOIN agencies a ON a.id = j.agency_id"
	" WHERE j.id = $1::uuid AND " IN_SCOPE("2");

static void edit_retry_checked(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "job");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "FAILED")) {
		char *msg = xasprintf("only FAILED jobs can be edited and retried; this one is %s"
				      " (a finished job can be cloned into a new one instead)",
				      PQgetvalue(res, 0, 0));
		api_reply_error(r, 409, "invalid_state", msg, NULL);
		free(msg);
		return;
	}
	const struct json *client = json_get(r->body, "client_data");
	struct json *cp = json_new_array();
	client_data_validate(client, cp);
	struct json *needs = pipeline_agency_client_fields(
		r->app->steps, PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1),
		r->app->cfg->default_pipeline);
	pipeline_missing_client_fields(needs, client, "client_data.", NULL, cp);
	json_free(needs);
	if (json_len(cp)) {
		struct api_problems p;
		api_problems_init(&p);
		add_problems(&p, cp, NULL, NULL);
		json_free(cp);
		api_reply_problems(r, &p);
		return;
	}
	json_free(cp);
	char *scope = api_scope_array(&r->who);
	char *text = json_to_string(client);
	const char *params[] = {api_param(r, 0), scope, text, api_audit_user(r), api_audit_key(r)};
	api_query(r, jobs_retry_sql, 5, params, retried);
	free(text);
	free(scope);
}

static void jobs_edit_retry(struct api_req *r)
{
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0), scope};
	api_query(r, edit_retry_job_sql, 2, params, edit_retry_checked);
	free(scope);
}

/* ---- POST /jobs/{id}/cancel ----------------------------------------------- */

static void cancel_reread(struct api_req *r, PGresult *res)
{
	reply_job(r, res);
}

static void cancelled(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "job");
		return;
	}
	const char *how = PQgetvalue(res, 0, 1);
	if (!strcmp(how, "finished")) {
		char *msg = xasprintf("the job is already %s", PQgetvalue(res, 0, 0));
		api_reply_error(r, 409, "invalid_state", msg, NULL);
		free(msg);
		return;
	}
	log_info("job cancel requested", "request_id", r->c->request_id, "job_id", api_param(r, 0),
		 "how", how, NULL);
	const char *params[] = {api_param(r, 0)};
	api_query(r, "SELECT " JOB_JSON("j") " FROM provisioning_jobs j WHERE j.id = $1::uuid", 1,
		  params, cancel_reread);
}

static void cancel_scoped(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "job");
		return;
	}
	/* the audit row names the caller (jobs_cancel_sql writes it) */
	const char *params[] = {api_param(r, 0), api_audit_user(r), api_audit_key(r)};
	api_query(r, jobs_cancel_sql, 3, params, cancelled);
}

static void jobs_cancel(struct api_req *r)
{
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0), scope};
	api_query(r, "SELECT 1 FROM provisioning_jobs j WHERE j.id = $1::uuid AND " IN_SCOPE("2"),
		  2, params, cancel_scoped);
	free(scope);
}

/* ---- routes --------------------------------------------------------------- */

#define SUBMITTERS (API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN | API_ALLOW_API_KEY)

static const struct api_endpoint ep_submit = {
	.allow = SUBMITTERS, .agency_scoped = 1, .body = submit_loose};
/* the body is read by the handler (JSON or CSV, its own cap) */
static const char *const batch_query[] = {"filename", NULL};
static const struct api_endpoint ep_batch = {
	.allow = SUBMITTERS, .agency_scoped = 1, .query = batch_query};
static const struct api_endpoint ep_list = {.allow = API_ALLOW_ANY, .query = list_query};
static const struct api_endpoint ep_get = {.allow = API_ALLOW_ANY};
static const struct api_endpoint ep_logs = {.allow = API_ALLOW_ANY, .query = page_query};
static const struct api_endpoint ep_steer = {.allow = API_ALLOW_ANY};
static const struct api_endpoint ep_edit_retry = {.allow = SUBMITTERS, .body = edit_retry_fields};

static void h_submit(struct http_ctx *c)
{
	api_handle(c, &ep_submit, jobs_submit);
}

static void h_batch(struct http_ctx *c)
{
	api_handle(c, &ep_batch, jobs_batch);
}

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, jobs_list);
}

static void h_get(struct http_ctx *c)
{
	api_handle(c, &ep_get, jobs_get);
}

static void h_logs(struct http_ctx *c)
{
	api_handle(c, &ep_logs, jobs_logs);
}

static void h_retry(struct http_ctx *c)
{
	api_handle(c, &ep_steer, jobs_retry);
}

static void h_edit_retry(struct http_ctx *c)
{
	api_handle(c, &ep_edit_retry, jobs_edit_retry);
}

static void h_cancel(struct http_ctx *c)
{
	api_handle(c, &ep_steer, jobs_cancel);
}

static const struct http_route job_routes[] = {
	{"POST", "/api/v1/agencies/{id}/jobs", h_submit},
	{"POST", "/api/v1/agencies/{id}/jobs/batch", h_batch},
	{"GET", "/api/v1/jobs", h_list},
	{"GET", "/api/v1/jobs/{id}", h_get},
	{"GET", "/api/v1/jobs/{id}/logs", h_logs},
	{"POST", "/api/v1/jobs/{id}/retry", h_retry},
	{"POST", "/api/v1/jobs/{id}/cancel", h_cancel},
	{"POST", "/api/v1/jobs/{id}/edit-and-retry", h_edit_retry},
};

const struct route_table api_jobs_route_table = {job_routes,
						 sizeof(job_routes) / sizeof(job_routes[0])};
