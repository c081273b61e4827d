#!/usr/bin/env python3
"""Cold starts of the `api` Lambda function behind cargo-lambda's runtime emulator.

Usage: lambda_cold.py API_BIN PORT N LOG_DIR

The emulator (`cargo lambda watch --only-lambda-apis`) must already listen on 127.0.0.1:PORT; the
environment must hold the function's configuration (AWS_*, BERTH_S3_BUCKET, BERTH_DYNAMODB_TABLE).
Each of the N cold starts spawns API_BIN as the function (AWS_LAMBDA_RUNTIME_API pointing at the
emulator), sends `GET /v2/` to the emulator's function URL right away (the emulator holds it until
the runtime asks for its first event, as Lambda does during init), waits for the answer, reads the
`api initialised init_us=...` line the binary logs at the end of its init, and kills the process.

Start 0 comes first and is a warm-up (emulator, page cache) for the caller to leave out; then starts
1..N. Prints one line per start: <run> <TAB> <init_us> <TAB> <spawn to first answer, ms>.
Exits non-zero if a start logs no init line or the first request does not answer 200.
"""

import os
import re
import subprocess
import sys
import time
import urllib.request

INIT_LINE = re.compile(r"api initialised init_us=(\d+)")


def main():
    api_bin, port, n, log_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt",
        AWS_LAMBDA_FUNCTION_NAME="_",
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
        RUST_LOG="info",
    )
    url = f"http://127.0.0.1:{port}/v2/"
    for run in range(0, n + 1):
        log_path = os.path.join(log_dir, f"api-cold-{run}.log")
        with open(log_path, "wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen([api_bin], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    resp.read()
                    status = resp.status
                t1 = time.perf_counter()
            finally:
                proc.kill()
                proc.wait()
        text = open(log_path, encoding="utf-8", errors="replace").read()
        m = INIT_LINE.search(text)
        if status != 200:
            sys.exit(f"cold start {run}: GET /v2/ through the emulator answered {status}\n{text}")
        if not m:
            sys.exit(f"cold start {run}: no 'api initialised init_us=' line in the log\n{text}")
        print(f"{run}\t{m.group(1)}\t{(t1 - t0) * 1000:.3f}", flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
