#!/usr/bin/env python3
"""Bytes a client uploads to push an image whose layers already sit in another repository.

Pushes one image with skopeo (containers/image, which authenticates with bearer tokens through the
registry's token service and mounts blobs it knows from an earlier push) to `<project>/first`, then
the same image to `<project>/second`, and counts the bytes skopeo sends for the second push through
a counting TCP relay in front of the registry. With cross-repository mount working, the second push
sends no layer bytes: a mount request per blob and the manifest.

Registries, in the same run: Berth (`berth serve`, embedded storage, token auth, the system admin's
credentials, so skopeo must fetch a token that names both repositories) and, when Debian's
`docker-registry` is installed, distribution 2.8 without auth (its mounts need no token).

It prints figures and asserts nothing about speed or size; it exits non-zero only when a
measurement would be meaningless (setup failed, a push failed).

Environment: BERTH_BIN (default target/release/berth, else target/debug/berth),
DISTRIBUTION_BIN (default docker-registry), BENCH_LAYERS (4), BENCH_LAYER_MIB (8), BENCH_KEEP=1.
"""

import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = int(os.environ.get("BENCH_LAYERS", "4"))
LAYER_MIB = int(os.environ.get("BENCH_LAYER_MIB", "8"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
PASSWORD = "bench-Passw0rd"


def berth_bin():
    if os.environ.get("BERTH_BIN"):
        return os.path.abspath(os.environ["BERTH_BIN"])
    for profile in ("release", "debug"):
        path = os.path.join(REPO_ROOT, "target", profile, "berth")
        if os.path.exists(path):
            return path
    die("no berth binary: cargo build --release -p berth, or set BERTH_BIN")


def log(msg):
    print(f"[mount-bytes] {msg}", file=sys.stderr, flush=True)


def die(msg):
    raise SystemExit(f"mount_bytes.py: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def make_layout(path):
    """An OCI layout with one image of LAYERS random, incompressible tar layers."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))

    def put(data):
        digest = sha256_hex(data)
        with open(os.path.join(path, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers = []
    for i in range(LAYERS):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            content = os.urandom(LAYER_MIB * 1024 * 1024)
            info = tarfile.TarInfo(f"layer{i}.bin")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        layers.append(dict(put(buf.getvalue()), mediaType="application/vnd.oci.image.layer.v1.tar"))
    config = json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}
    ).encode()
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": dict(put(config), mediaType="application/vnd.oci.image.config.v1+json"),
         "layers": layers}
    ).encode()
    m = put(manifest)
    index = {"schemaVersion": 2, "manifests": [dict(m, mediaType="application/vnd.oci.image.manifest.v1+json",
                                                     annotations={"org.opencontainers.image.ref.name": "v1"})]}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return sum(l["size"] for l in layers)


class Relay:
    """A TCP relay on a free loopback port that counts the bytes clients send through it."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sent = 0
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self.pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, False), daemon=True).start()

    def pump(self, src, dst, count):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if count:
                    with self.lock:
                        self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self):
        with self.lock:
            sent, self.sent = self.sent, 0
        return sent


def wait_up(proc, port, name, logpath):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"{name} exited with {proc.returncode}; see {logpath}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v2/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.1)
    die(f"{name} did not answer on port {port}")


def start_berth(work):
    port = free_port()
    logpath = os.path.join(work, "berth.log")
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen(
            [berth_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "berth-data")],
            env=dict(os.environ, BERTH_ADMIN_PASSWORD=PASSWORD, BERTH_LOG="info"),
            stdout=logf, stderr=subprocess.STDOUT,
        )
    wait_up(proc, port, "berth", logpath)
    return proc, port


def start_distribution(work):
    binary = os.environ.get("DISTRIBUTION_BIN", "docker-registry")
    if not shutil.which(binary):
        log(f"{binary} not found: distribution skipped (scripts/install-deps.sh installs it)")
        return None, None
    port = free_port()
    config = os.path.join(work, "distribution.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {work}/distribution-data\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
    logpath = os.path.join(work, "distribution.log")
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen([binary, "serve", config], stdout=logf, stderr=subprocess.STDOUT)
    wait_up(proc, port, "distribution", logpath)
    return proc, port


def push(layout, port, repo, creds, cache_dir):
    args = ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false"]
    args += [f"--dest-creds={creds}"] if creds else ["--dest-no-creds"]
    args += [f"oci:{layout}:v1", f"docker://127.0.0.1:{port}/{repo}:v1"]
    # Its own blob-info cache, so every registry starts from nothing known.
    env = dict(os.environ, XDG_DATA_HOME=cache_dir, HOME=cache_dir)
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        die(f"skopeo push to {repo} failed: {out.stderr[-2000:]}")
    return out.stderr


def measure(name, port, creds, layout, work):
    relay = Relay(port)
    cache = tempfile.mkdtemp(prefix=f"{name}-cache-", dir=work)
    push(layout, relay.port, "library/first", creds, cache)
    first = relay.take()
    push(layout, relay.port, "library/second", creds, cache)
    second = relay.take()
    return first, second


def main():
    work = tempfile.mkdtemp(prefix="berth-mount-bench-")
    procs = []
    try:
        layout = os.path.join(work, "layout")
        layer_bytes = make_layout(layout)
        log(f"image: {LAYERS} layers of {LAYER_MIB} MiB ({layer_bytes} layer bytes)")
        results = []
        proc, port = start_berth(work)
        procs.append(proc)
        results.append(("Berth (bearer tokens)", *measure("berth", port, f"admin:{PASSWORD}", layout, work)))
        proc, port = start_distribution(work)
        if proc:
            procs.append(proc)
            results.append(("distribution 2.8 (no auth)", *measure("distribution", port, None, layout, work)))
        print(f"\nPushing one image twice with skopeo, to library/first then library/second "
              f"({LAYERS} x {LAYER_MIB} MiB layers, {layer_bytes:,} layer bytes):\n")
        print("| registry | bytes sent, first push | bytes sent, second push | second push / layer bytes |")
        print("|---|---:|---:|---:|")
        for name, first, second in results:
            print(f"| {name} | {first:,} | {second:,} | {second / layer_bytes:.4f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        if KEEP:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
