//! The janitor's use case: expire upload sessions that clients abandoned (DESIGN.md, "Lifecycle":
//! upload expiry), by the registry's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{AppError, Registry};

impl Registry {
    /// Aborts every upload session not written to for `max_age` and releases its storage; returns
    /// how many it aborted. A session written to since then survives and stays resumable.
    pub async fn expire_uploads(&self, max_age: Duration) -> Result<u64, AppError> {
        let now = self.clock.now();
        // An age beyond chrono's range means "older than any session": nothing expires.
        let cutoff = (chrono::Duration::from_std(max_age).ok())
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Ok(self.blobs.expire_uploads(cutoff).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::adapters::embedded::RedbStore;
    use crate::adapters::fs::FsBlobStore;
    use crate::ports::{BlobStore, Clock};

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    /// A registry whose clock reads `offset` from now, and one upload session started now.
    async fn registry_with_a_session(offset: Duration) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let clock = Arc::new(Fixed(Utc::now() + chrono::Duration::from_std(offset).unwrap()));
        let registry = Registry::new(store.clone(), store, blobs.clone(), clock);
        blobs
            .upload_start(&"janitor/test".parse().unwrap())
            .await
            .unwrap();
        (dir, registry)
    }

    #[tokio::test]
    async fn a_session_idle_for_longer_than_the_max_age_by_the_registry_clock_expires() {
        let (_dir, registry) = registry_with_a_session(2 * DAY).await;
        assert_eq!(registry.expire_uploads(DAY).await.unwrap(), 1);
        assert_eq!(registry.expire_uploads(DAY).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_session_younger_than_the_max_age_survives() {
        let (_dir, registry) = registry_with_a_session(2 * DAY).await;
        assert_eq!(registry.expire_uploads(3 * DAY).await.unwrap(), 0);
        assert_eq!(registry.expire_uploads(Duration::MAX).await.unwrap(), 0);
    }
}
