/* test_audit.c — the audit log (issue 14 item 6) against a spawned `ghl-agent
 * serve` (roles=api) and a real PostgreSQL: each audited change writes one
 * audit_log row naming the caller, the agency and the object, settings
 * changes with a diff whose secrets are masked; a change that fails or
 * changes nothing writes none (the row is written by the change's own
 * statement); the table refuses updates and deletes; GET /api/v1/audit
 * filters by agency, actor and action. Who sees which rows: the scope matrix
 * (test_api_scope.c). */
#include "ghl_harness.h"

static char *dsn;
static PGconn *db;
static struct hagent ag;
static char *agency_a, *agency_b;

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("audit");
	db = tl_connect(dsn);
#define AGENCY_SQL                                                                 \
	"INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted," \
	" oauth_refresh_token_encrypted, token_expires_at)"                        \
	" VALUES ('%s', 'co-audit-%s', 'x', 'y', now() + interval '1 day') RETURNING id"
	agency_a = tl_sqlf(db, AGENCY_SQL, "Acme", "a");
	agency_b = tl_sqlf(db, AGENCY_SQL, "Beta", "b");
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, NULL, extra);
	hagent_admin_token(&ag);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	free(agency_a);
	free(agency_b);
	curl_global_cleanup();
}

/* method path [body] as token: the status; *out the body (malloc'd) when out. */
static long call(const char *token, const char *method, const char *path, const char *body,
		 char **out)
{
	char *url = hagent_url(&ag, path);
	char *authz = xasprintf("Authorization: Bearer %s", token);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	char *o = NULL;
	long st = tl_http(method, url, h, body, &o);
	if (out)
		*out = o;
	else
		free(o);
	free(authz);
	free(url);
	return st;
}

static long admin(const char *method, const char *path, const char *body, char **out)
{
	return call(hagent_admin_token(&ag), method, path, body, out);
}

static long long rows(const char *action, const char *target)
{
	return tl_sqlf_n(db, "SELECT count(*) FROM audit_log WHERE action = '%s' AND target = '%s'",
			 action, target);
}

START_TEST(login_is_recorded_with_its_user)
{
	char *tok = huser_token(&ag, "login@example.com", "SUPPORT", "[]");
	char *user = tl_sqlf(db, "SELECT id FROM users WHERE email = 'login@example.com'");
	ck_assert_int_eq(rows("auth.login", user), 1);
	char *who = tl_sqlf(db,
			    "SELECT actor_user_id::text || '|' || (agency_id IS NULL)"
			    " FROM audit_log WHERE action = 'auth.login' AND target = '%s'",
			    user);
	char *want = xasprintf("%s|true", user);
	ck_assert_str_eq(who, want);
	/* the creation by the harness ADMIN, with the new user's role */
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM audit_log l JOIN users u ON"
				   " u.id = l.actor_user_id WHERE l.action = 'user.create'"
				   " AND l.target = '%s' AND u.email = '" H_ADMIN_EMAIL "'"
				   " AND l.diff->>'role' = 'SUPPORT'",
				   user),
			 1);
	free(want);
	free(who);
	free(user);
	free(tok);
}
END_TEST

START_TEST(settings_change_has_a_masked_diff)
{
	char *path = xasprintf("/api/v1/agencies/%s", agency_a);
	const char *v1 = "{\"settings\":{\"pipeline\":[{\"step\":\"CREATE_USER\","
			 "\"config\":{\"role\":\"admin\"}}]}}";
	char *out;
	long st = admin("PATCH", path, v1, &out);
	ck_assert_msg(st == 200, "PATCH: %ld %s", st, out);
	free(out);
	const char *v2 = "{\"name\":\"Acme Two\",\"settings\":{\"pipeline\":[{\"step\":"
			 "\"CREATE_USER\",\"config\":{\"role\":\"user\"}},{\"step\":"
			 "\"NOTIFY_WEBHOOK\",\"config\":{\"url\":\"https://example.com/hook\","
			 "\"secret\":\"very-secret-value-123\"}}]}}";
	st = admin("PATCH", path, v2, &out);
	ck_assert_msg(st == 200, "PATCH: %ld %s", st, out);
	free(out);
	ck_assert_int_eq(rows("agency.update", agency_a), 2);
	char *diff = tl_sqlf(db,
			     "SELECT diff::text FROM audit_log WHERE action = 'agency.update'"
			     " AND target = '%s' ORDER BY at DESC, id DESC LIMIT 1",
			     agency_a);
	/* jsonb prints keys shortest first: to, from, path */
	ck_assert_msg(
		strstr(diff, "{\"to\": \"Acme Two\", \"from\": \"Acme\", \"path\": \"name\"}"),
		"%s", diff);
	ck_assert_msg(strstr(diff, "{\"to\": \"user\", \"from\": \"admin\", \"path\": "
				   "\"settings.pipeline[0].config.role\"}"),
		      "%s", diff);
	ck_assert_msg(strstr(diff, "\"path\": \"settings.pipeline[1]\"") &&
			      strstr(diff, "\"secret\": \"********\""),
		      "%s", diff);
	ck_assert_msg(!strstr(diff, "very-secret-value"), "a secret in the audit diff: %s", diff);
	/* the same through the API, filtered by agency and action */
	char *q = xasprintf("/api/v1/audit?agency_id=%s&action=agency.update", agency_a);
	st = admin("GET", q, NULL, &out);
	ck_assert_msg(st == 200, "GET %s: %ld %s", q, st, out);
	ck_assert_msg(strstr(out, "settings.pipeline[0].config.role") &&
			      strstr(out, "\"label\":\"" H_ADMIN_EMAIL "\"") &&
			      !strstr(out, "very-secret-value"),
		      "%s", out);
	free(out);
	free(q);
	free(diff);
	free(path);
}
END_TEST

/* The row is written by the change's own statement: a change that the
 * database refuses leaves no row, and neither does one that matched nothing. */
START_TEST(failed_change_writes_no_row)
{
	tl_execf(db, "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$"
		     " BEGIN IF NEW.name = 'boom' THEN RAISE EXCEPTION 'refused'; END IF;"
		     " RETURN NEW; END $$");
	tl_execf(db, "CREATE TRIGGER refuse_boom BEFORE UPDATE ON agencies FOR EACH ROW"
		     " EXECUTE FUNCTION refuse_boom()");
	long long before = rows("agency.update", agency_b);
	char *path = xasprintf("/api/v1/agencies/%s", agency_b);
	long st = admin("PATCH", path, "{\"name\":\"boom\"}", NULL);
	ck_assert_int_eq(st, 500);
	ck_assert_int_eq(rows("agency.update", agency_b), before);
	char *name = tl_sqlf(db, "SELECT name FROM agencies WHERE id = '%s'", agency_b);
	ck_assert_str_eq(name, "Beta");
	tl_execf(db, "DROP TRIGGER refuse_boom ON agencies");
	/* a key of another agency: 404, nothing changed, no row */
	char *key = tl_sqlf(db, "SELECT gen_random_uuid()");
	char *kp = xasprintf("/api/v1/agencies/%s/api-keys/%s", agency_b, key);
	ck_assert_int_eq(admin("DELETE", kp, NULL, NULL), 404);
	ck_assert_int_eq(rows("api_key.revoke", key), 0);
	/* retrying a job that is not FAILED: 409, no row */
	char *job = tl_sqlf(db,
			    "INSERT INTO provisioning_jobs (agency_id, client_data_json, status)"
			    " VALUES ('%s', '{}', 'COMPLETED') RETURNING id",
			    agency_b);
	char *rp = xasprintf("/api/v1/jobs/%s/retry", job);
	ck_assert_int_eq(admin("POST", rp, NULL, NULL), 409);
	ck_assert_int_eq(rows("job.retry", job), 0);
	free(rp);
	free(job);
	free(kp);
	free(key);
	free(name);
	free(path);
}
END_TEST

START_TEST(keys_jobs_users_snapshots_and_delete)
{
	/* an API key: created once, revoked once (a second revoke writes nothing) */
	char *kpath = xasprintf("/api/v1/agencies/%s/api-keys", agency_a);
	char *out;
	ck_assert_int_eq(admin("POST", kpath, "{\"name\":\"ci\"}", &out), 201);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	char *key_id = xstrdup(json_get_str(j, "id"));
	char *key = xstrdup(json_get_str(j, "key"));
	json_free(j);
	free(out);
	ck_assert_int_eq(rows("api_key.create", key_id), 1);
	/* the key itself retries a job: the row names the key */
	char *job = tl_sqlf(db,
			    "INSERT INTO provisioning_jobs (agency_id, client_data_json, status)"
			    " VALUES ('%s', '{}', 'FAILED') RETURNING id",
			    agency_a);
	char *rp = xasprintf("/api/v1/jobs/%s/retry", job);
	long st = call(key, "POST", rp, NULL, &out);
	ck_assert_msg(st == 200, "retry: %ld %s", st, out);
	free(out);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM audit_log WHERE action = 'job.retry'"
				   " AND target = '%s' AND actor_key_id = '%s'"
				   " AND actor_user_id IS NULL AND agency_id = '%s'",
				   job, key_id, agency_a),
			 1);
	char *cp = xasprintf("/api/v1/jobs/%s/cancel", job);
	st = admin("POST", cp, NULL, &out);
	ck_assert_msg(st == 200, "cancel: %ld %s", st, out);
	free(out);
	ck_assert_int_eq(rows("job.cancel", job), 1);
	ck_assert_int_eq(admin("POST", cp, NULL, NULL), 409); /* already CANCELLED: no row */
	ck_assert_int_eq(rows("job.cancel", job), 1);
	char *rk = xasprintf("%s/%s", kpath, key_id);
	ck_assert_int_eq(admin("DELETE", rk, NULL, NULL), 204);
	ck_assert_int_eq(admin("DELETE", rk, NULL, NULL), 204);
	ck_assert_int_eq(rows("api_key.revoke", key_id), 1);

	/* a user's role and agencies: a diff with both */
	ck_assert_int_eq(admin("POST", "/api/v1/users",
			       "{\"email\":\"u@example.com\",\"password\":\"a long password 1\","
			       "\"role\":\"SUPPORT\"}",
			       &out),
			 201);
	j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	char *user = xstrdup(json_get_str(j, "id"));
	json_free(j);
	free(out);
	char *up = xasprintf("/api/v1/users/%s", user);
	char *body = xasprintf("{\"role\":\"AGENCY_ADMIN\",\"agency_ids\":[\"%s\"]}", agency_a);
	ck_assert_int_eq(admin("PATCH", up, body, NULL), 200);
	char *diff = tl_sqlf(db,
			     "SELECT diff::text FROM audit_log WHERE action = 'user.update'"
			     " AND target = '%s'",
			     user);
	ck_assert_msg(strstr(diff, "\"from\": \"SUPPORT\"") && strstr(diff, agency_a), "%s", diff);
	ck_assert_int_eq(admin("DELETE", up, NULL, NULL), 204);
	ck_assert_int_eq(rows("user.delete", user), 1);

	/* a snapshot's niche: the changed field only */
	char *snap = tl_sqlf(db,
			     "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)"
			     " VALUES ('%s', 'snap-audit', 'Audit', 'dental') RETURNING id",
			     agency_a);
	char *sp = xasprintf("/api/v1/snapshots/%s", snap);
	ck_assert_int_eq(admin("PATCH", sp, "{\"niche\":\"legal\"}", NULL), 200);
	char *sd = tl_sqlf(db,
			   "SELECT diff::text FROM audit_log WHERE action = 'snapshot.update'"
			   " AND target = '%s'",
			   snap);
	ck_assert_str_eq(sd, "[{\"to\": \"legal\", \"from\": \"dental\", \"path\": \"niche\"}]");

	/* filters: actor by email, action by object */
	st = admin("GET", "/api/v1/audit?actor=" H_ADMIN_EMAIL "&action=job", NULL, &out);
	ck_assert_msg(st == 200 && strstr(out, "\"job.cancel\"") && !strstr(out, "\"job.retry\""),
		      "%ld %s", st, out);
	free(out);
	ck_assert_int_eq(admin("GET", "/api/v1/audit?action=JOB", NULL, NULL), 400);
	ck_assert_int_eq(admin("GET", "/api/v1/audit?agency_id=nope", NULL, NULL), 400);

	/* the agency goes last: its delete is recorded with its name */
	char *ap = xasprintf("/api/v1/agencies/%s", agency_b);
	ck_assert_int_eq(admin("DELETE", ap, NULL, NULL), 204);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM audit_log WHERE action = 'agency.delete'"
				   " AND agency_id = '%s' AND target = 'Beta'",
				   agency_b),
			 1);
	free(ap);
	free(sd);
	free(sp);
	free(snap);
	free(diff);
	free(body);
	free(up);
	free(user);
	free(rk);
	free(cp);
	free(rp);
	free(job);
	free(key);
	free(key_id);
	free(kpath);
}
END_TEST

/* A job of agency B in state st: its id. */
static char *job_of_b(const char *st)
{
	return tl_sqlf(db,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, status)"
		       " VALUES ('%s', '{}', '%s') RETURNING id",
		       agency_b, st);
}

/* Bulk cancel goes through the same statement as a single cancel
 * (jobs_cancel_sql): one row per job cancelled or asked to stop, naming the
 * caller; a job already over gets none. */
START_TEST(bulk_cancel_is_recorded_per_job)
{
	char *pending = job_of_b("PENDING");
	char *running = job_of_b("IN_PROGRESS");
	char *done = job_of_b("COMPLETED");
	char *path = xasprintf("/api/v1/agencies/%s/jobs/bulk", agency_b);
	char *body = xasprintf("{\"action\":\"cancel\",\"job_ids\":[\"%s\",\"%s\",\"%s\"]}",
			       pending, running, done);
	char *out;
	long st = admin("POST", path, body, &out);
	ck_assert_msg(st == 200 && strstr(out, "\"succeeded\":2"), "bulk: %ld %s", st, out);
	free(out);
	const char *ids[] = {pending, running};
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(
			tl_sqlf_n(db,
				  "SELECT count(*) FROM audit_log WHERE action = 'job.cancel'"
				  " AND target = '%s' AND agency_id = '%s'"
				  " AND actor_key_id IS NULL AND actor_user_id IN"
				  " (SELECT id FROM users WHERE role = 'ADMIN')",
				  ids[i], agency_b),
			1);
	ck_assert_int_eq(rows("job.cancel", done), 0);
	/* the same ids again: the pending one is over now, the running one is
	 * asked to stop again (one more row), the completed one still none */
	ck_assert_int_eq(admin("POST", path, body, NULL), 200);
	ck_assert_int_eq(rows("job.cancel", pending), 1);
	ck_assert_int_eq(rows("job.cancel", running), 2);
	ck_assert_int_eq(rows("job.cancel", done), 0);
	free(body);
	free(path);
	free(pending);
	free(running);
	free(done);
}
END_TEST

START_TEST(rows_cannot_be_changed)
{
	PGresult *r = PQexec(db, "UPDATE audit_log SET action = 'x.y'");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_msg(strstr(PQresultErrorMessage(r), "append-only"), "%s",
		      PQresultErrorMessage(r));
	PQclear(r);
	r = PQexec(db, "DELETE FROM audit_log");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	ck_assert_int_gt(tl_sqlf_n(db, "SELECT count(*) FROM audit_log"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("audit");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, login_is_recorded_with_its_user);
	tcase_add_test(tc, settings_change_has_a_masked_diff);
	tcase_add_test(tc, failed_change_writes_no_row);
	tcase_add_test(tc, keys_jobs_users_snapshots_and_delete);
	tcase_add_test(tc, bulk_cancel_is_recorded_per_job);
	tcase_add_test(tc, rows_cannot_be_changed);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
