//! The audit projection wired per configuration, as `local` and `aws` wire the registry: the log it
//! reads, the archive it writes (`audit`) and where its checkpoint lives.
//!
//! ```text
//! embedded   log + checkpoint in <data-dir>/berth.redb     archive in <data-dir>/audit/
//! aws        log + checkpoint in the DynamoDB table        archive in the bucket's audit/
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::app::{Projector, AUDIT_PROJECTION};
use crate::ports::EventLog;

use super::audit::FsAuditSink;
use super::aws::AwsTargets;
use super::dynamodb::DynamoStore;
use super::embedded::RedbStore;
use super::local::LocalError;
use super::s3::{S3AuditSink, S3BlobStore};

/// A projection and the log it follows.
pub struct AuditProjection {
    pub log: Arc<dyn EventLog>,
    pub projector: Projector,
}

/// The embedded configuration's audit projection (single process: not while `berth serve` runs on
/// the same data directory).
pub fn local(data_dir: &Path) -> Result<AuditProjection, LocalError> {
    let err = |reason: String| LocalError::DataDir {
        path: data_dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
    let store = Arc::new(
        RedbStore::open(&data_dir.join(super::local::DATABASE_FILE)).map_err(|e| err(e.to_string()))?,
    );
    let sink = Arc::new(FsAuditSink::open(data_dir).map_err(|e| err(e.to_string()))?);
    Ok(AuditProjection {
        log: store.clone(),
        projector: Projector::new(AUDIT_PROJECTION, sink, store),
    })
}

/// The AWS configuration's audit projection, reading the log from the table (`berth project`).
pub async fn aws(targets: &AwsTargets) -> AuditProjection {
    let (store, projector) = aws_parts(targets).await;
    AuditProjection {
        log: store,
        projector,
    }
}

/// The AWS configuration's audit projector alone, for the Lambda function that DynamoDB Streams
/// feeds with the log's events.
pub async fn aws_projector(targets: &AwsTargets) -> Projector {
    aws_parts(targets).await.1
}

async fn aws_parts(targets: &AwsTargets) -> (Arc<DynamoStore>, Projector) {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(&sdk, targets.table.clone()));
    let sink = Arc::new(S3AuditSink::beside(
        &S3BlobStore::from_env(targets.bucket.clone()).await,
    ));
    let projector = Projector::new(AUDIT_PROJECTION, sink, store.clone());
    (store, projector)
}
