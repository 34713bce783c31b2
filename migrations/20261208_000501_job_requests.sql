-- job_requests: the GHL requests of each step run (issue 14, the job
-- timeline): one row per request a step made, written by the journal in the
-- same batch as the step's log rows. Bodies are masked (tokens, passwords,
-- keys) and cut to a few KB before they get here. Deleting a job deletes
-- its requests; archiving moves them to job_requests_archive with the job.
CREATE TABLE job_requests (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        UUID NOT NULL REFERENCES provisioning_jobs (id) ON DELETE CASCADE,
    step_index    INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    compensate    BOOLEAN NOT NULL DEFAULT false,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    status        INTEGER NOT NULL,
    duration_ms   BIGINT NOT NULL,
    trace_id      TEXT,
    error         TEXT,
    request_body  TEXT,
    response_body TEXT,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_job_requests_job ON job_requests (job_id, id);

CREATE TABLE job_requests_archive (LIKE job_requests INCLUDING DEFAULTS);
ALTER TABLE job_requests_archive
    ADD COLUMN archived_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ADD PRIMARY KEY (id);
CREATE INDEX idx_job_requests_archive_job ON job_requests_archive (job_id, id);
