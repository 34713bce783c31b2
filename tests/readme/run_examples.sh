#!/usr/bin/env bash
# run_examples.sh SOURCE_DIR BUILD_DIR — the README's runnable shell examples
# (each ```sh block right after a `<!-- runnable -->` line), run in order in one
# bash, as a reader would type them, against a demo set-up: what scripts/demo
# starts (lib.sh demo_up: ghl-sim, `ghl-agent serve`, the OAuth connection, the
# demo job, .run/demo.env), in a temp folder and a fresh database on the test
# server (GHL_TEST_PGHOST/PGPORT/PGUSER, as for the integration tests).
# A block fails the test when a command fails (set -euo pipefail), or when
# curl gets an HTTP status other than 2xx, 3xx or 409 (state-dependent
# refusals). Then the /metrics series the agent serves are compared with the
# README's list. Everything started is stopped on any exit.
set -euo pipefail
SRC=$(cd "${1:?usage: run_examples.sh SOURCE_DIR BUILD_DIR}" && pwd)
BUILD=$(cd "${2:?usage: run_examples.sh SOURCE_DIR BUILD_DIR}" && pwd)
. "$SRC/scripts/lib.sh"
: "${GHL_TEST_PGHOST:?set GHL_TEST_PGHOST/GHL_TEST_PGPORT/GHL_TEST_PGUSER (scripts/test does)}"
export PGHOST=$GHL_TEST_PGHOST PGPORT=${GHL_TEST_PGPORT:-5432} PGUSER=${GHL_TEST_PGUSER:-postgres}

TMP=$(mktemp -d /tmp/ghl-readme.XXXXXX)
DB=readme_examples_$$
cleanup() {
  local rc=$?
  demo_down
  dropdb --if-exists "$DB" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    local f
    for f in setup.log agent.log; do
      [ -s "$TMP/$f" ] && { echo "--- $f (tail) ---" >&2; tail -30 "$TMP/$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit $rc
}
at_exit cleanup

# The examples' relative paths, as in a checkout: steps/, docs/, build/plain, .run/
mkdir -p "$TMP/build"
ln -s "$BUILD" "$TMP/build/plain"
ln -s "$SRC/steps" "$TMP/steps"
ln -s "$SRC/docs" "$TMP/docs"

createdb "$DB"
export DATABASE_URL="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB"
PORT=$(free_port)
DEMO_AGENT_LOG=$TMP/agent.log demo_up "$TMP/.run" "$BUILD" "$PORT" --snapshot-delay-ms 100 \
  2>"$TMP/setup.log"
case $DEMO_CONNECTED in NOT*) die "demo set-up: $DEMO_CONNECTED" ;; esac

# The README's step run example uses the demo job's location; the job stops at
# the demo pipeline's TASK step (parked: IN_PROGRESS, waiting for a person), and
# a README block completes that task.
for _ in $(seq 1 300); do
  st=$(psql -X -qAt -d "$DATABASE_URL" -c "SELECT status || CASE WHEN context_json ? 'waiting'
    THEN ' (waiting)' ELSE '' END FROM provisioning_jobs WHERE id = '$DEMO_JOB'")
  case $st in COMPLETED|"IN_PROGRESS (waiting)") break ;; FAILED) die "the demo job failed" ;; esac
  sleep 0.1
done
case $st in COMPLETED|"IN_PROGRESS (waiting)") ;; *)
  die "the demo job did not reach its task in 30 s (status $st)" ;;
esac

# The examples, each block announced with its README line.
{
  cat <<'PRELUDE'
set -euo pipefail
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -o "$body" -w '%{http_code}' "$@") || { cat "$body"; rm -f "$body"; return 1; }
  cat "$body"
  rm -f "$body"
  case $status in 2??|3??|409) return 0 ;; esac
  echo "HTTP $status from curl $*" >&2
  return 1
}
PRELUDE
  awk '/^<!-- runnable -->$/ { want = NR + 1; next }
       NR == want && /^```sh$/ { printf "echo \"== README.md:%d\" >&2\n", NR; on = 1; n++; next }
       NR == want { printf "echo \"README.md:%d: <!-- runnable --> is not followed by a ```sh block\" >&2; exit 1\n", want - 1 }
       on && /^```$/ { on = 0; next }
       on { print }
       END { if (n == 0) print "echo \"README.md has no runnable block\" >&2; exit 1" }' "$SRC/README.md"
} >"$TMP/examples.sh"
blocks=$(grep -c '^echo "== README.md:' "$TMP/examples.sh" || true)

say "running $blocks README blocks"
if ! (cd "$TMP" && env -i HOME="$TMP" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  timeout 180 bash "$TMP/examples.sh" >"$TMP/examples.out" 2>&1); then
  echo "--- README examples: output (the failing block is the last '== README.md:LINE') ---" >&2
  tail -40 "$TMP/examples.out" >&2
  exit 1
fi

# /metrics serves exactly the series the README lists.
served=$(command curl -fsS "http://127.0.0.1:$PORT/metrics" | sed -n 's/^# TYPE ghl_agent_\([a-z_]*\) .*/\1/p' | sort)
listed=$(sed -n '/<!-- metrics:begin -->/,/<!-- metrics:end -->/p' "$SRC/README.md" |
  sed -n 's/^| `ghl_agent_\([a-z_]*\).*/\1/p' | sort)
if [ "$served" != "$listed" ]; then
  echo "/metrics serves other series than the README lists (< served, > listed):" >&2
  diff <(echo "$served") <(echo "$listed") >&2 || true
  exit 1
fi
echo "README: $blocks runnable blocks ran against the demo; /metrics serves the $(wc -l <<<"$served") listed series"
