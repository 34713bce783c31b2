/* scheduler.c — claims, leases, wake-ups, retries, shutdown; see scheduler.h. */
#include "scheduler.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "crypto.h"
#include "db.h"
#include "job_inflight.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "registry.h"
#include "runner.h"

struct scheduler {
	struct app *app;
	struct runner_env env;
	struct journal *journal;
	struct db_async *listen;
	char owner[96];
	struct job *head; /* running jobs */
	int in_flight, peak;
	uint64_t claim_seq;
	int claiming, claim_again, started, stopping;
	long long claim_room; /* the outstanding claim's batch size */
	int full;	      /* a claim found no room: claim when a job ends */
	struct event *ev_poll, *ev_renew, *ev_claim, *ev_deadline;
	void (*stop_cb)(void *);
	void *stop_arg;
	int stop_reported;
	int outstanding; /* pool queries whose callback has not run yet */
	int dead;	 /* scheduler_free ran: free on the last callback */
	struct scheduler_stats st;
};

static void scheduler_release(struct scheduler *s);

/* ---- job bookkeeping ------------------------------------------------------ */

static void job_free(struct job *job)
{
	job_clear(job);
	free(job);
}

static void claim_soon(struct scheduler *s);
static void maybe_stopped(struct scheduler *s);

/* The runner's env->job_ended: the job is over for this process; free it. */
static void job_ended(void *arg, struct job *job, const char *outcome)
{
	struct scheduler *s = arg;
	if (job->prev)
		job->prev->next = job->next;
	else
		s->head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	s->in_flight--;
	if (!strcmp(outcome, "COMPLETED"))
		s->st.completed++;
	else if (!strcmp(outcome, "FAILED"))
		s->st.failed++;
	else if (!strcmp(outcome, "CANCELLED"))
		s->st.cancelled++;
	else if (!strcmp(outcome, "RETRYING"))
		s->st.retried++;
	else if (!strcmp(outcome, "LOST"))
		s->st.lost++;
	else if (!strcmp(outcome, "PARKED"))
		s->st.parked++;
	else
		s->st.released++;
	job_free(job);
	if (s->stopping) {
		maybe_stopped(s);
	} else if (s->full) {
		/* only the process-wide room was short; an agency's room comes
		 * back when the journal has dropped the lease (on_released) */
		s->full = 0;
		claim_soon(s);
	}
}

/* ---- claiming ------------------------------------------------------------- */

static struct json *parse_or_null(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	const char *v = PQgetvalue(r, row, col);
	struct err e;
	return json_parse(v, strlen(v), JSON_DEFAULT_MAX_DEPTH, &e);
}

/* The job row's side of a claim (IN_PROGRESS, owner, attempt, started_at),
 * queued before the job runs: a job that ends within the same batch is
 * written once, its end merged over this. */
static void claim_journal(struct scheduler *s, const struct job *job, const char *claimed_at)
{
	struct job_write w = {.status = "IN_PROGRESS",
			      .retry_count = -1,
			      .run_at_delay_ms = -1,
			      .attempt = job->attempt,
			      .started_at = claimed_at};
	journal_job(s->journal, job->id, &w, NULL, NULL);
}

static void on_claimed(void *arg, PGresult *res, const struct err *e)
{
	struct scheduler *s = arg;
	s->claiming = 0;
	if (--s->outstanding == 0 && s->dead) {
		scheduler_release(s);
		return;
	}
	if (s->dead)
		return;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *why = db_why(res, e);
		log_warn("claiming jobs failed", "error", why ? why : "?", NULL);
		return; /* the poll timer tries again */
	}
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		struct job *job = xcalloc(1, sizeof(*job));
		job->sched = s;
		job->env = &s->env;
		job->claim_seq = ++s->claim_seq;
		job->id = xstrdup(PQgetvalue(res, i, 0));
		job->agency_id = xstrdup(PQgetvalue(res, i, 1));
		job->company_id = xstrdup(PQgetvalue(res, i, 2));
		job->client = parse_or_null(res, i, 3);
		job->context = parse_or_null(res, i, 4);
		if (!job->client)
			job->client = json_new_object();
		if (!job->context || job->context->type != JSON_OBJECT) {
			json_free(job->context);
			job->context = json_new_object();
		}
		long long v = 0;
		str_to_ll(PQgetvalue(res, i, 5), 0, 1 << 30, &v);
		job->retry_count = (int)v;
		str_to_ll(PQgetvalue(res, i, 6), 0, 1 << 30, &v);
		job->attempt = (int)v;
		if (!PQgetisnull(res, i, 7))
			job->location_id = xstrdup(PQgetvalue(res, i, 7));
		job->settings = parse_or_null(res, i, 8);
		job->snapshot = parse_or_null(res, i, 9);
		job->cancel = !strcmp(PQgetvalue(res, i, 10), "t");
		claim_journal(s, job, PQgetvalue(res, i, 11));
		job->next = s->head;
		if (s->head)
			s->head->prev = job;
		s->head = job;
		s->in_flight++;
		s->st.claimed++;
	}
	if (s->in_flight > s->peak)
		s->peak = s->in_flight;
	/* start them after the list is complete (a job may end at once) */
	struct job *todo[4096];
	int k = 0;
	for (struct job *j = s->head; j && k < n && k < 4096; j = j->next)
		if (j->claim_seq > s->claim_seq - (uint64_t)n)
			todo[k++] = j;
	for (int i = 0; i < k; i++)
		runner_run(&s->env, todo[i]);
	/* a claim that got fewer jobs than it asked for saw every runnable one
	 * it had room for; a job inserted since then notifies (claim_again) */
	if (n >= s->claim_room || s->claim_again) {
		s->claim_again = 0;
		claim_soon(s);
	}
}

static void claim_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct scheduler *s = arg;
	const struct config *cfg = s->app->cfg;
	if (s->stopping || !s->started || !db_pool_is_up(s->app->db))
		return; /* the poll timer or the LISTEN (re)connect claims later */
	if (s->claiming) {
		s->claim_again = 1;
		return;
	}
	long long room = cfg->worker_concurrency - s->in_flight;
	if (room <= 0) {
		s->full = 1;
		return;
	}
	if (room > cfg->claim_batch)
		room = cfg->claim_batch;
	if (room > 4096)
		room = 4096;
	/* ghl_claim_jobs (migration 20261210_000101): the claim lock, expired
	 * leases made runnable again (or CANCELLED when a cancel was requested
	 * while the lease was held: claims skip cancel-requested jobs), then the
	 * claim, which writes only narrow job_leases rows (two indexes); the job
	 * rows' IN_PROGRESS goes out with the journal's next batch
	 * (claim_journal). One function, so its plans are kept: as three
	 * statements in one string it was planned on every claim. */
	char p_default[24], p_ceiling[24], p_room[24], p_lease[24];
	snprintf(p_default, sizeof(p_default), "%lld", cfg->max_concurrent_jobs);
	snprintf(p_ceiling, sizeof(p_ceiling), "%lld", cfg->max_concurrent_jobs_ceiling);
	snprintf(p_room, sizeof(p_room), "%lld", room);
	snprintf(p_lease, sizeof(p_lease), "%lld", cfg->lease_timeout_ms);
	const char *params[] = {p_default, p_ceiling, p_room, s->owner, p_lease};
	s->claiming = 1;
	s->claim_room = room;
	s->outstanding++;
	db_pool_query(s->app->db, "SELECT * FROM ghl_claim_jobs($1, $2, $3, $4, $5)", 5, params,
		      on_claimed, s);
}

static void claim_soon(struct scheduler *s)
{
	if (!s->stopping && s->started)
		event_active(s->ev_claim, EV_TIMEOUT, 0);
}

/* The journal dropped leases: their agencies have room again. */
static void on_released(void *arg)
{
	claim_soon(arg);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	claim_soon(arg);
}

/* ---- leases ----------------------------------------------------------------- */

struct renew {
	struct scheduler *s;
	uint64_t seq; /* jobs claimed after this were not covered */
};

static void on_renewed(void *arg, PGresult *res, const struct err *e)
{
	struct renew *rn = arg;
	struct scheduler *s = rn->s;
	uint64_t seq = rn->seq;
	free(rn);
	if (--s->outstanding == 0 && s->dead) {
		scheduler_release(s);
		return;
	}
	if (s->dead)
		return;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("renewing job leases failed", "error", db_why(res, e), NULL);
		return;
	}
	/* a set of the ids we still own */
	int n = PQntuples(res);
	size_t cap = 16;
	while (cap < (size_t)n * 2 + 2)
		cap *= 2;
	int *slots = xmalloc(cap * sizeof(int));
	memset(slots, 0xff, cap * sizeof(int));
	for (int i = 0; i < n; i++) {
		const char *id = PQgetvalue(res, i, 0);
		size_t h = 0;
		for (const char *p = id; *p; p++)
			h = h * 31 + (unsigned char)*p;
		h &= cap - 1;
		while (slots[h] >= 0)
			h = (h + 1) & (cap - 1);
		slots[h] = i;
	}
	struct job *j = s->head;
	while (j) {
		struct job *next = j->next;
		int found = -1;
		size_t h = 0;
		for (const char *p = j->id; *p; p++)
			h = h * 31 + (unsigned char)*p;
		h &= cap - 1;
		while (slots[h] >= 0) {
			if (!strcmp(PQgetvalue(res, slots[h], 0), j->id)) {
				found = slots[h];
				break;
			}
			h = (h + 1) & (cap - 1);
		}
		if (found >= 0) {
			if (!strcmp(PQgetvalue(res, found, 1), "t"))
				j->cancel = 1;
		} else if (j->claim_seq <= seq && !j->done) {
			log_warn("job lease lost; another worker owns the job now", "job_id", j->id,
				 NULL);
			j->lost = 1;
			runner_abort(j, 0);
		}
		j = next;
	}
	free(slots);
}

static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct scheduler *s = arg;
	if (!s->head)
		return;
	char lease[32];
	snprintf(lease, sizeof(lease), "%lld", s->app->cfg->lease_timeout_ms);
	const char *params[2] = {s->owner, lease};
	struct renew *rn = xcalloc(1, sizeof(*rn));
	rn->s = s;
	rn->seq = s->claim_seq;
	s->outstanding++;
	db_pool_query(s->app->db,
		      "UPDATE job_leases l SET lease_until = now() + $2::bigint * "
		      "interval '1 millisecond' FROM provisioning_jobs j WHERE l.owner = $1 "
		      "AND j.id = l.job_id RETURNING l.job_id::text, j.cancel_requested",
		      2, params, on_renewed, rn);
}

/* ---- notifications ---------------------------------------------------------- */

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct scheduler *s = arg;
	if (!strcmp(channel, "ghl_jobs")) {
		claim_soon(s);
	} else if (!strcmp(channel, "ghl_cancel") && payload) {
		for (struct job *j = s->head; j; j = j->next)
			if (!strcmp(j->id, payload))
				j->cancel = 1;
	}
}

static void on_listen_result(void *arg, PGresult *res, const struct err *e)
{
	(void)arg;
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		log_warn("LISTEN failed; relying on polling", "error", db_why(res, e), NULL);
}

static void on_listen_connect(void *arg)
{
	struct scheduler *s = arg;
	db_async_query(s->listen, "LISTEN ghl_jobs; LISTEN ghl_cancel", 0, NULL, on_listen_result,
		       s);
	claim_soon(s); /* jobs may have arrived while we were not listening */
}

/* ---- life cycle ------------------------------------------------------------- */

/* default_pipeline parsed and checked against the steps registered now. */
static struct json *default_settings(const struct app *app, const struct config *cfg, struct err *e)
{
	struct json *d = json_parse(cfg->default_pipeline, strlen(cfg->default_pipeline),
				    JSON_DEFAULT_MAX_DEPTH, e);
	if (!d) {
		err_prefix(e, "default_pipeline is not valid JSON");
		return NULL;
	}
	if (pipeline_check(app->steps, d, e)) {
		err_prefix(e, "default_pipeline");
		json_free(d);
		return NULL;
	}
	return d;
}

/* The engine keys the runner reads from its env (the others are read from
 * app->cfg at each claim). A job keeps the pipeline and max_retries it was
 * first started with (its context). */
static void env_apply(struct runner_env *env, const struct config *cfg, struct json *settings)
{
	env->retry_base_ms = cfg->retry_base_ms;
	env->retry_max_ms = cfg->retry_max_ms;
	env->default_max_retries = (int)cfg->max_retries;
	json_free(env->default_settings);
	env->default_settings = settings;
}

static void timer_set(struct event *ev, long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	event_add(ev, &tv);
}

static long long poll_ms(const struct config *cfg)
{
	return cfg->poll_interval_ms > 0 ? cfg->poll_interval_ms : 1000;
}

/* Leases are renewed every third of their length. */
static long long renew_ms(const struct config *cfg)
{
	return cfg->lease_timeout_ms / 3 < 100 ? 100 : cfg->lease_timeout_ms / 3;
}

struct scheduler *scheduler_new(struct app *app, struct err *e)
{
	struct scheduler *s = xcalloc(1, sizeof(*s));
	const struct config *cfg = app->cfg;
	s->app = app;
	s->env.app = app;
	s->env.job_ended = job_ended;
	s->env.arg = s;
	struct json *settings = default_settings(app, cfg, e);
	if (!settings)
		goto fail;
	env_apply(&s->env, cfg, settings);
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			*p = '_';
	unsigned char rnd[6];
	crypto_random_bytes(rnd, sizeof(rnd));
	snprintf(s->owner, sizeof(s->owner), "%.40s:%d:%02x%02x%02x%02x%02x%02x", host,
		 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	s->journal = journal_new(app->base, cfg->database_url, s->owner, cfg->db_reconnect_max_ms);
	s->env.journal = s->journal;
	journal_on_released(s->journal, on_released, s);
	s->ev_claim = event_new(app->base, -1, 0, claim_now, s);
	s->ev_poll = event_new(app->base, -1, EV_PERSIST, poll_cb, s);
	s->ev_renew = event_new(app->base, -1, EV_PERSIST, renew_cb, s);
	return s;
fail:
	json_free(s->env.default_settings);
	free(s);
	return NULL;
}

void scheduler_start(struct scheduler *s)
{
	const struct config *cfg = s->app->cfg;
	s->started = 1;
	timer_set(s->ev_poll, poll_ms(cfg));
	timer_set(s->ev_renew, renew_ms(cfg));
	if (str_eq(cfg->listen_notify, "on")) {
		s->listen = db_async_new(s->app->base, cfg->database_url, cfg->db_reconnect_max_ms);
		db_async_on_notify(s->listen, on_notify, s);
		db_async_on_connect(s->listen, on_listen_connect, s);
	}
	log_info("scheduler started", "owner", s->owner, "mode",
		 s->listen ? "listen/notify + poll" : "poll only", NULL);
	claim_soon(s);
}

int scheduler_reload(struct scheduler *s, const struct config *next, struct err *e)
{
	struct json *settings = default_settings(s->app, next, e);
	if (!settings)
		return -1;
	const struct config *cur = s->app->cfg;
	if (s->started && !s->stopping && poll_ms(next) != poll_ms(cur))
		timer_set(s->ev_poll, poll_ms(next));
	if (s->started && renew_ms(next) != renew_ms(cur))
		timer_set(s->ev_renew, renew_ms(next));
	env_apply(&s->env, next, settings);
	return 0;
}

static void report_stopped(void *arg)
{
	struct scheduler *s = arg;
	if (s->stop_reported || !s->stopping || s->in_flight > 0 || journal_pending(s->journal))
		return;
	s->stop_reported = 1;
	if (s->ev_deadline)
		evtimer_del(s->ev_deadline);
	log_info("scheduler stopped; leases released", NULL);
	if (s->stop_cb)
		s->stop_cb(s->stop_arg);
}

static void maybe_stopped(struct scheduler *s)
{
	if (s->in_flight == 0 && !journal_pending(s->journal))
		report_stopped(s);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct scheduler *s = arg;
	char n[16];
	snprintf(n, sizeof(n), "%d", s->in_flight);
	log_warn("shutdown deadline: releasing jobs still running", "jobs", n, NULL);
	while (s->head)
		runner_abort(s->head, 1);
	maybe_stopped(s);
}

void scheduler_stop(struct scheduler *s, long long deadline_ms, void (*done)(void *), void *arg)
{
	s->stopping = 1;
	s->stop_cb = done;
	s->stop_arg = arg;
	event_del(s->ev_poll);
	journal_on_idle(s->journal, report_stopped, s);
	for (struct job *j = s->head; j; j = j->next)
		j->stopping = 1;
	/* jobs waiting between steps are released at once */
	struct job *j = s->head;
	while (j) {
		struct job *next = j->next;
		if (!j->run)
			runner_abort(j, 1);
		j = next;
	}
	s->ev_deadline = evtimer_new(s->app->base, on_deadline, s);
	long long d = deadline_ms > 0 ? deadline_ms : 1;
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(s->ev_deadline, &tv);
	maybe_stopped(s);
}

static void scheduler_release(struct scheduler *s)
{
	json_free(s->env.default_settings);
	free(s);
}

struct scheduler *scheduler_free(struct scheduler *s)
{
	if (!s)
		return NULL;
	while (s->head) {
		s->head->lost = 1;
		runner_abort(s->head, 0);
	}
	db_async_free(s->listen);
	s->listen = NULL;
	journal_free(s->journal);
	s->journal = NULL;
	event_free(s->ev_claim);
	event_free(s->ev_poll);
	event_free(s->ev_renew);
	if (s->ev_deadline)
		event_free(s->ev_deadline);
	s->dead = 1;
	/* queries still queued in the pool call back later (when it is freed) */
	if (s->outstanding == 0)
		scheduler_release(s);
	return NULL;
}

void scheduler_get_stats(const struct scheduler *s, struct scheduler_stats *out)
{
	*out = s->st;
	out->in_flight = s->in_flight;
	out->peak_in_flight = s->peak;
	struct journal_stats js;
	journal_get_stats(s->journal, &js);
	out->journal_batches = js.batches;
	out->journal_logs = js.logs;
	out->journal_updates = js.updates;
	/* the runner counted what it asked for; the row had the last word */
	out->retried -= js.cancelled_retrying;
	out->released -= js.cancelled_pending;
	out->cancelled += js.cancelled_retrying + js.cancelled_pending;
}
