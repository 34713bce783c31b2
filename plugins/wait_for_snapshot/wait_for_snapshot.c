/* wait_for_snapshot — WAIT_FOR_SNAPSHOT: polls the snapshot push into the new
 * location (GET /snapshots/snapshot-status/{snapshotId}/location/{locationId})
 * until GHL reports it finished: status not "processing" and nothing pending
 * (GHL documents neither precisely, so both must hold). A status of "failed" or
 * "error" fails the step; so does the timeout (retryable). The timeout counts
 * poll intervals slept, not the time the status requests themselves took.
 * Skipped when the job has no snapshot.
 * Config: {"poll_interval_ms": 2000, "timeout_ms": 600000}.
 * Outputs: snapshot_status, or snapshot_wait_skipped. */
#include <stdint.h>
#include <string.h>

#include "ghl_step.h"

GHL_STEP_HOST;

#define DEF_POLL_MS 2000
#define MIN_POLL_MS 100
#define DEF_TIMEOUT_MS 600000

/* Phases: what the step waits for. */
enum { PH_START = 0, PH_POLLED = 1, PH_SLEPT = 2 };

/* Per-run state: the polls sent so far. */
struct run {
	int polls;
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

static int polled(ghl_step_ctx *ctx, const struct run *r)
{
	int st = host->response_status(ctx);
	const char *trace = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
	host->log(ctx, GHL_LOG_DEBUG, "snapshot status -> %d traceId=%s", st, trace ? trace : "-");
	if (st < 200 || st > 299)
		return host->fail_from_response(ctx, "reading snapshot push status");
	const char *status = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("data", "status"));
	size_t pending = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("data", "pending"));
	if (status && (strcmp(status, "failed") == 0 || strcmp(status, "error") == 0))
		return host->fail(ctx, 0, "snapshot push into location %s %s",
				  str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id")), status);
	if ((!status || strcmp(status, "processing") != 0) && pending == 0) {
		host->log(ctx, GHL_LOG_INFO, "snapshot push finished (%s) after %d polls",
			  status ? status : "no status", r->polls);
		host->set_output(ctx, "snapshot_status", host->quote(ctx, status ? status : "done"));
		return GHL_STEP_DONE;
	}
	long interval = config_ms(ctx, "poll_interval_ms", DEF_POLL_MS, MIN_POLL_MS);
	long timeout = config_ms(ctx, "timeout_ms", DEF_TIMEOUT_MS, 0);
	if ((long long)r->polls * interval > timeout)
		return host->fail(ctx, 1, "snapshot push still %s after %ld ms (%zu pending)",
				  status ? status : "unfinished", timeout, pending);
	host->set_phase(ctx, PH_SLEPT);
	if (host->sleep_ms(ctx, (int)interval) < 0)
		return host->fail(ctx, 1, "could not start a timer");
	return GHL_STEP_WAIT;
}

static int wait_for_snapshot_run(ghl_step_ctx *ctx)
{
	struct run *r = host->state_alloc(ctx, sizeof(*r));
	switch (host->phase(ctx)) {
	case PH_POLLED:
		return polled(ctx, r);
	case PH_SLEPT:
		return poll(ctx, r);
	default:
		break;
	}
	if (host->get_type(ctx, GHL_SRC_JOB, GHL_PATH("snapshot")) != GHL_TYPE_OBJECT ||
	    !snapshot_id(ctx)) {
		host->log(ctx, GHL_LOG_INFO, "job has no snapshot; skipped");
		host->set_output(ctx, "snapshot_wait_skipped", "true");
		return GHL_STEP_DONE;
	}
	if (!str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_id")))
		return host->fail(ctx, 0, "no location_id: CREATE_LOCATION must run before "
					  "WAIT_FOR_SNAPSHOT");
	return poll(ctx, r);
}

static const struct ghl_step_def steps[] = {
	{"WAIT_FOR_SNAPSHOT", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{"
	 "\"poll_interval_ms\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":600000,"
	 "\"default\":2000,\"description\":\"time between status polls\"},"
	 "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":86400000,"
	 "\"default\":600000,\"description\":\"give up (retryable) after this much waiting\"}},"
	 "\"additionalProperties\":false}",
	 "waits until GHL has finished loading the snapshot into the location",
	 wait_for_snapshot_run, NULL, NULL},
};

GHL_STEP_PLUGIN(wait_for_snapshot, "1.0.0", NULL, steps)
