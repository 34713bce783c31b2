-- Job queue columns (issue 4): next attempt, claim lease, idempotency, context, times.
ALTER TABLE provisioning_jobs
    ADD COLUMN run_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ADD COLUMN locked_by TEXT,
    ADD COLUMN lease_until TIMESTAMP,
    ADD COLUMN idempotency_key TEXT,
    ADD COLUMN request_hash TEXT,
    ADD COLUMN context_json JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN started_at TIMESTAMP,
    ADD COLUMN finished_at TIMESTAMP,
    ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;

-- One job per (agency, Idempotency-Key).
CREATE UNIQUE INDEX idx_provisioning_jobs_agency_idem
    ON provisioning_jobs (agency_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The claim query: runnable jobs by next-attempt time...
CREATE INDEX idx_provisioning_jobs_runnable
    ON provisioning_jobs (run_at) WHERE status IN ('PENDING', 'RETRYING');
-- ...and jobs whose owner's lease ran out.
CREATE INDEX idx_provisioning_jobs_leased
    ON provisioning_jobs (lease_until) WHERE status = 'IN_PROGRESS';
-- Jobs in flight per agency (the per-agency cap).
CREATE INDEX idx_provisioning_jobs_agency_inflight
    ON provisioning_jobs (agency_id) WHERE status = 'IN_PROGRESS';

-- Wake workers when jobs become runnable (LISTEN ghl_jobs); one notification
-- per statement, so a batch insert costs one.
CREATE FUNCTION ghl_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ghl_jobs', '');
    RETURN NULL;
END $$;

CREATE TRIGGER provisioning_jobs_notify
    AFTER INSERT ON provisioning_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION ghl_jobs_notify();
