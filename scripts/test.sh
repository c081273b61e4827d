#!/usr/bin/env bash
# Runs every test of Berth on a fresh Debian 12 machine: installs what the tests need (skopeo,
# umoci, docker-registry, wrk, cargo-nextest), builds the workspace and the berth binary the
# end-to-end tests start, then runs unit, contract and end-to-end tests with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked --no-fail-fast "$@"
