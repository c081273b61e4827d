//! The audit archive: every event of the log as its CloudEvent (`events_out`), one JSON document per
//! event, under a key made of the event's UTC day and its log position (`domain::position`: the
//! 20-digit sequence of the embedded log, a time-ordered position on DynamoDB), so that keys sort
//! in position order within a day and a day's events list with one prefix. The same layout serves
//! every backend:
//!
//! ```text
//! audit/<yyyy>/<mm>/<dd>/<position>.json     CloudEvent 1.0, structured JSON
//! ```
//! `FsAuditSink` (the embedded configuration) keeps it under `<data-dir>/audit/`; `s3::S3AuditSink`
//! under the bucket's `audit/` prefix. Both are idempotent: an event's key and bytes are functions of
//! the event, and an existing document is left as it is.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::fs::{self, File};
use tokio::io::AsyncWriteExt;

use crate::domain::RecordedEvent;
use crate::ports::{EventSink, ProjectionError};

/// The archive's top-level prefix (a directory on disk, a key prefix in a bucket).
pub const AUDIT_PREFIX: &str = "audit";
/// The event's key below the archive's prefix: `<yyyy>/<mm>/<dd>/<position>.json` (positions are
/// digits, hex and `-`: safe in paths and keys).
pub fn archive_key(event: &RecordedEvent) -> String {
    format!(
        "{}/{}.json",
        event.envelope.time.format("%Y/%m/%d"),
        event.position
    )
}

/// The archived document: the event's CloudEvent as structured JSON.
pub fn archive_body(event: &RecordedEvent) -> Result<Vec<u8>, ProjectionError> {
    let json = crate::events_out::to_json(event).map_err(|e| ProjectionError::Sink(e.to_string()))?;
    serde_json::to_vec(&json).map_err(|e| ProjectionError::Sink(e.to_string()))
}

/// The audit archive on local disk, for the embedded configuration.
pub struct FsAuditSink {
    root: PathBuf,
    /// Documents written since the last flush: `flush` has a sync to do.
    unsynced: AtomicBool,
}

impl FsAuditSink {
    /// The archive under `<data_dir>/audit` (created if needed).
    pub fn open(data_dir: &Path) -> std::io::Result<FsAuditSink> {
        let root = data_dir.join(AUDIT_PREFIX);
        std::fs::create_dir_all(&root)?;
        Ok(FsAuditSink {
            root,
            unsynced: AtomicBool::new(false),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn sink_error(e: std::io::Error) -> ProjectionError {
    ProjectionError::Sink(e.to_string())
}

#[async_trait]
impl EventSink for FsAuditSink {
    /// Writes a temporary file and renames it into place, so the archive never holds a document
    /// being written; the sync waits for [`EventSink::flush`] (the projector's checkpoint moves only
    /// after it). A document already there is kept when it holds the event's bytes, and replaced
    /// when it does not (a crash before the sync can leave a file cut short).
    async fn publish(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let path = self.root.join(archive_key(event));
        let body = archive_body(event)?;
        match fs::read(&path).await {
            Ok(existing) if existing == body => return Ok(()),
            Ok(_) => tracing::warn!(path = %path.display(), "replacing an audit document cut short"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(sink_error(e)),
        }
        let dir = path
            .parent()
            .ok_or_else(|| ProjectionError::Sink("audit path has no parent".into()))?;
        fs::create_dir_all(dir).await.map_err(sink_error)?;
        let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
        let written = async {
            let mut file = File::create(&tmp).await?;
            file.write_all(&body).await?;
            file.flush().await?;
            // Concurrent publishers of one event rename identical bytes: one document either way.
            fs::rename(&tmp, &path).await
        }
        .await;
        if written.is_err() {
            fs::remove_file(&tmp).await.ok();
        }
        self.unsynced.store(true, Ordering::SeqCst);
        written.map_err(sink_error)
    }

    /// One `syncfs` of the archive's file system for every document written since the last flush
    /// (their bytes and their directory entries), instead of three fsyncs per document.
    async fn flush(&self) -> Result<(), ProjectionError> {
        if !self.unsynced.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let root = self.root.clone();
        let synced = tokio::task::spawn_blocking(move || {
            let dir = std::fs::File::open(&root)?;
            rustix::fs::syncfs(&dir).map_err(std::io::Error::from)
        })
        .await
        .map_err(|e| ProjectionError::Sink(e.to_string()))?;
        if synced.is_err() {
            self.unsynced.store(true, Ordering::SeqCst);
        }
        synced.map_err(sink_error)
    }
}
