//! HTTP helpers for the OCI distribution API: digests, blob and manifest pushes, error bodies,
//! pagination, and a raw HTTP/1.1 request for paths an URL parser would normalise (`..`, `//`).

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::blocking::Response;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

use super::server::Registry;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Every manifest media type, for `Accept`.
pub fn accept_all() -> String {
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ")
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

thread_local! {
    /// xorshift64* state, seeded from std's per-process random hash keys.
    static RNG: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
}

fn next_u64() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A pseudo-random number below `bound` (not cryptographic: unique test content and delays).
pub fn random_below(bound: u64) -> u64 {
    (next_u64() >> 11) % bound.max(1)
}

/// `n` pseudo-random bytes (unique content for every test and every run).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(n + 8);
    while bytes.len() < n {
        bytes.extend_from_slice(&next_u64().to_le_bytes());
    }
    bytes.truncate(n);
    bytes
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: sha256(bytes),
            size: bytes.len() as u64,
        }
    }

    pub fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A status and the `errors[].code` values of an OCI error body (empty if not one).
pub fn status_and_codes(resp: Response) -> (u16, Vec<String>, String) {
    let status = resp.status().as_u16();
    let body = resp.text().unwrap_or_default();
    (status, error_codes(&body), body)
}

pub fn error_codes(body: &str) -> Vec<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["errors"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["code"].as_str().map(str::to_owned))
        .collect()
}

pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The target of a `Link: <...>; rel="next"` header.
pub fn next_link(resp: &Response) -> Option<String> {
    let link = header(resp, "link")?;
    link.split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            part.get(start..end).map(str::to_owned)
        })
}

impl Registry {
    pub fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn head(&self, path: &str) -> Response {
        self.http
            .head(self.url(path))
            .send()
            .unwrap_or_else(|e| panic!("HEAD {path}: {e}"))
    }

    pub fn delete(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .send()
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    /// Starts an upload session; returns the absolute session URL.
    pub fn start_upload(&self, repo: &str) -> String {
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .header("content-length", "0")
            .send()
            .expect("POST upload");
        assert_eq!(
            resp.status().as_u16(),
            202,
            "POST /v2/{repo}/blobs/uploads/ should start a session"
        );
        let location = header(&resp, "location").expect("upload session without Location");
        self.url(&location)
    }

    /// Pushes a blob with POST then PUT (portable to every registry); returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let resp = self.try_push_blob(repo, bytes, &digest);
        let status = resp.status().as_u16();
        let location = header(&resp, "location");
        assert_eq!(
            status,
            201,
            "PUT blob {digest} into {repo}: {}",
            resp.text().unwrap_or_default()
        );
        assert!(
            location.is_some(),
            "a 201 blob PUT MUST have a Location header ({repo}@{digest})"
        );
        digest
    }

    /// POST then PUT `?digest=<claimed>`: the PUT's response.
    pub fn try_push_blob(&self, repo: &str, bytes: &[u8], claimed: &str) -> Response {
        let session = self.start_upload(repo);
        self.http
            .put(with_query(&session, &format!("digest={claimed}")))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("PUT upload")
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .unwrap_or_else(|e| panic!("PUT manifest {repo}:{reference}: {e}"))
    }

    /// Pushes a manifest, asserts 201 and the `Docker-Content-Digest`; returns its digest.
    pub fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
        let resp = self.put_manifest(repo, reference, media_type, body);
        let status = resp.status().as_u16();
        // By digest, the header "MUST be equal to the client provided digest" (sha512 included).
        let digest = if reference.contains(':') {
            reference.to_owned()
        } else {
            sha256(body)
        };
        let returned = header(&resp, "docker-content-digest");
        let location = header(&resp, "location");
        assert_eq!(
            status,
            201,
            "PUT manifest {repo}:{reference}: {}",
            resp.text().unwrap_or_default()
        );
        assert!(
            location.is_some(),
            "a 201 manifest PUT MUST have a Location header ({repo}:{reference})"
        );
        if let Some(returned) = returned {
            assert_eq!(
                returned, digest,
                "Docker-Content-Digest of PUT {repo}:{reference}"
            );
        }
        digest
    }

    pub fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        self.http
            .get(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("accept", accept_all())
            .send()
            .unwrap_or_else(|e| panic!("GET manifest {repo}:{reference}: {e}"))
    }

    /// The status of a manifest GET (with every media type accepted).
    pub fn manifest_status(&self, repo: &str, reference: &str) -> u16 {
        self.get_manifest(repo, reference).status().as_u16()
    }

    /// The digest a tag currently resolves to (`None` if the GET is not 200).
    pub fn resolve(&self, repo: &str, tag: &str) -> Option<String> {
        let resp = self.get_manifest(repo, tag);
        if resp.status().as_u16() != 200 {
            return None;
        }
        let header_digest = header(&resp, "docker-content-digest");
        let body = resp.bytes().expect("manifest body");
        let digest = sha256(&body);
        if let Some(h) = header_digest {
            assert_eq!(
                h, digest,
                "Docker-Content-Digest of GET {repo}:{tag} must match the body"
            );
        }
        Some(digest)
    }

    pub fn blob_status(&self, repo: &str, digest: &str) -> u16 {
        self.head(&format!("/v2/{repo}/blobs/{digest}")).status().as_u16()
    }

    /// Pushes a small single-layer OCI image (random content); returns (manifest digest, bytes).
    pub fn push_small_image(&self, repo: &str, reference: &str) -> (String, Vec<u8>) {
        let (config, layer) = self.push_small_blobs(repo);
        let manifest = image_manifest(&config, &[layer], None, None);
        (
            self.push_manifest(repo, reference, OCI_MANIFEST, &manifest),
            manifest,
        )
    }

    /// Pushes a random config and layer; returns their descriptors.
    pub fn push_small_blobs(&self, repo: &str) -> (Descriptor, Descriptor) {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "comment": hex::encode(random_bytes(8)),
        }))
        .expect("config json");
        let layer = random_bytes(64 + random_below(256) as usize);
        self.push_blob(repo, &config);
        self.push_blob(repo, &layer);
        (
            Descriptor::of(OCI_CONFIG, &config),
            Descriptor::of(OCI_LAYER, &layer),
        )
    }

    /// Follows `Link: rel="next"` from `first` and returns every page's JSON body.
    pub fn pages(&self, first: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(path) = next {
            assert!(
                pages.len() < 1000,
                "more than 1000 pages following Link from {first}"
            );
            let resp = self.get(&path);
            assert_eq!(resp.status().as_u16(), 200, "GET {path}");
            next = next_link(&resp);
            pages.push(
                resp.json::<Value>()
                    .unwrap_or_else(|e| panic!("GET {path}: body is not JSON: {e}")),
            );
        }
        pages
    }

    /// Every tag of a repository, following pagination (empty when the repository is unknown).
    pub fn all_tags(&self, repo: &str) -> Vec<String> {
        if self.get(&format!("/v2/{repo}/tags/list")).status().as_u16() == 404 {
            return Vec::new();
        }
        self.pages(&format!("/v2/{repo}/tags/list?n=50"))
            .iter()
            .flat_map(|page| strings(&page["tags"]))
            .collect()
    }

    /// Every repository of the catalog, following pagination.
    pub fn catalog(&self) -> Vec<String> {
        self.pages("/v2/_catalog?n=50")
            .iter()
            .flat_map(|page| strings(&page["repositories"]))
            .collect()
    }

    /// Sends a request byte for byte (no URL normalisation); returns (status, body).
    /// One request on its own connection, byte for byte; as the admin unless `headers` name an
    /// `Authorization`.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(self.host()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host(),
            body.len()
        );
        let has_auth = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if !has_auth {
            let admin = super::basic_auth("admin", super::ADMIN_PASSWORD);
            request.push_str(&format!("Authorization: {admin}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("write request");
        // A server may answer (413, 400…) and close before reading a large body: keep what it said.
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.into()
        };
        (status, body)
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Appends a query parameter to a URL that may already have a query.
pub fn with_query(url: &str, param: &str) -> String {
    if url.contains('?') {
        format!("{url}&{param}")
    } else {
        format!("{url}?{param}")
    }
}

/// An OCI image manifest's bytes.
pub fn image_manifest(
    config: &Descriptor,
    layers: &[Descriptor],
    subject: Option<&Descriptor>,
    artifact_type: Option<&str>,
) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.json(),
        "layers": layers.iter().map(Descriptor::json).collect::<Vec<_>>(),
    });
    if let Some(subject) = subject {
        manifest["subject"] = subject.json();
    }
    if let Some(artifact_type) = artifact_type {
        manifest["artifactType"] = json!(artifact_type);
    }
    serde_json::to_vec_pretty(&manifest).expect("manifest json")
}

/// An OCI image index's bytes (children get a platform `linux/<arch>` each, in order).
pub fn image_index(children: &[Descriptor], archs: &[&str]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .zip(archs.iter().chain(std::iter::repeat(&"amd64")))
        .map(|(child, arch)| {
            let mut d = child.json();
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            d
        })
        .collect();
    serde_json::to_vec_pretty(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
        .expect("index json")
}
