#!/usr/bin/env bash
# setup.sh OUT — the a11y/setup test (a ctest fixture of
# integration/test_web_a11y): installs the pinned axe-core
# (package-lock.json) with npm into OUT, its cache too (nothing outside the
# build folder), once per lock file. test_web_a11y injects
# OUT/node_modules/axe-core/axe.min.js into each dashboard page. Without
# node, npm or the npm registry it fails, saying so.
set -euo pipefail
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
fail() { printf 'a11y/setup: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null || fail "npm is needed (Debian package npm; scripts/lib.sh installs it)"
mkdir -p "$OUT"
cp "$HERE/package.json" "$HERE/package-lock.json" "$OUT/"
if ! cmp -s "$HERE/package-lock.json" "$OUT/.installed-lock" ||
  [ ! -s "$OUT/node_modules/axe-core/axe.min.js" ]; then
  rm -rf "$OUT/node_modules"
  (cd "$OUT" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error --cache "$OUT/.npm-cache") ||
    fail "npm ci failed: the npm registry could not be reached or the install broke (see above)"
  cp "$HERE/package-lock.json" "$OUT/.installed-lock"
fi
[ -s "$OUT/node_modules/axe-core/axe.min.js" ] || fail "axe-core installed without axe.min.js"
echo "a11y/setup: axe-core $(node -p 'require(process.argv[1]).version' "$OUT/node_modules/axe-core/package.json" 2>/dev/null || echo '?') in $OUT"
