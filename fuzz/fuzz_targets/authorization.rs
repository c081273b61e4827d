//! `Authorization` headers and registry tokens: `oci::auth::credentials` (Basic and Bearer), then
//! `auth::verify` of the bearer token (JWT: header, ES256 signature, claims, times, audience) and
//! `principal_of`. The first byte picks the mode: 0 a header, 1 a bare token, 2 a claim set that is
//! issued then verified (the round trip must give it back), 3 a valid token with the rest of the
//! input XORed into it (verification must not accept other claims).
#![no_main]

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue};
use berth::auth::{self, Claims, KeyRing, SigningKey};
use berth::oci::auth::{credentials, principal_of, Credentials};
use libfuzzer_sys::fuzz_target;

const AUDIENCE: &str = "berth";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn ring() -> &'static (KeyRing, String, Claims) {
    static RING: OnceLock<(KeyRing, String, Claims)> = OnceLock::new();
    RING.get_or_init(|| {
        let key = SigningKey::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let ring = KeyRing::new(vec![key]);
        let claims = Claims {
            iss: "berth-token-service".into(),
            sub: "alice".into(),
            aud: AUDIENCE.into(),
            exp: NOW + 300,
            nbf: NOW,
            iat: NOW,
            jti: "fuzz".into(),
            access: vec![auth::ResourceActions {
                resource_type: "repository".into(),
                name: "library/app".into(),
                actions: vec!["pull".into()],
            }],
            credential_version: Some(1),
        };
        let token = auth::issue(&ring, &claims).unwrap_or_else(|e| panic!("issue: {e}"));
        (ring, token, claims)
    })
}

fn check_token(token: &str) {
    let (ring, _, _) = ring();
    if let Ok(claims) = auth::verify(ring, token, AUDIENCE, NOW) {
        assert_eq!(claims.aud, AUDIENCE);
        let _ = principal_of(&claims);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else {
                return;
            };
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value);
            match credentials(&headers) {
                Ok(Credentials::Bearer(token)) => check_token(&token),
                Ok(Credentials::Basic { username, secret }) => {
                    let _ = berth::domain::access::Username::parse(&username);
                    let _ = berth::domain::access::RobotName::parse(&username);
                    let _ = secret.len();
                }
                Ok(Credentials::None) | Err(_) => {}
            }
        }
        1 => check_token(&String::from_utf8_lossy(rest)),
        2 => {
            let Ok(claims) = serde_json::from_slice::<Claims>(rest) else {
                return;
            };
            let (ring, _, _) = ring();
            let Ok(token) = auth::issue(ring, &claims) else {
                return;
            };
            if let Ok(back) = auth::verify(ring, &token, AUDIENCE, NOW) {
                assert_eq!(back, claims, "a token gives back the claims it was issued with");
            }
        }
        _ => {
            let (ring, token, claims) = ring();
            let mut bytes = token.clone().into_bytes();
            for (i, b) in rest.iter().enumerate() {
                if let Some(t) = bytes.get_mut(i % token.len().max(1)) {
                    *t ^= b;
                }
            }
            let Ok(tampered) = String::from_utf8(bytes) else {
                return;
            };
            if let Ok(back) = auth::verify(ring, &tampered, AUDIENCE, NOW) {
                assert_eq!(&back, claims, "a tampered token verified with other claims");
            }
        }
    }
});
