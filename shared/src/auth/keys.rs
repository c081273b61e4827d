//! The ES256 keys that sign registry tokens (RFC 7518 §3.4: ECDSA P-256 with SHA-256), named by
//! their RFC 7638 JWK thumbprint, and the ring that rotates them.
//!
//! Rotation: the LAST key in the ring signs; every key in the ring verifies. Add a new key, keep
//! the old one until the longest-lived token it signed has expired, then retire it.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{AuthError, AuthResult};

/// Length of an ES256 JWS signature: `r || s`, 32 bytes each (RFC 7518 §3.4).
pub const ES256_SIGNATURE_LEN: usize = 64;

/// An ECDSA P-256 private key and its key id.
#[derive(Clone)]
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
    x: String,
    y: String,
    kid: String,
}

/// The public half of a [`SigningKey`] as a JWK (RFC 7517, RFC 7518 §6.2.1), e.g. for a JWKS
/// document that lets another service verify Berth's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub y: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

impl SigningKey {
    /// A fresh key from the system's secure random number generator.
    pub fn generate() -> AuthResult<Self> {
        let key = p256::ecdsa::SigningKey::try_generate().map_err(|_| AuthError::Random)?;
        Self::from_key(key)
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) P-256 key, as written by
    /// [`SigningKey::to_pkcs8_pem`] or `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
    pub fn from_pkcs8_pem(pem: &str) -> AuthResult<Self> {
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| AuthError::Key("is not a PKCS#8 PEM P-256 private key"))?;
        Self::from_key(key)
    }

    /// The key as PKCS#8 PEM, wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> AuthResult<Zeroizing<String>> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| AuthError::Key("could not be encoded as PKCS#8 PEM"))
    }

    /// The key id: the RFC 7638 JWK thumbprint,
    /// base64url(SHA-256(`{"crv":"P-256","kty":"EC","x":..,"y":..}`)).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key that verifies this key's signatures.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> AuthResult<String> {
        self.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| AuthError::Key("public half could not be encoded as PEM"))
    }

    /// The public key as a JWK carrying its `kid`.
    pub fn public_jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "EC",
            crv: "P-256",
            x: self.x.clone(),
            y: self.y.clone(),
            kid: self.kid.clone(),
            alg: "ES256",
            use_: "sig",
        }
    }

    /// The ES256 signature of `message`: `r || s`.
    pub(super) fn sign(&self, message: &[u8]) -> AuthResult<[u8; ES256_SIGNATURE_LEN]> {
        let signature: Signature = self
            .key
            .try_sign(message)
            .map_err(|_| AuthError::Key("failed to sign"))?;
        Ok(signature.to_bytes().into())
    }

    /// Whether `signature` (`r || s`) is this key's signature of `message`.
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|sig| self.verifying_key().verify(message, &sig).is_ok())
    }

    fn from_key(key: p256::ecdsa::SigningKey) -> AuthResult<Self> {
        let point = key.verifying_key().to_sec1_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(AuthError::Key("has no affine public point"));
        };
        let x = Base64UrlUnpadded::encode_string(x);
        let y = Base64UrlUnpadded::encode_string(y);
        // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = Base64UrlUnpadded::encode_string(&Sha256::digest(canonical.as_bytes()));
        Ok(Self { key, x, y, kid })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The keys Berth signs and verifies tokens with, oldest first.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring of `keys`, oldest first: the last one signs.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        Self { keys }
    }

    /// Adds `key` as the newest: it signs from now on, and the older keys still verify.
    pub fn rotate(&mut self, key: SigningKey) {
        self.keys.push(key);
    }

    /// Drops the key named `kid` (once every token it signed has expired); whether it was there.
    pub fn retire(&mut self, kid: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.kid != kid);
        self.keys.len() != before
    }

    /// The key that signs new tokens: the newest.
    pub fn signing_key(&self) -> AuthResult<&SigningKey> {
        self.keys.last().ok_or(AuthError::NoSigningKey)
    }

    /// The key named `kid`, if the ring holds it.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The public halves of every key, for a JWKS document (`{"keys": [...]}`).
    pub fn public_jwks(&self) -> Vec<PublicJwk> {
        self.keys.iter().map(SigningKey::public_jwk).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_vectors as tv;

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint_an_independent_implementation_computes() {
        let key = SigningKey::from_pkcs8_pem(tv::P256_PKCS8_PEM).unwrap();
        assert_eq!(key.kid(), tv::P256_KID);
        let jwk = key.public_jwk();
        assert_eq!((jwk.x.as_str(), jwk.y.as_str()), (tv::P256_X, tv::P256_Y));
    }

    #[test]
    fn a_generated_key_survives_a_pem_round_trip_with_its_kid() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.kid(), key.kid());
        assert_eq!(back.verifying_key(), key.verifying_key());
        let signature = back.sign(b"message").unwrap();
        assert!(key.verifies(b"message", &signature));
    }

    #[test]
    fn generated_keys_differ_and_their_kids_are_43_url_safe_characters() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.kid(), b.kid());
        for kid in [a.kid(), b.kid()] {
            assert_eq!(kid.len(), 43);
            assert!(kid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }

    #[test]
    fn keys_that_are_not_pkcs8_p256_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("empty", ""),
            ("garbage", "not a key"),
            ("sec1 pem", tv::P256_SEC1_PEM),
            ("public key pem", tv::P256_PUBLIC_PEM),
            ("p-384 key", tv::P384_PKCS8_PEM),
            ("truncated", &tv::P256_PKCS8_PEM[..100]),
        ];
        for (what, pem) in cases {
            assert_eq!(
                SigningKey::from_pkcs8_pem(pem).unwrap_err(),
                AuthError::Key("is not a PKCS#8 PEM P-256 private key"),
                "{what}"
            );
        }
    }

    #[test]
    fn the_public_key_exports_as_spki_pem_and_jwk() {
        let key = SigningKey::from_pkcs8_pem(tv::P256_PKCS8_PEM).unwrap();
        assert_eq!(key.public_key_pem().unwrap(), tv::P256_PUBLIC_PEM);
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(
            jwk,
            serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": tv::P256_X, "y": tv::P256_Y,
                "kid": tv::P256_KID, "alg": "ES256", "use": "sig",
            })
        );
    }

    #[test]
    fn debug_output_shows_the_kid_and_no_key_material() {
        let key = SigningKey::from_pkcs8_pem(tv::P256_PKCS8_PEM).unwrap();
        let shown = format!("{key:?} {:?}", KeyRing::new(vec![key.clone()]));
        assert!(shown.contains(tv::P256_KID));
        let pem = key.to_pkcs8_pem().unwrap();
        let secret_hex = hex::encode(key.key.to_bytes());
        assert!(!shown.contains(&secret_hex));
        assert!(!pem.lines().skip(1).any(|line| shown.contains(line)));
    }

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        let signature = a.sign(b"message").unwrap();
        assert!(a.verifies(b"message", &signature));
        assert!(!a.verifies(b"massage", &signature));
        assert!(!b.verifies(b"message", &signature));
        assert!(!a.verifies(b"message", &signature[..63]));
        assert!(!a.verifies(b"message", &[0u8; ES256_SIGNATURE_LEN]));
    }

    #[test]
    fn the_newest_key_signs_and_every_key_is_found() {
        let old = SigningKey::generate().unwrap();
        let new = SigningKey::generate().unwrap();
        let mut ring = KeyRing::new(vec![old.clone()]);
        assert_eq!(ring.signing_key().unwrap().kid(), old.kid());
        ring.rotate(new.clone());
        assert_eq!(ring.signing_key().unwrap().kid(), new.kid());
        assert!(ring.find(old.kid()).is_some() && ring.find(new.kid()).is_some());
        assert_eq!(ring.public_jwks().len(), 2);
        assert!(ring.retire(old.kid()));
        assert!(!ring.retire(old.kid()));
        assert!(ring.find(old.kid()).is_none());
        assert_eq!(ring.keys().len(), 1);
    }

    #[test]
    fn an_empty_ring_has_no_signing_key() {
        assert_eq!(
            KeyRing::default().signing_key().unwrap_err(),
            AuthError::NoSigningKey
        );
    }
}
