# Sourced by the benches that run Berth on the local AWS stand-ins (DynamoDB on moto, S3 on
# s3s-fs, from scripts/local-stack.sh). Needs ROOT (the repository) and STACK_STARTED=0 set.

# Exports the stand-ins' environment, starting them unless they run (then STACK_STARTED=1 and the
# caller's cleanup calls stop_stand_ins), with S3 on s3s-fs (it checks SigV4, so blob pulls follow
# real presigned redirects).
use_stand_ins() {
  eval "$(bash "$ROOT/scripts/local-stack.sh" env)"
  if ! curl -s -o /dev/null "$AWS_ENDPOINT_URL_DYNAMODB"; then
    BERTH_STACK_API=0 bash "$ROOT/scripts/local-stack.sh" up >/dev/null
    STACK_STARTED=1
  fi
  export AWS_ENDPOINT_URL_S3=$BERTH_TEST_S3_S3SFS_ENDPOINT
}

# Stops the stand-ins if use_stand_ins started them.
stop_stand_ins() {
  if ((STACK_STARTED)); then bash "$ROOT/scripts/local-stack.sh" down >/dev/null 2>&1 || true; fi
}
