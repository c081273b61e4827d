#!/usr/bin/env bash
# Runs every test of Berth on a fresh Debian 12 machine:
# - installs what the tests need (skopeo, umoci, docker-registry, wrk, cargo-nextest; moto, s3s-fs
#   and cargo-lambda in the project's .venv);
# - starts the local AWS stack (moto and s3s-fs on 127.0.0.1, stopped again at exit);
# - builds the workspace (the berth, api, projector and janitor binaries the end-to-end tests run);
# - runs unit, contract and end-to-end tests with nextest, then the end-to-end suite again on the
#   two serverless configurations: `berth serve --storage aws` and the `api` Lambda function in
#   cargo-lambda's emulator, both on the local stack;
# - runs schemathesis against the management API's OpenAPI document as `berth serve` serves it
#   (scripts/schemathesis.sh, bounded examples);
# - model-checks the protocols in docs/models/ with spin (scripts/check-models.sh);
# - runs every fuzz target for 20 s from its seed corpus (scripts/fuzz-smoke.sh);
# - validates the deployment templates (scripts/check-deploy.sh: sam validate --lint, sam build,
#   terraform fmt). BERTH_SKIP_DEPLOY_CHECK=1 skips that step.
# Extra arguments go to every nextest run (e.g. a test filter). Every stage runs; the exit status
# says whether any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
BERTH_STACK_API=0 bash scripts/local-stack.sh up >/dev/null
trap 'bash scripts/local-stack.sh down' EXIT
eval "$(bash scripts/local-stack.sh env)"

cargo build --workspace --all-targets --locked

failed=()
stage() {
    local name="$1"
    shift
    echo "=== $name" >&2
    if ! "$@"; then
        failed+=("$name")
    fi
}
stage "all tests (end-to-end on embedded storage)" cargo nextest run --workspace --locked --no-fail-fast "$@"
stage "end-to-end on berth serve --storage aws" \
    env BERTH_E2E_TARGET=aws cargo nextest run --workspace -E 'package(berth-e2e)' --locked --no-fail-fast "$@"
# One retry here only: cargo-lambda's emulator is test equipment, not Berth, and nextest still
# reports any test that needed it as FLAKY in the summary.
stage "end-to-end on the api Lambda function" \
    env BERTH_E2E_TARGET=lambda cargo nextest run --workspace -E 'package(berth-e2e)' --locked --no-fail-fast --retries 1 "$@"
stage "schemathesis against the served OpenAPI document" bash scripts/schemathesis.sh
# Seconds: spin's exhaustive search of the GC protocol's models (docs/models/, docs/lifecycle.md).
stage "protocol models (spin)" bash scripts/check-models.sh
# Every fuzz target for 20 s from its seeds (every past finding is a seed). The unoptimised build
# costs half the CPU of the optimised one; the 10-minute runs (docs/fuzzing.md) use the latter.
stage "fuzz smoke" env FUZZ_TARGET_DIR=target/fuzz FUZZ_PROFILE=dev bash scripts/fuzz-smoke.sh
if [[ "${BERTH_SKIP_DEPLOY_CHECK:-0}" != "1" ]]; then
    # Unoptimised, without LTO: still a real cargo-lambda build and link of the three functions.
    stage "deployment templates" env BERTH_CHECK_FAST_BUILD=1 bash scripts/check-deploy.sh
fi

if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "all stages passed" >&2
