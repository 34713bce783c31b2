/* api_tasks.c — /api/v1 tasks: the tasks TASK steps make for people (table
 * tasks; core/engine/tasks.h). List with filters (status, agency_id,
 * overdue, job_id) and keyset pagination, get, complete (a note and
 * outputs, which become the TASK step's outputs) and reject (a note). Ending
 * a task makes its parked job PENDING in the same statement, so the job
 * resumes: at the next step, or failing (rolling back) after a rejection.
 * A task ends once: a second complete or reject answers 409.
 *
 * Access: like jobs — ADMIN and SUPPORT every agency, AGENCY_ADMIN and API
 * keys their agencies; a task outside the caller's scope answers 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "http.h"
#include "json.h"
#include "log.h"

#define TASK_NOTE_MAX 2000
#define TASK_OUTPUT_KEY_MAX 64

/* One task as JSON, from a row of tasks aliased `a`. */
/* clang-format off */
#define TASK_JSON(a)                                                                          \
	"json_build_object('id', " a ".id, 'agency_id', " a ".agency_id,"                     \
	" 'job_id', " a ".job_id, 'step_index', " a ".step_index, 'step', " a ".step_name,"    \
	" 'title', " a ".title, 'checklist', " a ".checklist,"                                 \
	" 'assignee_role', " a ".assignee_role, 'on_reject', " a ".on_reject,"                 \
	" 'status', " a ".status, 'overdue', (" a ".status = 'OPEN' AND " a ".due_at < now()),"\
	" 'note', " a ".note, 'outputs', " a ".outputs, 'completed_by', " a ".completed_by,"   \
	" 'client_name', (SELECT p.client_data_json->>'name' FROM provisioning_jobs p"         \
	"  WHERE p.id = " a ".job_id),"                                                        \
	" 'due_at', " API_SQL_ISO(a ".due_at") ","                                             \
	" 'completed_at', " API_SQL_ISO(a ".completed_at") ","                                 \
	" 'overdue_notified_at', " API_SQL_ISO(a ".overdue_notified_at") ","                   \
	" 'created_at', " API_SQL_ISO(a ".created_at") ","                                     \
	" 'updated_at', " API_SQL_ISO(a ".updated_at") ")::text"
/* clang-format on */

/* CANCELLED: the job was cancelled while its task was OPEN (a trigger,
 * migration 20261209_000101) */
static const char *const task_statuses[] = {"OPEN", "COMPLETED", "REJECTED", "CANCELLED", NULL};

static int *int_data(struct api_req *r, int v)
{
	int *p = xmalloc(sizeof(int));
	*p = v;
	r->data = p;
	r->data_free = free;
	return p;
}

/* ---- GET /tasks ------------------------------------------------------------- */

static const char *const list_query[] = {"status", "agency_id", "overdue", "job_id",
					 "limit",  "cursor",	NULL};

static void list_done(struct api_req *r, PGresult *res)
{
	api_reply_page(r, res, 0, 1, 2, *(int *)r->data);
}

static void tasks_list(struct api_req *r)
{
	const char *status = api_query_param(r, "status");
	const char *agency = api_query_param(r, "agency_id");
	const char *job = api_query_param(r, "job_id");
	int overdue;
	api_query_bool(r, "overdue", &overdue);
	if (status) {
		const char *const *s = task_statuses;
		while (*s && strcmp(*s, status))
			s++;
		if (!*s)
			api_query_problem(r, "status",
					  "must be OPEN, COMPLETED, REJECTED or CANCELLED");
	}
	if (agency && !api_is_uuid(agency))
		api_query_problem(r, "agency_id", "must be a UUID");
	if (job && !api_is_uuid(job))
		api_query_problem(r, "job_id", "must be a UUID");
	struct api_page pg;
	if (api_page_parse(r, &pg)) /* replies with every problem above, too */
		return;
	char *scope = api_scope_array(&r->who);
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
	int_data(r, pg.limit);
	if (!agency && r->who.nagencies == 1 && scope)
		agency = r->who.agency_ids[0];
	/* fixed fragments for the filters present; values are parameters */
	struct buf sql;
	buf_init(&sql);
	buf_puts(&sql, "SELECT " TASK_JSON("t") ", " API_SQL_CURSOR_TS(
			       "t.created_at") ", t.id FROM tasks t WHERE true");
	const char *params[8];
	int n = 0;
	api_sql_filter(&sql, params, &n, scope, " AND t.agency_id = ANY($%d::uuid[])");
	api_sql_filter(&sql, params, &n, agency, " AND t.agency_id = $%d::uuid");
	api_sql_filter(&sql, params, &n, status, " AND t.status = $%d");
	api_sql_filter(&sql, params, &n, job, " AND t.job_id = $%d::uuid");
	if (overdue == 1)
		buf_puts(&sql, " AND t.status = 'OPEN' AND t.due_at < now()");
	else if (overdue == 0)
		buf_puts(&sql, " AND NOT (t.status = 'OPEN' AND t.due_at IS NOT NULL"
			       " AND t.due_at < now())");
	if (pg.after_ts) {
		params[n++] = pg.after_ts;
		params[n++] = pg.after_id;
		buf_printf(&sql, " AND (t.created_at, t.id) < ($%d::timestamptz, $%d::uuid)", n - 1,
			   n);
	}
	params[n++] = limit;
	buf_printf(&sql, " ORDER BY t.created_at DESC, t.id DESC LIMIT $%d::int", n);
	api_query(r, buf_cstr(&sql), n, params, list_done);
	buf_clear(&sql);
	free(scope);
	api_page_clear(&pg);
}

/* ---- GET /tasks/{id} ------------------------------------------------------- */

static void reply_task(struct api_req *r, PGresult *res)
{
	api_reply_one(r, res, "task");
}

static void tasks_get(struct api_req *r)
{
	char *scope = api_scope_array(&r->who);
	const char *params[] = {api_param(r, 0), scope};
	api_query(r,
		  "SELECT " TASK_JSON(
			  "t") " FROM tasks t WHERE t.id = $1::uuid"
			       " AND ($2::uuid[] IS NULL OR t.agency_id = ANY($2::uuid[]))",
		  2, params, reply_task);
	free(scope);
}

/* ---- POST /tasks/{id}/complete, /reject ------------------------------------ */

/* OPEN → $3 once (a concurrent second call finds it ended: 409); the parked
 * job — IN_PROGRESS, waiting for this task, no lease — becomes PENDING and
 * the workers are woken. A job still on its way to parking (its lease not
 * yet dropped) is woken by the task check (core/engine/tasks.c). */
static const char end_sql[] =
	"WITH t AS (SELECT t.id, t.status, j.status::text AS job_status FROM tasks t"
	"  JOIN provisioning_jobs j ON j.id = t.job_id WHERE t.id = $1::uuid"
	"  AND ($2::uuid[] IS NULL OR t.agency_id = ANY($2::uuid[]))),"
	" upd AS (UPDATE tasks k SET status = $3, note = $4, outputs = $5::jsonb,"
	"  completed_by = $6, completed_at = now(), updated_at = now()"
	"  FROM t WHERE k.id = t.id AND k.status = 'OPEN'"
	"  AND t.job_status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') RETURNING k.*),"
	" woken AS (UPDATE provisioning_jobs p SET status = 'PENDING', run_at = now(),"
	"  updated_at = now() FROM upd WHERE p.id = upd.job_id AND p.status = 'IN_PROGRESS'"
	"  AND p.context_json->'waiting'->>'task_id' = upd.id::text"
	"  AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = p.id)"
	"  RETURNING p.id, pg_notify('ghl_jobs', ''))"
	" SELECT t.status, t.job_status, (SELECT " TASK_JSON(
		"upd") " FROM upd),"
		       "  (SELECT count(*) FROM woken) FROM t";

static void ended(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "task");
		return;
	}
	if (PQgetisnull(res, 0, 2)) {
		const char *st = PQgetvalue(res, 0, 0), *job = PQgetvalue(res, 0, 1);
		char *msg =
			strcmp(st, "OPEN") ? xasprintf("the task is already %s", st)
			: strcmp(job, "IN_PROGRESS") && strcmp(job, "PENDING") &&
					strcmp(job, "RETRYING")
				? xasprintf("the task's job is %s: the task can no longer be ended",
					    job)
				: xstrdup("the task was ended by another request");
		api_reply_error(r, 409, "invalid_state", msg, NULL);
		free(msg);
		return;
	}
	log_info("task ended", "request_id", r->c->request_id, "task_id", api_param(r, 0), "status",
		 (const char *)r->data, "jobs_woken", PQgetvalue(res, 0, 3), NULL);
	api_reply_json(r, 200, PQgetvalue(res, 0, 2));
}

/* An output key later steps can read as outputs.<key>: a name, and never
 * location_id (which steps set on the job itself). */
static int output_key_ok(const char *k)
{
	size_t n = strlen(k);
	if (!n || n > TASK_OUTPUT_KEY_MAX || (k[0] >= '0' && k[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return 0;
	return strcmp(k, "location_id") != 0 && strcmp(k, "task_id") != 0;
}

static void task_end(struct api_req *r, const char *status)
{
	const struct json *outputs = json_get(r->body, "outputs");
	struct api_problems p;
	api_problems_init(&p);
	for (size_t i = 0; outputs && i < outputs->u.obj.n; i++)
		if (!output_key_ok(outputs->u.obj.keys[i])) {
			char *field = xasprintf("outputs.%s", outputs->u.obj.keys[i]);
			api_problem(&p, field,
				    "must be a name of letters, digits and '_' (at most %d, not "
				    "starting with a digit), not location_id or task_id",
				    TASK_OUTPUT_KEY_MAX);
			free(field);
		}
	if (p.n) {
		api_reply_problems(r, &p);
		return;
	}
	api_problems_clear(&p);
	char *out = outputs ? json_to_string(outputs) : NULL;
	char *by = r->who.kind == PRINCIPAL_API_KEY ? xasprintf("api_key:%s", r->who.api_key_id)
						    : xstrdup(r->who.email ? r->who.email : "?");
	char *scope = api_scope_array(&r->who);
	const char *params[] = {
		api_param(r, 0), scope, status, json_get_str(r->body, "note"), out, by};
	r->data = xstrdup(status); /* for the log line */
	r->data_free = free;
	api_query(r, end_sql, 6, params, ended);
	free(scope);
	free(by);
	free(out);
}

static void tasks_complete(struct api_req *r)
{
	task_end(r, "COMPLETED");
}

static void tasks_reject(struct api_req *r)
{
	task_end(r, "REJECTED");
}

/* ---- routes ----------------------------------------------------------------- */

static const struct api_field complete_fields[] = {
	{.name = "note", .type = API_T_STRING, .flags = API_F_NULLABLE, .max_len = TASK_NOTE_MAX},
	{.name = "outputs", .type = API_T_OBJECT},
	{0},
};

static const struct api_field reject_fields[] = {
	{.name = "note",
	 .type = API_T_STRING,
	 .flags = API_F_REQUIRED,
	 .min_len = 1,
	 .max_len = TASK_NOTE_MAX},
	{0},
};

static const struct api_endpoint ep_list = {.allow = API_ALLOW_ANY, .query = list_query};
static const struct api_endpoint ep_get = {.allow = API_ALLOW_ANY};
static const struct api_endpoint ep_complete = {.allow = API_ALLOW_ANY, .body = complete_fields};
static const struct api_endpoint ep_reject = {.allow = API_ALLOW_ANY, .body = reject_fields};

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, tasks_list);
}

static void h_get(struct http_ctx *c)
{
	api_handle(c, &ep_get, tasks_get);
}

static void h_complete(struct http_ctx *c)
{
	api_handle(c, &ep_complete, tasks_complete);
}

static void h_reject(struct http_ctx *c)
{
	api_handle(c, &ep_reject, tasks_reject);
}

static const struct http_route task_routes[] = {
	{"GET", "/api/v1/tasks", h_list},
	{"GET", "/api/v1/tasks/{id}", h_get},
	{"POST", "/api/v1/tasks/{id}/complete", h_complete},
	{"POST", "/api/v1/tasks/{id}/reject", h_reject},
};

const struct route_table api_tasks_route_table = {task_routes,
						  sizeof(task_routes) / sizeof(task_routes[0])};
