#!/usr/bin/env bash
# Builds the cargo-fuzz targets (fuzz/, docs/fuzzing.md) and runs each for a short time from its
# committed seeds; fails if any target reports a crash, a timeout or running out of memory.
#
#   FUZZ_SECS        seconds per target (default 20)
#   FUZZ_TARGET_DIR  cargo target directory of the fuzz build (default target/fuzz)
#   FUZZ_JOBS        targets run at once (default 2)
#   FUZZ_PROFILE     release (optimised, debug assertions on) or dev (default release)
#   FUZZ_TARGETS     space-separated targets to run (default: all)
#   FUZZ_TIMEOUT     libFuzzer's -timeout, seconds per input (default 10)
#   FUZZ_RSS_MB      libFuzzer's -rss_limit_mb (default 2048)
#
# The stable toolchain builds the targets with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
# No sanitizer: Berth forbids unsafe code, and what is looked for is panics (overflows, slicing,
# unwraps, debug assertions), hangs and runaway allocation.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs="${FUZZ_SECS:-20}"
target_dir="${FUZZ_TARGET_DIR:-target/fuzz}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
jobs="${FUZZ_JOBS:-2}"
profile="${FUZZ_PROFILE:-release}"
per_input_timeout="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
cargo_fuzz_version="0.13.2"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

case "$profile" in
    release) build_flags=(-O -a --codegen-units 16); out=release ;;
    dev) build_flags=(--dev); out=debug ;;
    *) echo "fuzz-smoke: FUZZ_PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac

cd "$root/fuzz"
started=$(date +%s)
echo "fuzz-smoke: building the targets ($profile) in $target_dir"
cargo fuzz build "${build_flags[@]}" -s none --target-dir "$target_dir"
built=$(date +%s)
echo "fuzz-smoke: built in $((built - started)) s"

bin_dir="$target_dir/x86_64-unknown-linux-gnu/$out"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
work="$target_dir/smoke"
rm -rf "$work"
mkdir -p "$work"

# run_one TARGET: fuzzes TARGET for $secs seconds from its seeds into a scratch corpus.
run_one() {
    local target="$1" dir="$work/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
    local rc=0
    # The registry the router-driving targets make lives under $TMPDIR: removed with $work.
    TMPDIR="$dir/tmp" "$bin_dir/$target" \
        -max_total_time="$secs" -timeout="$per_input_timeout" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        "$dir/corpus" "$root/fuzz/seeds/$target" > "$dir/log" 2>&1 || rc=$?
    local last
    last=$(grep -E '^#[0-9]+' "$dir/log" | tail -1 || true)
    if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$dir/artifacts")" ]; then
        echo "fuzz-smoke: $target FAILED (exit $rc): $(ls "$dir/artifacts" | tr '\n' ' ')"
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY' "$dir/log" | head -5 | sed 's/^/    /'
        echo "    log: $dir/log"
        return 1
    fi
    echo "fuzz-smoke: $target ok: $last"
}
export -f run_one
export work secs per_input_timeout rss_mb bin_dir root

failed=0
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} || failed=1
for target in $targets; do rm -rf "$work/$target/tmp"; done
echo "fuzz-smoke: $(printf '%s\n' $targets | wc -l) targets, ${secs} s each, in $(($(date +%s) - built)) s after the build"
if [ "$failed" -ne 0 ]; then
    echo "fuzz-smoke: FAILED: see the logs above" >&2
    exit 1
fi
echo "fuzz-smoke: no crash, timeout or out-of-memory report"
