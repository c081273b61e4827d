//! The X.509 side of the `notary.x509` signature schemes (Notary Project signature specification,
//! "Certificate requirements"): parsing, key specs, chain structure and validity periods.

use aws_lc_rs::signature::{self as alg, UnparsedPublicKey, VerificationAlgorithm};
use chrono::{DateTime, Utc};
use const_oid::db::{rfc5912 as oid, rfc8410};
use const_oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::Certificate;

/// A parsed certificate together with its DER bytes.
#[derive(Clone)]
pub(super) struct Cert {
    der: Vec<u8>,
    cert: Certificate,
}

/// The key of a signing certificate, which fixes the signature algorithm (Notary Project
/// signature specification, "Algorithm selection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeySpec {
    Rsa(u32),
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

impl Cert {
    pub(super) fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert = Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    pub(super) fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject as an RFC 4514 string, most specific attribute first
    /// (`CN=e2e,O=Notary,L=Seattle,ST=WA,C=US`), as Notation prints it.
    pub(super) fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate().subject() == self.cert.tbs_certificate().issuer()
    }

    pub(super) fn not_before(&self) -> DateTime<Utc> {
        to_chrono(
            self.cert
                .tbs_certificate()
                .validity()
                .not_before
                .to_unix_duration(),
        )
    }

    pub(super) fn not_after(&self) -> DateTime<Utc> {
        to_chrono(
            self.cert
                .tbs_certificate()
                .validity()
                .not_after
                .to_unix_duration(),
        )
    }

    pub(super) fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    fn spki_der(&self) -> Result<Vec<u8>, String> {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| e.to_string())
    }

    fn public_key_bits(&self) -> &[u8] {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
    }

    pub(super) fn key_spec(&self) -> Result<KeySpec, String> {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        match spki.algorithm.oid {
            oid::RSA_ENCRYPTION => alg::RsaParameters::public_modulus_len(self.public_key_bits())
                .map(KeySpec::Rsa)
                .map_err(|_| "the RSA public key is malformed".to_owned()),
            oid::ID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(oid::SECP_256_R_1) => Ok(KeySpec::EcP256),
                    Some(oid::SECP_384_R_1) => Ok(KeySpec::EcP384),
                    Some(oid::SECP_521_R_1) => Ok(KeySpec::EcP521),
                    _ => Err("the certificate's elliptic curve is not supported".to_owned()),
                }
            }
            rfc8410::ID_ED_25519 => Ok(KeySpec::Ed25519),
            other => Err(format!(
                "the certificate's key algorithm {other} is not supported"
            )),
        }
    }

    /// Does `signature` verify over `message` with this certificate's key under `algorithm`?
    pub(super) fn verifies(
        &self,
        algorithm: &'static dyn VerificationAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let key = match self.key_spec() {
            Ok(KeySpec::Ed25519) => self.public_key_bits().to_vec(),
            _ => match self.spki_der() {
                Ok(spki) => spki,
                Err(_) => return false,
            },
        };
        UnparsedPublicKey::new(algorithm, key)
            .verify(message, signature)
            .is_ok()
    }

    /// Was this certificate signed by `issuer`'s key (and does it name `issuer` as its issuer)?
    fn is_issued_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        let (Ok(tbs), Ok(spec)) = (raw_tbs(&self.der), issuer.key_spec()) else {
            return false;
        };
        let signature = self.cert.signature().raw_bytes();
        certificate_algorithms(self.cert.signature_algorithm().oid, spec)
            .iter()
            .any(|algorithm| issuer.verifies(*algorithm, tbs, signature))
    }

    fn key_usage(&self) -> Option<KeyUsage> {
        self.cert
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .ok()
            .flatten()
            .map(|(_, ku)| ku)
    }

    fn is_ca(&self) -> bool {
        let constraints = self.cert.tbs_certificate().get_extension::<BasicConstraints>();
        matches!(constraints, Ok(Some((_, BasicConstraints { ca: true, .. }))))
    }

    /// A trust store holds CA certificates or self-signed (leaf) certificates.
    pub(super) fn may_anchor_trust(&self) -> bool {
        self.is_ca() || self.is_self_issued()
    }

    /// Does this certificate name a CRL distribution point or an OCSP responder?
    pub(super) fn has_revocation_endpoints(&self) -> bool {
        self.cert
            .tbs_certificate()
            .extensions()
            .is_some_and(|extensions| {
                extensions.iter().any(|ext| {
                    ext.extn_id == oid::ID_CE_CRL_DISTRIBUTION_POINTS
                        || ext.extn_id == oid::ID_PE_AUTHORITY_INFO_ACCESS
                })
            })
    }

    fn check_signing_certificate(&self) -> Result<(), String> {
        let subject = self.subject();
        if self.is_ca() {
            return Err(format!("the signing certificate {subject} is a CA certificate"));
        }
        if self.key_usage().is_some_and(|ku| !ku.digital_signature()) {
            return Err(format!(
                "the signing certificate {subject} may not make digital signatures"
            ));
        }
        let eku = self.cert.tbs_certificate().get_extension::<ExtendedKeyUsage>();
        match eku {
            Ok(None) => Ok(()),
            Ok(Some((_, ExtendedKeyUsage(usages)))) if usages.contains(&oid::ID_KP_CODE_SIGNING) => Ok(()),
            _ => Err(format!(
                "the signing certificate {subject} is not a code-signing certificate"
            )),
        }
    }

    fn check_issuing_certificate(&self) -> Result<(), String> {
        if !self.is_ca() || self.key_usage().is_some_and(|ku| !ku.key_cert_sign()) {
            return Err(format!(
                "certificate {} is not a CA certificate, yet issues another",
                self.subject()
            ));
        }
        Ok(())
    }
}

/// Integrity of a signing chain (leaf first): the leaf may sign code, each certificate is issued
/// by the next, issuers are CAs, and the chain ends with a self-signed root.
pub(super) fn check_chain(chain: &[Cert]) -> Result<(), String> {
    let (leaf, root) = match (chain.first(), chain.last()) {
        (Some(leaf), Some(root)) => (leaf, root),
        _ => return Err("the envelope carries no certificate".to_owned()),
    };
    leaf.check_signing_certificate()?;
    for pair in chain.windows(2) {
        let [child, issuer] = pair else { continue };
        issuer.check_issuing_certificate()?;
        if !child.is_issued_by(issuer) {
            return Err(format!(
                "certificate {} is not issued by {}",
                child.subject(),
                issuer.subject()
            ));
        }
    }
    if !root.is_issued_by(root) {
        return Err(format!(
            "the certificate chain ends with {}, which is not a self-signed root",
            root.subject()
        ));
    }
    Ok(())
}

/// Verification algorithms for a certificate signature of algorithm `signature_oid` by a key of
/// `spec`. RSASSA-PSS parameters are not decoded: each hash is tried (salt = hash length).
fn certificate_algorithms(
    signature_oid: ObjectIdentifier,
    spec: KeySpec,
) -> Vec<&'static dyn VerificationAlgorithm> {
    use KeySpec::*;
    match (signature_oid, spec) {
        (oid::SHA_256_WITH_RSA_ENCRYPTION, Rsa(_)) => vec![&alg::RSA_PKCS1_2048_8192_SHA256],
        (oid::SHA_384_WITH_RSA_ENCRYPTION, Rsa(_)) => vec![&alg::RSA_PKCS1_2048_8192_SHA384],
        (oid::SHA_512_WITH_RSA_ENCRYPTION, Rsa(_)) => vec![&alg::RSA_PKCS1_2048_8192_SHA512],
        (oid::ID_RSASSA_PSS, Rsa(_)) => {
            vec![
                &alg::RSA_PSS_2048_8192_SHA256,
                &alg::RSA_PSS_2048_8192_SHA384,
                &alg::RSA_PSS_2048_8192_SHA512,
            ]
        }
        (oid::ECDSA_WITH_SHA_256, EcP256) => vec![&alg::ECDSA_P256_SHA256_ASN1],
        (oid::ECDSA_WITH_SHA_384, EcP256) => vec![&alg::ECDSA_P256_SHA384_ASN1],
        (oid::ECDSA_WITH_SHA_512, EcP256) => vec![&alg::ECDSA_P256_SHA512_ASN1],
        (oid::ECDSA_WITH_SHA_256, EcP384) => vec![&alg::ECDSA_P384_SHA256_ASN1],
        (oid::ECDSA_WITH_SHA_384, EcP384) => vec![&alg::ECDSA_P384_SHA384_ASN1],
        (oid::ECDSA_WITH_SHA_512, EcP384) => vec![&alg::ECDSA_P384_SHA512_ASN1],
        (oid::ECDSA_WITH_SHA_256, EcP521) => vec![&alg::ECDSA_P521_SHA256_ASN1],
        (oid::ECDSA_WITH_SHA_384, EcP521) => vec![&alg::ECDSA_P521_SHA384_ASN1],
        (oid::ECDSA_WITH_SHA_512, EcP521) => vec![&alg::ECDSA_P521_SHA512_ASN1],
        (rfc8410::ID_ED_25519, Ed25519) => vec![&alg::ED25519],
        _ => Vec::new(),
    }
}

/// The exact DER bytes of the TBSCertificate: what the issuer signed.
fn raw_tbs(cert_der: &[u8]) -> Result<&[u8], x509_cert::der::Error> {
    let mut reader = SliceReader::new(cert_der)?;
    Header::decode(&mut reader)?;
    reader.tlv_bytes()
}

fn to_chrono(since_epoch: std::time::Duration) -> DateTime<Utc> {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
