#!/usr/bin/env bash
# Concurrent manifest writers (issue 13): W writers PUT small, distinct-tag OCI manifests into ONE
# repository, then into W repositories (one each), against Berth embedded, Berth on the local AWS
# stand-ins (`--storage aws`, moto + s3s-fs; BENCH_AWS=0 skips it) and distribution 2.8
# (docker-registry, filesystem driver) in the same run. Prints a table; the raw lines go to
# bench/out/writers.tsv. The client is tests/examples/writers.rs (one keep-alive connection per
# writer, the config blob uploaded beforehand, every PUT timed).
#
#   BENCH_WRITERS=16  BENCH_PUTS=2000  BENCH_RUNS=3 (the run with the median throughput is reported)
#   BENCH_AWS=1       also Berth on the local stack (scripts/local-stack.sh; started if not up)
#   BERTH_BIN, WRITERS_BIN, DISTRIBUTION_BIN   binaries to use instead of building/finding them
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/stand_ins.sh
. "$HERE/stand_ins.sh"
OUT=${BENCH_OUT:-$HERE/out}
WRITERS=${BENCH_WRITERS:-16}
PUTS=${BENCH_PUTS:-2000}
RUNS=${BENCH_RUNS:-3}
AWS=${BENCH_AWS:-1}
DISTRIBUTION_BIN=${DISTRIBUTION_BIN:-$(command -v docker-registry || true)}
PASSWORD=Bench-Admin-Password-1

log() { printf '[writers %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ -x "$DISTRIBUTION_BIN" ]] || die "docker-registry not found (scripts/install-deps.sh installs it)"
if [[ -z "${BERTH_BIN:-}" || -z "${WRITERS_BIN:-}" ]]; then
  log "building berth and the writers client (release)"
  # Two builds: `--example` would limit the first to the example.
  (cd "$ROOT" && cargo build --release --locked -p berth --bin berth &&
    cargo build --release --locked -p berth-e2e --example writers) || die "build failed"
fi
BERTH_BIN=${BERTH_BIN:-$ROOT/target/release/berth}
WRITERS_BIN=${WRITERS_BIN:-$ROOT/target/release/examples/writers}

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/berth-writers.XXXXXX)
SERVER_PID=""
STACK_STARTED=0
cleanup() {
  [[ -z "$SERVER_PID" ]] || { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
  stop_stand_ins
  rm -rf "$WORK"
}
trap cleanup EXIT

if ((AWS)); then
  use_stand_ins
fi

PORT=0
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME: an empty registry of that kind on a free port; sets SERVER_PID, PORT, AUTH.
SEQ=0
start() {
  local name=$1 data="$WORK/$1-$SEQ"
  SEQ=$((SEQ + 1))
  PORT=$(free_port)
  mkdir -p "$data"
  AUTH=""
  case "$name" in
    berth)
      BERTH_ADMIN_PASSWORD=$PASSWORD BERTH_LOG=warn "$BERTH_BIN" serve --listen "127.0.0.1:$PORT" \
        --data-dir "$data" >"$data.log" 2>&1 &
      AUTH="admin:$PASSWORD" ;;
    berth-aws)
      local name_aws="berth-writers-$$-$SEQ"
      BERTH_STORAGE=aws BERTH_S3_BUCKET=$name_aws BERTH_DYNAMODB_TABLE=$name_aws \
        "$BERTH_BIN" aws init >/dev/null 2>&1 || die "berth aws init failed"
      BERTH_STORAGE=aws BERTH_S3_BUCKET=$name_aws BERTH_DYNAMODB_TABLE=$name_aws \
        BERTH_ADMIN_PASSWORD=$PASSWORD BERTH_LOG=warn "$BERTH_BIN" serve --listen "127.0.0.1:$PORT" \
        >"$data.log" 2>&1 &
      AUTH="admin:$PASSWORD" ;;
    distribution)
      cat >"$data.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $data}, delete: {enabled: true}, cache: {blobdescriptor: inmemory}}
http: {addr: "127.0.0.1:$PORT", secret: berth-bench-not-a-secret}
EOF
      "$DISTRIBUTION_BIN" serve "$data.yml" >"$data.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$data.log" >&2; die "$name exited at start"; }
    curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && return 0
    sleep 0.1
  done
  die "$name did not answer within 30 s"
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

registries=(berth distribution)
((AWS)) && registries=(berth berth-aws distribution)
TSV="$OUT/writers.tsv"
: >"$TSV"
for shape in one each; do
  for name in "${registries[@]}"; do
    for run in $(seq 1 "$RUNS"); do
      start "$name"
      line=$("$WRITERS_BIN" "http://127.0.0.1:$PORT" "library/writers" "$WRITERS" "$PUTS" "$shape" $AUTH) ||
        die "$name $shape run $run failed"
      stop
      log "$name $shape run $run: $line"
      printf '%s\t%s\t%s\t%s\n' "$shape" "$name" "$run" "$line" >>"$TSV"
    done
  done
done

python3 - "$TSV" "$WRITERS" "$PUTS" <<'PY'
import json, sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
writers, puts = sys.argv[2], sys.argv[3]
print(f"\n{writers} writers, {puts} manifest PUTs per run, median run by throughput\n")
print("| repositories | registry | PUT/s | p50 ms | p90 ms | p99 ms | max ms | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for shape in ("one", "each"):
    for name in dict.fromkeys(r[1] for r in rows):
        runs = sorted((json.loads(r[3]) for r in rows if r[0] == shape and r[1] == name),
                      key=lambda j: j["per_second"])
        if not runs:
            continue
        m = runs[len(runs) // 2]
        label = "1" if shape == "one" else writers
        print(f"| {label} | {name} | {m['per_second']:.0f} | {m['p50_ms']:.1f} | {m['p90_ms']:.1f} | "
              f"{m['p99_ms']:.1f} | {m['max_ms']:.1f} | {sum(j['errors'] for j in runs)} |")
PY
