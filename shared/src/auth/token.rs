//! The Docker registry bearer token (distribution "Token Authentication Implementation"): a JWT
//! (RFC 7519) in JWS compact serialization (RFC 7515 §7.1) signed with ES256 (RFC 7518 §3.4),
//! header `{"alg":"ES256","typ":"JWT","kid":<RFC 7638 thumbprint>}`, and the claim set the spec
//! names: `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` and `access`.
//!
//! Why our own compact JWS on `p256` rather than `jsonwebtoken`: `p256` 0.14 is already in the
//! build (through aws-sigv4), and ES256 compact JWS is three base64url segments and one ECDSA call.
//! `jsonwebtoken` (v11) would bring a second, older RustCrypto stack (`p256` 0.13, `rand` 0.8,
//! `sha2` 0.10 plus `rsa`, `p384` and `ed25519-dalek` under its `rust_crypto` backend) or aws-lc-rs,
//! and it would still need the PKCS#8 handling and thumbprints done with `p256`. Owning the
//! verifier also makes every refusal explicit: only `ES256` is accepted (no `none`, no HMAC
//! confusion), `crit` is refused (RFC 7515 §4.1.11), the key comes from our ring by `kid` and never
//! from the token (`jwk`, `jku`, `x5u` and `x5c` are ignored), base64url must be canonical, and the
//! signature is checked before the payload is even parsed.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};

use super::keys::{KeyRing, ES256_SIGNATURE_LEN};
use super::scope::Scope;
use super::{AuthError, AuthResult};

/// Clock skew tolerated between the token issuer and the verifier (RFC 7519 §4.1.4 allows "some
/// small leeway"): a token stays valid until `exp + 30 s` and becomes valid at `nbf - 30 s`.
pub const CLOCK_LEEWAY_SECS: i64 = 30;
/// Longest token accepted: far above any token Berth issues (a few hundred bytes per repository
/// in `access`), and a bound on the work an unauthenticated caller can ask for.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The claim set of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the token service's name.
    pub iss: String,
    /// Subject: the principal's name; empty for an anonymous caller.
    pub sub: String,
    /// Audience: the registry service the token is meant for (the `service` parameter).
    pub aud: String,
    /// Expiry, Unix seconds: the token is refused from `exp` on (give or take the leeway).
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// What the bearer may do: the granted subset of the requested scopes.
    #[serde(default)]
    pub access: Vec<ResourceActions>,
    /// Berth's private claim: the version of the subject's password or robot secret when the token
    /// was issued. A token whose version is no longer the subject's is refused, so changing a
    /// password or refreshing a secret revokes the tokens issued before.
    #[serde(
        rename = "berth_credential_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_version: Option<u64>,
}

/// One `access` entry: a resource and the actions granted on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceActions {
    /// `repository`, `registry`, ...
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// Granted actions (`pull`, `push`, `delete`, `*`); may be empty.
    pub actions: Vec<String>,
}

impl From<Scope> for ResourceActions {
    fn from(scope: Scope) -> Self {
        Self {
            resource_type: scope.resource_type,
            name: scope.name,
            actions: scope.actions,
        }
    }
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

const ALG: &str = "ES256";

/// Signs `claims` with the ring's newest key into a compact JWS.
pub fn issue(ring: &KeyRing, claims: &Claims) -> AuthResult<String> {
    let key = ring.signing_key()?;
    let header = HeaderOut {
        alg: ALG,
        typ: "JWT",
        kid: key.kid(),
    };
    let header = serde_json::to_vec(&header).map_err(|_| AuthError::Malformed("unencodable header"))?;
    let payload = serde_json::to_vec(claims).map_err(|_| AuthError::Malformed("unencodable claims"))?;
    let mut token = Base64UrlUnpadded::encode_string(&header);
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&signature));
    Ok(token)
}

/// Checks `token` and returns its claims: well-formed, ES256, signed by a key of `ring` (found by
/// `kid`), unexpired and already valid at `now` (Unix seconds, give or take
/// [`CLOCK_LEEWAY_SECS`]), and issued for `audience`.
pub fn verify(ring: &KeyRing, token: &str, audience: &str, now: i64) -> AuthResult<Claims> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Malformed("longer than 64 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("expected three dot-separated parts"));
    };
    let header: HeaderIn = decode_json(
        header_b64,
        "header is not base64url",
        "header is not a JSON object with alg",
    )?;
    if header.alg != ALG || header.crit.is_some() {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    let key = header
        .kid
        .and_then(|kid| ring.find(&kid))
        .ok_or(AuthError::UnknownKey)?;
    let signature = Base64UrlUnpadded::decode_vec(signature_b64)
        .map_err(|_| AuthError::Malformed("signature is not base64url"))?;
    if signature.len() != ES256_SIGNATURE_LEN {
        return Err(AuthError::Malformed("signature is not 64 bytes"));
    }
    // The signing input is the first two segments exactly as they appear in the token.
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(AuthError::Malformed("expected three dot-separated parts"))?;
    if !key.verifies(signing_input.as_bytes(), &signature) {
        return Err(AuthError::BadSignature);
    }
    let claims: Claims = decode_json(
        payload_b64,
        "payload is not base64url",
        "payload is not a registry claim set",
    )?;
    if claims.exp.saturating_add(CLOCK_LEEWAY_SECS) <= now {
        return Err(AuthError::Expired);
    }
    if claims.nbf > now.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(AuthError::NotYetValid);
    }
    if claims.aud != audience {
        return Err(AuthError::WrongAudience);
    }
    Ok(claims)
}

fn decode_json<T: for<'de> Deserialize<'de>>(
    segment: &str,
    not_base64: &'static str,
    not_json: &'static str,
) -> AuthResult<T> {
    let bytes = Base64UrlUnpadded::decode_vec(segment).map_err(|_| AuthError::Malformed(not_base64))?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed(not_json))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::auth::keys::SigningKey;
    use crate::auth::test_vectors as tv;

    const NOW: i64 = 1_800_000_000;
    const AUD: &str = "registry.example";

    fn claims() -> Claims {
        Claims {
            iss: "berth".into(),
            sub: "alice".into(),
            aud: AUD.into(),
            exp: NOW + 300,
            nbf: NOW,
            iat: NOW,
            jti: "token-1".into(),
            credential_version: Some(7),
            access: vec![ResourceActions {
                resource_type: "repository".into(),
                name: "library/alpine".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
        }
    }

    fn ring() -> KeyRing {
        KeyRing::new(vec![SigningKey::generate().unwrap()])
    }

    fn b64(bytes: &[u8]) -> String {
        Base64UrlUnpadded::encode_string(bytes)
    }

    fn segments(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    fn decode(segment: &str) -> Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(segment).unwrap()).unwrap()
    }

    /// A token with any header and payload, validly signed by `key`.
    fn craft(key: &SigningKey, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let signature = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&signature))
    }

    fn header_for(key: &SigningKey) -> Value {
        json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()})
    }

    fn with(edit: impl FnOnce(&mut Claims)) -> Claims {
        let mut c = claims();
        edit(&mut c);
        c
    }

    #[test]
    fn an_issued_token_verifies_and_returns_its_claims() {
        let ring = ring();
        let token = issue(&ring, &claims()).unwrap();
        assert_eq!(verify(&ring, &token, AUD, NOW).unwrap(), claims());
    }

    #[test]
    fn the_header_is_es256_jwt_naming_the_signing_key() {
        let ring = ring();
        let token = issue(&ring, &claims()).unwrap();
        let kid = ring.signing_key().unwrap().kid();
        assert_eq!(
            decode(&segments(&token)[0]),
            json!({"alg": "ES256", "typ": "JWT", "kid": kid})
        );
    }

    #[test]
    fn the_payload_carries_the_spec_claim_names_and_the_credential_version() {
        let token = issue(&ring(), &claims()).unwrap();
        assert_eq!(
            decode(&segments(&token)[1]),
            json!({
                "iss": "berth", "sub": "alice", "aud": AUD,
                "exp": NOW + 300, "nbf": NOW, "iat": NOW, "jti": "token-1",
                "access": [{"type": "repository", "name": "library/alpine", "actions": ["pull", "push"]}],
                "berth_credential_version": 7,
            })
        );
    }

    #[test]
    fn an_anonymous_token_has_an_empty_subject_and_an_empty_access_list() {
        let ring = ring();
        let anonymous = with(|c| {
            c.sub = String::new();
            c.access = vec![];
        });
        let token = issue(&ring, &anonymous).unwrap();
        assert_eq!(decode(&segments(&token)[1])["access"], json!([]));
        assert_eq!(verify(&ring, &token, AUD, NOW).unwrap(), anonymous);
    }

    #[test]
    fn a_token_from_an_independent_implementation_verifies() {
        let ring = KeyRing::new(vec![SigningKey::from_pkcs8_pem(tv::P256_PKCS8_PEM).unwrap()]);
        let got = verify(&ring, tv::ES256_TOKEN, "berth.test", NOW).unwrap();
        assert_eq!(
            got,
            Claims {
                iss: "python".into(),
                sub: "alice".into(),
                aud: "berth.test".into(),
                exp: 4_102_444_800,
                nbf: 1_700_000_000,
                iat: 1_700_000_000,
                jti: "vector-1".into(),
                access: vec![ResourceActions {
                    resource_type: "repository".into(),
                    name: "library/alpine".into(),
                    actions: vec!["pull".into()],
                }],
                credential_version: None,
            }
        );
    }

    #[test]
    fn changing_any_single_character_of_a_token_is_refused() {
        let ring = ring();
        let token = issue(&ring, &claims()).unwrap();
        for (i, c) in token.char_indices().filter(|(_, c)| *c != '.') {
            for replacement in ['A', 'B', '-', '_'] {
                if replacement == c {
                    continue;
                }
                let mut tampered = token.clone();
                tampered.replace_range(i..i + 1, &replacement.to_string());
                assert!(
                    verify(&ring, &tampered, AUD, NOW).is_err(),
                    "changing character {i} from {c:?} to {replacement:?} was accepted"
                );
            }
        }
    }

    #[test]
    fn a_payload_swapped_for_another_is_refused() {
        let ring = ring();
        let s = segments(&issue(&ring, &claims()).unwrap());
        let escalated = with(|c| c.sub = "admin".into());
        let payload = b64(&serde_json::to_vec(&escalated).unwrap());
        let forged = format!("{}.{payload}.{}", s[0], s[2]);
        assert_eq!(verify(&ring, &forged, AUD, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_signature_taken_from_another_token_is_refused() {
        let ring = ring();
        let a = segments(&issue(&ring, &claims()).unwrap());
        let b = segments(&issue(&ring, &with(|c| c.jti = "token-2".into())).unwrap());
        let forged = format!("{}.{}.{}", a[0], a[1], b[2]);
        assert_eq!(verify(&ring, &forged, AUD, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_signature_with_one_flipped_bit_is_refused() {
        let ring = ring();
        let s = segments(&issue(&ring, &claims()).unwrap());
        let signature = Base64UrlUnpadded::decode_vec(&s[2]).unwrap();
        for byte in [0, 31, 32, 63] {
            let mut flipped = signature.clone();
            flipped[byte] ^= 0x01;
            let forged = format!("{}.{}.{}", s[0], s[1], b64(&flipped));
            assert_eq!(
                verify(&ring, &forged, AUD, NOW),
                Err(AuthError::BadSignature),
                "byte {byte}"
            );
        }
    }

    #[test]
    fn a_header_rewritten_under_the_same_signature_is_refused() {
        let ring = ring();
        let key = ring.signing_key().unwrap();
        let s = segments(&issue(&ring, &claims()).unwrap());
        let header = json!({"alg": "ES256", "typ": "JWS", "kid": key.kid()});
        let forged = format!("{}.{}.{}", b64(header.to_string().as_bytes()), s[1], s[2]);
        assert_eq!(verify(&ring, &forged, AUD, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn algorithms_other_than_es256_are_refused() {
        let ring = ring();
        let key = ring.signing_key().unwrap();
        let payload = serde_json::to_value(claims()).unwrap();
        for alg in ["none", "None", "HS256", "RS256", "ES384", "es256", "ES256 ", ""] {
            let token = craft(
                key,
                &json!({"alg": alg, "typ": "JWT", "kid": key.kid()}),
                &payload,
            );
            assert_eq!(
                verify(&ring, &token, AUD, NOW),
                Err(AuthError::UnsupportedAlgorithm),
                "{alg:?}"
            );
        }
        let unsigned = format!(
            "{}.{}.",
            b64(json!({"alg": "none"}).to_string().as_bytes()),
            segments(&issue(&ring, &claims()).unwrap())[1]
        );
        assert_eq!(
            verify(&ring, &unsigned, AUD, NOW),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let ring = ring();
        let key = ring.signing_key().unwrap();
        let header = json!({"alg": "ES256", "kid": key.kid(), "crit": ["exp"], "exp": 0});
        let token = craft(key, &header, &serde_json::to_value(claims()).unwrap());
        assert_eq!(
            verify(&ring, &token, AUD, NOW),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn a_token_from_another_ring_is_refused_as_an_unknown_key() {
        let token = issue(&ring(), &claims()).unwrap();
        assert_eq!(verify(&ring(), &token, AUD, NOW), Err(AuthError::UnknownKey));
    }

    #[test]
    fn a_token_signed_by_another_key_under_a_forged_kid_fails_its_signature() {
        let ring = ring();
        let attacker = SigningKey::generate().unwrap();
        let forged_header = header_for(ring.signing_key().unwrap());
        let token = craft(
            &attacker,
            &forged_header,
            &serde_json::to_value(claims()).unwrap(),
        );
        assert_eq!(verify(&ring, &token, AUD, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_key_embedded_in_the_header_is_not_trusted() {
        let ring = ring();
        let attacker = SigningKey::generate().unwrap();
        let header = json!({
            "alg": "ES256", "kid": attacker.kid(),
            "jwk": serde_json::to_value(attacker.public_jwk()).unwrap(),
        });
        let token = craft(&attacker, &header, &serde_json::to_value(claims()).unwrap());
        assert_eq!(verify(&ring, &token, AUD, NOW), Err(AuthError::UnknownKey));
    }

    #[test]
    fn a_token_without_a_kid_is_refused_as_an_unknown_key() {
        let ring = ring();
        let key = ring.signing_key().unwrap();
        let token = craft(
            key,
            &json!({"alg": "ES256"}),
            &serde_json::to_value(claims()).unwrap(),
        );
        assert_eq!(verify(&ring, &token, AUD, NOW), Err(AuthError::UnknownKey));
    }

    #[test]
    fn expiry_allows_the_clock_leeway_and_no_more() {
        let ring = ring();
        let cases: &[(i64, Result<(), AuthError>)] = &[
            (NOW + 300, Ok(())),
            (NOW + 1, Ok(())),
            (NOW, Ok(())),
            (NOW - CLOCK_LEEWAY_SECS + 1, Ok(())),
            (NOW - CLOCK_LEEWAY_SECS, Err(AuthError::Expired)),
            (NOW - CLOCK_LEEWAY_SECS - 1, Err(AuthError::Expired)),
            (NOW - 86_400, Err(AuthError::Expired)),
            (i64::MIN, Err(AuthError::Expired)),
            (i64::MAX, Ok(())),
        ];
        for (exp, want) in cases {
            let token = issue(&ring, &with(|c| c.exp = *exp)).unwrap();
            assert_eq!(
                verify(&ring, &token, AUD, NOW).map(drop),
                *want,
                "exp = now {:+}",
                exp - NOW
            );
        }
    }

    #[test]
    fn not_before_allows_the_clock_leeway_and_no_more() {
        let ring = ring();
        let cases: &[(i64, Result<(), AuthError>)] = &[
            (NOW - 300, Ok(())),
            (NOW, Ok(())),
            (NOW + CLOCK_LEEWAY_SECS, Ok(())),
            (NOW + CLOCK_LEEWAY_SECS + 1, Err(AuthError::NotYetValid)),
            (NOW + 3_600, Err(AuthError::NotYetValid)),
            (i64::MIN, Ok(())),
        ];
        for (nbf, want) in cases {
            let token = issue(&ring, &with(|c| c.nbf = *nbf)).unwrap();
            assert_eq!(verify(&ring, &token, AUD, NOW).map(drop), *want, "nbf = {nbf}");
        }
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        let ring = ring();
        let token = issue(&ring, &with(|c| (c.exp, c.nbf) = (i64::MAX, i64::MAX))).unwrap();
        assert_eq!(verify(&ring, &token, AUD, i64::MAX), Err(AuthError::Expired));
        assert_eq!(verify(&ring, &token, AUD, i64::MIN), Err(AuthError::NotYetValid));
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let ring = ring();
        let token = issue(&ring, &claims()).unwrap();
        for audience in ["other.example", "Registry.example", "registry.example ", ""] {
            assert_eq!(
                verify(&ring, &token, audience, NOW),
                Err(AuthError::WrongAudience),
                "{audience:?}"
            );
        }
    }

    #[test]
    fn old_tokens_verify_after_rotation_and_new_tokens_carry_the_new_kid() {
        let old = SigningKey::generate().unwrap();
        let new = SigningKey::generate().unwrap();
        let mut ring = KeyRing::new(vec![old.clone()]);
        let before = issue(&ring, &claims()).unwrap();
        ring.rotate(new.clone());
        let after = issue(&ring, &claims()).unwrap();
        assert_eq!(decode(&segments(&before)[0])["kid"], json!(old.kid()));
        assert_eq!(decode(&segments(&after)[0])["kid"], json!(new.kid()));
        assert!(verify(&ring, &before, AUD, NOW).is_ok());
        assert!(verify(&ring, &after, AUD, NOW).is_ok());
        ring.retire(old.kid());
        assert_eq!(verify(&ring, &before, AUD, NOW), Err(AuthError::UnknownKey));
        assert!(verify(&ring, &after, AUD, NOW).is_ok());
    }

    #[test]
    fn an_empty_ring_issues_nothing_and_verifies_nothing() {
        let token = issue(&ring(), &claims()).unwrap();
        assert_eq!(
            issue(&KeyRing::default(), &claims()),
            Err(AuthError::NoSigningKey)
        );
        assert_eq!(
            verify(&KeyRing::default(), &token, AUD, NOW),
            Err(AuthError::UnknownKey)
        );
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_key_is_used() {
        let ring = ring();
        let s = segments(&issue(&ring, &claims()).unwrap());
        let too_long = "a".repeat(MAX_TOKEN_LEN + 1);
        let padded_header = format!("{}=.{}.{}", s[0], s[1], s[2]);
        let short_signature = format!("{}.{}.{}", s[0], s[1], b64(&[7u8; 63]));
        let bad_signature = format!("{}.{}.{}!", s[0], s[1], s[2]);
        let no_alg = format!("{}.{}.{}", b64(b"{}"), s[1], s[2]);
        let header_array = format!("{}.{}.{}", b64(b"[]"), s[1], s[2]);
        let cases: &[(&str, &str)] = &[
            ("", "expected three dot-separated parts"),
            ("abc", "expected three dot-separated parts"),
            ("a.b", "expected three dot-separated parts"),
            ("a.b.c.d", "expected three dot-separated parts"),
            ("..", "header is not a JSON object with alg"),
            ("!!!.b.c", "header is not base64url"),
            (&padded_header, "header is not base64url"),
            (&no_alg, "header is not a JSON object with alg"),
            (&header_array, "header is not a JSON object with alg"),
            (&short_signature, "signature is not 64 bytes"),
            (&bad_signature, "signature is not base64url"),
            (&too_long, "longer than 64 KiB"),
        ];
        for (token, want) in cases {
            assert_eq!(
                verify(&ring, token, AUD, NOW),
                Err(AuthError::Malformed(want)),
                "{token:.40}"
            );
        }
    }

    #[test]
    fn a_validly_signed_payload_that_is_not_a_claim_set_is_refused() {
        let ring = ring();
        let key = ring.signing_key().unwrap();
        let mut no_exp = serde_json::to_value(claims()).unwrap();
        no_exp.as_object_mut().unwrap().remove("exp");
        let mut float_exp = serde_json::to_value(claims()).unwrap();
        float_exp["exp"] = json!(1.8e9);
        for payload in [json!("text"), json!([]), no_exp, float_exp] {
            let token = craft(key, &header_for(key), &payload);
            assert_eq!(
                verify(&ring, &token, AUD, NOW),
                Err(AuthError::Malformed("payload is not a registry claim set")),
                "{payload}"
            );
        }
    }

    #[test]
    fn a_parsed_scope_becomes_an_access_entry() {
        let scope = Scope::parse("repository:library/alpine:pull,push").unwrap();
        assert_eq!(ResourceActions::from(scope), claims().access[0]);
    }
}
