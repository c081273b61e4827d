//! Asynchronous projections (DESIGN.md, "Read-after-write where clients need it"): a projector
//! publishes the log's events to an `EventSink` in log order and keeps a checkpoint, so that at-least-
//! once delivery (DynamoDB Streams redeliver, a host restarts mid-batch) projects every event once.
//!
//! Two ways in:
//! - [`Projector::project`], for a reader of the log in position order (catching up with
//!   `read_all` on the embedded host): events at or below the checkpoint are skipped; the others are
//!   published in order, then the sink is flushed (made durable: one sync per batch) and the
//!   checkpoint advances to the last of them.
//! - [`Projector::deliver`], for DynamoDB Streams: records come per shard, shards in parallel
//!   invocations, so positions of different shards interleave and a checkpoint cannot say what is
//!   done; every event is published (sinks are idempotent) and the checkpoint only keeps the latest
//!   position delivered (what lag is measured against). The event source mapping keeps each shard's
//!   own position.
//!
//! Either way the first failure stops the batch and names the event, so the host retries from there
//! (a Lambda partial batch failure); what was published before it is flushed and stays done.

use std::sync::Arc;
use std::time::Instant;

use crate::domain::{LogPosition, RecordedEvent};
use crate::ports::{Checkpoints, EventLog, EventSink, ProjectionError};

/// The checkpoint name of the audit archive (every event as a CloudEvent).
pub const AUDIT_PROJECTION: &str = "audit";
/// Events read per page when catching up from the log.
const CATCH_UP_PAGE: usize = 256;

/// What a batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projected {
    /// Events published by this call.
    pub published: u64,
    /// Events at or below the checkpoint: projected before.
    pub skipped: u64,
    /// The checkpoint after the call.
    pub checkpoint: Option<LogPosition>,
}

/// Where a batch stopped: `position` is the first event not projected (retry from it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("projection stopped at event {position} (after publishing {published} events): {cause}")]
pub struct ProjectionFailure {
    pub position: LogPosition,
    pub published: u64,
    pub cause: ProjectionError,
}

/// Why catching up from the log stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("reading the log: {0}")]
    Log(String),
    #[error(transparent)]
    Projection(#[from] ProjectionFailure),
}

/// One named projection: events go to `sink`, progress to `checkpoints` under `name`.
#[derive(Clone)]
pub struct Projector {
    name: String,
    sink: Arc<dyn EventSink>,
    checkpoints: Arc<dyn Checkpoints>,
}

impl Projector {
    pub fn new(
        name: impl Into<String>,
        sink: Arc<dyn EventSink>,
        checkpoints: Arc<dyn Checkpoints>,
    ) -> Projector {
        Projector {
            name: name.into(),
            sink,
            checkpoints,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same sink and checkpoint store under another checkpoint name (a subscription's replay).
    pub fn renamed(&self, name: impl Into<String>) -> Projector {
        Projector {
            name: name.into(),
            ..self.clone()
        }
    }

    /// Moves the checkpoint to `position` (unless it is beyond already).
    pub async fn advance_to(&self, position: &LogPosition) -> Result<bool, ProjectionError> {
        self.checkpoints.advance(&self.name, position).await
    }

    /// Publishes `events` again without touching the checkpoint (a re-read of a window the
    /// checkpoint has passed; the sink is idempotent), durably.
    pub async fn republish(&self, events: &[RecordedEvent]) -> Result<(), ProjectionFailure> {
        let all: Vec<&RecordedEvent> = events.iter().collect();
        self.publish_all(&all).await?;
        self.settle_sink(events.first()).await
    }

    async fn settle_sink(&self, first: Option<&RecordedEvent>) -> Result<(), ProjectionFailure> {
        let position = first.map_or_else(LogPosition::start, |e| e.position.clone());
        (self.sink.flush().await).map_err(|e| failure(&position, 0, e))
    }

    /// The projection's checkpoint: the last event it finished.
    pub async fn checkpoint(&self) -> Result<Option<LogPosition>, ProjectionError> {
        self.checkpoints.get(&self.name).await
    }

    /// Projects `events`, which are in position order, skipping those at or below the checkpoint.
    pub async fn project(&self, events: &[RecordedEvent]) -> Result<Projected, ProjectionFailure> {
        let Some(first) = events.first() else {
            return Ok(Projected::default());
        };
        let checkpoint =
            (self.checkpoints.get(&self.name).await).map_err(|e| failure(&first.position, 0, e))?;
        let (done, fresh): (Vec<&RecordedEvent>, Vec<&RecordedEvent>) = events
            .iter()
            .partition(|event| checkpoint.as_ref().is_some_and(|done| event.position <= *done));
        let published = self.publish_all(&fresh).await;
        let count = published.as_ref().map_or_else(|f| f.published, |n| *n);
        let settled = self.settle(&fresh[..to_index(count)]).await?;
        published?;
        Ok(Projected {
            published: count,
            skipped: done.len() as u64,
            checkpoint: settled.or(checkpoint),
        })
    }

    /// Publishes every one of `events` (a batch of one shard of the change stream, in its order),
    /// whatever the checkpoint says, and moves the checkpoint to the latest position delivered.
    pub async fn deliver(&self, events: &[RecordedEvent]) -> Result<Projected, ProjectionFailure> {
        let all: Vec<&RecordedEvent> = events.iter().collect();
        let published = self.publish_all(&all).await;
        let count = published.as_ref().map_or_else(|f| f.published, |n| *n);
        self.settle(&all[..to_index(count)]).await?;
        published?;
        let mut outcome = Projected {
            published: count,
            ..Projected::default()
        };
        if let Some(last) = events.last() {
            outcome.checkpoint = (self.checkpoints.get(&self.name).await)
                .map_err(|e| failure(&last.position, outcome.published, e))?;
        }
        Ok(outcome)
    }

    /// Publishes `events` in order until one fails; the count published, or where it stopped.
    async fn publish_all(&self, events: &[&RecordedEvent]) -> Result<u64, ProjectionFailure> {
        let mut published = 0;
        for event in events {
            (self.sink.publish(event).await).map_err(|e| failure(&event.position, published, e))?;
            published += 1;
        }
        Ok(published)
    }

    /// Makes `published` durable in the sink, then moves the checkpoint to the last of them (unless
    /// it is beyond already): one sync and one checkpoint write per batch. Returns that position.
    async fn settle(&self, published: &[&RecordedEvent]) -> Result<Option<LogPosition>, ProjectionFailure> {
        let (Some(first), Some(last)) = (published.first(), published.last()) else {
            return Ok(None);
        };
        // Until the flush nothing of the batch is known durable: a failure retries all of it.
        (self.sink.flush().await).map_err(|e| failure(&first.position, 0, e))?;
        (self.checkpoints.advance(&self.name, &last.position).await)
            .map_err(|e| failure(&first.position, 0, e))?;
        Ok(Some(last.position.clone()))
    }

    /// Projects every event of `log` after the checkpoint, page by page, until the end of the log.
    pub async fn catch_up(&self, log: &dyn EventLog) -> Result<Projected, CatchUpError> {
        Ok(self.catch_up_until(log, None).await?.0)
    }

    /// [`Projector::catch_up`] that stops after the first full page that ends past `deadline`; the
    /// flag says whether it reached the end of the log.
    pub async fn catch_up_until(
        &self,
        log: &dyn EventLog,
        deadline: Option<Instant>,
    ) -> Result<(Projected, bool), CatchUpError> {
        let mut total = Projected {
            checkpoint: (self.checkpoint().await).map_err(|e| failure(&LogPosition::start(), 0, e))?,
            ..Projected::default()
        };
        loop {
            let after = total.checkpoint.clone().unwrap_or_else(LogPosition::start);
            let page =
                (log.read_all(&after, CATCH_UP_PAGE).await).map_err(|e| CatchUpError::Log(e.to_string()))?;
            if page.is_empty() {
                return Ok((total, true));
            }
            let batch = self.project(&page).await.map_err(|mut f| {
                f.published += total.published;
                f
            })?;
            total.published += batch.published;
            total.skipped += batch.skipped;
            total.checkpoint = batch.checkpoint;
            // A short page is likely the end: read once more to know, whatever the time.
            let full = page.len() == CATCH_UP_PAGE;
            if full && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((total, false));
            }
        }
    }
}

/// A count of events as an index into the slice they were counted in.
fn to_index(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

fn failure(position: &LogPosition, published: u64, cause: ProjectionError) -> ProjectionFailure {
    ProjectionFailure {
        position: position.clone(),
        published,
        cause,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::{BTreeMap, HashSet};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::domain::{Event, EventEnvelope, StreamId};

    /// A sink that records what it was given and fails on the sequences in `failing`.
    #[derive(Default)]
    struct Recording {
        published: Mutex<Vec<u64>>,
        failing: Mutex<HashSet<u64>>,
    }

    #[async_trait]
    impl EventSink for Recording {
        async fn publish(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
            let sequence = event.position.as_sequence().unwrap();
            if self.failing.lock().unwrap().contains(&sequence) {
                return Err(ProjectionError::Sink(format!("cannot publish {sequence}")));
            }
            self.published.lock().unwrap().push(sequence);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Memory(Mutex<BTreeMap<String, LogPosition>>);

    #[async_trait]
    impl Checkpoints for Memory {
        async fn get(&self, name: &str) -> Result<Option<LogPosition>, ProjectionError> {
            Ok(self.0.lock().unwrap().get(name).cloned())
        }

        async fn advance(&self, name: &str, position: &LogPosition) -> Result<bool, ProjectionError> {
            let mut map = self.0.lock().unwrap();
            let current = map.entry(name.to_string()).or_insert_with(LogPosition::start);
            let moved = *current < *position;
            if moved {
                *current = position.clone();
            }
            Ok(moved)
        }
    }

    fn at(sequence: u64) -> Option<LogPosition> {
        Some(LogPosition::sequence(sequence))
    }

    fn events(sequences: std::ops::RangeInclusive<u64>) -> Vec<RecordedEvent> {
        let repository = "projector/test".parse().unwrap();
        sequences
            .map(|sequence| RecordedEvent {
                position: LogPosition::sequence(sequence),
                stream: StreamId::repository(&repository),
                version: sequence,
                envelope: EventEnvelope {
                    id: format!("event-{sequence}"),
                    time: chrono::Utc::now(),
                    principal: "test".into(),
                    event: Event::TagDeleted {
                        repository: repository.clone(),
                        tag: "v1".parse().unwrap(),
                        digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                            .parse()
                            .unwrap(),
                    },
                },
            })
            .collect()
    }

    fn projector() -> (Projector, Arc<Recording>, Arc<Memory>) {
        let (sink, checkpoints) = (Arc::new(Recording::default()), Arc::new(Memory::default()));
        (
            Projector::new("test", sink.clone(), checkpoints.clone()),
            sink,
            checkpoints,
        )
    }

    #[tokio::test]
    async fn given_a_fresh_projection_when_a_batch_arrives_then_every_event_is_published_in_order() {
        let (projector, sink, _) = projector();
        let outcome = projector.project(&events(1..=3)).await.unwrap();
        assert_eq!(*sink.published.lock().unwrap(), [1, 2, 3]);
        assert_eq!(
            outcome,
            Projected {
                published: 3,
                skipped: 0,
                checkpoint: at(3)
            }
        );
    }

    #[tokio::test]
    async fn given_a_checkpoint_when_a_batch_is_redelivered_then_events_at_or_below_it_are_skipped() {
        let (projector, sink, _) = projector();
        projector.project(&events(1..=3)).await.unwrap();
        let outcome = projector.project(&events(2..=5)).await.unwrap();
        assert_eq!(*sink.published.lock().unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(
            (outcome.published, outcome.skipped, outcome.checkpoint),
            (2, 2, at(5))
        );
    }

    #[tokio::test]
    async fn given_a_failing_event_when_a_batch_arrives_then_it_stops_there_and_the_retry_resumes_from_it() {
        let (projector, sink, checkpoints) = projector();
        sink.failing.lock().unwrap().insert(3);
        let failure = projector.project(&events(1..=5)).await.unwrap_err();
        assert_eq!(
            (failure.position, failure.published),
            (LogPosition::sequence(3), 2)
        );
        assert_eq!(*sink.published.lock().unwrap(), [1, 2]);
        assert_eq!(checkpoints.get("test").await.unwrap(), at(2));

        sink.failing.lock().unwrap().clear();
        let outcome = projector.project(&events(3..=5)).await.unwrap();
        assert_eq!(outcome.published, 3);
        assert_eq!(*sink.published.lock().unwrap(), [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn given_an_empty_batch_then_nothing_happens() {
        let (projector, _, checkpoints) = projector();
        assert_eq!(projector.project(&[]).await.unwrap(), Projected::default());
        assert_eq!(checkpoints.get("test").await.unwrap(), None);
    }

    #[tokio::test]
    async fn given_shards_delivered_out_of_order_then_every_event_is_published_and_the_checkpoint_keeps_the_latest(
    ) {
        let (projector, sink, checkpoints) = projector();
        // One shard's batch of later events arrives before another shard's earlier ones: a
        // checkpoint that skipped would lose the earlier ones.
        let later = projector.deliver(&events(4..=6)).await.unwrap();
        let earlier = projector.deliver(&events(1..=3)).await.unwrap();
        assert_eq!(*sink.published.lock().unwrap(), [4, 5, 6, 1, 2, 3]);
        assert_eq!((later.published, earlier.published), (3, 3));
        assert_eq!(earlier.checkpoint, at(6));
        assert_eq!(checkpoints.get("test").await.unwrap(), at(6));
    }
}
