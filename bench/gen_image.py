#!/usr/bin/env python3
"""Writes a multi-layer OCI image layout for the benchmark.

Usage: gen_image.py DIR [LAYERS] [LAYER_MIB] [TAG]

Each layer is a real, uncompressed tar archive holding one file of LAYER_MIB MiB of
incompressible random bytes, so neither side can gain from compression and skopeo sees a
valid image (config with architecture, os and rootfs.diff_ids equal to the layer digests,
since the layers are uncompressed). Prints the manifest digest on stdout.
"""

import hashlib
import io
import json
import os
import sys
import tarfile

CHUNK = 1 << 20


class HashingWriter(io.RawIOBase):
    """A file object that writes through to a file and hashes and counts what it writes."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self):
        return True

    def tell(self):
        return self.n

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.n += len(b)
        return len(b)


class RandomReader(io.RawIOBase):
    """A readable stream of `size` random bytes."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0 or n > self.left:
            n = self.left
        self.left -= n
        return os.urandom(n)


def put_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    layers = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    layer_mib = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    tag = sys.argv[4] if len(sys.argv) > 4 else "bench"

    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    layer_descs = []
    for i in range(layers):
        tmp = os.path.join(blobs, f".layer{i}.tmp")
        with open(tmp, "wb") as raw:
            w = HashingWriter(raw)
            with tarfile.open(fileobj=w, mode="w", format=tarfile.PAX_FORMAT) as tar:
                info = tarfile.TarInfo(f"bench/layer{i}.bin")
                info.size = layer_mib * CHUNK
                info.mode = 0o644
                info.mtime = 0
                tar.addfile(info, RandomReader(info.size))
        digest = "sha256:" + w.h.hexdigest()
        os.rename(tmp, os.path.join(blobs, w.h.hexdigest()))
        layer_descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": w.n}
        )

    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descs]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "berth bench"}
                    for _ in layer_descs],
    }
    cfg_digest, cfg_size = put_blob(blobs, json.dumps(config, separators=(",", ":")).encode())

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg_digest,
            "size": cfg_size,
        },
        "layers": layer_descs,
    }
    man_digest, man_size = put_blob(blobs, json.dumps(manifest, separators=(",", ":")).encode())

    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": man_digest,
                "size": man_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    print(man_digest)


if __name__ == "__main__":
    main()
