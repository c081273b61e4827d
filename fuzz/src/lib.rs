//! What the fuzz targets share: one registry on temporary embedded storage per process (as the
//! library's own tests build it), the OCI router over it, and a request decoded from fuzz input.
//!
//! A request is written as text, like HTTP/1.1 without the version:
//!
//! ```text
//! PUT /v2/library/app/manifests/v1
//! Content-Type: application/vnd.oci.image.manifest.v1+json
//! Authorization: Basic YWRtaW46QWRtaW4xMjM0NQ==
//!
//! {"schemaVersion":2,...}
//! ```

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use base64ct::Encoding as _;
use berth::oci::{AuthConfig, Host};
use http_body_util::BodyExt as _;
use sha2::Digest as _;
use tower::ServiceExt as _;

/// The bootstrapped administrator.
pub const ADMIN: (&str, &str) = ("admin", "Admin12345");
/// A second user (id 2), member of `library`.
pub const ALICE: (&str, &str) = ("alice", "Alice12345");
/// The image setup pushes to `library/app` (tags `v1`…`v5`).
pub const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:LAYER","size":LAYER_SIZE}]}"#;
/// The layer blob setup pushes.
pub const LAYER: &[u8] = b"berth fuzz layer";

/// `Basic <base64 of user:secret>`.
pub fn basic(who: (&str, &str)) -> String {
    let pair = format!("{}:{}", who.0, who.1);
    format!("Basic {}", base64ct::Base64::encode_string(pair.as_bytes()))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest setup pushes, with its layer's digest and size filled in.
pub fn manifest() -> String {
    MANIFEST
        .replace("sha256:LAYER", &sha256(LAYER))
        .replace("LAYER_SIZE", &LAYER.len().to_string())
}

/// The process's runtime: one thread, so a run is as repeatable as the store allows.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"))
    })
}

/// The router over a registry made once per process: admin, public project `library` with
/// member `alice` and a robot, image `library/app` tagged `v1`…`v5`.
pub fn router() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| runtime().block_on(setup()))
}

async fn setup() -> Router {
    let dir = tempfile::Builder::new()
        .prefix("berth-fuzz-")
        .tempdir()
        .unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    // Kept for the process's life; removed by the OS's temporary-file cleaning, not here.
    let path = dir.keep();
    let registry = berth::adapters::local::open(&path).unwrap_or_else(|e| panic!("open: {e}"));
    (registry.bootstrap(Some(ADMIN.1)).await).unwrap_or_else(|e| panic!("bootstrap: {e}"));
    let router = berth::oci::router(registry, Host::container(), AuthConfig::default());
    let admin = basic(ADMIN);
    let json = "application/json";
    let steps: Vec<(Method, String, &str, Vec<u8>)> = vec![
        (
            Method::POST,
            "/api/v2.0/users".into(),
            json,
            format!(r#"{{"username":"{}","password":"{}"}}"#, ALICE.0, ALICE.1).into_bytes(),
        ),
        (
            Method::POST,
            "/api/v2.0/projects/library/members".into(),
            json,
            br#"{"role_id":2,"member_user":{"username":"alice"}}"#.to_vec(),
        ),
        (
            Method::POST,
            "/api/v2.0/robots".into(),
            json,
            br#"{"name":"ci","level":"project","duration":-1,"permissions":[{"kind":"project","namespace":"library","access":[{"resource":"repository","action":"pull"},{"resource":"repository","action":"push"}]}]}"#.to_vec(),
        ),
        (
            Method::POST,
            format!("/v2/library/app/blobs/uploads/?digest={}", sha256(LAYER)),
            "application/octet-stream",
            LAYER.to_vec(),
        ),
        (
            Method::POST,
            format!("/v2/library/app/blobs/uploads/?digest={}", sha256(b"{}")),
            "application/octet-stream",
            b"{}".to_vec(),
        ),
    ];
    let tags = (1..=5).map(|n| {
        (
            Method::PUT,
            format!("/v2/library/app/manifests/v{n}"),
            "application/vnd.oci.image.manifest.v1+json",
            manifest().into_bytes(),
        )
    });
    for (method, uri, content_type, body) in steps.into_iter().chain(tags) {
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .header("host", "localhost:5000")
            .header("authorization", &admin)
            .header("content-type", content_type)
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let (status, body) = call(&router, request).await;
        if !status.is_success() {
            panic!("setup {uri}: {status} {}", String::from_utf8_lossy(&body));
        }
    }
    router
}

/// Sends `request` through `router` and reads the whole answer.
pub async fn call(router: &Router, request: Request<Body>) -> (StatusCode, bytes::Bytes) {
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (status, body)
}

/// Sends `request` to the process's router (made on first use) and reads the whole answer.
pub fn serve(request: Request<Body>) -> (StatusCode, bytes::Bytes) {
    let router = router();
    runtime().block_on(call(router, request))
}

/// A request from the text form in the module doc; `None` when the method, path or a header is
/// not one HTTP can carry. A missing `Host` is `localhost:5000`.
pub fn decode_request(data: &[u8]) -> Option<Request<Body>> {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(target);
    let mut has_host = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        has_host |= name == axum::http::header::HOST;
        builder = builder.header(name, HeaderValue::from_str(value.trim()).ok()?);
    }
    if !has_host {
        builder = builder.header("host", "localhost:5000");
    }
    builder.body(Body::from(body.to_vec())).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts of `data` separated by NUL bytes (the multi-field targets' input form).
pub fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0).collect()
}

/// The Notation targets (`notation_jws`, `notation_cose`): `trust::notation::verify` of fuzz input as
/// an envelope of one media type, under a strict and a permissive policy, with the vectors'
/// certificates as trust stores, for the vectors' two signed manifests.
pub mod notation {
    use std::sync::OnceLock;

    use berth::trust::notation::{verify, Target, TrustPolicy, TrustStore};
    use chrono::{DateTime, TimeZone, Utc};

    struct Trust {
        policies: Vec<TrustPolicy>,
        stores: Vec<TrustStore>,
        now: DateTime<Utc>,
    }

    fn trust() -> &'static Trust {
        static TRUST: OnceLock<Trust> = OnceLock::new();
        TRUST.get_or_init(|| {
            let policy = |level: &str| {
                let doc = format!(
                    r#"{{"version":"1.0","trustPolicies":[{{"name":"fuzz","registryScopes":["*"],
                    "signatureVerification":{{"level":"{level}"}},
                    "trustStores":["ca:e2e","ca:alpine","signingAuthority:alpine"],"trustedIdentities":["*"]}}]}}"#
                );
                TrustPolicy::from_json(&doc).unwrap_or_else(|e| panic!("policy: {e}"))
            };
            let store = |name: &str, pem: &str| TrustStore::from_pem(name, pem).unwrap_or_else(|e| panic!("store: {e}"));
            Trust {
                policies: vec![policy("strict"), policy("permissive")],
                stores: vec![
                    store("ca:e2e", include_str!("../keys/e2e.crt")),
                    store("ca:alpine", include_str!("../keys/alpine-signing-cert.pem")),
                    store("signingAuthority:alpine", include_str!("../keys/alpine-signing-cert.pem")),
                ],
                now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default(),
            }
        })
    }

    const TARGETS: [Target<'static>; 2] = [
        Target {
            digest: "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            media_type: "application/vnd.oci.image.manifest.v1+json",
            size: 517,
        },
        Target {
            digest: "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0",
            media_type: "application/vnd.oci.image.manifest.v1+json",
            size: 481,
        },
    ];

    /// Verifies `data` as a `media_type` envelope under every policy, for every target.
    pub fn verify_everywhere(data: &[u8], media_type: &str) {
        let trust = trust();
        for policy in &trust.policies {
            for target in &TARGETS {
                let _ = verify(
                    data,
                    media_type,
                    target,
                    "library/app",
                    policy,
                    &trust.stores,
                    trust.now,
                );
            }
        }
    }
}
