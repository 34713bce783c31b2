-- People in the loop (issue 13 item 2): a TASK step creates a task for a
-- person and parks its job (IN_PROGRESS, no lease, no slot; the job's
-- context_json "waiting" says which task). A person completes or rejects it
-- (POST /api/v1/tasks/{id}/complete|reject); the job becomes PENDING again
-- and the TASK step, run again, reads the outcome. One task per job and
-- pipeline step: a step run again finds its task instead of making another.
CREATE TABLE tasks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    job_id UUID NOT NULL REFERENCES provisioning_jobs(id) ON DELETE CASCADE,
    step_index INTEGER NOT NULL CHECK (step_index >= 0),
    step_name TEXT NOT NULL,
    title TEXT NOT NULL,
    checklist JSONB NOT NULL DEFAULT '[]'::jsonb,
    assignee_role TEXT NOT NULL DEFAULT 'AGENCY_ADMIN'
        CHECK (assignee_role IN ('AGENCY_ADMIN', 'SUPPORT', 'ADMIN')),
    on_reject TEXT NOT NULL DEFAULT 'fail' CHECK (on_reject IN ('fail', 'rollback')),
    due_at TIMESTAMPTZ NULL,
    status TEXT NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'COMPLETED', 'REJECTED')),
    note TEXT NULL,
    outputs JSONB NULL,
    completed_by TEXT NULL, -- who completed or rejected it: a user's email or "api_key:<id>"
    completed_at TIMESTAMPTZ NULL,
    overdue_notified_at TIMESTAMPTZ NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (job_id, step_index)
);

-- The list's filters, newest first: by agency (and status), by status alone.
CREATE INDEX idx_tasks_agency ON tasks (agency_id, status, created_at DESC, id DESC);
CREATE INDEX idx_tasks_status ON tasks (status, created_at DESC, id DESC);
-- The overdue check: open tasks past due not yet notified.
CREATE INDEX idx_tasks_due ON tasks (due_at) WHERE status = 'OPEN' AND overdue_notified_at IS NULL;

-- task.created when a task is made, task.overdue when the overdue check
-- marks it (once: overdue_notified_at goes from NULL to a time once), in
-- the same transaction, through the outbox of migration 20261207_000701.
CREATE FUNCTION ghl_task_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ghl_event_emit(NEW.agency_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'task.created' ELSE 'task.overdue' END,
        NEW.job_id, jsonb_build_object('task', jsonb_build_object(
            'id', NEW.id, 'agency_id', NEW.agency_id, 'job_id', NEW.job_id,
            'step_index', NEW.step_index, 'step', NEW.step_name, 'title', NEW.title,
            'checklist', NEW.checklist, 'assignee_role', NEW.assignee_role,
            'status', NEW.status,
            'due_at', to_char(NEW.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'created_at', to_char(NEW.created_at AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))));
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_created_event AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION ghl_task_events();
CREATE TRIGGER tasks_overdue_event AFTER UPDATE OF overdue_notified_at ON tasks
    FOR EACH ROW
    WHEN (OLD.overdue_notified_at IS NULL AND NEW.overdue_notified_at IS NOT NULL)
    EXECUTE FUNCTION ghl_task_events();
