/* runner.c — job execution: a job's pipeline, step by step; see runner.h. */
#include "runner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "job_inflight.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "predicate.h"
#include "registry.h"
#include "step_host.h"

static void job_next_step(const struct runner_env *env, struct job *job);
static void step_ended(void *arg, ghl_step_ctx *ctx, int ok);

/* A run of impl at the job's current step, reporting to step_ended. */
static ghl_step_ctx *run_new(const struct runner_env *env, struct job *job, struct step_impl *impl,
			     const struct json *config, int compensate)
{
	struct step_run run = {
		.app = env->app,
		.journal = env->journal,
		.job = job,
		.impl = impl,
		.config = config,
		.compensate = compensate,
		.ended = step_ended,
		.arg = job,
	};
	return step_ctx_new(&run);
}

static struct json *details_base(const struct job *job, const ghl_step_ctx *ctx)
{
	struct json *d = json_new_object();
	json_object_set_take(d, "index", json_new_int(job->step));
	json_object_set_take(d, "version", json_new_string(step_ctx_impl(ctx)->version));
	json_object_set_take(d, "attempt", json_new_int(job->attempt));
	step_ctx_describe(ctx, d);
	return d;
}

static void journal_step(const struct runner_env *env, struct job *job, const char *step,
			 const char *status, struct json *details)
{
	if (env->journal) {
		char *text = json_to_string(details);
		journal_log(env->journal, job->id, step, status, text);
		free(text);
	}
	if (env->step_logged)
		env->step_logged(env->arg, job, step, status, details);
	json_free(details);
}

static struct json *context_steps(struct job *job)
{
	struct json *s = json_get(job->context, "steps");
	if (!s || s->type != JSON_OBJECT) {
		s = json_new_object();
		json_object_set_take(job->context, "steps", s);
	}
	return s;
}

static void write_context(const struct runner_env *env, struct job *job)
{
	if (!env->journal)
		return;
	char *text = json_to_string(job->context);
	struct job_write w = {.context_json = text, .retry_count = -1, .run_at_delay_ms = -1};
	journal_job(env->journal, job->id, &w, NULL, NULL);
	free(text);
}

static void job_end(const struct runner_env *env, struct job *job, const char *status,
		    const char *error, int retry, long long delay_ms);

/* The retry budget is per step: context "step_retries" = {"step": index,
 * "count": n} counts the retries in a row of the step at index; it is
 * dropped when a step completes (in the same context write) and survives a
 * crash with the rest of the context. It never exceeds retry_count (the
 * total), so a job whose retry_count was reset (retry of a FAILED job)
 * starts a fresh budget. */
static int step_retries(const struct job *job, int index)
{
	const struct json *sr = json_get(job->context, "step_retries");
	int64_t step = -1, n = 0;
	if (json_get_int(sr, "step", &step) || step != index || json_get_int(sr, "count", &n) ||
	    n < 0)
		return 0;
	return n < job->retry_count ? (int)n : job->retry_count;
}

static void step_retries_set(struct job *job, int index, int n)
{
	if (n <= 0) {
		json_object_remove(job->context, "step_retries");
		return;
	}
	struct json *sr = json_new_object();
	json_object_set_take(sr, "step", json_new_int(index));
	json_object_set_take(sr, "count", json_new_int(n));
	json_object_set_take(job->context, "step_retries", sr);
}

static void job_fail(const struct runner_env *env, struct job *job, const char *error,
		     int rollback);
static void compensate_next(const struct runner_env *env, struct job *job);
static void compensation_ended(struct job *job, ghl_step_ctx *ctx, int ok);

/* The step returned DONE. */
static void step_done(struct job *job, ghl_step_ctx *ctx)
{
	const struct runner_env *env = job->env;
	const char *name = step_ctx_impl(ctx)->name;
	const struct json *outputs = step_ctx_outputs(ctx);
	struct json *d = details_base(job, ctx);
	json_object_set_take(d, "outputs", json_clone(outputs));
	journal_step(env, job, name, "COMPLETED", d);
	struct json *all = json_get(job->context, "outputs");
	if (!all) {
		all = json_new_object();
		json_object_set_take(job->context, "outputs", all);
	}
	for (size_t i = 0; i < outputs->u.obj.n; i++)
		json_object_set_take(all, outputs->u.obj.keys[i],
				     json_clone(outputs->u.obj.vals[i]));
	char key[16];
	snprintf(key, sizeof(key), "%d", job->step);
	struct json *rec = json_new_object();
	json_object_set_take(rec, "step", json_new_string(name));
	json_object_set_take(rec, "status", json_new_string("COMPLETED"));
	json_object_set_take(context_steps(job), key, rec);
	step_retries_set(job, job->step, 0); /* the next step starts a fresh budget */
	job->run = step_ctx_free(ctx);
	job->step++;
	/* the job's end writes the context itself: only a job going on writes it here */
	if ((size_t)job->step < json_len(json_get(job->context, "pipeline")) && !job->lost &&
	    !job->cancel && !job->stopping)
		write_context(env, job);
	job_next_step(env, job);
}

/* The step returned FAIL (or broke the protocol). */
static void step_failed(struct job *job, ghl_step_ctx *ctx)
{
	const struct runner_env *env = job->env;
	const char *name = step_ctx_impl(ctx)->name;
	int retryable;
	long long retry_after;
	const char *msg = step_ctx_error(ctx, &retryable, &retry_after);
	struct json *d = details_base(job, ctx);
	json_object_set_take(d, "error", json_new_string(msg));
	json_object_set_take(d, "retryable", json_new_bool(retryable));
	if (json_len(step_ctx_outputs(ctx)))
		json_object_set_take(d, "outputs", json_clone(step_ctx_outputs(ctx)));
	journal_step(env, job, name, "FAILED", d);
	char *error = xasprintf("%s: %s", name, msg);
	struct json *item = json_at(json_get(job->context, "pipeline"), (size_t)job->step);
	int cont = str_eq(json_get_str(item, "on_error"), "continue");
	int index = job->step;
	int rollback = step_ctx_rollback(ctx);
	job->run = step_ctx_free(ctx);
	if (cont) {
		char key[16];
		snprintf(key, sizeof(key), "%d", index);
		struct json *rec = json_new_object();
		json_object_set_take(rec, "status", json_new_string("FAILED"));
		json_object_set_take(rec, "error", json_new_string(error));
		json_object_set_take(context_steps(job), key, rec);
		step_retries_set(job, index, 0);
		job->step = index + 1;
		write_context(env, job);
		free(error);
		job_next_step(env, job);
		return;
	}
	int in_a_row = step_retries(job, index);
	if (retryable && job->cancel) {
		/* no next attempt for a job a person cancelled (the claim would skip it) */
		job_end(env, job, "CANCELLED", "cancelled by request", 0, -1);
	} else if (retryable && in_a_row < job->max_retries) {
		long long delay = backoff_ms(in_a_row + 1, env->retry_base_ms, env->retry_max_ms,
					     retry_after,
					     (uint64_t)random() << 31 ^ (uint64_t)random());
		step_retries_set(job, index, in_a_row + 1);
		job_end(env, job, "RETRYING", error, 1, delay);
	} else {
		char *final = retryable ? xasprintf("%s (gave up after %d retries in a row; %d "
						    "retries in all)",
						    error, in_a_row, job->retry_count)
					: xstrdup(error);
		job_fail(env, job, final, rollback);
		free(final);
	}
	free(error);
}

static void job_park(const struct runner_env *env, struct job *job);

/* The step made an OPEN task (TASK, host task()): the job waits for a
 * person without a lease — journal WAITING, the context says which task. */
static void step_parked(struct job *job, ghl_step_ctx *ctx)
{
	const struct runner_env *env = job->env;
	const char *name = step_ctx_impl(ctx)->name;
	const char *task_id = step_ctx_task_id(ctx);
	struct json *d = details_base(job, ctx);
	json_object_set_take(d, "waiting_for", json_new_string("task"));
	json_object_set_take(d, "task_id", json_new_string(task_id));
	journal_step(env, job, name, "WAITING", d);
	char key[16];
	snprintf(key, sizeof(key), "%d", job->step);
	struct json *rec = json_new_object();
	json_object_set_take(rec, "step", json_new_string(name));
	json_object_set_take(rec, "status", json_new_string("WAITING"));
	json_object_set_take(rec, "task_id", json_new_string(task_id));
	json_object_set_take(context_steps(job), key, rec);
	struct json *w = json_new_object();
	json_object_set_take(w, "task_id", json_new_string(task_id));
	json_object_set_take(w, "step", json_new_int(job->step));
	json_object_set_take(w, "step_name", json_new_string(name));
	json_object_set_take(job->context, "waiting", w);
	step_retries_set(job, job->step, 0);
	job->run = step_ctx_free(ctx);
	job_park(env, job);
}

/* The run of the job's current step is over. */
static void step_ended(void *arg, ghl_step_ctx *ctx, int ok)
{
	struct job *job = arg;
	if (job->compensating)
		compensation_ended(job, ctx, ok == STEP_RUN_DONE);
	else if (ok == STEP_RUN_PARKED)
		step_parked(job, ctx);
	else if (ok == STEP_RUN_DONE)
		step_done(job, ctx);
	else
		step_failed(job, ctx);
}

/* ---- jobs ---------------------------------------------------------------- */

static void job_end(const struct runner_env *env, struct job *job, const char *status,
		    const char *error, int retry, long long delay_ms)
{
	job->done = 1;
	if (env->journal) {
		char *ctx_text = json_to_string(job->context);
		struct job_write w = {
			.status = status,
			.error_message = error,
			.set_error = 1,
			.context_json = ctx_text,
			.retry_count = retry ? job->retry_count + 1 : -1,
			.run_at_delay_ms = retry ? delay_ms : -1,
			.release = 1,
			.finished = !strcmp(status, "COMPLETED") || !strcmp(status, "FAILED") ||
				    !strcmp(status, "CANCELLED"),
		};
		journal_job(env->journal, job->id, &w, NULL, NULL);
		free(ctx_text);
	}
	if (error && env->journal)
		log_info("job ended", "job_id", job->id, "status", status, "error", error, NULL);
	env->job_ended(env->arg, job, status);
}

static void job_release(const struct runner_env *env, struct job *job)
{
	job->done = 1;
	if (env->journal) {
		char *ctx_text = json_to_string(job->context);
		struct job_write w = {.status = "PENDING",
				      .context_json = ctx_text,
				      .retry_count = -1,
				      .run_at_delay_ms = 0,
				      .release = 1};
		journal_job(env->journal, job->id, &w, NULL, NULL);
		free(ctx_text);
	}
	env->job_ended(env->arg, job, "RELEASED");
}

/* The step at job->step has a `when` (predicate.h) that is false: journal it
 * as SKIPPED, record it in the context and move on; 1. A step that runs: 0.
 * A `when` that does not parse (the pipeline was checked at the job's start,
 * so this is a bug) fails the job: -1. A skipped step is never compensated. */
static int step_skip(const struct runner_env *env, struct job *job, const struct json *item)
{
	const struct json *when = json_get(item, "when");
	if (!when || when->type != JSON_STRING)
		return 0;
	struct predicate_roots roots = {job->client, json_get(job->context, "outputs"),
					step_host_job_doc(job)};
	struct err e;
	int rc = predicate_eval(when->u.str.s, when->u.str.len, &roots, &e);
	if (rc == 1)
		return 0;
	if (rc < 0) {
		char *msg = xasprintf("pipeline[%d].when: %s", job->step, e.msg);
		job_end(env, job, "FAILED", msg, 0, -1);
		free(msg);
		return -1;
	}
	const char *name = json_get_str(item, "step");
	struct json *d = json_new_object();
	json_object_set_take(d, "index", json_new_int(job->step));
	json_object_set_take(d, "attempt", json_new_int(job->attempt));
	json_object_set_take(d, "when", json_clone(when));
	json_object_set_take(d, "reason", json_new_string("the step's when is false"));
	journal_step(env, job, name ? name : "?", "SKIPPED", d);
	char key[16];
	snprintf(key, sizeof(key), "%d", job->step);
	struct json *rec = json_new_object();
	json_object_set_take(rec, "step", json_new_string(name));
	json_object_set_take(rec, "status", json_new_string("SKIPPED"));
	json_object_set_take(rec, "when", json_clone(when));
	json_object_set_take(context_steps(job), key, rec);
	job->step++;
	return 1;
}

/* IN_PROGRESS without a lease: no process holds the job, none claims it
 * (claims take PENDING and RETRYING jobs) until a person ends its task. A
 * job cancelled or stopping meanwhile ends or is released as usual. */
static void job_park(const struct runner_env *env, struct job *job)
{
	if (job->lost || job->cancel || job->stopping) {
		json_object_remove(job->context, "waiting");
		job_next_step(env, job);
		return;
	}
	job->done = 1;
	if (env->journal) {
		char *ctx_text = json_to_string(job->context);
		struct job_write w = {.status = "IN_PROGRESS",
				      .context_json = ctx_text,
				      .retry_count = -1,
				      .run_at_delay_ms = -1,
				      .release = 1};
		journal_job(env->journal, job->id, &w, NULL, NULL);
		free(ctx_text);
	}
	log_info("job waits for a person", "job_id", job->id, "task_id",
		 json_get_str(json_get(job->context, "waiting"), "task_id"), NULL);
	env->job_ended(env->arg, job, "PARKED");
}

static void job_next_step(const struct runner_env *env, struct job *job)
{
	if (job->lost) {
		env->job_ended(env->arg, job, "LOST");
		return;
	}
	if (job->cancel) {
		job_end(env, job, "CANCELLED", "cancelled by request", 0, -1);
		return;
	}
	if (job->stopping) {
		job_release(env, job);
		return;
	}
	struct json *pipeline = json_get(job->context, "pipeline");
	struct json *steps = context_steps(job);
	size_t n = json_len(pipeline);
	struct json *item;
	int skipped = 0;
	for (;;) {
		while ((size_t)job->step < n) {
			char key[16];
			snprintf(key, sizeof(key), "%d", job->step);
			const char *st = json_get_str(json_get(steps, key), "status");
			if (!str_eq(st, "COMPLETED") && !str_eq(st, "SKIPPED"))
				break;
			job->step++; /* done by an earlier attempt: resume after it */
		}
		if ((size_t)job->step >= n) {
			job_end(env, job, "COMPLETED", NULL, 0, -1);
			return;
		}
		item = json_at(pipeline, (size_t)job->step);
		int rc = step_skip(env, job, item);
		if (rc < 0)
			return; /* the job ended */
		if (!rc)
			break;
		skipped = 1;
	}
	if (skipped)
		write_context(env, job); /* the skips are not decided again after a crash */
	const char *name = json_get_str(item, "step");
	struct step_impl *impl = name ? step_registry_find(env->app->steps, name) : NULL;
	if (!impl) {
		char *err = xasprintf("pipeline[%d]: step \"%s\" is not registered any more",
				      job->step, name ? name : "?");
		job_end(env, job, "FAILED", err, 0, -1);
		free(err);
		return;
	}
	ghl_step_ctx *ctx = run_new(env, job, impl, json_get(item, "config"), 0);
	job->run = ctx;
	struct json *d = json_new_object();
	json_object_set_take(d, "index", json_new_int(job->step));
	json_object_set_take(d, "attempt", json_new_int(job->attempt));
	journal_step(env, job, impl->name, "STARTED", d);
	step_ctx_start(ctx);
}

/* ---- rollback ------------------------------------------------------------- */

/* The job failed for good. With "on_failure": "rollback" its completed steps
 * that can undo themselves do so, newest first, before it is FAILED. */
static void job_fail(const struct runner_env *env, struct job *job, const char *error, int rollback)
{
	if ((!rollback && !str_eq(json_get_str(job->context, "on_failure"), "rollback")) ||
	    job->lost || job->stopping) {
		job_end(env, job, "FAILED", error, 0, -1);
		return;
	}
	free(job->fail_error);
	job->fail_error = xstrdup(error);
	job->compensating = 1;
	job->step--; /* the failed step did not complete: start below it */
	compensate_next(env, job);
}

static void note(struct job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct job *job, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	if (job->comp_notes)
		buf_printf(&b, "%s; ", job->comp_notes);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(job->comp_notes);
	job->comp_notes = buf_take(&b);
}

static void compensate_next(const struct runner_env *env, struct job *job)
{
	struct json *pipeline = json_get(job->context, "pipeline");
	struct json *steps = context_steps(job);
	for (; job->step >= 0; job->step--) {
		char key[16];
		snprintf(key, sizeof(key), "%d", job->step);
		struct json *rec = json_get(steps, key);
		if (!str_eq(json_get_str(rec, "status"), "COMPLETED"))
			continue;
		struct json *item = json_at(pipeline, (size_t)job->step);
		const char *name = json_get_str(item, "step");
		struct step_impl *impl = name ? step_registry_find(env->app->steps, name) : NULL;
		if (!impl || !impl->has_compensate)
			continue;
		ghl_step_ctx *ctx = run_new(env, job, impl, json_get(item, "config"), 1);
		job->run = ctx;
		struct json *d = json_new_object();
		json_object_set_take(d, "index", json_new_int(job->step));
		json_object_set_take(d, "attempt", json_new_int(job->attempt));
		json_object_set_take(d, "compensate", json_new_bool(1));
		journal_step(env, job, impl->name, "STARTED", d);
		step_ctx_start(ctx);
		return;
	}
	char *error = job->comp_notes
			      ? xasprintf("%s (rollback: %s)", job->fail_error, job->comp_notes)
			      : xasprintf("%s (rollback: nothing to undo)", job->fail_error);
	job->compensating = 0;
	job_end(env, job, "FAILED", error, 0, -1);
	free(error);
}

static void compensation_ended(struct job *job, ghl_step_ctx *ctx, int ok)
{
	const struct runner_env *env = job->env;
	const char *name = step_ctx_impl(ctx)->name;
	struct json *d = details_base(job, ctx);
	json_object_set_take(d, "compensate", json_new_bool(1));
	const char *msg = ok ? NULL : step_ctx_error(ctx, NULL, NULL);
	if (!ok)
		json_object_set_take(d, "error", json_new_string(msg));
	journal_step(env, job, name, ok ? "COMPLETED" : "FAILED", d);
	if (ok)
		note(job, "undid %s", name);
	else
		note(job, "could not undo %s: %s", name, msg);
	char key[16];
	snprintf(key, sizeof(key), "%d", job->step);
	struct json *rec = json_get(context_steps(job), key);
	if (ok && rec)
		json_object_set_take(rec, "status", json_new_string("COMPENSATED"));
	job->run = step_ctx_free(ctx);
	job->step--;
	compensate_next(env, job);
}

void runner_run(const struct runner_env *env, struct job *job)
{
	job->env = env;
	job->started_ms = now_monotonic_ms();
	if (!json_get(job->context, "pipeline")) {
		/* first start: fix the pipeline the job will keep */
		struct json *p = pipeline_effective(job->settings, env->default_settings);
		struct json *wrap = json_new_object();
		if (p)
			json_object_set_take(wrap, "pipeline", p);
		struct err e;
		if (!p || pipeline_check(env->app->steps, wrap, &e)) {
			char *msg = xasprintf("invalid pipeline: %s",
					      p ? e.msg : "no pipeline configured");
			json_free(wrap);
			job_end(env, job, "FAILED", msg, 0, -1);
			free(msg);
			return;
		}
		json_object_set_take(job->context, "pipeline", json_clone(p));
		json_free(wrap);
		int64_t mr = env->default_max_retries;
		json_get_int(job->settings, "max_retries", &mr);
		json_object_set_take(job->context, "max_retries", json_new_int(mr));
		const char *of = json_get_str(job->settings, "on_failure");
		if (!of)
			of = json_get_str(env->default_settings, "on_failure");
		json_object_set_take(job->context, "on_failure", json_new_string(of ? of : "fail"));
		/* stored now, not after the first step: the timeline shows every step
		 * (the first one running) from the start, and a restart keeps it */
		write_context(env, job);
	}
	int64_t mr = env->default_max_retries;
	json_get_int(job->context, "max_retries", &mr);
	job->max_retries = (int)mr;
	/* a parked job claimed again: its task ended, the step runs again */
	json_object_remove(job->context, "waiting");
	job->step = 0;
	job_next_step(env, job);
}

void runner_abort(struct job *job, int release)
{
	job->run = step_ctx_free(job->run);
	if (release && !job->lost)
		job_release(job->env, job);
	else
		job->env->job_ended(job->env->arg, job, job->lost ? "LOST" : "ABORTED");
}

/* ---- one-off runs ---------------------------------------------------------- */

/* A job of one step with no journal: the step's last record is kept for done(). */
struct once {
	struct job job;
	struct runner_env env;
	struct json *last; /* details of the COMPLETED or FAILED record */
	runner_once_fn cb;
	void *arg;
};

static void once_logged(void *arg, struct job *job, const char *step, const char *status,
			const struct json *details)
{
	(void)job;
	(void)step;
	struct once *o = arg;
	if (!strcmp(status, "STARTED"))
		return;
	json_free(o->last);
	o->last = json_clone(details);
}

static void once_ended(void *arg, struct job *job, const char *outcome)
{
	(void)job;
	struct once *o = arg;
	const struct json *outputs = json_get(o->last, "outputs");
	const struct json *log = json_get(o->last, "log");
	char *outputs_text = outputs ? json_to_string(outputs) : xstrdup("{}");
	char *log_text = log ? json_to_string(log) : xstrdup("[]");
	o->cb(o->arg, outcome, outputs_text, log_text, json_get_str(o->last, "error"));
	free(outputs_text);
	free(log_text);
	json_free(o->last);
	job_clear(&o->job);
	free(o);
}

void runner_run_once(struct app *app, struct step_impl *impl, const char *agency_id,
		     const char *company_id, const struct json *snapshot, const struct json *client,
		     const struct json *config, const struct json *outputs, runner_once_fn done,
		     void *arg)
{
	struct once *o = xcalloc(1, sizeof(*o));
	o->env.app = app;
	o->env.job_ended = once_ended;
	o->env.step_logged = once_logged;
	o->env.arg = o;
	o->cb = done;
	o->arg = arg;
	struct job *job = &o->job;
	job->env = &o->env;
	job->id = xstrdup("00000000-0000-0000-0000-000000000000");
	job->agency_id = xstrdup(agency_id ? agency_id : "");
	job->company_id = company_id ? xstrdup(company_id) : NULL;
	job->client = client ? json_clone(client) : json_new_object();
	job->snapshot = snapshot && snapshot->type == JSON_OBJECT ? json_clone(snapshot) : NULL;
	job->context = json_new_object();
	json_object_set_take(job->context, "outputs",
			     outputs ? json_clone(outputs) : json_new_object());
	ghl_step_ctx *ctx = run_new(&o->env, job, impl, config, 0);
	job->run = ctx;
	step_ctx_start(ctx);
}
