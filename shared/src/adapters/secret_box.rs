//! `SecretBox` with AES-256-GCM (aws-lc-rs, already Berth's crypto) and a 32-byte key from
//! configuration: `BERTH_SECRET_KEY` (base64), or the file `BERTH_SECRET_KEY_FILE` names, or, on
//! embedded storage, `<data-dir>/secret.key`, made on first start (mode 0600). Sealed text is
//! `aes256gcm:<key id>:<base64 of nonce and ciphertext>`, the key id being the first 8 hex digits
//! of the key's SHA-256: a secret sealed with another key is named as such, not garbled.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64ct::{Base64, Encoding};
use sha2::{Digest as _, Sha256};

use crate::ports::{NoSecretBox, SecretBox, SecretError};

/// The key's environment variable (base64 of 32 bytes).
pub const KEY_VAR: &str = "BERTH_SECRET_KEY";
/// The environment variable naming a file that holds the key (base64 of 32 bytes).
pub const KEY_FILE_VAR: &str = "BERTH_SECRET_KEY_FILE";
/// The key file embedded storage makes in its data directory.
pub const DATA_DIR_KEY_FILE: &str = "secret.key";
const SCHEME: &str = "aes256gcm";
/// What a sealed secret is for, bound into its tag: a text sealed for another purpose does not
/// open as a registry credential.
const PURPOSE: &[u8] = b"berth registry credential v1";

#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("{0}: not the base64 of 32 bytes (make one with `head -c 32 /dev/urandom | base64`)")]
    Malformed(String),
    #[error("cannot read or make the secret key file {path}: {reason}")]
    File { path: String, reason: String },
}

/// A secret box sealing with one AES-256-GCM key.
pub struct AesGcmBox {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for AesGcmBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesGcmBox")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AesGcmBox {
    /// The box of `key` given as base64 (`what` names where it came from, for errors).
    pub fn from_base64(text: &str, what: &str) -> Result<AesGcmBox, SecretKeyError> {
        let bytes =
            Base64::decode_vec(text.trim()).map_err(|_| SecretKeyError::Malformed(what.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretKeyError::Malformed(what.to_string()))?;
        Ok(AesGcmBox::new(&key))
    }

    pub fn new(key: &[u8; 32]) -> AesGcmBox {
        let id = hex::encode(&Sha256::digest(key)[..4]);
        let unbound = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!("32 bytes"));
        AesGcmBox {
            key: LessSafeKey::new(unbound),
            id,
        }
    }

    /// The key's id (the first 8 hex digits of its SHA-256), as sealed texts name it.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// The box configuration gives: [`KEY_VAR`], else [`KEY_FILE_VAR`], else (when `data_dir` is
    /// given: embedded storage) its `secret.key`, made if absent. `None`: no key (a deployment
    /// on AWS without one: registries can be added without credentials only).
    pub fn from_env(data_dir: Option<&Path>) -> Result<Option<AesGcmBox>, SecretKeyError> {
        if let Some(key) = std::env::var(KEY_VAR).ok().filter(|k| !k.trim().is_empty()) {
            return AesGcmBox::from_base64(&key, KEY_VAR).map(Some);
        }
        if let Some(path) = std::env::var_os(KEY_FILE_VAR).filter(|p| !p.is_empty()) {
            return read_key_file(&PathBuf::from(path)).map(Some);
        }
        match data_dir {
            Some(dir) => key_file_in(dir).map(Some),
            None => Ok(None),
        }
    }
}

/// The secret box configuration gives ([`AesGcmBox::from_env`]), or one that seals nothing.
pub fn configured(data_dir: Option<&Path>) -> Result<Arc<dyn SecretBox>, SecretKeyError> {
    Ok(match AesGcmBox::from_env(data_dir)? {
        Some(sealer) => Arc::new(sealer),
        None => Arc::new(NoSecretBox),
    })
}

fn file_error(path: &Path, reason: impl ToString) -> SecretKeyError {
    SecretKeyError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_key_file(path: &Path) -> Result<AesGcmBox, SecretKeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    AesGcmBox::from_base64(&text, &path.display().to_string())
}

/// The key in `dir`'s key file, made (32 random bytes, readable by its owner only) if absent.
fn key_file_in(dir: &Path) -> Result<AesGcmBox, SecretKeyError> {
    let path = dir.join(DATA_DIR_KEY_FILE);
    if path.exists() {
        return read_key_file(&path);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| file_error(&path, e))?;
    let text = format!("{}\n", Base64::encode_string(&key));
    write_private(&path, text.as_bytes()).map_err(|e| file_error(&path, e))?;
    // Two processes starting at once: whichever file landed first is the key.
    read_key_file(&path)
}

/// Writes a new file only its owner can read; an existing one is left as it is.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(bytes)?;
            file.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl SecretBox for AesGcmBox {
    async fn seal(&self, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Backend(e.to_string()))?;
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PURPOSE),
                &mut sealed,
            )
            .map_err(|_| SecretError::Backend("AES-GCM refused to seal".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SCHEME}:{}:{}", self.id, Base64::encode_string(&out)))
    }

    async fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let damaged = |why: &str| SecretError::Damaged(why.to_string());
        let mut parts = sealed.splitn(3, ':');
        let (Some(SCHEME), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(damaged("not a sealed text of Berth's"));
        };
        if id != self.id {
            return Err(SecretError::OtherKey {
                sealed_with: id.to_string(),
                configured: self.id.clone(),
            });
        }
        let bytes = Base64::decode_vec(body).map_err(|_| damaged("not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(damaged("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged("bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = (self.key)
            .open_in_place(nonce, Aad::from(PURPOSE), &mut buffer)
            .map_err(|_| damaged("it does not authenticate"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged("not text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_open_with_their_key_only_and_never_show_in_the_sealed_text() {
        let sealer = AesGcmBox::new(&[7; 32]);
        let sealed = sealer.seal("s3cret-Passw0rd").await.unwrap();
        assert!(!sealed.contains("s3cret"), "{sealed}");
        assert!(sealed.starts_with(&format!("aes256gcm:{}:", sealer.key_id())));
        assert_eq!(sealer.open(&sealed).await.unwrap(), "s3cret-Passw0rd");
        // Sealed twice, two texts (a fresh nonce each time).
        assert_ne!(sealer.seal("s3cret-Passw0rd").await.unwrap(), sealed);

        let other = AesGcmBox::new(&[8; 32]);
        assert!(matches!(
            other.open(&sealed).await,
            Err(SecretError::OtherKey { .. })
        ));
        // Tampered: refused, not garbled.
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            sealer.open(&tampered).await,
            Err(SecretError::Damaged(_))
        ));
        assert!(matches!(sealer.open("plain").await, Err(SecretError::Damaged(_))));
    }

    #[test]
    fn the_data_directory_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = key_file_in(dir.path()).unwrap();
        let again = key_file_in(dir.path()).unwrap();
        assert_eq!(first.key_id(), again.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DATA_DIR_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(AesGcmBox::from_base64("c2hvcnQ=", "test").is_err());
    }
}
