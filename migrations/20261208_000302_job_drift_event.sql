-- Outbound event job.drift (README "Integrate with the API"): one per drift
-- row opened by reconciliation or a GHL webhook (core/engine/reconcile.c,
-- core/api/webhook_routes.c); drift seen again or resolved sends nothing.
CREATE FUNCTION ghl_job_drift_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ghl_event_emit(NEW.agency_id, 'job.drift', NEW.job_id, jsonb_build_object(
        'drift', jsonb_build_object(
            'id', NEW.id, 'kind', NEW.kind, 'detail', NEW.detail,
            'first_seen', to_char(NEW.first_seen::timestamptz AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        'job', (SELECT jsonb_build_object('id', j.id, 'agency_id', j.agency_id,
                                          'status', j.status, 'location_id', j.location_id,
                                          'external_id', j.client_data_json->'external_id')
                FROM provisioning_jobs j WHERE j.id = NEW.job_id)));
    RETURN NULL;
END $$;

CREATE TRIGGER job_drift_events
    AFTER INSERT ON job_drift
    FOR EACH ROW
    EXECUTE FUNCTION ghl_job_drift_events();
