#!/bin/sh
# bench_sim.sh — how many simple requests/s ghl-sim answers.
#
# Starts ghl-sim on a free port with --rate-limit 0 --daily-limit 0, gets an agency token through
# the OAuth flow with curl (chooselocation 302 -> POST /oauth/token), creates one
# location, then runs wrk against GET /locations/{id} and prints requests/s.
#
# usage: tests/ghl_sim/bench_sim.sh [path/to/ghl-sim] [duration, default 5s]
#   env: THREADS (2), CONNECTIONS (50)
set -eu

SIM=${1:-${GHL_SIM_BIN:-build/tests/ghl_sim/ghl-sim}}
DURATION=${2:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-50}

for tool in wrk curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "bench_sim.sh: $tool is not installed" >&2
		echo "  install it with: sudo apt-get install $tool   (or: brew install $tool)" >&2
		exit 2
	fi
done
if [ ! -x "$SIM" ]; then
	echo "bench_sim.sh: no ghl-sim binary at $SIM" >&2
	echo "  build it: cmake --build build --target ghl-sim, or pass its path as the first argument" >&2
	exit 2
fi

OUT=$(mktemp)
"$SIM" --listen 127.0.0.1:0 --rate-limit 0 --daily-limit 0 >"$OUT" 2>/dev/null &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$OUT"' EXIT INT TERM

PORT=
for _ in $(seq 1 50); do
	PORT=$(sed -n 's/^ghl-sim listening on http:\/\/[^:]*:\([0-9]*\)$/\1/p' "$OUT")
	[ -n "$PORT" ] && break
	sleep 0.1
done
[ -n "$PORT" ] || { echo "bench_sim.sh: ghl-sim did not start" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"

REDIRECT=$(curl -s -o /dev/null -w '%{redirect_url}' \
	"$BASE/oauth/chooselocation?response_type=code&client_id=demo-client-id&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&scope=locations.write&state=bench")
CODE=$(printf '%s' "$REDIRECT" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
TOKEN=$(curl -s -X POST "$BASE/oauth/token" \
	-d "client_id=demo-client-id&client_secret=demo-client-secret&grant_type=authorization_code&code=$CODE" |
	sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "bench_sim.sh: OAuth flow failed" >&2; exit 1; }
LOCATION=$(curl -s -X POST "$BASE/locations/" -H 'Version: 2021-07-28' -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/json' -d '{"name":"Bench Location","companyId":"demo-company-0001"}' |
	sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
[ -n "$LOCATION" ] || { echo "bench_sim.sh: creating the location failed" >&2; exit 1; }

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION -H 'Version: 2021-07-28' -H 'Authorization: Bearer <agency token>' $BASE/locations/$LOCATION"
RESULT=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H 'Version: 2021-07-28' \
	-H "Authorization: Bearer $TOKEN" "$BASE/locations/$LOCATION")
printf '%s\n' "$RESULT" | grep -v -e Bearer
RPS=$(printf '%s\n' "$RESULT" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
echo "requests/s: $RPS"
