#!/usr/bin/env bash
# Model-checks the GC protocol's models in docs/models/ with spin (exhaustive state-space search;
# docs/lifecycle.md, "GC protocol"). Seconds in all.
#
# - gc_fenced.pml, the design to build: must hold with two clients pushing the same image against
#   a GC that may stop at any step; and each of its safeguards must be needed (without any one of
#   them spin must find a violation, else the model no longer tests what it claims to).
# - gc.pml, the first design: holds with one client, but spin finds its flaw with two (a
#   compensating delete takes a manifest another client relied on); pinned here so the record
#   stays true.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v spin >/dev/null || bash scripts/install-deps.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp docs/models/*.pml "$work/"
cd "$work"

# Prints the number of errors pan found in `model` compiled with the given spin flags.
errors() {
    local model="$1"
    shift
    spin "$@" -a "$model" >/dev/null
    gcc -O2 -o pan pan.c
    ./pan -m200000 >pan.out 2>&1 || true
    local found
    found=$(grep -oE 'errors: [0-9]+' pan.out | awk '{print $2}')
    grep -E 'State-vector|states, stored|assertion violated' pan.out | sed 's/^/    /' >&2
    echo "${found:-unknown}"
}

status=0
expect() {
    local outcome="$1" model="$2"
    shift 2
    echo "$model $* (must $outcome)" >&2
    local found
    found=$(errors "$model" "$@")
    case "$outcome" in
    hold)
        if [[ "$found" != 0 ]]; then
            echo "FAILED: $model $* is violated ($found errors); spin -t -p $* $model shows how" >&2
            status=1
        fi
        ;;
    fail)
        if [[ "$found" == 0 || "$found" == unknown ]]; then
            echo "FAILED: spin finds nothing in $model $*: the model no longer tests that" >&2
            status=1
        fi
        ;;
    esac
}

expect hold gc_fenced.pml -DCLIENTS=2
for step in NO_FENCE_WAIT NO_SWEEP_REREAD NO_CONDEMN_REREAD; do
    expect fail gc_fenced.pml -DCLIENTS=2 "-D$step"
done
expect hold gc.pml -DCLIENTS=1
for step in NO_PUSH_REREAD NO_SWEEP_REREAD NO_CONDEMN_REREAD; do
    expect fail gc.pml -DCLIENTS=1 "-D$step"
done
expect fail gc.pml -DCLIENTS=2
if [[ $status == 0 ]]; then
    echo "models: all checks passed" >&2
fi
exit $status
