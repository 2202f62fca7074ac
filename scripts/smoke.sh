#!/usr/bin/env bash
# Smoke test as a new user would do it: `npm start` on the embedded default (no MongoDB, no Auth0),
# mint a token with `npm run token`, then create → read → update → history → since → query →
# delete with curl, checking every answer (with node; no jq needed). Stops the server with SIGTERM
# and checks it shuts down cleanly. Exits non-zero on the first mismatch.
#
#   bash scripts/smoke.sh            (uses a free port and a temporary DATA_DIR)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd curl
require_cmd setsid "util-linux"

PORT="$(free_port)"
DATA_DIR="$(temp_dir smoke)"
register_temp "$DATA_DIR"
LOG="$DATA_DIR/server.log"
BASE="http://127.0.0.1:$PORT"
export PORT DATA_DIR RERUM_BASE="$BASE" LOG_LEVEL=info
unset MONGO_CONNECTION_STRING ISSUER_BASE_URL DOWN READONLY
SERVER_PID=""

fail() {
  echo "SMOKE FAIL: $*" >&2
  [[ -f "$LOG" ]] && { echo "--- server log (last 30 lines)" >&2; tail -n 30 "$LOG" >&2; }
  exit 1
}
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM -- "-$SERVER_PID" 2>/dev/null || true; sleep 1; kill -KILL -- "-$SERVER_PID" 2>/dev/null || true; fi
}
on_exit stop_server

# call METHOD PATH [BODY] → sets STATUS, BODY, HEADERS
call() {
  local method="$1" path="$2" data="${3:-}" hdr="$DATA_DIR/headers"
  local args=(-sS --max-time 30 -X "$method" -D "$hdr" -o "$DATA_DIR/body" -w '%{http_code}')
  [[ -n "${TOKEN:-}" ]] && args+=(-H "Authorization: Bearer $TOKEN")
  [[ -n "$data" ]] && args+=(-H 'Content-Type: application/json' --data "$data")
  STATUS="$(curl "${args[@]}" "$BASE$path")" || fail "$method $path: curl failed"
  BODY="$(cat "$DATA_DIR/body")"
  HEADERS="$(tr -d '\r' <"$hdr")"
}
expect_status() { [[ "$STATUS" == "$1" ]] || fail "$2: expected HTTP $1, got $STATUS: $BODY"; }
# js EXPR: evaluates the JavaScript expression EXPR with `b` = BODY parsed as JSON; prints the value
# (a string as is, anything else as JSON).
js() {
  node -e 'const b = JSON.parse(require("fs").readFileSync(0, "utf8")); const v = eval(process.argv[1]);
    process.stdout.write(typeof v === "string" ? v : JSON.stringify(v) ?? "undefined")' "$1" <<<"$BODY"
}
# check EXPR MESSAGE: EXPR must be true for BODY
check() { [[ "$(js "$1" 2>/dev/null)" == "true" ]] || fail "$2 (check: $1) in: $BODY"; }
objof() { js 'b.new_obj_state ?? b'; }

echo "== npm start (port $PORT, data in $DATA_DIR)"
setsid npm start >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 240); do
  if curl -fsS "$BASE/health" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start"
  sleep 0.5
done
curl -fsS "$BASE/health" >/dev/null || fail "server did not become healthy"
echo "   up: $(curl -sS "$BASE/health")"

echo "== token"
TOKEN="$(npm run -s token -- --agent "$BASE/v1/id/smoke-agent" 2>/dev/null | tail -n 1)"
[[ "$TOKEN" == *.*.* ]] || fail "npm run token did not print a JWT"

RID="smoke-$(date +%s)-$$"
echo "== create"
call POST /v1/api/create "{\"type\":\"SmokeTest\",\"rid\":\"$RID\",\"label\":\"first\"}"
expect_status 201 create
BODY="$(objof)"
V1="$(js 'b["@id"]')"
[[ "$V1" == "$BASE/v1/id/"* ]] || fail "create: @id $V1 does not start with $BASE/v1/id/"
grep -qi "^location: $V1\$" <<<"$HEADERS" || fail "create: Location header is not $V1"
check 'b.__rerum.generatedBy === "'"$BASE"'/v1/id/smoke-agent" && b.__rerum.history.prime === "root" && !("_id" in b)' "create: __rerum"

echo "== read"
TOKEN_SAVED="$TOKEN"; TOKEN=""
call GET "/v1/id/${V1##*/}"
expect_status 200 "GET /v1/id"
check 'b.label === "first" && !("_id" in b)' "read"
TOKEN="$TOKEN_SAVED"

echo "== update"
call PUT /v1/api/update "{\"@id\":\"$V1\",\"type\":\"SmokeTest\",\"rid\":\"$RID\",\"label\":\"second\"}"
expect_status 200 update
BODY="$(objof)"
V2="$(js 'b["@id"]')"
[[ "$V2" != "$V1" ]] || fail "update: the new version has the old @id"
check 'b.label === "second" && b.__rerum.history.previous === "'"$V1"'" && b.__rerum.history.prime === "'"$V1"'"' "update: history links"

echo "== history and since"
call GET "/v1/history/${V2##*/}"
expect_status 200 history
check 'b.length === 1 && b[0]["@id"] === "'"$V1"'"' "history of the new version lists the first"
call GET "/v1/since/${V1##*/}"
expect_status 200 since
check 'b.length === 1 && b[0]["@id"] === "'"$V2"'"' "since of the first version lists the new one"

echo "== query"
call POST /v1/api/query "{\"rid\":\"$RID\"}"
expect_status 200 query
check 'b.length === 2 && b.map((o) => o.label).sort().join() === "first,second"' "query finds both versions"

echo "== delete"
call DELETE "/v1/api/delete/${V2##*/}"
expect_status 204 delete
call POST /v1/api/query "{\"rid\":\"$RID\",\"label\":\"second\"}"
expect_status 200 "query after delete"
check 'b.length === 0' "the deleted version no longer matches a query"

echo "== graceful shutdown"
kill -TERM -- "-$SERVER_PID"
for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "server still running 15 s after SIGTERM"
grep -q '"msg":"stopped"' "$LOG" || fail "server did not log a clean stop"
SERVER_PID=""

echo "== a bad setting stops the start with a clear message"
set +e
out="$(PORT=eighty MONGO_CONNECTION_STRING=postgres://x node dist/server.js 2>&1)"; code=$?
set -e
[[ "$code" == 2 ]] || fail "bad configuration: expected exit code 2, got $code: $out"
{ grep -q "PORT must be" <<<"$out" && grep -q "MONGO_CONNECTION_STRING must" <<<"$out"; } || fail "bad configuration: message does not name PORT and MONGO_CONNECTION_STRING: $out"
echo "SMOKE OK"
