//! Expiry of abandoned upload sessions of `S3BlobStore` (`BlobStore::expire_uploads`), for the janitor.
//!
//! A session is every object under `uploads/<uuid>/` (see the key layout in the parent module); each
//! append writes a new chunk object, so the session's last write is the newest `LastModified` among
//! them. One ListObjectsV2 pass over `uploads/` groups the objects by session; a session idle since
//! the cutoff is listed again (an append may have landed meanwhile) and deleted `meta` first, as
//! `upload_abort` does. Objects left without a `meta` (an append that raced an abort) go the same way
//! but are not counted: that session had ended already.
//!
//! A commit that crashed leaves an incomplete multipart upload on a blob key, invisible but billed.
//! Those initiated before the cutoff are aborted (ListMultipartUploads under `blobs/`). A server
//! without ListMultipartUploads (s3s-fs answers 501 Not Implemented) skips that step with a warning;
//! the bucket lifecycle rule `AbortIncompleteMultipartUpload` covers it there.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::error::S3Error;
use super::session::{delete_all, prefix, META};
use super::S3BlobStore;
use crate::ports::{BlobError, UploadId};

/// Where upload sessions live.
const UPLOADS: &str = "uploads/";
/// Where blobs live: the only keys the store writes with multipart uploads.
const BLOBS: &str = "blobs/";
/// The HTTP status of an operation the server does not implement.
const STATUS_NOT_IMPLEMENTED: u16 = 501;

/// What one listing found of one session.
#[derive(Default)]
struct Objects {
    /// Keys, `meta` first.
    keys: Vec<String>,
    meta: bool,
    newest: Option<DateTime<Utc>>,
    /// Some object came without a `LastModified`: treat the session as written now.
    undated: bool,
}

impl Objects {
    fn add(&mut self, key: &str, name: &str, modified: Option<DateTime<Utc>>) {
        if name == META {
            self.meta = true;
            self.keys.insert(0, key.to_string());
        } else {
            self.keys.push(key.to_string());
        }
        self.newest = self.newest.max(modified);
        self.undated |= modified.is_none();
    }

    fn idle_since(&self, cutoff: DateTime<Utc>) -> bool {
        !self.undated && self.newest.is_some_and(|t| t < cutoff)
    }
}

/// Every object under `prefix` with its `LastModified`, paged through ListObjectsV2.
async fn list(store: &S3BlobStore, prefix: &str) -> Result<Vec<(String, Option<DateTime<Utc>>)>, BlobError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = (store.client.list_objects_v2())
            .bucket(&store.bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("ListObjectsV2", e).into_backend())?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                out.push((key.to_string(), object.last_modified().and_then(to_chrono)));
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() || page.is_truncated() != Some(true) {
            return Ok(out);
        }
    }
}

pub(super) fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// The objects of every session under `uploads/`, by session id. Keys that no session of this store
/// would have (not a normalized UUID) are left alone.
async fn sessions(store: &S3BlobStore) -> Result<BTreeMap<String, Objects>, BlobError> {
    let mut sessions: BTreeMap<String, Objects> = BTreeMap::new();
    for (key, modified) in list(store, UPLOADS).await? {
        let Some((id, name)) = key.strip_prefix(UPLOADS).and_then(|rest| rest.split_once('/')) else {
            continue;
        };
        if UploadId::parse(id).is_some_and(|parsed| parsed.as_str() == id) {
            sessions
                .entry(id.to_string())
                .or_default()
                .add(&key, name, modified);
        }
    }
    Ok(sessions)
}

/// Lists the session again and deletes it if it is still idle since `cutoff`; returns whether it
/// was a live session (it had a `meta`) that this call ended.
async fn expire_session(
    store: &S3BlobStore,
    id: &UploadId,
    cutoff: DateTime<Utc>,
) -> Result<bool, BlobError> {
    let prefix = prefix(id);
    let listed = list(store, &prefix).await?;
    let mut objects = Objects::default();
    for (key, modified) in &listed {
        objects.add(key, key.strip_prefix(&prefix).unwrap_or(key), *modified);
    }
    if !objects.idle_since(cutoff) {
        return Ok(false);
    }
    delete_all(store, &objects.keys).await?;
    Ok(objects.meta)
}

/// Aborts the incomplete multipart uploads on blob keys initiated before `cutoff`; returns how many.
async fn abort_stale_multiparts(store: &S3BlobStore, cutoff: DateTime<Utc>) -> Result<u64, BlobError> {
    let mut aborted = 0;
    let (mut key_marker, mut upload_id_marker) = (None, None);
    loop {
        let listed = (store.client.list_multipart_uploads())
            .bucket(&store.bucket)
            .prefix(BLOBS)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(upload_id_marker.take())
            .send()
            .await;
        let page = match listed {
            Ok(page) => page,
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(STATUS_NOT_IMPLEMENTED) => {
                tracing::warn!(
                    bucket = store.bucket,
                    "the S3 server does not implement ListMultipartUploads: incomplete multipart \
                     uploads are left to the bucket's lifecycle rule"
                );
                return Ok(aborted);
            }
            Err(e) => return Err(S3Error::from_sdk("ListMultipartUploads", e).into_backend()),
        };
        for upload in page.uploads() {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            let initiated = upload.initiated().and_then(to_chrono);
            if initiated.is_none_or(|t| t >= cutoff) {
                continue;
            }
            let result = (store.client.abort_multipart_upload())
                .bucket(&store.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("AbortMultipartUpload", e));
            match result {
                Ok(_) => aborted += 1,
                // Completed or aborted meanwhile.
                Err(S3Error::NotFound(_)) => {}
                Err(e) => return Err(e.into_backend()),
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(aborted);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        upload_id_marker = page.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() && upload_id_marker.is_none() {
            return Ok(aborted);
        }
    }
}

pub(super) async fn expire(store: &S3BlobStore, cutoff: DateTime<Utc>) -> Result<u64, BlobError> {
    let mut expired = 0;
    for (id, objects) in sessions(store).await? {
        if !objects.idle_since(cutoff) {
            continue;
        }
        let Some(id) = UploadId::parse(&id) else { continue };
        if expire_session(store, &id, cutoff).await? {
            expired += 1;
        }
    }
    let multiparts = abort_stale_multiparts(store, cutoff).await?;
    if multiparts > 0 {
        tracing::info!(multiparts, "aborted incomplete multipart uploads");
    }
    Ok(expired)
}
