//! The GC fence and the careful write path (docs/lifecycle.md, "GC protocol", the fenced design,
//! model-checked in docs/models/gc_fenced.pml).
//!
//! A garbage collection run raises the fence (its `GcStarted`) and lowers it with its
//! `GcFinished`: the fence is up while the last event of the `gc` stream belongs to a real run
//! that has not finished (its start, a checkpoint, a stop request). Each process reads the fence at most every
//! [`GcTiming::fence_cache`]. A write decision that finds the fence down takes today's fast path,
//! bounded in time: it must append within [`GcTiming::decision_bound`] of reading the fence (for
//! an upload, before its bytes are put), or it is decided again on the careful path. GC waits
//! both durations after raising the fence before it unlinks or condemns anything, so every fast
//! decision has appended or given up by then.
//!
//! On the careful path a decision that creates a user of some content (an upload's or a
//! manifest's own bytes, a mount) guards that content's stream `content/<digest>` and looks at its
//! state: condemned content is spared in the same append; content being deleted, or deleted with
//! this writer's bytes gone with it, is refused as contention (the client retries). A manifest
//! push also guards the link and content streams of each of its blobs, so a GC unlink or
//! condemnation in between makes it decide again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::domain::{Digest, Event, RecordedEvent, StreamId};

use super::{AppError, Registry, RequestContext};

/// How stale a process's copy of the fence may be.
pub const DEFAULT_FENCE_CACHE: Duration = Duration::from_secs(5);
/// How long a fast decision may take from reading the fence to its append.
pub const DEFAULT_DECISION_BOUND: Duration = Duration::from_secs(30);
/// How long an append may still take once its decision checked the bound (the store's request
/// timeouts and retries are well inside it).
pub const DEFAULT_APPEND_MARGIN: Duration = Duration::from_secs(15);
/// How long a run may go without a `GcCheckpoint` before another process takes it over: longer
/// than a Lambda invocation may last (15 minutes) and than any one step of a run.
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(20 * 60);

/// The durations the protocol rests on; GC waits their sum after raising the fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcTiming {
    pub fence_cache: Duration,
    pub decision_bound: Duration,
    /// The bound is checked just before the append is sent; the append itself may land later.
    pub append_margin: Duration,
    /// A GC run whose last `gc` event is older than this (and that did not pause on purpose) is
    /// taken over by the next scheduled check (`Registry::run_due_gc`); a retention execution
    /// whose policy's stream is this silent is ended (`run_due_retentions`).
    pub stalled_after: Duration,
}

impl GcTiming {
    /// For a process that has the store to itself (the embedded store, whose file it locks): no
    /// other process writes, so GC has no fast decisions to wait out.
    pub fn exclusive() -> GcTiming {
        GcTiming {
            fence_cache: Duration::ZERO,
            decision_bound: Duration::ZERO,
            append_margin: Duration::ZERO,
            ..GcTiming::default()
        }
    }

    /// How long a run waits after raising the fence before it unlinks or condemns anything.
    pub fn fence_wait(&self) -> Duration {
        self.fence_cache + self.decision_bound + self.append_margin
    }
}

impl Default for GcTiming {
    fn default() -> Self {
        GcTiming {
            fence_cache: DEFAULT_FENCE_CACHE,
            decision_bound: DEFAULT_DECISION_BOUND,
            append_margin: DEFAULT_APPEND_MARGIN,
            stalled_after: DEFAULT_STALLED_AFTER,
        }
    }
}

/// The most streams the careful path adds to one decision: a manifest's own content and the link
/// and content of each of 24 blobs. DynamoDB caps a transaction at 100 items; a decision that would
/// need more waits, as contention, until the run ends (the client retries).
pub(super) const MAX_CAREFUL_GUARDS: usize = 49;

/// A process's copy of the fence.
#[derive(Default)]
pub(super) struct FenceCache(Mutex<Option<(bool, Instant)>>);

/// How a write decision goes: carefully, or fast until `deadline`.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteMode {
    pub careful: bool,
    pub deadline: Option<Instant>,
}

impl WriteMode {
    pub fn careful() -> WriteMode {
        WriteMode {
            careful: true,
            deadline: None,
        }
    }
}

/// Where garbage collection stands on some content: the last event of its `content/<digest>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentState {
    /// Never condemned, spared, or condemned and spared again.
    Live,
    Condemned,
    Deleting,
    Deleted,
}

impl Registry {
    /// How a write decision starting now goes: careful while the fence is up (or may be), fast
    /// until the decision bound otherwise.
    pub(super) async fn write_mode(&self) -> Result<WriteMode, AppError> {
        let careful = self.fence_up().await?;
        Ok(WriteMode {
            careful,
            deadline: (!careful).then(|| Instant::now() + self.gc_timing.decision_bound),
        })
    }

    /// Decides and appends a write that creates a user of some content (upload completion, mount,
    /// manifest push): `streams` are always guarded, `careful_streams` too on the careful path,
    /// and `decide(careful)` gives the events. A fast decision that outlives its bound is decided
    /// again on the careful path.
    pub(super) async fn decide_write<'a, T>(
        &self,
        ctx: &RequestContext,
        mut mode: WriteMode,
        streams: &[StreamId],
        careful_streams: &[StreamId],
        mut decide: impl FnMut(bool) -> BoxFuture<'a, Result<(Vec<Event>, T), AppError>>,
    ) -> Result<(Vec<RecordedEvent>, T), AppError> {
        loop {
            let mut guarded = streams.to_vec();
            if mode.careful {
                if careful_streams.len() > MAX_CAREFUL_GUARDS {
                    return Err(AppError::Contention);
                }
                guarded.extend_from_slice(careful_streams);
            }
            let careful = mode.careful;
            let decided =
                (self.decide_and_append_until(ctx, &guarded, mode.deadline, || decide(careful))).await;
            match decided {
                Err(AppError::DecisionExpired) => mode = WriteMode::careful(),
                other => return other,
            }
        }
    }

    /// Whether the GC fence is up, as this process last read it (at most `fence_cache` ago).
    pub(super) async fn fence_up(&self) -> Result<bool, AppError> {
        let cached = *self.fence.0.lock().map_err(|_| lock_failed())?;
        if let Some((up, at)) = cached {
            if at.elapsed() < self.gc_timing.fence_cache {
                return Ok(up);
            }
        }
        let read_at = Instant::now();
        let up = self.read_fence().await?;
        *self.fence.0.lock().map_err(|_| lock_failed())? = Some((up, read_at));
        Ok(up)
    }

    /// Reads the fence from the log: up while the last event of `gc` belongs to a run that is not
    /// a dry run and has not finished (for a checkpoint or a stop request, one more read: the
    /// run's start).
    pub(super) async fn read_fence(&self) -> Result<bool, AppError> {
        let last = self.last_event(&StreamId::gc()).await?;
        let run = match last.map(|r| r.envelope.event) {
            Some(Event::GcStarted { dry_run, .. }) => return Ok(!dry_run),
            Some(Event::GcCheckpoint { run, .. } | Event::GcStopRequested { run }) => run,
            _ => return Ok(false),
        };
        let start = self
            .log
            .read_stream(&StreamId::gc(), run.saturating_sub(1), 1)
            .await?;
        Ok(matches!(
            start.first().map(|r| &r.envelope.event),
            Some(Event::GcStarted { dry_run: false, .. })
        ))
    }

    /// Forgets this process's copy of the fence (a GC run raises and lowers it through here).
    pub(super) fn forget_fence(&self) {
        if let Ok(mut cached) = self.fence.0.lock() {
            *cached = None;
        }
    }

    pub(super) async fn content_state(&self, digest: &Digest) -> Result<ContentState, AppError> {
        let last = self.last_event(&StreamId::content(digest)).await?;
        Ok(match last.map(|r| r.envelope.event) {
            Some(Event::BlobCondemned { .. }) => ContentState::Condemned,
            Some(Event::BlobDeleting { .. }) => ContentState::Deleting,
            Some(Event::BlobDeleted { .. }) => ContentState::Deleted,
            _ => ContentState::Live,
        })
    }

    /// On the careful path, what a decision that creates a user of `digest` (whose bytes it put
    /// itself, or found linked) appends with it: a `BlobSpared` for condemned content, nothing
    /// for live content. Content being deleted, or deleted with these bytes gone, is refused as
    /// contention: the client retries, and its retry stores the bytes again.
    pub(super) async fn use_content(&self, digest: &Digest) -> Result<Vec<Event>, AppError> {
        match self.content_state(digest).await? {
            ContentState::Live => Ok(vec![]),
            ContentState::Condemned => Ok(vec![Event::BlobSpared {
                digest: digest.clone(),
            }]),
            ContentState::Deleting => Err(AppError::Contention),
            ContentState::Deleted => match self.blobs.stat(digest).await? {
                Some(_) => Ok(vec![]),
                None => Err(AppError::Contention),
            },
        }
    }
}

fn lock_failed() -> AppError {
    AppError::Backend("the GC fence's cache lock is poisoned".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::adapters::embedded::RedbStore;
    use crate::adapters::fs::FsBlobStore;
    use crate::app::RequestContext;
    use crate::domain::{Algorithm, EventEnvelope, RepoName};
    use crate::ports::{ByteStream, SystemClock};

    fn registry(dir: &tempfile::TempDir, timing: GcTiming) -> Registry {
        let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        Registry::new(store.clone(), store, blobs, Arc::new(SystemClock)).with_gc_timing(timing)
    }

    /// Appends `event` to its stream, as garbage collection would, and forgets the cached fence.
    async fn record(registry: &Registry, event: Event) {
        append_elsewhere(registry, event).await;
        registry.forget_fence();
    }

    /// Appends `event` as another process would: this one's cached fence stays.
    async fn append_elsewhere(registry: &Registry, event: Event) {
        let stream = StreamId::of(&event);
        let version = registry.log.stream_version(&stream).await.unwrap();
        let envelope = EventEnvelope {
            id: uuid::Uuid::now_v7().to_string(),
            time: chrono::Utc::now(),
            principal: "system".into(),
            event,
        };
        registry
            .log
            .append(&stream, version, vec![envelope])
            .await
            .unwrap();
    }

    fn gc_started(dry_run: bool) -> Event {
        Event::GcStarted {
            delete_untagged: false,
            dry_run,
            cutoff: chrono::Utc::now(),
            scheduled_for: None,
        }
    }

    async fn upload(registry: &Registry, repo: &RepoName, bytes: &'static [u8]) -> Result<Digest, AppError> {
        let digest = Digest::compute(Algorithm::Sha256, bytes);
        let id = registry.start_upload(repo).await?;
        let body: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(bytes))]));
        let ctx = RequestContext::anonymous();
        (registry.finish_upload(&ctx, repo, &id, &digest, Some((None, body)))).await?;
        Ok(digest)
    }

    async fn last_event(registry: &Registry, stream: &StreamId) -> Option<Event> {
        let last = registry.last_event(stream).await.unwrap();
        last.map(|r| r.envelope.event)
    }

    #[tokio::test]
    async fn the_fence_is_up_from_a_real_runs_start_to_its_end_and_is_read_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir, GcTiming::default());
        let fast = registry.write_mode().await.unwrap();
        assert!(!fast.careful && fast.deadline.is_some());
        record(&registry, gc_started(true)).await;
        assert!(
            !registry.write_mode().await.unwrap().careful,
            "a dry run raises no fence"
        );
        record(&registry, gc_started(false)).await;
        let careful = registry.write_mode().await.unwrap();
        assert!(careful.careful && careful.deadline.is_none());

        // Another process lowers it: this one sees it within the cache's time, not before.
        let finished = Event::GcFinished {
            run: 2,
            status: "Success".into(),
            manifests_deleted: 0,
            links_removed: 0,
            blobs_deleted: 0,
            bytes_freed: 0,
            duration_ms: 0,
            error: None,
        };
        append_elsewhere(&registry, finished).await;
        assert!(registry.fence_up().await.unwrap(), "still cached");
        assert!(!registry.read_fence().await.unwrap());
    }

    #[tokio::test]
    async fn a_careful_upload_spares_condemned_content_and_waits_while_it_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir, GcTiming::default());
        let repo: RepoName = "gc/app".parse().unwrap();
        let spared = Digest::compute(Algorithm::Sha256, b"condemned layer");
        record(&registry, gc_started(false)).await;
        record(
            &registry,
            Event::BlobCondemned {
                digest: spared.clone(),
            },
        )
        .await;
        upload(&registry, &repo, b"condemned layer").await.unwrap();
        let content = StreamId::content(&spared);
        assert_eq!(
            last_event(&registry, &content).await,
            Some(Event::BlobSpared {
                digest: spared.clone()
            })
        );
        assert_eq!(registry.content_state(&spared).await.unwrap(), ContentState::Live);
        assert!(registry.views.blob_link(&repo, &spared).await.unwrap().is_some());

        let deleting = Digest::compute(Algorithm::Sha256, b"layer being deleted");
        record(
            &registry,
            Event::BlobCondemned {
                digest: deleting.clone(),
            },
        )
        .await;
        record(
            &registry,
            Event::BlobDeleting {
                digest: deleting.clone(),
            },
        )
        .await;
        let refused = upload(&registry, &repo, b"layer being deleted")
            .await
            .unwrap_err();
        assert!(matches!(refused, AppError::Contention), "{refused:?}");
        assert!(registry
            .views
            .blob_link(&repo, &deleting)
            .await
            .unwrap()
            .is_none());
        // Deleted, and this upload's bytes there: linked.
        record(
            &registry,
            Event::BlobDeleted {
                digest: deleting.clone(),
                size: 19,
            },
        )
        .await;
        upload(&registry, &repo, b"layer being deleted").await.unwrap();
        assert!(registry
            .views
            .blob_link(&repo, &deleting)
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn a_fast_decision_past_its_bound_is_decided_again_carefully() {
        let dir = tempfile::tempdir().unwrap();
        let repo: RepoName = "gc/app".parse().unwrap();
        let condemned = Digest::compute(Algorithm::Sha256, b"late layer");
        // The fence is down, but the content is condemned (a run that stopped and was resumed
        // elsewhere): the fast path reads nothing of it...
        let within = registry(&dir, GcTiming::default());
        record(
            &within,
            Event::BlobCondemned {
                digest: condemned.clone(),
            },
        )
        .await;
        drop(within);
        // ...and a decision with no time at all expires, and is decided on the careful path,
        // which spares it.
        let expired = registry(
            &dir,
            GcTiming {
                fence_cache: DEFAULT_FENCE_CACHE,
                decision_bound: Duration::ZERO,
                append_margin: Duration::ZERO,
                ..GcTiming::default()
            },
        );
        upload(&expired, &repo, b"late layer").await.unwrap();
        assert_eq!(
            last_event(&expired, &StreamId::content(&condemned)).await,
            Some(Event::BlobSpared { digest: condemned })
        );
    }

    #[tokio::test]
    async fn a_careful_manifest_push_is_appended_and_one_with_too_many_blobs_waits() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir, GcTiming::default());
        let repo: RepoName = "gc/app".parse().unwrap();
        let config = upload(&registry, &repo, br#"{"os":"linux"}"#).await.unwrap();
        record(&registry, gc_started(false)).await;
        let ctx = RequestContext::anonymous();
        let manifest = |layers: Vec<serde_json::Value>| {
            json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config.to_string(), "size": 14},
                "layers": layers,
            })
            .to_string()
        };
        let pushed = registry
            .push_manifest(
                &ctx,
                &repo,
                "v1".parse().unwrap(),
                "application/vnd.oci.image.manifest.v1+json",
                manifest(vec![]).into(),
            )
            .await
            .unwrap();
        assert!(registry
            .views
            .manifest(&repo, &pushed.digest)
            .await
            .unwrap()
            .is_some());

        // The config and 24 layers: 25 blobs, two streams each and the manifest's own, past the cap.
        let layers = (0..MAX_CAREFUL_GUARDS / 2)
            .map(|n| {
                let digest = Digest::compute(Algorithm::Sha256, &n.to_be_bytes());
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": digest.to_string(), "size": 8})
            })
            .collect();
        let refused = registry
            .push_manifest(
                &ctx,
                &repo,
                "v2".parse().unwrap(),
                "application/vnd.oci.image.manifest.v1+json",
                manifest(layers).into(),
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, AppError::Contention), "{refused:?}");
    }
}
