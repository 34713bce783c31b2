/* job_submit.c — job creation; see job_submit.h. */
#include "job_submit.h"

#include <stdlib.h>
#include <string.h>

#include "client_data.h"
#include "crypto.h"
#include "formats.h"
#include "db.h"
#include "json.h"
#include "pipeline.h"
#include "schema.h"

const char jobs_insert_sql[] =
	"WITH ins AS ("
	" INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id,"
	"  idempotency_key, request_hash)"
	" SELECT $1::uuid, $2::jsonb, $3::uuid, $4, $5"
	" WHERE EXISTS (SELECT 1 FROM agencies WHERE id = $1::uuid AND deleted_at IS NULL)"
	"  AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM snapshots"
	"       WHERE id = $3::uuid AND agency_id = $1::uuid))"
	" ON CONFLICT (agency_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
	" RETURNING id, true AS created, request_hash)"
	" SELECT id, created, request_hash FROM ins"
	" UNION ALL"
	" SELECT id, false, request_hash FROM provisioning_jobs"
	" WHERE $4 IS NOT NULL AND agency_id = $1::uuid AND idempotency_key = $4"
	"  AND NOT EXISTS (SELECT 1 FROM ins)";

const char jobs_cancel_sql[] = JOBS_CANCEL_WITH JOBS_CANCEL_SELECT;

/* Canonical JSON: keys sorted, so {"a":1,"b":2} and {"b":2,"a":1} hash alike. */
static void canonical(struct buf *b, const struct json *v)
{
	if (!v || v->type != JSON_OBJECT) {
		if (v && v->type == JSON_ARRAY) {
			buf_putc(b, '[');
			for (size_t i = 0; i < v->u.arr.n; i++) {
				if (i)
					buf_putc(b, ',');
				canonical(b, v->u.arr.items[i]);
			}
			buf_putc(b, ']');
		} else if (v) {
			json_write(b, v);
		} else {
			buf_puts(b, "null");
		}
		return;
	}
	size_t n = v->u.obj.n;
	size_t *idx = xmalloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	for (size_t i = 1; i < n; i++) /* insertion sort: objects are small */
		for (size_t k = i;
		     k > 0 && strcmp(v->u.obj.keys[idx[k - 1]], v->u.obj.keys[idx[k]]) > 0; k--) {
			size_t t = idx[k];
			idx[k] = idx[k - 1];
			idx[k - 1] = t;
		}
	buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		json_write_string(b, v->u.obj.keys[idx[i]]);
		buf_putc(b, ':');
		canonical(b, v->u.obj.vals[idx[i]]);
	}
	buf_putc(b, '}');
	free(idx);
}

void jobs_request_hash(const struct json *client, const char *snapshot_id, char out[65])
{
	struct buf b;
	buf_init(&b);
	canonical(&b, client);
	buf_putc(&b, '\n');
	buf_puts(&b, snapshot_id ? snapshot_id : "");
	crypto_sha256_hex(b.data, b.len, out);
	buf_clear(&b);
}

/* Add the fields the agency's pipeline needs and client lacks to problems.
 * 0, or -1 with e set (the database). */
static int check_needs(PGconn *conn, const struct step_registry *steps,
		       const char *default_pipeline, const char *agency_id,
		       const struct json *client, struct json *problems, struct err *e)
{
	const char *params[1] = {agency_id};
	PGresult *r = db_query(conn,
			       "SELECT settings_json::text FROM agencies"
			       " WHERE id = $1::uuid AND deleted_at IS NULL",
			       1, params, e);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) { /* else no such agency: the insert says so */
		const char *settings = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
		struct json *needs = pipeline_agency_client_fields(steps, settings,
								   default_pipeline);
		pipeline_missing_client_fields(needs, client, "client_data.", NULL, problems);
		json_free(needs);
	}
	PQclear(r);
	return 0;
}

enum job_submit_status jobs_submit_blocking(PGconn *conn, const struct step_registry *steps,
					    const char *default_pipeline, const char *agency_id,
					    const struct json *client, const char *snapshot_id,
					    const char *idempotency_key, char **job_id,
					    struct json *problems, struct err *e)
{
	*job_id = NULL;
	if (!format_uuid_valid(agency_id))
		schema_problem_add(problems, "agency_id", "must be a UUID");
	if (snapshot_id && !format_uuid_valid(snapshot_id))
		schema_problem_add(problems, "snapshot_id", "must be a UUID");
	if (idempotency_key && (!*idempotency_key || strlen(idempotency_key) > 255))
		schema_problem_add(problems, "idempotency_key", "must be 1 to 255 characters");
	client_data_validate(client, problems);
	if (format_uuid_valid(agency_id) && client && client->type == JSON_OBJECT &&
	    check_needs(conn, steps, default_pipeline, agency_id, client, problems, e))
		return JOB_ERROR;
	if (json_len(problems)) {
		err_set(e, "invalid job");
		return JOB_INVALID;
	}
	char hash[65];
	jobs_request_hash(client, snapshot_id, hash);
	char *text = json_to_string(client);
	const char *params[5] = {agency_id, text, snapshot_id, idempotency_key, hash};
	PGresult *r = db_query(conn, jobs_insert_sql, 5, params, e);
	free(text);
	if (!r)
		return JOB_ERROR;
	enum job_submit_status st;
	if (PQntuples(r) == 0) {
		PQclear(r);
		const char *p1[1] = {agency_id};
		r = db_query(conn,
			     "SELECT 1 FROM agencies WHERE id = $1::uuid AND deleted_at IS NULL", 1,
			     p1, e);
		if (!r)
			return JOB_ERROR;
		if (PQntuples(r) == 0)
			schema_problem_add(problems, "agency_id", "no such agency");
		else
			schema_problem_add(problems, "snapshot_id",
					   "no such snapshot for this agency");
		PQclear(r);
		err_set(e, "invalid job");
		return JOB_INVALID;
	}
	*job_id = xstrdup(PQgetvalue(r, 0, 0));
	if (!strcmp(PQgetvalue(r, 0, 1), "t"))
		st = JOB_CREATED;
	else if (!strcmp(PQgetvalue(r, 0, 2), hash))
		st = JOB_EXISTING;
	else
		st = JOB_CONFLICT;
	PQclear(r);
	return st;
}
