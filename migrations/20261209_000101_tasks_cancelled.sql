-- A cancelled job's OPEN tasks end with it (issue 14): a job parked on a
-- person's task and then cancelled left its task OPEN, listed as work to do
-- that could no longer be done. The tasks get a fourth status, CANCELLED
-- (appended; OPEN, COMPLETED and REJECTED keep their meaning), set with
-- completed_at when their job becomes CANCELLED, in the same transaction as
-- the job's change, whichever path cancels it (the API's single and bulk
-- cancels, the CLI, a runner stopping after its current step, a lease
-- expiring with a cancel requested). Completing or rejecting such a task
-- answers 409 ("the task is already CANCELLED").
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
