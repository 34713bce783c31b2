/* test_api_jobs.c — the jobs, snapshots, steps and dry-run API over real HTTP
 * against a spawned `ghl-agent serve` (roles=api: no scheduler, so jobs keep
 * the state a test gives them), a real PostgreSQL and a real ghl-sim: the
 * access matrix of every new endpoint, Idempotency-Key, batch JSON and CSV,
 * pagination under inserts, filters and injection, retry/cancel, snapshot
 * sync, the pipeline validator, the dry run and /oauth/connect's session. */
#include <curl/curl.h>
#include <libpq-fe.h>

#include "api.h"
#include "crypto.h"
#include "ghl_harness.h"

#define PW_AA "agency admin password"
#define PW_SUPPORT "support password 123"

static char *dsn;
static struct hsim sim;
static struct hagent ag;
static char agency_a[40], agency_b[40], agency_z[40];
static char key_a[64], key_b[64];
static char *admin, *aa, *bb, *support;
static const char *expired_token = "expired-session-token-for-jobs-0000000000000";

/* ---- HTTP -------------------------------------------------------------- */

#define resp tl_resp

static struct resp req(const char *method, const char *path, const char *const *hdrs,
		       const char *body, size_t len)
{
	struct resp r;
	char *url = xasprintf("%s%s", ag.base, path);
	tl_request(&r, method, url, hdrs, body, len);
	free(url);
	return r;
}

static void resp_free(struct resp *r)
{
	tl_resp_free(r);
}

/* As token (NULL: none) with a JSON body (or none); extra: one more header. */
static struct resp as_h(const char *token, const char *method, const char *path, const char *body,
			const char *extra)
{
	char *authz = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
	const char *h[4] = {"Content-Type: application/json", NULL, NULL, NULL};
	int n = 1;
	if (authz)
		h[n++] = authz;
	if (extra)
		h[n++] = extra;
	struct resp r = req(method, path, h, body, body ? strlen(body) : 0);
	free(authz);
	return r;
}

static struct resp as(const char *token, const char *method, const char *path, const char *body)
{
	return as_h(token, method, path, body, NULL);
}

static struct resp csv_post(const char *token, const char *path, const char *csv, size_t len)
{
	char *authz = xasprintf("Authorization: Bearer %s", token);
	const char *h[] = {"Content-Type: text/csv; charset=utf-8", authz, NULL};
	struct resp r = req("POST", path, h, csv, len);
	free(authz);
	return r;
}

static struct json *parse(const char *body)
{
	struct err e;
	struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(j, "not JSON (%s): %.300s", e.msg, body);
	return j;
}

static void assert_error(const struct resp *r, long status, const char *code)
{
	ck_assert_msg(r->status == status, "status %ld != %ld: %.500s", r->status, status, r->body);
	struct json *j = parse(r->body);
	struct json *e = json_get(j, "error");
	ck_assert_msg(e && str_eq(json_get_str(e, "code"), code), "code != %s: %.500s", code,
		      r->body);
	json_free(j);
}

static void assert_has(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle), "missing %s in: %.800s", needle, hay);
}

static char *login(const char *email, const char *password)
{
	char *body = xasprintf("{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	struct resp r = as(NULL, "POST", "/api/v1/auth/login", body);
	free(body);
	ck_assert_msg(r.status == 200, "login %s: %ld %s", email, r.status, r.body);
	struct json *j = parse(r.body);
	char *t = xstrdup(json_get_str(j, "token"));
	json_free(j);
	resp_free(&r);
	return t;
}

/* ---- database helpers -------------------------------------------------- */

static char *q1(const char *sql)
{
	PGconn *c = tl_connect(dsn);
	char *v = tl_sql_value(c, sql);
	PQfinish(c);
	return v;
}

static void exec_sql(const char *sql)
{
	PGconn *c = tl_connect(dsn);
	PQclear(tl_sql(c, sql));
	PQfinish(c);
}

static long long count_jobs(const char *agency)
{
	char *sql = xasprintf("SELECT count(*) FROM provisioning_jobs WHERE agency_id = '%s'",
			      agency);
	char *v = q1(sql);
	long long n = atoll(v);
	free(v);
	free(sql);
	return n;
}

/* A job of agency in status st (inserted directly); malloc'd id. */
static char *make_job(const char *agency, const char *st)
{
	char *sql = xasprintf(
		"INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
		" error_message, context_json) VALUES ('%s',"
		" '{\"name\":\"Made\",\"email\":\"made@example.com\"}', '%s',"
		" CASE WHEN '%s' = 'FAILED' THEN 'CREATE_USER: boom' END,"
		" '{\"steps\":{\"0\":{\"step\":\"CREATE_LOCATION\",\"status\":"
		"\"COMPLETED\"}},\"outputs\":{\"location_id\":\"loc-1\"}}') RETURNING id",
		agency, st, st);
	char *id = q1(sql);
	free(sql);
	return id;
}

static void user_add(const char *args, const char *password)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[] = {env_dsn, NULL};
	char *text = xasprintf("%s\n", password);
	char *in = tl_write_temp("ghl-jobs-stdin", text);
	char *line = xasprintf("exec \"$0\" user add %s --password-stdin < '%s'", args, in);
	char *sh[] = {(char *)"/bin/sh", (char *)"-c", line, (char *)tl_env("GHL_AGENT_BIN"), NULL};
	char *out = NULL;
	int rc = tl_run(sh, env, &out);
	ck_assert_msg(rc == 0, "user add %s: %d %s", args, rc, out);
	free(out);
	unlink(in);
	free(in);
	free(text);
	free(line);
	free(env_dsn);
}

static void make_key(const char *agency, char *out, size_t n)
{
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	struct resp r = as(admin, "POST", path, "{\"name\":\"jobs test\"}");
	ck_assert_msg(r.status == 201, "create key: %ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	snprintf(out, n, "%s", json_get_str(j, "key"));
	json_free(j);
	resp_free(&r);
	free(path);
}

static void connect_agency(const char *company, char *id_out)
{
	struct hresp cb;
	free(hconnect(&ag, company, &cb));
	ck_assert_msg(cb.status == 200, "connect %s: %ld %s", company, cb.status, cb.body);
	hresp_free(&cb);
	char *sql = xasprintf("SELECT id FROM agencies WHERE ghl_agency_id = '%s'", company);
	char *id = q1(sql);
	snprintf(id_out, 40, "%s", id);
	free(id);
	free(sql);
}

/* ---- fixture ------------------------------------------------------------ */

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *flags[] = {"--company-id", "co-api-a", "--snapshot-delay-ms", "0", NULL};
	hsim_start(&sim, flags);
	dsn = tl_create_migrated_db("api_jobs");
	const char *extra[] = {"GHL_AGENT_ROLES=api", "GHL_AGENT_MAX_BATCH_BODY_BYTES=2000000",
			       NULL};
	hagent_start(&ag, dsn, &sim, extra);
	admin = xstrdup(hagent_admin_token(&ag));
	connect_agency("co-api-a", agency_a);
	connect_agency("co-api-b", agency_b);
	char *z = q1("INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		     " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Zeta', 'co-api-z',"
		     " 'x', 'y', now() + interval '1 day')"
		     " RETURNING id");
	snprintf(agency_z, sizeof(agency_z), "%s", z);
	free(z);
	char *args = xasprintf("--email aa@example.com --role AGENCY_ADMIN --agency %s --agency %s",
			       agency_a, agency_z);
	user_add(args, PW_AA);
	free(args);
	args = xasprintf("--email bb@example.com --role AGENCY_ADMIN --agency %s", agency_b);
	user_add(args, PW_AA);
	free(args);
	user_add("--email support@example.com --role SUPPORT", PW_SUPPORT);
	char h[65];
	crypto_sha256_hex(expired_token, strlen(expired_token), h);
	char *sql = xasprintf(
		"INSERT INTO sessions (token_hash, user_id, csrf_token_hash, expires_at)"
		" SELECT '%s', id, '%s', now() - interval '1 minute' FROM users"
		" WHERE email = '" H_ADMIN_EMAIL "'",
		h, h);
	exec_sql(sql);
	free(sql);
	aa = login("aa@example.com", PW_AA);
	bb = login("bb@example.com", PW_AA);
	support = login("support@example.com", PW_SUPPORT);
	make_key(agency_a, key_a, sizeof(key_a));
	make_key(agency_b, key_b, sizeof(key_b));
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
	free(admin);
	free(aa);
	free(bb);
	free(support);
	curl_global_cleanup();
}

/* ---- the access matrix --------------------------------------------------- */

enum who {
	W_NONE,
	W_BAD,
	W_EXPIRED,
	W_AA_OWN,
	W_AA_OTHER,
	W_SUPPORT,
	W_KEY_OWN,
	W_KEY_OTHER,
	W_ADMIN,
	NWHO
};
static const char *const who_name[] = {"no auth",
				       "bad token",
				       "expired session",
				       "AGENCY_ADMIN of the agency",
				       "AGENCY_ADMIN of another",
				       "SUPPORT",
				       "API key of the agency",
				       "API key of another",
				       "ADMIN"};

struct cell_row {
	const char *method;
	const char *
		path; /* %A agency A, %J a PENDING job of A, %C a COMPLETED one, %S a snapshot of A */
	const char *body;
	int want[NWHO];
};

#define U401 401, 401, 401
#define JOB_BODY \
	"{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Matrix\",\"email\":\"m@example.com\"}}"
static const struct cell_row matrix[] = {
	{"POST", "/api/v1/agencies/%A/jobs", JOB_BODY, {U401, 201, 404, 403, 201, 404, 201}},
	{"POST",
	 "/api/v1/agencies/%A/jobs/batch",
	 "[" JOB_BODY "," JOB_BODY "]",
	 {U401, 201, 404, 403, 201, 404, 201}},
	{"GET", "/api/v1/jobs", NULL, {U401, 200, 200, 200, 200, 200, 200}},
	{"GET",
	 "/api/v1/jobs?status=PENDING&agency_id=%A",
	 NULL,
	 {U401, 200, 200, 200, 200, 200, 200}},
	{"GET", "/api/v1/jobs/%J", NULL, {U401, 200, 404, 200, 200, 404, 200}},
	{"GET", "/api/v1/jobs/%J/logs", NULL, {U401, 200, 404, 200, 200, 404, 200}},
	/* a PENDING job cannot be retried, a COMPLETED one not cancelled: 409 = let through */
	{"POST", "/api/v1/jobs/%J/retry", NULL, {U401, 409, 404, 409, 409, 404, 409}},
	{"GET", "/api/v1/jobs/%J/timeline", NULL, {U401, 200, 404, 200, 200, 404, 200}},
	{"GET", "/api/v1/jobs/%J/requests", NULL, {U401, 200, 404, 200, 200, 404, 200}},
	/* editing client data is submitting: not SUPPORT; a PENDING job answers 409 */
	{"POST", "/api/v1/jobs/%J/edit-and-retry", JOB_BODY, {U401, 409, 404, 403, 409, 404, 409}},
	{"POST", "/api/v1/jobs/%C/cancel", NULL, {U401, 409, 404, 409, 409, 404, 409}},
	{"GET", "/api/v1/agencies/%A/snapshots", NULL, {U401, 200, 404, 200, 200, 404, 200}},
	{"POST", "/api/v1/agencies/%A/snapshots/sync", NULL, {U401, 200, 404, 403, 403, 404, 200}},
	{"PATCH",
	 "/api/v1/snapshots/%S",
	 "{\"niche\":\"dental\"}",
	 {U401, 200, 404, 403, 403, 403, 200}},
	{"GET", "/api/v1/steps", NULL, {U401, 200, 200, 200, 403, 403, 200}},
	{"POST",
	 "/api/v1/agencies/%A/pipeline/dry-run",
	 "{\"pipeline\":[{\"step\":\"NOOP\"}]}",
	 {U401, 200, 404, 403, 403, 404, 200}},
	{"GET", "/oauth/connect", NULL, {U401, 302, 302, 403, 403, 403, 302}},
	/* statuses only: the ids in each list and report are test_api_scope.c's */
	{"GET",
	 "/api/v1/reports/success-rates?group_by=niche",
	 NULL,
	 {U401, 200, 200, 200, 200, 200, 200}},
};

START_TEST(access_matrix)
{
	char *job = make_job(agency_a, "PENDING");
	char *done = make_job(agency_a, "COMPLETED");
	char *sql = xasprintf("INSERT INTO snapshots (agency_id, ghl_snapshot_id, name) VALUES"
			      " ('%s', 'matrix-snap', 'Matrix') RETURNING id",
			      agency_a);
	char *snap = q1(sql);
	free(sql);
	const char *tokens[NWHO] = {
		NULL, "not-a-real-token", expired_token, aa, bb, support, key_a, key_b, admin};
	struct buf fails;
	buf_init(&fails);
	int cells = 0;
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
		const struct cell_row *row = &matrix[i];
		const char *vars[] = {"A", agency_a, "J", job, "C", done, "S", snap, NULL};
		char *path = tl_expand(row->path, vars);
		for (int w = 0; w < NWHO; w++) {
			struct resp r = as(tokens[w], row->method, path, row->body);
			cells++;
			if (r.status != row->want[w]) {
				buf_printf(&fails, "  %s %s as %s: %ld, want %d: %.200s\n",
					   row->method, row->path, who_name[w], r.status,
					   row->want[w], r.body);
			} else if (r.status >= 400) {
				struct json *j = parse(r.body);
				if (!json_get_str(json_get(j, "error"), "code"))
					buf_printf(&fails, "  %s %s as %s: no error shape: %s\n",
						   row->method, row->path, who_name[w], r.body);
				json_free(j);
			}
			resp_free(&r);
		}
		free(path);
	}
	ck_assert_msg(fails.len == 0, "access matrix (%d cells) mismatches:\n%s", cells,
		      buf_cstr(&fails));
	buf_clear(&fails);
	free(job);
	free(done);
	free(snap);
}
END_TEST

/* ---- submit --------------------------------------------------------------- */

START_TEST(submit_and_idempotency)
{
	char *path = xasprintf("/api/v1/agencies/%s/jobs", agency_b);
	const char *body1 =
		"{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Idem\",\"email\":\"idem@example.com\","
		"\"tags\":[\"a\"]}}";
	/* the same content with keys reordered hashes alike */
	const char *body1b =
		"{\"client_data\":{\"tags\":[\"a\"],\"first_name\":\"F\",\"last_name\":\"L\",\"email\":\"idem@example.com\","
		"\"name\":\"Idem\"}}";
	const char *body2 =
		"{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Other\",\"email\":\"idem@example.com\"}}";
	long long before = count_jobs(agency_b);
	struct resp r = as_h(key_b, "POST", path, body1, "Idempotency-Key: order-4711");
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	char *id = xstrdup(json_get_str(j, "id"));
	ck_assert_str_eq(json_get_str(j, "status"), "PENDING");
	ck_assert_str_eq(json_get_str(j, "idempotency_key"), "order-4711");
	ck_assert_str_eq(json_get_str(j, "agency_id"), agency_b);
	json_free(j);
	resp_free(&r);
	r = as_h(key_b, "POST", path, body1b, "Idempotency-Key: order-4711");
	ck_assert_msg(r.status == 200 && strstr(r.body, id), "%ld %s", r.status, r.body);
	assert_has(r.headers, "Idempotent-Replayed: true");
	resp_free(&r);
	r = as_h(bb, "POST", path, body2, "Idempotency-Key: order-4711");
	assert_error(&r, 409, "idempotency_conflict");
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before + 1);
	/* the same key in another agency is another job */
	char *path_a = xasprintf("/api/v1/agencies/%s/jobs", agency_a);
	r = as_h(key_a, "POST", path_a, body1, "Idempotency-Key: order-4711");
	ck_assert_msg(r.status == 201 && !strstr(r.body, id), "%ld %s", r.status, r.body);
	resp_free(&r);
	/* every client_data problem, with its path */
	r = as(key_b, "POST", path,
	       "{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"\",\"email\":\"not an email\",\"phone\":\"555\","
	       "\"country\":\"XX\",\"bogus\":1},\"snapshot_id\":7}");
	assert_error(&r, 422, "validation_failed");
	const char *want[] = {"client_data.name",    "client_data.email", "client_data.phone",
			      "client_data.country", "client_data.bogus", "\"snapshot_id\""};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_has(r.body, want[i]);
	resp_free(&r);
	r = as(key_b, "POST", path, "{\"snapshot_id\":null}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"client_data\"");
	resp_free(&r);
	r = as(key_b, "POST", path,
	       "{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"A\",\"email\":\"a@example.com\"},"
	       "\"extra\":1}");
	assert_error(&r, 422, "unknown_fields");
	resp_free(&r);
	/* a snapshot of another agency, an unknown agency, a bad key */
	char *sql = xasprintf("INSERT INTO snapshots (agency_id, ghl_snapshot_id, name) VALUES"
			      " ('%s', 'a-only', 'A only') RETURNING id",
			      agency_a);
	char *snap_a = q1(sql);
	free(sql);
	char *b = xasprintf(
		"{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"S\",\"email\":\"s@example.com\"},"
		"\"snapshot_id\":\"%s\"}",
		snap_a);
	r = as(key_b, "POST", path, b);
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"snapshot_id\"");
	resp_free(&r);
	r = as(key_a, "POST", path_a, b);
	ck_assert_msg(r.status == 201 && strstr(r.body, snap_a), "%ld %s", r.status, r.body);
	resp_free(&r);
	free(b);
	r = as(admin, "POST", "/api/v1/agencies/00000000-0000-4000-8000-000000000000/jobs", body1);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	char *longkey = xmalloc(300);
	memset(longkey, 'k', 299);
	longkey[299] = '\0';
	char *hk = xasprintf("Idempotency-Key: %s", longkey);
	r = as_h(key_b, "POST", path, body1, hk);
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "Idempotency-Key");
	resp_free(&r);
	free(hk);
	free(longkey);
	ck_assert_int_eq(count_jobs(agency_b), before + 1);
	/* the job is readable as the key, with the same shape */
	char *get = xasprintf("/api/v1/jobs/%s", id);
	r = as(key_b, "GET", get, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"client_data\""), "%s", r.body);
	resp_free(&r);
	r = as(key_a, "GET", get, NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(get);
	free(snap_a);
	free(path_a);
	free(path);
	free(id);
}
END_TEST

START_TEST(body_handling)
{
	char *path = xasprintf("/api/v1/agencies/%s/jobs", agency_b);
	size_t big = 1024 * 1024 + 10;
	char *huge = xmalloc(big + 1);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	huge[big] = '\0';
	struct resp r = as(key_b, "POST", path, huge);
	ck_assert_msg(r.status == 413, "oversize: %ld", r.status);
	resp_free(&r);
	free(huge);
	r = as(key_b, "POST", path, "{\"client_data\": {\"name\": }");
	assert_error(&r, 400, "malformed_json");
	resp_free(&r);
	struct buf deep;
	buf_init(&deep);
	buf_puts(&deep, "{\"client_data\":");
	for (int i = 0; i < 100; i++)
		buf_puts(&deep, "{\"a\":");
	buf_puts(&deep, "1");
	for (int i = 0; i < 101; i++)
		buf_putc(&deep, '}');
	r = as(key_b, "POST", path, buf_cstr(&deep));
	assert_error(&r, 400, "malformed_json");
	resp_free(&r);
	buf_clear(&deep);
	r = as(key_b, "POST", path, "{\"client_data\":[1,2],\"snapshot_id\":\"nope\"}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"client_data\"");
	assert_has(r.body, "\"field\":\"snapshot_id\"");
	resp_free(&r);
	char *authz = xasprintf("Authorization: Bearer %s", key_b);
	const char *h[] = {authz, "Content-Type: text/plain", NULL};
	r = req("POST", path, h, "{}", 2);
	assert_error(&r, 415, "unsupported_media_type");
	resp_free(&r);
	/* the batch route has its own cap (2 MB in this suite) and content types */
	char *bpath = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_b);
	size_t bbig = 2000001;
	char *bhuge = xmalloc(bbig + 1);
	memset(bhuge, ' ', bbig);
	bhuge[0] = '[';
	bhuge[bbig - 1] = ']';
	bhuge[bbig] = '\0';
	r = as(key_b, "POST", bpath, bhuge);
	ck_assert_msg(r.status == 413, "batch oversize: %ld %s", r.status, r.body);
	resp_free(&r);
	free(bhuge);
	r = req("POST", bpath, h, "a,b", 3);
	assert_error(&r, 415, "unsupported_media_type");
	resp_free(&r);
	r = as(key_b, "POST", bpath, "[");
	assert_error(&r, 400, "malformed_json");
	resp_free(&r);
	r = as(key_b, "POST", bpath, "[]");
	assert_error(&r, 422, "validation_failed");
	resp_free(&r);
	r = as(key_b, "POST", bpath, "{\"jobs\":5}");
	assert_error(&r, 422, "validation_failed");
	resp_free(&r);
	r = as(key_b, "POST", bpath, "\"x\"");
	assert_error(&r, 422, "validation_failed");
	resp_free(&r);
	free(bpath);
	free(authz);
	free(path);
}
END_TEST

/* ---- batch ---------------------------------------------------------------- */

START_TEST(batch_json_all_or_nothing)
{
	char *path = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_b);
	long long before = count_jobs(agency_b);
	struct resp r = as(
		key_b, "POST", path,
		"[{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"One\",\"email\":\"one@example.com\"}},"
		"{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Two\",\"email\":\"two@@example\"}},"
		"{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Three\",\"email\":\"3@example.com\"},"
		"\"bogus\":true},"
		"7]");
	assert_error(&r, 422, "unknown_fields");
	assert_has(r.body, "\"field\":\"rows[1].client_data.email\"");
	assert_has(r.body, "\"field\":\"rows[2].bogus\"");
	assert_has(r.body, "\"field\":\"rows[3]\"");
	ck_assert_msg(!strstr(r.body, "rows[0]"), "%s", r.body);
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before);
	/* a snapshot that is not the agency's: nothing stored either */
	char *body = xasprintf(
		"{\"jobs\":[{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"One\",\"email\":"
		"\"one@example.com\"}},{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Two\",\"email\":"
		"\"two@example.com\"},\"snapshot_id\":"
		"\"00000000-0000-4000-8000-000000000000\"}]}");
	r = as(key_b, "POST", path, body);
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"rows[1].snapshot_id\"");
	resp_free(&r);
	free(body);
	ck_assert_int_eq(count_jobs(agency_b), before);
	r = as(key_b, "POST", path,
	       "{\"jobs\":[{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"First\",\"email\":\"first@example.com\"}},"
	       "{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Second\",\"email\":\"second@example.com\"},"
	       "\"snapshot_id\":null}]}");
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	int64_t n = 0;
	json_get_int(j, "count", &n);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(json_len(json_get(j, "job_ids")), 2);
	const struct json *second = json_at(json_get(j, "job_ids"), 1);
	char *sql = xasprintf("SELECT client_data_json->>'name' || status FROM provisioning_jobs"
			      " WHERE id = '%s'",
			      second->u.str.s);
	char *v = q1(sql);
	ck_assert_str_eq(v, "SecondPENDING"); /* ids come back in row order */
	free(v);
	free(sql);
	json_free(j);
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before + 2);
	free(path);
}
END_TEST

START_TEST(batch_csv)
{
	char *path = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_b);
	long long before = count_jobs(agency_b);
	const char csv[] =
		"\xEF\xBB\xBF"
		"name,email,first_name,last_name,address,tags,"
		"custom_values.welcome,country\r\n"
		"\"Acme, Inc.\",owner@acme.example,Ada,Lovelace,\"1 Main St, Suite \"\"B\"\"\","
		"dental; vip ;,\"Hi\r\nthere\",US\r\n"
		"Beta LLC,beta@example.com,Bo,Baker,,,,\r\n";
	struct resp r = csv_post(key_b, path, csv, sizeof(csv) - 1);
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	assert_has(r.body, "\"count\":2");
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before + 2);
	char *sql = xasprintf("SELECT client_data_json::text FROM provisioning_jobs"
			      " WHERE agency_id = '%s' AND client_data_json->>'email' ="
			      " 'owner@acme.example'",
			      agency_b);
	char *v = q1(sql);
	free(sql);
	struct json *c = parse(v);
	ck_assert_str_eq(json_get_str(c, "name"), "Acme, Inc.");
	ck_assert_str_eq(json_get_str(c, "address"), "1 Main St, Suite \"B\"");
	ck_assert_str_eq(json_get_str(c, "country"), "US");
	ck_assert_str_eq(json_get_str(json_get(c, "custom_values"), "welcome"), "Hi\r\nthere");
	struct json *tags = json_get(c, "tags");
	ck_assert_uint_eq(json_len(tags), 2);
	ck_assert_str_eq(json_at(tags, 0)->u.str.s, "dental");
	ck_assert_str_eq(json_at(tags, 1)->u.str.s, "vip");
	json_free(c);
	free(v);
	sql = xasprintf(
		"SELECT client_data_json::text FROM provisioning_jobs WHERE agency_id = '%s'"
		" AND client_data_json->>'email' = 'beta@example.com'",
		agency_b);
	v = q1(sql);
	ck_assert_msg(!strstr(v, "address") && !strstr(v, "tags"), "empty cells kept: %s", v);
	free(v);
	free(sql);

	/* one bad row: nothing stored, each problem named by the file's line (the
	 * header is line 1), and the message names the fields */
	const char bad[] = "name,email,first_name,last_name\nGood,good@example.com,G,Ood\n"
			   "Bad,not-an-email,B,Ad\nAlso good,ag@example.com,A,Good\nShort\n";
	r = csv_post(key_b, path, bad, sizeof(bad) - 1);
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"line[3].client_data.email\"");
	assert_has(r.body, "\"field\":\"line[5]\"");
	assert_has(r.body, "and send the request again: line[3].client_data.email (");
	ck_assert_msg(!strstr(r.body, "rows[") && !strstr(r.body, "line[2]") &&
			      !strstr(r.body, "line[4]"),
		      "%s", r.body);
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before + 2);
	const char unknown[] = "name,email,favourite_colour,email\nA,a@example.com,red,x\n";
	r = csv_post(key_b, path, unknown, sizeof(unknown) - 1);
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"header[2]\"");
	assert_has(r.body, "\"field\":\"header[3]\"");
	resp_free(&r);
	const char broken[] = "name,email\n\"open,a@example.com\n";
	r = csv_post(key_b, path, broken, sizeof(broken) - 1);
	assert_error(&r, 400, "malformed_csv");
	assert_has(r.body, "line 2");
	resp_free(&r);
	const char header_only[] = "name,email\r\n";
	r = csv_post(key_b, path, header_only, sizeof(header_only) - 1);
	assert_error(&r, 422, "validation_failed");
	resp_free(&r);

	/* 10,000 rows in one go; 10,001 refused. A key of its own: the bucket
	 * holds 10,000 submissions, and key_b's posts above took some of them
	 * (refilled at 100/s: a fast machine got here before they were back) */
	char big_key[64];
	make_key(agency_b, big_key, sizeof(big_key));
	struct buf big;
	buf_init(&big);
	buf_puts(&big, "name,email,first_name,last_name,external_id\r\n");
	for (int i = 0; i < 10000; i++)
		buf_printf(&big, "Client %d,c%d@bulk.example,F,L,crm-%d\r\n", i, i, i);
	int64_t t0 = now_monotonic_ms();
	r = csv_post(big_key, path, big.data, big.len);
	ck_assert_msg(r.status == 201, "%ld %.300s", r.status, r.body);
	assert_has(r.body, "\"count\":10000");
	resp_free(&r);
	fprintf(stderr, "batch of 10,000 CSV rows: %lld ms\n",
		(long long)(now_monotonic_ms() - t0));
	ck_assert_int_eq(count_jobs(agency_b), before + 2 + 10000);
	buf_puts(&big, "One more,more@bulk.example,F,L,crm-x\r\n");
	r = csv_post(big_key, path, big.data, big.len);
	assert_error(&r, 400, "malformed_csv");
	assert_has(r.body, "more than 10001 records");
	resp_free(&r);
	buf_clear(&big);
	ck_assert_int_eq(count_jobs(agency_b), before + 2 + 10000);
	free(path);
}
END_TEST

/* ---- the client-data fields the agency's pipeline needs ---------------------- */

/* The default pipeline's CREATE_USER needs first_name and last_name: a job
 * without them is refused at submission (single, batch, CSV), naming the
 * field and the step, instead of failing after CREATE_LOCATION changed GHL.
 * GET/PATCH /agencies/{id} and GET /steps show the needs. */
START_TEST(jobs_missing_needed_fields_are_refused)
{
	char *agency = xasprintf("/api/v1/agencies/%s", agency_b);
	struct resp r = as(key_b, "GET", agency, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	assert_has(r.body,
		   "\"required_client_fields\":[{\"field\":\"name\",\"steps\":"
		   "[\"CREATE_LOCATION\"]},{\"field\":\"email\",\"steps\":[\"CREATE_LOCATION\","
		   "\"CREATE_USER\",\"CREATE_CONTACT\"]},{\"field\":\"first_name\",\"steps\":"
		   "[\"CREATE_USER\"]},{\"field\":\"last_name\",\"steps\":[\"CREATE_USER\"]}]");
	resp_free(&r);
	long long before = count_jobs(agency_b);
	char *path = xasprintf("/api/v1/agencies/%s/jobs", agency_b);
	const char *lacking = "{\"client_data\":{\"name\":\"N\",\"email\":\"n@example.com\","
			      "\"first_name\":\"Ada\"}}";
	r = as_h(key_b, "POST", path, lacking, "Idempotency-Key: needs-1");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "{\"field\":\"client_data.last_name\",\"message\":\"required by step "
			   "CREATE_USER of the agency's pipeline\"}");
	ck_assert_msg(!strstr(r.body, "client_data.first_name"), "%s", r.body);
	resp_free(&r);
	/* with other problems: every one listed */
	r = as(key_b, "POST", path, "{\"client_data\":{\"name\":\"N\",\"email\":\"bad\"}}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "client_data.email");
	assert_has(r.body, "client_data.first_name");
	assert_has(r.body, "client_data.last_name");
	resp_free(&r);
	char *batch = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_b);
	r = as(key_b, "POST", batch,
	       "[{\"client_data\":{\"name\":\"A\",\"email\":\"a@example.com\","
	       "\"first_name\":\"A\",\"last_name\":\"B\"}},"
	       "{\"client_data\":{\"name\":\"B\",\"email\":\"b@example.com\"}}]");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"rows[1].client_data.first_name\"");
	ck_assert_msg(!strstr(r.body, "rows[0]"), "%s", r.body);
	resp_free(&r);
	const char csv[] = "name,email,first_name\nA,a@example.com,Ann\n";
	r = csv_post(key_b, batch, csv, sizeof(csv) - 1);
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "{\"field\":\"line[2].client_data.last_name\",\"message\":\"required "
			   "by step CREATE_USER of the agency's pipeline\"}");
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before);
	/* the steps' catalogue shows what each needs */
	r = as(admin, "GET", "/api/v1/steps", NULL);
	assert_has(r.body, "\"client_fields\":[\"email\",\"first_name\",\"last_name\"]");
	resp_free(&r);
	/* a pipeline without CREATE_USER: saved, its needs answered, the job accepted */
	r = as(bb, "PATCH", agency,
	       "{\"settings\":{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
	       "{\"step\":\"CREATE_USER\",\"on_error\":\"continue\"}]}}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	assert_has(r.body, "\"required_client_fields\":[{\"field\":\"name\",\"steps\":"
			   "[\"CREATE_LOCATION\"]},{\"field\":\"email\",\"steps\":"
			   "[\"CREATE_LOCATION\"]}]");
	resp_free(&r);
	r = as_h(key_b, "POST", path, lacking, "Idempotency-Key: needs-1");
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), before + 1);
	free(batch);
	free(path);
	free(agency);
}
END_TEST

/* ---- list, filters, pagination --------------------------------------------- */

static char **page_ids(const char *token, const char *url, size_t *n, char **next)
{
	struct resp r = as(token, "GET", url, NULL);
	ck_assert_msg(r.status == 200, "%s: %ld %s", url, r.status, r.body);
	struct json *j = parse(r.body);
	struct json *items = json_get(j, "items");
	*n = json_len(items);
	char **ids = xcalloc(*n + 1, sizeof(char *));
	for (size_t i = 0; i < *n; i++)
		ids[i] = xstrdup(json_get_str(json_at(items, i), "id"));
	const char *nc = json_get_str(j, "next_cursor");
	*next = nc ? xstrdup(nc) : NULL;
	json_free(j);
	resp_free(&r);
	return ids;
}

START_TEST(list_pagination_stable_under_inserts)
{
	/* a fresh agency with 5 jobs, created a second apart */
	char *ag_new = q1(
		"INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		" oauth_refresh_token_encrypted, token_expires_at) VALUES ('Paged', 'co-paged',"
		" 'x', 'y', now() + interval '1 day')"
		" RETURNING id");
	char *sql = xasprintf(
		"INSERT INTO provisioning_jobs (agency_id, client_data_json, created_at)"
		" SELECT '%s', jsonb_build_object('name', 'P' || i, 'email',"
		" 'p' || i || '@example.com'), now() - (10 - i) * interval '1 second'"
		" FROM generate_series(1, 5) i",
		ag_new);
	exec_sql(sql);
	free(sql);
	char *url = xasprintf("/api/v1/jobs?agency_id=%s&limit=2", ag_new);
	size_t n;
	char *next;
	char **p1 = page_ids(admin, url, &n, &next);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(next);
	/* 3 new jobs arrive between pages */
	sql = xasprintf("INSERT INTO provisioning_jobs (agency_id, client_data_json)"
			" SELECT '%s', '{\"name\":\"New\",\"email\":\"n@example.com\"}'"
			" FROM generate_series(1, 3)",
			ag_new);
	exec_sql(sql);
	free(sql);
	struct buf seen;
	buf_init(&seen);
	for (size_t i = 0; i < n; i++)
		buf_printf(&seen, "%s,", p1[i]);
	size_t total = n;
	for (int pages = 0; next; pages++) {
		ck_assert_int_lt(pages, 10);
		char *u = xasprintf("%s&cursor=%s", url, next);
		free(next);
		char **p = page_ids(admin, u, &n, &next);
		for (size_t i = 0; i < n; i++) {
			ck_assert_msg(!strstr(buf_cstr(&seen), p[i]), "repeated %s", p[i]);
			buf_printf(&seen, "%s,", p[i]);
			free(p[i]);
		}
		total += n;
		free(p);
		free(u);
	}
	ck_assert_uint_eq(total, 5); /* exactly the original five, newest first */
	sql = xasprintf(
		"SELECT string_agg(id::text, ',' ORDER BY created_at DESC, id DESC) || ','"
		" FROM provisioning_jobs WHERE agency_id = '%s' AND client_data_json->>'name'"
		" LIKE 'P%%'",
		ag_new);
	char *want = q1(sql);
	ck_assert_str_eq(buf_cstr(&seen), want);
	free(want);
	free(sql);
	buf_clear(&seen);
	for (size_t i = 0; i < 2; i++)
		free(p1[i]);
	free(p1);
	free(url);

	/* filters */
	char *failed = make_job(ag_new, "FAILED");
	url = xasprintf("/api/v1/jobs?agency_id=%s&status=FAILED", ag_new);
	char **f = page_ids(support, url, &n, &next);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(f[0], failed);
	free(f[0]);
	free(f);
	free(url);
	url = xasprintf("/api/v1/jobs?agency_id=%s&created_after=2999-01-01T00:00:00Z", ag_new);
	f = page_ids(admin, url, &n, &next);
	ck_assert_uint_eq(n, 0);
	free(f);
	free(url);
	url = xasprintf("/api/v1/jobs?agency_id=%s&created_before=2000-01-01", ag_new);
	f = page_ids(admin, url, &n, &next);
	ck_assert_uint_eq(n, 0);
	free(f);
	free(url);
	url = xasprintf("/api/v1/jobs?agency_id=%s&created_after=2000-01-01T00:00:00%%2B02:00"
			"&created_before=2999-12-31&limit=200",
			ag_new);
	f = page_ids(admin, url, &n, &next);
	ck_assert_uint_eq(n, 9);
	for (size_t i = 0; i < n; i++)
		free(f[i]);
	free(f);
	free(url);
	/* an API key and an AGENCY_ADMIN see only their agencies' jobs */
	f = page_ids(key_a, "/api/v1/jobs?limit=200", &n, &next);
	ck_assert_uint_gt(n, 0);
	for (size_t i = 0; i < n; i++) {
		char *s2 = xasprintf("SELECT agency_id FROM provisioning_jobs WHERE id = '%s'",
				     f[i]);
		char *a = q1(s2);
		ck_assert_str_eq(a, agency_a);
		free(a);
		free(s2);
		free(f[i]);
	}
	free(f);
	free(next);
	url = xasprintf("/api/v1/jobs?agency_id=%s", ag_new);
	f = page_ids(bb, url, &n, &next);
	ck_assert_uint_eq(n, 0);
	free(f);
	f = page_ids(key_a, url, &n, &next);
	ck_assert_uint_eq(n, 0);
	free(f);
	free(url);

	/* bad and hostile filter values: 400, never a database error */
	const char *bad[][2] = {
		{"/api/v1/jobs?status=PENDING%27%20OR%201%3D1--", "invalid_parameter"},
		{"/api/v1/jobs?status=pending", "invalid_parameter"},
		{"/api/v1/jobs?agency_id=%27%3B%20DROP%20TABLE%20provisioning_jobs%3B--",
		 "invalid_parameter"},
		{"/api/v1/jobs?created_after=2020-01-01%27%20OR%201%3D1", "invalid_parameter"},
		{"/api/v1/jobs?created_before=now()", "invalid_parameter"},
		{"/api/v1/jobs?created_after=2020-13-45", "invalid_input"},
		{"/api/v1/jobs?cursor=%27%20OR%201%3D1", "invalid_cursor"},
		{"/api/v1/jobs?limit=0", "invalid_parameter"},
		{"/api/v1/jobs?sort=id", "unknown_parameter"},
		{"/api/v1/jobs/1%20OR%201=1", "not_found"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct resp r = as(admin, "GET", bad[i][0], NULL);
		assert_error(&r, strcmp(bad[i][1], "not_found") ? 400 : 404, bad[i][1]);
		resp_free(&r);
	}
	char *cnt = q1("SELECT count(*) > 0 FROM provisioning_jobs");
	ck_assert_str_eq(cnt, "t");
	free(cnt);
	free(failed);
	free(ag_new);
}
END_TEST

START_TEST(logs_newest_first)
{
	char *job = make_job(agency_a, "COMPLETED");
	char *sql = xasprintf(
		"INSERT INTO provisioning_logs (job_id, step, status, details_json,"
		" timestamp) SELECT '%s', 'STEP_' || i, 'COMPLETED', jsonb_build_object"
		"('i', i), now() - (10 - i) * interval '1 second'"
		" FROM generate_series(1, 3) i",
		job);
	exec_sql(sql);
	free(sql);
	char *url = xasprintf("/api/v1/jobs/%s/logs?limit=2", job);
	struct resp r = as(key_a, "GET", url, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	struct json *items = json_get(j, "items");
	ck_assert_uint_eq(json_len(items), 2);
	ck_assert_str_eq(json_get_str(json_at(items, 0), "step"), "STEP_3");
	ck_assert_str_eq(json_get_str(json_at(items, 1), "step"), "STEP_2");
	char *u2 = xasprintf("%s&cursor=%s", url, json_get_str(j, "next_cursor"));
	json_free(j);
	resp_free(&r);
	r = as(key_a, "GET", u2, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "STEP_1") && !strstr(r.body, "STEP_2") &&
			      strstr(r.body, "\"next_cursor\":null"),
		      "%s", r.body);
	resp_free(&r);
	free(u2);
	free(url);
	/* a job without entries: an empty page; an unknown job: 404 */
	char *empty = make_job(agency_a, "PENDING");
	url = xasprintf("/api/v1/jobs/%s/logs", empty);
	r = as(aa, "GET", url, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"items\":[]"), "%s", r.body);
	resp_free(&r);
	free(url);
	r = as(admin, "GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/logs", NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(empty);
	free(job);
}
END_TEST

/* ---- retry and cancel ------------------------------------------------------ */

START_TEST(retry_and_cancel)
{
	PGconn *listen = tl_connect(dsn);
	PQclear(tl_sql(listen, "LISTEN ghl_jobs"));
	char *job = make_job(agency_a, "FAILED");
	exec_sql("UPDATE provisioning_jobs SET retry_count = 3, finished_at = now(),"
		 " cancel_requested = true WHERE status = 'FAILED'");
	char *url = xasprintf("/api/v1/jobs/%s/retry", job);
	struct resp r = as(support, "POST", url, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	ck_assert_str_eq(json_get_str(j, "status"), "PENDING");
	ck_assert_ptr_null(json_get_str(j, "error_message"));
	ck_assert_ptr_null(json_get_str(j, "finished_at"));
	ck_assert_int_eq(json_get_bool(j, "cancel_requested"), 0);
	int64_t rc = -1;
	json_get_int(j, "retry_count", &rc);
	ck_assert_int_eq(rc, 0);
	/* completed steps stay, so the retry resumes after them */
	ck_assert_str_eq(json_get_str(json_get(j, "outputs"), "location_id"), "loc-1");
	json_free(j);
	resp_free(&r);
	char *sql = xasprintf("SELECT context_json->'steps'->'0'->>'status' FROM provisioning_jobs"
			      " WHERE id = '%s'",
			      job);
	char *v = q1(sql);
	ck_assert_str_eq(v, "COMPLETED");
	free(v);
	free(sql);
	/* workers were woken */
	int64_t deadline = now_monotonic_ms() + 5000;
	PGnotify *nf = NULL;
	while (!nf && now_monotonic_ms() < deadline) {
		PQconsumeInput(listen);
		nf = PQnotifies(listen);
		if (!nf)
			usleep(20000);
	}
	ck_assert_msg(nf && !strcmp(nf->relname, "ghl_jobs"), "no NOTIFY ghl_jobs");
	PQfreemem(nf);
	PQfinish(listen);
	r = as(key_a, "POST", url, NULL);
	assert_error(&r, 409, "invalid_state");
	assert_has(r.body, "PENDING");
	resp_free(&r);
	free(url);

	/* cancel: PENDING at once (CANCELLED), IN_PROGRESS by request, finished ones 409 */
	url = xasprintf("/api/v1/jobs/%s/cancel", job);
	r = as(key_a, "POST", url, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"status\":\"CANCELLED\"") &&
			      strstr(r.body, "cancelled by request") &&
			      strstr(r.body, "\"current_step\":null"),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	r = as(key_a, "POST", url, NULL);
	assert_error(&r, 409, "invalid_state");
	assert_has(r.body, "already CANCELLED");
	resp_free(&r);
	free(url);
	/* CANCELLED is final: no retry, in words that say why */
	url = xasprintf("/api/v1/jobs/%s/retry", job);
	r = as(support, "POST", url, NULL);
	assert_error(&r, 409, "invalid_state");
	assert_has(r.body, "a CANCELLED job is final and cannot be retried");
	resp_free(&r);
	free(url);
	/* and filterable */
	r = as(key_a, "GET", "/api/v1/jobs?status=CANCELLED", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, job) &&
			      !strstr(r.body, "\"status\":\"PENDING\""),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	char *running = make_job(agency_a, "IN_PROGRESS");
	sql = xasprintf("INSERT INTO provisioning_logs (job_id, step, status, \"timestamp\")"
			" VALUES ('%s', 'CREATE_LOCATION', 'STARTED', now() - interval '1 minute'),"
			" ('%s', 'WAIT_FOR_SNAPSHOT', 'STARTED', now())",
			running, running);
	exec_sql(sql);
	free(sql);
	url = xasprintf("/api/v1/jobs/%s/cancel", running);
	r = as(aa, "POST", url, NULL);
	/* it finishes the step it is in (the runner's part: test_jobs.c) */
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"status\":\"IN_PROGRESS\"") &&
			      strstr(r.body, "\"cancel_requested\":true") &&
			      strstr(r.body, "\"current_step\":\"WAIT_FOR_SNAPSHOT\""),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	free(url);
	r = as(admin, "POST", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/cancel", NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(running);
	free(job);
}
END_TEST

/* ---- snapshots -------------------------------------------------------------- */

START_TEST(snapshot_sync_upsert_and_deactivate)
{
	char *sql = xasprintf("INSERT INTO snapshots (agency_id, ghl_snapshot_id, name) VALUES"
			      " ('%s', 'gone-from-ghl', 'Old one')",
			      agency_b);
	exec_sql(sql);
	free(sql);
	char *path = xasprintf("/api/v1/agencies/%s/snapshots/sync", agency_b);
	struct resp r = as(bb, "POST", path, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	int64_t listed = -1, added = -1, deact = -1;
	json_get_int(j, "listed", &listed);
	json_get_int(j, "added", &added);
	json_get_int(j, "deactivated", &deact);
	ck_assert_int_gt(listed, 0);
	ck_assert_int_eq(added, listed);
	ck_assert_int_eq(deact, 1);
	json_free(j);
	resp_free(&r);
	/* a second sync changes nothing; a new GHL snapshot is added */
	r = as(admin, "POST", path, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"added\":0") &&
			      strstr(r.body, "\"deactivated\":0") &&
			      strstr(r.body, "\"updated\":0"),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	char *surl = xasprintf("%s/_sim/snapshots", sim.base);
	const char *sh[] = {"Content-Type: application/json", NULL};
	ck_assert_int_eq(tl_http("POST", surl, sh,
				 "{\"companyId\":\"co-api-b\",\"id\":\"snap-new-1\","
				 "\"name\":\"Fresh Dental\"}",
				 NULL),
			 201);
	free(surl);
	r = as(admin, "POST", path, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"added\":1"), "%ld %s", r.status, r.body);
	resp_free(&r);
	sql = xasprintf("SELECT count(*) FILTER (WHERE is_active) || '/' || count(*) FROM snapshots"
			" WHERE agency_id = '%s'",
			agency_b);
	char *v = q1(sql);
	char *want = xasprintf("%lld/%lld", (long long)listed + 1, (long long)listed + 2);
	ck_assert_str_eq(v, want);
	free(want);
	free(v);
	free(sql);
	free(path);
	/* an agency that never connected */
	path = xasprintf("/api/v1/agencies/%s/snapshots/sync", agency_z);
	r = as(aa, "POST", path, NULL);
	ck_assert_msg(r.status == 409 || r.status == 404, "%ld %s", r.status, r.body);
	resp_free(&r);
	free(path);

	/* update, then the filters */
	sql = xasprintf("SELECT id FROM snapshots WHERE agency_id = '%s' AND ghl_snapshot_id ="
			" 'snap-new-1'",
			agency_b);
	char *sid = q1(sql);
	free(sql);
	path = xasprintf("/api/v1/snapshots/%s", sid);
	r = as(bb, "PATCH", path,
	       "{\"niche\":\"Dental\",\"description\":\"Teeth 100%_ok\","
	       "\"is_active\":false}");
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"is_active\":false") &&
			      strstr(r.body, "\"niche\":\"Dental\""),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	r = as(bb, "PATCH", path, "{\"is_active\":\"yes\",\"niche\":\"\",\"x\":1}");
	assert_error(&r, 422, "unknown_fields");
	assert_has(r.body, "\"field\":\"is_active\"");
	assert_has(r.body, "\"field\":\"niche\"");
	resp_free(&r);
	r = as(aa, "PATCH", path, "{\"niche\":\"x\"}");
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(path);
	struct {
		const char *query;
		int want; /* items */
	} filters[] = {
		{"niche=dental", 1},
		{"niche=DENTAL&active=false", 1},
		{"niche=dental&active=true", 0},
		{"q=100%25_", 1},
		{"q=teeth", 1},
		{"q=%25", 1},	  /* the description has a literal % */
		{"q=1%25%25", 0}, /* would match "100%" if % were a wildcard */
		{"q=1_0", 0},	  /* would match "100" if _ were a wildcard */
		{"q=%27%20OR%201%3D1--", 0},
		{"niche=%27%20OR%20%271%27%3D%271", 0},
		{"q=%5C", 0},
		{"active=false", 2},
	};
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		char *u = xasprintf("/api/v1/agencies/%s/snapshots?%s", agency_b, filters[i].query);
		r = as(key_b, "GET", u, NULL);
		ck_assert_msg(r.status == 200, "%s: %ld %s", u, r.status, r.body);
		j = parse(r.body);
		ck_assert_msg((int)json_len(json_get(j, "items")) == filters[i].want,
			      "%s: %zu items, want %d: %s", u, json_len(json_get(j, "items")),
			      filters[i].want, r.body);
		json_free(j);
		resp_free(&r);
		free(u);
	}
	char *u = xasprintf("/api/v1/agencies/%s/snapshots?active=maybe", agency_b);
	r = as(key_b, "GET", u, NULL);
	assert_error(&r, 400, "invalid_parameter");
	resp_free(&r);
	free(u);
	/* pages of one */
	u = xasprintf("/api/v1/agencies/%s/snapshots?limit=1", agency_b);
	size_t n, total = 0;
	char *next;
	char **ids = page_ids(key_b, u, &n, &next);
	total += n;
	free(ids[0]);
	free(ids);
	while (next) {
		char *u2 = xasprintf("%s&cursor=%s", u, next);
		free(next);
		ids = page_ids(key_b, u2, &n, &next);
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		total += n;
		free(u2);
	}
	ck_assert_uint_eq(total, (size_t)listed + 2);
	free(u);
	r = as(admin, "GET", "/api/v1/agencies/00000000-0000-4000-8000-000000000000/snapshots",
	       NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(sid);
}
END_TEST

/* ---- steps, pipeline validation, dry run ------------------------------------ */

START_TEST(steps_and_pipeline_validation)
{
	struct resp r = as(support, "GET", "/api/v1/steps", NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	struct json *items = json_get(j, "items");
	int saw_c = 0, saw_lua = 0;
	for (size_t i = 0; i < json_len(items); i++) {
		const struct json *s = json_at(items, i);
		ck_assert_ptr_nonnull(json_get_str(s, "version"));
		if (str_eq(json_get_str(s, "name"), "CREATE_USER")) {
			saw_c = str_eq(json_get_str(s, "kind"), "c");
			ck_assert_ptr_nonnull(json_get(s, "config_schema"));
		}
		if (str_eq(json_get_str(s, "name"), "tag_new_client"))
			saw_lua = str_eq(json_get_str(s, "kind"), "lua");
	}
	ck_assert_msg(saw_c && saw_lua, "%s", r.body);
	json_free(j);
	resp_free(&r);

	char *path = xasprintf("/api/v1/agencies/%s", agency_z);
	r = as(aa, "PATCH", path,
	       "{\"settings\":{\"pipeline\":[{\"step\":\"CREATE_LOCATON\"},"
	       "{\"step\":\"CREATE_USER\",\"config\":{\"role\":\"owner\"}}]}}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"settings.pipeline[0].step\"");
	assert_has(r.body, "CREATE_LOCATON");
	assert_has(r.body, "\"field\":\"settings.pipeline[1].config.role\"");
	resp_free(&r);
	r = as(aa, "PATCH", path,
	       "{\"settings\":{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
	       "{\"step\":\"CREATE_USER\",\"config\":{\"role\":\"admin\"}}],\"max_retries\":2}}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	resp_free(&r);
	r = as(aa, "PATCH", path, "{\"settings\":{\"pipeline\":\"all\"}}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "settings.pipeline");
	resp_free(&r);
	free(path);
}
END_TEST

START_TEST(dry_run_against_sim)
{
	long long before = hsim_stat(&sim, "locations_created");
	char *path = xasprintf("/api/v1/agencies/%s/pipeline/dry-run", agency_a);
	struct resp r = as(aa, "POST", path, "{}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	ck_assert_msg(str_eq(json_get_str(j, "status"), "COMPLETED"), "%s", r.body);
	ck_assert_str_eq(json_get_str(j, "pipeline_source"), "default");
	struct json *steps = json_get(j, "steps");
	ck_assert_uint_ge(json_len(steps), 4);
	ck_assert_str_eq(json_get_str(json_at(steps, 0), "step"), "VALIDATE_SNAPSHOT");
	for (size_t i = 0; i < json_len(steps); i++)
		ck_assert_str_eq(json_get_str(json_at(steps, i), "status"), "COMPLETED");
	const char *loc = json_get_str(json_get(j, "outputs"), "location_id");
	ck_assert_msg(loc && *loc, "no location_id: %s", r.body);
	assert_has(json_get_str(json_get(j, "client_data"), "email"), "dry-run-");
	json_free(j);
	resp_free(&r);
	ck_assert_int_eq(hsim_stat(&sim, "locations_created"), before + 1);

	/* a given pipeline and client; a failing step stops the run */
	r = as(admin, "POST", path,
	       "{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"Given\",\"email\":\"given@example.com\"},"
	       "\"pipeline\":[{\"step\":\"NOOP\"},{\"step\":\"SET_CUSTOM_VALUES\"},"
	       "{\"step\":\"NOOP\"}]}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	j = parse(r.body);
	ck_assert_str_eq(json_get_str(j, "pipeline_source"), "request");
	ck_assert_str_eq(json_get_str(json_get(j, "client_data"), "name"), "Given");
	steps = json_get(j, "steps");
	ck_assert_msg(str_eq(json_get_str(j, "status"), "FAILED") && json_len(steps) == 2 &&
			      json_get_str(json_at(steps, 1), "error"),
		      "%s", r.body);
	json_free(j);
	resp_free(&r);
	r = as(admin, "POST", path, "{\"pipeline\":[{\"step\":\"NOPE\"}]}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"pipeline[0].step\"");
	resp_free(&r);

	/* with one of the agency's snapshots: validated, loaded and waited for */
	PGconn *c = tl_connect(dsn);
	char *snap = tl_sqlf(
		c,
		"INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche) "
		"VALUES ('%s', 'snap-dental-001', 'Dental Practice', 'Dental') "
		"ON CONFLICT (agency_id, ghl_snapshot_id) DO UPDATE SET is_active = true "
		"RETURNING id",
		agency_a);
	PQfinish(c);
	char *body = xasprintf(
		"{\"snapshot_id\":\"%s\",\"pipeline\":[{\"step\":"
		"\"VALIDATE_SNAPSHOT\"},{\"step\":\"CREATE_LOCATION\"},"
		"{\"step\":\"WAIT_FOR_SNAPSHOT\",\"config\":{\"poll_interval_ms\":100}}]}",
		snap);
	r = as(admin, "POST", path, body);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	j = parse(r.body);
	ck_assert_msg(str_eq(json_get_str(j, "status"), "COMPLETED") &&
			      str_eq(json_get_str(json_get(j, "outputs"), "ghl_snapshot_id"),
				     "snap-dental-001") &&
			      !json_get(json_get(j, "outputs"), "snapshot_wait_skipped"),
		      "%s", r.body);
	json_free(j);
	resp_free(&r);
	free(body);
	r = as(admin, "POST", path, "{\"snapshot_id\":\"00000000-0000-4000-8000-000000000000\"}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"snapshot_id\"");
	resp_free(&r);
	free(snap);
	r = as(admin, "POST", path,
	       "{\"client_data\":{\"first_name\":\"F\",\"last_name\":\"L\",\"name\":\"X\"}}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"client_data.email\"");
	resp_free(&r);
	free(path);
}
END_TEST

/* A dry run honours `when`: a false one is answered SKIPPED and the run goes
 * on, a true one sees the outputs before it; a bad one is refused by column. */
START_TEST(dry_run_skips_steps_whose_when_is_false)
{
	char *path = xasprintf("/api/v1/agencies/%s/pipeline/dry-run", agency_a);
	struct resp r = as(admin, "POST", path,
			   "{\"client_data\":{\"name\":\"W\",\"email\":\"w@example.com\","
			   "\"country\":\"CA\"},\"pipeline\":[{\"step\":\"NOOP\",\"config\":"
			   "{\"output\":\"a\"}},{\"step\":\"NOOP\",\"config\":{\"output\":\"b\"},"
			   "\"when\":\"client.country == 'US'\"},{\"step\":\"NOOP\",\"config\":"
			   "{\"output\":\"c\"},\"when\":\"outputs.noop == 'a' and "
			   "job.attempt == 1\"}]}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	struct json *steps = json_get(j, "steps");
	ck_assert_msg(str_eq(json_get_str(j, "status"), "COMPLETED") && json_len(steps) == 3, "%s",
		      r.body);
	ck_assert_str_eq(json_get_str(json_at(steps, 0), "status"), "COMPLETED");
	ck_assert_str_eq(json_get_str(json_at(steps, 1), "status"), "SKIPPED");
	ck_assert_str_eq(json_get_str(json_at(steps, 2), "status"), "COMPLETED");
	ck_assert_str_eq(json_get_str(json_get(j, "outputs"), "noop"), "c");
	json_free(j);
	resp_free(&r);
	r = as(admin, "POST", path, "{\"pipeline\":[{\"step\":\"NOOP\",\"when\":\"(true\"}]}");
	assert_error(&r, 422, "validation_failed");
	assert_has(r.body, "\"field\":\"pipeline[0].when\"");
	assert_has(r.body, "expected ')' at column 6");
	resp_free(&r);
	free(path);
}
END_TEST

/* A dry run has no job to park: a TASK step says what a person would be
 * asked, stores no task, and the run goes on as if it were completed. */
START_TEST(dry_run_passes_a_task_without_storing_it)
{
	char *path = xasprintf("/api/v1/agencies/%s/pipeline/dry-run", agency_a);
	struct resp r = as(admin, "POST", path,
			   "{\"client_data\":{\"name\":\"Dry Dental\",\"email\":\"d@example.com\"},"
			   "\"pipeline\":[{\"step\":\"TASK\",\"config\":{\"title\":"
			   "\"Register A2P for {{client.name}}\"}},{\"step\":\"NOOP\"}]}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	struct json *steps = json_get(j, "steps");
	ck_assert_msg(str_eq(json_get_str(j, "status"), "COMPLETED") && json_len(steps) == 2, "%s",
		      r.body);
	ck_assert_str_eq(json_get_str(json_at(steps, 0), "status"), "COMPLETED");
	ck_assert_str_eq(json_get_str(json_at(steps, 1), "status"), "COMPLETED");
	ck_assert_str_eq(json_get_str(json_get(j, "outputs"), "task_id"), "dry-run");
	assert_has(r.body, "a job would wait here until a person completes the task");
	assert_has(r.body, "Register A2P for Dry Dental");
	json_free(j);
	resp_free(&r);
	char *n = q1("SELECT count(*) FROM tasks WHERE title LIKE 'Register A2P for Dry%'");
	ck_assert_str_eq(n, "0");
	free(n);
	free(path);
}
END_TEST

/* API keys are cached per process for API_KEY_CACHE_TTL_MS (5 s): a key
 * revoked by another process (here: SQL) stops working within that time. */
START_TEST(api_key_revocation_elsewhere_within_ttl)
{
	char k[64];
	make_key(agency_b, k, sizeof(k));
	struct resp r = as(k, "GET", "/api/v1/jobs?limit=1", NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	/* the key was cached while that request ran, so by now + TTL at the latest */
	int64_t cached_by = now_monotonic_ms();
	char h[65];
	crypto_sha256_hex(k, strlen(k), h);
	char *sql = xasprintf("UPDATE api_keys SET revoked_at = now() WHERE key_hash = '%s'", h);
	exec_sql(sql);
	free(sql);
	/* the outcome, not the speed: a 200 only for requests sent while the
	 * cached entry may still have been alive, a 401 for every later one */
	long st = 200;
	int64_t sent = 0;
	while (st == 200 && now_monotonic_ms() - cached_by < API_KEY_CACHE_TTL_MS + 30000) {
		sent = now_monotonic_ms();
		r = as(k, "GET", "/api/v1/jobs?limit=1", NULL);
		st = r.status;
		resp_free(&r);
		ck_assert_msg(st != 200 || sent <= cached_by + API_KEY_CACHE_TTL_MS,
			      "a request sent %lld ms after the key was cached still got 200 "
			      "(TTL %d ms)",
			      (long long)(sent - cached_by), API_KEY_CACHE_TTL_MS);
		if (st == 200)
			usleep(100000);
	}
	ck_assert_msg(st == 401, "still %ld %lld ms after the key was cached", st,
		      (long long)(sent - cached_by));
}
END_TEST

/* Runs last: nothing secret reached the agent's log. */
START_TEST(no_secrets_in_log)
{
	char *log = tl_read_file(ag.log);
	const char *secrets[] = {PW_AA, PW_SUPPORT, H_ADMIN_PASSWORD, key_a, key_b, admin,
				 aa,	bb,	    support};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		ck_assert_msg(!strstr(log, secrets[i]), "secret #%zu is in the log", i);
	hassert_no_tokens(&sim, "the agent log", log, 2 * 2);
	free(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api_jobs");
	TCase *tc = tcase_create("jobs");
	tcase_set_timeout(tc, 240);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, access_matrix);
	tcase_add_test(tc, submit_and_idempotency);
	tcase_add_test(tc, body_handling);
	tcase_add_test(tc, batch_json_all_or_nothing);
	tcase_add_test(tc, batch_csv);
	tcase_add_test(tc, jobs_missing_needed_fields_are_refused);
	tcase_add_test(tc, list_pagination_stable_under_inserts);
	tcase_add_test(tc, logs_newest_first);
	tcase_add_test(tc, retry_and_cancel);
	tcase_add_test(tc, snapshot_sync_upsert_and_deactivate);
	tcase_add_test(tc, steps_and_pipeline_validation);
	tcase_add_test(tc, dry_run_against_sim);
	tcase_add_test(tc, api_key_revocation_elsewhere_within_ttl);
	tcase_add_test(tc, dry_run_skips_steps_whose_when_is_false);
	tcase_add_test(tc, dry_run_passes_a_task_without_storing_it);
	tcase_add_test(tc, no_secrets_in_log);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
