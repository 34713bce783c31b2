-- A cancelled job's OPEN tasks end with it (issue 14): a job parked on a
-- person's task and then cancelled left its task OPEN, listed as work to do
-- that could no longer be done. The tasks get a fourth status, CANCELLED
-- (appended; OPEN, COMPLETED and REJECTED keep their meaning), set with
-- completed_at when their job becomes CANCELLED, in the same transaction as
-- the job's change, whichever path cancels it (the API's single and bulk
-- cancels, the CLI, a runner stopping after its current step, a lease
-- expiring with a cancel requested). Completing or rejecting such a task
-- answers 409 ("the task is already CANCELLED"). The task's end fires
-- task.cancelled (same payload as task.created) through the outbox.
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('OPEN', 'COMPLETED', 'REJECTED', 'CANCELLED'));

CREATE FUNCTION ghl_job_cancel_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET status = 'CANCELLED', note = COALESCE(note, 'the job was cancelled'),
           completed_at = now(), updated_at = now()
     WHERE job_id = NEW.id AND status = 'OPEN';
    RETURN NULL;
END $$;

CREATE TRIGGER provisioning_jobs_cancel_tasks
    AFTER UPDATE OF status ON provisioning_jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'CANCELLED')
    EXECUTE FUNCTION ghl_job_cancel_tasks();

-- task.created on insert, task.cancelled when an OPEN task is cancelled,
-- task.overdue when the overdue check marks it (migration 20261208_000101).
CREATE OR REPLACE FUNCTION ghl_task_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ghl_event_emit(NEW.agency_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'task.created'
             WHEN NEW.status = 'CANCELLED' AND OLD.status = 'OPEN' THEN 'task.cancelled'
             ELSE 'task.overdue' END,
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

CREATE TRIGGER tasks_cancelled_event AFTER UPDATE OF status ON tasks
    FOR EACH ROW
    WHEN (OLD.status = 'OPEN' AND NEW.status = 'CANCELLED')
    EXECUTE FUNCTION ghl_task_events();
