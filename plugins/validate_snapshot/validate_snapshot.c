/* validate_snapshot — VALIDATE_SNAPSHOT: the job's snapshot is active, belongs
 * to the job's agency and still exists in GHL (GET /snapshots/?companyId=).
 * The agency's snapshot list is shared: the agent asks GHL once per agency
 * per cache_ttl_ms, and jobs validating at the same moment share one request
 * (host request_cached). A job without a snapshot passes with
 * snapshot_skipped=true.
 * Outputs: ghl_snapshot_id, or snapshot_skipped.
 * Config: {"cache_ttl_ms": 60000} (0: ask GHL for every job). */
#include <stdint.h>
#include <string.h>

#include "ghl_step.h"

GHL_STEP_HOST;

#define DEF_TTL_MS 60000

enum { PH_START = 0, PH_LISTED = 1 };

/* A non-empty string at path, or NULL. */
static const char *str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

static int check_local(ghl_step_ctx *ctx, const char *ghl_id)
{
	const char *name = str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "name"));
	const char *owner = str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "agency_id"));
	const char *agency = str(ctx, GHL_SRC_JOB, GHL_PATH("agency_id"));
	int active = 0;

	if (!ghl_id)
		return host->fail(ctx, 0, "snapshot %s has no ghl_snapshot_id", name ? name : "?");
	if (host->get_bool(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "is_active"), &active) || !active)
		return host->fail(ctx, 0, "snapshot %s (%s) is not active", name ? name : ghl_id,
				  ghl_id);
	if (!owner || !agency || strcmp(owner, agency) != 0)
		return host->fail(ctx, 0, "snapshot %s (%s) belongs to another agency",
				  name ? name : ghl_id, ghl_id);
	return GHL_STEP_DONE;
}

static int list_snapshots(ghl_step_ctx *ctx)
{
	const char *company = str(ctx, GHL_SRC_JOB, GHL_PATH("company_id"));
	if (!company)
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	int64_t ttl = DEF_TTL_MS;
	if (host->get_int(ctx, GHL_SRC_CONFIG, GHL_PATH("cache_ttl_ms"), &ttl) || ttl < 0)
		ttl = DEF_TTL_MS;
	const char *q = host->format(ctx, "companyId=%s", host->urlencode(ctx, company));
	host->log(ctx, GHL_LOG_INFO, "GET /snapshots/ companyId=%s (shared for %lld ms)", company,
		  (long long)ttl);
	host->set_phase(ctx, PH_LISTED);
	int rc = host->abi_minor >= 2 && host->request_cached
			 ? host->request_cached(ctx, "/snapshots/", q, GHL_TOKEN_AGENCY, (int)ttl)
			 : host->request(ctx, "GET", "/snapshots/", q, NULL, GHL_TOKEN_AGENCY);
	if (rc < 0)
		return host->fail(ctx, 1, "could not start GET /snapshots/");
	return GHL_STEP_WAIT;
}

static int find_snapshot(ghl_step_ctx *ctx, const char *ghl_id)
{
	int status = host->response_status(ctx);
	const char *trace = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("traceId"));
	host->log(ctx, GHL_LOG_INFO, "GET /snapshots/ -> %d traceId=%s", status,
		  trace ? trace : "-");
	if (status < 200 || status > 299)
		return host->fail_from_response(ctx, "listing snapshots");
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH("snapshots"));
	for (size_t i = 0; i < n; i++) {
		const char *ix = host->format(ctx, "%zu", i);
		const char *id = str(ctx, GHL_SRC_RESPONSE, GHL_PATH("snapshots", ix, "id"));
		if (id && strcmp(id, ghl_id) == 0) {
			host->set_output(ctx, "ghl_snapshot_id", host->quote(ctx, ghl_id));
			return GHL_STEP_DONE;
		}
	}
	const char *name = str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "name"));
	return host->fail(ctx, 0, "snapshot %s (%s) no longer exists in GHL", name ? name : ghl_id,
			  ghl_id);
}

static int validate_snapshot_run(ghl_step_ctx *ctx)
{
	if (host->get_type(ctx, GHL_SRC_JOB, GHL_PATH("snapshot")) != GHL_TYPE_OBJECT) {
		host->log(ctx, GHL_LOG_INFO, "job has no snapshot; skipped");
		host->set_output(ctx, "snapshot_skipped", "true");
		return GHL_STEP_DONE;
	}
	const char *ghl_id = str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "ghl_snapshot_id"));
	if (host->phase(ctx) == PH_LISTED)
		return find_snapshot(ctx, ghl_id);
	if (check_local(ctx, ghl_id) != GHL_STEP_DONE)
		return GHL_STEP_FAIL;
	return list_snapshots(ctx);
}

static const struct ghl_step_def steps[] = {
	{"VALIDATE_SNAPSHOT", "1.1.0",
	 "{\"type\":\"object\",\"properties\":{\"cache_ttl_ms\":{\"type\":\"integer\","
	 "\"minimum\":0,\"maximum\":3600000,\"default\":60000,\"description\":\"how long the "
	 "agency's snapshot list read from GHL serves other jobs (0: read it for every job)\"}},"
	 "\"additionalProperties\":false}",
	 "checks the job's snapshot is active, the agency's, and still in GHL",
	 validate_snapshot_run, NULL, NULL},
};

GHL_STEP_PLUGIN(validate_snapshot, "1.0.0", NULL, steps)
