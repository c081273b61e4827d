//! The single-process default: event log and views in one redb file, blobs on local disk.
//!
//! ```text
//! <data-dir>/
//!   berth.redb        event log + inline views (one ACID file)
//!   blobs/            content-addressed blobs (see `fs`)
//!   uploads/          upload sessions in progress
//!   secret.key        the key registry credentials are sealed with (unless configured)
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::app::Registry;
use crate::ports::SystemClock;

use super::embedded::RedbStore;
use super::fs::FsBlobStore;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot open the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
}

/// The store's database file inside the data directory.
pub const DATABASE_FILE: &str = "berth.redb";

/// Opens (creating if needed) the embedded registry in `data_dir`.
pub fn open(data_dir: &Path) -> Result<Registry, LocalError> {
    open_with_cache(data_dir, super::embedded::DEFAULT_CACHE_BYTES)
}

/// Opens the embedded registry with a database page cache of at most `cache_bytes`.
pub fn open_with_cache(data_dir: &Path, cache_bytes: usize) -> Result<Registry, LocalError> {
    let err = |reason: String| LocalError::DataDir {
        path: data_dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
    let store = Arc::new(
        RedbStore::open_with_cache(&data_dir.join(DATABASE_FILE), cache_bytes)
            .map_err(|e| err(e.to_string()))?,
    );
    let blobs = Arc::new(FsBlobStore::open(data_dir).map_err(|e| err(e.to_string()))?);
    let secrets = super::secret_box::configured(Some(data_dir)).map_err(|e| err(e.to_string()))?;
    Ok(
        Registry::new(store.clone(), store.clone(), blobs, Arc::new(SystemClock))
            .with_key_store(store.clone())
            .with_checkpoints(store)
            .with_secret_box(secrets)
            .with_subscription_names(crate::app::EMBEDDED_SUBSCRIPTIONS),
    )
}
