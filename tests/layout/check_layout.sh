#!/usr/bin/env bash
# check_layout.sh SOURCE_DIR — the rules of core/'s layout (docs/ARCHITECTURE.md):
#  1. every core file is in a layer folder, and no two files share a name
#     (headers are included by bare name);
#  2. a file includes only headers of its own layer or of a layer below it;
#  3. the README's source map lists every core file, and only existing ones.
# Prints each violation as FILE:LINE: message; exits 1 when there is any.
set -uo pipefail
root=${1:?usage: check_layout.sh SOURCE_DIR}
cd "$root" || exit 2
layers=(base store ghl engine lua api cli)
declare -A rank where
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
bad=0
fail() { printf '%s\n' "$*"; bad=1; }

for f in core/*; do
  [ -d "$f" ] || fail "$f:1: core files live in a layer folder (${layers[*]})"
  [ -d "$f" ] && [ -z "${rank[${f#core/}]:-}" ] && fail "$f:1: not a layer folder (${layers[*]})"
done
for f in core/*/*.[ch]; do
  b=${f##*/}
  [ -n "${where[$b]:-}" ] && fail "$f:1: same name as ${where[$b]} (headers are included by bare name)"
  where[$b]=$f
done

# grep -n over all files at once: "core/L/f.c:LINE:#include "x.h""
while IFS=: read -r f line inc; do
  layer=${f#core/}; layer=${layer%%/*}
  inc=${inc#*\"}; inc=${inc%\"*}
  [ "$inc" = ghl_step.h ] && continue # the public step ABI (plugins/)
  dep=${where[$inc]:-}
  if [ -z "$dep" ]; then fail "$f:$line: includes \"$inc\", which is not a core header"; continue; fi
  dl=${dep#core/}; dl=${dl%%/*}
  [ "${rank[$dl]}" -le "${rank[$layer]}" ] ||
    fail "$f:$line: $layer/ includes $dep from $dl/, a layer above it"
done < <(grep -n '^#include "' core/*/*.[ch])

map=$(sed -n '/<!-- source-map:begin -->/,/<!-- source-map:end -->/p' README.md)
[ -n "$map" ] || fail "README.md:1: no source map (<!-- source-map:begin --> … end)"
for f in core/*/*.[ch]; do
  [[ $map == *"\`$f\`"* ]] || fail "README.md:1: the source map does not list $f (run scripts/source-map)"
done
while read -r f; do
  [ -e "$f" ] || fail "README.md:1: the source map lists $f, which does not exist"
done < <(grep -o '`core/[^`]*\.[ch]`' <<<"$map" | tr -d '`')

[ $bad -eq 0 ] && echo "layout: ${#where[@]} files in ${#layers[@]} layers, includes point down, README map complete"
exit $bad
