//! Why a use case did not happen. The HTTP edge maps each variant to one OCI error.

use crate::domain::manifest::ManifestError;
use crate::domain::{Digest, DomainError, RepoName};
use crate::ports::{BlobError, LogError, ViewError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("repository {0} is not known to the registry")]
    NameUnknown(RepoName),
    #[error("manifest {0} is not in the repository")]
    ManifestUnknown(String),
    #[error("blob {0} is not in the repository")]
    BlobUnknown(Digest),
    #[error("upload session not found in this repository")]
    UploadUnknown,
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Access(#[from] crate::domain::access::AccessError),
    #[error(transparent)]
    ManifestInvalid(#[from] ManifestError),
    #[error("manifest is larger than {limit} bytes")]
    ManifestTooLarge { limit: usize },
    #[error("content digest is {computed}, not {expected}")]
    DigestMismatch { expected: Digest, computed: Digest },
    /// A chunk did not start where the upload ends (`size` bytes so far).
    #[error("chunk must start at offset {size}")]
    RangeMismatch { size: u64 },
    /// The request conflicts with the registry's state (a garbage collection run already under
    /// way, for one); the message says which.
    #[error("{0}")]
    Conflict(String),
    /// The request asks for something that cannot be (a registry endpoint that does not answer
    /// as one, a credential with no key to seal it with); the message says what (400).
    #[error("{0}")]
    Invalid(String),
    /// Something else still uses what the request would remove (a registry a replication
    /// policy names); the message says what (412, as Harbor).
    #[error("{0}")]
    InUse(String),
    /// Refused by a project rule (a quota, for one); the message says which and why.
    #[error("{0}")]
    Denied(String),
    /// An immutable tag rule holds a tag the request would move or delete (412, Harbor's message).
    #[error(transparent)]
    Immutable(#[from] crate::domain::lifecycle::immutability::Immutable),
    /// The project's content-trust policy does not let the caller pull this (412).
    #[error("{0}")]
    PolicyViolation(String),
    #[error("too many concurrent writers on the repository; retry")]
    Contention,
    /// A fast write decision outlived its bound (`app::gc_fence`); the caller decides again on the
    /// careful path. Never reaches a client.
    #[error("the write decision took too long; decided again")]
    DecisionExpired,
    /// Too many password checks at once, or too many failed ones for this user or address.
    #[error("too many sign-in attempts; retry in {} s", retry_after_secs(*.retry_after))]
    Throttled { retry_after: std::time::Duration },
    /// The registry's storage has no space left for a write; reads still work.
    #[error("the registry's storage is full: the write was refused; retry once space is freed")]
    InsufficientStorage,
    #[error("{0}")]
    Backend(String),
}

impl From<LogError> for AppError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::InsufficientStorage => AppError::InsufficientStorage,
            other => AppError::Backend(other.to_string()),
        }
    }
}

impl From<ViewError> for AppError {
    fn from(e: ViewError) -> Self {
        AppError::Backend(e.to_string())
    }
}

impl From<BlobError> for AppError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::UploadUnknown => AppError::UploadUnknown,
            BlobError::OffsetMismatch { size, .. } => AppError::RangeMismatch { size },
            BlobError::InsufficientStorage => AppError::InsufficientStorage,
            other => AppError::Backend(other.to_string()),
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up (at least 1).
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}
