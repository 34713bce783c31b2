/* test_query_params.c — one rule for query parameters (issue 18): an empty
 * value is an absent one on every endpoint, and a bad query answers one 400
 * naming every bad parameter; answers carry compact JSON whoever built it
 * (PostgreSQL's json_build_object writes {"id" : …}). */
#include "ghl_harness.h"

static struct hagent ag;
static char *dsn;

#define AGENCY "22222222-3333-4444-8555-666666666666"

/* GET path as the harness ADMIN; the status, and the parsed body in *j. */
static long get(const char *path, struct json **j, char **body)
{
	char *url = hagent_url(&ag, path);
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {authz, NULL};
	char *out = NULL;
	long st = tl_http("GET", url, h, NULL, &out);
	*j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(*j != NULL, "GET %s: not JSON: %s", path, out);
	if (body)
		*body = out;
	else
		free(out);
	free(authz);
	free(url);
	return st;
}

static size_t items(const char *path)
{
	struct json *j;
	char *body;
	long st = get(path, &j, &body);
	ck_assert_msg(st == 200, "GET %s: %ld %s", path, st, body);
	size_t n = json_len(json_get(j, "items"));
	json_free(j);
	free(body);
	return n;
}

/* A 400 with `code` whose details name exactly `fields` (comma-separated, in order). */
static void bad(const char *path, const char *code, const char *fields)
{
	struct json *j;
	char *body;
	long st = get(path, &j, &body);
	struct json *e = json_get(j, "error");
	struct json *d = json_get(e, "details");
	struct buf names;
	buf_init(&names);
	for (size_t i = 0; i < json_len(d); i++)
		buf_printf(&names, "%s%s", i ? "," : "", json_get_str(json_at(d, i), "field"));
	ck_assert_msg(st == 400 && !strcmp(json_get_str(e, "code"), code) &&
			      !strcmp(buf_cstr(&names), fields),
		      "GET %s: want 400 %s naming %s, got %ld %s", path, code, fields, st, body);
	buf_clear(&names);
	json_free(j);
	free(body);
}

START_TEST(empty_is_absent)
{
	const char *base = "/api/v1/agencies/" AGENCY "/snapshots";
	char path[256];
	size_t all = items(base);
	ck_assert_uint_eq(all, 3);
	const char *empties[] = {
		"niche=", "active=", "q=", "limit=", "cursor=", "niche=&active=&q=&limit=&cursor="};
	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		snprintf(path, sizeof(path), "%s?%s", base, empties[i]);
		ck_assert_msg(items(path) == all, "%s filtered", path);
	}
	snprintf(path, sizeof(path), "%s?niche=dental", base);
	ck_assert_uint_eq(items(path), 2);
	snprintf(path, sizeof(path), "%s?niche=dental&active=false", base);
	ck_assert_uint_eq(items(path), 1);
	ck_assert_uint_eq(items("/api/v1/jobs?status=&agency_id=&created_after=&created_before="),
			  1);
	ck_assert_uint_eq(items("/api/v1/users?role=&q="), items("/api/v1/users"));
	struct json *j;
	ck_assert_int_eq(get("/api/v1/reports/success-rates?group_by=&days=", &j, NULL), 200);
	ck_assert_str_eq(json_get_str(j, "group_by"), "agency");
	json_free(j);
}
END_TEST

START_TEST(every_problem_listed)
{
	bad("/api/v1/jobs?status=DONE&created_after=yesterday&limit=0", "invalid_parameter",
	    "status,created_after,limit");
	bad("/api/v1/jobs?agency_id=x&created_before=now()&cursor=nope", "invalid_parameter",
	    "agency_id,created_before,cursor");
	bad("/api/v1/jobs?cursor=nope", "invalid_cursor", "cursor");
	bad("/api/v1/agencies/" AGENCY "/snapshots?active=maybe&limit=x", "invalid_parameter",
	    "active,limit");
	bad("/api/v1/reports/success-rates?group_by=week&days=0", "invalid_parameter",
	    "group_by,days");
	bad("/api/v1/users?role=ROOT&limit=999", "invalid_parameter", "role,limit");
	/* one problem: the message names it */
	struct json *j;
	char *body;
	get("/api/v1/jobs?status=DONE", &j, &body);
	ck_assert_msg(strstr(body, "query parameter status must be PENDING"), "%s", body);
	json_free(j);
	free(body);
	get("/api/v1/jobs?status=DONE&limit=0", &j, &body);
	ck_assert_msg(strstr(body, "2 query parameters are invalid: status, limit"), "%s", body);
	json_free(j);
	free(body);
}
END_TEST

START_TEST(compact_json_answers)
{
	struct json *j;
	char *body;
	ck_assert_int_eq(get("/api/v1/agencies/" AGENCY, &j, &body), 200);
	ck_assert_msg(strstr(body, "\"id\":\"" AGENCY "\"") && !strstr(body, "\" : "), "%s", body);
	json_free(j);
	free(body);
	ck_assert_int_eq(get("/api/v1/agencies/" AGENCY "/snapshots?limit=2", &j, &body), 200);
	ck_assert_msg(!strstr(body, "\" : ") && !strstr(body, ", \n"), "%s", body);
	json_free(j);
	free(body);
}
END_TEST

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("query");
	PGconn *c = tl_connect(dsn);
	tl_execf(c, "INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,"
		    " oauth_refresh_token_encrypted, token_expires_at) VALUES ('" AGENCY "', 'Q',"
		    " 'co-query', 'x', 'y', now() + interval '1 day')");
	tl_execf(c, "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche, is_active)"
		    " VALUES ('" AGENCY "', 's1', 'Smile', 'Dental', true),"
		    " ('" AGENCY "', 's2', 'Brace', 'dental', false),"
		    " ('" AGENCY "', 's3', 'Gym', 'fitness', true)");
	tl_execf(c, "INSERT INTO provisioning_jobs (agency_id, client_data_json) VALUES"
		    " ('" AGENCY "', '{\"name\":\"A\",\"email\":\"a@x.example\"}')");
	PQfinish(c);
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, NULL, extra);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	tl_drop_db(dsn);
	free(dsn);
}

int main(void)
{
	Suite *s = suite_create("query_params");
	TCase *t = tcase_create("query_params");
	tcase_add_unchecked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, empty_is_absent);
	tcase_add_test(t, every_problem_listed);
	tcase_add_test(t, compact_json_answers);
	suite_add_tcase(s, t);
	return tl_run_suite(s);
}
