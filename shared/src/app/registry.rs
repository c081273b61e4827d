//! The registry service: the ports it drives and the append-with-retry every command shares.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::domain::{Event, EventEnvelope, RecordedEvent, StreamId};
use crate::ports::{
    BlobStore, Checkpoints, Clock, EventLog, LogError, NoSecretBox, SecretBox, StreamAppend, Version, Views,
};

use super::{AppError, RequestContext};

/// Attempts at load → decide → append before a command gives up under contention. Each conflict
/// means another writer succeeded, so this bounds waiting, not correctness.
const MAX_APPEND_ATTEMPTS: u32 = 64;
/// Rounds of "decide, find a stream the events go to that is not guarded, guard it" before a
/// command gives up: each round adds streams, and a decision names a handful.
const MAX_GUARD_ROUNDS: usize = 8;
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
    /// Where subscriptions keep their checkpoints (for their status); `None`: no status.
    pub(super) checkpoints: Option<Arc<dyn Checkpoints>>,
    /// This process's copy of the GC fence, and the durations the GC protocol rests on.
    pub(super) fence: Arc<super::gc_fence::FenceCache>,
    pub(super) gc_timing: super::GcTiming,
    /// Which pulls this process recorded lately (retention's pull times).
    pub(super) pulls: Arc<super::retention::PullThrottle>,
    /// Seals the credentials of replication's registries before they are recorded.
    pub(super) secrets: Arc<dyn SecretBox>,
    /// The subscriptions this registry's configuration runs (what their status reports).
    pub(super) subscription_names: &'static [&'static str],
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
            checkpoints: None,
            fence: Arc::default(),
            gc_timing: super::GcTiming::default(),
            pulls: Arc::default(),
            secrets: Arc::new(NoSecretBox),
            subscription_names: super::SUBSCRIPTIONS,
        }
    }

    /// The subscriptions its configuration runs (the status reports these).
    pub fn with_subscription_names(mut self, names: &'static [&'static str]) -> Registry {
        self.subscription_names = names;
        self
    }

    /// Seals registry credentials with `secrets` (without one, registries take no credential).
    pub fn with_secret_box(mut self, secrets: Arc<dyn SecretBox>) -> Registry {
        self.secrets = secrets;
        self
    }

    /// Sets the GC protocol's durations (tests shorten them; every process of a registry must use
    /// the same).
    pub fn with_gc_timing(mut self, timing: super::GcTiming) -> Registry {
        self.gc_timing = timing;
        self
    }

    /// Uses `checkpoints` to report how far the subscriptions got ([`Registry::subscriptions`]).
    pub fn with_checkpoints(mut self, checkpoints: Arc<dyn Checkpoints>) -> Registry {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Where subscriptions keep their checkpoints on this registry's storage.
    pub fn checkpoints(&self) -> Option<&Arc<dyn Checkpoints>> {
        self.checkpoints.as_ref()
    }

    /// How every subscription of the registry stands against the log: state, checkpoint, events
    /// behind and lag (`GET /api/v2.0/subscriptions`, `berth subscriptions`).
    pub async fn subscriptions(&self) -> Result<Vec<super::SubscriptionStatus>, AppError> {
        let Some(checkpoints) = &self.checkpoints else {
            return Err(AppError::Backend(
                "this host keeps no subscription checkpoints".into(),
            ));
        };
        super::subscriptions::status(
            self.subscription_names,
            &**checkpoints,
            &*self.log,
            self.clock.now(),
        )
        .await
        .map_err(AppError::Backend)
    }

    /// Sets how long a trust configuration change re-verifies signatures before it answers.
    pub fn with_reverify_budget(mut self, budget: Duration) -> Registry {
        self.reverify_budget = budget;
        self
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Every event of `stream`, oldest first, read a page at a time (the `gc` and
    /// `retention/<policy>` streams, whose histories are short).
    pub(super) async fn whole_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, AppError> {
        const PAGE: usize = 1_000;
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |r: &RecordedEvent| r.version);
            let page = self.log.read_stream(stream, after, PAGE).await?;
            let last = page.len() < PAGE;
            all.extend(page);
            if last {
                return Ok(all);
            }
        }
    }

    /// The last event of `stream`, if it has any (its version, then that one event).
    pub(super) async fn last_event(&self, stream: &StreamId) -> Result<Option<RecordedEvent>, AppError> {
        let version = self.log.stream_version(stream).await?;
        if version == 0 {
            return Ok(None);
        }
        Ok(self
            .log
            .read_stream(stream, version - 1, 1)
            .await?
            .into_iter()
            .next())
    }

    pub(super) fn attempts() -> std::ops::Range<u32> {
        0..MAX_APPEND_ATTEMPTS
    }

    /// Reads the versions of `streams` not in `guard` yet into it.
    async fn guard(
        &self,
        guard: &mut BTreeMap<StreamId, Version>,
        streams: impl IntoIterator<Item = StreamId>,
    ) -> Result<(), AppError> {
        for stream in streams {
            if let std::collections::btree_map::Entry::Vacant(entry) = guard.entry(stream) {
                let version = self.log.stream_version(entry.key()).await?;
                entry.insert(version);
            }
        }
        Ok(())
    }

    /// Decides and appends under a guard, again on a conflict. Reads the versions of `streams` (the
    /// streams whose state the decision reads), then runs `decide` (which reads the views and gives
    /// the events, and what the caller wants back). When the events go to a stream not guarded yet,
    /// its version is read and `decide` runs again: what is appended was decided on views read after
    /// every version it is guarded by, so a write in between shows as a conflict. Every guarded
    /// stream is checked by the append, those without events too.
    pub(super) async fn decide_and_append<'a, T>(
        &self,
        ctx: &RequestContext,
        streams: &[StreamId],
        decide: impl FnMut() -> BoxFuture<'a, Result<(Vec<Event>, T), AppError>>,
    ) -> Result<(Vec<RecordedEvent>, T), AppError> {
        self.decide_and_append_until(ctx, streams, None, decide).await
    }

    /// [`Registry::decide_and_append`] for a fast write decision (`gc_fence`): past `deadline` it
    /// appends nothing and answers [`AppError::DecisionExpired`], and the caller decides again on
    /// the careful path.
    pub(super) async fn decide_and_append_until<'a, T>(
        &self,
        ctx: &RequestContext,
        streams: &[StreamId],
        deadline: Option<std::time::Instant>,
        mut decide: impl FnMut() -> BoxFuture<'a, Result<(Vec<Event>, T), AppError>>,
    ) -> Result<(Vec<RecordedEvent>, T), AppError> {
        for attempt in Self::attempts() {
            let mut guard = BTreeMap::new();
            self.guard(&mut guard, streams.iter().cloned()).await?;
            let mut decided = None;
            for _ in 0..MAX_GUARD_ROUNDS {
                let (events, value) = decide().await?;
                let unguarded: Vec<StreamId> = (events.iter().map(StreamId::of))
                    .filter(|s| !guard.contains_key(s))
                    .collect();
                if unguarded.is_empty() {
                    decided = Some((events, value));
                    break;
                }
                self.guard(&mut guard, unguarded).await?;
            }
            let Some((events, value)) = decided else {
                return Err(AppError::Contention);
            };
            if events.is_empty() {
                return Ok((vec![], value));
            }
            self.check_immutable(&events).await?;
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(AppError::DecisionExpired);
            }
            if let Some(recorded) = self.try_append(ctx, guard, events, attempt).await? {
                return Ok((recorded, value));
            }
        }
        Err(AppError::Contention)
    }

    /// Appends `events` to their streams, every stream of `guard` at its version there, in one
    /// atomic append. `Ok(None)` means another writer got there first: the caller reloads and
    /// decides again.
    async fn try_append(
        &self,
        ctx: &RequestContext,
        guard: BTreeMap<StreamId, Version>,
        events: Vec<Event>,
        attempt: u32,
    ) -> Result<Option<Vec<RecordedEvent>>, AppError> {
        let now = self.clock.now();
        let mut appends: Vec<StreamAppend> = (guard.into_iter())
            .map(|(stream, expected)| StreamAppend {
                stream,
                expected,
                events: vec![],
            })
            .collect();
        for event in events {
            let stream = StreamId::of(&event);
            let Some(append) = appends.iter_mut().find(|a| a.stream == stream) else {
                return Err(AppError::Backend(format!(
                    "an event for {stream}, which the decision did not guard"
                )));
            };
            append.events.push(EventEnvelope {
                id: uuid::Uuid::now_v7().to_string(),
                time: now,
                principal: ctx.principal.name().to_string(),
                event,
            });
        }
        match self.log.append_atomic(appends).await {
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
