-- job_success_rates counts CANCELLED jobs in their own column: a cancel is
-- neither a completion nor a failure (success_rate = completed / (completed +
-- failed) leaves them out). Same view otherwise; report_refreshes keeps its row.
DROP MATERIALIZED VIEW job_success_rates;
CREATE MATERIALIZED VIEW job_success_rates AS
SELECT j.agency_id,
       COALESCE(s.niche, '') AS niche,
       date_trunc('day', j.created_at)::date AS day,
       count(*) AS total,
       count(*) FILTER (WHERE j.status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE j.status = 'FAILED') AS failed,
       count(*) FILTER (WHERE j.status = 'CANCELLED') AS cancelled
  FROM provisioning_jobs j
  LEFT JOIN snapshots s ON s.id = j.snapshot_id
 GROUP BY 1, 2, 3;

CREATE UNIQUE INDEX idx_job_success_rates_key ON job_success_rates (agency_id, niche, day);
UPDATE report_refreshes SET refreshed_at = now() WHERE view_name = 'job_success_rates';
