//! Where the token service's signing keys live: in the log's store (the redb file, the DynamoDB
//! table), never in the event log itself. Keys are PEM (PKCS#8) strings, oldest first; the newest
//! signs, every one verifies (rotation keeps tokens issued before it valid until they expire).

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    #[error("key store backend failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The stored keys, oldest first (empty before the first key is added).
    async fn load(&self) -> Result<Vec<String>, KeyStoreError>;
    /// Appends `pem` as the newest key if, and only if, the store holds exactly `expected` keys:
    /// `Ok(false)` when another writer got there first (two instances starting at once agree on
    /// one key by reloading).
    async fn add(&self, expected: usize, pem: String) -> Result<bool, KeyStoreError>;
}

/// Keys in memory: for processes that never issue tokens (the janitor) and for tests.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn load(&self) -> Result<Vec<String>, KeyStoreError> {
        Ok(self
            .keys
            .lock()
            .map_err(|e| KeyStoreError::Backend(e.to_string()))?
            .clone())
    }

    async fn add(&self, expected: usize, pem: String) -> Result<bool, KeyStoreError> {
        let mut keys = self
            .keys
            .lock()
            .map_err(|e| KeyStoreError::Backend(e.to_string()))?;
        if keys.len() != expected {
            return Ok(false);
        }
        keys.push(pem);
        Ok(true)
    }
}
