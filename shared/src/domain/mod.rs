//! The pure domain: validated newtypes, manifest parsing, events, the repository's decisions and the
//! projection of events onto views. No I/O, no async.

pub mod access;
pub mod accessory;
pub mod accessory_kind;
pub mod digest;
pub mod error;
pub mod event;
pub mod lifecycle;
pub mod manifest;
pub mod name;
pub mod position;
pub mod projection;
pub mod replication;
pub mod repository;

pub use digest::{Algorithm, Digest, DigestHasher};
pub use error::DomainError;
pub use event::{Event, EventEnvelope, NewEvent, RecordedEvent, StreamId};
pub use manifest::{Descriptor, ManifestInfo, MediaType};
pub use name::{Reference, RepoName, Tag};
pub use position::LogPosition;
