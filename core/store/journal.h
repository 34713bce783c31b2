/* journal.h — batched, ordered writes of job state and step logs.
 *
 * Everything the scheduler and runner write about running jobs goes through
 * here: provisioning_logs rows (STARTED/COMPLETED/FAILED with details_json)
 * and provisioning_jobs updates. Writes queued during one loop iteration go
 * out together as ONE statement per lane, while the next batch accumulates —
 * the commit cost is shared by every job in the batch. A lane is a dedicated
 * connection; a job always writes on the same lane (chosen by its id), so a
 * job's writes commit in order, and several lanes (JOURNAL_LANES) let
 * PostgreSQL spend more than one core on the journal. Job updates are fenced by the lease owner: an
 * update for a job this process no longer owns changes nothing, and the
 * job's `lost` callback tells the runner to stop. The fence is the job's
 * row in job_leases (locked for the batch), and a job some other writer
 * finished meanwhile (a cancel racing the claim) is refused too.
 */
#ifndef GHL_JOURNAL_H
#define GHL_JOURNAL_H

#include <stdint.h>

struct event_base;
struct journal;

/* One pending update of a job row; NULL/-1 fields leave columns unchanged.
 * Queued updates of the same job in one batch are merged (later wins). */
struct job_write {
	const char *status;	   /* provisioning_job_status */
	const char *error_message; /* set when set_error */
	int set_error;
	const char *location_id;
	const char *context_json;
	int retry_count;	   /* -1: unchanged */
	long long run_at_delay_ms; /* -1: unchanged; else run_at = now() + delay */
	int release;		   /* clear locked_by/lease_until, drop the lease */
	int finished;		   /* finished_at = now() */
	int attempt;		   /* > 0: the claim's side: attempt, locked_by = owner */
	const char *started_at;	   /* the claim's time: started_at when still NULL */
};

/* Called after the batch holding a job's update committed: applied = 0
 * when the fence refused it (the lease was lost). */
typedef void (*journal_done_fn)(void *arg, int applied);

struct journal *journal_new(struct event_base *base, const char *dsn, const char *owner,
			    long long reconnect_max_ms);
struct journal *journal_free(struct journal *j);

void journal_log(struct journal *j, const char *job_id, const char *step, const char *status,
		 const char *details_json);
/* One job_requests row, a JSON object with its columns (job_id, step_index,
 * attempt, compensate, method, path, status, duration_ms, trace_id, error,
 * request_body, response_body), written in the next batch of job_id's lane;
 * dropped when the job is gone by then. The caller masks and cuts the bodies. */
void journal_request(struct journal *j, const char *job_id, const char *record_json);
/* done may be NULL. */
void journal_job(struct journal *j, const char *job_id, const struct job_write *w,
		 journal_done_fn done, void *arg);
/* Called after a batch that dropped one of this process's leases committed
 * (a job ended or was released): its agency has room for another job now. */
void journal_on_released(struct journal *j, void (*cb)(void *), void *arg);
/* Writes queued or in flight. */
int journal_pending(const struct journal *j);
/* Called once whenever journal_pending() drops to zero (for shutdown). */
void journal_on_idle(struct journal *j, void (*cb)(void *), void *arg);
/* Since start: statements committed, step log rows and job rows written, and
 * the jobs released as RETRYING, or as PENDING, that their row made CANCELLED
 * instead (a cancel was requested meanwhile). */
struct journal_stats {
	long long batches, logs, updates;
	long long cancelled_retrying, cancelled_pending;
};
void journal_get_stats(const struct journal *j, struct journal_stats *out);

#endif
