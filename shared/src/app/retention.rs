//! Tag retention (issue 14, docs/lifecycle.md): a project's retention policy
//! (`domain::lifecycle::retention`) run over its repositories, as Harbor's executions and tasks.
//!
//! A run is a sequence of events on `retention/<policy>`: `RetentionStarted` (the execution's id is
//! its version), one `RetentionTaskFinished` per repository the policy applies to (Harbor's task:
//! counts and the verdict on each artifact), and `RetentionFinished`. The history Harbor's routes
//! show is that stream read back; a stop is a `RetentionFinished { Stopped }` appended by someone
//! else, which the run sees before its next repository.
//!
//! Candidates are subjects only: accessories (signatures, SBOMs, attestations, referrers) are never
//! judged on their own and go with their subject through the ordinary deletion, and an index's
//! children are not judged apart from it (unless tagged themselves). Deletions go through the same
//! decision as every other, so an immutable tag holds there too, whatever the plan said.
//!
//! Pull times come from `ArtifactPulled` events, which a GET of a manifest records at most once per
//! artifact per [`PULL_RECORD_INTERVAL`] in each process ([`Registry::record_pull`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::access::{Directory, ProjectName};
use crate::domain::accessory::SchemeTag;
use crate::domain::event::RetentionRow;
use crate::domain::lifecycle::retention::{Candidate, Outcome, Policy, Verdict};
use crate::domain::{Digest, Event, RepoName, StreamId, Tag};

use super::{AppError, Registry, RequestContext};

/// How often one process records a pull of the same artifact: last-pull times are this coarse
/// (retention's pull rules count in days), and a busy artifact costs one log write per interval.
pub const PULL_RECORD_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Pull records a process remembers before it forgets them all (and records each artifact's next
/// pull again): about 100 bytes each.
const PULL_THROTTLE_CAPACITY: usize = 100_000;
/// Verdicts a task's event carries at most (deletions and holds first): the event stays well
/// under the log's item size however large the repository.
pub const MAX_TASK_ROWS: usize = 500;
/// Repositories read per catalog page.
const CATALOG_PAGE: usize = 1_000;

/// Harbor's execution triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionTrigger {
    Manual,
    Schedule,
}

impl RetentionTrigger {
    /// Harbor's names: `MANUAL`, and `Schedule` (its scheduler's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionTrigger::Manual => "MANUAL",
            RetentionTrigger::Schedule => "Schedule",
        }
    }
}

/// Which artifact pulls this process recorded lately.
#[derive(Debug, Default)]
pub struct PullThrottle {
    recorded: Mutex<HashMap<(RepoName, Digest), Instant>>,
}

impl PullThrottle {
    /// Whether a pull of `digest` in `repo` at `now` is to be recorded (and, if so, counts it as
    /// recorded).
    fn admit(&self, repo: &RepoName, digest: &Digest, now: Instant) -> bool {
        let Ok(mut recorded) = self.recorded.lock() else {
            return false;
        };
        let key = (repo.clone(), digest.clone());
        if recorded
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < PULL_RECORD_INTERVAL)
        {
            return false;
        }
        if recorded.len() >= PULL_THROTTLE_CAPACITY {
            recorded.retain(|_, at| now.duration_since(*at) < PULL_RECORD_INTERVAL);
            if recorded.len() >= PULL_THROTTLE_CAPACITY {
                recorded.clear();
            }
        }
        recorded.insert(key, now);
        true
    }
}

/// One repository's part of an execution (Harbor's task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionTask {
    /// 1-based, in the order the run finished them.
    pub id: u64,
    pub repository: RepoName,
    /// `Success` or `Error`.
    pub status: String,
    pub total: u64,
    pub retained: u64,
    pub deleted: u64,
    pub finished_at: DateTime<Utc>,
    pub rows: Vec<RetentionRow>,
    pub rows_omitted: u64,
    pub error: Option<String>,
}

/// One run of a policy, as its stream records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionExecution {
    /// The version of its `RetentionStarted` in `retention/<policy>`.
    pub id: u64,
    pub policy: u64,
    pub project: ProjectName,
    pub dry_run: bool,
    /// `MANUAL` or `Schedule`.
    pub trigger: String,
    /// For a scheduled run, the firing it serves.
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `Running`, then `Success`, `Error` or `Stopped`.
    pub status: String,
    pub tasks: Vec<RetentionTask>,
}

/// An execution that has started and is yet to run.
#[derive(Debug, Clone)]
pub struct RetentionRun {
    pub execution: u64,
    policy: Policy,
    project: ProjectName,
    dry_run: bool,
}

impl Registry {
    /// Records that `digest` of `repo` was pulled, unless this process did so within
    /// [`PULL_RECORD_INTERVAL`]. Best effort: a failure is logged, never the pull's.
    pub async fn record_pull(&self, ctx: &RequestContext, repo: &RepoName, digest: &Digest) {
        if !self.pulls.admit(repo, digest, Instant::now()) {
            return;
        }
        let event = Event::ArtifactPulled {
            repository: repo.clone(),
            digest: digest.clone(),
        };
        if let Err(e) = self.append_system(ctx, event).await {
            tracing::warn!(repository = %repo, digest = %digest, error = %e, "pull not recorded");
        }
    }

    /// Starts a run of `project`'s retention policy: appends `RetentionStarted`. Refused while
    /// another run of the policy is under way (stop it first), and for a project without a policy.
    pub async fn start_retention(
        &self,
        ctx: &RequestContext,
        project: &ProjectName,
        dry_run: bool,
        trigger: RetentionTrigger,
    ) -> Result<RetentionRun, AppError> {
        let directory = self.current_directory().await?;
        let policy = policy_of(&directory, project)?;
        let started = self
            .start_unless_running(ctx, &policy, project, dry_run, trigger, None)
            .await?;
        started.ok_or_else(|| AppError::Conflict(format!("retention policy {} is running", policy.id())))
    }

    /// Appends `RetentionStarted` unless an execution of the policy is under way (refused) or,
    /// for a scheduled start, one was started by the schedule at or after `due` (`Ok(None)`: another
    /// process ran it). Decided on the policy's stream, so two processes cannot both start.
    async fn start_unless_running(
        &self,
        ctx: &RequestContext,
        policy: &Policy,
        project: &ProjectName,
        dry_run: bool,
        trigger: RetentionTrigger,
        due: Option<DateTime<Utc>>,
    ) -> Result<Option<RetentionRun>, AppError> {
        let id = policy.id();
        let stream = StreamId::retention(id);
        let (recorded, ()) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    let executions = self.retention_executions(id).await?;
                    if let Some(running) = executions.iter().find(|e| e.finished_at.is_none()) {
                        return Err(AppError::Conflict(format!(
                            "execution {} of retention policy {id} is under way: stop it first",
                            running.id
                        )));
                    }
                    let ran = |at: DateTime<Utc>| {
                        (executions.iter()).any(|e| e.scheduled_for.is_some_and(|s| s >= at))
                    };
                    if due.is_some_and(ran) {
                        return Ok((vec![], ()));
                    }
                    let started = Event::RetentionStarted {
                        policy: id,
                        project: project.clone(),
                        dry_run,
                        trigger: trigger.as_str().to_string(),
                        scheduled_for: due,
                    };
                    Ok((vec![started], ()))
                })
            })
            .await?;
        Ok(recorded.first().map(|r| RetentionRun {
            execution: r.version,
            policy: policy.clone(),
            project: project.clone(),
            dry_run,
        }))
    }

    /// Runs every retention policy whose schedule fired since it was set and since its last
    /// scheduled run, once each however many firings were missed (`berth serve` calls this every
    /// half minute, the janitor function on its schedule). Answers the executions it ran; a policy
    /// that is running already, or that another process started, is skipped.
    pub async fn run_due_retentions(
        &self,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<RetentionExecution>, AppError> {
        let directory = self.current_directory().await?;
        let mut ran = Vec::new();
        for project in directory.projects() {
            let (Some(policy), Some(since)) = (&project.retention, project.retention_since) else {
                continue;
            };
            let Some(schedule) = policy.schedule() else {
                continue;
            };
            let executions = self.retention_executions(policy.id()).await?;
            self.end_if_stalled(ctx, policy.id(), &executions, now).await?;
            let last_run = (executions.into_iter()).filter_map(|e| e.scheduled_for).max();
            let since = last_run.map_or(since, |at| at.max(since));
            let Some(due) = schedule.last_due(since, now) else {
                continue;
            };
            let started = self
                .start_unless_running(
                    ctx,
                    policy,
                    &project.name,
                    false,
                    RetentionTrigger::Schedule,
                    Some(due),
                )
                .await;
            match started {
                Ok(Some(run)) => ran.push(self.finish_retention(ctx, run).await?),
                Ok(None) | Err(AppError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ran)
    }

    /// Ends, as `Error`, the execution of `policy` still running whose stream has been silent for
    /// longer than a run can be ([`GcTiming::stalled_after`](super::GcTiming), 20 minutes): its
    /// process died (a crash, a Lambda invocation's limit), and it would hold back the schedule
    /// for ever. A live process that was only slow stops at its next repository (it checks
    /// whether its execution ended before each one and before appending its task).
    async fn end_if_stalled(
        &self,
        ctx: &RequestContext,
        policy: u64,
        executions: &[RetentionExecution],
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let Some(running) = executions.iter().find(|e| e.finished_at.is_none()) else {
            return Ok(());
        };
        let last = self.last_event(&StreamId::retention(policy)).await?;
        let silent = last.map_or(chrono::Duration::zero(), |r| now - r.envelope.time);
        if silent.to_std().unwrap_or_default() < self.gc_timing.stalled_after {
            return Ok(());
        }
        tracing::warn!(
            policy,
            execution = running.id,
            silent_secs = silent.num_seconds(),
            "ending a retention execution whose process is gone"
        );
        self.end_execution(ctx, policy, running.id, "Error").await
    }

    /// Runs a started execution to its end (or its stop) and answers it as recorded.
    pub async fn finish_retention(
        &self,
        ctx: &RequestContext,
        run: RetentionRun,
    ) -> Result<RetentionExecution, AppError> {
        let outcome = self.run_repositories(ctx, &run).await;
        let status = match &outcome {
            Ok(true) => Some("Success"),
            Ok(false) => None,
            Err(e) => {
                tracing::error!(policy = run.policy.id(), execution = run.execution, error = %e, "retention run failed");
                Some("Error")
            }
        };
        if let Some(status) = status {
            self.end_execution(ctx, run.policy.id(), run.execution, status)
                .await?;
        }
        outcome?;
        self.retention_execution(run.policy.id(), run.execution)
            .await?
            .ok_or_else(|| AppError::Conflict(format!("execution {} is not recorded", run.execution)))
    }

    /// [`Registry::start_retention`] then [`Registry::finish_retention`].
    pub async fn run_retention(
        &self,
        ctx: &RequestContext,
        project: &ProjectName,
        dry_run: bool,
        trigger: RetentionTrigger,
    ) -> Result<RetentionExecution, AppError> {
        let run = self.start_retention(ctx, project, dry_run, trigger).await?;
        self.finish_retention(ctx, run).await
    }

    /// Stops an execution under way: it ends before its next repository. Stopping one that has
    /// ended changes nothing; `Ok(false)` if the policy has no such execution.
    pub async fn stop_retention(
        &self,
        ctx: &RequestContext,
        policy: u64,
        execution: u64,
    ) -> Result<bool, AppError> {
        match self.retention_execution(policy, execution).await? {
            None => Ok(false),
            Some(e) if e.finished_at.is_some() => Ok(true),
            Some(_) => {
                self.end_execution(ctx, policy, execution, "Stopped").await?;
                Ok(true)
            }
        }
    }

    /// Every execution of `policy`, newest first.
    pub async fn retention_executions(&self, policy: u64) -> Result<Vec<RetentionExecution>, AppError> {
        let stream = StreamId::retention(policy);
        let mut executions: Vec<RetentionExecution> = Vec::new();
        for recorded in self.whole_stream(&stream).await? {
            let at = recorded.envelope.time;
            match recorded.envelope.event {
                Event::RetentionStarted {
                    policy,
                    project,
                    dry_run,
                    trigger,
                    scheduled_for,
                } => executions.push(RetentionExecution {
                    id: recorded.version,
                    policy,
                    project,
                    dry_run,
                    trigger,
                    scheduled_for,
                    started_at: at,
                    finished_at: None,
                    status: "Running".to_string(),
                    tasks: Vec::new(),
                }),
                Event::RetentionTaskFinished {
                    execution,
                    repository,
                    status,
                    total,
                    retained,
                    deleted,
                    rows,
                    rows_omitted,
                    error,
                    ..
                } => {
                    if let Some(e) = executions.iter_mut().find(|e| e.id == execution) {
                        e.tasks.push(RetentionTask {
                            id: e.tasks.len() as u64 + 1,
                            repository,
                            status,
                            total,
                            retained,
                            deleted,
                            finished_at: at,
                            rows,
                            rows_omitted,
                            error,
                        });
                    }
                }
                Event::RetentionFinished {
                    execution, status, ..
                } => {
                    if let Some(e) =
                        (executions.iter_mut()).find(|e| e.id == execution && e.finished_at.is_none())
                    {
                        e.finished_at = Some(at);
                        e.status = status;
                    }
                }
                _ => {}
            }
        }
        executions.reverse();
        Ok(executions)
    }

    pub async fn retention_execution(
        &self,
        policy: u64,
        execution: u64,
    ) -> Result<Option<RetentionExecution>, AppError> {
        Ok((self.retention_executions(policy).await?.into_iter()).find(|e| e.id == execution))
    }

    /// Judges and prunes each repository of the project the policy applies to; `Ok(false)` if the
    /// execution was stopped on the way.
    async fn run_repositories(&self, ctx: &RequestContext, run: &RetentionRun) -> Result<bool, AppError> {
        let prefix = format!("{}/", run.project);
        for repo in self.project_repositories(&run.project).await? {
            let Some(in_project) = repo.as_str().strip_prefix(&prefix) else {
                continue;
            };
            if !run.policy.applies_to(in_project) {
                continue;
            }
            if self.execution_ended(run).await? {
                return Ok(false);
            }
            let event = self.retain_repository(ctx, run, &repo, in_project).await?;
            let appended = self.append_unless_ended(ctx, run, event).await?;
            if !appended {
                return Ok(false);
            }
        }
        Ok(!self.execution_ended(run).await?)
    }

    /// One repository: candidates, the plan, the deletions; the task's event.
    async fn retain_repository(
        &self,
        ctx: &RequestContext,
        run: &RetentionRun,
        repo: &RepoName,
        in_project: &str,
    ) -> Result<Event, AppError> {
        let directory = self.directory().await?;
        let candidates = self.retention_candidates(&directory, repo, in_project).await?;
        let verdicts = (run.policy)
            .plan(in_project, &candidates, self.clock.now())
            .unwrap_or_default();
        let mut rows = Vec::with_capacity(verdicts.len());
        let (mut deleted, mut errors) = (0u64, Vec::new());
        for (candidate, Verdict { outcome, .. }) in candidates.iter().zip(&verdicts) {
            let mark = match outcome {
                Outcome::Retained { .. } => "RETAIN",
                Outcome::Immutable => "IMMUTABLE",
                Outcome::Deleted if run.dry_run => {
                    deleted += 1;
                    "DEL"
                }
                Outcome::Deleted => match self.delete_with_children(ctx, repo, &candidate.digest).await {
                    Ok(()) => {
                        deleted += 1;
                        "DEL"
                    }
                    Err(AppError::Immutable(_)) => "IMMUTABLE",
                    Err(e) => {
                        errors.push(format!("{}: {e}", candidate.digest));
                        "ERR"
                    }
                },
            };
            rows.push(RetentionRow {
                digest: candidate.digest.clone(),
                tags: candidate.tags.clone(),
                pushed: candidate.pushed,
                pulled: candidate.pulled,
                outcome: mark.to_string(),
            });
        }
        let total = candidates.len() as u64;
        // Deletions and holds first, then what was kept, within the event's budget.
        rows.sort_by_key(|r| r.outcome == "RETAIN");
        let rows_omitted = rows.len().saturating_sub(MAX_TASK_ROWS) as u64;
        rows.truncate(MAX_TASK_ROWS);
        Ok(Event::RetentionTaskFinished {
            policy: run.policy.id(),
            execution: run.execution,
            repository: repo.clone(),
            status: if errors.is_empty() { "Success" } else { "Error" }.to_string(),
            total,
            retained: total - deleted,
            deleted,
            rows,
            rows_omitted,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        })
    }

    /// The subjects of `repo` retention judges, with their tags, last push and last pull.
    /// Deletes an artifact retention let go, with its accessories and, for an index, the children
    /// that go with it: those with no tag of their own that no other index of the repository
    /// holds (as Harbor deletes an index's references). A child an immutable rule holds stays.
    async fn delete_with_children(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(), AppError> {
        let children = (self.views.manifest(repo, digest).await?).map_or_else(Vec::new, |r| r.manifests);
        self.delete_collected(ctx, None, repo, digest).await?;
        if children.is_empty() {
            return Ok(());
        }
        let held: BTreeSet<Digest> = (self.views.manifests(repo).await?.into_iter())
            .flat_map(|r| r.manifests)
            .collect();
        for child in children {
            if held.contains(&child) || self.views.manifest(repo, &child).await?.is_none() {
                continue;
            }
            let tags = self.views.manifest_tags(repo, &child).await?;
            if tags.iter().any(|t| SchemeTag::parse(t).is_none()) {
                continue;
            }
            match self.delete_collected(ctx, None, repo, &child).await {
                Ok(_) | Err(AppError::Immutable(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn retention_candidates(
        &self,
        directory: &Directory,
        repo: &RepoName,
        in_project: &str,
    ) -> Result<Vec<Candidate>, AppError> {
        let records = self.views.manifests(repo).await?;
        let children: BTreeSet<&Digest> = records.iter().flat_map(|r| r.manifests.iter()).collect();
        let rules = (ProjectName::parse(repo.project()).ok())
            .and_then(|p| directory.project(&p).map(|p| p.immutable_rules.clone()))
            .unwrap_or_default();
        let mut candidates = Vec::new();
        for record in &records {
            if !self.views.subjects_of(repo, &record.digest).await?.is_empty() {
                continue;
            }
            let tags: Vec<Tag> = (self.views.manifest_tags(repo, &record.digest).await?.into_iter())
                .filter(|t| SchemeTag::parse(t).is_none())
                .collect();
            if tags.is_empty() && children.contains(&record.digest) {
                continue;
            }
            let mut pushed = record.pushed_at;
            for tag in &tags {
                if let Some(moved) = self.last_event(&StreamId::tag(repo, tag)).await? {
                    pushed = pushed.max(moved.envelope.time);
                }
            }
            let pulled =
                (self.last_event(&StreamId::pulled(repo, &record.digest)).await?).map(|r| r.envelope.time);
            let immutable = (tags.iter()).any(|t| rules.iter().any(|r| r.selects(in_project, t)));
            candidates.push(Candidate {
                digest: record.digest.clone(),
                tags: tags.iter().map(ToString::to_string).collect(),
                pushed,
                pulled,
                immutable,
            });
        }
        Ok(candidates)
    }

    /// The project's repositories, in name order.
    async fn project_repositories(&self, project: &ProjectName) -> Result<Vec<RepoName>, AppError> {
        let prefix = format!("{project}/");
        let mut all = Vec::new();
        // Names sort after their project's prefix; the page walk stops at the first other name.
        let mut after = prefix.clone();
        loop {
            let page = self.views.repositories(Some(&after), CATALOG_PAGE).await?;
            let last = page.len() < CATALOG_PAGE;
            let Some(tail) = page.last() else {
                return Ok(all);
            };
            after = tail.to_string();
            let before = all.len();
            all.extend(page.into_iter().filter(|r| r.as_str().starts_with(&prefix)));
            if last || all.len() - before < CATALOG_PAGE {
                return Ok(all);
            }
        }
    }

    async fn execution_ended(&self, run: &RetentionRun) -> Result<bool, AppError> {
        let last = self.last_event(&StreamId::retention(run.policy.id())).await?;
        Ok(last.is_some_and(|r| {
            matches!(r.envelope.event, Event::RetentionFinished { execution, .. } if execution == run.execution)
        }))
    }

    /// Appends a task's event unless the execution has ended (a stop came in): decided on the
    /// stream, so a stop appended meanwhile is seen.
    async fn append_unless_ended(
        &self,
        ctx: &RequestContext,
        run: &RetentionRun,
        event: Event,
    ) -> Result<bool, AppError> {
        let stream = StreamId::retention(run.policy.id());
        let event = &event;
        let (recorded, ()) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    if self.execution_ended(run).await? {
                        return Ok((vec![], ()));
                    }
                    Ok((vec![event.clone()], ()))
                })
            })
            .await?;
        Ok(!recorded.is_empty())
    }

    /// Appends the execution's `RetentionFinished`, unless it has one.
    async fn end_execution(
        &self,
        ctx: &RequestContext,
        policy: u64,
        execution: u64,
        status: &str,
    ) -> Result<(), AppError> {
        let stream = StreamId::retention(policy);
        self.decide_and_append(ctx, std::slice::from_ref(&stream), move || {
            Box::pin(async move {
                let ended = self
                    .retention_execution(policy, execution)
                    .await?
                    .is_some_and(|e| e.finished_at.is_some());
                if ended {
                    return Ok((vec![], ()));
                }
                let finished = Event::RetentionFinished {
                    policy,
                    execution,
                    status: status.to_string(),
                };
                Ok((vec![finished], ()))
            })
        })
        .await?;
        Ok(())
    }
}

/// The project's retention policy, or why there is none to run.
fn policy_of(directory: &Directory, project: &ProjectName) -> Result<Policy, AppError> {
    let p = (directory.project(project)).ok_or_else(|| {
        AppError::Access(crate::domain::access::AccessError::ProjectUnknown(
            project.clone(),
        ))
    })?;
    p.retention
        .clone()
        .ok_or_else(|| AppError::Conflict(format!("project {project} has no retention policy")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::access::{AccessCommand, Principal};
    use crate::domain::lifecycle::immutability::SelectorSpec;
    use crate::domain::lifecycle::retention::{PolicySpec, RetentionRuleSpec, TagSelectorSpec, Template};
    use crate::domain::Reference;

    async fn push(registry: &Registry, repo: &RepoName, tag: &str, n: u32) -> Digest {
        let body = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [],
            "annotations": {"n": n.to_string()},
        });
        let pushed = registry
            .push_manifest(
                &RequestContext::anonymous(),
                repo,
                tag.parse().unwrap(),
                "application/vnd.oci.image.index.v1+json",
                body.to_string().into(),
            )
            .await
            .unwrap();
        pushed.digest
    }

    fn rule(template: Template, param: Option<u32>) -> RetentionRuleSpec {
        RetentionRuleSpec {
            id: 1,
            priority: 0,
            disabled: false,
            template,
            param,
            tag_selectors: vec![TagSelectorSpec {
                kind: "doublestar".into(),
                decoration: "matches".into(),
                pattern: "**".into(),
                untagged: true,
            }],
            repository_selectors: vec![SelectorSpec {
                kind: "doublestar".into(),
                decoration: "repoMatches".into(),
                pattern: "**".into(),
            }],
        }
    }

    #[tokio::test]
    async fn pulls_are_recorded_once_per_interval_and_pull_rules_keep_only_what_was_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::adapters::local::open(dir.path()).unwrap();
        registry.bootstrap(Some("Admin12345")).await.unwrap();
        let repo: RepoName = "library/app".parse().unwrap();
        let (a, b, c) = (
            push(&registry, &repo, "a", 1).await,
            push(&registry, &repo, "b", 2).await,
            push(&registry, &repo, "c", 3).await,
        );
        let ctx = RequestContext::anonymous();
        registry.record_pull(&ctx, &repo, &b).await;
        registry.record_pull(&ctx, &repo, &b).await;
        let pulls = registry
            .log
            .read_stream(&StreamId::pulled(&repo, &b), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            pulls.len(),
            1,
            "a second pull within the interval is not recorded"
        );

        let system = RequestContext::as_principal(Principal::system());
        let project = ProjectName::parse("library").unwrap();
        let policy = PolicySpec {
            id: 0,
            rules: vec![rule(Template::NDaysSinceLastPull, Some(1))],
            schedule: None,
        };
        registry
            .change_access(
                &system,
                AccessCommand::CreateRetentionPolicy {
                    project: project.clone(),
                    policy,
                },
            )
            .await
            .unwrap();
        let execution = registry
            .run_retention(&system, &project, false, RetentionTrigger::Manual)
            .await
            .unwrap();
        assert_eq!(execution.status, "Success");
        let task = &execution.tasks[0];
        assert_eq!((task.total, task.retained, task.deleted), (3, 1, 2), "{task:?}");
        let present = |d: &Digest| {
            let registry = &registry;
            let repo = &repo;
            let d = d.clone();
            async move {
                registry
                    .resolve_manifest(repo, &Reference::Digest(d))
                    .await
                    .is_ok()
            }
        };
        assert!(present(&b).await, "pulled within a day: kept");
        assert!(!present(&a).await && !present(&c).await, "never pulled: deleted");

        // One run at a time; a stopped run is ended and says so.
        let run = registry
            .start_retention(&system, &project, true, RetentionTrigger::Manual)
            .await
            .unwrap();
        let second = registry
            .start_retention(&system, &project, true, RetentionTrigger::Manual)
            .await
            .unwrap_err();
        assert!(matches!(second, AppError::Conflict(_)), "{second:?}");
        let id = (registry.current_directory().await.unwrap().project(&project))
            .and_then(|p| p.retention.as_ref().map(Policy::id))
            .unwrap();
        assert!(registry.stop_retention(&system, id, run.execution).await.unwrap());
        let stopped = registry.finish_retention(&system, run).await.unwrap();
        assert_eq!(stopped.status, "Stopped");
        assert!(stopped.tasks.is_empty(), "stopped before its first repository");
    }

    /// `library`'s policy: keep the newest artifact, run every minute. Answers the system's
    /// context and the project.
    async fn keep_newest_every_minute(registry: &Registry) -> (RequestContext, ProjectName) {
        let system = RequestContext::as_principal(Principal::system());
        let project = ProjectName::parse("library").unwrap();
        let policy = PolicySpec {
            id: 0,
            rules: vec![rule(Template::LatestPushedK, Some(1))],
            schedule: Some("0 * * * * *".to_string()),
        };
        let command = AccessCommand::CreateRetentionPolicy {
            project: project.clone(),
            policy,
        };
        registry.change_access(&system, command).await.unwrap();
        (system, project)
    }

    #[tokio::test]
    async fn a_running_execution_whose_process_is_gone_is_ended_and_the_schedule_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::adapters::local::open(dir.path()).unwrap();
        registry.bootstrap(Some("Admin12345")).await.unwrap();
        let repo: RepoName = "library/app".parse().unwrap();
        push(&registry, &repo, "old", 1).await;
        push(&registry, &repo, "new", 2).await;
        let (system, project) = keep_newest_every_minute(&registry).await;
        // A process started an execution and died.
        let dead = registry
            .start_retention(&system, &project, true, RetentionTrigger::Manual)
            .await
            .unwrap();
        let soon = Utc::now() + chrono::Duration::minutes(2);
        assert!(
            registry
                .run_due_retentions(&system, soon)
                .await
                .unwrap()
                .is_empty(),
            "still within the stall window: held back"
        );
        let later = Utc::now() + chrono::Duration::minutes(21);
        let ran = registry.run_due_retentions(&system, later).await.unwrap();
        assert_eq!(ran.len(), 1, "the schedule goes on");
        assert_eq!(ran[0].status, "Success");
        let policy_id = ran[0].policy;
        let ended = registry
            .retention_execution(policy_id, dead.execution)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ended.status, "Error");
    }

    /// Pushes an index of `children` (digest, size) under `reference`; answers its digest and size.
    async fn push_index(
        registry: &Registry,
        repo: &RepoName,
        reference: &str,
        label: &str,
        children: &[(Digest, usize)],
    ) -> (Digest, usize) {
        const INDEX: &str = "application/vnd.oci.image.index.v1+json";
        let manifests: Vec<serde_json::Value> = (children.iter())
            .map(|(d, size)| json!({"mediaType": INDEX, "digest": d.to_string(), "size": size}))
            .collect();
        let body = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests, "annotations": {"label": label}})
            .to_string();
        let reference = if reference.is_empty() {
            Reference::Digest(Digest::compute(crate::domain::Algorithm::Sha256, body.as_bytes()))
        } else {
            reference.parse().unwrap()
        };
        let pushed = registry
            .push_manifest(
                &RequestContext::anonymous(),
                repo,
                reference,
                INDEX,
                body.clone().into(),
            )
            .await
            .unwrap();
        (pushed.digest, body.len())
    }

    #[tokio::test]
    async fn an_index_retention_deletes_takes_its_untagged_children_not_those_another_index_holds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::adapters::local::open(dir.path()).unwrap();
        registry.bootstrap(Some("Admin12345")).await.unwrap();
        let repo: RepoName = "library/multi".parse().unwrap();
        let only_old = push_index(&registry, &repo, "", "amd64 of old", &[]).await;
        let shared = push_index(&registry, &repo, "", "arm64 of both", &[]).await;
        let old = push_index(
            &registry,
            &repo,
            "old",
            "old",
            &[only_old.clone(), shared.clone()],
        )
        .await;
        let new = push_index(&registry, &repo, "new", "new", std::slice::from_ref(&shared)).await;
        let system = RequestContext::as_principal(Principal::system());
        let project = ProjectName::parse("library").unwrap();
        let policy = PolicySpec {
            id: 0,
            rules: vec![rule(Template::LatestPushedK, Some(1))],
            schedule: None,
        };
        let command = AccessCommand::CreateRetentionPolicy {
            project: project.clone(),
            policy,
        };
        registry.change_access(&system, command).await.unwrap();
        let execution = registry
            .run_retention(&system, &project, false, RetentionTrigger::Manual)
            .await
            .unwrap();
        let task = &execution.tasks[0];
        assert_eq!(
            (task.total, task.retained, task.deleted),
            (2, 1, 1),
            "children are no candidates: {task:?}"
        );
        for (digest, there, what) in [
            (&old.0, false, "the older index goes"),
            (&only_old.0, false, "with the child only it held"),
            (&shared.0, true, "a child the kept index holds stays"),
            (&new.0, true, "the newest index stays"),
        ] {
            let found = registry
                .resolve_manifest(&repo, &Reference::Digest(digest.clone()))
                .await;
            assert_eq!(found.is_ok(), there, "{what}");
        }
    }

    #[tokio::test]
    async fn a_scheduled_policy_runs_once_per_firing_missed_or_not_and_only_after_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::adapters::local::open(dir.path()).unwrap();
        registry.bootstrap(Some("Admin12345")).await.unwrap();
        let repo: RepoName = "library/app".parse().unwrap();
        let (old, new) = (
            push(&registry, &repo, "old", 1).await,
            push(&registry, &repo, "new", 2).await,
        );
        let (system, _) = keep_newest_every_minute(&registry).await;
        let now = Utc::now();
        let minute = chrono::TimeDelta::seconds(60);

        // Nothing fired since the policy was set.
        assert!(registry
            .run_due_retentions(&system, now)
            .await
            .unwrap()
            .is_empty());
        // Three firings missed: one run.
        let later = now + minute * 3;
        let ran = registry.run_due_retentions(&system, later).await.unwrap();
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert_eq!(
            (ran[0].trigger.as_str(), ran[0].status.as_str()),
            ("Schedule", "Success")
        );
        let present = |d: &Digest| {
            let (registry, repo, d) = (&registry, &repo, d.clone());
            async move {
                registry
                    .resolve_manifest(repo, &Reference::Digest(d))
                    .await
                    .is_ok()
            }
        };
        assert!(present(&new).await && !present(&old).await);
        // Not again for the same firings; again at the next one after the run.
        assert!(registry
            .run_due_retentions(&system, later)
            .await
            .unwrap()
            .is_empty());
        let ran = registry
            .run_due_retentions(&system, later + minute * 2)
            .await
            .unwrap();
        assert_eq!(ran.len(), 1, "{ran:?}");
    }
}
