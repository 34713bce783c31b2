/* job_inflight.c — a job in flight: releasing what it owns. */
#include "job_inflight.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "json.h"


void job_clear(struct job *job)
{
	free(job->id);
	free(job->agency_id);
	free(job->company_id);
	json_free(job->client);
	json_free(job->snapshot);
	json_free(job->settings);
	json_free(job->context);
	json_free(job->job_json);
	free(job->location_id);
	secret_free(job->token);
	free(job->loc_id);
	secret_free(job->loc_token);
	free(job->fail_error);
	free(job->comp_notes);
}
