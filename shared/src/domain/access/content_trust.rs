//! A project's content-trust configuration: which signatures it requires (Harbor's
//! `enable_content_trust_cosign` and `enable_content_trust` metadata) and, beyond Harbor, which keys,
//! certificates and Notation trust policy a signature must verify against to count.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::accessory::Requirement;

/// Key material is kept as the PEM (and JSON) text the admin gave, validated at the edge; the
/// domain only decides whether a signature is required and whether it must verify.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentTrust {
    /// Pulls need a cosign signature (Harbor's `enable_content_trust_cosign`).
    #[serde(default)]
    pub require_cosign: bool,
    /// Pulls need a Notation signature (Harbor's `enable_content_trust`).
    #[serde(default)]
    pub require_notation: bool,
    /// PEM public keys; when any, only a cosign signature one of them verifies counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cosign_keys: Vec<String>,
    /// PEM public keys of Rekor logs; when any, a cosign signature also needs a verified bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rekor_keys: Vec<String>,
    /// Notation trust stores by the name a trust policy uses (`ca:<name>`, `signingAuthority:<name>`),
    /// each a PEM bundle of certificates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notation_trust_stores: BTreeMap<String, String>,
    /// A Notation trust policy document (version 1.0); when set, only a Notation signature it
    /// accepts counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notation_trust_policy: Option<String>,
}

impl ContentTrust {
    pub fn requirement(&self, trust_revision: u64) -> Requirement {
        Requirement {
            cosign: self.require_cosign,
            notation: self.require_notation,
            verify_cosign: !self.cosign_keys.is_empty(),
            verify_notation: self.notation_trust_policy.is_some(),
            trust_revision,
        }
    }
}
