#!/usr/bin/env bash
# Load test with wrk (1 thread; 4 connections, 2 for logins), reporting for
# each target the requests per second, the latency, and what an operator
# sizes a fleet by: the server's CPU time per request (utime + stime of the
# server process and its children over the measured run, divided by the
# requests it answered) and its resident memory. On 2 cores wrk shares the
# CPU, so req/s is capped by the load generator; CPU time per request is not.
# Traffic goes only to 127.0.0.1; every wrk run is bounded (DURATION).
#
#   bench/load.sh                 # release build, fresh SQLite file
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/load.sh
#   bench/load.sh --peer          # the Django reference too, same targets, same database kind
#
# --peer runs the Django + Djoser + Simple JWT reference project of PEER_DIR
# (django_ref/, with its venv at PEER_VENV, made by its setup.sh) on gunicorn,
# on SQLite or, with DATABASE_URL, on the same PostgreSQL (bench/peer_settings.py).
# Results: RESULTS (bench/RESULTS.md) holds one table; CSV (bench/results-<db>.csv)
# the figures, which bench/chart.py draws into bench/cost.svg.
# Env knobs: DURATION (10s), WARMUP (2s), CONNS (4), LOGIN_CONNS (2), SESSIONS (4 × CONNS; more than
# CONNS: the sessions refresh_chain.lua rotates), PORT (8100).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PEER=0
[ "${1:-}" = "--peer" ] && PEER=1

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNS="${CONNS:-4}"
LOGIN_CONNS="${LOGIN_CONNS:-2}"
SESSIONS="${SESSIONS:-$((CONNS * 4))}"
PORT="${PORT:-8100}"
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
DB_KIND="sqlite"; [ -n "${DATABASE_URL:-}" ] && DB_KIND="postgres"
RESULTS="${RESULTS:-$HERE/RESULTS.md}"
CSV="${CSV:-$HERE/results-$DB_KIND.csv}"
PEER_DIR="${PEER_DIR:-}"
PEER_VENV="${PEER_VENV:-/tmp/tessera-peer/.venv}"
WORK="$(mktemp -d /tmp/tessera-load.XXXXXX)"
PASSWORD='Bench-Passw0rd_x9'
GET_LUA="$HERE/get_auth.lua"
POST_LUA="$HERE/post_json.lua"
TICKS="$(getconf CLK_TCK)"

need() {
    local missing=""
    for tool in "$@"; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
    if [ -n "$missing" ]; then
        echo "installing$missing"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
}
need wrk jq curl
# The reference project is not part of this repository: say where it is.
if [ "$PEER" = 1 ] && [ ! -d "$PEER_DIR/django_ref" ]; then
    echo "--peer needs PEER_DIR: a folder holding the Django reference project (django_ref/, setup.sh)" >&2
    exit 2
fi

echo "== building release"
(cd "$ROOT" && cargo build --release --quiet --bin tessera)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

# The server and its children (gunicorn's workers).
tree_pids() {
    local pid="$1" child
    echo "$pid"
    for child in $(pgrep -P "$pid" || true); do tree_pids "$child"; done
}
# utime + stime of the tree, in clock ticks (fields 14 and 15 of stat, after
# the command name, which may hold spaces).
cpu_ticks() {
    local total=0 pid
    for pid in $(tree_pids "$SERVER_PID"); do
        total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
    done
    echo "$total"
}
rss_kib() {
    local total=0 pid
    for pid in $(tree_pids "$SERVER_PID"); do
        total=$((total + $(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$SERVER_PID/status"; }

# Fixtures through the API: a user, an opaque key, a token pair.
fixtures() {
    USERNAME="benchuser$RANDOM$RANDOM"
    LOGIN_BODY="{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}"
    curl -sf -o /dev/null -X POST "$BASE/api/v1/auth/users/" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\",\"email\":\"bench@example.com\"}"
    KEY="$(curl -sf -X POST "$BASE/auth/token/login/" -H 'Content-Type: application/json' -d "$LOGIN_BODY" | jq -r .auth_token)"
    new_pair
}
new_pair() {
    local pair; pair="$(curl -sf -X POST "$BASE/api/token/" -H 'Content-Type: application/json' -d "$LOGIN_BODY")"
    ACCESS="$(jq -r .access <<<"$pair")"; REFRESH="$(jq -r .refresh <<<"$pair")"
}

# SESSIONS logins, their refresh tokens in TOKENS (for refresh_chain.lua).
new_sessions() {
    local i tokens=""
    for i in $(seq 1 "$SESSIONS"); do
        tokens="$tokens $(curl -sf -X POST "$BASE/api/token/" -H 'Content-Type: application/json' -d "$LOGIN_BODY" | jq -r .refresh)"
    done
    export TOKENS="$tokens"
}

wait_up() {
    for _ in $(seq 1 150); do curl -sf -o /dev/null "$BASE/$1" && return 0; sleep 0.1; done
    echo "the server did not start"; cat "$WORK/server.log"; exit 1
}

# start_tessera [ENV=VAL ...]: a fresh database each time (a fresh user on PostgreSQL).
start_tessera() {
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
    SERVER_PID=$!
    wait_up healthz
    # On PostgreSQL a new instance holds writes for its first 3 s (README,
    # "The user cache"): not part of the steady state measured here.
    [ "$DB_KIND" = postgres ] && sleep 3
    fixtures
}

# The Django reference on gunicorn (as its own bench script runs it), on
# the same kind of database.
start_peer() {
    stop_server
    local ref="$PEER_DIR/django_ref"
    export DJANGO_SETTINGS_MODULE=peer_settings PYTHONPATH="$HERE:$ref" DJANGO_DEBUG=0 REF_ROTATE=0
    export REF_DB_PATH="$WORK/peer.sqlite3"
    if [ -n "${DATABASE_URL:-}" ]; then
        # The reference's own setup installs no PostgreSQL driver.
        "$PEER_VENV/bin/python" -c 'import psycopg' 2>/dev/null \
            || "$PEER_VENV/bin/pip" install -q "psycopg[binary]"
        local schema="peer_$RANDOM$RANDOM"
        psql "$DATABASE_URL" -q -c "CREATE SCHEMA $schema"
        export PEER_PG_URL="$DATABASE_URL" PGOPTIONS="-c search_path=$schema"
    fi
    (cd "$ref" && "$PEER_VENV/bin/python" manage.py migrate -v 0)
    (cd "$ref" && exec "$PEER_VENV/bin/gunicorn" --bind "$HOST:$PORT" --workers "$(nproc)" \
        --worker-class sync --log-level warning --backlog 2048 refproj.wsgi:application) >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    wait_up ping/
    fixtures
}

declare -A RPS P99 CPU_US
# [PREPARE=FUNCTION] run SYSTEM KEY NAME CONNS URL LUA [ENV=VAL ...]
# PREPARE runs before the warm-up and again before the measured run.
run() {
    local system="$1" key="$2" name="$3" conns="$4" url="$5" lua="$6"; shift 6
    local out="$WORK/$system-$key.txt"
    if [ -n "${PREPARE:-}" ]; then "$PREPARE"; fi
    env "$@" wrk -t1 -c"$conns" -d"$WARMUP" --timeout 30s -s "$lua" "$url" >/dev/null 2>&1 || true
    if [ -n "${PREPARE:-}" ]; then "$PREPARE"; fi
    local before; before="$(cpu_ticks)"
    env "$@" wrk -t1 -c"$conns" -d"$DURATION" --timeout 30s --latency -s "$lua" "$url" >"$out" 2>&1
    local after; after="$(cpu_ticks)"
    local rps p50 p99 requests statuses cpu rss
    rps="$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")"
    p50="$(awk '/Latency Distribution/{f=1} f && $1=="50%"{print $2; exit}' "$out")"
    p99="$(awk '/Latency Distribution/{f=1} f && $1=="99%"{print $2; exit}' "$out")"
    requests="$(awk '/requests in/{print $1; exit}' "$out")"
    statuses="$(awk '/^STATUS_COUNTS/{print $2}' "$out")"
    cpu="$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$requests" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
    rss="$(( $(rss_kib) / 1024 ))"
    RPS[$system-$key]="$rps"; P99[$system-$key]="$p99"; CPU_US[$system-$key]="$cpu"
    echo "$system,$DB_KIND,$key,\"$name\",$rps,$cpu,$p50,$p99,$rss,\"$statuses\"" >>"$CSV"
    printf '%-8s %-46s c=%-2s %7s req/s %9s us CPU/req  p50 %-8s p99 %-8s RSS %4s MiB [%s]\n' \
        "$system" "$name" "$conns" "$rps" "$cpu" "$p50" "$p99" "$rss" "$statuses"
}

echo "system,db,key,target,req_per_s,cpu_us_per_req,p50,p99,rss_mib,statuses" >"$CSV"

# The targets, for both systems: key, name, Tessera path, Django path.
echo "== Tessera on $DB_KIND, wrk -t1, $DURATION per target (+$WARMUP warm-up)"
start_tessera
T=tessera
run $T healthz "GET /healthz (baseline)" "$CONNS" "$BASE/healthz" "$GET_LUA" AUTH=
run $T fwd_jwt "GET forward auth, Bearer JWT" "$CONNS" "$BASE/api/v1/auth/forward/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run $T stateless "GET whoami-stateless, Bearer JWT" "$CONNS" "$BASE/api/v1/whoami-stateless/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run $T verify "POST /api/token/verify/ (access)" "$CONNS" "$BASE/api/token/verify/" "$POST_LUA" "BODY={\"token\":\"$ACCESS\"}"
run $T me_jwt "GET users/me, Bearer JWT" "$CONNS" "$BASE/api/v1/auth/users/me/" "$GET_LUA" "AUTH=Bearer $ACCESS"
run $T me_token "GET users/me, Token" "$CONNS" "$BASE/api/v1/auth/users/me/" "$GET_LUA" "AUTH=Token $KEY"
run $T refresh "POST /api/token/refresh/ (rotation off)" "$CONNS" "$BASE/api/token/refresh/" "$POST_LUA" "BODY={\"refresh\":\"$REFRESH\"}"
run $T login "POST /api/token/ login" "$LOGIN_CONNS" "$BASE/api/token/" "$POST_LUA" "BODY=$LOGIN_BODY"
LOAD_RSS="$(( $(hwm_kib) / 1024 ))"
# Idle: what the service keeps once nobody uses it (argon2's working memory
# goes back after 10 s without a login).
sleep "${IDLE_WAIT:-15}"
IDLE_RSS="$(( $(rss_kib) / 1024 ))"
# One token refreshed over and over: without reuse detection each is a new
# rotation, as Simple JWT does it.
start_tessera TESSERA__JWT__ROTATE_REFRESH_TOKENS=true TESSERA__JWT__REUSE_DETECTION=false
run $T refresh_rot "POST /api/token/refresh/ (rotation on)" "$CONNS" "$BASE/api/token/refresh/" "$POST_LUA" "BODY={\"refresh\":\"$REFRESH\"}"
# Rotation with reuse detection (the default rules once rotation is on):
# SESSIONS clients, each presenting the newest refresh token of its session.
start_tessera TESSERA__JWT__ROTATE_REFRESH_TOKENS=true
PREPARE=new_sessions run $T refresh_chain "POST /api/token/refresh/ (rotation, reuse detection)" "$CONNS" "$BASE/api/token/refresh/" "$HERE/refresh_chain.lua"
stop_server

if [ "$PEER" = 1 ]; then
    [ -x "$PEER_VENV/bin/gunicorn" ] || bash "$PEER_DIR/setup.sh"
    echo "== the Django reference on $DB_KIND (gunicorn, $(nproc) sync workers)"
    start_peer
    D=django
    run $D healthz "GET /ping/ (plain view)" "$CONNS" "$BASE/ping/" "$GET_LUA" AUTH=
    run $D fwd_jwt "GET whoami-stateless, Bearer JWT (no forward auth)" "$CONNS" "$BASE/api/v1/whoami-stateless/" "$GET_LUA" "AUTH=Bearer $ACCESS"
    run $D stateless "GET whoami-stateless, Bearer JWT" "$CONNS" "$BASE/api/v1/whoami-stateless/" "$GET_LUA" "AUTH=Bearer $ACCESS"
    run $D verify "POST /api/token/verify/ (access)" "$CONNS" "$BASE/api/token/verify/" "$POST_LUA" "BODY={\"token\":\"$ACCESS\"}"
    run $D me_jwt "GET users/me, Bearer JWT" "$CONNS" "$BASE/api/v1/auth/users/me/" "$GET_LUA" "AUTH=Bearer $ACCESS"
    run $D me_token "GET users/me, Token" "$CONNS" "$BASE/api/v1/auth/users/me/" "$GET_LUA" "AUTH=Token $KEY"
    new_pair
    run $D refresh "POST /api/token/refresh/ (rotation off)" "$CONNS" "$BASE/api/token/refresh/" "$POST_LUA" "BODY={\"refresh\":\"$REFRESH\"}"
    run $D login "POST /api/token/ login" "$LOGIN_CONNS" "$BASE/api/token/" "$POST_LUA" "BODY=$LOGIN_BODY"
    stop_server
fi

python3 "$HERE/chart.py" "$HERE"/results-*.csv --out "$HERE/cost.svg"
CPUNAME="$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.0f×", b / a; else print "n/a" }'; }
{
    echo "## $DB_KIND"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($CPUNAME), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}') -t1 on the same CPUs, $DURATION per target after $WARMUP warm-up; loopback. Tessera $("$BIN" --version | awk '{print $2}') release, HS256, server.workers = ${TESSERA__SERVER__WORKERS:-0} (0: one per CPU but one), argon2id 19 MiB t=2 p=1, throttling off, log at warn."
    echo
    echo "| target | Tessera req/s | Tessera CPU µs/req | Django req/s | Django CPU µs/req | Django CPU / Tessera CPU |"
    echo "|---|---:|---:|---:|---:|---:|"
    for key in healthz fwd_jwt stateless verify me_jwt me_token refresh refresh_rot refresh_chain login; do
        name="$(awk -F'"' -v k=",$key," '$1 ~ "^tessera," && index($1, k) {print $2; exit}' "$CSV")"
        echo "| $name | ${RPS[tessera-$key]:-} | ${CPU_US[tessera-$key]:-} | ${RPS[django-$key]:-} | ${CPU_US[django-$key]:-} | $(ratio "${CPU_US[tessera-$key]:-0}" "${CPU_US[django-$key]:-0}") |"
    done
    echo
    echo "Tessera resident memory: peak $LOAD_RSS MiB, idle (${IDLE_WAIT:-15} s after the load) $IDLE_RSS MiB. Django's forward-auth row is its stateless whoami (it has no forward auth)."
} >"$WORK/section.md"
# RESULTS keeps one section per database kind: this run's replaces the old one.
python3 "$HERE/sections.py" "$RESULTS" "$WORK/section.md" "$DB_KIND"
echo
cat "$RESULTS"
