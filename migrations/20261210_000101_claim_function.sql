-- The scheduler's claim as one function (issues 11 and 15): the same three
-- steps it sent as one simple-protocol string (the claim lock, expired leases
-- made runnable again, the claim itself), which PostgreSQL planned on every
-- call: in the pickup benchmark a claim took 2.6 ms at the median, about
-- three quarters of it planning. PL/pgSQL keeps each statement's plan for
-- the connection. A VOLATILE function takes a new snapshot for each of its
-- statements, so the claim still sees every lease committed before it got
-- the lock (the reason the lock was a statement of its own).
--   p_default: max_concurrent_jobs for an agency without the setting
--   p_ceiling: max_concurrent_jobs_ceiling
--   p_room: at most this many jobs, all agencies together
--   p_owner, p_lease_ms: the leases' owner and length
-- Returns the claimed jobs in the columns the scheduler reads by position.
CREATE FUNCTION ghl_claim_jobs(p_default int, p_ceiling int, p_room int, p_owner text,
                               p_lease_ms bigint)
RETURNS TABLE (c_id uuid, c_agency_id uuid, c_ghl_agency_id text, c_client_data text,
               c_context text, c_retry_count int, c_attempt int, c_location_id text,
               c_settings text, c_snapshot text, c_cancel_requested boolean,
               c_claimed_at text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- serialises claims of all processes, so per-agency caps hold exactly
    PERFORM pg_advisory_xact_lock(7483920612);
    -- expired leases: their jobs runnable again with the attempt the lease
    -- counted, or CANCELLED when a cancel was requested meanwhile
    WITH gone AS (DELETE FROM job_leases WHERE lease_until < now()
                  RETURNING job_id, attempt)
    UPDATE provisioning_jobs j SET
        status = CASE WHEN j.cancel_requested
                       AND j.status IN ('IN_PROGRESS', 'PENDING', 'RETRYING') THEN 'CANCELLED'
                      WHEN j.status = 'IN_PROGRESS' THEN 'PENDING' ELSE j.status END,
        error_message = CASE WHEN j.cancel_requested
                              AND j.status IN ('IN_PROGRESS', 'PENDING', 'RETRYING')
                             THEN 'cancelled by request' ELSE j.error_message END,
        finished_at = CASE WHEN j.cancel_requested
                            AND j.status IN ('IN_PROGRESS', 'PENDING', 'RETRYING')
                           THEN now() ELSE j.finished_at END,
        locked_by = NULL, lease_until = NULL,
        attempt = GREATEST(j.attempt, g.attempt), updated_at = now()
    FROM gone g WHERE j.id = g.job_id;
    -- each agency's scan stops at the batch size too
    RETURN QUERY
    WITH ready AS (
        SELECT a.id AS agency_id,
               LEAST(GREATEST(COALESCE(CASE WHEN jsonb_typeof(
                   a.settings_json->'max_concurrent_jobs') = 'number' THEN
                   (a.settings_json->>'max_concurrent_jobs')::numeric::int END, p_default), 1),
                   p_ceiling)
               - (SELECT count(*) FROM job_leases r WHERE r.agency_id = a.id) AS room
        FROM agencies a WHERE EXISTS (SELECT 1 FROM provisioning_jobs p
            WHERE p.agency_id = a.id AND p.status IN ('PENDING', 'RETRYING')
            AND p.run_at <= now() AND NOT p.cancel_requested)),
    picked AS (
        SELECT c.id, c.agency_id, c.attempt, c.run_at FROM ready CROSS JOIN LATERAL (
            SELECT p.id, p.agency_id, p.attempt, p.run_at FROM provisioning_jobs p
            WHERE p.agency_id = ready.agency_id AND p.status IN ('PENDING', 'RETRYING')
            AND p.run_at <= now() AND NOT p.cancel_requested
            AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = p.id)
            ORDER BY p.run_at LIMIT LEAST(GREATEST(ready.room, 0), p_room)) c
        ORDER BY c.run_at LIMIT p_room),
    claimed AS (
        INSERT INTO job_leases (job_id, agency_id, owner, lease_until, attempt)
        SELECT id, agency_id, p_owner, now() + p_lease_ms * interval '1 millisecond',
               attempt + 1
        FROM picked RETURNING job_id, attempt)
    SELECT j.id, j.agency_id, a.ghl_agency_id::text, j.client_data_json::text,
           j.context_json::text, COALESCE(j.retry_count, 0), c.attempt, j.location_id::text,
           a.settings_json::text,
           CASE WHEN s.id IS NULL THEN NULL ELSE json_build_object('id', s.id,
               'ghl_snapshot_id', s.ghl_snapshot_id, 'name', s.name, 'is_active', s.is_active,
               'agency_id', s.agency_id)::text END,
           j.cancel_requested, now()::timestamp::text
    FROM claimed c JOIN provisioning_jobs j ON j.id = c.job_id
    JOIN agencies a ON a.id = j.agency_id
    LEFT JOIN snapshots s ON s.id = j.snapshot_id;
END
$$;
