//! The container host's side of the subscriptions (`berth::app::Subscriptions`): on embedded storage
//! `berth serve` follows the log in its own process; `berth project` catches up from a shell;
//! `berth subscriptions` prints their status.

use std::future::Future;
use std::time::Duration;

use berth::app::subscriptions::Outcome;
use berth::app::{Registry, Subscriptions};
use clap::Args;

/// How often the server reads the log for its subscriptions.
#[derive(Args)]
pub struct SubscriptionArgs {
    /// How often `berth serve` reads the log for new events to hand to its subscriptions (the audit
    /// archive), in milliseconds; 0 runs none. Default: 1000 on embedded storage; on AWS storage the
    /// projector function, fed by DynamoDB Streams, runs them, so the server does only if this is set.
    #[arg(long = "subscriptions-poll-ms", env = "BERTH_SUBSCRIPTIONS_POLL_MS")]
    pub poll_ms: Option<u64>,
}

impl SubscriptionArgs {
    /// The poll interval, if the server runs the subscriptions (`embedded`: the default is on).
    pub fn interval(&self, embedded: bool) -> Option<Duration> {
        match self.poll_ms {
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
            None => embedded.then(|| Duration::from_secs(1)),
        }
    }
}

/// One JSON line per subscription, as `berth project` prints them.
pub fn report(outcome: &Outcome) -> serde_json::Value {
    match &outcome.result {
        Ok(projected) => serde_json::json!({
            "subscription": outcome.name,
            "state": outcome.state,
            "published": projected.published,
            "skipped": projected.skipped,
            "checkpoint": projected.checkpoint,
        }),
        Err(e) => serde_json::json!({
            "subscription": outcome.name,
            "state": outcome.state,
            "error": e.to_string(),
        }),
    }
}

/// Hands new events to every subscription every `poll`, until `stop` resolves. With `print`, each
/// round that did something is printed (`berth project --follow`); the server only logs.
pub async fn follow(
    subscriptions: Subscriptions,
    poll: Duration,
    print: bool,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        for outcome in subscriptions.catch_up().await {
            let moved = outcome.result.as_ref().map_or(true, |p| p.published > 0);
            if print && moved {
                println!("{}", report(&outcome));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut stop => return,
        }
    }
}

/// Prints the status of every subscription, one JSON line each (`berth subscriptions`).
pub async fn print_status(registry: Registry) -> anyhow::Result<()> {
    for status in registry.subscriptions().await? {
        println!("{}", serde_json::to_string(&status)?);
    }
    Ok(())
}
