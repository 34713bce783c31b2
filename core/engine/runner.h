/* runner.h — runs one job through its pipeline, step by step, as re-entrant
 * state machines on the event loop (no thread per job, nothing blocks), and
 * implements the plugin host API (plugins/ghl_step.h) for C and Lua steps. */
#ifndef GHL_RUNNER_H
#define GHL_RUNNER_H

#include "ghl_step.h"

struct app;
struct job;
struct journal;
struct json;
struct step_impl;

struct runner_env {
	struct app *app;
	struct journal *journal;
	struct json *default_settings; /* parsed default_pipeline */
	long long retry_base_ms, retry_max_ms;
	int default_max_retries;
};

/* Start (or resume, after a retry or a lost owner) a claimed job. When the
 * job ends — completed, failed, retrying, released or lost — the runner
 * queues its final write and calls scheduler_job_ended(job). */
void runner_run(const struct runner_env *env, struct job *job);

/* Defined by the scheduler: the job is over for this process; free it. */
void scheduler_job_ended(struct job *job, const char *outcome);

/* The job must stop now (lease lost, or the shutdown deadline): its step run
 * is abandoned; when release is set the job is written back as PENDING. */
void runner_abort(struct job *job, int release);

/* For step kinds (Lua) and tests: the run's step implementation, job id,
 * script-visible log, and whether a request/sleep is outstanding. */
struct step_impl *runner_ctx_impl(ghl_step_ctx *ctx);
void *runner_ctx_kind_data(ghl_step_ctx *ctx);
void runner_ctx_set_kind_data(ghl_step_ctx *ctx, void *data);
const char *runner_ctx_step_name(ghl_step_ctx *ctx);
/* 1 when this run undoes the step (its compensate), 0 for a normal run. */
int runner_ctx_compensating(ghl_step_ctx *ctx);

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
