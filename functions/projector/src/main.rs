//! The Lambda `projector` function: DynamoDB Streams delivers the table's changes; the log's events
//! among them go to every subscription (`berth::app::Subscriptions`: today the audit archive,
//! `audit/` in the bucket), at least once each, with their checkpoints in the table. Configuration
//! and SDK clients are built once, at cold start.

mod handler;
mod records;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth::adapters::aws::AwsTargets;
use lambda_runtime::{service_fn, LambdaEvent};

/// What an invocation keeps back from its time limit for the batch itself, after a replay: at most
/// this, and at most a quarter of the time left.
const BATCH_RESERVE: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    berth::telemetry::init_lambda();
    let targets = AwsTargets::from_env()?;
    let subscriptions = berth::adapters::projection::aws(&targets).await;
    tracing::info!(
        bucket = %targets.bucket,
        table = %targets.table,
        subscriptions = ?subscriptions.names(),
        "projector initialised"
    );
    let subscriptions = &subscriptions;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        let replay_deadline = replay_deadline(event.context.deadline);
        handler::handle(subscriptions, event.payload, replay_deadline).await
    }))
    .await
}

/// When a replay must stop: the invocation's deadline (milliseconds since the epoch) less the
/// reserve; now if that has passed.
fn replay_deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(BATCH_RESERVE.min(left / 4))
}
