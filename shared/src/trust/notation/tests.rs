//! Notation verification against the real `notation` output in `tests/vectors/notation` (its
//! READMEs state the verdicts asserted here). Envelopes and subjects are read from the vectors' OCI
//! layouts: the signature manifest → its layer (the envelope) and its `subject` (the target).

use std::path::PathBuf;

use chrono::TimeZone;
use serde_json::Value as Json;

use super::*;

const E2E: &str = "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US";
const ALPINE: &str = "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US";
const REPOSITORY: &str = "library/app";
const EXPIRED: &str = "the signature expired at 2023-06-27T05:21:21Z";
const NOT_IN_STORE: &str = "the certificate chain does not lead to trust store ca:e2e";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/notation")
}

fn read(path: &str) -> Vec<u8> {
    let full = vectors().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn text(path: &str) -> String {
    String::from_utf8(read(path)).unwrap()
}

fn blob(folder: &str, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    read(&format!("{folder}/oci-layout/blobs/sha256/{hex}"))
}

/// A signature found in an OCI layout: the envelope layer and the descriptor it signs.
struct Signed {
    envelope: Vec<u8>,
    media_type: String,
    digest: String,
    subject_media_type: String,
    size: u64,
}

impl Signed {
    fn target(&self) -> Target<'_> {
        Target {
            digest: &self.digest,
            media_type: &self.subject_media_type,
            size: self.size,
        }
    }
}

/// The one signature manifest of `folder`'s layout (config media type = the Notation signature).
fn signed(folder: &str) -> Signed {
    let index: Json = serde_json::from_slice(&read(&format!("{folder}/oci-layout/index.json"))).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    let signature = manifests
        .iter()
        .filter(|d| d["mediaType"] == "application/vnd.oci.image.manifest.v1+json")
        .map(|d| serde_json::from_slice::<Json>(&blob(folder, d["digest"].as_str().unwrap())).unwrap())
        .find(|m| m["config"]["mediaType"] == SIGNATURE_ARTIFACT_TYPE)
        .unwrap();
    let layer = &signature["layers"][0];
    let subject = &signature["subject"];
    Signed {
        envelope: blob(folder, layer["digest"].as_str().unwrap()),
        media_type: layer["mediaType"].as_str().unwrap().to_owned(),
        digest: subject["digest"].as_str().unwrap().to_owned(),
        subject_media_type: subject["mediaType"].as_str().unwrap().to_owned(),
        size: subject["size"].as_u64().unwrap(),
    }
}

/// notation-go's JWS or COSE envelope over the layout's `v2` manifest (described by index.json).
fn notation_go(file: &str, media_type: &str) -> Signed {
    let folder = "notation-go-jws-cose";
    let index: Json = serde_json::from_slice(&read(&format!("{folder}/oci-layout/index.json"))).unwrap();
    let manifest = &index["manifests"][0];
    let digest = manifest["digest"].as_str().unwrap().to_owned();
    assert_eq!(crate::trust::sha256_digest(&blob(folder, &digest)), digest);
    Signed {
        envelope: read(&format!("{folder}/{file}")),
        media_type: media_type.to_owned(),
        digest,
        subject_media_type: manifest["mediaType"].as_str().unwrap().to_owned(),
        size: manifest["size"].as_u64().unwrap(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn e2e_store() -> TrustStore {
    TrustStore::from_pem("ca:e2e", &text("jws-valid/e2e.crt")).unwrap()
}

fn alpine_store(name: &str) -> TrustStore {
    TrustStore::from_pem(name, &text("notation-go-jws-cose/alpine-signing-cert.pem")).unwrap()
}

fn strict() -> TrustPolicy {
    TrustPolicy::from_json(&text("jws-valid/trustpolicy.json")).unwrap()
}

fn permissive() -> TrustPolicy {
    TrustPolicy::from_json(&text("jws-expired/permissive_trustpolicy.json")).unwrap()
}

fn audit() -> TrustPolicy {
    TrustPolicy::from_json(&text("jws-valid/trustpolicy.json").replace("\"strict\"", "\"audit\"")).unwrap()
}

/// A one-statement policy: scope `*`, store `store`, the given level and identities.
fn policy(level: &str, store: &str, identities: &[&str]) -> TrustPolicy {
    let doc = serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "test",
            "registryScopes": ["*"],
            "signatureVerification": {"level": level},
            "trustStores": [store],
            "trustedIdentities": identities,
        }]
    });
    TrustPolicy::from_json(&doc.to_string()).unwrap()
}

fn skip() -> TrustPolicy {
    let doc = r#"{"version":"1.0","trustPolicies":[{"name":"lax","registryScopes":["*"],
        "signatureVerification":{"level":"skip"}}]}"#;
    TrustPolicy::from_json(doc).unwrap()
}

fn check(signed: &Signed, policy: &TrustPolicy, stores: &[TrustStore], at: DateTime<Utc>) -> Verdict {
    verify(
        &signed.envelope,
        &signed.media_type,
        &signed.target(),
        REPOSITORY,
        policy,
        stores,
        at,
    )
}

fn verified(signer: &str, warnings: &[&str]) -> Verdict {
    Verdict::Verified {
        signer: signer.to_owned(),
        warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
    }
}

fn reason(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Rejected { reason } => reason,
        Verdict::Verified { .. } => panic!("expected a rejection, got {verdict:?}"),
    }
}

#[test]
fn jws_valid_verifies_with_its_trust_policy_and_store() {
    let signed = signed("jws-valid");
    assert_eq!(signed.envelope, read("jws-valid/signature.jws.json"));
    assert_eq!(signed.media_type, JWS_MEDIA_TYPE);
    assert_eq!(
        check(&signed, &strict(), &[e2e_store()], now()),
        verified(E2E, &[])
    );
}

#[test]
fn jws_expired_fails_at_strict() {
    let verdict = check(&signed("jws-expired"), &strict(), &[e2e_store()], now());
    assert_eq!(verdict, Verdict::rejected(EXPIRED));
}

#[test]
fn jws_expired_passes_with_a_warning_at_permissive_and_audit() {
    for policy in [permissive(), audit()] {
        assert_eq!(
            check(&signed("jws-expired"), &policy, &[e2e_store()], now()),
            verified(E2E, &[EXPIRED])
        );
    }
}

#[test]
fn jws_expired_verifies_before_its_expiry() {
    let before = Utc.with_ymd_and_hms(2023, 6, 27, 5, 21, 20).unwrap();
    assert_eq!(
        check(&signed("jws-expired"), &strict(), &[e2e_store()], before),
        verified(E2E, &[])
    );
}

#[test]
fn an_expiry_override_to_log_lets_an_expired_signature_pass_at_strict() {
    let doc = text("jws-valid/trustpolicy.json").replace(
        "\"level\" : \"strict\"",
        "\"level\" : \"strict\", \"override\": {\"expiry\": \"log\"}",
    );
    let policy = TrustPolicy::from_json(&doc).unwrap();
    assert_eq!(
        check(&signed("jws-expired"), &policy, &[e2e_store()], now()),
        verified(E2E, &[EXPIRED])
    );
}

#[test]
fn an_envelope_that_is_not_a_signature_fails_integrity_at_every_level_but_skip() {
    let signed = signed("invalid-envelope");
    assert_eq!(signed.envelope, b"invalid signature\n");
    for policy in [strict(), permissive(), audit()] {
        for media_type in [signed.media_type.as_str(), JWS_MEDIA_TYPE, COSE_MEDIA_TYPE] {
            let verdict = verify(
                &signed.envelope,
                media_type,
                &signed.target(),
                REPOSITORY,
                &policy,
                &[e2e_store()],
                now(),
            );
            assert!(
                reason(&verdict).starts_with("the envelope is not a valid JWS or COSE signature"),
                "{verdict:?}"
            );
        }
    }
    let skipped = check(&signed, &skip(), &[], now());
    assert_eq!(
        skipped,
        verified("", &["verification skipped by trust policy lax"])
    );
}

#[test]
fn notation_go_jws_and_cose_envelopes_verify_with_the_alpine_certificate() {
    let policy = policy("strict", "ca:alpine", &["*"]);
    for (file, media_type) in [
        ("jws_signature.sig", JWS_MEDIA_TYPE),
        ("cose_signature.sig", COSE_MEDIA_TYPE),
    ] {
        let signed = notation_go(file, media_type);
        assert_eq!(
            check(&signed, &policy, &[alpine_store("ca:alpine")], now()),
            verified(ALPINE, &[]),
            "{file}"
        );
    }
}

#[test]
fn an_envelope_under_the_wrong_media_type_is_rejected() {
    let mut signed = notation_go("cose_signature.sig", JWS_MEDIA_TYPE);
    let policy = policy("strict", "ca:alpine", &["*"]);
    assert!(
        reason(&check(&signed, &policy, &[alpine_store("ca:alpine")], now()))
            .starts_with("the envelope is not")
    );
    signed.media_type = "application/octet-stream".to_owned();
    assert!(
        reason(&check(&signed, &policy, &[alpine_store("ca:alpine")], now()))
            .starts_with("the envelope is not")
    );
}

#[test]
fn a_certificate_outside_the_trust_store_is_rejected() {
    let signed = signed("jws-valid");
    for stores in [
        vec![alpine_store("ca:e2e")],
        vec![],
        vec![alpine_store("ca:other"), e2e_store().renamed("ca:x")],
    ] {
        assert_eq!(
            check(&signed, &strict(), &stores, now()),
            Verdict::rejected(NOT_IN_STORE)
        );
    }
    // A signingAuthority store does not anchor a notary.x509 signature.
    let policy = policy("strict", "signingAuthority:e2e", &["*"]);
    let verdict = check(
        &signed,
        &policy,
        &[e2e_store().renamed("signingAuthority:e2e")],
        now(),
    );
    assert_eq!(
        verdict,
        Verdict::rejected("trust policy test names no trust store of type ca")
    );
}

#[test]
fn audit_logs_an_untrusted_certificate() {
    let verdict = check(&signed("jws-valid"), &audit(), &[alpine_store("ca:e2e")], now());
    assert_eq!(verdict, verified(E2E, &[NOT_IN_STORE]));
}

#[test]
fn a_notation_go_signature_is_not_trusted_through_the_e2e_store() {
    let signed = notation_go("cose_signature.sig", COSE_MEDIA_TYPE);
    assert_eq!(
        check(&signed, &strict(), &[e2e_store()], now()),
        Verdict::rejected(NOT_IN_STORE)
    );
}

#[test]
fn a_signature_for_another_descriptor_is_rejected() {
    let signed = signed("jws-valid");
    let named =
        "the signature names sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9 \
                 (application/vnd.oci.image.manifest.v1+json, 517 bytes), not this artifact";
    let other_digest = "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0";
    let targets = [
        Target {
            size: 518,
            ..signed.target()
        },
        Target {
            digest: other_digest,
            ..signed.target()
        },
        Target {
            media_type: "application/vnd.oci.image.index.v1+json",
            ..signed.target()
        },
    ];
    for target in targets {
        for policy in [strict(), audit()] {
            let verdict = verify(
                &signed.envelope,
                &signed.media_type,
                &target,
                REPOSITORY,
                &policy,
                &[e2e_store()],
                now(),
            );
            assert_eq!(verdict, Verdict::rejected(named));
        }
    }
}

#[test]
fn trusted_identities_pin_the_signing_certificate_subject() {
    let signed = signed("jws-valid");
    let store = [e2e_store()];
    let matching = policy(
        "strict",
        "ca:e2e",
        &["x509.subject: C=US, ST=WA, L=Seattle, O=Notary"],
    );
    assert_eq!(check(&signed, &matching, &store, now()), verified(E2E, &[]));
    let exact = policy(
        "strict",
        "ca:e2e",
        &["x509.subject: CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"],
    );
    assert_eq!(check(&signed, &exact, &store, now()), verified(E2E, &[]));
    let other = policy(
        "strict",
        "ca:e2e",
        &["x509.subject: C=US, ST=WA, O=Notary, CN=someone-else"],
    );
    let mismatch = format!("the signing certificate {E2E} is not a trusted identity of trust policy test");
    assert_eq!(
        check(&signed, &other, &store, now()),
        Verdict::rejected(mismatch.as_str())
    );
    let audited = policy("audit", "ca:e2e", &["x509.subject: C=US, ST=WA, O=Acme"]);
    let verdict = check(&signed, &audited, &store, now());
    assert_eq!(verdict, verified(E2E, &[mismatch.as_str()]));
}

#[test]
fn a_tampered_envelope_fails_integrity() {
    let mut jws = signed("jws-valid");
    let envelope: Json = serde_json::from_slice(&jws.envelope).unwrap();
    let signature = envelope["signature"].as_str().unwrap();
    let forged = signature.replacen('v', "w", 1);
    jws.envelope = String::from_utf8(jws.envelope.clone())
        .unwrap()
        .replace(signature, &forged)
        .into_bytes();
    let expected = "the signature does not verify with its signing certificate";
    assert_eq!(
        check(&jws, &strict(), &[e2e_store()], now()),
        Verdict::rejected(expected)
    );

    let mut cose = notation_go("cose_signature.sig", COSE_MEDIA_TYPE);
    let at = cose.envelope.len() - 10;
    cose.envelope[at] ^= 1;
    let policy = policy("audit", "ca:alpine", &["*"]);
    assert_eq!(
        check(&cose, &policy, &[alpine_store("ca:alpine")], now()),
        Verdict::rejected(expected)
    );
}

#[test]
fn a_certificate_that_has_expired_fails_the_authentic_timestamp_check_at_strict_only() {
    let later = Utc.with_ymd_and_hms(2123, 1, 1, 0, 0, 0).unwrap();
    let invalid = format!(
        "certificate {E2E} is not valid at 2123-01-01T00:00:00Z (valid from 2022-12-19T02:43:39Z to 2122-12-19T02:43:39Z)"
    );
    assert_eq!(
        check(&signed("jws-valid"), &strict(), &[e2e_store()], later),
        Verdict::rejected(invalid.as_str())
    );
    let verdict = check(&signed("jws-valid"), &permissive(), &[e2e_store()], later);
    assert_eq!(verdict, verified(E2E, &[invalid.as_str()]));
}

#[test]
fn the_scoped_statement_wins_over_the_wildcard_and_the_host_is_ignored() {
    let doc = r#"{"version":"1.0","trustPolicies":[
        {"name":"anything","registryScopes":["*"],"signatureVerification":{"level":"skip"}},
        {"name":"app","registryScopes":["registry.example:5000/library/app","other.example/team/tool"],
         "signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;
    let policy = TrustPolicy::from_json(doc).unwrap();
    let signed = signed("jws-expired");
    let at = |repository: &str| {
        verify(
            &signed.envelope,
            &signed.media_type,
            &signed.target(),
            repository,
            &policy,
            &[e2e_store()],
            now(),
        )
    };
    assert_eq!(at("library/app"), Verdict::rejected(EXPIRED));
    assert_eq!(at("team/tool"), Verdict::rejected(EXPIRED));
    assert_eq!(
        at("library/other"),
        verified("", &["verification skipped by trust policy anything"])
    );
}

#[test]
fn a_repository_no_statement_covers_is_rejected() {
    let doc = r#"{"version":"1.0","trustPolicies":[{"name":"app","registryScopes":["localhost/library/app"],
        "signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;
    let policy = TrustPolicy::from_json(doc).unwrap();
    let signed = signed("jws-valid");
    let verdict = verify(
        &signed.envelope,
        &signed.media_type,
        &signed.target(),
        "library/ap",
        &policy,
        &[e2e_store()],
        now(),
    );
    assert_eq!(
        verdict,
        Verdict::rejected("no trust policy statement applies to repository library/ap")
    );
    assert_eq!(check(&signed, &policy, &[e2e_store()], now()), verified(E2E, &[]));
}

#[test]
fn trust_stores_hold_ca_or_self_signed_certificates() {
    let store = e2e_store();
    assert_eq!(
        (store.name.as_str(), store.len(), store.is_empty()),
        ("ca:e2e", 1, false)
    );
    assert_eq!(store.subjects(), vec![E2E.to_owned()]);
    let bundle = format!(
        "e2e:\n{}\nsubject=alpine\n{}",
        text("jws-valid/e2e.crt"),
        text("notation-go-jws-cose/alpine-signing-cert.pem")
    );
    assert_eq!(
        TrustStore::from_pem("signingAuthority:two", &bundle)
            .unwrap()
            .len(),
        2
    );
    let pem = text("jws-valid/e2e.crt");
    for (name, bundle) in [
        ("e2e", pem.as_str()),
        ("ca:", pem.as_str()),
        ("tls:e2e", pem.as_str()),
        ("ca:e2e", ""),
        ("ca:e2e", "junk"),
    ] {
        assert!(
            matches!(
                TrustStore::from_pem(name, bundle),
                Err(TrustError::Certificate(_))
            ),
            "{name} {bundle:?}"
        );
    }
    let broken = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        TrustStore::from_pem("ca:x", broken),
        Err(TrustError::Certificate(_))
    ));
}

impl TrustStore {
    fn renamed(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }
}
