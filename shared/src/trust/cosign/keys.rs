//! cosign public keys (trusted by a project) and key pairs (`berth key generate`), in cosign's
//! formats: `PUBLIC KEY` PEM (SubjectPublicKeyInfo) and the encrypted private-key PEM of
//! sigstore/cosign `pkg/cosign/keys.go` — `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older
//! `ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-securesystemslib's `encrypted` JSON
//! (`kdf` scrypt N=32768 r=8 p=1 with a base64 salt, `cipher` nacl/secretbox with a base64 nonce,
//! `ciphertext`) around the PKCS#8 DER key.

use std::fmt;

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P384_SHA256_ASN1};
use base64ct::{Base64, Encoding};
use sigstore::crypto::signing_key::ecdsa::ec::EcdsaKeys;
use sigstore::crypto::signing_key::ecdsa::EllipticCurve;
use sigstore::crypto::signing_key::{KeyPair as _, SIGSTORE_PRIVATE_KEY_PEM_LABEL};
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature as SigstoreSignature};
use sigstore::errors::SigstoreError;
use x509_cert::der::pem::{self, LineEnding};

use crate::trust::{sha256_digest, TrustError, TrustResult};

const PUBLIC_KEY_PEM_LABEL: &str = "PUBLIC KEY";
const COSIGN_PRIVATE_KEY_PEM_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// A public key that verifies cosign signatures: ECDSA P-256/P-384/P-521, RSA (PKCS#1 v1.5 with
/// SHA-256, as cosign) or Ed25519.
#[derive(Clone)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    key: CosignVerificationKey,
}

impl PublicKey {
    /// Reads a `-----BEGIN PUBLIC KEY-----` PEM (a SubjectPublicKeyInfo), as `cosign.pub`.
    pub fn from_pem(pem: &str) -> TrustResult<Self> {
        let (label, der) = pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| TrustError::Key(format!("not a PEM document: {e}")))?;
        if label != PUBLIC_KEY_PEM_LABEL {
            return Err(TrustError::Key(format!(
                "PEM type is {label:?}, not {PUBLIC_KEY_PEM_LABEL:?}"
            )));
        }
        Self::from_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_der(spki_der: &[u8]) -> TrustResult<Self> {
        let key =
            CosignVerificationKey::try_from_der(spki_der).map_err(|e| TrustError::Key(e.to_string()))?;
        Ok(Self {
            spki_der: spki_der.to_vec(),
            key,
        })
    }

    /// `sha256:<hex of SHA-256 of the SubjectPublicKeyInfo DER>`: the key's name in verdicts.
    pub fn fingerprint(&self) -> String {
        sha256_digest(&self.spki_der)
    }

    /// The key as `PUBLIC KEY` PEM with LF line endings.
    pub fn to_pem(&self) -> String {
        // Encoding only fails for an over-long label or input; neither is possible here.
        pem::encode_string(PUBLIC_KEY_PEM_LABEL, LineEnding::LF, &self.spki_der).unwrap_or_default()
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn as_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Does `signature` (raw bytes: ASN.1 DER for ECDSA) verify over `message` with this key?
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        if self
            .key
            .verify_signature(SigstoreSignature::Raw(signature), message)
            .is_ok()
        {
            return true;
        }
        // `cosign verify --key` hashes with SHA-256 whatever the curve (its default
        // --signature-digest-algorithm), while sigstore pairs P-384 with SHA-384: accept both.
        matches!(self.key, CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_))
            && UnparsedPublicKey::new(&ECDSA_P384_SHA256_ASN1, &self.spki_der)
                .verify(message, signature)
                .is_ok()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.fingerprint()).finish()
    }
}

/// An ECDSA P-256 key pair, like `cosign generate-key-pair` makes.
pub struct KeyPair {
    keys: EcdsaKeys,
    signer: SigStoreSigner,
    public: PublicKey,
}

impl KeyPair {
    /// A fresh P-256 key from the system's secure random number generator.
    pub fn generate() -> TrustResult<Self> {
        let keys = EcdsaKeys::new(EllipticCurve::P256).map_err(|e| TrustError::Crypto(e.to_string()))?;
        Self::from_keys(keys)
    }

    /// The private key as cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`), which
    /// `cosign sign --key` reads with the same password. An empty password is allowed (cosign
    /// allows it too) but leaves the key readable by anyone who has the file.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> TrustResult<String> {
        let crlf = self
            .keys
            .private_key_to_encrypted_pem(password)
            .map_err(|e| TrustError::PrivateKey(e.to_string()))?;
        // sigstore's PEM has CRLF line endings; cosign (Go's encoding/pem) writes LF.
        let (label, body) =
            pem::decode_vec(crlf.as_bytes()).map_err(|e| TrustError::PrivateKey(e.to_string()))?;
        pem::encode_string(label, LineEnding::LF, &body).map_err(|e| TrustError::PrivateKey(e.to_string()))
    }

    /// Reads cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE
    /// KEY`, e.g. a `cosign.key`) holding a P-256 key.
    pub fn from_encrypted_pem(pem: &str, password: &[u8]) -> TrustResult<Self> {
        let label = pem::decode_label(pem.trim().as_bytes())
            .map_err(|e| TrustError::PrivateKey(format!("not a PEM document: {e}")))?;
        if label != SIGSTORE_PRIVATE_KEY_PEM_LABEL && label != COSIGN_PRIVATE_KEY_PEM_LABEL {
            return Err(TrustError::PrivateKey(format!(
                "PEM type is {label:?}, not {SIGSTORE_PRIVATE_KEY_PEM_LABEL:?}"
            )));
        }
        let keys = EcdsaKeys::from_encrypted_pem(pem.trim().as_bytes(), password).map_err(|e| match e {
            // sigstore reports a failed secretbox open (wrong password, or tampered) this way.
            SigstoreError::PrivateKeyEncryptError(_) => TrustError::Password,
            other => TrustError::PrivateKey(other.to_string()),
        })?;
        Self::from_keys(keys)
    }

    fn from_keys(keys: EcdsaKeys) -> TrustResult<Self> {
        let spki_der = keys
            .public_key_to_der()
            .map_err(|e| TrustError::PrivateKey(e.to_string()))?;
        let public = PublicKey::from_der(&spki_der)?;
        if !matches!(public.key, CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_)) {
            return Err(TrustError::PrivateKey(
                "the key is not an ECDSA P-256 key".to_owned(),
            ));
        }
        let signer = keys
            .to_signer()
            .map_err(|e| TrustError::PrivateKey(e.to_string()))?;
        Ok(Self {
            keys,
            signer: SigStoreSigner::ECDSA_P256_SHA256_ASN1(signer),
            public,
        })
    }

    /// The public half, e.g. to write `cosign.pub` or to trust it in a project.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// Signs `payload` (ECDSA P-256 with SHA-256) and returns base64 of the DER signature: the
    /// value of the [`super::SIGNATURE_ANNOTATION`].
    pub fn sign(&self, payload: &[u8]) -> TrustResult<String> {
        let signature = self
            .signer
            .sign(payload)
            .map_err(|e| TrustError::Crypto(e.to_string()))?;
        Ok(Base64::encode_string(&signature))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
