//! Notation JWS envelopes (`application/jose+json`): `trust::notation::verify` of the input as a
//! signature envelope (parse, signature with the leaf of x5c/x5chain, chain, payload, trust stores,
//! identities, validity, expiry) under a strict and a permissive policy, with the vectors'
//! certificates as trust stores, for the vectors' two signed manifests.
#![no_main]

use std::sync::OnceLock;

use berth::trust::notation::{verify, Target, TrustPolicy, TrustStore};
use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

const MEDIA_TYPE: &str = "application/jose+json";

struct Trust {
    policies: Vec<TrustPolicy>,
    stores: Vec<TrustStore>,
    now: DateTime<Utc>,
}

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let policy = |level: &str| {
            let doc = format!(
                r#"{{"version":"1.0","trustPolicies":[{{"name":"fuzz","registryScopes":["*"],
                "signatureVerification":{{"level":"{level}"}},
                "trustStores":["ca:e2e","ca:alpine","signingAuthority:alpine"],"trustedIdentities":["*"]}}]}}"#
            );
            TrustPolicy::from_json(&doc).unwrap_or_else(|e| panic!("policy: {e}"))
        };
        let store = |name: &str, pem: &str| TrustStore::from_pem(name, pem).unwrap_or_else(|e| panic!("store: {e}"));
        Trust {
            policies: vec![policy("strict"), policy("permissive")],
            stores: vec![
                store("ca:e2e", include_str!("../keys/e2e.crt")),
                store("ca:alpine", include_str!("../keys/alpine-signing-cert.pem")),
                store("signingAuthority:alpine", include_str!("../keys/alpine-signing-cert.pem")),
            ],
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default(),
        }
    })
}

const TARGETS: [Target<'static>; 2] = [
    Target {
        digest: "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
        media_type: "application/vnd.oci.image.manifest.v1+json",
        size: 517,
    },
    Target {
        digest: "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0",
        media_type: "application/vnd.oci.image.manifest.v1+json",
        size: 481,
    },
];

fuzz_target!(|data: &[u8]| {
    let trust = trust();
    for policy in &trust.policies {
        for target in &TARGETS {
            let _ = verify(
                data,
                MEDIA_TYPE,
                target,
                "library/app",
                policy,
                &trust.stores,
                trust.now,
            );
        }
    }
});
