#!/usr/bin/env bash
# Berth vs. distribution (docker-registry 2.8) on this machine: push, pull, manifest HEAD.
# See bench/README.md. Environment knobs:
#   BENCH_RUNS=3          push/pull repetitions per registry (the median is reported)
#   BENCH_DURATION=10s    length of each measured load run (HEAD with oha, GET with wrk)
#   BENCH_WARMUP=3s       length of the warm-up run before each (not measured)
#   BENCH_CONNECTIONS=32  concurrent connections;  BENCH_THREADS=2  wrk threads
#   BENCH_LAYERS=8  BENCH_LAYER_MIB=64   image shape (8 x 64 MiB = 512 MiB)
#   BENCH_ONLY=berth|distribution        measure one registry only
#   BERTH_BIN=path        use this berth binary instead of building target/release/berth
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
DISTRIBUTION_BIN=${DISTRIBUTION_BIN:-$(command -v docker-registry || true)}
REPO=bench/big
TAG=1
MANIFEST_TYPE=application/vnd.oci.image.manifest.v1+json

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

case "$ONLY" in
  "") REGISTRIES=(berth distribution) ;;
  berth | distribution) REGISTRIES=("$ONLY") ;;
  *) die "BENCH_ONLY must be berth or distribution, not '$ONLY'" ;;
esac
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"

for tool in skopeo wrk curl jq python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (see scripts/install-deps.sh)"
done

# ---------------------------------------------------------------- work dir and cleanup
mkdir -p "$OUT"
WORK=$(mktemp -d "${BENCH_WORKDIR:-${TMPDIR:-/tmp}}/berth-bench.XXXXXX")
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
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
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; } # registry metric run value

# ---------------------------------------------------------------- binaries
if [[ " ${REGISTRIES[*]} " == *" berth "* ]]; then
  if [[ -n "${BERTH_BIN:-}" ]]; then
    log "using BERTH_BIN=$BERTH_BIN"
  else
    log "building berth (cargo build --release -p berth)"
    (cd "$ROOT" && cargo build --release -p berth) || die "cargo build --release -p berth failed"
    BERTH_BIN="$ROOT/target/release/berth"
  fi
  [[ -x "$BERTH_BIN" ]] || die "berth binary not found: $BERTH_BIN"
fi
if [[ " ${REGISTRIES[*]} " == *" distribution "* ]]; then
  [[ -n "$DISTRIBUTION_BIN" && -x "$DISTRIBUTION_BIN" ]] || die "docker-registry not found (apt-get install docker-registry)"
fi

# oha measures the HEAD load: wrk 4.1's parser waits for a body after a HEAD answer that carries
# Content-Length (as manifest HEADs must), so it completes no request. Built once from crates.io.
OHA_VERSION=1.16.0
OHA=${OHA_BIN:-$(command -v oha || true)}
if [[ -z "$OHA" && -x "$TOOLS/bin/oha" ]]; then OHA="$TOOLS/bin/oha"; fi
if [[ -z "$OHA" ]]; then
  log "oha not found: cargo install --locked oha@$OHA_VERSION into $TOOLS (about 8 minutes on 2 cores, once)"
  cargo install --locked --quiet "oha@$OHA_VERSION" --root "$TOOLS" || die "cannot install oha"
  OHA="$TOOLS/bin/oha"
fi
[[ -x "$OHA" ]] || die "oha not executable: $OHA"

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
  if [[ " ${REGISTRIES[*]} " == *" distribution "* ]]; then
    echo "distribution: $("$DISTRIBUTION_BIN" --version 2>&1 | head -1)"
  fi
  echo "skopeo: $(skopeo --version 2>&1 | head -1)"
  echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $1" "$2}')"
  echo "oha: $("$OHA" --version 2>&1 | head -1)"
  echo "image: $LAYERS layers x $LAYER_MIB MiB of random bytes (uncompressed tar)"
  echo "runs: $RUNS (push/pull median); load: $CONNECTIONS connections for $DURATION after a $WARMUP warm-up (HEAD: oha, GET: wrk -t$THREADS)"
} >"$FACTS"

# ---------------------------------------------------------------- the image, once
IMAGE="$WORK/image"
log "generating the image ($LAYERS x $LAYER_MIB MiB) in $IMAGE"
DIGEST=$(python3 "$HERE/gen_image.py" "$IMAGE" "$LAYERS" "$LAYER_MIB" bench)
IMAGE_BYTES=$(jq '[.layers[].size, .config.size] | add' "$IMAGE/blobs/sha256/${DIGEST#sha256:}")
IMAGE_MIB=$(awk -v b="$IMAGE_BYTES" 'BEGIN {printf "%.1f", b / 1048576}')
log "image manifest $DIGEST, $IMAGE_BYTES bytes of blobs ($IMAGE_MIB MiB)"
echo "image manifest: $DIGEST ($IMAGE_BYTES bytes in blobs)" >>"$FACTS"

# ---------------------------------------------------------------- servers
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cpu_ticks PID: user+system clock ticks the process (all its threads) has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# start_server NAME DATA_DIR PORT LOG: starts the registry with an empty DATA_DIR; sets SERVER_PID.
start_server() {
  local name=$1 data=$2 port=$3 logf=$4
  rm -rf "$data"
  mkdir -p "$data"
  case "$name" in
    berth)
      BERTH_LOG=warn "$BERTH_BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$logf" 2>&1 &
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

# ---------------------------------------------------------------- measurements
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

# push NAME RUN PORT DATA
push() {
  local name=$1 run=$2 port=$3 data=$4 outf="$WORK/logs/$1-push-$2.log"
  sync
  local c0 t0 t1 c1
  c0=$(cpu_ticks "$SERVER_PID")
  t0=$EPOCHREALTIME
  skopeo copy --preserve-digests --dest-tls-verify=false \
    "oci:$IMAGE:bench" "docker://127.0.0.1:$port/$REPO:$TAG" >"$outf" 2>&1 ||
    { cat "$outf" >&2; die "$name: push failed"; }
  t1=$EPOCHREALTIME
  c1=$(cpu_ticks "$SERVER_PID")
  if grep -qi 'skipped' "$outf"; then
    cat "$outf" >&2
    die "$name: skopeo skipped blobs on a fresh registry; the push would not be measured"
  fi
  local secs stored
  secs=$(elapsed "$t0" "$t1")
  stored=$(du -sb "$data" | cut -f1)
  ((stored >= IMAGE_BYTES)) || die "$name: data dir holds $stored bytes after the push, less than the image ($IMAGE_BYTES)"
  record "$name" push_s "$run" "$secs"
  record "$name" push_mibs "$run" "$(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.2f", b / 1048576 / s}')"
  record "$name" push_cpu_s "$run" "$(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')"
  log "$name run $run: push ${secs}s ($(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.1f", b / 1048576 / s}') MiB/s), server CPU $(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')s"
}

# raw_upload NAME RUN PORT: one 256 MiB blob as POST + a single PUT with curl, then a GET of it to
# /dev/null: the server's own ingest and serving rates, without skopeo's client-side work in the way.
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
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/bench/raw-$run/blobs/$RAW_DIGEST")
  t1=$EPOCHREALTIME
  [ "$code" = 200 ] || die "$name: raw download answered $code"
  secs=$(elapsed "$t0" "$t1")
  record "$name" raw_download_mibs "$run" "$(awk -v s="$secs" 'BEGIN {printf "%.2f", 256 / s}')"
  log "$name run $run: raw 256 MiB download ${secs}s"
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
  local c0 t0 t1 c1
  c0=$(cpu_ticks "$SERVER_PID")
  t0=$EPOCHREALTIME
  skopeo copy --preserve-digests --src-tls-verify=false \
    "docker://127.0.0.1:$port/$REPO:$TAG" "oci:$dest:x" >"$outf" 2>&1 ||
    { cat "$outf" >&2; die "$name: pull failed"; }
  t1=$EPOCHREALTIME
  c1=$(cpu_ticks "$SERVER_PID")
  local got
  got=$(jq -r '.manifests[0].digest' "$dest/index.json")
  [[ "$got" == "$DIGEST" ]] || die "$name: pulled manifest digest $got is not the pushed $DIGEST"
  local secs
  secs=$(elapsed "$t0" "$t1")
  record "$name" pull_s "$run" "$secs"
  record "$name" pull_mibs "$run" "$(awk -v b="$IMAGE_BYTES" -v s="$secs" 'BEGIN {printf "%.2f", b / 1048576 / s}')"
  record "$name" pull_cpu_s "$run" "$(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')"
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
  local c0 c1
  c0=$(cpu_ticks "$SERVER_PID")
  "$OHA" -z "$DURATION" -w -c "$CONNECTIONS" -m HEAD -H "Accept: $MANIFEST_TYPE" --no-tui \
    --output-format json "$url" >"$outf" 2>&1 || { cat "$outf" >&2; die "$name: oha failed"; }
  c1=$(cpu_ticks "$SERVER_PID")
  oha_check "$name" "$outf"
  local rps p50 p99 n
  rps=$(jq '.summary.requestsPerSec' "$outf")
  p50=$(jq '.latencyPercentiles.p50 * 1000' "$outf")
  p99=$(jq '.latencyPercentiles.p99 * 1000' "$outf")
  n=$(jq '.statusCodeDistribution["200"]' "$outf")
  record "$name" head_rps 1 "$rps"
  record "$name" head_p50_ms 1 "$p50"
  record "$name" head_p99_ms 1 "$p99"
  record "$name" head_cpu_s 1 "$(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')"
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
  local c0 c1
  c0=$(cpu_ticks "$SERVER_PID")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/manifest-get.lua" "$url" >"$outf" 2>&1 ||
    { cat "$outf" >&2; die "$name: wrk failed"; }
  c1=$(cpu_ticks "$SERVER_PID")
  wrk_check "$name" "$outf"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$outf")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$outf")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$outf")")
  errors=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$outf")
  [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || { cat "$outf" >&2; die "$name: cannot parse wrk's output"; }
  [[ "$rps" != 0.00 ]] || { cat "$outf" >&2; die "$name: wrk completed no request"; }
  record "$name" get_rps 1 "$rps"
  record "$name" get_p50_ms 1 "$p50"
  record "$name" get_p99_ms 1 "$p99"
  record "$name" get_errors 1 "${errors:-0}"
  record "$name" get_cpu_s 1 "$(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')"
  log "$name: GET $rps req/s, p50 $p50 ms, p99 $p99 ms, socket errors ${errors:-0}"
}

# ---------------------------------------------------------------- the runs
# Each run starts every registry afresh on an empty data dir (so every blob is really uploaded),
# one registry at a time, in ABBA order across runs so neither always goes first. Both data dirs
# live in $WORK: same disk, same file system. The wrk measurement is made in the last run, on the
# registry that was just pushed to and pulled from.
# skopeo's own cost: the same copy to a local layout, no registry involved. No push through
# skopeo can be faster than this, whatever the server does.
RAW_BLOB="$WORK/raw-blob"
head -c $((256 * 1048576)) /dev/urandom >"$RAW_BLOB"
RAW_DIGEST="sha256:$(sha256sum "$RAW_BLOB" | cut -d' ' -f1)"
floor_dir="$WORK/floor"
sync
t0=$EPOCHREALTIME
skopeo copy -q --preserve-digests "oci:$IMAGE:bench" "oci:$floor_dir:x" || die "skopeo oci->oci copy failed"
t1=$EPOCHREALTIME
rm -rf "$floor_dir"
echo "skopeo's own oci->oci copy of the image (floor for any push): $(elapsed "$t0" "$t1")s" >>"$FACTS"
log "skopeo floor: oci->oci copy in $(elapsed "$t0" "$t1")s"

for run in $(seq 1 "$RUNS"); do
  order=("${REGISTRIES[@]}")
  if ((run % 2 == 0)) && ((${#order[@]} == 2)); then order=("${order[1]}" "${order[0]}"); fi
  for name in "${order[@]}"; do
    port=$(free_port)
    data="$WORK/data-$name"
    log "$name run $run/$RUNS: starting on 127.0.0.1:$port with an empty data dir"
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
  done
done

# ---------------------------------------------------------------- the table
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$FACTS"
cp "$RESULTS" "$OUT/results.tsv"
cp "$FACTS" "$OUT/facts.txt"
python3 "$HERE/report.py" "$RESULTS" "$FACTS" "$OUT/results.md"
log "results written to $OUT/results.md (raw: $OUT/results.tsv, $OUT/oha-head-*.json, $OUT/wrk-get-*.txt)"
