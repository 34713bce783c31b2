-- The audit log (issue 14 item 6): who did what, to which agency and object,
-- and when. Append-only: rows are only ever inserted, each by the same SQL
-- statement that makes the change it records (a data-modifying CTE, see
-- core/api/api.h "audit"), so a change that fails or changes nothing leaves
-- no row, and a change never commits without its row.
--
-- actor_user_id: the user (a session, or the user logging in); actor_key_id:
-- the API key; both NULL for the agent itself. No foreign keys: the record
-- outlives the users, keys and agencies it names.
CREATE TABLE audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_user_id UUID NULL,
    actor_key_id UUID NULL,
    action TEXT NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    agency_id UUID NULL,
    target TEXT NULL,
    diff JSONB NULL
);

CREATE INDEX idx_audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX idx_audit_log_agency ON audit_log (agency_id, at DESC, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
