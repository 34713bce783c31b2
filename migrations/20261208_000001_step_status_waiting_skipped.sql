-- WAITING: a step that parked its job until a person acts (the TASK step);
-- SKIPPED: a step whose `when` predicate was false (issue 13). Appended to the
-- seed's labels (STARTED, COMPLETED, FAILED), which stay as they are. Nothing
-- in this migration uses them: a new label cannot be used in the transaction
-- that adds it.
ALTER TYPE provisioning_step_status ADD VALUE IF NOT EXISTS 'WAITING';
ALTER TYPE provisioning_step_status ADD VALUE IF NOT EXISTS 'SKIPPED';
