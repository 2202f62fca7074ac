#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   0. lint: ESLint with the import boundaries and prettier --check (npm run lint), shellcheck (npm run lint:sh)
#   1. jest: unit, route, auth, database-conformance, cache and PM2-cluster tests
#   2. scripts/smoke.sh: a new user's `npm start`, then create → update → history → query → delete with curl
#   3. scripts/race-condition.sh --cluster 120 (npm run race: 300 rounds): PM2 cluster of 4 workers,
#      overwrite → read rounds, fails on any stale read
#   4. scripts/race-random.ts, 45 s (`npm run race:random` is the 4-minute run): random concurrent writes
#      of every kind and cached reads on a 4-worker cluster, each read checked against the database
# Ends with one line "N passed, N failed" (jest tests + the lint steps + the three scripts) and exits
# non-zero on any failure.
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

report="$(temp_file jest-report)"
register_temp "$report"
passed=0
failed=0

# step COMMAND…: runs one counted step
step() {
  echo "== $*"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "!! $* failed"; fi
}

echo "== build"
if ! npm run -s build; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

step npm run -s lint
step npm run -s lint:sh

echo "== jest"
npx jest --ci --json --outputFile="$report"
jest_status=$?
jp=0
jf=0
if [ -s "$report" ]; then
  read -r jp jf < <(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(r.numPassedTests, r.numFailedTests + r.numRuntimeErrorTestSuites)' "$report")
fi
# jest failed without a failed test to show for it (e.g. a crash): count it once
if [ "$jest_status" -ne 0 ] && [ "$jf" -eq 0 ]; then jf=1; fi
passed=$((passed + jp))
failed=$((failed + jf))

step bash scripts/smoke.sh
# 120 rounds (npm run race runs 300): the randomized checker below covers far more ground
step bash scripts/race-condition.sh --cluster 120
step node dist/scripts/race-random.js --duration 45

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
