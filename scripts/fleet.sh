#!/usr/bin/env bash
# A fleet you can run on one machine: PostgreSQL, Redis, three Tessera
# instances sharing them, and nginx load-balancing the three. A mixed load
# (registrations, logins, refreshes with rotation, forward auth, logouts)
# runs through nginx while instance 2 is killed (SIGKILL) a third of the way
# in and started again at two thirds. The report says how many requests
# were served, the errors, the throttle decisions, and whether any revoked
# refresh token was accepted by any instance (each is tried on all three,
# directly); the script fails if one was, or if more than 1% of requests
# failed.
#   scripts/fleet.sh [--duration SECONDS]   (default 60)
# Needs PostgreSQL (FLEET_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres:
# a database of its own is created there and dropped after; if nothing answers
# on 127.0.0.1:5432 the local cluster is started), redis-server, nginx, curl
# and python3.
# Builds Tessera (release) unless TESSERA_BIN is given. Only 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=60
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --duration=*) DURATION="${1#*=}"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

for tool in redis-server nginx python3 psql pg_isready curl; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "fleet.sh needs $tool" >&2; exit 1; }
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [ -z "${TESSERA_BIN:-}" ]; then
    cargo build --quiet --release --bin tessera
    TESSERA_BIN="${CARGO_TARGET_DIR:-target}/release/tessera"
fi
TESSERA_BIN="$(realpath "$TESSERA_BIN")"

WORK="$(mktemp -d /tmp/tessera-fleet.XXXXXX)"
PIDS=()
DB=""
PG_URL="${FLEET_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_URL="${PG_URL%%\?*}"
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    # Instances are disowned (killed on purpose below): wait for them by pid.
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    wait 2>/dev/null || true
    [ -n "$DB" ] && psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2; return 1
}

# PostgreSQL: the running server, or the local cluster started.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
DB="fleet_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB"
DATABASE_URL="${PG_URL%/*}/$DB"

# Redis of its own.
REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$REDIS_PORT"

# Three instances with one key, one database, one Redis; nginx is the only
# proxy they trust.
KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
export DATABASE_URL
export TESSERA__JWT__SIGNING_KEY="$KEY"
export TESSERA__JWT__ROTATE_REFRESH_TOKENS=true
export TESSERA__THROTTLE__BACKEND=redis
export TESSERA__THROTTLE__REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export TESSERA__THROTTLE__REDIS_REQUIRED=true
export TESSERA__SERVER__TRUSTED_PROXIES=127.0.0.1
# Each logged-out token is tried on all three instances: room for that in the
# per-user refresh budget, so that a refusal is a 401, not a 429.
export TESSERA__THROTTLE__REFRESH__USERNAME=1000/min
export TESSERA__PASSWORD__ARGON2_MEMORY_KIB="${FLEET_ARGON2_MEMORY_KIB:-19456}"
export TESSERA__LOG__LEVEL=warn
INSTANCE_PIDS=()
start_instance() {
    local i="$1"
    TESSERA__SERVER__PORT="${PORTS[$i]}" "$TESSERA_BIN" serve >>"$WORK/tessera-$i.log" 2>&1 &
    INSTANCE_PIDS[$i]=$!
    PIDS+=($!)
    # Killed on purpose below: no "Killed" line from the shell.
    disown $!
}
# The first migrates; the others find the schema ready.
start_instance 0
wait_port "${PORTS[0]}"
start_instance 1
start_instance 2
wait_port "${PORTS[1]}"
wait_port "${PORTS[2]}"

NGINX_PORT="$(free_port)"
cat >"$WORK/nginx.conf" <<CONF
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    upstream tessera {
        server 127.0.0.1:${PORTS[0]} max_fails=1 fail_timeout=2s;
        server 127.0.0.1:${PORTS[1]} max_fails=1 fail_timeout=2s;
        server 127.0.0.1:${PORTS[2]} max_fails=1 fail_timeout=2s;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://tessera;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$remote_addr;
            # A refused connection never reached the instance: try the next.
            proxy_next_upstream error timeout;
        }
    }
}
CONF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
wait_port "$NGINX_PORT"

# Instance 2 dies a third of the way in and comes back at two thirds.
(
    sleep "$(( DURATION / 3 ))"
    kill -9 "${INSTANCE_PIDS[1]}" 2>/dev/null && echo "fleet: instance 2 killed (SIGKILL) at $(( DURATION / 3 ))s" >&2
    sleep "$(( DURATION / 3 ))"
    TESSERA__SERVER__PORT="${PORTS[1]}" "$TESSERA_BIN" serve >>"$WORK/tessera-1.log" 2>&1 &
    echo $! >"$WORK/restarted.pid"
    echo "fleet: instance 2 started again at $(( 2 * DURATION / 3 ))s" >&2
) &
PIDS+=($!)

status=0
python3 scripts/fleet_load.py \
    --base "http://127.0.0.1:$NGINX_PORT" \
    --instances "http://127.0.0.1:${PORTS[0]},http://127.0.0.1:${PORTS[1]},http://127.0.0.1:${PORTS[2]}" \
    --duration "$DURATION" || status=$?
[ -f "$WORK/restarted.pid" ] && PIDS+=("$(cat "$WORK/restarted.pid")")

# What the instances say: their throttle decisions and Redis fallbacks.
for i in 0 1 2; do
    metrics="$(curl -s "http://127.0.0.1:${PORTS[$i]}/metrics" || true)"
    throttled="$(printf '%s\n' "$metrics" | awk '/^tessera_requests_throttled_total/ {s += $2} END {print s + 0}')"
    fallbacks="$(printf '%s\n' "$metrics" | awk '/^tessera_throttle_redis_fallbacks_total/ {print $2}')"
    echo "fleet: instance $((i + 1)): ${throttled} requests throttled (since its last start), ${fallbacks:-?} Redis fallbacks"
done
if grep -q "panicked" "$WORK"/tessera-*.log; then
    echo "fleet: an instance panicked:" >&2
    grep -h "panicked" "$WORK"/tessera-*.log >&2
    status=1
fi
exit "$status"
