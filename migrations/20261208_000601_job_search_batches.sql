-- Search, batches (issue 14 item 5).
--
-- Search: GET /api/v1/jobs?q= matches a job id or a location id exactly and
-- the client's name, email, first and last name as a case-insensitive
-- substring. The substring match is served by a trigram index (pg_trgm, a
-- contrib extension that PostgreSQL marks trusted: a database owner may
-- create it) on one lower-cased text made of those fields; the API uses the
-- same function, so the planner matches the expression.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION ghl_job_search_text(c JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(coalesce(c->>'name', '') || ' ' || coalesce(c->>'email', '') || ' '
                 || coalesce(c->>'first_name', '') || ' ' || coalesce(c->>'last_name', ''))
$$;

CREATE INDEX idx_provisioning_jobs_search_trgm
    ON provisioning_jobs USING gin (ghl_job_search_text(client_data_json) gin_trgm_ops);
CREATE INDEX idx_provisioning_jobs_location_id
    ON provisioning_jobs (location_id) WHERE location_id IS NOT NULL;

-- Batches: the jobs of one upload (POST /agencies/{id}/jobs/batch, JSON or
-- CSV). `total` is the number of jobs it created; the progress per state is
-- counted from provisioning_jobs. completed_at is set once, when every job
-- has finished (COMPLETED, FAILED or CANCELLED), by the sweep that emits
-- batch.completed (core/engine/event_delivery.c); a later retry of one of
-- its jobs does not reopen it.
CREATE TABLE job_batches (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    source TEXT NOT NULL CHECK (source IN ('csv', 'json')),
    filename VARCHAR(255) NULL,
    total INTEGER NOT NULL,
    created_by UUID NULL REFERENCES users(id) ON DELETE SET NULL,
    api_key_id UUID NULL REFERENCES api_keys(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ NULL
);

CREATE INDEX idx_job_batches_agency_created ON job_batches (agency_id, created_at DESC, id DESC);
CREATE INDEX idx_job_batches_open ON job_batches (created_at) WHERE completed_at IS NULL;

ALTER TABLE provisioning_jobs ADD COLUMN batch_id UUID NULL REFERENCES job_batches(id) ON DELETE SET NULL;
CREATE INDEX idx_provisioning_jobs_batch ON provisioning_jobs (batch_id, status) WHERE batch_id IS NOT NULL;

-- The archive keeps the live table's columns in order, then archived_at
-- (core/store/archive.c copies rows with SELECT *): batch_id goes in before
-- archived_at, which is moved behind it with its values.
ALTER TABLE provisioning_jobs_archive
    ADD COLUMN batch_id UUID NULL,
    ADD COLUMN archived_at_moved TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;
UPDATE provisioning_jobs_archive SET archived_at_moved = archived_at;
ALTER TABLE provisioning_jobs_archive DROP COLUMN archived_at;
ALTER TABLE provisioning_jobs_archive RENAME COLUMN archived_at_moved TO archived_at;
