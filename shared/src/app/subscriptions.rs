//! Subscriptions: named, independent readers of the whole log, each with its own checkpoint and an
//! idempotent handler (an [`EventSink`](crate::ports::EventSink)), delivered at least once. The audit
//! archive is the first, event-based replication (`replication`, run by `berth serve` on embedded
//! storage) the second; webhooks are the next (docs/replication.md).
//!
//! Two feeds, one rule set:
//! - **The log itself** (the embedded host, `berth project`): [`Subscriptions::catch_up`] reads each
//!   subscription's events after its checkpoint to the end of the log, in position order. The
//!   embedded log is one shard; its checkpoint says exactly what is done.
//! - **A change stream** (DynamoDB Streams into the projector Lambda): [`Subscriptions::deliver`]
//!   gives a batch of one shard to every live subscription; the event source mapping keeps each
//!   shard's position (the checkpoint per shard), the subscription's own checkpoint keeps the latest
//!   position delivered (what lag is measured against). A failure names the earliest failed event
//!   of the batch so the mapping retries from it (partial batch failure); subscriptions that had
//!   handled it get it again, which idempotent handlers absorb.
//!
//! A new subscription replays the log from the beginning before it goes live, under the
//! checkpoint `<name>.replay`; `<name>` exists once the replay reached the end of the log, so a
//! replay cut short (a Lambda's time budget, a crash) resumes where it stopped and is never taken
//! for done. On the stream feed each batch advances the replay until the invocation's deadline; a
//! replay cut short by it lets the batch pass (its events are in the log, ahead of the replay,
//! which reaches them), a replay that fails fails the batch (its retry retries the replay). A timed
//! log's index is eventually consistent, so a finished replay re-reads the last minute before it
//! goes live.
//!
//! Subscriptions never block one another on the log feed; on the stream feed a failing one makes
//! the batch retry (the mapping's retry limit and bisection bound that, see template.yaml).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::projector::{CatchUpError, Projected, ProjectionFailure, Projector, AUDIT_PROJECTION};
use crate::domain::{LogPosition, RecordedEvent};
use crate::ports::{Checkpoints, EventLog, ProjectionError};

/// Every subscription the registry runs, by name: the status call reports these wherever their
/// handlers run (on AWS storage the projector function runs the audit archive).
pub const SUBSCRIPTIONS: &[&str] = &[AUDIT_PROJECTION];
/// The subscriptions of embedded storage (`berth serve`, `berth project`): the audit archive and
/// event-based replication (`adapters::projection::local_for`).
pub const EMBEDDED_SUBSCRIPTIONS: &[&str] = &[AUDIT_PROJECTION, super::REPLICATION_SUBSCRIPTION];

/// The checkpoint of a subscription's replay: `<name>.replay`.
pub fn replay_checkpoint(name: &str) -> String {
    format!("{name}.replay")
}

/// How far back a finished replay of a timed log re-reads before the subscription goes live (the
/// index `read_all` reads is eventually consistent: an event committed just before the replay's
/// last read may show up in it a little later).
const REPLAY_OVERLAP_MS: u64 = 60_000;
/// Events read per page by the overlap re-read.
const PAGE: usize = 256;
/// Events counted when measuring how far behind a subscription is.
pub const BEHIND_LIMIT: usize = 1_000;

/// Where a subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Nothing handled yet: the next feed starts its replay from the beginning of the log.
    New,
    /// Replaying the log from the beginning; not live yet.
    Replaying,
    /// Reached the end of the log once; follows it from its checkpoint.
    Live,
}

/// What one subscription did with one feed.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub state: SubscriptionState,
    pub result: Result<Projected, CatchUpError>,
}

/// What a stream batch came to: each subscription's outcome, and the earliest event of the batch
/// that some subscription failed (retry from there), if any.
#[derive(Debug, Default)]
pub struct Delivered {
    pub outcomes: Vec<Outcome>,
    pub failure: Option<ProjectionFailure>,
}

/// The subscriptions one host runs, over one log.
#[derive(Clone)]
pub struct Subscriptions {
    log: Arc<dyn EventLog>,
    list: Vec<Projector>,
}

impl Subscriptions {
    pub fn new(log: Arc<dyn EventLog>) -> Subscriptions {
        Subscriptions { log, list: vec![] }
    }

    /// Adds a subscription: its name, handler and checkpoint store are the projector's.
    pub fn with(mut self, subscription: Projector) -> Subscriptions {
        assert!(
            self.list.iter().all(|s| s.name() != subscription.name()),
            "subscription {} is added twice",
            subscription.name()
        );
        self.list.push(subscription);
        self
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(Projector::name).collect()
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// The log feed: every subscription reads its events after its checkpoint to the end of the
    /// log (a new one replays from the beginning first). One subscription's failure stops only it.
    pub async fn catch_up(&self) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(self.list.len());
        for subscription in &self.list {
            let outcome = match self.state(subscription).await {
                Err(e) => Outcome {
                    name: subscription.name().to_string(),
                    state: SubscriptionState::New,
                    result: Err(CatchUpError::Projection(checkpoint_failure(e))),
                },
                Ok(SubscriptionState::Live) => Outcome {
                    name: subscription.name().to_string(),
                    state: SubscriptionState::Live,
                    result: subscription.catch_up(&*self.log).await,
                },
                Ok(_) => self.replay(subscription, None).await,
            };
            log_outcome(&outcome, None);
            outcomes.push(outcome);
        }
        outcomes
    }

    /// The stream feed: `events` is a batch of one shard, in its order. Live subscriptions get
    /// every event of it; one still replaying spends until `replay_deadline` on its replay first,
    /// and takes the batch too if the replay finishes.
    pub async fn deliver(&self, events: &[RecordedEvent], replay_deadline: Instant) -> Delivered {
        let mut delivered = Delivered::default();
        let Some(first) = events.first() else {
            return delivered;
        };
        for subscription in &self.list {
            let name = subscription.name().to_string();
            match self.state(subscription).await {
                Ok(SubscriptionState::Live) => {}
                Ok(_) => {
                    let replay = self.replay(subscription, Some(replay_deadline)).await;
                    let finished = replay.state == SubscriptionState::Live;
                    log_outcome(&replay, None);
                    if let Err(e) = &replay.result {
                        // Retrying the batch is what retries the replay (from its checkpoint).
                        let failure = ProjectionFailure {
                            position: first.position.clone(),
                            published: 0,
                            cause: ProjectionError::Sink(format!("replaying the log: {e}")),
                        };
                        keep_earliest(&mut delivered.failure, &failure, events);
                    }
                    if !finished {
                        // Cut short by its deadline: the batch's events are in the log ahead of
                        // the replay, which reaches them in a later invocation.
                        delivered.outcomes.push(replay);
                        continue;
                    }
                }
                Err(e) => {
                    let failure = ProjectionFailure {
                        position: first.position.clone(),
                        published: 0,
                        cause: e,
                    };
                    keep_earliest(&mut delivered.failure, &failure, events);
                    delivered.outcomes.push(Outcome {
                        name,
                        state: SubscriptionState::New,
                        result: Err(CatchUpError::Projection(failure)),
                    });
                    continue;
                }
            }
            let result = subscription.deliver(events).await;
            if let Err(failure) = &result {
                keep_earliest(&mut delivered.failure, failure, events);
            }
            let outcome = Outcome {
                name,
                state: SubscriptionState::Live,
                result: result.map_err(CatchUpError::Projection),
            };
            log_outcome(&outcome, events.last());
            delivered.outcomes.push(outcome);
        }
        delivered
    }

    async fn state(&self, subscription: &Projector) -> Result<SubscriptionState, ProjectionError> {
        if subscription.checkpoint().await?.is_some() {
            return Ok(SubscriptionState::Live);
        }
        let replay = subscription.renamed(replay_checkpoint(subscription.name()));
        Ok(match replay.checkpoint().await? {
            Some(_) => SubscriptionState::Replaying,
            None => SubscriptionState::New,
        })
    }

    /// Replays the log for `subscription` under its replay checkpoint until the end of the log (or
    /// `deadline`); at the end, re-reads a timed log's last minute and makes the subscription live
    /// at the replay's last position.
    async fn replay(&self, subscription: &Projector, deadline: Option<Instant>) -> Outcome {
        let name = subscription.name().to_string();
        let replay = subscription.renamed(replay_checkpoint(&name));
        let (projected, finished) = match replay.catch_up_until(&*self.log, deadline).await {
            Ok(done) => done,
            Err(e) => {
                return Outcome {
                    name,
                    state: SubscriptionState::Replaying,
                    result: Err(e),
                }
            }
        };
        if !finished {
            return Outcome {
                name,
                state: SubscriptionState::Replaying,
                result: Ok(projected),
            };
        }
        let Some(end) = projected.checkpoint.clone() else {
            // An empty log: nothing to replay; the first event makes it live.
            return Outcome {
                name,
                state: SubscriptionState::New,
                result: Ok(projected),
            };
        };
        let went_live = async {
            if let Some(millis) = end.millis() {
                self.republish_since(
                    subscription,
                    LogPosition::at_millis(millis.saturating_sub(REPLAY_OVERLAP_MS)),
                )
                .await?;
            }
            (subscription.advance_to(&end).await).map_err(|e| CatchUpError::Projection(checkpoint_failure(e)))
        }
        .await;
        Outcome {
            name,
            state: match went_live {
                Ok(_) => SubscriptionState::Live,
                Err(_) => SubscriptionState::Replaying,
            },
            result: went_live.map(|_| projected),
        }
    }

    /// Publishes again every event after `after` (the checkpoint has passed them).
    async fn republish_since(
        &self,
        subscription: &Projector,
        mut after: LogPosition,
    ) -> Result<(), CatchUpError> {
        loop {
            let page =
                (self.log.read_all(&after, PAGE).await).map_err(|e| CatchUpError::Log(e.to_string()))?;
            let Some(last) = page.last() else { return Ok(()) };
            subscription.republish(&page).await?;
            after = last.position.clone();
        }
    }
}

fn checkpoint_failure(cause: ProjectionError) -> ProjectionFailure {
    ProjectionFailure {
        position: LogPosition::start(),
        published: 0,
        cause,
    }
}

/// Keeps in `slot` whichever of it and `failure` comes first in `events` (the batch's order).
fn keep_earliest(
    slot: &mut Option<ProjectionFailure>,
    failure: &ProjectionFailure,
    events: &[RecordedEvent],
) {
    let index = |f: &ProjectionFailure| events.iter().position(|e| e.position == f.position);
    let earlier = match slot {
        None => true,
        Some(kept) => index(failure).unwrap_or(0) < index(kept).unwrap_or(0),
    };
    if earlier {
        *slot = Some(failure.clone());
    }
}

/// Logs what a subscription did, with its lag when it is known: the age of the last event of a
/// delivered batch.
fn log_outcome(outcome: &Outcome, last: Option<&RecordedEvent>) {
    let lag_ms = last.map(|e| (Utc::now() - e.envelope.time).num_milliseconds().max(0));
    match &outcome.result {
        Ok(projected) if projected.published > 0 || outcome.state != SubscriptionState::Live => {
            tracing::info!(
                subscription = outcome.name,
                state = ?outcome.state,
                published = projected.published,
                checkpoint = projected.checkpoint.as_ref().map(LogPosition::to_string),
                lag_ms,
                "subscription advanced"
            )
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(subscription = outcome.name, state = ?outcome.state, "subscription stopped: {e}")
        }
    }
}

/// How a subscription stands against the log (the status call).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionStatus {
    pub name: String,
    pub state: SubscriptionState,
    /// The last event handled (live), or the replay's progress (replaying).
    pub checkpoint: Option<LogPosition>,
    /// Events of the log after the checkpoint, counted up to [`BEHIND_LIMIT`].
    pub behind: usize,
    /// Whether there are more than `behind` (the count stopped at the limit).
    pub behind_at_least: bool,
    /// When the oldest event not handled yet was recorded.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Its age in seconds at `now`: 0 when the subscription is at the end of the log.
    pub lag_seconds: f64,
}

/// The status of each of `names` against `log`. On a stream-fed host a live subscription's
/// checkpoint is the latest position delivered, and shards interleave: `behind` counts events after
/// it, which is exact on the embedded log and an upper bound of the last shard's lag otherwise.
pub async fn status(
    names: &[&str],
    checkpoints: &dyn Checkpoints,
    log: &dyn EventLog,
    now: DateTime<Utc>,
) -> Result<Vec<SubscriptionStatus>, String> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let live = checkpoints.get(name).await.map_err(|e| e.to_string())?;
        let (state, checkpoint) = match live {
            Some(position) => (SubscriptionState::Live, Some(position)),
            None => match checkpoints
                .get(&replay_checkpoint(name))
                .await
                .map_err(|e| e.to_string())?
            {
                Some(position) => (SubscriptionState::Replaying, Some(position)),
                None => (SubscriptionState::New, None),
            },
        };
        let after = checkpoint.clone().unwrap_or_else(LogPosition::start);
        let pending = log
            .read_all(&after, BEHIND_LIMIT + 1)
            .await
            .map_err(|e| e.to_string())?;
        let oldest_pending = pending.first().map(|e| e.envelope.time);
        out.push(SubscriptionStatus {
            name: name.to_string(),
            state,
            checkpoint,
            behind: pending.len().min(BEHIND_LIMIT),
            behind_at_least: pending.len() > BEHIND_LIMIT,
            oldest_pending,
            lag_seconds: oldest_pending
                .map_or(0.0, |t| ((now - t).num_milliseconds().max(0) as f64) / 1000.0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::embedded::RedbStore;
    use crate::domain::{Event, EventEnvelope, StreamId};
    use crate::ports::{EventSink, Version};

    /// A handler that records event ids (duplicates included) and fails on the ids in `failing`.
    #[derive(Default)]
    struct Recording {
        seen: Mutex<Vec<String>>,
        failing: Mutex<HashSet<String>>,
    }

    impl Recording {
        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
        fn distinct(&self) -> HashSet<String> {
            self.seen().into_iter().collect()
        }
    }

    #[async_trait]
    impl EventSink for Recording {
        async fn publish(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
            if self.failing.lock().unwrap().contains(&event.envelope.id) {
                return Err(ProjectionError::Sink(format!(
                    "cannot take {}",
                    event.envelope.id
                )));
            }
            self.seen.lock().unwrap().push(event.envelope.id.clone());
            Ok(())
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<RedbStore>,
        appended: Vec<RecordedEvent>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
            Fixture {
                _dir: dir,
                store,
                appended: vec![],
            }
        }

        /// Appends `n` events to a stream of their own each.
        async fn append(&mut self, n: usize) {
            for _ in 0..n {
                let i = self.appended.len();
                let repository: crate::domain::RepoName = format!("subscriptions/r{i}").parse().unwrap();
                let stream = StreamId::repository(&repository);
                let envelope = EventEnvelope {
                    id: format!("event-{i}"),
                    time: Utc::now(),
                    principal: "test".into(),
                    event: Event::TagDeleted {
                        repository,
                        tag: "v1".parse().unwrap(),
                        digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                            .parse()
                            .unwrap(),
                    },
                };
                let recorded = (self.store.append(&stream, Version::default(), vec![envelope]))
                    .await
                    .unwrap();
                self.appended.extend(recorded);
            }
        }

        fn ids(&self) -> Vec<String> {
            self.appended.iter().map(|e| e.envelope.id.clone()).collect()
        }

        fn subscription(&self, name: &str) -> (Projector, Arc<Recording>) {
            let handler = Arc::new(Recording::default());
            (Projector::new(name, handler.clone(), self.store.clone()), handler)
        }

        fn subscriptions(&self, list: Vec<Projector>) -> Subscriptions {
            list.into_iter()
                .fold(Subscriptions::new(self.store.clone()), Subscriptions::with)
        }

        async fn status(&self, names: &[&str]) -> Vec<SubscriptionStatus> {
            status(names, &*self.store, &*self.store, Utc::now())
                .await
                .unwrap()
        }
    }

    fn published(outcome: &Outcome) -> u64 {
        outcome.result.as_ref().unwrap().published
    }

    #[tokio::test]
    async fn a_new_subscription_replays_the_log_from_the_beginning_then_follows_it_from_its_checkpoint() {
        let mut fx = Fixture::new();
        fx.append(300).await;
        let (audit, handler) = fx.subscription("audit");
        let subs = fx.subscriptions(vec![audit]);
        assert_eq!(fx.status(&["audit"]).await[0].state, SubscriptionState::New);

        let first = subs.catch_up().await;
        assert_eq!(
            (first[0].state, published(&first[0])),
            (SubscriptionState::Live, 300)
        );
        assert_eq!(
            handler.seen(),
            fx.ids(),
            "the replay delivers the log in order, once"
        );

        fx.append(5).await;
        let second = subs.catch_up().await;
        assert_eq!(published(&second[0]), 5);
        assert_eq!(handler.seen(), fx.ids());
        let status = fx.status(&["audit"]).await;
        assert_eq!(
            (status[0].state, status[0].behind, status[0].lag_seconds),
            (SubscriptionState::Live, 0, 0.0)
        );
    }

    #[tokio::test]
    async fn a_failing_subscription_holds_neither_the_others_nor_its_own_progress_on_the_log_feed() {
        let mut fx = Fixture::new();
        fx.append(10).await;
        let (broken, broken_handler) = fx.subscription("broken");
        let (healthy, healthy_handler) = fx.subscription("healthy");
        broken_handler.failing.lock().unwrap().insert("event-4".into());
        let subs = fx.subscriptions(vec![broken, healthy]);

        let outcomes = subs.catch_up().await;
        assert!(outcomes[0].result.is_err());
        assert_eq!(published(&outcomes[1]), 10);
        assert_eq!(healthy_handler.seen(), fx.ids());
        let status = fx.status(&["broken", "healthy"]).await;
        assert_eq!(
            (status[0].state, status[0].behind),
            (SubscriptionState::Replaying, 6),
            "the replay stopped at the failing event and says how far behind it is"
        );
        assert!(status[0].lag_seconds >= 0.0 && status[0].oldest_pending.is_some());

        broken_handler.failing.lock().unwrap().clear();
        let retried = subs.catch_up().await;
        assert_eq!(
            (retried[0].state, published(&retried[0])),
            (SubscriptionState::Live, 6)
        );
        assert_eq!(
            broken_handler.seen(),
            fx.ids(),
            "resumed at the failed event, nothing twice"
        );
    }

    #[tokio::test]
    async fn a_replay_cut_short_by_its_deadline_resumes_and_is_never_taken_for_done() {
        let mut fx = Fixture::new();
        fx.append(600).await;
        let (audit, handler) = fx.subscription("audit");
        let subs = fx.subscriptions(vec![audit]);
        let batch = fx.appended[590..].to_vec();

        // A deadline already past: one page of the replay, then the batch is left to the replay.
        let cut = subs.deliver(&batch, Instant::now()).await;
        assert!(cut.failure.is_none());
        assert_eq!(cut.outcomes[0].state, SubscriptionState::Replaying);
        assert_eq!(published(&cut.outcomes[0]), 256);
        assert_eq!(fx.status(&["audit"]).await[0].state, SubscriptionState::Replaying);

        let done = subs
            .deliver(&batch, Instant::now() + Duration::from_secs(60))
            .await;
        assert!(done.failure.is_none());
        assert_eq!(done.outcomes[0].state, SubscriptionState::Live);
        assert_eq!(handler.distinct().len(), 600);
        assert_eq!(
            &handler.seen()[..600],
            &fx.ids()[..],
            "the replay is the log in order"
        );
        assert_eq!(
            &handler.seen()[600..],
            &fx.ids()[590..],
            "then the batch, at least once"
        );
    }

    #[tokio::test]
    async fn on_the_stream_feed_the_earliest_failed_event_of_any_subscription_is_retried() {
        let mut fx = Fixture::new();
        fx.append(6).await;
        let (a, a_handler) = fx.subscription("a");
        let (b, b_handler) = fx.subscription("b");
        let subs = fx.subscriptions(vec![a, b]);
        subs.catch_up().await; // both live
        fx.append(6).await;
        let batch = fx.appended[6..].to_vec();
        a_handler.failing.lock().unwrap().insert("event-10".into());
        b_handler.failing.lock().unwrap().insert("event-8".into());

        let delivered = subs.deliver(&batch, Instant::now()).await;
        let failure = delivered.failure.unwrap();
        assert_eq!(failure.position, fx.appended[8].position);

        // The mapping retries from the failed record: both get it again; nothing is lost.
        a_handler.failing.lock().unwrap().clear();
        b_handler.failing.lock().unwrap().clear();
        let retried = subs.deliver(&fx.appended[8..], Instant::now()).await;
        assert!(retried.failure.is_none());
        for handler in [a_handler, b_handler] {
            assert_eq!(handler.distinct(), fx.ids().into_iter().collect::<HashSet<_>>());
        }
    }

    #[tokio::test]
    async fn status_counts_the_events_behind_up_to_its_limit() {
        let mut fx = Fixture::new();
        fx.append(BEHIND_LIMIT + 3).await;
        let status = fx.status(&["audit"]).await;
        assert_eq!(
            (status[0].state, status[0].behind, status[0].behind_at_least),
            (SubscriptionState::New, BEHIND_LIMIT, true)
        );
        assert_eq!(status[0].oldest_pending, Some(fx.appended[0].envelope.time));
    }
}
