#!/usr/bin/env bash
# Model-checks the protocols in docs/models/ with spin (exhaustive state-space search).
# docs/models/gc.pml: the first online GC protocol (docs/lifecycle.md, "GC protocol"). With one
# client it holds in every interleaving, and each of its read-after-write steps is needed: without
# any one of them spin must find a violation (else the model no longer tests what it claims to).
# With two clients pushing the same image spin finds the flaw the note describes (one client's
# compensating delete takes the manifest the other relies on); the script checks that it still
# does, so the model is updated together with the protocol that replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v spin >/dev/null || bash scripts/install-deps.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp docs/models/gc.pml "$work/"
cd "$work"

# Prints the number of errors pan found in the model compiled with the given spin flags.
errors() {
    spin "$@" -a gc.pml >/dev/null
    gcc -O2 -o pan pan.c
    ./pan -m100000 >pan.out 2>&1 || true
    local found
    found=$(grep -oE 'errors: [0-9]+' pan.out | awk '{print $2}')
    grep -E 'State-vector|states, stored|assertion violated' pan.out | sed 's/^/    /' >&2
    echo "${found:-unknown}"
}

status=0
echo "gc.pml: the protocol, one client" >&2
found=$(errors -DCLIENTS=1)
if [[ "$found" != 0 ]]; then
    echo "FAILED: the GC protocol is violated ($found errors); spin -t -p gc.pml shows how" >&2
    status=1
fi
for variant in NO_PUSH_REREAD NO_SWEEP_REREAD NO_CONDEMN_REREAD; do
    echo "gc.pml without one step: -D$variant (must be violated)" >&2
    found=$(errors -DCLIENTS=1 "-D$variant")
    if [[ "$found" == 0 || "$found" == unknown ]]; then
        echo "FAILED: without $variant spin finds nothing: the model no longer tests that step" >&2
        status=1
    fi
done
echo "gc.pml: the protocol, two clients (the known flaw: must be violated)" >&2
found=$(errors -DCLIENTS=2)
if [[ "$found" == 0 || "$found" == unknown ]]; then
    echo "FAILED: two clients no longer violate gc.pml: update docs/lifecycle.md and this script" >&2
    status=1
fi
[[ $status == 0 ]] && echo "models: all checks passed" >&2
exit $status
