/* wait_for_snapshot — WAIT_FOR_SNAPSHOT: waits until GHL has finished the
 * snapshot push into the new location: status not "processing" and nothing
 * pending (GHL documents neither precisely, so both must hold). A status of
 * "failed" or "error" fails the step; so does the timeout (retryable).
 *
 * The wait is shared (host snapshot_push_wait): the agent polls the
 * snapshot's pushes (GET /snapshots/snapshot-status/{snapshotId}) once per
 * poll interval for every job waiting for that snapshot, the first time
 * first_poll_ms after the wait began (the typical push time). When that list
 * cannot tell (the push is not listed, GHL refuses the list), the step asks
 * about its own location (GET /snapshots/snapshot-status/{snapshotId}/location/
 * {locationId}) and, while that says processing, waits again. The timeout
 * counts the time waited, not the time the status requests themselves took.
 * Skipped when the job has no snapshot.
 * Config: {"first_poll_ms": 3000, "poll_interval_ms": 2000, "timeout_ms": 600000}.
 * Outputs: snapshot_status, or snapshot_wait_skipped. */
#include <stdint.h>
#include <string.h>

#include "ghl_step.h"

GHL_STEP_HOST;

#define DEF_POLL_MS 2000
#define MIN_POLL_MS 100
#define DEF_TIMEOUT_MS 600000
#define DEF_FIRST_MS 3000
/* Polls of the shared list a push may miss before the step asks itself
 * (the host's PUSH_MISSES), for the time accounting. */
#define SHARED_MISSES 3

/* Phases: what the step waits for. */
enum { PH_START = 0, PH_POLLED = 1, PH_SLEPT = 2, PH_SHARED = 3 };

/* Per-run state: the polls this step sent itself, the time waited so far. */
struct run {
	int polls;
	int shared; /* shared waits started */
	long long spent_ms;
};

/* A non-empty string at path, or NULL. */
static const char *str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

static long config_ms(ghl_step_ctx *ctx, const char *key, long def, long min)
{
	int64_t n;
	if (host->get_int(ctx, GHL_SRC_CONFIG, GHL_PATH(key), &n))
		return def;
	return n < min ? min : (long)n;
}

static const char *snapshot_id(ghl_step_ctx *ctx)
{
	const char *id = str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("ghl_snapshot_id"));
	return id ? id : str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "ghl_snapshot_id"));
}

static int poll(ghl_step_ctx *ctx, struct run *r)
{
	const char *loc = str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
	const char *path = host->format(ctx, "/snapshots/snapshot-status/%s/location/%s",
					host->urlencode(ctx, snapshot_id(ctx)),
					host->urlencode(ctx, loc));
	const char *company = str(ctx, GHL_SRC_JOB, GHL_PATH("company_id"));
	const char *q = host->format(ctx, "companyId=%s", host->urlencode(ctx, company));
	host->log(ctx, GHL_LOG_DEBUG, "GET %s (poll %d)", path, ++r->polls);
	host->set_phase(ctx, PH_POLLED);
	if (host->request(ctx, "GET", path, q, NULL, GHL_TOKEN_AGENCY) < 0)
		return host->fail(ctx, 1, "could not start GET %s", path);
	return GHL_STEP_WAIT;
}

/* Wait with every other job waiting for this snapshot. */
static int shared_wait(ghl_step_ctx *ctx, struct run *r)
{
	long interval = config_ms(ctx, "poll_interval_ms", DEF_POLL_MS, MIN_POLL_MS);
	long timeout = config_ms(ctx, "timeout_ms", DEF_TIMEOUT_MS, 0);
	/* the typical push time once; after a fallback the push is overdue */
	long first = r->shared++ ? interval : config_ms(ctx, "first_poll_ms", DEF_FIRST_MS, 0);
	long long left = timeout - r->spent_ms;
	if (left < 0)
		left = 0;
	const char *loc = str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
	host->log(ctx, GHL_LOG_DEBUG, "waiting for the push (shared poll, first after %ld ms)",
		  first);
	host->set_phase(ctx, PH_SHARED);
	if (host->snapshot_push_wait(ctx, snapshot_id(ctx), loc, (int)first, (int)interval,
				     (int)(left > 0x7fffffff ? 0x7fffffff : left)) < 0)
		return host->fail(ctx, 1, "could not start waiting for the snapshot push");
	/* what this wait may cost at most if the list cannot tell */
	r->spent_ms += first + (long long)interval * SHARED_MISSES;
	return GHL_STEP_WAIT;
}

static int can_share(void)
{
	return host->abi_minor >= 2 && host->snapshot_push_wait;
}

static int polled(ghl_step_ctx *ctx, struct run *r, int shared)
{
	int st = host->response_status(ctx);
	const char *trace = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
	host->log(ctx, GHL_LOG_DEBUG, "snapshot status%s -> %d traceId=%s",
		  shared ? " (shared poll)" : "", st, trace ? trace : "-");
	if (shared && st != 200) {
		host->log(ctx, GHL_LOG_INFO,
			  "the shared poll could not tell (%s); asking GHL "
			  "about this location",
			  host->response_message(ctx) ? host->response_message(ctx) : "no message");
		return poll(ctx, r);
	}
	if (st < 200 || st > 299)
		return host->fail_from_response(ctx, "reading snapshot push status");
	const char *status = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("data", "status"));
	size_t pending = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("data", "pending"));
	if (status && (strcmp(status, "failed") == 0 || strcmp(status, "error") == 0))
		return host->fail(ctx, 0, "snapshot push into location %s %s",
				  str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id")), status);
	if ((!status || strcmp(status, "processing") != 0) && pending == 0) {
		host->log(ctx, GHL_LOG_INFO,
			  "snapshot push finished (%s) after %d own polls, %d "
			  "shared waits",
			  status ? status : "no status", r->polls, r->shared);
		host->set_output(ctx, "snapshot_status",
				 host->quote(ctx, status ? status : "done"));
		return GHL_STEP_DONE;
	}
	long interval = config_ms(ctx, "poll_interval_ms", DEF_POLL_MS, MIN_POLL_MS);
	long timeout = config_ms(ctx, "timeout_ms", DEF_TIMEOUT_MS, 0);
	if (shared || r->spent_ms + interval > timeout)
		return host->fail(ctx, 1, "snapshot push still %s after %ld ms (%zu pending)",
				  status ? status : "unfinished", timeout, pending);
	r->spent_ms += interval;
	host->set_phase(ctx, PH_SLEPT);
	if (host->sleep_ms(ctx, (int)interval) < 0)
		return host->fail(ctx, 1, "could not start a timer");
	return GHL_STEP_WAIT;
}

static int wait_for_snapshot_run(ghl_step_ctx *ctx)
{
	struct run *r = host->state_alloc(ctx, sizeof(*r));
	switch (host->phase(ctx)) {
	case PH_SHARED: return polled(ctx, r, 1);
	case PH_POLLED: return polled(ctx, r, 0);
	case PH_SLEPT: return can_share() ? shared_wait(ctx, r) : poll(ctx, r);
	default: break;
	}
	if (host->get_type(ctx, GHL_SRC_JOB, GHL_PATH("snapshot")) != GHL_TYPE_OBJECT ||
	    !snapshot_id(ctx)) {
		host->log(ctx, GHL_LOG_INFO, "job has no snapshot; skipped");
		host->set_output(ctx, "snapshot_wait_skipped", "true");
		return GHL_STEP_DONE;
	}
	if (!str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id")))
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before "
				  "WAIT_FOR_SNAPSHOT");
	return can_share() ? shared_wait(ctx, r) : poll(ctx, r);
}

static const struct ghl_step_def steps[] = {
	{"WAIT_FOR_SNAPSHOT", "1.1.0",
	 "{\"type\":\"object\",\"properties\":{"
	 "\"first_poll_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":600000,"
	 "\"default\":3000,\"description\":\"the typical push time: the first poll comes after "
	 "it\"},"
	 "\"poll_interval_ms\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":600000,"
	 "\"default\":2000,\"description\":\"time between status polls (one poll per interval "
	 "serves every job waiting for the snapshot)\"},"
	 "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":86400000,"
	 "\"default\":600000,\"description\":\"give up (retryable) after this much waiting\"}},"
	 "\"additionalProperties\":false}",
	 "waits until GHL has finished loading the snapshot into the location",
	 wait_for_snapshot_run, NULL, NULL},
};

GHL_STEP_PLUGIN(wait_for_snapshot, "1.0.0", NULL, steps)
