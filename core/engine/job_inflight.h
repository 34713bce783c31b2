/* job_inflight.h — a job in flight in this process (private to the engine:
 * scheduler.c claims it, runner.c runs it, step_host.c serves its steps). */
#ifndef GHL_JOB_INFLIGHT_H
#define GHL_JOB_INFLIGHT_H

#include <stdint.h>

#include "ghl_step.h"

struct json;
struct scheduler;
struct step_impl;

struct runner_env;

struct job {
	struct scheduler *sched;
	const struct runner_env *env;
	struct job *prev, *next; /* the scheduler's running list */
	uint64_t claim_seq;

	char *id;
	char *agency_id;
	char *company_id; /* agencies.ghl_agency_id */
	struct json *client;
	struct json *snapshot; /* or NULL */
	struct json *settings; /* agency settings_json, or NULL */
	struct json *context;  /* {"pipeline":[…],"max_retries":N,"outputs":{},"steps":{…}} */
	struct json *job_json; /* what steps read as GHL_SRC_JOB (built lazily) */
	int retry_count;
	int attempt;
	int max_retries;
	int step;     /* index of the step running or next */
	int cancel;   /* cancellation requested */
	int stopping; /* release at the next step boundary */
	int lost;     /* lease lost: stop, write nothing */
	int done;     /* final write queued */
	char *location_id;

	char *token;  /* agency access token (plaintext, wiped) */
	char *loc_id; /* location the cached location token is for */
	char *loc_token;

	ghl_step_ctx *run; /* the step run in progress */
	/* rollback (settings "on_failure": "rollback"): compensating steps in
	 * reverse order before the job is FAILED with fail_error */
	int compensating;
	char *fail_error;
	char *comp_notes; /* "undone: A, B; could not undo C: …" */
	int64_t started_ms;
};

/* Free everything a job owns (secrets wiped), not the struct itself. */
void job_clear(struct job *job);

#endif
