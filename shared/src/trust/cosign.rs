//! cosign key-pair signatures ("simple signing"), as `cosign sign --key` writes them.
//!
//! Spec: sigstore/cosign `specs/SIGNATURE_SPEC.md` and containers/image
//! `docs/containers-signature.5.md` (the simple-signing payload). A signature is one layer of media
//! type [`SIMPLE_SIGNING_MEDIA_TYPE`] in the manifest tagged `sha256-<subject hex>.sig` (or a
//! referrer): the layer blob is the payload, the [`SIGNATURE_ANNOTATION`] holds base64 of the
//! signature over the payload's exact bytes, and [`BUNDLE_ANNOTATION`] may hold the Rekor bundle.
//!
//! Key algorithms, as cosign verifies them: ECDSA P-256/SHA-256, P-384 (SHA-384, or SHA-256 as
//! `cosign verify` hashes by default), P-521/SHA-512, RSA PKCS#1 v1.5/SHA-256, and pure Ed25519.

mod keys;
mod rekor;
#[cfg(test)]
mod tests;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

pub use keys::{KeyPair, PublicKey};

use super::{TrustError, TrustResult, Verdict};

/// Media type of a cosign signature layer (its blob is the simple-signing payload), and the layer
/// annotation holding base64 of the signature over the payload: defined once, in the domain, which
/// also uses them to tell a signature manifest by its shape.
pub use crate::domain::manifest::{
    COSIGN_SIGNATURE_ANNOTATION as SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING as SIMPLE_SIGNING_MEDIA_TYPE,
};
/// Layer annotation holding the Rekor bundle (JSON), when the signature was logged.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// `critical.type` of every cosign container image signature payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// What a simple-signing payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.image.docker-manifest-digest`: the signed manifest, `sha256:<hex>`.
    pub docker_manifest_digest: String,
    /// `critical.identity.docker-reference`: the repository the signer named (no tag or digest).
    pub docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct PayloadDoc {
    critical: Critical,
    // cosign writes `null`; annotations (`-a key=value`) land here as an object.
    optional: Option<serde_json::Value>,
}

// Field order is the serialization order: the order cosign's Go structs declare them in.
#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Reads a simple-signing payload and checks `critical.type` is [`SIMPLE_SIGNING_TYPE`].
pub fn parse_payload(payload: &[u8]) -> TrustResult<SimpleSigning> {
    let doc: PayloadDoc = serde_json::from_slice(payload)
        .map_err(|e| TrustError::Payload(format!("not a cosign simple-signing document: {e}")))?;
    if doc.critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(TrustError::Payload(format!(
            "critical.type is {:?}, not {SIMPLE_SIGNING_TYPE:?}",
            doc.critical.kind
        )));
    }
    Ok(SimpleSigning {
        docker_manifest_digest: doc.critical.image.docker_manifest_digest,
        docker_reference: doc.critical.identity.docker_reference,
    })
}

/// cosign's exact payload bytes for a signature of `digest` at `docker_reference` (the repository,
/// without tag or digest), as `cosign sign` writes them:
/// `{"critical":{"identity":{"docker-reference":..},"image":{"docker-manifest-digest":..},"type":"cosign container image signature"},"optional":null}`.
pub fn payload_for(docker_reference: &str, digest: &str) -> Vec<u8> {
    let doc = PayloadDoc {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_owned(),
            },
            image: Image {
                docker_manifest_digest: digest.to_owned(),
            },
            kind: SIMPLE_SIGNING_TYPE.to_owned(),
        },
        optional: None,
    };
    // Serializing plain structs of strings cannot fail; an empty payload would never verify anyway.
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// One cosign signature = one simple-signing layer: the layer blob's bytes, its signature
/// annotation, its optional bundle annotation.
#[derive(Debug, Clone, Copy)]
pub struct Signature<'a> {
    pub payload: &'a [u8],
    pub signature_b64: &'a str,
    pub bundle_json: Option<&'a str>,
}

/// Verified iff: the payload parses, its docker-manifest-digest equals `subject_digest`
/// (`sha256:<hex>`), the signature verifies over the exact payload bytes with one of `keys`, and —
/// when `rekor_keys` is non-empty — a bundle is present whose SignedEntryTimestamp verifies over the
/// canonical JSON of `bundle.Payload` with one of `rekor_keys` and whose hashedrekord body matches
/// this signature (sha256 of the payload, the signature, and the verifying key).
///
/// The signer is the verifying key's [`PublicKey::fingerprint`]. `docker-reference` is not checked
/// here: a registry reaches one repository under several names (the caller may compare it).
pub fn verify(
    sig: &Signature,
    subject_digest: &str,
    keys: &[PublicKey],
    rekor_keys: &[PublicKey],
) -> Verdict {
    let claims = match parse_payload(sig.payload) {
        Ok(claims) => claims,
        Err(e) => return Verdict::rejected(format!("the signature payload is unusable: {e}")),
    };
    if claims.docker_manifest_digest != subject_digest {
        return Verdict::rejected(format!(
            "the signature names {}, not this artifact ({subject_digest})",
            claims.docker_manifest_digest
        ));
    }
    let Ok(signature) = Base64::decode_vec(sig.signature_b64.trim()) else {
        return Verdict::rejected("the signature annotation is not base64");
    };
    let Some(key) = keys.iter().find(|key| key.verifies(sig.payload, &signature)) else {
        return Verdict::rejected("no trusted key verifies the signature");
    };
    if !rekor_keys.is_empty() {
        let Some(bundle) = sig.bundle_json else {
            return Verdict::rejected("the signature has no Rekor bundle, and the policy requires one");
        };
        if let Err(reason) = rekor::check_bundle(bundle, sig.payload, &signature, key, rekor_keys) {
            return Verdict::Rejected { reason };
        }
    }
    Verdict::Verified {
        signer: key.fingerprint(),
        warnings: Vec::new(),
    }
}
