#!/usr/bin/env bash
# Garbage collection at scale (issue 14): for each size, a synthetic store of BLOBS blobs referenced
# by MANIFESTS image manifests (one in ten untagged; shared/examples/gc_seed.rs), collected with
# `--delete-untagged` by Berth (`berth gc`, embedded storage) and by distribution 2.8
# (`docker-registry garbage-collect --delete-untagged`) in the same run. Prints, per size and
# registry: wall time, peak RSS (/usr/bin/time's maximum resident set size), what was deleted,
# and the bytes on disk before and after. With BENCH_AWS=1 (the default), also `berth gc --storage
# aws` on the local AWS stand-ins (DynamoDB on moto, S3 on s3s-fs; scripts/local-stack.sh, started
# if not up) at BENCH_AWS_SIZES, smaller: moto answers about 150 requests a second and its Query
# reads the whole table, so 10,000 blobs take it well over 15 minutes. That run's time includes the
# fence's wait (about 50 s: another process may be writing), which the embedded run skips (it holds
# the store's lock). The raw lines go to bench/out/gc.tsv.
#
#   BENCH_SIZES="10000:1000 100000:10000 1000000:100000"   BLOBS:MANIFESTS pairs
#   BENCH_ONLY=berth|berth-aws|distribution                 one registry only
#   BENCH_AWS=1  BENCH_AWS_SIZES="1000:100"                 the stand-ins, and their sizes
#   BERTH_BIN, SEED_BIN, DISTRIBUTION_BIN                   binaries to use instead of building them
#   BENCH_WORKDIR                                           parent of the work dirs (/tmp)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/stand_ins.sh
. "$HERE/stand_ins.sh"
OUT=${BENCH_OUT:-$HERE/out}
SIZES=${BENCH_SIZES:-"10000:1000 100000:10000 1000000:100000"}
ONLY=${BENCH_ONLY:-}
DISTRIBUTION_BIN=${DISTRIBUTION_BIN:-$(command -v docker-registry || true)}
AWS=${BENCH_AWS:-1}
AWS_SIZES=${BENCH_AWS_SIZES:-"1000:100"}

log() { printf '[gc %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"
if [[ -z "${BERTH_BIN:-}" || -z "${SEED_BIN:-}" ]]; then
  log "building berth and the seeder (release)"
  (cd "$ROOT" && cargo build --release --locked -p berth --bin berth &&
    cargo build --release --locked -p berth-shared --example gc_seed) || die "build failed"
fi
BERTH_BIN=${BERTH_BIN:-$ROOT/target/release/berth}
SEED_BIN=${SEED_BIN:-$ROOT/target/release/examples/gc_seed}
if [[ -z "$ONLY" || "$ONLY" == distribution ]]; then
  [[ -x "$DISTRIBUTION_BIN" ]] || die "docker-registry not found (scripts/install-deps.sh installs it)"
fi
[[ -n "$ONLY" && "$ONLY" != berth-aws ]] && AWS=0
STACK_STARTED=0
((AWS)) && use_stand_ins
[[ "$ONLY" == berth-aws ]] && SIZES=""

mkdir -p "$OUT"
TSV=$OUT/gc.tsv
printf 'registry\tblobs\tmanifests\tseed_s\tgc_s\tpeak_rss_kib\tdeleted_blobs\tbytes_before\tbytes_after\n' > "$TSV"
WORK=$(mktemp -d "${BENCH_WORKDIR:-/tmp}/berth-gc.XXXXXX")
AWS_NAME=""
cleanup() {
  rm -rf "$WORK"
  [[ -z "$AWS_NAME" ]] || "$ROOT/.venv/bin/python" "$HERE/aws_util.py" drop "$AWS_NAME" "$AWS_NAME" 2>/dev/null || true
  stop_stand_ins
}
trap cleanup EXIT

# Bytes of the files under a directory (what is stored, not the blocks).
bytes_of() { find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
# Seconds and peak RSS (KiB) from /usr/bin/time -v's report.
elapsed() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$1"; }
peak() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

run_berth() {
  local blobs=$1 manifests=$2 dir=$WORK/berth
  rm -rf "$dir"
  local seeded
  seeded=$("$SEED_BIN" berth "$dir" "$blobs" "$manifests") || die "seeding berth failed"
  local before; before=$(bytes_of "$dir/blobs")
  /usr/bin/time -v -o "$WORK/time" "$BERTH_BIN" gc --data-dir "$dir" --delete-untagged --grace-secs 0 \
    > "$WORK/report" 2> "$WORK/stderr" || { cat "$WORK/stderr" >&2; die "berth gc failed"; }
  local after; after=$(bytes_of "$dir/blobs")
  local deleted; deleted=$(jq -r .blobs_deleted "$WORK/report")
  [[ "$deleted" -gt 0 ]] || die "berth gc deleted nothing: $(cat "$WORK/report")"
  printf 'berth\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$blobs" "$manifests" "$(jq -r .seconds <<<"$seeded")" \
    "$(elapsed "$WORK/time")" "$(peak "$WORK/time")" "$deleted" "$before" "$after" >> "$TSV"
  rm -rf "$dir"
}

run_berth_aws() {
  local blobs=$1 manifests=$2 name="berth-gc-$$-$1"
  AWS_NAME=$name
  local seeded
  seeded=$("$SEED_BIN" aws "$name" "$blobs" "$manifests") || die "seeding berth-aws failed"
  BERTH_S3_BUCKET=$name BERTH_DYNAMODB_TABLE=$name /usr/bin/time -v -o "$WORK/time" \
    "$BERTH_BIN" gc --storage aws --delete-untagged --grace-secs 0 > "$WORK/report" 2> "$WORK/stderr" ||
    { cat "$WORK/stderr" >&2; die "berth gc --storage aws failed"; }
  local deleted; deleted=$(jq -r .blobs_deleted "$WORK/report")
  [[ "$deleted" -gt 0 ]] || die "berth gc --storage aws deleted nothing: $(cat "$WORK/report")"
  # The bytes: what the seed stored, less what the run freed (the bucket is not on a local disk).
  local before; before=$(jq -r .bytes <<<"$seeded")
  printf 'berth-aws\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$blobs" "$manifests" "$(jq -r .seconds <<<"$seeded")" \
    "$(elapsed "$WORK/time")" "$(peak "$WORK/time")" "$deleted" "$before" "$((before - $(jq -r .bytes_freed "$WORK/report")))" >> "$TSV"
  "$ROOT/.venv/bin/python" "$HERE/aws_util.py" drop "$name" "$name" >/dev/null 2>&1 || true
  AWS_NAME=""
}

run_distribution() {
  local blobs=$1 manifests=$2 dir=$WORK/distribution
  rm -rf "$dir"
  local seeded
  seeded=$("$SEED_BIN" distribution "$dir" "$blobs" "$manifests") || die "seeding distribution failed"
  cat > "$WORK/config.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $dir}
  delete: {enabled: true}
http: {addr: 127.0.0.1:0}
EOF
  local before; before=$(bytes_of "$dir/docker/registry/v2/blobs")
  /usr/bin/time -v -o "$WORK/time" "$DISTRIBUTION_BIN" garbage-collect --delete-untagged "$WORK/config.yml" \
    > "$WORK/report" 2>&1 || { tail -5 "$WORK/report" >&2; die "distribution garbage-collect failed"; }
  local after; after=$(bytes_of "$dir/docker/registry/v2/blobs")
  local deleted; deleted=$(grep -c 'blob eligible for deletion' "$WORK/report" || true)
  [[ "$deleted" -gt 0 ]] || die "distribution deleted nothing: $(tail -3 "$WORK/report")"
  printf 'distribution\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$blobs" "$manifests" "$(jq -r .seconds <<<"$seeded")" \
    "$(elapsed "$WORK/time")" "$(peak "$WORK/time")" "$deleted" "$before" "$after" >> "$TSV"
  rm -rf "$dir"
}

for size in $SIZES; do
  blobs=${size%%:*} manifests=${size##*:}
  if [[ -z "$ONLY" || "$ONLY" == berth ]]; then
    log "berth: $blobs blobs, $manifests manifests"
    run_berth "$blobs" "$manifests"
  fi
  if [[ -z "$ONLY" || "$ONLY" == distribution ]]; then
    log "distribution: $blobs blobs, $manifests manifests"
    run_distribution "$blobs" "$manifests"
  fi
done

if ((AWS)); then
  for size in $AWS_SIZES; do
    blobs=${size%%:*} manifests=${size##*:}
    log "berth-aws: $blobs blobs, $manifests manifests"
    run_berth_aws "$blobs" "$manifests"
  done
fi

echo
printf '%-13s %9s %9s %9s %9s %12s %9s %14s %14s\n' registry blobs manifests seed_s gc_s peak_rss_MiB deleted bytes_before bytes_after
tail -n +2 "$TSV" | while IFS=$'\t' read -r reg b m seed gc rss del before after; do
  printf '%-13s %9s %9s %9.1f %9.1f %12.1f %9s %14s %14s\n' "$reg" "$b" "$m" "$seed" "$gc" "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$del" "$before" "$after"
done
