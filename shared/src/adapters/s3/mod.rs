//! `BlobStore` on Amazon S3 or an S3-compatible server (moto, s3s, MinIO), with aws-sdk-s3.
//!
//! Implements the `BlobStore` port (`ports::blob_store`) over the S3 REST API: HeadObject, ranged
//! GetObject, conditional PutObject (`If-None-Match: *`, S3 conditional writes), ListObjectsV2 and
//! multipart uploads. All state lives in the bucket, so any number of instances serve the same uploads
//! and a restarted process resumes them.
//!
//! ```text
//! <bucket>/
//!   blobs/<algorithm>/<hex>                  content; written once, only after its digest was verified
//!   uploads/<uuid>/meta                      JSON {repository, created}; the session exists iff this does
//!   uploads/<uuid>/chunk-<offset, 20 digits> bytes [offset, offset + len) of the upload, in key order
//!   audit/<yyyy>/<mm>/<dd>/<seq, 20 digits>.json  the audit archive's CloudEvents (`S3AuditSink`)
//! ```
//! An upload's size is the sum of its chunks' sizes (one ListObjectsV2), so no process keeps a cursor.
//! Chunks are written with `If-None-Match: *`: of two appends at the same offset one wins, the other
//! sees `OffsetMismatch`. A commit reads the chunks in order, hashes them while sending them as parts
//! of a multipart upload whose target is the blob's key, and completes that upload only if the digest
//! matches — parts of an incomplete multipart upload are never visible, so no unverified byte is.
//!
//! Sessions a client abandons are deleted by `expire_uploads` (the janitor, see `janitor`), which also
//! aborts incomplete multipart uploads a crashed commit left; a bucket lifecycle rule that aborts
//! incomplete multipart uploads after a few days is still a good backstop.

mod audit;
mod error;
#[cfg(test)]
mod fake;
mod gc;
mod janitor;
mod session;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::domain::{Digest, RepoName};
use crate::ports::{
    BlobError, BlobRead, BlobStore, ByteRange, ByteStream, StoredBlob, UploadId, UploadState,
};

pub use audit::S3AuditSink;
use error::sdk;
pub use error::S3Error;

/// The region whose buckets take no `LocationConstraint` (S3 rejects one naming it).
const DEFAULT_REGION: &str = "us-east-1";
/// The longest a presigned URL may live: SigV4 query signing caps `X-Amz-Expires` at 7 days.
pub const PRESIGN_MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How often a whole-object read whose body was cut off (a dropped connection; the SDK retries
/// only until the head arrived) is started again before it fails.
const WHOLE_READ_ATTEMPTS: u32 = 4;

pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// A store on `bucket`, configured from `sdk` (region, credentials, endpoint). `force_path_style`
    /// addresses buckets as `<endpoint>/<bucket>/<key>`, which S3-compatible servers usually need.
    /// Its requests are counted in the metrics ([`crate::adapters::aws_calls`]).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        force_path_style: bool,
    ) -> S3BlobStore {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(force_path_style)
            .interceptor(crate::adapters::aws_calls::AwsCallCounter)
            .build();
        S3BlobStore::from_config(config, bucket)
    }

    /// A store on `bucket` with a complete S3 client configuration.
    pub fn from_config(config: aws_sdk_s3::Config, bucket: impl Into<String>) -> S3BlobStore {
        S3BlobStore {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// A store on `bucket` configured from the standard AWS environment (`AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_ENDPOINT_URL_S3`, …). Path-style addressing is used
    /// exactly when an endpoint override (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`) is set, i.e. for
    /// S3-compatible servers.
    pub async fn from_env(bucket: impl Into<String>) -> S3BlobStore {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        S3BlobStore::new(&sdk, bucket, overridden)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists already (and is ours).
    pub async fn create_bucket_if_missing(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        let region = self
            .client
            .config()
            .region()
            .map(Region::as_ref)
            .unwrap_or(DEFAULT_REGION);
        if region != DEFAULT_REGION {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(S3Error::from_sdk("CreateBucket", e).into_backend()),
        }
    }

    /// A URL that lets its holder GET the blob without credentials until `expires` has passed (at most
    /// `PRESIGN_MAX`), for redirecting clients to S3. It does not check that the blob exists.
    pub async fn presigned_get(&self, digest: &Digest, expires: Duration) -> Result<String, BlobError> {
        let config = PresigningConfig::expires_in(expires.min(PRESIGN_MAX))
            .map_err(|e| BlobError::Backend(format!("presigning: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(blob_key(digest))
            .presigned(config)
            .await
            .map_err(|e| S3Error::from_sdk("GetObject (presign)", e).into_backend())?;
        Ok(request.uri().to_string())
    }

    /// Writes `body` to `key` unless the key exists. Returns whether this call created it.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, S3Error> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(SdkByteStream::from(body))
            .send()
            .await;
        match put.map_err(sdk("PutObject")) {
            Ok(_) => Ok(true),
            Err(S3Error::Exists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `body` to `key` unless the key exists; `Ok(true)` also when the key holds exactly `body`
    /// already. For keys no other writer writes the same bytes to (a session's `meta`, a chunk at
    /// its offset): a conditional write whose answer was lost is retried by the SDK and meets its
    /// own write (412), which is this call's success, not a lost race.
    async fn put_if_absent_or_same(&self, key: &str, body: Bytes) -> Result<bool, S3Error> {
        if self.put_if_absent(key, body.clone()).await? {
            return Ok(true);
        }
        Ok(self.get_whole(key).await?.is_some_and(|held| held == body))
    }

    /// The whole object `key`, or `None` when it is absent. A body cut off before its
    /// `Content-Length` is read again (up to [`WHOLE_READ_ATTEMPTS`] times).
    async fn get_whole(&self, key: &str) -> Result<Option<Bytes>, S3Error> {
        let mut last = String::new();
        for _ in 0..WHOLE_READ_ATTEMPTS {
            let got = (self.client.get_object())
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(sdk("GetObject"));
            let out = match got {
                Ok(out) => out,
                Err(S3Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let expected = out.content_length().and_then(|n| usize::try_from(n).ok());
            match out.body.collect().await {
                Ok(data) => {
                    let bytes = data.into_bytes();
                    if expected.is_none_or(|n| n == bytes.len()) {
                        return Ok(Some(bytes));
                    }
                    last = format!("{} of {expected:?} bytes", bytes.len());
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(S3Error::Other(format!(
            "S3 GetObject {key}: the body was cut off {WHOLE_READ_ATTEMPTS} times (last: {last})"
        )))
    }

    /// The size of the object `key`, or `None` when it is absent.
    async fn head(&self, key: &str) -> Result<Option<u64>, S3Error> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match head.map_err(sdk("HeadObject")) {
            Ok(out) => Ok(Some(non_negative(out.content_length()))),
            Err(S3Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn blob_key(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

fn non_negative(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// The whole object's size from a `Content-Range: bytes <start>-<end>/<size>` header.
fn range_total(content_range: &str) -> Option<u64> {
    content_range
        .rsplit_once('/')
        .and_then(|(_, total)| total.trim().parse().ok())
}

/// An SDK body as the port's byte stream.
fn into_stream(body: SdkByteStream) -> ByteStream {
    Box::pin(futures_util::stream::unfold(body, |mut body| async move {
        body.next()
            .await
            .map(|chunk| (chunk.map_err(std::io::Error::other), body))
    }))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn direct_url(&self, digest: &Digest, ttl: Duration) -> Result<Option<String>, BlobError> {
        self.presigned_get(digest, ttl).await.map(Some)
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        self.head(&blob_key(digest)).await.map_err(S3Error::into_blob)
    }

    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let mut request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(blob_key(digest));
        if let Some(r) = range {
            request = request.range(format!("bytes={}-{}", r.start, r.end));
        }
        let out = request
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("GetObject", e).into_blob())?;
        let size = match (range, out.content_range().and_then(range_total)) {
            (Some(_), Some(total)) => total,
            (Some(_), None) => {
                return Err(BlobError::Backend(
                    "S3 GetObject: a ranged read returned no Content-Range".into(),
                ))
            }
            (None, _) => non_negative(out.content_length()),
        };
        Ok(BlobRead {
            size,
            body: into_stream(out.body),
        })
    }

    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), BlobError> {
        // A lost race (412) means the same content is already there.
        self.put_if_absent(&blob_key(digest), bytes)
            .await
            .map(|_| ())
            .map_err(S3Error::into_backend)
    }

    async fn upload_start(&self, repository: &RepoName) -> Result<UploadId, BlobError> {
        session::start(self, repository).await
    }

    async fn upload_state(&self, id: &UploadId) -> Result<UploadState, BlobError> {
        session::state(self, id).await
    }

    async fn upload_append(&self, id: &UploadId, offset: u64, body: ByteStream) -> Result<u64, BlobError> {
        session::append(self, id, offset, body).await
    }

    async fn upload_commit(&self, id: &UploadId, digest: &Digest) -> Result<u64, BlobError> {
        session::commit(self, id, digest).await
    }

    async fn upload_abort(&self, id: &UploadId) -> Result<(), BlobError> {
        session::abort(self, id).await
    }

    async fn expire_uploads(&self, cutoff: chrono::DateTime<chrono::Utc>) -> Result<u64, BlobError> {
        janitor::expire(self, cutoff).await
    }

    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<StoredBlob>, BlobError> {
        gc::list(self, after, limit).await
    }

    async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), BlobError> {
        gc::delete(self, digests).await
    }
}

#[cfg(test)]
mod tests {
    use super::range_total;

    #[test]
    fn the_total_size_comes_from_the_content_range() {
        assert_eq!(range_total("bytes 0-0/600000"), Some(600_000));
        assert_eq!(range_total("bytes 10-19/*"), None);
        assert_eq!(range_total("garbage"), None);
    }
}
