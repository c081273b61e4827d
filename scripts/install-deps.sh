#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian 12 machine.
# Idempotent: skips what is already there. Needs root (CI and dev machines run as root).
set -euo pipefail

need_apt=()
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v umoci >/dev/null || need_apt+=(umoci)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v jq >/dev/null || need_apt+=(jq)
command -v curl >/dev/null || need_apt+=(curl)
command -v spin >/dev/null || need_apt+=(spin)
command -v gcc >/dev/null || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# docker-registry's Debian package starts a system service on :5000; we start our own
# instances on ephemeral ports, so keep the system one out of the way.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
