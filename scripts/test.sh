#!/usr/bin/env bash
# Runs every test of Berth on a fresh Debian 12 machine: installs what the tests need (skopeo,
# umoci, docker-registry, wrk, cargo-nextest), starts the local AWS stand-ins the S3 and DynamoDB
# contract suites run against (moto and s3s-fs, on 127.0.0.1, stopped again at exit), builds the
# workspace and the berth binary the end-to-end tests start, then runs unit, contract and
# end-to-end tests with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/local-stack.sh up >/dev/null
trap 'bash scripts/local-stack.sh down' EXIT
eval "$(bash scripts/local-stack.sh env)"

cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked --no-fail-fast "$@"
