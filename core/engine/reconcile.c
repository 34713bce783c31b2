/* reconcile.c — see reconcile.h. */
#include "reconcile.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agency_tokens.h"
#include "app.h"
#include "crypto.h"
#include "db.h"
#include "ghl_client.h"
#include "json.h"
#include "loc_tokens.h"
#include "log.h"

#define DEF_CONCURRENCY 4
/* Jobs one sweep looks at, newest first (the rest wait for the next one). */
#define SWEEP_MAX_JOBS 20000

/* $1 window ms, $2 agency id or NULL, $3 limit. */
static const char sql_jobs[] =
	"SELECT j.id::text, j.agency_id::text, a.ghl_agency_id,"
	" COALESCE(j.location_id, j.context_json->'outputs'->>'location_id'),"
	" CASE WHEN j.context_json->'outputs'->>'snapshot_wait_skipped' = 'true' THEN NULL"
	"  ELSE COALESCE(j.context_json->'outputs'->>'ghl_snapshot_id', s.ghl_snapshot_id) END,"
	" j.context_json->'outputs'->>'user_id'"
	" FROM provisioning_jobs j JOIN agencies a ON a.id = j.agency_id"
	" LEFT JOIN snapshots s ON s.id = j.snapshot_id"
	" WHERE j.status = 'COMPLETED' AND a.deleted_at IS NULL AND NOT a.needs_reconnect"
	" AND COALESCE(j.location_id, j.context_json->'outputs'->>'location_id') IS NOT NULL"
	" AND j.finished_at >= LOCALTIMESTAMP - $1::bigint * interval '1 millisecond'"
	" AND ($2::uuid IS NULL OR j.agency_id = $2::uuid)"
	" ORDER BY j.finished_at DESC LIMIT $3::int";

/* $1 job, $2 agency, $3 kinds found drifted, $4 their details, $5 kinds
 * found fine → (rows opened, rows resolved). */
static const char sql_record[] =
	"WITH r AS (UPDATE job_drift SET resolved_at = LOCALTIMESTAMP"
	"  WHERE job_id = $1::uuid AND resolved_at IS NULL AND kind = ANY($5::text[])"
	"  RETURNING 1),"
	" i AS (INSERT INTO job_drift (job_id, agency_id, kind, detail)"
	"  SELECT $1::uuid, $2::uuid, k, d FROM unnest($3::text[], $4::text[]) AS x(k, d)"
	"  ON CONFLICT (job_id, kind) WHERE resolved_at IS NULL"
	"  DO UPDATE SET last_seen = LOCALTIMESTAMP, detail = EXCLUDED.detail"
	"  RETURNING (xmax = 0) AS fresh)"
	" SELECT (SELECT count(*) FROM i WHERE fresh), (SELECT count(*) FROM r)";

static const char sql_open[] = "SELECT count(*) FROM job_drift WHERE resolved_at IS NULL"
			       " AND ($1::uuid IS NULL OR agency_id = $1::uuid)";

enum kind { K_LOCATION, K_SNAPSHOT, K_USER, K_N };
static const char *const kind_names[K_N] = {"location_missing", "snapshot_failed", "user_missing"};
enum verdict { V_UNKNOWN, V_FINE, V_DRIFT };

struct rjob {
	struct reconciler *r;
	char *id, *agency_id, *company, *location, *snapshot, *user;
	char *token; /* the agency token (secret) */
	enum kind at;
	int loc_token;	/* the current request carries a cached location token */
	int lt_refused; /* GHL refused it: the agency token from now on */
	int no_push;	/* GHL lists no push of the snapshot to the location */
	enum verdict v[K_N];
	char *detail[K_N];
};

struct reconciler {
	struct app *app;
	struct event timer;
	int timer_set;
	int busy, orphan, abort;
	long long sweeps;
	/* the sweep in flight */
	char *agency_id;
	int concurrency, inflight;
	struct rjob **jobs;
	int njobs, next;
	struct reconcile_report rep;
	reconcile_done_fn cb;
	void *arg;
};

static void next_jobs(struct reconciler *r);
static void check(struct rjob *j);

static struct rjob *rjob_free(struct rjob *j)
{
	if (!j)
		return NULL;
	free(j->id);
	free(j->agency_id);
	free(j->company);
	free(j->location);
	free(j->snapshot);
	free(j->user);
	secret_free(j->token);
	for (int k = 0; k < K_N; k++)
		free(j->detail[k]);
	free(j);
	return NULL;
}

static void sweep_clear(struct reconciler *r)
{
	for (int i = 0; i < r->njobs; i++)
		r->jobs[i] = rjob_free(r->jobs[i]);
	free(r->jobs);
	r->jobs = NULL;
	r->njobs = r->next = 0;
	free(r->agency_id);
	r->agency_id = NULL;
}

static void sweep_end(struct reconciler *r, const char *error)
{
	reconcile_done_fn cb = r->cb;
	void *arg = r->arg;
	struct reconcile_report rep = r->rep;
	sweep_clear(r);
	r->busy = 0;
	r->cb = NULL;
	if (!error)
		r->sweeps++;
	if (r->orphan)
		free(r);
	if (cb)
		cb(arg, &rep, error);
}

/* ---- the end: how much drift is open now ---- */

static void on_open(void *arg, PGresult *res, const struct err *e)
{
	struct reconciler *r = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		sweep_end(r, db_why(res, e));
		return;
	}
	str_to_ll(PQgetvalue(res, 0, 0), 0, 1LL << 62, &r->rep.open);
	sweep_end(r, NULL);
}

static void maybe_end(struct reconciler *r)
{
	if (r->inflight > 0 || (!r->abort && r->next < r->njobs))
		return;
	if (r->abort) {
		sweep_end(r, "stopped before every job was checked");
		return;
	}
	const char *p[] = {r->agency_id};
	db_pool_query_flags(r->app->db, DB_REPLAY, sql_open, 1, p, on_open, r);
}

/* ---- one job ---- */

static void job_done(struct rjob *j)
{
	struct reconciler *r = j->r;
	for (int i = 0; i < r->njobs; i++)
		if (r->jobs[i] == j)
			r->jobs[i] = rjob_free(j);
	r->inflight--;
	next_jobs(r);
	maybe_end(r);
}

static void on_recorded(void *arg, PGresult *res, const struct err *e)
{
	struct rjob *j = arg;
	struct reconciler *r = j->r;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("reconcile: cannot record drift", "job_id", j->id, "error", db_why(res, e),
			 NULL);
		r->abort = 1;
		r->rep.unchecked++;
	} else {
		long long opened = 0, resolved = 0;
		str_to_ll(PQgetvalue(res, 0, 0), 0, 1LL << 62, &opened);
		str_to_ll(PQgetvalue(res, 0, 1), 0, 1LL << 62, &resolved);
		r->rep.opened += opened;
		r->rep.resolved += resolved;
		if (opened)
			log_warn("reconcile: drift found", "job_id", j->id, "agency_id",
				 j->agency_id, "location_id", j->location, NULL);
	}
	job_done(j);
}

/* A text[] literal of the names (or details) whose verdict is v. */
static char *pg_array(const struct rjob *j, enum verdict v, int details)
{
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '{');
	int n = 0;
	for (int k = 0; k < K_N; k++) {
		if (j->v[k] != v)
			continue;
		if (n++)
			buf_putc(&b, ',');
		buf_putc(&b, '"');
		for (const char *s = details ? j->detail[k] : kind_names[k]; s && *s; s++) {
			if (*s == '"' || *s == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *s);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, '}');
	char *out = xstrdup(buf_cstr(&b));
	buf_clear(&b);
	return out;
}

static void record(struct rjob *j)
{
	int unknown = 0;
	for (int k = 0; k < K_N; k++)
		unknown |= j->v[k] == V_UNKNOWN && (k != K_USER || j->user) &&
			   (k != K_SNAPSHOT ||
			    (j->snapshot && !j->no_push && j->v[K_LOCATION] != V_DRIFT));
	if (unknown)
		j->r->rep.unchecked++;
	char *found = pg_array(j, V_DRIFT, 0), *details = pg_array(j, V_DRIFT, 1),
	     *fine = pg_array(j, V_FINE, 0);
	const char *p[] = {j->id, j->agency_id, found, details, fine};
	db_pool_query_flags(j->r->app->db, DB_REPLAY, sql_record, 5, p, on_recorded, j);
	free(found);
	free(details);
	free(fine);
}

static void set_verdict(struct rjob *j, enum kind k, enum verdict v, const char *detail)
{
	j->v[k] = v;
	free(j->detail[k]);
	j->detail[k] = detail ? xstrdup(detail) : NULL;
}

static int not_found(const struct ghl_response *res)
{
	if (res->status == 404)
		return 1;
	return (res->status == 400 || res->status == 422) && res->message &&
	       strcasestr(res->message, "not found");
}

static void on_reply(void *arg, const struct ghl_response *res)
{
	struct rjob *j = arg;
	struct reconciler *r = j->r;
	if (res->outcome == GHL_CANCELLED) {
		r->abort = 1;
		r->rep.unchecked++;
		job_done(j);
		return;
	}
	if (j->loc_token && res->outcome != GHL_OK) {
		/* the cached location token may no longer work (a deleted location
		 * refuses it): ask again with the agency's token */
		j->loc_token = 0;
		j->lt_refused = 1;
		check(j);
		return;
	}
	char detail[300];
	enum kind k = j->at;
	if (res->outcome == GHL_OK && k == K_SNAPSHOT) {
		const char *st = json_get_str(json_get(res->json, "data"), "status");
		if (st && (!strcasecmp(st, "failed") || !strcasecmp(st, "error"))) {
			snprintf(detail, sizeof(detail),
				 "the push of snapshot %s into location %s %s", j->snapshot,
				 j->location, st);
			set_verdict(j, k, V_DRIFT, detail);
		} else {
			set_verdict(j, k, V_FINE, NULL);
		}
	} else if (res->outcome == GHL_OK) {
		set_verdict(j, k, V_FINE, NULL);
	} else if (k == K_SNAPSHOT && res->status == 404) {
		j->no_push = 1; /* nothing to tell either way (e.g. no snapshot was loaded) */
	} else if (k != K_SNAPSHOT && not_found(res)) {
		snprintf(detail, sizeof(detail), "%s %s: GHL answered %d %s",
			 k == K_LOCATION ? "location" : "user",
			 k == K_LOCATION ? j->location : j->user, res->status,
			 res->message ? res->message : "");
		set_verdict(j, k, V_DRIFT, detail);
	} else {
		log_info("reconcile: check could not finish", "job_id", j->id, "check",
			 kind_names[k], "outcome", ghl_outcome_name(res->outcome), "error",
			 res->message, NULL);
	}
	/* a missing location has no push to ask about */
	if (k == K_LOCATION && j->v[K_LOCATION] == V_DRIFT)
		j->at = K_SNAPSHOT + 1;
	else
		j->at = k + 1;
	check(j);
}

/* Sends the check at j->at (skipping those that do not apply), or records. */
static void check(struct rjob *j)
{
	struct reconciler *r = j->r;
	struct app *app = r->app;
	while (j->at < K_N &&
	       ((j->at == K_SNAPSHOT && !j->snapshot) || (j->at == K_USER && !j->user)))
		j->at++;
	if (j->at >= K_N || r->abort || app->stopping || !app->ghl) {
		if (j->at < K_N) { /* stopped half way: record nothing */
			r->abort = 1;
			r->rep.unchecked++;
			job_done(j);
			return;
		}
		record(j);
		return;
	}
	char *path, *query = NULL;
	char *company = ghl_urlencode(j->company), *loc = ghl_urlencode(j->location);
	if (j->at == K_LOCATION) {
		path = xasprintf("/locations/%s", loc);
	} else if (j->at == K_SNAPSHOT) {
		char *snap = ghl_urlencode(j->snapshot);
		path = xasprintf("/snapshots/snapshot-status/%s/location/%s", snap, loc);
		query = xasprintf("companyId=%s", company);
		free(snap);
	} else {
		char *user = ghl_urlencode(j->user);
		path = xasprintf("/users/%s", user);
		free(user);
	}
	/* GHL takes a location token for the location and the user; use one only
	 * when this process already holds it (never mint for a check) */
	const char *lt = NULL;
	if (j->at != K_SNAPSHOT && app->loc_tokens && !j->lt_refused)
		lt = loc_tokens_get(app->loc_tokens, j->company, j->location, now_monotonic_ms());
	j->loc_token = lt != NULL;
	struct ghl_request rq = {
		.method = "GET",
		.path = path,
		.query = query,
		.token = lt ? lt : j->token,
		.resource = lt ? j->location : j->company,
		.low_priority = 1,
	};
	if (lt) {
		ghl_request_send(app->ghl, &rq, on_reply, j);
	} else {
		struct ghl_token_hooks hooks;
		agency_tokens_hooks(app->tokens, j->agency_id, &hooks);
		ghl_request_send_auth(app->ghl, &rq, &hooks, on_reply, j);
	}
	free(path);
	free(query);
	free(company);
	free(loc);
}

static void on_token(void *arg, enum agency_token_status st, const struct agency_token *tok,
		     const char *why)
{
	struct rjob *j = arg;
	if (st != AGENCY_TOKEN_OK) {
		log_info("reconcile: no agency token; job not checked", "job_id", j->id,
			 "agency_id", j->agency_id, "status", agency_token_status_name(st), "error",
			 why, NULL);
		j->r->rep.unchecked++;
		job_done(j);
		return;
	}
	j->token = xstrdup(tok->access_token);
	check(j);
}

static void next_jobs(struct reconciler *r)
{
	while (!r->abort && !r->app->stopping && r->inflight < r->concurrency &&
	       r->next < r->njobs) {
		struct rjob *j = r->jobs[r->next++];
		r->inflight++;
		r->rep.jobs++;
		agency_tokens_get(r->app->tokens, j->agency_id, on_token, j);
	}
	if (r->app->stopping)
		r->abort = 1;
}

static char *col(PGresult *res, int row, int c)
{
	return PQgetisnull(res, row, c) || !*PQgetvalue(res, row, c)
		       ? NULL
		       : xstrdup(PQgetvalue(res, row, c));
}

static void on_jobs(void *arg, PGresult *res, const struct err *e)
{
	struct reconciler *r = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		sweep_end(r, db_why(res, e));
		return;
	}
	r->njobs = PQntuples(res);
	r->jobs = xcalloc((size_t)r->njobs + 1, sizeof(*r->jobs));
	for (int i = 0; i < r->njobs; i++) {
		struct rjob *j = xcalloc(1, sizeof(*j));
		j->r = r;
		j->id = col(res, i, 0);
		j->agency_id = col(res, i, 1);
		j->company = col(res, i, 2);
		j->location = col(res, i, 3);
		j->snapshot = col(res, i, 4);
		j->user = col(res, i, 5);
		r->jobs[i] = j;
	}
	next_jobs(r);
	maybe_end(r);
}

int reconciler_run(struct reconciler *r, const struct reconcile_opts *o, reconcile_done_fn cb,
		   void *arg)
{
	if (r->busy)
		return -1;
	r->busy = 1;
	r->abort = 0;
	memset(&r->rep, 0, sizeof(r->rep));
	r->cb = cb;
	r->arg = arg;
	r->concurrency = o->concurrency > 0 ? o->concurrency : DEF_CONCURRENCY;
	r->agency_id = o->agency_id && *o->agency_id ? xstrdup(o->agency_id) : NULL;
	char window[32], limit[16];
	snprintf(window, sizeof(window), "%lld", o->window_ms > 0 ? o->window_ms : 0);
	snprintf(limit, sizeof(limit), "%d", SWEEP_MAX_JOBS);
	const char *p[] = {window, r->agency_id, limit};
	db_pool_query_flags(r->app->db, DB_REPLAY, sql_jobs, 3, p, on_jobs, r);
	return 0;
}

/* ---- the periodic sweep ---- */

static void arm(struct reconciler *r)
{
	long long ms = r->app->cfg->reconcile_interval_ms;
	if (ms <= 0 || r->app->stopping)
		return;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	evtimer_add(&r->timer, &tv);
}

static void on_swept(void *arg, const struct reconcile_report *rep, const char *error)
{
	struct reconciler *r = arg;
	if (error) {
		log_warn("reconcile: sweep failed; trying again at the next interval", "error",
			 error, NULL);
	} else {
		char jobs[24], opened[24], resolved[24], open[24], unchecked[24];
		snprintf(jobs, sizeof(jobs), "%lld", rep->jobs);
		snprintf(opened, sizeof(opened), "%lld", rep->opened);
		snprintf(resolved, sizeof(resolved), "%lld", rep->resolved);
		snprintf(open, sizeof(open), "%lld", rep->open);
		snprintf(unchecked, sizeof(unchecked), "%lld", rep->unchecked);
		log_info("reconcile: sweep done", "jobs", jobs, "opened", opened, "resolved",
			 resolved, "open", open, "unchecked", unchecked, NULL);
	}
	if (!r->orphan)
		arm(r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct reconciler *r = arg;
	const struct config *cfg = r->app->cfg;
	if (r->app->stopping)
		return;
	struct reconcile_opts o = {.window_ms = cfg->reconcile_window_ms,
				   .concurrency = (int)cfg->reconcile_concurrency};
	if (reconciler_run(r, &o, on_swept, r))
		arm(r); /* a CLI-style run is in flight: next time */
}

struct reconciler *reconciler_new(struct app *app)
{
	struct reconciler *r = xcalloc(1, sizeof(*r));
	r->app = app;
	return r;
}

void reconciler_start(struct reconciler *r)
{
	if (!r->timer_set) {
		evtimer_assign(&r->timer, r->app->base, on_timer, r);
		r->timer_set = 1;
	}
	arm(r);
}

long long reconciler_sweeps(const struct reconciler *r)
{
	return r ? r->sweeps : 0;
}

struct reconciler *reconciler_free(struct reconciler *r)
{
	if (!r)
		return NULL;
	if (r->timer_set)
		event_del(&r->timer);
	if (r->busy) {
		r->orphan = 1; /* freed when the sweep's last callback ends it */
		r->cb = NULL;
		return NULL;
	}
	free(r);
	return NULL;
}
