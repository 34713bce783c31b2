-- Outbound events (issue 16 item 2): an agency's webhook subscriptions and
-- the durable outbox of their deliveries.
--
-- A subscription's signing secret is shown once at creation and stored only
-- encrypted by the token vault (core/ghl/vault.h), bound to the agency and
-- the column "event_subscriptions.secret_enc".
CREATE TABLE event_subscriptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    event_types TEXT[] NOT NULL,
    secret_enc TEXT NOT NULL,
    description VARCHAR(200) NULL,
    created_by UUID NULL REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_event_subscriptions_agency ON event_subscriptions (agency_id, created_at DESC);

-- The outbox: one row per (event, subscription), written by the triggers
-- below in the same transaction as the state change that caused the event,
-- so an event is never lost (a crash before the commit loses the change
-- too) nor invented. `seq` orders the events of one job: a delivery is not
-- attempted while an earlier one of the same job and subscription is still
-- pending (core/engine/event_delivery.c). The payload is the exact body sent.
CREATE TABLE event_deliveries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    seq BIGSERIAL NOT NULL,
    subscription_id UUID NOT NULL REFERENCES event_subscriptions(id) ON DELETE CASCADE,
    agency_id UUID NOT NULL,
    event_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    job_id UUID NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_attempt_at TIMESTAMPTZ NULL,
    last_status_code INTEGER NULL,
    last_error TEXT NULL,
    delivered_at TIMESTAMPTZ NULL,
    redelivery_of UUID NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The delivery worker's claim: due rows...
CREATE INDEX idx_event_deliveries_due ON event_deliveries (next_attempt_at) WHERE status = 'pending';
-- ...held back by an earlier pending event of the same job.
CREATE INDEX idx_event_deliveries_job_order
    ON event_deliveries (subscription_id, job_id, seq) WHERE status = 'pending';
-- The delivery log of a subscription, newest first.
CREATE INDEX idx_event_deliveries_log ON event_deliveries (subscription_id, created_at DESC, id DESC);

-- One event for every subscription of agency_id that wants event_type.
-- The created_at of jobs is a timestamp in the session's zone, as stored:
-- rendered in UTC like the API does (API_SQL_ISO).
CREATE FUNCTION ghl_event_emit(p_agency UUID, p_type TEXT, p_job UUID, p_data JSONB)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev UUID := gen_random_uuid();
    body TEXT;
BEGIN
    -- nothing to do without a subscription, nor for a deleted agency
    IF NOT EXISTS (SELECT 1 FROM event_subscriptions s JOIN agencies a ON a.id = s.agency_id
                   WHERE s.agency_id = p_agency AND p_type = ANY (s.event_types)
                     AND a.deleted_at IS NULL) THEN
        RETURN;
    END IF;
    body := json_build_object(
        'id', ev, 'type', p_type, 'agency_id', p_agency,
        'created_at', to_char(clock_timestamp() AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', p_data)::text;
    INSERT INTO event_deliveries (subscription_id, agency_id, event_id, event_type, job_id, payload)
    SELECT s.id, p_agency, ev, p_type, p_job, body
    FROM event_subscriptions s
    WHERE s.agency_id = p_agency AND p_type = ANY (s.event_types)
    ORDER BY s.id;
END $$;

-- Job events: COMPLETED → job.completed; FAILED → job.failed, or
-- job.cancelled when a person cancelled it; RETRYING → job.retrying.
CREATE FUNCTION ghl_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t TEXT;
BEGIN
    t := CASE NEW.status
        WHEN 'COMPLETED' THEN 'job.completed'
        WHEN 'FAILED' THEN CASE WHEN NEW.cancel_requested THEN 'job.cancelled' ELSE 'job.failed' END
        WHEN 'RETRYING' THEN 'job.retrying'
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

-- Only real transitions into an event state call the function, so the
-- journal's other updates (context, lease, logs) cost nothing more.
CREATE TRIGGER provisioning_jobs_events
    AFTER UPDATE OF status ON provisioning_jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('COMPLETED', 'FAILED', 'RETRYING'))
    EXECUTE FUNCTION ghl_job_events();

CREATE FUNCTION ghl_agency_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ghl_event_emit(NEW.id, 'agency.needs_reconnect', NULL, jsonb_build_object(
        'agency', jsonb_build_object('id', NEW.id, 'name', NEW.name,
                                     'reconnect_reason', NEW.reconnect_reason)));
    RETURN NULL;
END $$;

CREATE TRIGGER agencies_events
    AFTER UPDATE OF needs_reconnect ON agencies
    FOR EACH ROW
    WHEN (NEW.needs_reconnect AND NOT OLD.needs_reconnect)
    EXECUTE FUNCTION ghl_agency_events();
