//! `Checkpoints` in the redb file, beside the log (table layout in the parent module, plus):
//! ```text
//! checkpoints     projection name           → sequence (u64): the last event it finished
//! ```
//! The table is created by the first `advance`. Each `advance` is one write transaction that reads
//! the checkpoint and writes it only if the new sequence is higher, committed with fsync; redb has a
//! single writer, so concurrent advances serialize and the highest wins.

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, TableError};

use super::{fail, Failure, RedbStore};
use crate::domain::LogPosition;
use crate::ports::{Checkpoints, ProjectionError};

const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");

impl RedbStore {
    fn advance_blocking(&self, name: &str, sequence: u64) -> Result<bool, Failure> {
        self.db.run(|db| {
            let txn = db.begin_write().map_err(fail)?;
            let moved = {
                let mut table = txn.open_table(CHECKPOINTS).map_err(fail)?;
                let current = table.get(name).map_err(fail)?.map(|v| v.value());
                let moved = current.is_none_or(|c| c < sequence);
                if moved {
                    table.insert(name, sequence).map_err(fail)?;
                }
                moved
            };
            if moved {
                txn.commit().map_err(fail)?;
            } else {
                txn.abort().map_err(fail)?;
            }
            Ok(moved)
        })
    }
}

#[async_trait]
impl Checkpoints for RedbStore {
    async fn get(&self, name: &str) -> Result<Option<LogPosition>, ProjectionError> {
        let read = |db: &redb::Database| -> Result<Option<u64>, Failure> {
            let txn = db.begin_read().map_err(fail)?;
            let table = match txn.open_table(CHECKPOINTS) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(fail(e)),
            };
            let value = table.get(name).map_err(fail)?.map(|v| v.value());
            Ok(value)
        };
        (self.db.run(read))
            .map(|sequence| sequence.map(LogPosition::sequence))
            .map_err(|e| ProjectionError::Checkpoint(e.to_string()))
    }

    async fn advance(&self, name: &str, position: &LogPosition) -> Result<bool, ProjectionError> {
        // The embedded log numbers its events: its positions are sequences.
        let sequence = position.as_sequence().ok_or_else(|| {
            ProjectionError::Checkpoint(format!("{position} is not a position of the embedded log"))
        })?;
        let store = RedbStore { db: self.db.clone() };
        let name = name.to_string();
        tokio::task::spawn_blocking(move || store.advance_blocking(&name, sequence))
            .await
            .map_err(|e| ProjectionError::Checkpoint(e.to_string()))?
            .map_err(|e| ProjectionError::Checkpoint(e.to_string()))
    }
}
