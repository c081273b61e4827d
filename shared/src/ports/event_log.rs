//! The append-only event log, grouped in streams with optimistic concurrency.

use async_trait::async_trait;

use crate::domain::{EventEnvelope, LogPosition, RecordedEvent, StreamId};

/// A stream's version: the number of events in it (0 for a stream that does not exist yet).
pub type Version = u64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Someone appended to the stream since it was read: reload, decide again, retry.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    Conflict {
        stream: StreamId,
        expected: Version,
        actual: Version,
    },
    /// The backend has no space (or quota) left for the write; nothing was appended.
    #[error("the event log is out of space")]
    InsufficientStorage,
    /// The append names a stream twice.
    #[error("stream {0} appears twice in one append")]
    StreamTwice(StreamId),
    #[error("event log backend failed: {0}")]
    Backend(String),
}

/// One stream's part of an atomic append ([`EventLog::append_atomic`]): the version the decision
/// was made at, and the events to add (none: the version is only checked, for a stream the decision
/// read but does not change).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream: StreamId,
    pub expected: Version,
    pub events: Vec<EventEnvelope>,
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends to several streams at once, all or nothing: if, and only if, every stream is at its
    /// `expected` version, every event is appended (numbered in the order given) and the inline
    /// projection of each applied, in one transaction. Otherwise nothing is written and the error
    /// is the `Conflict` of the first stream whose version differs. A stream may appear once.
    /// Appending no events at all is a no-op (nothing is checked: there is no write to guard).
    async fn append_atomic(&self, appends: Vec<StreamAppend>) -> Result<Vec<RecordedEvent>, LogError>;

    /// Appends `events` to `stream` if, and only if, the stream is at `expected`. In the same
    /// transaction the adapter applies the inline projection (`domain::projection::ops_for`) of each
    /// event, so a read after a successful append sees it. Appending no events is a no-op.
    async fn append(
        &self,
        stream: &StreamId,
        expected: Version,
        events: Vec<EventEnvelope>,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.append_atomic(vec![StreamAppend {
            stream: stream.clone(),
            expected,
            events,
        }])
        .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, LogError>;

    /// Up to `limit` events of `stream` with a version greater than `after`, in version order
    /// (strongly consistent: an append that returned is visible).
    ///
    /// Loads an aggregate by folding its stream, and catches an in-memory copy up by reading only
    /// what follows the version it has folded; adapters index streams so that this costs the events
    /// read, never a scan of the log. A stream that does not exist reads empty.
    async fn read_stream(
        &self,
        stream: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// Up to `limit` events with a position after `after` (`LogPosition::start()`: from the
    /// beginning), in position order: for readers of everything (rebuilds, the audit log, catching
    /// up a projection). What the order promises is each stream's events in version order, and
    /// across streams the time they were committed; NOT a total order of commits: on DynamoDB two
    /// streams' events of the same millisecond come in an order of their streams' names, and an
    /// event committed a moment ago may not be listed yet (the index is eventually consistent), so
    /// a reader that needs every event as it happens subscribes to the change stream instead. The
    /// embedded log gives more (one writer numbers its commits) but callers must not rely on it.
    async fn read_all(&self, after: &LogPosition, limit: usize) -> Result<Vec<RecordedEvent>, LogError>;
}

/// Refuses an append that names a stream twice (adapters call it first).
pub fn check_appends(appends: &[StreamAppend]) -> Result<(), LogError> {
    let mut seen = std::collections::HashSet::new();
    match appends.iter().find(|a| !seen.insert(&a.stream)) {
        Some(twice) => Err(LogError::StreamTwice(twice.stream.clone())),
        None => Ok(()),
    }
}
