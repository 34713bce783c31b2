-- GET /api/v1/jobs for one agency (an API key, an AGENCY_ADMIN) with a status
-- filter: agency and status by equality, the page in (created_at, id) order.
CREATE INDEX idx_provisioning_jobs_agency_status_created_id
    ON provisioning_jobs (agency_id, status, created_at DESC, id DESC);
