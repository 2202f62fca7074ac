#!/usr/bin/env bash
# Stale-read race test for the read cache (non-interactive).
#
# Against a running server:
#   BASE_URL=http://localhost:3001 TOKEN=... bash scripts/race-condition.sh [ROUNDS]
#   (without TOKEN a local-issuer token is minted with `npm run -s token -- --agent ...`)
# Or let it start its own 4-worker PM2 cluster on the embedded database (private PM2_HOME and
# DATA_DIR, always stopped and removed on exit):
#   bash scripts/race-condition.sh --cluster [ROUNDS]          (this is `npm run race`)
#
# It creates an object, caches it (GET twice), then for ROUNDS rounds (default 300):
#   PUT /v1/api/overwrite with n=i, then immediately GET /v1/id/{id} (twice) and POST /v1/api/query
#   that matches it, each on a new connection. Four requests a round: on a 4-worker cluster PM2's
#   round robin then sends the writes to one worker and the reads to the three others, which keep
#   their cached copies between rounds, so only the writer's broadcast can keep them fresh (with an
#   odd request count every worker would also write once between its reads and clear its own copy,
#   and the test could not fail),
# counts fresh vs stale answers, prints the figures and exits 1 on any stale read.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CLUSTER=0
if [[ "${1:-}" == "--cluster" ]]; then CLUSTER=1; shift; fi
ROUNDS="${1:-${ROUNDS:-300}}"
command -v curl >/dev/null || { echo "curl is required" >&2; exit 2; }

cleanup() { :; }
trap 'cleanup' EXIT

if [[ "$CLUSTER" == 1 ]]; then
  PORT="${PORT:-$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}"
  export PORT
  export PM2_HOME; PM2_HOME="$(mktemp -d "${TMPDIR:-/tmp}/rerum-race-pm2.XXXXXX")"
  export DATA_DIR; DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rerum-race-data.XXXXXX")"
  export INSTANCES=4 CACHING=true LOG_LEVEL="${LOG_LEVEL:-warn}" PM2_APP_NAME="rerum-race-$PORT"
  export RERUM_BASE="http://127.0.0.1:$PORT"
  cleanup() {
    echo "stopping the cluster"
    "$ROOT/node_modules/.bin/pm2" kill >/dev/null 2>&1 || true
    rm -rf "$PM2_HOME" "$DATA_DIR"
  }
  if [[ -f server.ts && -f db/embedded/standalone.ts && "${RACE_TARGET:-}" != "mini" ]]; then
    echo "building…"
    npm run -s build
    unset MONGO_CONNECTION_STRING
    export EMBEDDED_MONGO_PORT="${EMBEDDED_MONGO_PORT:-$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}"
  else
    echo "server.ts / db/embedded/standalone.ts not present (or RACE_TARGET=mini): using the stand-in bench/support/mini-server.ts"
    "$ROOT/node_modules/.bin/tsc" -p bench/tsconfig.json
    export RERUM_SCRIPT=dist/.bench/bench/support/mini-server.js MONGO_CONNECTION_STRING=mongodb://127.0.0.1:1/unused MINI_DB_DIR="$DATA_DIR/mini-db"
  fi
  "$ROOT/node_modules/.bin/pm2" start ecosystem.config.cjs >/dev/null
  BASE_URL="http://127.0.0.1:$PORT"
  echo -n "waiting for 4 workers on $BASE_URL "
  for _ in $(seq 1 240); do
    if curl -fsS "$BASE_URL/v1/api/cache/stats" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);process.exit((j.workerCount===4||process.env.MINI_BREAK_SYNC==="1")&&j.workers.every(w=>w.leaseValid)?0:1)})' 2>/dev/null; then
      echo " up"; break
    fi
    echo -n "."; sleep 0.5
  done
fi

BASE_URL="${BASE_URL:-http://localhost:3001}"
BASE_URL="${BASE_URL%/}"
if [[ -z "${TOKEN:-}" ]]; then
  if node -e 'process.exit(require("./package.json").scripts.token?0:1)' 2>/dev/null; then
    TOKEN="$(npm run -s token -- --agent "$BASE_URL/v1/id/race-condition-agent" 2>/dev/null | tail -n 1 | tr -d '[:space:]' || true)"
  fi
fi
AUTH=()
[[ -n "${TOKEN:-}" ]] && AUTH=(-H "Authorization: Bearer $TOKEN")
CURL=(curl -sS --max-time 30 -H 'Connection: close')

# One node process judges every answer: reads "expected<TAB>body" lines, prints fresh|stale|error.
coproc JUDGE { node -e '
  const rl = require("readline").createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const tab = line.indexOf("\t");
    const want = Number(line.slice(0, tab));
    let got;
    try { const j = JSON.parse(line.slice(tab + 1)); got = Array.isArray(j) ? (j.length === 1 ? j[0].n : "count=" + j.length) : j.n; } catch { got = "unparseable"; }
    process.stdout.write((got === want ? "fresh" : "stale " + JSON.stringify(got)) + "\n");
  });'; }
judge() { printf '%s\t%s\n' "$1" "$(tr -d '\n\t' <<<"$2")" >&"${JUDGE[1]}"; local v; read -r v <&"${JUDGE[0]}"; echo "$v"; }

RID="race-$(date +%s)-$$"
created="$("${CURL[@]}" -X POST "$BASE_URL/v1/api/create" "${AUTH[@]}" -H 'Content-Type: application/json' -d "{\"type\":\"CacheRaceTest\",\"rid\":\"$RID\",\"n\":0}")"
ID="$(node -e 'const j=JSON.parse(process.argv[1]);const o=j.new_obj_state||j;console.log(o["@id"]||o.id||"")' "$created")"
[[ -n "$ID" ]] || { echo "create failed: $created" >&2; exit 2; }
SEG="${ID##*/}"
echo "object: $ID"
"${CURL[@]}" -o /dev/null "$BASE_URL/v1/id/$SEG"; "${CURL[@]}" -o /dev/null "$BASE_URL/v1/id/$SEG"

fresh=0; stale=0; hits=0; wsum=0; wmax=0
start=$(date +%s%N)
for i in $(seq 1 "$ROUNDS"); do
  w0=$(date +%s%N)
  code="$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X PUT "$BASE_URL/v1/api/overwrite" "${AUTH[@]}" -H 'Content-Type: application/json' \
    -d "{\"@id\":\"$ID\",\"type\":\"CacheRaceTest\",\"rid\":\"$RID\",\"n\":$i}")"
  w=$(( ($(date +%s%N) - w0) / 1000000 )); wsum=$((wsum + w)); (( w > wmax )) && wmax=$w
  [[ "$code" == 200 ]] || { echo "overwrite failed with HTTP $code" >&2; exit 2; }
  for kind in id id query; do
    if [[ "$kind" == id ]]; then
      resp="$("${CURL[@]}" -D /dev/stderr "$BASE_URL/v1/id/$SEG" 2>/tmp/race-hdr.$$)"
    else
      resp="$("${CURL[@]}" -D /dev/stderr -X POST "$BASE_URL/v1/api/query" -H 'Content-Type: application/json' -d "{\"rid\":\"$RID\"}" 2>/tmp/race-hdr.$$)"
    fi
    grep -qi '^x-cache: HIT' /tmp/race-hdr.$$ && hits=$((hits + 1))
    verdict="$(judge "$i" "$resp")"
    if [[ "$verdict" == fresh ]]; then fresh=$((fresh + 1)); else
      stale=$((stale + 1))
      echo "  round $i $kind: STALE (${verdict#stale }) from worker $(grep -i '^x-worker' /tmp/race-hdr.$$ | tr -d '\r' | cut -d' ' -f2)"
    fi
  done
done
rm -f /tmp/race-hdr.$$
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
total=$((fresh + stale))
echo
echo "rounds:        $ROUNDS (PUT /v1/api/overwrite → GET /v1/id ×2 + POST /v1/api/query)"
echo "reads:         $total   fresh: $fresh   stale: $stale   cache hits among reads: $hits"
echo "               (reads land on workers that cached the object in earlier rounds and did not write:"
echo "                'invalidations' below counts the cached copies the writes dropped on them)"
echo "write latency: avg $((wsum / ROUNDS)) ms, max $wmax ms (curl included)"
echo "elapsed:       ${elapsed} ms"
"${CURL[@]}" "$BASE_URL/v1/api/cache/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log(`cache stats:   workers ${j.workerCount} hits ${j.hits} misses ${j.misses} invalidations ${j.invalidations} entries ${j.entries}`)}catch{}})' || true
if (( stale > 0 )); then echo "FAIL: $stale stale reads"; exit 1; fi
echo "PASS: no stale reads"
