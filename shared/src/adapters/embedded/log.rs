//! `EventLog` on redb: the version check, the append and the inline projection in one write
//! transaction, committed with fsync.

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata};

use crate::domain::projection::ops_for;
use crate::domain::{EventEnvelope, RecordedEvent, StreamId};
use crate::ports::{EventLog, LogError, Version};

use super::{apply_ops, fail, RedbStore, EVENTS, STREAMS};

enum AppendFailure {
    Conflict(Version),
    Backend(String),
}

impl From<String> for AppendFailure {
    fn from(e: String) -> Self {
        AppendFailure::Backend(e)
    }
}

impl RedbStore {
    fn append_blocking(
        &self,
        stream: &StreamId,
        expected: Version,
        envelopes: Vec<EventEnvelope>,
    ) -> Result<Vec<RecordedEvent>, AppendFailure> {
        let txn = self.db.begin_write().map_err(fail)?;
        let mut recorded = Vec::with_capacity(envelopes.len());
        {
            let mut streams = txn.open_table(STREAMS).map_err(fail)?;
            let actual = streams
                .get(stream.as_str())
                .map_err(fail)?
                .map_or(0, |v| v.value());
            if actual != expected {
                return Err(AppendFailure::Conflict(actual));
            }
            let mut events = txn.open_table(EVENTS).map_err(fail)?;
            let mut sequence = events.last().map_err(fail)?.map_or(0, |(k, _)| k.value());
            let mut version = actual;
            for envelope in envelopes {
                sequence += 1;
                version += 1;
                let event = RecordedEvent {
                    sequence,
                    stream: stream.clone(),
                    version,
                    envelope,
                };
                let json = serde_json::to_vec(&event).map_err(fail)?;
                events.insert(sequence, json.as_slice()).map_err(fail)?;
                recorded.push(event);
            }
            streams.insert(stream.as_str(), version).map_err(fail)?;
        }
        let ops: Vec<_> = recorded.iter().flat_map(ops_for).collect();
        apply_ops(&txn, &ops)?;
        txn.commit().map_err(fail)?;
        Ok(recorded)
    }
}

#[async_trait]
impl EventLog for RedbStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: Version,
        events: Vec<EventEnvelope>,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let store = RedbStore { db: self.db.clone() };
        let owned_stream = stream.clone();
        let result =
            tokio::task::spawn_blocking(move || store.append_blocking(&owned_stream, expected, events))
                .await
                .map_err(|e| LogError::Backend(e.to_string()))?;
        result.map_err(|failure| match failure {
            AppendFailure::Conflict(actual) => LogError::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            },
            AppendFailure::Backend(e) => LogError::Backend(e),
        })
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, LogError> {
        let read = || -> Result<Version, String> {
            let txn = self.db.begin_read().map_err(fail)?;
            let streams = txn.open_table(STREAMS).map_err(fail)?;
            let version = streams
                .get(stream.as_str())
                .map_err(fail)?
                .map_or(0, |v| v.value());
            Ok(version)
        };
        read().map_err(LogError::Backend)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let read = || -> Result<Vec<RecordedEvent>, String> {
            let txn = self.db.begin_read().map_err(fail)?;
            let events = txn.open_table(EVENTS).map_err(fail)?;
            let mut out = Vec::with_capacity(limit.min(events.len().map_err(fail)? as usize));
            for row in events.range(after.saturating_add(1)..).map_err(fail)?.take(limit) {
                let (_, value) = row.map_err(fail)?;
                out.push(serde_json::from_slice(value.value()).map_err(fail)?);
            }
            Ok(out)
        };
        read().map_err(LogError::Backend)
    }
}
