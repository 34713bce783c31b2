/* api_job_search.c — the jobs list's search and total (api_job_search.h), and
 * POST /api/v1/agencies/{id}/jobs/bulk: retry or cancel many jobs of one
 * agency, named by id or by a filter, answering each job's outcome.
 *
 * Each job goes through the same statement as its single-job endpoint
 * (jobs_retry_sql, jobs_cancel_sql), one after the other, so a bulk action
 * means exactly what N clicks would. Access: as for retry/cancel (every role,
 * within its agencies; the agency is the path's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_job_search.h"
#include "http.h"
#include "job_submit.h"
#include "json.h"
#include "log.h"

#define BULK_MAX 500 /* jobs per request */

/* ---- search and total ----------------------------------------------------- */

void job_search_check(struct api_req *r, const char *q)
{
	if (strlen(q) > JOB_SEARCH_MAX)
		api_query_problem(r, "q",
				  "must be at most %d characters (a name, email, job id "
				  "or location id)",
				  JOB_SEARCH_MAX);
}

void job_search_where(struct buf *where, const char *q, const char **params, int *n, char **own)
{
	params[(*n)++] = q;
	int qn = *n;
	buf_printf(where, " AND (j.location_id = $%d::text", qn);
	if (api_is_uuid(q))
		buf_printf(where, " OR j.id = $%d::uuid", qn);
	if (strlen(q) >= JOB_SEARCH_MIN_TEXT) {
		*own = api_like_contains(q);
		params[(*n)++] = *own;
		buf_printf(where,
			   " OR ghl_job_search_text(j.client_data_json) LIKE lower($%d::text)", *n);
	}
	buf_putc(where, ')');
}

char *job_total_sql(const char *where)
{
	return xasprintf("SELECT count(*) AS n FROM (SELECT 1 FROM provisioning_jobs j WHERE true%s"
			 " LIMIT %d) c",
			 where, JOB_TOTAL_CAP + 1);
}

char *job_total_members(const char *count)
{
	long long n = 0;
	str_to_ll(count, 0, JOB_TOTAL_CAP + 1, &n);
	return xasprintf(",\"total\":%lld,\"total_exact\":%s",
			 n > JOB_TOTAL_CAP ? JOB_TOTAL_CAP : n,
			 n > JOB_TOTAL_CAP ? "false" : "true");
}

/* ---- POST /agencies/{id}/jobs/bulk ---------------------------------------- */

static const char *const bulk_actions[] = {"retry", "cancel", NULL};
static const char *const job_statuses[] = {"PENDING",  "IN_PROGRESS", "COMPLETED", "FAILED",
					   "RETRYING", "CANCELLED",   NULL};
static const struct api_field uuid_item = {.name = "job_ids[]", .type = API_T_UUID};
static const struct api_field filter_fields[] = {
	{.name = "status", .type = API_T_STRING, .one_of = job_statuses},
	{.name = "q", .type = API_T_STRING, .min_len = 1, .max_len = JOB_SEARCH_MAX},
	{.name = "batch_id", .type = API_T_UUID},
	{0},
};
static const struct api_field bulk_fields[] = {
	{.name = "action", .type = API_T_STRING, .flags = API_F_REQUIRED, .one_of = bulk_actions},
	{.name = "job_ids",
	 .type = API_T_ARRAY,
	 .min_len = 1,
	 .max_len = BULK_MAX,
	 .items = &uuid_item},
	{.name = "filter", .type = API_T_OBJECT, .fields = filter_fields},
	{0},
};

struct bulk {
	int cancel;  /* else retry */
	char **ids;  /* in order */
	char *found; /* per id: 1 when it is the agency's job */
	int n, i;    /* ids; the one being acted on */
	int more;    /* the filter matched more than BULK_MAX */
	int ok, failed;
	char *scope; /* "{agency}" */
	struct buf out;
};

static void bulk_free(void *arg)
{
	struct bulk *b = arg;
	for (int i = 0; i < b->n; i++)
		free(b->ids[i]);
	free(b->ids);
	free(b->found);
	free(b->scope);
	buf_clear(&b->out);
	free(b);
}

static void bulk_next(struct api_req *r);

/* One result into the answer. */
static void bulk_result(struct bulk *b, const char *id, const char *outcome, const char *status,
			const char *message)
{
	int ok = !strcmp(outcome, "retried") || !strcmp(outcome, "cancelled") ||
		 !strcmp(outcome, "cancel_requested");
	if (ok)
		b->ok++;
	else
		b->failed++;
	buf_puts(&b->out, b->ok + b->failed > 1 ? ",{\"job_id\":" : "{\"job_id\":");
	json_write_string(&b->out, id);
	buf_puts(&b->out, ",\"outcome\":");
	json_write_string(&b->out, outcome);
	buf_puts(&b->out, ",\"status\":");
	if (status)
		json_write_string(&b->out, status);
	else
		buf_puts(&b->out, "null");
	buf_puts(&b->out, ",\"message\":");
	if (message)
		json_write_string(&b->out, message);
	else
		buf_puts(&b->out, "null");
	buf_putc(&b->out, '}');
}

static const char *bulk_id(struct bulk *b)
{
	return b->ids[b->i];
}

/* jobs_retry_sql's answer: (status before, the job after or NULL). */
static void bulk_retried(struct api_req *r, PGresult *res)
{
	struct bulk *b = r->data;
	if (PQntuples(res) != 1) {
		bulk_result(b, bulk_id(b), "not_found", NULL, "no such job in this agency");
	} else if (PQgetisnull(res, 0, 1)) {
		const char *st = PQgetvalue(res, 0, 0);
		char *msg = xasprintf("only FAILED jobs can be retried; this one is %s", st);
		bulk_result(b, bulk_id(b), "invalid_state", st, msg);
		free(msg);
	} else {
		bulk_result(b, bulk_id(b), "retried", "PENDING", NULL);
	}
	b->i++;
	bulk_next(r);
}

/* jobs_cancel_sql's answer: (status, cancelled | requested | finished). */
static void bulk_cancelled(struct api_req *r, PGresult *res)
{
	struct bulk *b = r->data;
	if (PQntuples(res) != 1) {
		bulk_result(b, bulk_id(b), "not_found", NULL, "no such job in this agency");
	} else {
		const char *st = PQgetvalue(res, 0, 0), *how = PQgetvalue(res, 0, 1);
		if (!strcmp(how, "cancelled")) {
			bulk_result(b, bulk_id(b), "cancelled", "CANCELLED", NULL);
		} else if (!strcmp(how, "requested")) {
			bulk_result(b, bulk_id(b), "cancel_requested", st,
				    "the job stops after its current step");
		} else {
			char *msg = xasprintf("the job is already %s", st);
			bulk_result(b, bulk_id(b), "invalid_state", st, msg);
			free(msg);
		}
	}
	b->i++;
	bulk_next(r);
}

/* Act on the next job, or answer when all are done. */
static void bulk_next(struct api_req *r)
{
	struct bulk *b = r->data;
	while (b->i < b->n && !b->found[b->i]) {
		bulk_result(b, bulk_id(b), "not_found", NULL, "no such job in this agency");
		b->i++;
	}
	if (b->i < b->n) {
		/* retry: client data kept; the audit row names the caller */
		const char *params[] = {bulk_id(b), b->scope, NULL, api_audit_user(r),
					api_audit_key(r)};
		const char *cancel_params[] = {bulk_id(b), api_audit_user(r), api_audit_key(r)};
		if (b->cancel)
			api_query(r, jobs_cancel_sql, 3, cancel_params, bulk_cancelled);
		else
			api_query(r, jobs_retry_sql, 5, params, bulk_retried);
		return;
	}
	log_info("bulk job action", "request_id", r->c->request_id, "agency_id", api_param(r, 0),
		 "action", b->cancel ? "cancel" : "retry", NULL);
	char *body = xasprintf("{\"action\":\"%s\",\"succeeded\":%d,\"failed\":%d,\"more\":%s,"
			       "\"results\":[%s]}",
			       b->cancel ? "cancel" : "retry", b->ok, b->failed,
			       b->more ? "true" : "false", buf_cstr(&b->out));
	api_reply_json(r, 200, body);
	free(body);
}

static void bulk_targets(struct api_req *r, PGresult *res)
{
	struct bulk *b = r->data;
	int n = PQntuples(res);
	b->more = n > BULK_MAX; /* the extra row is never acted on */
	b->n = b->more ? BULK_MAX : n;
	b->ids = xcalloc((size_t)b->n + 1, sizeof(char *));
	b->found = xcalloc((size_t)b->n + 1, 1);
	for (int i = 0; i < b->n; i++) {
		b->ids[i] = xstrdup(PQgetvalue(res, i, 0));
		b->found[i] = !strcmp(PQgetvalue(res, i, 1), "t");
	}
	bulk_next(r); /* res is the pool's until this returns: nothing keeps it */
}

/* The jobs named: (id, in this agency) in the order given, duplicates once. */
static const char ids_sql[] =
	"SELECT x.id, p.id IS NOT NULL FROM (SELECT DISTINCT ON (id) id, ord"
	"  FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord) ORDER BY id, ord) x"
	" LEFT JOIN provisioning_jobs p ON p.id = x.id AND p.agency_id = $1::uuid"
	" ORDER BY x.ord";

static void bulk_run(struct api_req *r)
{
	struct bulk *b = xcalloc(1, sizeof(*b));
	r->data = b;
	r->data_free = bulk_free;
	buf_init(&b->out);
	const struct json *ids = json_get(r->body, "job_ids");
	const struct json *filter = json_get(r->body, "filter");
	if (!ids == !filter) {
		struct api_problems p;
		api_problems_init(&p);
		api_problem(
			&p, ids ? "filter" : "job_ids",
			"give either job_ids (1 to %d ids) or a filter ({status, q, batch_id}), "
			"not both",
			BULK_MAX);
		api_reply_problems(r, &p);
		return;
	}
	b->cancel = str_eq(json_get_str(r->body, "action"), "cancel");
	b->scope = xasprintf("{%s}", api_param(r, 0));
	if (ids) {
		struct buf arr;
		buf_init(&arr);
		buf_putc(&arr, '{');
		for (size_t i = 0; i < json_len(ids); i++)
			buf_printf(&arr, "%s%s", i ? "," : "", json_at(ids, i)->u.str.s);
		buf_putc(&arr, '}');
		const char *params[] = {api_param(r, 0), buf_cstr(&arr)};
		api_query(r, ids_sql, 2, params, bulk_targets);
		buf_clear(&arr);
		return;
	}
	/* a filter: the agency's matching jobs in the action's starting states,
	 * newest first, BULK_MAX at most (one more row tells that more matched) */
	struct buf sql;
	buf_init(&sql);
	const char *params[6];
	char *like = NULL;
	int n = 0;
	params[n++] = api_param(r, 0);
	buf_printf(&sql,
		   "SELECT j.id, true FROM provisioning_jobs j WHERE j.agency_id = $1::uuid%s",
		   b->cancel ? " AND j.status IN ('PENDING', 'RETRYING', 'IN_PROGRESS')"
			     : " AND j.status = 'FAILED'");
	const char *status = json_get_str(filter, "status");
	const char *batch = json_get_str(filter, "batch_id");
	const char *q = json_get_str(filter, "q");
	if (status) {
		params[n++] = status;
		buf_printf(&sql, " AND j.status = $%d::provisioning_job_status", n);
	}
	if (batch) {
		params[n++] = batch;
		buf_printf(&sql, " AND j.batch_id = $%d::uuid", n);
	}
	if (q)
		job_search_where(&sql, q, params, &n, &like);
	buf_printf(&sql, " ORDER BY j.created_at DESC, j.id DESC LIMIT %d", BULK_MAX + 1);
	api_query(r, buf_cstr(&sql), n, params, bulk_targets);
	buf_clear(&sql);
	free(like);
}

/* ---- routes --------------------------------------------------------------- */

static const struct api_endpoint ep_bulk = {
	.allow = API_ALLOW_ANY, .agency_scoped = 1, .body = bulk_fields};

static void h_bulk(struct http_ctx *c)
{
	api_handle(c, &ep_bulk, bulk_run);
}

static const struct http_route bulk_routes[] = {
	{"POST", "/api/v1/agencies/{id}/jobs/bulk", h_bulk},
};

const struct route_table api_bulk_route_table = {bulk_routes,
						 sizeof(bulk_routes) / sizeof(bulk_routes[0])};
