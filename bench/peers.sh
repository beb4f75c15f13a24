#!/usr/bin/env bash
# What the PostgreSQL cache's guarantee costs: refresh-token rotation through
# instance A alone, then with a second instance B on the same database. With
# B there, each rotation on A is answered only once B has acknowledged it
# (README, "User cache"). Reports req/s, p50 latency and the CPU time per
# rotation of A and of B; rounds alternate one and two instances.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/peers.sh
#
# Env knobs: DURATION (8s), WARMUP (2s), CONNS (4), ROUNDS (2), PORT (8100,
# B on PORT+1), RESULTS (bench/RESULTS.md: its `peers` section is replaced).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
if [ -z "${DATABASE_URL:-}" ] || [[ "$DATABASE_URL" != postgres* ]]; then
    echo "DATABASE_URL must be a postgres:// URL (the acknowledgements are PostgreSQL's)" >&2
    exit 2
fi
DURATION="${DURATION:-8s}"
WARMUP="${WARMUP:-2s}"
CONNS="${CONNS:-4}"
ROUNDS="${ROUNDS:-2}"
PORT="${PORT:-8100}"
RESULTS="${RESULTS:-$HERE/RESULTS.md}"
TICKS="$(getconf CLK_TCK)"
WORK="$(mktemp -d /tmp/tessera-peers.XXXXXX)"
PASSWORD='Bench-Passw0rd_x9'
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

echo "== building release"
(cd "$ROOT" && cargo build --release --quiet --bin tessera)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"

# A schema of its own, so the run starts from an empty database.
SCHEMA="peers_$RANDOM$RANDOM"
psql "$DATABASE_URL" -q -c "CREATE SCHEMA $SCHEMA"
sep='?'; [[ "$DATABASE_URL" == *\?* ]] && sep='&'
export DATABASE_URL="$DATABASE_URL${sep}options=-c%20search_path%3D$SCHEMA"
export TESSERA__LOG__LEVEL=warn TESSERA__THROTTLE__ENABLED=false \
    TESSERA__JWT__SIGNING_KEY="load-test-signing-key-0123456789abcdef0123456789" \
    TESSERA__JWT__ROTATE_REFRESH_TOKENS=true TESSERA__JWT__REUSE_DETECTION=false

PIDS=()
start() { # port: the pid
    (cd "$WORK" && exec env TESSERA__SERVER__PORT="$1" "$BIN" serve >/dev/null 2>>"$WORK/server.log") &
    local pid=$!
    for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$1/healthz" && break; sleep 0.1; done
    PIDS+=("$pid")
    STARTED="$pid"
}
stop() { kill -TERM "$1" 2>/dev/null || true; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }
cleanup() {
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    psql "${DATABASE_URL%%\?*}" -q -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

start "$PORT"; A="$STARTED"
# A new instance holds writes for its first 3 s (README, "The user cache").
sleep 3
BASE="http://127.0.0.1:$PORT"
curl -sf -o /dev/null -X POST "$BASE/api/v1/auth/users/" -d "username=bench&password=$PASSWORD"
REFRESH="$(curl -sf -X POST "$BASE/api/token/" -d "username=bench&password=$PASSWORD" | jq -r .refresh)"
export BODY="{\"refresh\":\"$REFRESH\"}"

ROWS=()
measure() { # label, pid of B or ""
    local url="$BASE/api/token/refresh/" out="$WORK/wrk.txt"
    wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$HERE/post_json.lua" "$url" >/dev/null
    local a0 b0=0 a1 b1=0
    a0="$(ticks "$A")"; [ -n "$2" ] && b0="$(ticks "$2")"
    wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$HERE/post_json.lua" "$url" >"$out"
    a1="$(ticks "$A")"; [ -n "$2" ] && b1="$(ticks "$2")"
    local n rps p50 statuses
    n="$(awk '/requests in/{print $1; exit}' "$out")"
    rps="$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")"
    p50="$(awk '/Latency Distribution/{f=1} f && $1=="50%"{print $2; exit}' "$out")"
    statuses="$(awk '/^STATUS_COUNTS/{print $2}' "$out")"
    local row
    row="$(awk -v l="$1" -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v hz="$TICKS" -v n="$n" -v rps="$rps" -v p50="$p50" -v st="$statuses" -v two="$2" \
        'BEGIN { printf "| %s | %s | %s | %.1f | %s | %s |", l, rps, p50, a * 1e6 / hz / n, (two == "" ? "" : sprintf("%.1f", b * 1e6 / hz / n)), st }')"
    echo "$row"
    ROWS+=("$row")
}

echo "== rotation through A, $ROUNDS rounds, wrk -t1 -c$CONNS, $DURATION each (+$WARMUP warm-up)"
for round in $(seq 1 "$ROUNDS"); do
    measure "A alone" ""
    start $((PORT + 1)); B="$STARTED"
    sleep 1.5 # B's first beats reach A
    measure "A, with B" "$B"
    stop "$B"
done

CPUNAME="$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
{
    echo "## peers"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($CPUNAME), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; \`bench/peers.sh\`: PostgreSQL, refresh-token rotation (reuse detection off) through instance A, alone or with a second instance B on the same database; wrk -t1 -c$CONNS on the same CPUs, $DURATION per run after $WARMUP warm-up; rounds alternate. Tessera $("$BIN" --version | awk '{print $2}') release, HS256, defaults otherwise."
    echo
    echo "| run | rotations/s | p50 | A CPU µs/rotation | B CPU µs/rotation | statuses |"
    echo "|---|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "With B there, each rotation is answered once B has acknowledged it: B's CPU is what hearing the notifications and sending the acknowledgements costs."
} >"$WORK/section.md"
python3 "$HERE/sections.py" "$RESULTS" "$WORK/section.md" peers
echo
sed -n '/^## peers/,$p' "$RESULTS"
