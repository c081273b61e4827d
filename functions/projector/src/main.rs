//! The Lambda `projector` function: DynamoDB Streams delivers the table's changes; the log's events
//! among them go to the audit archive (`audit/` in the bucket) in log order, once each, with the
//! checkpoint in the table. Configuration and SDK clients are built once, at cold start.

mod handler;
mod records;

use berth::adapters::aws::AwsTargets;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    berth::telemetry::init_lambda();
    let targets = AwsTargets::from_env()?;
    let projector = berth::adapters::projection::aws_projector(&targets).await;
    tracing::info!(bucket = %targets.bucket, table = %targets.table, "projector initialised");
    let projector = &projector;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        handler::handle(projector, event.payload).await
    }))
    .await
}
