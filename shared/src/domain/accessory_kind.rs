//! The kinds of accessories (in Harbor's vocabulary) and how an OCI 1.1 referrer's type names one.
//! Apart from `accessory.rs` so events can name a kind without importing the linking rules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Notation's signature artifact type (also its config media type when pushed by tag schema).
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// cosign's artifact type for a signature pushed as an OCI 1.1 referrer.
pub const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// A sigstore bundle (cosign v3 and other sigstore clients); the version suffix varies.
pub const SIGSTORE_BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// What an accessory is, in Harbor's vocabulary where Harbor has a word for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessoryKind {
    #[serde(rename = "signature.cosign")]
    CosignSignature,
    #[serde(rename = "signature.notation")]
    NotationSignature,
    #[serde(rename = "attestation")]
    Attestation,
    #[serde(rename = "sbom")]
    Sbom,
    /// Any other referrer.
    #[serde(rename = "subject.accessory")]
    Other,
}

impl AccessoryKind {
    /// The kind of an OCI 1.1 referrer, from its artifact type (else its config media type).
    pub fn of_referrer(artifact_type: Option<&str>) -> AccessoryKind {
        let Some(t) = artifact_type else {
            return AccessoryKind::Other;
        };
        let t = t.to_ascii_lowercase();
        if t == NOTATION_SIGNATURE {
            AccessoryKind::NotationSignature
        } else if t == COSIGN_SIGNATURE || t.starts_with(SIGSTORE_BUNDLE_PREFIX) {
            AccessoryKind::CosignSignature
        } else if t.contains("in-toto") || t.contains("attestation") || t.contains("dsse") {
            AccessoryKind::Attestation
        } else if t.contains("spdx") || t.contains("cyclonedx") || t.contains("sbom") {
            AccessoryKind::Sbom
        } else {
            AccessoryKind::Other
        }
    }

    pub fn is_signature(self) -> bool {
        matches!(
            self,
            AccessoryKind::CosignSignature | AccessoryKind::NotationSignature
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessoryKind::CosignSignature => "signature.cosign",
            AccessoryKind::NotationSignature => "signature.notation",
            AccessoryKind::Attestation => "attestation",
            AccessoryKind::Sbom => "sbom",
            AccessoryKind::Other => "subject.accessory",
        }
    }
}

impl fmt::Display for AccessoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
