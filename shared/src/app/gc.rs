//! Online garbage collection (issue 14, docs/lifecycle.md "GC protocol", the fenced design that
//! docs/models/gc_fenced.pml checks). A run raises the fence (`GcStarted` on the `gc` stream),
//! waits until no fast write decision can still be under way, then:
//!
//! 1. per repository: marks from the views (`domain::lifecycle::gc::mark`), deletes what is not
//!    kept through the ordinary deletion (immutable tags hold), unlinks the blobs nothing kept
//!    uses and whose link is older than the grace window, then reads the manifests that use each
//!    such blob again and links it back under any that appeared meanwhile;
//! 2. for the whole store: condemns every blob no repository uses (linked, or a manifest) that is
//!    older than the grace window, reads every repository again, spares what is used after all,
//!    and deletes the rest's bytes (`BlobDeleting`, the store's batched delete, `BlobDeleted`);
//!
//! and lowers the fence with `GcFinished`, which also records what it freed. A dry run reads the
//! same, appends only its `GcStarted`/`GcFinished` (no fence), and reports what a real run would
//! delete.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::accessory::SchemeTag;
use crate::domain::lifecycle::gc::{mark, Manifest, Options, Snapshot};
use crate::domain::{repository, Digest, Event, RepoName, StreamId};
use crate::ports::MAX_LIST_PAGE;

use super::gc_fence::ContentState;
use super::{AppError, Registry, RequestContext};

/// Repositories read per catalog page.
const CATALOG_PAGE: usize = 1_000;
/// The grace window unless the caller sets one: nothing younger is collected.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(2 * 60 * 60);

/// What a run is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Collect untagged manifests (with their accessories) too.
    pub delete_untagged: bool,
    /// Report what a run would delete, delete nothing.
    pub dry_run: bool,
    /// Take over a run that is under way or stopped half-way (its fence is still up) instead of
    /// refusing to start.
    pub resume: bool,
    /// Nothing written more recently than this is collected.
    pub grace: Duration,
    /// For a run the schedule starts: the firing it serves (a run that served it, or a later one,
    /// means this one is not started).
    pub scheduled_for: Option<DateTime<Utc>>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            delete_untagged: false,
            dry_run: false,
            resume: false,
            grace: DEFAULT_GC_GRACE,
            scheduled_for: None,
        }
    }
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The run's id: the version of its `GcStarted` in the `gc` stream.
    pub run: u64,
    pub manifests_deleted: u64,
    /// Manifests kept because an immutable tag rule holds a tag of theirs.
    pub manifests_held: u64,
    pub links_removed: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub duration: Duration,
}

/// `BERTH_GC_GRACE_SECS` (as `berth gc --grace-secs` reads it), else the default grace window;
/// a value that is no number of seconds is logged and the default (the safer, longer one) used.
pub fn grace_from_env() -> Duration {
    let Ok(value) = std::env::var("BERTH_GC_GRACE_SECS") else {
        return DEFAULT_GC_GRACE;
    };
    value.trim().parse().map(Duration::from_secs).unwrap_or_else(|_| {
        tracing::error!(value = %value, "BERTH_GC_GRACE_SECS is not a number of seconds; using the default grace window");
        DEFAULT_GC_GRACE
    })
}

/// A run that has started (its `GcStarted` is in the log) and is yet to collect.
#[derive(Debug, Clone)]
pub struct GcRun {
    pub id: u64,
    options: GcOptions,
    cutoff: DateTime<Utc>,
    started: Instant,
}

/// A run as the `gc` stream records it (Harbor's GC history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRecord {
    pub id: u64,
    pub delete_untagged: bool,
    pub dry_run: bool,
    /// For a run the schedule started, the firing it served.
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    /// `None` while it runs (or if it stopped half-way and was not resumed).
    pub finished: Option<GcFinished>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcFinished {
    pub at: DateTime<Utc>,
    pub status: String,
    pub manifests_deleted: u64,
    pub links_removed: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl Registry {
    /// Runs garbage collection once (see the module's documentation). A real run while another
    /// is under way is refused; one that stopped half-way is finished by the next.
    pub async fn gc(&self, options: GcOptions) -> Result<GcReport, AppError> {
        let run = self.start_gc(options).await?;
        self.finish_gc(run).await
    }

    /// Starts a run: its `GcStarted` is appended (a real run while another is up is refused as a
    /// conflict, unless `resume`), and [`Registry::finish_gc`] does the rest.
    pub async fn start_gc(&self, options: GcOptions) -> Result<GcRun, AppError> {
        let started = Instant::now();
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        let cutoff = self.clock.now() - chrono::Duration::from_std(options.grace).unwrap_or_default();
        let id = self.start_run(&ctx, &options, cutoff).await?;
        Ok(GcRun {
            id,
            options,
            cutoff,
            started,
        })
    }

    /// Waits out the fence (a real run), collects, and appends the run's `GcFinished`.
    pub async fn finish_gc(&self, run: GcRun) -> Result<GcReport, AppError> {
        let GcRun {
            id: run,
            options,
            cutoff,
            started,
        } = run;
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        if !options.dry_run {
            tokio::time::sleep(self.gc_timing.fence_wait()).await;
        }
        let mut report = GcReport {
            run,
            ..GcReport::default()
        };
        let outcome = self.collect(&ctx, &options, cutoff, &mut report).await;
        report.duration = started.elapsed();
        let (status, error) = match &outcome {
            Ok(()) => ("Success", None),
            Err(e) => ("Error", Some(e.to_string())),
        };
        let finished = Event::GcFinished {
            run,
            status: status.to_string(),
            manifests_deleted: report.manifests_deleted,
            links_removed: report.links_removed,
            blobs_deleted: report.blobs_deleted,
            bytes_freed: report.bytes_freed,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            error,
        };
        // Appended whatever happened: it lowers the fence.
        self.append_system(&ctx, finished).await?;
        self.forget_fence();
        outcome.map(|()| report)
    }

    /// Runs garbage collection if its schedule fired since it was set and since the schedule's last
    /// run (once however many firings were missed); `Ok(None)` if nothing was due, or a run is under
    /// way, or another process started this firing's. `berth serve` calls this with the retention
    /// schedules, the janitor function on each of its runs.
    pub async fn run_due_gc(&self, now: DateTime<Utc>) -> Result<Option<GcReport>, AppError> {
        let directory = self.current_directory().await?;
        let Some(schedule) = &directory.gc_schedule else {
            return Ok(None);
        };
        let last = (self.gc_history().await?.into_iter())
            .filter_map(|r| r.scheduled_for)
            .max();
        let since = last.map_or(schedule.since, |at| at.max(schedule.since));
        let Some(due) = schedule.cron.last_due(since, now) else {
            return Ok(None);
        };
        let options = GcOptions {
            delete_untagged: schedule.spec.delete_untagged,
            dry_run: schedule.spec.dry_run,
            scheduled_for: Some(due),
            grace: grace_from_env(),
            ..GcOptions::default()
        };
        match self.start_gc(options).await {
            Ok(run) => Ok(Some(self.finish_gc(run).await?)),
            Err(AppError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every run the `gc` stream records, oldest first.
    pub async fn gc_history(&self) -> Result<Vec<GcRecord>, AppError> {
        let stream = StreamId::gc();
        let mut records: Vec<GcRecord> = Vec::new();
        for recorded in self.whole_stream(&stream).await? {
            match recorded.envelope.event {
                Event::GcStarted {
                    delete_untagged,
                    dry_run,
                    scheduled_for,
                    ..
                } => records.push(GcRecord {
                    id: recorded.version,
                    delete_untagged,
                    dry_run,
                    scheduled_for,
                    started_at: recorded.envelope.time,
                    finished: None,
                }),
                Event::GcFinished {
                    run,
                    status,
                    manifests_deleted,
                    links_removed,
                    blobs_deleted,
                    bytes_freed,
                    duration_ms,
                    error,
                } => {
                    if let Some(record) = records.iter_mut().find(|r| r.id == run) {
                        record.finished = Some(GcFinished {
                            at: recorded.envelope.time,
                            status,
                            manifests_deleted,
                            links_removed,
                            blobs_deleted,
                            bytes_freed,
                            duration_ms,
                            error,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(records)
    }

    /// Appends `GcStarted` (the run's id is its version), or takes over the run whose fence is up.
    async fn start_run(
        &self,
        ctx: &RequestContext,
        options: &GcOptions,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, AppError> {
        // One run at a time, dry or real, decided on the `gc` stream: the fence is the stream's
        // last event, so a dry run's events landing inside a real run would lower it.
        let stream = StreamId::gc();
        let options = *options;
        let (recorded, taken_over) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    let last = self.last_event(&StreamId::gc()).await?;
                    let under_way = match last.as_ref().map(|r| (&r.envelope.event, r.version)) {
                        Some((Event::GcStarted { dry_run, .. }, version)) => Some((*dry_run, version)),
                        _ => None,
                    };
                    if let Some(due) = options.scheduled_for {
                        let served = (self.gc_history().await?.iter())
                            .any(|r| r.scheduled_for.is_some_and(|at| at >= due));
                        if served {
                            return Err(AppError::Conflict(
                                "the schedule's run for this firing has started already".into(),
                            ));
                        }
                    }
                    let started = Event::GcStarted {
                        delete_untagged: options.delete_untagged,
                        dry_run: options.dry_run,
                        cutoff,
                        scheduled_for: options.scheduled_for,
                    };
                    match under_way {
                        None => Ok((vec![started], None)),
                        Some(_) if !options.resume => Err(AppError::Conflict(
                            "a garbage collection run is under way (or stopped half-way: resume it)".into(),
                        )),
                        // The fence is up: take the real run over.
                        Some((false, version)) if !options.dry_run => Ok((vec![], Some(version))),
                        // A dry run that never finished: close it, then start.
                        Some((true, version)) => {
                            let closed = Event::GcFinished {
                                run: version,
                                status: "Stopped".to_string(),
                                manifests_deleted: 0,
                                links_removed: 0,
                                blobs_deleted: 0,
                                bytes_freed: 0,
                                duration_ms: 0,
                                error: Some("taken over by a resumed run".to_string()),
                            };
                            Ok((vec![closed, started], None))
                        }
                        Some((false, _)) => Err(AppError::Conflict(
                            "a real garbage collection run is under way: a dry run cannot resume it".into(),
                        )),
                    }
                })
            })
            .await?;
        if let Some(version) = taken_over {
            return Ok(version);
        }
        if !options.dry_run {
            self.forget_fence();
        }
        Ok(recorded.last().map_or(0, |r| r.version))
    }

    /// Appends one event of the system's to its stream, decided on nothing but that stream.
    pub(super) async fn append_system(&self, ctx: &RequestContext, event: Event) -> Result<u64, AppError> {
        let stream = StreamId::of(&event);
        let event = &event;
        let (recorded, ()) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move { Ok((vec![event.clone()], ())) })
            })
            .await?;
        Ok(recorded.first().map_or(0, |r| r.version))
    }

    async fn collect(
        &self,
        ctx: &RequestContext,
        options: &GcOptions,
        cutoff: DateTime<Utc>,
        report: &mut GcReport,
    ) -> Result<(), AppError> {
        let mark_options = Options {
            delete_untagged: options.delete_untagged,
            cutoff,
        };
        // Phase 1, per repository; what stays used is phase 2's first look.
        let mut used: BTreeSet<Digest> = BTreeSet::new();
        for repo in self.all_repositories().await? {
            used.extend(
                self.collect_repository(ctx, &repo, &mark_options, options.dry_run, report)
                    .await?,
            );
        }
        // Phase 2: the blob store against what is used.
        let mut after: Option<Digest> = None;
        loop {
            let page = self.blobs.list_blobs(after.as_ref(), MAX_LIST_PAGE).await?;
            let last = page.len() < MAX_LIST_PAGE;
            after = page.last().map(|b| b.digest.clone());
            let mut candidates: BTreeMap<Digest, u64> = BTreeMap::new();
            for blob in page {
                if blob.modified <= cutoff && !used.contains(&blob.digest) {
                    candidates.insert(blob.digest, blob.size);
                }
            }
            if !candidates.is_empty() {
                self.collect_bytes(ctx, candidates, options.dry_run, report)
                    .await?;
            }
            if last {
                return Ok(());
            }
        }
    }

    async fn all_repositories(&self) -> Result<Vec<RepoName>, AppError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.views.repositories(after.as_deref(), CATALOG_PAGE).await?;
            let last = page.len() < CATALOG_PAGE;
            after = page.last().map(ToString::to_string);
            all.extend(page);
            if last {
                return Ok(all);
            }
        }
    }

    /// Every digest `repo` uses now: its linked blobs and its manifests.
    async fn used_by(&self, repo: &RepoName) -> Result<BTreeSet<Digest>, AppError> {
        Ok(self
            .views
            .stored(repo)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    /// Phase 1 for one repository; answers what it still uses afterwards (for a dry run, what it
    /// would).
    async fn collect_repository(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        options: &Options,
        dry_run: bool,
        report: &mut GcReport,
    ) -> Result<BTreeSet<Digest>, AppError> {
        let mut snapshot = Snapshot::default();
        for record in self.views.manifests(repo).await? {
            let tags = self.views.manifest_tags(repo, &record.digest).await?;
            for subject in self.views.subjects_of(repo, &record.digest).await? {
                snapshot.accessories.push((subject, record.digest.clone()));
            }
            snapshot.manifests.push(Manifest {
                tagged: tags.iter().any(|t| SchemeTag::parse(t).is_none()),
                digest: record.digest,
                pushed_at: record.pushed_at,
                blobs: record.blobs,
                children: record.manifests,
            });
        }
        let manifests: BTreeSet<Digest> = snapshot.manifests.iter().map(|m| m.digest.clone()).collect();
        let mut used = self.used_by(repo).await?;
        snapshot.linked = used.iter().filter(|d| !manifests.contains(*d)).cloned().collect();
        let plan = mark(&snapshot, options);

        for digest in &plan.delete {
            if dry_run {
                report.manifests_deleted += 1;
                used.remove(digest);
                continue;
            }
            match self.delete_collected(ctx, repo, digest).await {
                Ok(deleted) => report.manifests_deleted += deleted,
                Err(AppError::Immutable(_)) => report.manifests_held += 1,
                Err(e) => return Err(e),
            }
        }
        for blob in &plan.unlink {
            if self.linked_since(repo, blob).await? > options.cutoff {
                continue;
            }
            if dry_run {
                report.links_removed += 1;
                used.remove(blob);
                continue;
            }
            report.links_removed += self.unlink_collected(ctx, repo, blob).await?;
        }
        if dry_run {
            Ok(used)
        } else {
            self.used_by(repo).await
        }
    }

    /// When `blob` was last linked to `repo`: its stream's last event.
    async fn linked_since(&self, repo: &RepoName, blob: &Digest) -> Result<DateTime<Utc>, AppError> {
        let last = self.last_event(&StreamId::blob(repo, blob)).await?;
        Ok(last.map_or(DateTime::<Utc>::MIN_UTC, |r| r.envelope.time))
    }

    /// Deletes a manifest the mark let go (with its accessories), unless it went meanwhile;
    /// answers how many manifests went.
    pub(super) async fn delete_collected(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<u64, AppError> {
        let streams = [StreamId::manifest(repo, digest)];
        let (recorded, ()) = self
            .decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    if self.views.manifest(repo, digest).await?.is_none() {
                        return Ok((vec![], ()));
                    }
                    Ok((self.deletion_events(repo, digest).await?, ()))
                })
            })
            .await?;
        let deleted = recorded
            .iter()
            .filter(|r| matches!(r.envelope.event, Event::ManifestDeleted { .. }));
        Ok(deleted.count() as u64)
    }

    /// Unlinks `blob` from `repo` unless a manifest uses it by then, then reads the manifests that
    /// use it again and links it back under any that appeared meanwhile (the protocol's re-read).
    async fn unlink_collected(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        blob: &Digest,
    ) -> Result<u64, AppError> {
        let streams = [StreamId::blob(repo, blob)];
        let (recorded, ()) = self
            .decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    if self.used_by_a_manifest(repo, blob).await? {
                        return Ok((vec![], ()));
                    }
                    let linked = self.views.blob_link(repo, blob).await?;
                    Ok((
                        repository::unlink_blob(repo, blob, linked).unwrap_or_default(),
                        (),
                    ))
                })
            })
            .await?;
        let Some(Event::BlobUnlinked { size, .. }) = recorded.first().map(|r| &r.envelope.event) else {
            return Ok(0);
        };
        if self.used_by_a_manifest(repo, blob).await? {
            let size = *size;
            self.decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    if self.views.blob_link(repo, blob).await?.is_some() {
                        return Ok((vec![], ()));
                    }
                    // Linked back: a mount from the repository itself.
                    let relink = Event::BlobMounted {
                        repository: repo.clone(),
                        digest: blob.clone(),
                        size,
                        from: repo.clone(),
                    };
                    Ok((vec![relink], ()))
                })
            })
            .await?;
            return Ok(0);
        }
        Ok(1)
    }

    async fn used_by_a_manifest(&self, repo: &RepoName, blob: &Digest) -> Result<bool, AppError> {
        for manifest in self.views.manifests_using(repo, blob).await? {
            if self.views.manifest(repo, &manifest).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Phase 2 for one page of candidates (digest → size): condemn, look again, delete.
    async fn collect_bytes(
        &self,
        ctx: &RequestContext,
        candidates: BTreeMap<Digest, u64>,
        dry_run: bool,
        report: &mut GcReport,
    ) -> Result<(), AppError> {
        if dry_run {
            report.blobs_deleted += candidates.len() as u64;
            report.bytes_freed += candidates.values().sum::<u64>();
            return Ok(());
        }
        // Condemned or being deleted already (a run that stopped half-way): carried on below.
        for digest in candidates.keys() {
            let streams = [StreamId::content(digest)];
            self.decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    // Deleted content whose bytes are back (an upload since) starts over.
                    let events = match self.content_state(digest).await? {
                        ContentState::Live | ContentState::Deleted => vec![Event::BlobCondemned {
                            digest: digest.clone(),
                        }],
                        _ => vec![],
                    };
                    Ok((events, ()))
                })
            })
            .await?;
        }
        // The protocol's second look: every repository again.
        let mut used = BTreeSet::new();
        for repo in self.all_repositories().await? {
            used.extend(self.used_by(&repo).await?);
        }
        let mut deleting = Vec::new();
        for digest in candidates.keys() {
            let spare = used.contains(digest);
            let streams = [StreamId::content(digest)];
            let (_, go) = self
                .decide_and_append(ctx, &streams, move || {
                    Box::pin(async move {
                        let state = self.content_state(digest).await?;
                        Ok(match (state, spare) {
                            (ContentState::Condemned, true) => (
                                vec![Event::BlobSpared {
                                    digest: digest.clone(),
                                }],
                                false,
                            ),
                            (ContentState::Condemned, false) => (
                                vec![Event::BlobDeleting {
                                    digest: digest.clone(),
                                }],
                                true,
                            ),
                            (ContentState::Deleting, _) => (vec![], true),
                            _ => (vec![], false),
                        })
                    })
                })
                .await?;
            if go {
                deleting.push(digest.clone());
            }
        }
        self.blobs.delete_blobs(&deleting).await?;
        for digest in deleting {
            let size = candidates.get(&digest).copied().unwrap_or(0);
            self.append_system(ctx, Event::BlobDeleted { digest, size })
                .await?;
            report.blobs_deleted += 1;
            report.bytes_freed += size;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use bytes::Bytes;
    use serde_json::{json, Value};

    use super::*;
    use crate::adapters::embedded::RedbStore;
    use crate::adapters::fs::FsBlobStore;
    use crate::app::GcTiming;
    use crate::domain::{Algorithm, Reference};
    use crate::ports::{ByteStream, SystemClock};

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    fn registry(dir: &tempfile::TempDir) -> Registry {
        let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        Registry::new(store.clone(), store, blobs, Arc::new(SystemClock)).with_gc_timing(GcTiming {
            fence_cache: Duration::from_millis(10),
            decision_bound: Duration::from_millis(50),
            append_margin: Duration::from_millis(10),
        })
    }

    fn now() -> GcOptions {
        GcOptions {
            grace: Duration::ZERO,
            ..GcOptions::default()
        }
    }

    async fn upload(registry: &Registry, repo: &RepoName, bytes: Vec<u8>) -> Result<Value, AppError> {
        let digest = Digest::compute(Algorithm::Sha256, &bytes);
        let size = bytes.len();
        let id = registry.start_upload(repo).await?;
        let body: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from(bytes))]));
        let ctx = RequestContext::anonymous();
        (registry.finish_upload(&ctx, repo, &id, &digest, Some((None, body)))).await?;
        Ok(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.to_string(), "size": size}),
        )
    }

    async fn push(
        registry: &Registry,
        repo: &RepoName,
        reference: &str,
        manifest: &Value,
    ) -> Result<Digest, AppError> {
        let ctx = RequestContext::anonymous();
        let body = Bytes::from(manifest.to_string());
        let pushed = registry
            .push_manifest(&ctx, repo, reference.parse().unwrap(), OCI_MANIFEST, body)
            .await?;
        Ok(pushed.digest)
    }

    fn image(config: &Value, layers: &[&Value]) -> Value {
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
    }

    fn digest_of(descriptor: &Value) -> Digest {
        descriptor["digest"].as_str().unwrap().parse().unwrap()
    }

    /// Every manifest of every repository has its blobs linked and their bytes stored; answers how
    /// many manifests there are.
    async fn assert_whole(registry: &Registry) -> usize {
        let mut count = 0;
        for repo in registry.all_repositories().await.unwrap() {
            for record in registry.views.manifests(&repo).await.unwrap() {
                count += 1;
                assert!(registry.blobs.stat(&record.digest).await.unwrap().is_some());
                for blob in &record.blobs {
                    assert!(
                        registry.views.blob_link(&repo, blob).await.unwrap().is_some(),
                        "{repo}@{}: {blob} unlinked",
                        record.digest
                    );
                    assert!(
                        registry.blobs.stat(blob).await.unwrap().is_some(),
                        "{repo}@{}: {blob} has no bytes",
                        record.digest
                    );
                }
            }
        }
        count
    }

    #[tokio::test]
    async fn a_deleted_images_bytes_go_while_a_signed_images_stay_and_a_dry_run_says_so_first() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        let repo: RepoName = "gc/app".parse().unwrap();
        let config = upload(&registry, &repo, br#"{"os":"linux"}"#.to_vec())
            .await
            .unwrap();
        let (gone_layer, kept_layer) = (
            upload(&registry, &repo, b"layer of the deleted image".to_vec())
                .await
                .unwrap(),
            upload(&registry, &repo, b"layer of the signed image".to_vec())
                .await
                .unwrap(),
        );
        let deleted = push(&registry, &repo, "v1", &image(&config, &[&gone_layer]))
            .await
            .unwrap();
        let signed = push(&registry, &repo, "v2", &image(&config, &[&kept_layer]))
            .await
            .unwrap();
        let payload = upload(&registry, &repo, b"signature payload".to_vec())
            .await
            .unwrap();
        let signature_tag = format!("{}.sig", signed.tag_form());
        let signature = push(&registry, &repo, &signature_tag, &image(&config, &[&payload]))
            .await
            .unwrap();
        let ctx = RequestContext::anonymous();
        registry
            .delete_manifest(&ctx, &repo, &Reference::Digest(deleted.clone()))
            .await
            .unwrap();

        let dry = registry
            .gc(GcOptions {
                dry_run: true,
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(
            (dry.manifests_deleted, dry.links_removed, dry.blobs_deleted),
            (0, 1, 2)
        );
        assert!(
            registry
                .blobs
                .stat(&digest_of(&gone_layer))
                .await
                .unwrap()
                .is_some(),
            "dry"
        );

        let real = registry.gc(now()).await.unwrap();
        assert_eq!(
            (
                real.manifests_deleted,
                real.links_removed,
                real.blobs_deleted,
                real.bytes_freed
            ),
            (
                dry.manifests_deleted,
                dry.links_removed,
                dry.blobs_deleted,
                dry.bytes_freed
            )
        );
        assert!(real.bytes_freed > 0);
        for gone in [digest_of(&gone_layer), deleted] {
            assert_eq!(registry.blobs.stat(&gone).await.unwrap(), None, "{gone}");
        }
        assert!(registry
            .views
            .blob_link(&repo, &digest_of(&gone_layer))
            .await
            .unwrap()
            .is_none());
        for kept in [
            digest_of(&kept_layer),
            digest_of(&config),
            digest_of(&payload),
            signed,
            signature,
        ] {
            assert!(registry.blobs.stat(&kept).await.unwrap().is_some(), "{kept}");
        }
        assert_eq!(assert_whole(&registry).await, 2);
        assert!(
            !registry.read_fence().await.unwrap(),
            "the fence is down after the run"
        );

        let again = registry.gc(now()).await.unwrap();
        assert_eq!(
            (again.manifests_deleted, again.links_removed, again.blobs_deleted),
            (0, 0, 0)
        );
    }

    #[tokio::test]
    async fn untagged_images_go_with_their_signatures_only_when_asked_and_young_content_stays() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        let repo: RepoName = "gc/app".parse().unwrap();
        let config = upload(&registry, &repo, br#"{"os":"linux"}"#.to_vec())
            .await
            .unwrap();
        let layer = upload(&registry, &repo, b"untagged layer".to_vec())
            .await
            .unwrap();
        let untagged = image(&config, &[&layer]);
        let untagged_digest = Digest::compute(Algorithm::Sha256, untagged.to_string().as_bytes());
        push(&registry, &repo, &untagged_digest.to_string(), &untagged)
            .await
            .unwrap();
        let payload = upload(&registry, &repo, b"its signature".to_vec()).await.unwrap();
        let signature_tag = format!("{}.sig", untagged_digest.tag_form());
        push(&registry, &repo, &signature_tag, &image(&config, &[&payload]))
            .await
            .unwrap();

        // Young: nothing goes, even asked.
        let young = GcOptions {
            delete_untagged: true,
            ..GcOptions::default()
        };
        assert_eq!(registry.gc(young).await.unwrap().manifests_deleted, 0);
        // Not asked: the untagged image and its signature stay.
        assert_eq!(registry.gc(now()).await.unwrap().manifests_deleted, 0);
        assert_eq!(assert_whole(&registry).await, 2);
        // Asked: both go, and their bytes.
        let report = registry
            .gc(GcOptions {
                delete_untagged: true,
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(report.manifests_deleted, 2);
        assert_eq!(assert_whole(&registry).await, 0);
        for gone in [digest_of(&layer), digest_of(&payload), untagged_digest] {
            assert_eq!(registry.blobs.stat(&gone).await.unwrap(), None, "{gone}");
        }
    }

    #[tokio::test]
    async fn a_scheduled_run_starts_once_per_firing_missed_or_not_and_only_after_it_was_set() {
        use crate::domain::access::AccessCommand;
        use crate::domain::lifecycle::schedule::GcScheduleSpec;
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        let spec = GcScheduleSpec {
            kind: "Custom".into(),
            cron: "0 * * * * *".into(),
            delete_untagged: false,
            dry_run: true,
        };
        let command = AccessCommand::SetGcSchedule { schedule: Some(spec) };
        registry.change_access(&ctx, command).await.unwrap();
        let now = Utc::now();
        let minute = chrono::TimeDelta::seconds(60);
        assert_eq!(registry.run_due_gc(now).await.unwrap(), None, "nothing fired yet");
        let later = now + minute * 3;
        let report = registry
            .run_due_gc(later)
            .await
            .unwrap()
            .expect("three firings missed: one run");
        assert_eq!(
            registry.run_due_gc(later).await.unwrap(),
            None,
            "not twice for a firing"
        );
        let next = registry
            .run_due_gc(later + minute * 2)
            .await
            .unwrap()
            .expect("the next firing");
        assert!(next.run > report.run);
        let history = registry.gc_history().await.unwrap();
        assert_eq!(history.iter().filter(|r| r.scheduled_for.is_some()).count(), 2);
        assert!(history.iter().all(|r| r.dry_run && r.finished.is_some()));
        // Removed, it runs no more.
        let command = AccessCommand::SetGcSchedule { schedule: None };
        registry.change_access(&ctx, command).await.unwrap();
        assert_eq!(registry.run_due_gc(later + minute * 60).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_second_run_is_refused_while_one_is_under_way_and_resume_takes_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        registry
            .append_system(
                &ctx,
                Event::GcStarted {
                    delete_untagged: false,
                    dry_run: false,
                    cutoff: Utc::now(),
                    scheduled_for: None,
                },
            )
            .await
            .unwrap();
        assert!(matches!(registry.gc(now()).await, Err(AppError::Conflict(_))));
        // A dry run neither: its events would land inside the real run and lower the fence.
        let dry = GcOptions {
            dry_run: true,
            ..now()
        };
        assert!(matches!(registry.gc(dry).await, Err(AppError::Conflict(_))));
        assert!(registry.read_fence().await.unwrap(), "the fence stays up");
        let resumed = registry
            .gc(GcOptions {
                resume: true,
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(resumed.run, 1);
        assert!(!registry.read_fence().await.unwrap());

        // A dry run that never finished is closed by a resumed start, and the new run goes on.
        let stale = registry
            .append_system(
                &ctx,
                Event::GcStarted {
                    delete_untagged: false,
                    dry_run: true,
                    cutoff: Utc::now(),
                    scheduled_for: None,
                },
            )
            .await
            .unwrap();
        assert!(matches!(registry.gc(now()).await, Err(AppError::Conflict(_))));
        let next = registry
            .gc(GcOptions {
                resume: true,
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(next.run, stale + 2, "closed, then started");
        let history = registry.gc_history().await.unwrap();
        let closed = history.iter().find(|r| r.id == stale).unwrap();
        assert_eq!(closed.finished.as_ref().unwrap().status, "Stopped");
    }

    /// The issue's test: pushes in a loop (upload, pause, manifest PUT, retried as a client does
    /// when refused) against garbage collection runs with no grace window: no manifest is ever left
    /// with an unlinked blob or a blob without bytes, and every push that succeeded is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pushes_racing_collections_with_no_grace_never_leave_a_dangling_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        let repo: RepoName = "gc/race".parse().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let collector = {
            let (registry, stop) = (registry.clone(), stop.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    registry
                        .gc(GcOptions {
                            delete_untagged: true,
                            ..now()
                        })
                        .await
                        .unwrap();
                    runs += 1;
                }
                runs
            })
        };
        let mut pushers = Vec::new();
        for writer in 0..3u32 {
            let (registry, repo) = (registry.clone(), repo.clone());
            pushers.push(tokio::spawn(async move {
                let (mut pushed, mut refused) = (Vec::new(), 0u32);
                for round in 0..20u32 {
                    loop {
                        let attempt = async {
                            let config =
                                upload(&registry, &repo, format!("config {writer}").into_bytes()).await?;
                            let layer =
                                upload(&registry, &repo, format!("layer {writer} {round}").into_bytes())
                                    .await?;
                            tokio::time::sleep(Duration::from_millis(
                                u64::from((writer * 7 + round * 13) % 6) * 15,
                            ))
                            .await;
                            push(
                                &registry,
                                &repo,
                                &format!("w{writer}-r{round}"),
                                &image(&config, &[&layer]),
                            )
                            .await
                        };
                        match attempt.await {
                            Ok(digest) => {
                                pushed.push(digest);
                                break;
                            }
                            Err(AppError::Domain(_) | AppError::Contention) => refused += 1,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
                (pushed, refused)
            }));
        }
        let mut all_pushed = Vec::new();
        let mut refusals = 0;
        for pusher in pushers {
            let (pushed, refused) = pusher.await.unwrap();
            all_pushed.extend(pushed);
            refusals += refused;
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let runs = collector.await.unwrap();
        assert!(runs >= 2, "{runs} runs");
        // One more run with everything at rest, then the check.
        registry
            .gc(GcOptions {
                delete_untagged: true,
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(assert_whole(&registry).await, all_pushed.len());
        for digest in &all_pushed {
            assert!(
                registry.views.manifest(&repo, digest).await.unwrap().is_some(),
                "{digest}"
            );
        }
        eprintln!(
            "{} pushes, {refusals} refused and retried, against {runs} collections",
            all_pushed.len()
        );
    }
}
