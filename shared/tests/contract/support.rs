//! Builders and helpers shared by the contract suites: names, digests, deterministic content, byte
//! streams, and events as the application would append them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use berth::domain::projection::{ops_for, ManifestRecord, ReferrerRecord, ViewOp};
use berth::domain::{Algorithm, Digest, Event, EventEnvelope, RecordedEvent, RepoName, StreamId, Tag};
use berth::ports::{BlobError, BlobRead, ByteStream};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.example.config.v1+json";
pub const MANIFEST_SIZE: u64 = 512;

pub fn repo(name: &str) -> RepoName {
    name.parse()
        .unwrap_or_else(|e| panic!("{name:?} is not a repository name: {e}"))
}

pub fn tag(name: &str) -> Tag {
    name.parse()
        .unwrap_or_else(|e| panic!("{name:?} is not a tag: {e}"))
}

pub fn tags(names: &[&str]) -> Vec<Tag> {
    names.iter().map(|n| tag(n)).collect()
}

pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::compute(Algorithm::Sha256, bytes)
}

pub fn sha512(bytes: &[u8]) -> Digest {
    Digest::compute(Algorithm::Sha512, bytes)
}

/// A digest named after `label` (the sha256 of the label), for views where no content exists.
pub fn digest(label: &str) -> Digest {
    sha256(label.as_bytes())
}

/// `len` deterministic pseudo-random bytes (xorshift), different for each `seed`, so that any
/// misplaced, repeated or dropped slice shows up in a comparison.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A request body carrying `data` in chunks of `chunk` bytes (the last one shorter).
pub fn body(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

/// A request body that yields `before` chunk by chunk, then fails like a dropped connection, then
/// would yield `after` (which no adapter may keep: the body ended at the error).
pub fn failing_body(before: &[&[u8]], after: &[u8]) -> ByteStream {
    let mut items: Vec<Result<Bytes, std::io::Error>> =
        before.iter().map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    items.push(Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "client went away",
    )));
    items.push(Ok(Bytes::copy_from_slice(after)));
    Box::pin(futures_util::stream::iter(items))
}

/// Every byte of a blob read.
pub async fn collect(mut read: BlobRead) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = read.body.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("reading the blob body failed: {e}"));
        out.extend_from_slice(&chunk);
    }
    out
}

/// Describes a `get` result for assertion messages (`BlobRead` has no `Debug`).
pub fn describe_read(result: &Result<BlobRead, BlobError>) -> String {
    match result {
        Ok(read) => format!("Ok(a blob of {} bytes)", read.size),
        Err(e) => format!("Err({e:?})"),
    }
}

/// Asserts that `result` is `UploadUnknown`.
pub fn assert_upload_unknown<T: Debug>(result: Result<T, BlobError>, what: &str) {
    assert!(
        matches!(result, Err(BlobError::UploadUnknown)),
        "{what}: expected UploadUnknown, got {result:?}"
    );
}

/// The event time every builder uses: with sub-second digits, to catch adapters that round it.
pub fn time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:34:56.789123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn envelope(event: Event) -> EventEnvelope {
    EventEnvelope {
        id: uuid::Uuid::new_v4().to_string(),
        time: time(),
        principal: "contract-suite".to_string(),
        event,
    }
}

pub fn blob_uploaded(repository: &RepoName, digest: &Digest, size: u64) -> Event {
    Event::BlobUploadCompleted {
        repository: repository.clone(),
        digest: digest.clone(),
        size,
    }
}

pub fn blob_unlinked(repository: &RepoName, digest: &Digest) -> Event {
    Event::BlobUnlinked {
        repository: repository.clone(),
        digest: digest.clone(),
        size: 1,
    }
}

fn annotations_for(digest: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("org.example.digest".to_string(), digest.to_string()),
        (
            "org.opencontainers.image.title".to_string(),
            "contract".to_string(),
        ),
    ])
}

/// An image manifest (config media type set, no artifact type) referring to two blobs.
pub fn manifest_pushed(repository: &RepoName, digest: &Digest, subject: Option<&Digest>) -> Event {
    Event::ManifestPushed {
        repository: repository.clone(),
        digest: digest.clone(),
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        size: MANIFEST_SIZE,
        subject: subject.cloned(),
        artifact_type: None,
        config_media_type: Some(CONFIG_MEDIA_TYPE.to_string()),
        annotations: annotations_for(digest),
        annotations_omitted: false,
        blobs: vec![self::digest("config"), self::digest("layer")],
        manifests: vec![],
        content: None,
    }
}

/// An artifact manifest with an explicit artifact type, referring to `subject`.
pub fn artifact_pushed(
    repository: &RepoName,
    digest: &Digest,
    subject: &Digest,
    artifact_type: &str,
) -> Event {
    Event::ManifestPushed {
        repository: repository.clone(),
        digest: digest.clone(),
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        size: MANIFEST_SIZE + 1,
        subject: Some(subject.clone()),
        artifact_type: Some(artifact_type.to_string()),
        config_media_type: Some(CONFIG_MEDIA_TYPE.to_string()),
        annotations: BTreeMap::new(),
        annotations_omitted: false,
        blobs: vec![],
        manifests: vec![],
        content: None,
    }
}

/// The manifests-view record of `manifest_pushed(_, digest, subject)`.
pub fn expected_manifest(digest: &Digest, subject: Option<&Digest>) -> ManifestRecord {
    ManifestRecord {
        digest: digest.clone(),
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        size: MANIFEST_SIZE,
        subject: subject.cloned(),
        artifact_type: None,
        config_media_type: Some(CONFIG_MEDIA_TYPE.to_string()),
        annotations: annotations_for(digest),
        annotations_omitted: false,
        blobs: vec![self::digest("config"), self::digest("layer")],
        manifests: vec![],
        pushed_at: time(),
        content: None,
    }
}

/// The referrer descriptor of `manifest_pushed(_, digest, Some(_))`: its artifact type falls back to
/// the config media type.
pub fn expected_referrer(digest: &Digest) -> ReferrerRecord {
    ReferrerRecord {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        digest: digest.clone(),
        size: MANIFEST_SIZE,
        artifact_type: Some(CONFIG_MEDIA_TYPE.to_string()),
        annotations: annotations_for(digest),
        annotations_omitted: false,
    }
}

/// The referrer descriptor of `artifact_pushed(_, digest, _, artifact_type)`.
pub fn expected_artifact_referrer(digest: &Digest, artifact_type: &str) -> ReferrerRecord {
    ReferrerRecord {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        digest: digest.clone(),
        size: MANIFEST_SIZE + 1,
        artifact_type: Some(artifact_type.to_string()),
        annotations: BTreeMap::new(),
        annotations_omitted: false,
    }
}

pub fn tag_moved(repository: &RepoName, tag: &str, digest: &Digest, previous: Option<&Digest>) -> Event {
    Event::TagMoved {
        repository: repository.clone(),
        tag: self::tag(tag),
        digest: digest.clone(),
        previous: previous.cloned(),
    }
}

pub fn tag_deleted(repository: &RepoName, tag: &str, digest: &Digest) -> Event {
    Event::TagDeleted {
        repository: repository.clone(),
        tag: self::tag(tag),
        digest: digest.clone(),
    }
}

pub fn manifest_deleted(repository: &RepoName, digest: &Digest, subject: Option<&Digest>) -> Event {
    Event::ManifestDeleted {
        repository: repository.clone(),
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        subject: subject.cloned(),
        artifact_type: None,
        config_media_type: None,
    }
}

/// Numbers events as a log would (global sequence, per-stream version) so that their projection ops
/// can be computed without a log.
#[derive(Default)]
pub struct History {
    sequence: u64,
    versions: HashMap<StreamId, u64>,
}

impl History {
    pub fn record(&mut self, event: Event) -> RecordedEvent {
        let stream = StreamId::repository(event.repository().expect("a repository event"));
        let version = self.versions.entry(stream.clone()).or_insert(0);
        *version += 1;
        self.sequence += 1;
        RecordedEvent {
            position: berth::domain::LogPosition::sequence(self.sequence),
            stream,
            version: *version,
            envelope: envelope(event),
        }
    }

    /// The projection ops of `events`, in order.
    pub fn ops(&mut self, events: Vec<Event>) -> Vec<ViewOp> {
        events
            .into_iter()
            .flat_map(|event| ops_for(&self.record(event)))
            .collect()
    }
}
