/* testlib.c — see testlib.h. */
#include "testlib.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

const char *tl_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		ck_abort_msg("environment variable %s is not set (run the suite through "
			     "scripts/test)",
			     name);
	return v;
}

static char *admin_dsn(const char *dbname)
{
	return xasprintf("host=%s port=%s user=%s dbname=%s connect_timeout=10",
			 tl_env("GHL_TEST_PGHOST"), tl_env("GHL_TEST_PGPORT"),
			 tl_env("GHL_TEST_PGUSER"), dbname);
}

PGconn *tl_connect(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect %s: %s", dsn, PQerrorMessage(c));
	PQsetNoticeProcessor(c, NULL, NULL);
	return c;
}

PGresult *tl_sql(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "SQL failed: %s\n%s",
		      PQresultErrorMessage(r), sql);
	return r;
}

char *tl_sql_value(PGconn *c, const char *sql)
{
	PGresult *r = tl_sql(c, sql);
	char *v = xstrdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
	struct buf b;
	buf_init(&b);
	buf_vprintf(&b, fmt, ap);
	return buf_take(&b);
}

char *tl_sqlf(PGconn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = vformat(fmt, ap);
	va_end(ap);
	char *v = tl_sql_value(c, sql);
	free(sql);
	return v;
}

long long tl_sqlf_n(PGconn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = vformat(fmt, ap);
	va_end(ap);
	char *v = tl_sql_value(c, sql);
	long long n = 0;
	ck_assert_msg(str_to_ll(v, -(1LL << 62), 1LL << 62, &n) == 0,
		      "not a number: \"%s\" from %s", v, sql);
	free(v);
	free(sql);
	return n;
}

void tl_execf(PGconn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = vformat(fmt, ap);
	va_end(ap);
	PQclear(tl_sql(c, sql));
	free(sql);
}

int tl_sql_wait_true(PGconn *c, const char *sql, int timeout_ms)
{
	if (timeout_ms < TL_WAIT_MIN_MS)
		timeout_ms = TL_WAIT_MIN_MS;
	for (int waited = 0;; waited += 100) {
		char *v = tl_sql_value(c, sql);
		int ok = !strcmp(v, "t");
		free(v);
		if (ok)
			return 1;
		if (waited >= timeout_ms)
			return 0;
		usleep(100000);
	}
}

char *tl_expand(const char *tmpl, const char *const *vars)
{
	struct buf b;
	buf_init(&b);
	for (const char *p = tmpl; *p; p++) {
		const char *value = NULL;
		for (int i = 0; *p == '%' && vars[i]; i += 2)
			if (p[1] == vars[i][0])
				value = vars[i + 1];
		if (value) {
			buf_puts(&b, value);
			p++;
		} else {
			buf_putc(&b, *p);
		}
	}
	return buf_take(&b);
}

static void new_db_name(const char *prefix, char name[64])
{
	static int counter;
	snprintf(name, 64, "%s_%d_%d_%ld", prefix, (int)getpid(), ++counter,
		 (long)time(NULL) % 100000);
}

char *tl_create_db(const char *prefix)
{
	char name[64];
	new_db_name(prefix, name);
	char *dsn = admin_dsn("postgres");
	PGconn *c = tl_connect(dsn);
	free(dsn);
	char *sql = xasprintf("CREATE DATABASE \"%s\"", name);
	PQclear(tl_sql(c, sql));
	free(sql);
	PQfinish(c);
	return admin_dsn(name);
}

void tl_migrate(const char *dsn)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[] = {env_dsn, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", NULL};
	char *out;
	ck_assert_msg(tl_run(argv, env, &out) == 0, "migrate: %s", out);
	free(out);
	free(env_dsn);
}

static pid_t main_pid;

/* The migrated database this test program copies (tl_create_migrated_db). */
static void template_name(char name[64])
{
	snprintf(name, 64, "ghl_template_%d", (int)main_pid);
}

char *tl_create_migrated_db(const char *prefix)
{
	char tmpl[64], name[64];
	template_name(tmpl);
	char *adsn = admin_dsn("postgres");
	PGconn *c = tl_connect(adsn);
	free(adsn);
	if (tl_sqlf_n(c, "SELECT count(*) FROM pg_database WHERE datname = '%s'", tmpl) == 0) {
		/* migrated under another name, then renamed: a test killed midway
		 * leaves no half-migrated template behind */
		char *dsn = tl_create_db("template_new");
		tl_migrate(dsn);
		const char *p = strstr(dsn, "dbname=") + 7;
		char *made = xstrndup(p, strcspn(p, " "));
		tl_execf(c, "ALTER DATABASE \"%s\" RENAME TO \"%s\"", made, tmpl);
		free(made);
		free(dsn);
	}
	new_db_name(prefix, name);
	tl_execf(c, "CREATE DATABASE \"%s\" TEMPLATE \"%s\"", name, tmpl);
	PQfinish(c);
	return admin_dsn(name);
}

/* Drops this program's template, if a test made one (tl_run_suite, at the end). */
static void drop_template(void)
{
	const char *host = getenv("GHL_TEST_PGHOST");
	if (!host || !*host || getpid() != main_pid)
		return;
	char tmpl[64];
	template_name(tmpl);
	char *dsn = admin_dsn(tmpl);
	tl_drop_db(dsn);
	free(dsn);
}

void tl_drop_db(const char *dsn)
{
	const char *p = strstr(dsn, "dbname=");
	if (!p)
		return;
	p += 7;
	size_t n = strcspn(p, " ");
	char *name = xstrndup(p, n);
	char *adsn = admin_dsn("postgres");
	PGconn *c = PQconnectdb(adsn);
	if (PQstatus(c) == CONNECTION_OK) {
		char *sql = xasprintf("DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
		PQclear(PQexec(c, sql));
		free(sql);
	}
	PQfinish(c);
	free(adsn);
	free(name);
}

int tl_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- spawned processes ---- */

#define TL_MAX_TRACKED 128

static struct tracked {
	pid_t pid;
	pid_t guard; /* for a process group: see guard_group */
} tracked[TL_MAX_TRACKED];

/* The test program's own pid (main_pid, above): a process with another pid
 * whose parent is main_pid is a test that Check forked. */

__attribute__((constructor)) static void remember_main_pid(void)
{
	main_pid = getpid();
}

/* In a new child: die with the thread that forked it; 0 when that already
 * happened. */
static int die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	return getppid() == parent;
}

/* Still a child of this process (running or not yet reaped, so the pid is
 * not reused)? Reaps nothing. Not so when reaped elsewhere, or in a forked
 * Check test for what its parent started. */
static int our_child(pid_t pid)
{
	siginfo_t si;
	return pid > 0 && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* A process group's members other than its leader (chromium under
 * chromedriver) do not die with the test: a guard child waits for the
 * thread that started it to end (PDEATHSIG) and then SIGKILLs the group. */
static pid_t guard_group(pid_t pgid)
{
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0); /* out of reach of Check's killpg of a forked test */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int sig = 0;
		if (getppid() == parent)
			sigwait(&term, &sig);
		kill(-pgid, SIGKILL);
		_exit(0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

static void end_guard(struct tracked *t)
{
	if (our_child(t->guard)) {
		kill(t->guard, SIGKILL); /* not SIGTERM: that kills the group */
		waitpid(t->guard, NULL, 0);
	}
	t->guard = 0;
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < TL_MAX_TRACKED; i++)
		if (tracked[i].pid == pid) {
			end_guard(&tracked[i]);
			tracked[i].pid = 0;
		}
}

void tl_kill_spawned(void)
{
	int saved = errno;
	for (int i = 0; i < TL_MAX_TRACKED; i++) {
		pid_t pid = tracked[i].pid;
		if (our_child(pid)) {
			kill(tracked[i].guard ? -pid : pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		end_guard(&tracked[i]);
		tracked[i].pid = 0;
	}
	errno = saved;
}

void tl_track(pid_t pid, int group)
{
	static int registered;
	if (!registered) {
		atexit(tl_kill_spawned);
		registered = 1;
	}
	/* a forked test dies with the runner, taking what it started along */
	if (getpid() != main_pid && getppid() == main_pid && !die_with_parent(main_pid))
		_exit(1);
	for (int i = 0; i < TL_MAX_TRACKED; i++)
		if (tracked[i].pid <= 0 || tracked[i].pid == pid || !our_child(tracked[i].pid)) {
			if (tracked[i].pid > 0)
				end_guard(&tracked[i]);
			tracked[i].pid = pid;
			tracked[i].guard = group ? guard_group(pid) : 0;
			return;
		}
	ck_abort_msg("more than %d processes running at once", TL_MAX_TRACKED);
}

pid_t tl_spawn(char *const argv[], char *const env_extra[], const char *log_path)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (!die_with_parent(parent))
			_exit(127);
		if (log_path) {
			int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		for (int i = 0; env_extra && env_extra[i]; i++)
			putenv(env_extra[i]);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	tl_track(pid, 0);
	return pid;
}

pid_t tl_sim_spawn(const char *const argv[], int quiet, int *port)
{
	int fds[2];
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (!die_with_parent(parent))
			_exit(127);
		dup2(fds[1], STDOUT_FILENO);
		if (quiet) {
			int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
			if (devnull >= 0)
				dup2(devnull, STDERR_FILENO);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	tl_track(pid, 0);
	close(fds[1]);
	char line[256] = {0};
	size_t len = 0;
	int64_t deadline = now_monotonic_ms() + 10000;
	while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
		struct pollfd p = {fds[0], POLLIN, 0};
		int left = (int)(deadline - now_monotonic_ms());
		ck_assert_msg(left > 0, "ghl-sim did not print its port within 10 s");
		if (poll(&p, 1, left) <= 0)
			continue;
		ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
		ck_assert_msg(r > 0, "ghl-sim exited before listening");
		len += (size_t)r;
	}
	close(fds[0]);
	line[len] = '\0';
	const char *colon = strrchr(line, ':');
	ck_assert_msg(colon && str_has_prefix(line, "ghl-sim listening on http://127.0.0.1:"),
		      "bad first line: %s", line);
	*port = (int)strtol(colon + 1, NULL, 10);
	return pid;
}

int tl_wait_exit(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = now_monotonic_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid) {
			untrack(pid);
			return 0;
		}
		if (now_monotonic_ms() > deadline)
			return -1;
		usleep(10000);
	}
}

void tl_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	untrack(pid);
}

char *tl_log_tail(const char *path, size_t max)
{
	char *text = tl_read_file(path);
	size_t len = strlen(text);
	if (len <= max)
		return text;
	char *tail = xstrdup(text + len - max);
	free(text);
	return tail;
}

/* "exit status 3" / "killed by signal 6 (Aborted)" for a wait status. */
static void describe_status(int st, char *out, size_t n)
{
	if (WIFEXITED(st))
		snprintf(out, n, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(out, n, "wait status %d", st);
}

/* Check keeps about 4 kB of a message: the end of a log is what explains. */
#define TL_TAIL 3000

void tl_stop(pid_t pid, int sig, int timeout_ms, const char *what, const char *log_path)
{
	char how[96];
	int st = 0;
	kill(pid, sig);
	if (tl_wait_exit(pid, timeout_ms, &st) != 0) {
		tl_kill(pid);
		snprintf(how, sizeof how, "did not exit within %d ms of signal %d", timeout_ms,
			 sig);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		return;
	} else {
		describe_status(st, how, sizeof how);
	}
	char *tail = log_path ? tl_log_tail(log_path, TL_TAIL) : xstrdup("");
	fprintf(stderr, "%s (pid %d) %s; the end of its log (%s):\n%s\n", what, (int)pid, how,
		log_path ? log_path : "none", tail);
	ck_abort_msg("%s %s; the end of its log:\n%s", what, how, tail);
}

void tl_wait_ready(const char *base_url, pid_t pid, const char *log_path, int timeout_ms)
{
	char *url = xasprintf("%s/readyz", base_url);
	int64_t deadline = now_monotonic_ms() + timeout_ms;
	long status = 0;
	char *body = NULL;
	char how[96] = "";
	for (;;) {
		free(body);
		body = NULL;
		status = tl_http("GET", url, NULL, NULL, &body);
		if (status == 200)
			break;
		int st;
		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
			untrack(pid);
			describe_status(st, how, sizeof how);
			break;
		}
		if (now_monotonic_ms() > deadline) {
			snprintf(how, sizeof how, "not ready after %d ms", timeout_ms);
			break;
		}
		usleep(50000);
	}
	free(url);
	if (status == 200) {
		free(body);
		return;
	}
	char *tail = log_path ? tl_log_tail(log_path, TL_TAIL) : xstrdup("");
	ck_abort_msg("daemon at %s: %s (last /readyz answer: %ld %s); the end of its log:\n%s",
		     base_url, how, status, body ? body : "", tail);
}

int tl_run(char *const argv[], char *const env_extra[], char **output)
{
	char path[] = "/tmp/ghl-test-run-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	pid_t pid = tl_spawn(argv, env_extra, path);
	int st = 0;
	waitpid(pid, &st, 0);
	untrack(pid);
	char *out = tl_read_file(path);
	unlink(path);
	if (output)
		*output = out;
	else
		free(out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	buf_append(userdata, ptr, size * nmemb);
	return size * nmemb;
}

void tl_request(struct tl_resp *r, const char *method, const char *url, const char *const *headers,
		const char *body, size_t body_len)
{
	memset(r, 0, sizeof(*r));
	CURL *c = curl_easy_init();
	struct buf b, h;
	buf_init(&b);
	buf_init(&h);
	/* small bodies go at once; one over 1 MB waits for the server's answer
	 * to Expect: 100-continue, so that a 413 (sent before the body is read)
	 * is heard instead of racing the server's close */
	struct curl_slist *hl = curl_slist_append(NULL, body_len > 1000000 ? "Expect: 100-continue"
									   : "Expect:");
	for (int i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	/* generous: a sanitized build on a loaded 2-core machine is slow, and
	 * ctest's own timeout still stops a daemon that hangs */
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 240L);
	curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 60000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		char *loc = NULL;
		curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
		if (loc)
			r->location = xstrdup(loc);
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	r->body = buf_take(&b);
	r->headers = buf_take(&h);
}

void tl_resp_free(struct tl_resp *r)
{
	free(r->body);
	free(r->headers);
	free(r->location);
	memset(r, 0, sizeof(*r));
}

long tl_http(const char *method, const char *url, const char *const *headers, const char *req_body,
	     char **body)
{
	struct tl_resp r;
	tl_request(&r, method, url, headers, req_body, req_body ? strlen(req_body) : 0);
	long status = r.status;
	if (body) {
		*body = r.body;
		r.body = NULL;
	}
	tl_resp_free(&r);
	return status;
}

int tl_wait_http(const char *url, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (tl_http("GET", url, NULL, NULL, NULL) > 0)
			return 1;
		usleep(50000);
	}
	return 0;
}

char *tl_read_file(const char *path)
{
	char *text;
	if (file_read_all(path, &text, NULL, NULL))
		return xstrdup("");
	return text;
}

char *tl_write_temp(const char *prefix, const char *text)
{
	char *path = xasprintf("/tmp/%s-XXXXXX", prefix);
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	size_t n = strlen(text);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

int tl_wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
	if (timeout_ms < TL_WAIT_MIN_MS)
		timeout_ms = TL_WAIT_MIN_MS;
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		char *t = tl_read_file(path);
		int found = strstr(t, needle) != NULL;
		free(t);
		if (found)
			return 1;
		usleep(50000);
	}
	return 0;
}

int tl_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tl_kill_spawned(); /* e.g. after a failed unchecked setup */
	drop_template();
	return failed ? 1 : 0;
}

static void (*bench_fn)(void);

START_TEST(bench_test)
{
	bench_fn();
}
END_TEST

int tl_run_bench(const char *name, void (*fn)(void))
{
	bench_fn = fn;
	Suite *s = suite_create(name);
	TCase *tc = tcase_create("bench");
	tcase_set_timeout(tc, 3600);
	tcase_add_test(tc, bench_test);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	int failed = srunner_ntests_failed(sr);
	if (failed) {
		TestResult **r = srunner_failures(sr);
		fprintf(stderr, "%s failed: %s:%d: %s\n", name, tr_lfile(r[0]), tr_lno(r[0]),
			tr_msg(r[0]));
		free(r);
	}
	srunner_free(sr);
	drop_template();
	return failed ? 1 : 0;
}
