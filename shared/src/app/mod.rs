//! Use cases: load what a decision needs from the views, let the domain decide, append the events
//! (retrying on a concurrency conflict). Generic over the ports; no HTTP here.

mod access;
mod accessories;
mod blobs;
mod context;
mod credential_cache;
mod error;
mod gc;
mod gc_fence;
mod health;
mod immutability;
mod janitor;
mod listings;
pub mod login_guard;
mod manifests;
mod projector;
mod quota;
mod rebuild;
mod registry;
mod replication;
mod replication_events;
mod replication_run;
mod retention;
pub mod subscriptions;
mod trust;

pub use access::{hash as hash_secret, Bootstrap, ADMIN_USERNAME};
pub use accessories::{AccessoryView, ArtifactView};
pub use blobs::ChunkRange;
pub use context::{Principal, RequestContext};
pub use error::{retry_after_secs, AppError};
pub use gc::{
    grace_from_env, GcFinished, GcOptions, GcOutcome, GcRecord, GcReport, GcRun, CHECKPOINT_EVERY,
    DEFAULT_GC_GRACE,
};
pub use gc_fence::{GcTiming, DEFAULT_DECISION_BOUND, DEFAULT_FENCE_CACHE};
pub use health::{ComponentHealth, HEALTH_TIMEOUT};
pub use listings::Page;
pub use login_guard::{with_client_address, LoginLimits};
pub use manifests::{PushedManifest, MAX_MANIFEST_BYTES};
pub use projector::{CatchUpError, Projected, ProjectionFailure, Projector, AUDIT_PROJECTION};
pub use rebuild::RebuildReport;
pub use registry::{
    parse_reverify_budget, reverify_budget_from_env, Registry, DEFAULT_REVERIFY_BUDGET, REVERIFY_BUDGET_VAR,
};
pub use replication::{endpoint_of, CredentialDraft, Health, RegistryDraft, Secret, PING_TIMEOUT};
pub use replication_events::{ReplicationTriggers, REPLICATION_SUBSCRIPTION};
pub use replication_run::{
    execution_id, split_execution_id, ReplicationExecution, ReplicationRun, ReplicationTask,
    ReplicationTrigger,
};
pub use retention::{
    RetentionExecution, RetentionRun, RetentionTask, RetentionTrigger, MAX_TASK_ROWS, PULL_RECORD_INTERVAL,
};
pub use subscriptions::{
    SubscriptionState, SubscriptionStatus, Subscriptions, EMBEDDED_SUBSCRIPTIONS, SUBSCRIPTIONS,
};
pub use trust::Reverification;
