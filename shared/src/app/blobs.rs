//! Blob use cases: reads scoped to the repository, upload sessions, cross-repository mounts and
//! unlinking (distribution-spec "Pulling blobs", "Pushing blobs", "Deleting blobs").

use crate::domain::repository;
use crate::domain::{Digest, RepoName, StreamId};
use crate::ports::{BlobError, BlobRead, ByteRange, ByteStream, UploadId};

use super::gc_fence::WriteMode;
use super::{AppError, Registry, RequestContext};

/// The `Content-Range` a chunk declares: inclusive `start`-`end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: u64,
    pub end: u64,
}

impl Registry {
    /// The size of a blob the repository may serve.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64, AppError> {
        (self.views.blob_link(repo, digest).await?).ok_or_else(|| AppError::BlobUnknown(digest.clone()))
    }

    /// Reads a blob (or a range of it) that the caller has checked with [`Registry::blob_size`].
    pub async fn read_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, AppError> {
        match self.blobs.get(digest, range).await {
            Err(BlobError::NotFound) => Err(AppError::BlobUnknown(digest.clone())),
            other => Ok(other?),
        }
    }

    /// A URL the client can fetch a blob from directly for `ttl` (checked with
    /// [`Registry::blob_size`] first), or `None` if the store serves blobs only through Berth.
    pub async fn blob_url(
        &self,
        digest: &Digest,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, AppError> {
        Ok(self.blobs.direct_url(digest, ttl).await?)
    }

    pub async fn delete_blob(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(), AppError> {
        let streams = [StreamId::blob(repo, digest)];
        self.decide_and_append(ctx, &streams, move || {
            Box::pin(async move {
                let linked_size = self.views.blob_link(repo, digest).await?;
                Ok((repository::unlink_blob(repo, digest, linked_size)?, ()))
            })
        })
        .await?;
        Ok(())
    }

    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadId, AppError> {
        Ok(self.blobs.upload_start(repo).await?)
    }

    /// Links `digest` from `from` into `repo` without copying; `Ok(None)` when `from` may not serve
    /// it, or not to `ctx`: a mount out of a project that requires signatures takes only a blob
    /// `ctx` could GET there (the client then uploads it, the spec's fallback).
    pub async fn mount_blob(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<Option<u64>, AppError> {
        // A blob `from` does not hold is refused by the policy too (no artifact there uses it), so
        // the check needs no read of the link first; outside enforcing projects it reads nothing.
        match self.check_blob_pull(ctx, from, digest, false).await {
            Err(AppError::PolicyViolation(_)) => return Ok(None),
            other => other?,
        }
        let mode = self.write_mode().await?;
        let (streams, careful_streams) = ([StreamId::blob(repo, digest)], [StreamId::content(digest)]);
        let (_, mounted) = self
            .decide_write(ctx, mode, &streams, &careful_streams, move |careful| {
                Box::pin(async move {
                    let size_in_from = self.views.blob_link(from, digest).await?;
                    let linked_here = self.views.blob_link(repo, digest).await?.is_some();
                    let Ok(mut events) =
                        repository::mount_blob(repo, digest, from, size_in_from, linked_here)
                    else {
                        return Ok((vec![], None));
                    };
                    if let (Some(size), false) = (size_in_from, linked_here) {
                        events.extend(self.quota_use(repo, digest, size).await?);
                        if careful {
                            events.extend(self.use_content(digest).await?);
                        }
                    }
                    Ok((events, size_in_from))
                })
            })
            .await?;
        Ok(mounted)
    }

    /// Bytes received so far by an upload session of `repo`.
    pub async fn upload_size(&self, repo: &RepoName, id: &UploadId) -> Result<u64, AppError> {
        let state = self.blobs.upload_state(id).await?;
        if state.repository != *repo {
            return Err(AppError::UploadUnknown);
        }
        Ok(state.size)
    }

    /// Appends a chunk; with a declared range it must start where the upload ends.
    pub async fn upload_chunk(
        &self,
        repo: &RepoName,
        id: &UploadId,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> Result<u64, AppError> {
        let size = self.upload_size(repo, id).await?;
        if let Some(range) = range {
            if range.start != size || range.end < range.start {
                return Err(AppError::RangeMismatch { size });
            }
        }
        Ok(self.blobs.upload_append(id, size, body).await?)
    }

    /// Finishes an upload: appends the last chunk, verifies the digest, links the blob.
    pub async fn finish_upload(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(Option<ChunkRange>, ByteStream)>,
    ) -> Result<u64, AppError> {
        let size = if let Some((range, body)) = last_chunk {
            self.upload_chunk(repo, id, range, body).await?
        } else {
            self.upload_size(repo, id).await?
        };
        // Before the blob becomes content: a refused upload leaves nothing behind.
        if self.views.blob_link(repo, digest).await?.is_none() {
            if let Err(e) = self.check_quota(repo, digest, size).await {
                self.blobs.upload_abort(id).await?;
                return Err(e);
            }
        }
        // The decision starts before the bytes are put (the GC protocol's time bound covers both).
        let mode = self.write_mode().await?;
        let size = match self.blobs.upload_commit(id, digest).await {
            Err(BlobError::DigestMismatch { computed }) => {
                return Err(AppError::DigestMismatch {
                    expected: digest.clone(),
                    computed,
                })
            }
            other => other?,
        };
        self.link_uploaded(ctx, repo, digest, size, mode).await?;
        Ok(size)
    }

    async fn link_uploaded(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        mode: WriteMode,
    ) -> Result<(), AppError> {
        let (streams, careful_streams) = ([StreamId::blob(repo, digest)], [StreamId::content(digest)]);
        self.decide_write(ctx, mode, &streams, &careful_streams, move |careful| {
            Box::pin(async move {
                let linked = self.views.blob_link(repo, digest).await?.is_some();
                let mut events = repository::complete_upload(repo, digest, size, linked);
                if !linked {
                    events.extend(self.quota_use(repo, digest, size).await?);
                }
                if careful {
                    events.extend(self.use_content(digest).await?);
                }
                Ok((events, ()))
            })
        })
        .await?;
        Ok(())
    }

    pub async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<(), AppError> {
        self.upload_size(repo, id).await?;
        Ok(self.blobs.upload_abort(id).await?)
    }
}
