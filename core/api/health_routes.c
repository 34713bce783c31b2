/* health_routes.c — GET /healthz (the process answers), GET /readyz (the
 * database answers, no migration is pending and the start-up check of stored
 * tokens is done: the truth for load balancers) and GET /metrics (Prometheus
 * text of this process's counters, from one table). */
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

/* Frees r and its timer; returns its context when it is still unanswered. */
static struct http_ctx *readyz_end(struct readyz *r)
{
	struct http_ctx *c = r->ctx;
	event_free(r->timer);
	free(r);
	return c;
}

static void readyz_checked(void *arg, int ok)
{
	struct http_ctx *c = readyz_end(arg);
	if (!c)
		return;
	if (ok)
		http_reply_json(c, 200, "{\"status\":\"ready\"}");
	else
		http_reply_error(c, 503, "starting", "checking the agencies' stored tokens", NULL);
}

/* A reason not to be ready, answered on c (1), or 0. */
static int not_ready(struct http_ctx *c, struct app *app, PGresult *res, const struct err *e)
{
	if (!res) {
		http_reply_error(c, 503, "database_unavailable", db_why(NULL, e), NULL);
		return 1;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && !strcmp(state, "42P01")) /* undefined_table */
			http_reply_error(c, 503, "migrations_pending",
					 "the database has no schema yet; run `ghl-agent migrate`",
					 NULL);
		else
			http_reply_error(c, 503, "database_error", PQresultErrorMessage(res), NULL);
		return 1;
	}
	size_t pending = migrate_count_pending(&app->migrations, res);
	if (pending) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%zu migration(s) pending; run `ghl-agent migrate`",
			 pending);
		http_reply_error(c, 503, "migrations_pending", msg, NULL);
		return 1;
	}
	return 0;
}

static void readyz_result(void *arg, PGresult *res, const struct err *e)
{
	struct readyz *r = arg;
	if (!r->ctx || not_ready(r->ctx, r->app, res, e)) {
		readyz_end(r);
		return;
	}
	if (r->app->tokens) { /* the schema is there: the check of stored tokens comes last */
		agency_tokens_when_checked(r->app->tokens, readyz_checked, r);
		return;
	}
	readyz_checked(r, 1);
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

/* ---- /metrics ------------------------------------------------------------ */

/* One series of /metrics, named without its ghl_agent_ prefix. The README's
 * list is generated from this table (scripts/metrics-doc --write; ctest
 * docs/metrics compares them): keep each entry's four strings literal.
 * write() prints the samples, or nothing when the process has no such part
 * (no scheduler in role api). */
struct metric {
	const char *name;
	const char *type;  /* gauge | counter */
	const char *label; /* NULL, or "label=value value …" */
	const char *help;
	void (*write)(const struct metric *m, struct app *app, struct buf *b);
};

static void sample(struct buf *b, const struct metric *m, const char *label_value, long long v)
{
	if (label_value) {
		size_t n = strcspn(m->label, "=");
		buf_printf(b, "ghl_agent_%s{%.*s=\"%s\"} %lld\n", m->name, (int)n, m->label,
			   label_value, v);
	} else {
		buf_printf(b, "ghl_agent_%s %lld\n", m->name, v);
	}
}

static void m_up(const struct metric *m, struct app *app, struct buf *b)
{
	(void)app;
	sample(b, m, NULL, 1);
}

static void m_database_up(const struct metric *m, struct app *app, struct buf *b)
{
	sample(b, m, NULL, db_pool_is_up(app->db));
}

static void m_http(const struct metric *m, struct app *app, struct buf *b)
{
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	long long n[5];
	http_server_counts(app->http, n);
	for (int i = 0; i < 5; i++)
		sample(b, m, classes[i], n[i]);
}

static void m_ghl_in_flight(const struct metric *m, struct app *app, struct buf *b)
{
	if (app->ghl)
		sample(b, m, NULL, ghl_client_inflight(app->ghl));
}

static void m_ghl_waiting(const struct metric *m, struct app *app, struct buf *b)
{
	if (app->ghl)
		sample(b, m, NULL, ghl_client_waiting(app->ghl));
}

/* The token module's and the scheduler's counters: 0 when the process has none. */
static int token_stats(struct app *app, struct agency_tokens_stats *ts)
{
	if (app->tokens)
		agency_tokens_get_stats(app->tokens, ts);
	return app->tokens != NULL;
}

static int sched_stats(struct app *app, struct scheduler_stats *st)
{
	if (app->sched)
		scheduler_get_stats(app->sched, st);
	return app->sched != NULL;
}

static void m_token_refreshes(const struct metric *m, struct app *app, struct buf *b)
{
	struct agency_tokens_stats ts;
	if (token_stats(app, &ts))
		sample(b, m, NULL, ts.refreshes);
}

static void m_token_refused(const struct metric *m, struct app *app, struct buf *b)
{
	struct agency_tokens_stats ts;
	if (token_stats(app, &ts))
		sample(b, m, NULL, ts.refused);
}

static void m_jobs(const struct metric *m, struct app *app, struct buf *b)
{
	struct scheduler_stats st;
	if (!sched_stats(app, &st))
		return;
	sample(b, m, "claimed", st.claimed);
	sample(b, m, "completed", st.completed);
	sample(b, m, "failed", st.failed);
	sample(b, m, "cancelled", st.cancelled);
	sample(b, m, "retrying", st.retried);
	sample(b, m, "released", st.released);
	sample(b, m, "parked", st.parked);
	sample(b, m, "lease_lost", st.lost);
}

static void m_jobs_in_flight(const struct metric *m, struct app *app, struct buf *b)
{
	struct scheduler_stats st;
	if (sched_stats(app, &st))
		sample(b, m, NULL, st.in_flight);
}

static void m_journal_batches(const struct metric *m, struct app *app, struct buf *b)
{
	struct scheduler_stats st;
	if (sched_stats(app, &st))
		sample(b, m, NULL, st.journal_batches);
}

static void m_journal_rows(const struct metric *m, struct app *app, struct buf *b)
{
	struct scheduler_stats st;
	if (sched_stats(app, &st))
		sample(b, m, NULL, st.journal_logs);
}

static void m_ghl_retries(const struct metric *m, struct app *app, struct buf *b)
{
	if (app->ghl)
		sample(b, m, NULL, ghl_client_retries(app->ghl));
}

static void db_stats(struct app *app, struct db_pool_stats *ds)
{
	db_pool_get_stats(app->db, ds);
}

static void m_db_waiting(const struct metric *m, struct app *app, struct buf *b)
{
	struct db_pool_stats ds;
	db_stats(app, &ds);
	sample(b, m, NULL, ds.waiting);
}

static void m_db_waits(const struct metric *m, struct app *app, struct buf *b)
{
	struct db_pool_stats ds;
	db_stats(app, &ds);
	sample(b, m, NULL, ds.waited);
}

static void m_db_wait_failures(const struct metric *m, struct app *app, struct buf *b)
{
	struct db_pool_stats ds;
	db_stats(app, &ds);
	sample(b, m, NULL, ds.gave_up);
}

static void m_db_replayed(const struct metric *m, struct app *app, struct buf *b)
{
	struct db_pool_stats ds;
	db_stats(app, &ds);
	sample(b, m, NULL, ds.replayed);
}

static const struct metric metrics[] = {
	{"up", "gauge", NULL, "1 while the process runs.", m_up},
	{"database_up", "gauge", NULL, "1 when a database connection is usable.", m_database_up},
	{"db_waiting", "gauge", NULL, "Queries and requests waiting for a database connection.",
	 m_db_waiting},
	{"db_waits_total", "counter", NULL, "Queries that had to wait for a database connection.",
	 m_db_waits},
	{"db_wait_failures_total", "counter", NULL,
	 "Queries that got no connection (db_wait_timeout passed, or db_wait_queue full).",
	 m_db_wait_failures},
	{"db_replayed_total", "counter", NULL,
	 "Safe queries re-sent after their connection dropped while they ran.", m_db_replayed},
	{"http_responses_total", "counter", "class=1xx 2xx 3xx 4xx 5xx",
	 "HTTP responses by status class.", m_http},
	{"ghl_requests_in_flight", "gauge", NULL, "GHL API requests accepted and not done.",
	 m_ghl_in_flight},
	{"ghl_requests_waiting", "gauge", NULL,
	 "GHL API requests waiting for one of ghl_max_connections (raise it when this stays up).",
	 m_ghl_waiting},
	{"ghl_retries_total", "counter", NULL,
	 "GHL requests sent again by the client after a transient fault.", m_ghl_retries},
	{"token_refreshes_total", "counter", NULL, "Agency token refreshes done.",
	 m_token_refreshes},
	{"token_refresh_refused_total", "counter", NULL,
	 "Refreshes GHL refused (agency needs reconnection).", m_token_refused},
	{"jobs_total", "counter",
	 "outcome=claimed completed failed cancelled retrying released parked lease_lost",
	 "Jobs this process claimed and ended, by the outcome their row got (roles worker and both).",
	 m_jobs},
	{"jobs_in_flight", "gauge", NULL, "Jobs running in this process (roles worker and both).",
	 m_jobs_in_flight},
	{"journal_batches_total", "counter", NULL,
	 "Journal statements committed (roles worker and both).", m_journal_batches},
	{"journal_rows_total", "counter", NULL, "Step log rows written (roles worker and both).",
	 m_journal_rows},
};

/* Prometheus text exposition of this process's counters. */
static void h_metrics(struct http_ctx *c)
{
	struct buf b, samples;
	buf_init(&b);
	buf_init(&samples);
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
		const struct metric *m = &metrics[i];
		buf_reset(&samples);
		m->write(m, c->app, &samples);
		if (samples.len)
			buf_printf(&b, "# HELP ghl_agent_%s %s\n# TYPE ghl_agent_%s %s\n%s",
				   m->name, m->help, m->name, m->type, buf_cstr(&samples));
	}
	http_reply(c, 200, "text/plain; version=0.0.4", b.data, b.len);
	buf_clear(&samples);
	buf_clear(&b);
}

static const struct http_route health_routes[] = {
	{"GET", "/healthz", h_healthz},
	{"GET", "/readyz", h_readyz},
	{"GET", "/metrics", h_metrics},
};

const struct route_table health_route_table = {health_routes,
					       sizeof(health_routes) / sizeof(health_routes[0])};
