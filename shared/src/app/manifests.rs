//! Manifest use cases: push, resolve, delete (distribution-spec "Pushing manifests", "Pulling
//! manifests", "Deleting manifests").

use std::collections::BTreeSet;

use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::domain::accessory::SchemeTag;
use crate::domain::manifest::Content;
use crate::domain::projection::ManifestRecord;
use crate::domain::repository::{self, PushManifest, PushState};
use crate::domain::{Algorithm, Digest, ManifestInfo, Reference, RepoName, StreamId, Tag};

use super::{AppError, Registry, RequestContext};

/// Largest manifest Berth accepts: the limit the distribution spec suggests registries enforce
/// (4 MiB), which also keeps a manifest within one Lambda request.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// The children of an index whose streams a push guards (a child deleted meanwhile fails the push);
/// beyond this many, the rest are read unguarded, to stay within DynamoDB's 100 actions per
/// transaction.
const MAX_GUARDED_CHILDREN: usize = 64;
/// How often a manifest read cut off mid-body is started again before it fails.
const WHOLE_READ_ATTEMPTS: u32 = 4;

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
        // The decision starts before the bytes are put (the GC protocol's time bound covers both).
        let mode = self.write_mode().await?;
        // Content first, then the event: a crash in between leaves only unreferenced bytes.
        self.blobs.put(&digest, body).await?;
        // The streams the decision reads: the manifest, its tag, its children, the subjects it may
        // be linked to. Blob links are read unguarded (docs/log-scale-out.md: pushes sharing a
        // layer must not conflict).
        let mut streams = vec![StreamId::manifest(repo, &digest)];
        streams.extend((cmd.tag.iter()).map(|t| StreamId::tag(repo, t)));
        streams.extend(
            (cmd.info.manifests.iter().take(MAX_GUARDED_CHILDREN)).map(|c| StreamId::manifest(repo, c)),
        );
        // The subjects, present or not: a subject pushed meanwhile links the accessories it finds
        // when its push is appended, so an accessory appended without a link must not pass it.
        let scheme_subject = (cmd.tag.as_ref()).and_then(SchemeTag::parse).map(|s| s.subject);
        streams.extend(
            (cmd.info.subject.iter().chain(scheme_subject.as_ref())).map(|s| StreamId::manifest(repo, s)),
        );
        // While a GC runs: the manifest's own content, and the links and content of its blobs, so
        // that an unlink or a condemnation in between makes this decide again.
        let mut careful_streams = vec![StreamId::content(&digest)];
        for blob in &cmd.info.blobs {
            careful_streams.extend([StreamId::blob(repo, blob), StreamId::content(blob)]);
        }
        let cmd = &cmd;
        let (recorded, ()) = self
            .decide_write(ctx, mode, &streams, &careful_streams, move |careful| {
                Box::pin(async move {
                    let state = self.push_state(cmd).await?;
                    let mut events = repository::push_manifest(cmd, &state)?;
                    if !state.manifest_exists {
                        events.extend(self.quota_use(&cmd.repository, &cmd.digest, cmd.size).await?);
                    }
                    if careful {
                        events.extend(self.use_content(&cmd.digest).await?);
                    }
                    events.extend(self.links_for_push(cmd).await?);
                    Ok((events, ()))
                })
            })
            .await?;
        self.verify_new_links(ctx, repo, &recorded).await;
        // After every push, not only the one that appended `ManifestPushed`: that append may have
        // been applied while the store reported it failed (its answer lost), and the client's retry
        // finds the manifest there and appends nothing. Linking is idempotent: accessories already
        // linked make no event.
        self.link_early_accessories(ctx, repo, &digest).await?;
        Ok(PushedManifest {
            digest,
            subject: cmd.info.subject.clone(),
        })
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

    /// A stored manifest's bytes (manifests are kept in the blob store under their digest). A read
    /// whose body fails or comes short of the digest (a connection to the store dropped mid-body,
    /// which the store's client does not retry once the head arrived) is started again, up to
    /// [`WHOLE_READ_ATTEMPTS`] times.
    pub(super) async fn read_whole_blob(&self, digest: &Digest) -> Result<Bytes, AppError> {
        let mut last = String::new();
        for _ in 0..WHOLE_READ_ATTEMPTS {
            let read = self.blobs.get(digest, None).await?;
            match read.body.try_collect::<Vec<Bytes>>().await {
                Ok(chunks) => {
                    let bytes: Bytes = chunks.concat().into();
                    if Digest::compute(digest.algorithm(), &bytes) == *digest {
                        return Ok(bytes);
                    }
                    last = format!("{} bytes that are not {digest}", bytes.len());
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(AppError::Backend(format!(
            "reading {digest}: cut off {WHOLE_READ_ATTEMPTS} times (last: {last})"
        )))
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
        // The streams are found as the decision names them (the tags of a manifest, its
        // accessories' subjects): `decide_and_append` guards each and decides again.
        let streams: Vec<StreamId> = match reference {
            Reference::Tag(tag) => vec![StreamId::tag(repo, tag)],
            Reference::Digest(digest) => vec![StreamId::manifest(repo, digest)],
        };
        self.decide_and_append(ctx, &streams, move || {
            Box::pin(async move {
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
                Ok((events, ()))
            })
        })
        .await?;
        Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::adapters::embedded::RedbStore;
    use crate::adapters::fs::FsBlobStore;
    use crate::domain::accessory::AccessoryKind;
    use crate::domain::{RecordedEvent, StreamId};
    use crate::ports::{
        BlobError, BlobRead, BlobStore, ByteRange, ByteStream, EventLog, LogError, StoredBlob, StreamAppend,
        SystemClock, UploadId, UploadState, Version,
    };

    /// Blobs whose first read of each digest in `cut` fails half-way, as a dropped connection does.
    struct CutReads {
        inner: Arc<FsBlobStore>,
        cut: Mutex<BTreeSet<Digest>>,
    }

    #[async_trait]
    impl BlobStore for CutReads {
        async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
            self.inner.stat(digest).await
        }

        async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
            let read = self.inner.get(digest, range).await?;
            if !self.cut.lock().unwrap().remove(digest) {
                return Ok(read);
            }
            let whole: Vec<Bytes> = read.body.try_collect().await?;
            let whole: Bytes = whole.concat().into();
            let half = whole.slice(..whole.len() / 2);
            let pieces = vec![Ok(half), Err(std::io::Error::other("connection reset by peer"))];
            Ok(BlobRead {
                size: read.size,
                body: Box::pin(futures_util::stream::iter(pieces)),
            })
        }

        async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), BlobError> {
            self.inner.put(digest, bytes).await
        }

        async fn upload_start(&self, repository: &RepoName) -> Result<UploadId, BlobError> {
            self.inner.upload_start(repository).await
        }

        async fn upload_state(&self, id: &UploadId) -> Result<UploadState, BlobError> {
            self.inner.upload_state(id).await
        }

        async fn upload_append(
            &self,
            id: &UploadId,
            offset: u64,
            body: ByteStream,
        ) -> Result<u64, BlobError> {
            self.inner.upload_append(id, offset, body).await
        }

        async fn upload_commit(&self, id: &UploadId, digest: &Digest) -> Result<u64, BlobError> {
            self.inner.upload_commit(id, digest).await
        }

        async fn upload_abort(&self, id: &UploadId) -> Result<(), BlobError> {
            self.inner.upload_abort(id).await
        }

        async fn direct_url(&self, digest: &Digest, ttl: Duration) -> Result<Option<String>, BlobError> {
            self.inner.direct_url(digest, ttl).await
        }

        async fn expire_uploads(&self, cutoff: DateTime<Utc>) -> Result<u64, BlobError> {
            self.inner.expire_uploads(cutoff).await
        }

        async fn list_blobs(
            &self,
            after: Option<&Digest>,
            limit: usize,
        ) -> Result<Vec<StoredBlob>, BlobError> {
            self.inner.list_blobs(after, limit).await
        }

        async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), BlobError> {
            self.inner.delete_blobs(digests).await
        }
    }

    /// A log whose next append, once `lose` is set, is applied but reported failed (its answer lost).
    struct LosesAnswers {
        inner: Arc<RedbStore>,
        lose: AtomicBool,
        /// Appends refused with a conflict.
        conflicts: AtomicUsize,
    }

    #[async_trait]
    impl EventLog for LosesAnswers {
        async fn append_atomic(&self, appends: Vec<StreamAppend>) -> Result<Vec<RecordedEvent>, LogError> {
            let recorded = (self.inner.append_atomic(appends).await).inspect_err(|e| {
                if matches!(e, LogError::Conflict { .. }) {
                    self.conflicts.fetch_add(1, Ordering::SeqCst);
                }
            })?;
            if self.lose.swap(false, Ordering::SeqCst) {
                return Err(LogError::Backend("the answer was lost".into()));
            }
            Ok(recorded)
        }

        async fn stream_version(&self, stream: &StreamId) -> Result<Version, LogError> {
            self.inner.stream_version(stream).await
        }

        async fn read_stream(
            &self,
            stream: &StreamId,
            after: Version,
            limit: usize,
        ) -> Result<Vec<RecordedEvent>, LogError> {
            self.inner.read_stream(stream, after, limit).await
        }

        async fn read_all(
            &self,
            after: &crate::domain::LogPosition,
            limit: usize,
        ) -> Result<Vec<RecordedEvent>, LogError> {
            self.inner.read_all(after, limit).await
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        registry: Registry,
        blobs: Arc<CutReads>,
        log: Arc<LosesAnswers>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
        let blobs = Arc::new(CutReads {
            inner: Arc::new(FsBlobStore::open(dir.path()).unwrap()),
            cut: Mutex::default(),
        });
        let log = Arc::new(LosesAnswers {
            inner: store.clone(),
            lose: AtomicBool::new(false),
            conflicts: AtomicUsize::new(0),
        });
        let registry = Registry::new(log.clone(), store, blobs.clone(), Arc::new(SystemClock));
        Fixture {
            _dir: dir,
            registry,
            blobs,
            log,
        }
    }

    /// Uploads `bytes` into `repo`; returns its descriptor as JSON.
    async fn push_blob(
        registry: &Registry,
        repo: &RepoName,
        media_type: &str,
        bytes: &'static [u8],
    ) -> serde_json::Value {
        let digest = Digest::compute(Algorithm::Sha256, bytes);
        let id = registry.start_upload(repo).await.unwrap();
        let body: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(bytes))]));
        let ctx = RequestContext::anonymous();
        registry
            .finish_upload(&ctx, repo, &id, &digest, Some((None, body)))
            .await
            .unwrap();
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    async fn push(
        registry: &Registry,
        repo: &RepoName,
        reference: &str,
        manifest: &[u8],
    ) -> Result<PushedManifest, AppError> {
        let ctx = RequestContext::anonymous();
        let body = Bytes::copy_from_slice(manifest);
        let content_type = "application/vnd.oci.image.manifest.v1+json";
        (registry.push_manifest(&ctx, repo, reference.parse().unwrap(), content_type, body)).await
    }

    /// The log's finer streams: pushes of different tags (of different manifests) into one
    /// repository touch no stream in common, so none of them ever retries because of another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_of_different_tags_in_one_repository_never_conflict() {
        let f = fixture();
        let repo: RepoName = "hot/app".parse().unwrap();
        let config_type = "application/vnd.oci.image.config.v1+json";
        let config = push_blob(&f.registry, &repo, config_type, br#"{"os":"linux"}"#).await;
        let pushes = (0..16).map(|i| {
            let (registry, repo, config) = (f.registry.clone(), repo.clone(), config.clone());
            tokio::spawn(async move {
                let manifest = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": [], "annotations": {"writer": i.to_string()},
                }))
                .unwrap();
                for round in 0..8 {
                    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
                    manifest["annotations"]["round"] = json!(round.to_string());
                    let bytes = serde_json::to_vec(&manifest).unwrap();
                    push(&registry, &repo, &format!("w{i}-r{round}"), &bytes)
                        .await
                        .unwrap();
                }
            })
        });
        for push in pushes.collect::<Vec<_>>() {
            push.await.unwrap();
        }
        let tags = f.registry.views.tags(&repo, None, 1_000).await.unwrap();
        assert_eq!(tags.len(), 16 * 8);
        assert_eq!(f.log.conflicts.load(Ordering::SeqCst), 0, "no append conflicted");
    }

    #[tokio::test]
    async fn a_manifest_read_cut_off_mid_body_is_read_again() {
        let f = fixture();
        let bytes = Bytes::from_static(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        );
        let digest = Digest::compute(Algorithm::Sha256, &bytes);
        f.blobs.put(&digest, bytes.clone()).await.unwrap();
        f.blobs.cut.lock().unwrap().insert(digest.clone());
        assert_eq!(f.registry.read_whole_blob(&digest).await.unwrap(), bytes);
        assert!(
            f.blobs.cut.lock().unwrap().is_empty(),
            "the first read was cut off"
        );
    }

    #[tokio::test]
    async fn early_accessories_are_linked_when_the_subjects_push_was_applied_but_reported_failed() {
        let f = fixture();
        let repo: RepoName = "faults/early".parse().unwrap();
        let config = push_blob(
            &f.registry,
            &repo,
            "application/vnd.oci.image.config.v1+json",
            br#"{"os":"linux"}"#,
        )
        .await;
        let layer = push_blob(
            &f.registry,
            &repo,
            "application/vnd.oci.image.layer.v1.tar",
            b"layer",
        )
        .await;
        let subject = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [layer],
        }))
        .unwrap();
        let subject_digest = Digest::compute(Algorithm::Sha256, &subject);

        // The cosign signature first, under its scheme tag: its subject is not there yet.
        let empty = push_blob(&f.registry, &repo, "application/vnd.oci.empty.v1+json", b"{}").await;
        let mut payload = push_blob(
            &f.registry,
            &repo,
            crate::domain::manifest::COSIGN_SIMPLE_SIGNING,
            b"{\"critical\":{}}",
        )
        .await;
        payload["annotations"] =
            json!({crate::domain::manifest::COSIGN_SIGNATURE_ANNOTATION: "c2lnbmF0dXJl"});
        let signature = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": empty, "layers": [payload],
        }))
        .unwrap();
        let signature_tag = format!("{}.sig", subject_digest.tag_form());
        let signed = push(&f.registry, &repo, &signature_tag, &signature)
            .await
            .unwrap();

        // The subject's append is applied, but the store reports it failed; the client retries.
        f.log.lose.store(true, Ordering::SeqCst);
        assert!(push(&f.registry, &repo, "v1", &subject).await.is_err());
        push(&f.registry, &repo, "v1", &subject).await.unwrap();

        let accessories = f.registry.accessories(&repo, &subject_digest).await.unwrap();
        let linked: Vec<(Digest, AccessoryKind)> = (accessories.iter())
            .map(|a| (a.record.digest.clone(), a.record.kind))
            .collect();
        assert_eq!(linked, [(signed.digest, AccessoryKind::CosignSignature)]);
        // Pushing again links nothing twice.
        push(&f.registry, &repo, "v1", &subject).await.unwrap();
        assert_eq!(
            f.registry
                .accessories(&repo, &subject_digest)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
