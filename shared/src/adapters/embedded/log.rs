//! `EventLog` on redb: the version check, the append, its stream index and the inline projection
//! in one write transaction, committed with fsync. A stream is read through `stream_events`
//! ((stream, version) → sequence), a range of one stream's rows, then point reads of `events`.

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::domain::projection::{ops_for, ViewOp};
use crate::domain::{LogPosition, RecordedEvent, StreamId};
use crate::ports::event_log::check_appends;
use crate::ports::{EventLog, LogError, StreamAppend, Version};

use super::{apply_ops, fail, Failure, RedbStore, EVENTS, STREAMS, STREAM_EVENTS};

/// What an append ends with when it writes nothing: the conflict of a stream whose version is not
/// the expected one, or the file's failure.
enum AppendFailure {
    Conflict(LogError),
    Failed(Failure),
}

impl From<Failure> for AppendFailure {
    fn from(e: Failure) -> Self {
        AppendFailure::Failed(e)
    }
}

impl From<Failure> for LogError {
    fn from(e: Failure) -> Self {
        match e {
            Failure::Full => LogError::InsufficientStorage,
            other => LogError::Backend(other.to_string()),
        }
    }
}

impl RedbStore {
    fn append_blocking(&self, appends: Vec<StreamAppend>) -> Result<Vec<RecordedEvent>, AppendFailure> {
        let appended = self.db.run(|db| {
            let txn = db.begin_write().map_err(fail)?;
            let mut recorded = Vec::new();
            {
                let mut streams = txn.open_table(STREAMS).map_err(fail)?;
                // Every version first: nothing is written unless all are as expected.
                for append in &appends {
                    let actual =
                        (streams.get(append.stream.as_str()).map_err(fail)?).map_or(0, |v| v.value());
                    if actual != append.expected {
                        return Ok(Err(LogError::Conflict {
                            stream: append.stream.clone(),
                            expected: append.expected,
                            actual,
                        }));
                    }
                }
                let mut events = txn.open_table(EVENTS).map_err(fail)?;
                let mut index = txn.open_table(STREAM_EVENTS).map_err(fail)?;
                let mut sequence = events.last().map_err(fail)?.map_or(0, |(k, _)| k.value());
                for StreamAppend {
                    stream,
                    expected,
                    events: envelopes,
                } in appends
                {
                    if envelopes.is_empty() {
                        continue;
                    }
                    let mut version = expected;
                    for envelope in envelopes {
                        sequence += 1;
                        version += 1;
                        let event = RecordedEvent {
                            position: LogPosition::sequence(sequence),
                            stream: stream.clone(),
                            version,
                            envelope,
                        };
                        let json = serde_json::to_vec(&event).map_err(fail)?;
                        events.insert(sequence, json.as_slice()).map_err(fail)?;
                        index.insert((stream.as_str(), version), sequence).map_err(fail)?;
                        recorded.push(event);
                    }
                    streams.insert(stream.as_str(), version).map_err(fail)?;
                }
            }
            let ops: Vec<_> = recorded.iter().flat_map(ops_for).collect();
            apply_ops(&txn, &ops)?;
            txn.commit().map_err(fail)?;
            Ok(Ok(recorded))
        })?;
        appended.map_err(AppendFailure::Conflict)
    }
}

/// Indexes the streams of a file written before `stream_events` existed: its index is empty while
/// its log is not. (A file that had the table from the start is fully indexed, as an append writes
/// both in one transaction.) Runs once, when such a file is first opened.
pub(super) fn index_streams_if_missing(txn: &WriteTransaction) -> Result<(), Failure> {
    let events = txn.open_table(EVENTS).map_err(fail)?;
    let mut index = txn.open_table(STREAM_EVENTS).map_err(fail)?;
    if !index.is_empty().map_err(fail)? || events.is_empty().map_err(fail)? {
        return Ok(());
    }
    for row in events.iter().map_err(fail)? {
        let (sequence, json) = row.map_err(fail)?;
        let event: RecordedEvent = serde_json::from_slice(json.value()).map_err(fail)?;
        index
            .insert((event.stream.as_str(), event.version), sequence.value())
            .map_err(fail)?;
    }
    Ok(())
}

/// Writes the content-fact rows (`blob_users`, `index_children`) of every manifest in the log, for
/// a file written before those tables existed: the rows a replay of the log would write, so the
/// views stay equal to a rebuild. Runs once, when such a file is first opened.
pub(super) fn project_content_facts(txn: &WriteTransaction) -> Result<(), Failure> {
    let events = txn.open_table(EVENTS).map_err(fail)?;
    let mut facts = Vec::new();
    for row in events.iter().map_err(fail)? {
        let (_, json) = row.map_err(fail)?;
        let event: RecordedEvent = serde_json::from_slice(json.value()).map_err(fail)?;
        facts.extend(ops_for(&event).into_iter().filter(|op| match op {
            ViewOp::Put(k, _) | ViewOp::Delete(k) => k.is_content_fact(),
        }));
    }
    drop(events);
    apply_ops(txn, &facts)
}

#[async_trait]
impl EventLog for RedbStore {
    async fn append_atomic(&self, appends: Vec<StreamAppend>) -> Result<Vec<RecordedEvent>, LogError> {
        check_appends(&appends)?;
        if appends.iter().all(|a| a.events.is_empty()) {
            return Ok(vec![]);
        }
        let store = RedbStore { db: self.db.clone() };
        let result = tokio::task::spawn_blocking(move || store.append_blocking(appends))
            .await
            .map_err(|e| LogError::Backend(e.to_string()))?;
        result.map_err(|failure| match failure {
            AppendFailure::Conflict(conflict) => conflict,
            AppendFailure::Failed(e) => e.into(),
        })
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, LogError> {
        let read = |db: &redb::Database| -> Result<Version, Failure> {
            let txn = db.begin_read().map_err(fail)?;
            let streams = txn.open_table(STREAMS).map_err(fail)?;
            let version = streams
                .get(stream.as_str())
                .map_err(fail)?
                .map_or(0, |v| v.value());
            Ok(version)
        };
        Ok(self.db.run(read)?)
    }

    async fn read_all(&self, after: &LogPosition, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        // Positions here are sequences; a timed one (another log's) sorts after all of them.
        let after: u64 = match after.as_sequence() {
            Some(sequence) => sequence,
            None if after.is_start() => 0,
            None => return Ok(vec![]),
        };
        let read = |db: &redb::Database| -> Result<Vec<RecordedEvent>, Failure> {
            let txn = db.begin_read().map_err(fail)?;
            let events = txn.open_table(EVENTS).map_err(fail)?;
            let mut out = Vec::with_capacity(limit.min(events.len().map_err(fail)? as usize));
            for row in events.range(after.saturating_add(1)..).map_err(fail)?.take(limit) {
                let (_, value) = row.map_err(fail)?;
                out.push(serde_json::from_slice(value.value()).map_err(fail)?);
            }
            Ok(out)
        };
        Ok(self.db.run(read)?)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let Some(first) = after.checked_add(1).filter(|_| limit > 0) else {
            return Ok(vec![]);
        };
        let read = |db: &redb::Database| -> Result<Vec<RecordedEvent>, Failure> {
            let txn = db.begin_read().map_err(fail)?;
            let index = txn.open_table(STREAM_EVENTS).map_err(fail)?;
            let events = txn.open_table(EVENTS).map_err(fail)?;
            let rows = index
                .range((stream.as_str(), first)..=(stream.as_str(), u64::MAX))
                .map_err(fail)?;
            let mut out = Vec::new();
            for row in rows.take(limit) {
                let sequence = row.map_err(fail)?.1.value();
                let json = events.get(sequence).map_err(fail)?.ok_or_else(|| {
                    Failure::Other(format!(
                        "{stream} indexes sequence {sequence}, absent from the log"
                    ))
                })?;
                out.push(serde_json::from_slice(json.value()).map_err(fail)?);
            }
            Ok(out)
        };
        Ok(self.db.run(read)?)
    }
}

#[cfg(test)]
mod tests {
    use redb::Database;

    use super::*;
    use crate::domain::{Algorithm, Digest, Event, EventEnvelope, RepoName};

    fn stream(name: &str) -> StreamId {
        let repo: RepoName = name.parse().unwrap();
        StreamId::repository(&repo)
    }

    fn envelopes(name: &str, label: &str, n: usize) -> Vec<EventEnvelope> {
        let repository: RepoName = name.parse().unwrap();
        (0..n)
            .map(|i| EventEnvelope {
                id: format!("{name}-{label}-{i}"),
                time: chrono::DateTime::UNIX_EPOCH,
                principal: "test".to_string(),
                event: Event::BlobUploadCompleted {
                    repository: repository.clone(),
                    digest: Digest::compute(Algorithm::Sha256, format!("{label}-{i}").as_bytes()),
                    size: 1,
                },
            })
            .collect()
    }

    #[tokio::test]
    async fn a_file_written_before_the_stream_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.redb");
        let (a, b) = (stream("old/a"), stream("old/b"));
        let store = RedbStore::open(&path).unwrap();
        let mut on_a = store.append(&a, 0, envelopes("old/a", "first", 2)).await.unwrap();
        let on_b = store.append(&b, 0, envelopes("old/b", "first", 1)).await.unwrap();
        on_a.extend(
            store
                .append(&a, 2, envelopes("old/a", "second", 1))
                .await
                .unwrap(),
        );
        assert_eq!((on_a.len(), on_b.len()), (3, 1));
        drop(store);
        // What a file from before `stream_events` looks like: the log without the index.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(STREAM_EVENTS).unwrap());
        txn.commit().unwrap();
        drop(db);

        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.read_stream(&a, 0, 10).await, Ok(on_a));
        assert_eq!(store.read_stream(&b, 0, 10).await, Ok(on_b));
    }

    #[tokio::test]
    async fn a_file_written_before_the_content_facts_gets_them_from_the_log_when_opened() {
        use crate::ports::Views as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.redb");
        let repo: RepoName = "old/app".parse().unwrap();
        let d = |s: &str| Digest::compute(Algorithm::Sha256, s.as_bytes());
        let pushed = |digest: &Digest, blobs: Vec<Digest>, manifests: Vec<Digest>| EventEnvelope {
            id: digest.to_string(),
            time: chrono::DateTime::UNIX_EPOCH,
            principal: "test".to_string(),
            event: Event::ManifestPushed {
                repository: repo.clone(),
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
                size: 1,
                subject: None,
                artifact_type: None,
                config_media_type: None,
                annotations: Default::default(),
                annotations_omitted: false,
                blobs,
                manifests,
                content: None,
            },
        };
        let store = RedbStore::open(&path).unwrap();
        let events = vec![
            pushed(&d("image"), vec![d("config"), d("layer")], vec![]),
            pushed(&d("index"), vec![], vec![d("image")]),
        ];
        store.append(&stream("old/app"), 0, events).await.unwrap();
        let before = store.dump().await.unwrap();
        drop(store);
        // What a file from before the fact tables looks like.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(super::super::BLOB_USERS).unwrap());
        assert!(txn.delete_table(super::super::INDEX_CHILDREN).unwrap());
        txn.commit().unwrap();
        drop(db);

        let store = RedbStore::open(&path).unwrap();
        assert_eq!(
            store.manifests_using(&repo, &d("layer")).await.unwrap(),
            vec![d("image")]
        );
        assert_eq!(
            store.indexes_holding(&repo, &d("image")).await.unwrap(),
            vec![d("index")]
        );
        assert_eq!(
            store.dump().await.unwrap(),
            before,
            "as if it had been written with them"
        );
    }
}
