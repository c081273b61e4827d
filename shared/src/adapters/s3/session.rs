//! Resumable upload sessions of `S3BlobStore`, kept entirely in the bucket (see the key layout in the
//! parent module): `uploads/<uuid>/meta` and one `chunk-<offset>` object per staged piece.
//!
//! S3 multipart parts must be at least 5 MiB (except the last), while registry clients PATCH chunks of
//! any size, so appends stage chunks as plain objects and the commit re-assembles them into a multipart
//! upload, hashing on the way.

use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::{sdk, S3Error};
use super::{blob_key, non_negative, S3BlobStore};
use crate::domain::{Digest, RepoName};
use crate::ports::{BlobError, ByteStream, UploadId, UploadState};

/// Largest staged chunk an append writes: bounds an append's memory; a longer body becomes several.
const STAGE_CHUNK: usize = 8 * 1024 * 1024;
/// Multipart part size at commit: S3 requires at least 5 MiB for every part but the last.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 allows at most 10 000 parts per multipart upload.
const MAX_PARTS: i32 = 10_000;
/// Digits of the zero-padded offset in chunk keys, so key order is offset order (u64::MAX has 20).
const OFFSET_DIGITS: usize = 20;
pub(super) const META: &str = "meta";
const CHUNK_PREFIX: &str = "chunk-";

#[derive(Serialize, Deserialize)]
struct Meta {
    repository: String,
    created: chrono::DateTime<chrono::Utc>,
}

pub(super) fn prefix(id: &UploadId) -> String {
    format!("uploads/{}/", id.as_str())
}

/// One staged chunk: bytes `[offset, offset + size)` of the upload.
struct Chunk {
    key: String,
    offset: u64,
    size: u64,
}

/// Everything the bucket holds of one session.
struct Listing {
    meta: bool,
    /// In offset order and contiguous from 0.
    chunks: Vec<Chunk>,
    /// Every key under the session's prefix, `meta` first.
    keys: Vec<String>,
}

impl Listing {
    fn size(&self) -> u64 {
        self.chunks.last().map_or(0, |c| c.offset + c.size)
    }
}

async fn list(store: &S3BlobStore, id: &UploadId) -> Result<Listing, BlobError> {
    let prefix = prefix(id);
    let mut listing = Listing {
        meta: false,
        chunks: Vec::new(),
        keys: Vec::new(),
    };
    let mut token = None;
    loop {
        let out = (store.client.list_objects_v2())
            .bucket(&store.bucket)
            .prefix(&prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("ListObjectsV2", e).into_backend())?;
        for object in out.contents() {
            let Some(key) = object.key() else { continue };
            let name = key.strip_prefix(&prefix).unwrap_or(key);
            if name == META {
                listing.meta = true;
                listing.keys.insert(0, key.to_string());
                continue;
            }
            listing.keys.push(key.to_string());
            if let Some(offset) = name.strip_prefix(CHUNK_PREFIX).and_then(|o| o.parse().ok()) {
                listing.chunks.push(Chunk {
                    key: key.to_string(),
                    offset,
                    size: non_negative(object.size()),
                });
            }
        }
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() || out.is_truncated() != Some(true) {
            break;
        }
    }
    listing.chunks.sort_by_key(|c| c.offset);
    let mut end = 0;
    for chunk in &listing.chunks {
        if chunk.offset != end {
            return Err(BlobError::Backend(format!(
                "upload {id}: staged chunk at {} but the chunks before it end at {end}",
                chunk.offset
            )));
        }
        end += chunk.size;
    }
    Ok(listing)
}

/// The session's listing; `UploadUnknown` unless its `meta` exists.
async fn live(store: &S3BlobStore, id: &UploadId) -> Result<Listing, BlobError> {
    let listing = list(store, id).await?;
    if listing.meta {
        Ok(listing)
    } else {
        Err(BlobError::UploadUnknown)
    }
}

pub(super) async fn start(store: &S3BlobStore, repository: &RepoName) -> Result<UploadId, BlobError> {
    let id = UploadId::new();
    let meta = Meta {
        repository: repository.as_str().to_string(),
        created: chrono::Utc::now(),
    };
    let json = serde_json::to_vec(&meta).map_err(|e| BlobError::Backend(e.to_string()))?;
    let key = format!("{}{META}", prefix(&id));
    // The meta names a fresh id and the time: the same bytes under its key can only be this write's.
    match store.put_if_absent_or_same(&key, Bytes::from(json)).await {
        Ok(true) => Ok(id),
        Ok(false) => Err(BlobError::Backend(format!("upload {id} exists already"))),
        Err(e) => Err(e.into_backend()),
    }
}

pub(super) async fn state(store: &S3BlobStore, id: &UploadId) -> Result<UploadState, BlobError> {
    let listing = live(store, id).await?;
    // Read whole, and again when the body is cut off.
    let json = match store.get_whole(&format!("{}{META}", prefix(id))).await {
        Ok(Some(json)) => json,
        // Deleted since the listing: the session ended meanwhile.
        Ok(None) => return Err(BlobError::UploadUnknown),
        Err(e) => return Err(e.into_backend()),
    };
    let meta: Meta = serde_json::from_slice(&json)
        .map_err(|e| BlobError::Backend(format!("upload {id}'s meta is corrupt: {e}")))?;
    let repository = (meta.repository.parse())
        .map_err(|_| BlobError::Backend(format!("upload {id}'s meta names no valid repository")))?;
    Ok(UploadState {
        repository,
        size: listing.size(),
    })
}

pub(super) async fn append(
    store: &S3BlobStore,
    id: &UploadId,
    offset: u64,
    mut body: ByteStream,
) -> Result<u64, BlobError> {
    let size = live(store, id).await?.size();
    if offset != size {
        return Err(BlobError::OffsetMismatch { offset, size });
    }
    let mut end = offset;
    let mut pending = BytesMut::new();
    while let Some(piece) = body.next().await {
        // On a body error the staged chunks are a prefix of what came; the pending bytes are dropped.
        pending.extend_from_slice(&piece?);
        if pending.len() >= STAGE_CHUNK {
            end = stage(store, id, offset, end, pending.split().freeze()).await?;
        }
    }
    if !pending.is_empty() {
        end = stage(store, id, offset, end, pending.freeze()).await?;
    }
    Ok(end)
}

/// Writes `bytes` as the chunk at `at` unless another append got there first; returns the new end.
async fn stage(
    store: &S3BlobStore,
    id: &UploadId,
    offset: u64,
    at: u64,
    bytes: Bytes,
) -> Result<u64, BlobError> {
    let len = bytes.len() as u64;
    let key = format!("{}{CHUNK_PREFIX}{at:0width$}", prefix(id), width = OFFSET_DIGITS);
    // The same bytes at the same offset are this append's own write, met again by a retry.
    match store.put_if_absent_or_same(&key, bytes).await {
        Ok(true) => Ok(at + len),
        Ok(false) => {
            let size = live(store, id).await?.size();
            Err(BlobError::OffsetMismatch { offset, size })
        }
        Err(e) => Err(e.into_backend()),
    }
}

/// An in-progress multipart upload to a blob's key; invisible until completed.
struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

pub(super) async fn commit(store: &S3BlobStore, id: &UploadId, digest: &Digest) -> Result<u64, BlobError> {
    let listing = live(store, id).await?;
    let key = blob_key(digest);
    let mut multipart: Option<Multipart> = None;
    let assembled = assemble(store, &listing, digest, &key, &mut multipart).await;
    let result = match assembled {
        Ok((computed, rest)) if computed == *digest => finish(store, &key, multipart.take(), rest)
            .await
            .map(|()| listing.size()),
        Ok((computed, _)) => Err(BlobError::DigestMismatch { computed }),
        Err(e) => Err(e),
    };
    if let Some(m) = multipart {
        abort_multipart(store, &key, &m.upload_id).await;
    }
    match result {
        // A backend failure leaves the session, so the client can retry the commit.
        Err(e @ BlobError::Backend(_)) => Err(e),
        other => {
            delete_all(store, &listing.keys).await?;
            other
        }
    }
}

/// Reads the staged chunks in order, hashing them and sending every full part to a multipart upload
/// (started on the first one). Returns the digest and the bytes not yet sent.
async fn assemble(
    store: &S3BlobStore,
    listing: &Listing,
    digest: &Digest,
    key: &str,
    multipart: &mut Option<Multipart>,
) -> Result<(Digest, Bytes), BlobError> {
    let mut hasher = digest.algorithm().hasher();
    let mut pending = BytesMut::new();
    for chunk in &listing.chunks {
        // A chunk is at most `STAGE_CHUNK` bytes: read whole, and again when its body is cut off.
        let piece = (store.get_whole(&chunk.key).await)
            .map_err(S3Error::into_backend)?
            .ok_or_else(|| BlobError::Backend(format!("{} vanished during the commit", chunk.key)))?;
        if piece.len() as u64 != chunk.size {
            return Err(BlobError::Backend(format!(
                "{} holds {} bytes, listed with {}",
                chunk.key,
                piece.len(),
                chunk.size
            )));
        }
        hasher.update(&piece);
        pending.extend_from_slice(&piece);
        while pending.len() >= PART_SIZE {
            upload_part(store, key, multipart, pending.split_to(PART_SIZE).freeze()).await?;
        }
    }
    Ok((hasher.finish(), pending.freeze()))
}

async fn upload_part(
    store: &S3BlobStore,
    key: &str,
    multipart: &mut Option<Multipart>,
    bytes: Bytes,
) -> Result<(), BlobError> {
    let m = match multipart {
        Some(m) => m,
        None => {
            let out = (store.client.create_multipart_upload())
                .bucket(&store.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", e).into_backend())?;
            let upload_id = (out.upload_id())
                .ok_or_else(|| BlobError::Backend("CreateMultipartUpload returned no upload id".into()))?;
            multipart.insert(Multipart {
                upload_id: upload_id.to_string(),
                parts: Vec::new(),
            })
        }
    };
    let number = i32::try_from(m.parts.len() + 1).unwrap_or(i32::MAX);
    if number > MAX_PARTS {
        return Err(BlobError::Backend(format!(
            "blob exceeds {MAX_PARTS} parts of {PART_SIZE} bytes"
        )));
    }
    let out = (store.client.upload_part())
        .bucket(&store.bucket)
        .key(key)
        .upload_id(&m.upload_id)
        .part_number(number)
        .body(SdkByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("UploadPart", e).into_backend())?;
    m.parts.push(
        CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_string))
            .build(),
    );
    Ok(())
}

/// Makes the verified content visible as `key`: completes the multipart upload with `rest` as its last
/// part, or writes `rest` directly when the blob fit in one part. An existing blob wins (same bytes).
async fn finish(
    store: &S3BlobStore,
    key: &str,
    multipart: Option<Multipart>,
    rest: Bytes,
) -> Result<(), BlobError> {
    let Some(mut m) = multipart else {
        return store
            .put_if_absent(key, rest)
            .await
            .map(|_| ())
            .map_err(S3Error::into_backend);
    };
    if !rest.is_empty() {
        let mut slot = Some(m);
        let sent = upload_part(store, key, &mut slot, rest).await;
        m = slot.ok_or_else(|| BlobError::Backend("multipart upload vanished".into()))?;
        if let Err(e) = sent {
            abort_multipart(store, key, &m.upload_id).await;
            return Err(e);
        }
    }
    let completed = (store.client.complete_multipart_upload())
        .bucket(&store.bucket)
        .key(key)
        .upload_id(&m.upload_id)
        .if_none_match("*")
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(m.parts))
                .build(),
        )
        .send()
        .await
        .map_err(sdk("CompleteMultipartUpload"));
    match completed {
        Ok(_) => Ok(()),
        Err(S3Error::Exists(_)) => {
            abort_multipart(store, key, &m.upload_id).await;
            Ok(())
        }
        Err(e) => {
            abort_multipart(store, key, &m.upload_id).await;
            Err(e.into_backend())
        }
    }
}

/// Best effort: an upload left behind is removed by the bucket's lifecycle rule.
async fn abort_multipart(store: &S3BlobStore, key: &str, upload_id: &str) {
    let aborted = (store.client.abort_multipart_upload())
        .bucket(&store.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(e) = aborted {
        tracing::warn!(key, upload_id, error = %S3Error::from_sdk("AbortMultipartUpload", e), "abort failed");
    }
}

/// Deletes `keys` in order (`meta` first, so the session ends before its chunks go).
pub(super) async fn delete_all(store: &S3BlobStore, keys: &[String]) -> Result<(), BlobError> {
    for key in keys {
        let deleted = store
            .client
            .delete_object()
            .bucket(&store.bucket)
            .key(key)
            .send()
            .await;
        match deleted.map_err(sdk("DeleteObject")) {
            Ok(_) | Err(S3Error::NotFound(_)) => {}
            Err(e) => return Err(e.into_backend()),
        }
    }
    Ok(())
}

pub(super) async fn abort(store: &S3BlobStore, id: &UploadId) -> Result<(), BlobError> {
    let listing = live(store, id).await?;
    delete_all(store, &listing.keys).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};

    use super::super::fake::{self, Reply, Request};
    use super::*;

    /// An in-memory bucket behind a faulty network: the first PUT of every key takes effect but
    /// its answer is lost (`lose_put_answers`), the first GET of every key is cut off half-way
    /// (`cut_reads`). Every PUT is conditional (`If-None-Match: *`), as the session's are.
    #[derive(Clone, Default)]
    struct Bucket {
        objects: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
        faulted: Arc<Mutex<BTreeSet<(String, String)>>>,
        puts: Arc<Mutex<u32>>,
    }

    impl Bucket {
        fn first(&self, method: &str, key: &str) -> bool {
            (self.faulted.lock().unwrap()).insert((method.to_string(), key.to_string()))
        }

        fn handle(&self, request: &Request, lose_put_answers: bool, cut_reads: bool) -> Reply {
            let mut objects = self.objects.lock().unwrap();
            match request.method.as_str() {
                "PUT" => {
                    *self.puts.lock().unwrap() += 1;
                    if objects.contains_key(&request.key) {
                        return fake::precondition_failed();
                    }
                    objects.insert(request.key.clone(), request.body.clone());
                    if lose_put_answers && self.first("PUT", &request.key) {
                        return Reply::Drop;
                    }
                    fake::ok(Vec::new())
                }
                "GET" if request.key.is_empty() => {
                    let prefix = (request.query.split('&'))
                        .find_map(|p| p.strip_prefix("prefix="))
                        .unwrap_or("")
                        .replace("%2F", "/");
                    let listed: Vec<(&str, usize)> = (objects.iter())
                        .filter(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, v)| (k.as_str(), v.len()))
                        .collect();
                    fake::listing(&listed)
                }
                "GET" => match objects.get(&request.key) {
                    Some(body) if cut_reads && self.first("GET", &request.key) => Reply::Cut {
                        body: body.clone(),
                        sent: body.len() / 2,
                    },
                    Some(body) => fake::ok(body.clone()),
                    None => Reply::Answer {
                        status: 404,
                        body: b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
                    },
                },
                "DELETE" => {
                    objects.remove(&request.key);
                    Reply::Answer {
                        status: 204,
                        body: Vec::new(),
                    }
                }
                _ => Reply::Answer {
                    status: 501,
                    body: Vec::new(),
                },
            }
        }
    }

    async fn faulty(bucket: &Bucket, lose_put_answers: bool, cut_reads: bool) -> S3BlobStore {
        let bucket = bucket.clone();
        fake::store(move |request| bucket.handle(request, lose_put_answers, cut_reads)).await
    }

    fn body(bytes: &'static [u8]) -> ByteStream {
        Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(bytes))]))
    }

    #[tokio::test]
    async fn a_conditional_put_whose_answer_was_lost_succeeds_when_the_object_holds_what_was_written() {
        let bucket = Bucket::default();
        let store = faulty(&bucket, true, false).await;
        let repository: RepoName = "faults/lost".parse().unwrap();
        // Each PUT took effect, its answer was lost, the SDK's retry met the object (412).
        let id = start(&store, &repository).await.unwrap();
        assert_eq!(append(&store, &id, 0, body(b"hello, ")).await.unwrap(), 7);
        assert_eq!(append(&store, &id, 7, body(b"world")).await.unwrap(), 12);
        assert_eq!(*bucket.puts.lock().unwrap(), 6, "every PUT was sent twice");
        let state = state(&store, &id).await.unwrap();
        assert_eq!((state.repository, state.size), (repository, 12));
        // Other bytes under the key are a lost race, as before.
        let chunk = format!("{}{CHUNK_PREFIX}{:020}", prefix(&id), 0);
        let other = store
            .put_if_absent_or_same(&chunk, Bytes::from_static(b"HELLO, "))
            .await;
        assert!(!other.unwrap(), "a key holding other bytes is not this write's");
    }

    #[tokio::test]
    async fn upload_state_and_chunks_cut_off_mid_body_are_read_again() {
        let bucket = Bucket::default();
        let writer = faulty(&bucket, false, false).await;
        let repository: RepoName = "faults/cut".parse().unwrap();
        let id = start(&writer, &repository).await.unwrap();
        append(&writer, &id, 0, body(b"0123456789")).await.unwrap();
        // Every first read of a key is cut off half-way: the meta's and the chunk's.
        let reader = faulty(&bucket, false, true).await;
        let state = state(&reader, &id).await.unwrap();
        assert_eq!((state.repository, state.size), (repository, 10));
        let digest = Digest::compute(crate::domain::Algorithm::Sha256, b"0123456789");
        assert_eq!(commit(&reader, &id, &digest).await.unwrap(), 10);
        let objects = bucket.objects.lock().unwrap();
        assert_eq!(
            objects.get(&blob_key(&digest)).map(Vec::as_slice),
            Some(&b"0123456789"[..])
        );
        assert!(
            !objects.keys().any(|k| k.starts_with("uploads/")),
            "the session ended"
        );
    }
}
