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
  chromium chromium-driver)   # the dashboard's browser test (tests/integration/test_web.c)

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

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

free_port() {
  local port i
  for i in $(seq 1 100); do
    port=$((20000 + RANDOM % 30000))
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
