//! Envelope rules, table-driven: jws-valid's envelope with one header changed at a time.

use std::path::PathBuf;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};

use super::*;

fn jws_valid() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors/notation/jws-valid/signature.jws.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn protected_of(envelope: &Value) -> Value {
    let b64 = envelope["protected"].as_str().unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(b64).unwrap()).unwrap()
}

/// jws-valid with its protected header changed by `change` (the signature no longer matches).
fn with_protected(change: impl Fn(&mut Value)) -> Vec<u8> {
    let mut envelope = jws_valid();
    let mut protected = protected_of(&envelope);
    change(&mut protected);
    envelope["protected"] = Value::String(Base64UrlUnpadded::encode_string(protected.to_string().as_bytes()));
    envelope.to_string().into_bytes()
}

fn parse_error(bytes: &[u8]) -> String {
    match Envelope::parse(bytes, JWS_MEDIA_TYPE) {
        Ok(_) => panic!("{} should not parse", String::from_utf8_lossy(bytes)),
        Err(reason) => reason,
    }
}

#[test]
fn jws_valid_parses_into_its_signed_attributes() {
    let envelope = Envelope::parse(&jws_valid().to_string().into_bytes(), JWS_MEDIA_TYPE).unwrap();
    assert_eq!(
        (envelope.algorithm, envelope.scheme),
        (Algorithm::Ps256, Scheme::X509)
    );
    assert_eq!(envelope.signing_time.to_rfc3339(), "2023-06-27T05:30:33+00:00");
    assert_eq!(envelope.expiry, None);
    assert_eq!(envelope.chain.len(), 1);
    envelope.check_signature().unwrap();
}

#[test]
fn protected_headers_that_break_the_rules_are_refused() {
    let set = |key: &'static str, value: Value| move |h: &mut Value| h[key] = value.clone();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            with_protected(set("alg", json!("RS256"))),
            "the signature algorithm is missing or unsupported",
        ),
        (
            with_protected(set("cty", json!("application/json"))),
            "the payload content type is not",
        ),
        (
            with_protected(set("io.cncf.notary.signingScheme", json!("x509"))),
            "the signing scheme is missing",
        ),
        (
            with_protected(set("crit", json!([]))),
            "io.cncf.notary.signingScheme is not marked critical",
        ),
        (
            with_protected(set("crit", json!("io.cncf.notary.signingScheme"))),
            "crit is not a list",
        ),
        (
            with_protected(set("io.cncf.notary.expiry", json!("2030-01-01T00:00:00Z"))),
            "io.cncf.notary.expiry is not marked critical",
        ),
        (
            with_protected(set(
                "crit",
                json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]),
            )),
            "critical header io.cncf.notary.expiry is missing",
        ),
        (
            with_protected(|h| {
                h["crit"] = json!(["io.cncf.notary.signingScheme", "acme.policy"]);
                h["acme.policy"] = json!("strict");
            }),
            "critical header acme.policy is not understood",
        ),
        (
            with_protected(|h| {
                h["crit"] = json!([
                    "io.cncf.notary.signingScheme",
                    "io.cncf.notary.verificationPlugin"
                ]);
                h["io.cncf.notary.verificationPlugin"] = json!("com.example.plugin");
            }),
            "requires a verification plugin",
        ),
        (
            with_protected(set("io.cncf.notary.signingTime", json!("yesterday"))),
            "is not an RFC 3339 time",
        ),
        (
            with_protected(|h| {
                h.as_object_mut().unwrap().remove("io.cncf.notary.signingTime");
            }),
            "the signing time is missing",
        ),
        (
            with_protected(set(
                "io.cncf.notary.signingScheme",
                json!("notary.x509.signingAuthority"),
            )),
            "the authentic signing time is missing",
        ),
    ];
    for (bytes, expected) in cases {
        let reason = parse_error(&bytes);
        assert!(reason.contains(expected), "{reason:?} should say {expected:?}");
        assert!(
            reason.starts_with("the envelope is not a valid JWS or COSE signature: "),
            "{reason}"
        );
    }
}

#[test]
fn malformed_jws_envelopes_are_refused() {
    let mut no_x5c = jws_valid();
    no_x5c["header"]["x5c"] = json!(["not base64!"]);
    let mut bad_payload = jws_valid();
    bad_payload["payload"] = json!("***");
    let mut not_a_cert = jws_valid();
    not_a_cert["header"]["x5c"] = json!(["AAAA"]);
    let cases = [
        (no_x5c, "x5c holds something that is not base64"),
        (bad_payload, "the payload is not base64url"),
        (not_a_cert, "not an X.509 certificate"),
        (json!({"payload": "e30"}), "not a flattened JWS"),
    ];
    for (envelope, expected) in cases {
        let reason = parse_error(envelope.to_string().as_bytes());
        assert!(reason.contains(expected), "{reason:?} should say {expected:?}");
    }
}

#[test]
fn an_algorithm_that_does_not_fit_the_key_is_refused() {
    let bytes = with_protected(|h| h["alg"] = json!("ES256"));
    let envelope = Envelope::parse(&bytes, JWS_MEDIA_TYPE).unwrap();
    let reason = envelope.check_signature().unwrap_err();
    assert!(
        reason.contains("does not fit the signing certificate's key"),
        "{reason}"
    );
    let mut empty = jws_valid();
    empty["header"]["x5c"] = json!([]);
    let envelope = Envelope::parse(empty.to_string().as_bytes(), JWS_MEDIA_TYPE).unwrap();
    assert_eq!(
        envelope.check_signature().unwrap_err(),
        "the envelope carries no certificate"
    );
}

#[test]
fn malformed_cose_envelopes_are_refused() {
    let mut cbor = Vec::new();
    let encode = |value: ciborium::Value, out: &mut Vec<u8>| {
        out.clear();
        ciborium::into_writer(&value, out).unwrap();
    };
    use ciborium::Value as Cbor;
    let cases = [
        (
            Cbor::Tag(98, Box::new(Cbor::Array(vec![]))),
            "CBOR tag 98 is not COSE_Sign1",
        ),
        (
            Cbor::Tag(18, Box::new(Cbor::Map(vec![]))),
            "not a COSE_Sign1 array",
        ),
        (
            Cbor::Array(vec![Cbor::Bytes(vec![]); 4]),
            "[protected, unprotected, payload, signature]",
        ),
        (
            Cbor::Array(vec![
                Cbor::Bytes(vec![0xa0]),
                Cbor::Map(vec![]),
                Cbor::Bytes(vec![]),
                Cbor::Bytes(vec![]),
            ]),
            "the unprotected header has no x5chain",
        ),
    ];
    for (value, expected) in cases {
        encode(value, &mut cbor);
        let reason = Envelope::parse(&cbor, COSE_MEDIA_TYPE).err().unwrap();
        assert!(reason.contains(expected), "{reason:?} should say {expected:?}");
    }
}
