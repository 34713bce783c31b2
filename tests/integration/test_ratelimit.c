/* test_ratelimit.c — fair use per API key and per user (core/api/api_ratelimit.c)
 * over real HTTP against a spawned `ghl-agent serve` (roles=api) and a real
 * PostgreSQL, with buckets small and slow enough (a refill of 1 a minute) that
 * nothing refills while the test runs: the RateLimit-* headers count down,
 * an empty bucket answers 429 with Retry-After and the error body, batches
 * take one token per row (JSON and CSV), a full bucket admits one batch larger
 * than itself, and one key emptying its bucket leaves other keys and users
 * alone. */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <strings.h>

#include "ghl_harness.h"

static char *dsn;
static struct hagent ag;
static char agency_a[40], agency_b[40];

/* with the fields the default pipeline needs (CREATE_USER: first_name, last_name) */
static const char client[] = "{\"client_data\":{\"name\":\"Ada\",\"email\":\"ada@example.com\","
			     "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}}";

static struct tl_resp call(const char *token, const char *method, const char *path,
			   const char *ctype, const char *body)
{
	char *url = hagent_url(&ag, path);
	char *authz = xasprintf("Authorization: Bearer %s", token);
	char *ct = xasprintf("Content-Type: %s", ctype ? ctype : "application/json");
	const char *h[] = {authz, ct, NULL};
	struct tl_resp r;
	tl_request(&r, method, url, h, body, body ? strlen(body) : 0);
	free(ct);
	free(authz);
	free(url);
	return r;
}

/* The value of header name in r (malloc'd), or NULL. */
static char *header(const struct tl_resp *r, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = r->headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1 + strspn(p + n + 1, " ");
			return xstrndup(v, strcspn(v, "\r\n"));
		}
	}
	return NULL;
}

static void assert_header(const struct tl_resp *r, const char *name, const char *want)
{
	char *v = header(r, name);
	ck_assert_msg(v && !strcmp(v, want), "%s: want %s, got %s (status %ld, %s)", name, want,
		      v ? v : "(none)", r->status, r->body);
	free(v);
}

static long long header_ll(const struct tl_resp *r, const char *name)
{
	char *v = header(r, name);
	ck_assert_msg(v, "no %s in %s", name, r->headers);
	long long n = atoll(v);
	free(v);
	return n;
}

/* 429 rate_limited with Retry-After in [lo, hi] seconds and the tokens left. */
static void assert_limited(const struct tl_resp *r, long long lo, long long hi, const char *left)
{
	ck_assert_msg(r->status == 429, "want 429, got %ld: %s", r->status, r->body);
	ck_assert_msg(strstr(r->body, "\"code\":\"rate_limited\""), "%s", r->body);
	long long after = header_ll(r, "Retry-After");
	ck_assert_msg(after >= lo && after <= hi, "Retry-After %lld not in [%lld, %lld]", after, lo,
		      hi);
	assert_header(r, "RateLimit-Remaining", left);
}

static char *q1(const char *sql)
{
	PGconn *c = tl_connect(dsn);
	char *v = tl_sql_value(c, sql);
	PQfinish(c);
	return v;
}

static long long count_jobs(const char *agency)
{
	PGconn *c = tl_connect(dsn);
	long long n = tl_sqlf_n(c, "SELECT count(*) FROM provisioning_jobs WHERE agency_id = '%s'",
				agency);
	PQfinish(c);
	return n;
}

static void add_agency(const char *name, char *id_out)
{
	char *sql = xasprintf("INSERT INTO agencies (name, ghl_agency_id, "
			      "oauth_access_token_encrypted, oauth_refresh_token_encrypted, "
			      "token_expires_at) VALUES ('%s', 'co-%s', 'x', 'y', "
			      "now() + interval '1 day') RETURNING id",
			      name, name);
	char *id = q1(sql);
	snprintf(id_out, 40, "%s", id);
	free(id);
	free(sql);
}

/* A new API key of agency (the admin's POST is not a read). */
static char *make_key(const char *agency)
{
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	struct tl_resp r = call(hagent_admin_token(&ag), "POST", path, NULL, "{\"name\":\"rl\"}");
	ck_assert_msg(r.status == 201, "create key: %ld %s", r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j && json_get_str(j, "key"), "%s", r.body);
	char *key = xstrdup(json_get_str(j, "key"));
	json_free(j);
	tl_resp_free(&r);
	free(path);
	return key;
}

/* A JSON batch of n rows. */
static char *batch_of(int n)
{
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '[');
	for (int i = 0; i < n; i++)
		buf_printf(&b,
			   "%s{\"client_data\":{\"name\":\"Row %d\",\"email\":\"r%d@example.com\","
			   "\"first_name\":\"R\",\"last_name\":\"Ow\"}}",
			   i ? "," : "", i, i);
	buf_putc(&b, ']');
	return buf_take(&b);
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("ratelimit");
	const char *extra[] = {"GHL_AGENT_ROLES=api",
			       "GHL_AGENT_RATE_LIMIT_READS_PER_MINUTE=1",
			       "GHL_AGENT_RATE_LIMIT_READS_BURST=3",
			       "GHL_AGENT_RATE_LIMIT_SUBMISSIONS_PER_MINUTE=1",
			       "GHL_AGENT_RATE_LIMIT_SUBMISSIONS_BURST=5",
			       NULL};
	hagent_start(&ag, dsn, NULL, extra);
	add_agency("rl-a", agency_a);
	add_agency("rl-b", agency_b);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	tl_drop_db(dsn);
	free(dsn);
	curl_global_cleanup();
}

START_TEST(reads_per_key_and_per_user)
{
	char *key_a = make_key(agency_a), *key_b = make_key(agency_b);
	const char *left[] = {"2", "1", "0"};
	for (int i = 0; i < 3; i++) {
		struct tl_resp r = call(key_a, "GET", "/api/v1/jobs", NULL, NULL);
		ck_assert_msg(r.status == 200, "read %d: %ld %s", i, r.status, r.body);
		assert_header(&r, "RateLimit-Limit", "3");
		assert_header(&r, "RateLimit-Remaining", left[i]);
		/* back to full: (3 - tokens left) a minute each */
		long long reset = header_ll(&r, "RateLimit-Reset");
		ck_assert_msg(reset > 60LL * i && reset <= 60LL * (i + 1), "Reset %lld", reset);
		tl_resp_free(&r);
	}
	/* empty: one token is a minute away */
	struct tl_resp r = call(key_a, "GET", "/api/v1/jobs", NULL, NULL);
	assert_limited(&r, 55, 60, "0");
	assert_header(&r, "RateLimit-Limit", "3");
	tl_resp_free(&r);
	/* another key, and a user, have their own buckets */
	r = call(key_b, "GET", "/api/v1/jobs", NULL, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Remaining", "2");
	tl_resp_free(&r);
	r = call(hagent_admin_token(&ag), "GET", "/api/v1/jobs", NULL, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Remaining", "2");
	tl_resp_free(&r);
	/* unauthenticated and public routes are not metered */
	r = call("not-a-token", "GET", "/api/v1/jobs", NULL, NULL);
	ck_assert_int_eq(r.status, 401);
	char *v = header(&r, "RateLimit-Limit");
	ck_assert_msg(!v, "RateLimit-Limit on a 401: %s", v);
	tl_resp_free(&r);
	/* submissions are a bucket of their own */
	char *path = xasprintf("/api/v1/agencies/%s/jobs", agency_a);
	r = call(key_a, "POST", path, NULL, client);
	ck_assert_msg(r.status == 201 || r.status == 202, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Limit", "5");
	assert_header(&r, "RateLimit-Remaining", "4");
	tl_resp_free(&r);
	free(path);
	free(key_a);
	free(key_b);
}
END_TEST

START_TEST(submissions_count_rows)
{
	char *key_a = make_key(agency_a), *key_b = make_key(agency_b);
	char *one = xasprintf("/api/v1/agencies/%s/jobs", agency_a);
	char *batch_a = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_a);
	char *batch_b = xasprintf("/api/v1/agencies/%s/jobs/batch", agency_b);
	long long before = count_jobs(agency_a);

	/* 3 rows take 3 of 5 */
	char *three = batch_of(3);
	struct tl_resp r = call(key_a, "POST", batch_a, NULL, three);
	ck_assert_msg(r.status / 100 == 2, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Remaining", "2");
	tl_resp_free(&r);
	/* a single job takes 1 */
	r = call(key_a, "POST", one, NULL, client);
	ck_assert_msg(r.status / 100 == 2, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Remaining", "1");
	tl_resp_free(&r);
	/* 2 rows do not fit in 1: refused whole, a token a minute away */
	char *two = batch_of(2);
	r = call(key_a, "POST", batch_a, NULL, two);
	assert_limited(&r, 55, 60, "1");
	tl_resp_free(&r);
	/* CSV rows count the same */
	const char *csv =
		"name,email,first_name,last_name\nAda,ada@example.com,Ada,L\nBob,bob@example.com,Bob,B\n";
	r = call(key_a, "POST", batch_a, "text/csv", csv);
	assert_limited(&r, 55, 60, "1");
	tl_resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_a), before + 4);
	/* the last token still buys one job */
	r = call(key_a, "POST", one, NULL, client);
	ck_assert_msg(r.status / 100 == 2, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Remaining", "0");
	tl_resp_free(&r);
	r = call(key_a, "POST", one, NULL, client);
	assert_limited(&r, 55, 60, "0");
	tl_resp_free(&r);

	/* key B is untouched by A's empty bucket; a full bucket admits a batch
	 * larger than itself (6 rows > 5), which then costs 2 minutes of waiting */
	char *six = batch_of(6);
	r = call(key_b, "POST", batch_b, NULL, six);
	ck_assert_msg(r.status / 100 == 2, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Limit", "5");
	assert_header(&r, "RateLimit-Remaining", "0");
	tl_resp_free(&r);
	ck_assert_int_eq(count_jobs(agency_b), 6);
	r = call(key_b, "POST", batch_b, "text/csv",
		 "name,email,first_name,last_name\nAda,ada@example.com,Ada,L\n");
	assert_limited(&r, 115, 120, "0");
	tl_resp_free(&r);
	/* reads are a bucket of their own */
	r = call(key_b, "GET", "/api/v1/jobs", NULL, NULL);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	assert_header(&r, "RateLimit-Limit", "3");
	tl_resp_free(&r);

	free(six);
	free(two);
	free(three);
	free(one);
	free(batch_a);
	free(batch_b);
	free(key_a);
	free(key_b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("http");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, reads_per_key_and_per_user);
	tcase_add_test(tc, submissions_count_rows);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
