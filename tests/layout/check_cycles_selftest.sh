#!/usr/bin/env bash
# check_cycles_selftest.sh — check_cycles.sh finds and names a planted cycle
# (a -> b -> a, closed through a's private header a_int.h, which itself
# includes a.h without making a cycle of its own) and passes the same tree
# once the cycle is broken.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/core/one" "$tmp/core/two"
printf '#include "a_int.h"\n#include "b.h"\n' >"$tmp/core/one/a.c"
printf '\n' >"$tmp/core/one/a.h"
printf '#include "a.h"\n' >"$tmp/core/one/a_int.h"
printf '#include "b.h"\n#include "a_int.h"\n' >"$tmp/core/two/b.c"
printf '\n' >"$tmp/core/two/b.h"
out=$(bash "$here/check_cycles.sh" "$tmp") && { echo "planted cycle not found: $out"; exit 1; }
want='cycle: a -> b -> a'
[[ $out == *"$want"* ]] || { echo "expected \"$want\", got: $out"; exit 1; }
[[ $out == *'core/two/b.c:2: #include "a_int.h"'* ]] || { echo "no include line named: $out"; exit 1; }
printf '#include "b.h"\n' >"$tmp/core/two/b.c"
out=$(bash "$here/check_cycles.sh" "$tmp") || { echo "no cycle left, yet: $out"; exit 1; }
echo "check_cycles: finds a planted cycle, passes without it"
