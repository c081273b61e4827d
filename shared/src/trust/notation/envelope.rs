//! Notary Project signature envelopes (specs `signature-envelope-jws.md` and
//! `signature-envelope-cose.md`): parsing, header rules, and the signature check with the signing
//! certificate's key. Timestamp countersignatures (`io.cncf.notary.timestampSignature`) are ignored.

mod cose;
mod jws;
#[cfg(test)]
mod tests;

use aws_lc_rs::signature::{self as alg, VerificationAlgorithm};
use chrono::{DateTime, Utc};

use super::x509::{Cert, KeySpec};
use super::{COSE_MEDIA_TYPE, JWS_MEDIA_TYPE};

/// `cty` of every Notation payload.
pub(super) const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
const VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";

/// The signature algorithm, fixed by the signing key (Notary Project "Algorithm selection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl Algorithm {
    fn from_jws(name: &str) -> Option<Self> {
        Some(match name {
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "ES512" => Self::Es512,
            _ => return None,
        })
    }

    fn from_cose(label: i128) -> Option<Self> {
        Some(match label {
            -37 => Self::Ps256,
            -38 => Self::Ps384,
            -39 => Self::Ps512,
            -7 => Self::Es256,
            -35 => Self::Es384,
            -36 => Self::Es512,
            _ => return None,
        })
    }

    fn for_key(spec: KeySpec) -> Option<Self> {
        Some(match spec {
            KeySpec::Rsa(2048) => Self::Ps256,
            KeySpec::Rsa(3072) => Self::Ps384,
            KeySpec::Rsa(4096) => Self::Ps512,
            KeySpec::EcP256 => Self::Es256,
            KeySpec::EcP384 => Self::Es384,
            KeySpec::EcP521 => Self::Es512,
            KeySpec::Rsa(_) | KeySpec::Ed25519 => return None,
        })
    }

    /// RSASSA-PSS with MGF1 and salt = hash length; ECDSA signatures as `r || s` (JWS and COSE).
    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::Ps256 => &alg::RSA_PSS_2048_8192_SHA256,
            Self::Ps384 => &alg::RSA_PSS_2048_8192_SHA384,
            Self::Ps512 => &alg::RSA_PSS_2048_8192_SHA512,
            Self::Es256 => &alg::ECDSA_P256_SHA256_FIXED,
            Self::Es384 => &alg::ECDSA_P384_SHA384_FIXED,
            Self::Es512 => &alg::ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// `io.cncf.notary.signingScheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// `notary.x509`: trust stores of type `ca`; signing time is the signer's claim.
    X509,
    /// `notary.x509.signingAuthority`: trust stores of type `signingAuthority`; the signing time
    /// is vouched for by the authority.
    SigningAuthority,
}

impl Scheme {
    pub(super) fn trust_store_type(self) -> &'static str {
        match self {
            Scheme::X509 => "ca",
            Scheme::SigningAuthority => "signingAuthority",
        }
    }
}

/// A parsed envelope whose signature has not been checked yet.
pub(super) struct Envelope {
    pub(super) algorithm: Algorithm,
    pub(super) scheme: Scheme,
    pub(super) signing_time: DateTime<Utc>,
    pub(super) expiry: Option<DateTime<Utc>>,
    pub(super) payload: Vec<u8>,
    /// Leaf first.
    pub(super) chain: Vec<Cert>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Envelope {
    /// Parses `bytes` as the envelope format `media_type` names.
    pub(super) fn parse(bytes: &[u8], media_type: &str) -> Result<Self, String> {
        let parsed = match media_type {
            JWS_MEDIA_TYPE => jws::parse(bytes),
            COSE_MEDIA_TYPE => cose::parse(bytes),
            other => Err(format!(
                "media type {other} is neither {JWS_MEDIA_TYPE} nor {COSE_MEDIA_TYPE}"
            )),
        };
        parsed.map_err(|why| format!("the envelope is not a valid JWS or COSE signature: {why}"))
    }

    /// The signature verifies with the leaf certificate, whose key fits the declared algorithm.
    pub(super) fn check_signature(&self) -> Result<(), String> {
        let leaf = self.chain.first().ok_or("the envelope carries no certificate")?;
        let spec = leaf.key_spec()?;
        if Algorithm::for_key(spec) != Some(self.algorithm) {
            return Err(format!(
                "the signature algorithm {:?} does not fit the signing certificate's key ({spec:?})",
                self.algorithm
            ));
        }
        if !leaf.verifies(
            self.algorithm.verification(),
            &self.signing_input,
            &self.signature,
        ) {
            return Err("the signature does not verify with its signing certificate".to_owned());
        }
        Ok(())
    }
}

/// The signed attributes both formats carry, before the checks common to both.
struct SignedAttributes {
    algorithm: Option<Algorithm>,
    content_type: Option<String>,
    scheme: Option<String>,
    signing_time: Option<DateTime<Utc>>,
    authentic_signing_time: Option<DateTime<Utc>>,
    expiry: Option<DateTime<Utc>>,
    critical: Vec<String>,
    /// Names of every protected header present.
    present: Vec<String>,
}

impl SignedAttributes {
    fn into_envelope(
        self,
        payload: Vec<u8>,
        chain: Vec<Cert>,
        signing_input: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<Envelope, String> {
        let algorithm = self
            .algorithm
            .ok_or("the signature algorithm is missing or unsupported")?;
        if self.content_type.as_deref() != Some(PAYLOAD_CONTENT_TYPE) {
            return Err(format!("the payload content type is not {PAYLOAD_CONTENT_TYPE}"));
        }
        let scheme = match self.scheme.as_deref() {
            Some("notary.x509") => Scheme::X509,
            Some("notary.x509.signingAuthority") => Scheme::SigningAuthority,
            _ => return Err("the signing scheme is missing or unknown".to_owned()),
        };
        self.check_critical()?;
        let signing_time = match scheme {
            Scheme::X509 => self.signing_time.ok_or("the signing time is missing")?,
            Scheme::SigningAuthority => self
                .authentic_signing_time
                .ok_or("the authentic signing time is missing")?,
        };
        Ok(Envelope {
            algorithm,
            scheme,
            signing_time,
            expiry: self.expiry,
            payload,
            chain,
            signing_input,
            signature,
        })
    }

    /// `crit` lists the signing scheme, the expiry and the authentic signing time when present, and
    /// nothing that is absent or that this verifier does not understand (RFC 7515 §4.1.11).
    fn check_critical(&self) -> Result<(), String> {
        for required in [
            Some(SIGNING_SCHEME),
            self.expiry.map(|_| EXPIRY),
            self.authentic_signing_time.map(|_| AUTHENTIC_SIGNING_TIME),
        ]
        .into_iter()
        .flatten()
        {
            if !self.critical.iter().any(|c| c == required) {
                return Err(format!("{required} is not marked critical"));
            }
        }
        for critical in &self.critical {
            if !self.present.contains(critical) {
                return Err(format!("critical header {critical} is missing"));
            }
            if critical == VERIFICATION_PLUGIN || critical == VERIFICATION_PLUGIN_MIN_VERSION {
                return Err("the signature requires a verification plugin".to_owned());
            }
            if ![SIGNING_SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME].contains(&critical.as_str()) {
                return Err(format!("critical header {critical} is not understood"));
            }
        }
        Ok(())
    }
}
