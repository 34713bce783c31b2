/* test_contract.c — the API answers what docs/openapi.yaml promises, and only
 * that. Against a spawned `ghl-agent serve` (roles=api), ghl-sim and a real
 * PostgreSQL, every case of cases[] is called as each caller it names (no
 * credentials, an API key, SUPPORT, AGENCY_ADMIN, ADMIN — in that order, so
 * the refused calls come before the ones that change something); each answer
 * must have the status the row wants and is recorded (op, caller, status,
 * Content-Type, body) in build/tests/contract/exchanges.jsonl. Then
 * contract_check.py (python3-jsonschema: Draft 2020-12, what OpenAPI 3.1
 * schemas are) validates every answer against the spec's schema for its status
 * and fails when
 *   - an answer has a field its schema does not allow, lacks a required one,
 *     or has a status or Content-Type the operation does not document;
 *   - an operation of the spec has no case that succeeds, no case that fails
 *     (when it documents a 4xx), or (when it needs authentication) was not
 *     called as every caller;
 *   - the router (core/api/routes.c, dumped to routes.txt) serves a route the
 *     spec lacks, or the spec has an operation no route serves;
 *   - a response schema is open (no additionalProperties), lists no required
 *     fields, an error answer is not the one Error schema, or an operation
 *     has no example (or one that does not fit its schema).
 *
 * ADDING AN OPERATION (a new route in core/api/routes.c and docs/openapi.yaml):
 *   1. In cases[], add one row for good input, with the status each caller
 *      gets: {op, path, body, content_type, header, {none, key, SUPPORT,
 *      AGENCY_ADMIN, ADMIN}}. `op` is "METHOD /pattern" exactly as in the spec;
 *      0 for a caller means "not called" (do that only for operations with
 *      `security: []`). Put it after the rows it needs and before the logout
 *      row (which ends the sessions).
 *   2. Add at least one row with bad input (422/400/404/409 …), usually called
 *      as ADMIN only: {…, {0, 0, 0, 0, 422}}.
 *   3. Objects the path or body needs: create them in make_objects() (or
 *      make_callers(), make_inputs()) and give each a one-letter placeholder
 *      with set_var() (%A is agency A; the functions' comments list them all).
 *   4. Needs something a table row cannot say (a redirect dance, a signed
 *      body)? Write it like connect_callback() and call record() yourself.
 * Run: ctest -R contract/ (README "How we test"). A failure lists every
 * problem, one a line; the recorded answers stay in exchanges.jsonl. */
#include "../integration/ghl_harness.h"
#include "app.h"
#include "http.h"
#include "scope.h"

enum caller { C_NONE, C_KEY, C_SUPPORT, C_AA, C_ADMIN, NCALLERS };
static const char *const caller_names[NCALLERS] = {"none", "api_key", "SUPPORT", "AGENCY_ADMIN",
						   "ADMIN"};

struct ccase {
	const char *op;		  /* "METHOD /pattern", as in the spec's paths */
	const char *path;	  /* the request path; %X placeholders (vars) */
	const char *body;	  /* NULL: none; placeholders too */
	const char *content_type; /* NULL: application/json when there is a body */
	const char *header;	  /* one more request header or NULL; placeholders too */
	int want[NCALLERS]; /* status per caller (none, key, SUPPORT, AA, ADMIN); 0: not called */
};

#define ALL(st)                     \
	{                           \
		401, st, st, st, st \
	}
#define ANON(st)               \
	{                      \
		st, 0, 0, 0, 0 \
	}
#define ADMIN_ONLY(st)         \
	{                      \
		0, 0, 0, 0, st \
	}
#define STAFF_ONLY(st)                 \
	{                              \
		401, 403, 403, 403, st \
	}

/* the fields the default pipeline needs (CREATE_USER: first_name, last_name) */
#define JOB_BODY                                                                  \
	"{\"client_data\":{\"name\":\"Contract Co\",\"email\":\"c@example.com\"," \
	"\"first_name\":\"Con\",\"last_name\":\"Tract\"}}"

static const struct ccase cases[] = {
	/* health and dashboard: no authentication */
	{"GET /healthz", "/healthz", NULL, NULL, NULL, ANON(200)},
	{"GET /readyz", "/readyz", NULL, NULL, NULL, ANON(200)},
	{"GET /metrics", "/metrics", NULL, NULL, NULL, ANON(200)},
	{"GET /", "/", NULL, NULL, NULL, ANON(200)},
	{"GET /", "/", NULL, NULL, "If-None-Match: %Q", ANON(304)},
	{"GET /web/{file}", "/web/app.js", NULL, NULL, NULL, ANON(200)},
	{"GET /web/{file}", "/web/missing.js", NULL, NULL, NULL, ANON(404)},
	{"GET /web/{file}", "/web/%2e%2e", NULL, NULL, NULL, ANON(400)}, /* a dot segment */

	/* GHL: OAuth (the callback's good case: connect_callback) and webhooks */
	{"GET /oauth/connect", "/oauth/connect", NULL, NULL, NULL, {401, 403, 403, 302, 302}},
	{"GET /oauth/callback", "/oauth/callback?code=c&state=forged", NULL, NULL, NULL, ANON(400)},
	{"POST /webhooks/ghl", "/webhooks/ghl", "%W", NULL, "%G", ANON(200)},
	{"POST /webhooks/ghl", "/webhooks/ghl", "%W", NULL, "%G", ANON(409)}, /* replayed */
	{"POST /webhooks/ghl", "/webhooks/ghl", "%W", NULL, "%H", ANON(401)}, /* bad signature */

	/* auth */
	{"POST /api/v1/auth/login", "/api/v1/auth/login",
	 "{\"email\":\"" H_ADMIN_EMAIL "\",\"password\":\"" H_ADMIN_PASSWORD "\"}", NULL, NULL,
	 ANON(200)},
	{"POST /api/v1/auth/login", "/api/v1/auth/login",
	 "{\"email\":\"nobody@example.com\",\"password\":\"not the password\"}", NULL, NULL,
	 ANON(401)},
	{"POST /api/v1/auth/login", "/api/v1/auth/login", "{\"email\":\"a@example.com\"}", NULL,
	 NULL, ANON(422)},
	{"POST /api/v1/auth/login", "/api/v1/auth/login", "email=a", "text/plain", NULL, ANON(415)},
	{"POST /api/v1/auth/login", "/api/v1/auth/login", "%L", NULL, NULL, ANON(413)},
	{"GET /api/v1/me", "/api/v1/me", NULL, NULL, NULL, ALL(200)},
	/* every /api/v1 operation refuses an unknown query parameter */
	{"GET /api/v1/me", "/api/v1/me?colour=red", NULL, NULL, NULL, ADMIN_ONLY(400)},

	/* users (ADMIN only) */
	{"GET /api/v1/users", "/api/v1/users?limit=2", NULL, NULL, NULL, STAFF_ONLY(200)},
	{"GET /api/v1/users", "/api/v1/users?role=OWNER", NULL, NULL, NULL, ADMIN_ONLY(400)},
	{"POST /api/v1/users", "/api/v1/users",
	 "{\"email\":\"new@example.com\",\"password\":\"a long password 1\",\"role\":\"SUPPORT\"}",
	 NULL, NULL, STAFF_ONLY(201)},
	{"POST /api/v1/users", "/api/v1/users",
	 "{\"email\":\"new@example.com\",\"password\":\"a long password 1\",\"role\":\"SUPPORT\"}",
	 NULL, NULL, ADMIN_ONLY(409)}, /* the same email again */
	{"POST /api/v1/users", "/api/v1/users",
	 "{\"email\":\"x@example.com\",\"password\":\"short\"}", NULL, NULL, ADMIN_ONLY(422)},
	{"GET /api/v1/users/{id}", "/api/v1/users/%U", NULL, NULL, NULL, STAFF_ONLY(200)},
	{"GET /api/v1/users/{id}", "/api/v1/users/%E", NULL, NULL, NULL, ADMIN_ONLY(404)},
	{"PATCH /api/v1/users/{id}", "/api/v1/users/%U", "{\"role\":\"SUPPORT\"}", NULL, NULL,
	 STAFF_ONLY(200)},
	{"PATCH /api/v1/users/{id}", "/api/v1/users/%U", "{\"role\":\"OWNER\"}", NULL, NULL,
	 ADMIN_ONLY(422)},
	{"DELETE /api/v1/users/{id}", "/api/v1/users/%X", NULL, NULL, NULL, STAFF_ONLY(204)},
	{"DELETE /api/v1/users/{id}", "/api/v1/users/%M", NULL, NULL, NULL, ADMIN_ONLY(409)},
	{"DELETE /api/v1/users/{id}", "/api/v1/users/%E", NULL, NULL, NULL, ADMIN_ONLY(404)},

	/* agencies and their API keys */
	/* first, so that the reads below show settings */
	{"PATCH /api/v1/agencies/{id}",
	 "/api/v1/agencies/%A",
	 "{\"name\":\"Agency A\",\"settings\":{\"max_retries\":2,\"on_failure\":\"fail\","
	 "\"pipeline\":[{\"step\":\"CREATE_USER\",\"config\":{\"role\":\"admin\"}},"
	 "{\"step\":\"NOOP\",\"on_error\":\"continue\"}]}}",
	 NULL,
	 NULL,
	 {401, 403, 403, 200, 200}},
	{"GET /api/v1/agencies", "/api/v1/agencies?limit=2", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/agencies", "/api/v1/agencies?limit=0", NULL, NULL, NULL, ADMIN_ONLY(400)},
	{"GET /api/v1/agencies/{id}", "/api/v1/agencies/%A", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/agencies/{id}", "/api/v1/agencies/%B", NULL, NULL, NULL, {0, 404, 0, 404, 0}},
	{"PATCH /api/v1/agencies/{id}", "/api/v1/agencies/%A", "{\"settings\":{\"colour\":1}}",
	 NULL, NULL, ADMIN_ONLY(422)},
	{"DELETE /api/v1/agencies/{id}",
	 "/api/v1/agencies/%C",
	 NULL,
	 NULL,
	 NULL,
	 {401, 404, 403, 404, 204}},
	{"DELETE /api/v1/agencies/{id}", "/api/v1/agencies/%E", NULL, NULL, NULL, ADMIN_ONLY(404)},
	{"GET /api/v1/agencies/{id}/api-keys",
	 "/api/v1/agencies/%A/api-keys",
	 NULL,
	 NULL,
	 NULL,
	 {401, 403, 200, 200, 200}},
	{"GET /api/v1/agencies/{id}/api-keys",
	 "/api/v1/agencies/%B/api-keys",
	 NULL,
	 NULL,
	 NULL,
	 {0, 0, 0, 404, 0}},
	{"POST /api/v1/agencies/{id}/api-keys",
	 "/api/v1/agencies/%A/api-keys",
	 "{\"name\":\"contract\"}",
	 NULL,
	 NULL,
	 {401, 403, 403, 201, 201}},
	{"POST /api/v1/agencies/{id}/api-keys", "/api/v1/agencies/%A/api-keys", "{\"name\":\"\"}",
	 NULL, NULL, ADMIN_ONLY(422)},
	{"DELETE /api/v1/agencies/{id}/api-keys/{key_id}",
	 "/api/v1/agencies/%A/api-keys/%K",
	 NULL,
	 NULL,
	 NULL,
	 {401, 403, 403, 204, 204}},
	{"DELETE /api/v1/agencies/{id}/api-keys/{key_id}", "/api/v1/agencies/%A/api-keys/%E", NULL,
	 NULL, NULL, ADMIN_ONLY(404)},

	/* jobs */
	{"POST /api/v1/agencies/{id}/jobs",
	 "/api/v1/agencies/%A/jobs",
	 JOB_BODY,
	 NULL,
	 "Idempotency-Key: contract-1",
	 {401, 201, 403, 200, 200}},
	{"POST /api/v1/agencies/{id}/jobs", "/api/v1/agencies/%A/jobs",
	 "{\"client_data\":{\"name\":\"No Email\"}}", NULL, NULL, ADMIN_ONLY(422)},
	{"POST /api/v1/agencies/{id}/jobs", "/api/v1/agencies/%A/jobs", "{\"client_data\":", NULL,
	 NULL, ADMIN_ONLY(400)},
	{"POST /api/v1/agencies/{id}/jobs/batch",
	 "/api/v1/agencies/%A/jobs/batch",
	 "[" JOB_BODY "]",
	 NULL,
	 NULL,
	 {401, 201, 403, 201, 201}},
	{"POST /api/v1/agencies/{id}/jobs/batch", "/api/v1/agencies/%A/jobs/batch",
	 "name,email,first_name,last_name\r\nCSV Co,csv@example.com,Cee,Esvee\r\n", "text/csv",
	 NULL, ADMIN_ONLY(201)},
	{"POST /api/v1/agencies/{id}/jobs/batch", "/api/v1/agencies/%A/jobs/batch",
	 "name,email\r\nCSV Co,\r\n", "text/csv", NULL, ADMIN_ONLY(422)},
	{"GET /api/v1/jobs", "/api/v1/jobs?limit=2", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/jobs", "/api/v1/jobs?status=DONE", NULL, NULL, NULL, ADMIN_ONLY(400)},
	{"GET /api/v1/jobs/{id}", "/api/v1/jobs/%F", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/jobs/{id}", "/api/v1/jobs/%E", NULL, NULL, NULL, ADMIN_ONLY(404)},
	{"GET /api/v1/jobs/{id}", "/api/v1/jobs/not-a-uuid", NULL, NULL, NULL, ADMIN_ONLY(404)},
	{"POST /api/v1/jobs/{id}/retry", "/api/v1/jobs/%F/retry?force=1", NULL, NULL, NULL,
	 ADMIN_ONLY(400)},
	{"GET /api/v1/jobs/{id}/logs", "/api/v1/jobs/%F/logs", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/jobs/{id}/logs", "/api/v1/jobs/%F/logs?limit=0", NULL, NULL, NULL,
	 ADMIN_ONLY(400)},
	{"GET /api/v1/jobs/{id}/timeline", "/api/v1/jobs/%F/timeline", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/jobs/{id}/timeline", "/api/v1/jobs/%E/timeline", NULL, NULL, NULL,
	 ADMIN_ONLY(404)},
	{"GET /api/v1/jobs/{id}/requests", "/api/v1/jobs/%F/requests", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/jobs/{id}/requests", "/api/v1/jobs/%F/requests?step=-1", NULL, NULL, NULL,
	 ADMIN_ONLY(400)},
	{"GET /api/v1/jobs/{id}/requests", "/api/v1/jobs/%E/requests", NULL, NULL, NULL,
	 ADMIN_ONLY(404)},
	{"POST /api/v1/jobs/{id}/edit-and-retry",
	 "/api/v1/jobs/%R/edit-and-retry",
	 JOB_BODY,
	 NULL,
	 NULL,
	 {401, 200, 403, 409, 409}}, /* FAILED, then PENDING */
	{"POST /api/v1/jobs/{id}/edit-and-retry", "/api/v1/jobs/%R/edit-and-retry",
	 "{\"client_data\":{\"name\":\"No Email\"}}", NULL, NULL, ADMIN_ONLY(409)},
	{"POST /api/v1/jobs/{id}/edit-and-retry", "/api/v1/jobs/%E/edit-and-retry",
	 "{\"client_data\":{}}", NULL, NULL, ADMIN_ONLY(404)},
	{"POST /api/v1/jobs/{id}/edit-and-retry", "/api/v1/jobs/%E/edit-and-retry",
	 "{\"client_data\":1}", NULL, NULL, ADMIN_ONLY(422)},
	{"POST /api/v1/jobs/{id}/retry",
	 "/api/v1/jobs/%F/retry",
	 NULL,
	 NULL,
	 NULL,
	 {401, 200, 409, 409, 409}}, /* FAILED, then PENDING */
	{"POST /api/v1/jobs/{id}/retry", "/api/v1/jobs/%E/retry", NULL, NULL, NULL,
	 ADMIN_ONLY(404)},
	{"POST /api/v1/jobs/{id}/cancel",
	 "/api/v1/jobs/%P/cancel",
	 NULL,
	 NULL,
	 NULL,
	 {401, 200, 409, 409, 409}}, /* PENDING, then FAILED */
	{"POST /api/v1/jobs/{id}/cancel", "/api/v1/jobs/%E/cancel", NULL, NULL, NULL,
	 ADMIN_ONLY(404)},
	/* the ADMIN's session as a browser sends it, without X-CSRF-Token */
	{"POST /api/v1/jobs/{id}/cancel", "/api/v1/jobs/%P/cancel", NULL, NULL,
	 "Cookie: ghl_session=%T", ANON(403)},

	/* snapshots, steps, reports, dry runs */
	{"GET /api/v1/agencies/{id}/snapshots", "/api/v1/agencies/%A/snapshots", NULL, NULL, NULL,
	 ALL(200)},
	{"GET /api/v1/agencies/{id}/snapshots", "/api/v1/agencies/%A/snapshots?active=maybe", NULL,
	 NULL, NULL, ADMIN_ONLY(400)},
	{"POST /api/v1/agencies/{id}/snapshots/sync",
	 "/api/v1/agencies/%A/snapshots/sync",
	 NULL,
	 NULL,
	 NULL,
	 {401, 403, 403, 200, 200}},
	{"POST /api/v1/agencies/{id}/snapshots/sync",
	 "/api/v1/agencies/%B/snapshots/sync",
	 NULL,
	 NULL,
	 NULL,
	 {0, 0, 0, 404, 0}},
	{"PATCH /api/v1/snapshots/{id}",
	 "/api/v1/snapshots/%S",
	 "{\"niche\":\"dental\"}",
	 NULL,
	 NULL,
	 {401, 403, 403, 200, 200}},
	{"PATCH /api/v1/snapshots/{id}", "/api/v1/snapshots/%S", "{\"is_active\":\"yes\"}", NULL,
	 NULL, ADMIN_ONLY(422)},
	{"GET /api/v1/steps", "/api/v1/steps", NULL, NULL, NULL, {401, 403, 200, 200, 200}},
	{"GET /api/v1/reports/success-rates", "/api/v1/reports/success-rates", NULL, NULL, NULL,
	 ALL(200)},
	{"GET /api/v1/reports/success-rates", "/api/v1/reports/success-rates?group_by=niche", NULL,
	 NULL, NULL, ADMIN_ONLY(200)},
	{"GET /api/v1/reports/success-rates", "/api/v1/reports/success-rates?days=0", NULL, NULL,
	 NULL, ADMIN_ONLY(400)},
	{"GET /api/v1/reports/drift", "/api/v1/reports/drift", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/reports/drift",
	 "/api/v1/reports/drift?open=false&kind=snapshot_failed&limit=1", NULL, NULL, NULL,
	 ADMIN_ONLY(200)},
	{"GET /api/v1/reports/drift", "/api/v1/reports/drift?kind=gone", NULL, NULL, NULL,
	 ADMIN_ONLY(400)},
	{"GET /api/v1/jobs/{id}", "/api/v1/jobs/%Z", NULL, NULL, NULL, ADMIN_ONLY(200)},
	{"GET /api/v1/reports/overview", "/api/v1/reports/overview", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/reports/overview", "/api/v1/reports/overview?agency_id=%A&days=7", NULL, NULL,
	 NULL, ADMIN_ONLY(200)},
	{"GET /api/v1/reports/overview", "/api/v1/reports/overview?days=91", NULL, NULL, NULL,
	 ADMIN_ONLY(400)},
	{"GET /api/v1/audit", "/api/v1/audit?limit=3", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/audit", "/api/v1/audit?action=Job.Retry", NULL, NULL, NULL, ADMIN_ONLY(400)},
	{"POST /api/v1/agencies/{id}/pipeline/dry-run",
	 "/api/v1/agencies/%A/pipeline/dry-run",
	 "{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"}]}",
	 NULL,
	 NULL,
	 {401, 403, 403, 200, 200}},
	{"POST /api/v1/agencies/{id}/pipeline/dry-run", "/api/v1/agencies/%A/pipeline/dry-run",
	 "{\"pipeline\":[{\"step\":\"NO_SUCH_STEP\"}]}", NULL, NULL, ADMIN_ONLY(422)},
	{"POST /api/v1/agencies/{id}/pipeline/dry-run", "/api/v1/agencies/%A/pipeline/dry-run",
	 "pipeline: NOOP", "text/yaml", NULL, ADMIN_ONLY(415)},
	{"POST /api/v1/agencies/{id}/pipeline/dry-run", "/api/v1/agencies/%A/pipeline/dry-run",
	 "%L", NULL, NULL, ADMIN_ONLY(413)},
	{"POST /api/v1/agencies/{id}/pipeline/dry-run", "/api/v1/agencies/%A/pipeline/dry-run",
	 "{\"pipeline\":[{\"step\":\"NOOP\",\"when\":\"job.attempt > 1\"}]}", NULL, NULL,
	 ADMIN_ONLY(200)},

	/* outbound events: subscriptions and their delivery log */
	{"GET /api/v1/agencies/{id}/webhooks", "/api/v1/agencies/%A/webhooks", NULL, NULL, NULL,
	 ALL(200)},
	{"GET /api/v1/agencies/{id}/webhooks",
	 "/api/v1/agencies/%B/webhooks",
	 NULL,
	 NULL,
	 NULL,
	 {0, 404, 0, 404, 0}},
	{"POST /api/v1/agencies/{id}/webhooks",
	 "/api/v1/agencies/%A/webhooks",
	 "{\"url\":\"https://hooks.example/contract\",\"events\":[\"job.completed\"]}",
	 NULL,
	 NULL,
	 {401, 201, 403, 201, 201}},
	{"POST /api/v1/agencies/{id}/webhooks", "/api/v1/agencies/%A/webhooks",
	 "{\"url\":\"http://127.0.0.1/x\",\"events\":[\"job.completed\"]}", NULL, NULL,
	 ADMIN_ONLY(422)},
	{"POST /api/v1/agencies/{id}/webhooks", "/api/v1/agencies/%A/webhooks", "%L", NULL, NULL,
	 ADMIN_ONLY(413)},
	{"GET /api/v1/agencies/{id}/webhooks/{webhook_id}", "/api/v1/agencies/%A/webhooks/%V", NULL,
	 NULL, NULL, ALL(200)},
	{"GET /api/v1/agencies/{id}/webhooks/{webhook_id}", "/api/v1/agencies/%A/webhooks/%E", NULL,
	 NULL, NULL, ADMIN_ONLY(404)},
	{"GET /api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries",
	 "/api/v1/agencies/%A/webhooks/%V/deliveries?limit=5", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries",
	 "/api/v1/agencies/%A/webhooks/%V/deliveries?status=sent", NULL, NULL, NULL,
	 ADMIN_ONLY(400)},
	{"POST /api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
	 "/api/v1/agencies/%A/webhooks/%V/deliveries/%Y/redeliver", NULL, NULL, NULL, ALL(202)},
	{"POST /api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
	 "/api/v1/agencies/%A/webhooks/%V/deliveries/%E/redeliver", NULL, NULL, NULL,
	 ADMIN_ONLY(404)},
	{"DELETE /api/v1/agencies/{id}/webhooks/{webhook_id}",
	 "/api/v1/agencies/%A/webhooks/%D",
	 NULL,
	 NULL,
	 NULL,
	 {401, 204, 403, 404, 404}}, /* the key deletes it */
	{"DELETE /api/v1/agencies/{id}/webhooks/{webhook_id}",
	 "/api/v1/agencies/%B/webhooks/%D",
	 NULL,
	 NULL,
	 NULL,
	 {0, 404, 0, 404, 0}},

	/* people in the loop: the tasks of TASK steps */
	{"GET /api/v1/tasks", "/api/v1/tasks?status=OPEN&limit=5", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/tasks", "/api/v1/tasks?overdue=maybe", NULL, NULL, NULL, ADMIN_ONLY(400)},
	{"GET /api/v1/tasks/{id}", "/api/v1/tasks/%O", NULL, NULL, NULL, ALL(200)},
	{"GET /api/v1/tasks/{id}", "/api/v1/tasks/%E", NULL, NULL, NULL, ADMIN_ONLY(404)},
	{"POST /api/v1/tasks/{id}/complete",
	 "/api/v1/tasks/%O/complete",
	 "{\"note\":\"done\",\"outputs\":{\"a2p_brand_id\":\"BR1\"}}",
	 NULL,
	 NULL,
	 {401, 200, 409, 409, 409}}, /* OPEN, then COMPLETED */
	{"POST /api/v1/tasks/{id}/complete", "/api/v1/tasks/%O/complete",
	 "{\"outputs\":{\"location_id\":\"x\"}}", NULL, NULL, ADMIN_ONLY(422)},
	{"POST /api/v1/tasks/{id}/complete", "/api/v1/tasks/%E/complete", "{}", NULL, NULL,
	 ADMIN_ONLY(404)},
	{"POST /api/v1/tasks/{id}/reject",
	 "/api/v1/tasks/%J/reject",
	 "{\"note\":\"no EIN yet\"}",
	 NULL,
	 NULL,
	 {401, 200, 409, 409, 409}}, /* OPEN, then REJECTED */
	{"POST /api/v1/tasks/{id}/reject", "/api/v1/tasks/%J/reject", "{}", NULL, NULL,
	 ADMIN_ONLY(422)},
	/* search, bulk actions, batches (%N: a batch of A) */
	{"GET /api/v1/jobs", "/api/v1/jobs?q=example.com&limit=2", NULL, NULL, NULL, ALL(200)},
	{"POST /api/v1/agencies/{id}/jobs/bulk", "/api/v1/agencies/%A/jobs/bulk",
	 "{\"action\":\"cancel\",\"job_ids\":[\"%E\"]}", NULL, NULL, ALL(200)},
	{"POST /api/v1/agencies/{id}/jobs/bulk", "/api/v1/agencies/%A/jobs/bulk",
	 "{\"action\":\"retry\",\"filter\":{\"status\":\"FAILED\"}}", NULL, NULL, ALL(200)},
	{"POST /api/v1/agencies/{id}/jobs/bulk", "/api/v1/agencies/%A/jobs/bulk",
	 "{\"action\":\"delete\",\"job_ids\":[\"%E\"]}", NULL, NULL, ADMIN_ONLY(422)},
	{"POST /api/v1/agencies/{id}/jobs/bulk",
	 "/api/v1/agencies/%B/jobs/bulk",
	 "{\"action\":\"retry\",\"job_ids\":[\"%E\"]}",
	 NULL,
	 NULL,
	 {0, 404, 0, 404, 0}},
	{"GET /api/v1/agencies/{id}/batches", "/api/v1/agencies/%A/batches?limit=2", NULL, NULL,
	 NULL, ALL(200)},
	{"GET /api/v1/agencies/{id}/batches", "/api/v1/agencies/%A/batches?limit=0", NULL, NULL,
	 NULL, ADMIN_ONLY(400)},
	{"GET /api/v1/agencies/{id}/batches/{batch_id}", "/api/v1/agencies/%A/batches/%N", NULL,
	 NULL, NULL, ALL(200)},
	{"GET /api/v1/agencies/{id}/batches/{batch_id}", "/api/v1/agencies/%A/batches/%E", NULL,
	 NULL, NULL, ADMIN_ONLY(404)},
	{"GET /api/v1/agencies/{id}/batches/{batch_id}",
	 "/api/v1/agencies/%B/batches/%N",
	 NULL,
	 NULL,
	 NULL,
	 {0, 404, 0, 404, 0}},

	/* last: logging out ends the sessions the rows above use */
	{"POST /api/v1/auth/logout",
	 "/api/v1/auth/logout",
	 NULL,
	 NULL,
	 NULL,
	 {401, 403, 204, 204, 204}},
};

/* ---- fixture --------------------------------------------------------------- */

static struct hsim sim;
static struct hagent ag;
static char *dsn;
static PGconn *db;
static const char *tokens[NCALLERS];
static char *aa_token, *support_token, *key_a;
static const char **vars; /* tl_expand pairs */
static char *var_values[32];

/* A GHL webhook signed by ghl-sim (Ed25519): the simulator signs and sends it
 * to a closed port, and reports the body and signature it could not deliver. */
static void signed_webhook(char **body, char **signature)
{
	char *req = xasprintf("{\"url\":\"http://127.0.0.1:%d/\",\"type\":\"INSTALL\","
			      "\"companyId\":\"co-hook\"}",
			      tl_free_port());
	char *url = xasprintf("%s/_sim/webhooks/send", sim.base);
	const char *h[] = {"Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http("POST", url, h, req, &out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(st == 502 && json_get_str(j, "body") && json_get_str(j, "signature"),
		      "ghl-sim webhooks/send: %ld %s", st, out);
	*body = xstrdup(json_get_str(j, "body"));
	*signature = xstrdup(json_get_str(j, "signature"));
	json_free(j);
	free(out);
	free(url);
	free(req);
}

/* A request as the harness ADMIN (not recorded); asserts want and returns the
 * string field `field` of the answer (malloc'd), or NULL when field is NULL. */
static char *setup_call(const char *method, const char *path, const char *body, long want,
			const char *field)
{
	char *url = hagent_url(&ag, path);
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	struct tl_resp r;
	tl_request(&r, method, url, h, body, body ? strlen(body) : 0);
	ck_assert_msg(r.status == want, "setup: %s %s: %ld %s", method, path, r.status, r.body);
	char *v = NULL;
	if (field) {
		struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
		ck_assert_msg(j && json_get_str(j, field), "setup: %s %s: no %s in %s", method,
			      path, field, r.body);
		v = xstrdup(json_get_str(j, field));
		json_free(j);
	}
	tl_resp_free(&r);
	free(authz);
	free(url);
	return v;
}

static char *new_user(const char *email, const char *role, const char *agency_ids)
{
	char *body = xasprintf("{\"email\":\"%s\",\"password\":\"contract password 1\","
			       "\"role\":\"%s\",\"agency_ids\":%s}",
			       email, role, agency_ids);
	char *id = setup_call("POST", "/api/v1/users", body, 201, "id");
	free(body);
	return id;
}

/* An agency with (fake) tokens, not connected to ghl-sim. */
static char *other_agency(const char *name)
{
	return tl_sqlf(db,
		       "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		       " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Agency %s',"
		       " 'co-contract-%s', 'x', 'y', now() + interval '1 day') RETURNING id",
		       name, name);
}

static void set_var(size_t *n, const char *name, char *value)
{
	ck_assert(*n / 2 < sizeof(var_values) / sizeof(var_values[0]));
	vars[*n] = name;
	vars[*n + 1] = value;
	var_values[*n / 2] = value;
	*n += 2;
	vars[*n] = NULL;
}

/* ghl-sim (whose company co-contract-a becomes agency A) and the agent,
 * which trusts the simulator's webhook key. */
static void start_services(void)
{
	/* --seed: the webhook key is derived from it, so the agent can be given
	 * the public key before the simulator runs */
	const char *flags[] = {"--company-id", "co-contract-a", "--seed", "7", NULL};
	hsim_start(&sim, flags);
	char *print_key[] = {(char *)tl_env("GHL_SIM_BIN"), (char *)"--seed", (char *)"7",
			     (char *)"--print-webhook-key", NULL};
	char *pem = NULL;
	ck_assert_msg(tl_run(print_key, NULL, &pem) == 0, "ghl-sim --print-webhook-key: %s", pem);
	char *keyenv = xasprintf("GHL_AGENT_WEBHOOK_ED25519_PUBLIC_KEY=%s", pem);
	free(pem);
	dsn = tl_create_migrated_db("contract");
	db = tl_connect(dsn);
	const char *extra[] = {"GHL_AGENT_ROLES=api", keyenv, NULL};
	hagent_start(&ag, dsn, &sim, extra);
	free(keyenv);
}

/* The agencies, snapshot and jobs the cases name: %A (connected to ghl-sim),
 * %B (another agency), %C (deleted by a case), %S (A's snapshot), %F (a FAILED
 * job of A with two log entries and a request), %R (another FAILED job of A),
 * %P (a PENDING job of A), %E (no object), %Z (a COMPLETED job of A with
 * drift), %N (a batch of A holding that job).
 * Returns A's id. */
static const char *make_objects(size_t *n)
{
	char *a = hconnect_agency(&ag, db, "co-contract-a");
	set_var(n, "A", a);
	set_var(n, "B", other_agency("B"));
	set_var(n, "C", other_agency("C"));
	char *snap = tl_sqlf(db,
			     "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)"
			     " VALUES ('%s', 'snap-contract', 'Contract', 'dental') RETURNING id",
			     a);
	set_var(n, "S", snap);
	char *failed = hjob_add(db, a, "{\"name\":\"Failed Co\",\"email\":\"f@example.com\"}",
				NULL);
	tl_execf(db,
		 "UPDATE provisioning_jobs SET status = 'FAILED', error_message = 'boom'"
		 " WHERE id = '%s'",
		 failed);
	tl_execf(db,
		 "INSERT INTO provisioning_logs (job_id, step, status, details_json) VALUES"
		 " ('%s', 'CREATE_LOCATION', 'STARTED', NULL), ('%s', 'CREATE_LOCATION',"
		 " 'FAILED', '{\"error\":\"boom\"}')",
		 failed, failed);
	set_var(n, "F", failed);
	/* a request CREATE_LOCATION made; %R: a FAILED job to edit and retry */
	tl_execf(db,
		 "INSERT INTO job_requests (job_id, step_index, attempt, method, path, status,"
		 " duration_ms, error, request_body) VALUES ('%s', 0, 1, 'POST', '/locations/',"
		 " 503, 12, 'GHL answered 503', '{\"name\":\"Failed Co\"}')",
		 failed);
	char *fix = hjob_add(db, a, "{\"name\":\"Fix Co\",\"email\":\"x@example.com\"}", NULL);
	tl_execf(db, "UPDATE provisioning_jobs SET status = 'FAILED' WHERE id = '%s'", fix);
	set_var(n, "R", fix);
	/* something for the report: a COMPLETED job on a snapshot with a niche */
	char *done = hjob_add(db, a, "{\"name\":\"Done Co\",\"email\":\"d@example.com\"}", snap);
	tl_execf(db,
		 "UPDATE provisioning_jobs SET status = 'COMPLETED', finished_at = now()"
		 " WHERE id = '%s'",
		 done);
	/* reconciliation found its location gone (and an earlier drift fixed) */
	tl_execf(db,
		 "INSERT INTO job_drift (job_id, agency_id, kind, detail, resolved_at) VALUES"
		 " ('%s', '%s', 'location_missing', 'location loc-x: GHL answered 404', NULL),"
		 " ('%s', '%s', 'snapshot_failed', 'push failed', LOCALTIMESTAMP)",
		 done, a, done, a);
	set_var(n, "Z", done);
	tl_execf(db, "REFRESH MATERIALIZED VIEW job_success_rates");
	set_var(n, "P",
		hjob_add(db, a, "{\"name\":\"Pending Co\",\"email\":\"p@example.com\"}", NULL));
	set_var(n, "E", xstrdup("00000000-0000-4000-8000-000000000000"));
	char *batch = tl_sqlf(db,
			      "INSERT INTO job_batches (agency_id, source, filename, total)"
			      " VALUES ('%s', 'csv', 'contract.csv', 1) RETURNING id",
			      a);
	tl_execf(db, "UPDATE provisioning_jobs SET batch_id = '%s' WHERE id = '%s'", batch, done);
	set_var(n, "N", batch);
	return a;
}

/* Event subscriptions of A: %V (with one delivery, %Y) and %D (deleted by a
 * case). The agent runs roles=api: nothing is sent. */
static void make_webhooks(size_t *n, const char *a)
{
	char *path = xasprintf("/api/v1/agencies/%s/webhooks", a);
	const char *body = "{\"url\":\"https://hooks.example/v\",\"events\":[\"job.failed\"]}";
	char *v = setup_call("POST", path, body, 201, "id");
	set_var(n, "V", v);
	set_var(n, "D", setup_call("POST", path, body, 201, "id"));
	set_var(n, "Y",
		tl_sqlf(db,
			"INSERT INTO event_deliveries (subscription_id, agency_id,"
			" event_id, event_type, payload) VALUES ('%s', '%s',"
			" gen_random_uuid(), 'job.failed', '{\"type\":\"job.failed\"}')"
			" RETURNING id",
			v, a));
	free(path);
}

/* Tasks of A's jobs parked on them (TASK steps): %O (to complete), %J (to
 * reject). The agent runs roles=api: nothing resumes the jobs. */
static void make_tasks(size_t *n, const char *a)
{
	const char *names[] = {"O", "J"};
	for (int i = 0; i < 2; i++) {
		char *job = hjob_add(db, a, "{\"name\":\"Task Co\",\"email\":\"t@example.com\"}",
				     NULL);
		char *task = tl_sqlf(db,
				     "INSERT INTO tasks (agency_id, job_id, step_index, step_name,"
				     " title, checklist, due_at) VALUES ('%s', '%s', 0, 'TASK',"
				     " 'Register A2P 10DLC for Task Co', '[\"Brand\"]',"
				     " now() + interval '3 days') RETURNING id",
				     a, job);
		tl_execf(db,
			 "UPDATE provisioning_jobs SET status = 'IN_PROGRESS', context_json ="
			 " jsonb_build_object('waiting', jsonb_build_object('task_id', '%s',"
			 " 'step', 0, 'step_name', 'TASK')) WHERE id = '%s'",
			 task, job);
		set_var(n, names[i], task);
		free(job);
	}
}

/* The callers' credentials, and users and keys the cases change: %M (the
 * ADMIN itself), %T (its session token), %U (a user to patch), %X (one to
 * delete), %K (a key of A to revoke). */
static void make_callers(size_t *n, const char *a)
{
	tokens[C_ADMIN] = hagent_admin_token(&ag);
	set_var(n, "T", xstrdup(tokens[C_ADMIN]));
	set_var(n, "M", tl_sqlf(db, "SELECT id FROM users WHERE email = '" H_ADMIN_EMAIL "'"));
	char *ids = xasprintf("[\"%s\"]", a);
	free(new_user("aa@example.com", "AGENCY_ADMIN", ids));
	free(ids);
	free(new_user("support@example.com", "SUPPORT", "[]"));
	set_var(n, "U", new_user("patched@example.com", "SUPPORT", "[]"));
	set_var(n, "X", new_user("deleted@example.com", "SUPPORT", "[]"));
	aa_token = hlogin(&ag, "aa@example.com", "contract password 1");
	support_token = hlogin(&ag, "support@example.com", "contract password 1");
	char *keys = xasprintf("/api/v1/agencies/%s/api-keys", a);
	key_a = setup_call("POST", keys, "{\"name\":\"contract caller\"}", 201, "key");
	set_var(n, "K", setup_call("POST", keys, "{\"name\":\"to revoke\"}", 201, "id"));
	free(keys);
	tokens[C_NONE] = NULL;
	tokens[C_KEY] = key_a;
	tokens[C_SUPPORT] = support_token;
	tokens[C_AA] = aa_token;
}

/* Request inputs: %W a signed GHL webhook, %G its signature header, %H a
 * signature that does not match; %L a JSON body over API_JSON_MAX_ITEMS; %Q
 * the dashboard's ETag. */
static void make_inputs(size_t *n)
{
	/* a signed GHL webhook; %H: its signature over other bytes */
	char *body, *sig;
	signed_webhook(&body, &sig);
	set_var(n, "W", body);
	set_var(n, "G", xasprintf("x-ghl-signature: %s", sig));
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	set_var(n, "H", xasprintf("x-ghl-signature: %s", sig));
	free(sig);

	/* a JSON body over API_JSON_MAX_ITEMS: 413 json_limit_exceeded */
	struct buf big;
	buf_init(&big);
	buf_puts(&big, "{\"email\":[0");
	for (int i = 0; i < 10000; i++)
		buf_puts(&big, ",0");
	buf_puts(&big, "]}");
	set_var(n, "L", buf_take(&big));

	/* the dashboard's ETag, for the 304 case */
	struct tl_resp r;
	char *url = hagent_url(&ag, "/");
	tl_request(&r, "GET", url, NULL, NULL, 0);
	const char *etag = r.headers ? strcasestr(r.headers, "\nETag:") : NULL;
	ck_assert_msg(etag, "GET /: no ETag: %s", r.headers);
	etag += strlen("\nETag:");
	etag += strspn(etag, " ");
	set_var(n, "Q", xstrndup(etag, strcspn(etag, "\r\n")));
	tl_resp_free(&r);
	free(url);
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	start_services();
	vars = xcalloc(sizeof(var_values) / sizeof(var_values[0]) * 2 + 1, sizeof(char *));
	size_t n = 0;
	const char *agency_a = make_objects(&n);
	make_webhooks(&n, agency_a);
	make_tasks(&n, agency_a);
	make_callers(&n, agency_a);
	make_inputs(&n);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	for (size_t i = 0; i < sizeof(var_values) / sizeof(var_values[0]); i++)
		free(var_values[i]);
	free(vars);
	free(aa_token);
	free(support_token);
	free(key_a);
	curl_global_cleanup();
}

/* ---- recording ------------------------------------------------------------- */

static FILE *exchanges;

/* The Content-Type of raw response headers (malloc'd; "" when none). */
static char *content_type(const char *headers)
{
	const char *p = headers ? strcasestr(headers, "\nContent-Type:") : NULL;
	if (!p)
		return xstrdup("");
	p += strlen("\nContent-Type:");
	p += strspn(p, " ");
	return xstrndup(p, strcspn(p, "\r\n"));
}

/* One answer for contract_check.py: a line of exchanges.jsonl. */
static void record(const char *op, const char *who, const char *path, const struct tl_resp *r)
{
	struct buf b;
	buf_init(&b);
	struct jw w;
	jw_init(&w, &b);
	char *ct = content_type(r->headers);
	jw_object_begin(&w);
	jw_key(&w, "op");
	jw_string(&w, op);
	jw_key(&w, "as");
	jw_string(&w, who);
	jw_key(&w, "path");
	jw_string(&w, path);
	jw_key(&w, "status");
	jw_int(&w, r->status);
	jw_key(&w, "content_type");
	jw_string(&w, ct);
	jw_key(&w, "body");
	jw_string(&w, r->body ? r->body : "");
	jw_object_end(&w);
	fprintf(exchanges, "%s\n", buf_cstr(&b));
	free(ct);
	buf_clear(&b);
}

static void run_case(const struct ccase *c, struct buf *fails)
{
	char *path = tl_expand(c->path, vars);
	char *body = c->body ? tl_expand(c->body, vars) : NULL;
	char *extra = c->header ? tl_expand(c->header, vars) : NULL;
	char *url = hagent_url(&ag, path);
	char *ctype = body ? xasprintf("Content-Type: %s",
				       c->content_type ? c->content_type : "application/json")
			   : NULL;
	for (int w = 0; w < NCALLERS; w++) {
		if (!c->want[w])
			continue;
		char *authz = tokens[w] ? xasprintf("Authorization: Bearer %s", tokens[w]) : NULL;
		const char *h[4];
		int k = 0;
		if (ctype)
			h[k++] = ctype;
		if (authz)
			h[k++] = authz;
		if (extra)
			h[k++] = extra;
		h[k] = NULL;
		struct tl_resp r;
		char *method = xstrndup(c->op, strcspn(c->op, " "));
		tl_request(&r, method, url, h, body, body ? strlen(body) : 0);
		free(method);
		if (r.status != c->want[w])
			buf_printf(fails, "status: %s as %s (%s): %ld, want %d: %.300s\n", c->op,
				   caller_names[w], path, r.status, c->want[w], r.body);
		record(c->op, caller_names[w], path, &r);
		tl_resp_free(&r);
		free(authz);
	}
	free(ctype);
	free(url);
	free(extra);
	free(body);
	free(path);
}

/* GET /oauth/callback's good case: the browser's dance (ADMIN reconnects A). */
static void connect_callback(struct buf *fails)
{
	struct tl_resp cb;
	char *callback = hconnect(&ag, "co-contract-a", &cb);
	if (cb.status != 200)
		buf_printf(fails,
			   "status: GET /oauth/callback (the OAuth dance): %ld, want 200:"
			   " %.300s\n",
			   cb.status, cb.body);
	const char *q = strstr(callback, "/oauth/callback");
	record("GET /oauth/callback", "none", q ? q : callback, &cb);
	tl_resp_free(&cb);
	free(callback);
}

/* routes.txt: the router's routes, one "METHOD /pattern" a line. */
static char *write_routes(const char *dir)
{
	char *path = xasprintf("%s/routes.txt", dir);
	FILE *f = fopen(path, "w");
	ck_assert_msg(f, "cannot write %s", path);
	size_t n;
	struct http_route *routes = routes_all(&n);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s %s\n", routes[i].method, routes[i].pattern);
	free(routes);
	fclose(f);
	return path;
}

START_TEST(every_operation_answers_as_the_spec_says)
{
	const char *dir = tl_env("GHL_CONTRACT_DIR");
	char *ex_path = xasprintf("%s/exchanges.jsonl", dir);
	exchanges = fopen(ex_path, "w");
	ck_assert_msg(exchanges, "cannot write %s", ex_path);
	struct buf fails;
	buf_init(&fails);
	connect_callback(&fails);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], &fails);
	fclose(exchanges);
	char *routes = write_routes(dir);

	char *spec = xasprintf("%s/docs/openapi.yaml", tl_env("GHL_SOURCE_DIR"));
	char *script = xasprintf("%s/tests/contract/contract_check.py", tl_env("GHL_SOURCE_DIR"));
	char *argv[] = {(char *)tl_env("GHL_CONTRACT_PYTHON"),
			script,
			spec,
			(char *)"--routes",
			routes,
			(char *)"--exchanges",
			ex_path,
			(char *)"--callers",
			(char *)"none,api_key,SUPPORT,AGENCY_ADMIN,ADMIN",
			NULL};
	char *out = NULL;
	int rc = tl_run(argv, NULL, &out);
	if (rc != 0)
		buf_printf(&fails, "%s(contract_check.py exited %d; answers in %s)\n", out, rc,
			   ex_path);
	free(out);
	tl_scope_assert_none(&fails, "the API and docs/openapi.yaml");
	buf_clear(&fails);
	free(script);
	free(spec);
	free(routes);
	free(ex_path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("contract");
	TCase *tc = tcase_create("contract");
	tcase_set_timeout(tc, 280); /* a loaded machine under ASan; ctest's TIMEOUT is 300 */
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_operation_answers_as_the_spec_says);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
