//! `KeyStore` in the redb file, beside the log (table layout in the parent module, plus):
//! ```text
//! token_keys      index (u64, from 0)       → PKCS#8 PEM of a token signing key
//! ```
//! An `add` is one write transaction that checks the count first; redb has one writer, so two adds
//! at the same count serialize and the second sees it changed. The file should be readable by the
//! registry's user only (it holds the log too).

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError};

use super::{fail, Failure, RedbStore};
use crate::ports::{KeyStore, KeyStoreError};

const TOKEN_KEYS: TableDefinition<u64, &str> = TableDefinition::new("token_keys");

impl RedbStore {
    fn add_key_blocking(&self, expected: usize, pem: &str) -> Result<bool, Failure> {
        self.db.run(|db| {
            let txn = db.begin_write().map_err(fail)?;
            let added = {
                let mut table = txn.open_table(TOKEN_KEYS).map_err(fail)?;
                let count = table.len().map_err(fail)?;
                let added = usize::try_from(count).is_ok_and(|c| c == expected);
                if added {
                    table.insert(count, pem).map_err(fail)?;
                }
                added
            };
            if added {
                txn.commit().map_err(fail)?;
            } else {
                txn.abort().map_err(fail)?;
            }
            Ok(added)
        })
    }
}

#[async_trait]
impl KeyStore for RedbStore {
    async fn load(&self) -> Result<Vec<String>, KeyStoreError> {
        let read = |db: &redb::Database| -> Result<Vec<String>, Failure> {
            let txn = db.begin_read().map_err(fail)?;
            let table = match txn.open_table(TOKEN_KEYS) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(vec![]),
                Err(e) => return Err(fail(e)),
            };
            let mut keys = Vec::new();
            for row in table.iter().map_err(fail)? {
                keys.push(row.map_err(fail)?.1.value().to_string());
            }
            Ok(keys)
        };
        self.db
            .run(read)
            .map_err(|e| KeyStoreError::Backend(e.to_string()))
    }

    async fn add(&self, expected: usize, pem: String) -> Result<bool, KeyStoreError> {
        let store = RedbStore { db: self.db.clone() };
        tokio::task::spawn_blocking(move || store.add_key_blocking(expected, &pem))
            .await
            .map_err(|e| KeyStoreError::Backend(e.to_string()))?
            .map_err(|e| KeyStoreError::Backend(e.to_string()))
    }
}
