//! Credential storage: Argon2id (RFC 9106) hashes in PHC string format, and random secrets for
//! robot accounts and generated admin passwords.
//!
//! Parameters follow the OWASP Password Storage Cheat Sheet's minimum for Argon2id
//! (m = 19 MiB, t = 2, p = 1): one verification costs tens of milliseconds and 19 MiB, which a
//! registry can afford on every token request that presents a password (Docker clients send their
//! Basic credentials to the token endpoint whenever they need a new token).
//! Verification reads the parameters back from the stored PHC string, so raising them later only
//! affects new hashes.
//!
//! Build note: unoptimised Argon2 takes seconds per hash, so the workspace `Cargo.toml` carries
//!
//! ```toml
//! [profile.dev.package.argon2]
//! opt-level = 3
//!
//! [profile.dev.package.blake2]
//! opt-level = 3
//! ```
//!
//! to keep debug builds (and so the tests) fast. Keep it when touching the profiles.

use argon2::password_hash::phc::Output;
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version, ARGON2ID_IDENT};
use base64ct::{Base64UrlUnpadded, Encoding};

use super::{AuthError, AuthResult};

/// Argon2id memory cost in KiB: OWASP's minimum for Argon2id with t = 2 (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes over memory: OWASP's minimum paired with 19 MiB.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes: one, so a login occupies one core of a small Lambda.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Random bytes in a generated secret: 256 bits, beyond any guessing, as 43 URL-safe characters.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// Hashes `secret` with Argon2id and a fresh random salt, returning the PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) to store.
pub fn hash_secret(secret: &str) -> AuthResult<String> {
    let hash = hasher()?.hash_password(secret.as_bytes()).map_err(|e| match e {
        argon2::password_hash::Error::RngFailure => AuthError::Random,
        other => AuthError::Hash(other.to_string()),
    })?;
    Ok(hash.to_string())
}

/// Whether `secret` matches the stored PHC string `phc`. The comparison of hash outputs is
/// constant-time; a malformed string, or a hash of another Argon2 variant, never matches.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    verify_secret_in(secret, phc, &mut HashMemory::default())
}

/// Argon2's working memory (`m` KiB, 19 MiB with the parameters above), kept between checks.
/// A check allocates it afresh otherwise, and the allocator keeps each thread's freed 19 MiB
/// in that thread's arena: a server that checks on many threads then holds many times 19 MiB.
/// Reusing one per hashing turn bounds the memory of checks to turns × 19 MiB.
#[derive(Default)]
pub struct HashMemory(Vec<argon2::Block>);

/// [`verify_secret`] computing in `memory` (grown to the stored hash's `m` if smaller).
pub fn verify_secret_in(secret: &str, phc: &str, memory: &mut HashMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != ARGON2ID_IDENT {
        return false;
    }
    // The stored string's own parameters, salt and version drive the computation.
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    if memory.0.len() < blocks {
        memory.0.resize(blocks, argon2::Block::default());
    }
    let Some(work) = memory.0.get_mut(..blocks) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    if argon2
        .hash_password_into_with_memory(secret.as_bytes(), salt.as_ref(), &mut out, work)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A fresh secret of [`GENERATED_SECRET_BYTES`] random bytes, URL-safe base64 without padding
/// (safe in a URL, a header and a shell).
pub fn generate_secret() -> AuthResult<String> {
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| AuthError::Random)?;
    Ok(Base64UrlUnpadded::encode_string(&bytes))
}

fn hasher() -> AuthResult<Argon2<'static>> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_secret_verifies() {
        let phc = hash_secret("correct horse battery staple").unwrap();
        assert!(verify_secret("correct horse battery staple", &phc));
    }

    #[test]
    fn the_hash_is_argon2id_with_the_owasp_parameters() {
        let phc = hash_secret("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("s3cret"));
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let phc = hash_secret("right").unwrap();
        assert!(!verify_secret("wrong", &phc));
        assert!(!verify_secret("", &phc));
        assert!(!verify_secret("right ", &phc));
    }

    #[test]
    fn two_hashes_of_one_secret_differ_by_their_salt() {
        let a = hash_secret("same").unwrap();
        let b = hash_secret("same").unwrap();
        assert_ne!(a, b);
        assert!(verify_secret("same", &a));
        assert!(verify_secret("same", &b));
    }

    #[test]
    fn the_empty_secret_hashes_and_verifies_like_any_other() {
        let phc = hash_secret("").unwrap();
        assert!(verify_secret("", &phc));
        assert!(!verify_secret(" ", &phc));
    }

    #[test]
    fn malformed_hashes_never_match() {
        let good = hash_secret("pw").unwrap();
        let truncated = &good[..good.len() - 5];
        let wrong_output = {
            // Replace the last output character with another valid base64 character.
            let mut s = good.clone();
            let last = s.pop().unwrap();
            s.push(if last == 'A' { 'B' } else { 'A' });
            s
        };
        let cases: &[(&str, &str)] = &[
            ("empty", ""),
            ("not phc", "pw"),
            (
                "plain sha256 hex",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
            ("missing hash", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0"),
            (
                "unknown algorithm",
                "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            ),
            (
                "bad params",
                "$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            ),
            ("truncated", truncated),
            ("wrong output", &wrong_output),
        ];
        for (what, phc) in cases {
            assert!(!verify_secret("pw", phc), "{what} matched");
        }
    }

    #[test]
    fn one_memory_serves_checks_of_different_hashes_and_costs() {
        let mut memory = HashMemory::default();
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"small")
        .unwrap()
        .to_string();
        let big = hash_secret("big").unwrap();
        for _ in 0..2 {
            assert!(verify_secret_in("small", &small, &mut memory));
            assert!(verify_secret_in("big", &big, &mut memory));
            assert!(!verify_secret_in("big", &small, &mut memory));
            assert!(!verify_secret_in("small", &big, &mut memory));
        }
        assert_eq!(
            memory.0.len(),
            ARGON2_MEMORY_KIB as usize,
            "grown once, to the larger cost"
        );
    }

    #[test]
    fn another_argon2_variant_is_refused_even_with_the_right_secret() {
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        assert!(argon2i.starts_with("$argon2i$"));
        assert!(!verify_secret("pw", &argon2i));
    }

    #[test]
    fn generated_secrets_are_long_url_safe_and_distinct() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            Base64UrlUnpadded::decode_vec(&a).unwrap().len(),
            GENERATED_SECRET_BYTES
        );
    }
}
