-- REST API listings (issue 6): GET /api/v1/jobs pages newest first with a
-- keyset cursor on (created_at, id), filtered by status or agency; these
-- indexes serve each filter in ORDER BY order, so a page costs a short index
-- scan at any table size.
CREATE INDEX idx_provisioning_jobs_created_id
    ON provisioning_jobs (created_at DESC, id DESC);
CREATE INDEX idx_provisioning_jobs_status_created_id
    ON provisioning_jobs (status, created_at DESC, id DESC);
CREATE INDEX idx_provisioning_jobs_agency_created_id
    ON provisioning_jobs (agency_id, created_at DESC, id DESC);
-- GET /api/v1/agencies/{id}/snapshots pages by (created_at, id) per agency.
CREATE INDEX idx_snapshots_agency_created_id
    ON snapshots (agency_id, created_at DESC, id DESC);
