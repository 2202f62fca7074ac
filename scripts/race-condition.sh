#!/usr/bin/env bash
# Stale-read race test for the read cache (non-interactive).
#
# Against a running server:
#   BASE_URL=http://localhost:3001 TOKEN=... bash scripts/race-condition.sh [ROUNDS]
#   (without TOKEN a local-issuer token is minted with `npm run -s token -- --agent ...`)
# Or let it start its own 4-worker PM2 cluster on the embedded database (private PM2_HOME and
# DATA_DIR, always stopped and removed on exit):
#   bash scripts/race-condition.sh --cluster [ROUNDS]          (this is `npm run race`)
# Negative control (the test must be able to fail): the same cluster with CACHE_SYNC_DISABLED_FOR_TEST=1
# (honoured by cache/index.ts only: writers drop their own entries but never broadcast), expecting
# stale reads; exits 0 only if it saw some:
#   bash scripts/race-condition.sh --cluster --broken-sync [ROUNDS]
#
# It creates an object, caches it (GET twice), then for ROUNDS rounds (default 300), each request
# on a new connection:
#   1. PUT /v1/api/overwrite with n=i;
#   2. right after the write: GET /v1/id/{id} twice and POST /v1/api/query that matches it — these
#      must be fresh; with working sync they are MISSes (the write dropped every copy);
#   3. between writes: GET /v1/id/{id} three times and the query once more — these fill and HIT
#      the caches, so the workers that do not write hold copies the next write makes stale.
# Eight requests a round: on a 4-worker cluster PM2's round robin sends every write to the same
# worker and the step-2 reads to the three others, which answered (and cached) the same reads in
# step 3 of the previous round; only the writer's broadcast can keep them fresh. (With a round
# length not a multiple of 4 every worker would also write and clear its own copy, and the test
# could not fail.) It counts fresh vs stale answers and HITs per step, prints the figures and exits 1
# on any stale read.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER=0
BROKEN=0
if [[ "${1:-}" == "--cluster" ]]; then CLUSTER=1; shift; fi
if [[ "${1:-}" == "--broken-sync" ]]; then
  [[ "$CLUSTER" == 1 ]] || { echo "--broken-sync needs --cluster (it starts its own cluster with sync disabled)" >&2; exit 2; }
  BROKEN=1; shift
  export CACHE_SYNC_DISABLED_FOR_TEST=1
  echo "NEGATIVE CONTROL: CACHE_SYNC_DISABLED_FOR_TEST=1 — invalidations are not broadcast; stale reads are expected"
fi
ROUNDS="${1:-${ROUNDS:-300}}"
require_cmd curl
HDR="$(temp_file race-headers)"
register_temp "$HDR"

if [[ "$CLUSTER" == 1 ]]; then
  PORT="${PORT:-$(free_port)}"
  EMBEDDED_MONGO_PORT="${EMBEDDED_MONGO_PORT:-$(free_port)}"
  PM2_HOME="$(temp_dir race-pm2)"
  DATA_DIR="$(temp_dir race-data)"
  register_temp "$PM2_HOME" "$DATA_DIR"
  export PORT EMBEDDED_MONGO_PORT PM2_HOME DATA_DIR
  export INSTANCES=4 CACHING=true LOG_LEVEL="${LOG_LEVEL:-warn}" PM2_APP_NAME="rerum-race-$PORT"
  export RERUM_BASE="http://127.0.0.1:$PORT"
  unset MONGO_CONNECTION_STRING
  stop_cluster() {
    echo "stopping the cluster"
    "$ROOT/node_modules/.bin/pm2" kill >/dev/null 2>&1
  }
  on_exit stop_cluster # runs before the temporary directories go (on_exit: last registered first)
  echo "building…"
  npm run -s build
  "$ROOT/node_modules/.bin/pm2" start ecosystem.config.cjs >/dev/null
  BASE_URL="http://127.0.0.1:$PORT"
  echo -n "waiting for 4 workers on $BASE_URL "
  for _ in $(seq 1 240); do
    if curl -fsS "$BASE_URL/v1/api/cache/stats" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);process.exit(j.workerCount===4&&j.workers.every(w=>w.leaseValid)?0:1)})' 2>/dev/null; then
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

fresh=0; stale=0; wsum=0; wmax=0
after_reads=0; after_hits=0; between_reads=0; between_hits=0
declare -A after_workers=()
# one read, judged; $1 = round, $2 = id|query, $3 = after|between
read_once() {
  local resp verdict worker
  if [[ "$2" == id ]]; then
    resp="$("${CURL[@]}" -D /dev/stderr "$BASE_URL/v1/id/$SEG" 2>"$HDR")"
  else
    resp="$("${CURL[@]}" -D /dev/stderr -X POST "$BASE_URL/v1/api/query" -H 'Content-Type: application/json' -d "{\"rid\":\"$RID\"}" 2>"$HDR")"
  fi
  worker="$(grep -i '^x-worker' "$HDR" | tr -d '\r' | cut -d' ' -f2)"
  if [[ "$3" == after ]]; then
    after_reads=$((after_reads + 1)); after_workers[${worker:-?}]=1
    grep -qi '^x-cache: HIT' "$HDR" && after_hits=$((after_hits + 1))
  else
    between_reads=$((between_reads + 1))
    grep -qi '^x-cache: HIT' "$HDR" && between_hits=$((between_hits + 1))
  fi
  verdict="$(judge "$1" "$resp")"
  if [[ "$verdict" == fresh ]]; then fresh=$((fresh + 1)); else
    stale=$((stale + 1))
    local when='between writes'; [[ "$3" == after ]] && when='right after the write'
    (( stale <= 10 )) && echo "  round $1 $2 ($when): STALE (${verdict#stale }) from worker $worker"
  fi
  return 0
}
start=$(date +%s%N)
for i in $(seq 1 "$ROUNDS"); do
  w0=$(date +%s%N)
  code="$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X PUT "$BASE_URL/v1/api/overwrite" "${AUTH[@]}" -H 'Content-Type: application/json' \
    -d "{\"@id\":\"$ID\",\"type\":\"CacheRaceTest\",\"rid\":\"$RID\",\"n\":$i}")"
  w=$(( ($(date +%s%N) - w0) / 1000000 )); wsum=$((wsum + w)); (( w > wmax )) && wmax=$w
  [[ "$code" == 200 ]] || { echo "overwrite failed with HTTP $code" >&2; exit 2; }
  for kind in id id query; do read_once "$i" "$kind" after; done
  for kind in id id id query; do read_once "$i" "$kind" between; done
done
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
total=$((fresh + stale))
echo
echo "rounds:        $ROUNDS (PUT /v1/api/overwrite → GET /v1/id ×2 + POST /v1/api/query → GET /v1/id ×3 + POST /v1/api/query)"
echo "reads:         $total   fresh: $fresh   stale: $stale"
echo "right after a write: $after_reads reads on workers {${!after_workers[*]}}, cache HITs: $after_hits"
echo "               (0 with working sync: each of those workers held a copy from the previous round, and the write dropped it)"
echo "between writes:      $between_reads reads, cache HITs: $between_hits"
echo "               (the copies the next write must drop on the workers that do not write; without the broadcast"
echo "                the reads right after the write would be HITs on them: see --broken-sync)"
echo "write latency: avg $((wsum / ROUNDS)) ms, max $wmax ms (curl included)"
echo "elapsed:       ${elapsed} ms"
# shellcheck disable=SC2016 # a JavaScript template literal, not a shell expansion
"${CURL[@]}" "$BASE_URL/v1/api/cache/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log(`cache stats:   workers ${j.workerCount} hits ${j.hits} misses ${j.misses} invalidations ${j.invalidations} entries ${j.entries}`)}catch{}})' || true
if [[ "$BROKEN" == 1 ]]; then
  if (( stale > 0 )); then echo "PASS (negative control): sync disabled, $stale stale reads detected"; exit 0; fi
  echo "FAIL (negative control): sync disabled but no stale read seen — this test cannot detect broken sync"; exit 1
fi
if (( stale > 0 )); then echo "FAIL: $stale stale reads"; exit 1; fi
if (( between_hits == 0 )); then echo "FAIL: no read was ever served from a cache; the test could not have seen a stale one"; exit 1; fi
echo "PASS: no stale reads"
