/* scheduler.h — the job scheduler inside `ghl-agent serve` (roles worker/both).
 *
 * Claims runnable jobs in batches (FOR UPDATE SKIP LOCKED, ordered by run_at,
 * at most max_concurrent_jobs in flight per agency, round-robin across
 * agencies), holds a lease on each and renews it, wakes on LISTEN ghl_jobs
 * with a poll fallback (poll only with listen_notify = off, for PgBouncer),
 * resumes jobs whose owner died once their lease ran out, retries retryable
 * failures with bounded exponential backoff and jitter, and on stop lets
 * running steps finish then releases the rest. Job execution itself is in
 * core/engine/runner.c; all writes go through core/store/journal.c. */
#ifndef GHL_SCHEDULER_H
#define GHL_SCHEDULER_H

#include <stdint.h>

#include "util.h"

struct app;
struct config;
struct scheduler;

struct scheduler *scheduler_new(struct app *app, struct err *e);
void scheduler_start(struct scheduler *s);
/* Stop claiming; running steps finish; jobs are then released (PENDING).
 * done() is called once nothing is running and the journal is flushed, or
 * after deadline_ms (jobs still running are then released as they are). */
void scheduler_stop(struct scheduler *s, long long deadline_ms, void (*done)(void *), void *arg);
struct scheduler *scheduler_free(struct scheduler *s);
/* SIGHUP, before app->cfg becomes next: the engine keys take effect from the
 * next claim — default_pipeline, max_retries, retry_base/max (runner env),
 * poll_interval and lease_timeout (timers re-armed); worker_concurrency,
 * claim_batch, max_concurrent_jobs are read from app->cfg at each claim.
 * Jobs already started keep their pipeline and max_retries. -1 with e set
 * and nothing changed when next's default_pipeline is invalid. */
int scheduler_reload(struct scheduler *s, const struct config *next, struct err *e);

struct scheduler_stats {
	long long claimed, completed, failed, cancelled, retried, released, parked, lost;
	int in_flight, peak_in_flight;
	long long journal_batches, journal_logs, journal_updates;
};
void scheduler_get_stats(const struct scheduler *s, struct scheduler_stats *out);

#endif
