//! The Lambda `janitor` function: on an EventBridge schedule, expires the upload sessions that have
//! not been written to for `BERTH_UPLOAD_MAX_AGE_SECS` (default: one day), runs the retention
//! policies and garbage collection whose schedules fired since their last run (a GC run too long
//! for one invocation pauses before its deadline and the next invocation carries it on), and
//! answers `{"expired_uploads": n, "retention_executions": [...], "gc": {...} | null}`. Configuration and SDK clients are built
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

/// How long before the invocation's deadline a GC run lets go: a safe point comes at least every
/// batch of blobs (30 s of condemning, then settling them) or repository.
const PAUSE_MARGIN: Duration = Duration::from_secs(5 * 60);

/// When a GC run in an invocation with `deadline` pauses: `PAUSE_MARGIN` before it (at once if
/// the invocation has less than that).
fn pause_at(deadline: std::time::SystemTime) -> std::time::Instant {
    let left = deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    std::time::Instant::now() + left.saturating_sub(PAUSE_MARGIN)
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
            let replicated = registry.run_due_replications(&system, chrono::Utc::now()).await?;
            let replications: Vec<serde_json::Value> = (replicated.iter())
                .map(|e| serde_json::json!({"policy": e.policy, "execution": e.id, "status": e.status}))
                .collect();
            // A run that cannot end within this invocation pauses at a safe point before the
            // deadline, and the next invocation takes it over from its checkpoint.
            let pause_at = pause_at(event.context.deadline());
            let gc = registry.run_due_gc(chrono::Utc::now(), Some(pause_at)).await?;
            let gc = gc.map(|r| {
                serde_json::json!({"run": r.run, "outcome": format!("{:?}", r.outcome), "bytes_freed": r.bytes_freed})
            });
            tracing::info!(
                expired_uploads = expired,
                retention_executions = executions.len(),
                replication_executions = replications.len(),
                time = ?event.payload.time,
                "janitor run"
            );
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "expired_uploads": expired,
                "retention_executions": executions,
                "replication_executions": replications,
                "gc": gc,
            }))
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

    #[test]
    fn a_gc_run_lets_go_five_minutes_before_the_invocations_deadline() {
        let now = std::time::Instant::now();
        let in_15_minutes = std::time::SystemTime::now() + Duration::from_secs(900);
        let at = pause_at(in_15_minutes);
        let ahead = at.duration_since(now);
        assert!(
            ahead > Duration::from_secs(595) && ahead < Duration::from_secs(601),
            "{ahead:?}"
        );
        let past = pause_at(std::time::SystemTime::now() - Duration::from_secs(1));
        assert!(
            past.duration_since(now) < Duration::from_secs(1),
            "at once when out of time"
        );
    }
}
