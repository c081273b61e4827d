//! The one registry client of Berth: `berth sign` and `berth verify` use it, and the replicator
//! will (issue 15, docs/replication.md). It speaks the OCI distribution API (v1.1) to any
//! registry, with docker's token authentication and Basic credentials.
//!
//! - [`reference`]: image references as docker and cosign write them;
//! - [`auth`]: credentials and `WWW-Authenticate` challenges;
//! - [`client`]: the client of one repository (manifests, blobs, referrers);
//! - [`documents`]: the OCI documents cosign's signatures live in;
//! - [`transfer`]: copying a blob to a registry (HEAD, mount, streamed or chunked bytes).

pub mod auth;
pub mod client;
pub mod documents;
pub mod reference;
pub mod transfer;

pub use auth::{parse_challenge, Challenge, Credentials};
pub use client::{Access, Endpoint, Fetched, RegistryClient, MAX_MANIFEST_BYTES};
pub use reference::ImageRef;
pub use transfer::{copy_blob, BlobReader, Copied, CopyOptions};

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
    /// A transfer broke off midway (the source's bytes stopped, or the destination's upload is
    /// not where the copy left it); another attempt resumes or starts over.
    #[error("{0}")]
    Interrupted(String),
    /// The registry answered something the protocol does not allow (a wrong digest, a document
    /// too large or malformed, no token, no upload location).
    #[error("{0}")]
    Protocol(String),
}

#[cfg(test)]
pub(crate) mod testing {
    use super::{Access, Credentials, ImageRef, RegistryClient};

    /// Berth's registry (embedded storage, an admin whose password is `Admin12345`) served on a
    /// loopback port: its address, and the directory that holds its store.
    pub async fn berth_on_loopback() -> (String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::adapters::local::open(dir.path()).unwrap();
        registry.bootstrap(Some("Admin12345")).await.unwrap();
        let app = crate::oci::router(
            registry,
            crate::oci::Host::container(),
            crate::oci::AuthConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (address, dir)
    }

    /// The admin's client of `library/<name>` at `address`.
    pub fn admin_client(address: &str, name: &str) -> RegistryClient {
        let image = ImageRef::parse(&format!("{address}/library/{name}:1")).unwrap();
        let admin = Credentials {
            username: "admin".into(),
            password: "Admin12345".into(),
        };
        RegistryClient::new(&image, true, Some(admin), Access::PullPush).unwrap()
    }
}
