//! What garbage collection asks of the bucket: the blobs under `blobs/` page by page in key order
//! (`ListObjectsV2` from `StartAfter`), and their deletion in `DeleteObjects` batches of 1,000.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use chrono::{DateTime, Utc};

use super::error::S3Error;
use super::janitor::to_chrono;
use super::{blob_key, S3BlobStore};
use crate::domain::Digest;
use crate::ports::{BlobError, StoredBlob, MAX_LIST_PAGE};

const BLOBS: &str = "blobs/";

/// The digest a blob key names (`blobs/<algorithm>/<hex>`), if it is one.
fn digest_of(key: &str) -> Option<Digest> {
    let (algorithm, hex) = key.strip_prefix(BLOBS)?.split_once('/')?;
    format!("{algorithm}:{hex}").parse().ok()
}

pub(super) async fn list(
    store: &S3BlobStore,
    after: Option<&Digest>,
    limit: usize,
) -> Result<Vec<StoredBlob>, BlobError> {
    let limit = limit.min(MAX_LIST_PAGE);
    let mut page = Vec::new();
    let mut token: Option<String> = None;
    while page.len() < limit {
        let mut request = (store.client.list_objects_v2())
            .bucket(&store.bucket)
            .prefix(BLOBS)
            .max_keys(i32::try_from(limit - page.len()).unwrap_or(1_000));
        request = match (&token, after) {
            (Some(token), _) => request.continuation_token(token),
            (None, Some(after)) => request.start_after(blob_key(after)),
            (None, None) => request,
        };
        let out = request
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("ListObjectsV2", e).into_backend())?;
        for object in out.contents() {
            // Keys that are no blob of this store are skipped (and the next page read instead).
            let Some(digest) = object.key().and_then(digest_of) else {
                continue;
            };
            page.push(StoredBlob {
                digest,
                size: object.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                modified: (object.last_modified().and_then(to_chrono))
                    .unwrap_or_else(DateTime::<Utc>::default),
            });
        }
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() || out.is_truncated() != Some(true) {
            break;
        }
    }
    Ok(page)
}

pub(super) async fn delete(store: &S3BlobStore, digests: &[Digest]) -> Result<(), BlobError> {
    for batch in digests.chunks(MAX_LIST_PAGE) {
        let objects = (batch.iter())
            .map(|d| ObjectIdentifier::builder().key(blob_key(d)).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BlobError::Backend(format!("S3 DeleteObjects: {e}")))?;
        let delete = (Delete::builder().set_objects(Some(objects)).quiet(true).build())
            .map_err(|e| BlobError::Backend(format!("S3 DeleteObjects: {e}")))?;
        let out = (store.client.delete_objects())
            .bucket(&store.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("DeleteObjects", e).into_backend())?;
        // Quiet mode reports only failures; an absent key is a success in S3.
        if let Some(failed) = out.errors().first() {
            return Err(BlobError::Backend(format!(
                "S3 DeleteObjects: {} of {} failed, the first {:?}: {:?} {:?}",
                out.errors().len(),
                batch.len(),
                failed.key(),
                failed.code(),
                failed.message()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::digest_of;

    #[test]
    fn only_blob_keys_name_digests() {
        let hex = "ab".repeat(32);
        assert_eq!(
            digest_of(&format!("blobs/sha256/{hex}")).map(|d| d.to_string()),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_of(&format!("uploads/sha256/{hex}")), None);
        assert_eq!(digest_of("blobs/sha256/short"), None);
        assert_eq!(digest_of("blobs/md5/abc"), None);
    }
}
