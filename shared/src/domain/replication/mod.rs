//! Replication (issue 15, docs/replication.md): the registries it copies from and to. Pure: the
//! copying itself is the application's (`app::replication`), over the one registry client.

pub mod registry;

pub use registry::{normalize_url, RegistryError, RegistryKind, RegistrySpec, SealedCredential};
