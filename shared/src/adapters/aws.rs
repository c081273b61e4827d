//! The AWS configuration: event log and views in a DynamoDB table, blobs in an S3 bucket, both
//! configured from the standard AWS environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, …). The same code runs against AWS and against S3- and
//! DynamoDB-compatible servers (moto, s3s-fs, MinIO).

use std::sync::Arc;

use crate::app::Registry;
use crate::ports::SystemClock;

use super::dynamodb::DynamoStore;
use super::s3::S3BlobStore;

/// Where the AWS configuration keeps its data.
#[derive(Debug, Clone)]
pub struct AwsTargets {
    pub bucket: String,
    pub table: String,
}

impl AwsTargets {
    /// The bucket in `BERTH_S3_BUCKET` and the table in `BERTH_DYNAMODB_TABLE` (how the Lambda
    /// functions and `berth serve --storage aws` are configured).
    pub fn from_env() -> Result<AwsTargets, MissingTargets> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(MissingTargets(name))
        };
        Ok(AwsTargets {
            bucket: var(BUCKET_VAR)?,
            table: var(TABLE_VAR)?,
        })
    }
}

/// The environment variable naming the S3 bucket.
pub const BUCKET_VAR: &str = "BERTH_S3_BUCKET";
/// The environment variable naming the DynamoDB table.
pub const TABLE_VAR: &str = "BERTH_DYNAMODB_TABLE";

#[derive(Debug, thiserror::Error)]
#[error("{0} is not set: the AWS storage needs BERTH_S3_BUCKET and BERTH_DYNAMODB_TABLE")]
pub struct MissingTargets(&'static str);

#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error("cannot create the S3 bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("cannot create the DynamoDB table {table}: {reason}")]
    Table { table: String, reason: String },
}

async fn stores(targets: &AwsTargets) -> (DynamoStore, S3BlobStore) {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let log = DynamoStore::new(&sdk, targets.table.clone());
    let blobs = S3BlobStore::from_env(targets.bucket.clone()).await;
    (log, blobs)
}

/// The registry on the bucket and table (which must exist: see [`init`]). Registry credentials are
/// sealed with the key `BERTH_SECRET_KEY` (or `BERTH_SECRET_KEY_FILE`) gives; without one,
/// replication's registries take no credential (and a malformed one is said at start).
pub async fn open(targets: &AwsTargets) -> Registry {
    let (log, blobs) = stores(targets).await;
    let log = Arc::new(log);
    let secrets = super::secret_box::configured(None).unwrap_or_else(|e| {
        tracing::error!(error = %e, "registry credentials cannot be sealed");
        Arc::new(crate::ports::NoSecretBox)
    });
    Registry::new(log.clone(), log.clone(), Arc::new(blobs), Arc::new(SystemClock))
        .with_key_store(log.clone())
        .with_checkpoints(log)
        .with_secret_box(secrets)
}

/// Creates the bucket and the table unless they exist (for local stacks and first deployments
/// without SAM or Terraform).
pub async fn init(targets: &AwsTargets) -> Result<(), AwsSetupError> {
    let (log, blobs) = stores(targets).await;
    blobs
        .create_bucket_if_missing()
        .await
        .map_err(|e| AwsSetupError::Bucket {
            bucket: targets.bucket.clone(),
            reason: e.to_string(),
        })?;
    log.create_table_if_missing()
        .await
        .map_err(|e| AwsSetupError::Table {
            table: targets.table.clone(),
            reason: e.to_string(),
        })
}
