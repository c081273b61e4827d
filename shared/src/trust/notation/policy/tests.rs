//! Trust policy documents: the rules notation-go enforces, and the round trip.

use serde_json::Value as Json;

use super::*;

#[test]
fn a_trust_policy_survives_a_json_round_trip() {
    let doc = r#"{"version":"1.0","trustPolicies":[
        {"name":"app","registryScopes":["localhost:5000/library/app"],
         "signatureVerification":{"level":"permissive","override":{"revocation":"skip","expiry":"enforce"}},
         "trustStores":["ca:e2e","signingAuthority:acme"],"trustedIdentities":["x509.subject: C=US, ST=WA, O=Notary"]},
        {"name":"rest","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}"#;
    let policy = TrustPolicy::from_json(doc).unwrap();
    assert_eq!(TrustPolicy::from_json(&policy.to_json()).unwrap(), policy);
    let app = &policy.statements()[0];
    assert_eq!(app.signature_verification.action(Check::Expiry), Action::Enforce);
    assert_eq!(app.signature_verification.action(Check::Revocation), Action::Skip);
    assert_eq!(
        app.signature_verification.action(Check::AuthenticTimestamp),
        Action::Log
    );
    assert_eq!(TrustPolicy::new(policy.statements().to_vec()).unwrap(), policy);
}

/// A one-statement document: a valid strict statement with `changes` merged into it.
fn statement_with(changes: Json) -> String {
    let mut statement = serde_json::json!({
        "name": "p",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:s"],
        "trustedIdentities": ["*"],
    });
    for (key, value) in changes.as_object().unwrap() {
        statement[key] = value.clone();
    }
    serde_json::json!({"version": "1.0", "trustPolicies": [statement]}).to_string()
}

fn policy_error(doc: &str) -> String {
    match TrustPolicy::from_json(doc) {
        Err(TrustError::Policy(message)) => message,
        other => panic!("{doc} should be refused, got {other:?}"),
    }
}

#[test]
fn trust_policies_that_break_the_rules_are_refused() {
    use serde_json::json;
    assert!(TrustPolicy::from_json(&statement_with(json!({}))).is_ok());
    let level = |level: &str, overrides: Json| json!({"signatureVerification": {"level": level, "override": overrides}});
    let cases = [
        (json!({"name": ""}), "has no name"),
        (
            json!({"signatureVerification": {"level": "lenient"}}),
            "unknown variant `lenient`",
        ),
        (json!({"registryScopes": []}), "has no registry scope"),
        (json!({"registryScopes": ["*", "a.io/app"]}), "must stand alone"),
        (
            json!({"registryScopes": ["a.io"]}),
            "is not host[:port]/repository",
        ),
        (
            json!({"registryScopes": ["a.io/app:v1"]}),
            "is not host[:port]/repository",
        ),
        (
            json!({"registryScopes": ["a.io/*"]}),
            "is not host[:port]/repository",
        ),
        (
            json!({"registryScopes": ["a.io/App"]}),
            "is not host[:port]/repository",
        ),
        (
            json!({"registryScopes": ["a.io:/app"]}),
            "is not host[:port]/repository",
        ),
        (
            json!({"trustStores": []}),
            "needs trust stores and trusted identities",
        ),
        (
            json!({"trustedIdentities": []}),
            "needs trust stores and trusted identities",
        ),
        (
            json!({"trustStores": ["x509:s"]}),
            "not ca, signingAuthority or tsa",
        ),
        (json!({"trustStores": ["ca:a/b"]}), "name outside"),
        (json!({"trustStores": ["ca"]}), "is not <type>:<name>"),
        (
            json!({"trustedIdentities": ["*", "x509.subject: C=US, ST=WA, O=A"]}),
            "must stand alone",
        ),
        (
            json!({"trustedIdentities": ["x509.subject: C=US, ST=WA"]}),
            "must name C, ST and O",
        ),
        (
            json!({"trustedIdentities": ["x509.san: C=US, ST=WA, O=A"]}),
            "only x509.subject identities",
        ),
        (
            json!({"trustedIdentities": ["C=US, ST=WA, O=A"]}),
            "is not \"x509.subject: <DN>\"",
        ),
        (
            json!({"trustedIdentities": ["x509.subject: C=US+ST=WA, O=A"]}),
            "multi-valued",
        ),
        (
            json!({"trustedIdentities": ["x509.subject: C=US, ST=WA, O=A", "x509.subject: C=US, ST=WA, O=A, CN=b"]}),
            "overlapping trusted identities",
        ),
        (
            level("strict", json!({"integrity": "log"})),
            "integrity cannot be overridden",
        ),
        (
            level("audit", json!({"authenticity": "skip"})),
            "only revocation may be skipped",
        ),
        (
            level("audit", json!({"colour": "log"})),
            "unknown variant `colour`",
        ),
        (
            level("audit", json!({"expiry": "ignore"})),
            "unknown variant `ignore`",
        ),
        (
            json!({"signatureVerification": {"level": "skip"}}),
            "takes no trust stores or trusted identities",
        ),
        (
            level("skip", json!({"expiry": "log"})),
            "level skip cannot be overridden",
        ),
    ];
    for (changes, expected) in cases {
        let doc = statement_with(changes);
        let message = policy_error(&doc);
        assert!(
            message.contains(expected),
            "{doc}: {message:?} should say {expected:?}"
        );
    }
    assert!(policy_error("{").contains("EOF"));
    assert!(policy_error(r#"{"version":"2.0","trustPolicies":[]}"#).contains("only \"1.0\" is supported"));
    assert!(policy_error(r#"{"version":"1.0","trustPolicies":[]}"#).contains("no trust policy statement"));
}

#[test]
fn statements_have_unique_names_and_scopes() {
    let skip = |name: &str, scope: &str| {
        format!(
            r#"{{"name":"{name}","registryScopes":["{scope}"],"signatureVerification":{{"level":"skip"}}}}"#
        )
    };
    let document = |a: String, b: String| format!(r#"{{"version":"1.0","trustPolicies":[{a},{b}]}}"#);
    let cases = [
        (
            document(skip("x", "a.io/one"), skip("x", "a.io/two")),
            "several statements are named \"x\"",
        ),
        (
            document(skip("x", "*"), skip("y", "*")),
            "registry scope \"*\" is in statements",
        ),
        (
            document(skip("x", "a.io/app"), skip("y", "a.io/app")),
            "registry scope \"a.io/app\" is in statements",
        ),
    ];
    for (doc, expected) in cases {
        let message = policy_error(&doc);
        assert!(
            message.contains(expected),
            "{doc}: {message:?} should say {expected:?}"
        );
    }
    assert!(TrustPolicy::from_json(&document(skip("x", "a.io/app"), skip("y", "b.io/app"))).is_ok());
}
