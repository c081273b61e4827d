#!/usr/bin/env bash
# A local AWS stack for Berth: stand-ins for the services its cloud adapters use, and the `api` Lambda
# function in cargo-lambda's emulator on top of them.
#
#   moto (server mode)  S3 + DynamoDB + Streams emulator  http://127.0.0.1:${BERTH_MOTO_PORT:-5301}
#   s3s-fs 0.14.1       S3 on a directory, checks SigV4   http://127.0.0.1:${BERTH_S3SFS_PORT:-5302}
#   api function        cargo lambda watch (function URL) http://127.0.0.1:${BERTH_LAMBDA_PORT:-5303}/v2/
#
# The api function keeps blobs in s3s-fs (bucket `berth`) and the log in DynamoDB on moto (table
# `berth`): push to it with `skopeo copy ... docker://127.0.0.1:5303/repo:tag --dest-tls-verify=false`.
# Everything lives in the project-local, gitignored .venv/: the Python venv with moto and cargo-lambda,
# the s3s-fs binary (.venv/cargo/bin), s3s-fs's data (.venv/s3s-data), pid files and logs.
#
# Usage: scripts/local-stack.sh up|down|env
#   up    install what is missing, start the servers (unless already running), wait until they answer,
#         then print the environment as `export` lines. BERTH_STACK_API=0 leaves the api function out
#         (the test command does: its tests start emulators of their own).
#   down  stop everything
#   env   print the environment: eval "$(scripts/local-stack.sh env)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
MOTO_PORT="${BERTH_MOTO_PORT:-5301}"
S3SFS_PORT="${BERTH_S3SFS_PORT:-5302}"
LAMBDA_PORT="${BERTH_LAMBDA_PORT:-5303}"
CARGO_LAMBDA_VERSION="1.9.2"
S3SFS_VERSION="0.14.1"
S3SFS_BIN="$VENV/cargo/bin/s3s-fs"
S3SFS_DATA="$VENV/s3s-data"
# s3s-fs verifies SigV4 against exactly this key pair; moto accepts any.
ACCESS_KEY="${BERTH_LOCAL_ACCESS_KEY:-berthlocal}"
SECRET_KEY="${BERTH_LOCAL_SECRET_KEY:-berthlocalsecret}"
# How long a server may take to answer after it was started, in tenths of a second.
WAIT_TENTHS=300

MOTO_URL="http://127.0.0.1:$MOTO_PORT"
S3SFS_URL="http://127.0.0.1:$S3SFS_PORT"

log() { echo "local-stack: $*" >&2; }

install() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if [[ ! -x "$VENV/bin/moto_server" ]]; then
        log "installing moto[server]"
        "$VENV/bin/pip" install --quiet 'moto[server]==5.2.5' >&2
    fi
    if [[ ! -x "$VENV/bin/cargo-lambda" ]]; then
        log "installing cargo-lambda $CARGO_LAMBDA_VERSION (the Lambda emulator)"
        "$VENV/bin/pip" install --quiet "cargo-lambda==$CARGO_LAMBDA_VERSION" >&2
    fi
    if [[ ! -x "$S3SFS_BIN" ]]; then
        log "installing s3s-fs $S3SFS_VERSION (cargo install; takes a few minutes)"
        cargo install --locked s3s-fs --version "$S3SFS_VERSION" --features binary --root "$VENV/cargo" >&2 \
            || cargo install --locked s3s-fs --version "$S3SFS_VERSION" --root "$VENV/cargo" >&2
    fi
}

# running NAME: true when NAME's pid file names a live process.
running() {
    local pidfile="$VENV/$1.pid"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# wait_http NAME URL: waits until URL answers any HTTP status.
wait_http() {
    local name="$1" url="$2" i
    for ((i = 0; i < WAIT_TENTHS; i++)); do
        if curl -s -o /dev/null "$url"; then
            return 0
        fi
        if ! running "$name"; then
            log "$name exited; see $VENV/$name.log"
            tail -n 20 "$VENV/$name.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "$name did not answer on $url; see $VENV/$name.log"
    return 1
}

start() {
    if running moto; then
        log "moto already running (pid $(cat "$VENV/moto.pid"))"
    else
        log "starting moto on $MOTO_URL"
        # Serially: the threaded moto_server does not isolate DynamoDB transactions (see moto_serial.py).
        nohup "$VENV/bin/python" "$ROOT/scripts/moto_serial.py" 127.0.0.1 "$MOTO_PORT" >"$VENV/moto.log" 2>&1 &
        echo $! >"$VENV/moto.pid"
    fi
    if running s3s-fs; then
        log "s3s-fs already running (pid $(cat "$VENV/s3s-fs.pid"))"
    else
        log "starting s3s-fs on $S3SFS_URL (data in $S3SFS_DATA)"
        mkdir -p "$S3SFS_DATA"
        nohup "$S3SFS_BIN" --host 127.0.0.1 --port "$S3SFS_PORT" \
            --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
            "$S3SFS_DATA" >"$VENV/s3s-fs.log" 2>&1 &
        echo $! >"$VENV/s3s-fs.pid"
    fi
    wait_http moto "$MOTO_URL"
    wait_http s3s-fs "$S3SFS_URL"
    if [[ "${BERTH_STACK_API:-1}" != "0" ]]; then
        start_api
    fi
}

# The environment of Berth processes on the stack: blobs in s3s-fs, the log and views on moto.
berth_env() {
    cat <<EOF
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_ENDPOINT_URL_S3=$S3SFS_URL
AWS_ENDPOINT_URL_DYNAMODB=$MOTO_URL
BERTH_S3_BUCKET=berth
BERTH_DYNAMODB_TABLE=berth
EOF
}

start_api() {
    if running api; then
        log "the api function is already running (pid $(cat "$VENV/api.pid"))"
        return 0
    fi
    log "building berth and the api function"
    (cd "$ROOT" && cargo build --quiet -p berth -p berth-api >&2)
    berth_env >"$VENV/api.env"
    (set -a && . "$VENV/api.env" && "$ROOT/target/debug/berth" aws init >&2)
    log "starting the api function in cargo-lambda's emulator on http://127.0.0.1:$LAMBDA_PORT"
    (cd "$ROOT" && nohup "$VENV/bin/cargo-lambda" lambda watch --bin api --ignore-changes --disable-cors \
        --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --env-file "$VENV/api.env" \
        >"$VENV/api.log" 2>&1 &
        echo $! >"$VENV/api.pid")
    wait_http api "http://127.0.0.1:$LAMBDA_PORT/v2/"
}

stop() {
    local name pid
    for name in api moto s3s-fs; do
        if running "$name"; then
            pid="$(cat "$VENV/$name.pid")"
            log "stopping $name (pid $pid)"
            kill "$pid"
        fi
        rm -f "$VENV/$name.pid"
    done
}

print_env() {
    cat <<EOF
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_ENDPOINT_URL_S3=$MOTO_URL
export AWS_ENDPOINT_URL_DYNAMODB=$MOTO_URL
export BERTH_TEST_S3_MOTO_ENDPOINT=$MOTO_URL
export BERTH_TEST_S3_S3SFS_ENDPOINT=$S3SFS_URL
export BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID=$ACCESS_KEY
export BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY=$SECRET_KEY
export BERTH_CARGO_LAMBDA=$VENV/bin/cargo-lambda
export BERTH_LAMBDA_URL=http://127.0.0.1:$LAMBDA_PORT
EOF
}

case "${1:-}" in
up)
    install
    start
    print_env
    ;;
down) stop ;;
env) print_env ;;
*)
    echo "usage: $0 up|down|env" >&2
    exit 2
    ;;
esac
