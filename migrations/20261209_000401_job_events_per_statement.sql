-- Job events per statement, not per row (issue 15 item 2). The row trigger
-- called ghl_job_events() (plpgsql, one subscription query) for every job
-- that finished, also for agencies without any subscription: about a tenth
-- of the journal's job-row update in the drain benchmark (EXPLAIN ANALYZE of
-- 20,000 COMPLETED updates: trigger 416-569 ms of 4.2-7.4 s, 20,000 calls).
-- Now one call per UPDATE statement reads the statement's old and new rows
-- (transition tables) and returns at once when nobody subscribed to
-- anything; otherwise it emits exactly what the row trigger did: for each
-- job whose status changed into COMPLETED, FAILED, RETRYING or CANCELLED,
-- job.completed / job.failed / job.retrying / job.cancelled with the same
-- payload, to the agency's subscriptions that want it. A trigger with
-- transition tables cannot name columns (UPDATE OF status), so it fires for
-- every UPDATE of provisioning_jobs; the status comparison does the rest.
CREATE FUNCTION ghl_job_events_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_subscriptions) THEN
        RETURN NULL;
    END IF;
    PERFORM ghl_event_emit(n.agency_id, e.t, n.id, jsonb_build_object('job', jsonb_build_object(
        'id', n.id, 'agency_id', n.agency_id, 'status', n.status,
        'location_id', n.location_id, 'error_message', n.error_message,
        'retry_count', n.retry_count, 'idempotency_key', n.idempotency_key,
        'external_id', n.client_data_json->'external_id',
        'snapshot_id', n.snapshot_id,
        'created_at', to_char(n.created_at::timestamptz AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'finished_at', to_char(n.finished_at::timestamptz AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
    FROM job_events_new n
    JOIN job_events_old o ON o.id = n.id
    CROSS JOIN LATERAL (SELECT CASE n.status
        WHEN 'COMPLETED' THEN 'job.completed'
        WHEN 'FAILED' THEN 'job.failed'
        WHEN 'RETRYING' THEN 'job.retrying'
        WHEN 'CANCELLED' THEN 'job.cancelled'
    END AS t) e
    WHERE o.status IS DISTINCT FROM n.status
      AND e.t IS NOT NULL
      AND EXISTS (SELECT 1 FROM event_subscriptions s
                  WHERE s.agency_id = n.agency_id AND e.t = ANY (s.event_types));
    RETURN NULL;
END $$;

DROP TRIGGER provisioning_jobs_events ON provisioning_jobs;
DROP FUNCTION ghl_job_events();
CREATE TRIGGER provisioning_jobs_events
    AFTER UPDATE ON provisioning_jobs
    REFERENCING OLD TABLE AS job_events_old NEW TABLE AS job_events_new
    FOR EACH STATEMENT
    EXECUTE FUNCTION ghl_job_events_stmt();
