#!/usr/bin/env bash
# Load test of Tessera with wrk, the same tool and settings as
# ../shared/peer/bench_peer.sh so the figures compare. Traffic goes only to
# 127.0.0.1; every wrk run is bounded (DURATION).
#
#   bench/load.sh                 # release build, fresh SQLite file
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/load.sh
#   bench/load.sh --peer          # also the Django reference, then the ratios
#
# Env knobs: DURATION (10s), WARMUP (2s), CONNS (4), LOGIN_CONNS (2), PORT (8100),
#   RESULTS (bench/RESULTS.md). Production password cost (config defaults);
#   request logging at warn so the log does not measure the terminal.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PEER=0
[ "${1:-}" = "--peer" ] && PEER=1

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNS="${CONNS:-4}"
LOGIN_CONNS="${LOGIN_CONNS:-2}"
PORT="${PORT:-8100}"
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
RESULTS="${RESULTS:-$HERE/RESULTS.md}"
PEER_DIR="${PEER_DIR:-$ROOT/../shared/peer}"
WORK="$(mktemp -d /tmp/tessera-load.XXXXXX)"
USERNAME=benchuser
PASSWORD='Bench-Passw0rd_x9'
LOGIN_BODY="{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}"

need() {
    local missing=""
    for tool in "$@"; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
    if [ -n "$missing" ]; then
        echo "installing$missing"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
}
need wrk jq curl

echo "== building release"
(cd "$ROOT" && cargo build --release --quiet --bin tessera)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"

PID=""
stop_server() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
    fi
    PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

# start_server [ENV=VAL ...]: a fresh database each time.
start_server() {
    stop_server
    if curl -s -o /dev/null "$BASE/healthz"; then
        echo "something already listens on $HOST:$PORT" >&2; exit 1
    fi
    local db="${DATABASE_URL:-sqlite://$WORK/bench-$RANDOM.db?mode=rwc}"
    # Throttling off: one client hammering one user is what it exists to stop.
    (cd "$WORK" && exec env DATABASE_URL="$db" TESSERA__SERVER__PORT="$PORT" TESSERA__LOG__LEVEL=warn \
        TESSERA__THROTTLE__ENABLED=false \
        TESSERA__JWT__SIGNING_KEY="load-test-signing-key-0123456789abcdef0123456789" "$@" \
        "$BIN" serve >"$WORK/server.log" 2>&1) &
    PID=$!
    SERVER_PID=$PID
    for _ in $(seq 1 100); do curl -sf -o /dev/null "$BASE/healthz" && break; sleep 0.1; done
    curl -sf -o /dev/null "$BASE/healthz" || { cat "$WORK/server.log"; exit 1; }
    # A PostgreSQL database is shared between runs: a fresh user name each time.
    USERNAME="benchuser$RANDOM$RANDOM"
    LOGIN_BODY="{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}"
    curl -sf -o /dev/null -X POST "$BASE/api/v1/auth/users/" -H 'Content-Type: application/json' -d "$LOGIN_BODY"
    KEY="$(curl -sf -X POST "$BASE/auth/token/login/" -H 'Content-Type: application/json' -d "$LOGIN_BODY" | jq -r .auth_token)"
    local pair; pair="$(curl -sf -X POST "$BASE/api/token/" -H 'Content-Type: application/json' -d "$LOGIN_BODY")"
    ACCESS="$(jq -r .access <<<"$pair")"; REFRESH="$(jq -r .refresh <<<"$pair")"
}

rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$SERVER_PID/status"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$SERVER_PID/status"; }

ROWS=()
declare -A RPS P99
# run KEY NAME CONNS URL LUA [ENV=VAL ...]
run() {
    local key="$1" name="$2" conns="$3" url="$4" lua="$5"; shift 5
    local out="$WORK/$key.txt"
    env "$@" wrk -t1 -c"$conns" -d"$WARMUP" --timeout 30s -s "$lua" "$url" >/dev/null 2>&1 || true
    env "$@" wrk -t1 -c"$conns" -d"$DURATION" --timeout 30s --latency -s "$lua" "$url" >"$out" 2>&1
    local rps p50 p99 statuses
    rps="$(awk '/^Requests\/sec:/{print $2}' "$out")"
    p50="$(awk '/Latency Distribution/{f=1} f && $1=="50%"{print $2; exit}' "$out")"
    p99="$(awk '/Latency Distribution/{f=1} f && $1=="99%"{print $2; exit}' "$out")"
    statuses="$(awk '/^STATUS_COUNTS/{print $2}' "$out")"
    RPS[$key]="$rps"; P99[$key]="$p99"
    ROWS+=("| $name | $conns | $rps | $p50 | $p99 | $statuses |")
    printf '%-52s c=%-2s %10s req/s  p50 %-9s p99 %-9s status[%s]\n' "$name" "$conns" "$rps" "$p50" "$p99" "$statuses"
}

# The peer's own Lua scripts (they count status codes), so both runs measure alike.
GET_LUA="$PEER_DIR/bench/get_auth.lua"
POST_LUA="$PEER_DIR/bench/post_json.lua"

echo "== Tessera on ${DATABASE_URL:+PostgreSQL}${DATABASE_URL:-SQLite}, wrk -t1, $DURATION per target (+$WARMUP warm-up)"
start_server
IDLE_RSS="$(rss_kib)"
run healthz "GET /healthz (baseline)" "$CONNS" "$BASE/healthz" "$GET_LUA" AUTH=
run fwd_jwt "GET forward-auth, Bearer JWT" "$CONNS" "$BASE/api/v1/auth/forward/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run fwd_token "GET forward-auth, Token" "$CONNS" "$BASE/api/v1/auth/forward/" "$GET_LUA" "AUTH=Token $KEY"
run stateless "GET /api/v1/whoami-stateless/, Bearer JWT (no DB)" "$CONNS" "$BASE/api/v1/whoami-stateless/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run whoami_jwt "GET /api/v1/whoami/, Bearer JWT (DB user)" "$CONNS" "$BASE/api/v1/whoami/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run whoami_token "GET /api/v1/whoami/, Token" "$CONNS" "$BASE/api/v1/whoami/" "$GET_LUA" "AUTH=Token $KEY"
run me_jwt "GET /users/me/, Bearer JWT" "$CONNS" "$BASE/api/v1/auth/users/me/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run me_token "GET /users/me/, Token" "$CONNS" "$BASE/api/v1/auth/users/me/" "$GET_LUA" "AUTH=Token $KEY"
run verify "POST /api/token/verify/ (access)" "$CONNS" "$BASE/api/token/verify/" "$POST_LUA" "BODY={\"token\":\"$ACCESS\"}"
run refresh "POST /api/token/refresh/ (rotation off)" "$CONNS" "$BASE/api/token/refresh/" "$POST_LUA" "BODY={\"refresh\":\"$REFRESH\"}"
run login "POST /api/token/ login (argon2id 19 MiB, t=2)" "$LOGIN_CONNS" "$BASE/api/token/" "$POST_LUA" "BODY=$LOGIN_BODY"

# Forward auth while a login flood keeps the hashing pool busy.
(env "BODY=$LOGIN_BODY" wrk -t1 -c8 -d"$DURATION" --timeout 30s -s "$POST_LUA" "$BASE/api/token/" >"$WORK/flood.txt" 2>&1) &
FLOOD=$!
sleep 1
run fwd_flood "GET forward-auth, Bearer JWT, during a login flood" 2 "$BASE/api/v1/auth/forward/" "$GET_LUA" "AUTH=Bearer $ACCESS"
wait "$FLOOD" || true
LOAD_RSS="$(hwm_kib)"

# One token refreshed over and over: with reuse detection that is a replay
# (answered from the family row within the grace interval, then a revocation),
# so this run measures minting a new pair each time, as Simple JWT does.
start_server TESSERA__JWT__ROTATE_REFRESH_TOKENS=true TESSERA__JWT__REUSE_DETECTION=false
run refresh_rot "POST /api/token/refresh/ (rotation on)" "$CONNS" "$BASE/api/token/refresh/" "$POST_LUA" "BODY={\"refresh\":\"$REFRESH\"}"
stop_server

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
CPU="$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
{
    echo "# Tessera load test"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(nproc) CPUs ($CPU), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; server and wrk share the CPUs; loopback only"
    echo "- Tessera $("$BIN" --version | awk '{print $2}') release build, ${DATABASE_URL:+PostgreSQL}${DATABASE_URL:-SQLite (WAL)}, fresh database, HS256, argon2id 19 MiB t=2 p=1, request log at warn"
    echo "- wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}') -t1, $DURATION per target after $WARMUP warm-up; the peer's Lua scripts"
    echo
    echo "| target | conns | req/s | p50 | p99 | status counts |"
    echo "|---|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "- forward-auth (JWT) / healthz: $(ratio "${RPS[fwd_jwt]}" "${RPS[healthz]}") (target >= 0.85)"
    echo "- forward-auth p99 during a login flood: ${P99[fwd_flood]} (target < 5 ms)"
    echo "- resident memory: idle $((IDLE_RSS / 1024)) MiB, peak under load $((LOAD_RSS / 1024)) MiB (targets < 30 MiB, < 100 MiB)"
} >"$RESULTS"

if [ "$PEER" = 1 ]; then
    echo "== the Django reference (../shared/peer)"
    bash "$PEER_DIR/setup.sh"
    PEER_RESULTS="$WORK/peer.md"
    DURATION="$DURATION" WARMUP="$WARMUP" RESULTS="$PEER_RESULTS" bash "$PEER_DIR/bench_peer.sh" >/dev/null
    peer_rps() { awk -F'|' -v t="$1" 'index($2, t) { gsub(/ /, "", $4); print $4; exit }' "$PEER_RESULTS"; }
    {
        echo
        echo "## Against the Django reference, same machine, same run"
        echo
        echo "| Tessera | Django (gunicorn, $(nproc) workers) | Tessera req/s | Django req/s | ratio |"
        echo "|---|---|---:|---:|---:|"
        while IFS='|' read -r key tname dname dtarget; do
            d="$(peer_rps "$dtarget")"
            echo "| $tname | $dname | ${RPS[$key]} | ${d:-n/a} | $(ratio "${RPS[$key]}" "${d:-0}") |"
        done <<'MAP'
healthz|GET /healthz|GET /ping/|GET /ping/
fwd_jwt|forward-auth, Bearer JWT|stateless whoami, Bearer JWT|whoami-stateless
stateless|whoami-stateless, Bearer JWT|whoami-stateless, Bearer JWT|whoami-stateless
whoami_jwt|whoami, Bearer JWT|whoami, Bearer JWT|whoami/ Bearer JWT
whoami_token|whoami, Token|whoami, Token|whoami/ Authorization: Token
verify|verify|verify|token/verify/
refresh|refresh (rotation off)|refresh (rotation off)|token/refresh/
login|login (argon2id)|login (PBKDF2 1.5M)|login
MAP
        echo
        echo "- forward-auth (JWT) / Django stateless whoami: $(ratio "${RPS[fwd_jwt]}" "$(peer_rps whoami-stateless)") (target >= 20)"
        echo
        echo "<details><summary>Django run</summary>"
        echo
        sed -n '/^| target/,$p' "$PEER_RESULTS"
        echo
        echo "</details>"
    } >>"$RESULTS"
fi
echo
cat "$RESULTS"
