//! Use cases: load what a decision needs from the views, let the domain decide, append the events
//! (retrying on a concurrency conflict). Generic over the ports; no HTTP here.

mod blobs;
mod context;
mod error;
mod listings;
mod manifests;
mod rebuild;
mod registry;

pub use blobs::ChunkRange;
pub use context::{Principal, RequestContext};
pub use error::AppError;
pub use listings::Page;
pub use manifests::{PushedManifest, MAX_MANIFEST_BYTES};
pub use rebuild::RebuildReport;
pub use registry::Registry;
