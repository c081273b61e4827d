//! The subscriptions wired per configuration, as `local` and `aws` wire the registry: the log they
//! read, where their checkpoints live, and their handlers (today the audit archive, `audit`).
//!
//! ```text
//! embedded   log + checkpoints in <data-dir>/berth.redb     archive in <data-dir>/audit/
//! aws        log + checkpoints in the DynamoDB table        archive in the bucket's audit/
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::app::{
    Projector, Registry, ReplicationTriggers, Subscriptions, AUDIT_PROJECTION, REPLICATION_SUBSCRIPTION,
};

use super::audit::FsAuditSink;
use super::aws::AwsTargets;
use super::dynamodb::DynamoStore;
use super::local::LocalError;
use super::s3::{S3AuditSink, S3BlobStore};

/// The embedded configuration's subscriptions over an open registry (`berth serve` runs them in
/// its own process: the embedded store is single-process): the audit archive and event-based
/// replication.
pub fn local_for(registry: &Registry, data_dir: &Path) -> Result<Subscriptions, LocalError> {
    let err = |reason: String| LocalError::DataDir {
        path: data_dir.display().to_string(),
        reason,
    };
    let checkpoints =
        (registry.checkpoints().cloned()).ok_or_else(|| err("the registry keeps no checkpoints".into()))?;
    let sink = Arc::new(FsAuditSink::open(data_dir).map_err(|e| err(e.to_string()))?);
    let triggers = Arc::new(ReplicationTriggers::new(registry.clone()));
    Ok(Subscriptions::new(registry.log().clone())
        .with(Projector::new(AUDIT_PROJECTION, sink, checkpoints.clone()))
        .with(Projector::new(REPLICATION_SUBSCRIPTION, triggers, checkpoints)))
}

/// The embedded configuration's subscriptions, opening the store (`berth project`: not while
/// `berth serve` runs on the same data directory).
pub fn local(data_dir: &Path) -> Result<Subscriptions, LocalError> {
    local_for(&super::local::open(data_dir)?, data_dir)
}

/// The AWS configuration's subscriptions: the projector function that DynamoDB Streams feeds, and
/// `berth project --storage aws`, which reads the log from the table.
pub async fn aws(targets: &AwsTargets) -> Subscriptions {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(&sdk, targets.table.clone()));
    let sink = Arc::new(S3AuditSink::beside(
        &S3BlobStore::from_env(targets.bucket.clone()).await,
    ));
    Subscriptions::new(store.clone()).with(Projector::new(AUDIT_PROJECTION, sink, store))
}
