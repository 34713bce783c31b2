-- Success rates by agency, niche and day (DESIGN "Data model": a materialized
-- view for reporting), read by GET /api/v1/reports/success-rates and refreshed
-- by the daemon's maintenance timer (archive_interval). The unique index lets
-- REFRESH … CONCURRENTLY run without blocking readers.
CREATE MATERIALIZED VIEW job_success_rates AS
SELECT j.agency_id,
       COALESCE(s.niche, '') AS niche,
       date_trunc('day', j.created_at)::date AS day,
       count(*) AS total,
       count(*) FILTER (WHERE j.status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE j.status = 'FAILED') AS failed
  FROM provisioning_jobs j
  LEFT JOIN snapshots s ON s.id = j.snapshot_id
 GROUP BY 1, 2, 3;

CREATE UNIQUE INDEX idx_job_success_rates_key ON job_success_rates (agency_id, niche, day);

-- When each report view was last refreshed (PostgreSQL does not record it).
CREATE TABLE report_refreshes (
    view_name TEXT PRIMARY KEY,
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO report_refreshes (view_name) VALUES ('job_success_rates');
