#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. jest: unit, route, auth, database-conformance, cache and PM2-cluster tests
#   2. scripts/smoke.sh: a new user's `npm start`, then create → update → history → query → delete with curl
#   3. npm run race: PM2 cluster of 4 workers, overwrite → read rounds, fails on any stale read
#   4. scripts/race-random.ts, 45 s (`npm run race:random` is the 4-minute run): random concurrent writes
#      of every kind and cached reads on a 4-worker cluster, each read checked against the database
# Ends with one line "N passed, N failed" (jest tests + the three scripts) and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

report=$(mktemp -t jest-report.XXXXXX.json)
trap 'rm -f "$report"' EXIT
passed=0
failed=0

echo "== build"
if ! npm run -s build; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== jest"
npx jest --ci --json --outputFile="$report"
jest_status=$?
if [ -s "$report" ]; then
  read -r jp jf < <(node -e 'const r=require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + r.numRuntimeErrorTestSuites)' "$report")
  passed=$((passed + jp))
  failed=$((failed + jf))
fi
if [ "$jest_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=$((failed + 1)); fi

for step in "bash scripts/smoke.sh" "npm run -s race" "node dist/scripts/race-random.js --duration 45"; do
  echo "== $step"
  if $step; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "!! $step failed"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
