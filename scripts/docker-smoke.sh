#!/usr/bin/env bash
# Builds the image, runs it, registers, logs in and refreshes through it,
# checks Docker's HEALTHCHECK and a clean stop, and reports image size and
# build time. Needs a Docker engine (../shared/docker/local-engine.sh start).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-tessera:smoke}
PORT=${PORT:-18080}
NAME=tessera-smoke-$$
VOLUME=tessera-smoke-$$

if ! docker version >/dev/null 2>&1; then
    if [ -x ../shared/docker/local-engine.sh ] || [ -f ../shared/docker/local-engine.sh ]; then
        bash ../shared/docker/local-engine.sh start
    else
        echo "no Docker engine and no ../shared/docker/local-engine.sh" >&2
        exit 1
    fi
fi

cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker volume rm "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== building $IMAGE"
start=$(date +%s)
docker build --network host -t "$IMAGE" .
build_s=$(( $(date +%s) - start ))
size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
echo "build time: ${build_s}s; image size: $(( size / 1024 / 1024 )) MiB"

echo "== running"
docker run -d --name "$NAME" --network host -v "$VOLUME:/data" \
    -e TESSERA__SERVER__PORT="$PORT" "$IMAGE" >/dev/null
BASE=http://127.0.0.1:$PORT
for _ in $(seq 1 60); do
    curl -sf "$BASE/healthz" >/dev/null && break
    sleep 0.5
done
curl -sf "$BASE/healthz" >/dev/null || { docker logs "$NAME"; echo "never answered" >&2; exit 1; }
user=$(docker exec "$NAME" id -u)
[ "$user" != 0 ] || { echo "runs as root" >&2; exit 1; }

expect() { # expect STATUS CURL-ARGS...: runs curl, checks the status, prints the body
    local want=$1; shift
    local out; out=$(curl -s -w '\n%{http_code}' "$@")
    local code=${out##*$'\n'}
    if [ "$code" != "$want" ]; then echo "expected $want, got $code: ${out%$'\n'*}" >&2; exit 1; fi
    printf '%s' "${out%$'\n'*}"
}
expect 201 -X POST "$BASE/api/v1/auth/users/" -F username=smoke -F password=Tr0ub4dor_3xyz >/dev/null
pair=$(expect 200 -X POST "$BASE/api/token/" -F username=smoke -F password=Tr0ub4dor_3xyz)
refresh=$(printf '%s' "$pair" | sed -E 's/.*"refresh":"([^"]+)".*/\1/')
access=$(printf '%s' "$pair" | sed -E 's/.*"access":"([^"]+)".*/\1/')
expect 200 "$BASE/api/v1/auth/users/me/" -H "Authorization: Bearer $access" >/dev/null
expect 200 -X POST "$BASE/api/token/refresh/" -d "refresh=$refresh" >/dev/null
echo "register, login, me and refresh answered through the container"

echo "== waiting for Docker's HEALTHCHECK"
for _ in $(seq 1 40); do
    status=$(docker inspect "$NAME" --format '{{.State.Health.Status}}')
    [ "$status" = healthy ] && break
    sleep 1
done
[ "$status" = healthy ] || { echo "health status: $status" >&2; exit 1; }
echo "health: $status"

echo "== data survives a restart (volume) and the stop is clean"
docker stop -t 30 "$NAME" >/dev/null
code=$(docker inspect "$NAME" --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || { docker logs "$NAME" | tail -20; echo "exit code $code" >&2; exit 1; }
docker start "$NAME" >/dev/null
for _ in $(seq 1 60); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.5; done
expect 200 "$BASE/api/v1/auth/users/me/" -H "Authorization: Bearer $access" >/dev/null
echo "the token from before the restart still verifies (key kept in the volume)"
echo "docker smoke test passed: build ${build_s}s, image $(( size / 1024 / 1024 )) MiB"
