#!/usr/bin/env bash
# What each layer under Tessera's /healthz costs: the same GET answered by
# tokio alone (canned bytes), hyper, poem, poem-openapi (examples/floor.rs)
# and Tessera itself (/healthz, and forward auth with a Bearer JWT), each
# measured as load.sh measures: wrk -t1 -c4, the server's CPU time per
# request. All servers run at once on their own ports and rounds alternate
# between them, so a change in the VM's neighbours shows in every row.
#
#   bench/floor.sh
#
# Env knobs: DURATION (8s), WARMUP (2s), CONNS (4), ROUNDS (3), PORT (8100;
# the floors on PORT+1 to PORT+4), RESULTS (bench/RESULTS.md: its `floor`
# section is replaced).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DURATION="${DURATION:-8s}"
WARMUP="${WARMUP:-2s}"
CONNS="${CONNS:-4}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-8100}"
RESULTS="${RESULTS:-$HERE/RESULTS.md}"
TICKS="$(getconf CLK_TCK)"
WORK="$(mktemp -d /tmp/tessera-floor.XXXXXX)"
PASSWORD='Bench-Passw0rd_x9'
for tool in wrk jq curl; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk jq curl >/dev/null; }
done

echo "== building release"
(cd "$ROOT" && cargo build --release --quiet --bin tessera --example floor)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
wait_up() { # port
    for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$1/healthz" && return 0; sleep 0.1; done
    echo "nothing answers on port $1" >&2; cat "$WORK"/*.log >&2; exit 1
}
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

declare -A PID_OF URL_OF AUTH_OF
LAYERS=(tokio hyper poem openapi)
for i in "${!LAYERS[@]}"; do
    layer="${LAYERS[$i]}" port=$((PORT + 1 + i))
    LAYER="$layer" PORT="$port" "$TARGET/examples/floor" >"$WORK/$layer.log" 2>&1 &
    PIDS+=("$!"); PID_OF[$layer]=$!
    URL_OF[$layer]="http://127.0.0.1:$port/healthz"; AUTH_OF[$layer]=""
    wait_up "$port"
done
(cd "$WORK" && exec env DATABASE_URL="sqlite://$WORK/floor.db?mode=rwc" TESSERA__SERVER__PORT="$PORT" \
    TESSERA__LOG__LEVEL=warn TESSERA__THROTTLE__ENABLED=false \
    TESSERA__JWT__SIGNING_KEY="load-test-signing-key-0123456789abcdef0123456789" \
    "$TARGET/tessera" serve >"$WORK/tessera.log" 2>&1) &
PIDS+=("$!"); TESSERA=$!
wait_up "$PORT"
BASE="http://127.0.0.1:$PORT"
curl -sf -o /dev/null -X POST "$BASE/api/v1/auth/users/" -d "username=floor&password=$PASSWORD"
ACCESS="$(curl -sf -X POST "$BASE/api/token/" -d "username=floor&password=$PASSWORD" | jq -r .access)"
PID_OF[healthz]=$TESSERA; URL_OF[healthz]="$BASE/healthz"; AUTH_OF[healthz]=""
PID_OF[forward]=$TESSERA; URL_OF[forward]="$BASE/api/v1/auth/forward/"; AUTH_OF[forward]="Bearer $ACCESS"
TARGETS=(tokio hyper poem openapi healthz forward)
declare -A NAME=(
    [tokio]="tokio alone: canned bytes per request head"
    [hyper]="hyper (auto::Builder, as poem drives it)"
    [poem]="poem: route + handler"
    [openapi]="poem-openapi: one operation"
    [healthz]="Tessera GET /healthz"
    [forward]="Tessera forward auth, Bearer JWT"
)

declare -A CPU RPS
echo "== $ROUNDS rounds, wrk -t1 -c$CONNS, $DURATION per target (+$WARMUP warm-up)"
for round in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        AUTH="${AUTH_OF[$t]}" wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$HERE/get_auth.lua" "${URL_OF[$t]}" >/dev/null
        before="$(ticks "${PID_OF[$t]}")"
        AUTH="${AUTH_OF[$t]}" wrk -t1 -c"$CONNS" -d"$DURATION" -s "$HERE/get_auth.lua" "${URL_OF[$t]}" >"$WORK/wrk.txt"
        after="$(ticks "${PID_OF[$t]}")"
        n="$(awk '/requests in/{print $1; exit}' "$WORK/wrk.txt")"
        statuses="$(awk '/^STATUS_COUNTS/{print $2}' "$WORK/wrk.txt")"
        if [[ "$statuses" != "200="* || "$statuses" == *,* ]]; then
            echo "$t answered other than 200: $statuses" >&2; exit 1
        fi
        cpu="$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
        rps="$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$WORK/wrk.txt")"
        printf 'round %s  %-44s %7s req/s %6s us CPU/req\n' "$round" "${NAME[$t]}" "$rps" "$cpu"
        CPU[$t]="${CPU[$t]:+${CPU[$t]}, }$cpu"; RPS[$t]="${RPS[$t]:+${RPS[$t]}, }$rps"
    done
done

CPUNAME="$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
{
    echo "## floor"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($CPUNAME), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; \`bench/floor.sh\`: one GET answered by each layer of the stack alone (\`examples/floor.rs\`, LAYER=...) and by Tessera, on the runtime Tessera starts (one worker on 2 CPUs); wrk -t1 -c$CONNS on the same CPUs, $DURATION per run after $WARMUP warm-up; $ROUNDS rounds alternating between the servers. Tessera $("$TARGET/tessera" --version | awk '{print $2}') release, SQLite, HS256, log at warn."
    echo
    echo "| what answers | CPU µs/req, each round | req/s, each round |"
    echo "|---|---:|---:|"
    for t in "${TARGETS[@]}"; do echo "| ${NAME[$t]} | ${CPU[$t]} | ${RPS[$t]} |"; done
    echo
    echo "Each layer includes the ones above it; the difference between two rows is what the lower one adds."
} >"$WORK/section.md"
python3 "$HERE/sections.py" "$RESULTS" "$WORK/section.md" floor
echo
sed -n '/^## floor/,/^## [a-z]/p' "$RESULTS"
