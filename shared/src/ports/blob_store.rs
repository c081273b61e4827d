//! Content-addressed blob storage and resumable upload sessions.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;

use crate::domain::{Digest, RepoName};

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// An upload session's id (a UUID; validated so it can name storage keys safely).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn new() -> UploadId {
        UploadId(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(s: &str) -> Option<UploadId> {
        uuid::Uuid::parse_str(s).ok().map(|u| UploadId(u.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadState {
    pub repository: RepoName,
    /// Bytes received so far.
    pub size: u64,
}

/// An inclusive byte range within a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// A stored blob as a listing shows it (for garbage collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
    /// When its object was written. A `put` of content already stored keeps the first time.
    pub modified: DateTime<Utc>,
}

/// The most blobs one page of [`BlobStore::list_blobs`] holds (S3's page size).
pub const MAX_LIST_PAGE: usize = 1_000;

pub struct BlobRead {
    /// Size of the whole blob.
    pub size: u64,
    pub body: ByteStream,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    #[error("upload session not found")]
    UploadUnknown,
    /// A chunk did not start where the upload ends.
    #[error("chunk starts at {offset} but the upload holds {size} bytes")]
    OffsetMismatch { offset: u64, size: u64 },
    #[error("content digest is {computed}")]
    DigestMismatch { computed: Digest },
    /// The backend has no space (or quota) left for the write; nothing of it was kept.
    #[error("the blob store is out of space")]
    InsufficientStorage,
    #[error("blob store backend failed: {0}")]
    Backend(String),
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        if is_out_of_space(&e) {
            BlobError::InsufficientStorage
        } else {
            BlobError::Backend(e.to_string())
        }
    }
}

/// Whether an I/O error says the file system is full (`ENOSPC`) or the user's quota is (`EDQUOT`).
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;
    /// Reads the blob, or the inclusive `range` of it (the caller has checked it against the size).
    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError>;
    /// Stores bytes whose digest the caller has verified. Idempotent.
    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), BlobError>;

    async fn upload_start(&self, repository: &RepoName) -> Result<UploadId, BlobError>;
    async fn upload_state(&self, id: &UploadId) -> Result<UploadState, BlobError>;
    /// Appends `body` at `offset`, which must be the current size; returns the new size.
    async fn upload_append(&self, id: &UploadId, offset: u64, body: ByteStream) -> Result<u64, BlobError>;
    /// Verifies the upload's content against `digest` and makes it the blob `digest` (durably); the
    /// session ends either way. Returns the size.
    async fn upload_commit(&self, id: &UploadId, digest: &Digest) -> Result<u64, BlobError>;
    async fn upload_abort(&self, id: &UploadId) -> Result<(), BlobError>;

    /// A URL from which a client can GET the blob (honouring `Range`) without passing through Berth,
    /// valid for `ttl`: a presigned object-store URL. `None` when the store has no such URL (local
    /// disk); the caller then streams the blob itself. Does not check that the blob exists.
    async fn direct_url(&self, digest: &Digest, ttl: Duration) -> Result<Option<String>, BlobError> {
        let _ = (digest, ttl);
        Ok(None)
    }

    /// Aborts every upload session that has not been written to since `cutoff` and releases its
    /// storage; returns how many it aborted. For the janitor: clients abandon sessions.
    async fn expire_uploads(&self, cutoff: DateTime<Utc>) -> Result<u64, BlobError>;

    /// One page of the stored blobs (never upload sessions), in key order (algorithm, then hex),
    /// those after `after` only, at most `limit` (capped at [`MAX_LIST_PAGE`]); a shorter page is
    /// the last. For garbage collection, which streams the store this way.
    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<StoredBlob>, BlobError>;

    /// Deletes the blobs; those already absent are no error. For garbage collection, which has
    /// decided that nothing uses them (docs/lifecycle.md, "GC protocol").
    async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), BlobError>;
}
