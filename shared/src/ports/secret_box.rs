//! Sealing secrets Berth must use again later (a replication registry's password) before they
//! are recorded: the log is kept for ever, archived and exported, so it only ever holds them
//! sealed. An adapter seals with a key from configuration (`adapters::secret_box`); a KMS-backed
//! one fits the same port.

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No key is configured: secrets can be neither sealed nor opened.
    #[error("no secret key is configured to seal credentials with: set BERTH_SECRET_KEY (32 bytes, base64) or BERTH_SECRET_KEY_FILE")]
    NoKey,
    /// The secret was sealed with another key than the one configured.
    #[error("the credential was sealed with key {sealed_with}, not the configured key {configured}: configure the key it was sealed with, or set the credential again")]
    OtherKey { sealed_with: String, configured: String },
    /// The sealed text is damaged or was not sealed by Berth.
    #[error("the sealed credential is damaged: {0}")]
    Damaged(String),
    #[error("the secret box failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait SecretBox: Send + Sync {
    /// `plain`, sealed: text that names the key it was sealed with.
    async fn seal(&self, plain: &str) -> Result<String, SecretError>;
    /// What [`SecretBox::seal`] sealed.
    async fn open(&self, sealed: &str) -> Result<String, SecretError>;
}

/// The box of a registry that has no key: it seals nothing (a registry endpoint without a
/// credential needs none).
#[derive(Debug, Default)]
pub struct NoSecretBox;

#[async_trait]
impl SecretBox for NoSecretBox {
    async fn seal(&self, _plain: &str) -> Result<String, SecretError> {
        Err(SecretError::NoKey)
    }

    async fn open(&self, _sealed: &str) -> Result<String, SecretError> {
        Err(SecretError::NoKey)
    }
}
