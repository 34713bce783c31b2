#!/usr/bin/env bash
# bench_overview.sh — GET /api/v1/reports/overview and /reports/success-rates
# at BENCH_JOBS jobs (default 1,000,000) created over the last 30 days by 100
# agencies (10 niches; 2% FAILED with one failed step row each, 1% waiting),
# loaded with generate_series, then VACUUM ANALYZE. Prints the median and
# worst of 5 requests for: ADMIN over all agencies (30 and 7 days), an
# AGENCY_ADMIN of one agency, and the success rates (by agency, by niche, a
# year; an AGENCY_ADMIN's). Nothing is asserted.
# Needs PGHOST/PGPORT/PGUSER (scripts/bench starts a private PostgreSQL) and
# GHL_AGENT_BIN (default build/plain/ghl-agent).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
BIN=${GHL_AGENT_BIN:-$ROOT/build/plain/ghl-agent}
N=${BENCH_JOBS:-1000000}
DB=bench_overview_$$
export DATABASE_URL="postgresql://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:?PGPORT}/$DB"
LOG=$(mktemp /tmp/bench-overview-log.XXXXXX)
AGENT=
cleanup() {
  [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
  [ -n "${BENCH_KEEP:-}" ] || dropdb --if-exists "$DB" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT
createdb "$DB"
[ -z "${BENCH_EXPLAIN:-}" ] || psql -q -d "$DB" -c "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
  -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 0" -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on"
"$BIN" migrate >/dev/null
say "loading $N jobs"
t0=$(date +%s)
psql -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,
  oauth_refresh_token_encrypted, token_expires_at)
SELECT 'Agency ' || a, 'bench-co-' || a, 'x', 'y', now() + interval '1 day'
FROM generate_series(1, 100) a;
INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)
SELECT id, 'snap-' || name, 'Snapshot', 'niche-' || (row_number() OVER () % 10) FROM agencies;
CREATE TEMP TABLE ag AS SELECT row_number() OVER (ORDER BY id) AS n, a.id,
  (SELECT s.id FROM snapshots s WHERE s.agency_id = a.id) AS snap FROM agencies a;
INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id, status, created_at,
  finished_at)
SELECT ag.id, '{"name":"Bench"}', ag.snap, st::provisioning_job_status, c,
  CASE WHEN st IN ('COMPLETED', 'FAILED') THEN c + (5 + g % 120) * interval '1 second' END
FROM generate_series(1, $N) g
JOIN ag ON ag.n = 1 + g % 100,
LATERAL (SELECT CASE WHEN g % 50 = 0 THEN 'FAILED' WHEN g % 100 = 1 THEN 'PENDING'
  ELSE 'COMPLETED' END AS st,
  LOCALTIMESTAMP - (g::float8 / $N) * interval '30 days' AS c) x;
INSERT INTO provisioning_logs (job_id, step, status, details_json, timestamp)
SELECT id, 'STEP_' || (abs(hashtext(id::text)) % 5), 'FAILED', '{}', finished_at
FROM provisioning_jobs WHERE status = 'FAILED';
VACUUM ANALYZE;
SQL
say "loaded in $(($(date +%s) - t0)) s"

PORT=$(free_port)
printf 'bench admin password\n' |
  "$BIN" user add --email bench-admin@example.com --role ADMIN --password-stdin >/dev/null
ONE=$(psql -Atq -d "$DB" -c "SELECT id FROM agencies ORDER BY name LIMIT 1")
printf 'bench admin password\n' |
  "$BIN" user add --email bench-aa@example.com --role AGENCY_ADMIN --agency "$ONE" \
    --password-stdin >/dev/null
GHL_AGENT_LISTEN=127.0.0.1:$PORT GHL_AGENT_ROLES=api GHL_AGENT_LOG_LEVEL=warn \
  GHL_AGENT_GHL_CLIENT_ID=bench GHL_AGENT_GHL_CLIENT_SECRET=bench-secret \
  GHL_AGENT_GHL_REDIRECT_URL=http://127.0.0.1:$PORT/oauth/callback \
  GHL_AGENT_TOKEN_KEYS="7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
  GHL_AGENT_OAUTH_STATE_SECRET=bench-state-secret-0123456789abcdef \
  "$BIN" serve >"$LOG" 2>&1 &
AGENT=$!
wait_http "http://127.0.0.1:$PORT/readyz" "$AGENT" "ghl-agent serve" 60 || { tail -20 "$LOG"; exit 1; }
token() {
  curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"bench admin password\"}" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}
ADMIN=$(token bench-admin@example.com)
AA=$(token bench-aa@example.com)
# time WHO PATH: median and worst of 5 requests, in ms
measure() {
  local who=$1 path=$2 i t all=()
  for i in 1 2 3 4 5; do
    t=$(curl -fs -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $who" \
      "http://127.0.0.1:$PORT/api/v1$path")
    all+=("$(awk -v t="$t" 'BEGIN { printf "%d", t * 1000 }')")
  done
  printf '%s\n' "${all[@]}" | sort -n | awk -v p="$path" '
    { v[NR] = $1 } END { printf "  %-48s median %5d ms, worst %5d ms\n", p, v[3], v[5] }'
}
say "GET over $N jobs (5 requests each)"
echo "ADMIN, all agencies:"
measure "$ADMIN" "/reports/overview"
measure "$ADMIN" "/reports/overview?days=7"
measure "$ADMIN" "/reports/success-rates"
measure "$ADMIN" "/reports/success-rates?group_by=niche"
measure "$ADMIN" "/reports/success-rates?days=365"
echo "AGENCY_ADMIN of one agency ($((N / 100)) jobs):"
measure "$AA" "/reports/overview"
measure "$AA" "/reports/success-rates"
