#!/usr/bin/env bash
# check_cycles.sh SOURCE_DIR — no circles between the modules of core/.
# A module is the stem of a .c/.h pair (runner.c + runner.h = runner), with its
# private header if it has one (lua_host_int.h belongs to lua_host, as SQLite's
# btreeInt.h to btree); module A depends on B when a file of A includes B's
# header. A depth-first search of
# that graph prints the first cycle it meets as
#   cycle: a -> b -> a
#     core/engine/a.c:12: #include "b.h"
#     core/engine/b.c:7: #include "a.h"
# and exits 1; circles force modules to be built, tested and understood
# together (docs/ARCHITECTURE.md, "Layers").
set -uo pipefail
root=${1:?usage: check_cycles.sh SOURCE_DIR}
cd "$root" || exit 2

declare -A known deps via state
# module FILE: sets mod to FILE's module (no subshell: this runs per include)
module() { mod=${1##*/}; mod=${mod%.[ch]}; mod=${mod%_int}; }
for f in core/*/*.[ch]; do module "$f"; known[$mod]=1; done

# grep -n over all files at once: "core/L/f.c:LINE:#include "x.h""
while IFS=: read -r f line inc; do
  module "$f"; from=$mod
  inc=${inc#*\"}; inc=${inc%\"*}; module "$inc"; to=$mod
  [ -n "${known[$to]:-}" ] && [ "$to" != "$from" ] || continue
  [[ " ${deps[$from]:-} " == *" $to "* ]] || deps[$from]="${deps[$from]:-} $to"
  [ -n "${via[$from>$to]:-}" ] || via[$from>$to]="$f:$line: #include \"$inc\""
done < <(grep -n '^#include "' core/*/*.[ch])

path=()
# visit M: 0 when no cycle is reachable from M, 1 (after printing it) otherwise.
visit() {
  local m=$1 d i
  state[$m]=open
  path+=("$m")
  for d in ${deps[$m]:-}; do
    if [ "${state[$d]:-}" = open ]; then
      local cyc=() start=0
      for i in "${!path[@]}"; do [ "${path[$i]}" = "$d" ] && start=$i; done
      cyc=("${path[@]:$start}" "$d")
      local IFS=' '
      printf 'cycle: %s\n' "$(sed 's/ / -> /g' <<<"${cyc[*]}")"
      for ((i = 0; i + 1 < ${#cyc[@]}; i++)); do
        printf '  %s\n' "${via[${cyc[$i]}>${cyc[$((i + 1))]}]}"
      done
      return 1
    fi
    [ -n "${state[$d]:-}" ] && continue
    visit "$d" || return 1
  done
  state[$m]=closed
  unset 'path[${#path[@]}-1]'
  return 0
}

for m in $(printf '%s\n' "${!known[@]}" | sort); do
  [ -n "${state[$m]:-}" ] && continue
  visit "$m" || exit 1
done
echo "cycles: none among ${#known[@]} modules"
