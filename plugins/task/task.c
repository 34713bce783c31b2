/* task — TASK: people in the loop. Hands the job to a person ("Register A2P
 * 10DLC for {{client.name}}": what GHL offers no API for) and waits for
 * them without holding anything: the host's task() makes the task (one per
 * job and step) and parks the job — IN_PROGRESS, no lease, no slot —
 * until the task is completed or rejected (dashboard, POST
 * /api/v1/tasks/{id}/complete|reject). The step then runs again and:
 *   - COMPLETED: the person's outputs become the step's outputs (later steps
 *     read them as outputs.<key>), with task_id; the job goes on;
 *   - REJECTED: the step fails for good — the job FAILED, or rolled back
 *     with on_reject "rollback".
 * Config: title and checklist are templates ("{{client.name}}",
 * "{{outputs.location_id}}", see step_template.h); due_in_days (the task is
 * overdue after: event task.overdue, the dashboard's badge); assignee_role;
 * on_reject. Outputs: task_id and the person's outputs. */
#include <string.h>

#include "ghl_step.h"
#include "step_template.h"

GHL_STEP_HOST;

enum { PH_START = 0, PH_STORED = 1 };

static const char *spec_json(ghl_step_ctx *ctx)
{
	const char *title = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH("title"));
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "title");
	host->json_string(j, step_template_expand(host, ctx, title ? title : "TASK"));
	host->json_key(j, "checklist");
	host->json_array(j);
	size_t n = host->get_count(ctx, GHL_SRC_CONFIG, GHL_PATH("checklist"));
	for (size_t i = 0; i < n; i++) {
		const char *ix = host->format(ctx, "%zu", i);
		const char *item = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH("checklist", ix));
		host->json_string(j, step_template_expand(host, ctx, item ? item : ""));
	}
	host->json_end(j);
	double days;
	if (!host->get_number(ctx, GHL_SRC_CONFIG, GHL_PATH("due_in_days"), &days)) {
		host->json_key(j, "due_in_days");
		host->json_number(j, days);
	}
	static const char *const copied[] = {"assignee_role", "on_reject"};
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
		const char *v = host->get_string(ctx, GHL_SRC_CONFIG, GHL_PATH(copied[i]));
		if (v) {
			host->json_key(j, copied[i]);
			host->json_string(j, v);
		}
	}
	host->json_end(j);
	return host->json_text(j);
}

/* The task ended: its outputs go on, or the job stops here. */
static int ended(ghl_step_ctx *ctx)
{
	if (host->response_status(ctx) != 200)
		return host->fail_from_response(ctx, "storing the task");
	const char *status = host->get_string(ctx, GHL_SRC_RESPONSE, GHL_PATH("status"));
	const char *id = host->get_string(ctx, GHL_SRC_RESPONSE, GHL_PATH("id"));
	const char *by = host->get_string(ctx, GHL_SRC_RESPONSE, GHL_PATH("completed_by"));
	const char *note = host->get_string(ctx, GHL_SRC_RESPONSE, GHL_PATH("note"));
	if (status && !strcmp(status, "REJECTED"))
		return host->fail(ctx, 0, "task %s was rejected by %s%s%s", id ? id : "?",
				  by ? by : "someone", note && *note ? ": " : "",
				  note && *note ? note : "");
	if (!status || strcmp(status, "COMPLETED"))
		return host->fail(ctx, 1, "task %s is %s", id ? id : "?",
				  status ? status : "in no known state");
	host->log(ctx, GHL_LOG_INFO, "task %s completed by %s", id ? id : "?", by ? by : "someone");
	host->set_output(ctx, "task_id", host->quote(ctx, id));
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("outputs"));
	for (size_t i = 0; i < n; i++) {
		const char *key = host->get_key(ctx, GHL_SRC_RESPONSE, GHL_PATH("outputs"), i);
		const char *v = host->get_json(ctx, GHL_SRC_RESPONSE, GHL_PATH("outputs", key));
		if (key && v)
			host->set_output(ctx, key, v);
	}
	return GHL_STEP_DONE;
}

static int task_run(ghl_step_ctx *ctx)
{
	if (host->phase(ctx) == PH_STORED)
		return ended(ctx);
	const char *spec = spec_json(ctx);
	if (!spec)
		return host->fail(ctx, 0, "could not build the task (see the log)");
	host->set_phase(ctx, PH_STORED);
	if (host->task(ctx, spec) < 0)
		return host->fail(ctx, 0, "could not start the task (see the log)");
	return GHL_STEP_WAIT;
}

static const struct ghl_step_def steps[] = {
	{"TASK", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{"
	 "\"title\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":300,"
	 "\"description\":\"what the person does; {{client.name}} etc. are filled in\"},"
	 "\"checklist\":{\"type\":\"array\",\"maxItems\":50,\"items\":{\"type\":\"string\","
	 "\"minLength\":1,\"maxLength\":500},"
	 "\"description\":\"the steps to tick off (templates like the title)\"},"
	 "\"due_in_days\":{\"type\":\"number\",\"minimum\":0,\"maximum\":365,"
	 "\"description\":\"the task is overdue this many days after it is made\"},"
	 "\"assignee_role\":{\"type\":\"string\",\"enum\":[\"AGENCY_ADMIN\",\"SUPPORT\","
	 "\"ADMIN\"],\"description\":\"who is expected to do it (default AGENCY_ADMIN)\"},"
	 "\"on_reject\":{\"type\":\"string\",\"enum\":[\"fail\",\"rollback\"],"
	 "\"description\":\"a rejected task fails the job, or rolls it back (default fail)\"}},"
	 "\"required\":[\"title\"],\"additionalProperties\":false}",
	 "Waits for a person: makes a task (title, checklist, due date, role) and parks the job, "
	 "holding no lease, until the task is completed (its outputs go on) or rejected",
	 task_run, NULL, NULL},
};

GHL_STEP_PLUGIN(task, "1.0.0", NULL, steps)
