-- Archive tables (DESIGN "Operations"): finished jobs and their step logs older
-- than `archive_after` move here (ghl-agent archive, or the daemon's periodic
-- run), keeping the live tables lean. Same columns in the same order as the
-- live tables, plus archived_at at the end: a migration that adds a column to
-- provisioning_jobs or provisioning_logs adds it here too (test_archive.c checks).
CREATE TABLE provisioning_jobs_archive (LIKE provisioning_jobs INCLUDING DEFAULTS);
ALTER TABLE provisioning_jobs_archive
    ADD COLUMN archived_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ADD PRIMARY KEY (id);
CREATE INDEX idx_provisioning_jobs_archive_agency_created
    ON provisioning_jobs_archive (agency_id, created_at);

CREATE TABLE provisioning_logs_archive (LIKE provisioning_logs INCLUDING DEFAULTS);
ALTER TABLE provisioning_logs_archive
    ADD COLUMN archived_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ADD PRIMARY KEY (id);
CREATE INDEX idx_provisioning_logs_archive_job ON provisioning_logs_archive (job_id, "timestamp");

-- The archival scan: finished jobs by finish time.
CREATE INDEX idx_provisioning_jobs_finished
    ON provisioning_jobs (finished_at) WHERE status IN ('COMPLETED', 'FAILED');
