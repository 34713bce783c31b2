/* routes.c — the daemon's route table: each module's routes, in one list.
 * Add a module's table here (and its paths to docs/openapi.yaml). */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "http.h"
#include "util.h"
#include "webhook_routes.h"

extern const struct route_table health_route_table;
extern const struct route_table oauth_route_table;	      /* core/api/oauth_routes.c */
extern const struct route_table webhook_route_table;	      /* core/api/webhook_routes.c */
extern const struct route_table api_auth_route_table;	      /* core/api/api_session.c */
extern const struct route_table api_users_route_table;	      /* core/api/api_users.c */
extern const struct route_table api_agencies_route_table;     /* core/api/api_agencies.c */
extern const struct route_table api_jobs_route_table;	      /* core/api/api_jobs.c */
extern const struct route_table api_snapshots_route_table;    /* core/api/api_snapshots.c */
extern const struct route_table api_reports_route_table;      /* core/api/api_reports.c */
extern const struct route_table api_steps_route_table;	      /* core/api/api_steps.c */
extern const struct route_table api_events_route_table;	      /* core/api/api_events.c */
extern const struct route_table web_route_table;	      /* core/api/web.c */
extern const struct route_table api_drift_route_table;	      /* core/api/api_drift.c */
extern const struct route_table api_tasks_route_table;	      /* core/api/api_tasks.c */
extern const struct route_table api_bulk_route_table;	      /* core/api/api_job_search.c */
extern const struct route_table api_batch_route_table;	      /* core/api/api_batches.c */
extern const struct route_table api_job_timeline_route_table; /* core/api/api_job_timeline.c */
extern const struct route_table api_audit_route_table;	      /* core/api/api_audit.c */

/* clang-format off */
static const struct route_table *const tables[] = {
	&health_route_table,
	&oauth_route_table,
	&webhook_route_table,
	&api_auth_route_table,
	&api_users_route_table,
	&api_agencies_route_table,
	&api_jobs_route_table,
	&api_snapshots_route_table,
	&api_steps_route_table,
	&api_events_route_table,
	&api_reports_route_table,
	&web_route_table,
	&api_drift_route_table,
	&api_tasks_route_table,
	&api_bulk_route_table,
	&api_batch_route_table,
	&api_job_timeline_route_table,
	&api_audit_route_table,
};
/* clang-format on */

/* Bodies larger than max_body_bytes, or smaller. */
static const struct http_body_rule body_rules[] = {
	{"POST", "/api/v1/agencies/{id}/jobs/batch", HTTP_BODY_LARGE}, /* max_batch_body_bytes */
	{"POST", "/webhooks/ghl", WEBHOOK_MAX_BODY},
};

const struct http_body_rule *routes_body_rules(size_t *n)
{
	*n = sizeof(body_rules) / sizeof(body_rules[0]);
	return body_rules;
}

struct http_route *routes_all(size_t *n)
{
	size_t total = 0;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		total += tables[i]->n;
	struct http_route *all = xcalloc(total, sizeof(*all));
	size_t k = 0;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		memcpy(all + k, tables[i]->routes, tables[i]->n * sizeof(*all));
		k += tables[i]->n;
	}
	*n = total;
	return all;
}
