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
//! same, appends only its `GcStarted`, checkpoints and `GcFinished` (no fence), and reports what a
//! real run would delete.
//!
//! A run appends a `GcCheckpoint` (where it is, what it did so far) between repositories and
//! between batches of blobs, at most every [`CHECKPOINT_EVERY`], and at each of those safe points
//! it stops if asked (`GcStopRequested`, Harbor's `PUT /system/gc/{id}`), or pauses if its
//! process is near its time limit (a Lambda invocation: a checkpoint with `paused`). Another
//! process takes a paused or stalled run over ([`Registry::run_due_gc`], `berth gc --resume`) by
//! appending a checkpoint of its own, and carries on from the last one. Every deletion a run
//! decides is decided on the `gc` stream too, and only while no one else appended there since
//! this process's last checkpoint (stop requests aside), so a process that lost its run can never
//! delete anything again, and never lowers the fence under the run's new owner.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::accessory::SchemeTag;
use crate::domain::lifecycle::gc::{mark, Manifest, Options, Snapshot};
use crate::domain::{repository, Digest, Event, RepoName, StreamId};
use crate::ports::MAX_LIST_PAGE;

use super::gc_fence::ContentState;
use super::{AppError, Registry, RequestContext};
use crate::domain::RecordedEvent;

/// Repositories read per catalog page.
const CATALOG_PAGE: usize = 1_000;
/// How often a run records where it is (and sees a stop request) at the latest, between
/// repositories and between batches of blobs.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// The most condemned blobs a run decides on at once: after condemning them it reads every
/// repository again (the protocol's second look), so fewer means more reads, more means a longer
/// wait for the writers that meet a condemned blob.
const BYTES_BATCH: usize = 10_000;
/// How long a run condemns before it settles the batch, whatever its size (each batch is settled
/// before a checkpoint, so this bounds the time from one safe point to the next).
const BYTES_BATCH_TIME: Duration = Duration::from_secs(30);
/// What a process that lost its run (another took it over) is told.
const TAKEN_OVER: &str = "this garbage collection run was taken over by another process";
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
    /// When this process must let go of the run: at the first safe point after it, the run
    /// pauses (a checkpoint with `paused`) for another process to take over.
    pub pause_at: Option<Instant>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            delete_untagged: false,
            dry_run: false,
            resume: false,
            grace: DEFAULT_GC_GRACE,
            scheduled_for: None,
            pause_at: None,
        }
    }
}

/// How a run left this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GcOutcome {
    /// Done: every repository and every blob looked at.
    #[default]
    Success,
    /// Ended early on request (`GcStopRequested`).
    Stopped,
    /// Handed over, half-way, near this process's time limit; another process carries on.
    Paused,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The run's id: the version of its `GcStarted` in the `gc` stream.
    pub run: u64,
    pub outcome: GcOutcome,
    pub manifests_deleted: u64,
    /// Manifests kept because an immutable tag rule holds a tag of theirs.
    pub manifests_held: u64,
    pub links_removed: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    /// Since the run started (in another process too, for a run taken over).
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

/// A run this process owns (its `GcStarted`, or its takeover's `GcCheckpoint`, is the last word
/// in the log) and is yet to collect.
#[derive(Debug, Clone)]
pub struct GcRun {
    pub id: u64,
    options: GcOptions,
    cutoff: DateTime<Utc>,
    started_at: DateTime<Utc>,
    /// Where to carry on from: the last checkpoint (a run taken over), else the start.
    from: Progress,
    /// The `gc` stream's version after this process's last append for the run.
    owned_at: u64,
    /// A stop was asked for before this process took the run over.
    stop_requested: bool,
}

/// Where a run is: a `GcCheckpoint`'s fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    phase: u8,
    after: Option<String>,
    manifests_deleted: u64,
    links_removed: u64,
    blobs_deleted: u64,
    bytes_freed: u64,
}

impl Progress {
    const START: Progress = Progress {
        phase: 1,
        after: None,
        manifests_deleted: 0,
        links_removed: 0,
        blobs_deleted: 0,
        bytes_freed: 0,
    };

    fn checkpoint(&self, run: u64, paused: bool) -> Event {
        Event::GcCheckpoint {
            run,
            phase: self.phase,
            after: self.after.clone(),
            manifests_deleted: self.manifests_deleted,
            links_removed: self.links_removed,
            blobs_deleted: self.blobs_deleted,
            bytes_freed: self.bytes_freed,
            paused,
        }
    }
}

/// What a run does at a safe point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Go,
    Stop,
    Pause,
}

/// The run a process owns while it collects.
pub(super) struct Owned {
    run: u64,
    owned_at: u64,
    last_checkpoint: Instant,
    pause_at: Option<Instant>,
    /// Manifests kept because an immutable tag rule holds a tag of theirs (this process's count).
    held: u64,
}

/// The run the `gc` stream has under way (its last event is not a `GcFinished`).
#[derive(Debug, Clone)]
struct UnderWay {
    id: u64,
    delete_untagged: bool,
    dry_run: bool,
    cutoff: DateTime<Utc>,
    scheduled_for: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    progress: Progress,
    /// The last event's time and whether it paused on purpose.
    last_at: DateTime<Utc>,
    paused: bool,
    stop_requested: bool,
}

impl UnderWay {
    /// The `GcFinished` that ends this (dry) run as `Stopped`, with its last checkpoint's counts.
    fn closed(&self, why: &str) -> Event {
        Event::GcFinished {
            run: self.id,
            status: "Stopped".to_string(),
            manifests_deleted: self.progress.manifests_deleted,
            links_removed: self.progress.links_removed,
            blobs_deleted: self.progress.blobs_deleted,
            bytes_freed: self.progress.bytes_freed,
            duration_ms: u64::try_from((self.last_at - self.started_at).num_milliseconds()).unwrap_or(0),
            error: Some(why.to_string()),
        }
    }
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
    /// Its checkpoints, stop requests and takeovers, oldest first, as lines of its log.
    pub log: Vec<(DateTime<Utc>, String)>,
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
    /// conflict, unless `resume`: then this process takes the run over, with the run's own
    /// parameters, from its last checkpoint), and [`Registry::finish_gc`] does the rest.
    pub async fn start_gc(&self, options: GcOptions) -> Result<GcRun, AppError> {
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        let cutoff = self.clock.now() - chrono::Duration::from_std(options.grace).unwrap_or_default();
        self.start_run(&ctx, &options, cutoff).await
    }

    /// Waits out the fence (a real run that just raised it), collects from where the run is, and
    /// appends the run's `GcFinished`, unless it paused for another process or lost the run.
    pub async fn finish_gc(&self, run: GcRun) -> Result<GcReport, AppError> {
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        let fence_wait = self.gc_timing.fence_wait();
        let up_for = (self.clock.now() - run.started_at).to_std().unwrap_or_default();
        if !run.options.dry_run && up_for < fence_wait {
            tokio::time::sleep(fence_wait - up_for).await;
        }
        let mut owned = Owned {
            run: run.id,
            owned_at: run.owned_at,
            last_checkpoint: Instant::now(),
            pause_at: run.options.pause_at,
            held: 0,
        };
        let mut progress = run.from.clone();
        let outcome = if run.stop_requested {
            Ok(Control::Stop)
        } else {
            self.collect(&ctx, &run, &mut owned, &mut progress).await
        };
        let report = GcReport {
            run: run.id,
            outcome: match outcome {
                Ok(Control::Stop) => GcOutcome::Stopped,
                Ok(Control::Pause) => GcOutcome::Paused,
                _ => GcOutcome::Success,
            },
            manifests_deleted: progress.manifests_deleted,
            manifests_held: owned.held,
            links_removed: progress.links_removed,
            blobs_deleted: progress.blobs_deleted,
            bytes_freed: progress.bytes_freed,
            duration: (self.clock.now() - run.started_at).to_std().unwrap_or_default(),
        };
        let (status, error) = match &outcome {
            Ok(Control::Pause) => return Ok(report),
            // Not ours any more: the fence is its new owner's to lower.
            Err(AppError::Conflict(message)) if message == TAKEN_OVER => return outcome.map(|_| report),
            Ok(Control::Go) => ("Success", None),
            Ok(Control::Stop) => ("Stopped", None),
            Err(e) => ("Error", Some(e.to_string())),
        };
        let finished = Event::GcFinished {
            run: run.id,
            status: status.to_string(),
            manifests_deleted: report.manifests_deleted,
            links_removed: report.links_removed,
            blobs_deleted: report.blobs_deleted,
            bytes_freed: report.bytes_freed,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            error,
        };
        // Appended whatever happened (it lowers the fence), by the run's owner only.
        self.append_owned(&ctx, &owned, finished).await?;
        self.forget_fence();
        outcome.map(|_| report)
    }

    /// Asks run `id` to stop (Harbor's `PUT /system/gc/{id}`): `Ok(false)` if there is no such
    /// run; a finished run is left as it is. The run ends at its next safe point, with what it did
    /// so far; until then the fence stays up.
    pub async fn stop_gc(&self, ctx: &RequestContext, id: u64) -> Result<bool, AppError> {
        let stream = StreamId::gc();
        let (_, found) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    match self.under_way().await? {
                        Some(run) if run.id == id => {
                            let events = if run.stop_requested {
                                vec![]
                            } else {
                                vec![Event::GcStopRequested { run: id }]
                            };
                            Ok((events, true))
                        }
                        _ => Ok((vec![], self.gc_history().await?.iter().any(|r| r.id == id))),
                    }
                })
            })
            .await?;
        Ok(found)
    }

    /// Runs garbage collection if its schedule fired since it was set and since the schedule's last
    /// run (once however many firings were missed), or takes over a run that paused or stalled
    /// (no checkpoint for [`GcTiming::stalled_after`](super::GcTiming)); `Ok(None)` if nothing
    /// was due, or a run is under way, or another process started this firing's. `berth serve`
    /// calls this with the retention schedules, the janitor function on each of its runs (with
    /// `pause_at` a little before its time limit).
    pub async fn run_due_gc(
        &self,
        now: DateTime<Utc>,
        pause_at: Option<Instant>,
    ) -> Result<Option<GcReport>, AppError> {
        if let Some(run) = self.under_way().await? {
            let silent = (now - run.last_at).to_std().unwrap_or_default();
            if !run.paused && silent < self.gc_timing.stalled_after {
                return Ok(None);
            }
            if run.dry_run {
                // A dry run is not carried on (what it would have deleted so far is not in the
                // views to read again): it ends, with the counts of its last checkpoint.
                self.close_dry_run(&run).await?;
                return Ok(None);
            }
            tracing::info!(
                run = run.id,
                paused = run.paused,
                silent_secs = silent.as_secs(),
                "taking a garbage collection run over"
            );
            let options = GcOptions {
                dry_run: run.dry_run,
                resume: true,
                pause_at,
                ..GcOptions::default()
            };
            return match self.start_gc(options).await {
                Ok(taken) => Ok(Some(self.finish_gc(taken).await?)),
                Err(AppError::Conflict(_)) => Ok(None),
                Err(e) => Err(e),
            };
        }
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
            pause_at,
            ..GcOptions::default()
        };
        match self.start_gc(options).await {
            Ok(run) => Ok(Some(self.finish_gc(run).await?)),
            Err(AppError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ends a dry run that paused or stalled, unless it ended meanwhile.
    async fn close_dry_run(&self, run: &UnderWay) -> Result<(), AppError> {
        let ctx = RequestContext::as_principal(crate::domain::access::Principal::system());
        let stream = StreamId::gc();
        self.decide_and_append(&ctx, std::slice::from_ref(&stream), move || {
            Box::pin(async move {
                if self.under_way().await?.is_none_or(|now| now.id != run.id) {
                    return Ok((vec![], ()));
                }
                let closed = run.closed("a dry run that paused or stalled is not carried on");
                Ok((vec![closed], ()))
            })
        })
        .await?;
        Ok(())
    }

    /// Every run the `gc` stream records, oldest first.
    pub async fn gc_history(&self) -> Result<Vec<GcRecord>, AppError> {
        let stream = StreamId::gc();
        let mut records: Vec<GcRecord> = Vec::new();
        for recorded in self.whole_stream(&stream).await? {
            let at = recorded.envelope.time;
            let principal = recorded.envelope.principal.clone();
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
                    started_at: at,
                    finished: None,
                    log: Vec::new(),
                }),
                Event::GcCheckpoint {
                    run,
                    phase,
                    after,
                    manifests_deleted,
                    links_removed,
                    blobs_deleted,
                    bytes_freed,
                    paused,
                } => {
                    if let Some(record) = records.iter_mut().find(|r| r.id == run) {
                        let place = match (phase, after) {
                            (1, None) => "phase 1 (links and manifests) starts".to_string(),
                            (1, Some(repo)) => format!("phase 1 (links and manifests): done up to {repo}"),
                            (_, None) => "phase 2 (bytes) starts".to_string(),
                            (_, Some(digest)) => format!("phase 2 (bytes): done up to {digest}"),
                        };
                        let what = format!(
                            "{place}; so far {manifests_deleted} manifests deleted, {links_removed} blob links removed, {blobs_deleted} blobs deleted, {bytes_freed} bytes freed"
                        );
                        record.log.push((
                            at,
                            if paused {
                                format!("paused near the process's time limit: {what}")
                            } else {
                                format!("checkpoint: {what}")
                            },
                        ));
                    }
                }
                Event::GcStopRequested { run } => {
                    if let Some(record) = records.iter_mut().find(|r| r.id == run) {
                        record.log.push((at, format!("stop requested by {principal}")));
                    }
                }
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
                            at,
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

    /// The run the `gc` stream has under way, read from its start.
    async fn under_way(&self) -> Result<Option<UnderWay>, AppError> {
        let stream = StreamId::gc();
        let Some(last) = self.last_event(&stream).await? else {
            return Ok(None);
        };
        let id = match &last.envelope.event {
            Event::GcStarted { .. } => last.version,
            Event::GcCheckpoint { run, .. } | Event::GcStopRequested { run } => *run,
            _ => return Ok(None),
        };
        let mut events: Vec<RecordedEvent> = Vec::new();
        loop {
            let after = events.last().map_or(id.saturating_sub(1), |r| r.version);
            let page = self.log.read_stream(&stream, after, MAX_LIST_PAGE).await?;
            let done = page.len() < MAX_LIST_PAGE;
            events.extend(page);
            if done {
                break;
            }
        }
        let mut run = None;
        for recorded in events {
            let at = recorded.envelope.time;
            match (recorded.envelope.event, run.as_mut()) {
                (
                    Event::GcStarted {
                        delete_untagged,
                        dry_run,
                        cutoff,
                        scheduled_for,
                    },
                    None,
                ) => {
                    run = Some(UnderWay {
                        id,
                        delete_untagged,
                        dry_run,
                        cutoff,
                        scheduled_for,
                        started_at: at,
                        progress: Progress::START,
                        last_at: at,
                        paused: false,
                        stop_requested: false,
                    })
                }
                (
                    Event::GcCheckpoint {
                        phase,
                        after,
                        manifests_deleted,
                        links_removed,
                        blobs_deleted,
                        bytes_freed,
                        paused,
                        ..
                    },
                    Some(run),
                ) => {
                    run.progress = Progress {
                        phase,
                        after,
                        manifests_deleted,
                        links_removed,
                        blobs_deleted,
                        bytes_freed,
                    };
                    run.last_at = at;
                    run.paused = paused;
                }
                (Event::GcStopRequested { .. }, Some(run)) => {
                    run.stop_requested = true;
                    run.last_at = at;
                    run.paused = false;
                }
                _ => {}
            }
        }
        Ok(run)
    }

    /// Appends `GcStarted` (the run's id is its version), or takes over the run under way.
    async fn start_run(
        &self,
        ctx: &RequestContext,
        options: &GcOptions,
        cutoff: DateTime<Utc>,
    ) -> Result<GcRun, AppError> {
        // One run at a time, dry or real, decided on the `gc` stream: the fence is the stream's
        // last word, so a dry run's events landing inside a real run would lower it.
        let stream = StreamId::gc();
        let options = *options;
        let (recorded, taken_over) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    let under_way = self.under_way().await?;
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
                        // The fence is up: take the real run over, from its last checkpoint.
                        Some(run) if !run.dry_run && !options.dry_run => {
                            let takeover = run.progress.checkpoint(run.id, false);
                            Ok((vec![takeover], Some(run)))
                        }
                        // A dry run that never finished: close it, then start.
                        Some(run) if run.dry_run => {
                            let closed = run.closed("taken over by a resumed run");
                            Ok((vec![closed, started], None))
                        }
                        Some(_) => Err(AppError::Conflict(
                            "a real garbage collection run is under way: a dry run cannot resume it".into(),
                        )),
                    }
                })
            })
            .await?;
        let owned_at = recorded.last().map_or(0, |r| r.version);
        if let Some(run) = taken_over {
            return Ok(GcRun {
                id: run.id,
                options: GcOptions {
                    delete_untagged: run.delete_untagged,
                    dry_run: false,
                    scheduled_for: run.scheduled_for,
                    ..options
                },
                cutoff: run.cutoff,
                started_at: run.started_at,
                from: run.progress,
                owned_at,
                stop_requested: run.stop_requested,
            });
        }
        if !options.dry_run {
            self.forget_fence();
        }
        Ok(GcRun {
            id: owned_at,
            options,
            cutoff,
            started_at: recorded
                .last()
                .map_or_else(|| self.clock.now(), |r| r.envelope.time),
            from: Progress::START,
            owned_at,
            stop_requested: false,
        })
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

    /// Whether this process still owns the run: nothing but stop requests was appended to `gc`
    /// since its last append (answers whether a stop was asked for).
    async fn still_owned(&self, owned: &Owned) -> Result<bool, AppError> {
        let since = self.log.read_stream(&StreamId::gc(), owned.owned_at, 16).await?;
        let mut stop = false;
        for recorded in since {
            match recorded.envelope.event {
                Event::GcStopRequested { run } if run == owned.run => stop = true,
                _ => return Err(AppError::Conflict(TAKEN_OVER.to_string())),
            }
        }
        Ok(stop)
    }

    /// Appends `event` (to its own stream) while this process still owns the run.
    async fn append_owned(&self, ctx: &RequestContext, owned: &Owned, event: Event) -> Result<(), AppError> {
        let streams = [StreamId::gc(), StreamId::of(&event)];
        let event = &event;
        self.decide_and_append(ctx, &streams, move || {
            Box::pin(async move {
                self.still_owned(owned).await?;
                Ok((vec![event.clone()], ()))
            })
        })
        .await?;
        Ok(())
    }

    /// A safe point: between repositories, and after each batch of blobs is settled. Appends a
    /// checkpoint if one is due (`force`: always), and answers whether to go on, stop (asked to)
    /// or pause (past `pause_at`).
    async fn safe_point(
        &self,
        ctx: &RequestContext,
        owned: &mut Owned,
        progress: &Progress,
        force: bool,
    ) -> Result<Control, AppError> {
        let pause = owned.pause_at.is_some_and(|at| Instant::now() >= at);
        if !force && !pause && owned.last_checkpoint.elapsed() < CHECKPOINT_EVERY {
            // Between checkpoints, one read: has anyone else appended?
            if self.log.stream_version(&StreamId::gc()).await? == owned.owned_at {
                return Ok(Control::Go);
            }
        }
        let stream = StreamId::gc();
        let owner = &*owned;
        let (recorded, control) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    if self.still_owned(owner).await? {
                        return Ok((vec![], Control::Stop));
                    }
                    let control = if pause { Control::Pause } else { Control::Go };
                    Ok((vec![progress.checkpoint(owner.run, pause)], control))
                })
            })
            .await?;
        if let Some(last) = recorded.last() {
            owned.owned_at = last.version;
            owned.last_checkpoint = Instant::now();
        }
        Ok(control)
    }

    async fn collect(
        &self,
        ctx: &RequestContext,
        run: &GcRun,
        owned: &mut Owned,
        progress: &mut Progress,
    ) -> Result<Control, AppError> {
        let dry_run = run.options.dry_run;
        let mark_options = Options {
            delete_untagged: run.options.delete_untagged,
            cutoff: run.cutoff,
        };
        // Phase 1, per repository; what stays used is phase 2's first look.
        let mut used: BTreeSet<Digest> = BTreeSet::new();
        let resumed_in_phase_2 = progress.phase == 2;
        for repo in self.all_repositories().await? {
            let done =
                resumed_in_phase_2 || (progress.after.as_deref()).is_some_and(|after| repo.as_str() <= after);
            if done {
                used.extend(self.used_by(&repo).await?);
                continue;
            }
            used.extend(
                self.collect_repository(ctx, owned, &repo, &mark_options, dry_run, progress)
                    .await?,
            );
            progress.after = Some(repo.to_string());
            let control = self.safe_point(ctx, owned, progress, false).await?;
            if control != Control::Go {
                return Ok(control);
            }
        }
        // Phase 2: the blob store against what is used.
        let mut after: Option<Digest> = None;
        if resumed_in_phase_2 {
            after = progress.after.as_deref().and_then(|d| d.parse().ok());
        } else {
            *progress = Progress {
                phase: 2,
                after: None,
                ..progress.clone()
            };
            let control = self.safe_point(ctx, owned, progress, true).await?;
            if control != Control::Go {
                return Ok(control);
            }
        }
        let mut batch: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut batch_started = Instant::now();
        loop {
            let page = self.blobs.list_blobs(after.as_ref(), MAX_LIST_PAGE).await?;
            let last = page.len() < MAX_LIST_PAGE;
            after = page.last().map(|b| b.digest.clone()).or(after);
            let mut candidates: BTreeMap<Digest, u64> = BTreeMap::new();
            for blob in page {
                if blob.modified <= run.cutoff && !used.contains(&blob.digest) {
                    candidates.insert(blob.digest, blob.size);
                }
            }
            if batch.is_empty() {
                batch_started = Instant::now();
            }
            if !dry_run {
                self.condemn(ctx, owned, candidates.keys()).await?;
            }
            batch.extend(candidates);
            let pause = owned.pause_at.is_some_and(|at| Instant::now() >= at);
            if last || batch.len() >= BYTES_BATCH || batch_started.elapsed() >= BYTES_BATCH_TIME || pause {
                self.settle_bytes(ctx, owned, std::mem::take(&mut batch), dry_run, progress)
                    .await?;
                progress.after = after.as_ref().map(ToString::to_string);
                let control = self.safe_point(ctx, owned, progress, true).await?;
                if control != Control::Go || last {
                    return Ok(control);
                }
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
    #[allow(clippy::too_many_arguments)]
    async fn collect_repository(
        &self,
        ctx: &RequestContext,
        owned: &mut Owned,
        repo: &RepoName,
        options: &Options,
        dry_run: bool,
        progress: &mut Progress,
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
                progress.manifests_deleted += 1;
                used.remove(digest);
                continue;
            }
            match self.delete_collected(ctx, Some(owned), repo, digest).await {
                Ok(deleted) => progress.manifests_deleted += deleted,
                Err(AppError::Immutable(_)) => owned.held += 1,
                Err(e) => return Err(e),
            }
        }
        for blob in &plan.unlink {
            if self.linked_since(repo, blob).await? > options.cutoff {
                continue;
            }
            if dry_run {
                progress.links_removed += 1;
                used.remove(blob);
                continue;
            }
            progress.links_removed += self.unlink_collected(ctx, owned, repo, blob).await?;
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

    /// Deletes a manifest the mark (or a retention policy) let go, with its accessories, unless it
    /// went meanwhile; answers how many manifests went. For a GC run, only while this process owns
    /// the run.
    pub(super) async fn delete_collected(
        &self,
        ctx: &RequestContext,
        owner: Option<&Owned>,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<u64, AppError> {
        let mut streams = vec![StreamId::manifest(repo, digest)];
        streams.extend(owner.map(|_| StreamId::gc()));
        let (recorded, ()) = self
            .decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    if let Some(owner) = owner {
                        self.still_owned(owner).await?;
                    }
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
    /// use it again and links it back under any that appeared meanwhile (the protocol's re-read;
    /// linking back is always safe, so it is done whoever owns the run by then).
    async fn unlink_collected(
        &self,
        ctx: &RequestContext,
        owned: &Owned,
        repo: &RepoName,
        blob: &Digest,
    ) -> Result<u64, AppError> {
        let streams = [StreamId::blob(repo, blob), StreamId::gc()];
        let (recorded, ()) = self
            .decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    self.still_owned(owned).await?;
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
            let streams = [StreamId::blob(repo, blob)];
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

    /// Phase 2's first step for some candidates: condemns them (content condemned or being
    /// deleted already, by a run that stopped half-way, is carried on by `settle_bytes`).
    async fn condemn(
        &self,
        ctx: &RequestContext,
        owned: &Owned,
        digests: impl Iterator<Item = &Digest>,
    ) -> Result<(), AppError> {
        for digest in digests {
            let streams = [StreamId::content(digest), StreamId::gc()];
            self.decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    self.still_owned(owned).await?;
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
        Ok(())
    }

    /// Phase 2 for a batch of condemned candidates (digest → size): look again, spare what is
    /// used, delete the rest.
    async fn settle_bytes(
        &self,
        ctx: &RequestContext,
        owned: &Owned,
        candidates: BTreeMap<Digest, u64>,
        dry_run: bool,
        progress: &mut Progress,
    ) -> Result<(), AppError> {
        if dry_run {
            progress.blobs_deleted += candidates.len() as u64;
            progress.bytes_freed += candidates.values().sum::<u64>();
            return Ok(());
        }
        if candidates.is_empty() {
            return Ok(());
        }
        // The protocol's second look: every repository again.
        let mut used = BTreeSet::new();
        for repo in self.all_repositories().await? {
            used.extend(self.used_by(&repo).await?);
        }
        let mut deleting = Vec::new();
        for digest in candidates.keys() {
            let spare = used.contains(digest);
            let streams = [StreamId::content(digest), StreamId::gc()];
            let (_, go) = self
                .decide_and_append(ctx, &streams, move || {
                    Box::pin(async move {
                        self.still_owned(owned).await?;
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
            self.append_owned(ctx, owned, Event::BlobDeleted { digest, size })
                .await?;
            progress.blobs_deleted += 1;
            progress.bytes_freed += size;
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
            ..GcTiming::default()
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
        assert_eq!(
            registry.run_due_gc(now, None).await.unwrap(),
            None,
            "nothing fired yet"
        );
        let later = now + minute * 3;
        let report = registry
            .run_due_gc(later, None)
            .await
            .unwrap()
            .expect("three firings missed: one run");
        assert_eq!(
            registry.run_due_gc(later, None).await.unwrap(),
            None,
            "not twice for a firing"
        );
        let next = registry
            .run_due_gc(later + minute * 2, None)
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
        assert_eq!(
            registry.run_due_gc(later + minute * 60, None).await.unwrap(),
            None
        );
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

    /// Two repositories, each with one deleted image: in each, two links to remove (config and
    /// layer) and three blobs to delete (with the manifest's own bytes).
    async fn two_repositories_of_garbage(registry: &Registry) {
        for name in ["gc/one", "gc/two"] {
            let repo: RepoName = name.parse().unwrap();
            let config = upload(registry, &repo, format!("{{\"repo\":\"{name}\"}}").into_bytes())
                .await
                .unwrap();
            let layer = upload(registry, &repo, format!("layer of {name}").into_bytes())
                .await
                .unwrap();
            let digest = push(registry, &repo, "v1", &image(&config, &[&layer]))
                .await
                .unwrap();
            registry
                .delete_manifest(&RequestContext::anonymous(), &repo, &Reference::Digest(digest))
                .await
                .unwrap();
        }
    }

    fn gc_finished_count(history: &[GcRecord]) -> usize {
        history.iter().filter(|r| r.finished.is_some()).count()
    }

    #[tokio::test]
    async fn a_stopped_run_ends_at_its_next_safe_point_with_what_it_did_and_lowers_the_fence() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        two_repositories_of_garbage(&registry).await;
        let system = RequestContext::as_principal(crate::domain::access::Principal::system());
        assert!(!registry.stop_gc(&system, 1).await.unwrap(), "no such run");
        let run = registry.start_gc(now()).await.unwrap();
        assert!(registry.stop_gc(&system, run.id).await.unwrap());
        assert!(
            registry.stop_gc(&system, run.id).await.unwrap(),
            "asked twice: one request"
        );
        assert!(registry.read_fence().await.unwrap(), "up until the run sees it");
        let report = registry.finish_gc(run).await.unwrap();
        assert_eq!(report.outcome, GcOutcome::Stopped);
        assert_eq!(report.blobs_deleted, 0, "stopped before the bytes");
        assert!(!registry.read_fence().await.unwrap());
        let history = registry.gc_history().await.unwrap();
        let record = history.last().unwrap();
        assert_eq!(record.finished.as_ref().unwrap().status, "Stopped");
        assert_eq!(
            (record.log.iter())
                .filter(|(_, line)| line.starts_with("stop requested"))
                .count(),
            1,
            "{:?}",
            record.log
        );
        // Stopping a finished run leaves it as it is; the next run collects everything.
        assert!(registry.stop_gc(&system, record.id).await.unwrap());
        let next = registry.gc(now()).await.unwrap();
        assert_eq!((next.outcome, next.blobs_deleted), (GcOutcome::Success, 6));
    }

    #[tokio::test]
    async fn a_paused_run_keeps_its_fence_and_the_next_process_carries_it_on_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        two_repositories_of_garbage(&registry).await;
        // A process out of time at once: it pauses at its first safe point, after one repository.
        let paused = registry
            .gc(GcOptions {
                pause_at: Some(Instant::now()),
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(paused.outcome, GcOutcome::Paused);
        assert_eq!((paused.links_removed, paused.blobs_deleted), (2, 0));
        assert!(
            registry.read_fence().await.unwrap(),
            "a paused run keeps the fence up"
        );
        assert!(matches!(registry.gc(now()).await, Err(AppError::Conflict(_))));
        // The schedule's check takes a paused run over at once, and it goes on from there.
        let carried = registry.run_due_gc(Utc::now(), None).await.unwrap().unwrap();
        assert_eq!(carried.run, paused.run);
        assert_eq!(carried.outcome, GcOutcome::Success);
        assert_eq!(
            (carried.links_removed, carried.blobs_deleted),
            (4, 6),
            "the counts of both processes"
        );
        assert!(!registry.read_fence().await.unwrap());
        let history = registry.gc_history().await.unwrap();
        assert_eq!(gc_finished_count(&history), 1);
        let log = &history.last().unwrap().log;
        assert!(log.iter().any(|(_, l)| l.starts_with("paused")), "{log:?}");

        // A paused dry run is ended, Stopped, with its counts so far, not carried on.
        two_repositories_of_garbage(&registry).await;
        let dry = GcOptions {
            dry_run: true,
            pause_at: Some(Instant::now()),
            ..now()
        };
        let paused = registry.gc(dry).await.unwrap();
        assert_eq!(paused.outcome, GcOutcome::Paused);
        assert!(registry.run_due_gc(Utc::now(), None).await.unwrap().is_none());
        let history = registry.gc_history().await.unwrap();
        let closed = history.last().unwrap().finished.clone().unwrap();
        assert_eq!((closed.status.as_str(), closed.links_removed), ("Stopped", 2));
        assert!(registry.gc(now()).await.is_ok(), "nothing under way any more");
    }

    #[tokio::test]
    async fn a_process_whose_run_was_taken_over_can_neither_delete_nor_lower_the_fence() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(&dir);
        two_repositories_of_garbage(&registry).await;
        let first = registry.start_gc(now()).await.unwrap();
        // Not stalled yet: the schedule's check leaves it alone.
        assert!(registry.run_due_gc(Utc::now(), None).await.unwrap().is_none());
        let second = registry
            .start_gc(GcOptions {
                resume: true,
                ..now()
            })
            .await
            .unwrap();
        assert_eq!(second.id, first.id);
        let lost = registry.finish_gc(first).await;
        assert!(
            matches!(&lost, Err(AppError::Conflict(m)) if m == TAKEN_OVER),
            "{lost:?}"
        );
        assert!(
            registry.read_fence().await.unwrap(),
            "the new owner's fence stays up"
        );
        assert_eq!(gc_finished_count(&registry.gc_history().await.unwrap()), 0);
        let done = registry.finish_gc(second).await.unwrap();
        assert_eq!((done.links_removed, done.blobs_deleted), (4, 6));
        assert!(!registry.read_fence().await.unwrap());
        assert_eq!(gc_finished_count(&registry.gc_history().await.unwrap()), 1);
    }

    #[tokio::test]
    async fn a_run_silent_for_longer_than_the_stall_window_is_taken_over_by_the_schedules_check() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let registry =
            Registry::new(store.clone(), store, blobs, Arc::new(SystemClock)).with_gc_timing(GcTiming {
                fence_cache: Duration::from_millis(10),
                decision_bound: Duration::from_millis(50),
                append_margin: Duration::from_millis(10),
                stalled_after: Duration::from_millis(300),
            });
        two_repositories_of_garbage(&registry).await;
        // A process that started a run and died.
        let dead = registry.start_gc(now()).await.unwrap();
        assert!(
            registry.run_due_gc(Utc::now(), None).await.unwrap().is_none(),
            "not yet"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let report = registry.run_due_gc(Utc::now(), None).await.unwrap().unwrap();
        assert_eq!((report.run, report.outcome), (dead.id, GcOutcome::Success));
        assert_eq!(report.blobs_deleted, 6);
        assert!(!registry.read_fence().await.unwrap());
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
