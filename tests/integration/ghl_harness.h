/* ghl_harness.h — shared by the GHL-side integration tests (test_oauth.c,
 * test_token_refresh.c, test_webhooks.c, test_rewrap.c): a ghl-sim process, a
 * `ghl-agent serve` process pointed at it, HTTP with redirects shown, the
 * OAuth browser dance, and the "no token in logs or pg_dump" check.
 * Header-only (static functions), included by one test program each. */
#ifndef GHL_HARNESS_H
#define GHL_HARNESS_H

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "agency_tokens.h"
#include "crypto.h"
#include "json.h"
#include "testlib.h"
#include "util.h"
#include "vault.h"

#define H_UNUSED __attribute__((unused))

#define H_CLIENT_ID "harness-client-id"
#define H_CLIENT_SECRET "harness-client-secret-8Qw2"
#define H_KEY7 "7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define H_KEY8 "8:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define H_STATE_SECRET "harness-state-secret-0123456789abcdef"

/* ---- the simulator ---- */

struct hsim {
	pid_t pid;
	int port;
	char base[64];
};

H_UNUSED static void hsim_start(struct hsim *s, const char *const *flags)
{
	const char *argv[48];
	int n = 0;
	argv[n++] = tl_env("GHL_SIM_BIN");
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--client-id";
	argv[n++] = H_CLIENT_ID;
	argv[n++] = "--client-secret";
	argv[n++] = H_CLIENT_SECRET;
	for (int i = 0; flags && flags[i] && n < 46; i++)
		argv[n++] = flags[i];
	argv[n] = NULL;
	s->pid = tl_sim_spawn(argv, 1, &s->port);
	snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
}

/* SIGTERM; fails the test unless it exits with status 0 in time. */
H_UNUSED static void hsim_stop(struct hsim *s)
{
	tl_stop(s->pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-sim", NULL);
}

/* GET/POST /_sim/<what>; asserts 200 and returns the parsed answer. */
H_UNUSED static struct json *hsim_admin(struct hsim *s, const char *method, const char *what,
					const char *body)
{
	char *url = xasprintf("%s/_sim/%s", s->base, what);
	const char *h[] = {"Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http(method, url, h, body, &out);
	ck_assert_msg(st == 200, "%s %s: %ld %s", method, url, st, out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j != NULL, "not JSON: %s", out);
	free(out);
	free(url);
	return j;
}

H_UNUSED static long long hsim_stat(struct hsim *s, const char *name)
{
	struct json *j = hsim_admin(s, "GET", "stats", NULL);
	int64_t v = -1;
	ck_assert_msg(json_get_int(j, name, &v) == 0, "no stat %s", name);
	json_free(j);
	return (long long)v;
}

/* The sim's gate (/_sim/faults gate): GHL answers nothing until n requests
 * wait at once (a large n: until hsim_gate(s, 0) lets them go), so a request
 * stays in flight while the test acts, whatever the machine's load. */
H_UNUSED static void hsim_gate(struct hsim *s, long long n)
{
	char *body = xasprintf("{\"gate\": %lld}", n);
	json_free(hsim_admin(s, "POST", "faults", body));
	free(body);
}

/* Wait until n requests wait at the gate (fails after 30 s). */
H_UNUSED static void hsim_gate_wait(struct hsim *s, long long n)
{
	long long v = -1;
	for (int i = 0; i < 300 && v != n; i++) {
		if (i)
			usleep(100000);
		v = hsim_stat(s, "gate_waiting");
	}
	ck_assert_msg(v == n, "%lld requests at the gate, want %lld", v, n);
}

/* ---- HTTP with the Location header ---- */

#define hresp tl_resp
#define hresp_free tl_resp_free
#define hhttp tl_request

/* ---- the agent ---- */

struct hagent {
	pid_t pid;
	int port;
	char log[64];
	char base[64];
	char dsn[512];	 /* the database it serves */
	char token[128]; /* an ADMIN session (hagent_admin_token), "" until needed */
};

#define H_ADMIN_EMAIL "harness-admin@example.com"
#define H_ADMIN_PASSWORD "harness admin password 1"

#define hmigrate tl_migrate

/* Starts `ghl-agent serve` on dsn, pointed at sim (may be NULL). extra: more
 * KEY=VALUE entries (NULL-terminated; may be NULL), applied after the
 * defaults below, so they override them (tl_spawn putenv()s in order).
 * Returns once /readyz answers 200. */
H_UNUSED static void hagent_start(struct hagent *a, const char *dsn, struct hsim *sim,
				  const char *const *extra)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->dsn, sizeof(a->dsn), "%s", dsn);
	a->port = tl_free_port();
	snprintf(a->log, sizeof(a->log), "/tmp/ghl-agent-log-XXXXXX");
	close(mkstemp(a->log));
	snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->port);
	char *env[40];
	int n = 0;
	env[n++] = xasprintf("DATABASE_URL=%s", dsn);
	env[n++] = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", a->port);
	env[n++] = xasprintf("GHL_AGENT_GHL_REDIRECT_URL=http://127.0.0.1:%d/oauth/callback",
			     a->port);
	if (sim) {
		env[n++] = xasprintf("GHL_AGENT_GHL_API_BASE=%s", sim->base);
		env[n++] = xasprintf("GHL_AGENT_GHL_OAUTH_AUTHORIZE_URL=%s/oauth/chooselocation",
				     sim->base);
	}
	const char *defaults[] = {
		"GHL_AGENT_SHUTDOWN_TIMEOUT=10s",
		"GHL_AGENT_DB_RECONNECT_MAX=500ms",
		"GHL_AGENT_LOG_LEVEL=debug",
		"GHL_AGENT_GHL_CLIENT_ID=" H_CLIENT_ID,
		"GHL_AGENT_GHL_CLIENT_SECRET=" H_CLIENT_SECRET,
		"GHL_AGENT_TOKEN_KEYS=" H_KEY7,
		"GHL_AGENT_OAUTH_STATE_SECRET=" H_STATE_SECRET,
		"GHL_AGENT_GHL_TIMEOUT=5s",
	};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		env[n++] = xstrdup(defaults[i]);
	for (int k = 0; extra && extra[k] && n < 38; k++)
		env[n++] = xstrdup(extra[k]);
	env[n] = NULL;
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	a->pid = tl_spawn(argv, env, a->log);
	for (int i = 0; i < n; i++)
		free(env[i]);
	tl_wait_ready(a->base, a->pid, a->log, TL_DAEMON_TIMEOUT_MS);
}

/* SIGTERM and wait; fails the test unless the agent exits with status 0 in
 * time (so 0 is what it returns). The log file stays. */
H_UNUSED static int hagent_stop(struct hagent *a)
{
	tl_stop(a->pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-agent serve", a->log);
	return 0;
}

H_UNUSED static char *hagent_url(struct hagent *a, const char *path)
{
	return xasprintf("%s%s", a->base, path);
}

/* One sample of a's /metrics, e.g. "jobs_total{outcome=\"retrying\"}"
 * (without the ghl_agent_ prefix); fails the test when it is missing. */
H_UNUSED static long long hagent_metric(struct hagent *a, const char *sample)
{
	char *url = hagent_url(a, "/metrics");
	char *metrics = NULL;
	ck_assert_int_eq(tl_http("GET", url, NULL, NULL, &metrics), 200);
	char *key = xasprintf("\nghl_agent_%s ", sample);
	const char *m = strstr(metrics, key);
	ck_assert_msg(m, "no %s in:\n%s", sample, metrics);
	long long v = strtoll(m + strlen(key), NULL, 10);
	free(key);
	free(metrics);
	free(url);
	return v;
}

/* Waits up to timeout_ms for a's /metrics sample to read want (a count the
 * agent moves when a result reaches it, after the database already shows
 * the commit); returns the last value read. */
H_UNUSED static long long hagent_metric_wait(struct hagent *a, const char *sample, long long want,
					     int timeout_ms)
{
	int64_t deadline = now_monotonic_ms() + timeout_ms;
	long long v;
	while ((v = hagent_metric(a, sample)) != want && now_monotonic_ms() < deadline)
		usleep(20000);
	return v;
}

/* bcrypt (cost 12, the least the agent makes) of H_ADMIN_PASSWORD, as
 * `ghl-agent user add` stores it: the harness inserts its admin with it
 * instead of running the CLI (a bcrypt per test; the CLI has its own tests). */
#define H_ADMIN_HASH "$2b$12$0ul4Ff0qyCjKH6/aMpngm.Xy0dXStGqR/h2UvEQ25lkaGkFFH0vKO"

/* An ADMIN session token for a (made on first use: H_ADMIN_EMAIL inserted
 * into a's database unless it exists, then POST /auth/login). */
H_UNUSED static const char *hagent_admin_token(struct hagent *a)
{
	if (a->token[0])
		return a->token;
	PGconn *db = tl_connect(a->dsn);
	tl_execf(db,
		 "INSERT INTO users (email, password_hash, role) VALUES ('" H_ADMIN_EMAIL
		 "', '%s', 'ADMIN') ON CONFLICT (email) DO NOTHING",
		 H_ADMIN_HASH);
	PQfinish(db);
	char *out = NULL;
	char *url = hagent_url(a, "/api/v1/auth/login");
	const char *h[] = {"Content-Type: application/json", NULL};
	const char *body = "{\"email\":\"" H_ADMIN_EMAIL "\",\"password\":\"" H_ADMIN_PASSWORD
			   "\"}";
	long st = tl_http("POST", url, h, body, &out);
	free(url);
	ck_assert_msg(st == 200, "harness login: %ld %s", st, out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j && json_get_str(j, "token"), "login answer: %s", out);
	snprintf(a->token, sizeof(a->token), "%s", json_get_str(j, "token"));
	json_free(j);
	free(out);
	return a->token;
}

/* "Authorization: Bearer <admin session>" (malloc'd), for /oauth/connect. */
H_UNUSED static char *hagent_admin_header(struct hagent *a)
{
	return xasprintf("Authorization: Bearer %s", hagent_admin_token(a));
}

/* `ghl-agent user add ARGS --password-stdin` in a's database. */
H_UNUSED static void huser_add(struct hagent *a, const char *args, const char *password)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", a->dsn);
	char *env[] = {env_dsn, NULL};
	char *pw = xasprintf("%s\n", password);
	char *in = tl_write_temp("ghl-harness-pw", pw);
	char *line = xasprintf("exec \"$0\" user add %s --password-stdin < '%s'", args, in);
	char *sh[] = {(char *)"/bin/sh", (char *)"-c", line, (char *)tl_env("GHL_AGENT_BIN"), NULL};
	char *out = NULL;
	int rc = tl_run(sh, env, &out);
	ck_assert_msg(rc == 0, "user add %s: %d %s", args, rc, out);
	free(out);
	unlink(in);
	free(in);
	free(pw);
	free(line);
	free(env_dsn);
}

/* POST /auth/login (asserting 200); the session token (malloc'd). */
H_UNUSED static char *hlogin(struct hagent *a, const char *email, const char *password)
{
	char *url = hagent_url(a, "/api/v1/auth/login");
	char *body = xasprintf("{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	const char *h[] = {"Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http("POST", url, h, body, &out);
	ck_assert_msg(st == 200, "login %s: %ld %s", email, st, out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j && json_get_str(j, "token"), "login answer: %s", out);
	char *tok = xstrdup(json_get_str(j, "token"));
	json_free(j);
	free(out);
	free(body);
	free(url);
	return tok;
}

/* A user made through POST /api/v1/users as the harness ADMIN (role, the
 * agency_ids JSON array), logged in: its session token (malloc'd). */
H_UNUSED static char *huser_token(struct hagent *a, const char *email, const char *role,
				  const char *agency_ids)
{
	const char *pw = "harness user password";
	char *body = xasprintf("{\"email\":\"%s\",\"password\":\"%s\",\"role\":\"%s\","
			       "\"agency_ids\":%s}",
			       email, pw, role, agency_ids);
	char *url = hagent_url(a, "/api/v1/users");
	char *authz = hagent_admin_header(a);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	char *out = NULL;
	long st = tl_http("POST", url, h, body, &out);
	ck_assert_msg(st == 201, "POST /api/v1/users %s: %ld %s", email, st, out);
	free(out);
	free(authz);
	free(url);
	free(body);
	return hlogin(a, email, pw);
}

/* A new API key of agency (POST …/api-keys as the harness ADMIN): the key. */
H_UNUSED static char *hkey_new(struct hagent *a, const char *agency)
{
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	char *url = hagent_url(a, path);
	char *authz = hagent_admin_header(a);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	char *out = NULL;
	long st = tl_http("POST", url, h, "{\"name\":\"harness\"}", &out);
	struct json *j = st == 201 ? json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL)
				   : NULL;
	ck_assert_msg(j && json_get_str(j, "key"), "POST %s: %ld %s", path, st, out);
	char *k = xstrdup(json_get_str(j, "key"));
	json_free(j);
	free(out);
	free(authz);
	free(url);
	free(path);
	return k;
}

#define H_OAUTH_COOKIE "ghl_oauth"

/* "Cookie: ghl_oauth=…" from the Set-Cookie of raw response headers
 * (malloc'd), or NULL when there is none. */
H_UNUSED static char *hoauth_cookie(const char *headers)
{
	const char *p = headers ? strstr(headers, "Set-Cookie: " H_OAUTH_COOKIE "=") : NULL;
	if (!p)
		return NULL;
	p += strlen("Set-Cookie: ");
	return xasprintf("Cookie: %.*s", (int)strcspn(p, ";\r\n"), p);
}

/* The browser's OAuth dance: /oauth/connect with authz ("Authorization:
 * Bearer …" of an ADMIN or AGENCY_ADMIN) → ghl-sim authorize (with
 * company_id= when company is set) → /oauth/callback, carrying the cookie
 * /oauth/connect set, as a browser does. Fills *cb with the callback's
 * answer; returns the callback URL (malloc'd) for replays and, when cookie
 * is not NULL, the "Cookie: …" header that goes with it. */
H_UNUSED static char *hconnect_as(struct hagent *a, const char *authz, const char *company,
				  struct hresp *cb, char **cookie)
{
	struct hresp r;
	char *url = hagent_url(a, "/oauth/connect");
	const char *hdrs[] = {authz, NULL};
	hhttp(&r, "GET", url, hdrs, NULL, 0);
	free(url);
	ck_assert_msg(r.status == 302 && r.location, "connect: %ld %s", r.status, r.body);
	char *jar = hoauth_cookie(r.headers);
	char *authorize = company ? xasprintf("%s&company_id=%s", r.location, company)
				  : xstrdup(r.location);
	hresp_free(&r);
	hhttp(&r, "GET", authorize, NULL, NULL, 0);
	free(authorize);
	ck_assert_msg(r.status == 302 && r.location, "authorize: %ld %s", r.status, r.body);
	char *callback = xstrdup(r.location);
	hresp_free(&r);
	const char *cb_hdrs[] = {jar, NULL};
	hhttp(cb, "GET", callback, jar ? cb_hdrs : NULL, NULL, 0);
	if (cookie)
		*cookie = jar;
	else
		free(jar);
	return callback;
}

/* hconnect_as by the harness's ADMIN. */
H_UNUSED static char *hconnect(struct hagent *a, const char *company, struct hresp *cb)
{
	char *authz = hagent_admin_header(a);
	char *callback = hconnect_as(a, authz, company, cb, NULL);
	free(authz);
	return callback;
}

/* Connect `company` through the agent's OAuth flow (asserting success) and
 * return the stored agency's id (malloc'd). */
H_UNUSED static char *hconnect_agency(struct hagent *a, PGconn *db, const char *company)
{
	struct hresp cb;
	free(hconnect(a, company, &cb));
	ck_assert_msg(cb.status == 200, "callback: %ld %s", cb.status, cb.body);
	hresp_free(&cb);
	char *id = tl_sqlf(db, "SELECT id FROM agencies WHERE ghl_agency_id = '%s'", company);
	ck_assert_msg(*id, "agency %s not stored", company);
	return id;
}

/* ---- jobs ---- */

/* Insert a job for agency (client: JSON text; snapshot id or NULL). */
H_UNUSED static char *hjob_add(PGconn *db, const char *agency, const char *client,
			       const char *snapshot)
{
	return tl_sqlf(db,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id) "
		       "VALUES ('%s', '%s', %s%s%s) RETURNING id",
		       agency, client, snapshot ? "'" : "", snapshot ? snapshot : "NULL",
		       snapshot ? "'" : "");
}

/* Wait until the job is COMPLETED or FAILED; returns that status (malloc'd).
 * On a timeout the test fails with the tail of the agent's log. */
H_UNUSED static char *hjob_wait(PGconn *db, const char *job, int timeout_ms, const char *agent_log)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		char *st = tl_sqlf(db, "SELECT status FROM provisioning_jobs WHERE id = '%s'", job);
		if (!strcmp(st, "COMPLETED") || !strcmp(st, "FAILED"))
			return st;
		free(st);
		usleep(100000);
	}
	char *log = tl_read_file(agent_log);
	size_t loglen = strlen(log);
	ck_abort_msg("job %s did not finish; agent log tail:\n%s", job,
		     log + (loglen > 3000 ? loglen - 3000 : 0));
	return NULL;
}

H_UNUSED static void hjob_assert_completed(PGconn *db, const char *job, const char *agent_log)
{
	char *st = hjob_wait(db, job, 30000, agent_log);
	if (strcmp(st, "COMPLETED") != 0) {
		char *err = tl_sqlf(
			db, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'", job);
		ck_abort_msg("job %s: %s: %s", job, st, err);
	}
	free(st);
}

/* An output a step of the job recorded in its COMPLETED journal entry. */
H_UNUSED static char *hjob_output(PGconn *db, const char *job, const char *step, const char *key)
{
	return tl_sqlf(db,
		       "SELECT details_json->'outputs'->>'%s' FROM provisioning_logs WHERE "
		       "job_id = '%s' AND step = '%s' AND status = 'COMPLETED'",
		       key, job, step);
}

/* ---- secrets ---- */

/* Every token ghl-sim issued (access and refresh), from /_sim/state. */
H_UNUSED static char **hsim_tokens(struct hsim *s, int *n)
{
	struct json *st = hsim_admin(s, "GET", "state", NULL);
	struct json *toks = json_get(st, "tokens");
	size_t len = json_len(toks);
	char **out = xcalloc(len + 1, sizeof(char *));
	int k = 0;
	for (size_t i = 0; i < len; i++) {
		const char *t = json_get_str(json_at(toks, i), "token");
		if (t && *t)
			out[k++] = xstrdup(t);
	}
	*n = k;
	json_free(st);
	return out;
}

H_UNUSED static void hfree_strv(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* pg_dump of dsn's database (plain SQL, data included). */
H_UNUSED static char *hpg_dump(const char *dsn)
{
	char *argv[] = {(char *)"/usr/bin/pg_dump", (char *)"-d", (char *)dsn, NULL};
	char *out = NULL;
	int rc = tl_run(argv, NULL, &out);
	ck_assert_msg(rc == 0, "pg_dump failed: %s", out);
	ck_assert_msg(strstr(out, "CREATE TABLE public.agencies"), "unexpected dump: %.300s", out);
	return out;
}

/* No token ghl-sim issued appears in text. The caller says how many tokens at
 * least must have been issued (>= 1): with none to look for, the check would
 * pass whatever text holds, so it fails instead. Returns the number checked. */
H_UNUSED static int hassert_no_tokens(struct hsim *s, const char *what, const char *text,
				      int min_tokens)
{
	int n;
	ck_assert_msg(min_tokens >= 1, "hassert_no_tokens(%s): min_tokens %d < 1", what,
		      min_tokens);
	char **toks = hsim_tokens(s, &n);
	ck_assert_msg(n >= min_tokens,
		      "%s: ghl-sim issued %d tokens, at least %d expected: nothing (enough) to "
		      "look for",
		      what, n, min_tokens);
	for (int i = 0; i < n; i++)
		ck_assert_msg(!strstr(text, toks[i]), "%s contains a token ghl-sim issued (#%d)",
			      what, i);
	hfree_strv(toks, n);
	return n;
}

/* Decrypt a value stored in column (AGENCY_TOKENS_COL_ACCESS or _REFRESH)
 * of agency's row with the given token_keys spec. Malloc'd. */
H_UNUSED static char *hdecrypt(const char *keys, const char *stored, const char *agency,
			       const char *column)
{
	struct vault *v = vault_new();
	struct err e;
	ck_assert_msg(vault_add_keys(v, keys, &e) == 0, "%s", e.msg);
	char *p = vault_decrypt(v, stored, agency, column, &e);
	ck_assert_msg(p != NULL, "decrypt: %s", e.msg);
	char *out = xstrdup(p);
	secret_free(p);
	vault_free(v);
	return out;
}

/* GET /locations/search?companyId= with a bearer token: the GHL status. */
H_UNUSED static long hghl_search(struct hsim *s, const char *token, const char *company)
{
	char *url = xasprintf("%s/locations/search?companyId=%s", s->base, company);
	char *auth = xasprintf("Authorization: Bearer %s", token);
	const char *h[] = {auth, "Version: 2021-07-28", NULL};
	long st = tl_http("GET", url, h, NULL, NULL);
	free(auth);
	free(url);
	return st;
}

#endif
