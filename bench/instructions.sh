#!/usr/bin/env bash
# Instructions per request through the whole stack in process
# (examples/requests.rs), counted by valgrind's callgrind: /healthz, forward
# auth and users/me with a Bearer JWT. Each kind runs twice, with FEW and
# FEW + MANY requests, and the difference is divided by MANY, so start-up
# (migrations, the OpenAPI document, a password hash) cancels out. Counts
# repeat within a few per cent whatever else the machine does, where CPU
# times move by 10-25% from run to run: the figure to judge a change to the
# request path by. User space only: the kernel's TCP is not in it.
#
#   bench/instructions.sh
#
# Env knobs: FEW (200), MANY (2000), RESULTS (bench/RESULTS.md: its
# `instructions` section is replaced).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
FEW="${FEW:-200}"
MANY="${MANY:-2000}"
RESULTS="${RESULTS:-$HERE/RESULTS.md}"
WORK="$(mktemp -d /tmp/tessera-instructions.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }

echo "== building release"
(cd "$ROOT" && cargo build --release --quiet --example requests)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/requests"

count() { # kind requests: instructions of the whole run
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$BIN" "$1" "$2" 2>&1 \
        | awk '/Collected :/{print $4}'
}
declare -A NAME=([healthz]="GET /healthz" [forward]="GET forward auth, Bearer JWT" [me]="GET users/me, Bearer JWT")
ROWS=()
for kind in healthz forward me; do
    few="$(count "$kind" "$FEW")"
    all="$(count "$kind" $((FEW + MANY)))"
    per=$(( (all - few) / MANY ))
    printf '%-32s %8s instructions per request\n' "${NAME[$kind]}" "$per"
    ROWS+=("| ${NAME[$kind]} | $per |")
done

CPUNAME="$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
{
    echo "## instructions"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($CPUNAME); \`bench/instructions.sh\`: $(valgrind --version), instructions per request in process (no socket), ($((FEW + MANY)) requests - $FEW requests) / $MANY; Tessera $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown) release, SQLite, HS256."
    echo
    echo "| request | instructions per request |"
    echo "|---|---:|"
    printf '%s\n' "${ROWS[@]}"
} >"$WORK/section.md"
python3 "$HERE/sections.py" "$RESULTS" "$WORK/section.md" instructions
