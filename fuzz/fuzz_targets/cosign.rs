//! cosign simple-signing payloads and Rekor bundles: `trust::cosign::parse_payload`, then
//! `trust::cosign::verify` of payload, base64 signature and bundle (the input's three NUL-separated
//! fields) against the vectors' keys, with and without a required Rekor key; a fourth field is read
//! as a public key PEM.
#![no_main]

use std::sync::OnceLock;

use berth::trust::cosign::{parse_payload, verify, PublicKey, Signature};
use libfuzzer_sys::fuzz_target;

struct Keys {
    signers: Vec<PublicKey>,
    rekor: Vec<PublicKey>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = |pem: &str| PublicKey::from_pem(pem).unwrap_or_else(|e| panic!("key: {e}"));
        Keys {
            signers: vec![
                key(include_str!("../keys/cosign.pub")),
                key(include_str!("../keys/cosign2.pub")),
            ],
            rekor: vec![key(include_str!("../keys/rekor.pub"))],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fields = berth_fuzz::fields(data);
    let payload = fields.first().copied().unwrap_or_default();
    let signature = String::from_utf8_lossy(fields.get(1).copied().unwrap_or_default());
    let bundle = fields.get(2).map(|b| String::from_utf8_lossy(b));
    if let Some(pem) = fields.get(3) {
        if let Ok(key) = PublicKey::from_pem(&String::from_utf8_lossy(pem)) {
            let _ = key.fingerprint();
            assert_eq!(
                PublicKey::from_der(key.as_der()).ok().map(|k| k.fingerprint()),
                Some(key.fingerprint())
            );
        }
    }
    // The subject the payload names, so verification goes on to the signature and the bundle.
    let subject = match parse_payload(payload) {
        Ok(claims) => claims.docker_manifest_digest,
        Err(_) => String::from("sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    };
    let sig = Signature {
        payload,
        signature_b64: &signature,
        bundle_json: bundle.as_deref(),
    };
    let keys = keys();
    let _ = verify(&sig, &subject, &keys.signers, &[]);
    let _ = verify(&sig, &subject, &keys.signers, &keys.rekor);
});
