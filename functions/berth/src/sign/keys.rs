//! cosign's key files: `<prefix>.key` (an encrypted `SIGSTORE PRIVATE KEY` PEM, mode 0600) and
//! `<prefix>.pub` (a PKIX public key PEM), and their password: `COSIGN_PASSWORD` when set (even
//! empty), else asked on the terminal, as `cosign generate-key-pair` and `cosign sign` do.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth::trust::cosign::{KeyPair, PublicKey};

/// The environment variable cosign reads the key password from.
const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Writes a new key pair to `<prefix>.key` and `<prefix>.pub`; refuses to overwrite either
/// unless `force`.
pub fn generate(prefix: &str, force: bool) -> anyhow::Result<()> {
    let key_path = PathBuf::from(format!("{prefix}.key"));
    let pub_path = PathBuf::from(format!("{prefix}.pub"));
    if !force {
        for path in [&key_path, &pub_path] {
            if path.exists() {
                anyhow::bail!("{} exists: not overwriting it (pass --force to)", path.display());
            }
        }
    }
    let password = new_password()?;
    let pair = KeyPair::generate().context("cannot generate a key")?;
    let pem = (pair.to_encrypted_pem(password.as_bytes())).context("cannot encrypt the private key")?;
    write_file(&key_path, pem.as_bytes(), 0o600, force)?;
    eprintln!("Private key written to {}", key_path.display());
    write_file(&pub_path, pair.public_key().to_pem().as_bytes(), 0o644, force)?;
    eprintln!("Public key written to {}", pub_path.display());
    Ok(())
}

/// The key pair in the encrypted PEM file `path`.
pub fn load_private(path: &Path) -> anyhow::Result<KeyPair> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let password = existing_password()?;
    KeyPair::from_encrypted_pem(&pem, password.as_bytes())
        .with_context(|| format!("cannot decrypt {} (wrong password?)", path.display()))
}

/// The public key in the PEM file `path`.
pub fn load_public(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    PublicKey::from_pem(&pem).with_context(|| format!("{} holds no usable public key", path.display()))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The password for a new key: `COSIGN_PASSWORD`, else typed twice on the terminal.
fn new_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    let first = prompt("Enter password for private key: ")?;
    let again = prompt("Enter password for private key again: ")?;
    if first != again {
        anyhow::bail!("passwords do not match");
    }
    Ok(first)
}

/// The password of an existing key: `COSIGN_PASSWORD`, else typed once on the terminal.
fn existing_password() -> anyhow::Result<String> {
    match std::env::var(PASSWORD_ENV) {
        Ok(password) => Ok(password),
        Err(_) => prompt("Enter password for private key: "),
    }
}

fn prompt(text: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(text)
        .with_context(|| format!("cannot ask for the key password on a terminal: set {PASSWORD_ENV}"))
}
