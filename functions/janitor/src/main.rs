//! The Lambda `janitor` function: on an EventBridge schedule, expires the upload sessions that have
//! not been written to for `BERTH_UPLOAD_MAX_AGE_SECS` (default: one day), runs the retention
//! policies and garbage collection whose schedules fired since their last run, and answers
//! `{"expired_uploads": n, "retention_executions": [...], "gc": {...} | null}`. Configuration and SDK clients are built
//! once, at cold start. A schedule runs at most as often as the janitor does (`JanitorSchedule`).

use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use berth::adapters::aws::{self, AwsTargets};
use lambda_runtime::{service_fn, LambdaEvent};

/// How long an upload session may sit idle, in seconds.
const MAX_AGE_VAR: &str = "BERTH_UPLOAD_MAX_AGE_SECS";
/// One day: longer than any client pauses within a push, short enough to bound abandoned storage.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

fn max_age(value: Option<&str>) -> Result<Duration, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_MAX_AGE),
        Some(v) => (v.parse().map(Duration::from_secs))
            .map_err(|_| format!("{MAX_AGE_VAR}={v}: expected a whole number of seconds")),
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    berth::telemetry::init_lambda();
    let targets = AwsTargets::from_env()?;
    let max_age = max_age(std::env::var(MAX_AGE_VAR).ok().as_deref())?;
    let registry = aws::open(&targets).await;
    tracing::info!(bucket = %targets.bucket, max_age_secs = max_age.as_secs(), "janitor initialised");
    let registry = &registry;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            let expired = registry.expire_uploads(max_age).await?;
            let system = berth::app::RequestContext::as_principal(berth::domain::access::Principal::system());
            let ran = registry.run_due_retentions(&system, chrono::Utc::now()).await?;
            let executions: Vec<serde_json::Value> = (ran.iter())
                .map(|e| serde_json::json!({"policy": e.policy, "execution": e.id, "status": e.status}))
                .collect();
            // A scheduled GC waits out its fence (about 50 s) and must end within the function's
            // timeout; one that does not keeps its fence up until `berth gc --resume`.
            let gc = registry.run_due_gc(chrono::Utc::now()).await?;
            let gc = gc.map(|r| serde_json::json!({"run": r.run, "bytes_freed": r.bytes_freed}));
            tracing::info!(expired_uploads = expired, retention_executions = executions.len(), time = ?event.payload.time, "janitor run");
            Ok::<_, lambda_runtime::Error>(
                serde_json::json!({ "expired_uploads": expired, "retention_executions": executions, "gc": gc }),
            )
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_max_age_defaults_to_a_day_and_must_be_whole_seconds() {
        assert_eq!(max_age(None), Ok(DEFAULT_MAX_AGE));
        assert_eq!(max_age(Some(" ")), Ok(DEFAULT_MAX_AGE));
        assert_eq!(max_age(Some("3600")), Ok(Duration::from_secs(3600)));
        for bad in ["-1", "1.5", "a day"] {
            assert!(max_age(Some(bad)).is_err(), "{bad}");
        }
    }
}
