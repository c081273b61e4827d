#!/usr/bin/env python3
"""AWS requests and dollars per registry operation (issue 13), on `berth serve --storage aws`.

Runs against a server `bench/cost.sh` started with `--metrics-listen`: for each operation it reads
`/metrics` before and after, REPEAT times, and takes the mean of the differences:
`berth_http_requests_total` (HTTP requests: on the Lambda deployment, one invocation each),
`berth_aws_requests_total{service,operation}` (requests the server sent to S3 and DynamoDB) and
`berth_dynamodb_write_items_total{operation,kind}` (the items those writes touched). It prints a
markdown table (requests per service, the minimum the operation needs, the ratio, dollars per
million operations), then the requests per S3/DynamoDB operation behind it, and writes both to OUT.

The operations (python3, standard library only; a Basic-auth admin client for writes, anonymous
pulls from public projects, as a pull through a CDN or by any reader is):
  push        a 3-layer image: fresh random layers each repetition, then config, then the manifest
              by tag; each blob as POST + monolithic PUT ?digest= (no HEAD first)
  tag list    GET /v2/<repo>/tags/list
  pull tag    GET /v2/<repo>/manifests/<tag> (Accept: OCI manifest)
  pull digest GET /v2/<repo>/manifests/<digest>
  blob pull   GET /v2/<repo>/blobs/<digest>: Berth answers 307 to a presigned S3 URL, which the
              client then GETs from S3 directly (one S3 GET the server's counters cannot see: it is
              added to the S3 column)
  sign        `berth sign --key` of a freshly pushed image in a project that enforces cosign
              signatures (cosign's `sha256-<hex>.sig` tag); its own HTTP requests (ping, token,
              manifest, HEAD/POST/PUT per blob, the signature manifest) are what is counted
  signed pull anonymous GET by tag of that signed image in the enforcing project (200: the policy
              consults the verdict recorded when the signature was attached)

Usage: cost.py --registry 127.0.0.1:PORT --metrics URL --berth BIN [--repeat N] [--out FILE]
Environment: BENCH_LAYER_KIB (1024: the push's layer size), BERTH_ADMIN_PASSWORD (the server's).
"""

import argparse
import base64
import collections
import hashlib
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse

LAYER_KIB = int(os.environ.get("BENCH_LAYER_KIB", "1024"))
PASSWORD = os.environ.get("BERTH_ADMIN_PASSWORD", "Bench-Admin-Password-1")
COSIGN_PASSWORD = "x"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

# --- prices -------------------------------------------------------------------------------------
# AWS's public on-demand prices, us-east-1, as listed on 2026-12-07 (aws.amazon.com/dynamodb/pricing,
# /s3/pricing, /lambda/pricing). Free tiers are ignored.
PRICES_DATE = "2026-12-07"
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # $ per write request unit (on-demand)
DYNAMODB_READ_UNIT = 0.125 / 1e6  # $ per read request unit (on-demand)
S3_CLASS_A = 0.005 / 1000  # $ per PUT, COPY, POST, LIST request (S3 Standard)
S3_CLASS_B = 0.0004 / 1000  # $ per GET, HEAD and every other request (S3 Standard)
LAMBDA_REQUEST = 0.20 / 1e6  # $ per invocation
LAMBDA_GB_SECOND = 0.0000133334  # $ per GB-second, arm64 (the api function's architecture)
# Lambda assumptions (not measured: this runs locally): the api function at 256 MB, each invocation
# lasting a base of 10 ms plus 8 ms per AWS request it makes (sent one after another, an in-region
# round trip each), rounded up to the millisecond. Blob bytes passing through are not timed in.
LAMBDA_GB = 256 / 1024
LAMBDA_BASE_MS = 10
LAMBDA_MS_PER_AWS_REQUEST = 8

# S3 bills PUT, COPY, POST and LIST requests (and multipart upload steps) as class A, GET, HEAD and
# the rest as class B; DELETE and AbortMultipartUpload are free.
S3_CLASS_A_OPS = {
    "PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
    "CompleteMultipartUpload", "ListObjectsV2", "ListObjects", "ListParts", "ListMultipartUploads",
    "ListBuckets", "CreateBucket", "PutBucketLifecycleConfiguration",
}
S3_FREE_OPS = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}
# DynamoDB write units: one per item of at most 1 KB written by PutItem, UpdateItem, DeleteItem and
# BatchWriteItem, two per item (condition checks included) in TransactWriteItems; from the
# write-items counter, so items over 1 KB (events listing many blobs) are under-counted. Reads: one
# read unit per request, as a strongly consistent GetItem or Query of at most 4 KB is (a
# TransactGetItems or BatchGetItem of n items would be 2n or n: none appears below).
DYNAMODB_READ_OPS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}

# --- the minimum per operation ------------------------------------------------------------------
# The fewest S3 and DynamoDB requests the operation needs on Berth's data layout (the table's rows
# and keys, docs in shared/src/adapters/dynamodb/mod.rs; manifests and blobs as S3 objects) with
# Berth's guarantees: a blob is visible only once its digest is verified, blobs and manifests are
# linked per repository, every change is an event appended with its views in one transaction after
# reading the versions it decides on. Presigning is local (no request). Per operation:
#
# tag list (1): one Query of the repository's `tag#` rows (sorted, one page for ≤ 1 MB of tags).
# pull by tag (3): GetItem of the tag row (→ digest), GetItem of the manifest row (media type, size,
#   and that the repository holds it), GetObject of the manifest's bytes. Denormalising the record
#   into the tag row would make it 2.
# pull by digest (2): GetItem of the manifest row, GetObject of the bytes.
# blob pull (2): GetItem of the repository's `blob#` row (linked here? size), then 307 to a
#   presigned URL; the client's GET of it is the second (an S3 GET billed to the bucket owner).
# push, 3 layers (15): per blob (config + 3 layers) a POST that needs no request (the session can
#   be named by a signed token) and a PUT: one PutObject to `blobs/<alg>/<hex>` with
#   `x-amz-checksum-sha256` (S3 refuses a body whose digest differs, so nothing unverified is ever
#   visible; ≤ 5 GB, multipart beyond), a read of the blob stream's head (GetItem) and one
#   TransactWriteItems (event + head + views) = 3 × 4 = 12; the manifest PUT: one BatchGetItem (its
#   blobs' links, the tag's and the manifest's stream heads), one PutObject of its bytes, one
#   TransactWriteItems (ManifestPushed, TagMoved, their views) = 3.
# sign (16), for the requests `berth sign` sends (as cosign does): ping 401 + token 0; GET of the
#   image by tag 3 (the signer may push: no policy check); per blob (payload, config) a HEAD → 404
#   1 (GetItem of the link) + POST 0 + PUT 3 = 8; GET of the `.sig` tag → 404 1 (GetItem); PUT of
#   the signature manifest 4: one BatchGetItem (blobs, tag and manifest heads, the subject's row),
#   one GetObject of the payload to verify it against the project's keys (kept in memory), one
#   PutObject, one TransactWriteItems appending the push, the accessory link and the verdict.
# signed pull (6): pull by tag (3) + Query of `accof#<digest>` (is it itself an accessory? then it
#   is exempt), Query of `acc#<digest>` (its signatures), GetItem of the signature's verdict row
#   under the project's trust revision (the trust configuration is in the in-memory directory).
MINIMUM = {
    "push 3-layer image": 15,
    "tag list": 1,
    "pull manifest by tag": 3,
    "pull manifest by digest": 2,
    "blob pull (307 + S3 GET)": 2,
    "sign (cosign .sig tag)": 16,
    "signed pull (enforcing project)": 6,
}


def log(msg):
    print(f"[cost] {msg}", file=sys.stderr, flush=True)


def die(msg):
    raise SystemExit(f"cost.py: {msg}")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- metrics ------------------------------------------------------------------------------------


def scrape(url):
    """The counters at `url`: {(metric, ((label, value), ...)): value}."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("GET", parsed.path)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    if resp.status != 200:
        die(f"GET {url} answered {resp.status}")
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = []
        for pair in labels.rstrip("}").split(","):
            if pair:
                key, _, val = pair.partition("=")
                pairs.append((key, val.strip('"')))
        samples[(name, tuple(sorted(pairs)))] = float(value)
    return samples


def delta(before, after):
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


# --- the registry client ------------------------------------------------------------------------


class Client:
    """One HTTP/1.1 keep-alive connection, as the admin (Basic) or anonymous; no redirects."""

    def __init__(self, host, auth=True):
        self.host = host
        self.conn = http.client.HTTPConnection(host, timeout=60)
        self.auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode() if auth else None

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.auth:
            h["Authorization"] = self.auth
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        return resp.status, resp.headers, resp.read()

    def expect(self, status, method, path, body=None, headers=None):
        got, hdrs, data = self.request(method, path, body, headers)
        if got != status:
            die(f"{method} {path}: expected {status}, got {got}: {data[:500]!r}")
        return hdrs, data

    def push_blob(self, repo, data):
        hdrs, _ = self.expect(202, "POST", f"/v2/{repo}/blobs/uploads/", body=b"")
        location = hdrs.get("Location") or die("an upload without Location")
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        self.expect(201, "PUT", f"{location}{sep}digest={sha256(data)}", body=data,
                    headers={"Content-Type": "application/octet-stream"})

    def push_image(self, repo, tag, layers):
        """Pushes the config and `layers` blobs, then the manifest by tag; returns its digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [sha256(l) for l in layers]}},
                            separators=(",", ":")).encode()
        self.push_blob(repo, config)
        for layer in layers:
            self.push_blob(repo, layer)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(l), "size": len(l)} for l in layers],
        }, separators=(",", ":")).encode()
        self.expect(201, "PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                    headers={"Content-Type": OCI_MANIFEST})
        return sha256(manifest)

    def close(self):
        self.conn.close()


def layer(size):
    """An uncompressed tar of one file of `size` random bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


# --- the measurement ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="berth-cost-")
        self.admin = Client(args.registry)
        self.anon = Client(args.registry, auth=False)
        self.runs = collections.defaultdict(list)  # operation -> [(delta, extra S3 GETs)]

    def measure(self, name, action, extra_s3=0):
        """Runs `action` between two reads of the counters; `extra_s3`: S3 requests the client
        sends itself (a presigned GET)."""
        before = scrape(self.args.metrics)
        action()
        after = scrape(self.args.metrics)
        self.runs[name].append((delta(before, after), extra_s3))

    def berth(self, *argv, env=None):
        r = subprocess.run([self.args.berth, *argv], cwd=self.work, capture_output=True, text=True,
                           env=dict(os.environ, COSIGN_PASSWORD=COSIGN_PASSWORD, **(env or {})))
        if r.returncode != 0:
            die(f"berth {' '.join(argv)} exited {r.returncode}:\n{r.stdout}{r.stderr}")

    def setup(self):
        log("projects: cost (public), signed (public, cosign signatures required)")
        self.berth("key", "generate", "--output-key-prefix", "cosign")
        with open(os.path.join(self.work, "cosign.pub")) as f:
            public_key = f.read()
        self.admin.expect(201, "POST", "/api/v2.0/projects",
                          body={"project_name": "cost", "metadata": {"public": "true"}})
        self.admin.expect(201, "POST", "/api/v2.0/projects", body={
            "project_name": "signed",
            "metadata": {"public": "true", "enable_content_trust_cosign": "true"}})
        self.admin.expect(200, "PUT", "/api/v2.0/projects/signed/content-trust",
                          body={"cosign": {"required": True, "public_keys": [public_key]}})
        self.layers = [layer(LAYER_KIB * 1024) for _ in range(3)]
        self.digest = self.admin.push_image("cost/app", "v1", self.layers)
        unsigned = self.admin.push_image("signed/app", "unsigned", [layer(1024)])
        status, _, _ = self.anon.request("GET", "/v2/signed/app/manifests/unsigned",
                                         headers={"Accept": OCI_MANIFEST})
        if status != 412:
            die(f"an unsigned image in the enforcing project answered {status}, not 412 ({unsigned})")

    def run(self, repeat):
        host = self.args.registry
        accept = {"Accept": OCI_MANIFEST}
        for i in range(repeat):
            log(f"repetition {i + 1} of {repeat}")
            fresh = [layer(LAYER_KIB * 1024) for _ in range(3)]
            self.measure("push 3-layer image", lambda: self.admin.push_image("cost/app", f"p{i}", fresh))
            self.measure("tag list", lambda: self.anon.expect(200, "GET", "/v2/cost/app/tags/list"))
            self.measure("pull manifest by tag",
                         lambda: self.anon.expect(200, "GET", "/v2/cost/app/manifests/v1", headers=accept))
            self.measure("pull manifest by digest",
                         lambda: self.anon.expect(200, "GET", f"/v2/cost/app/manifests/{self.digest}",
                                                  headers=accept))
            self.measure("blob pull (307 + S3 GET)", lambda: self.blob_pull(sha256(self.layers[0])),
                         extra_s3=1)
            self.admin.push_image("signed/app", f"s{i}", [layer(1024)])
            self.measure("sign (cosign .sig tag)", lambda: self.berth(
                "sign", "--key", "cosign.key", f"{host}/signed/app:s{i}",
                env={"BERTH_USERNAME": "admin", "BERTH_PASSWORD": PASSWORD}))
            self.measure("signed pull (enforcing project)",
                         lambda: self.anon.expect(200, "GET", f"/v2/signed/app/manifests/s{i}",
                                                  headers=accept))

    def blob_pull(self, digest):
        hdrs, _ = self.anon.expect(307, "GET", f"/v2/cost/app/blobs/{digest}")
        url = urllib.parse.urlsplit(hdrs.get("Location") or die("a 307 without Location"))
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request("GET", url.path + ("?" + url.query if url.query else ""))
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200 or sha256(body) != digest:
            die(f"the presigned URL answered {resp.status} with {len(body)} bytes")


def per_label(runs, metric, key_labels):
    """Mean over `runs` of `metric`'s samples, by the values of `key_labels`."""
    totals = collections.Counter()
    for d, _ in runs:
        for (name, labels), value in d.items():
            if name == metric:
                labels = dict(labels)
                totals[tuple(labels.get(k, "") for k in key_labels)] += value
    return {k: v / len(runs) for k, v in totals.items()}


def dollars(ops, items, http_requests, extra_s3):
    """$ per operation: storage requests, and the Lambda invocations the HTTP requests are."""
    s3a = sum(n for (svc, op), n in ops.items() if svc == "S3" and op in S3_CLASS_A_OPS)
    s3b = extra_s3 + sum(n for (svc, op), n in ops.items()
                         if svc == "S3" and op not in S3_CLASS_A_OPS | S3_FREE_OPS)
    reads = sum(n for (svc, op), n in ops.items() if svc == "DynamoDB" and op in DYNAMODB_READ_OPS)
    wru = sum(n * (2 if op == "TransactWriteItems" else 1) for (op, _kind), n in items.items())
    storage = s3a * S3_CLASS_A + s3b * S3_CLASS_B + reads * DYNAMODB_READ_UNIT + wru * DYNAMODB_WRITE_UNIT
    aws_requests = sum(ops.values())
    ms = -(-(LAMBDA_BASE_MS * http_requests + LAMBDA_MS_PER_AWS_REQUEST * aws_requests) // 1)
    lam = http_requests * LAMBDA_REQUEST + ms / 1000 * LAMBDA_GB * LAMBDA_GB_SECOND
    return storage, lam, wru, reads


def report(bench, repeat):
    lines = [
        f"AWS requests per registry operation, `berth serve --storage aws` on the local stack "
        f"(moto + s3s-fs), mean of {repeat}; layers of {LAYER_KIB} KiB. Prices: AWS on-demand, "
        f"us-east-1, {PRICES_DATE}; Lambda: arm64, {int(LAMBDA_GB * 1024)} MB, "
        f"{LAMBDA_BASE_MS} ms + {LAMBDA_MS_PER_AWS_REQUEST} ms per AWS request per invocation (assumed).",
        "",
        "| operation | HTTP requests (Lambda invocations) | S3 | DynamoDB | AWS requests | minimum | ratio "
        "| DynamoDB write units | $ per M ops, S3 + DynamoDB | $ per M ops, + Lambda |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    breakdown = []
    for name, runs in bench.runs.items():
        ops = per_label(runs, "berth_aws_requests_total", ("service", "operation"))
        items = per_label(runs, "berth_dynamodb_write_items_total", ("operation", "kind"))
        http_requests = sum(per_label(runs, "berth_http_requests_total", ("method",)).values())
        extra_s3 = statistics.fmean(extra for _, extra in runs)
        s3 = sum(n for (svc, _), n in ops.items() if svc == "S3") + extra_s3
        ddb = sum(n for (svc, _), n in ops.items() if svc == "DynamoDB")
        storage, lam, wru, _ = dollars(ops, items, http_requests, extra_s3)
        total = s3 + ddb
        minimum = MINIMUM[name]
        lines.append(
            f"| {name} | {http_requests:.1f} | {s3:.1f} | {ddb:.1f} | {total:.1f} | {minimum} | "
            f"{total / minimum:.1f}× | {wru:.1f} | {storage * 1e6:.2f} | {(storage + lam) * 1e6:.2f} |")
        per_op = ", ".join(f"{svc} {op} {n:.1f}" for (svc, op), n in sorted(ops.items(), key=lambda kv: -kv[1]))
        per_item = ", ".join(f"{op} {kind} {n:.1f}" for (op, kind), n in sorted(items.items()))
        breakdown.append(f"| {name} | {per_op}{' + client S3 GetObject 1.0' if extra_s3 else ''} | {per_item or '-'} |")
    lines += [
        "",
        "S3 column of the blob pull: the server's requests plus the client's GET of the presigned URL. "
        "On `berth serve` (a container) there is no Lambda charge; on the Lambda deployment each HTTP "
        "request is one invocation of the api function.",
        "",
        "Requests per S3/DynamoDB operation (mean per operation) and DynamoDB items written:",
        "",
        "| operation | requests | items written |",
        "|---|---|---|",
        *breakdown,
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registry", required=True, help="host:port of berth serve --storage aws")
    parser.add_argument("--metrics", required=True, help="its /metrics URL")
    parser.add_argument("--berth", required=True, help="the berth binary (key generate, sign)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", help="also write the tables here")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        bench.setup()
        bench.run(args.repeat)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    text = report(bench, args.repeat)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
