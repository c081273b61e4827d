//! The one registry client of Berth: `berth sign` and `berth verify` use it, and the replicator
//! will (issue 15, docs/replication.md). It speaks the OCI distribution API (v1.1) to any
//! registry, with docker's token authentication and Basic credentials.
//!
//! - [`reference`]: image references as docker and cosign write them;
//! - [`auth`]: credentials and `WWW-Authenticate` challenges;
//! - [`client`]: the client of one repository (manifests, blobs, referrers);
//! - [`documents`]: the OCI documents cosign's signatures live in.

pub mod auth;
pub mod client;
pub mod documents;
pub mod reference;

pub use auth::{parse_challenge, Challenge, Credentials};
pub use client::{Access, Fetched, RegistryClient, MAX_MANIFEST_BYTES};
pub use reference::ImageRef;

/// Why a request to a registry failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client could not be set up for the request (a host or path that makes no URL, a
    /// credential that is no header value).
    #[error("{0}")]
    Setup(String),
    /// No answer: the registry (or its token service) could not be reached, or broke off.
    #[error("cannot reach {target}")]
    Unreachable {
        target: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error status.
    #[error("{request}: the registry answered {status}: {detail}")]
    Refused {
        request: String,
        status: u16,
        detail: String,
    },
    /// The registry answered something the protocol does not allow (a wrong digest, a document
    /// too large or malformed, no token, no upload location).
    #[error("{0}")]
    Protocol(String),
}
