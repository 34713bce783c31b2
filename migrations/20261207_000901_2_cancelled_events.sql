-- job.cancelled now fires when a job becomes CANCELLED (before: FAILED with
-- cancel_requested). COMPLETED → job.completed, FAILED → job.failed,
-- RETRYING → job.retrying, CANCELLED → job.cancelled.
CREATE OR REPLACE FUNCTION ghl_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t TEXT;
BEGIN
    t := CASE NEW.status
        WHEN 'COMPLETED' THEN 'job.completed'
        WHEN 'FAILED' THEN 'job.failed'
        WHEN 'RETRYING' THEN 'job.retrying'
        WHEN 'CANCELLED' THEN 'job.cancelled'
    END;
    PERFORM ghl_event_emit(NEW.agency_id, t, NEW.id, jsonb_build_object('job', jsonb_build_object(
        'id', NEW.id, 'agency_id', NEW.agency_id, 'status', NEW.status,
        'location_id', NEW.location_id, 'error_message', NEW.error_message,
        'retry_count', NEW.retry_count, 'idempotency_key', NEW.idempotency_key,
        'external_id', NEW.client_data_json->'external_id',
        'snapshot_id', NEW.snapshot_id,
        'created_at', to_char(NEW.created_at::timestamptz AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'finished_at', to_char(NEW.finished_at::timestamptz AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))));
    RETURN NULL;
END $$;

DROP TRIGGER provisioning_jobs_events ON provisioning_jobs;
CREATE TRIGGER provisioning_jobs_events
    AFTER UPDATE OF status ON provisioning_jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('COMPLETED', 'FAILED', 'RETRYING', 'CANCELLED'))
    EXECUTE FUNCTION ghl_job_events();
