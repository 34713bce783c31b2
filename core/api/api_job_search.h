/* api_job_search.h — searching jobs (`q`: name, email, job id, location id)
 * with a capped total count, for GET /api/v1/jobs (api_jobs.c) and POST
 * /api/v1/agencies/{id}/jobs/bulk (retry or cancel many jobs,
 * api_job_search.c). */
#ifndef GHL_API_JOB_SEARCH_H
#define GHL_API_JOB_SEARCH_H

#include <libpq-fe.h>

#include "api.h"
#include "util.h"

#define JOB_SEARCH_MAX 200    /* characters of q */
#define JOB_SEARCH_MIN_TEXT 3 /* shorter: only the exact matches (job id, location id) */
#define JOB_TOTAL_CAP 10000   /* counted exactly up to here; beyond, "at least" */

/* Collect a problem when q is unusable (too long). */
void job_search_check(struct api_req *r, const char *q);

/* Add " AND (…)" matching q to a WHERE clause on provisioning_jobs `j`: the
 * job id (q is a UUID) or location id equal to q, or q anywhere in the
 * client's name, email, first or last name (case-insensitive; the trigram
 * index of migration 20261208_000601). Its values go to params[*n…] (two at
 * most); *own receives a malloc'd value the caller frees after the query. */
void job_search_where(struct buf *where, const char *q, const char **params, int *n, char **own);

/* SQL of the capped count over the same FROM/WHERE: one column. */
char *job_total_sql(const char *where);

/* ",\"total\":N,\"total_exact\":true|false" from the capped count's text. */
char *job_total_members(const char *count);

/* POST /jobs/{id}/retry's statement (api_jobs.c): $1 job, $2 scope, $3 new
 * client data (NULL: kept; edit-and-retry passes one), $4/$5 the audit row's
 * user and API key (api_audit_user/api_audit_key). */
extern const char jobs_retry_sql[];

#endif
