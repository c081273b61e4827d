"""Seeds a fresh `berth serve` with what the schemathesis run should find behind the OpenAPI
document's examples: an image `library/hello:latest` with a cosign signature (tag scheme) and an
SBOM-like referrer (OCI `subject`), a user `st-dev` who is a developer of `library`, and a robot
account `robot$library+st`.

Usage: python seed.py BASE_URL USER PASSWORD   (BASE_URL like http://127.0.0.1:5000)
Uses only the standard library, so it runs with any Python 3.
"""

import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request

BASE, USER, PASSWORD = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REPO = "library/hello"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def call(method, path, body=None, content_type="application/json", expect=(200, 201, 202)):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", AUTH)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request) as response:
            status, headers, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, e.headers, e.read()
    if status not in expect:
        sys.exit(f"seed: {method} {path} answered {status}: {text[:300]!r}")
    return headers, text


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(data):
    call("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest(data)}", data, "application/octet-stream")
    return {"mediaType": "application/octet-stream", "digest": digest(data), "size": len(data)}


def manifest(reference, config, layers, config_type):
    config_desc = dict(blob(config), mediaType=config_type)
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layers}
    raw = json.dumps(document).encode()
    call("PUT", f"/v2/{REPO}/manifests/{reference}", raw, OCI_MANIFEST)
    return {"mediaType": OCI_MANIFEST, "digest": digest(raw), "size": len(raw)}


image_config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
layer = dict(blob(b"schemathesis seed layer\n"), mediaType="application/vnd.oci.image.layer.v1.tar")
image = manifest("latest", image_config.encode(), [layer], "application/vnd.oci.image.config.v1+json")

# A cosign signature by tag scheme: sha256-<hex>.sig in the subject's repository.
payload = json.dumps({"critical": {"image": {"docker-manifest-digest": image["digest"]},
                                   "type": "cosign container image signature"}}).encode()
signature_layer = dict(blob(payload), mediaType="application/vnd.dev.cosign.simplesigning.v1+json",
                       annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})
manifest("sha256-" + image["digest"].split(":", 1)[1] + ".sig", b"{}", [signature_layer],
         "application/vnd.oci.image.config.v1+json")

# A referrer with an artifact type (an SBOM, as far as the registry is concerned).
sbom = dict(blob(b'{"spdxVersion": "SPDX-2.3"}'), mediaType="application/spdx+json")
raw_sbom = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
                       "config": dict(blob(b"{}"), mediaType="application/vnd.oci.empty.v1+json"),
                       "layers": [sbom], "subject": image}).encode()
call("PUT", f"/v2/{REPO}/manifests/{digest(raw_sbom)}", raw_sbom, OCI_MANIFEST)

# A developer of library and a robot account there.
headers, _ = call("POST", "/api/v2.0/users", {"username": "st-dev", "password": "StDev12345"})
# schemathesis.toml names this user's id.
if not headers["Location"].endswith("/users/3"):
    sys.exit(f"seed: the user is {headers['Location']}, not user 3 as schemathesis.toml says")
headers, _ = call("POST", "/api/v2.0/projects/library/members",
                  {"role_id": 2, "member_user": {"username": "st-dev"}})
# schemathesis.toml names this member's id (and so that of every resource made before it).
if not headers["Location"].endswith("/members/4"):
    sys.exit(f"seed: the member is {headers['Location']}, not member 4 as schemathesis.toml says")
_, robot = call("POST", "/api/v2.0/robots",
                {"name": "st", "duration": -1, "level": "project",
                 "permissions": [{"kind": "project", "namespace": "library",
                                  "access": [{"resource": "repository", "action": "pull"}]}]})
# schemathesis.toml names this robot's id.
if json.loads(robot)["id"] != 5:
    sys.exit(f"seed: the robot is {robot[:200]!r}, not robot 5 as schemathesis.toml says")
print("seed: library/hello:latest", image["digest"], "with a signature and a referrer; st-dev; robot$library+st")
