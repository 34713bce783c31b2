/* reconcile.h — reconciliation (issue 13 item 4): checks the COMPLETED jobs
 * of the last reconcile_window against GHL and records what drifted in
 * job_drift (migrations/20261208_000301_job_drift.sql):
 *
 *   location_missing  GET /locations/{id} answers 404 (or "not found");
 *   snapshot_failed   GET /snapshots/snapshot-status/{snap}/location/{id}
 *                     reports "failed" or "error" (jobs with a snapshot);
 *   user_missing      GET /users/{user_id} answers 404 (jobs whose
 *                     CREATE_USER left outputs.user_id).
 *
 * A check that answers otherwise (2xx) resolves the open drift of its kind;
 * one that fails (GHL unreachable, 5xx, token refused) leaves it as it was.
 * app_uninstalled comes from GHL's UNINSTALL webhook (webhook_routes.c),
 * never from a sweep.
 *
 * Every call goes through the GHL client's per-resource buckets with
 * low_priority set, so it waits behind any job request queued there; at most
 * `concurrency` jobs are checked at once, one request per job at a time. A
 * location token already in the cache (loc_tokens.c) is used for the GETs
 * GHL accepts it for (location, user), the agency token otherwise (no token
 * is minted for a check). Single-threaded (the loop's thread). */
#ifndef GHL_RECONCILE_H
#define GHL_RECONCILE_H

struct app;
struct reconciler;

struct reconcile_opts {
	const char *agency_id; /* agencies.id, or NULL: every live agency */
	long long window_ms;   /* jobs finished within this long ago */
	int concurrency;       /* jobs checked at once; <= 0 → 4 */
};

struct reconcile_report {
	long long jobs;	     /* jobs checked */
	long long unchecked; /* of those, jobs with a check that could not finish */
	long long opened;    /* drift rows opened */
	long long resolved;  /* drift rows resolved */
	long long open;	     /* open drift in scope after the sweep */
};

/* error is NULL on success (r complete), else why the sweep stopped. */
typedef void (*reconcile_done_fn)(void *arg, const struct reconcile_report *r, const char *error);

/* Bound to app (db, ghl, tokens, loc_tokens and cfg read at each use). */
struct reconciler *reconciler_new(struct app *app);
/* One sweep; cb is called exactly once, from the loop. Returns -1 (and does
 * not call cb) when a sweep is already running. */
int reconciler_run(struct reconciler *r, const struct reconcile_opts *o, reconcile_done_fn cb,
		   void *arg);
/* The daemon's periodic sweep: every reconcile_interval (0: off), over
 * reconcile_window, reconcile_concurrency jobs at once. */
void reconciler_start(struct reconciler *r);
/* Sweeps finished (for tests and metrics). */
long long reconciler_sweeps(const struct reconciler *r);
/* After the GHL client and the pool are freed (their callbacks end the
 * sweep in flight). Accepts NULL; returns NULL. */
struct reconciler *reconciler_free(struct reconciler *r);

#endif
