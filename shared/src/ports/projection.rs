//! Asynchronous projections of the log (DESIGN.md, "Read-after-write where clients need it":
//! everything but the inline views is projected by subscribers with checkpoints, delivered at least
//! once and processed idempotently): where a projection publishes events, and where it remembers how
//! far it got.

use async_trait::async_trait;

use crate::domain::{LogPosition, RecordedEvent};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error("event sink failed: {0}")]
    Sink(String),
    #[error("checkpoint store failed: {0}")]
    Checkpoint(String),
}

/// Where a projection publishes the events it projects (an audit archive, a webhook, a bus).
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes one event. Idempotent: delivery is at least once, so publishing an event that was
    /// published already leaves one copy of it.
    async fn publish(&self, event: &RecordedEvent) -> Result<(), ProjectionError>;

    /// Makes what was published so far durable. A projector calls it before it moves its
    /// checkpoint past published events, so a sink may buffer or defer its syncs until then (one
    /// sync per batch instead of one per event). By default publishing is durable already.
    async fn flush(&self) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// How far each projection got in the log: the position of the last event it finished, by name.
#[async_trait]
pub trait Checkpoints: Send + Sync {
    /// The checkpoint of `name`; `None` before its first `advance`.
    async fn get(&self, name: &str) -> Result<Option<LogPosition>, ProjectionError>;

    /// Moves the checkpoint of `name` to `position` unless it is there or beyond already (a
    /// conditional write: a checkpoint never moves backwards, even under concurrent writers).
    /// Returns whether it moved.
    async fn advance(&self, name: &str, position: &LogPosition) -> Result<bool, ProjectionError>;
}
