//! The registry service: the ports it drives and the append-with-retry every command shares.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Event, EventEnvelope, RecordedEvent, RepoName, StreamId};
use crate::ports::{BlobStore, Clock, EventLog, LogError, Version, Views};

use super::{AppError, RequestContext};

/// Attempts at load → decide → append before a command gives up under contention. Each conflict
/// means another writer succeeded, so this bounds waiting, not correctness.
const MAX_APPEND_ATTEMPTS: u32 = 64;
/// How long a change of a project's trust configuration re-verifies its signatures before the
/// request answers (pulls verify the rest): well inside API Gateway's 29 s.
pub const DEFAULT_REVERIFY_BUDGET: Duration = Duration::from_secs(10);
/// The longest budget accepted: a Lambda function runs 15 minutes at most.
const MAX_REVERIFY_BUDGET_SECS: u64 = 900;
/// Where hosts configured by their environment read the budget.
pub const REVERIFY_BUDGET_VAR: &str = "BERTH_REVERIFY_BUDGET_SECS";

/// A re-verification budget in whole seconds (0 leaves every signature to the pulls).
pub fn parse_reverify_budget(secs: &str) -> Result<Duration, String> {
    match secs.trim().parse::<u64>() {
        Ok(n) if n <= MAX_REVERIFY_BUDGET_SECS => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{REVERIFY_BUDGET_VAR}: {secs:?} is not a number of seconds from 0 to {MAX_REVERIFY_BUDGET_SECS}"
        )),
    }
}

/// The budget `BERTH_REVERIFY_BUDGET_SECS` sets, or the default.
pub fn reverify_budget_from_env() -> Result<Duration, String> {
    std::env::var(REVERIFY_BUDGET_VAR).map_or(Ok(DEFAULT_REVERIFY_BUDGET), |v| parse_reverify_budget(&v))
}

#[derive(Clone)]
pub struct Registry {
    pub(super) log: Arc<dyn EventLog>,
    pub(super) views: Arc<dyn Views>,
    pub(super) blobs: Arc<dyn BlobStore>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) access: Arc<super::access::AccessState>,
    pub(super) reverify_budget: Duration,
}

impl Registry {
    pub fn new(
        log: Arc<dyn EventLog>,
        views: Arc<dyn Views>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
    ) -> Registry {
        Registry {
            log,
            views,
            blobs,
            clock,
            access: Arc::new(super::access::AccessState::in_memory()),
            reverify_budget: DEFAULT_REVERIFY_BUDGET,
        }
    }

    /// Sets how long a trust configuration change re-verifies signatures before it answers.
    pub fn with_reverify_budget(mut self, budget: Duration) -> Registry {
        self.reverify_budget = budget;
        self
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    pub(super) fn attempts() -> std::ops::Range<u32> {
        0..MAX_APPEND_ATTEMPTS
    }

    pub(super) async fn version(&self, repo: &RepoName) -> Result<Version, AppError> {
        Ok(self.log.stream_version(&StreamId::repository(repo)).await?)
    }

    /// Appends `events` at `expected`. `Ok(None)` means another writer got there first: the caller
    /// reloads and decides again.
    pub(super) async fn try_append(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        expected: Version,
        events: Vec<Event>,
        attempt: u32,
    ) -> Result<Option<Vec<RecordedEvent>>, AppError> {
        let now = self.clock.now();
        let envelopes = (events.into_iter())
            .map(|event| EventEnvelope {
                id: uuid::Uuid::now_v7().to_string(),
                time: now,
                principal: ctx.principal.name().to_string(),
                event,
            })
            .collect();
        match self
            .log
            .append(&StreamId::repository(repo), expected, envelopes)
            .await
        {
            Ok(recorded) => Ok(Some(recorded)),
            Err(LogError::Conflict { .. }) => {
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 4);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(8)) + jitter)).await;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}
