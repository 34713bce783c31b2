/* test_daemon.c — `ghl-agent serve` over real HTTP with a real PostgreSQL. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "passwords.h"
#include "json.h"
#include "testlib.h"
#include "util.h"

struct agent {
	pid_t pid;
	int port;
	char log[64];
	char base[64];
	char *config;
};

/* Start serve with dsn and an optional config file text; returns once it
 * listens (any answer on /healthz), ready or not. Only the tests of the
 * not-ready state use this; the others use agent_start. */
static void agent_start_unready(struct agent *a, const char *dsn, const char *config_text)
{
	memset(a, 0, sizeof(*a));
	a->port = tl_free_port();
	snprintf(a->log, sizeof(a->log), "/tmp/ghl-agent-log-XXXXXX");
	close(mkstemp(a->log));
	snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->port);
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env_listen = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", a->port);
	char *env[] = {
		env_dsn,
		env_listen,
		(char *)"GHL_AGENT_SHUTDOWN_TIMEOUT=10s",
		(char *)"GHL_AGENT_DB_RECONNECT_MAX=500ms",
		(char *)"GHL_AGENT_TOKEN_KEYS=7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		NULL};
	if (config_text)
		a->config = tl_write_temp("ghl-agent-conf", config_text);
	char *argv_cfg[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"--config", a->config,
			    (char *)"serve", NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	a->pid = tl_spawn(a->config ? argv_cfg : argv, env, a->log);
	char url[96];
	snprintf(url, sizeof(url), "%s/healthz", a->base);
	if (!tl_wait_http(url, TL_DAEMON_TIMEOUT_MS))
		ck_abort_msg("agent did not start: %s", tl_log_tail(a->log, 3000));
	free(env_dsn);
	free(env_listen);
}

/* Start serve and wait until /readyz answers 200. */
static void agent_start(struct agent *a, const char *dsn, const char *config_text)
{
	agent_start_unready(a, dsn, config_text);
	tl_wait_ready(a->base, a->pid, a->log, TL_DAEMON_TIMEOUT_MS);
}

/* Stop with sig; fails the test unless the agent exits with status 0 (so 0
 * is what it returns). */
static int agent_stop(struct agent *a, int sig)
{
	tl_stop(a->pid, sig, TL_DAEMON_TIMEOUT_MS, "ghl-agent serve", a->log);
	unlink(a->log);
	if (a->config) {
		unlink(a->config);
		free(a->config);
	}
	return 0;
}

static long get(struct agent *a, const char *path, char **body)
{
	char url[256];
	snprintf(url, sizeof(url), "%s%s", a->base, path);
	return tl_http("GET", url, NULL, NULL, body);
}

/* The pool connects in the background: wait until /readyz answers 200. */
static void wait_ready(struct agent *a)
{
	tl_wait_ready(a->base, a->pid, a->log, TL_DAEMON_TIMEOUT_MS);
}

/* Assert the DESIGN error shape with the given code. */
static void assert_error_shape(const char *body, const char *code)
{
	struct err e;
	struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(j != NULL, "not JSON (%s): %s", e.msg, body);
	struct json *err = json_get(j, "error");
	ck_assert_msg(err && err->type == JSON_OBJECT, "no error object: %s", body);
	ck_assert_msg(json_get_str(err, "message") && *json_get_str(err, "message"),
		      "no message: %s", body);
	ck_assert_msg(str_eq(json_get_str(err, "code"), code), "code != %s: %s", code, body);
	json_free(j);
}

START_TEST(health_ready_and_404)
{
	char *dsn = tl_create_migrated_db("daemon_ok");
	struct agent a;
	agent_start(&a, dsn, NULL);
	char *body;
	ck_assert_int_eq(get(&a, "/healthz", &body), 200);
	ck_assert_str_eq(body, "{\"status\":\"ok\"}");
	free(body);
	wait_ready(&a);
	ck_assert_int_eq(get(&a, "/readyz", &body), 200);
	ck_assert_str_eq(body, "{\"status\":\"ready\"}");
	free(body);
	ck_assert_int_eq(get(&a, "/metrics", &body), 200);
	ck_assert_msg(strstr(body, "\nghl_agent_up 1\n") &&
			      strstr(body, "ghl_agent_database_up 1") &&
			      strstr(body, "ghl_agent_jobs_total{outcome=\"completed\"} 0") &&
			      strstr(body, "ghl_agent_http_responses_total{class=\"2xx\"} "),
		      "%s", body);
	free(body);
	ck_assert_int_eq(get(&a, "/no/such/route", &body), 404);
	assert_error_shape(body, "not_found");
	free(body);
	char url[128];
	snprintf(url, sizeof(url), "%s/healthz", a.base);
	ck_assert_int_eq(tl_http("POST", url, NULL, "{}", &body), 405);
	assert_error_shape(body, "method_not_allowed");
	free(body);

	int st = agent_stop(&a, SIGTERM);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(readyz_503_when_migrations_pending)
{
	char *dsn = tl_create_db("daemon_nomig");
	struct agent a;
	agent_start_unready(&a, dsn, NULL);
	char *body = NULL;
	long st = 0;
	/* the connection may still be coming up: wait for the migration answer */
	for (int64_t end = now_monotonic_ms() + TL_DAEMON_TIMEOUT_MS; now_monotonic_ms() < end;) {
		free(body);
		st = get(&a, "/readyz", &body);
		if (strstr(body, "migrations_pending"))
			break;
		usleep(50000);
	}
	ck_assert_int_eq(st, 503);
	assert_error_shape(body, "migrations_pending");
	ck_assert_msg(strstr(body, "ghl-agent migrate"), "%s", body);
	free(body);
	tl_migrate(dsn);
	ck_assert_int_eq(get(&a, "/readyz", &body), 200);
	free(body);
	agent_stop(&a, SIGINT);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(readyz_503_when_database_down_and_reconnects)
{
	/* nothing listens on port 1: the database is down */
	struct agent a;
	agent_start_unready(&a, "host=127.0.0.1 port=1 connect_timeout=2 password=never-log-me",
			    NULL);
	char *body;
	ck_assert_int_eq(get(&a, "/healthz", &body), 200);
	free(body);
	ck_assert_int_eq(get(&a, "/readyz", &body), 503);
	assert_error_shape(body, "database_unavailable");
	ck_assert_msg(strstr(body, "reconnecting") || strstr(body, "in progress"), "%s", body);
	free(body);
	char *log = tl_read_file(a.log);
	ck_assert_msg(!strstr(log, "never-log-me"), "password in log: %s", log);
	free(log);
	agent_stop(&a, SIGTERM);

	/* a real database whose connection is killed: the agent reconnects */
	char *dsn0 = tl_create_migrated_db("daemon_lost");
	char *dsn = xasprintf("%s application_name=ghl_lost_%d", dsn0, (int)getpid());
	agent_start(&a, dsn, NULL);
	PGconn *c = tl_connect(dsn0);
	char *sql = xasprintf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			      "WHERE application_name = 'ghl_lost_%d'",
			      (int)getpid());
	char *n = tl_sql_value(c, sql);
	ck_assert_int_ge(atoi(n), 1);
	free(n);
	free(sql);
	ck_assert_msg(tl_wait_file_contains(a.log, "database connection lost", 10000),
		      "no reconnect log");
	wait_ready(&a);
	PQfinish(c);
	agent_stop(&a, SIGTERM);
	tl_drop_db(dsn0);
	free(dsn0);
	free(dsn);
}
END_TEST

START_TEST(sigterm_finishes_in_flight_requests)
{
	char *dsn = tl_create_migrated_db("daemon_term");
	struct agent a;
	agent_start(&a, dsn, NULL);
	wait_ready(&a);

	/* Hold a lock so that /readyz's query waits: a request in flight. */
	PGconn *c = tl_connect(dsn);
	PQclear(tl_sql(c, "BEGIN"));
	PQclear(tl_sql(c, "LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE"));
	char out[] = "/tmp/ghl-curl-XXXXXX";
	close(mkstemp(out));
	char url[128];
	snprintf(url, sizeof(url), "%s/readyz", a.base);
	char *curl[] = {(char *)"/usr/bin/curl",
			(char *)"-s",
			(char *)"-o",
			(char *)"/dev/null",
			(char *)"-w",
			(char *)"%{http_code}",
			url,
			NULL};
	pid_t cp = tl_spawn(curl, NULL, out);
	/* in flight: the agent's query waits on our lock */
	long long waiting = 0;
	for (int64_t end = now_monotonic_ms() + TL_DAEMON_TIMEOUT_MS;
	     !waiting && now_monotonic_ms() < end; usleep(20000))
		waiting = tl_sqlf_n(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
				       "current_database() AND wait_event_type = 'Lock'");
	ck_assert_msg(waiting, "the agent's /readyz query never waited on the lock");
	kill(a.pid, SIGTERM);
	ck_assert_msg(tl_wait_file_contains(a.log, "shutting down", 5000), "no shutdown log");
	/* no longer accepting */
	ck_assert_int_eq(get(&a, "/healthz", NULL), 0);
	/* still running: the request is in flight */
	int st;
	ck_assert_int_eq(waitpid(a.pid, &st, WNOHANG), 0);
	PQclear(tl_sql(c, "COMMIT"));
	ck_assert_int_eq(tl_wait_exit(cp, 10000, &st), 0);
	char *code = tl_read_file(out);
	ck_assert_str_eq(code, "200");
	free(code);
	unlink(out);
	ck_assert_int_eq(tl_wait_exit(a.pid, 10000, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	unlink(a.log);
	PQfinish(c);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(sighup_reload_keeps_old_config_when_broken)
{
	char *dsn = tl_create_migrated_db("daemon_hup");
	struct agent a;
	agent_start(&a, dsn, "log_level = info\n");
	/* broken file: keeps serving with the old config */
	FILE *f = fopen(a.config, "w");
	fputs("log_level = info\nlog_format = yaml\n", f);
	fclose(f);
	kill(a.pid, SIGHUP);
	ck_assert_msg(tl_wait_file_contains(a.log, "config reload failed", 5000),
		      "no reload error");
	char *log = tl_read_file(a.log);
	ck_assert_msg(strstr(log, ":2: key \\\"log_format\\\""), "error lacks file:line:key: %s",
		      log);
	free(log);
	ck_assert_int_eq(get(&a, "/healthz", NULL), 200);
	/* the JSON log format is still in force: that request's line, after the
	 * reload error, is a JSON object */
	const char *want = "\"message\":\"http request\"";
	int found = 0;
	for (int i = 0; i < 100 && !found; i++) {
		log = tl_read_file(a.log);
		const char *err = strstr(log, "config reload failed");
		const char *after = err ? strstr(err, want) : NULL;
		if (after) {
			found = 1;
			const char *bol = after;
			while (bol > log && bol[-1] != '\n')
				bol--;
			const char *eol = strchr(after, '\n');
			ck_assert_ptr_nonnull(eol);
			struct err e;
			struct json *j = json_parse(bol, (size_t)(eol - bol),
						    JSON_DEFAULT_MAX_DEPTH, &e);
			ck_assert_msg(j && *bol == '{', "not a JSON line (%s): %.*s",
				      j ? "-" : e.msg, (int)(eol - bol), bol);
			ck_assert_str_eq(json_get_str(j, "message"), "http request");
			json_free(j);
		} else {
			usleep(50000);
		}
		free(log);
	}
	ck_assert_msg(found, "no JSON request line after the failed reload");
	/* a valid file is applied: text logs from now on */
	f = fopen(a.config, "w");
	fputs("log_format = text\n", f);
	fclose(f);
	kill(a.pid, SIGHUP);
	ck_assert_msg(tl_wait_file_contains(a.log, "configuration reloaded", 5000), "no reload");
	ck_assert_int_eq(get(&a, "/healthz", NULL), 200);
	ck_assert_msg(tl_wait_file_contains(a.log, "info  http request", 5000), "no text log line");
	/* every line before the reload is a JSON object with time, level, message */
	log = tl_read_file(a.log);
	char *line = log;
	int json_lines = 0;
	while (line && *line == '{') {
		char *nl = strchr(line, '\n');
		struct err e;
		struct json *j = json_parse(line, (size_t)(nl - line), JSON_DEFAULT_MAX_DEPTH, &e);
		ck_assert_msg(j, "bad JSON log line (%s): %.*s", e.msg, (int)(nl - line), line);
		ck_assert_ptr_nonnull(json_get_str(j, "time"));
		ck_assert_ptr_nonnull(json_get_str(j, "level"));
		ck_assert_ptr_nonnull(json_get_str(j, "message"));
		json_free(j);
		json_lines++;
		line = nl + 1;
	}
	ck_assert_int_ge(json_lines, 3);
	free(log);
	int st = agent_stop(&a, SIGTERM);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* roles = worker: only the operational routes answer. */
START_TEST(worker_role_serves_only_operational_routes)
{
	char *dsn = tl_create_migrated_db("daemon_worker");
	setenv("GHL_AGENT_ROLES", "worker", 1);
	struct agent a;
	agent_start(&a, dsn, NULL);
	unsetenv("GHL_AGENT_ROLES");
	wait_ready(&a);
	ck_assert_int_eq(get(&a, "/metrics", NULL), 200);
	char *body;
	ck_assert_int_eq(get(&a, "/api/v1/me", &body), 404);
	assert_error_shape(body, "not_found");
	free(body);
	int st = agent_stop(&a, SIGTERM);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* Outside demo mode the agent refuses to start without a token key, and says how. */
START_TEST(refuses_to_start_without_token_key)
{
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	char *env[] = {(char *)"GHL_AGENT_LISTEN=127.0.0.1:0",
		       (char *)"GHL_AGENT_TOKEN_KEYS=", (char *)"GHL_AGENT_DEMO=off", NULL};
	char *out;
	int rc = tl_run(argv, env, &out);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, "no token encryption key") && strstr(out, "ghl-agent keygen"),
		      "%s", out);
	free(out);
	char *keygen[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"keygen", (char *)"3", NULL};
	rc = tl_run(keygen, NULL, &out);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(str_has_prefix(out, "3:") && strlen(out) == 2 + 44 + 1, "%s", out);
	free(out);
}
END_TEST

/* ---- the database away: requests wait for it ---------------------------- */

#define DBW_AGENCY "22222222-2222-4222-8222-222222222222"
#define DBW_KEY "ghl_dbwait-test-key-0123456789"
#define DBW_TOKEN_KEY "7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* A migrated database with an agency and its API key; the agent reaches it
 * as application `app`, so that its connections can be cut. */
struct dbw {
	char *dsn0, *dsn;
	char dbname[80], app[48];
	PGconn *db;    /* to the test database: stays while it refuses new ones */
	PGconn *admin; /* to the server's "postgres" database */
	struct agent a;
};

static void dbw_setup(struct dbw *w, const char *prefix)
{
	memset(w, 0, sizeof(*w));
	w->dsn0 = tl_create_migrated_db(prefix);
	const char *n = strstr(w->dsn0, "dbname=") + 7;
	snprintf(w->dbname, sizeof(w->dbname), "%.*s", (int)strcspn(n, " "), n);
	snprintf(w->app, sizeof(w->app), "ghl_%s_%d", prefix, (int)getpid());
	w->dsn = xasprintf("%s application_name=%s", w->dsn0, w->app);
	w->db = tl_connect(w->dsn0);
	char *pg = xasprintf("%.*sdbname=postgres%s", (int)(n - 7 - w->dsn0), w->dsn0,
			     n + strlen(w->dbname));
	w->admin = tl_connect(pg);
	free(pg);
	char hash[65];
	auth_secret_hash(DBW_KEY, hash);
	tl_execf(w->db,
		 "INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,"
		 " oauth_refresh_token_encrypted, token_expires_at, settings_json) VALUES"
		 " ('" DBW_AGENCY "', 'Waits', 'wait-co', 'x', 'x',"
		 " now() + interval '1 day', '{}')");
	tl_execf(w->db,
		 "INSERT INTO api_keys (agency_id, name, key_hash, prefix) VALUES"
		 " ('" DBW_AGENCY "', 'test', '%s', 'ghl_dbwa')",
		 hash);
}

/* Stop the agent (it exits 0) and drop the database. */
static void dbw_finish(struct dbw *w)
{
	int st = agent_stop(&w->a, SIGTERM);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	PQfinish(w->db);
	PQfinish(w->admin);
	tl_drop_db(w->dsn0);
	free(w->dsn0);
	free(w->dsn);
}

/* The database refuses new connections and the agent's are cut (as when
 * PostgreSQL restarts), or it takes connections again. */
static void dbw_database(struct dbw *w, int up)
{
	tl_execf(w->admin, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s", w->dbname,
		 up ? "true" : "false");
	if (!up)
		tl_execf(w->admin,
			 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
			 " WHERE application_name = '%s'",
			 w->app);
}

/* Start serve at w->dsn without waiting for anything but the HTTP port. */
static void dbw_spawn(struct dbw *w, const char *config_text)
{
	struct agent *a = &w->a;
	a->port = tl_free_port();
	snprintf(a->log, sizeof(a->log), "/tmp/ghl-agent-log-XXXXXX");
	close(mkstemp(a->log));
	snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->port);
	a->config = tl_write_temp("ghl-agent-conf", config_text);
	char *env_dsn = xasprintf("DATABASE_URL=%s", w->dsn);
	char *env_listen = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", a->port);
	char *env[] = {env_dsn, env_listen, (char *)"GHL_AGENT_DB_RECONNECT_MAX=300ms",
		       (char *)"GHL_AGENT_TOKEN_KEYS=" DBW_TOKEN_KEY, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"--config", a->config,
			(char *)"serve", NULL};
	a->pid = tl_spawn(argv, env, a->log);
	free(env_dsn);
	free(env_listen);
}

/* Set up, start and wait for /readyz. */
static void dbw_ready(struct dbw *w, const char *prefix, const char *config_text)
{
	dbw_setup(w, prefix);
	dbw_spawn(w, config_text);
	wait_ready(&w->a);
}

/* GET /api/v1/jobs with the agency's API key. */
static void dbw_get(struct dbw *w, struct tl_resp *r)
{
	char url[96];
	snprintf(url, sizeof(url), "%s/api/v1/jobs", w->a.base);
	const char *h[] = {"Authorization: Bearer " DBW_KEY, NULL};
	tl_request(r, "GET", url, h, NULL, 0);
}

/* The same GET from a curl process — or, with a job as post_body, a job
 * submission; its status code lands in out. */
struct bg_get {
	pid_t pid;
	char out[32];
};

static void bg_start(struct bg_get *b, struct dbw *w, const char *post_body)
{
	snprintf(b->out, sizeof(b->out), "/tmp/ghl-curl-XXXXXX");
	close(mkstemp(b->out));
	char url[128];
	snprintf(url, sizeof(url),
		 post_body ? "%s/api/v1/agencies/" DBW_AGENCY "/jobs" : "%s/api/v1/jobs",
		 w->a.base);
	char *argv[] = {(char *)"/usr/bin/curl",
			(char *)"-s",
			(char *)"-o",
			(char *)"/dev/null",
			(char *)"-w",
			(char *)"%{http_code}",
			(char *)"-H",
			(char *)"Authorization: Bearer " DBW_KEY,
			url,
			post_body ? (char *)"-H" : NULL,
			(char *)"Content-Type: application/json",
			(char *)"--data-binary",
			(char *)post_body,
			NULL};
	b->pid = tl_spawn(argv, NULL, b->out);
}

static void bg_assert_status(struct bg_get *b, const char *want)
{
	int st;
	ck_assert_msg(tl_wait_exit(b->pid, 60000, &st) == 0, "curl did not finish");
	char *code = tl_read_file(b->out);
	ck_assert_msg(!strcmp(code, want), "background GET: %s, expected %s", code, want);
	free(code);
	unlink(b->out);
}

/* A sample of /metrics (ghl_agent_NAME), -1 when absent. */
static long long metric(struct agent *a, const char *name)
{
	char *body = NULL;
	get(a, "/metrics", &body);
	char *needle = xasprintf("\nghl_agent_%s ", name);
	const char *p = body ? strstr(body, needle) : NULL;
	long long v = p ? atoll(p + strlen(needle)) : -1;
	free(needle);
	free(body);
	return v;
}

/* Until n requests wait for a connection (the agent says so in /metrics). */
static void wait_for_waiting(struct agent *a, long long n)
{
	long long v = -1;
	for (int i = 0; i < 600 && v < n; i++) {
		v = metric(a, "db_waiting");
		if (v < n)
			usleep(50000);
	}
	ck_assert_msg(v >= n, "%lld requests wait for the database, expected %lld", v, n);
}

/* Until the agent has seen every pool connection go; /readyz then says so
 * at once. */
static void wait_database_down(struct agent *a)
{
	long long up = 1;
	for (int i = 0; i < 600 && up != 0; i++) {
		up = metric(a, "database_up");
		if (up != 0)
			usleep(50000);
	}
	ck_assert_int_eq(up, 0);
	char *body;
	ck_assert_int_eq(get(a, "/readyz", &body), 503);
	assert_error_shape(body, "database_unavailable");
	free(body);
}

/* Requests that arrive while the pool is still connecting wait for it. */
START_TEST(requests_at_start_wait_for_the_database)
{
	struct dbw w;
	dbw_setup(&w, "dbw_start");
	/* as it comes: fire at once, before /readyz has said anything */
	dbw_spawn(&w, "db_wait_timeout = 60s\n");
	struct tl_resp r;
	int answered = 0;
	for (int i = 0; i < 300 && answered < 10; i++) {
		dbw_get(&w, &r);
		if (r.status) {
			ck_assert_msg(r.status == 200, "request %d: %ld %s", answered, r.status,
				      r.body);
			answered++;
		} else {
			usleep(20000); /* the port is not open yet */
		}
		tl_resp_free(&r);
	}
	ck_assert_int_eq(answered, 10);
	agent_stop(&w.a, SIGTERM);

	/* the database refuses connections while the agent starts: requests
	 * wait, /readyz does not */
	dbw_database(&w, 0);
	dbw_spawn(&w, "db_wait_timeout = 60s\n");
	char url[96];
	snprintf(url, sizeof(url), "%s/healthz", w.a.base);
	ck_assert(tl_wait_http(url, 15000));
	struct bg_get bg[4];
	for (int i = 0; i < 4; i++)
		bg_start(&bg[i], &w, NULL);
	wait_for_waiting(&w.a, 4);
	char *body;
	ck_assert_int_eq(get(&w.a, "/readyz", &body), 503);
	assert_error_shape(body, "database_unavailable");
	free(body);
	dbw_database(&w, 1);
	for (int i = 0; i < 4; i++)
		bg_assert_status(&bg[i], "200");
	ck_assert_int_ge(metric(&w.a, "db_waits_total"), 4);
	ck_assert_int_eq(metric(&w.a, "db_wait_failures_total"), 0);
	dbw_finish(&w);
}
END_TEST

/* PostgreSQL goes away under a stream of requests and comes back within
 * db_wait_timeout: every request is answered 200. */
START_TEST(requests_ride_out_a_database_restart)
{
	struct dbw w;
	dbw_ready(&w, "dbw_restart", "db_wait_timeout = 60s\n");
	/* one client asking again and again, one status code per line */
	char stream[] = "/tmp/ghl-stream-XXXXXX", stop[] = "/tmp/ghl-stop-XXXXXX";
	close(mkstemp(stream));
	close(mkstemp(stop));
	unlink(stop);
	char *loop = xasprintf("while [ ! -e %s ]; do curl -s -o /dev/null -w '%%{http_code}\\n'"
			       " -H 'Authorization: Bearer " DBW_KEY "' %s/api/v1/jobs; done",
			       stop, w.a.base);
	char *sh[] = {(char *)"/bin/sh", (char *)"-c", loop, NULL};
	pid_t streamer = tl_spawn(sh, NULL, stream);
	ck_assert(tl_wait_file_contains(stream, "200\n200\n200\n", 30000));

	dbw_database(&w, 0);
	wait_database_down(&w.a);
	struct bg_get bg[3];
	for (int i = 0; i < 3; i++)
		bg_start(&bg[i], &w, NULL);
	wait_for_waiting(&w.a, 4); /* the three and the stream's current one */
	dbw_database(&w, 1);
	for (int i = 0; i < 3; i++)
		bg_assert_status(&bg[i], "200");
	wait_ready(&w.a);
	/* the stream goes on after the return */
	char *before = tl_read_file(stream);
	size_t n = strlen(before);
	free(before);
	char *after = NULL;
	for (int i = 0; i < 600; i++) {
		free(after);
		after = tl_read_file(stream);
		if (strlen(after) >= n + 12)
			break;
		usleep(50000);
	}
	ck_assert_msg(strlen(after) >= n + 12, "the stream stalled: %s", after);
	free(after);
	close(creat(stop, 0600));
	int st;
	ck_assert_int_eq(tl_wait_exit(streamer, 30000, &st), 0);
	char *codes = tl_read_file(stream);
	size_t len = strlen(codes);
	ck_assert_msg(len >= 6 * 4 && len % 4 == 0, "stream: %s", codes);
	for (size_t i = 0; i < len; i += 4)
		ck_assert_msg(!strncmp(codes + i, "200\n", 4), "a request got %.3s: %s", codes + i,
			      codes);
	free(codes);
	unlink(stream);
	unlink(stop);
	free(loop);
	ck_assert_int_eq(metric(&w.a, "db_wait_failures_total"), 0);
	dbw_finish(&w);
}
END_TEST

/* A query running when its connection drops: a read is sent again once the
 * database is back; a write answers 503 (it may or may not have been
 * applied — here it was not). */
START_TEST(a_cut_off_read_is_sent_again_a_write_is_not)
{
	struct dbw w;
	/* no scheduler queries; statements sent whole (a Parse still in flight
	 * has not run anything: it would be sent again, write or not) */
	dbw_ready(&w, "dbw_cut",
		  "roles = api\ndb_wait_timeout = 60s\ndb_prepared_statements = off\n");
	tl_execf(w.db, "BEGIN");
	tl_execf(w.db, "LOCK TABLE provisioning_jobs IN ACCESS EXCLUSIVE MODE");
	struct bg_get rd, wr;
	bg_start(&rd, &w, NULL);
	bg_start(&wr, &w,
		 "{\"client_data\":{\"name\":\"Cut\",\"email\":\"c@example.com\","
		 "\"first_name\":\"C\",\"last_name\":\"Ut\"}}");
	long long blocked = 0;
	for (int i = 0; i < 600 && blocked < 2; i++) {
		blocked = tl_sqlf_n(w.admin,
				    "SELECT count(*) FROM pg_stat_activity WHERE"
				    " application_name = '%s' AND wait_event_type = 'Lock'",
				    w.app);
		if (blocked < 2)
			usleep(50000);
	}
	ck_assert_int_eq(blocked, 2);
	dbw_database(&w, 0);
	tl_execf(w.db, "COMMIT");
	bg_assert_status(&wr, "503");
	dbw_database(&w, 1);
	bg_assert_status(&rd, "200");
	ck_assert_int_ge(metric(&w.a, "db_replayed_total"), 1);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM provisioning_jobs"), 0);
	dbw_finish(&w);
}
END_TEST

/* A 503 database_unavailable with Retry-After, and the reason in the log. */
static void assert_db_503(struct dbw *w, const char *logged)
{
	struct tl_resp r;
	dbw_get(w, &r);
	ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
	assert_error_shape(r.body, "database_unavailable");
	const char *ra = strcasestr(r.headers, "\nRetry-After: ");
	ck_assert_msg(ra && atoi(ra + 14) >= 1, "no Retry-After: %s", r.headers);
	tl_resp_free(&r);
	ck_assert_msg(tl_wait_file_contains(w->a.log, logged, 5000), "no \"%s\" in the log",
		      logged);
}

/* Past db_wait_timeout, or with db_wait_queue full: 503 with Retry-After. */
START_TEST(requests_get_503_with_retry_after_past_the_bound)
{
	struct dbw w;
	dbw_ready(&w, "dbw_bound", "db_wait_timeout = 1s\n");
	struct tl_resp r;
	dbw_get(&w, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	tl_resp_free(&r);
	dbw_database(&w, 0);
	wait_database_down(&w.a);
	assert_db_503(&w, "no connection within 1000 ms");

	/* a long wait but a queue of two (applied by SIGHUP): the third is
	 * turned away at once */
	FILE *f = fopen(w.a.config, "w");
	fputs("db_wait_timeout = 60s\ndb_wait_queue = 2\n", f);
	fclose(f);
	kill(w.a.pid, SIGHUP);
	ck_assert(tl_wait_file_contains(w.a.log, "configuration reloaded", 10000));
	struct bg_get bg[2];
	for (int i = 0; i < 2; i++)
		bg_start(&bg[i], &w, NULL);
	wait_for_waiting(&w.a, 2);
	assert_db_503(&w, "2 requests already waiting");
	dbw_database(&w, 1);
	for (int i = 0; i < 2; i++)
		bg_assert_status(&bg[i], "200");
	/* the two refusals above at least: the loop's own queries (claims, the
	 * delivery worker) that waited through the outage count too */
	ck_assert_int_ge(metric(&w.a, "db_wait_failures_total"), 2);
	dbw_finish(&w);
}
END_TEST

/* SIGHUP: the job engine's keys apply from the next claim; a key that needs
 * a restart is named in the log. */
START_TEST(sighup_applies_engine_keys_and_names_restart_keys)
{
	struct dbw w;
	/* no notifications and a poll once an hour: nothing claims a new job */
	dbw_ready(&w, "dbw_hup",
		  "listen_notify = off\npoll_interval = 1h\n"
		  "default_pipeline = {\"pipeline\":[{\"step\":\"NOOP\","
		  "\"config\":{\"output\":\"before\"}}]}\n");
	tl_execf(w.db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json) VALUES ('" DBW_AGENCY
		 "', '{\"name\":\"Acme\",\"email\":\"a@acme.example\"}')");
	FILE *f = fopen(w.a.config, "w");
	fputs("listen_notify = off\npoll_interval = 100ms\ndb_pool_size = 3\n"
	      "default_pipeline = {\"pipeline\":[{\"step\":\"NOOP\","
	      "\"config\":{\"output\":\"after\"}}]}\n",
	      f);
	fclose(f);
	kill(w.a.pid, SIGHUP);
	ck_assert(tl_wait_file_contains(w.a.log, "configuration reloaded", 10000));
	/* the new poll_interval claims the job, the new default pipeline runs it */
	char *v = NULL;
	for (int i = 0; i < 300; i++) {
		free(v);
		v = tl_sql_value(w.db, "SELECT status FROM provisioning_jobs");
		if (!strcmp(v, "COMPLETED") || !strcmp(v, "FAILED"))
			break;
		usleep(50000);
	}
	ck_assert_msg(!strcmp(v, "COMPLETED"), "job %s", v);
	free(v);
	v = tl_sql_value(w.db, "SELECT details_json->'outputs'->>'noop' FROM provisioning_logs"
			       " WHERE step = 'NOOP' AND status = 'COMPLETED'");
	ck_assert_str_eq(v, "after");
	free(v);
	char *log = tl_read_file(w.a.log);
	ck_assert_msg(strstr(log, "`db_pool_size` changed; it takes effect after a restart"), "%s",
		      log);
	ck_assert_msg(!strstr(log, "`poll_interval` changed") &&
			      !strstr(log, "`listen_notify` changed"),
		      "%s", log);
	ck_assert_msg(strstr(log, "\"applied\":\"poll_interval,default_pipeline\""), "%s", log);
	free(log);
	/* a default pipeline naming no known step: the whole file is refused */
	f = fopen(w.a.config, "w");
	fputs("default_pipeline = {\"pipeline\":[{\"step\":\"NO_SUCH_STEP\"}]}\n", f);
	fclose(f);
	kill(w.a.pid, SIGHUP);
	ck_assert(tl_wait_file_contains(w.a.log, "config reload failed", 10000));
	ck_assert(tl_wait_file_contains(w.a.log, "NO_SUCH_STEP", 10000));
	dbw_finish(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, health_ready_and_404);
	tcase_add_test(tc, refuses_to_start_without_token_key);
	tcase_add_test(tc, worker_role_serves_only_operational_routes);
	tcase_add_test(tc, readyz_503_when_migrations_pending);
	tcase_add_test(tc, readyz_503_when_database_down_and_reconnects);
	tcase_add_test(tc, sigterm_finishes_in_flight_requests);
	tcase_add_test(tc, sighup_reload_keeps_old_config_when_broken);
	tcase_add_test(tc, sighup_applies_engine_keys_and_names_restart_keys);
	tcase_add_test(tc, requests_at_start_wait_for_the_database);
	tcase_add_test(tc, requests_ride_out_a_database_restart);
	tcase_add_test(tc, requests_get_503_with_retry_after_past_the_bound);
	tcase_add_test(tc, a_cut_off_read_is_sent_again_a_write_is_not);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
