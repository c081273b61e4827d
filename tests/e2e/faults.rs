//! Faults survived (issue 12, part 7): 16 clients push and pull signed and unsigned images while a
//! fault-injecting proxy ([`fault_proxy`](crate::harness::fault_proxy)) between Berth and its S3 and
//! DynamoDB servers throttles, fails, delays, resets and cuts off 10 % of the calls. Afterwards,
//! faults off: every push a client saw succeed pulls byte for byte, every refused push left nothing
//! visible (no tag, no accessory, no listing), the listings agree with the acknowledged pushes, the
//! views equal a rebuild from the log, and no client got an answer it could not retry past. The same
//! load without faults on embedded storage: no error, and the server's memory stays flat.
//!
//! `BERTH_FAULT_SECS` sets how long the load runs (default 40 s; docs/faults.md reports 300 s runs),
//! `BERTH_FAULT_SEED` the proxies' seed. See docs/faults.md.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::harness::fault_proxy::{FaultProxy, FaultStats, Service};
use crate::harness::*;

const CLIENTS: usize = 16;
const FAULT_RATE: f64 = 0.10;
const DEFAULT_SECS: u64 = 40;
/// Attempts a client makes at one step before it gives up (a real client's patience).
const MAX_TRIES: u32 = 10;
const PLAIN: &str = "plain";
/// A public project that requires cosign signatures: anonymous pulls of unsigned images get 412.
const TRUSTED: &str = "trusted";
const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Causes of 5xx answers (in Berth's log) that are faults Berth reads or writes past itself: a
/// body cut off is read again, a conditional write whose answer was lost is recognised as its own.
const ABSORBABLE: [&str; 3] = ["streaming error", "exists already", "cut off"];
/// The most the server's resident memory may grow over the no-fault run: what its bounded caches
/// hold when full (redb's page cache, 64 MiB; argon2's working memory, 19 MiB per core) and 58 MiB
/// for the allocator's arenas, the connections and the runtime (measured: 137 MiB of growth over
/// 600 s, flat over the last 400). The RSS at each sixth of the run is printed: docs/faults.md.
const RSS_GROWTH_BOUND_MIB: u64 = 160;
/// Memory is flat: over the last third of a run of at least [`PLATEAU_MIN_SECS`] (the caches are
/// full by then) the RSS grows by at most this much.
const PLATEAU_GROWTH_MIB: u64 = 16;
const PLATEAU_MIN_SECS: u64 = 300;

fn load_duration() -> Duration {
    let secs = std::env::var("BERTH_FAULT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    Duration::from_secs(secs)
}

fn seed() -> u64 {
    std::env::var("BERTH_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| random_below(u64::MAX))
}

#[derive(Clone)]
struct Blob {
    digest: String,
    bytes: Arc<Vec<u8>>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&bytes),
            bytes: Arc::new(bytes),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SigStyle {
    /// cosign's tag scheme: `sha256-<hex>.sig`.
    Tag,
    /// An OCI 1.1 referrer (`subject`, cosign's artifact type), pushed by digest.
    Referrer,
}

#[derive(Clone)]
struct Signature {
    digest: String,
    style: SigStyle,
    tag: String,
    manifest: Vec<u8>,
}

/// A push a client saw succeed.
#[derive(Clone)]
struct Pushed {
    repo: String,
    tag: String,
    digest: String,
    manifest: Vec<u8>,
    blobs: Vec<Blob>,
    signature: Option<Signature>,
}

/// A push the registry refused: what must not be visible.
enum Refused {
    /// A manifest naming a blob never uploaded: 400 `MANIFEST_BLOB_UNKNOWN`.
    Manifest {
        repo: String,
        tag: String,
        digest: String,
    },
    /// A blob whose claimed digest is not its content's: 400 `DIGEST_INVALID`.
    Blob { repo: String, digest: String },
    /// A signature (by cosign's tag) naming a blob never uploaded: its subject stays unsigned.
    Signature {
        repo: String,
        subject: String,
        digest: String,
        tag: String,
    },
}

#[derive(Default)]
struct Tally {
    ops: Mutex<BTreeMap<&'static str, u64>>,
    requests: AtomicU64,
    retries: AtomicU64,
    answers_5xx: AtomicU64,
    answers_429: AtomicU64,
    transport_errors: AtomicU64,
    /// Answers no retry got past, and answers that were simply wrong.
    unexpected: Mutex<Vec<String>>,
    /// Pulls during the load that did not give what was pushed.
    inconsistencies: Mutex<Vec<String>>,
}

impl Tally {
    fn op(&self, name: &'static str) {
        *self.ops.lock().unwrap().entry(name).or_default() += 1;
    }

    fn unexpected(&self, what: String) {
        eprintln!("faults: UNEXPECTED {what}");
        self.unexpected.lock().unwrap().push(what);
    }

    fn inconsistent(&self, what: String) {
        eprintln!("faults: INCONSISTENT {what}");
        self.inconsistencies.lock().unwrap().push(what);
    }
}

#[derive(Default)]
struct Ledger {
    pushed: Mutex<Vec<Pushed>>,
    refused: Mutex<Vec<Refused>>,
}

/// Why a step did not succeed.
enum Miss {
    /// A 5xx, a 429 or a dropped connection: a real client tries again.
    Retry(String),
    /// Any other answer: wrong, not retried.
    Fail(String),
}

type Step<T> = Result<T, Miss>;

/// One client: its own connection pool, the admin's credentials.
struct Agent {
    http: Client,
    base: String,
    tally: Arc<Tally>,
}

fn body_text(resp: Response) -> String {
    resp.text().unwrap_or_default().chars().take(300).collect()
}

impl Agent {
    fn new(reg: &Registry, tally: Arc<Tally>) -> Agent {
        let http = admin_client()
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.status() == reqwest::StatusCode::TEMPORARY_REDIRECT && attempt.previous().len() < 3
                {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Agent {
            http,
            base: format!("http://{}", reg.host()),
            tally,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends one request: the answer unless it is one to retry.
    fn send(&self, what: &str, request: RequestBuilder) -> Step<Response> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match request.send() {
            Ok(resp) => resp,
            Err(e) => {
                self.tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Err(Miss::Retry(format!("{what}: {e}")));
            }
        };
        let status = resp.status().as_u16();
        if status >= 500 {
            self.tally.answers_5xx.fetch_add(1, Ordering::Relaxed);
            return Err(Miss::Retry(format!("{what}: {status} {}", body_text(resp))));
        }
        if status == 429 {
            self.tally.answers_429.fetch_add(1, Ordering::Relaxed);
            return Err(Miss::Retry(format!("{what}: 429 {}", body_text(resp))));
        }
        Ok(resp)
    }

    /// The answer's body; a body cut off is retried.
    fn bytes(&self, what: &str, resp: Response) -> Step<Vec<u8>> {
        resp.bytes().map(|b| b.to_vec()).map_err(|e| {
            self.tally.transport_errors.fetch_add(1, Ordering::Relaxed);
            Miss::Retry(format!("{what}: body: {e}"))
        })
    }

    /// Runs `step` until it succeeds or fails for good, backing off between attempts; a step that
    /// keeps asking for a retry is given up after [`MAX_TRIES`] (an unexpected answer).
    fn retrying<T>(&self, what: &str, mut step: impl FnMut() -> Step<T>) -> Result<T, String> {
        for attempt in 0..MAX_TRIES {
            match step() {
                Ok(value) => return Ok(value),
                Err(Miss::Fail(why)) => return Err(why),
                Err(Miss::Retry(why)) if attempt + 1 == MAX_TRIES => {
                    let why = format!("{what}: gave up after {MAX_TRIES} attempts: {why}");
                    self.tally.unexpected(why.clone());
                    return Err(why);
                }
                Err(Miss::Retry(_)) => {
                    self.tally.retries.fetch_add(1, Ordering::Relaxed);
                    let pause = (50u64 << attempt.min(5)).min(2000) + random_below(50);
                    std::thread::sleep(Duration::from_millis(pause));
                }
            }
        }
        Err(format!("{what}: no attempt"))
    }

    /// One upload session: POST, then either one PUT with the body or PATCHes then the PUT.
    fn upload_once(&self, repo: &str, bytes: &[u8], claimed: &str, chunk: Option<usize>) -> Step<Response> {
        let what = format!("upload {repo}@{claimed}");
        let resp = self.send(
            &what,
            (self.http.post(self.url(&format!("/v2/{repo}/blobs/uploads/")))).header("content-length", "0"),
        )?;
        if resp.status().as_u16() != 202 {
            return Err(Miss::Fail(format!(
                "{what}: POST answered {} {}",
                resp.status(),
                body_text(resp)
            )));
        }
        let mut location = self.url(&header(&resp, "location").unwrap_or_default());
        let mut rest = bytes;
        if let Some(size) = chunk {
            let mut start = 0;
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at(size.min(rest.len()));
                let end = start + piece.len() - 1;
                let resp = self.send(
                    &what,
                    (self.http.patch(&location))
                        .header("content-type", "application/octet-stream")
                        .header("content-range", format!("{start}-{end}"))
                        .body(piece.to_vec()),
                )?;
                if resp.status().as_u16() != 202 {
                    return Err(Miss::Fail(format!(
                        "{what}: PATCH {start}-{end} answered {} {}",
                        resp.status(),
                        body_text(resp)
                    )));
                }
                location = self.url(&header(&resp, "location").unwrap_or(location));
                start = end + 1;
                rest = tail;
            }
        }
        self.send(
            &what,
            (self.http.put(with_query(&location, &format!("digest={claimed}"))))
                .header("content-type", "application/octet-stream")
                .body(rest.to_vec()),
        )
    }

    /// Pushes a blob; a failed session is started over, as registry clients do.
    fn push_blob(&self, repo: &str, blob: &Blob) -> Result<(), String> {
        let chunk = (blob.bytes.len() > 256 * 1024).then_some(256 * 1024);
        self.retrying(&format!("push blob {repo}@{}", blob.digest), || {
            let resp = self.upload_once(repo, &blob.bytes, &blob.digest, chunk)?;
            match resp.status().as_u16() {
                201 => Ok(()),
                status => Err(Miss::Fail(format!("PUT answered {status} {}", body_text(resp)))),
            }
        })
    }

    fn put_manifest(&self, repo: &str, reference: &str, body: &[u8]) -> Step<Response> {
        self.send(
            &format!("PUT manifest {repo}:{reference}"),
            (self
                .http
                .put(self.url(&format!("/v2/{repo}/manifests/{reference}"))))
            .header("content-type", OCI_MANIFEST)
            .body(body.to_vec()),
        )
    }

    fn push_manifest(&self, repo: &str, reference: &str, body: &[u8]) -> Result<(), String> {
        self.retrying(&format!("push manifest {repo}:{reference}"), || {
            let resp = self.put_manifest(repo, reference, body)?;
            match resp.status().as_u16() {
                201 => Ok(()),
                status => Err(Miss::Fail(format!("answered {status} {}", body_text(resp)))),
            }
        })
    }

    /// GET (with redirects to S3 followed; `manifest`: every manifest type accepted): (status, body).
    fn fetch(&self, path: &str, manifest: bool) -> Result<(u16, Vec<u8>), String> {
        self.retrying(&format!("GET {path}"), || {
            let mut request = self.http.get(self.url(path));
            if manifest {
                request = request.header("accept", accept_all());
            }
            let resp = self.send(path, request)?;
            let status = resp.status().as_u16();
            Ok((status, self.bytes(path, resp)?))
        })
    }

    fn json(&self, path: &str) -> Result<Value, String> {
        let (status, body) = self.fetch(path, false)?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not JSON: {e}"))
    }

    /// Pulls `pushed` by tag: its manifest and every blob byte for byte. `Err` names what differs.
    fn pull(&self, pushed: &Pushed) -> Result<(), String> {
        let (repo, tag) = (&pushed.repo, &pushed.tag);
        let (status, body) = self.fetch(&format!("/v2/{repo}/manifests/{tag}"), true)?;
        if status != 200 || sha256(&body) != pushed.digest || body != pushed.manifest {
            return Err(format!(
                "{repo}:{tag} answered {status} with {} bytes (digest {}), pushed {}",
                body.len(),
                sha256(&body),
                pushed.digest
            ));
        }
        // The trusted project serves no blob of an unsigned image, not even to the admin.
        let refused = repo.starts_with(&format!("{TRUSTED}/")) && pushed.signature.is_none();
        for blob in &pushed.blobs {
            let (status, bytes) = self.fetch(&format!("/v2/{repo}/blobs/{}", blob.digest), false)?;
            if refused
                && status == 412
                && error_codes(&String::from_utf8_lossy(&bytes)) == ["PROJECTPOLICYVIOLATION"]
            {
                continue;
            }
            if status != 200 || bytes != *blob.bytes {
                return Err(format!(
                    "{repo}@{}: answered {status} with {} bytes, pushed {}",
                    blob.digest,
                    bytes.len(),
                    blob.bytes.len()
                ));
            }
        }
        Ok(())
    }
}

fn random_config() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "comment": hex::encode(random_bytes(12)),
    }))
    .unwrap()
}

/// A layer: mostly small, one in ten over 256 KiB (uploaded in PATCH chunks).
fn random_layer() -> Vec<u8> {
    let size = if random_below(10) == 0 {
        300 * 1024 + random_below(700 * 1024)
    } else {
        128 + random_below(32 * 1024)
    };
    random_bytes(usize::try_from(size).unwrap())
}

/// A cosign signature of `subject` (a manifest of `subject_size` bytes): the simple-signing
/// payload blob and the manifest, by cosign's tag or as a referrer.
fn signature_of(repo: &str, subject: &str, subject_size: u64, style: SigStyle) -> (Vec<Blob>, Vec<u8>) {
    let payload = Blob::new(
        serde_json::to_vec(&json!({
            "critical": {
                "identity": {"docker-reference": repo},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature"
            },
            "optional": {"nonce": hex::encode(random_bytes(8))}
        }))
        .unwrap(),
    );
    let empty = Blob::new(b"{}".to_vec());
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": empty.digest, "size": 2},
        "layers": [{
            "mediaType": COSIGN_SIMPLE_SIGNING,
            "digest": payload.digest,
            "size": payload.bytes.len(),
            "annotations": {COSIGN_ANNOTATION: base64(&random_bytes(64))},
        }],
    });
    if style == SigStyle::Referrer {
        manifest["artifactType"] = json!(COSIGN_SIGNATURE);
        manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size});
    }
    (
        vec![empty, payload],
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
}

fn base64(bytes: &[u8]) -> String {
    use base64ct::Encoding as _;
    base64ct::Base64::encode_string(bytes)
}

fn scheme_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// Pushes an image (and a signature, before or after it); `Ok` once every step was acknowledged.
fn push_image(
    agent: &Agent,
    repo: &str,
    tag: &str,
    signed: Option<(SigStyle, bool)>,
) -> Result<Pushed, String> {
    let mut blobs = vec![Blob::new(random_config()), Blob::new(random_layer())];
    if random_below(3) == 0 {
        blobs.push(Blob::new(random_layer()));
    }
    for blob in &blobs {
        agent.push_blob(repo, blob)?;
    }
    let descriptors: Vec<Descriptor> = (blobs.iter().skip(1))
        .map(|b| Descriptor::of(OCI_LAYER, &b.bytes))
        .collect();
    let manifest = image_manifest(
        &Descriptor::of(OCI_CONFIG, &blobs[0].bytes),
        &descriptors,
        None,
        None,
    );
    let digest = sha256(&manifest);
    let mut signature = None;
    let mut early = false;
    if let Some((style, first)) = signed {
        let (sig_blobs, sig_manifest) = signature_of(repo, &digest, manifest.len() as u64, style);
        for blob in &sig_blobs {
            agent.push_blob(repo, blob)?;
        }
        let sig_digest = sha256(&sig_manifest);
        signature = Some(Signature {
            tag: scheme_tag(&digest),
            digest: sig_digest,
            style,
            manifest: sig_manifest,
        });
        early = first;
    }
    let push_signature = |signature: &Signature| match signature.style {
        SigStyle::Tag => agent.push_manifest(repo, &signature.tag, &signature.manifest),
        SigStyle::Referrer => agent.push_manifest(repo, &signature.digest, &signature.manifest),
    };
    if let (Some(signature), true) = (&signature, early) {
        push_signature(signature)?;
    }
    agent.push_manifest(repo, tag, &manifest)?;
    if let (Some(signature), false) = (&signature, early) {
        push_signature(signature)?;
    }
    Ok(Pushed {
        repo: repo.to_owned(),
        tag: tag.to_owned(),
        digest,
        manifest,
        blobs,
        signature,
    })
}

/// A push the registry must refuse, of one of three kinds in turn.
fn refused_push(agent: &Agent, ledger: &Ledger, repo: &str, tag: &str, kind: u64) -> Result<(), String> {
    let expect = |what: &str, status: u16, code: &str, resp: Response| -> Step<()> {
        let got = resp.status().as_u16();
        let body = resp.text().unwrap_or_default();
        if got == status && error_codes(&body).iter().any(|c| c == code) {
            Ok(())
        } else {
            Err(Miss::Fail(format!(
                "{what}: expected {status} {code}, got {got} {body}"
            )))
        }
    };
    match kind % 3 {
        0 => {
            let config = Blob::new(random_config());
            agent.push_blob(repo, &config)?;
            let missing = Descriptor::of(OCI_LAYER, &random_bytes(512));
            let manifest = image_manifest(&Descriptor::of(OCI_CONFIG, &config.bytes), &[missing], None, None);
            let digest = sha256(&manifest);
            agent.retrying(&format!("refused manifest {repo}:{tag}"), || {
                let resp = agent.put_manifest(repo, tag, &manifest)?;
                expect(
                    "manifest naming a missing blob",
                    400,
                    "MANIFEST_BLOB_UNKNOWN",
                    resp,
                )
            })?;
            ledger.refused.lock().unwrap().push(Refused::Manifest {
                repo: repo.to_owned(),
                tag: tag.to_owned(),
                digest,
            });
        }
        1 => {
            let bytes = random_bytes(2048);
            let claimed = sha256(&random_bytes(32));
            agent.retrying(&format!("refused blob {repo}@{claimed}"), || {
                let resp = agent.upload_once(repo, &bytes, &claimed, None)?;
                expect("blob with a wrong digest", 400, "DIGEST_INVALID", resp)
            })?;
            ledger.refused.lock().unwrap().push(Refused::Blob {
                repo: repo.to_owned(),
                digest: claimed,
            });
        }
        _ => {
            // An unsigned image (acknowledged) and a signature of it the registry refuses.
            let pushed = push_image(agent, repo, tag, None)?;
            let (sig_blobs, manifest) =
                signature_of(repo, &pushed.digest, pushed.manifest.len() as u64, SigStyle::Tag);
            agent.push_blob(repo, &sig_blobs[0])?; // the payload (sig_blobs[1]) is never uploaded
            let sig_tag = scheme_tag(&pushed.digest);
            agent.retrying(&format!("refused signature {repo}:{sig_tag}"), || {
                let resp = agent.put_manifest(repo, &sig_tag, &manifest)?;
                expect(
                    "signature naming a missing blob",
                    400,
                    "MANIFEST_BLOB_UNKNOWN",
                    resp,
                )
            })?;
            ledger.refused.lock().unwrap().push(Refused::Signature {
                repo: repo.to_owned(),
                subject: pushed.digest.clone(),
                digest: sha256(&manifest),
                tag: sig_tag,
            });
            ledger.pushed.lock().unwrap().push(pushed);
        }
    }
    Ok(())
}

/// One client's loop until `deadline`.
fn client_loop(id: usize, agent: &Agent, ledger: &Ledger, deadline: Instant) {
    let tally = &agent.tally;
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let tag = format!("c{id:02}-{n}");
        let own_or_shared = |project: &str| {
            if random_below(4) == 0 {
                format!("{project}/shared")
            } else {
                format!("{project}/c{id:02}")
            }
        };
        let roll = random_below(100);
        let outcome = if roll < 30 {
            tally.op("push unsigned");
            let project = if random_below(5) == 0 { TRUSTED } else { PLAIN };
            push_image(agent, &own_or_shared(project), &tag, None)
                .map(|p| ledger.pushed.lock().unwrap().push(p))
        } else if roll < 55 {
            let style = if random_below(2) == 0 {
                SigStyle::Tag
            } else {
                SigStyle::Referrer
            };
            let early = random_below(3) == 0;
            tally.op(if early {
                "push signed, signature first"
            } else {
                "push signed"
            });
            push_image(agent, &own_or_shared(TRUSTED), &tag, Some((style, early)))
                .map(|p| ledger.pushed.lock().unwrap().push(p))
        } else if roll < 90 {
            let pick = {
                let pushed = ledger.pushed.lock().unwrap();
                (!pushed.is_empty())
                    .then(|| pushed[usize::try_from(random_below(pushed.len() as u64)).unwrap()].clone())
            };
            match pick {
                Some(pushed) => {
                    tally.op("pull");
                    if let Err(why) = agent.pull(&pushed) {
                        tally.inconsistent(format!("pull during the load: {why}"));
                    }
                    Ok(())
                }
                None => Ok(()),
            }
        } else {
            tally.op("refused push");
            let project = if random_below(2) == 0 { TRUSTED } else { PLAIN };
            refused_push(agent, ledger, &own_or_shared(project), &tag, n)
        };
        if let Err(why) = outcome {
            // Retries given up were recorded as they happened; anything else is a wrong answer.
            if !why.contains("gave up after") {
                tally.unexpected(why);
            }
        }
    }
}

/// Runs the load: `CLIENTS` threads until `duration` has passed. Returns the wall time.
fn run_load(reg: &Registry, tally: &Arc<Tally>, ledger: &Arc<Ledger>, duration: Duration) -> Duration {
    let started = Instant::now();
    let deadline = started + duration;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let agent = Agent::new(reg, Arc::clone(tally));
            let ledger = Arc::clone(ledger);
            std::thread::spawn(move || client_loop(id, &agent, &ledger, deadline))
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread panicked");
    }
    started.elapsed()
}

fn setup_projects(reg: &Registry) {
    create_project(reg, PLAIN, true, Value::Null);
    create_project(reg, TRUSTED, true, json!({"enable_content_trust_cosign": "true"}));
}

/// Every page of a management API list.
fn api_list(agent: &Agent, path: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for page in 1..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let items = agent.json(&format!("{path}{sep}page={page}&page_size=100"))?;
        let items = items.as_array().cloned().unwrap_or_default();
        let last = items.len() < 100;
        out.extend(items);
        if last {
            break;
        }
    }
    Ok(out)
}

/// Every tag of `repo` through `/tags/list` pagination.
fn listed_tags(agent: &Agent, repo: &str) -> Result<BTreeSet<String>, String> {
    let mut tags = BTreeSet::new();
    let mut path = format!("/v2/{repo}/tags/list?n=100");
    for _ in 0..10_000 {
        let resp = agent.retrying(&format!("GET {path}"), || {
            agent.send(&path, agent.http.get(agent.url(&path)))
        })?;
        if resp.status().as_u16() == 404 {
            return Ok(tags);
        }
        let next = next_link(&resp);
        let page: Value = resp.json().map_err(|e| format!("GET {path}: {e}"))?;
        tags.extend(strings(&page["tags"]));
        match next {
            Some(next) => path = next,
            None => return Ok(tags),
        }
    }
    Ok(tags)
}

/// The checks after the load, faults off: one line per inconsistency found.
fn check_everything(reg: &Registry, tally: &Arc<Tally>, ledger: &Ledger) -> Vec<String> {
    let agent = Agent::new(reg, Arc::clone(tally));
    let pushed = ledger.pushed.lock().unwrap().clone();
    let mut problems: Vec<String> = Vec::new();
    let anonymous = Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // 1. Every acknowledged push pulls byte for byte, with its signature where it has one; in the
    //    trusted project, anonymous pulls are served exactly when the image is signed.
    let chunks: Vec<Vec<Pushed>> = pushed
        .chunks(pushed.len().div_ceil(CLIENTS).max(1))
        .map(<[Pushed]>::to_vec)
        .collect();
    let found: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (chunks.iter())
            .map(|chunk| {
                let agent = Agent::new(reg, Arc::clone(tally));
                let anonymous = anonymous.clone();
                scope.spawn(move || {
                    let mut problems = Vec::new();
                    for p in chunk {
                        if let Err(why) = agent.pull(p) {
                            problems.push(format!("acknowledged push not pulled: {why}"));
                        }
                        if let Some(problem) = check_signature(&agent, &anonymous, p) {
                            problems.push(problem);
                        }
                    }
                    problems
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    problems.extend(found.into_iter().flatten());

    // 2. Every refused push left nothing visible.
    for refused in ledger.refused.lock().unwrap().iter() {
        match refused {
            Refused::Manifest { repo, tag, digest } => {
                for reference in [tag, digest] {
                    match agent.fetch(&format!("/v2/{repo}/manifests/{reference}"), true) {
                        Ok((404, _)) => {}
                        other => problems.push(format!(
                            "refused manifest {repo}:{reference} answers {:?}",
                            other.map(|(s, _)| s)
                        )),
                    }
                }
            }
            Refused::Blob { repo, digest } => {
                match agent.fetch(&format!("/v2/{repo}/blobs/{digest}"), false) {
                    Ok((404, _)) => {}
                    other => problems.push(format!(
                        "refused blob {repo}@{digest} answers {:?}",
                        other.map(|(s, _)| s)
                    )),
                }
            }
            Refused::Signature {
                repo,
                subject,
                digest,
                tag,
            } => {
                for reference in [tag, digest] {
                    match agent.fetch(&format!("/v2/{repo}/manifests/{reference}"), true) {
                        Ok((404, _)) => {}
                        other => problems.push(format!(
                            "refused signature {repo}:{reference} answers {:?}",
                            other.map(|(s, _)| s)
                        )),
                    }
                }
                let (project, name) = repo.split_once('/').unwrap();
                match agent.json(&format!(
                    "/api/v2.0/projects/{project}/repositories/{name}/artifacts/{subject}/accessories?page_size=100"
                )) {
                    Ok(list) if list.as_array().is_some_and(|a| a.iter().all(|x| x["digest"] != digest.as_str())) => {}
                    other => problems.push(format!(
                        "the refused signature {digest} of {repo}@{subject} is listed: {other:?}"
                    )),
                }
            }
        }
    }

    // 3. The listings hold exactly the acknowledged pushes: tags, the management API's artifacts
    //    with their tags and accessories, the catalog.
    let mut by_repo: BTreeMap<String, Vec<&Pushed>> = BTreeMap::new();
    for p in &pushed {
        by_repo.entry(p.repo.clone()).or_default().push(p);
    }
    let catalog: BTreeSet<String> = match agent.json("/v2/_catalog?n=1000") {
        Ok(page) => strings(&page["repositories"]).into_iter().collect(),
        Err(why) => {
            problems.push(format!("catalog: {why}"));
            BTreeSet::new()
        }
    };
    for repo in by_repo.keys() {
        if !catalog.contains(repo) {
            problems.push(format!("the catalog does not list {repo}"));
        }
    }
    let repos: BTreeSet<&String> = catalog.iter().chain(by_repo.keys()).collect();
    for repo in repos {
        let acked = by_repo.get(repo.as_str()).cloned().unwrap_or_default();
        let mut expected_tags: BTreeSet<String> = BTreeSet::new();
        for p in &acked {
            expected_tags.insert(p.tag.clone());
            if let Some(s) = p.signature.as_ref().filter(|s| s.style == SigStyle::Tag) {
                expected_tags.insert(s.tag.clone());
            }
        }
        match listed_tags(&agent, repo) {
            Ok(tags) if tags == expected_tags => {}
            Ok(tags) => problems.push(format!(
                "{repo}: tags listed but not acknowledged {:?}, acknowledged but not listed {:?}",
                tags.difference(&expected_tags).collect::<Vec<_>>(),
                expected_tags.difference(&tags).collect::<Vec<_>>()
            )),
            Err(why) => problems.push(format!("{repo}: tags: {why}")),
        }
        let (project, name) = repo.split_once('/').unwrap();
        let artifacts = match api_list(
            &agent,
            &format!("/api/v2.0/projects/{project}/repositories/{name}/artifacts"),
        ) {
            Ok(artifacts) => artifacts,
            Err(why) => {
                problems.push(format!("{repo}: artifacts: {why}"));
                continue;
            }
        };
        let expected: BTreeMap<&str, &Pushed> = acked.iter().map(|p| (p.digest.as_str(), *p)).collect();
        let mut seen = BTreeSet::new();
        for artifact in &artifacts {
            let digest = artifact["digest"].as_str().unwrap_or_default();
            seen.insert(digest.to_owned());
            let Some(p) = expected.get(digest) else {
                problems.push(format!(
                    "{repo}: artifact {digest} listed but never acknowledged: {artifact}"
                ));
                continue;
            };
            let tags: Vec<&str> = (artifact["tags"].as_array().into_iter().flatten())
                .filter_map(|t| t["name"].as_str())
                .collect();
            if tags != [p.tag.as_str()] {
                problems.push(format!(
                    "{repo}@{digest}: listed with tags {tags:?}, pushed as {}",
                    p.tag
                ));
            }
            let accessories: Vec<&str> = (artifact["accessories"].as_array().into_iter().flatten())
                .filter_map(|a| a["digest"].as_str())
                .collect();
            let want: Vec<&str> = p.signature.iter().map(|s| s.digest.as_str()).collect();
            if accessories != want {
                problems.push(format!(
                    "{repo}@{digest}: listed with accessories {accessories:?}, pushed with {want:?}"
                ));
            }
        }
        for digest in expected.keys() {
            if !seen.contains(*digest) {
                problems.push(format!(
                    "{repo}@{digest}: acknowledged but not listed as an artifact"
                ));
            }
        }
    }
    problems
}

/// A signed push's signature is listed, resolvable and makes the image servable; an unsigned image
/// of the trusted project is refused to anonymous pulls.
fn check_signature(agent: &Agent, anonymous: &Client, p: &Pushed) -> Option<String> {
    let (project, name) = p.repo.split_once('/').unwrap();
    let anonymous_status = || -> Result<u16, String> {
        agent.retrying(&format!("anonymous GET {}:{}", p.repo, p.tag), || {
            let resp = agent.send(
                "anonymous GET",
                (anonymous.get(agent.url(&format!("/v2/{}/manifests/{}", p.repo, p.tag))))
                    .header("accept", accept_all()),
            )?;
            Ok(resp.status().as_u16())
        })
    };
    let Some(signature) = &p.signature else {
        if project == TRUSTED {
            return match anonymous_status() {
                Ok(412) => None,
                other => Some(format!(
                    "unsigned {}:{} answers {other:?} to anonymous pulls, not 412",
                    p.repo, p.tag
                )),
            };
        }
        return None;
    };
    let listed = agent.json(&format!(
        "/api/v2.0/projects/{project}/repositories/{name}/artifacts/{}/accessories?page_size=100",
        p.digest
    ));
    let listed_ok = listed.as_ref().is_ok_and(|l| {
        (l.as_array().into_iter().flatten())
            .any(|a| a["digest"] == signature.digest.as_str() && a["type"] == "signature.cosign")
    });
    if !listed_ok {
        return Some(format!(
            "{}@{}: signature {} ({:?}) not listed as a cosign signature: {listed:?}",
            p.repo, p.digest, signature.digest, signature.style
        ));
    }
    match signature.style {
        SigStyle::Tag => match agent.fetch(&format!("/v2/{}/manifests/{}", p.repo, signature.tag), true) {
            Ok((200, body)) if body == signature.manifest => {}
            other => {
                return Some(format!(
                    "{}:{} answers {:?}",
                    p.repo,
                    signature.tag,
                    other.map(|(s, _)| s)
                ))
            }
        },
        SigStyle::Referrer => match agent.json(&format!("/v2/{}/referrers/{}", p.repo, p.digest)) {
            Ok(index)
                if (index["manifests"].as_array().into_iter().flatten())
                    .any(|m| m["digest"] == signature.digest.as_str()) => {}
            other => {
                return Some(format!(
                    "{}@{}: referrers do not list {}: {other:?}",
                    p.repo, p.digest, signature.digest
                ))
            }
        },
    }
    match anonymous_status() {
        Ok(200) => None,
        other => Some(format!(
            "signed {}:{} answers {other:?} to anonymous pulls, not 200",
            p.repo, p.tag
        )),
    }
}

/// The causes of the 5xx answers Berth logged (`request failed`), counted by their first words.
fn logged_causes(log: &str) -> BTreeMap<String, u64> {
    let mut causes = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("request failed")) {
        let cause = line.split("cause=").nth(1).unwrap_or(line);
        let short: String = cause
            .trim_matches('"')
            .split([':', '('])
            .take(2)
            .collect::<Vec<_>>()
            .join(":")
            .chars()
            .take(100)
            .collect();
        *causes.entry(short).or_insert(0) += 1;
    }
    causes
}

fn print_proxy(name: &str, stats: &FaultStats) {
    eprintln!(
        "faults: {name} proxy: {} calls, {} faults injected {:?}; {} presigned client GETs passed through",
        stats.calls,
        stats.total_faults(),
        stats.faults,
        stats.presigned
    );
}

fn print_tally(tally: &Tally, wall: Duration) {
    let ops = tally.ops.lock().unwrap();
    let total: u64 = ops.values().sum();
    eprintln!(
        "faults: {total} operations in {:.0} s by {CLIENTS} clients: {ops:?}",
        wall.as_secs_f64()
    );
    eprintln!(
        "faults: {} requests to Berth; {} retries by the clients (5xx answers {}, 429 answers {}, dropped connections or bodies {})",
        tally.requests.load(Ordering::Relaxed),
        tally.retries.load(Ordering::Relaxed),
        tally.answers_5xx.load(Ordering::Relaxed),
        tally.answers_429.load(Ordering::Relaxed),
        tally.transport_errors.load(Ordering::Relaxed),
    );
}

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (status.lines().find(|l| l.starts_with("VmRSS:")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn sixteen_clients_under_injected_s3_and_dynamodb_faults_lose_nothing_and_leave_nothing_half_done() {
    if skip_unless_berth("the faults are injected between Berth and its AWS stores") {
        return;
    }
    if deployment() == Deployment::Embedded {
        eprintln!(
            "SKIPPED on embedded storage: the faults sit between Berth and S3/DynamoDB; run with \
             BERTH_E2E_TARGET=aws (or lambda) on the local stack"
        );
        return;
    }
    let Some(mut env) = local_stack_env() else {
        return;
    };
    let value = |env: &[(String, String)], key: &str| {
        (env.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let seed = seed();
    let s3 = FaultProxy::start(Service::S3, &value(&env, "AWS_ENDPOINT_URL_S3"), seed, 0.0);
    let dynamodb = FaultProxy::start(
        Service::DynamoDb,
        &value(&env, "AWS_ENDPOINT_URL_DYNAMODB"),
        seed.rotate_left(17),
        0.0,
    );
    for (key, v) in env.iter_mut() {
        match key.as_str() {
            "AWS_ENDPOINT_URL_S3" => *v = s3.url(),
            "AWS_ENDPOINT_URL_DYNAMODB" => *v = dynamodb.url(),
            _ => {}
        }
    }
    let mut reg = Registry::start_with_env(env);
    setup_projects(&reg);
    let duration = load_duration();
    eprintln!(
        "faults: target {:?}, seed {seed}, {CLIENTS} clients for {} s, faults on {:.0} % of S3 and DynamoDB calls",
        reg.deployment,
        duration.as_secs(),
        FAULT_RATE * 100.0
    );

    let tally = Arc::new(Tally::default());
    let ledger = Arc::new(Ledger::default());
    s3.set_rate(FAULT_RATE);
    dynamodb.set_rate(FAULT_RATE);
    let wall = run_load(&reg, &tally, &ledger, duration);
    s3.set_rate(0.0);
    dynamodb.set_rate(0.0);
    let (s3_stats, dynamodb_stats) = (s3.stats(), dynamodb.stats());

    let checked = Instant::now();
    let mut inconsistencies = tally.inconsistencies.lock().unwrap().clone();
    inconsistencies.extend(check_everything(&reg, &tally, &ledger));
    let log = reg.server_log();
    let causes = logged_causes(&log);
    reg.stop();
    let (ok, summary, text) = reg.rebuild_views();
    if !ok || summary["identical"] != Value::Bool(true) {
        inconsistencies.push(format!("the views differ from a rebuild from the log:\n{text}"));
    }

    let mut unexpected = tally.unexpected.lock().unwrap().clone();
    // A 5xx is the client's to retry only when the store failed for good; a fault the server could
    // absorb itself (a body cut off, its own conditional write met again) is a bug.
    for line in log.lines().filter(|l| l.contains("request failed")) {
        if ABSORBABLE.iter().any(|a| line.contains(a)) {
            let cause: String = line.chars().take(400).collect();
            unexpected.push(format!("a 5xx for a fault Berth should absorb: {cause}"));
        }
    }
    print_tally(&tally, wall);
    print_proxy("S3", &s3_stats);
    print_proxy("DynamoDB", &dynamodb_stats);
    eprintln!(
        "faults: {} faults injected in all; the 5xx answers' causes in Berth's log: {causes:?}",
        s3_stats.total_faults() + dynamodb_stats.total_faults()
    );
    let (acknowledged, signed) = {
        let pushed = ledger.pushed.lock().unwrap();
        (
            pushed.len(),
            pushed.iter().filter(|p| p.signature.is_some()).count(),
        )
    };
    eprintln!(
        "faults: {acknowledged} pushes acknowledged ({signed} signed), {} refused as they must be; {} events in the log; checked in {:.0} s",
        ledger.refused.lock().unwrap().len(),
        summary["events"],
        checked.elapsed().as_secs_f64()
    );
    eprintln!(
        "faults: unexpected answers {}, inconsistencies {}",
        unexpected.len(),
        inconsistencies.len()
    );
    for line in unexpected.iter().chain(&inconsistencies).take(30) {
        eprintln!("  {line}");
    }
    assert!(
        s3_stats.total_faults() > 0 && dynamodb_stats.total_faults() > 0,
        "no fault was injected: the proxies were not in the way"
    );
    assert!(unexpected.is_empty(), "{} unexpected answers", unexpected.len());
    assert!(
        inconsistencies.is_empty(),
        "{} inconsistencies",
        inconsistencies.len()
    );
}

#[test]
fn the_same_load_without_faults_on_embedded_storage_has_no_error_and_bounded_memory() {
    if skip_unless_berth("Berth's memory is measured") {
        return;
    }
    if deployment() != Deployment::Embedded {
        eprintln!(
            "SKIPPED under BERTH_E2E_TARGET={:?}: the no-fault run measures the embedded host",
            deployment()
        );
        return;
    }
    let mut reg = Registry::start();
    setup_projects(&reg);
    let pid = reg.pid().expect("the server runs");
    let duration = load_duration();
    eprintln!(
        "faults: no faults, embedded storage, {CLIENTS} clients for {} s",
        duration.as_secs()
    );
    let start_kib = rss_kib(pid);

    let tally = Arc::new(Tally::default());
    let ledger = Arc::new(Ledger::default());
    let peak = Arc::new(AtomicU64::new(start_kib));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut samples = vec![];
            while !done.load(Ordering::SeqCst) {
                let kib = rss_kib(pid);
                peak.fetch_max(kib, Ordering::SeqCst);
                samples.push((started.elapsed(), kib));
                std::thread::sleep(Duration::from_millis(500));
            }
            samples
        })
    };
    let wall = run_load(&reg, &tally, &ledger, duration);
    let end_kib = rss_kib(pid);
    done.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    // RSS at the end of each sixth of the run.
    let at = |fraction: f64| {
        let t = wall.mul_f64(fraction);
        (samples.iter().rev().find(|(when, _)| *when <= t)).map_or(start_kib, |(_, kib)| *kib)
    };
    let timeline: Vec<(f64, u64)> = (1..=6)
        .map(|i| (wall.as_secs_f64() * f64::from(i) / 6.0, at(f64::from(i) / 6.0)))
        .collect();

    // Reported before the checks, which take long after a long run.
    let mib = |kib: u64| kib as f64 / 1024.0;
    eprintln!(
        "faults: RSS of berth serve: {:.1} MiB at start, {:.1} MiB at the end, {:.1} MiB at most; {}",
        mib(start_kib),
        mib(end_kib),
        mib(peak.load(Ordering::SeqCst)),
        (timeline.iter())
            .map(|(t, kib)| format!("{:.0} MiB at {t:.0} s", mib(*kib)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut inconsistencies = tally.inconsistencies.lock().unwrap().clone();
    inconsistencies.extend(check_everything(&reg, &tally, &ledger));
    reg.stop();
    let (ok, summary, text) = reg.rebuild_views();
    if !ok || summary["identical"] != Value::Bool(true) {
        inconsistencies.push(format!("the views differ from a rebuild from the log:\n{text}"));
    }
    let unexpected = tally.unexpected.lock().unwrap().clone();
    print_tally(&tally, wall);
    eprintln!(
        "faults: {} pushes acknowledged, {} refused as they must be; {} events in the log",
        ledger.pushed.lock().unwrap().len(),
        ledger.refused.lock().unwrap().len(),
        summary["events"]
    );
    // A 429 (an append that lost every race in a repository sixteen clients write to: the log's
    // per-repository stream, which issue 13 splits) tells the client to try again, and it did:
    // reported, not an error. A 5xx or a dropped connection without faults is one.
    let errors = tally.answers_5xx.load(Ordering::Relaxed) + tally.transport_errors.load(Ordering::Relaxed);
    eprintln!(
        "faults: errors {errors}, 429 answers retried {}, unexpected answers {}, inconsistencies {}",
        tally.answers_429.load(Ordering::Relaxed),
        unexpected.len(),
        inconsistencies.len()
    );
    for line in unexpected.iter().chain(&inconsistencies).take(30) {
        eprintln!("  {line}");
    }
    assert_eq!(errors, 0, "answers retried without faults");
    assert!(unexpected.is_empty(), "{} unexpected answers", unexpected.len());
    assert!(
        inconsistencies.is_empty(),
        "{} inconsistencies",
        inconsistencies.len()
    );
    let last_third_kib = end_kib.saturating_sub(at(4.0 / 6.0));
    eprintln!(
        "faults: RSS growth over the last third of the run: {:.1} MiB",
        mib(last_third_kib)
    );
    if duration.as_secs() >= PLATEAU_MIN_SECS {
        assert!(
            last_third_kib <= PLATEAU_GROWTH_MIB * 1024,
            "RSS still grew {:.1} MiB over the last third (flat: at most {PLATEAU_GROWTH_MIB} MiB)",
            mib(last_third_kib)
        );
    }
    assert!(
        end_kib <= start_kib + RSS_GROWTH_BOUND_MIB * 1024,
        "RSS grew from {:.1} to {:.1} MiB (bound: {RSS_GROWTH_BOUND_MIB} MiB of growth)",
        mib(start_kib),
        mib(end_kib)
    );
}
