//! A client of the OCI distribution API (distribution-spec v1.1: "Pulling manifests",
//! "Pushing blobs" (POST then PUT), "Pushing manifests", "Listing referrers") for any registry,
//! with docker's token authentication: a 401's `WWW-Authenticate: Bearer realm,service,scope`
//! is answered by a token from the realm (Basic credentials when known), a `Basic` challenge by
//! Basic credentials.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LINK,
    WWW_AUTHENTICATE,
};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;

use super::auth::{parse_challenge, Credentials};
use super::documents::{sha256_digest, Descriptor, Index, OCI_INDEX};
use super::reference::ImageRef;
use super::ClientError;
use crate::ports::blob_store::ByteStream;

type Result<T> = std::result::Result<T, ClientError>;

/// The error for a request that never got an answer.
fn unreachable(target: impl Into<String>) -> impl FnOnce(reqwest::Error) -> ClientError {
    let target = target.into();
    move |source| ClientError::Unreachable { target, source }
}

/// The OCI spec's recommended manifest size limit: larger ones are refused by most registries.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// A registry that sends nothing for this long while it answers is given up on (blob bodies
/// stream for as long as they keep coming).
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// A registry that does not take the connection within this is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many referrers pages are followed (a misbehaving registry cannot loop us).
const MAX_REFERRER_PAGES: usize = 100;
/// Attempts per request when the registry is busy (429), failing over (502, 503, 504) or
/// unreachable: every request here may be repeated (reads, PUTs by digest, an upload's POST whose
/// session, if it was opened, the registry expires).
pub(crate) const MAX_ATTEMPTS: u32 = 5;
/// The first pause between attempts; it doubles each time, with up to as much again at random.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between attempts, whatever `Retry-After` asks.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a registry client may do in its repository; the token it asks for has that scope.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    PullPush,
    /// Pull, push and delete (a replication that also deletes).
    PullPushDelete,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::PullPush => "pull,push",
            Access::PullPushDelete => "pull,push,delete",
        }
    }
}

/// A manifest as fetched: its bytes, media type and digest (computed here, not trusted).
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

impl Fetched {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::of(&self.media_type, &self.bytes)
    }
}

/// The client of one repository of one registry.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    repository: String,
    access: Access,
    credentials: Option<Credentials>,
    /// The `Authorization` value that last worked (a bearer token or Basic credentials).
    authorization: Mutex<Option<HeaderValue>>,
    /// Whether the client pinged `/v2/` to sign in before its first request.
    signed_in: std::sync::atomic::AtomicBool,
    /// Scopes beyond this repository's that its tokens must carry: pull on the repositories
    /// blobs are mounted from.
    extra_scopes: Mutex<Vec<String>>,
}

/// Where a registry is and how its TLS certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http(s)://host[:port]/`.
    pub base: Url,
    /// The certificate goes unchecked (Harbor's `insecure`).
    pub insecure: bool,
    /// PEM certificates to trust instead of the system's roots.
    pub ca_pem: Option<String>,
}

impl Endpoint {
    /// The endpoint at `url` (`http(s)://host[:port]`), with the system's roots.
    pub fn parse(url: &str) -> Result<Endpoint> {
        let base = Url::parse(url.trim_end_matches('/'))
            .and_then(|u| u.join("/"))
            .map_err(|_| ClientError::Setup(format!("{url:?} is not a registry URL")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(ClientError::Setup(format!(
                "{url:?} is not an http(s) registry URL"
            )));
        }
        Ok(Endpoint {
            base,
            insecure: false,
            ca_pem: None,
        })
    }

    /// The HTTP client for this endpoint.
    fn http(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .read_timeout(READ_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT);
        if self.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &self.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| ClientError::Setup(format!("the CA certificate is not PEM: {e}")))?;
            if roots.is_empty() {
                return Err(ClientError::Setup(
                    "the CA certificate holds no certificate".into(),
                ));
            }
            builder = builder.tls_built_in_root_certs(false);
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        builder
            .build()
            .map_err(|e| ClientError::Setup(format!("cannot set up the HTTP client: {e}")))
    }
}

impl RegistryClient {
    /// A client of `image`'s repository, over HTTPS unless `plain_http` or the registry is on
    /// loopback.
    pub fn new(
        image: &ImageRef,
        plain_http: bool,
        credentials: Option<Credentials>,
        access: Access,
    ) -> Result<RegistryClient> {
        let scheme = if plain_http || image.is_loopback() {
            "http"
        } else {
            "https"
        };
        let endpoint = Endpoint::parse(&format!("{scheme}://{}", image.api_host()))
            .map_err(|_| ClientError::Setup(format!("{:?} is not a registry host", image.api_host())))?;
        RegistryClient::at(&endpoint, &image.repository, credentials, access)
    }

    /// A client of `repository` at `endpoint` (an empty repository: the registry itself, for
    /// its ping and catalog).
    pub fn at(
        endpoint: &Endpoint,
        repository: &str,
        credentials: Option<Credentials>,
        access: Access,
    ) -> Result<RegistryClient> {
        Ok(RegistryClient {
            http: endpoint.http()?,
            base: endpoint.base.clone(),
            repository: repository.to_string(),
            access,
            credentials,
            authorization: Mutex::new(None),
            signed_in: std::sync::atomic::AtomicBool::new(false),
            extra_scopes: Mutex::new(Vec::new()),
        })
    }

    /// Whether the registry answers the distribution API and takes the client's credentials:
    /// `GET /v2/`, signing in as its challenge asks (a bearer token from its token service, or
    /// Basic). Without credentials, a challenge is an answer enough.
    pub async fn ping(&self) -> Result<()> {
        let url = (self.base.join("v2/")).map_err(|_| ClientError::Setup("bad registry URL".into()))?;
        let response = (self.http.get(url.clone()).send().await).map_err(unreachable("the registry"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status != StatusCode::UNAUTHORIZED {
            return Err(failure(response, &format!("GET {url}")).await);
        }
        let challenged = response.headers().contains_key(WWW_AUTHENTICATE);
        if self.credentials.is_none() {
            return if challenged {
                Ok(())
            } else {
                Err(ClientError::Protocol(format!(
                    "GET {url} answered 401 without a challenge: not a registry"
                )))
            };
        }
        if !self.answer(response).await? {
            return Err(ClientError::Protocol(format!(
                "GET {url}: the registry asks for a sign-in Berth cannot answer"
            )));
        }
        let again = (self.with_authorization(self.http.get(url.clone())).send().await)
            .map_err(unreachable("the registry"))?;
        if again.status().is_success() {
            Ok(())
        } else {
            Err(failure(again, &format!("GET {url}")).await)
        }
    }

    fn url(&self, path: &str) -> Result<Url> {
        let path = format!("v2/{}/{path}", self.repository);
        (self.base.join(&path)).map_err(|_| ClientError::Setup(format!("bad URL path {path:?}")))
    }

    /// Sends the request `make` builds (see [`RegistryClient::send_once`]), again after a pause
    /// while the registry is busy, failing over or unreachable, at most [`MAX_ATTEMPTS`] times.
    async fn send(&self, make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self.send_once(&make).await;
            let retry_after = match &sent {
                Err(ClientError::Unreachable { .. }) => None,
                Ok(r) if matches!(r.status().as_u16(), 429 | 502 | 503 | 504) => retry_after(r.headers()),
                _ => return sent,
            };
            if attempt >= MAX_ATTEMPTS {
                return sent;
            }
            tokio::time::sleep(backoff(attempt, retry_after)).await;
        }
    }

    /// Sends the request `make` builds, with the current credentials; on a 401 answers the
    /// challenge and sends it once more. Returns whatever status came last.
    async fn send_once(
        &self,
        make: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        if self.credentials.is_some() && !self.signed_in.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // Sign in up front, as docker and cosign do: a public repository answers anonymous
            // reads without a challenge, and a registry that enforces signatures refuses those
            // to anyone who may not push — the signer, once signed in, may.
            let ping = (self.base.join("v2/")).map_err(|_| ClientError::Setup("bad registry URL".into()))?;
            let answer = self.http.get(ping).send().await;
            self.answer(answer.map_err(unreachable("the registry"))?).await?;
        }
        let first = self.with_authorization(make(&self.http)).send().await;
        let response = first.map_err(unreachable("the registry"))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        if !self.answer(response).await? {
            // No challenge the client can answer: send as it is, for the caller to see the 401.
            let again = self.with_authorization(make(&self.http)).send().await;
            return again.map_err(unreachable("the registry"));
        }
        let retried = self.with_authorization(make(&self.http)).send().await;
        retried.map_err(unreachable("the registry"))
    }

    /// Answers a 401's challenge: keeps the credentials it asks for. False if it cannot.
    async fn answer(&self, response: Response) -> Result<bool> {
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(false);
        }
        let challenge = (response.headers().get(WWW_AUTHENTICATE))
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Ok(false);
        };
        let authorization = match challenge.scheme.as_str() {
            "bearer" => {
                let realm = challenge
                    .params
                    .get("realm")
                    .map(String::as_str)
                    .unwrap_or_default();
                let service = challenge.params.get("service").map(String::as_str);
                self.token(realm, service).await?
            }
            "basic" => match &self.credentials {
                Some(credentials) => credentials.basic(),
                None => return Ok(false),
            },
            _ => return Ok(false),
        };
        let value = HeaderValue::from_str(&authorization)
            .map_err(|_| ClientError::Setup("the credentials are not header-safe".into()))?;
        if let Ok(mut slot) = self.authorization.lock() {
            *slot = Some(value);
        }
        Ok(true)
    }

    fn with_authorization(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.authorization.lock().ok().and_then(|slot| slot.clone()) {
            Some(value) => request.header(AUTHORIZATION, value),
            None => request,
        }
    }

    /// A bearer token for this repository from the token service at `realm`.
    async fn token(&self, realm: &str, service: Option<&str>) -> Result<String> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let mut url = Url::parse(realm)
            .map_err(|_| ClientError::Protocol(format!("the token realm {realm:?} is not a URL")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if !self.repository.is_empty() {
                let scope = format!("repository:{}:{}", self.repository, self.access.actions());
                query.append_pair("scope", &scope);
            }
            for extra in self.extra_scopes.lock().map(|s| s.clone()).unwrap_or_default() {
                query.append_pair("scope", &extra);
            }
        }
        // A token service busy checking passwords (429) or failing over is asked again, as the
        // registry is.
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let mut request = self.http.get(url.clone());
            if let Some(credentials) = &self.credentials {
                request = request.header(AUTHORIZATION, credentials.basic());
            }
            let sent = (request.send().await).map_err(unreachable(format!("the token service {realm}")));
            let retry_after = match &sent {
                Err(_) => None,
                Ok(r) if matches!(r.status().as_u16(), 429 | 502 | 503 | 504) => retry_after(r.headers()),
                Ok(_) => break sent?,
            };
            if attempt >= MAX_ATTEMPTS {
                break sent?;
            }
            tokio::time::sleep(backoff(attempt, retry_after)).await;
        };
        if !response.status().is_success() {
            return Err(failure(response, &format!("GET token from {realm}")).await);
        }
        let body = read_limited(response, MAX_MANIFEST_BYTES).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| ClientError::Protocol("the token service's answer is not a token".into()))?;
        match answer.token.or(answer.access_token) {
            Some(token) if !token.is_empty() => Ok(format!("Bearer {token}")),
            _ => Err(ClientError::Protocol(format!(
                "the token service {realm} answered no token"
            ))),
        }
    }

    /// The manifest `reference` (tag or digest) names, or `None` if the registry has none.
    pub async fn manifest(&self, reference: &str, accept: &[&str]) -> Result<Option<Fetched>> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let accept = accept.join(", ");
        let response = self
            .send(|http| http.get(url.clone()).header(ACCEPT, &accept))
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(failure(response, &format!("GET {url}")).await);
        }
        let media_type = content_type(response.headers());
        let bytes = read_limited(response, MAX_MANIFEST_BYTES).await?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(ClientError::Protocol(format!(
                "the registry answered a manifest of digest {digest} for {reference}"
            )));
        }
        let media_type = match media_type {
            Some(media_type) => media_type,
            None => media_type_in(&bytes).unwrap_or_default(),
        };
        Ok(Some(Fetched {
            bytes,
            media_type,
            digest,
        }))
    }

    /// PUTs a manifest under `reference`; returns its digest and whether the registry processed
    /// its `subject` (the `OCI-Subject` header of OCI 1.1).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, bool)> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let digest = sha256_digest(&bytes);
        let response = self
            .send(|http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(failure(response, &format!("PUT {url}")).await);
        }
        let subject_processed = response.headers().contains_key("oci-subject");
        Ok((digest, subject_processed))
    }

    /// Deletes the manifest `reference` names (a digest: the manifest; a tag: the tag, where the
    /// registry deletes tags); false when the registry has no such manifest or tag.
    pub async fn delete_manifest(&self, reference: &str) -> Result<bool> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let response = self.send(|http| http.delete(url.clone())).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(failure(response, &format!("DELETE {url}")).await),
        }
    }

    /// The blob `digest`, at most `limit` bytes, checked against its digest.
    pub async fn blob(&self, digest: &str, limit: usize) -> Result<Vec<u8>> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self.send(|http| http.get(url.clone())).await?;
        if !response.status().is_success() {
            return Err(failure(response, &format!("GET {url}")).await);
        }
        let bytes = read_limited(response, limit).await?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(ClientError::Protocol(format!(
                "the blob {digest} the registry served hashes to {actual}"
            )));
        }
        Ok(bytes)
    }

    /// Whether the repository has the blob `digest` (HEAD).
    pub async fn has_blob(&self, digest: &str) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self.send(|http| http.head(url.clone())).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(failure(response, &format!("HEAD {url}")).await),
        }
    }

    /// Links the blob `digest` of the registry's repository `from` into this one without sending
    /// its bytes (a cross-repository mount); false when the registry did not mount it (it does not
    /// have it there, or does not mount: it opened an upload instead, which is cancelled).
    pub async fn mount_blob(&self, digest: &str, from: &str) -> Result<bool> {
        // A token must let this client read `from` too: ask for a new one that does.
        let scope = format!("repository:{from}:pull");
        if let Ok(mut scopes) = self.extra_scopes.lock() {
            if !scopes.contains(&scope) {
                scopes.push(scope);
                if let Ok(mut authorization) = self.authorization.lock() {
                    let bearer =
                        (authorization.as_ref()).is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
                    if bearer {
                        *authorization = None;
                    }
                }
            }
        }
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let response = self.send(|http| http.post(url.clone())).await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Ok(upload) = self.location(&response) {
                    self.cancel_upload(&upload).await;
                }
                Ok(false)
            }
            _ => Err(failure(response, &format!("POST {url}")).await),
        }
    }

    /// Uploads `bytes` as a blob unless the repository has it already (HEAD), with a POST that
    /// opens an upload and a monolithic PUT that closes it.
    pub async fn push_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        if self.has_blob(&digest).await? {
            return Ok(digest);
        }
        let upload = self.start_upload().await?;
        let body = Bytes::copy_from_slice(bytes);
        let url = with_digest(&upload, &digest);
        let response = self
            .send(|http| {
                (http.put(url.clone()))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(failure(response, &format!("PUT {url}")).await);
        }
        Ok(digest)
    }

    /// Opens an upload (POST); its URL.
    pub async fn start_upload(&self) -> Result<Url> {
        let start = self.url("blobs/uploads/")?;
        let response = self.send(|http| http.post(start.clone())).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(failure(response, &format!("POST {start}")).await);
        }
        self.location(&response)
    }

    /// How many bytes the upload at `upload` holds (its `Range`), or `None` when the registry
    /// no longer has it (it expired, or was finished or cancelled).
    pub async fn upload_offset(&self, upload: &Url) -> Result<Option<u64>> {
        let response = self.send(|http| http.get(upload.clone())).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(failure(response, &format!("GET {upload}")).await);
        }
        let range = (response.headers().get(reqwest::header::RANGE)).and_then(|v| v.to_str().ok());
        // `0-<last>`; "0-0" is either nothing or one byte, and read as nothing: a chunk sent
        // again from 0 is refused (416) and the copy starts a new upload.
        let end = range
            .and_then(|r| r.trim().strip_prefix("0-"))
            .and_then(|last| last.parse::<u64>().ok());
        Ok(Some(match end {
            Some(0) | None => 0,
            Some(last) => last + 1,
        }))
    }

    /// Sends `chunk` as the bytes of the upload from `offset` on (PATCH with `Content-Range`);
    /// the URL to go on with.
    pub async fn patch_upload(&self, upload: &Url, offset: u64, chunk: Bytes) -> Result<Url> {
        let last = offset + (chunk.len() as u64).saturating_sub(1);
        let range = format!("{offset}-{last}");
        let response = self
            .send(|http| {
                (http.patch(upload.clone()))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, &range)
                    .body(chunk.clone())
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(failure(response, &format!("PATCH {upload} ({range})")).await);
        }
        self.location(&response)
    }

    /// Closes the upload at `upload` as the blob `digest` (PUT), with `last` as its final
    /// bytes: a body streamed once (a failure is not repeated here: the caller starts over
    /// from what the registry holds), of `length` bytes.
    pub async fn finish_upload(
        &self,
        upload: &Url,
        digest: &str,
        last: Option<(ByteStream, u64)>,
    ) -> Result<()> {
        let url = with_digest(upload, digest);
        let response = match last {
            None => {
                self.send(|http| http.put(url.clone()).header(CONTENT_LENGTH, "0"))
                    .await?
            }
            Some((body, length)) => {
                let request = (self.http.put(url.clone()))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, length)
                    .body(reqwest::Body::wrap_stream(body));
                let sent = self.with_authorization(request).send().await;
                sent.map_err(unreachable("the registry"))?
            }
        };
        if !response.status().is_success() {
            return Err(failure(response, &format!("PUT {url}")).await);
        }
        Ok(())
    }

    /// The blob `digest`'s bytes from `offset` on, as they arrive (a `Range` request; a
    /// registry that answers the whole blob instead has the first bytes dropped here).
    pub async fn blob_from(&self, digest: &str, offset: u64) -> Result<ByteStream> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let range = format!("bytes={offset}-");
        let response = self
            .send(|http| {
                let request = http.get(url.clone());
                if offset > 0 {
                    request.header(reqwest::header::RANGE, &range)
                } else {
                    request
                }
            })
            .await?;
        let skip = match response.status() {
            StatusCode::PARTIAL_CONTENT => 0,
            StatusCode::OK => offset,
            _ => return Err(failure(response, &format!("GET {url}")).await),
        };
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        Ok(skip_bytes(Box::pin(body), skip))
    }

    /// Cancels the upload at `upload`, as far as the registry lets it: best effort, since an
    /// upload left open expires on the registry anyway.
    pub async fn cancel_upload(&self, upload: &Url) {
        let _ = self.send(|http| http.delete(upload.clone())).await;
    }

    /// The absolute URL a response's `Location` names.
    fn location(&self, response: &Response) -> Result<Url> {
        let location = (response.headers().get(reqwest::header::LOCATION))
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ClientError::Protocol("the registry opened an upload without a Location".into())
            })?;
        (self.base.join(location))
            .map_err(|_| ClientError::Protocol(format!("the upload Location {location:?} is not a URL")))
    }

    /// Lists `referrer` in the index tagged `sha256-<hex>` of `subject` (the distribution spec's
    /// referrers tag schema, for a registry that did not process the referrer's `subject`): reads
    /// the index (a new one if there is none), adds the descriptor unless it is there, and pushes
    /// it back. Answers whether it had to add it.
    pub async fn add_to_referrers_tag(&self, subject: &str, referrer: Descriptor) -> Result<bool> {
        let tag = super::reference::digest_tag(subject);
        let mut index = match self.manifest(&tag, &[OCI_INDEX]).await? {
            Some(fetched) => serde_json::from_slice::<Index>(&fetched.bytes).map_err(|_| {
                ClientError::Protocol(format!("{}:{tag} is not an image index", self.repository))
            })?,
            None => Index::empty(),
        };
        if index.manifests.iter().any(|d| d.digest == referrer.digest) {
            return Ok(false);
        }
        index.manifests.push(referrer);
        let body = serde_json::to_vec(&index)
            .map_err(|e| ClientError::Protocol(format!("cannot serialise the index: {e}")))?;
        self.put_manifest(&tag, OCI_INDEX, body).await?;
        Ok(true)
    }

    /// The referrers of `digest` of `artifact_type` (the registry's filter is re-applied here),
    /// following `Link` pages; `None` when the registry has no referrers API (404).
    pub async fn referrers(&self, digest: &str, artifact_type: &str) -> Result<Option<Vec<Descriptor>>> {
        let mut url = self.url(&format!("referrers/{digest}"))?;
        url.query_pairs_mut().append_pair("artifactType", artifact_type);
        let mut found = vec![];
        for _ in 0..MAX_REFERRER_PAGES {
            let response = self
                .send(|http| http.get(url.clone()).header(ACCEPT, OCI_INDEX))
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(failure(response, &format!("GET {url}")).await);
            }
            let next = next_link(response.headers()).and_then(|link| url.join(&link).ok());
            let bytes = read_limited(response, MAX_MANIFEST_BYTES).await?;
            let index: Index = serde_json::from_slice(&bytes)
                .map_err(|_| ClientError::Protocol("the referrers answer is not an image index".into()))?;
            let wanted = |d: &Descriptor| d.artifact_type.as_deref() == Some(artifact_type);
            found.extend(index.manifests.into_iter().filter(wanted));
            match next {
                Some(next) => url = next,
                None => return Ok(Some(found)),
            }
        }
        Ok(Some(found))
    }
}

/// `upload` with `?digest=` added (its own query, such as a session state, kept).
fn with_digest(upload: &Url, digest: &str) -> Url {
    let mut url = upload.clone();
    url.query_pairs_mut().append_pair("digest", digest);
    url
}

/// `stream` without its first `skip` bytes.
fn skip_bytes(stream: ByteStream, skip: u64) -> ByteStream {
    if skip == 0 {
        return stream;
    }
    let mut left = skip;
    Box::pin(stream.filter_map(move |chunk| {
        let kept = match chunk {
            Ok(mut bytes) if left > 0 => {
                let dropped = left.min(bytes.len() as u64);
                left -= dropped;
                let rest = bytes.split_off(dropped as usize);
                (!rest.is_empty()).then_some(Ok(rest))
            }
            other => Some(other),
        };
        std::future::ready(kept)
    }))
}

/// The pause before attempt `attempt + 1`: what `Retry-After` asks, else the doubling backoff
/// with jitter; never more than [`MAX_BACKOFF`].
pub(crate) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let pause = retry_after.unwrap_or_else(|| {
        let base = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(10));
        let mut random = [0u8; 2];
        let _ = getrandom::fill(&mut random);
        let jitter = base.mul_f64(f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX));
        base + jitter
    });
    pause.min(MAX_BACKOFF)
}

/// A `Retry-After` given in seconds (the HTTP-date form is not used by registries).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// The media type a response declares, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media_type = value.split(';').next()?.trim();
    (!media_type.is_empty()).then(|| media_type.to_string())
}

/// The `mediaType` a manifest declares in its body.
fn media_type_in(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("mediaType")?.as_str().map(str::to_string)
}

/// The target of `Link: <url>; rel="next"`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(LINK)?.to_str().ok()?;
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let is_next = (params.split(';')).any(|p| p.trim().replace('"', "").eq_ignore_ascii_case("rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// The body, refused past `limit` bytes.
async fn read_limited(mut response: Response, limit: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) =
        (response.chunk().await).map_err(unreachable("the registry (its answer broke off)"))?
    {
        if bytes.len() + chunk.len() > limit {
            return Err(ClientError::Protocol(format!(
                "the registry's answer exceeds {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// An error naming the request, the status and the registry's OCI error codes and messages.
async fn failure(response: Response, request: &str) -> ClientError {
    #[derive(Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let status = response.status();
    let body = read_limited(response, 64 << 10).await.unwrap_or_default();
    let detail = match serde_json::from_slice::<Body>(&body) {
        Ok(body) if !body.errors.is_empty() => (body.errors.iter())
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body).trim().chars().take(300).collect(),
    };
    let hint = match status {
        StatusCode::UNAUTHORIZED => {
            " (sign in with --username/--password, BERTH_USERNAME/BERTH_PASSWORD or ~/.docker/config.json)"
        }
        _ => "",
    };
    ClientError::Refused {
        request: request.to_string(),
        status: status.as_u16(),
        detail: format!("{detail}{hint}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback registry that answers each request with the next `(status, extra headers,
    /// body)` of `script` (the last one again once it runs out); counts the requests.
    async fn scripted(script: Vec<(u16, &'static str, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        scripted_on(listener, script)
    }

    /// [`scripted`] on a listener bound already (a script that names its own address).
    fn scripted_on(
        listener: TcpListener,
        script: Vec<(u16, &'static str, &'static str)>,
    ) -> (String, Arc<AtomicUsize>) {
        let address = listener.local_addr().unwrap().to_string();
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                let (status, headers, body) = script[n.min(script.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (address, served)
    }

    fn client_of(address: &str) -> RegistryClient {
        let image = ImageRef::parse(&format!("{address}/library/app:1")).unwrap();
        RegistryClient::new(&image, true, None, Access::Pull).unwrap()
    }

    const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

    #[tokio::test]
    async fn a_busy_or_failing_over_registry_is_asked_again_as_its_retry_after_says() {
        let busy = "Retry-After: 0\r\n";
        let typed = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";
        let (address, served) =
            scripted(vec![(503, busy, ""), (429, busy, ""), (200, typed, MANIFEST)]).await;
        let fetched = client_of(&address)
            .manifest("1", &[OCI_INDEX])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.bytes, MANIFEST.as_bytes());
        assert_eq!(served.load(Ordering::SeqCst), 3);

        // Busy for good: given up after the last attempt, with the registry's status.
        let (address, served) = scripted(vec![(503, busy, "")]).await;
        let failed = client_of(&address).manifest("1", &[OCI_INDEX]).await;
        assert!(
            matches!(failed, Err(ClientError::Refused { status: 503, .. })),
            "{failed:?}"
        );
        assert_eq!(served.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);

        // Refusals that another attempt cannot change are not repeated.
        let (address, served) = scripted(vec![(400, "", "")]).await;
        assert!(client_of(&address).manifest("1", &[OCI_INDEX]).await.is_err());
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_service_busy_checking_passwords_is_asked_again() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let challenge: &'static str = Box::leak(
            format!("WWW-Authenticate: Bearer realm=\"http://{address}/token\",service=\"s\"\r\n")
                .into_boxed_str(),
        );
        let busy = "Retry-After: 0\r\n";
        let script = vec![
            (401, challenge, ""),
            (429, busy, ""),
            (200, "Content-Type: application/json\r\n", r#"{"token":"t"}"#),
            (200, "", "{}"),
        ];
        let (_, served) = scripted_on(listener, script);
        let endpoint = Endpoint::parse(&format!("http://{address}")).unwrap();
        let credentials = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let client = RegistryClient::at(&endpoint, "", Some(credentials), Access::Pull).unwrap();
        client.ping().await.unwrap();
        assert_eq!(
            served.load(Ordering::SeqCst),
            4,
            "ping, busy token, token, ping again"
        );
    }

    #[test]
    fn the_pause_doubles_with_jitter_and_never_exceeds_its_cap() {
        for attempt in 1..=3u32 {
            let base = FIRST_BACKOFF * (1 << (attempt - 1));
            let pause = backoff(attempt, None);
            assert!(pause >= base && pause <= base * 2, "{attempt}: {pause:?}");
        }
        assert_eq!(backoff(30, None), MAX_BACKOFF);
        assert_eq!(backoff(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(backoff(1, Some(Duration::from_secs(3600))), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn blobs_are_found_pushed_once_and_mounted_across_repositories_on_berth() {
        let (address, _dir) = super::super::testing::berth_on_loopback().await;
        let repo = |name: &str| super::super::testing::admin_client(&address, name);
        let (source, target) = (repo("source"), repo("target"));
        let digest = sha256_digest(b"a layer");
        assert!(!source.has_blob(&digest).await.unwrap());
        assert_eq!(source.push_blob(b"a layer").await.unwrap(), digest);
        assert!(source.has_blob(&digest).await.unwrap());
        assert!(!target.has_blob(&digest).await.unwrap());
        assert!(target.mount_blob(&digest, "library/source").await.unwrap());
        assert!(target.has_blob(&digest).await.unwrap());
        assert_eq!(target.blob(&digest, 1 << 10).await.unwrap(), b"a layer");
        // A blob the source does not have is not mounted (the upload the registry opened instead
        // is cancelled).
        let missing = sha256_digest(b"nowhere");
        assert!(!target.mount_blob(&missing, "library/source").await.unwrap());
    }

    #[test]
    fn the_next_link_is_found_among_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static(
                r#"</x>; rel="prev", </v2/a/referrers/sha256:1?n=1&last=b>; rel="next""#,
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/a/referrers/sha256:1?n=1&last=b")
        );
        headers.insert(LINK, HeaderValue::from_static("</x>; rel=prev"));
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn registries_are_reached_over_https_unless_loopback_or_told_otherwise() {
        let scheme = |image: &str, plain_http: bool| {
            let image = ImageRef::parse(image).unwrap();
            let client = RegistryClient::new(&image, plain_http, None, Access::Pull).unwrap();
            client.base.scheme().to_string()
        };
        assert_eq!(scheme("registry.example/a:1", false), "https");
        assert_eq!(scheme("registry.example/a:1", true), "http");
        assert_eq!(scheme("127.0.0.1:5000/a:1", false), "http");
        assert_eq!(scheme("localhost:5000/a:1", false), "http");
        assert_eq!(scheme("[::1]:5000/a:1", false), "http");
        let hub = RegistryClient::new(&ImageRef::parse("app").unwrap(), false, None, Access::Pull).unwrap();
        assert_eq!(hub.base.as_str(), "https://registry-1.docker.io/");
        assert_eq!(
            hub.url("manifests/latest").unwrap().path(),
            "/v2/library/app/manifests/latest"
        );
    }

    #[test]
    fn content_types_lose_their_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(content_type(&headers).as_deref(), Some("application/json"));
    }
}
