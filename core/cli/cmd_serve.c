/* cmd_serve.c — the daemon: HTTP, database, signals and reload on one loop. */
#include "cmd_serve.h"

#include <event2/event.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "agency_tokens.h"
#include "archive.h"
#include "db.h"
#include "event_delivery.h"
#include "tasks.h"
#include "ghl_client.h"
#include "ghl_side.h"
#include "registry.h"
#include "step_loader.h"
#include "scheduler.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "migrate.h"
#include "reconcile.h"

struct signals {
	struct event *ev_term, *ev_int, *ev_hup, *ev_deadline;
	int sched_stopped;
	int exiting;
};

static struct signals sigs;
static struct archiver *archiver;
static struct event_delivery *events; /* outbound events (worker/both) */
static struct reconciler *reconciler; /* periodic reconciliation (worker/both) */
static struct task_check *task_check; /* overdue tasks, parked jobs (worker/both) */

/* ---- signals ----------------------------------------------------------- */

/* Exit once no request is in flight and the scheduler has released its jobs. */
static void maybe_exit(struct app *app)
{
	if (app->stopping && !sigs.exiting && http_server_inflight(app->http) == 0 &&
	    (!app->sched || sigs.sched_stopped)) {
		sigs.exiting = 1;
		log_info("all work finished; exiting", NULL);
		event_base_loopbreak(app->base);
	}
}

static void on_idle(void *arg)
{
	maybe_exit(arg);
}

static void on_sched_stopped(void *arg)
{
	sigs.sched_stopped = 1;
	maybe_exit(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct app *app = arg;
	char n[16];
	snprintf(n, sizeof(n), "%d", http_server_inflight(app->http));
	log_warn("shutdown_timeout reached; exiting with requests in flight", "in_flight", n, NULL);
	event_base_loopbreak(app->base);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct app *app = arg;
	if (app->stopping)
		return;
	app->stopping = 1;
	log_info("shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
	http_server_stop_accepting(app->http);
	long long ms = app->cfg->shutdown_timeout_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	sigs.ev_deadline = evtimer_new(app->base, on_deadline, app);
	/* a little after the scheduler's own deadline, which releases jobs */
	tv.tv_usec += 500000;
	if (tv.tv_usec >= 1000000) {
		tv.tv_sec++;
		tv.tv_usec -= 1000000;
	}
	evtimer_add(sigs.ev_deadline, &tv);
	if (app->sched)
		scheduler_stop(app->sched, ms, on_sched_stopped, app);
	maybe_exit(app);
}

static void apply_logging(const struct config *cfg)
{
	enum log_level lvl = LOG_INFO;
	enum log_format fmt = LOG_FORMAT_JSON;
	log_level_parse(cfg->log_level, &lvl);
	log_format_parse(cfg->log_format, &fmt);
	log_configure(lvl, fmt);
}

static void apply_db_wait(struct app *app)
{
	db_pool_set_wait(app->db, app->cfg->db_wait_timeout_ms, (int)app->cfg->db_wait_queue);
}

/* config_diff: a key that needs a restart is logged, one line each; the
 * others are collected for the "configuration reloaded" line. */
static void on_changed_key(void *arg, const char *key, int restart)
{
	struct buf *applied = arg;
	if (restart) {
		char msg[160];
		snprintf(msg, sizeof(msg), "`%s` changed; it takes effect after a restart", key);
		log_warn(msg, "key", key, NULL);
		return;
	}
	if (applied->len)
		buf_putc(applied, ',');
	buf_puts(applied, key);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct app *app = arg;
	struct err e;
	struct config *next = config_load(app->cfg->path, &e);
	/* Steps (plugins and Lua scripts) reload either way, runs in flight keeping
	 * their version; first, so that the new default_pipeline may name a new one */
	step_loader_reload_all(app->steps, next ? next : app->cfg);
	if (next && app->sched && scheduler_reload(app->sched, next, &e)) {
		config_free(next);
		next = NULL;
		step_loader_reload_all(app->steps, app->cfg);
	}
	if (!next) {
		log_error("config reload failed; keeping the running configuration", "error", e.msg,
			  NULL);
		return;
	}
	struct buf applied;
	buf_init(&applied);
	config_diff(app->cfg, next, on_changed_key, &applied);
	config_free(app->cfg);
	app->cfg = next;
	apply_logging(app->cfg);
	apply_db_wait(app);
	log_info("configuration reloaded", "file", app->cfg->path ? app->cfg->path : "none",
		 "applied", buf_cstr(&applied), NULL);
	buf_clear(&applied);
}

/* ---- main -------------------------------------------------------------- */

int server_run(struct config *cfg)
{
	struct app app;
	struct err e;
	int rc = 1;
	struct http_route *routes = NULL;
	size_t nroutes = 0;
	memset(&app, 0, sizeof(app));
	app.cfg = cfg;
	apply_logging(cfg);
	signal(SIGPIPE, SIG_IGN);
	/* thousands of jobs in flight hold thousands of GHL connections */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (migrate_load(cfg, &app.migrations, &e)) {
		log_error("cannot read migrations", "error", e.msg, NULL);
		config_free(cfg);
		return 1;
	}

	char *host = NULL;
	int port = 0;
	if (config_parse_listen(cfg->listen, &host, &port, &e)) {
		log_error("bad listen address", "error", e.msg, NULL);
		goto out_free;
	}
	app.base = event_base_new();
	routes = routes_all(&nroutes);
	if (str_eq(cfg->roles, "worker")) {
		/* a worker answers only the operational routes; the API lives elsewhere */
		size_t k = 0;
		for (size_t i = 0; i < nroutes; i++)
			if (!strcmp(routes[i].pattern, "/healthz") ||
			    !strcmp(routes[i].pattern, "/readyz") ||
			    !strcmp(routes[i].pattern, "/metrics"))
				routes[k++] = routes[i];
		nroutes = k;
	}
	struct http_limits hlim = {.max_body = (size_t)cfg->max_body_bytes,
				   .max_large_body = (size_t)cfg->max_batch_body_bytes,
				   .max_connections = (int)cfg->max_connections};
	hlim.rules = routes_body_rules(&hlim.nrules);
	app.http = http_server_new(app.base, &app, routes, nroutes, &hlim);
	http_server_on_idle(app.http, on_idle, &app);
	if (http_server_listen(app.http, host, port, &e)) {
		log_error("cannot start the HTTP server", "error", e.msg, NULL);
		goto out_free;
	}
	db_set_prepared_statements(str_eq(cfg->db_prepared_statements, "on"));
	app.db = db_pool_new(app.base, cfg->database_url, (int)cfg->db_pool_size,
			     cfg->db_reconnect_max_ms);
	apply_db_wait(&app);
	if (api_start(&app, &e)) {
		log_error("cannot start the API", "error", e.msg, NULL);
		goto out_free;
	}
	if (ghl_setup(&app, &e)) {
		log_error("cannot start", "error", e.msg, NULL);
		goto out_free;
	}
	app.steps = step_registry_new();
	step_loader_load_all(app.steps, cfg);
	/* PATCH /agencies/{id} checks pipelines against the registry */
	((struct api_state *)app.api)->validate_settings = api_settings_validate_pipeline;
	((struct api_state *)app.api)->validate_settings_arg = &app;
	if (!str_eq(cfg->roles, "api")) {
		app.sched = scheduler_new(&app, &e);
		if (!app.sched) {
			log_error("cannot start the scheduler", "error", e.msg, NULL);
			goto out_free;
		}
		scheduler_start(app.sched);
		archiver = archiver_start(&app);
		events = event_delivery_start(&app);
		reconciler = reconciler_new(&app);
		reconciler_start(reconciler);
		task_check = task_check_start(&app);
	}
	sigs.ev_term = evsignal_new(app.base, SIGTERM, on_stop, &app);
	sigs.ev_int = evsignal_new(app.base, SIGINT, on_stop, &app);
	sigs.ev_hup = evsignal_new(app.base, SIGHUP, on_hup, &app);
	event_add(sigs.ev_term, NULL);
	event_add(sigs.ev_int, NULL);
	event_add(sigs.ev_hup, NULL);

	char url[300], portstr[16];
	snprintf(url, sizeof(url), "http://%s:%d/", host, http_server_port(app.http));
	snprintf(portstr, sizeof(portstr), "%d", http_server_port(app.http));
	log_info("ghl-agent listening", "url", url, "port", portstr, "version", GHL_VERSION, NULL);

	event_base_dispatch(app.base);
	log_info("stopped", NULL);
	rc = 0;
out_free:
	free(host);
	if (sigs.ev_term)
		event_free(sigs.ev_term);
	if (sigs.ev_int)
		event_free(sigs.ev_int);
	if (sigs.ev_hup)
		event_free(sigs.ev_hup);
	if (sigs.ev_deadline)
		event_free(sigs.ev_deadline);
	events = event_delivery_free(events);
	task_check = task_check_free(task_check);
	scheduler_free(app.sched);
	ghl_teardown(&app);
	step_registry_free(app.steps);
	api_stop(&app);
	db_pool_free(app.db);
	archiver = archiver_free(archiver);
	reconciler = reconciler_free(reconciler); /* after the pool and the GHL client */
	http_server_free(app.http);
	free(routes);
	if (app.base)
		event_base_free(app.base);
	migrate_set_clear(&app.migrations);
	config_free(app.cfg);
	return rc;
}
