/* test_api_scope.c — what each caller sees in every listing endpoint (lists,
 * reports, exports), against a spawned `ghl-agent serve` (roles=api) and a
 * real PostgreSQL: for every role, the ids each page answers must be exactly
 * the ids the database says that caller may see, over all pages, and never
 * one of another agency's, a deleted agency's, or nobody's. The status
 * matrices (test_api_http.c, test_api_jobs.c) check who may call what; this
 * file checks what comes back.
 *
 * A new listing endpoint needs a row in scope_matrix[]: the route guard
 * (every_listing_route_has_a_row) fails for a GET route that has neither a
 * row nor an entry in not_listings[]. */
#include "app.h"
#include "crypto.h"
#include "ghl_harness.h"
#include "http.h"
#include "scope.h"

static char *dsn;
static PGconn *db;
static struct hagent ag;
/* A and Z belong to one AGENCY_ADMIN, B to another; E to nobody; D is deleted */
static char *agency_a, *agency_b, *agency_z, *agency_e, *agency_d;
static char *job_a;	/* a job of A with three log entries */
static char *webhook_a; /* an event subscription of A with deliveries */
static char *aa, *bb, *support, *key_a, *key_b;
static char *all_agencies, *agencies_aa, *agencies_a, *agencies_b;

/* ---- fixture --------------------------------------------------------------- */

/* POST as the harness ADMIN; asserts 201 and returns field `want` (malloc'd). */
static char *admin_post(const char *path, const char *body, const char *want)
{
	char *url = hagent_url(&ag, path);
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	struct tl_resp r;
	tl_request(&r, "POST", url, h, body, strlen(body));
	ck_assert_msg(r.status == 201, "POST %s: %ld %s", path, r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j && json_get_str(j, want), "POST %s: no %s in %s", path, want, r.body);
	char *v = xstrdup(json_get_str(j, want));
	json_free(j);
	tl_resp_free(&r);
	free(authz);
	free(url);
	return v;
}

/* A user of role with agency_ids (JSON array text), logged in: its token. */
static char *user_token(const char *email, const char *role, const char *agency_ids)
{
	const char *pw = "scope test password";
	char *body = xasprintf("{\"email\":\"%s\",\"password\":\"%s\",\"role\":\"%s\","
			       "\"agency_ids\":%s}",
			       email, pw, role, agency_ids);
	free(admin_post("/api/v1/users", body, "id"));
	free(body);
	char *url = hagent_url(&ag, "/api/v1/auth/login");
	const char *h[] = {"Content-Type: application/json", NULL};
	body = xasprintf("{\"email\":\"%s\",\"password\":\"%s\"}", email, pw);
	struct tl_resp r;
	tl_request(&r, "POST", url, h, body, strlen(body));
	ck_assert_msg(r.status == 200, "login %s: %ld %s", email, r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	char *t = xstrdup(json_get_str(j, "token"));
	json_free(j);
	tl_resp_free(&r);
	free(body);
	free(url);
	return t;
}

static char *new_key(const char *agency)
{
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	char *k = admin_post(path, "{\"name\":\"scope\"}", "key");
	free(path);
	return k;
}

/* An agency with `n` jobs (one COMPLETED, one FAILED, the rest PENDING) on a
 * snapshot of niche (NULL: none), two log entries each, and a second snapshot. */
static char *agency_with_data(const char *name, const char *niche, int n, const char *deleted)
{
	char *id = tl_sqlf(
		db,
		"INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		" oauth_refresh_token_encrypted, token_expires_at, deleted_at)"
		" VALUES ('%s', 'co-scope-%s', 'x', 'y', now() + interval '1 day', %s)"
		" RETURNING id",
		name, name, deleted);
	char *snap = tl_sqlf(db,
			     "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)"
			     " VALUES ('%s', 'snap-%s', '%s snapshot', %s%s%s) RETURNING id",
			     id, name, name, niche ? "'" : "", niche ? niche : "NULL",
			     niche ? "'" : "");
	tl_execf(db,
		 "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, is_active)"
		 " VALUES ('%s', 'old-%s', '%s old', false)",
		 id, name, name);
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id, status,"
		 " created_at) SELECT '%s', jsonb_build_object('name', '%s ' || i, 'email',"
		 " 'c' || i || '@example.com'), CASE WHEN i %% 2 = 1 THEN '%s'::uuid END,"
		 " (CASE i WHEN 1 THEN 'COMPLETED' WHEN 2 THEN 'FAILED' ELSE 'PENDING' END)"
		 "::provisioning_job_status, now() - i * interval '1 second'"
		 " FROM generate_series(1, %d) i",
		 id, name, snap, n);
	tl_execf(db,
		 "INSERT INTO provisioning_logs (job_id, step, status)"
		 " SELECT j.id, 'STEP_' || i, 'COMPLETED' FROM provisioning_jobs j,"
		 " generate_series(1, 2) i WHERE j.agency_id = '%s'",
		 id);
	free(snap);
	return id;
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("api_scope");
	db = tl_connect(dsn);
	agency_a = agency_with_data("Acme", "dental", 5, "NULL");
	agency_b = agency_with_data("Beta", "b-only", 4, "NULL");
	agency_z = agency_with_data("Zeta", NULL, 3, "NULL");
	agency_e = agency_with_data("Else", "e-only", 3, "NULL");
	agency_d = agency_with_data("Gone", "d-only", 3, "now()");
	job_a = tl_sqlf(db,
			"SELECT id FROM provisioning_jobs WHERE agency_id = '%s'"
			" ORDER BY created_at DESC LIMIT 1",
			agency_a);
	tl_execf(db,
		 "INSERT INTO provisioning_logs (job_id, step, status) VALUES ('%s',"
		 " 'STEP_3', 'FAILED')",
		 job_a);
	/* GHL requests of steps: two per job of every agency */
	tl_execf(db, "INSERT INTO job_requests (job_id, step_index, attempt, method, path, status,"
		     " duration_ms) SELECT j.id, i - 1, 1, 'POST', '/locations/', 201, 5"
		     " FROM provisioning_jobs j, generate_series(1, 2) i");
	tl_execf(db, "REFRESH MATERIALIZED VIEW job_success_rates");
	/* event subscriptions of A, B and Z, with three deliveries each */
	tl_execf(db,
		 "INSERT INTO event_subscriptions (agency_id, url, event_types, secret_enc)"
		 " SELECT id, 'https://example.com/' || name, '{job.completed}', 'x'"
		 " FROM agencies WHERE id IN ('%s', '%s', '%s')",
		 agency_a, agency_b, agency_z);
	tl_execf(db, "INSERT INTO event_deliveries (subscription_id, agency_id, event_id,"
		     " event_type, payload) SELECT s.id, s.agency_id, gen_random_uuid(),"
		     " 'job.completed', '{}' FROM event_subscriptions s, generate_series(1, 3)");
	webhook_a = tl_sqlf(db, "SELECT id FROM event_subscriptions WHERE agency_id = '%s'",
			    agency_a);
	/* reconciliation drift on the COMPLETED jobs: one open, one resolved each */
	tl_execf(db,
		 "INSERT INTO job_drift (job_id, agency_id, kind, detail, resolved_at)"
		 " SELECT id, agency_id, k, 'seeded', CASE k WHEN 'user_missing' THEN"
		 " LOCALTIMESTAMP END FROM provisioning_jobs,"
		 " unnest('{location_missing,user_missing}'::text[]) k WHERE status = 'COMPLETED'");
	/* a task for every job (TASK steps), open and overdue, open, or completed */
	tl_execf(db,
		 "INSERT INTO tasks (agency_id, job_id, step_index, step_name, title, status,"
		 " due_at, created_at) SELECT j.agency_id, j.id, 0, 'TASK', 'Task ' || j.id,"
		 " CASE WHEN j.status = 'COMPLETED' THEN 'COMPLETED' ELSE 'OPEN' END,"
		 " now() + (CASE WHEN j.status = 'FAILED' THEN -1 ELSE 1 END) * interval '1 day',"
		 " j.created_at FROM provisioning_jobs j");
	/* two uploads (batches) of every agency */
	tl_execf(db, "INSERT INTO job_batches (agency_id, source, total)"
		     " SELECT id, 'csv', 0 FROM agencies, generate_series(1, 2)");
	/* keys of the deleted agency and a revoked one exist too */
	tl_execf(db,
		 "INSERT INTO api_keys (agency_id, name, key_hash, prefix) VALUES"
		 " ('%s', 'gone', repeat('d', 64), 'ghl_gone')",
		 agency_d);

	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, NULL, extra);
	hagent_admin_token(&ag);
	char *ids = xasprintf("[\"%s\",\"%s\"]", agency_a, agency_z);
	aa = user_token("aa@example.com", "AGENCY_ADMIN", ids);
	free(ids);
	ids = xasprintf("[\"%s\"]", agency_b);
	bb = user_token("bb@example.com", "AGENCY_ADMIN", ids);
	free(ids);
	support = user_token("support@example.com", "SUPPORT", "[]");
	key_a = new_key(agency_a);
	key_b = new_key(agency_b);
	free(new_key(agency_z));
	char *revoked = new_key(agency_a);
	char h[CRYPTO_SHA256_HEX_LEN];
	crypto_sha256_hex(revoked, strlen(revoked), h);
	tl_execf(db, "UPDATE api_keys SET revoked_at = now() WHERE key_hash = '%s'", h);
	free(revoked);
	all_agencies = tl_sqlf(db, "SELECT array_agg(id)::text FROM agencies");
	agencies_aa = xasprintf("{%s,%s}", agency_a, agency_z);
	agencies_a = xasprintf("{%s}", agency_a);
	agencies_b = xasprintf("{%s}", agency_b);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	char *v[] = {agency_a,	   agency_b,	agency_z,   agency_e,  agency_d, job_a,
		     webhook_a,	   aa,		bb,	    support,   key_a,	 key_b,
		     all_agencies, agencies_aa, agencies_a, agencies_b};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
	curl_global_cleanup();
}

/* ---- the scope matrix ------------------------------------------------------ */

enum who { W_ADMIN, W_SUPPORT, W_AA, W_BB, W_KEY_A, W_KEY_B, NWHO };

/* Staff see every agency; the others only their own (a row where one of them
 * gets 200 must have something foreign to leak, or it proves nothing). */
static int is_staff(int w)
{
	return w == W_ADMIN || w == W_SUPPORT;
}

struct scope_row {
	const char *route;   /* the route pattern, as in core's route tables */
	const char *path;    /* %A agency A, %B agency B, %J a job of A with logs */
	const char *field;   /* the item field that names the object */
	const char *all;     /* every such object in the database */
	const char *visible; /* those the caller may see: $1 = its agencies (uuid[]) */
	int want[NWHO];	     /* ADMIN, SUPPORT, AGENCY_ADMIN of A+Z, of B, key of A, key of B */
};

#define ALL_200                              \
	{                                    \
		200, 200, 200, 200, 200, 200 \
	}
#define IN_AGENCIES " = ANY($1::uuid[])"
static const struct scope_row scope_matrix[] = {
	{"/api/v1/agencies", "/api/v1/agencies?limit=2", "id", "SELECT id::text FROM agencies",
	 "SELECT id::text FROM agencies WHERE deleted_at IS NULL AND id" IN_AGENCIES, ALL_200},
	{"/api/v1/users",
	 "/api/v1/users?limit=2",
	 "id",
	 "SELECT id::text FROM users",
	 "SELECT id::text FROM users",
	 {200, 403, 403, 403, 403, 403}},
	{"/api/v1/agencies/{id}/api-keys",
	 "/api/v1/agencies/%A/api-keys",
	 "id",
	 "SELECT id::text FROM api_keys",
	 "SELECT id::text FROM api_keys WHERE agency_id = '%A' AND agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 403, 404}},
	{"/api/v1/jobs", "/api/v1/jobs?limit=4", "id", "SELECT id::text FROM provisioning_jobs",
	 "SELECT id::text FROM provisioning_jobs WHERE agency_id" IN_AGENCIES, ALL_200},
	{"/api/v1/jobs", "/api/v1/jobs?agency_id=%B&limit=2", "id",
	 "SELECT id::text FROM provisioning_jobs",
	 "SELECT id::text FROM provisioning_jobs WHERE agency_id = '%B' AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/jobs", "/api/v1/jobs?status=FAILED&limit=1", "id",
	 "SELECT id::text FROM provisioning_jobs",
	 "SELECT id::text FROM provisioning_jobs WHERE status = 'FAILED' AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/jobs/{id}/logs",
	 "/api/v1/jobs/%J/logs?limit=2",
	 "id",
	 "SELECT id::text FROM provisioning_logs",
	 "SELECT l.id::text FROM provisioning_logs l JOIN provisioning_jobs j ON j.id = l.job_id"
	 " WHERE j.id = '%J' AND j.agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 200, 404}},
	{"/api/v1/jobs/{id}/requests",
	 "/api/v1/jobs/%J/requests",
	 "id",
	 "SELECT id::text FROM job_requests",
	 "SELECT q.id::text FROM job_requests q JOIN provisioning_jobs j ON j.id = q.job_id"
	 " WHERE j.id = '%J' AND j.agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 200, 404}},
	{"/api/v1/agencies/{id}/snapshots",
	 "/api/v1/agencies/%A/snapshots?limit=1",
	 "id",
	 "SELECT id::text FROM snapshots",
	 "SELECT id::text FROM snapshots WHERE agency_id = '%A' AND agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 200, 404}},
	{"/api/v1/reports/success-rates", "/api/v1/reports/success-rates", "agency_id",
	 "SELECT DISTINCT agency_id::text FROM job_success_rates",
	 "SELECT DISTINCT agency_id::text FROM job_success_rates"
	 " WHERE day >= current_date - 30 AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/reports/success-rates", "/api/v1/reports/success-rates?group_by=niche", "niche",
	 "SELECT DISTINCT niche FROM job_success_rates",
	 "SELECT DISTINCT niche FROM job_success_rates"
	 " WHERE day >= current_date - 30 AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/reports/drift", "/api/v1/reports/drift?limit=2", "id",
	 "SELECT id::text FROM job_drift",
	 "SELECT id::text FROM job_drift WHERE resolved_at IS NULL AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/reports/drift", "/api/v1/reports/drift?agency_id=%B&open=false&limit=1", "id",
	 "SELECT id::text FROM job_drift",
	 "SELECT id::text FROM job_drift WHERE resolved_at IS NOT NULL AND agency_id = '%B'"
	 " AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/tasks", "/api/v1/tasks?limit=4", "id", "SELECT id::text FROM tasks",
	 "SELECT id::text FROM tasks WHERE agency_id" IN_AGENCIES, ALL_200},
	{"/api/v1/tasks", "/api/v1/tasks?status=OPEN&overdue=true&limit=2", "id",
	 "SELECT id::text FROM tasks",
	 "SELECT id::text FROM tasks WHERE status = 'OPEN' AND due_at < now() AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/tasks", "/api/v1/tasks?agency_id=%B&limit=2", "id", "SELECT id::text FROM tasks",
	 "SELECT id::text FROM tasks WHERE agency_id = '%B' AND agency_id" IN_AGENCIES, ALL_200},
	{"/api/v1/reports/overview", "/api/v1/reports/overview", "agencies.agency_id",
	 "SELECT DISTINCT agency_id::text FROM provisioning_jobs",
	 "SELECT DISTINCT agency_id::text FROM provisioning_jobs"
	 " WHERE created_at >= current_date - 29 AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/reports/overview", "/api/v1/reports/overview?agency_id=%B", "agencies.agency_id",
	 "SELECT DISTINCT agency_id::text FROM provisioning_jobs",
	 "SELECT DISTINCT agency_id::text FROM provisioning_jobs"
	 " WHERE agency_id = '%B' AND agency_id" IN_AGENCIES,
	 ALL_200},
	{"/api/v1/reports/overview", "/api/v1/reports/overview", "ghl_budget.agency_id",
	 "SELECT id::text FROM agencies",
	 "SELECT id::text FROM agencies WHERE deleted_at IS NULL AND id" IN_AGENCIES, ALL_200},
	{"/api/v1/agencies/{id}/webhooks",
	 "/api/v1/agencies/%A/webhooks",
	 "id",
	 "SELECT id::text FROM event_subscriptions",
	 "SELECT id::text FROM event_subscriptions WHERE agency_id = '%A' AND agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 200, 404}},
	{"/api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries",
	 "/api/v1/agencies/%A/webhooks/%W/deliveries?limit=2",
	 "id",
	 "SELECT id::text FROM event_deliveries",
	 "SELECT id::text FROM event_deliveries WHERE subscription_id = '%W' AND agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 200, 404}},
	{"/api/v1/jobs", "/api/v1/jobs?q=example.com&limit=3", "id",
	 "SELECT id::text FROM provisioning_jobs",
	 "SELECT id::text FROM provisioning_jobs WHERE agency_id" IN_AGENCIES, ALL_200},
	{"/api/v1/agencies/{id}/batches",
	 "/api/v1/agencies/%A/batches?limit=1",
	 "id",
	 "SELECT id::text FROM job_batches",
	 "SELECT id::text FROM job_batches WHERE agency_id = '%A' AND agency_id" IN_AGENCIES,
	 {200, 200, 200, 404, 200, 404}},
	/* rows without an agency (logins, user changes): staff only, i.e. the
	 * callers whose $1 holds every agency */
	{"/api/v1/audit", "/api/v1/audit?limit=3", "id", "SELECT id::text FROM audit_log",
	 "SELECT id::text FROM audit_log WHERE agency_id" IN_AGENCIES
	 " OR (agency_id IS NULL AND cardinality($1::uuid[]) = (SELECT count(*) FROM agencies))",
	 ALL_200},
};

START_TEST(scope_matrix_every_role)
{
	const struct tl_caller callers[NWHO] = {
		{"ADMIN", hagent_admin_token(&ag), all_agencies},
		{"SUPPORT", support, all_agencies},
		{"AGENCY_ADMIN of A and Z", aa, agencies_aa},
		{"AGENCY_ADMIN of B", bb, agencies_b},
		{"API key of A", key_a, agencies_a},
		{"API key of B", key_b, agencies_b},
	};
	const char *vars[] = {"A", agency_a, "B", agency_b, "J", job_a, "W", webhook_a, NULL};
	struct buf fails;
	buf_init(&fails);
	int cells = 0;
	for (size_t i = 0; i < sizeof(scope_matrix) / sizeof(scope_matrix[0]); i++) {
		const struct scope_row *row = &scope_matrix[i];
		char *path = tl_expand(row->path, vars);
		char *all = tl_expand(row->all, vars);
		char *visible = tl_expand(row->visible, vars);
		for (int w = 0; w < NWHO; w++) {
			struct tl_scope_counts n;
			tl_scope_check(&fails, ag.base, db, &callers[w], path, row->field, all,
				       visible, row->want[w], &n);
			cells++;
			if (row->want[w] != 200)
				continue;
			/* a cell that cannot fail is a fixture bug: say so */
			if (w == W_ADMIN && n.visible == 0)
				buf_printf(&fails, "  %s: the fixture gives ADMIN nothing to see\n",
					   row->path);
			if (!is_staff(w) && n.foreign == 0)
				buf_printf(&fails, "  %s as %s: nothing foreign exists to leak\n",
					   row->path, callers[w].name);
		}
		free(visible);
		free(all);
		free(path);
	}
	char *what = xasprintf("scope matrix (%d cells)", cells);
	tl_scope_assert_none(&fails, what);
	free(what);
	buf_clear(&fails);
}
END_TEST

/* GET routes that list nothing agency-owned, each with the reason. */
static const char *const not_listings[][2] = {
	{"/healthz", "liveness"},
	{"/readyz", "readiness"},
	{"/metrics", "process counters, no object ids"},
	{"/oauth/connect", "a redirect"},
	{"/oauth/callback", "a redirect target"},
	{"/", "the dashboard page (static)"},
	{"/web/{file}", "static files"},
	{"/api/v1/me", "the caller itself"},
	{"/api/v1/users/{id}", "one object (404/403 in the status matrix)"},
	{"/api/v1/agencies/{id}", "one object (404 in the status matrix)"},
	{"/api/v1/jobs/{id}", "one object (404 in the status matrix)"},
	{"/api/v1/agencies/{id}/webhooks/{webhook_id}", "one object (404 in tests/integration/"
							"test_events.c)"},
	{"/api/v1/steps", "the step catalogue: the same for everyone allowed"},
	{"/api/v1/tasks/{id}", "one object (404 in tests/integration/test_tasks.c)"},
	{"/api/v1/agencies/{id}/batches/{batch_id}", "one object (404 in tests/integration/"
						     "test_job_search.c)"},
	{"/api/v1/jobs/{id}/timeline", "one job's steps (404 in the status matrix)"},
};

static int in_matrix(const char *pattern)
{
	for (size_t i = 0; i < sizeof(scope_matrix) / sizeof(scope_matrix[0]); i++)
		if (!strcmp(scope_matrix[i].route, pattern))
			return 1;
	return 0;
}

static int not_a_listing(const char *pattern)
{
	for (size_t i = 0; i < sizeof(not_listings) / sizeof(not_listings[0]); i++)
		if (!strcmp(not_listings[i][0], pattern))
			return 1;
	return 0;
}

/* Present and future: every GET route the daemon serves is either checked by
 * the scope matrix or declared not to list agency-owned objects. */
START_TEST(every_listing_route_has_a_row)
{
	size_t n;
	struct http_route *routes = routes_all(&n);
	struct buf fails;
	buf_init(&fails);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(routes[i].method, "GET"))
			continue;
		int listed = in_matrix(routes[i].pattern),
		    exempt = not_a_listing(routes[i].pattern);
		if (!listed && !exempt)
			buf_printf(&fails,
				   "  GET %s: no row in scope_matrix[] (add one: README "
				   "\"How we test\"), nor in not_listings[]\n",
				   routes[i].pattern);
		if (listed && exempt)
			buf_printf(&fails, "  GET %s: both in scope_matrix[] and not_listings[]\n",
				   routes[i].pattern);
	}
	for (size_t k = 0; k < sizeof(scope_matrix) / sizeof(scope_matrix[0]); k++) {
		int found = 0;
		for (size_t i = 0; i < n; i++)
			found |= !strcmp(routes[i].method, "GET") &&
				 !strcmp(routes[i].pattern, scope_matrix[k].route);
		if (!found)
			buf_printf(&fails, "  scope_matrix[%zu]: no GET route %s\n", k,
				   scope_matrix[k].route);
	}
	free(routes);
	tl_scope_assert_none(&fails, "routes without a scope check");
	buf_clear(&fails);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api_scope");
	TCase *tc = tcase_create("scope");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_listing_route_has_a_row);
	tcase_add_test(tc, scope_matrix_every_role);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
