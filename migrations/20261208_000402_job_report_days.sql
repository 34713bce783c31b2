-- The overview report (GET /api/v1/reports/overview) at any table size: the
-- days before today come from job_report_days, one row per (day created,
-- agency, snapshot, state, time-to-provision bucket) with its number of jobs,
-- brought up to date incrementally; today is computed from the jobs on each
-- request. A refresh recomputes only the days whose jobs changed since the
-- previous one (updated_at, with 5 minutes of margin for transactions that
-- stamped it before and committed after), so it costs about one day's jobs;
-- the report runs it first when the last one is older than 30 s, so a change
-- to an older job shows within a minute, and one of today's at once.

-- A completed job's time to provision (seconds) as a histogram bucket: eight
-- per doubling, so a percentile read back as its bucket's middle is within 4.5%.
CREATE FUNCTION job_secs_bucket(secs double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN floor(8 * ln(1 + greatest(secs, 0)) / ln(2))::integer;
CREATE FUNCTION job_bucket_secs(bucket integer) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round((2 ^ ((bucket + 0.5) / 8.0) - 1)::numeric, 1);

CREATE TABLE job_report_days (
    day DATE NOT NULL,
    agency_id UUID NOT NULL,
    snapshot_id UUID,
    status provisioning_job_status NOT NULL,
    secs_bucket INTEGER, -- COMPLETED jobs with finished_at only
    jobs BIGINT NOT NULL
);
CREATE INDEX idx_job_report_days_day ON job_report_days (day);
CREATE INDEX idx_job_report_days_agency_day ON job_report_days (agency_id, day);

INSERT INTO report_refreshes (view_name, refreshed_at) VALUES ('job_report_days', '-infinity');

-- Recompute the changed days unless the last refresh is younger than max_age
-- (or another session is refreshing). Returns the days recomputed, or -1.
CREATE FUNCTION job_report_days_refresh(max_age interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    last timestamptz;
    started timestamptz := clock_timestamp();
    changed date[];
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('job_report_days_refresh')) THEN
        RETURN -1;
    END IF;
    SELECT refreshed_at INTO last FROM report_refreshes WHERE view_name = 'job_report_days';
    IF last > started - max_age THEN
        RETURN 0;
    END IF;
    IF last = '-infinity' THEN
        SELECT array_agg(DISTINCT created_at::date) INTO changed FROM provisioning_jobs;
    ELSE
        SELECT array_agg(DISTINCT created_at::date) INTO changed FROM provisioning_jobs
         WHERE updated_at >= (last - interval '5 minutes')::timestamp;
    END IF;
    IF changed IS NOT NULL THEN
        DELETE FROM job_report_days WHERE day = ANY (changed);
        INSERT INTO job_report_days (day, agency_id, snapshot_id, status, secs_bucket, jobs)
        SELECT j.created_at::date, j.agency_id, j.snapshot_id, j.status,
               CASE WHEN j.status = 'COMPLETED' AND j.finished_at IS NOT NULL
                    THEN job_secs_bucket(date_part('epoch', j.finished_at - j.created_at)) END,
               count(*)
          FROM unnest(changed) d
          JOIN provisioning_jobs j ON j.created_at >= d AND j.created_at < d + 1
         GROUP BY 1, 2, 3, 4, 5;
    END IF;
    UPDATE report_refreshes SET refreshed_at = started WHERE view_name = 'job_report_days';
    RETURN coalesce(cardinality(changed), 0);
END $$;

SELECT job_report_days_refresh('0');
