/* test_api_http.c — the REST API over real HTTP against a spawned
 * `ghl-agent serve` and a real PostgreSQL: login, logout, sessions, CSRF,
 * throttling, the access matrix, input handling, filters, pagination,
 * `user add`, and no secret in the logs. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "json.h"
#include "scope.h"
#include "testlib.h"
#include "util.h"

#define PW_ADMIN "admin password 12345"
#define PW_AA "agency admin password"
#define PW_SUPPORT "support password 123"

struct agent {
	pid_t pid;
	char log[64];
	char base[64];
};

/* Suite-wide state, made once in the parent (unchecked fixture). */
static char *dsn;
static struct agent ag;
static char agency_a[40], agency_b[40], agency_z[40], victim[40];
static char key_a[64], key_b[64], key_z[64], spare_key_id[40];
static const char *expired_token = "expired-session-token-for-tests-000000000000";

/* ---- HTTP with headers ------------------------------------------------- */

#define resp tl_resp

/* hdrs: NULL-terminated "Name: value" list; body may be NULL. */
static struct resp req(const char *method, const char *path, const char *const *hdrs,
		       const char *body)
{
	struct resp r;
	char *url = xasprintf("%s%s", ag.base, path);
	tl_request(&r, method, url, hdrs, body, body ? strlen(body) : 0);
	free(url);
	return r;
}

static void resp_free(struct resp *r)
{
	tl_resp_free(r);
}

/* A request as `token` (a session token or API key; NULL = none). */
static struct resp as(const char *token, const char *method, const char *path, const char *body)
{
	char *authz = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	struct resp r = req(method, path, h, body);
	free(authz);
	return r;
}

static struct json *parse(const char *body)
{
	struct err e;
	struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(j, "not JSON (%s): %s", e.msg, body);
	return j;
}

static void assert_error(const struct resp *r, long status, const char *code)
{
	ck_assert_msg(r->status == status, "status %ld != %ld: %s", r->status, status, r->body);
	struct json *j = parse(r->body);
	struct json *e = json_get(j, "error");
	ck_assert_msg(e && str_eq(json_get_str(e, "code"), code), "code != %s: %s", code, r->body);
	ck_assert_msg(json_get_str(e, "message"), "no message: %s", r->body);
	json_free(j);
}

/* Log in; returns the token (malloc'd). */
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

/* ---- agent and fixture ------------------------------------------------- */

static void run_ok(char *const argv[])
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[] = {env_dsn, NULL};
	char *out = NULL;
	int rc = tl_run(argv, env, &out);
	ck_assert_msg(rc == 0, "%s %s: exit %d: %s", argv[0], argv[1], rc, out);
	free(out);
	free(env_dsn);
}

/* Run `ghl-agent user add ARGS` with stdin_text; returns the exit code, *out. */
static int user_add(const char *args, const char *stdin_text, char **out)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[] = {env_dsn, NULL};
	char *in = tl_write_temp("ghl-api-stdin", stdin_text);
	char *line = xasprintf("exec \"$0\" user add %s < '%s'", args, in);
	char *sh[] = {(char *)"/bin/sh", (char *)"-c", line, (char *)tl_env("GHL_AGENT_BIN"), NULL};
	int rc = tl_run(sh, env, out);
	unlink(in);
	free(in);
	free(line);
	free(env_dsn);
	return rc;
}

static void agent_start(struct agent *a, const char *account_limit, const char *address_limit)
{
	memset(a, 0, sizeof(*a));
	int port = tl_free_port();
	snprintf(a->log, sizeof(a->log), "/tmp/ghl-api-log-XXXXXX");
	close(mkstemp(a->log));
	snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", port);
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env_listen = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", port);
	char *env_acc = xasprintf("GHL_AGENT_LOGIN_MAX_FAILURES_ACCOUNT=%s", account_limit);
	char *env_addr = xasprintf("GHL_AGENT_LOGIN_MAX_FAILURES_ADDRESS=%s", address_limit);
	char *env[] = {
		env_dsn,
		env_listen,
		env_acc,
		env_addr,
		(char *)"GHL_AGENT_TOKEN_KEYS=7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		(char *)"GHL_AGENT_LOG_LEVEL=debug",
		(char *)"GHL_AGENT_SHUTDOWN_TIMEOUT=5s",
		NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	a->pid = tl_spawn(argv, env, a->log);
	free(env_dsn);
	free(env_listen);
	free(env_acc);
	free(env_addr);
	tl_wait_ready(a->base, a->pid, a->log, TL_DAEMON_TIMEOUT_MS);
}

/* Fails the test unless the agent exits with status 0. */
static void agent_stop(struct agent *a)
{
	tl_stop(a->pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-agent serve", a->log);
	unlink(a->log);
}

static void sql_into(PGconn *c, const char *sql, char *out, size_t n)
{
	char *v = tl_sql_value(c, sql);
	snprintf(out, n, "%s", v);
	free(v);
}

static void make_key(const char *admin, const char *agency, char *out, size_t n, char *id_out)
{
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	struct resp r = as(admin, "POST", path, "{\"name\":\"test key\"}");
	ck_assert_msg(r.status == 201, "create key: %ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	snprintf(out, n, "%s", json_get_str(j, "key"));
	if (id_out)
		snprintf(id_out, 40, "%s", json_get_str(j, "id"));
	json_free(j);
	resp_free(&r);
	free(path);
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_db("api_http");
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", NULL};
	run_ok(argv);
	PGconn *c = tl_connect(dsn);
	const char *names[][2] = {{"Acme", "ghl-a"}, {"Beta", "ghl-b"}, {"Zeta", "ghl-z"}};
	char *ids[] = {agency_a, agency_b, agency_z};
	char *q;
	for (int i = 0; i < 3; i++) {
		q = xasprintf(
			"INSERT INTO agencies (name, ghl_agency_id,"
			" oauth_access_token_encrypted, oauth_refresh_token_encrypted,"
			" token_expires_at, created_at) VALUES ('%s', '%s', 'SECRET-ACCESS',"
			" 'SECRET-REFRESH', now(), now() - interval '%d minutes') RETURNING id",
			names[i][0], names[i][1], 3 - i);
		sql_into(c, q, ids[i], 40);
		free(q);
	}

	char *out = NULL;
	ck_assert_msg(user_add("--email Admin@Example.com --role ADMIN --password-stdin",
			       PW_ADMIN "\n", &out) == 0,
		      "%s", out);
	ck_assert_msg(strstr(out, "created user"), "%s", out);
	free(out);
	char *args = xasprintf("--email aa@example.com --role AGENCY_ADMIN --agency %s --agency=%s",
			       agency_a, agency_z);
	ck_assert_msg(user_add(args, PW_AA "\n", &out) == 0, "%s", out);
	free(out);
	free(args);
	args = xasprintf("--email bb@example.com --role AGENCY_ADMIN --agency %s", agency_b);
	ck_assert_msg(user_add(args, PW_AA "\n", &out) == 0, "%s", out);
	free(out);
	free(args);
	ck_assert_msg(
		user_add("--email support@example.com --role SUPPORT", PW_SUPPORT "\n", &out) == 0,
		"%s", out);
	free(out);
	ck_assert_msg(
		user_add("--email victim@example.com --role SUPPORT", PW_SUPPORT "\n", &out) == 0,
		"%s", out);
	free(out);
	ck_assert_msg(user_add("--email throttled@example.com --role SUPPORT", PW_SUPPORT "\n",
			       &out) == 0,
		      "%s", out);
	free(out);
	sql_into(c, "SELECT id FROM users WHERE email = 'victim@example.com'", victim,
		 sizeof(victim));
	/* a session that expired a minute ago */
	char h[65];
	crypto_sha256_hex(expired_token, strlen(expired_token), h);
	q = xasprintf("INSERT INTO sessions (token_hash, user_id, csrf_token_hash, expires_at)"
		      " SELECT '%s', id, '%s', now() - interval '1 minute' FROM users"
		      " WHERE email = 'admin@example.com'",
		      h, h);
	PQclear(tl_sql(c, q));
	free(q);
	PQfinish(c);

	agent_start(&ag, "3", "1000");
	char *admin = login("admin@example.com", PW_ADMIN);
	make_key(admin, agency_a, key_a, sizeof(key_a), NULL);
	make_key(admin, agency_b, key_b, sizeof(key_b), NULL);
	make_key(admin, agency_z, key_z, sizeof(key_z), NULL);
	char spare[64];
	make_key(admin, agency_a, spare, sizeof(spare), spare_key_id);
	free(admin);
}

static void teardown(void)
{
	agent_stop(&ag);
	tl_drop_db(dsn);
	free(dsn);
	curl_global_cleanup();
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(login_ok_sets_cookies_and_me_works)
{
	struct resp r = as(NULL, "POST", "/api/v1/auth/login",
			   "{\"email\":\"ADMIN@example.com\",\"password\":\"" PW_ADMIN "\"}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	const char *tok = json_get_str(j, "token");
	ck_assert_msg(tok && strlen(tok) >= 43, "%s", r.body);
	ck_assert_msg(json_get_str(j, "csrf_token") && json_get_str(j, "expires_at"), "%s", r.body);
	ck_assert_str_eq(json_get_str(json_get(j, "user"), "role"), "ADMIN");
	ck_assert_msg(strstr(r.headers, "Set-Cookie: ghl_session=") &&
			      strstr(r.headers, "HttpOnly") && strstr(r.headers, "SameSite=Strict"),
		      "%s", r.headers);
	ck_assert_msg(strstr(r.headers, "Set-Cookie: ghl_csrf="), "%s", r.headers);
	struct resp me = as(tok, "GET", "/api/v1/me", NULL);
	ck_assert_msg(me.status == 200 && strstr(me.body, "\"email\":\"admin@example.com\"") &&
			      strstr(me.body, "\"kind\":\"session\""),
		      "%ld %s", me.status, me.body);
	resp_free(&me);
	me = as(key_a, "GET", "/api/v1/me", NULL);
	ck_assert_msg(me.status == 200 && strstr(me.body, agency_a) &&
			      strstr(me.body, "\"kind\":\"api_key\""),
		      "%ld %s", me.status, me.body);
	resp_free(&me);
	json_free(j);
	resp_free(&r);
}
END_TEST

START_TEST(login_bad)
{
	struct resp r = as(NULL, "POST", "/api/v1/auth/login",
			   "{\"email\":\"support@example.com\",\"password\":\"wrong password!!\"}");
	assert_error(&r, 401, "invalid_credentials");
	resp_free(&r);
	r = as(NULL, "POST", "/api/v1/auth/login",
	       "{\"email\":\"nobody@example.com\",\"password\":\"wrong password!!\"}");
	assert_error(&r, 401, "invalid_credentials");
	resp_free(&r);
	r = as(NULL, "POST", "/api/v1/auth/login", "{\"email\":\"support@example.com\"}");
	assert_error(&r, 422, "validation_failed");
	ck_assert_msg(strstr(r.body, "\"field\":\"password\""), "%s", r.body);
	resp_free(&r);
}
END_TEST

START_TEST(login_throttled_per_account)
{
	const char *bad = "{\"email\":\"throttled@example.com\",\"password\":\"not the password\"}";
	for (int i = 0; i < 3; i++) {
		struct resp r = as(NULL, "POST", "/api/v1/auth/login", bad);
		assert_error(&r, 401, "invalid_credentials");
		resp_free(&r);
	}
	struct resp r = as(NULL, "POST", "/api/v1/auth/login",
			   "{\"email\":\"throttled@example.com\",\"password\":\"" PW_SUPPORT "\"}");
	assert_error(&r, 429, "too_many_attempts");
	const char *ra = strstr(r.headers, "Retry-After: ");
	ck_assert_msg(ra, "no Retry-After: %s", r.headers);
	long secs = strtol(ra + 13, NULL, 10);
	ck_assert_msg(secs > 0 && secs <= 15 * 60, "Retry-After %ld", secs);
	resp_free(&r);
	/* other accounts are not affected */
	free(login("support@example.com", PW_SUPPORT));
}
END_TEST

START_TEST(login_throttled_per_address)
{
	struct agent saved = ag;
	agent_start(&ag, "1000", "3");
	for (int i = 0; i < 3; i++) {
		char *body = xasprintf("{\"email\":\"nobody%d@example.com\",\"password\":\"x\"}",
				       i);
		struct resp r = as(NULL, "POST", "/api/v1/auth/login", body);
		assert_error(&r, 401, "invalid_credentials");
		resp_free(&r);
		free(body);
	}
	struct resp r = as(NULL, "POST", "/api/v1/auth/login",
			   "{\"email\":\"support@example.com\",\"password\":\"" PW_SUPPORT "\"}");
	assert_error(&r, 429, "too_many_attempts");
	ck_assert_msg(strstr(r.headers, "Retry-After: "), "%s", r.headers);
	resp_free(&r);
	agent_stop(&ag);
	ag = saved;
}
END_TEST

START_TEST(logout_revokes_and_expired_session)
{
	char *t = login("support@example.com", PW_SUPPORT);
	struct resp r = as(t, "POST", "/api/v1/auth/logout", NULL);
	ck_assert_msg(r.status == 204, "%ld %s", r.status, r.body);
	ck_assert_msg(strstr(r.headers, "ghl_session=;"), "cookie not cleared: %s", r.headers);
	resp_free(&r);
	r = as(t, "GET", "/api/v1/me", NULL);
	assert_error(&r, 401, "unauthenticated");
	ck_assert_msg(strstr(r.headers, "WWW-Authenticate: Bearer"), "%s", r.headers);
	resp_free(&r);
	r = as(expired_token, "GET", "/api/v1/me", NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	const char *h[] = {"Authorization: Basic YTpi", NULL};
	r = req("GET", "/api/v1/me", h, NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	free(t);
}
END_TEST

START_TEST(csrf_on_cookie_sessions)
{
	struct resp l = as(NULL, "POST", "/api/v1/auth/login",
			   "{\"email\":\"aa@example.com\",\"password\":\"" PW_AA "\"}");
	ck_assert_int_eq(l.status, 200);
	struct json *j = parse(l.body);
	char *cookie = xasprintf("Cookie: other=1; ghl_session=%s; ghl_csrf=%s",
				 json_get_str(j, "token"), json_get_str(j, "csrf_token"));
	char *good = xasprintf("X-CSRF-Token: %s", json_get_str(j, "csrf_token"));
	char *path = xasprintf("/api/v1/agencies/%s", agency_a);
	const char *body = "{\"name\":\"Acme\"}";

	const char *h_get[] = {cookie, NULL};
	struct resp r = req("GET", "/api/v1/me", h_get, NULL);
	ck_assert_msg(r.status == 200, "cookie GET: %ld %s", r.status, r.body);
	resp_free(&r);
	const char *h_none[] = {cookie, "Content-Type: application/json", NULL};
	r = req("PATCH", path, h_none, body);
	assert_error(&r, 403, "csrf_failed");
	resp_free(&r);
	const char *h_bad[] = {cookie, "Content-Type: application/json", "X-CSRF-Token: nope",
			       NULL};
	r = req("PATCH", path, h_bad, body);
	assert_error(&r, 403, "csrf_failed");
	resp_free(&r);
	const char *h_ok[] = {cookie, "Content-Type: application/json", good, NULL};
	r = req("PATCH", path, h_ok, body);
	ck_assert_msg(r.status == 200, "cookie + CSRF: %ld %s", r.status, r.body);
	resp_free(&r);
	/* Bearer needs no CSRF token */
	r = as(json_get_str(j, "token"), "PATCH", path, body);
	ck_assert_msg(r.status == 200, "bearer: %ld %s", r.status, r.body);
	resp_free(&r);
	const char *h_out[] = {cookie, good, NULL};
	r = req("POST", "/api/v1/auth/logout", h_out, NULL);
	ck_assert_msg(r.status == 204, "logout: %ld %s", r.status, r.body);
	resp_free(&r);
	r = req("GET", "/api/v1/me", h_get, NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	free(path);
	free(good);
	free(cookie);
	json_free(j);
	resp_free(&l);
}
END_TEST

/* The access matrix: which status each caller gets. Columns: who calls. What a
 * listing answers (the ids each caller sees) is checked in test_api_scope.c. */
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
	const char *path; /* %A = the row's agency, %U = victim user, %K = spare key id */
	const char *body;
	char agency; /* 'A' or 'Z' */
	int want[NWHO];
};

#define U401 401, 401, 401
static const struct cell_row matrix[] = {
	{"GET", "/api/v1/me", NULL, 'A', {U401, 200, 200, 200, 200, 200, 200}},
	{"GET", "/api/v1/users", NULL, 'A', {U401, 403, 403, 403, 403, 403, 200}},
	{"POST",
	 "/api/v1/users",
	 "{\"email\":\"matrix@example.com\",\"password\":\"matrix password 1\",\"role\":\"SUPPORT\"}",
	 'A',
	 {U401, 403, 403, 403, 403, 403, 201}},
	{"GET", "/api/v1/users/%U", NULL, 'A', {U401, 403, 403, 403, 403, 403, 200}},
	{"PATCH",
	 "/api/v1/users/%U",
	 "{\"role\":\"SUPPORT\"}",
	 'A',
	 {U401, 403, 403, 403, 403, 403, 200}},
	{"GET", "/api/v1/agencies", NULL, 'A', {U401, 200, 200, 200, 200, 200, 200}},
	{"GET", "/api/v1/agencies/%A", NULL, 'A', {U401, 200, 404, 200, 200, 404, 200}},
	{"PATCH",
	 "/api/v1/agencies/%A",
	 "{\"name\":\"Acme\"}",
	 'A',
	 {U401, 200, 404, 403, 403, 404, 200}},
	{"GET", "/api/v1/agencies/%A/api-keys", NULL, 'A', {U401, 200, 404, 200, 403, 404, 200}},
	{"POST",
	 "/api/v1/agencies/%A/api-keys",
	 "{\"name\":\"matrix\"}",
	 'A',
	 {U401, 201, 404, 403, 403, 404, 201}},
	{"DELETE",
	 "/api/v1/agencies/%A/api-keys/%K",
	 NULL,
	 'A',
	 {U401, 204, 404, 403, 403, 404, 204}},
	{"DELETE", "/api/v1/users/%U", NULL, 'A', {U401, 403, 403, 403, 403, 403, 204}},
	{"DELETE", "/api/v1/agencies/%A", NULL, 'Z', {U401, 403, 404, 403, 403, 404, 204}},
	{"POST", "/api/v1/auth/logout", NULL, 'A', {U401, 204, 204, 204, 403, 403, 204}},
};

START_TEST(access_matrix)
{
	char *admin = login("admin@example.com", PW_ADMIN);
	char *aa = login("aa@example.com", PW_AA);
	char *bb = login("bb@example.com", PW_AA);
	char *support = login("support@example.com", PW_SUPPORT);
	struct buf fails;
	buf_init(&fails);
	int cells = 0;
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
		const struct cell_row *row = &matrix[i];
		const char *agency = row->agency == 'Z' ? agency_z : agency_a;
		const char *own_key = row->agency == 'Z' ? key_z : key_a;
		const char *tokens[NWHO] = {
			NULL, "not-a-real-token", expired_token, aa, bb, support, own_key, key_b,
			admin};
		const char *vars[] = {"A", agency, "U", victim, "K", spare_key_id, NULL};
		char *path = tl_expand(row->path, vars);
		for (int w = 0; w < NWHO; w++) {
			struct resp r = as(tokens[w], row->method, path, row->body);
			cells++;
			if (r.status != row->want[w])
				buf_printf(&fails, "  %s %s as %s: %ld, want %d: %.200s\n",
					   row->method, row->path, who_name[w], r.status,
					   row->want[w], r.body);
			else if (r.status >= 400) {
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
	free(admin);
	free(aa);
	free(bb);
	free(support);
}
END_TEST

START_TEST(body_handling)
{
	char *admin = login("admin@example.com", PW_ADMIN);
	char *authz = xasprintf("Authorization: Bearer %s", admin);
	/* over max_body_bytes (1 MiB) */
	size_t big = 1024 * 1024 + 10;
	char *huge = xmalloc(big + 1);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	huge[big] = '\0';
	struct resp r = as(admin, "POST", "/api/v1/users", huge);
	ck_assert_msg(r.status == 413, "oversize: %ld", r.status);
	resp_free(&r);
	free(huge);
	/* malformed: 400 with line and column */
	r = as(admin, "POST", "/api/v1/users", "{\n  \"email\": \"x@y.z\",\n  oops\n}");
	assert_error(&r, 400, "malformed_json");
	ck_assert_msg(strstr(r.body, "\"line\":3") && strstr(r.body, "\"column\":3"), "%s", r.body);
	resp_free(&r);
	/* deeply nested */
	struct buf deep;
	buf_init(&deep);
	buf_puts(&deep, "{\"email\":");
	for (int i = 0; i < 100; i++)
		buf_putc(&deep, '[');
	for (int i = 0; i < 100; i++)
		buf_putc(&deep, ']');
	buf_putc(&deep, '}');
	r = as(admin, "POST", "/api/v1/users", buf_cstr(&deep));
	assert_error(&r, 400, "malformed_json");
	ck_assert_msg(strstr(r.body, "nesting"), "%s", r.body);
	resp_free(&r);
	buf_clear(&deep);
	/* wrong and missing content type */
	const char *h_text[] = {authz, "Content-Type: text/plain", NULL};
	r = req("POST", "/api/v1/users", h_text, "{}");
	assert_error(&r, 415, "unsupported_media_type");
	resp_free(&r);
	const char *h_form[] = {authz, "Content-Type: application/x-www-form-urlencoded", NULL};
	r = req("POST", "/api/v1/users", h_form, "email=a");
	assert_error(&r, 415, "unsupported_media_type");
	resp_free(&r);
	const char *h_charset[] = {authz, "Content-Type: application/json; charset=utf-8", NULL};
	r = req("POST", "/api/v1/users", h_charset, "{}");
	assert_error(&r, 422, "validation_failed");
	resp_free(&r);
	/* empty body */
	r = as(admin, "POST", "/api/v1/users", "");
	assert_error(&r, 400, "empty_body");
	resp_free(&r);
	/* unknown fields are named */
	r = as(admin, "POST", "/api/v1/users",
	       "{\"email\":\"u@example.com\",\"password\":\"long enough pw\",\"is_admin\":true,"
	       "\"x\":{}}");
	assert_error(&r, 422, "unknown_fields");
	ck_assert_msg(
		strstr(r.body, "unknown fields: is_admin, x") &&
			strstr(r.body, "{\"field\":\"is_admin\",\"message\":\"unknown field\"}"),
		"%s", r.body);
	resp_free(&r);
	/* wrong types, every problem listed with its path */
	r = as(admin, "POST", "/api/v1/users",
	       "{\"email\":42,\"password\":\"short\",\"role\":\"ROOT\",\"agency_ids\":[\"x\",7]}");
	assert_error(&r, 422, "validation_failed");
	const char *want[] = {"\"field\":\"email\"", "\"field\":\"role\"",
			      "\"field\":\"agency_ids[0]\"", "\"field\":\"agency_ids[1]\""};
	for (size_t i = 0; i < 4; i++)
		ck_assert_msg(strstr(r.body, want[i]), "missing %s: %s", want[i], r.body);
	resp_free(&r);
	/* the password policy */
	r = as(admin, "POST", "/api/v1/users",
	       "{\"email\":\"short@example.com\",\"password\":\"short\"}");
	assert_error(&r, 422, "validation_failed");
	ck_assert_msg(strstr(r.body, "\"field\":\"password\"") && strstr(r.body, "at least 12"),
		      "%s", r.body);
	resp_free(&r);
	/* a body that is not an object */
	r = as(admin, "POST", "/api/v1/users", "[1,2]");
	assert_error(&r, 422, "validation_failed");
	resp_free(&r);
	/* settings must be an object (the default validator) */
	char *path = xasprintf("/api/v1/agencies/%s", agency_a);
	r = as(admin, "PATCH", path, "{\"settings\":[1]}");
	assert_error(&r, 422, "validation_failed");
	ck_assert_msg(strstr(r.body, "\"field\":\"settings\""), "%s", r.body);
	resp_free(&r);
	r = as(admin, "PATCH", path, "{\"settings\":{\"pipeline\":[{\"step\":\"NOOP\"}]}}");
	ck_assert_msg(r.status == 200 && strstr(r.body, "NOOP") && !strstr(r.body, "SECRET-"),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	free(path);
	free(authz);
	free(admin);
}
END_TEST

START_TEST(users_crud_and_conflicts)
{
	char *admin = login("admin@example.com", PW_ADMIN);
	char *body = xasprintf(
		"{\"email\":\"New.User@example.com\",\"password\":\"new user password\","
		"\"role\":\"AGENCY_ADMIN\",\"agency_ids\":[\"%s\",\"%s\"]}",
		agency_b, agency_b);
	struct resp r = as(admin, "POST", "/api/v1/users", body);
	ck_assert_msg(r.status == 201 && strstr(r.body, "new.user@example.com") &&
			      strstr(r.body, agency_b) && !strstr(r.body, "password"),
		      "%ld %s", r.status, r.body);
	struct json *j = parse(r.body);
	char *path = xasprintf("/api/v1/users/%s", json_get_str(j, "id"));
	json_free(j);
	resp_free(&r);
	r = as(admin, "POST", "/api/v1/users", body);
	assert_error(&r, 409, "conflict");
	resp_free(&r);
	free(body);
	/* the new user can log in and sees only agency B */
	char *nu = login("new.user@example.com", "new user password");
	r = as(nu, "GET", "/api/v1/agencies", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, agency_b) && !strstr(r.body, agency_a),
		      "%s", r.body);
	resp_free(&r);
	/* relink to A: takes effect on the next request */
	body = xasprintf("{\"agency_ids\":[\"%s\"]}", agency_a);
	r = as(admin, "PATCH", path, body);
	ck_assert_msg(r.status == 200 && strstr(r.body, agency_a) && !strstr(r.body, agency_b),
		      "%ld %s", r.status, r.body);
	resp_free(&r);
	free(body);
	r = as(nu, "GET", "/api/v1/agencies", NULL);
	ck_assert_msg(strstr(r.body, agency_a) && !strstr(r.body, agency_b), "%s", r.body);
	resp_free(&r);
	/* a new password revokes the user's sessions */
	r = as(admin, "PATCH", path, "{\"password\":\"another long password\"}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	resp_free(&r);
	r = as(nu, "GET", "/api/v1/me", NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	free(login("new.user@example.com", "another long password"));
	/* unknown agency, unknown user, self-protection */
	r = as(admin, "PATCH", path, "{\"agency_ids\":[\"00000000-0000-4000-8000-000000000000\"]}");
	assert_error(&r, 422, "invalid_reference");
	resp_free(&r);
	r = as(admin, "GET", "/api/v1/users/00000000-0000-4000-8000-000000000000", NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	r = as(admin, "GET", "/api/v1/me", NULL);
	j = parse(r.body);
	char *self = xasprintf("/api/v1/users/%s", json_get_str(json_get(j, "user"), "id"));
	json_free(j);
	resp_free(&r);
	r = as(admin, "DELETE", self, NULL);
	assert_error(&r, 409, "conflict");
	resp_free(&r);
	r = as(admin, "PATCH", self, "{\"role\":\"SUPPORT\"}");
	assert_error(&r, 409, "conflict");
	resp_free(&r);
	r = as(admin, "DELETE", path, NULL);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	r = as(admin, "DELETE", path, NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(self);
	free(path);
	free(nu);
	free(admin);
}
END_TEST

START_TEST(api_keys_revoke_and_listing)
{
	char *admin = login("admin@example.com", PW_ADMIN);
	char key[64], id[40];
	make_key(admin, agency_b, key, sizeof(key), id);
	struct resp r = as(key, "GET", "/api/v1/me", NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency_b);
	r = as(admin, "GET", path, NULL);
	char prefix[13];
	memcpy(prefix, key, 12);
	prefix[12] = '\0';
	ck_assert_msg(r.status == 200 && strstr(r.body, id) && strstr(r.body, prefix) &&
			      !strstr(r.body, key) && strstr(r.body, "\"last_used_at\":\"2"),
		      "%s", r.body);
	resp_free(&r);
	char *del = xasprintf("%s/%s", path, id);
	r = as(admin, "DELETE", del, NULL);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	r = as(key, "GET", "/api/v1/me", NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	/* a key of another agency cannot be revoked through this one */
	char *wrong = xasprintf("/api/v1/agencies/%s/api-keys/%s", agency_a, id);
	r = as(admin, "DELETE", wrong, NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	free(wrong);
	free(del);
	free(path);
	free(admin);
}
END_TEST

/* DELETE /agencies/{id} takes effect: the agency is gone from GET and from
 * every page of the list (for ADMIN and for its AGENCY_ADMIN), its API key
 * (used, so cached, before) answers 401, and a second DELETE is 404. */
START_TEST(agency_delete_takes_effect)
{
	PGconn *c = tl_connect(dsn);
	char gone[40];
	sql_into(c,
		 "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		 " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Gone', 'ghl-gone',"
		 " 'x', 'y', now()) RETURNING id",
		 gone, sizeof(gone));
	char *admin = login("admin@example.com", PW_ADMIN);
	char key[64];
	make_key(admin, gone, key, sizeof(key), NULL);
	char *out = NULL;
	char *args = xasprintf("--email dd@example.com --role AGENCY_ADMIN --agency %s", gone);
	ck_assert_msg(user_add(args, PW_AA "\n", &out) == 0, "%s", out);
	free(out);
	free(args);
	char *dd = login("dd@example.com", PW_AA);
	char *path = xasprintf("/api/v1/agencies/%s", gone);
	const char *const who[] = {admin, dd, key};
	long status;
	/* before: each of them reaches it */
	for (size_t i = 0; i < 3; i++) {
		struct resp r = as(who[i], "GET", path, NULL);
		ck_assert_msg(r.status == 200, "before, caller %zu: %ld %s", i, r.status, r.body);
		resp_free(&r);
		char **ids = tl_list_ids(ag.base, who[i], "/api/v1/agencies?limit=1", "id", &status,
					 NULL);
		ck_assert_msg(tl_strv_has(ids, gone), "before, caller %zu: not listed", i);
		tl_strv_free(ids);
	}
	struct resp r = as(admin, "DELETE", path, NULL);
	ck_assert_msg(r.status == 204, "%ld %s", r.status, r.body);
	resp_free(&r);
	/* after: not found, not listed, the key refused */
	for (size_t i = 0; i < 2; i++) {
		r = as(who[i], "GET", path, NULL);
		assert_error(&r, 404, "not_found");
		resp_free(&r);
		char **ids = tl_list_ids(ag.base, who[i], "/api/v1/agencies?limit=1", "id", &status,
					 NULL);
		ck_assert_msg(ids && !tl_strv_has(ids, gone), "caller %zu still lists %s (%ld)", i,
			      gone, status);
		tl_strv_free(ids);
	}
	r = as(key, "GET", "/api/v1/me", NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	r = as(key, "GET", path, NULL);
	assert_error(&r, 401, "unauthenticated");
	resp_free(&r);
	r = as(admin, "DELETE", path, NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	char *v = tl_sqlf(c, "SELECT deleted_at IS NOT NULL FROM agencies WHERE id = '%s'", gone);
	ck_assert_str_eq(v, "t");
	free(v);
	PQfinish(c);
	free(path);
	free(dd);
	free(admin);
}
END_TEST

START_TEST(filters_injection_and_pagination)
{
	char *admin = login("admin@example.com", PW_ADMIN);
	const char *inj[] = {
		"/api/v1/users?q=%27%20OR%201%3D1--",
		"/api/v1/users?q=%25",
		"/api/v1/users?q=%5C",
		"/api/v1/agencies?q=%27%3B%20DROP%20TABLE%20agencies%3B--",
		"/api/v1/agencies?q=_",
	};
	for (size_t i = 0; i < sizeof(inj) / sizeof(inj[0]); i++) {
		struct resp r = as(admin, "GET", inj[i], NULL);
		ck_assert_msg(r.status == 200 && strstr(r.body, "\"items\":[]"), "%s: %ld %s",
			      inj[i], r.status, r.body);
		resp_free(&r);
	}
	const char *bad[][2] = {
		{"/api/v1/users?role=ADMIN%27--", "invalid_parameter"},
		{"/api/v1/users?limit=abc", "invalid_parameter"},
		{"/api/v1/users?limit=0", "invalid_parameter"},
		{"/api/v1/users?limit=100000", "invalid_parameter"},
		{"/api/v1/users?cursor=%27%20OR%201%3D1", "invalid_cursor"},
		{"/api/v1/users?cursor=MjAyNnxub3Bl", "invalid_cursor"},
		{"/api/v1/agencies?sort=name", "unknown_parameter"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct resp r = as(admin, "GET", bad[i][0], NULL);
		assert_error(&r, 400, bad[i][1]);
		resp_free(&r);
	}
	struct resp r = as(admin, "GET", "/api/v1/users/1%20OR%201=1", NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	r = as(admin, "GET", "/api/v1/agencies/%27--", NULL);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	r = as(admin, "GET", "/api/v1/users?q=EXAMPLE.COM&role=SUPPORT", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "support@example.com") &&
			      !strstr(r.body, "admin@example.com"),
		      "%s", r.body);
	resp_free(&r);

	/* pages of one agency each, newest first, until next_cursor is null */
	char *url = xstrdup("/api/v1/agencies?limit=1");
	struct buf seen;
	buf_init(&seen);
	int pages = 0;
	for (;;) {
		r = as(admin, "GET", url, NULL);
		ck_assert_msg(r.status == 200, "%s: %s", url, r.body);
		struct json *j = parse(r.body);
		struct json *items = json_get(j, "items");
		ck_assert_uint_le(json_len(items), 1);
		if (json_len(items)) {
			const char *id = json_get_str(json_at(items, 0), "id");
			ck_assert_msg(!strstr(buf_cstr(&seen), id), "page repeats %s", id);
			buf_puts(&seen, id);
			ck_assert_msg(!json_get(json_at(items, 0), "oauth_access_token_encrypted"),
				      "token column leaked: %s", r.body);
		}
		pages++;
		const char *next = json_get_str(j, "next_cursor");
		free(url);
		url = next ? xasprintf("/api/v1/agencies?limit=1&cursor=%s", next) : NULL;
		json_free(j);
		resp_free(&r);
		if (!url)
			break;
		ck_assert_int_lt(pages, 10);
	}
	ck_assert_msg(strstr(buf_cstr(&seen), agency_a) && strstr(buf_cstr(&seen), agency_b), "%s",
		      buf_cstr(&seen));
	/* the first page is the newest live agency */
	ck_assert_msg(pages >= 2, "pages %d", pages);
	buf_clear(&seen);
	PGconn *c = tl_connect(dsn);
	char *n = tl_sql_value(c, "SELECT count(*) FROM agencies");
	ck_assert_str_eq(n, "3");
	free(n);
	PQfinish(c);
	free(admin);
}
END_TEST

START_TEST(user_add_cli_errors)
{
	char *out = NULL;
	ck_assert_int_eq(user_add("--email x@example.com --role ADMIN", "short\n", &out), 2);
	ck_assert_msg(strstr(out, "at least 12"), "%s", out);
	free(out);
	ck_assert_int_eq(user_add("--email x@example.com --role ROOT", PW_ADMIN "\n", &out), 2);
	ck_assert_msg(strstr(out, "--role must be"), "%s", out);
	free(out);
	ck_assert_int_eq(user_add("--role ADMIN", PW_ADMIN "\n", &out), 2);
	ck_assert_msg(strstr(out, "--email"), "%s", out);
	free(out);
	ck_assert_int_eq(user_add("--email x@example.com --role AGENCY_ADMIN --agency 12",
				  PW_ADMIN "\n", &out),
			 2);
	ck_assert_msg(strstr(out, "not an agency id"), "%s", out);
	free(out);
	ck_assert_int_eq(user_add("--email x@example.com --role AGENCY_ADMIN --agency "
				  "00000000-0000-4000-8000-000000000000",
				  PW_ADMIN "\n", &out),
			 1);
	ck_assert_msg(strstr(out, "agency not found"), "%s", out);
	free(out);
	ck_assert_int_eq(user_add("--email ADMIN@example.com --role ADMIN", PW_ADMIN "\n", &out),
			 1);
	ck_assert_msg(strstr(out, "already exists"), "%s", out);
	free(out);
	ck_assert_int_eq(
		user_add("--email x@example.com --role ADMIN --bogus", PW_ADMIN "\n", &out), 2);
	free(out);
	ck_assert_int_eq(user_add("--email x@example.com --role ADMIN", "", &out), 2);
	ck_assert_msg(strstr(out, "no password"), "%s", out);
	free(out);
	/* the stored hash is bcrypt $2b$ cost 12 and the password is not in the log */
	PGconn *c = tl_connect(dsn);
	char *h = tl_sql_value(c,
			       "SELECT password_hash FROM users WHERE email = 'admin@example.com'");
	ck_assert_msg(str_has_prefix(h, "$2b$12$"), "%s", h);
	free(h);
	PQfinish(c);
}
END_TEST

/* Runs last: every secret this suite used must be absent from the log. */
START_TEST(no_secrets_in_logs)
{
	char *admin = login("admin@example.com", PW_ADMIN);
	char key[64];
	make_key(admin, agency_a, key, sizeof(key), NULL);
	struct resp r = as(key, "GET", "/api/v1/me", NULL);
	resp_free(&r);
	r = as(NULL, "POST", "/api/v1/auth/login",
	       "{\"email\":\"admin@example.com\",\"password\":\"wrong-password-in-log?\"}");
	resp_free(&r);
	char *log = tl_read_file(ag.log);
	ck_assert_msg(strstr(log, "\"login\"") || strstr(log, "login"), "log is empty? %s", log);
	const char *secrets[] = {PW_ADMIN,
				 PW_AA,
				 PW_SUPPORT,
				 "wrong-password-in-log",
				 admin,
				 key,
				 key_a,
				 key_b,
				 key_z,
				 expired_token,
				 "SECRET-ACCESS",
				 "SECRET-REFRESH",
				 "matrix password"};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		ck_assert_msg(!strstr(log, secrets[i]), "secret #%zu (%.8s…) is in the log", i,
			      secrets[i]);
	free(log);
	free(admin);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api_http");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, login_ok_sets_cookies_and_me_works);
	tcase_add_test(tc, login_bad);
	tcase_add_test(tc, login_throttled_per_account);
	tcase_add_test(tc, login_throttled_per_address);
	tcase_add_test(tc, logout_revokes_and_expired_session);
	tcase_add_test(tc, csrf_on_cookie_sessions);
	tcase_add_test(tc, body_handling);
	tcase_add_test(tc, users_crud_and_conflicts);
	tcase_add_test(tc, api_keys_revoke_and_listing);
	tcase_add_test(tc, filters_injection_and_pagination);
	tcase_add_test(tc, user_add_cli_errors);
	tcase_add_test(tc, agency_delete_takes_effect);
	tcase_add_test(tc, access_matrix);
	tcase_add_test(tc, no_secrets_in_logs);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
