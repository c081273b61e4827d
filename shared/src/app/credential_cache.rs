//! Verified credentials, remembered for a short while: argon2 is slow and memory-hungry on purpose,
//! and a Docker client sends its Basic credentials with every request.
//!
//! An entry is keyed by SHA-256 over a random per-process key, the username and the secret, so the
//! map holds nothing an attacker who reads memory could test passwords against offline without the
//! key. It answers only while it is younger than [`CREDENTIAL_CACHE_TTL`] and while the stored hash
//! it was checked against is still the account's (a password change or robot secret refresh
//! invalidates it at once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::domain::access::Principal;

/// How long a verified credential is trusted without argon2: short, so a credential that stopped
/// being valid another way (a change made through another process) stops working soon.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(60);
/// Verified credentials remembered at most (a few hundred bytes each). Expired ones are dropped
/// when full, then everything.
const CREDENTIAL_CACHE_ENTRIES: usize = 4_096;

/// What a verification established.
struct Verified {
    principal: Principal,
    /// The stored hash the secret was checked against.
    checked_hash: String,
    at: Instant,
}

pub(super) struct CredentialCache {
    /// `None` if the system's random source failed: then nothing is remembered.
    key: Option<[u8; 32]>,
    entries: HashMap<[u8; 32], Verified>,
}

impl CredentialCache {
    /// An empty cache with a fresh random key.
    pub(super) fn new() -> CredentialCache {
        let mut key = [0u8; 32];
        let key = getrandom::fill(&mut key).ok().map(|()| key);
        if key.is_none() {
            tracing::warn!("no random key for the credential cache: every sign-in runs argon2");
        }
        CredentialCache {
            key,
            entries: HashMap::new(),
        }
    }

    fn key_of(&self, username: &str, secret: &str) -> Option<[u8; 32]> {
        let key = self.key?;
        let digest = Sha256::new()
            .chain_update(key)
            .chain_update(username.as_bytes())
            .chain_update([0])
            .chain_update(secret.as_bytes())
            .finalize();
        Some(digest.into())
    }

    /// Whether `username`/`secret` were verified as `principal` against `stored_hash` less than
    /// [`CREDENTIAL_CACHE_TTL`] before `now`.
    pub(super) fn holds(
        &self,
        username: &str,
        secret: &str,
        principal: &Principal,
        stored_hash: &str,
        now: Instant,
    ) -> bool {
        let Some(key) = self.key_of(username, secret) else {
            return false;
        };
        (self.entries.get(&key)).is_some_and(|v| {
            &v.principal == principal
                && v.checked_hash == stored_hash
                && now.saturating_duration_since(v.at) < CREDENTIAL_CACHE_TTL
        })
    }

    /// Remembers a successful verification made at `now`.
    pub(super) fn remember(
        &mut self,
        username: &str,
        secret: &str,
        principal: Principal,
        stored_hash: String,
        now: Instant,
    ) {
        if self.entries.len() >= CREDENTIAL_CACHE_ENTRIES {
            self.entries
                .retain(|_, v| now.saturating_duration_since(v.at) < CREDENTIAL_CACHE_TTL);
            if self.entries.len() >= CREDENTIAL_CACHE_ENTRIES {
                self.entries.clear();
            }
        }
        let Some(key) = self.key_of(username, secret) else {
            return;
        };
        self.entries.insert(
            key,
            Verified {
                principal,
                checked_hash: stored_hash,
                at: now,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::domain::access::Username;

    fn alice() -> Principal {
        Principal::User(Username::parse("alice").unwrap())
    }

    #[test]
    fn a_remembered_credential_holds_until_its_ttl_ends() {
        let mut cache = CredentialCache::new();
        let t0 = Instant::now();
        cache.remember("alice", "pw", alice(), "$hash1".into(), t0);
        assert!(cache.holds("alice", "pw", &alice(), "$hash1", t0));
        let almost = t0 + CREDENTIAL_CACHE_TTL - Duration::from_millis(1);
        assert!(cache.holds("alice", "pw", &alice(), "$hash1", almost));
        assert!(!cache.holds("alice", "pw", &alice(), "$hash1", t0 + CREDENTIAL_CACHE_TTL));
    }

    #[test]
    fn a_password_change_invalidates_the_remembered_credential() {
        let mut cache = CredentialCache::new();
        let t0 = Instant::now();
        cache.remember("alice", "pw", alice(), "$hash1".into(), t0);
        assert!(!cache.holds("alice", "pw", &alice(), "$hash2", t0));
    }

    #[test]
    fn another_secret_or_user_is_not_remembered() {
        let mut cache = CredentialCache::new();
        let t0 = Instant::now();
        cache.remember("alice", "pw", alice(), "$hash1".into(), t0);
        assert!(!cache.holds("alice", "pw2", &alice(), "$hash1", t0));
        assert!(!cache.holds("alice\0pw", "", &alice(), "$hash1", t0));
    }

    #[test]
    fn two_caches_key_one_credential_differently() {
        let a = CredentialCache::new();
        let b = CredentialCache::new();
        assert_ne!(a.key_of("alice", "pw"), b.key_of("alice", "pw"));
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let mut cache = CredentialCache::new();
        let t0 = Instant::now();
        cache.remember("alice", "old", alice(), "$h".into(), t0);
        let later = t0 + CREDENTIAL_CACHE_TTL / 2;
        for i in 1..CREDENTIAL_CACHE_ENTRIES {
            cache.remember("alice", &i.to_string(), alice(), "$h".into(), later);
        }
        let expired_old = t0 + CREDENTIAL_CACHE_TTL;
        cache.remember("alice", "new", alice(), "$h".into(), expired_old);
        assert!(cache.holds("alice", "1", &alice(), "$h", expired_old));
        assert!(cache.holds("alice", "new", &alice(), "$h", expired_old));
        assert_eq!(cache.entries.len(), CREDENTIAL_CACHE_ENTRIES);
    }
}
