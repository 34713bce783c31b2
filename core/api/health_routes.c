/* health_routes.c — GET /healthz (the process answers), GET /readyz (the
 * database answers and no migration is pending: the truth for load
 * balancers) and GET /metrics (Prometheus text of this process's counters). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agency_tokens.h"
#include "app.h"
#include "db.h"
#include "ghl_client.h"
#include "http.h"
#include "migrate.h"
#include "scheduler.h"

#define READYZ_TIMEOUT_MS 3000

/* ---- handlers ---------------------------------------------------------- */

static void h_healthz(struct http_ctx *c)
{
	http_reply_json(c, 200, "{\"status\":\"ok\"}");
}

struct readyz {
	struct http_ctx *ctx; /* NULL once answered by the timeout */
	struct app *app;
	struct event *timer;
};

static void readyz_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct readyz *r = arg;
	http_reply_error(r->ctx, 503, "database_timeout",
			 "the database did not answer the readiness query within 3 s", NULL);
	r->ctx = NULL;
}

static void readyz_result(void *arg, PGresult *res, const char *errmsg)
{
	struct readyz *r = arg;
	struct http_ctx *c = r->ctx;
	event_free(r->timer);
	struct app *app = r->app;
	free(r);
	if (!c)
		return;
	if (!res) {
		http_reply_error(c, 503, "database_unavailable", errmsg, NULL);
		return;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && !strcmp(state, "42P01")) /* undefined_table */
			http_reply_error(c, 503, "migrations_pending",
					 "the database has no schema yet; run `ghl-agent migrate`",
					 NULL);
		else
			http_reply_error(c, 503, "database_error", PQresultErrorMessage(res), NULL);
		return;
	}
	size_t pending = migrate_count_pending(&app->migrations, res);
	if (pending) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%zu migration(s) pending; run `ghl-agent migrate`",
			 pending);
		http_reply_error(c, 503, "migrations_pending", msg, NULL);
		return;
	}
	http_reply_json(c, 200, "{\"status\":\"ready\"}");
}

static void h_readyz(struct http_ctx *c)
{
	struct app *app = c->app;
	if (app->stopping) {
		http_reply_error(c, 503, "shutting_down", "the agent is shutting down", NULL);
		return;
	}
	if (!db_pool_is_up(app->db)) {
		http_reply_error(c, 503, "database_unavailable", db_pool_reason(app->db), NULL);
		return;
	}
	struct readyz *r = xcalloc(1, sizeof(*r));
	r->ctx = c;
	r->app = app;
	r->timer = evtimer_new(app->base, readyz_timeout, r);
	struct timeval tv = {READYZ_TIMEOUT_MS / 1000, (READYZ_TIMEOUT_MS % 1000) * 1000};
	evtimer_add(r->timer, &tv);
	/* the truth for load balancers: never waits for a connection */
	db_pool_query_flags(app->db, DB_NOWAIT, migrate_applied_sql, 0, NULL, readyz_result, r);
}

/* Prometheus text exposition of this process's counters. */
static void h_metrics(struct http_ctx *c)
{
	struct app *app = c->app;
	struct buf b;
	buf_init(&b);
#define METRIC(name, type, help, fmt, ...)                                                  \
	buf_printf(&b, "# HELP ghl_agent_" name " " help "\n# TYPE ghl_agent_" name " " type    \
		       "\n" fmt "\n", __VA_ARGS__)
	METRIC("up", "gauge", "1 while the process runs.", "ghl_agent_up %d", 1);
	METRIC("database_up", "gauge", "1 when a database connection is usable.",
	       "ghl_agent_database_up %d", db_pool_is_up(app->db));
	struct db_pool_stats ds;
	db_pool_get_stats(app->db, &ds);
	METRIC("db_waiting", "gauge", "Queries and requests waiting for a database connection.",
	       "ghl_agent_db_waiting %d", ds.waiting);
	METRIC("db_waits_total", "counter", "Queries that had to wait for a database connection.",
	       "ghl_agent_db_waits_total %lld", ds.waited);
	METRIC("db_wait_failures_total", "counter",
	       "Queries that got no connection (db_wait_timeout passed, or db_wait_queue full).",
	       "ghl_agent_db_wait_failures_total %lld", ds.gave_up);
	METRIC("db_replayed_total", "counter",
	       "Safe queries re-sent after their connection dropped while they ran.",
	       "ghl_agent_db_replayed_total %lld", ds.replayed);
	long long http[5];
	http_server_counts(app->http, http);
	buf_puts(&b, "# HELP ghl_agent_http_responses_total HTTP responses by status class.\n"
		     "# TYPE ghl_agent_http_responses_total counter\n");
	for (int i = 0; i < 5; i++)
		buf_printf(&b, "ghl_agent_http_responses_total{class=\"%dxx\"} %lld\n", i + 1,
			   http[i]);
	if (app->ghl)
		METRIC("ghl_requests_in_flight", "gauge", "GHL API requests accepted and not done.",
		       "ghl_agent_ghl_requests_in_flight %d", ghl_client_inflight(app->ghl));
	if (app->ghl)
		METRIC("ghl_retries_total", "counter",
		       "GHL requests sent again by the client after a transient fault.",
		       "ghl_agent_ghl_retries_total %lld", ghl_client_retries(app->ghl));
	if (app->tokens) {
		struct agency_tokens_stats ts;
		agency_tokens_get_stats(app->tokens, &ts);
		METRIC("token_refreshes_total", "counter", "Agency token refreshes done.",
		       "ghl_agent_token_refreshes_total %lld", ts.refreshes);
		METRIC("token_refresh_refused_total", "counter",
		       "Refreshes GHL refused (agency needs reconnection).",
		       "ghl_agent_token_refresh_refused_total %lld", ts.refused);
	}
	if (app->sched) {
		struct scheduler_stats st;
		scheduler_get_stats(app->sched, &st);
		buf_puts(&b, "# HELP ghl_agent_jobs_total Jobs this process ended, by outcome.\n"
			     "# TYPE ghl_agent_jobs_total counter\n");
		buf_printf(&b, "ghl_agent_jobs_total{outcome=\"claimed\"} %lld\n", st.claimed);
		buf_printf(&b, "ghl_agent_jobs_total{outcome=\"completed\"} %lld\n", st.completed);
		buf_printf(&b, "ghl_agent_jobs_total{outcome=\"failed\"} %lld\n", st.failed);
		buf_printf(&b, "ghl_agent_jobs_total{outcome=\"retrying\"} %lld\n", st.retried);
		buf_printf(&b, "ghl_agent_jobs_total{outcome=\"released\"} %lld\n", st.released);
		buf_printf(&b, "ghl_agent_jobs_total{outcome=\"lease_lost\"} %lld\n", st.lost);
		METRIC("jobs_in_flight", "gauge", "Jobs running in this process.",
		       "ghl_agent_jobs_in_flight %d", st.in_flight);
		METRIC("journal_batches_total", "counter", "Journal statements committed.",
		       "ghl_agent_journal_batches_total %lld", st.journal_batches);
		METRIC("journal_rows_total", "counter", "Step log rows written.",
		       "ghl_agent_journal_rows_total %lld", st.journal_logs);
	}
#undef METRIC
	http_reply(c, 200, "text/plain; version=0.0.4", b.data, b.len);
	buf_free(&b);
}

static const struct http_route health_routes[] = {
	{"GET", "/healthz", h_healthz},
	{"GET", "/readyz", h_readyz},
	{"GET", "/metrics", h_metrics},
};

const struct route_table health_route_table = {health_routes,
					       sizeof(health_routes) / sizeof(health_routes[0])};
