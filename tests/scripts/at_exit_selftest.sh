#!/usr/bin/env bash
# at_exit_selftest.sh — scripts/lib.sh's at_exit, as scripts/demo, test, bench
# and tests/readme/run_examples.sh use it: the clean-up runs to its end even
# when a second signal arrives while it runs (a second Ctrl-C), and the
# script's exit status is kept (130 after a signal, the error's after set -e).
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../scripts" && pwd)/lib.sh
T=$(mktemp -d /tmp/ghl-at-exit.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A signal, then another one during the clean-up: both halves run. TERM both
# times: a shell started in the background may have INT ignored from the
# start, and then cannot trap it (at_exit traps INT and TERM alike).
rc=0
bash -c '. "$1"; D=$2; set -euo pipefail
  cleanup() { echo "status $?" >"$D/first"; kill -TERM $$; sleep 0.2; echo done >"$D/second"; }
  at_exit cleanup
  kill -TERM $$
  sleep 5' _ "$LIB" "$T" || rc=$?
[ "$rc" = 130 ] || fail "exit status $rc after a signal, want 130"
[ "$(cat "$T/first" 2>/dev/null)" = "status 130" ] || fail "the clean-up did not see status 130"
[ -f "$T/second" ] || fail "a second signal cut the clean-up short"

# an error under set -e: the clean-up runs and the status stays the error's
rm -f "$T/first" "$T/second"
rc=0
bash -c '. "$1"; D=$2; set -euo pipefail
  cleanup() { echo "status $?" >"$D/first"; }
  at_exit cleanup
  false' _ "$LIB" "$T" || rc=$?
[ "$rc" = 1 ] || fail "exit status $rc after an error, want 1"
[ "$(cat "$T/first" 2>/dev/null)" = "status 1" ] || fail "the clean-up did not see status 1"

# a normal end: status 0
rc=0
bash -c '. "$1"; D=$2; cleanup() { echo "status $?" >"$D/first"; }; at_exit cleanup; true' _ "$LIB" "$T" || rc=$?
[ "$rc" = 0 ] || fail "exit status $rc at the end, want 0"
[ "$(cat "$T/first")" = "status 0" ] || fail "the clean-up did not see status 0"
echo "at_exit: clean-up runs whole after a second signal; statuses 130, 1, 0 kept"
