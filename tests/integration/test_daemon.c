/* test_daemon.c — `ghl-agent serve` over real HTTP with a real PostgreSQL. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static void migrate_db(const char *dsn)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[] = {env_dsn, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", NULL};
	char *out;
	ck_assert_msg(tl_run(argv, env, &out) == 0, "migrate: %s", out);
	free(out);
	free(env_dsn);
}

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
	char *env[] = {env_dsn, env_listen, (char *)"GHL_AGENT_SHUTDOWN_TIMEOUT=10s",
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
	struct json *j = json_parse(body, strlen(body), 16, &e);
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
	char *dsn = tl_create_db("daemon_ok");
	migrate_db(dsn);
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
	ck_assert_msg(strstr(body, "\nghl_agent_up 1\n") && strstr(body, "ghl_agent_database_up 1") &&
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
	migrate_db(dsn);
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
	char *dsn0 = tl_create_db("daemon_lost");
	migrate_db(dsn0);
	char *dsn = xasprintf("%s application_name=ghl_lost_%d", dsn0, (int)getpid());
	agent_start(&a, dsn, NULL);
	PGconn *c = tl_connect(dsn0);
	char *sql = xasprintf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			      "WHERE application_name = 'ghl_lost_%d'", (int)getpid());
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
	char *dsn = tl_create_db("daemon_term");
	migrate_db(dsn);
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
	char *curl[] = {(char *)"/usr/bin/curl", (char *)"-s", (char *)"-o", (char *)"/dev/null",
			(char *)"-w", (char *)"%{http_code}", url, NULL};
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
	char *dsn = tl_create_db("daemon_hup");
	migrate_db(dsn);
	struct agent a;
	agent_start(&a, dsn, "log_level = info\n");
	/* broken file: keeps serving with the old config */
	FILE *f = fopen(a.config, "w");
	fputs("log_level = info\nlog_format = yaml\n", f);
	fclose(f);
	kill(a.pid, SIGHUP);
	ck_assert_msg(tl_wait_file_contains(a.log, "config reload failed", 5000), "no reload error");
	char *log = tl_read_file(a.log);
	ck_assert_msg(strstr(log, ":2: key \\\"log_format\\\""), "error lacks file:line:key: %s", log);
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
			struct json *j = json_parse(bol, (size_t)(eol - bol), 16, &e);
			ck_assert_msg(j && *bol == '{', "not a JSON line (%s): %.*s", j ? "-" : e.msg,
				      (int)(eol - bol), bol);
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
		struct json *j = json_parse(line, (size_t)(nl - line), 16, &e);
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
	char *dsn = tl_create_db("daemon_worker");
	migrate_db(dsn);
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
	char *env[] = {(char *)"GHL_AGENT_LISTEN=127.0.0.1:0", (char *)"GHL_AGENT_TOKEN_KEYS=",
		       (char *)"GHL_AGENT_DEMO=off", NULL};
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
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
