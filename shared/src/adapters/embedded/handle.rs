//! The redb `Database` behind a handle that reopens it after an I/O failure.
//!
//! After any failed I/O (ENOSPC during a commit, for one) redb answers every later operation on
//! that `Database` with `PreviousIo` ("close and re-open the database"), reads included: one write
//! on a full disk would fail every request until a restart. So an operation that fails an I/O drops
//! the `Database`, and the next operation opens the file again. Opening recovers the last committed
//! transaction (redb's repair), so nothing committed is lost and nothing uncommitted appears.
//!
//! The old instance keeps the file's lock until its last transaction ends; a reopen meanwhile fails
//! (`DatabaseAlreadyOpen`, never a second instance on the file) and the next operation tries again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use redb::Database;

use crate::ports::blob_store::is_out_of_space;

/// Why an operation on the redb file failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The file system has no space (or quota) left: the write was not committed.
    Full,
    /// The file failed an I/O: this `Database` is unusable until reopened.
    Io(String),
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Full => f.write_str("out of space"),
            Failure::Io(e) | Failure::Other(e) => f.write_str(e),
        }
    }
}

impl From<redb::Error> for Failure {
    fn from(e: redb::Error) -> Failure {
        match e {
            redb::Error::Io(io) if is_out_of_space(&io) => Failure::Full,
            redb::Error::Io(io) => Failure::Io(io.to_string()),
            e @ redb::Error::PreviousIo => Failure::Io(e.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Other(e)
    }
}

/// An error an operation on the file can end with, classified.
pub(super) trait Cause {
    fn failure(self) -> Failure;
}

macro_rules! redb_cause {
    ($($error:ty),*) => {
        $(impl Cause for $error {
            fn failure(self) -> Failure {
                redb::Error::from(self).into()
            }
        })*
    };
}

redb_cause!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::DatabaseError
);

impl Cause for serde_json::Error {
    fn failure(self) -> Failure {
        Failure::Other(self.to_string())
    }
}

/// For `map_err`: classifies an error of the file or of a row's JSON.
pub(super) fn fail(e: impl Cause) -> Failure {
    e.failure()
}

/// The open `Database`, or none after one failed an I/O.
pub(super) struct Db {
    path: PathBuf,
    /// redb's page cache, in bytes (its own default is 1 GiB, which a registry's RSS would grow
    /// towards with the database).
    cache_bytes: usize,
    current: Mutex<Option<Arc<Database>>>,
}

impl Db {
    pub(super) fn open(path: &Path, cache_bytes: usize) -> Result<Db, Failure> {
        let db = Self::create(path, cache_bytes)?;
        Ok(Db {
            path: path.to_path_buf(),
            cache_bytes,
            current: Mutex::new(Some(Arc::new(db))),
        })
    }

    fn create(path: &Path, cache_bytes: usize) -> Result<Database, Failure> {
        Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(fail)
    }

    /// Runs `f` on the database. If it fails an I/O, the database is dropped so that the next call
    /// reopens the file.
    pub(super) fn run<T>(&self, f: impl FnOnce(&Database) -> Result<T, Failure>) -> Result<T, Failure> {
        let db = self.database()?;
        let result = f(&db);
        if let Err(failure @ (Failure::Full | Failure::Io(_))) = &result {
            self.discard(&db, failure);
        }
        result
    }

    fn database(&self) -> Result<Arc<Database>, Failure> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = current.as_ref() {
            return Ok(db.clone());
        }
        let db = Arc::new(Self::create(&self.path, self.cache_bytes)?);
        tracing::warn!(path = %self.path.display(), "embedded store reopened after an I/O failure");
        *current = Some(db.clone());
        Ok(db)
    }

    /// Drops `failed` if it is still the current database.
    fn discard(&self, failed: &Arc<Database>, failure: &Failure) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|db| Arc::ptr_eq(db, failed)) {
            tracing::warn!(%failure, "embedded store closed after an I/O failure; the next operation reopens it");
            *current = None;
        }
    }
}
