//! Accessories: artifacts linked to the artifact they describe (their subject) — signatures,
//! attestations, SBOMs — found either by the OCI 1.1 `subject` field or by cosign's tag scheme
//! (`sha256-<hex>.sig|.att|.sbom` in the subject's repository). Pure: which links a push makes, and
//! whether an artifact carries the signatures its project requires.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::event::Event;
use super::manifest::Content;
use super::name::{RepoName, Tag};

pub use super::accessory_kind::{
    AccessoryKind, COSIGN_SIGNATURE, NOTATION_SIGNATURE, SIGSTORE_BUNDLE_PREFIX,
};

/// A tag of cosign's scheme: the subject it names and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeTag {
    pub subject: Digest,
    pub kind: AccessoryKind,
}

impl SchemeTag {
    /// `sha256-<hex>.sig` (signature), `.att` (attestation), `.sbom`.
    pub fn parse(tag: &Tag) -> Option<SchemeTag> {
        let (stem, suffix) = tag.as_str().rsplit_once('.')?;
        let kind = match suffix {
            "sig" => AccessoryKind::CosignSignature,
            "att" => AccessoryKind::Attestation,
            "sbom" => AccessoryKind::Sbom,
            _ => return None,
        };
        let (algorithm, hex) = stem.split_once('-')?;
        let subject = Digest::from_str(&format!("{algorithm}:{hex}")).ok()?;
        Some(SchemeTag { subject, kind })
    }

    /// The kind of the accessory a manifest of `content` is under this tag: what the tag says only
    /// when the layers have that shape (a `.sig` needs well-formed cosign signature layers);
    /// anything else is an unknown accessory, which never counts as a signature.
    pub fn kind_of(&self, content: Content) -> AccessoryKind {
        let shaped = match self.kind {
            AccessoryKind::CosignSignature => content == Content::CosignSignature,
            AccessoryKind::Attestation => content == Content::Attestation,
            AccessoryKind::Sbom => content == Content::Sbom,
            _ => false,
        };
        if shaped {
            self.kind
        } else {
            AccessoryKind::Other
        }
    }
}

/// Whether a manifest is exempt from its project's signature requirement: only an accessory (linked
/// to a subject the repository holds) that carries nothing a runtime could run. A manifest with
/// filesystem layers, or an index, needs its own signature, subject or not.
pub fn exempt_from_signatures(is_linked_accessory: bool, content: Content) -> bool {
    is_linked_accessory && !content.runnable()
}

/// A link as the accessories view holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessoryRecord {
    pub digest: Digest,
    pub kind: AccessoryKind,
    /// The cosign scheme tag it was found by; absent for an OCI 1.1 referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
    pub linked_at: DateTime<Utc>,
}

/// A signature's verdict under one revision of its project's trust configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictRecord {
    /// The trust configuration's revision it was reached under; another revision re-verifies.
    pub trust_revision: u64,
    pub verified: bool,
    /// Who signed, when verified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signer: String,
    /// Why not, when rejected; warnings when verified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// A candidate link: `accessory` describes `subject`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub subject: Digest,
    pub accessory: Digest,
    pub kind: AccessoryKind,
    pub tag: Option<Tag>,
}

/// What linking depends on, as loaded by the application.
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// Of the candidates' subjects, those the repository holds (or that this push adds).
    pub present_subjects: BTreeSet<Digest>,
    /// Of the candidates, the (subject, accessory) pairs already linked.
    pub linked: BTreeSet<(Digest, Digest)>,
}

/// The `AccessoryLinked` events for the candidates whose subject is present and that are not linked
/// yet: a signature pushed before its subject links when the subject arrives.
pub fn link(repository: &RepoName, candidates: &[Link], state: &LinkState) -> Vec<Event> {
    let mut seen = BTreeSet::new();
    (candidates.iter())
        .filter(|c| state.present_subjects.contains(&c.subject) && c.subject != c.accessory)
        .filter(|c| !state.linked.contains(&(c.subject.clone(), c.accessory.clone())))
        .filter(|c| seen.insert((c.subject.clone(), c.accessory.clone())))
        .map(|c| Event::AccessoryLinked {
            repository: repository.clone(),
            subject: c.subject.clone(),
            digest: c.accessory.clone(),
            kind: c.kind,
            via_tag: c.tag.clone(),
        })
        .collect()
}

/// Which signatures a project requires, and whether it verifies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requirement {
    pub cosign: bool,
    pub notation: bool,
    /// The project trusts specific cosign keys: only a verified cosign signature counts.
    pub verify_cosign: bool,
    /// The project has a Notation trust policy: only a verified Notation signature counts.
    pub verify_notation: bool,
    pub trust_revision: u64,
}

impl Requirement {
    pub fn enforced(&self) -> bool {
        self.cosign || self.notation
    }

    /// Whether a signature of `kind` counts only once verified (the project trusts specific keys).
    pub fn verifies(&self, kind: AccessoryKind) -> bool {
        match kind {
            AccessoryKind::CosignSignature => self.verify_cosign,
            AccessoryKind::NotationSignature => self.verify_notation,
            _ => false,
        }
    }
}

/// A signature of the artifact and its verdict, if one was reached under the current revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureState {
    pub kind: AccessoryKind,
    pub verdict: Option<VerdictRecord>,
}

/// Why an artifact may not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyViolation(pub String);

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the artifact's signatures satisfy the requirement: each required kind needs one
/// signature that counts — present (no trusted keys) or verified under the current revision.
pub fn judge(requirement: &Requirement, signatures: &[SignatureState]) -> Result<(), PolicyViolation> {
    for (required, kind, tool) in [
        (requirement.cosign, AccessoryKind::CosignSignature, "cosign"),
        (requirement.notation, AccessoryKind::NotationSignature, "notation"),
    ] {
        if !required {
            continue;
        }
        let of_kind: Vec<&SignatureState> = signatures.iter().filter(|s| s.kind == kind).collect();
        if of_kind.is_empty() {
            return Err(PolicyViolation(format!("The image is not signed by {tool}.")));
        }
        if !requirement.verifies(kind) {
            continue;
        }
        let current: Vec<&VerdictRecord> = (of_kind.iter())
            .filter_map(|s| s.verdict.as_ref())
            .filter(|v| v.trust_revision == requirement.trust_revision)
            .collect();
        if current.iter().any(|v| v.verified) {
            continue;
        }
        let reasons: BTreeSet<&str> = (current.iter())
            .map(|v| v.detail.as_str())
            .filter(|d| !d.is_empty())
            .collect();
        let why = if reasons.is_empty() {
            "no signature has been verified".to_string()
        } else {
            reasons.into_iter().collect::<Vec<_>>().join("; ")
        };
        return Err(PolicyViolation(format!(
            "The image is not signed by a key the project trusts for {tool}: {why}."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Algorithm;

    fn d(s: &str) -> Digest {
        Digest::compute(Algorithm::Sha256, s.as_bytes())
    }

    fn verdict(revision: u64, verified: bool, detail: &str) -> Option<VerdictRecord> {
        Some(VerdictRecord {
            trust_revision: revision,
            verified,
            signer: String::new(),
            detail: detail.to_string(),
            at: DateTime::UNIX_EPOCH,
        })
    }

    fn cosign(v: Option<VerdictRecord>) -> SignatureState {
        SignatureState {
            kind: AccessoryKind::CosignSignature,
            verdict: v,
        }
    }

    #[test]
    fn referrers_are_typed_by_artifact_type() {
        use AccessoryKind as K;
        let cases = [
            (Some(NOTATION_SIGNATURE), K::NotationSignature),
            (Some(COSIGN_SIGNATURE), K::CosignSignature),
            (
                Some("application/vnd.dev.sigstore.bundle.v0.3+json"),
                K::CosignSignature,
            ),
            (Some("application/vnd.in-toto+json"), K::Attestation),
            (Some("application/spdx+json"), K::Sbom),
            (Some("application/vnd.cyclonedx+json"), K::Sbom),
            (Some("application/vnd.example.thing"), K::Other),
            (None, K::Other),
        ];
        for (artifact_type, kind) in cases {
            assert_eq!(
                AccessoryKind::of_referrer(artifact_type),
                kind,
                "{artifact_type:?}"
            );
        }
    }

    #[test]
    fn cosign_scheme_tags_name_their_subject() {
        let subject = d("image");
        let sig: Tag = format!("{}.sig", subject.tag_form()).parse().unwrap();
        assert_eq!(
            SchemeTag::parse(&sig),
            Some(SchemeTag {
                subject: subject.clone(),
                kind: AccessoryKind::CosignSignature
            })
        );
        let att: Tag = format!("{}.att", subject.tag_form()).parse().unwrap();
        assert_eq!(SchemeTag::parse(&att).unwrap().kind, AccessoryKind::Attestation);
        for plain in ["latest", "v1.sig", "sha256-abc.sig", "sha256-x.sbom2"] {
            assert_eq!(SchemeTag::parse(&plain.parse().unwrap()), None, "{plain}");
        }
    }

    #[test]
    fn given_an_absent_subject_nothing_links_until_it_arrives() {
        let repo: RepoName = "library/app".parse().unwrap();
        let candidate = Link {
            subject: d("image"),
            accessory: d("sig"),
            kind: AccessoryKind::CosignSignature,
            tag: None,
        };
        assert!(link(&repo, std::slice::from_ref(&candidate), &LinkState::default()).is_empty());
        let present = LinkState {
            present_subjects: [d("image")].into(),
            ..LinkState::default()
        };
        let events = link(&repo, &[candidate.clone(), candidate.clone()], &present);
        assert!(matches!(&events[..], [Event::AccessoryLinked { digest, .. }] if *digest == d("sig")));
        let linked = LinkState {
            linked: [(d("image"), d("sig"))].into(),
            ..present
        };
        assert!(link(&repo, &[candidate], &linked).is_empty());
    }

    #[test]
    fn without_trusted_keys_a_present_signature_counts() {
        let requirement = Requirement {
            cosign: true,
            ..Requirement::default()
        };
        assert_eq!(
            judge(&requirement, &[]).unwrap_err().0,
            "The image is not signed by cosign."
        );
        assert!(judge(&requirement, &[cosign(None)]).is_ok());
        let notation = SignatureState {
            kind: AccessoryKind::NotationSignature,
            verdict: None,
        };
        assert!(judge(&requirement, std::slice::from_ref(&notation)).is_err());
        let both = Requirement {
            notation: true,
            ..requirement
        };
        assert_eq!(
            judge(&both, &[cosign(None)]).unwrap_err().0,
            "The image is not signed by notation."
        );
        assert!(judge(&both, &[cosign(None), notation]).is_ok());
        assert!(judge(&Requirement::default(), &[]).is_ok());
    }

    #[test]
    fn with_trusted_keys_only_a_verdict_of_the_current_revision_counts() {
        let requirement = Requirement {
            cosign: true,
            verify_cosign: true,
            trust_revision: 7,
            ..Requirement::default()
        };
        assert!(judge(&requirement, &[cosign(verdict(7, true, ""))]).is_ok());
        let stale = judge(&requirement, &[cosign(verdict(6, true, ""))]).unwrap_err();
        assert!(stale.0.contains("no signature has been verified"), "{stale}");
        let rejected = judge(&requirement, &[cosign(verdict(7, false, "wrong key"))]).unwrap_err();
        assert_eq!(
            rejected.0,
            "The image is not signed by a key the project trusts for cosign: wrong key."
        );
        assert!(judge(
            &requirement,
            &[
                cosign(verdict(7, false, "wrong key")),
                cosign(verdict(7, true, ""))
            ]
        )
        .is_ok());
    }

    #[test]
    fn a_scheme_tag_gives_its_kind_only_to_manifests_of_that_shape() {
        use AccessoryKind as K;
        let subject = d("image").tag_form();
        let cases = [
            ("sig", Content::CosignSignature, K::CosignSignature),
            ("sig", Content::Other, K::Other),
            ("sig", Content::Attestation, K::Other),
            ("sig", Content::Filesystem, K::Other),
            ("sig", Content::Index, K::Other),
            ("att", Content::Attestation, K::Attestation),
            ("att", Content::CosignSignature, K::Other),
            ("sbom", Content::Sbom, K::Sbom),
            ("sbom", Content::Filesystem, K::Other),
        ];
        for (suffix, content, kind) in cases {
            let tag: Tag = format!("{subject}.{suffix}").parse().unwrap();
            let scheme = SchemeTag::parse(&tag).unwrap();
            assert_eq!(scheme.kind_of(content), kind, "{suffix} {content:?}");
        }
    }

    #[test]
    fn only_a_linked_accessory_without_runnable_content_is_exempt() {
        let cases = [
            (true, Content::CosignSignature, true),
            (true, Content::Attestation, true),
            (true, Content::Sbom, true),
            (true, Content::Other, true),
            (true, Content::Filesystem, false),
            (true, Content::Index, false),
            (false, Content::CosignSignature, false),
            (false, Content::Other, false),
            (false, Content::Filesystem, false),
        ];
        for (linked, content, exempt) in cases {
            assert_eq!(
                exempt_from_signatures(linked, content),
                exempt,
                "linked {linked}, {content:?}"
            );
        }
    }
}
