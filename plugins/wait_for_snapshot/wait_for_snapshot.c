/* wait_for_snapshot — WAIT_FOR_SNAPSHOT: polls the snapshot push into the new
 * location (GET /snapshots/snapshot-status/{snapshotId}/location/{locationId})
 * until GHL reports it finished: status not "processing" and nothing pending
 * (GHL documents neither precisely, so both must hold). A status of "failed" or
 * "error" fails the step; so does the timeout (retryable). The timeout counts
 * poll intervals slept, not the time the status requests themselves took.
 * Skipped when the job has no snapshot.
 * Config: {"poll_interval_ms": 2000, "timeout_ms": 600000}.
 * Outputs: snapshot_status, or snapshot_wait_skipped. */
#include <stdlib.h>
#include <string.h>

#include "ghl_step.h"

static const struct ghl_host_api *host;

#define DEF_POLL_MS 2000
#define MIN_POLL_MS 100
#define DEF_TIMEOUT_MS 600000

/* Phases: 0 first call; 2n+1 waiting for the reply to poll n (n from 0);
 * 2n+2 sleeping after poll n. */

/* A present, non-null, non-empty value, or NULL. */
static const char *val(ghl_step_ctx *ctx, const char *src, const char *path)
{
	const char *v = host->get(ctx, src, path);
	return v && *v && strcmp(v, "null") != 0 ? v : NULL;
}

static long config_ms(ghl_step_ctx *ctx, const char *key, long def, long min)
{
	const char *v = val(ctx, GHL_SRC_CONFIG, key);
	char *end;
	long n = v ? strtol(v, &end, 10) : def;
	if (!v || *end || n < min)
		n = v ? min : def;
	return n;
}

static const char *snapshot_id(ghl_step_ctx *ctx)
{
	const char *id = val(ctx, GHL_SRC_OUTPUTS, "ghl_snapshot_id");
	return id ? id : val(ctx, GHL_SRC_JOB, "snapshot.ghl_snapshot_id");
}

static int poll(ghl_step_ctx *ctx, int n)
{
	const char *snap = snapshot_id(ctx);
	const char *loc = val(ctx, GHL_SRC_OUTPUTS, "location_id");
	const char *path = host->format(ctx, "/snapshots/snapshot-status/%s/location/%s",
					host->urlencode(ctx, snap), host->urlencode(ctx, loc));
	const char *q = host->format(ctx, "companyId=%s",
				     host->urlencode(ctx, val(ctx, GHL_SRC_JOB, "company_id")));
	host->log(ctx, GHL_LOG_DEBUG, "GET %s (poll %d)", path, n + 1);
	host->set_phase(ctx, 2 * n + 1);
	if (host->request(ctx, "GET", path, q, NULL, GHL_TOKEN_AGENCY) < 0)
		return host->fail(ctx, 1, "could not start GET %s", path);
	return GHL_STEP_WAIT;
}

static int polled(ghl_step_ctx *ctx, int n)
{
	int st = host->response_status(ctx);
	const char *trace = val(ctx, GHL_SRC_RESPONSE, "traceId");
	host->log(ctx, GHL_LOG_DEBUG, "snapshot status -> %d traceId=%s", st, trace ? trace : "-");
	if (st < 200 || st > 299)
		return host->fail_from_response(ctx, "reading snapshot push status");
	const char *status = val(ctx, GHL_SRC_RESPONSE, "data.status");
	size_t pending = host->count(ctx, GHL_SRC_RESPONSE, "data.pending");
	if (status && (strcmp(status, "failed") == 0 || strcmp(status, "error") == 0))
		return host->fail(ctx, 0, "snapshot push into location %s %s",
				  val(ctx, GHL_SRC_OUTPUTS, "location_id"), status);
	if ((!status || strcmp(status, "processing") != 0) && pending == 0) {
		host->log(ctx, GHL_LOG_INFO, "snapshot push finished (%s) after %d polls",
			  status ? status : "no status", n + 1);
		host->set_output(ctx, "snapshot_status", host->quote(ctx, status ? status : "done"));
		return GHL_STEP_DONE;
	}
	long interval = config_ms(ctx, "poll_interval_ms", DEF_POLL_MS, MIN_POLL_MS);
	long timeout = config_ms(ctx, "timeout_ms", DEF_TIMEOUT_MS, 0);
	if ((long long)(n + 1) * interval > timeout)
		return host->fail(ctx, 1, "snapshot push still %s after %ld ms (%zu pending)",
				  status ? status : "unfinished", timeout, pending);
	host->set_phase(ctx, 2 * n + 2);
	if (host->sleep_ms(ctx, (int)interval) < 0)
		return host->fail(ctx, 1, "could not start a timer");
	return GHL_STEP_WAIT;
}

static int wait_for_snapshot_run(ghl_step_ctx *ctx)
{
	int ph = host->phase(ctx);
	if (ph > 0)
		return ph % 2 ? polled(ctx, (ph - 1) / 2) : poll(ctx, ph / 2);
	if (!val(ctx, GHL_SRC_JOB, "snapshot") || !snapshot_id(ctx)) {
		host->log(ctx, GHL_LOG_INFO, "job has no snapshot; skipped");
		host->set_output(ctx, "snapshot_wait_skipped", "true");
		return GHL_STEP_DONE;
	}
	if (!val(ctx, GHL_SRC_OUTPUTS, "location_id"))
		return host->fail(ctx, 0, "no location_id: CREATE_LOCATION must run before "
					  "WAIT_FOR_SNAPSHOT");
	return poll(ctx, 0);
}

static int wait_for_snapshot_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
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
	 wait_for_snapshot_run, NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "wait_for_snapshot", wait_for_snapshot_init, steps,
	sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
