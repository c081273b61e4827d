//! cosign verification against the real cosign output in `tests/vectors/cosign` (see its README:
//! each folder states the verdict these tests assert), plus keys generated here.

use std::path::PathBuf;

use sigstore::crypto::signing_key::ecdsa::ec::EcdsaKeys;
use sigstore::crypto::signing_key::ecdsa::EllipticCurve;
use sigstore::crypto::signing_key::ed25519::{Ed25519Keys, Ed25519Signer};
use sigstore::crypto::signing_key::rsa::keypair::RSAKeys;
use sigstore::crypto::signing_key::rsa::{DigestAlgorithm, PaddingScheme, RSASigner};
use sigstore::crypto::signing_key::{KeyPair as _, Signer as _};

use super::*;
use crate::trust::sha256_digest;

/// `tests/vectors/cosign`: the real cosign output, copied into the repository (see its README).
fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/cosign")
}

fn read(path: &str) -> Vec<u8> {
    let full = vectors().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn text(path: &str) -> String {
    String::from_utf8(read(path)).unwrap()
}

fn key(path: &str) -> PublicKey {
    PublicKey::from_pem(&text(path)).unwrap()
}

fn manifest_digest(folder: &str) -> String {
    sha256_digest(&read(&format!("{folder}/manifest.json")))
}

/// SHA-256 of each key's DER SubjectPublicKeyInfo, computed with `openssl pkey -pubin -outform DER`.
const COSIGN_PUB: &str = "sha256:c87a79018f346cc02482448b77296b0bea143ef2ccab99b04776fb0f638f301f";
const COSIGN2_PUB: &str = "sha256:5e7eb6c1e2e6db06470ae59ee8253b3dc4ce33beefb9a0cca06a371cfc0ebdfa";
const REKOR_PUB: &str = "sha256:c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d";
const NO_KEY: &str = "no trusted key verifies the signature";

fn verified(signer: &str) -> Verdict {
    Verdict::Verified {
        signer: signer.to_owned(),
        warnings: Vec::new(),
    }
}

fn verify_folder(
    folder: &str,
    subject: &str,
    keys: &[PublicKey],
    rekor: &[PublicKey],
    bundle: Option<&str>,
) -> Verdict {
    let payload = read(&format!("{folder}/payload.json"));
    let signature = text(&format!("{folder}/signature.b64"));
    let sig = Signature {
        payload: &payload,
        signature_b64: &signature,
        bundle_json: bundle,
    };
    verify(&sig, subject, keys, rekor)
}

#[test]
fn key_fingerprints_are_the_sha256_of_the_subject_public_key_info() {
    assert_eq!(key("key-valid/cosign.pub").fingerprint(), COSIGN_PUB);
    assert_eq!(key("wrong-key/cosign2.pub").fingerprint(), COSIGN2_PUB);
    assert_eq!(key("key-rekor/rekor.pub").fingerprint(), REKOR_PUB);
}

#[test]
fn a_public_key_survives_a_pem_round_trip() {
    let original = key("key-valid/cosign.pub");
    assert_eq!(original.to_pem(), text("key-valid/cosign.pub"));
    assert_eq!(PublicKey::from_pem(&original.to_pem()).unwrap(), original);
    let windows = text("key-valid/cosign.pub").replace('\n', "\r\n");
    assert_eq!(PublicKey::from_pem(&windows).unwrap(), original);
}

#[test]
fn malformed_public_keys_are_refused() {
    let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    let garbage = "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n";
    for pem in ["", "not pem", cert, garbage] {
        assert!(
            matches!(PublicKey::from_pem(pem), Err(TrustError::Key(_))),
            "{pem:?} should be refused"
        );
    }
}

#[test]
fn key_valid_verifies_with_cosign_pub() {
    let verdict = verify_folder(
        "key-valid",
        &manifest_digest("key-valid"),
        &[key("key-valid/cosign.pub")],
        &[],
        None,
    );
    assert_eq!(verdict, verified(COSIGN_PUB));
}

#[test]
fn the_signer_is_the_key_that_verifies_among_several() {
    let keys = [key("wrong-key/cosign2.pub"), key("key-valid/cosign.pub")];
    let verdict = verify_folder("key-valid", &manifest_digest("key-valid"), &keys, &[], None);
    assert_eq!(verdict, verified(COSIGN_PUB));
}

#[test]
fn key_valid_is_rejected_with_cosign2_pub() {
    let verdict = verify_folder(
        "key-valid",
        &manifest_digest("key-valid"),
        &[key("wrong-key/cosign2.pub")],
        &[],
        None,
    );
    assert_eq!(verdict, Verdict::rejected(NO_KEY));
}

#[test]
fn a_signature_by_an_unknown_key_is_rejected_with_either_key() {
    let subject = manifest_digest("key-valid");
    for keys in [
        vec![key("key-valid/cosign.pub")],
        vec![key("wrong-key/cosign2.pub")],
    ] {
        assert_eq!(
            verify_folder("wrong-key", &subject, &keys, &[], None),
            Verdict::rejected(NO_KEY)
        );
    }
}

#[test]
fn no_key_at_all_verifies_nothing() {
    let verdict = verify_folder("key-valid", &manifest_digest("key-valid"), &[], &[], None);
    assert_eq!(verdict, Verdict::rejected(NO_KEY));
}

#[test]
fn a_valid_signature_for_another_manifest_is_rejected() {
    let subject = manifest_digest("modified-manifest");
    assert_eq!(
        subject,
        "sha256:d9dcafdb480aa7c475e91737b96925e45844213dcb0290b4a90017459121f71f"
    );
    let verdict = verify_folder(
        "modified-manifest",
        &subject,
        &[key("key-valid/cosign.pub")],
        &[],
        None,
    );
    assert_eq!(
        verdict,
        Verdict::rejected(format!(
            "the signature names sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00, \
             not this artifact ({subject})"
        ))
    );
}

#[test]
fn a_tampered_payload_is_rejected() {
    let payload = text("key-valid/payload.json")
        .replace("single-sample", "single-simple")
        .into_bytes();
    let signature = text("key-valid/signature.b64");
    let sig = Signature {
        payload: &payload,
        signature_b64: &signature,
        bundle_json: None,
    };
    let verdict = verify(
        &sig,
        &manifest_digest("key-valid"),
        &[key("key-valid/cosign.pub")],
        &[],
    );
    assert_eq!(verdict, Verdict::rejected(NO_KEY));
}

#[test]
fn key_rekor_verifies_with_cosign2_pub_and_its_bundle() {
    let bundle = text("key-rekor/bundle.json");
    let keys = [key("key-rekor/cosign2.pub")];
    let subject = manifest_digest("key-rekor");
    let verdict = verify_folder(
        "key-rekor",
        &subject,
        &keys,
        &[key("key-rekor/rekor.pub")],
        Some(&bundle),
    );
    assert_eq!(verdict, verified(COSIGN2_PUB));
    assert_eq!(
        verify_folder("key-rekor", &subject, &keys, &[], None),
        verified(COSIGN2_PUB)
    );
    let wrong = verify_folder("key-rekor", &subject, &[key("key-valid/cosign.pub")], &[], None);
    assert_eq!(wrong, Verdict::rejected(NO_KEY));
}

#[test]
fn a_required_bundle_that_is_missing_is_rejected() {
    let verdict = verify_folder(
        "key-rekor",
        &manifest_digest("key-rekor"),
        &[key("key-rekor/cosign2.pub")],
        &[key("key-rekor/rekor.pub")],
        None,
    );
    assert_eq!(
        verdict,
        Verdict::rejected("the signature has no Rekor bundle, and the policy requires one")
    );
}

#[test]
fn a_bundle_whose_signed_entry_timestamp_does_not_verify_is_rejected() {
    let bundle = text("key-rekor/bundle.json");
    let later = bundle.replace("\"integratedTime\":1674251859", "\"integratedTime\":1674251860");
    let set =
        "MEYCIQCtP1W8YAJxuSNaiWKlVlJoDkXAoTgjZDlZ48ObheV5kgIhAItJ3MB9nU8qc+lf/IGazOQ/VgldK6MOX+I2YMPOMZOs";
    let forged_set = bundle.replace(
        set,
        "MEUCIQClOJvH+5f5Gr+FLd1c+NS/a+TJQ+BDDoJcnlD0FKqI3AIgPVcMB5yb/JdtohCSzrxATJX6UcyWO+uAWO8Q7CNGnRQ=",
    );
    assert!(later != bundle && forged_set != bundle);
    let reason = "the Rekor bundle's SignedEntryTimestamp does not verify with a trusted Rekor key";
    let subject = manifest_digest("key-rekor");
    let keys = [key("key-rekor/cosign2.pub")];
    for (tampered, rekor) in [
        (later.as_str(), key("key-rekor/rekor.pub")),
        (forged_set.as_str(), key("key-rekor/rekor.pub")),
        (bundle.as_str(), key("key-valid/cosign.pub")),
    ] {
        let verdict = verify_folder("key-rekor", &subject, &keys, &[rekor], Some(tampered));
        assert_eq!(verdict, Verdict::rejected(reason));
    }
    let garbage = verify_folder(
        "key-rekor",
        &subject,
        &keys,
        &[key("key-rekor/rekor.pub")],
        Some("{"),
    );
    assert!(matches!(garbage, Verdict::Rejected { .. }));
}

#[test]
fn a_genuine_bundle_for_another_signature_is_rejected() {
    // key-valid's signature (by cosign.pub, over key-valid's payload) with key-rekor's bundle.
    let bundle = text("key-rekor/bundle.json");
    let verdict = verify_folder(
        "key-valid",
        &manifest_digest("key-valid"),
        &[key("key-valid/cosign.pub")],
        &[key("key-rekor/rekor.pub")],
        Some(&bundle),
    );
    assert_eq!(
        verdict,
        Verdict::rejected("the Rekor entry names another payload")
    );
}

#[test]
fn payload_for_writes_cosigns_exact_bytes() {
    let digest = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
    let payload = payload_for("192.168.64.2:5000/cosign-signed-single-sample", digest);
    assert_eq!(payload, read("key-valid/payload.json"));
    let claims = parse_payload(&payload).unwrap();
    assert_eq!(claims.docker_manifest_digest, digest);
    assert_eq!(
        claims.docker_reference,
        "192.168.64.2:5000/cosign-signed-single-sample"
    );
}

#[test]
fn payloads_that_are_not_cosign_image_signatures_are_refused() {
    let other_type = String::from_utf8(read("key-valid/payload.json"))
        .unwrap()
        .replace("cosign container", "atomic container");
    for payload in [
        "",
        "null",
        "{}",
        r#"{"critical":{"identity":{"docker-reference":"r"},"image":{},"type":"cosign container image signature"}}"#,
        r#"{"critical":{"identity":{},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"}}"#,
        other_type.as_str(),
    ] {
        assert!(
            matches!(parse_payload(payload.as_bytes()), Err(TrustError::Payload(_))),
            "{payload:?}"
        );
        let sig = Signature {
            payload: payload.as_bytes(),
            signature_b64: "MEUCIQ==",
            bundle_json: None,
        };
        assert!(matches!(
            verify(&sig, "sha256:00", &[key("key-valid/cosign.pub")], &[]),
            Verdict::Rejected { .. }
        ));
    }
}

#[test]
fn a_signature_annotation_that_is_not_base64_is_rejected() {
    let payload = read("key-valid/payload.json");
    let sig = Signature {
        payload: &payload,
        signature_b64: "not base64!",
        bundle_json: None,
    };
    let verdict = verify(
        &sig,
        &manifest_digest("key-valid"),
        &[key("key-valid/cosign.pub")],
        &[],
    );
    assert_eq!(
        verdict,
        Verdict::rejected("the signature annotation is not base64")
    );
}

#[test]
fn a_generated_key_pair_survives_an_encrypted_pem_round_trip_and_signs() {
    let pair = KeyPair::generate().unwrap();
    let pem = pair.to_encrypted_pem(b"correct horse").unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{pem}"
    );
    let loaded = KeyPair::from_encrypted_pem(&pem, b"correct horse").unwrap();
    assert_eq!(loaded.public_key(), pair.public_key());

    let digest = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a";
    let payload = payload_for("registry.example/app", digest);
    let signature = loaded.sign(&payload).unwrap();
    let sig = Signature {
        payload: &payload,
        signature_b64: &signature,
        bundle_json: None,
    };
    assert_eq!(
        verify(&sig, digest, &[pair.public_key()], &[]),
        verified(&pair.public_key().fingerprint())
    );
    assert_eq!(
        verify(&sig, digest, &[key("key-valid/cosign.pub")], &[]),
        Verdict::rejected(NO_KEY)
    );
}

#[test]
fn the_encrypted_pem_holds_cosigns_scrypt_and_secretbox_json() {
    let pem = KeyPair::generate().unwrap().to_encrypted_pem(b"pw").unwrap();
    let (label, body) = x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap();
    assert_eq!(label, "ENCRYPTED SIGSTORE PRIVATE KEY");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["kdf"]["name"], "scrypt");
    assert_eq!(
        json["kdf"]["params"],
        serde_json::json!({"N": 32768, "r": 8, "p": 1})
    );
    assert_eq!(
        Base64::decode_vec(json["kdf"]["salt"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(json["cipher"]["name"], "nacl/secretbox");
    assert_eq!(
        Base64::decode_vec(json["cipher"]["nonce"].as_str().unwrap())
            .unwrap()
            .len(),
        24
    );
    assert!(Base64::decode_vec(json["ciphertext"].as_str().unwrap()).is_ok());
}

#[test]
fn the_older_cosign_pem_type_is_read_too() {
    let pem = KeyPair::generate().unwrap().to_encrypted_pem(b"pw").unwrap();
    let older = pem.replace("SIGSTORE PRIVATE KEY", "COSIGN PRIVATE KEY");
    assert!(KeyPair::from_encrypted_pem(&older, b"pw").is_ok());
}

#[test]
fn a_wrong_password_does_not_open_the_key() {
    let pem = KeyPair::generate().unwrap().to_encrypted_pem(b"right").unwrap();
    assert!(matches!(
        KeyPair::from_encrypted_pem(&pem, b"wrong"),
        Err(TrustError::Password)
    ));
}

#[test]
fn private_keys_that_are_not_cosign_encrypted_p256_keys_are_refused() {
    let p384 = EcdsaKeys::new(EllipticCurve::P384)
        .unwrap()
        .private_key_to_encrypted_pem(b"pw")
        .unwrap();
    for pem in [
        "",
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        p384.as_str(),
    ] {
        assert!(
            matches!(
                KeyPair::from_encrypted_pem(pem, b"pw"),
                Err(TrustError::PrivateKey(_))
            ),
            "{pem:?}"
        );
    }
}

/// Signs key-valid's payload with `sign` and checks only the matching public key verifies it.
fn assert_signs_like_cosign(public_pem: &str, sign: impl Fn(&[u8]) -> Vec<u8>) {
    let public = PublicKey::from_pem(public_pem).unwrap();
    let payload = read("key-valid/payload.json");
    let signature = Base64::encode_string(&sign(&payload));
    let sig = Signature {
        payload: &payload,
        signature_b64: &signature,
        bundle_json: None,
    };
    let subject = manifest_digest("key-valid");
    assert_eq!(
        verify(&sig, &subject, std::slice::from_ref(&public), &[]),
        verified(&public.fingerprint())
    );
    assert_eq!(
        verify(&sig, &subject, &[key("key-valid/cosign.pub")], &[]),
        Verdict::rejected(NO_KEY)
    );
}

#[test]
fn rsa_keys_verify_pkcs1_v15_sha256_signatures() {
    let keys = RSAKeys::new(2048).unwrap();
    let signer = RSASigner::from_rsa_keys(&keys, DigestAlgorithm::Sha256, PaddingScheme::PKCS1v15);
    assert_signs_like_cosign(&keys.public_key_to_pem().unwrap(), |m| signer.sign(m).unwrap());
}

#[test]
fn ed25519_keys_verify_pure_ed25519_signatures() {
    let keys = Ed25519Keys::new().unwrap();
    let signer = Ed25519Signer::from_ed25519_keys(&keys).unwrap();
    assert_signs_like_cosign(&keys.public_key_to_pem().unwrap(), |m| signer.sign(m).unwrap());
}

#[test]
fn p384_keys_verify_sha384_and_sha256_signatures() {
    use aws_lc_rs::digest::{digest, Digest, SHA256, SHA384};
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_ASN1_SIGNING};

    let keys = EcdsaKeys::new(EllipticCurve::P384).unwrap();
    let public = keys.public_key_to_pem().unwrap();
    let signer = keys.to_signer().unwrap();
    assert_signs_like_cosign(&public, |m| signer.sign(m).unwrap());

    // ECDSA on P-384 turns a 48-byte hash 0^16 || SHA-256(m) into the same integer as SHA-256(m):
    // signing that "SHA-384 digest" makes a P-384/SHA-256 signature, as `cosign verify` checks them.
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &keys.private_key_to_der().unwrap(),
    )
    .unwrap();
    assert_signs_like_cosign(&public, |m| {
        let mut padded = vec![0u8; 16];
        padded.extend_from_slice(digest(&SHA256, m).as_ref());
        let prehash = Digest::import_less_safe(&padded, &SHA384).unwrap();
        pair.sign_digest(&prehash).unwrap().as_ref().to_vec()
    });
}

#[test]
fn verdicts_serialize_with_an_outcome_tag() {
    let json = serde_json::to_value(verified(COSIGN_PUB)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"outcome": "verified", "signer": COSIGN_PUB})
    );
    let json = serde_json::to_value(Verdict::rejected(NO_KEY)).unwrap();
    assert_eq!(json, serde_json::json!({"outcome": "rejected", "reason": NO_KEY}));
    let back: Verdict =
        serde_json::from_value(serde_json::json!({"outcome": "verified", "signer": "x"})).unwrap();
    assert_eq!(back, verified("x"));
}
