/* tasks.h — people in the loop: the tasks a TASK step makes (table tasks,
 * migration 20261208_000101) and the periodic check that serves them.
 *
 * A TASK step calls the host's task() (plugins/ghl_step.h): tasks_open()
 * inserts the job's task for its pipeline step — or finds the one an
 * earlier run made (one per job and step) — and answers its row. While the
 * task is OPEN the runner parks the job: IN_PROGRESS, no lease (so no slot
 * and nothing to renew), context_json "waiting": {"task_id", "step",
 * "step_name"}. POST /api/v1/tasks/{id}/complete|reject (api_tasks.c) ends
 * the task and, in the same statement, makes a parked job PENDING; the TASK
 * step, run again, reads the outcome from the row.
 *
 * The check (every task_check_interval, roles worker/both):
 *   - marks OPEN tasks past due_at once (overdue_notified_at), which fires
 *     task.overdue through the outbox (a trigger of the migration);
 *   - wakes parked jobs whose task is no longer OPEN: a task ended while its
 *     job was still on its way to parking (the park's write not yet
 *     committed) left the job parked; this makes it PENDING. */
#ifndef GHL_TASKS_H
#define GHL_TASKS_H

struct app;
struct err;
struct json;

/* The task row as the step sees it (GHL_SRC_RESPONSE): {"id", "status",
 * "note", "outputs", "on_reject", "created"} and e NULL — or NULL and why in
 * e (the database's code, e.g. ERR_RETRY, when the query could not run;
 * ERR_FAIL otherwise). */
typedef void (*tasks_open_fn)(void *arg, const struct json *task, const struct err *e);

/* Insert-or-find the task of (job_id, step_index). spec: {"title",
 * "checklist": [strings], "due_in_days": number, "assignee_role",
 * "on_reject"} (the TASK step's expanded config). cb runs from the loop. */
void tasks_open(struct app *app, const char *job_id, const char *agency_id, int step_index,
		const char *step_name, const struct json *spec, tasks_open_fn cb, void *arg);

/* Checks a spec handed to task() (by a C step or a Lua step's ghl.task)
 * against the fields above — title 1..300 characters (required), checklist
 * of at most 50 strings of 1..500, due_in_days 0..365, assignee_role
 * AGENCY_ADMIN/SUPPORT/ADMIN, on_reject fail/rollback, nothing else.
 * Returns 0, or ERR_INVALID with the first problem in e ("task.title:
 * required") and how many there were. */
int tasks_spec_check(const struct json *spec, struct err *e);

struct task_check;
/* Start the periodic check on app's loop (NULL when task_check_interval is 0). */
struct task_check *task_check_start(struct app *app);
/* Stop it; a query in flight finishes without it. NULL allowed; returns NULL. */
struct task_check *task_check_free(struct task_check *t);

#endif
