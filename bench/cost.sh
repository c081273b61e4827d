#!/usr/bin/env bash
# AWS requests and dollars per registry operation (issue 13): starts a release `berth serve
# --storage aws --metrics-listen` on the local AWS stand-ins (moto for DynamoDB, s3s-fs for S3; the
# stack is started if it is not up), then bench/cost.py measures each operation from /metrics
# before and after, BENCH_REPEAT times. Prints a markdown table and writes it to bench/out/cost.md.
#
#   BENCH_REPEAT=5      repetitions per operation (the mean is reported)
#   BENCH_LAYER_KIB=1024  size of each of the push's three layers
#   BERTH_BIN           the berth binary to use instead of building it (release)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/stand_ins.sh
. "$HERE/stand_ins.sh"
OUT=${BENCH_OUT:-$HERE/out}
REPEAT=${BENCH_REPEAT:-5}
export BERTH_ADMIN_PASSWORD=Bench-Admin-Password-1

log() { printf '[cost %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if [[ -z "${BERTH_BIN:-}" ]]; then
  log "building berth (release)"
  (cd "$ROOT" && cargo build --release --locked -p berth --bin berth) || die "build failed"
fi
BERTH_BIN=$(realpath "${BERTH_BIN:-$ROOT/target/release/berth}")

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/berth-cost.XXXXXX)
SERVER_PID=""
STACK_STARTED=0
NAME="berth-cost-$$"
cleanup() {
  [[ -z "$SERVER_PID" ]] || { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
  "$ROOT/.venv/bin/python" "$HERE/aws_util.py" drop "$NAME" "$NAME" 2>/dev/null || true
  stop_stand_ins
  rm -rf "$WORK"
}
trap cleanup EXIT

use_stand_ins
export BERTH_STORAGE=aws BERTH_S3_BUCKET=$NAME BERTH_DYNAMODB_TABLE=$NAME

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
METRICS_PORT=$(free_port)
"$BERTH_BIN" aws init >/dev/null 2>&1 || die "berth aws init failed"
BERTH_LOG=warn "$BERTH_BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "berth serve exited at start"; }
  curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && break
  sleep 0.1
done
log "berth serve --storage aws on 127.0.0.1:$PORT, metrics on 127.0.0.1:$METRICS_PORT"

python3 "$HERE/cost.py" --registry "127.0.0.1:$PORT" --metrics "http://127.0.0.1:$METRICS_PORT/metrics" \
  --berth "$BERTH_BIN" --repeat "$REPEAT" --out "$OUT/cost.md" || {
  tail -n 30 "$WORK/server.log" >&2
  die "cost.py failed"
}
