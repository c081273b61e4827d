#!/usr/bin/env bash
# Runs schemathesis against the management API's OpenAPI document as `berth serve` serves it
# (docs/schemathesis.md says what is checked, each exception, and what earlier runs found).
#
# - installs schemathesis (pinned) into the project's .venv/ if it is not there;
# - starts target/debug/berth serve on embedded storage, in a temporary data directory, on a free
#   port of 127.0.0.1, with a known admin password; stops it and removes the directory at exit;
# - seeds it (tests/schemathesis/seed.py: an image with a signature and a referrer, a project
#   member, a robot account);
# - runs `schemathesis run` on /api/v2.0/openapi.json as the admin (Basic auth) with
#   tests/schemathesis/schemathesis.toml (every check, the seed, the exceptions) and a bounded number
#   of cases per operation.
# Exits non-zero if schemathesis reports any failure or error.
#
# Needs the debug build (`cargo build --workspace --all-targets --locked`; scripts/test.sh builds it
# first). Environment:
#   BERTH_SCHEMATHESIS_EXAMPLES  --max-examples: cases per operation (default 50; with the coverage
#                                and stateful phases ~3,800 cases, ~1.5 minutes on 2 cores)
#   BERTH_SCHEMATHESIS_REPORT    a directory for a JUnit report and the server's log (default none)
#   CARGO_TARGET_DIR             where the build is (default target/)
# Extra arguments go to `schemathesis run` (e.g. --seed 1, --include-path-regex users).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
SCHEMATHESIS_VERSION="4.32.5"
EXAMPLES="${BERTH_SCHEMATHESIS_EXAMPLES:-50}"
BERTH="${CARGO_TARGET_DIR:-$ROOT/target}/debug/berth"
CONFIG="$ROOT/tests/schemathesis/schemathesis.toml"
ADMIN_PASSWORD="Schemathesis12345"
# How long the server may take to start listening and answering, in tenths of a second.
WAIT_TENTHS=300

log() { echo "schemathesis.sh: $*" >&2; }

if [[ ! -x "$BERTH" ]]; then
    log "no $BERTH: build first (cargo build --workspace --all-targets --locked)"
    exit 1
fi

# Python with venv (Debian 12 ships python3 without ensurepip unless python3-venv is installed).
if [[ ! -x "$VENV/bin/python" ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3-venv with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if [[ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != *" $SCHEMATHESIS_VERSION" ]]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

WORK="$(mktemp -d /tmp/berth-schemathesis.XXXXXX)"
SERVER_LOG="$WORK/berth.log"
server=""
cleanup() {
    local status=$?
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [[ -n "${BERTH_SCHEMATHESIS_REPORT:-}" ]]; then
        cp "$SERVER_LOG" "$BERTH_SCHEMATHESIS_REPORT/berth.log" 2>/dev/null || true
    fi
    if ((status != 0)) && [[ -s "$SERVER_LOG" ]]; then
        log "the server's last log lines:"
        tail -n 20 "$SERVER_LOG" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

# Port 0: the kernel picks a free port and the server logs it. Failed sign-ins are not limited:
# schemathesis also sends wrong and malformed credentials (generated Authorization headers, its
# authentication probes), all from this one address, and the limit would then refuse the admin's
# requests too (429). Everything else is as configured by default.
BERTH_LOG=info NO_COLOR=1 "$BERTH" serve --storage embedded --data-dir "$WORK/data" \
    --listen 127.0.0.1:0 --admin-password "$ADMIN_PASSWORD" --auth-max-failures 4000000000 \
    >"$SERVER_LOG" 2>&1 &
server=$!

base=""
for ((i = 0; i < WAIT_TENTHS; i++)); do
    if [[ -z "$base" ]]; then
        base="$(grep -o 'berth listening on http://[0-9.]*:[0-9]*' "$SERVER_LOG" | head -n 1 | sed 's/.* on //')" || true
    fi
    if [[ -n "$base" ]] && curl -fsS -o /dev/null "$base/api/v2.0/openapi.json" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        log "berth serve exited"
        exit 1
    fi
    sleep 0.1
done
if ((i == WAIT_TENTHS)); then
    log "berth serve did not answer within $((WAIT_TENTHS / 10)) seconds"
    exit 1
fi
log "berth serve on $base (pid $server, data in $WORK/data)"

"$VENV/bin/python" "$ROOT/tests/schemathesis/seed.py" "$base" admin "$ADMIN_PASSWORD" >&2

report=()
if [[ -n "${BERTH_SCHEMATHESIS_REPORT:-}" ]]; then
    mkdir -p "$BERTH_SCHEMATHESIS_REPORT"
    report=(--report junit --report-dir "$BERTH_SCHEMATHESIS_REPORT")
fi

started=$SECONDS
status=0
# No example database: every run generates the same cases from the config's seed, on any machine.
"$VENV/bin/schemathesis" --config-file "$CONFIG" --no-color run "$base/api/v2.0/openapi.json" \
    --auth "admin:$ADMIN_PASSWORD" \
    --max-examples "$EXAMPLES" \
    --generation-database none \
    --request-timeout 30 \
    "${report[@]}" "$@" || status=$?
log "schemathesis finished in $((SECONDS - started)) s with status $status"
if ! kill -0 "$server" 2>/dev/null; then
    log "berth serve died during the run"
    status=1
fi
exit "$status"
