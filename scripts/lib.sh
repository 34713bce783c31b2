# scripts/lib.sh — shared by scripts/demo, scripts/test and scripts/bench.
# Installs missing Debian packages, builds, and runs a private PostgreSQL.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=/usr/lib/postgresql/15/bin

# Everything the build, the tests and the demo need, from Debian 12.
GHL_PACKAGES=(build-essential cmake pkg-config git curl ca-certificates
  liblua5.4-dev libpq-dev libcurl4-openssl-dev libssl-dev libevent-dev
  check libcrypt-dev postgresql-15 postgresql-client-15 valgrind
  tzdata jq                   # time zone names for client data; jq for the README's curl examples
  chromium chromium-driver    # the dashboard's browser test (tests/integration/test_web.c)
  python3-jsonschema python3-yaml # the API contract's validator (tests/contract/contract_check.py)
  nodejs)                     # node and npm: the client generated from docs/openapi.yaml (tests/contract/client)

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# at_exit FN — run FN once when the script ends: at its end, on an error
# (set -e), or on Ctrl-C or TERM (the script then exits 130). FN runs with INT
# and TERM ignored: a second Ctrl-C, or a TERM that reaches the script twice
# (timeout(1) forwards its own to the group), would otherwise cut the clean-up
# short and leave the private PostgreSQL running. FN sees the exit status in $?
# and runs without set -e, so that one failed step does not skip the others.
at_exit() {
  AT_EXIT_FN=$1
  trap _at_exit_run EXIT
  trap 'exit 130' INT TERM
}
_at_exit_run() {
  local rc=$?
  trap '' INT TERM
  set +e
  (exit "$rc")
  "$AT_EXIT_FN"
}

ensure_packages() {
  local missing=() p
  for p in "${GHL_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    say "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install failed for: ${missing[*]}"
  else
    die "missing Debian packages; install them with:
  sudo apt-get install -y ${missing[*]}"
  fi
}

# build DIR [cmake args...] — configure once, then build with -j2.
build() {
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    say "configuring $dir"
    cmake -S "$ROOT" -B "$dir" "$@" >/dev/null || die "cmake configure failed ($dir)"
  fi
  say "building $dir"
  cmake --build "$dir" -j2 -- --no-print-directory >"$dir.build.log" 2>&1 ||
    { tail -50 "$dir.build.log" >&2; die "build failed ($dir); full log: $dir.build.log"; }
}

# as_pg CMD... — run as the postgres OS user when root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# wait_http URL PID WHAT [SECONDS] — wait until URL answers 2xx (a daemon's
# /readyz, ghl-sim's /_sim/state); fails (status 1, a line naming WHAT on
# stderr) when PID exits first or after SECONDS (default 60).
wait_http() {
  local url=$1 pid=$2 what=$3 secs=${4:-60} i
  for i in $(seq 1 $((secs * 10))); do
    curl -fs "$url" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "error: $what stopped before answering $url" >&2; return 1; }
    sleep 0.1
  done
  curl -fs "$url" >/dev/null 2>&1 && return 0
  echo "error: $what did not answer $url in $secs s" >&2
  return 1
}

free_port() {
  local port i
  for i in $(seq 1 100); do
    # /dev/urandom, not $RANDOM: subshells share $RANDOM's seed, so two
    # $(free_port) on one line would name the same port. Below the kernel's
    # ephemeral range (32768-60999 by default): a port an outgoing connection
    # holds answers no connect, yet refuses a listen.
    port=$((10000 + $(od -An -N2 -tu2 /dev/urandom) % 22000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  die "no free TCP port found"
}

# pg_start DATADIR [extra postgres -c settings...] — sets PGHOST PGPORT PGUSER.
pg_start() {
  local data=$1; shift
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 server binaries not found in $PG_BIN"
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$data"; chmod 700 "$data"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initdb $data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log" >&2; die "initdb failed"; }
  fi
  PGPORT=$(free_port)
  local opts="-p $PGPORT -k $data -c listen_addresses=127.0.0.1 -c max_connections=300"
  local s; for s in "$@"; do opts="$opts -c $s"; done
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -o "$opts" -w -t 60 start >/dev/null ||
    { tail -20 "$data/server.log" >&2; die "PostgreSQL did not start (log: $data/server.log)"; }
  PG_DATA=$data
  export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
  say "PostgreSQL running on 127.0.0.1:$PGPORT (data: $data)"
}

pg_stop() {
  [ -n "${PG_DATA:-}" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  PG_DATA=
}

# ---- the demo: scripts/demo, and tests/readme/run_examples.sh on a throw-away copy ----

DEMO_AGENCY=f47ac10b-58cc-4372-a567-0e02b2c3d479   # the seeded "Test Agency"
DEMO_SNAPSHOT=550e8400-e29b-41d4-a716-446655440002
DEMO_ADMIN_EMAIL=admin@demo.example
DEMO_PIDS=()

# demo_up RUN BIN PORT [ghl-sim flags...] — DATABASE_URL names an existing
# database. Migrates and seeds it, creates the demo admin (password kept in
# RUN/demo-admin-password), a token key (RUN/token-keys), starts ghl-sim and
# `ghl-agent serve` on PORT (pids in DEMO_PIDS: demo_down stops them), connects
# the demo agency through OAuth, submits the demo job, and writes RUN/demo.env:
# the settings every README command needs (`. .run/demo.env`). RUN is
# untracked (.gitignore: /.run/), so nothing secret reaches the repository.
# The agent logs to stderr, or to the file DEMO_AGENT_LOG when set.
# Sets DEMO_SIM_URL, DEMO_CONNECTED, DEMO_JOB for the caller's banner.
demo_up() {
  local run=$1 bin=$2 port=$3 f
  shift 3
  mkdir -p "$run/bin"
  ln -sfn "$bin/ghl-agent" "$run/bin/ghl-agent"
  say "migrating"
  "$bin/ghl-agent" migrate >/dev/null
  say "seeding demo data"
  for f in "$ROOT"/seeds/*.sql; do
    psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -f "$f" >/dev/null
  done
  # created once: reruns print the same login and decrypt the same tokens
  [[ -s $run/demo-admin-password ]] ||
    (umask 077; od -An -N15 -tx1 /dev/urandom | tr -d ' \n' >"$run/demo-admin-password")
  [[ -s $run/token-keys ]] || (umask 077; "$bin/ghl-agent" keygen >"$run/token-keys")
  local password
  password=$(<"$run/demo-admin-password")
  if ! psql -X -q -d "$DATABASE_URL" -tc "SELECT 1 FROM users WHERE email = '$DEMO_ADMIN_EMAIL'" |
    grep -q 1; then
    say "creating the demo admin $DEMO_ADMIN_EMAIL"
    "$bin/ghl-agent" user add --email "$DEMO_ADMIN_EMAIL" --role ADMIN --password-stdin \
      <<<"$password" >/dev/null
  fi

  # The GHL simulator stands in for GoHighLevel: its demo company is the seeded
  # "Test Agency" (test-ghl-agency-001); the client id/secret are its defaults.
  local sim=$bin/tests/ghl_sim/ghl-sim sim_port
  sim_port=$(free_port)
  DEMO_SIM_URL=http://127.0.0.1:$sim_port
  say "starting the GHL simulator on $DEMO_SIM_URL"
  export GHL_AGENT_WEBHOOK_ED25519_PUBLIC_KEY
  GHL_AGENT_WEBHOOK_ED25519_PUBLIC_KEY=$("$sim" --webhook-key-file "$run/ghl-sim-webhook.pem" \
    --print-webhook-key)
  "$sim" --listen "127.0.0.1:$sim_port" --company-id test-ghl-agency-001 \
    --webhook-key-file "$run/ghl-sim-webhook.pem" "$@" >"$run/ghl-sim.log" 2>&1 &
  DEMO_PIDS+=($!)
  # The OAuth connect below reaches the simulator: wait until it answers (a
  # loaded machine can take a while to start it).
  wait_http "$DEMO_SIM_URL/_sim/state" "${DEMO_PIDS[-1]}" "ghl-sim (its log: $run/ghl-sim.log)" ||
    exit 1
  export GHL_AGENT_DEMO=on GHL_AGENT_TOKEN_KEYS_FILE=$run/token-keys \
    GHL_AGENT_LISTEN=127.0.0.1:$port GHL_AGENT_LOG_FORMAT=text \
    GHL_AGENT_GHL_API_BASE=$DEMO_SIM_URL \
    GHL_AGENT_GHL_OAUTH_AUTHORIZE_URL=$DEMO_SIM_URL/oauth/chooselocation \
    GHL_AGENT_GHL_CLIENT_ID=demo-client-id GHL_AGENT_GHL_CLIENT_SECRET=demo-client-secret \
    GHL_AGENT_GHL_REDIRECT_URL=http://127.0.0.1:$port/oauth/callback
  # event subscriptions and NOTIFY_WEBHOOK may reach a receiver on this machine
  export GHL_AGENT_NOTIFY_WEBHOOK_ALLOW_PRIVATE=on
  demo_env "$run" "$port" >"$run/demo.env"

  say "starting the agent"
  if [[ -n ${DEMO_AGENT_LOG:-} ]]; then
    "$bin/ghl-agent" serve 2>>"$DEMO_AGENT_LOG" &
  else
    "$bin/ghl-agent" serve &
  fi
  DEMO_PIDS+=($!)
  wait_http "http://127.0.0.1:$port/readyz" "${DEMO_PIDS[-1]}" \
    "the agent (its log: ${DEMO_AGENT_LOG:-above})" 60 || exit 1

  # Connect the seeded agency through real OAuth, as a browser would, logged in
  # as the demo admin: /oauth/connect -> the simulator's authorize page -> /oauth/callback
  # (with the ghl_oauth cookie /oauth/connect sets: -b '' keeps cookies across the redirects).
  say "connecting the demo agency to the GHL simulator (OAuth)"
  local token page
  token=$(curl -fsS "http://127.0.0.1:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$DEMO_ADMIN_EMAIL\",\"password\":\"$password\"}" |
    sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p') || token=
  if page=$(curl -fsSL -b '' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/oauth/connect") &&
    grep -q "is connected" <<<"$page"; then
    DEMO_CONNECTED="Test Agency (test-ghl-agency-001) connected through OAuth; tokens stored encrypted"
  else
    DEMO_CONNECTED="NOT connected (see the log above); try http://127.0.0.1:$port/oauth/connect"
  fi

  # One demo job through the agency's pipeline (the six built-in steps and the
  # README's Lua step), so the journal has something to show. The idempotency
  # key makes reruns find the same job instead of adding one.
  cat >"$run/demo-client.json" <<'JSON'
{"name": "Acme Dental", "email": "owner@acme-dental.example", "first_name": "Ada",
 "last_name": "Lovelace", "phone": "+15555550100", "city": "Austin", "state": "TX",
 "country": "US", "timezone": "US/Central", "custom_values": {"welcome_text": "Welcome!"},
 "tags": ["dental"]}
JSON
  DEMO_JOB=$("$bin/ghl-agent" job submit --agency "$DEMO_AGENCY" --snapshot "$DEMO_SNAPSHOT" \
    --client-json "$run/demo-client.json" --idempotency-key demo-acme-dental 2>&1) ||
    DEMO_JOB="(not submitted: $DEMO_JOB)"
  printf 'export DEMO_JOB=%q\n' "$DEMO_JOB" >>"$run/demo.env"
}

# demo_job_state — wait (up to 60 s) until the demo job COMPLETED, FAILED or
# parked on its TASK step (the demo pipeline's A2P 10DLC task), and say which in
# DEMO_JOB_STATE, with the task to complete.
demo_job_state() {
  local i st
  DEMO_JOB_STATE="still running (see the dashboard)"
  [[ $DEMO_JOB =~ ^[0-9a-f-]{36}$ ]] || return 0
  for i in $(seq 1 600); do
    st=$(psql -X -qAt -F'|' -d "$DATABASE_URL" -c "SELECT j.status, t.id, t.title
      FROM provisioning_jobs j LEFT JOIN tasks t ON t.id::text = j.context_json->'waiting'->>'task_id'
      WHERE j.id = '$DEMO_JOB'") || return 0
    case $st in
      IN_PROGRESS\|[0-9a-f]*)   # parked: the context names its task
        IFS='|' read -r _ DEMO_TASK i <<<"$st"
        DEMO_JOB_STATE="waits for a person: task \"$i\" ($DEMO_TASK); complete it on the
              dashboard's Tasks page, or: POST /api/v1/tasks/$DEMO_TASK/complete (README)"
        return 0 ;;
      COMPLETED\|*|FAILED\|*|CANCELLED\|*) DEMO_JOB_STATE=${st%%|*}; return 0 ;;
    esac
    sleep 0.1
  done
}

# demo_env RUN PORT — the demo's effective settings as shell lines (see demo_up).
demo_env() {
  local run=$1 port=$2 v
  echo "# written by scripts/demo: its effective settings. In a shell: . .run/demo.env"
  echo "# then every README command runs against the demo (ghl-agent on PATH, the"
  echo "# database, the token key file, ghl-sim instead of GHL, \$API, \$AGENCY)."
  for v in DATABASE_URL GHL_AGENT_DEMO GHL_AGENT_TOKEN_KEYS_FILE GHL_AGENT_LISTEN \
    GHL_AGENT_LOG_FORMAT GHL_AGENT_GHL_API_BASE GHL_AGENT_GHL_OAUTH_AUTHORIZE_URL \
    GHL_AGENT_GHL_CLIENT_ID GHL_AGENT_GHL_CLIENT_SECRET GHL_AGENT_GHL_REDIRECT_URL \
    GHL_AGENT_WEBHOOK_ED25519_PUBLIC_KEY GHL_AGENT_NOTIFY_WEBHOOK_ALLOW_PRIVATE; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export API=%q AGENCY=%q\n' "http://127.0.0.1:$port/api/v1" "$DEMO_AGENCY"
  printf 'export PATH=%q:"$PATH"\n' "$run/bin"
}

# demo_down — stop what demo_up started (each pid once; safe to call twice).
demo_down() {
  local p
  for p in "${DEMO_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${DEMO_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  DEMO_PIDS=()
}
