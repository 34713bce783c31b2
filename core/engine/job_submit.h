/* job_submit.h — creating provisioning jobs (shared by the CLI and the REST API).
 *
 * A job is validated before it is stored: client_data (core/base/client_data.h),
 * the agency (exists, not deleted), the snapshot (belongs to the agency).
 * With an idempotency key, a repeat with the same body returns the existing
 * job; a repeat with another body is a conflict. */
#ifndef GHL_JOB_SUBMIT_H
#define GHL_JOB_SUBMIT_H

#include <libpq-fe.h>

#include "util.h"

struct json;
struct step_registry;

/* Insert (or find by idempotency key). Params: $1 agency_id, $2 client JSON,
 * $3 snapshot_id or NULL, $4 idempotency key or NULL, $5 request hash.
 * Returns one row (id, created bool, request_hash) — or none when the agency
 * does not exist / is deleted or the snapshot is not the agency's. */
extern const char jobs_insert_sql[];

/* The request hash of a submission: SHA-256 hex of the canonical client JSON
 * and the snapshot id (out: 65 bytes). */
void jobs_request_hash(const struct json *client, const char *snapshot_id, char out[65]);

/* Cancel: a PENDING/RETRYING job (or one parked on a person's task) becomes
 * CANCELLED ("cancelled by request") at once; an IN_PROGRESS one gets
 * cancel_requested and a NOTIFY ghl_cancel, finishes its current step and
 * then becomes CANCELLED (a final state). $1 job id, $2 the acting user and
 * $3 the acting API key (NULL, NULL: the agent itself, e.g. the CLI): a job
 * cancelled or asked to stop gets its audit_log row 'job.cancel' in the same
 * statement (the API's single and bulk cancels alike). A job becoming
 * CANCELLED ends its OPEN tasks (a trigger, migration 20261209_000101).
 * Returns (status after, how) with how = 'cancelled' | 'requested' |
 * 'finished' (already over), or no row when the job does not exist. */
extern const char jobs_cancel_sql[];
/* Its two parts: a caller may add its own CTEs after JOBS_CANCEL_WITH
 * (", x AS (…)", reading now_cancelled and requested: id, status, agency_id). */
/* clang-format off */
#define JOBS_CANCEL_WITH \
	"WITH now_cancelled AS (" \
	" UPDATE provisioning_jobs SET status = 'CANCELLED', error_message = 'cancelled by request'," \
	"  finished_at = now(), updated_at = now(), cancel_requested = true" \
	" WHERE id = $1::uuid AND (status IN ('PENDING', 'RETRYING')" \
	"  OR (status = 'IN_PROGRESS' AND context_json ? 'waiting'))" /* parked on a task */ \
	"  AND NOT EXISTS (SELECT 1 FROM job_leases WHERE job_id = $1::uuid)" \
	" RETURNING id, status, agency_id)," \
	" requested AS (" \
	" UPDATE provisioning_jobs SET cancel_requested = true, updated_at = now()" \
	" WHERE id = $1::uuid AND (status = 'IN_PROGRESS' OR (status IN ('PENDING', 'RETRYING')" \
	"  AND EXISTS (SELECT 1 FROM job_leases WHERE job_id = $1::uuid)))" \
	"  AND NOT EXISTS (SELECT 1 FROM now_cancelled)" \
	" RETURNING id, status, agency_id, pg_notify('ghl_cancel', id::text))," \
	" cancel_audit AS (" \
	" INSERT INTO audit_log (actor_user_id, actor_key_id, action, agency_id, target, diff)" \
	" SELECT $2::uuid, $3::uuid, 'job.cancel', c.agency_id, c.id::text, NULL FROM" \
	"  (SELECT id, agency_id FROM now_cancelled" \
	"  UNION ALL SELECT id, agency_id FROM requested) c)"
#define JOBS_CANCEL_SELECT \
	" SELECT status::text, 'cancelled' FROM now_cancelled" \
	" UNION ALL SELECT status::text, 'requested' FROM requested" \
	" UNION ALL SELECT status::text, 'finished' FROM provisioning_jobs" \
	"  WHERE id = $1::uuid AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')" \
	"  AND NOT EXISTS (SELECT 1 FROM now_cancelled) AND NOT EXISTS (SELECT 1 FROM requested)"
/* clang-format on */

enum job_submit_status { JOB_CREATED, JOB_EXISTING, JOB_CONFLICT, JOB_INVALID, JOB_ERROR };

/* Blocking submission for the CLI. problems (an array) receives validation
 * problems for JOB_INVALID — among them the client-data fields the agency's
 * pipeline (else default_pipeline, a JSON text) needs and the client lacks,
 * by steps' client_fields in steps; e says what went wrong otherwise. */
enum job_submit_status jobs_submit_blocking(PGconn *conn, const struct step_registry *steps,
					    const char *default_pipeline, const char *agency_id,
					    const struct json *client, const char *snapshot_id,
					    const char *idempotency_key, char **job_id,
					    struct json *problems, struct err *e);

#endif
