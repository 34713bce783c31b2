/* step_host.h — one run of one step: the ghl_step_ctx a step sees and the
 * host function table (plugins/ghl_step.h) that serves it, for C plugins and
 * Lua scripts alike. A run calls the step's state machine, starts the GHL
 * request or timer it asks for, calls it again when that completes, and
 * reports the end (DONE or FAIL) to its owner through a callback: the job
 * runner, which decides what the end means for the job. */
#ifndef GHL_STEP_HOST_H
#define GHL_STEP_HOST_H

#include "ghl_step.h"

struct app;
struct job;
struct journal;
struct json;
struct step_impl;

/* The host function table every step gets: the plugin loader (registry.c)
 * hands it to each plugin's init(), the Lua host binds it for scripts. It is
 * static: it outlives every plugin and run. */
const struct ghl_host_api *step_host_api(void);

/* What a run needs. The run copies config and takes a reference on impl. */
struct step_run {
	struct app *app;	 /* loop, GHL client, token source */
	struct journal *journal; /* where outputs.location_id is recorded at once; NULL: nowhere */
	struct job *job;	 /* the job's data, tokens and outputs so far */
	struct step_impl *impl;
	const struct json *config; /* the step's config from the pipeline (NULL: {}) */
	int compensate;		   /* 1: run the step's compensate instead of run */
	/* The run is over: ok is STEP_RUN_DONE, STEP_RUN_FAILED (message and
	 * retryable in step_ctx_error) or STEP_RUN_PARKED (the step made an OPEN
	 * task with task(): step_ctx_task_id). Called from step_ctx_start or
	 * later from the loop; the callee owns ctx from then on and frees it with
	 * step_ctx_free. */
	void (*ended)(void *arg, ghl_step_ctx *ctx, int ok);
	void *arg;
};

enum { STEP_RUN_FAILED = 0, STEP_RUN_DONE = 1, STEP_RUN_PARKED = 2 };

/* A new run; nothing happens until step_ctx_start. */
ghl_step_ctx *step_ctx_new(const struct step_run *run);

/* The first call of the step's state machine. */
void step_ctx_start(ghl_step_ctx *ctx);

/* End the run: the step's per-run state (set_state) goes to its destructor
 * at once, whatever the reason (done, failed, cancelled, released, lease
 * lost, shutdown). A request still in flight is abandoned: the context lives
 * on until its answer arrives, then goes without calling the step. Returns
 * NULL; NULL is fine. */
ghl_step_ctx *step_ctx_free(ghl_step_ctx *ctx);

struct step_impl *step_ctx_impl(const ghl_step_ctx *ctx);

/* This run's outputs (an object; owned by the run). */
const struct json *step_ctx_outputs(const ghl_step_ctx *ctx);

/* Why the run failed (NULL when it did not), whether a retry may help, and
 * GHL's Retry-After in ms (0: none). */
const char *step_ctx_error(const ghl_step_ctx *ctx, int *retryable, long long *retry_after_ms);

/* The OPEN task a parked run waits for (NULL when it did not park). */
const char *step_ctx_task_id(const ghl_step_ctx *ctx);

/* 1: the run failed on a task a person rejected with on_reject "rollback":
 * the job rolls back whatever its pipeline's on_failure says. */
int step_ctx_rollback(const ghl_step_ctx *ctx);

/* Add what the journal records of a run to the object d: duration_ms,
 * requests, ghl_status and trace_id of the last reply, and the step's log. */
void step_ctx_describe(const ghl_step_ctx *ctx, struct json *d);

/* The job as steps read it (GHL_SRC_JOB): {"id","agency_id","company_id",
 * "snapshot","attempt","retry_count"}, built once and kept on the job; also
 * what a pipeline entry's `when` sees as job. */
const struct json *step_host_job_doc(struct job *job);

#endif
