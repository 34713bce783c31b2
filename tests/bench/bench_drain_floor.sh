#!/usr/bin/env bash
# bench_drain_floor.sh — the PostgreSQL CPU that the writes of one drained job
# cost at the least, whatever the engine does (issue 15). On BENCH_JOBS
# queued jobs (default 20,000) of one agency, a single backend does in bulk,
# one statement each, what the drain's claims and journal batches write per
# job:
#   lease      a job_leases row inserted and deleted (the claim's, the release)
#   log rows   the STARTED and COMPLETED provisioning_logs rows (5 indexes
#              each, the foreign key's check)
#   job row    the update to COMPLETED with the context (a non-HOT update:
#              every index of provisioning_jobs gets an entry)
#   - search   the same update without the trigram search index (its share)
#   seed only  the same update with only the seed's 7 indexes on the table
#              (the ones our API and queue added dropped): what the schema the
#              product was specified with costs at the least
# and prints the backend's CPU per job for each (from /proc, 10 ms ticks, so
# the median of BENCH_REPS runs, default 3). Bulk statements have no round
# trips, no lock waits between connections and no planning per batch, so
# (a)'s PostgreSQL CPU per job minus this floor is what the engine adds.
# Needs PGHOST/PGPORT/PGUSER (scripts/bench starts a private PostgreSQL; as a
# ctest, GHL_TEST_PG*) on this machine (the backend's /proc entry is read)
# and GHL_AGENT_BIN (default build/plain/ghl-agent). Nothing is asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
BIN=${GHL_AGENT_BIN:-$ROOT/build/plain/ghl-agent}
# the test suite's server when run as a ctest (bench-smoke)
export PGHOST=${PGHOST:-${GHL_TEST_PGHOST:-127.0.0.1}} PGPORT=${PGPORT:-${GHL_TEST_PGPORT:-5432}} \
  PGUSER=${PGUSER:-${GHL_TEST_PGUSER:-postgres}}
psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1 || { echo "no PostgreSQL at $PGHOST:$PGPORT; skipped"; exit 77; }
N=${BENCH_JOBS:-20000}
REPS=${BENCH_REPS:-3}
DB=bench_floor_$$
export DATABASE_URL="postgresql://$PGUSER@$PGHOST:$PGPORT/$DB"
OUT=$(mktemp /tmp/bench-floor.XXXXXX)
cleanup() {
  dropdb --if-exists "$DB" 2>/dev/null || true
  rm -f "$OUT"
}
trap cleanup EXIT
createdb "$DB"
"$BIN" migrate >/dev/null

# One run: psql prints "tick PART" lines around each part (the backend's
# user + system CPU in clock ticks); drop_search=1 times the update without
# the trigram index, 2 with the seed's indexes only.
SEED_INDEXES="'provisioning_jobs_pkey', 'idx_provisioning_jobs_agency_id',
  'idx_provisioning_jobs_status', 'idx_provisioning_jobs_snapshot_id',
  'idx_provisioning_jobs_created_at', 'idx_provisioning_jobs_updated_at',
  'idx_provisioning_jobs_agency_status'"
run() {
  local drop_search=$1 drop=""
  [ "$drop_search" = 1 ] && drop="DROP INDEX IF EXISTS idx_provisioning_jobs_search_trgm;"
  [ "$drop_search" = 2 ] && drop="SELECT format('DROP INDEX %I', indexname) FROM pg_indexes
    WHERE tablename = 'provisioning_jobs' AND indexname NOT IN ($SEED_INDEXES) \\gexec"
  psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<EOF
SET client_min_messages = warning;
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
TRUNCATE provisioning_jobs CASCADE;
TRUNCATE job_leases;
INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,
  oauth_refresh_token_encrypted, token_expires_at, settings_json)
VALUES ('22222222-2222-4222-8222-222222222222', 'Bench', 'bench-co', 'x', 'x',
  now() + interval '1 day', '{"pipeline":[{"step":"NOOP"}]}') ON CONFLICT DO NOTHING;
$drop
INSERT INTO provisioning_jobs (agency_id, client_data_json)
SELECT '22222222-2222-4222-8222-222222222222',
  jsonb_build_object('name', 'C' || g, 'email', 'c' || g || '@x.example')
FROM generate_series(1, $N) g;
VACUUM ANALYZE provisioning_jobs;
CHECKPOINT;
\! awk '{print "tick start", \$14 + \$15}' /proc/\$BPID/stat
INSERT INTO job_leases (job_id, agency_id, owner, lease_until, attempt)
SELECT id, agency_id, 'bench', now() + interval '1 minute', 1 FROM provisioning_jobs;
DELETE FROM job_leases;
\! awk '{print "tick lease", \$14 + \$15}' /proc/\$BPID/stat
INSERT INTO provisioning_logs (job_id, step, status, details_json, "timestamp")
SELECT id, 'NOOP', s, '{"index": 0, "attempt": 1}', clock_timestamp()::timestamp
FROM provisioning_jobs, unnest('{STARTED,COMPLETED}'::provisioning_step_status[]) s;
\! awk '{print "tick logs", \$14 + \$15}' /proc/\$BPID/stat
UPDATE provisioning_jobs SET status = 'COMPLETED', attempt = 1, locked_by = NULL,
  lease_until = NULL, started_at = now(), finished_at = now(), updated_at = now(),
  context_json = '{"steps": {"0": {"step": "NOOP", "status": "COMPLETED"}}, "outputs": {},
    "pipeline": [{"step": "NOOP"}], "on_failure": "fail", "max_retries": 3}';
\! awk '{print "tick update", \$14 + \$15}' /proc/\$BPID/stat
EOF
}

for i in $(seq "$REPS"); do
  run 0 | awk -v r="$i" '$1 == "tick" { if (p != "") print r, $2, $3 - t; p = $2; t = $3 }' >>"$OUT"
done
# the update without the search index, last (the index is gone for good)
for i in $(seq "$REPS"); do
  run 1 | awk -v r="$i" '$1 == "tick" && $2 == "update" { print r, "nosearch", $3 - t } $1 == "tick" { t = $3 }' >>"$OUT"
done
# and with the seed's indexes only, last of all
for i in $(seq "$REPS"); do
  run 2 | awk -v r="$i" '$1 == "tick" && $2 == "update" { print r, "seedonly", $3 - t } $1 == "tick" { t = $3 }' >>"$OUT"
done
nidx=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM pg_indexes WHERE tablename = 'provisioning_jobs'")
hz=$(getconf CLK_TCK)
med() { awk -v k="$1" '$2 == k { print $3 }' "$OUT" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
us() { awk -v t="$1" -v hz="$hz" -v n="$N" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }'; }
lease=$(med lease) logs=$(med logs) upd=$(med update) nos=$(med nosearch) seed=$(med seedonly)
echo "drain floor: PostgreSQL CPU per job, $N jobs in bulk, median of $REPS: lease $(us "$lease") us," \
  "2 log rows $(us "$logs") us, job row update $(us "$upd") us (of it the search index" \
  "$(us $((upd > nos ? upd - nos : 0))) us); total $(us $((lease + logs + upd))) us;" \
  "with the seed's $nidx indexes only, the update $(us "$seed") us and the total $(us $((lease + logs + seed))) us"
