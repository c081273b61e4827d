#!/usr/bin/env bash
# Berth (embedded, and on the local AWS stack) vs. distribution (docker-registry 2.8) on this
# machine: push, pull, manifest HEAD/GET; then the api Lambda function's size and cold start.
# See bench/README.md. Environment knobs:
#   BENCH_RUNS=3          push/pull repetitions per registry (the median is reported)
#   BENCH_DURATION=10s    length of each measured load run (HEAD with oha, GET with wrk)
#   BENCH_WARMUP=3s       length of the warm-up run before each (not measured)
#   BENCH_CONNECTIONS=32  concurrent connections;  BENCH_THREADS=2  wrk threads
#   BENCH_LAYERS=8  BENCH_LAYER_MIB=64   image shape (8 x 64 MiB = 512 MiB)
#   BENCH_ONLY=berth|berth-aws|distribution|lambda   one registry only (no Lambda figures), or
#                         the Lambda figures only
#   BENCH_LAMBDA=0        skip the Lambda figures (api binary size, cold starts)
#   BENCH_COLD_STARTS=10  cold starts of the api function (median and max are reported)
#   BERTH_BIN=path        use this berth binary instead of building target/release/berth
#   API_BIN=path          use this api binary instead of building target/release/api
#   DISTRIBUTION_BIN=path docker-registry binary (default: docker-registry on PATH)
#   OHA_BIN=path          oha binary (default: oha on PATH, else bench/out/tools/bin/oha, else
#                         cargo install --locked oha into bench/out/tools)
#   BENCH_WORKDIR=dir     parent of the temporary work dir (default: $TMPDIR or /tmp)
#   BENCH_KEEP=1          keep the work dir (image, data dirs, logs) at exit
#   BENCH_OUT=dir         where results go (default: bench/out)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${BENCH_OUT:-$HERE/out}
TOOLS="$HERE/out/tools"

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
LAYERS=${BENCH_LAYERS:-8}
LAYER_MIB=${BENCH_LAYER_MIB:-64}
ONLY=${BENCH_ONLY:-}
COLD_STARTS=${BENCH_COLD_STARTS:-10}
DISTRIBUTION_BIN=${DISTRIBUTION_BIN:-$(command -v docker-registry || true)}
REPO=bench/big
TAG=1
MANIFEST_TYPE=application/vnd.oci.image.manifest.v1+json

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

LAMBDA=${BENCH_LAMBDA:-1}
case "$ONLY" in
  "") REGISTRIES=(berth berth-aws distribution) ;;
  berth | berth-aws | distribution) REGISTRIES=("$ONLY") LAMBDA=0 ;;
  lambda) REGISTRIES=() LAMBDA=1 ;;
  *) die "BENCH_ONLY must be berth, berth-aws, distribution or lambda, not '$ONLY'" ;;
esac
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ "$COLD_STARTS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_COLD_STARTS must be a positive integer"
[[ "$LAMBDA" == 0 || "$LAMBDA" == 1 ]] || die "BENCH_LAMBDA must be 0 or 1"
# has NAME: NAME is one of the registries measured in this run.
has() { [[ " ${REGISTRIES[*]} " == *" $1 "* ]]; }
NEED_STACK=0
if has berth-aws || ((LAMBDA)); then NEED_STACK=1; fi

tools=(curl jq python3)
if ((${#REGISTRIES[@]})); then tools+=(skopeo wrk); fi
if ((LAMBDA)); then tools+=(strip); fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is not installed (see scripts/install-deps.sh)"
done

# ---------------------------------------------------------------- work dir and cleanup
mkdir -p "$OUT"
WORK=$(mktemp -d "${BENCH_WORKDIR:-${TMPDIR:-/tmp}}/berth-bench.XXXXXX")
SERVER_PID=""
EMULATOR_PID=""
AWS_TARGETS=() # "bucket table" pairs created on the local stack and not dropped yet
cleanup() {
  local rc=$? pid t
  for pid in "$SERVER_PID" "$EMULATOR_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  for t in "${AWS_TARGETS[@]}"; do
    # shellcheck disable=SC2086 # "bucket table"
    aws_drop $t || true
  done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/logs"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
record() { # registry metric run value
  [[ -n "$4" ]] || die "$1: no value for $2 (run $3)"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# ---------------------------------------------------------------- binaries
# berth serves both Berth configurations and creates the AWS bucket and table (`berth aws init`),
# also for the Lambda cold starts; api is the Lambda function. One cargo build for what is missing.
NEED_BERTH=0
if has berth || ((NEED_STACK)); then NEED_BERTH=1; fi
packages=()
if ((NEED_BERTH)); then
  if [[ -n "${BERTH_BIN:-}" ]]; then log "using BERTH_BIN=$BERTH_BIN"; else packages+=(-p berth); fi
fi
if ((LAMBDA)); then
  if [[ -n "${API_BIN:-}" ]]; then log "using API_BIN=$API_BIN"; else packages+=(-p berth-api); fi
fi
if ((${#packages[@]})); then
  log "building (cargo build --release ${packages[*]})"
  (cd "$ROOT" && cargo build --release "${packages[@]}") || die "cargo build --release ${packages[*]} failed"
fi
if ((NEED_BERTH)); then
  BERTH_BIN=${BERTH_BIN:-$ROOT/target/release/berth}
  [[ -x "$BERTH_BIN" ]] || die "berth binary not found: $BERTH_BIN"
fi
if ((LAMBDA)); then
  API_BIN=${API_BIN:-$ROOT/target/release/api}
  [[ -x "$API_BIN" ]] || die "api binary not found: $API_BIN"
fi
if has distribution; then
  [[ -n "$DISTRIBUTION_BIN" && -x "$DISTRIBUTION_BIN" ]] || die "docker-registry not found (apt-get install docker-registry)"
fi

# oha measures the HEAD load: wrk 4.1's parser waits for a body after a HEAD answer that carries
# Content-Length (as manifest HEADs must), so it completes no request. Built once from crates.io.
OHA_VERSION=1.16.0
OHA=""
if ((${#REGISTRIES[@]})); then
  OHA=${OHA_BIN:-$(command -v oha || true)}
  if [[ -z "$OHA" && -x "$TOOLS/bin/oha" ]]; then OHA="$TOOLS/bin/oha"; fi
  if [[ -z "$OHA" ]]; then
    log "oha not found: cargo install --locked oha@$OHA_VERSION into $TOOLS (about 8 minutes on 2 cores, once)"
    cargo install --locked --quiet "oha@$OHA_VERSION" --root "$TOOLS" || die "cannot install oha"
    OHA="$TOOLS/bin/oha"
  fi
  [[ -x "$OHA" ]] || die "oha not executable: $OHA"
fi

# ---------------------------------------------------------------- the local AWS stack
# berth-aws and the Lambda cold starts run on scripts/local-stack.sh's stand-ins: s3s-fs (S3 on a
# local directory, checks SigV4) for blobs, moto (a Python emulator, serving one request at a time)
# for DynamoDB. They are shared with whoever else uses the stack on this machine.
STACK_DIR="$ROOT/.venv"
STACK_PY="$STACK_DIR/bin/python"
CARGO_LAMBDA="$STACK_DIR/bin/cargo-lambda"
AWS_ENV=()
STANDIN_PIDS=()
if ((NEED_STACK)); then
  log "starting the local AWS stack if it is not running (BERTH_STACK_API=0 scripts/local-stack.sh up)"
  STACK_ENV=$(cd "$ROOT" && BERTH_STACK_API=0 bash scripts/local-stack.sh up 2>"$WORK/logs/local-stack.log") ||
    { cat "$WORK/logs/local-stack.log" >&2; die "scripts/local-stack.sh up failed"; }
  stack_var() {
    local v
    v=$(sed -n "s/^export $1=//p" <<<"$STACK_ENV" | tail -1)
    [[ -n "$v" ]] || die "scripts/local-stack.sh up printed no $1"
    printf '%s' "$v"
  }
  # Blobs in s3s-fs, the log and views in DynamoDB on moto (the stack's own AWS_ENDPOINT_URL_S3
  # points at moto's S3; Berth's AWS configuration keeps blobs in s3s-fs, as the api function does).
  AWS_ENV=(
    AWS_REGION=us-east-1
    "AWS_ENDPOINT_URL_S3=$(stack_var BERTH_TEST_S3_S3SFS_ENDPOINT)"
    "AWS_ACCESS_KEY_ID=$(stack_var BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID)"
    "AWS_SECRET_ACCESS_KEY=$(stack_var BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY)"
    "AWS_ENDPOINT_URL_DYNAMODB=$(stack_var AWS_ENDPOINT_URL_DYNAMODB)"
  )
  [[ -x "$STACK_PY" ]] || die "no $STACK_PY after scripts/local-stack.sh up"
  for f in moto s3s-fs; do
    pid=$(cat "$STACK_DIR/$f.pid" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      STANDIN_PIDS+=("$pid")
    else
      die "$f is not running after scripts/local-stack.sh up (no live pid in $STACK_DIR/$f.pid)"
    fi
  done
fi

# aws_init BUCKET TABLE: creates them on the local stack (berth aws init); dropped at exit at the latest.
aws_init() {
  env "${AWS_ENV[@]}" BERTH_S3_BUCKET="$1" BERTH_DYNAMODB_TABLE="$2" "$BERTH_BIN" aws init \
    >>"$WORK/logs/aws-init.log" 2>&1 || { cat "$WORK/logs/aws-init.log" >&2; die "berth aws init ($1, $2) failed"; }
  AWS_TARGETS+=("$1 $2")
}

# aws_drop BUCKET TABLE: deletes the bucket's objects, the bucket and the table (frees s3s-fs's disk
# and moto's memory). A failure is a warning: the figures are already taken.
aws_drop() {
  local t kept=()
  env "${AWS_ENV[@]}" "$STACK_PY" "$HERE/aws_util.py" drop "$1" "$2" >>"$WORK/logs/aws-drop.log" 2>&1 ||
    log "warning: could not drop bucket $1 / table $2 on the local stack (see $WORK/logs/aws-drop.log)"
  for t in "${AWS_TARGETS[@]}"; do [[ "$t" == "$1 $2" ]] || kept+=("$t"); done
  AWS_TARGETS=("${kept[@]}")
}

# standin_ticks: CPU clock ticks moto and s3s-fs have used so far (0 without the stack).
standin_ticks() {
  local t=0 p
  for p in "${STANDIN_PIDS[@]}"; do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}

# ---------------------------------------------------------------- machine facts
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
FACTS="$WORK/facts.txt"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpus (nproc): $(nproc)"
  echo "cpu model: ${CPU_MODEL:-unknown}"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -srm)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine share its $(nproc) CPUs)"
  echo "work dir file system: $(df -PT "$WORK" | awk 'NR==2 {print $1" ("$2")"}')"
  if [[ -n "${BERTH_BIN:-}" ]]; then
    echo "berth: $("$BERTH_BIN" --version 2>&1 | head -1) ($BERTH_BIN)"
    echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
  fi
  if has distribution; then
    echo "distribution: $("$DISTRIBUTION_BIN" --version 2>&1 | head -1)"
  fi
  if ((NEED_STACK)); then
    echo "local AWS stack (stand-ins, shared with other users of the stack): S3 = s3s-fs $("$STACK_DIR/cargo/bin/s3s-fs" --version 2>/dev/null | awk '{print $2}') at ${AWS_ENV[1]#*=} (data on $(df -PT "$STACK_DIR" | awk 'NR==2 {print $1" ("$2")"}')), DynamoDB = moto $("$STACK_PY" -c 'import moto; print(moto.__version__)' 2>/dev/null) (serial) at ${AWS_ENV[4]#*=}"
  fi
  if ((${#REGISTRIES[@]})); then
    echo "skopeo: $(skopeo --version 2>&1 | head -1)"
    echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $1" "$2}')"
    echo "oha: $("$OHA" --version 2>&1 | head -1)"
    echo "image: $LAYERS layers x $LAYER_MIB MiB of random bytes (uncompressed tar)"
    echo "runs: $RUNS (push/pull median); load: $CONNECTIONS connections for $DURATION after a $WARMUP warm-up (HEAD: oha, GET: wrk -t$THREADS)"
  fi
} >"$FACTS"

# ---------------------------------------------------------------- the image, once
IMAGE="$WORK/image"
if ((${#REGISTRIES[@]})); then
  log "generating the image ($LAYERS x $LAYER_MIB MiB) in $IMAGE"
  DIGEST=$(python3 "$HERE/gen_image.py" "$IMAGE" "$LAYERS" "$LAYER_MIB" bench)
  IMAGE_BYTES=$(jq '[.layers[].size, .config.size] | add' "$IMAGE/blobs/sha256/${DIGEST#sha256:}")
  IMAGE_MIB=$(awk -v b="$IMAGE_BYTES" 'BEGIN {printf "%.1f", b / 1048576}')
  log "image manifest $DIGEST, $IMAGE_BYTES bytes of blobs ($IMAGE_MIB MiB)"
  echo "image manifest: $DIGEST ($IMAGE_BYTES bytes in blobs)" >>"$FACTS"
fi

# ---------------------------------------------------------------- servers
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cpu_ticks PID: user+system clock ticks the process (all its threads) has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# start_server NAME DATA_DIR PORT LOG: starts the registry with an empty DATA_DIR (berth-aws: a
# new, empty bucket and table, named in AWS_BUCKET and AWS_TABLE); sets SERVER_PID.
SERVER_SEQ=0
start_server() {
  local name=$1 data=$2 port=$3 logf=$4
  rm -rf "$data"
  mkdir -p "$data"
  case "$name" in
    berth)
      BERTH_LOG=warn "$BERTH_BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$logf" 2>&1 &
      ;;
    berth-aws)
      # A bucket and a table of its own per start: every push uploads every blob, as on the others.
      SERVER_SEQ=$((SERVER_SEQ + 1))
      AWS_BUCKET="berth-bench-$$-$SERVER_SEQ"
      AWS_TABLE="$AWS_BUCKET"
      aws_init "$AWS_BUCKET" "$AWS_TABLE"
      env "${AWS_ENV[@]}" BERTH_STORAGE=aws BERTH_S3_BUCKET="$AWS_BUCKET" BERTH_DYNAMODB_TABLE="$AWS_TABLE" \
        BERTH_LOG=warn "$BERTH_BIN" serve --listen "127.0.0.1:$port" >"$logf" 2>&1 &
      ;;
    distribution)
      # Filesystem storage, deletes enabled, warnings only, no per-request access log (berth logs
      # nothing per request at warn either), in-memory blob descriptor cache as in Debian's
      # packaged config.yml. No auth.
      cat >"$data.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: berth-bench-not-a-secret
EOF
      "$DISTRIBUTION_BIN" serve "$data.yml" >"$logf" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  local i
  for i in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$logf" >&2; die "$name exited at start"; }
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)" == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not answer GET /v2/ with 200 within 30 s"
}

stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

# stored_bytes NAME DATA: bytes the registry holds after a push (berth-aws: objects under blobs/ in
# its bucket, listed through the S3 API).
stored_bytes() {
  if [[ "$1" == berth-aws ]]; then
    env "${AWS_ENV[@]}" "$STACK_PY" "$HERE/aws_util.py" bucket-bytes "$AWS_BUCKET" blobs/ ||
      die "$1: cannot list bucket $AWS_BUCKET"
  else
    du -sb "$2" | cut -f1
  fi
}

# cpu_s T0 T1: clock ticks to CPU seconds.
cpu_s() { awk -v t=$(($2 - $1)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}'; }
# cpu_ms_per T0 T1 N: clock ticks to CPU milliseconds per request, over N requests.
cpu_ms_per() { awk -v t=$(($2 - $1)) -v h="$CLK_TCK" -v n="$3" 'BEGIN {printf "%.4f", (n > 0 ? t / h * 1000 / n : 0)}'; }

# record_standin NAME METRIC RUN S0 S1: for berth-aws, the CPU moto and s3s-fs used meanwhile.
record_standin() {
  if [[ "$1" == berth-aws ]]; then record "$1" "$2" "$3" "$(cpu_s "$4" "$5")"; fi
}

# ---------------------------------------------------------------- measurements
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

# push NAME RUN PORT DATA
push() {
  local name=$1 run=$2 port=$3 data=$4 outf="$WORK/logs/$1-push-$2.log"
  sync
  local c0 t0 t1 c1 s0 s1
  c0=$(cpu_ticks "$SERVER_PID")
  s0=$(standin_ticks)
  t0=$EPOCHREALTIME
  skopeo copy --preserve-digests --dest-tls-verify=false \
    "oci:$IMAGE:bench" "docker://127.0.0.1:$port/$REPO:$TAG" >"$outf" 2>&1 ||
    { cat "$outf" >&2; die "$name: push failed"; }
  t1=$EPOCHREALTIME
  c1=$(cpu_ticks "$SERVER_PID")
  s1=$(standin_ticks)
  if grep -qi 'skipped' "$outf"; then
    cat "$outf" >&2
    die "$name: skopeo skipped blobs on a fresh registry; the push would not be measured"
  fi
  local secs stored
  secs=$(elapsed "$t0" "$t1")
  stored=$(stored_bytes "$name" "$data")
  ((stored >= IMAGE_BYTES)) || die "$name: the store holds $stored bytes after the push, less than the image ($IMAGE_BYTES)"
  record "$name" push_s "$run" "$secs"
  record "$name" push_mibs "$run" "$(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.2f", b / 1048576 / s}')"
  record "$name" push_cpu_s "$run" "$(cpu_s "$c0" "$c1")"
  record_standin "$name" push_standin_cpu_s "$run" "$s0" "$s1"
  log "$name run $run: push ${secs}s ($(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.1f", b / 1048576 / s}') MiB/s), server CPU $(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')s"
}

# raw_upload NAME RUN PORT: one 256 MiB blob as POST + a single PUT with curl, then a GET of it to
# /dev/null: the server's own ingest and serving rates, without skopeo's client-side work in the way.
# The GET follows redirects (curl -L): berth-aws answers 307 to a presigned s3s-fs URL.
raw_upload() {
  local name=$1 run=$2 port=$3 location t0 t1 secs code
  sync
  location=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$port/v2/bench/raw-$run/blobs/uploads/" |
    awk 'tolower($1) == "location:" {print $2}' | tr -d '\r')
  [ -n "$location" ] || die "$name: upload POST gave no Location"
  case "$location" in http*) ;; *) location="http://127.0.0.1:$port$location" ;; esac
  case "$location" in *\?*) location="$location&digest=$RAW_DIGEST" ;; *) location="$location?digest=$RAW_DIGEST" ;; esac
  t0=$EPOCHREALTIME
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$RAW_BLOB" "$location")
  t1=$EPOCHREALTIME
  [ "$code" = 201 ] || die "$name: raw upload answered $code"
  secs=$(elapsed "$t0" "$t1")
  record "$name" raw_upload_mibs "$run" "$(awk -v s="$secs" 'BEGIN {printf "%.2f", 256 / s}')"
  log "$name run $run: raw 256 MiB upload ${secs}s"
  t0=$EPOCHREALTIME
  code=$(curl -s -L -o /dev/null -w '%{http_code} %{num_redirects} %{size_download}' \
    "http://127.0.0.1:$port/v2/bench/raw-$run/blobs/$RAW_DIGEST")
  t1=$EPOCHREALTIME
  [ "${code%% *}" = 200 ] || die "$name: raw download answered ${code%% *}"
  [ "${code##* }" = $((256 * 1048576)) ] || die "$name: raw download returned ${code##* } bytes, not 256 MiB"
  secs=$(elapsed "$t0" "$t1")
  record "$name" raw_download_mibs "$run" "$(awk -v s="$secs" 'BEGIN {printf "%.2f", 256 / s}')"
  log "$name run $run: raw 256 MiB download ${secs}s ($(cut -d' ' -f2 <<<"$code") redirects)"
}

# check_head NAME PORT: the manifest HEAD must answer 200 with the pushed digest.
check_head() {
  local name=$1 port=$2 hdrs
  hdrs=$(curl -s -o /dev/null -D - -I -H "Accept: $MANIFEST_TYPE" \
    "http://127.0.0.1:$port/v2/$REPO/manifests/$TAG" | tr -d '\r')
  local status got
  status=$(head -1 <<<"$hdrs" | awk '{print $2}')
  got=$(awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}' <<<"$hdrs")
  [[ "$status" == 200 ]] || { echo "$hdrs" >&2; die "$name: HEAD manifest answered $status, not 200"; }
  [[ "$got" == "$DIGEST" ]] || { echo "$hdrs" >&2; die "$name: Docker-Content-Digest '$got' is not the pushed $DIGEST"; }
}

# pull NAME RUN PORT
pull() {
  local name=$1 run=$2 port=$3 dest="$WORK/pulled" outf="$WORK/logs/$1-pull-$2.log"
  rm -rf "$dest"
  sync
  local c0 t0 t1 c1 s0 s1
  c0=$(cpu_ticks "$SERVER_PID")
  s0=$(standin_ticks)
  t0=$EPOCHREALTIME
  skopeo copy --preserve-digests --src-tls-verify=false \
    "docker://127.0.0.1:$port/$REPO:$TAG" "oci:$dest:x" >"$outf" 2>&1 ||
    { cat "$outf" >&2; die "$name: pull failed"; }
  t1=$EPOCHREALTIME
  c1=$(cpu_ticks "$SERVER_PID")
  s1=$(standin_ticks)
  local got
  got=$(jq -r '.manifests[0].digest' "$dest/index.json")
  [[ "$got" == "$DIGEST" ]] || die "$name: pulled manifest digest $got is not the pushed $DIGEST"
  local secs
  secs=$(elapsed "$t0" "$t1")
  record "$name" pull_s "$run" "$secs"
  record "$name" pull_mibs "$run" "$(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.2f", b / 1048576 / s}')"
  record "$name" pull_cpu_s "$run" "$(cpu_s "$c0" "$c1")"
  record_standin "$name" pull_standin_cpu_s "$run" "$s0" "$s1"
  log "$name run $run: pull ${secs}s ($(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.1f", b / 1048576 / s}') MiB/s), server CPU $(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')s"
  rm -rf "$dest"
}

# to_ms VALUE_WITH_UNIT: wrk's "1.23ms" / "456.78us" / "1.02s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { exit 1 }
  }'
}

# load_head NAME PORT: manifest HEAD by tag under load, with oha (wrk cannot parse HEAD answers).
load_head() {
  local name=$1 port=$2 url="http://127.0.0.1:$port/v2/$REPO/manifests/$TAG"
  local outf="$OUT/oha-head-$name.json" warm="$WORK/logs/$name-oha-warmup.json"
  check_head "$name" "$port"
  log "$name: HEAD warm-up $WARMUP (oha)"
  "$OHA" -z "$WARMUP" -w -c "$CONNECTIONS" -m HEAD -H "Accept: $MANIFEST_TYPE" --no-tui \
    --output-format json "$url" >"$warm" 2>&1 || { cat "$warm" >&2; die "$name: oha warm-up failed"; }
  oha_check "$name" "$warm"
  log "$name: HEAD oha -c$CONNECTIONS -z$DURATION"
  local c0 c1 s0 s1
  c0=$(cpu_ticks "$SERVER_PID")
  s0=$(standin_ticks)
  "$OHA" -z "$DURATION" -w -c "$CONNECTIONS" -m HEAD -H "Accept: $MANIFEST_TYPE" --no-tui \
    --output-format json "$url" >"$outf" 2>&1 || { cat "$outf" >&2; die "$name: oha failed"; }
  c1=$(cpu_ticks "$SERVER_PID")
  s1=$(standin_ticks)
  oha_check "$name" "$outf"
  local rps p50 p99 n
  rps=$(jq '.summary.requestsPerSec' "$outf")
  p50=$(jq '.latencyPercentiles.p50 * 1000' "$outf")
  p99=$(jq '.latencyPercentiles.p99 * 1000' "$outf")
  n=$(jq '.statusCodeDistribution["200"]' "$outf")
  record "$name" head_rps 1 "$rps"
  record "$name" head_p50_ms 1 "$p50"
  record "$name" head_p99_ms 1 "$p99"
  record "$name" head_cpu_s 1 "$(cpu_s "$c0" "$c1")"
  record "$name" head_cpu_ms_per_req 1 "$(cpu_ms_per "$c0" "$c1" "$n")"
  record_standin "$name" head_standin_cpu_s 1 "$s0" "$s1"
  log "$name: HEAD $(printf '%.0f' "$rps") req/s ($n answers, all 200), p50 $(printf '%.3f' "$p50") ms, p99 $(printf '%.3f' "$p99") ms"
  # The load must not leave the server in a state where the check fails (e.g. fallen over).
  check_head "$name" "$port"
}

# oha_check NAME JSON: every answer was a 200 and no request failed.
oha_check() {
  local name=$1 f=$2 codes errors
  codes=$(jq -c '.statusCodeDistribution' "$f" 2>/dev/null) || { cat "$f" >&2; die "$name: cannot parse oha's output"; }
  errors=$(jq -c '.errorDistribution' "$f")
  if [[ "$(jq '.statusCodeDistribution | keys == ["200"]' "$f")" != true ]]; then
    die "$name: HEAD answers under load were not all 200: $codes (errors: $errors); refusing to report them as throughput"
  fi
  [[ "$errors" == "{}" ]] || die "$name: oha saw failed requests: $errors"
}

# wrk_check NAME FILE: wrk counted no non-2xx/3xx answer.
wrk_check() {
  local non2xx
  non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$2")
  if [[ -n "$non2xx" && "$non2xx" != 0 ]]; then
    cat "$2" >&2
    die "$1: $non2xx non-2xx/3xx answers under load; refusing to report them as throughput"
  fi
}

# load_get NAME PORT: manifest GET by tag under load, with wrk.
load_get() {
  local name=$1 port=$2 url="http://127.0.0.1:$port/v2/$REPO/manifests/$TAG"
  local outf="$OUT/wrk-get-$name.txt" warm="$WORK/logs/$name-wrk-warmup.txt"
  log "$name: GET warm-up $WARMUP (wrk)"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$HERE/manifest-get.lua" "$url" >"$warm" 2>&1 ||
    { cat "$warm" >&2; die "$name: wrk warm-up failed"; }
  wrk_check "$name" "$warm"
  log "$name: GET wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
  local c0 c1 s0 s1
  c0=$(cpu_ticks "$SERVER_PID")
  s0=$(standin_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/manifest-get.lua" "$url" >"$outf" 2>&1 ||
    { cat "$outf" >&2; die "$name: wrk failed"; }
  c1=$(cpu_ticks "$SERVER_PID")
  s1=$(standin_ticks)
  wrk_check "$name" "$outf"
  local rps p50 p99 errors n
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$outf")
  n=$(awk '/ requests in / {print $1}' "$outf")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$outf")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$outf")")
  errors=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$outf")
  [[ -n "$rps" && -n "$p50" && -n "$p99" && -n "$n" ]] || { cat "$outf" >&2; die "$name: cannot parse wrk's output"; }
  [[ "$rps" != 0.00 ]] || { cat "$outf" >&2; die "$name: wrk completed no request"; }
  record "$name" get_rps 1 "$rps"
  record "$name" get_p50_ms 1 "$p50"
  record "$name" get_p99_ms 1 "$p99"
  record "$name" get_errors 1 "${errors:-0}"
  record "$name" get_cpu_s 1 "$(cpu_s "$c0" "$c1")"
  record "$name" get_cpu_ms_per_req 1 "$(cpu_ms_per "$c0" "$c1" "$n")"
  record_standin "$name" get_standin_cpu_s 1 "$s0" "$s1"
  log "$name: GET $rps req/s, p50 $p50 ms, p99 $p99 ms, socket errors ${errors:-0}"
}

# ---------------------------------------------------------------- the runs
# Each run starts every registry afresh on an empty store (so every blob is really uploaded), one
# registry at a time, rotating the order across runs (ABC, BCA, CAB; ABBA with two) so none always
# goes first. The embedded data dirs live in $WORK: same disk, same file system; berth-aws's blobs
# are in s3s-fs's directory (the facts say which file system). The HEAD/GET loads are made in the
# last run, on the registry that was just pushed to and pulled from.
run_registries() {
  # skopeo's own cost: the same copy to a local layout, no registry involved. No push through
  # skopeo can be faster than this, whatever the server does.
  RAW_BLOB="$WORK/raw-blob"
  head -c $((256 * 1048576)) /dev/urandom >"$RAW_BLOB"
  RAW_DIGEST="sha256:$(sha256sum "$RAW_BLOB" | cut -d' ' -f1)"
  local floor_dir="$WORK/floor" t0 t1 run i n=${#REGISTRIES[@]} order name port data
  sync
  t0=$EPOCHREALTIME
  skopeo copy -q --preserve-digests "oci:$IMAGE:bench" "oci:$floor_dir:x" || die "skopeo oci->oci copy failed"
  t1=$EPOCHREALTIME
  rm -rf "$floor_dir"
  echo "skopeo's own oci->oci copy of the image (floor for any push): $(elapsed "$t0" "$t1")s" >>"$FACTS"
  log "skopeo floor: oci->oci copy in $(elapsed "$t0" "$t1")s"

  for run in $(seq 1 "$RUNS"); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${REGISTRIES[(i + run - 1) % n]}"); done
    for name in "${order[@]}"; do
      port=$(free_port)
      data="$WORK/data-$name"
      log "$name run $run/$RUNS: starting on 127.0.0.1:$port with an empty store"
      start_server "$name" "$data" "$port" "$WORK/logs/$name-server-$run.log"
      push "$name" "$run" "$port" "$data"
      check_head "$name" "$port"
      pull "$name" "$run" "$port"
      raw_upload "$name" "$run" "$port"
      if ((run == RUNS)); then
        load_head "$name" "$port"
        load_get "$name" "$port"
      fi
      record "$name" peak_rss_mib "$run" "$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status")"
      stop_server
      rm -rf "$data" "$data.yml"
      if [[ "$name" == berth-aws ]]; then aws_drop "$AWS_BUCKET" "$AWS_TABLE"; fi
    done
  done
  rm -f "$RAW_BLOB"
}

# ---------------------------------------------------------------- the api Lambda function
# elf_arch FILE: the CPU an ELF binary (or the `bootstrap` in a zip) is built for.
elf_arch() {
  python3 - "$1" <<'EOF'
import sys, zipfile
p = sys.argv[1]
if zipfile.is_zipfile(p):
    z = zipfile.ZipFile(p)
    names = z.namelist()
    head = z.open("bootstrap" if "bootstrap" in names else names[0]).read(20)
else:
    head = open(p, "rb").read(20)
m = int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None
print({62: "x86_64", 183: "arm64"}.get(m, "unknown arch"))
EOF
}

# lambda_size METRIC FILE [NAME]: records FILE's size; its name, CPU and date go in the facts.
lambda_size() {
  local bytes
  bytes=$(stat -c %s "$2")
  record lambda "$1" 1 "$bytes"
  echo "api artifact: ${3:-${2#"$ROOT"/}}: $(elf_arch "$2"), $bytes bytes, modified $(date -u -r "$2" +%Y-%m-%dT%H:%MZ)" >>"$FACTS"
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (without sending a request: the
# emulator would queue a GET as an invocation for the first cold start to answer).
wait_port() {
  local i
  for i in $(seq 1 300); do
    if (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$WORK/logs/emulator.log" >&2; die "cargo-lambda's emulator exited"; }
    sleep 0.1
  done
  die "cargo-lambda's emulator did not listen on $1 within 30 s"
}

lambda_figures() {
  log "api Lambda function: sizes of $API_BIN and the deploy artifacts"
  lambda_size size_release "$API_BIN"
  strip -o "$WORK/api.stripped" "$API_BIN" || die "strip failed on $API_BIN"
  lambda_size size_stripped "$WORK/api.stripped" "the same, stripped"
  python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[1], "bootstrap")' \
    "$WORK/api.stripped" "$WORK/api.stripped.zip"
  lambda_size size_stripped_zip "$WORK/api.stripped.zip" "the same, stripped and zipped"
  local f
  for f in target/lambda/api/bootstrap.zip target/lambda/api/bootstrap .aws-sam/build/ApiFunction/bootstrap; do
    if [[ -f "$ROOT/$f" ]]; then
      case "$f" in
        *.zip) lambda_size size_deploy_zip "$ROOT/$f" ;;
        target/*) lambda_size size_deploy_bootstrap "$ROOT/$f" ;;
        .aws-sam/*) lambda_size size_sam_bootstrap "$ROOT/$f" ;;
      esac
    fi
  done

  # Cold starts: the release api binary, as the function, behind cargo-lambda's runtime emulator,
  # on a bucket and table of its own on the local stack. One unrecorded start first (emulator and
  # page cache warm-up), then BENCH_COLD_STARTS recorded ones, each a fresh process.
  local bucket="berth-bench-$$-lambda" port line run init first
  aws_init "$bucket" "$bucket"
  port=$(free_port)
  log "api Lambda function: cargo-lambda's emulator on 127.0.0.1:$port, $COLD_STARTS cold starts"
  (cd "$ROOT" && exec "$CARGO_LAMBDA" lambda watch --only-lambda-apis --disable-cors \
    --invoke-address 127.0.0.1 --invoke-port "$port") >"$WORK/logs/emulator.log" 2>&1 &
  EMULATOR_PID=$!
  wait_port "$port"
  env "${AWS_ENV[@]}" BERTH_S3_BUCKET="$bucket" BERTH_DYNAMODB_TABLE="$bucket" \
    python3 "$HERE/lambda_cold.py" "$API_BIN" "$port" "$COLD_STARTS" "$WORK/logs" >"$WORK/cold.tsv" ||
    die "api cold starts failed (logs: $WORK/logs/api-cold-*.log, $WORK/logs/emulator.log)"
  while IFS=$'\t' read -r run init first; do
    ((run > 0)) || continue
    record lambda init_ms "$run" "$(awk -v u="$init" 'BEGIN {printf "%.3f", u / 1000}')"
    record lambda first_request_ms "$run" "$first"
  done <"$WORK/cold.tsv"
  log "api Lambda function: init_us per start (first one unrecorded): $(cut -f2 "$WORK/cold.tsv" | paste -sd' ')"
  kill "$EMULATOR_PID" 2>/dev/null || true
  wait "$EMULATOR_PID" 2>/dev/null || true
  EMULATOR_PID=""
  aws_drop "$bucket" "$bucket"
  echo "api cold starts: $COLD_STARTS recorded (after 1 unrecorded), ${API_BIN#"$ROOT"/} on this machine ($(uname -m)), cargo-lambda $("$CARGO_LAMBDA" lambda --version 2>/dev/null | awk '{print $2}') emulator, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024 (not enforced locally)" >>"$FACTS"
}

if ((${#REGISTRIES[@]})); then run_registries; fi
if ((LAMBDA)); then lambda_figures; fi

# ---------------------------------------------------------------- the table
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$FACTS"
cp "$RESULTS" "$OUT/results.tsv"
cp "$FACTS" "$OUT/facts.txt"
python3 "$HERE/report.py" "$RESULTS" "$FACTS" "$OUT/results.md"
log "results written to $OUT/results.md (raw: $OUT/results.tsv, $OUT/oha-head-*.json, $OUT/wrk-get-*.txt)"
