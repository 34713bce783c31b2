-- The overview report (GET /api/v1/reports/overview) and the success rates are
-- computed from the jobs themselves on every request, no longer from a view
-- refreshed hourly: a job that ended a second ago is counted. What keeps that
-- fast is an index-only scan of the jobs created in the period. The two
-- (created_at, id) listing indexes of 20261126_000304 become covering ones
-- (same keys, so the job listings use them as before, plus the columns the
-- reports read); the seed's own indexes stay as they are. The failed step
-- logs get a small partial index for the "failing steps" ranking.
CREATE INDEX idx_provisioning_jobs_created_id_cover
    ON provisioning_jobs (created_at DESC, id DESC)
    INCLUDE (agency_id, status, snapshot_id, finished_at);
DROP INDEX idx_provisioning_jobs_created_id;
CREATE INDEX idx_provisioning_jobs_agency_created_id_cover
    ON provisioning_jobs (agency_id, created_at DESC, id DESC)
    INCLUDE (status, snapshot_id, finished_at);
DROP INDEX idx_provisioning_jobs_agency_created_id;
CREATE INDEX idx_provisioning_logs_failed_timestamp
    ON provisioning_logs (timestamp) INCLUDE (job_id, step) WHERE status = 'FAILED';
