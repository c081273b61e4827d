#!/usr/bin/env python3
"""Manifest GET latency with content trust enforced versus not, on one server in one run.

Starts `berth serve` (embedded storage) on a free loopback port, creates two public projects,
`plain` (no policy) and `enforced` (cosign signatures required, with one trusted public key), pushes
the same small OCI image into `plain/app:v1` and `enforced/app:v1`, signs the latter with
`berth sign`, and checks that an anonymous pull of it answers 200 while an unsigned image in the
same repository answers 412. Then it times anonymous manifest GETs (anonymous may not push, so the
policy applies and every pull of `enforced` consults the recorded verdict) on one keep-alive
connection: a warm-up, then BENCH_REQUESTS per project, by tag and by digest, the two projects
interleaved in alternating blocks so drift on a shared machine falls on both alike. If `wrk` is on
PATH it also loads both by tag (-t1 -c8 -d5s) and reports requests/s.

It prints figures and asserts nothing about time; it exits non-zero only when a measurement would
be meaningless (setup failed, the policy did not apply, a timed request did not answer 200).

Environment: BERTH_BIN (default target/release/berth), BENCH_REQUESTS (3000 per project and
reference kind), BENCH_WARMUP (300), BENCH_BLOCK (100), BENCH_WRK_DURATION (5s), BENCH_KEEP=1
(keep the temporary directory: data dir, keys, server log).
"""

import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTH_BIN = os.path.abspath(
    os.environ.get("BERTH_BIN", os.path.join(REPO_ROOT, "target", "release", "berth"))
)
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "300"))
BLOCK = int(os.environ.get("BENCH_BLOCK", "100"))
WRK_DURATION = os.environ.get("BENCH_WRK_DURATION", "5s")
KEEP = os.environ.get("BENCH_KEEP") == "1"

PASSWORD = "bench-Passw0rd"
COSIGN_PASSWORD = "x"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
PROJECTS = ("plain", "enforced")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[trust-latency] {msg}", file=sys.stderr, flush=True)


def die(msg):
    raise SystemExit(f"trust_latency.py: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    """One HTTP/1.1 keep-alive connection to the server, with or without Basic auth."""

    def __init__(self, port, auth=True):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.auth = None
        if auth:
            token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
            self.auth = f"Basic {token}"

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.auth:
            h["Authorization"] = self.auth
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data

    def expect(self, status, method, path, body=None, headers=None):
        got, hdrs, data = self.request(method, path, body, headers)
        if got != status:
            die(f"{method} {path}: expected {status}, got {got}: {data[:500]!r}")
        return hdrs, data

    def close(self):
        self.conn.close()


# --- the image ----------------------------------------------------------------------------------


def make_image(label):
    """A small OCI image: one uncompressed tar layer with one file, and its config."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        content = f"berth trust latency benchmark: {label}\n".encode() * 64
        info = tarfile.TarInfo("bench.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    layer = buf.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"bench": label}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        },
        separators=(",", ":"),
    ).encode()
    return config, layer, manifest


def push_blob(client, repo, data):
    hdrs, _ = client.expect(202, "POST", f"/v2/{repo}/blobs/uploads/", body=b"")
    location = hdrs.get("Location")
    if not location:
        die(f"POST /v2/{repo}/blobs/uploads/ answered no Location")
    if location.startswith("http://") or location.startswith("https://"):
        location = "/" + location.split("/", 3)[3]
    sep = "&" if "?" in location else "?"
    client.expect(
        201,
        "PUT",
        f"{location}{sep}digest={sha256(data)}",
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def push_image(client, repo, tag, image):
    config, layer, manifest = image
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    hdrs, _ = client.expect(
        201,
        "PUT",
        f"/v2/{repo}/manifests/{tag}",
        body=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    digest = hdrs.get("Docker-Content-Digest")
    if digest and digest != sha256(manifest):
        die(f"push of {repo}:{tag}: server digest {digest} is not {sha256(manifest)}")
    return sha256(manifest)


# --- the server ---------------------------------------------------------------------------------


def start_server(workdir, port):
    data_dir = os.path.join(workdir, "data")
    os.mkdir(data_dir)
    logf = open(os.path.join(workdir, "server.log"), "wb")
    env = dict(os.environ, BERTH_ADMIN_PASSWORD=PASSWORD, BERTH_LOG="warn")
    proc = subprocess.Popen(
        [BERTH_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
        env=env,
        stdout=logf,
        stderr=subprocess.STDOUT,
    )
    logf.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"berth serve exited with {proc.returncode}; see {workdir}/server.log")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v2/")
            status = c.getresponse().status
            c.close()
            if status in (200, 401):
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    die("berth serve did not answer GET /v2/ within 30 s")


def stop_server(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def berth(args, cwd, extra_env):
    env = dict(os.environ, **extra_env)
    r = subprocess.run([BERTH_BIN, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"berth {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


# --- measuring ----------------------------------------------------------------------------------


class Timer:
    """Anonymous manifest GETs on one keep-alive connection, timed one by one."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.conn.sock
        self.reconnects = 0
        self.headers = {"Accept": OCI_MANIFEST}

    def get(self, path, expected_len):
        t0 = time.perf_counter_ns()
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        t1 = time.perf_counter_ns()
        if resp.status != 200 or len(body) != expected_len:
            die(f"GET {path} answered {resp.status} with {len(body)} bytes: {body[:300]!r}")
        if self.conn.sock is not self.sock:
            self.reconnects += 1
            self.sock = self.conn.sock
        return (t1 - t0) / 1000.0  # microseconds

    def close(self):
        self.conn.close()


def interleaved(timer, paths, expected_len, count, block, pid):
    """`count` GETs of each path, in alternating blocks of `block`; the pair order alternates too
    (P E, E P, P E, ...) so neither project always follows the other. Returns per path the
    latencies (µs) and the server CPU ticks spent in its blocks."""
    names = list(paths)
    lat = {n: [] for n in names}
    ticks = {n: 0 for n in names}
    rounds = (count + block - 1) // block
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        n_this = min(block, count - r * block)
        for name in order:
            c0 = server_cpu_ticks(pid) if pid else 0
            path = paths[name]
            out = lat[name]
            for _ in range(n_this):
                out.append(timer.get(path, expected_len))
            if pid:
                ticks[name] += server_cpu_ticks(pid) - c0
    return lat, ticks


def summary(samples_us):
    q = statistics.quantiles(samples_us, n=100, method="inclusive")
    return {
        "n": len(samples_us),
        "p50": statistics.median(samples_us) / 1000.0,
        "p90": q[89] / 1000.0,
        "p99": q[98] / 1000.0,
        "mean": statistics.fmean(samples_us) / 1000.0,
        "min": min(samples_us) / 1000.0,
        "max": max(samples_us) / 1000.0,
    }


def run_wrk(port, repo, workdir):
    script = os.path.join(REPO_ROOT, "bench", "manifest-get.lua")
    url = f"http://127.0.0.1:{port}/v2/{repo}/manifests/v1"
    r = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{WRK_DURATION}", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
    )
    name = repo.replace("/", "-")
    with open(os.path.join(workdir, f"wrk-{name}.txt"), "a") as f:
        f.write(r.stdout + r.stderr + "\n")
    if r.returncode != 0:
        die(f"wrk against {url} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    rps = None
    p50 = None
    for line in r.stdout.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            rps = float(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            die(f"wrk against {url}: {s}")
        elif s.startswith("50%"):
            p50 = s.split()[1]
        elif "errors:" in s and s.startswith("Socket errors"):
            die(f"wrk against {url}: {s}")
    if rps is None:
        die(f"wrk against {url}: no Requests/sec in its output:\n{r.stdout}")
    return rps, p50


# --- main ---------------------------------------------------------------------------------------


def main():
    if not (os.path.isfile(BERTH_BIN) and os.access(BERTH_BIN, os.X_OK)):
        die(
            f"no berth binary at {BERTH_BIN}: build it with `cargo build --release -p berth` "
            "or set BERTH_BIN"
        )
    if REQUESTS < 100 or WARMUP < 0 or BLOCK < 1:
        die("BENCH_REQUESTS must be >= 100, BENCH_WARMUP >= 0, BENCH_BLOCK >= 1")

    workdir = tempfile.mkdtemp(prefix="berth-trust-bench-")
    proc = None
    try:
        port = free_port()
        log(f"berth serve on 127.0.0.1:{port}, work dir {workdir}")
        proc = start_server(workdir, port)
        admin = Client(port)

        # Keys first: the enforcing project trusts the public key.
        keydir = os.path.join(workdir, "keys")
        os.mkdir(keydir)
        cosign_env = {"COSIGN_PASSWORD": COSIGN_PASSWORD}
        berth(["key", "generate", "--output-key-prefix", "cosign"], keydir, cosign_env)
        with open(os.path.join(keydir, "cosign.pub")) as f:
            public_key = f.read()

        log("projects: plain (no policy), enforced (cosign required, one trusted key)")
        admin.expect(
            201,
            "POST",
            "/api/v2.0/projects",
            body={"project_name": "plain", "metadata": {"public": "true"}},
        )
        admin.expect(
            201,
            "POST",
            "/api/v2.0/projects",
            body={
                "project_name": "enforced",
                "metadata": {"public": "true", "enable_content_trust_cosign": "true"},
            },
        )
        admin.expect(
            200,
            "PUT",
            "/api/v2.0/projects/enforced/content-trust",
            body={"cosign": {"required": True, "public_keys": [public_key]}},
        )

        log("pushing the image into plain/app:v1 and enforced/app:v1, signing enforced/app:v1")
        image = make_image("v1")
        digest = push_image(admin, "plain/app", "v1", image)
        if push_image(admin, "enforced/app", "v1", image) != digest:
            die("the same image has two digests")
        berth(
            ["sign", "--key", "cosign.key", f"127.0.0.1:{port}/enforced/app:v1"],
            keydir,
            dict(cosign_env, BERTH_USERNAME="admin", BERTH_PASSWORD=PASSWORD),
        )
        unsigned_digest = push_image(admin, "enforced/app", "unsigned", make_image("unsigned"))
        admin.close()
        manifest_len = len(image[2])

        # Sanity: the policy applies to anonymous pulls, and the signed image passes it.
        anon = Client(port, auth=False)
        accept = {"Accept": OCI_MANIFEST}
        checks = {
            "plain/app:v1": anon.request("GET", "/v2/plain/app/manifests/v1", headers=accept)[0],
            "enforced/app:v1 (signed)": anon.request(
                "GET", "/v2/enforced/app/manifests/v1", headers=accept
            )[0],
            "enforced/app@digest (signed)": anon.request(
                "GET", f"/v2/enforced/app/manifests/{digest}", headers=accept
            )[0],
            "enforced/app:unsigned": anon.request(
                "GET", "/v2/enforced/app/manifests/unsigned", headers=accept
            )[0],
            "enforced/app@unsigned digest": anon.request(
                "GET", f"/v2/enforced/app/manifests/{unsigned_digest}", headers=accept
            )[0],
        }
        anon.close()
        print(
            "sanity (anonymous GET): "
            + ", ".join(f"{k} -> {v}" for k, v in checks.items()),
            flush=True,
        )
        wanted = [200, 200, 200, 412, 412]
        if list(checks.values()) != wanted:
            die(f"the policy does not apply as expected: wanted {wanted}")

        # Measure.
        by_tag = {p: f"/v2/{p}/app/manifests/v1" for p in PROJECTS}
        by_digest = {p: f"/v2/{p}/app/manifests/{digest}" for p in PROJECTS}
        load_start = os.getloadavg()
        timer = Timer(port)
        log(f"warm-up: {WARMUP} GETs per project and kind")
        if WARMUP:
            interleaved(timer, by_tag, manifest_len, WARMUP, BLOCK, None)
            interleaved(timer, by_digest, manifest_len, WARMUP, BLOCK, None)
        log(f"measuring: {REQUESTS} GETs per project by tag, blocks of {BLOCK}")
        t0 = time.monotonic()
        tag_lat, tag_ticks = interleaved(timer, by_tag, manifest_len, REQUESTS, BLOCK, proc.pid)
        log(f"measuring: {REQUESTS} GETs per project by digest, blocks of {BLOCK}")
        dig_lat, dig_ticks = interleaved(
            timer, by_digest, manifest_len, REQUESTS, BLOCK, proc.pid
        )
        elapsed = time.monotonic() - t0
        timer.close()
        load_end = os.getloadavg()
        if timer.reconnects:
            log(f"note: the connection was re-opened {timer.reconnects} times")

        wrk_results = None
        if shutil.which("wrk"):
            log(f"wrk -t1 -c8 -d{WRK_DURATION} by tag, order plain, enforced, enforced, plain")
            wrk_results = {p: [] for p in PROJECTS}
            for p in ("plain", "enforced", "enforced", "plain"):
                wrk_results[p].append(run_wrk(port, f"{p}/app", workdir))

        # Report.
        rows = []
        for kind, lat, ticks in (("tag", tag_lat, tag_ticks), ("digest", dig_lat, dig_ticks)):
            for p in PROJECTS:
                s = summary(lat[p])
                s["cpu_us"] = ticks[p] / CLK_TCK * 1e6 / len(lat[p])
                rows.append((kind, p, s))

        def fmt(ms):
            return f"{ms:.3f}"

        print()
        print(
            f"berth: {BERTH_BIN}; {REQUESTS} anonymous GETs per row on one keep-alive connection, "
            f"after {WARMUP} warm-up; projects interleaved in blocks of {BLOCK}; "
            f"{elapsed:.1f} s timed"
        )
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at start, "
            f"{load_end[0]:.2f} at end; manifest {manifest_len} bytes"
        )
        print()
        print(
            "| GET manifest by | project | p50 (ms) | p90 (ms) | p99 (ms) | mean (ms) "
            "| server CPU/req (µs, approx.) |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, p, s in rows:
            print(
                f"| {kind} | {p} | {fmt(s['p50'])} | {fmt(s['p90'])} | {fmt(s['p99'])} "
                f"| {fmt(s['mean'])} | {s['cpu_us']:.0f} |"
            )
        print()
        by = {(k, p): s for k, p, s in rows}
        for kind in ("tag", "digest"):
            e, pl = by[(kind, "enforced")], by[(kind, "plain")]
            d50 = e["p50"] - pl["p50"]
            print(
                f"by {kind}: p50 enforced - plain = {d50 * 1000:+.0f} µs ({d50:+.3f} ms); "
                f"p99 {(e['p99'] - pl['p99']) * 1000:+.0f} µs; "
                f"mean {(e['mean'] - pl['mean']) * 1000:+.0f} µs"
                f" -> goal (p50 within 1 ms): {'met' if abs(d50) <= 1.0 else 'NOT met'}"
            )
        if wrk_results:
            print()
            print(
                f"| wrk -t1 -c8 -d{WRK_DURATION}, GET by tag | run 1 (req/s) | run 2 (req/s) "
                "| mean (req/s) | p50 (wrk, run 1, run 2) |"
            )
            print("| --- | ---: | ---: | ---: | --- |")
            for p in PROJECTS:
                rs = wrk_results[p]
                print(
                    f"| {p} | {rs[0][0]:.0f} | {rs[1][0]:.0f} | "
                    f"{statistics.fmean(r[0] for r in rs):.0f} | {rs[0][1]}, {rs[1][1]} |"
                )
        else:
            print()
            print("wrk: not on PATH, load figures skipped (scripts/install-deps.sh installs it)")
    finally:
        if proc is not None:
            stop_server(proc)
        if KEEP:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
