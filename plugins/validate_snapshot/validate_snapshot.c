/* validate_snapshot — VALIDATE_SNAPSHOT: the job's snapshot is active, belongs
 * to the job's agency and still exists in GHL (GET /snapshots/?companyId=).
 * A job without a snapshot passes with snapshot_skipped=true.
 * Outputs: ghl_snapshot_id, or snapshot_skipped. Config: none. */
#include <string.h>

#include "ghl_step.h"

static const struct ghl_host_api *host;

enum { PH_START = 0, PH_LISTED = 1 };

/* A present, non-null, non-empty value, or NULL. */
static const char *val(ghl_step_ctx *ctx, const char *src, const char *path)
{
	const char *v = host->get(ctx, src, path);
	return v && *v && strcmp(v, "null") != 0 ? v : NULL;
}

static int check_local(ghl_step_ctx *ctx, const char *ghl_id)
{
	const char *name = val(ctx, GHL_SRC_JOB, "snapshot.name");
	const char *active = val(ctx, GHL_SRC_JOB, "snapshot.is_active");
	const char *owner = val(ctx, GHL_SRC_JOB, "snapshot.agency_id");
	const char *agency = val(ctx, GHL_SRC_JOB, "agency_id");

	if (!ghl_id)
		return host->fail(ctx, 0, "snapshot %s has no ghl_snapshot_id", name ? name : "?");
	if (!active || strcmp(active, "true") != 0)
		return host->fail(ctx, 0, "snapshot %s (%s) is not active",
				  name ? name : ghl_id, ghl_id);
	if (!owner || !agency || strcmp(owner, agency) != 0)
		return host->fail(ctx, 0, "snapshot %s (%s) belongs to another agency",
				  name ? name : ghl_id, ghl_id);
	return GHL_STEP_DONE;
}

static int list_snapshots(ghl_step_ctx *ctx)
{
	const char *company = val(ctx, GHL_SRC_JOB, "company_id");
	if (!company)
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	host->log(ctx, GHL_LOG_INFO, "GET /snapshots/ companyId=%s", company);
	host->set_phase(ctx, PH_LISTED);
	if (host->request(ctx, "GET", "/snapshots/",
			  host->format(ctx, "companyId=%s", host->urlencode(ctx, company)), NULL,
			  GHL_TOKEN_AGENCY) < 0)
		return host->fail(ctx, 1, "could not start GET /snapshots/");
	return GHL_STEP_WAIT;
}

static int find_snapshot(ghl_step_ctx *ctx, const char *ghl_id)
{
	int status = host->response_status(ctx);
	const char *trace = val(ctx, GHL_SRC_RESPONSE, "traceId");
	host->log(ctx, GHL_LOG_INFO, "GET /snapshots/ -> %d traceId=%s", status, trace ? trace : "-");
	if (status < 200 || status > 299)
		return host->fail_from_response(ctx, "listing snapshots");
	size_t n = host->count(ctx, GHL_SRC_RESPONSE, "snapshots");
	for (size_t i = 0; i < n; i++) {
		const char *id = val(ctx, GHL_SRC_RESPONSE, host->format(ctx, "snapshots[%zu].id", i));
		if (id && strcmp(id, ghl_id) == 0) {
			host->set_output(ctx, "ghl_snapshot_id", host->quote(ctx, ghl_id));
			return GHL_STEP_DONE;
		}
	}
	const char *name = val(ctx, GHL_SRC_JOB, "snapshot.name");
	return host->fail(ctx, 0, "snapshot %s (%s) no longer exists in GHL", name ? name : ghl_id,
			  ghl_id);
}

static int validate_snapshot_run(ghl_step_ctx *ctx)
{
	if (!val(ctx, GHL_SRC_JOB, "snapshot")) {
		host->log(ctx, GHL_LOG_INFO, "job has no snapshot; skipped");
		host->set_output(ctx, "snapshot_skipped", "true");
		return GHL_STEP_DONE;
	}
	const char *ghl_id = val(ctx, GHL_SRC_JOB, "snapshot.ghl_snapshot_id");
	if (host->phase(ctx) == PH_LISTED)
		return find_snapshot(ctx, ghl_id);
	if (check_local(ctx, ghl_id) != GHL_STEP_DONE)
		return GHL_STEP_FAIL;
	return list_snapshots(ctx);
}

static int validate_snapshot_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"VALIDATE_SNAPSHOT", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
	 "checks the job's snapshot is active, the agency's, and still in GHL",
	 validate_snapshot_run, NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "validate_snapshot", validate_snapshot_init, steps,
	sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
