//! Manifest use cases: push, resolve, delete (distribution-spec "Pushing manifests", "Pulling
//! manifests", "Deleting manifests").

use std::collections::BTreeSet;

use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::domain::accessory::SchemeTag;
use crate::domain::manifest::Content;
use crate::domain::projection::ManifestRecord;
use crate::domain::repository::{self, PushManifest, PushState};
use crate::domain::{Algorithm, Digest, Event, ManifestInfo, Reference, RepoName, Tag};

use super::{AppError, Registry, RequestContext};

/// Largest manifest Berth accepts: the limit the distribution spec suggests registries enforce
/// (4 MiB), which also keeps a manifest within one Lambda request.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

impl Registry {
    pub async fn push_manifest(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        reference: Reference,
        content_type: &str,
        body: Bytes,
    ) -> Result<PushedManifest, AppError> {
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(AppError::ManifestTooLarge {
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let (digest, tag) = match reference {
            Reference::Digest(expected) => {
                let computed = Digest::compute(expected.algorithm(), &body);
                if computed != expected {
                    return Err(AppError::DigestMismatch { expected, computed });
                }
                (expected, None)
            }
            Reference::Tag(tag) => (Digest::compute(Algorithm::Sha256, &body), Some(tag)),
        };
        let info = ManifestInfo::parse(content_type, &body)?;
        let cmd = PushManifest {
            repository: repo.clone(),
            digest: digest.clone(),
            size: body.len() as u64,
            info,
            tag,
        };
        if self.views.manifest(repo, &digest).await?.is_none() {
            self.check_quota(repo, &digest, cmd.size).await?;
        }
        // Content first, then the event: a crash in between leaves only unreferenced bytes.
        self.blobs.put(&digest, body).await?;
        for attempt in Self::attempts() {
            let version = self.version(repo).await?;
            let state = self.push_state(&cmd).await?;
            let mut events = repository::push_manifest(&cmd, &state)?;
            events.extend(self.links_for_push(&cmd).await?);
            let recorded = if events.is_empty() {
                Some(vec![])
            } else {
                self.try_append(ctx, repo, version, events, attempt).await?
            };
            if let Some(recorded) = recorded {
                self.verify_new_links(ctx, repo, &recorded).await;
                if recorded
                    .iter()
                    .any(|r| matches!(r.envelope.event, Event::ManifestPushed { .. }))
                {
                    self.link_early_accessories(ctx, repo, &digest).await?;
                }
                return Ok(PushedManifest {
                    digest,
                    subject: cmd.info.subject.clone(),
                });
            }
        }
        Err(AppError::Contention)
    }

    async fn push_state(&self, cmd: &PushManifest) -> Result<PushState, AppError> {
        let repo = &cmd.repository;
        let mut linked_blobs = BTreeSet::new();
        for blob in &cmd.info.blobs {
            if self.views.blob_link(repo, blob).await?.is_some() {
                linked_blobs.insert(blob.clone());
            }
        }
        let mut present_manifests = BTreeSet::new();
        for child in &cmd.info.manifests {
            if self.views.manifest(repo, child).await?.is_some() {
                present_manifests.insert(child.clone());
            }
        }
        let tag_target = match &cmd.tag {
            Some(tag) => self.views.tag(repo, tag).await?,
            None => None,
        };
        Ok(PushState {
            manifest_exists: self.views.manifest(repo, &cmd.digest).await?.is_some(),
            linked_blobs,
            present_manifests,
            tag_target,
        })
    }

    /// The manifest a tag or digest names in the repository.
    pub async fn resolve_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<ManifestRecord, AppError> {
        let digest = match reference {
            Reference::Digest(d) => Some(d.clone()),
            Reference::Tag(t) => self.views.tag(repo, t).await?,
        };
        let record = match digest {
            Some(d) => self.views.manifest(repo, &d).await?,
            None => None,
        };
        match record {
            Some(record) => Ok(record),
            None if !self.views.repository_exists(repo).await? => Err(AppError::NameUnknown(repo.clone())),
            None => Err(AppError::ManifestUnknown(reference.to_string())),
        }
    }

    /// A manifest's bytes, whole: at most [`MAX_MANIFEST_BYTES`], and sent with the headers in one
    /// write.
    pub async fn manifest_content(&self, record: &ManifestRecord) -> Result<Bytes, AppError> {
        self.read_whole_blob(&record.digest).await
    }

    /// What a stored manifest's layers carry: recorded at push, else (a manifest pushed before Berth
    /// recorded it) read from the manifest; one that does not parse any more counts as runnable.
    pub(super) async fn content_of(&self, record: &ManifestRecord) -> Result<Content, AppError> {
        if let Some(content) = record.content {
            return Ok(content);
        }
        let body = self.read_whole_blob(&record.digest).await?;
        Ok(ManifestInfo::parse(&record.media_type, &body).map_or(Content::Filesystem, |i| i.content))
    }

    /// A stored manifest's bytes (manifests are kept in the blob store under their digest).
    pub(super) async fn read_whole_blob(&self, digest: &Digest) -> Result<Bytes, AppError> {
        let read = self.blobs.get(digest, None).await?;
        let chunks: Vec<Bytes> = read
            .body
            .try_collect()
            .await
            .map_err(|e| AppError::Backend(e.to_string()))?;
        Ok(chunks.concat().into())
    }

    /// Deletes a tag (the manifest stays) or a manifest by digest (with every tag on it, and its
    /// accessories). Deleting the cosign scheme tag (`sha256-<hex>.sig|.att|.sbom`) that is the only
    /// tag of an accessory of `<hex>` deletes that accessory, as the accessories API does: clients
    /// find signatures through that tag (`cosign clean` deletes it), so server and clients agree.
    pub async fn delete_manifest(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(), AppError> {
        for attempt in Self::attempts() {
            let version = self.version(repo).await?;
            let events = match reference {
                Reference::Tag(tag) => {
                    let target = self.views.tag(repo, tag).await?;
                    match self.tagged_accessory(repo, tag, target.as_ref()).await? {
                        Some(accessory) => self.deletion_events(repo, &accessory).await?,
                        None => repository::delete_tag(repo, tag, target.as_ref())?,
                    }
                }
                Reference::Digest(digest) => self.deletion_events(repo, digest).await?,
            };
            if self
                .try_append(ctx, repo, version, events, attempt)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(AppError::Contention)
    }

    /// The accessory `tag` (a cosign scheme tag, and the accessory's only tag) stands for.
    async fn tagged_accessory(
        &self,
        repo: &RepoName,
        tag: &Tag,
        target: Option<&Digest>,
    ) -> Result<Option<Digest>, AppError> {
        let (Some(scheme), Some(target)) = (SchemeTag::parse(tag), target) else {
            return Ok(None);
        };
        let linked =
            (self.views.accessories(repo, &scheme.subject).await?.iter()).any(|a| a.digest == *target);
        if !linked || self.views.manifest_tags(repo, target).await? != [tag.clone()] {
            return Ok(None);
        }
        Ok(Some(target.clone()))
    }
}
