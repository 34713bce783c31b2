/* runner.h — runs one job through its pipeline, step by step, as re-entrant
 * state machines on the event loop (no thread per job, nothing blocks); each
 * step's run and the host API it sees are in step_host.c. */
#ifndef GHL_RUNNER_H
#define GHL_RUNNER_H

#include "ghl_step.h"

struct app;
struct job;
struct journal;
struct json;
struct step_impl;

/* What the runner works with, and whom it tells. */
struct runner_env {
	struct app *app;
	struct journal *journal;       /* NULL: nothing is written (one-off runs) */
	struct json *default_settings; /* parsed default_pipeline */
	long long retry_base_ms, retry_max_ms;
	int default_max_retries;
	/* The job is over for this process — outcome COMPLETED, FAILED, RETRYING,
	 * RELEASED, PARKED (waiting for a person's task), LOST or ABORTED — and
	 * its final write is queued: the callee
	 * frees the job. Required. */
	void (*job_ended)(void *arg, struct job *job, const char *outcome);
	/* Optional: each step record (STARTED/COMPLETED/FAILED/SKIPPED and its details)
	 * as the journal gets it; details stay the runner's. */
	void (*step_logged)(void *arg, struct job *job, const char *step, const char *status,
			    const struct json *details);
	void *arg; /* for both callbacks */
};

/* Start (or resume, after a retry or a lost owner) a claimed job; the job
 * keeps env, which must outlive it. When the job ends the runner queues its
 * final write and calls env->job_ended. */
void runner_run(const struct runner_env *env, struct job *job);

/* The job must stop now (lease lost, or the shutdown deadline): its step run
 * is abandoned; when release is set the job is written back as PENDING. Ends
 * with env->job_ended, as every job does. */
void runner_abort(struct job *job, int release);

/* Run one step outside the scheduler (`ghl-agent step run`, dry runs): a
 * synthetic job with the given snapshot (the scheduler's {"id",
 * "ghl_snapshot_id","name","is_active","agency_id"} object, or NULL), client
 * data, config and earlier outputs.
 * done() gets the outcome ("COMPLETED"/"FAILED"), the step's outputs and
 * log as JSON text, and the error (NULL on success). */
typedef void (*runner_once_fn)(void *arg, const char *status, const char *outputs_json,
			       const char *log_json, const char *error);
void runner_run_once(struct app *app, struct step_impl *impl, const char *agency_id,
		     const char *company_id, const struct json *snapshot, const struct json *client,
		     const struct json *config, const struct json *outputs, runner_once_fn done,
		     void *arg);

#endif
