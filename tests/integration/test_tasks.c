/* test_tasks.c — people in the loop (issue 13 item 2): the TASK step parks
 * its job without a lease, a person completes or rejects the task through
 * POST /api/v1/tasks/{id}/complete|reject, and the job resumes at the next
 * step (or fails, or rolls back). Against a spawned `ghl-agent serve` and a
 * real PostgreSQL; the steps around TASK are NOOPs, so no GHL is needed. */
#include <pthread.h>

#include "ghl_harness.h"
#include "webdriver.h"

#define PIPE_TASK(extra)                                                                       \
	"{\"pipeline\":[{\"step\":\"NOOP\",\"config\":{\"output\":\"before\"}},"               \
	"{\"step\":\"TASK\",\"config\":{\"title\":\"Register A2P 10DLC for {{client.name}}\"," \
	"\"checklist\":[\"Brand for {{ client.name }}\",\"Campaign\"],"                        \
	"\"assignee_role\":\"SUPPORT\"" extra "}},"                                            \
	"{\"step\":\"NOOP\",\"config\":{\"output\":\"after\"}}]"

struct world {
	char *dsn;
	PGconn *db;
	struct hagent agent;
	char *agency;
};

static const char *const fast[] = {
	"GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_TASK_CHECK_INTERVAL=200ms",
	"GHL_AGENT_EVENTS_POLL_INTERVAL=1h", /* the outbox is read here */
	"GHL_AGENT_LOG_LEVEL=info", NULL};

static char *new_agency(struct world *w, const char *name, const char *settings)
{
	return tl_sqlf(w->db,
		       "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		       " oauth_refresh_token_encrypted, token_expires_at, settings_json)"
		       " VALUES ('%s', 'co-%s', 'x', 'x', now() + interval '1 day', '%s')"
		       " RETURNING id",
		       name, name, settings);
}

static void world_open_env(struct world *w, const char *name, const char *settings,
			   const char *const *env)
{
	memset(w, 0, sizeof(*w));
	w->dsn = tl_create_migrated_db(name);
	w->db = tl_connect(w->dsn);
	w->agency = new_agency(w, "Tasks", settings);
	hagent_start(&w->agent, w->dsn, NULL, env);
}

static void world_open(struct world *w, const char *name, const char *settings)
{
	world_open_env(w, name, settings, fast);
}

static void world_close(struct world *w)
{
	hagent_stop(&w->agent);
	unlink(w->agent.log);
	PQfinish(w->db);
	tl_drop_db(w->dsn);
	free(w->dsn);
	free(w->agency);
}

static void wait_for(struct world *w, const char *sql, int timeout_ms)
{
	if (tl_sql_wait_true(w->db, sql, timeout_ms))
		return;
	char *log = tl_log_tail(w->agent.log, 3000);
	ck_abort_msg("timed out waiting for: %s\nagent log tail:\n%s", sql, log);
}

static void call(struct world *w, struct tl_resp *r, const char *token, const char *method,
		 const char *path, const char *body)
{
	char *url = hagent_url(&w->agent, path);
	char *authz = xasprintf("Authorization: Bearer %s", token);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	tl_request(r, method, url, h, body, body ? strlen(body) : 0);
	free(authz);
	free(url);
}

/* Submit a job for the world's agency (client name) and wait until it is
 * parked on its task: that task's id. */
static char *parked_job(struct world *w, const char *client, char **job)
{
	char *c = xasprintf("{\"name\":\"%s\",\"email\":\"x@example.com\"}", client);
	*job = hjob_add(w->db, w->agency, c, NULL);
	free(c);
	char *sql = xasprintf("SELECT status = 'IN_PROGRESS' AND context_json ? 'waiting'"
			      " AND NOT EXISTS (SELECT 1 FROM job_leases WHERE job_id = j.id)"
			      " FROM provisioning_jobs j WHERE id = '%s'",
			      *job);
	wait_for(w, sql, 30000);
	free(sql);
	return tl_sqlf(w->db, "SELECT id FROM tasks WHERE job_id = '%s'", *job);
}

static long end_task(struct world *w, const char *task, const char *how, const char *body,
		     char **answer)
{
	char *path = xasprintf("/api/v1/tasks/%s/%s", task, how);
	struct tl_resp r;
	call(w, &r, hagent_admin_token(&w->agent), "POST", path, body);
	long st = r.status;
	if (answer)
		*answer = xstrdup(r.body ? r.body : "");
	tl_resp_free(&r);
	free(path);
	return st;
}

START_TEST(park_complete_resumes_at_the_next_step)
{
	struct world w;
	world_open(&w, "tasks_park", PIPE_TASK(",\"due_in_days\":3") "}");
	char *job, *task = parked_job(&w, "Acme Dental", &job);
	/* /metrics counts it parked, not released */
	ck_assert_int_eq(hagent_metric(&w.agent, "jobs_total{outcome=\"parked\"}"), 1);
	ck_assert_int_eq(hagent_metric(&w.agent, "jobs_total{outcome=\"released\"}"), 0);
	/* parked: no lease, the journal says WAITING, the context names the task */
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM job_leases"), 0);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s'"
				   " AND step = 'TASK' AND status = 'WAITING'"
				   " AND details_json->>'task_id' = '%s'",
				   job, task),
			 1);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_jobs WHERE id = '%s'"
				   " AND context_json->'waiting'->>'task_id' = '%s'"
				   " AND context_json->'waiting'->>'step' = '1'",
				   job, task),
			 1);
	/* the task: templated, due in 3 days, for SUPPORT */
	char *t = tl_sqlf(w.db,
			  "SELECT title || '|' || checklist::text || '|' || assignee_role || '|' ||"
			  " (due_at > now() + interval '2 days')::text FROM tasks WHERE id = '%s'",
			  task);
	ck_assert_str_eq(t, "Register A2P 10DLC for Acme Dental|[\"Brand for Acme Dental\", "
			    "\"Campaign\"]|SUPPORT|true");
	free(t);
	/* the step catalogue describes TASK and its config */
	struct tl_resp r;
	call(&w, &r, hagent_admin_token(&w.agent), "GET", "/api/v1/steps", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"TASK\"") &&
			      strstr(r.body, "on_reject") && strstr(r.body, "Waits for a person"),
		      "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	/* listed and readable */
	call(&w, &r, hagent_admin_token(&w.agent), "GET", "/api/v1/tasks?status=OPEN", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, task) && strstr(r.body, "Acme Dental"),
		      "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	/* complete with outputs: the job resumes at step 2 and completes */
	char *answer;
	ck_assert_int_eq(end_task(&w, task, "complete",
				  "{\"note\":\"done\",\"outputs\":{\"a2p_brand_id\":\"BR123\","
				  "\"approved\":true}}",
				  &answer),
			 200);
	ck_assert_msg(strstr(answer, "\"COMPLETED\"") && strstr(answer, "BR123"), "%s", answer);
	free(answer);
	hjob_assert_completed(w.db, job, w.agent.log);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_jobs WHERE id = '%s'"
				   " AND context_json->'outputs'->>'a2p_brand_id' = 'BR123'"
				   " AND context_json->'outputs'->>'approved' = 'true'"
				   " AND context_json->'outputs'->>'noop' = 'after'"
				   " AND NOT context_json ? 'waiting'",
				   job),
			 1);
	/* the first NOOP ran once: the job resumed after it */
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s'"
				   " AND step = 'NOOP' AND status = 'STARTED'"
				   " AND details_json->>'index' = '0'",
				   job),
			 1);
	char *out = hjob_output(w.db, job, "TASK", "a2p_brand_id");
	ck_assert_str_eq(out, "BR123");
	free(out);
	/* ended once: a second end is refused */
	ck_assert_int_eq(end_task(&w, task, "complete", "{}", NULL), 409);
	ck_assert_int_eq(end_task(&w, task, "reject", "{\"note\":\"no\"}", NULL), 409);
	free(task);
	free(job);
	world_close(&w);
}
END_TEST

START_TEST(reject_fails_or_rolls_back)
{
	struct world w;
	world_open(&w, "tasks_reject", PIPE_TASK("") "}");
	char *job, *task = parked_job(&w, "Beta Clinic", &job);
	ck_assert_int_eq(end_task(&w, task, "reject", "{\"note\":\"brand refused\"}", NULL), 200);
	char *st = hjob_wait(w.db, job, 30000, w.agent.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);
	char *err = tl_sqlf(w.db, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'",
			    job);
	ck_assert_msg(strstr(err, "rejected") && strstr(err, "brand refused") &&
			      !strstr(err, "rollback"),
		      "%s", err);
	free(err);
	/* the step after the task never ran */
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s'"
				   " AND details_json->>'index' = '2'",
				   job),
			 0);
	free(task);
	free(job);

	/* on_reject rollback: the job rolls back though its on_failure is fail */
	char *rb = new_agency(&w, "Rollback", PIPE_TASK(",\"on_reject\":\"rollback\"") "}");
	free(w.agency);
	w.agency = rb;
	task = parked_job(&w, "Gamma Spa", &job);
	ck_assert_int_eq(end_task(&w, task, "reject", "{\"note\":\"no\"}", NULL), 200);
	st = hjob_wait(w.db, job, 30000, w.agent.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);
	err = tl_sqlf(w.db, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'", job);
	ck_assert_msg(strstr(err, "rejected") && strstr(err, "(rollback:"), "%s", err);
	free(err);
	free(task);
	free(job);
	world_close(&w);
}
END_TEST

START_TEST(parked_across_a_restart_then_completed)
{
	struct world w;
	world_open(&w, "tasks_restart", PIPE_TASK("") "}");
	char *job, *task = parked_job(&w, "Delta Law", &job);
	hagent_stop(&w.agent);
	unlink(w.agent.log);
	/* nobody holds it: still parked in the database */
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_jobs WHERE id = '%s'"
				   " AND status = 'IN_PROGRESS' AND context_json ? 'waiting'",
				   job),
			 1);
	hagent_start(&w.agent, w.dsn, NULL, fast);
	ck_assert_int_eq(end_task(&w, task, "complete", "{\"note\":\"ok\"}", NULL), 200);
	hjob_assert_completed(w.db, job, w.agent.log);
	free(task);
	free(job);
	world_close(&w);
}
END_TEST

START_TEST(a_thousand_parked_jobs_do_not_block_others)
{
	struct world w;
	world_open(&w, "tasks_many",
		   "{\"pipeline\":[{\"step\":\"TASK\",\"config\":{\"title\":"
		   "\"Call {{client.name}}\"}}],\"max_concurrent_jobs\":50}");
	tl_execf(w.db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json)"
		 " SELECT '%s', jsonb_build_object('name', 'Client ' || i)"
		 " FROM generate_series(1, 1000) i",
		 w.agency);
	wait_for(&w,
		 "SELECT count(*) = 1000 FROM provisioning_jobs"
		 " WHERE status = 'IN_PROGRESS' AND context_json ? 'waiting'",
		 120000);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM tasks WHERE status = 'OPEN'"), 1000);
	/* another agency's 200 jobs, with its own cap, all run while the 1000 wait */
	char *other = new_agency(&w, "Other", "{\"pipeline\":[{\"step\":\"NOOP\"}]}");
	tl_execf(w.db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json)"
		 " SELECT '%s', '{}' FROM generate_series(1, 200)",
		 other);
	/* and the parked agency's own new work is not starved by its parked jobs */
	char *own = hjob_add(w.db, w.agency, "{\"name\":\"Fresh\"}", NULL);
	wait_for(&w,
		 "SELECT count(*) = 200 FROM provisioning_jobs WHERE status = 'COMPLETED'"
		 " AND agency_id = (SELECT id FROM agencies WHERE name = 'Other')",
		 120000);
	char *sql = xasprintf("SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = '%s')", own);
	wait_for(&w, sql, 30000);
	free(sql);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM provisioning_jobs WHERE agency_id = '%s'"
				   " AND status = 'IN_PROGRESS' AND context_json ? 'waiting'",
				   w.agency),
			 1001);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM job_leases"), 0);
	free(own);
	free(other);
	world_close(&w);
}
END_TEST

struct racer {
	struct world *w;
	const char *task;
	long status;
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	rc->status = end_task(rc->w, rc->task, "complete", "{\"note\":\"me first\"}", NULL);
	return NULL;
}

START_TEST(concurrent_completes_one_wins)
{
	struct world w;
	world_open(&w, "tasks_race", PIPE_TASK("") "}");
	for (int round = 0; round < 5; round++) {
		char *name = xasprintf("Race %d", round);
		char *job, *task = parked_job(&w, name, &job);
		hagent_admin_token(&w.agent); /* logged in before the threads start */
		struct racer a = {&w, task, 0}, b = {&w, task, 0};
		pthread_t ta, tb;
		pthread_create(&ta, NULL, race, &a);
		pthread_create(&tb, NULL, race, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		ck_assert_msg((a.status == 200 && b.status == 409) ||
				      (a.status == 409 && b.status == 200),
			      "round %d: %ld and %ld", round, a.status, b.status);
		hjob_assert_completed(w.db, job, w.agent.log);
		ck_assert_int_eq(
			tl_sqlf_n(w.db,
				  "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s'"
				  " AND step = 'TASK' AND status = 'COMPLETED'",
				  job),
			1);
		free(task);
		free(job);
		free(name);
	}
	world_close(&w);
}
END_TEST

START_TEST(overdue_fires_once_and_bad_bodies_name_the_field)
{
	struct world w;
	world_open(&w, "tasks_overdue", PIPE_TASK(",\"due_in_days\":0") "}");
	tl_execf(w.db,
		 "INSERT INTO event_subscriptions (agency_id, url, event_types, secret_enc)"
		 " VALUES ('%s', 'https://example.com/hook', '{task.created,task.overdue}', 'x')",
		 w.agency);
	char *job, *task = parked_job(&w, "Echo Gym", &job);
	char *sql = xasprintf("SELECT overdue_notified_at IS NOT NULL FROM tasks WHERE id = '%s'",
			      task);
	wait_for(&w, sql, 30000);
	free(sql);
	/* several more checks pass; still one event of each */
	char *stamp = tl_sqlf(w.db, "SELECT overdue_notified_at FROM tasks WHERE id = '%s'", task);
	usleep(1000 * 1000); /* about five checks of 200 ms */
	char *again = tl_sqlf(w.db, "SELECT overdue_notified_at FROM tasks WHERE id = '%s'", task);
	ck_assert_str_eq(stamp, again);
	ck_assert_int_eq(
		tl_sqlf_n(w.db,
			  "SELECT count(*) FROM event_deliveries WHERE event_type ="
			  " 'task.overdue' AND payload::jsonb->'data'->'task'->>'id' = '%s'",
			  task),
		1);
	ck_assert_int_eq(
		tl_sqlf_n(w.db,
			  "SELECT count(*) FROM event_deliveries WHERE event_type ="
			  " 'task.created' AND payload::jsonb->'data'->'task'->>'id' = '%s'",
			  task),
		1);
	/* the overdue filter finds it */
	struct tl_resp r;
	call(&w, &r, hagent_admin_token(&w.agent), "GET", "/api/v1/tasks?overdue=true", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, task) && strstr(r.body, "\"overdue\":true"),
		      "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	call(&w, &r, hagent_admin_token(&w.agent), "GET", "/api/v1/tasks?overdue=maybe", NULL);
	ck_assert_msg(r.status == 400 && strstr(r.body, "overdue"), "%ld %s", r.status, r.body);
	tl_resp_free(&r);

	/* bad bodies: 422 naming the field; nothing changes */
	const char *bad[][3] = {
		{"reject", "{}", "note"},
		{"reject", "{\"note\":\"\"}", "note"},
		{"reject", "{\"note\":\"x\",\"outputs\":{}}", "outputs"},
		{"complete", "{\"outputs\":\"BR1\"}", "outputs"},
		{"complete", "{\"outputs\":{\"location_id\":\"l\"}}", "outputs.location_id"},
		{"complete", "{\"outputs\":{\"has space\":1}}", "outputs.has space"},
		{"complete", "{\"note\":5}", "note"},
		{"complete", "{\"colour\":\"red\"}", "colour"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *answer;
		long st = end_task(&w, task, bad[i][0], bad[i][1], &answer);
		ck_assert_msg(st == 422 && strstr(answer, bad[i][2]), "%s %s: %ld %s", bad[i][0],
			      bad[i][1], st, answer);
		free(answer);
	}
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM tasks WHERE status = 'OPEN'"), 1);
	/* unknown and out-of-scope tasks: 404 */
	char *key_other = NULL;
	char *other = new_agency(&w, "Stranger", "{}");
	key_other = hkey_new(&w.agent, other);
	char *path = xasprintf("/api/v1/tasks/%s", task);
	call(&w, &r, key_other, "GET", path, NULL);
	ck_assert_int_eq(r.status, 404);
	tl_resp_free(&r);
	char *cpath = xasprintf("/api/v1/tasks/%s/complete", task);
	call(&w, &r, key_other, "POST", cpath, "{}");
	ck_assert_int_eq(r.status, 404);
	tl_resp_free(&r);
	char *key_own = hkey_new(&w.agent, w.agency);
	call(&w, &r, key_own, "GET", path, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "Echo Gym"), "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	call(&w, &r, key_own, "POST", cpath, "{\"note\":\"by key\"}");
	ck_assert_msg(r.status == 200 && strstr(r.body, "api_key:"), "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	hjob_assert_completed(w.db, job, w.agent.log);
	free(key_own);
	free(cpath);
	free(path);
	free(other);
	free(key_other);
	free(stamp);
	free(again);
	free(task);
	free(job);
	world_close(&w);
}
END_TEST

/* The task's status is st. */
static void task_is(struct world *w, const char *task, const char *st)
{
	char *now = tl_sqlf(w->db, "SELECT status FROM tasks WHERE id = '%s'", task);
	ck_assert_msg(!strcmp(now, st), "task %s is %s, not %s", task, now, st);
	free(now);
}

START_TEST(cancel_a_parked_job)
{
	struct world w;
	world_open(&w, "tasks_cancel", PIPE_TASK("") "}");
	tl_execf(w.db,
		 "INSERT INTO event_subscriptions (agency_id, url, event_types, secret_enc)"
		 " VALUES ('%s', 'https://example.com/hook', '{task.cancelled}', 'x')",
		 w.agency);
	char *job, *task = parked_job(&w, "Foxtrot Bar", &job);
	char *path = xasprintf("/api/v1/jobs/%s/cancel", job);
	struct tl_resp r;
	call(&w, &r, hagent_admin_token(&w.agent), "POST", path, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"CANCELLED\""), "%ld %s", r.status,
		      r.body);
	tl_resp_free(&r);
	/* its task ended with it, in the same transaction: no longer OPEN */
	task_is(&w, task, "CANCELLED");
	ck_assert_int_eq(
		tl_sqlf_n(w.db,
			  "SELECT count(*) FROM event_deliveries WHERE event_type ="
			  " 'task.cancelled' AND payload::jsonb->'data'->'task'->>'id' = '%s'"
			  " AND payload::jsonb->'data'->'task'->>'status' = 'CANCELLED'",
			  task),
		1);
	ck_assert_int_eq(
		tl_sqlf_n(w.db, "SELECT count(*) FROM tasks WHERE completed_at IS NOT NULL"), 1);
	call(&w, &r, hagent_admin_token(&w.agent), "GET", "/api/v1/tasks?status=OPEN", NULL);
	ck_assert_msg(r.status == 200 && !strstr(r.body, task), "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	call(&w, &r, hagent_admin_token(&w.agent), "GET", "/api/v1/tasks?status=CANCELLED", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, task), "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	char *answer;
	ck_assert_int_eq(end_task(&w, task, "complete", "{}", &answer), 409);
	ck_assert_msg(strstr(answer, "the task is already CANCELLED"), "%s", answer);
	free(answer);
	ck_assert_int_eq(end_task(&w, task, "reject", "{\"note\":\"n\"}", NULL), 409);
	/* a bulk cancel ends the tasks of the parked jobs it cancels too */
	char *job2, *task2 = parked_job(&w, "Golf Club", &job2);
	char *bulk = xasprintf("/api/v1/agencies/%s/jobs/bulk", w.agency);
	char *body = xasprintf("{\"action\":\"cancel\",\"job_ids\":[\"%s\"]}", job2);
	call(&w, &r, hagent_admin_token(&w.agent), "POST", bulk, body);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"succeeded\":1"), "%ld %s", r.status,
		      r.body);
	tl_resp_free(&r);
	task_is(&w, task2, "CANCELLED");
	/* whichever way a job becomes CANCELLED (here: a runner stopping after
	 * its step, as one statement), its OPEN tasks end; other jobs' stay */
	char *job3, *task3 = parked_job(&w, "Hotel Bar", &job3);
	char *job4, *task4 = parked_job(&w, "India Pub", &job4);
	tl_execf(w.db, "UPDATE provisioning_jobs SET status = 'CANCELLED' WHERE id = '%s'", job3);
	task_is(&w, task3, "CANCELLED");
	task_is(&w, task4, "OPEN");
	free(job3);
	free(task3);
	free(job4);
	free(task4);
	free(body);
	free(bulk);
	free(job2);
	free(task2);
	free(path);
	free(task);
	free(job);
	world_close(&w);
}
END_TEST

/* A Lua step asks for a person with ghl.task: the job parks like a TASK
 * step's, and once the task is completed the step runs again from the top,
 * where ghl.task answers the ended task, whose outputs the script passes
 * on. A spec that breaks the rules fails its step, naming the field. */
START_TEST(lua_step_waits_for_a_person)
{
	char dir[] = "/tmp/lua-task-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char *path = xasprintf("%s/ask.lua", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("return {name = \"ASK_PERSON\", version = \"1.0.0\", description = \"asks\",\n"
	      "  run = function(ctx)\n"
	      "    local t = ghl.task{title = \"Call \" .. ctx.client.name,\n"
	      "                       checklist = {\"dial\", \"note it\"}, due_in_days = 2}\n"
	      "    if t.status ~= \"COMPLETED\" then error(\"task was \" .. t.status) end\n"
	      "    ctx:set(\"brand\", t.outputs.brand)\n"
	      "  end}\n",
	      f);
	fclose(f);
	free(path);
	path = xasprintf("%s/bad.lua", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("return {name = \"ASK_BADLY\", version = \"1.0.0\", description = \"asks badly\",\n"
	      "  run = function(ctx) ghl.task{title = \"x\", assignee_role = \"intern\"} end}\n",
	      f);
	fclose(f);
	free(path);
	char *step_dir = xasprintf("GHL_AGENT_STEP_DIR=%s", dir);
	const char *env[] = {fast[0], fast[1], fast[2], fast[3], step_dir, NULL};
	struct world w;
	world_open_env(&w, "tasks_lua",
		       "{\"pipeline\":[{\"step\":\"ASK_PERSON\"},{\"step\":\"NOOP\","
		       "\"config\":{\"output\":\"after\"}}]}",
		       env);
	char *job;
	char *task = parked_job(&w, "Lua Dental", &job);
	char *title = tl_sqlf(w.db,
			      "SELECT title || ' ' || checklist::text FROM tasks"
			      " WHERE id = '%s'",
			      task);
	ck_assert_str_eq(title, "Call Lua Dental [\"dial\", \"note it\"]");
	free(title);
	ck_assert_int_eq(end_task(&w, task, "complete", "{\"outputs\":{\"brand\":\"BR9\"}}", NULL),
			 200);
	hjob_assert_completed(w.db, job, w.agent.log);
	char *brand = hjob_output(w.db, job, "ASK_PERSON", "brand");
	ck_assert_str_eq(brand, "BR9");
	free(brand);
	free(task);
	free(job);

	PQclear(tl_sql(w.db, "UPDATE agencies SET settings_json ="
			     " '{\"pipeline\":[{\"step\":\"ASK_BADLY\"}]}'"));
	job = hjob_add(w.db, w.agency, "{\"name\":\"Bad\",\"email\":\"b@example.com\"}", NULL);
	char *st = hjob_wait(w.db, job, 30000, w.agent.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);
	char *why = tl_sqlf(w.db,
			    "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s'"
			    " AND details_json::text LIKE '%%task.assignee_role: must be one of%%'",
			    job);
	ck_assert_str_ne(why, "0");
	free(why);
	char *n = tl_sqlf(w.db, "SELECT count(*) FROM tasks WHERE job_id = '%s'", job);
	ck_assert_str_eq(n, "0");
	free(n);
	free(job);
	world_close(&w);
	free(step_dir);
	char *rm = xasprintf("rm -rf %s", dir);
	ck_assert_int_eq(system(rm), 0);
	free(rm);
}
END_TEST

/* The browser must not outlive the test (see test_web.c). */
static struct wd browser;

static void browser_teardown(void)
{
	wd_stop(&browser);
}

START_TEST(dashboard_badge_list_and_complete)
{
	wd_require_browser();
	struct world w;
	world_open(&w, "tasks_web", PIPE_TASK(",\"due_in_days\":0") "}");
	char *job, *task = parked_job(&w, "Web <b>Bakery</b>", &job);
	hagent_admin_token(&w.agent);
	atexit(browser_teardown);
	wd_start(&browser);
	/* wd_login, with the time bcrypt takes on a loaded machine */
	char *home = xasprintf("%s/", w.agent.base);
	wd_go(&browser, home);
	free(home);
	wd_wait_text(&browser, "#login-form h1", "Log in", 30000);
	wd_type(&browser, "#login-email", H_ADMIN_EMAIL);
	wd_type(&browser, "#login-password", H_ADMIN_PASSWORD);
	wd_click(&browser, "#login-submit");
	wd_wait_text(&browser, "#whoami", H_ADMIN_EMAIL, 60000);
	/* the badge counts the open task (overdue: due_in_days 0) */
	wd_wait_text(&browser, "#tasks-count", "1 · 1 overdue", 30000);
	/* the job page links its task */
	char *url = xasprintf("%s/#/jobs/%s", w.agent.base, job);
	wd_go(&browser, url);
	wd_wait_text(&browser, "#job-task", "Register A2P 10DLC for Web <b>Bakery</b>", 10000);
	/* the list (overdue), then the task */
	free(url);
	url = xasprintf("%s/#/tasks?filter=overdue", w.agent.base);
	wd_go(&browser, url);
	wd_wait_text(&browser, "#task-list", "Register A2P 10DLC for Web <b>Bakery</b>", 10000);
	wd_screenshots(&browser, "tasks-list");
	wd_click(&browser, "#task-list a[href^='#/tasks/']");
	wd_wait_text(&browser, "#task-title", "Register A2P 10DLC", 10000);
	wd_wait_text(&browser, ".checklist", "Brand for Web <b>Bakery</b>", 5000);
	/* a bad output key is refused next to the outputs */
	wd_type(&browser, ".output-key", "location_id");
	wd_type(&browser, ".output-value", "BR9");
	wd_click(&browser, "#task-complete");
	wd_wait_text(&browser, "[data-field='outputs'] .field-error", "location_id", 10000);
	wd_clear(&browser, ".output-key");
	wd_type(&browser, ".output-key", "a2p_brand_id");
	wd_type(&browser, "#task-note", "registered");
	wd_screenshots(&browser, "task-open");
	wd_click(&browser, "#task-complete");
	wd_wait_text(&browser, "#job-title", "Web <b>Bakery</b>", 10000);
	wd_assert_no_console_errors(&browser);
	hjob_assert_completed(w.db, job, w.agent.log);
	char *out = hjob_output(w.db, job, "TASK", "a2p_brand_id");
	ck_assert_str_eq(out, "BR9");
	free(out);
	wd_wait_text(&browser, "#job-task", "COMPLETED", 10000);
	wd_stop(&browser);
	free(url);
	free(task);
	free(job);
	world_close(&w);
}
END_TEST

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	Suite *s = suite_create("tasks");
	TCase *tc = tcase_create("tasks");
	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, park_complete_resumes_at_the_next_step);
	tcase_add_test(tc, reject_fails_or_rolls_back);
	tcase_add_test(tc, parked_across_a_restart_then_completed);
	tcase_add_test(tc, concurrent_completes_one_wins);
	tcase_add_test(tc, overdue_fires_once_and_bad_bodies_name_the_field);
	tcase_add_test(tc, cancel_a_parked_job);
	tcase_add_test(tc, a_thousand_parked_jobs_do_not_block_others);
	tcase_add_test(tc, lua_step_waits_for_a_person);
	tcase_add_test(tc, dashboard_badge_list_and_complete);
	suite_add_tcase(s, tc);
	int rc = tl_run_suite(s);
	curl_global_cleanup();
	return rc;
}
