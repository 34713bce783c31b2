/* chaos_env.c — the chaos suite's processes; see chaos.h. */
#include "chaos.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

#define READY_WAIT_MS 60000

static const char *pg_bin(void)
{
	const char *b = getenv("CHAOS_PG_BIN");
	return b && *b ? b : "/usr/lib/postgresql/15/bin";
}

/* The postgres OS account when we are root (initdb and postgres refuse root). */
static const struct passwd *pg_account(void)
{
	if (geteuid() != 0)
		return NULL;
	const struct passwd *pw = getpwnam("postgres");
	ck_assert_msg(pw != NULL, "running as root, but there is no postgres OS user to run "
				  "PostgreSQL as");
	return pw;
}

/* fork + exec of a PostgreSQL program with stdout and stderr appended to log,
 * as the postgres OS user when root; deathsig is sent to it when this process
 * dies, and tl_kill_spawned knows it. (tl_spawn cannot switch users.) */
static pid_t pg_spawn(char *const argv[], const char *log, int deathsig)
{
	const struct passwd *as = pg_account();
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid > 0) {
		tl_track(pid, 0);
		return pid;
	}
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (as && (setgroups(0, NULL) != 0 || setgid(as->pw_gid) != 0 || setuid(as->pw_uid) != 0))
		_exit(126);
	/* after setuid: a change of credentials clears the parent-death signal */
	prctl(PR_SET_PDEATHSIG, deathsig);
	if (getppid() != parent)
		_exit(127);
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* ---- PostgreSQL ---- */

void chaos_pg_init(struct chaos_pg *pg, const char *dir, const char *name)
{
	char *clusters = xasprintf("%s/clusters", dir);
	ck_assert_msg(mkdir(clusters, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", clusters,
		      strerror(errno));
	free(clusters);
	snprintf(pg->data, sizeof pg->data, "%s/clusters/%s", dir, name);
	snprintf(pg->log, sizeof pg->log, "%s/%s-postgresql.log", dir, name);
	char *version = xasprintf("%s/PG_VERSION", pg->data);
	int exists = access(version, F_OK) == 0;
	free(version);
	if (exists)
		return;
	const struct passwd *as = pg_account();
	ck_assert_msg(mkdir(pg->data, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", pg->data,
		      strerror(errno));
	if (as)
		ck_assert_msg(chown(pg->data, as->pw_uid, as->pw_gid) == 0, "chown %s: %s",
			      pg->data, strerror(errno));
	char *initdb = xasprintf("%s/initdb", pg_bin());
	ck_assert_msg(access(initdb, X_OK) == 0,
		      "%s not found: install postgresql-15 or set "
		      "CHAOS_PG_BIN to its bin folder",
		      initdb);
	char *argv[] = {initdb,
			(char *)"-D",
			pg->data,
			(char *)"-U",
			(char *)"postgres",
			(char *)"--auth=trust",
			(char *)"-E",
			(char *)"UTF8",
			(char *)"--locale=C.UTF-8",
			(char *)"--no-sync",
			NULL};
	char *log = xasprintf("%s/%s-initdb.log", dir, name);
	pid_t pid = pg_spawn(argv, log, SIGKILL);
	int st = 0;
	ck_assert_msg(tl_wait_exit(pid, 120000, &st) == 0, "initdb did not finish in 120 s");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char *t = tl_log_tail(log, 2000);
		ck_abort_msg("initdb failed:\n%s", t);
	}
	free(log);
	free(initdb);
}

void chaos_pg_start(struct chaos_pg *pg)
{
	if (!pg->port)
		pg->port = tl_free_port();
	char *postgres = xasprintf("%s/postgres", pg_bin());
	char port[16];
	snprintf(port, sizeof port, "%d", pg->port);
	/* fsync off: only processes crash here, never the machine, and the OS keeps
	 * what was written; synchronous_commit stays on, so a commit the agent saw
	 * is in the WAL when the postmaster is killed */
	char *argv[] = {postgres,
			(char *)"-D",
			pg->data,
			(char *)"-p",
			port,
			(char *)"-k",
			pg->data,
			(char *)"-c",
			(char *)"listen_addresses=127.0.0.1",
			(char *)"-c",
			(char *)"fsync=off",
			(char *)"-c",
			(char *)"full_page_writes=off",
			(char *)"-c",
			(char *)"max_connections=200",
			NULL};
	pg->pid = pg_spawn(argv, pg->log, SIGQUIT);
	free(postgres);
	char *dsn = xasprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres "
			      "connect_timeout=5",
			      pg->port);
	int64_t until = now_monotonic_ms() + READY_WAIT_MS;
	while (PQping(dsn) != PQPING_OK) {
		int st;
		if (waitpid(pg->pid, &st, WNOHANG) == pg->pid) {
			pg->pid = 0;
			char *t = tl_log_tail(pg->log, 2000);
			ck_abort_msg("PostgreSQL exited at start:\n%s", t);
		}
		if (now_monotonic_ms() > until) {
			char *t = tl_log_tail(pg->log, 2000);
			ck_abort_msg("PostgreSQL did not accept connections within %d s:\n%s",
				     READY_WAIT_MS / 1000, t);
		}
		usleep(50000);
	}
	free(dsn);
}

void chaos_pg_crash(struct chaos_pg *pg)
{
	kill(pg->pid, SIGQUIT);
	int st;
	if (tl_wait_exit(pg->pid, 60000, &st) != 0) {
		tl_kill(pg->pid);
		pg->pid = 0;
		ck_abort_msg("PostgreSQL did not stop within 60 s of SIGQUIT (immediate shutdown)");
	}
	pg->pid = 0;
}

void chaos_pg_stop(struct chaos_pg *pg)
{
	if (pg->pid)
		tl_stop(pg->pid, SIGINT, 60000, "PostgreSQL (fast shutdown)", pg->log);
	pg->pid = 0;
}

/* ---- the agents ---- */

void chaos_agent_start(struct chaos *c, struct chaos_agent *a)
{
	if (!a->port) {
		a->port = tl_free_port();
		snprintf(a->base, sizeof a->base, "http://127.0.0.1:%d", a->port);
		snprintf(a->log, sizeof a->log, "%s/%s-%s.log", c->dir, c->name,
			 !strcmp(a->role, "both") ? "api" : "worker");
	}
	char *env[48];
	int n = 0;
	env[n++] = xasprintf("DATABASE_URL=%s", c->dsn);
	env[n++] = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", a->port);
	env[n++] = xasprintf("GHL_AGENT_ROLES=%s", a->role);
	env[n++] = xasprintf("GHL_AGENT_GHL_API_BASE=%s", c->sim.base);
	env[n++] = xasprintf("GHL_AGENT_GHL_OAUTH_AUTHORIZE_URL=%s/oauth/chooselocation",
			     c->sim.base);
	env[n++] = xasprintf("GHL_AGENT_GHL_REDIRECT_URL=%s/oauth/callback", c->api.base);
	static const char *const defaults[] = {
		"GHL_AGENT_GHL_CLIENT_ID=" H_CLIENT_ID,
		"GHL_AGENT_GHL_CLIENT_SECRET=" H_CLIENT_SECRET,
		"GHL_AGENT_TOKEN_KEYS=" H_KEY7,
		"GHL_AGENT_OAUTH_STATE_SECRET=" H_STATE_SECRET,
		"GHL_AGENT_GHL_TIMEOUT=3s",
		"GHL_AGENT_SHUTDOWN_TIMEOUT=10s",
		"GHL_AGENT_LOG_FORMAT=text",
		"GHL_AGENT_LOG_LEVEL=info",
	};
	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
		env[n++] = xstrdup(defaults[i]);
	for (int i = 0; c->env && c->env[i] && n < 47; i++)
		env[n++] = xstrdup(c->env[i]);
	env[n] = NULL;
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	a->pid = tl_spawn(argv, env, a->log);
	for (int i = 0; i < n; i++)
		free(env[i]);
	tl_wait_ready(a->base, a->pid, a->log, READY_WAIT_MS);
	if (a == &c->api) {
		c->h.pid = a->pid;
		c->h.port = a->port;
		snprintf(c->h.base, sizeof c->h.base, "%s", a->base);
	}
}

void chaos_agent_kill(struct chaos_agent *a)
{
	tl_kill(a->pid);
	a->pid = 0;
}

/* SIGTERM; a clean exit (status 0, so under ASan no leak) is asserted. */
static void agent_stop(struct chaos_agent *a)
{
	if (!a->pid)
		return;
	char what[48];
	snprintf(what, sizeof what, "ghl-agent serve (roles=%s)", a->role);
	tl_stop(a->pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, what, a->log);
	a->pid = 0;
}

/* ---- reporting ---- */

void chaos_event(struct chaos *c, const char *fmt, ...)
{
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	c->last_event = now_monotonic_ms();
	double at = c->t0 ? (c->last_event - c->t0) / 1000.0 : 0.0;
	if (c->nevents < (int)(sizeof c->events / sizeof c->events[0]))
		snprintf(c->events[c->nevents++], sizeof c->events[0], "+%.1fs %s", at, what);
	printf("  [%s +%5.1fs] %s\n", c->name, at, what);
	fflush(stdout);
}

void chaos_fail(struct chaos *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const struct chaos_agent *agents[] = {&c->api, &c->worker};
	for (int i = 0; i < 2; i++) {
		if (!agents[i]->log[0])
			continue;
		char *t = tl_log_tail(agents[i]->log, 3000);
		fprintf(stderr, "---- tail of %s\n%s\n", agents[i]->log, t);
		free(t);
	}
	ck_abort_msg("%s: %s (logs: %s)", c->name, msg, c->dir);
}

/* ---- set-up ---- */

static char *api_url(struct chaos *c, const char *path)
{
	return xasprintf("%s/api/v1%s", c->api.base, path);
}

/* An admin call on the API process; asserts the status and returns the body. */
static char *admin_call(struct chaos *c, const char *method, const char *path, const char *body,
			long want)
{
	char *url = api_url(c, path);
	char *auth = hagent_admin_header(&c->h);
	const char *h[] = {auth, "Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http(method, url, h, body, &out);
	if (st != want)
		chaos_fail(c, "%s %s: %ld %s", method, path, st, out ? out : "");
	free(auth);
	free(url);
	return out;
}

static void connect_agency(struct chaos *c, const char *settings_json)
{
	char *id = hconnect_agency(&c->h, c->db, CHAOS_COMPANY);
	snprintf(c->agency, sizeof c->agency, "%s", id);
	free(id);
	char *path = xasprintf("/agencies/%s", c->agency);
	char *body = xasprintf("{\"settings\": %s}", settings_json);
	free(admin_call(c, "PATCH", path, body, 200));
	free(body);
	free(path);
	path = xasprintf("/agencies/%s/snapshots/sync", c->agency);
	free(admin_call(c, "POST", path, NULL, 200));
	free(path);
	char *snap = tl_sqlf(c->db,
			     "SELECT id FROM snapshots WHERE agency_id = '%s' AND "
			     "ghl_snapshot_id = 'snap-dental-001'",
			     c->agency);
	ck_assert_msg(*snap, "snapshot snap-dental-001 not synced");
	snprintf(c->snapshot, sizeof c->snapshot, "%s", snap);
	free(snap);
	path = xasprintf("/agencies/%s/api-keys", c->agency);
	char *out = admin_call(c, "POST", path, "{\"name\":\"chaos\"}", 201);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j && json_get_str(j, "key"), "api key answer: %s", out);
	snprintf(c->key, sizeof c->key, "%s", json_get_str(j, "key"));
	json_free(j);
	free(out);
	free(path);
}

void chaos_up(struct chaos *c, const char *name, const char *settings_json)
{
	c->name = name;
	chaos_pg_init(&c->pg, c->dir, name);
	chaos_pg_start(&c->pg);
	char *admin = xasprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", c->pg.port);
	PGconn *a = tl_connect(admin);
	tl_execf(a, "CREATE DATABASE chaos_%s", name);
	PQfinish(a);
	free(admin);
	c->dsn = xasprintf("host=127.0.0.1 port=%d user=postgres dbname=chaos_%s "
			   "connect_timeout=5",
			   c->pg.port, name);
	hmigrate(c->dsn);
	c->db = tl_connect(c->dsn);
	snprintf(c->h.dsn, sizeof c->h.dsn, "%s", c->dsn);
	/* GHL's rate limit is off: the suite is about crashes and faults, and one
	 * agency at 100 calls per 10 s would take an hour for 1,000 jobs */
	const char *flags[] = {"--rate-limit", "0", "--snapshot-delay-ms", "500", NULL};
	hsim_start(&c->sim, flags);
	c->api.role = "both";
	c->worker.role = "worker";
	chaos_agent_start(c, &c->api);
	chaos_agent_start(c, &c->worker);
	connect_agency(c, settings_json);
}

void chaos_down(struct chaos *c)
{
	agent_stop(&c->api);
	agent_stop(&c->worker);
	hsim_stop(&c->sim);
	if (c->db)
		PQfinish(c->db);
	c->db = NULL;
	chaos_pg_stop(&c->pg);
	free(c->dsn);
	c->dsn = NULL;
}
