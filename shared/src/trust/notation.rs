//! Notary Project (Notation) signatures: JWS and COSE envelopes over an OCI descriptor, judged by
//! a Notation trust policy and trust stores.
//!
//! Spec: notaryproject/specifications `specs/signature-specification.md`,
//! `specs/signature-envelope-{jws,cose}.md` and `specs/trust-store-trust-policy.md`
//! ("Signature Verification"), with notation-go's reading where the spec is loose.
//!
//! Not done (no I/O here): revocation (OCSP/CRL) — a warning says so when a certificate names a
//! revocation endpoint and the policy does not skip revocation; timestamp countersignatures (RFC
//! 3161) — a `notary.x509` chain must therefore be valid now; verification plugins — a signature
//! that requires one is rejected.

mod dn;
mod envelope;
mod policy;
#[cfg(test)]
mod tests;
mod x509;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use self::envelope::{Envelope, Scheme};
use self::x509::Cert;
use super::{TrustError, TrustResult, Verdict};

pub use policy::{
    Action, Check, Level, SignatureVerification, TrustPolicy, TrustPolicyStatement, POLICY_VERSION, WILDCARD,
    X509_SUBJECT_PREFIX,
};

/// `artifactType` (or config media type) of a Notation signature manifest.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// Media type of a JWS envelope layer.
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
/// Media type of a COSE envelope layer.
pub const COSE_MEDIA_TYPE: &str = "application/cose";

/// A named set of trusted certificates, as a trust policy names it (`ca:e2e`).
#[derive(Clone)]
pub struct TrustStore {
    /// `<type>:<name>`: type `ca` (for `notary.x509` signatures), `signingAuthority` (for
    /// `notary.x509.signingAuthority`) or `tsa`.
    pub name: String,
    certs: Vec<Cert>,
}

impl TrustStore {
    /// A store from PEM certificates (text around the `CERTIFICATE` blocks is ignored). Each must be
    /// a CA certificate or self-signed.
    pub fn from_pem(name: &str, pem_bundle: &str) -> TrustResult<Self> {
        policy::validate_store_name(name).map_err(TrustError::Certificate)?;
        let mut certs = Vec::new();
        for block in pem_blocks(pem_bundle) {
            let (label, der) = x509_cert::der::pem::decode_vec(block.as_bytes())
                .map_err(|e| TrustError::Certificate(format!("a PEM block is malformed: {e}")))?;
            if label != "CERTIFICATE" {
                continue;
            }
            let cert = Cert::from_der(&der).map_err(TrustError::Certificate)?;
            if !cert.may_anchor_trust() {
                return Err(TrustError::Certificate(format!(
                    "{} is neither a CA certificate nor self-signed",
                    cert.subject()
                )));
            }
            certs.push(cert);
        }
        if certs.is_empty() {
            return Err(TrustError::Certificate(format!(
                "trust store {name} holds no certificate"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            certs,
        })
    }

    /// How many certificates the store holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Always false: a store holds at least one certificate.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Subjects of the certificates (RFC 4514), e.g. to list a store.
    pub fn subjects(&self) -> Vec<String> {
        self.certs.iter().map(Cert::subject).collect()
    }

    fn holds(&self, cert: &Cert) -> bool {
        self.certs.iter().any(|trusted| trusted.der() == cert.der())
    }
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("name", &self.name)
            .field("subjects", &self.subjects())
            .finish()
    }
}

/// The BEGIN…END blocks of a PEM bundle.
fn pem_blocks(bundle: &str) -> Vec<&str> {
    const END: &str = "-----END ";
    let mut blocks = Vec::new();
    let mut rest = bundle;
    while let Some(start) = rest.find("-----BEGIN ") {
        let Some(end) = rest[start..].find(END).map(|i| start + i) else {
            break;
        };
        let Some(close) = rest[end + END.len()..]
            .find("-----")
            .map(|i| end + END.len() + i + 5)
        else {
            break;
        };
        blocks.push(&rest[start..close]);
        rest = &rest[close..];
    }
    blocks
}

/// The artifact a signature must name: its manifest descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub size: u64,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "targetArtifact")]
    target_artifact: Descriptor,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

/// Verifies one Notation signature envelope (the signature manifest's layer) for `target` in
/// `repository` (a repository path such as `library/app`).
///
/// The applicable statement: one whose registry scope `host[:port]/path` has `path == repository`
/// (the host is ignored: the registry may be reached under several names), else the `*` statement;
/// none → Rejected. Then, each with the level's enforce/log/skip action:
/// integrity (always enforced: the envelope parses, the signature verifies with the leaf of
/// x5c/x5chain, the chain is well formed, the payload's `targetArtifact` equals `target`'s digest,
/// media type and size), authenticity (a certificate of the chain is in a trust store of the
/// scheme's type that the statement lists; the leaf subject matches a trusted identity),
/// authentic timestamp (every certificate valid at `now` for `notary.x509`, at the authentic
/// signing time for `notary.x509.signingAuthority`), expiry (`io.cncf.notary.expiry` after `now`).
/// Level skip → `Verified { signer: "", warnings: ["verification skipped by trust policy <name>"] }`.
pub fn verify(
    envelope: &[u8],
    envelope_media_type: &str,
    target: &Target,
    repository: &str,
    policy: &TrustPolicy,
    stores: &[TrustStore],
    now: DateTime<Utc>,
) -> Verdict {
    let Some(statement) = policy.statement_for(repository) else {
        return Verdict::rejected(format!(
            "no trust policy statement applies to repository {repository}"
        ));
    };
    let verification = &statement.signature_verification;
    if verification.level == Level::Skip {
        let warning = format!("verification skipped by trust policy {}", statement.name);
        return Verdict::Verified {
            signer: String::new(),
            warnings: vec![warning],
        };
    }
    let envelope = match check_integrity(envelope, envelope_media_type, target) {
        Ok(envelope) => envelope,
        Err(reason) => return Verdict::Rejected { reason },
    };
    let mut warnings = Vec::new();
    let checks = [
        (
            Check::Authenticity,
            check_trust_stores(&envelope, statement, stores),
        ),
        (Check::Authenticity, check_identity(&envelope, statement)),
        (Check::AuthenticTimestamp, check_validity_periods(&envelope, now)),
        (Check::Expiry, check_expiry(&envelope, now)),
        (Check::Revocation, revocation_note(&envelope)),
    ];
    for (check, outcome) in checks {
        let Err(reason) = outcome else { continue };
        match verification.action(check) {
            Action::Enforce if check != Check::Revocation => return Verdict::Rejected { reason },
            Action::Skip => {}
            _ => warnings.push(reason),
        }
    }
    let signer = envelope.chain.first().map(Cert::subject).unwrap_or_default();
    Verdict::Verified { signer, warnings }
}

fn check_integrity(bytes: &[u8], media_type: &str, target: &Target) -> Result<Envelope, String> {
    let envelope = Envelope::parse(bytes, media_type)?;
    envelope.check_signature()?;
    x509::check_chain(&envelope.chain)?;
    let payload: Payload = serde_json::from_slice(&envelope.payload)
        .map_err(|e| format!("the signed payload is not a Notation payload: {e}"))?;
    let named = payload.target_artifact;
    if named.digest != target.digest || named.media_type != target.media_type || named.size != target.size {
        return Err(format!(
            "the signature names {} ({}, {} bytes), not this artifact",
            named.digest, named.media_type, named.size
        ));
    }
    Ok(envelope)
}

fn check_trust_stores(
    envelope: &Envelope,
    statement: &TrustPolicyStatement,
    stores: &[TrustStore],
) -> Result<(), String> {
    let wanted_type = envelope.scheme.trust_store_type();
    let named: Vec<&String> = statement
        .trust_stores
        .iter()
        .filter(|name| name.split_once(':').is_some_and(|(kind, _)| kind == wanted_type))
        .collect();
    let anchored = stores
        .iter()
        .filter(|store| named.contains(&&store.name))
        .any(|store| envelope.chain.iter().any(|cert| store.holds(cert)));
    if anchored {
        return Ok(());
    }
    match named.as_slice() {
        [] => Err(format!(
            "trust policy {} names no trust store of type {wanted_type}",
            statement.name
        )),
        [one] => Err(format!(
            "the certificate chain does not lead to trust store {one}"
        )),
        many => Err(format!(
            "the certificate chain does not lead to trust stores {}",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn check_identity(envelope: &Envelope, statement: &TrustPolicyStatement) -> Result<(), String> {
    let Some(identities) = statement.subject_identities() else {
        return Ok(());
    };
    let subject = envelope.chain.first().map(Cert::subject).unwrap_or_default();
    let matches = dn::parse(&subject)
        .is_ok_and(|leaf| identities.iter().any(|identity| dn::is_subset(identity, &leaf)));
    if matches {
        return Ok(());
    }
    Err(format!(
        "the signing certificate {subject} is not a trusted identity of trust policy {}",
        statement.name
    ))
}

fn check_validity_periods(envelope: &Envelope, now: DateTime<Utc>) -> Result<(), String> {
    let at = match envelope.scheme {
        Scheme::X509 => now,
        Scheme::SigningAuthority => envelope.signing_time,
    };
    match envelope.chain.iter().find(|cert| !cert.is_valid_at(at)) {
        None => Ok(()),
        Some(cert) => Err(format!(
            "certificate {} is not valid at {} (valid from {} to {})",
            cert.subject(),
            rfc3339(at),
            rfc3339(cert.not_before()),
            rfc3339(cert.not_after())
        )),
    }
}

fn check_expiry(envelope: &Envelope, now: DateTime<Utc>) -> Result<(), String> {
    match envelope.expiry {
        Some(expiry) if expiry <= now => Err(format!("the signature expired at {}", rfc3339(expiry))),
        _ => Ok(()),
    }
}

/// Revocation is never checked here; say so when it could have mattered.
fn revocation_note(envelope: &Envelope) -> Result<(), String> {
    if envelope.chain.iter().any(Cert::has_revocation_endpoints) {
        return Err("the revocation status of the certificate chain was not checked".to_owned());
    }
    Ok(())
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
