//! Replication (issue 15, docs/replication.md): the registries it copies from and to, and its
//! policies with the pure plan of a run. Pure: the copying itself is the application's
//! (`app::replication`), over the one registry client.

pub mod policy;
pub mod registry;

pub use policy::{Candidate, CopyPlan, Direction, FilterSpec, Policy, PolicyError, PolicySpec, TriggerSpec};
pub use registry::{normalize_url, RegistryError, RegistryKind, RegistrySpec, SealedCredential};
