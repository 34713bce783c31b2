/* test_job_search.c — search, totals, bulk retry/cancel and batches (issue 14
 * item 5) over real HTTP against a spawned `ghl-agent serve` (roles=api: no
 * scheduler, so jobs keep the state a test gives them) and a real
 * PostgreSQL; the last test starts a worker to settle batches and checks
 * that batch.completed is emitted once per batch. */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "api.h"
#include "ghl_harness.h"

#define JOB_SEARCH_TEST_LONG 201 /* one more than q may hold */

static char *dsn;
static PGconn *db;
static struct hagent ag;
static char *agency_a, *agency_b, *agency_c;
static char *key_a, *bb; /* an API key of A; an AGENCY_ADMIN of B */

/* ---- helpers --------------------------------------------------------------- */

/* method path as token (NULL: the harness ADMIN), with a body of type ct. */
static struct tl_resp call_ct(const char *token, const char *method, const char *path,
			      const char *body, const char *ct)
{
	char *url = hagent_url(&ag, path);
	char *authz = token ? xasprintf("Authorization: Bearer %s", token)
			    : hagent_admin_header(&ag);
	char *cth = xasprintf("Content-Type: %s", ct);
	const char *h[] = {cth, authz, NULL};
	struct tl_resp r;
	tl_request(&r, method, url, h, body, body ? strlen(body) : 0);
	free(cth);
	free(authz);
	free(url);
	return r;
}

static struct tl_resp call(const char *token, const char *method, const char *path,
			   const char *body)
{
	return call_ct(token, method, path, body, "application/json");
}

static struct json *parse(const struct tl_resp *r, long want)
{
	ck_assert_msg(r->status == want, "status %ld != %ld: %.600s", r->status, want, r->body);
	struct json *j = json_parse(r->body, strlen(r->body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j, "not JSON: %.300s", r->body);
	return j;
}

/* GET path as ADMIN: the page. */
static struct json *get_json(const char *token, const char *path)
{
	struct tl_resp r = call(token, "GET", path, NULL);
	struct json *j = parse(&r, 200);
	tl_resp_free(&r);
	return j;
}

/* The ids of a page's items, comma separated, in order. */
static char *item_ids(const struct json *page)
{
	struct buf b;
	buf_init(&b);
	const struct json *items = json_get(page, "items");
	for (size_t i = 0; i < json_len(items); i++)
		buf_printf(&b, "%s%s", i ? "," : "", json_get_str(json_at(items, i), "id"));
	return buf_take(&b);
}

/* GET /jobs?q=<q> (URL-encoded) as ADMIN: the ids found, comma separated. */
static char *search(const char *q, long long *total, int *exact)
{
	char *enc = curl_easy_escape(NULL, q, 0);
	char *path = xasprintf("/api/v1/jobs?limit=50&include_total=true&q=%s", enc);
	struct json *page = get_json(NULL, path);
	char *ids = item_ids(page);
	const struct json *t = json_get(page, "total");
	ck_assert_msg(t && t->type == JSON_NUMBER, "no total for q=%s", q);
	if (total)
		*total = t->u.num.i;
	if (exact)
		*exact = json_get_bool(page, "total_exact") == 1;
	json_free(page);
	free(path);
	curl_free(enc);
	return ids;
}

static char *job(const char *agency, const char *client, const char *status, const char *extra)
{
	return tl_sqlf(db,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
		       " location_id) VALUES ('%s', '%s', '%s', %s) RETURNING id",
		       agency, client, status, extra ? extra : "NULL");
}

static char *agency(const char *name)
{
	return tl_sqlf(db,
		       "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		       " oauth_refresh_token_encrypted, token_expires_at)"
		       " VALUES ('%s', 'co-search-%s', 'x', 'y', now() + interval '1 day')"
		       " RETURNING id",
		       name, name);
}

/* ---- fixture ---------------------------------------------------------------- */

static char *admin_post(const char *path, const char *body, const char *want)
{
	struct tl_resp r = call(NULL, "POST", path, body);
	struct json *j = parse(&r, 201);
	char *v = xstrdup(json_get_str(j, want));
	json_free(j);
	tl_resp_free(&r);
	return v;
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("job_search");
	db = tl_connect(dsn);
	agency_a = agency("Acme");
	agency_b = agency("Beta");
	agency_c = agency("Crowd");
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, NULL, extra);
	hagent_admin_token(&ag);
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency_a);
	key_a = admin_post(path, "{\"name\":\"search\"}", "key");
	free(path);
	char *body = xasprintf("{\"email\":\"bb@example.com\",\"password\":\"search test pw 1\","
			       "\"role\":\"AGENCY_ADMIN\",\"agency_ids\":[\"%s\"]}",
			       agency_b);
	free(admin_post("/api/v1/users", body, "id"));
	free(body);
	struct tl_resp r = call_ct(
		NULL, "POST", "/api/v1/auth/login",
		"{\"email\":\"bb@example.com\",\"password\":\"search test pw 1\"}",
		"application/json");
	struct json *j = parse(&r, 200);
	bb = xstrdup(json_get_str(j, "token"));
	json_free(j);
	tl_resp_free(&r);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	char *v[] = {agency_a, agency_b, agency_c, key_a, bb};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
	curl_global_cleanup();
}

/* ---- search ----------------------------------------------------------------- */

START_TEST(search_by_each_key)
{
	char *acme = job(agency_a,
			 "{\"name\":\"Acme Dental\",\"email\":\"hi@acme-dental.example\"}",
			 "PENDING", NULL);
	char *bright = job(agency_b,
			   "{\"name\":\"Bright Smiles\",\"email\":\"owner@bright.example\","
			   "\"first_name\":\"Zora\",\"last_name\":\"Quillfeather\"}",
			   "COMPLETED", "'LocXYZ12345678901234'");
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status)"
		 " SELECT '%s', jsonb_build_object('name', 'Filler ' || i, 'email',"
		 " 'f' || i || '@filler.example'), 'PENDING' FROM generate_series(1, 120) i",
		 agency_a);
	long long total;
	int exact;
	char *ids;
	/* name, any case, a part of it */
	ids = search("ACME den", &total, &exact);
	ck_assert_str_eq(ids, acme);
	ck_assert_int_eq(total, 1);
	ck_assert(exact);
	free(ids);
	/* email, first name, last name */
	const char *bright_keys[] = {"bright.example", "zora", "quillFEATHER"};
	for (size_t i = 0; i < 3; i++) {
		ids = search(bright_keys[i], &total, NULL);
		ck_assert_msg(!strcmp(ids, bright), "q=%s found %s", bright_keys[i], ids);
		free(ids);
	}
	/* job id and location id, exactly (a part of either finds nothing) */
	ids = search(acme, NULL, NULL);
	ck_assert_str_eq(ids, acme);
	free(ids);
	ids = search("LocXYZ12345678901234", NULL, NULL);
	ck_assert_str_eq(ids, bright);
	free(ids);
	ids = search("LocXYZ1234", &total, NULL);
	ck_assert_str_eq(ids, "");
	ck_assert_int_eq(total, 0);
	free(ids);
	/* LIKE's wildcards are literal */
	ids = search("%", &total, NULL);
	ck_assert_str_eq(ids, "");
	free(ids);
	ids = search("f_@filler", &total, NULL);
	ck_assert_str_eq(ids, "");
	free(ids);
	/* the total counts every match, not the page; it survives a later page */
	struct json *page = get_json(NULL,
				     "/api/v1/jobs?q=filler.example&limit=7&include_total=true");
	ck_assert_int_eq(json_len(json_get(page, "items")), 7);
	ck_assert_int_eq(json_get(page, "total")->u.num.i, 120);
	char *cur = xstrdup(json_get_str(page, "next_cursor"));
	json_free(page);
	char *path = xasprintf("/api/v1/jobs?q=filler.example&limit=200&include_total=1&cursor=%s",
			       cur);
	page = get_json(NULL, path);
	ck_assert_int_eq(json_len(json_get(page, "items")), 113);
	ck_assert_int_eq(json_get(page, "total")->u.num.i, 120);
	json_free(page);
	free(path);
	free(cur);
	/* in scope only: A's key does not find B's job */
	page = get_json(key_a, "/api/v1/jobs?q=bright.example&include_total=true");
	ck_assert_int_eq(json_len(json_get(page, "items")), 0);
	ck_assert_int_eq(json_get(page, "total")->u.num.i, 0);
	json_free(page);
	/* too long: 400 naming q */
	char *longq = xmalloc(JOB_SEARCH_TEST_LONG + 1);
	memset(longq, 'x', JOB_SEARCH_TEST_LONG);
	longq[JOB_SEARCH_TEST_LONG] = 0;
	path = xasprintf("/api/v1/jobs?q=%s", longq);
	struct tl_resp r = call(NULL, "GET", path, NULL);
	ck_assert_msg(r.status == 400 && strstr(r.body, "\"q\""), "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	free(path);
	free(longq);
	free(acme);
	free(bright);
}
END_TEST

START_TEST(total_is_capped_and_flagged)
{
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status)"
		 " SELECT '%s', jsonb_build_object('name', 'Crowd ' || i, 'email',"
		 " 'c' || i || '@crowd.example'), 'COMPLETED' FROM generate_series(1, 10003) i",
		 agency_c);
	char *path = xasprintf("/api/v1/jobs?agency_id=%s&limit=3&include_total=true", agency_c);
	struct json *page = get_json(NULL, path);
	ck_assert_int_eq(json_get(page, "total")->u.num.i, 10000);
	ck_assert(json_get_bool(page, "total_exact") == 0);
	json_free(page);
	free(path);
	path = xasprintf("/api/v1/jobs?agency_id=%s&q=crowd%%20999&include_total=true", agency_c);
	page = get_json(NULL, path); /* Crowd 999, Crowd 9990…9999 */
	ck_assert_int_eq(json_get(page, "total")->u.num.i, 11);
	ck_assert(json_get_bool(page, "total_exact") == 1);
	json_free(page);
	free(path);
	/* the total only when asked for: an integrator paging through pays for none */
	path = xasprintf("/api/v1/jobs?agency_id=%s&limit=3", agency_c);
	page = get_json(NULL, path);
	ck_assert_int_eq(json_len(json_get(page, "items")), 3);
	ck_assert_ptr_null(json_get(page, "total"));
	ck_assert_ptr_null(json_get(page, "total_exact"));
	json_free(page);
	free(path);
	path = xasprintf("/api/v1/jobs?agency_id=%s&include_total=yes", agency_c);
	struct tl_resp r = call(NULL, "GET", path, NULL);
	ck_assert_msg(r.status == 400 && strstr(r.body, "\"include_total\"") &&
			      strstr(r.body, "true or false"),
		      "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	free(path);
}
END_TEST

/* ---- bulk ------------------------------------------------------------------- */

static struct json *bulk(const char *token, const char *agency, const char *body, long want)
{
	char *path = xasprintf("/api/v1/agencies/%s/jobs/bulk", agency);
	struct tl_resp r = call(token, "POST", path, body);
	free(path);
	struct json *j = parse(&r, want);
	tl_resp_free(&r);
	return j;
}

/* "outcome/status" of result i. */
static void assert_result(const struct json *res, size_t i, const char *id, const char *outcome,
			  const char *status)
{
	const struct json *it = json_at(json_get(res, "results"), i);
	ck_assert_msg(it, "no result %zu", i);
	ck_assert_str_eq(json_get_str(it, "job_id"), id);
	ck_assert_msg(str_eq(json_get_str(it, "outcome"), outcome), "result %zu: %s, want %s", i,
		      json_get_str(it, "outcome"), outcome);
	ck_assert_msg(str_eq(json_get_str(it, "status"), status), "result %zu: status %s, want %s",
		      i, json_get_str(it, "status"), status ? status : "null");
}

static char *status_of(const char *id)
{
	return tl_sqlf(db, "SELECT status FROM provisioning_jobs WHERE id = '%s'", id);
}

START_TEST(bulk_retry_and_cancel)
{
	const char *c = "{\"name\":\"Bulk\",\"email\":\"bulk@example.com\"}";
	char *f1 = job(agency_a, c, "FAILED", NULL), *f2 = job(agency_a, c, "FAILED", NULL);
	char *p1 = job(agency_a, c, "PENDING", NULL), *done = job(agency_a, c, "COMPLETED", NULL);
	char *fb = job(agency_b, c, "FAILED", NULL);
	const char *nobody = "00000000-0000-4000-8000-000000000000";
	char *body = xasprintf("{\"action\":\"retry\",\"job_ids\":[\"%s\",\"%s\",\"%s\",\"%s\","
			       "\"%s\",\"%s\"]}",
			       f1, p1, fb, f2, f1, nobody);
	struct json *res = bulk(key_a, agency_a, body, 200);
	free(body);
	ck_assert_int_eq(json_len(json_get(res, "results")), 5); /* f1 once */
	assert_result(res, 0, f1, "retried", "PENDING");
	assert_result(res, 1, p1, "invalid_state", "PENDING");
	assert_result(res, 2, fb, "not_found", NULL); /* B's job, through A */
	assert_result(res, 3, f2, "retried", "PENDING");
	assert_result(res, 4, nobody, "not_found", NULL);
	ck_assert_int_eq(json_get(res, "succeeded")->u.num.i, 2);
	ck_assert_int_eq(json_get(res, "failed")->u.num.i, 3);
	json_free(res);
	char *st = status_of(f1);
	ck_assert_str_eq(st, "PENDING");
	free(st);
	st = status_of(fb);
	ck_assert_str_eq(st, "FAILED");
	free(st);

	body = xasprintf("{\"action\":\"cancel\",\"job_ids\":[\"%s\",\"%s\"]}", p1, done);
	res = bulk(NULL, agency_a, body, 200);
	free(body);
	assert_result(res, 0, p1, "cancelled", "CANCELLED");
	assert_result(res, 1, done, "invalid_state", "COMPLETED");
	json_free(res);
	st = status_of(p1);
	ck_assert_str_eq(st, "CANCELLED");
	free(st);

	/* by filter: the agency's FAILED jobs matching q, and nothing else */
	const char *r = "{\"name\":\"Retry Me\",\"email\":\"retryme@example.com\"}";
	char *m1 = job(agency_a, r, "FAILED", NULL), *m2 = job(agency_a, r, "FAILED", NULL);
	char *m3 = job(agency_a, r, "COMPLETED", NULL), *mb = job(agency_b, r, "FAILED", NULL);
	res = bulk(NULL, agency_a, "{\"action\":\"retry\",\"filter\":{\"q\":\"retryme@\"}}", 200);
	ck_assert_int_eq(json_get(res, "succeeded")->u.num.i, 2);
	ck_assert_int_eq(json_len(json_get(res, "results")), 2);
	ck_assert(json_get_bool(res, "more") == 0);
	json_free(res);
	const char *want[][2] = {
		{m1, "PENDING"}, {m2, "PENDING"}, {m3, "COMPLETED"}, {mb, "FAILED"}};
	for (size_t i = 0; i < 4; i++) {
		st = status_of(want[i][0]);
		ck_assert_msg(!strcmp(st, want[i][1]), "job %zu: %s", i, st);
		free(st);
	}

	/* scope: B's admin cannot act on A (404), nor name A's jobs through B */
	body = xasprintf("{\"action\":\"cancel\",\"job_ids\":[\"%s\"]}", m1);
	json_free(bulk(bb, agency_a, body, 404));
	res = bulk(bb, agency_b, body, 200);
	assert_result(res, 0, m1, "not_found", NULL);
	json_free(res);
	free(body);
	/* bad bodies: 422 naming the field */
	struct {
		const char *body, *field;
	} bad[] = {
		{"{\"action\":\"delete\",\"job_ids\":[\"00000000-0000-4000-8000-000000000000\"]}",
		 "action"},
		{"{\"action\":\"retry\"}", "job_ids"},
		{"{\"action\":\"retry\",\"job_ids\":[],\"filter\":{}}", "job_ids"},
		{"{\"action\":\"retry\",\"job_ids\":[\"nope\"]}", "job_ids[0]"},
		{"{\"action\":\"retry\",\"filter\":{\"status\":\"LOST\"}}", "filter.status"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = xasprintf("/api/v1/agencies/%s/jobs/bulk", agency_a);
		struct tl_resp x = call(NULL, "POST", path, bad[i].body);
		char *needle = xasprintf("\"field\":\"%s\"", bad[i].field);
		ck_assert_msg(x.status == 422 && strstr(x.body, needle), "%s: %ld %s", bad[i].body,
			      x.status, x.body);
		free(needle);
		tl_resp_free(&x);
		free(path);
	}
	char *v[] = {f1, f2, p1, done, fb, m1, m2, m3, mb};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
}
END_TEST

/* ---- batches ---------------------------------------------------------------- */

START_TEST(batches_and_progress)
{
	char *path = xasprintf("/api/v1/agencies/%s/jobs/batch?filename=clients.csv", agency_a);
	struct tl_resp r = call_ct(key_a, "POST", path,
				   "name,email,first_name,last_name\nOne,one@batch.example,O,N\n"
				   "Two,two@batch.example,T,W\nThree,three@batch.example,T,H\n",
				   "text/csv");
	free(path);
	struct json *j = parse(&r, 201);
	tl_resp_free(&r);
	char *csv_batch_id = xstrdup(json_get_str(j, "batch_id"));
	ck_assert(api_is_uuid(csv_batch_id));
	json_free(j);
	path = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_a);
	r = call(NULL, "POST", path,
		 "[{\"client_data\":{\"name\":\"Four\",\"email\":\"4@b.example\","
		 "\"first_name\":\"F\",\"last_name\":\"R\"}}]");
	free(path);
	j = parse(&r, 201);
	tl_resp_free(&r);
	char *json_batch_id = xstrdup(json_get_str(j, "batch_id"));
	json_free(j);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM provisioning_jobs WHERE batch_id = '%s'",
				   csv_batch_id),
			 3);

	/* the jobs list filters by batch and shows it on each job */
	path = xasprintf("/api/v1/jobs?batch_id=%s&include_total=true", csv_batch_id);
	struct json *page = get_json(key_a, path);
	free(path);
	ck_assert_int_eq(json_len(json_get(page, "items")), 3);
	ck_assert_int_eq(json_get(page, "total")->u.num.i, 3);
	ck_assert_str_eq(json_get_str(json_at(json_get(page, "items"), 0), "batch_id"),
			 csv_batch_id);
	json_free(page);

	/* one finished: progress per state */
	tl_execf(db,
		 "UPDATE provisioning_jobs SET status = 'COMPLETED' WHERE id = (SELECT id FROM"
		 " provisioning_jobs WHERE batch_id = '%s' ORDER BY created_at LIMIT 1)",
		 csv_batch_id);
	path = xasprintf("/api/v1/agencies/%s/batches/%s", agency_a, csv_batch_id);
	j = get_json(key_a, path);
	ck_assert_str_eq(json_get_str(j, "source"), "csv");
	ck_assert_str_eq(json_get_str(j, "filename"), "clients.csv");
	ck_assert_int_eq(json_get(j, "total")->u.num.i, 3);
	ck_assert_int_eq(json_get(j, "finished")->u.num.i, 1);
	const struct json *pr = json_get(j, "progress");
	ck_assert_int_eq(json_get(pr, "PENDING")->u.num.i, 2);
	ck_assert_int_eq(json_get(pr, "COMPLETED")->u.num.i, 1);
	ck_assert_int_eq(json_get(pr, "FAILED")->u.num.i, 0);
	ck_assert(json_get(j, "api_key_id")->type == JSON_STRING);
	ck_assert(json_get(j, "completed_at")->type == JSON_NULL);
	json_free(j);
	/* another agency's admin: 404, like a batch that does not exist */
	r = call(bb, "GET", path, NULL);
	ck_assert_int_eq(r.status, 404);
	tl_resp_free(&r);
	free(path);
	path = xasprintf("/api/v1/agencies/%s/batches/00000000-0000-4000-8000-000000000000",
			 agency_a);
	r = call(NULL, "GET", path, NULL);
	ck_assert_int_eq(r.status, 404);
	tl_resp_free(&r);
	free(path);

	/* the list, newest first, as the ADMIN (created_by is the user) */
	path = xasprintf("/api/v1/agencies/%s/batches?limit=1", agency_a);
	page = get_json(NULL, path);
	free(path);
	ck_assert_int_eq(json_len(json_get(page, "items")), 1);
	const struct json *first = json_at(json_get(page, "items"), 0);
	ck_assert_str_eq(json_get_str(first, "id"), json_batch_id);
	ck_assert_str_eq(json_get_str(first, "source"), "json");
	ck_assert(json_get(first, "created_by")->type == JSON_STRING);
	ck_assert(json_get_str(page, "next_cursor") != NULL);
	json_free(page);
	free(csv_batch_id);
	free(json_batch_id);
}
END_TEST

/* A worker settles finished batches: completed_at set and batch.completed
 * emitted once each; a batch with a job still to run stays open. */
START_TEST(batch_completed_fires_once)
{
	/* the two uploads of batches_and_progress */
	char *csv_batch_id = tl_sqlf(db, "SELECT id FROM job_batches WHERE source = 'csv'");
	char *json_batch_id = tl_sqlf(db, "SELECT id FROM job_batches WHERE source = 'json'");
	tl_execf(db,
		 "INSERT INTO event_subscriptions (agency_id, url, event_types, secret_enc)"
		 " VALUES ('%s', 'https://example.invalid/hook', '{batch.completed}', 'x')",
		 agency_a);
	/* nothing for the worker to run; the open batch's job waits a day */
	tl_execf(db, "UPDATE provisioning_jobs SET status = 'CANCELLED'"
		     " WHERE status IN ('PENDING', 'IN_PROGRESS', 'RETRYING')");
	char *open = tl_sqlf(db,
			     "INSERT INTO job_batches (agency_id, source, total) VALUES ('%s',"
			     " 'json', 2) RETURNING id",
			     agency_a);
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, run_at,"
		 " batch_id) VALUES ('%s', '{\"name\":\"W\",\"email\":\"w@x.example\"}',"
		 " 'RETRYING', now() + interval '1 day', '%s'), ('%s', '{\"name\":\"V\","
		 "\"email\":\"v@x.example\"}', 'COMPLETED', now(), '%s')",
		 agency_a, open, agency_a, open);
	struct hagent worker;
	const char *extra[] = {"GHL_AGENT_ROLES=worker", "GHL_AGENT_EVENTS_POLL_INTERVAL=100ms",
			       "GHL_AGENT_GHL_API_BASE=http://127.0.0.1:9", NULL};
	hagent_start(&worker, dsn, NULL, extra);
	long long n = 0;
	for (int i = 0; i < 200 && n < 2; i++) {
		n = tl_sqlf_n(db,
			      "SELECT count(*) FROM job_batches WHERE id IN ('%s', '%s')"
			      " AND completed_at IS NOT NULL",
			      csv_batch_id, json_batch_id);
		if (n < 2)
			usleep(50 * 1000);
	}
	ck_assert_msg(n == 2, "the finished batches were not settled");
	/* a few more sweeps: still one event per batch, and none for the open one */
	usleep(600 * 1000);
	hagent_stop(&worker);
	unlink(worker.log);
	const char *ids[] = {csv_batch_id, json_batch_id};
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(
			tl_sqlf_n(db,
				  "SELECT count(*) FROM event_deliveries WHERE event_type ="
				  " 'batch.completed' AND payload::jsonb #>> '{data,batch,id}'"
				  " = '%s'",
				  ids[i]),
			1);
	char *p = tl_sqlf(db,
			  "SELECT payload::jsonb #>> '{data,batch,progress,CANCELLED}' FROM"
			  " event_deliveries WHERE payload::jsonb #>> '{data,batch,id}' = '%s'",
			  csv_batch_id);
	ck_assert_str_eq(p, "2"); /* one COMPLETED above, two cancelled here */
	free(p);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM job_batches WHERE id = '%s' AND"
				   " completed_at IS NULL",
				   open),
			 1);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM event_deliveries WHERE"
				   " payload::jsonb #>> '{data,batch,id}' = '%s'",
				   open),
			 0);
	free(open);
	free(csv_batch_id);
	free(json_batch_id);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("job_search");
	TCase *tc = tcase_create("job_search");
	tcase_set_timeout(tc, 240);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, search_by_each_key);
	tcase_add_test(tc, total_is_capped_and_flagged);
	tcase_add_test(tc, bulk_retry_and_cancel);
	tcase_add_test(tc, batches_and_progress);
	tcase_add_test(tc, batch_completed_fires_once);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
