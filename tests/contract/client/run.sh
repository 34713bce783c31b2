#!/usr/bin/env bash
# run.sh SPEC OUT — the contract/client test: installs the pinned generator
# (package-lock.json) with npm into OUT (its cache too: nothing outside the
# build folder), validates SPEC with a standard OpenAPI 3.1 parser, generates
# TypeScript types from it (openapi-typescript) and compiles usage.ts against
# them with tsc --strict, then checks that a breaking change to the spec (a
# required field made optional) makes that compile fail. Without node, npm
# or the npm registry it fails, saying so: it never passes without having
# compiled the client.
set -euo pipefail
SPEC=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
fail() { printf 'contract/client: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null && command -v npm >/dev/null ||
  fail "node and npm are needed (Debian package nodejs; scripts/lib.sh installs it)"
mkdir -p "$OUT/generated"
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/tsconfig.json" "$HERE/usage.ts" \
  "$HERE/validate.mjs" "$HERE/mutate.mjs" "$OUT/"
# install once per lock file (node_modules/.package-lock.json is npm's copy of it)
if ! cmp -s "$HERE/package-lock.json" "$OUT/.installed-lock"; then
  rm -rf "$OUT/node_modules"
  (cd "$OUT" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error --cache "$OUT/.npm-cache") ||
    fail "npm ci failed: the npm registry could not be reached or the install broke (see above);
this test needs it to generate the client — it does not pass without"
  cp "$HERE/package-lock.json" "$OUT/.installed-lock"
fi
cd "$OUT"
node validate.mjs "$SPEC" || fail "the spec is not valid OpenAPI 3.1"
./node_modules/.bin/openapi-typescript "$SPEC" -o generated/api.d.ts --silent ||
  fail "openapi-typescript could not generate the client from $SPEC"
./node_modules/.bin/tsc -p tsconfig.json ||
  fail "the generated client does not compile with usage.ts: a breaking change to the contract?
(usage.ts is what an integrator's code reads; fix the spec, or usage.ts when the change is meant)"
# the check itself: a breaking change (a required field made optional) must not compile
mkdir -p mutated/generated
cp usage.ts tsconfig.json mutated/
node mutate.mjs "$SPEC" mutated/spec.json || fail "could not make the breaking change"
./node_modules/.bin/openapi-typescript mutated/spec.json -o mutated/generated/api.d.ts >/dev/null 2>&1 ||
  fail "openapi-typescript could not generate the client from the changed spec"
if ./node_modules/.bin/tsc -p mutated/tsconfig.json >mutated/tsc.log 2>&1; then
  fail "usage.ts compiles against a spec where Job.retry_count is optional: the check catches nothing"
fi
grep -q "retry_count" mutated/tsc.log ||
  fail "tsc failed on the changed spec, but not on retry_count: $(head -3 mutated/tsc.log)"
echo "contract/client: $SPEC is valid OpenAPI 3.1; the generated client compiles (a breaking change does not)"
echo "1 passed, 0 failed"
