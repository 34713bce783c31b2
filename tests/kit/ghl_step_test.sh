#!/usr/bin/env bash
# ghl_step_test.sh SOURCE_DIR BUILD_DIR — the step author's kit
# (scripts/ghl-step-test) on a built-in plugin and on a Lua step: the printed
# journal and the exit status, and the failing cases (a step that fails,
# client data lacking a field the step declares, bad arguments).
set -uo pipefail
SRC=$1 BUILD=$2
KIT=$SRC/scripts/ghl-step-test
if [ -n "${GHL_TEST_PGHOST:-}" ]; then
  export GHL_STEP_TEST_DATABASE_URL="postgresql://${GHL_TEST_PGUSER:-postgres}@$GHL_TEST_PGHOST:${GHL_TEST_PGPORT:-5432}/postgres"
fi
TMP=$(mktemp -d /tmp/ghl-kit-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# run EXPECTED_EXIT ARGS... — output in $TMP/out
run() {
  local want=$1 rc=0; shift
  "$KIT" --build "$BUILD" "$@" >"$TMP/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || { cat "$TMP/out" >&2; fail "exit $rc, want $want: $*"; }
}
has() { grep -qF -- "$1" "$TMP/out" || { cat "$TMP/out" >&2; fail "output lacks: $1"; }; }

cat >"$TMP/client.json" <<'JSON'
{"name": "Kit Dental", "email": "owner@kit.example", "first_name": "Ada", "last_name": "Lovelace"}
JSON
cat >"$TMP/no-last-name.json" <<'JSON'
{"name": "Kit Dental", "email": "owner@kit.example", "first_name": "Ada"}
JSON

# a built-in plugin, then a Lua step given its outputs, with a config
run 0 "$BUILD/plugins/create_location.so" "$SRC/steps/location_tag.lua" \
  --client-json "$TMP/client.json" --config '{"name":"vip"}'
has "step: CREATE_LOCATION 1.1.0"
has "status: COMPLETED"
has '"location_reused":false'
has "info  POST /locations/ -> 200"
has "step: location_tag 1.0.0"
has "info  tag "
[ "$(grep -c '^status: COMPLETED$' "$TMP/out")" = 2 ] || fail "two steps should complete"

# a step that fails: CREATE_USER without a location (exit 1, its error printed)
run 1 "$BUILD/plugins/create_user.so" --client-json "$TMP/client.json"
has "status: FAILED"
has "error: no location_id: CREATE_LOCATION must run before CREATE_USER"

# a Lua step that fails: the later steps do not run
cat >"$TMP/boom.lua" <<'LUA'
return {name = "boom", version = "1", run = function(ctx) error("boom: " .. ctx.client.name) end}
LUA
run 1 "$TMP/boom.lua" "$BUILD/plugins/noop.so" --client-json "$TMP/client.json"
has "boom.lua:1: boom: Kit Dental"
grep -qF "step: NOOP" "$TMP/out" && fail "a step ran after a failed one"

# client data lacking a field the step declares (CREATE_USER: last_name)
run 2 "$BUILD/plugins/create_location.so" "$BUILD/plugins/create_user.so" \
  --client-json "$TMP/no-last-name.json"
has "client_data.last_name: required by step CREATE_USER"

# bad arguments
run 2 --client-json "$TMP/client.json"
has "a step FILE and --client-json are required"
run 2 "$TMP/missing.so" --client-json "$TMP/client.json"
has "cannot read"
echo "ok"
