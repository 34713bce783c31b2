/* testlib.h — helpers for the Check suites: real processes, real HTTP, real
 * PostgreSQL databases (one fresh database per test program or case). */
#ifndef GHL_TESTLIB_H
#define GHL_TESTLIB_H

#include <check.h>
#include <libpq-fe.h>
#include <sys/types.h>

/* An environment variable that must be set (the test fails with its name). */
const char *tl_env(const char *name);

/* Create a fresh, empty database; returns its conninfo (malloc'd). The server
 * comes from GHL_TEST_PGHOST / GHL_TEST_PGPORT / GHL_TEST_PGUSER, which
 * scripts/test exports. */
char *tl_create_db(const char *prefix);
/* The same, migrated (`ghl-agent migrate`, as hmigrate runs it): a copy of a
 * template database the test program migrates on first use, instead of a
 * migration per test; tl_run_suite drops the template at the end. */
char *tl_create_migrated_db(const char *prefix);
/* `ghl-agent migrate` (GHL_AGENT_BIN) on dsn, or fail the test with its output. */
void tl_migrate(const char *dsn);
/* Drop the database named in dsn (dbname=...). */
void tl_drop_db(const char *dsn);
/* Connect or fail the test. */
PGconn *tl_connect(const char *dsn);
/* Run SQL or fail the test; returns the result for SELECTs (caller PQclear). */
PGresult *tl_sql(PGconn *c, const char *sql);
/* First column of the first row as a malloc'd string ("" when no rows). */
char *tl_sql_value(PGconn *c, const char *sql);

/* printf-style variants: the first column of the first row (malloc'd, "" when
 * no rows), the same as a number, and a statement whose result is dropped. */
char *tl_sqlf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long long tl_sqlf_n(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_execf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The waits for an outcome that is coming (tl_sql_wait_true,
 * tl_wait_file_contains, wd_wait_text) give up after no less than this,
 * whatever timeout the caller names: a wait that succeeds ends at once, and a
 * loaded 2-core machine under ASan is slow. */
#define TL_WAIT_MIN_MS 30000

/* Poll sql (every 100 ms, up to timeout_ms, at least TL_WAIT_MIN_MS) until
 * its first value is 't': 1 when it was, 0 on the timeout (the caller fails
 * with what it knows). */
int tl_sql_wait_true(PGconn *c, const char *sql, int timeout_ms);

/* Replace one-letter placeholders "%X" in tmpl: vars holds pairs
 * "X", value, … ending with NULL; other text is copied. malloc'd. */
char *tl_expand(const char *tmpl, const char *const *vars);

/* A TCP port that was free a moment ago on 127.0.0.1. */
int tl_free_port(void);

/* Processes the tests start never outlive them. Every child tl_spawn and
 * tl_sim_spawn start gets SIGKILL when the thread that started it ends
 * (PR_SET_PDEATHSIG: the test process dies, a failed assertion in a forked
 * Check test included), and is remembered until it is reaped by
 * tl_wait_exit, tl_kill or tl_stop. tl_kill_spawned() SIGKILLs and reaps
 * every remembered process that is still a child of the calling process; it
 * runs at exit and after the suite (tl_run_suite), so with CK_FORK=no or a
 * failed unchecked setup nothing is left behind either. */

/* Start argv[0] with extra "KEY=VALUE" environment entries (NULL-terminated,
 * may be NULL); stdout and stderr go to log_path (appended). */
pid_t tl_spawn(char *const argv[], char *const env_extra[], const char *log_path);
/* Start ghl-sim (argv[0] = its binary; pass "--listen", "127.0.0.1:0") and
 * read the port from its first line ("ghl-sim listening on http://…:PORT").
 * Stderr goes to /dev/null when quiet. Returns the pid; *port receives the
 * port. */
pid_t tl_sim_spawn(const char *const argv[], int quiet, int *port);
/* Remember a child started otherwise (fork), for tl_kill_spawned; group: it
 * leads its own process group, which is killed as a whole. */
void tl_track(pid_t pid, int group);
/* SIGKILL + reap every remembered process still a child of this process. */
void tl_kill_spawned(void);

/* Wait up to timeout_ms for pid; returns 0 and the wait status, or -1 on timeout. */
int tl_wait_exit(pid_t pid, int timeout_ms, int *status);
/* SIGKILL + reap (for cleanup). */
void tl_kill(pid_t pid);
/* Stop a daemon: send sig (SIGTERM, SIGINT), wait up to timeout_ms, and fail
 * the test unless it exited with status 0 (a sanitizer report at exit shows
 * only there) — or, on a timeout, SIGKILL it and fail. A failure names what,
 * the status, and the tail of log_path (may be NULL); it is also printed to
 * stderr, since Check drops messages from an unchecked teardown. */
void tl_stop(pid_t pid, int sig, int timeout_ms, const char *what, const char *log_path);

/* The last max bytes of the file at path (malloc'd; "" when missing). */
char *tl_log_tail(const char *path, size_t max);
/* Wait until base_url + "/readyz" answers 200 (listening, database connected,
 * migrations applied), up to timeout_ms; otherwise — or when pid (if > 0)
 * exits first — fail the test with the last answer and the tail of log_path.
 * Every test waits for this before using a daemon it started. */
void tl_wait_ready(const char *base_url, pid_t pid, const char *log_path, int timeout_ms);
/* Time a daemon gets for tl_wait_ready / tl_stop: enough for a loaded 2-core
 * machine under ASan. */
#define TL_DAEMON_TIMEOUT_MS 30000

/* Run a command to completion, capturing stdout+stderr into *output
 * (malloc'd). Returns the exit code, or -1 when it did not exit normally. */
int tl_run(char *const argv[], char *const env_extra[], char **output);

/* One HTTP request with libcurl, keeping the whole answer: status (0 on a
 * transport error), body, raw response headers and the Location header. No
 * redirect is followed. headers: NULL-terminated "Name: value" list or NULL;
 * body of body_len bytes or NULL. Free with tl_resp_free. */
struct tl_resp {
	long status;
	char *body;
	char *headers;
	char *location; /* NULL when none */
};
void tl_request(struct tl_resp *r, const char *method, const char *url, const char *const *headers,
		const char *body, size_t body_len);
void tl_resp_free(struct tl_resp *r);

/* One HTTP request with libcurl. headers: NULL-terminated "Name: value" list
 * (may be NULL). Returns the status (0 on transport error); the body goes to
 * *body (malloc'd) when body is not NULL. */
long tl_http(const char *method, const char *url, const char *const *headers, const char *req_body,
	     char **body);
/* Poll url until it answers with any status, up to timeout_ms; 1 on success. */
int tl_wait_http(const char *url, int timeout_ms);

/* Read a whole file (malloc'd, "" when missing). */
char *tl_read_file(const char *path);
/* Write text to a new temp file; returns its path (malloc'd). */
char *tl_write_temp(const char *prefix, const char *text);
/* Poll until the file contains needle, up to timeout_ms (at least
 * TL_WAIT_MIN_MS); 1 when found. */
int tl_wait_file_contains(const char *path, const char *needle, int timeout_ms);

/* Benchmarks run the shared helpers inside a Check test (so a failed
 * assertion is reported, not a crash): one test calling fn, no fork, no
 * timeout to speak of. Returns the exit code; prints the failure. */
int tl_run_bench(const char *name, void (*fn)(void));

/* Run a suite with an SRunner and return the process exit code. */
int tl_run_suite(Suite *s);

#endif
