//! Translation of aws-sdk-s3 errors into the port's `BlobError`, at the adapter's edge.
//!
//! S3-compatible servers disagree on error codes (moto, s3s, MinIO, AWS), so decisions are made on the
//! HTTP status where the S3 API documents one (404 absent, 412 precondition failed, 409 conflicting
//! conditional write), and the service's error code and message are kept for everything else.

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};

use crate::ports::BlobError;

/// HTTP status of a failed object read that found no object.
const STATUS_NOT_FOUND: u16 = 404;
/// HTTP status of a conditional write (`If-None-Match: *`) whose key already exists.
const STATUS_PRECONDITION_FAILED: u16 = 412;
/// HTTP status S3 returns when a conditional write races another write of the same key.
const STATUS_CONFLICT: u16 = 409;

/// What a failed S3 call means to the adapter.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The key (or bucket) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost: the key exists (412) or another write of it is in flight (409).
    #[error("key already exists: {0}")]
    Exists(String),
    #[error("{0}")]
    Other(String),
}

impl S3Error {
    pub fn from_sdk<E, R>(operation: &str, e: SdkError<E, R>) -> S3Error
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HasStatus,
    {
        let status = e.raw_response().map(HasStatus::status_code);
        let message = format!("S3 {operation}: {}", DisplayErrorContext(&e));
        match status {
            Some(STATUS_NOT_FOUND) => S3Error::NotFound(message),
            Some(STATUS_PRECONDITION_FAILED | STATUS_CONFLICT) => S3Error::Exists(message),
            _ => S3Error::Other(message),
        }
    }

    /// For operations on blobs: absent means `NotFound`.
    pub fn into_blob(self) -> BlobError {
        match self {
            S3Error::NotFound(_) => BlobError::NotFound,
            other => BlobError::Backend(other.to_string()),
        }
    }

    /// For operations on an upload session's objects: an absent object is a backend inconsistency
    /// (the session's listing named it), never `NotFound`.
    pub fn into_backend(self) -> BlobError {
        BlobError::Backend(self.to_string())
    }
}

/// The raw HTTP response type of an SDK error, reduced to its status code.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Shorthand for `map_err` at call sites: `.map_err(sdk("GetObject"))`.
pub fn sdk<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> S3Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    move |e| S3Error::from_sdk(operation, e)
}
