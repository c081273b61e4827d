//! The pure crypto building blocks of registry authentication: credential hashing (`password`),
//! the Docker registry token (distribution "Token Authentication Specification" and "Token
//! Authentication Implementation", a JWS/JWT per RFC 7515/7519 signed with ES256 per RFC 7518 §3.4),
//! its `scope` grammar (`scope`) and the rotating ES256 keys that sign it (`keys`).
//!
//! No I/O and no clock: callers pass `now` in, so every rule here is tested without waiting.
//! Error messages never carry a secret, a hash or a token.

pub mod keys;
pub mod password;
pub mod scope;
pub mod token;

#[cfg(test)]
mod test_vectors;

pub use keys::{KeyRing, PublicJwk, SigningKey};
pub use password::{generate_secret, hash_secret, verify_secret, verify_secret_in, HashMemory};
pub use scope::{parse_scopes, Scope};
pub use token::{issue, verify, Claims, ResourceActions, CLOCK_LEEWAY_SECS};

/// Why an authentication building block refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The system's secure random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Argon2 refused its parameters or input (the message is argon2's, never the secret).
    #[error("hashing a secret failed: {0}")]
    Hash(String),
    /// A signing key could not be encoded or decoded.
    #[error("signing key {0}")]
    Key(&'static str),
    /// Issuing needs a key, and the ring is empty.
    #[error("the key ring has no signing key")]
    NoSigningKey,
    /// The token is not a well-formed compact JWS carrying our claims.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The token's header names an algorithm other than ES256 (or asks for critical extensions).
    #[error("token algorithm is not ES256")]
    UnsupportedAlgorithm,
    /// The token's `kid` names no key in the ring (or names none at all).
    #[error("token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not match the header and payload under the key its `kid` names.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the clock leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the clock leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `aud` names another service.
    #[error("token was issued for another service")]
    WrongAudience,
    /// A `scope` parameter does not match `type:name:actions`.
    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope { scope: String, reason: &'static str },
}

/// The result of an authentication building block.
pub type AuthResult<T> = Result<T, AuthError>;
