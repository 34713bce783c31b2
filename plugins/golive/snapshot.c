/* snapshot.c — LOAD_SNAPSHOT: a snapshot into an existing location, for
 * re-provisioning (agency token, locations.write; GHL_API.md "Go-live
 * endpoints"): PUT /locations/{id} {companyId, snapshot: {id, override}}.
 * Loading the same snapshot twice duplicates its assets in GHL, so it looks
 * first: GET /snapshots/snapshot-status/{snapshot}/location/{location}
 *   - 404: never loaded there: load it;
 *   - a push found, on the job's first attempt: refused (permanent), unless
 *     config override is set (then loaded with GHL's override: true, which
 *     replaces the assets instead of adding copies);
 *   - a push found on a later attempt: taken as the earlier attempt's load
 *     (snapshot_load_reused), never loaded again.
 * The location CREATE_LOCATION has just created with this very snapshot
 * needs no load (snapshot_load_skipped). The snapshot is config.snapshot_id,
 * else VALIDATE_SNAPSHOT's ghl_snapshot_id, else the job's; none: skipped.
 * Outputs: ghl_snapshot_id (WAIT_FOR_SNAPSHOT, in a job with a snapshot, waits
 * for this push),
 * snapshot_loaded, snapshot_load_reused | snapshot_load_skipped. No
 * compensate: GHL cannot unload a snapshot. */
#include <string.h>

#include "golive.h"

enum { PH_START = 0, PH_LOOKED, PH_LOADED };

static const char *snapshot_id(ghl_step_ctx *ctx)
{
	const char *id = GL_CONFIG(ctx, "snapshot_id");
	if (!id)
		id = gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("ghl_snapshot_id"));
	return id ? id : gl_str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "ghl_snapshot_id"));
}

static int loaded(ghl_step_ctx *ctx, const char *how)
{
	host->set_output(ctx, "ghl_snapshot_id", host->quote(ctx, snapshot_id(ctx)));
	host->set_output(ctx, "snapshot_loaded", "true");
	if (how)
		host->set_output(ctx, how, "true");
	return GHL_STEP_DONE;
}

static int load(ghl_step_ctx *ctx)
{
	int override = gl_flag(ctx, "override", 0);
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "companyId");
	host->json_string(j, GL_COMPANY_ID(ctx));
	host->json_key(j, "snapshot");
	host->json_object(j);
	host->json_key(j, "id");
	host->json_string(j, snapshot_id(ctx));
	host->json_key(j, "override");
	host->json_bool(j, override);
	host->json_end(j);
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build the request (see the log)");
	const char *path = host->format(ctx, "/locations/%s",
					host->urlencode(ctx, GL_LOCATION_ID(ctx)));
	host->log(ctx, GHL_LOG_INFO, "PUT %s snapshot %s override=%s", path, snapshot_id(ctx),
		  override ? "true" : "false");
	return gl_send(ctx, PH_LOADED, "PUT", path, NULL, body, GHL_TOKEN_AGENCY);
}

static int looked(ghl_step_ctx *ctx)
{
	int st = host->response_status(ctx);
	if (st == 404) {
		gl_ok(ctx, "GET snapshot-status");
		return load(ctx);
	}
	if (!gl_ok(ctx, "GET snapshot-status"))
		return host->fail_from_response(ctx, "reading the snapshot's status");
	const char *status = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH("data", "status"));
	int64_t attempt = 1;
	host->get_int(ctx, GHL_SRC_JOB, GHL_PATH("attempt"), &attempt);
	if (gl_flag(ctx, "override", 0)) {
		host->log(ctx, GHL_LOG_WARN,
			  "snapshot %s was loaded before (status %s); loading it "
			  "again with override",
			  snapshot_id(ctx), status ? status : "-");
		return load(ctx);
	}
	if (attempt > 1) {
		host->log(ctx, GHL_LOG_INFO,
			  "snapshot %s already loaded (status %s): taken as this "
			  "job's earlier attempt",
			  snapshot_id(ctx), status ? status : "-");
		return loaded(ctx, "snapshot_load_reused");
	}
	return host->fail(
		ctx, 0,
		"snapshot %s was already loaded into location %s (status %s); loading it "
		"again would duplicate its assets: set \"override\": true to replace them",
		snapshot_id(ctx), GL_LOCATION_ID(ctx), status ? status : "-");
}

int load_snapshot_run(ghl_step_ctx *ctx)
{
	switch (host->phase(ctx)) {
	case PH_LOOKED: return looked(ctx);
	case PH_LOADED:
		if (!gl_ok(ctx, "PUT location snapshot"))
			return host->fail_from_response(ctx, "loading the snapshot");
		return loaded(ctx, NULL);
	default: break;
	}
	if (!GL_LOCATION_ID(ctx))
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before "
				  "LOAD_SNAPSHOT");
	if (!GL_COMPANY_ID(ctx))
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	const char *snap = snapshot_id(ctx);
	if (!snap) {
		host->set_output(ctx, "snapshot_load_skipped", "true");
		return GHL_STEP_DONE;
	}
	int reused = 1;
	const char *job_snap = gl_str(ctx, GHL_SRC_JOB, GHL_PATH("snapshot", "ghl_snapshot_id"));
	host->get_bool(ctx, GHL_SRC_OUTPUTS, GHL_PATH("location_reused"), &reused);
	if (!reused && job_snap && strcmp(job_snap, snap) == 0) {
		host->log(ctx, GHL_LOG_INFO, "the location was created with snapshot %s: no load",
			  snap);
		return loaded(ctx, "snapshot_load_skipped");
	}
	const char *path = host->format(ctx, "/snapshots/snapshot-status/%s/location/%s",
					host->urlencode(ctx, snap),
					host->urlencode(ctx, GL_LOCATION_ID(ctx)));
	return gl_send(ctx, PH_LOOKED, "GET", path, gl_company_query(ctx), NULL, GHL_TOKEN_AGENCY);
}

const char load_snapshot_schema[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"snapshot_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,"
	"\"description\":\"GHL snapshot id (default: the job's snapshot)\"},"
	"\"override\":{\"type\":\"boolean\",\"default\":false,\"description\":\"load even when "
	"this snapshot was loaded before, replacing its assets\"}},"
	"\"additionalProperties\":false}";
