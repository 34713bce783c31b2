-- Reconciliation (issue 13 item 4): what GHL no longer shows of a COMPLETED
-- job's work, found by the sweep (core/engine/reconcile.c) or a GHL webhook.
-- One open row per job and kind; a later sweep (or webhook) that finds it
-- fixed sets resolved_at, and a new drift of that kind opens a new row.
CREATE TABLE job_drift (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES provisioning_jobs(id) ON DELETE CASCADE,
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('location_missing', 'snapshot_failed', 'user_missing',
                                       'app_uninstalled')),
    detail TEXT NOT NULL DEFAULT '',
    first_seen TIMESTAMP NOT NULL DEFAULT LOCALTIMESTAMP,
    last_seen TIMESTAMP NOT NULL DEFAULT LOCALTIMESTAMP,
    resolved_at TIMESTAMP
);

CREATE UNIQUE INDEX idx_job_drift_open ON job_drift (job_id, kind) WHERE resolved_at IS NULL;
-- The report: newest first, per agency.
CREATE INDEX idx_job_drift_agency ON job_drift (agency_id, first_seen DESC, id DESC);
CREATE INDEX idx_job_drift_first_seen ON job_drift (first_seen DESC, id DESC);
CREATE INDEX idx_job_drift_job ON job_drift (job_id);
