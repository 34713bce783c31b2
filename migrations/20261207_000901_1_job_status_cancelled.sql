-- CANCELLED: a job a person cancelled (issue 14). Appended to the seed's
-- labels, which stay as they are. A new enum label cannot be used in the
-- transaction that adds it, so what uses it is in the next migrations (000901_2, 000901_3).
ALTER TYPE provisioning_job_status ADD VALUE IF NOT EXISTS 'CANCELLED' AFTER 'RETRYING';
