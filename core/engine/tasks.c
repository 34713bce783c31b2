/* tasks.c — the tasks of TASK steps and their periodic check; see tasks.h. */
#include "tasks.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define TASK_OVERDUE_BATCH "1000"

/* The task's row as a step reads it, made or found in one round trip: a run
 * again (after a crash, or the job resumed) finds the task of its step. */
/* clang-format off */
#define TASK_ROW(t)                                                                      \
	"json_build_object('id', " t ".id, 'status', " t ".status, 'note', " t ".note,"   \
	" 'outputs', COALESCE(" t ".outputs, '{}'::jsonb), 'on_reject', " t ".on_reject,"  \
	" 'completed_by', " t ".completed_by"
/* clang-format on */
static const char open_sql[] =
	"WITH ins AS ("
	" INSERT INTO tasks (agency_id, job_id, step_index, step_name, title, checklist,"
	"  assignee_role, on_reject, due_at)"
	" VALUES ($1::uuid, $2::uuid, $3::int, $4, $5, $6::jsonb, $7, $8,"
	"  CASE WHEN $9::numeric IS NULL THEN NULL"
	"  ELSE now() + $9::numeric * interval '1 day' END)"
	" ON CONFLICT (job_id, step_index) DO NOTHING RETURNING *)"
	" SELECT " TASK_ROW(
		"ins") ", 'created', true)::text FROM ins"
		       " UNION ALL SELECT " TASK_ROW(
			       "t") ", 'created', false)::text FROM tasks t"
				    "  WHERE t.job_id = $2::uuid AND t.step_index = $3::int";

struct open_call {
	tasks_open_fn cb;
	void *arg;
};

static void opened(void *arg, PGresult *res, const struct err *dbe)
{
	struct open_call *oc = arg;
	struct json *row = NULL;
	struct err e;
	const struct err *why = dbe ? dbe : &e;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1) {
		const char *text = PQgetvalue(res, 0, 0);
		row = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, NULL);
		if (!row)
			err_set(&e, "the task row is not JSON");
	} else if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
		err_set(&e, "the task was neither made nor found");
	} else if (res) {
		err_set(&e, "%s", PQresultErrorMessage(res));
	} else if (!dbe) {
		err_set(&e, "no answer");
	}
	oc->cb(oc->arg, row, row ? NULL : why);
	json_free(row);
	free(oc);
}

void tasks_open(struct app *app, const char *job_id, const char *agency_id, int step_index,
		const char *step_name, const struct json *spec, tasks_open_fn cb, void *arg)
{
	char index[16], due[40];
	snprintf(index, sizeof(index), "%d", step_index);
	const struct json *checklist = json_get(spec, "checklist");
	char *list = checklist ? json_to_string(checklist) : xstrdup("[]");
	const struct json *days = json_get(spec, "due_in_days");
	int have_due = days && days->type == JSON_NUMBER;
	if (have_due && days->u.num.is_int)
		snprintf(due, sizeof(due), "%lld", (long long)days->u.num.i);
	else if (have_due)
		snprintf(due, sizeof(due), "%.6f", days->u.num.d);
	const char *role = json_get_str(spec, "assignee_role");
	const char *on_reject = json_get_str(spec, "on_reject");
	const char *title = json_get_str(spec, "title");
	const char *params[] = {agency_id,
				job_id,
				index,
				step_name,
				title ? title : step_name,
				list,
				role ? role : "AGENCY_ADMIN",
				on_reject ? on_reject : "fail",
				have_due ? due : NULL};
	struct open_call *oc = xcalloc(1, sizeof(*oc));
	oc->cb = cb;
	oc->arg = arg;
	/* an insert-or-find: safe to send again when its connection drops */
	db_pool_query_flags(app->db, DB_REPLAY, open_sql, 9, params, opened, oc);
	free(list);
}

static const char spec_schema_text[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"title\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":300},"
	"\"checklist\":{\"type\":\"array\",\"maxItems\":50,\"items\":{\"type\":\"string\","
	"\"minLength\":1,\"maxLength\":500}},"
	"\"due_in_days\":{\"type\":\"number\",\"minimum\":0,\"maximum\":365},"
	"\"assignee_role\":{\"type\":\"string\",\"enum\":[\"AGENCY_ADMIN\",\"SUPPORT\",\"ADMIN\"]},"
	"\"on_reject\":{\"type\":\"string\",\"enum\":[\"fail\",\"rollback\"]}},"
	"\"required\":[\"title\"],\"additionalProperties\":false}";

/* Parsed once, kept for the process's life. */
static struct json *spec_schema;
static pthread_once_t spec_schema_once = PTHREAD_ONCE_INIT;

static void spec_schema_init(void)
{
	spec_schema = json_parse(spec_schema_text, sizeof(spec_schema_text) - 1,
				 JSON_DEFAULT_MAX_DEPTH, NULL);
}

int tasks_spec_check(const struct json *spec, struct err *e)
{
	pthread_once(&spec_schema_once, spec_schema_init);
	struct json *problems = json_new_array();
	size_t n = schema_validate(spec_schema, spec, "task", problems);
	int rc = 0;
	if (n) {
		const struct json *p = json_at(problems, 0);
		rc = err_setc(e, ERR_INVALID, "%s: %s%s", json_get_str(p, "field"),
			      json_get_str(p, "message"), n > 1 ? " (and more problems)" : "");
	}
	json_free(problems);
	return rc;
}

/* ---- the periodic check ------------------------------------------------------ */

/* Open tasks past due are marked once (the trigger fires task.overdue); parked
 * jobs whose task ended are made PENDING (and the workers woken). */
static const char check_sql[] =
	"WITH due AS (SELECT id FROM tasks"
	"  WHERE status = 'OPEN' AND due_at < now() AND overdue_notified_at IS NULL"
	"  ORDER BY due_at LIMIT " TASK_OVERDUE_BATCH " FOR UPDATE SKIP LOCKED),"
	" marked AS (UPDATE tasks t SET overdue_notified_at = now(), updated_at = now()"
	"  FROM due WHERE t.id = due.id RETURNING t.id),"
	" woken AS (UPDATE provisioning_jobs p SET status = 'PENDING', run_at = now(),"
	"  updated_at = now() FROM tasks t"
	"  WHERE p.status = 'IN_PROGRESS' AND p.context_json ? 'waiting'"
	"   AND t.id = (p.context_json->'waiting'->>'task_id')::uuid AND t.status <> 'OPEN'"
	"   AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = p.id)"
	"  RETURNING p.id, pg_notify('ghl_jobs', ''))"
	" SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM woken)";

struct task_check {
	struct app *app;
	struct event *timer;
	int running;
	int dead; /* task_check_free ran while a query was out: free on its answer */
};

static void checked(void *arg, PGresult *res, const struct err *e)
{
	struct task_check *t = arg;
	t->running = 0;
	if (t->dead) {
		free(t);
		return;
	}
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (!t->app->stopping)
			log_warn("the task check failed; trying again at the next interval",
				 "error", db_why(res, e), NULL);
		return;
	}
	const char *marked = PQgetvalue(res, 0, 0), *woken = PQgetvalue(res, 0, 1);
	if (strcmp(marked, "0") || strcmp(woken, "0"))
		log_info("task check", "overdue_notified", marked, "jobs_woken", woken, NULL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct task_check *t = arg;
	if (t->running || t->app->stopping || !db_pool_is_up(t->app->db))
		return;
	t->running = 1;
	db_pool_query(t->app->db, check_sql, 0, NULL, checked, t);
}

struct task_check *task_check_start(struct app *app)
{
	long long ms = app->cfg->task_check_interval_ms;
	if (ms <= 0)
		return NULL;
	struct task_check *t = xcalloc(1, sizeof(*t));
	t->app = app;
	t->timer = event_new(app->base, -1, EV_PERSIST, on_timer, t);
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	event_add(t->timer, &tv);
	return t;
}

struct task_check *task_check_free(struct task_check *t)
{
	if (!t)
		return NULL;
	event_free(t->timer);
	t->timer = NULL;
	if (t->running)
		t->dead = 1;
	else
		free(t);
	return NULL;
}
