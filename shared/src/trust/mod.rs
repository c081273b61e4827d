//! Content trust: a pure signature-verification engine for cosign and Notation signatures.
//!
//! The caller supplies bytes (signature layers, envelopes, keys, certificates, policies) and gets a
//! [`Verdict`]; nothing here does I/O. DESIGN.md "Content trust model" says what Berth does with it.
//!
//! * [`cosign`]: cosign "simple signing" signatures made with a key pair (`cosign sign --key`),
//!   optionally with a Rekor bundle; plus key generation and cosign's encrypted private-key PEM.
//!   Key parsing, verification, generation, signing and the encrypted PEM (scrypt + NaCl secretbox)
//!   come from the `sigstore` crate's `crypto` module (default features off, `rustls-tls` backend:
//!   aws-lc-rs, which the AWS SDK already builds; no OpenSSL).
//! * [`notation`]: Notary Project signatures (`notary.x509` and `notary.x509.signingAuthority`
//!   schemes) in JWS or COSE envelopes, judged by a Notation trust policy and trust stores.
//!   Certificates are parsed with `x509-cert`, COSE with `ciborium`; RSASSA-PSS and ECDSA are
//!   verified by aws-lc-rs directly (sigstore's key type only knows RSA-PSS with SHA-256, Notation
//!   also needs PS384/PS512).

pub mod cosign;
pub mod notation;

use serde::{Deserialize, Serialize};

/// The outcome of verifying one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Verdict {
    /// `signer`: who signed — for cosign the key's fingerprint
    /// `sha256:<hex of SHA-256 of the SubjectPublicKeyInfo DER>`, for Notation the leaf certificate
    /// subject (RFC 4514 string). `warnings`: what failed but was only logged (Notation levels
    /// `permissive`/`audit`, or a policy override), e.g. "the signature expired at ...".
    Verified {
        signer: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// `reason`: a short human sentence saying what failed.
    Rejected { reason: String },
}

impl Verdict {
    /// A rejection with `reason`.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Verdict::Rejected {
            reason: reason.into(),
        }
    }

    /// Did the signature verify (possibly with warnings)?
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified { .. })
    }
}

/// Bad input from an administrator or a signer's tool: keys, certificates, policies, passwords.
/// Signatures that fail to verify are not errors: they are [`Verdict::Rejected`].
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A public key that cannot be used (not PEM, not SubjectPublicKeyInfo, unsupported algorithm).
    #[error("invalid public key: {0}")]
    Key(String),
    /// A private key that cannot be read, written or used.
    #[error("invalid private key: {0}")]
    PrivateKey(String),
    /// The password does not decrypt the private key (or the encrypted key is corrupt).
    #[error("the password does not decrypt the private key")]
    Password,
    /// A certificate or trust store that cannot be used.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// A trust policy document that breaks the Notary Project trust policy rules.
    #[error("invalid trust policy: {0}")]
    Policy(String),
    /// A payload that is not what it claims to be.
    #[error("invalid signature payload: {0}")]
    Payload(String),
    /// The system's random number generator or a signing primitive failed.
    #[error("cryptographic failure: {0}")]
    Crypto(String),
}

/// Results of this module.
pub type TrustResult<T> = Result<T, TrustError>;

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
