-- Job leases (issue 15): a claim inserts one narrow row here instead of
-- updating provisioning_jobs (whose 16 indexes make every update of a job
-- row insert into each of them). The lease row is the claim: its owner fences
-- every journal write of the job, renewals move only its lease_until, and an
-- expired one lets another worker take the job. The job row's IN_PROGRESS
-- (locked_by, attempt, started_at) is written by the journal's next batch,
-- in the same UPDATE as the job's end when the job finishes first.
CREATE TABLE job_leases (
    job_id UUID PRIMARY KEY,
    agency_id UUID NOT NULL,
    owner TEXT NOT NULL,
    lease_until TIMESTAMP NOT NULL,
    attempt INTEGER NOT NULL
);
-- The per-agency cap counts an agency's leases.
CREATE INDEX idx_job_leases_agency ON job_leases (agency_id);

-- Jobs held under the earlier scheme keep their owner until their lease ends.
INSERT INTO job_leases (job_id, agency_id, owner, lease_until, attempt)
SELECT id, agency_id, locked_by, COALESCE(lease_until, now()), attempt
FROM provisioning_jobs WHERE status = 'IN_PROGRESS' AND locked_by IS NOT NULL;
