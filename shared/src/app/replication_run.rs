//! Replication executions (issue 15, docs/replication.md): a run of a policy copies the artifacts
//! it selects, each one a task: the subject first (an index's children before it, blobs before
//! their manifest), then its accessories and referrers, each after what it refers to, so the
//! destination never holds an accessory without its subject. Bytes cross once: HEAD at the
//! destination, a mount from a repository this run already filled there, and only then the bytes,
//! streamed from the blob store (`registry_client::copy_blob`).
//!
//! A run is a sequence of events on `replication/<policy>`: `ReplicationStarted` (the execution is
//! its version), one `ReplicationTaskFinished` per artifact, and `ReplicationFinished`. Harbor's
//! execution ids are global: here `policy << 32 | version` ([`execution_id`]). A stop is a
//! `ReplicationFinished { Stopped }` appended by whoever asked, which the run sees before its next
//! artifact.
//!
//! Served: push-based policies (this registry to an endpoint), run by hand or on their schedule
//! ([`Registry::run_due_replications`], which also ends runs whose process died). Pull-based
//! policies, event-based triggers and resuming a run after a restart are the next steps.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::accessory::SchemeTag;
use crate::domain::manifest::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::domain::projection::ManifestRecord;
use crate::domain::replication::{Candidate, CopyPlan, Direction, Policy};
use crate::domain::{Digest, Event, RepoName, StreamId};
use crate::ports::{ByteRange, ByteStream};
use crate::registry_client::documents::Descriptor;
use crate::registry_client::{
    copy_blob, Access, BlobReader, ClientError, Copied, CopyOptions, RegistryClient, MAX_MANIFEST_BYTES,
};

use super::replication::endpoint_of;
use super::{AppError, Registry, RequestContext};

/// How deep accessories of accessories are followed (a signature of an SBOM of an image is 2).
const MAX_ACCESSORY_DEPTH: usize = 8;
/// How deep index children are followed (an index of indexes of images is 2).
const MAX_INDEX_DEPTH: usize = 4;
/// Repositories read per catalog page.
const CATALOG_PAGE: usize = 1_000;
/// The manifest media types a copy asks the destination for when it checks a tag.
const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
/// Image config media types (what `resource: image` keeps).
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Harbor's execution triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationTrigger {
    Manual,
    Scheduled,
    EventBased,
}

impl ReplicationTrigger {
    /// Harbor's names.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationTrigger::Manual => "MANUAL",
            ReplicationTrigger::Scheduled => "SCHEDULE",
            ReplicationTrigger::EventBased => "EVENT_BASED",
        }
    }
}

/// Harbor's global execution id of `policy`'s execution `version`.
pub fn execution_id(policy: u64, version: u64) -> u64 {
    (policy << 32) | (version & 0xffff_ffff)
}

/// The policy and the version an execution id names.
pub fn split_execution_id(id: u64) -> (u64, u64) {
    (id >> 32, id & 0xffff_ffff)
}

/// One artifact's copy, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationTask {
    /// 1-based, in the order the run finished them.
    pub id: u64,
    pub resource_type: String,
    pub source: String,
    pub destination: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    pub accessories: u64,
    /// `Succeed` or `Failed`.
    pub status: String,
    pub blobs_sent: u64,
    pub blobs_mounted: u64,
    pub blobs_present: u64,
    pub bytes_sent: u64,
    /// A deletion at the destination, not a copy.
    pub deletion: bool,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// One run of a policy, as its stream records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationExecution {
    /// Harbor's id: [`execution_id`].
    pub id: u64,
    pub policy: u64,
    /// `MANUAL`, `SCHEDULE` or `EVENT_BASED`.
    pub trigger: String,
    /// For a scheduled run, the firing it serves.
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `InProgress`, then `Succeed`, `Failed` or `Stopped`.
    pub status: String,
    pub error: Option<String>,
    pub tasks: Vec<ReplicationTask>,
}

/// An execution that has started and is yet to run.
#[derive(Debug, Clone)]
pub struct ReplicationRun {
    /// Harbor's id: [`execution_id`].
    pub id: u64,
    version: u64,
    policy: Policy,
    /// The one artifact an event-based run copies; `None`: every one the policy selects.
    only: Option<(RepoName, Digest)>,
}

/// The bytes of this registry's blobs, for the copies of a push-based run.
struct StoredBlobs<'a>(&'a Registry);

#[async_trait]
impl BlobReader for StoredBlobs<'_> {
    async fn read_from(&self, digest: &str, offset: u64) -> Result<ByteStream, ClientError> {
        let stored = |e: AppError| ClientError::Interrupted(format!("reading {digest} from the store: {e}"));
        let digest: Digest = digest
            .parse()
            .map_err(|_| ClientError::Setup(format!("{digest:?} is not a digest")))?;
        let range = if offset == 0 {
            None
        } else {
            let size = (self.0.blobs.stat(&digest).await)
                .map_err(|e| stored(e.into()))?
                .ok_or_else(|| ClientError::Interrupted(format!("{digest} is not in the store")))?;
            Some(ByteRange {
                start: offset,
                end: size.saturating_sub(1),
            })
        };
        let read = self.0.read_blob(&digest, range).await.map_err(stored)?;
        Ok(read.body)
    }
}

/// How one task's blobs crossed.
#[derive(Debug, Default)]
struct Crossings {
    sent: u64,
    mounted: u64,
    present: u64,
    bytes: u64,
}

/// What a task copies with: the destination's client, the run's options, and where this run put
/// each blob at the destination (to mount it from there).
struct Copier<'a> {
    client: RegistryClient,
    repository: RepoName,
    options: CopyOptions,
    override_existing: bool,
    placed: &'a mut HashMap<String, String>,
    destination: String,
    crossings: Crossings,
}

impl Registry {
    /// Starts an execution of policy `id` (Harbor's `POST /replication/executions`): appends its
    /// `ReplicationStarted`. Refused for a policy that is unknown, disabled, pull-based (not served
    /// yet) or, with `single_active_replication`, running.
    pub async fn start_replication(
        &self,
        ctx: &RequestContext,
        id: u64,
        trigger: ReplicationTrigger,
    ) -> Result<ReplicationRun, AppError> {
        let directory = self.current_directory().await?;
        let entry = (directory.replication_policy(id))
            .ok_or(crate::domain::access::AccessError::ReplicationPolicyUnknown(id))?;
        let policy = entry.policy.clone();
        if !policy.spec().enabled {
            return Err(AppError::Invalid(format!("the policy {id} is disabled")));
        }
        let started = self
            .start_replication_unless_ran(ctx, &policy, trigger, None)
            .await?;
        started.ok_or_else(|| AppError::Conflict(format!("replication policy {id} ran already")))
    }

    /// Appends `ReplicationStarted` unless, with `single_active_replication`, an execution of the
    /// policy is under way (refused) or, for a scheduled start, one was started by the schedule at
    /// or after `due` (`Ok(None)`: another process ran it). Decided on the policy's stream, so two
    /// processes cannot both start one firing.
    async fn start_replication_unless_ran(
        &self,
        ctx: &RequestContext,
        policy: &Policy,
        trigger: ReplicationTrigger,
        due: Option<DateTime<Utc>>,
    ) -> Result<Option<ReplicationRun>, AppError> {
        let id = policy.id();
        if let Direction::Pull { .. } = policy.direction() {
            return Err(AppError::Invalid(format!(
                "policy {id} is pull-based: Berth runs push-based policies only so far (docs/replication.md)"
            )));
        }
        let single = policy.spec().single_active_replication;
        let stream = StreamId::replication(id);
        let (recorded, ()) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    let executions = self.replication_executions(id).await?;
                    let ran = |at: DateTime<Utc>| (executions.iter()).any(|e| e.scheduled_for.is_some_and(|s| s >= at));
                    if due.is_some_and(ran) {
                        return Ok((vec![], ()));
                    }
                    if single {
                        if let Some(running) = executions.iter().find(|e| e.finished_at.is_none()) {
                            return Err(AppError::Conflict(format!(
                                "execution {} of replication policy {id} is under way and the policy allows one at a time",
                                running.id
                            )));
                        }
                    }
                    let started = Event::ReplicationStarted {
                        policy: id,
                        trigger: trigger.as_str().to_string(),
                        scheduled_for: due,
                    };
                    Ok((vec![started], ()))
                })
            })
            .await?;
        Ok(recorded.first().map(|r| ReplicationRun {
            id: execution_id(id, r.version),
            version: r.version,
            policy: policy.clone(),
            only: None,
        }))
    }

    /// Runs every enabled scheduled policy whose schedule fired since it was set and since its
    /// last scheduled run, once each however many firings were missed (`berth serve` calls this
    /// every half minute, the janitor function on its schedule), and first ends the executions
    /// whose process is gone ([`Registry::end_stalled_replications`]). Answers the executions it
    /// ran; a firing another process started is skipped.
    pub async fn run_due_replications(
        &self,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReplicationExecution>, AppError> {
        let directory = self.current_directory().await?;
        let mut ran = Vec::new();
        for entry in directory.replication_policies() {
            let policy = &entry.policy;
            let executions = self.replication_executions(policy.id()).await?;
            self.end_stalled_replications(ctx, policy.id(), &executions, now)
                .await?;
            let Some(schedule) = policy.schedule().filter(|_| policy.spec().enabled) else {
                continue;
            };
            let last_run = (executions.iter()).filter_map(|e| e.scheduled_for).max();
            let since = last_run.map_or(entry.updated_at, |at| at.max(entry.updated_at));
            let Some(due) = schedule.last_due(since, now) else {
                continue;
            };
            match self
                .start_replication_unless_ran(ctx, policy, ReplicationTrigger::Scheduled, Some(due))
                .await
            {
                Ok(Some(run)) => ran.push(self.finish_replication(ctx, run).await?),
                Ok(None) | Err(AppError::Conflict(_)) => {}
                Err(AppError::Invalid(why)) => {
                    tracing::warn!(policy = policy.id(), %why, "scheduled replication not run")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ran)
    }

    /// Ends, as `Failed`, the executions of `policy` still in progress whose stream has been
    /// silent for longer than a run can be ([`GcTiming::stalled_after`](super::GcTiming), 20
    /// minutes): the process running them died (a crash, a Lambda invocation's limit). A live
    /// process that was only slow stops at its next artifact (it checks before each one).
    async fn end_stalled_replications(
        &self,
        ctx: &RequestContext,
        policy: u64,
        executions: &[ReplicationExecution],
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        if executions.iter().all(|e| e.finished_at.is_some()) {
            return Ok(());
        }
        let last = self.last_event(&StreamId::replication(policy)).await?;
        let silent = last.map_or(chrono::Duration::zero(), |r| now - r.envelope.time);
        if silent.to_std().unwrap_or_default() < self.gc_timing.stalled_after {
            return Ok(());
        }
        for running in executions.iter().filter(|e| e.finished_at.is_none()) {
            tracing::warn!(
                policy,
                execution = running.id,
                silent_secs = silent.num_seconds(),
                "ending a replication whose process is gone"
            );
            let (_, version) = split_execution_id(running.id);
            let why = "the process running it stopped before it ended; run the policy again".to_string();
            self.end_replication(ctx, policy, version, "Failed", Some(why))
                .await?;
        }
        Ok(())
    }

    /// Runs a started execution to its end (or its stop) and answers it as recorded.
    pub async fn finish_replication(
        &self,
        ctx: &RequestContext,
        run: ReplicationRun,
    ) -> Result<ReplicationExecution, AppError> {
        let outcome = self.run_copies(ctx, &run).await;
        let ending = match &outcome {
            Ok(Some(all_succeeded)) => Some((if *all_succeeded { "Succeed" } else { "Failed" }, None)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(policy = run.policy.id(), execution = run.id, error = %e, "replication run failed");
                Some(("Failed", Some(e.to_string())))
            }
        };
        if let Some((status, error)) = ending {
            self.end_replication(ctx, run.policy.id(), run.version, status, error)
                .await?;
        }
        self.replication_execution(run.id)
            .await?
            .ok_or_else(|| AppError::Backend(format!("execution {} is not recorded", run.id)))
    }

    /// Stops an execution under way (Harbor's `PUT /replication/executions/{id}`): it ends before
    /// its next artifact. `Ok(false)` if there is no such execution.
    pub async fn stop_replication(&self, ctx: &RequestContext, id: u64) -> Result<bool, AppError> {
        let (policy, version) = split_execution_id(id);
        match self.replication_execution(id).await? {
            None => Ok(false),
            Some(e) if e.finished_at.is_some() => Ok(true),
            Some(_) => {
                self.end_replication(ctx, policy, version, "Stopped", None)
                    .await?;
                Ok(true)
            }
        }
    }

    /// Every execution of `policy`, newest first.
    pub async fn replication_executions(&self, policy: u64) -> Result<Vec<ReplicationExecution>, AppError> {
        let mut executions: Vec<ReplicationExecution> = Vec::new();
        for recorded in self.whole_stream(&StreamId::replication(policy)).await? {
            let at = recorded.envelope.time;
            match recorded.envelope.event {
                Event::ReplicationStarted {
                    policy,
                    trigger,
                    scheduled_for,
                } => executions.push(ReplicationExecution {
                    id: execution_id(policy, recorded.version),
                    policy,
                    trigger,
                    scheduled_for,
                    started_at: at,
                    finished_at: None,
                    status: "InProgress".to_string(),
                    error: None,
                    tasks: Vec::new(),
                }),
                Event::ReplicationTaskFinished {
                    policy,
                    execution,
                    resource_type,
                    source,
                    destination,
                    digest,
                    tags,
                    accessories,
                    status,
                    blobs_sent,
                    blobs_mounted,
                    blobs_present,
                    bytes_sent,
                    deletion,
                    error,
                } => {
                    let id = execution_id(policy, execution);
                    if let Some(e) = executions.iter_mut().find(|e| e.id == id) {
                        e.tasks.push(ReplicationTask {
                            id: e.tasks.len() as u64 + 1,
                            resource_type,
                            source,
                            destination,
                            digest,
                            tags,
                            accessories,
                            status,
                            blobs_sent,
                            blobs_mounted,
                            blobs_present,
                            bytes_sent,
                            deletion,
                            error,
                            finished_at: at,
                        });
                    }
                }
                Event::ReplicationFinished {
                    policy,
                    execution,
                    status,
                    error,
                } => {
                    let id = execution_id(policy, execution);
                    if let Some(e) = (executions.iter_mut()).find(|e| e.id == id && e.finished_at.is_none()) {
                        e.finished_at = Some(at);
                        e.status = status;
                        e.error = error;
                    }
                }
                _ => {}
            }
        }
        executions.reverse();
        Ok(executions)
    }

    /// The execution Harbor's id names.
    pub async fn replication_execution(&self, id: u64) -> Result<Option<ReplicationExecution>, AppError> {
        let (policy, _) = split_execution_id(id);
        if policy == 0 {
            return Ok(None);
        }
        Ok((self.replication_executions(policy).await?.into_iter()).find(|e| e.id == id))
    }

    /// Replicates one artifact of this registry (`digest` in `repo`, with its accessories) under
    /// every enabled event-based push policy that selects it and existed before `at` (the time of
    /// the event that calls for it: a subscription replaying the log copies nothing its policies
    /// were not there for). One execution per policy, `EVENT_BASED`; the executions it ran.
    pub async fn replicate_on_event(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
        at: DateTime<Utc>,
    ) -> Result<Vec<ReplicationExecution>, AppError> {
        let directory = self.current_directory().await?;
        let policies: Vec<Policy> = (directory.replication_policies())
            .filter(|e| e.created_at <= at)
            .map(|e| e.policy.clone())
            .filter(|p| {
                p.spec().enabled
                    && p.spec().trigger == crate::domain::replication::TriggerSpec::EventBased
                    && matches!(p.direction(), Direction::Push { .. })
                    && p.selects_repository(repo.as_str())
            })
            .collect();
        if policies.is_empty() {
            return Ok(vec![]);
        }
        // Gone since, or no artifact of its own (an index's child): nothing to copy for it.
        let Some(candidate) = self
            .candidates_of(repo, |d| d == digest)
            .await?
            .0
            .into_iter()
            .next()
        else {
            return Ok(vec![]);
        };
        let mut ran = Vec::new();
        for policy in policies {
            if policy.selects(&candidate).is_none() {
                continue;
            }
            let started = self
                .start_replication_unless_ran(ctx, &policy, ReplicationTrigger::EventBased, None)
                .await;
            let run = match started {
                Ok(Some(run)) => run,
                Ok(None) | Err(AppError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            };
            let run = ReplicationRun {
                only: Some((repo.clone(), digest.clone())),
                ..run
            };
            ran.push(self.finish_replication(ctx, run).await?);
        }
        Ok(ran)
    }

    /// Deletes at the destination of every enabled event-based push policy with `deletion` on that
    /// selects `repo` and existed before `at` what was deleted here: `reference` (a digest, or a
    /// tag the policy's tag filter keeps). One execution per policy (`EVENT_BASED`), one task
    /// (Harbor's `deletion` operation); something the destination no longer has is deleted already.
    pub async fn replicate_deletion(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
        tag: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Vec<ReplicationExecution>, AppError> {
        let directory = self.current_directory().await?;
        let policies: Vec<Policy> = (directory.replication_policies())
            .filter(|e| e.created_at <= at)
            .map(|e| e.policy.clone())
            .filter(|p| {
                let spec = p.spec();
                spec.enabled
                    && spec.deletion
                    && spec.trigger == crate::domain::replication::TriggerSpec::EventBased
                    && matches!(p.direction(), Direction::Push { .. })
                    && p.selects_repository(repo.as_str())
            })
            .collect();
        let mut ran = Vec::new();
        for policy in policies {
            if let Some(tag) = tag {
                let as_candidate = Candidate {
                    repository: repo.to_string(),
                    digest: digest.clone(),
                    tags: vec![tag.to_string()],
                    image: true,
                    signed: true,
                    verified: true,
                    accessories: vec![],
                };
                if policy.selects(&as_candidate).is_none() {
                    continue;
                }
            }
            let started = self
                .start_replication_unless_ran(ctx, &policy, ReplicationTrigger::EventBased, None)
                .await;
            let run = match started {
                Ok(Some(run)) => run,
                Ok(None) | Err(AppError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            };
            let reference = tag.map_or_else(|| digest.to_string(), str::to_string);
            let (destination, outcome) = match self.delete_there(&policy, repo, &reference).await {
                Ok(destination) => (destination, Ok(())),
                Err((destination, why)) => (destination, Err(why)),
            };
            let status = if outcome.is_ok() { "Succeed" } else { "Failed" };
            let task = Event::ReplicationTaskFinished {
                policy: policy.id(),
                execution: run.version,
                resource_type: "artifact".to_string(),
                source: repo.to_string(),
                destination,
                digest: digest.clone(),
                tags: tag.map(str::to_string).into_iter().collect(),
                accessories: 0,
                status: status.to_string(),
                blobs_sent: 0,
                blobs_mounted: 0,
                blobs_present: 0,
                bytes_sent: 0,
                deletion: true,
                error: outcome.err(),
            };
            if self.append_task_unless_ended(ctx, &run, task).await? {
                self.end_replication(ctx, policy.id(), run.version, status, None)
                    .await?;
            }
            if let Some(execution) = self.replication_execution(run.id).await? {
                ran.push(execution);
            }
        }
        Ok(ran)
    }

    /// Deletes `reference` from `repo`'s destination under `policy`: the destination repository,
    /// or it and why not.
    async fn delete_there(
        &self,
        policy: &Policy,
        repo: &RepoName,
        reference: &str,
    ) -> Result<String, (String, String)> {
        let destination = policy
            .destination_of(repo.as_str())
            .map_err(|e| (String::new(), e.to_string()))?;
        let fail = |e: String| (destination.clone(), e);
        let directory = self.current_directory().await.map_err(|e| fail(e.to_string()))?;
        let entry = (directory.registry(policy.remote())).ok_or_else(|| {
            fail(format!(
                "registry {} of the policy no longer exists",
                policy.remote()
            ))
        })?;
        let endpoint = endpoint_of(&entry.spec).map_err(|e| fail(e.to_string()))?;
        let credentials = (self.registry_credentials(&entry.spec).await).map_err(|e| fail(e.to_string()))?;
        let client = RegistryClient::at(&endpoint, &destination, credentials, Access::PullPushDelete)
            .map_err(|e| fail(e.to_string()))?;
        client
            .delete_manifest(reference)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(destination)
    }

    /// The artifact an accessory of `repo` ultimately describes: its subject's subject, and so on,
    /// up to one that is no accessory (at most [`MAX_ACCESSORY_DEPTH`] levels).
    pub async fn root_subject(&self, repo: &RepoName, accessory: &Digest) -> Result<Digest, AppError> {
        let mut digest = accessory.clone();
        for _ in 0..MAX_ACCESSORY_DEPTH {
            match self.views.subjects_of(repo, &digest).await?.into_iter().next() {
                Some(subject) => digest = subject,
                None => break,
            }
        }
        Ok(digest)
    }

    /// Copies what the policy selects, one task per artifact; `Ok(None)` if the execution was
    /// stopped on the way, else whether every task succeeded.
    async fn run_copies(&self, ctx: &RequestContext, run: &ReplicationRun) -> Result<Option<bool>, AppError> {
        let policy = &run.policy;
        let directory = self.current_directory().await?;
        let remote = policy.remote();
        let entry = (directory.registry(remote))
            .ok_or_else(|| AppError::Invalid(format!("registry {remote} of the policy no longer exists")))?;
        let endpoint = endpoint_of(&entry.spec)?;
        let credentials = self.registry_credentials(&entry.spec).await?;
        let (candidates, scheme_tags) = match &run.only {
            Some((repo, digest)) => self.candidates_of(repo, |d| d == digest).await?,
            None => self.replication_candidates(policy).await?,
        };
        let (copies, refused) = policy.plan(&candidates);
        let speed = u64::try_from(policy.spec().speed_kb).unwrap_or(0);
        let options = CopyOptions {
            chunk_size: (policy.spec().copy_by_chunk)
                .then_some(crate::registry_client::transfer::DEFAULT_CHUNK),
            mount_from: vec![],
            bytes_per_second: (speed > 0).then_some(speed * 1024),
        };
        let mut all_succeeded = true;
        for (candidate, why) in refused {
            all_succeeded = false;
            let task = self.task_event(
                run,
                &candidate.repository,
                "",
                &candidate.digest,
                &[],
                0,
                Err(why.to_string()),
                Crossings::default(),
                candidate.image,
            );
            if !self.append_task_unless_ended(ctx, run, task).await? {
                return Ok(None);
            }
        }
        let images: HashMap<&Digest, bool> = candidates.iter().map(|c| (&c.digest, c.image)).collect();
        let mut placed: HashMap<String, String> = HashMap::new();
        for copy in &copies {
            if self.replication_ended(run).await? {
                return Ok(None);
            }
            let image = images.get(&copy.digest).copied().unwrap_or(false);
            let (outcome, crossings) = match RegistryClient::at(
                &endpoint,
                &copy.destination_repository,
                credentials.clone(),
                Access::PullPush,
            ) {
                Ok(client) => {
                    let mut copier = Copier {
                        client,
                        repository: copy_repository(copy)?,
                        options: options.clone(),
                        override_existing: policy.spec().override_existing,
                        placed: &mut placed,
                        destination: copy.destination_repository.clone(),
                        crossings: Crossings::default(),
                    };
                    let outcome = self.copy_artifact(&mut copier, copy, &scheme_tags).await;
                    (outcome, copier.crossings)
                }
                Err(e) => (Err(e.to_string()), Crossings::default()),
            };
            all_succeeded &= outcome.is_ok();
            let task = self.task_event(
                run,
                &copy.source_repository,
                &copy.destination_repository,
                &copy.digest,
                &copy.tags,
                copy.accessories.len() as u64,
                outcome,
                crossings,
                image,
            );
            if !self.append_task_unless_ended(ctx, run, task).await? {
                return Ok(None);
            }
        }
        if self.replication_ended(run).await? {
            return Ok(None);
        }
        Ok(Some(all_succeeded))
    }

    #[allow(clippy::too_many_arguments)]
    fn task_event(
        &self,
        run: &ReplicationRun,
        source: &str,
        destination: &str,
        digest: &Digest,
        tags: &[String],
        accessories: u64,
        outcome: Result<(), String>,
        crossings: Crossings,
        image: bool,
    ) -> Event {
        Event::ReplicationTaskFinished {
            policy: run.policy.id(),
            execution: run.version,
            resource_type: if image { "image" } else { "artifact" }.to_string(),
            source: source.to_string(),
            destination: destination.to_string(),
            digest: digest.clone(),
            tags: tags.to_vec(),
            accessories,
            status: if outcome.is_ok() { "Succeed" } else { "Failed" }.to_string(),
            blobs_sent: crossings.sent,
            blobs_mounted: crossings.mounted,
            blobs_present: crossings.present,
            bytes_sent: crossings.bytes,
            deletion: false,
            error: outcome.err(),
        }
    }

    /// One task: the subject with its tags, then each accessory (with its cosign scheme tag, if it
    /// was found by one), in order.
    async fn copy_artifact(
        &self,
        copier: &mut Copier<'_>,
        copy: &CopyPlan,
        scheme_tags: &HashMap<Digest, String>,
    ) -> Result<(), String> {
        self.copy_manifest(copier, &copy.digest, &copy.tags, 0).await?;
        for accessory in &copy.accessories {
            let tags: Vec<String> = scheme_tags.get(accessory).cloned().into_iter().collect();
            self.copy_manifest(copier, accessory, &tags, 0).await?;
        }
        Ok(())
    }

    /// Copies manifest `digest` (an index's children first, then its blobs, then itself by digest
    /// and under `tags`).
    fn copy_manifest<'a>(
        &'a self,
        copier: &'a mut Copier<'_>,
        digest: &'a Digest,
        tags: &'a [String],
        depth: usize,
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let repo = copier.repository.clone();
            let record: ManifestRecord = (self.views.manifest(&repo, digest).await)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{digest} is no longer in {repo}"))?;
            if depth < MAX_INDEX_DEPTH {
                for child in &record.manifests {
                    self.copy_manifest(copier, child, &[], depth + 1).await?;
                }
            }
            for blob in &record.blobs {
                let size = self.blob_size(&repo, blob).await.map_err(|e| e.to_string())?;
                let mut options = copier.options.clone();
                options.mount_from = (copier.placed.get(&blob.to_string()))
                    .filter(|at| **at != copier.destination)
                    .cloned()
                    .into_iter()
                    .collect();
                let copied = copy_blob(
                    &StoredBlobs(self),
                    &copier.client,
                    &blob.to_string(),
                    size,
                    &options,
                )
                .await
                .map_err(|e| format!("blob {blob}: {e}"))?;
                match copied {
                    Copied::Present => copier.crossings.present += 1,
                    Copied::Mounted => copier.crossings.mounted += 1,
                    Copied::Sent { bytes } => {
                        copier.crossings.sent += 1;
                        copier.crossings.bytes += bytes;
                    }
                }
                copier.placed.insert(blob.to_string(), copier.destination.clone());
            }
            let body = self.manifest_content(&record).await.map_err(|e| e.to_string())?;
            if body.len() > MAX_MANIFEST_BYTES {
                return Err(format!("manifest {digest} exceeds {MAX_MANIFEST_BYTES} bytes"));
            }
            let put = |reference: String| {
                let client = &copier.client;
                let body = body.to_vec();
                let media_type = record.media_type.clone();
                async move { client.put_manifest(&reference, &media_type, body).await }
            };
            let (_, subject_processed) = put(digest.to_string())
                .await
                .map_err(|e| format!("manifest {digest}: {e}"))?;
            if let (Some(subject), false) = (&record.subject, subject_processed) {
                // A destination without the referrers API: list it in the referrers tag schema's
                // `sha256-<hex>` index, as the distribution spec asks of clients.
                let referrer = Descriptor {
                    media_type: record.media_type.clone(),
                    artifact_type: record.artifact_type.clone().or(record.config_media_type.clone()),
                    digest: digest.to_string(),
                    size: record.size,
                    annotations: record.annotations.clone(),
                    extra: Default::default(),
                };
                (copier
                    .client
                    .add_to_referrers_tag(&subject.to_string(), referrer)
                    .await)
                    .map_err(|e| format!("the referrers tag of {subject}: {e}"))?;
            }
            for tag in tags {
                let scheme = tag.parse().ok().and_then(|t| SchemeTag::parse(&t)).is_some();
                if !copier.override_existing && !scheme {
                    let there = (copier.client.manifest(tag, &MANIFEST_TYPES).await)
                        .map_err(|e| format!("tag {tag}: {e}"))?;
                    if there.is_some_and(|m| m.digest != digest.to_string()) {
                        tracing::info!(tag, destination = %copier.destination, "tag kept: the policy does not override");
                        continue;
                    }
                }
                put(tag.clone()).await.map_err(|e| format!("tag {tag}: {e}"))?;
            }
            Ok(())
        })
    }

    /// The artifacts of this registry the policy may copy (every repository its name filter keeps),
    /// with their accessories, and the cosign scheme tag each accessory was found by.
    async fn replication_candidates(
        &self,
        policy: &Policy,
    ) -> Result<(Vec<Candidate>, HashMap<Digest, String>), AppError> {
        let mut candidates = Vec::new();
        let mut scheme_tags = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.views.repositories(after.as_deref(), CATALOG_PAGE).await?;
            let done = page.len() < CATALOG_PAGE;
            after = page.last().map(ToString::to_string);
            for repo in page {
                if !policy.selects_repository(repo.as_str()) {
                    continue;
                }
                let (found, tags) = self.candidates_of(&repo, |_| true).await?;
                candidates.extend(found);
                scheme_tags.extend(tags);
            }
            if done || after.is_none() {
                return Ok((candidates, scheme_tags));
            }
        }
    }

    /// The artifacts of `repo` that `wanted` keeps, as candidates, with the cosign scheme tag
    /// each accessory was found by.
    async fn candidates_of(
        &self,
        repo: &RepoName,
        wanted: impl Fn(&Digest) -> bool,
    ) -> Result<(Vec<Candidate>, HashMap<Digest, String>), AppError> {
        let mut candidates = Vec::new();
        let mut scheme_tags = HashMap::new();
        for view in self.artifacts(repo).await? {
            let record = &view.record;
            if !wanted(&record.digest) {
                continue;
            }
            let signed = view.accessories.iter().any(|a| a.record.kind.is_signature());
            let verified = (view.accessories.iter())
                .any(|a| a.verdict_current && a.verdict.as_ref().is_some_and(|v| v.verified));
            let mut accessories = Vec::new();
            self.accessory_tree(repo, &record.digest, 0, &mut accessories, &mut scheme_tags)
                .await?;
            candidates.push(Candidate {
                repository: repo.to_string(),
                digest: record.digest.clone(),
                tags: (view.tags.iter())
                    .filter(|t| SchemeTag::parse(t).is_none())
                    .map(ToString::to_string)
                    .collect(),
                image: is_image(record),
                signed,
                verified,
                accessories,
            });
        }
        Ok((candidates, scheme_tags))
    }

    /// The accessories of `subject`, and theirs, each after what it refers to.
    fn accessory_tree<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        depth: usize,
        out: &'a mut Vec<Digest>,
        scheme_tags: &'a mut HashMap<Digest, String>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async move {
            if depth >= MAX_ACCESSORY_DEPTH {
                return Ok(());
            }
            for accessory in self.views.accessories(repo, subject).await? {
                if out.contains(&accessory.digest) {
                    continue;
                }
                if let Some(tag) = &accessory.tag {
                    // Only where the scheme tag points now: cosign appends a signature by pushing
                    // a new `.sig` manifest, and the one it replaced must not take the tag back.
                    if self.views.tag(repo, tag).await?.as_ref() == Some(&accessory.digest) {
                        scheme_tags.insert(accessory.digest.clone(), tag.to_string());
                    }
                }
                out.push(accessory.digest.clone());
                self.accessory_tree(repo, &accessory.digest, depth + 1, out, scheme_tags)
                    .await?;
            }
            Ok(())
        })
    }

    async fn replication_ended(&self, run: &ReplicationRun) -> Result<bool, AppError> {
        let version = run.version;
        let executions = self.replication_executions(run.policy.id()).await?;
        Ok((executions.iter())
            .any(|e| e.id == execution_id(run.policy.id(), version) && e.finished_at.is_some()))
    }

    /// Appends a task's event unless the execution has ended (a stop came in): decided on the
    /// stream, so a stop appended meanwhile is seen.
    async fn append_task_unless_ended(
        &self,
        ctx: &RequestContext,
        run: &ReplicationRun,
        event: Event,
    ) -> Result<bool, AppError> {
        let stream = StreamId::replication(run.policy.id());
        let event = &event;
        let (recorded, ()) = self
            .decide_and_append(ctx, std::slice::from_ref(&stream), move || {
                Box::pin(async move {
                    if self.replication_ended(run).await? {
                        return Ok((vec![], ()));
                    }
                    Ok((vec![event.clone()], ()))
                })
            })
            .await?;
        Ok(!recorded.is_empty())
    }

    /// Appends the execution's `ReplicationFinished`, unless it has one.
    async fn end_replication(
        &self,
        ctx: &RequestContext,
        policy: u64,
        version: u64,
        status: &str,
        error: Option<String>,
    ) -> Result<(), AppError> {
        let stream = StreamId::replication(policy);
        let error = &error;
        self.decide_and_append(ctx, std::slice::from_ref(&stream), move || {
            Box::pin(async move {
                let ended = (self.replication_execution(execution_id(policy, version)).await?)
                    .is_some_and(|e| e.finished_at.is_some());
                if ended {
                    return Ok((vec![], ()));
                }
                let finished = Event::ReplicationFinished {
                    policy,
                    execution: version,
                    status: status.to_string(),
                    error: error.clone(),
                };
                Ok((vec![finished], ()))
            })
        })
        .await?;
        Ok(())
    }
}

/// The source repository of a copy, as this registry names it.
fn copy_repository(copy: &CopyPlan) -> Result<RepoName, AppError> {
    (copy.source_repository.parse())
        .map_err(|_| AppError::Backend(format!("{:?} is not a repository name", copy.source_repository)))
}

/// An image, or an index (of images, as registries use them).
fn is_image(record: &ManifestRecord) -> bool {
    match record.media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => {
            (record.config_media_type.as_deref()).is_some_and(|c| IMAGE_CONFIGS.contains(&c))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration as Span;

    use super::*;
    use crate::domain::access::{AccessCommand, Principal};
    use crate::domain::replication::{PolicySpec, TriggerSpec};
    use crate::registry_client::testing::{admin_client, berth_on_loopback};

    /// A registry (embedded, bootstrapped) served on loopback with one image in `library/app`,
    /// and a second Berth to replicate to, known to the first as an endpoint; the policy's id.
    async fn given(trigger: TriggerSpec) -> (Registry, u64, String, Vec<tempfile::TempDir>) {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::adapters::local::open(dir.path()).unwrap();
        registry.bootstrap(Some("Admin12345")).await.unwrap();
        let app = crate::oci::router(
            registry.clone(),
            crate::oci::Host::container(),
            crate::oci::AuthConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let source_at = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = admin_client(&source_at, "app");
        let config = client.push_blob(b"{}").await.unwrap();
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": IMAGE_CONFIGS[0], "digest": config, "size": 2}, "layers": []});
        let bytes = serde_json::to_vec(&manifest).unwrap();
        client.put_manifest("v1", OCI_MANIFEST, bytes).await.unwrap();

        let (destination_at, destination_dir) = berth_on_loopback().await;
        let ctx = RequestContext::as_principal(Principal::system());
        let draft = super::super::RegistryDraft {
            name: "dr".into(),
            description: String::new(),
            kind: crate::domain::replication::RegistryKind::Harbor,
            url: format!("http://{destination_at}"),
            insecure: false,
            ca_certificate: None,
            credential: Some(super::super::CredentialDraft {
                access_key: "admin".into(),
                secret: super::super::Secret::Plain("Admin12345".into()),
            }),
        };
        let endpoint = registry.add_registry(&ctx, draft).await.unwrap();
        let spec = PolicySpec {
            id: 0,
            name: "to-dr".into(),
            description: String::new(),
            source_registry: None,
            destination_registry: Some(endpoint),
            destination_namespace: String::new(),
            destination_namespace_replace_count: 0,
            filters: vec![],
            trigger,
            deletion: false,
            override_existing: true,
            enabled: true,
            speed_kb: 0,
            copy_by_chunk: false,
            single_active_replication: false,
        };
        let recorded = registry
            .change_access(&ctx, AccessCommand::CreateReplicationPolicy { policy: spec })
            .await
            .unwrap();
        let Event::ReplicationPolicyChanged { id, .. } = recorded[0].envelope.event else {
            panic!("no policy");
        };
        (registry, id, destination_at, vec![dir, destination_dir])
    }

    #[tokio::test]
    async fn a_scheduled_policy_runs_once_per_firing_however_many_checks_see_it() {
        let hourly = TriggerSpec::Scheduled {
            cron: "0 0 * * * *".into(),
        };
        let (registry, policy, destination_at, _dirs) = given(hourly).await;
        let ctx = RequestContext::as_principal(Principal::system());
        let now = Utc::now();
        let later = now + Span::hours(2);
        let ran = registry.run_due_replications(&ctx, later).await.unwrap();
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert_eq!(
            (ran[0].status.as_str(), ran[0].trigger.as_str()),
            ("Succeed", "SCHEDULE")
        );
        assert!(ran[0].scheduled_for.is_some_and(|due| due <= later && due > now));
        let there = admin_client(&destination_at, "app");
        assert!(there.manifest("v1", &[OCI_MANIFEST]).await.unwrap().is_some());
        // The same firing, seen again (another process, the next poll): not run twice.
        assert!(registry
            .run_due_replications(&ctx, later)
            .await
            .unwrap()
            .is_empty());
        // The next firing is.
        let again = registry
            .run_due_replications(&ctx, later + Span::hours(1))
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(registry.replication_executions(policy).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_run_whose_process_died_is_ended_after_the_stall_window_and_a_stop_is_kept() {
        let (registry, policy, _destination_at, _dirs) = given(TriggerSpec::Manual).await;
        let ctx = RequestContext::as_principal(Principal::system());
        let orphan = registry
            .start_replication(&ctx, policy, ReplicationTrigger::Manual)
            .await
            .unwrap();
        // Soon after, it is only slow: left alone.
        registry.run_due_replications(&ctx, Utc::now()).await.unwrap();
        let execution = registry.replication_execution(orphan.id).await.unwrap().unwrap();
        assert_eq!(execution.status, "InProgress");
        let stalled = Utc::now() + Span::minutes(21);
        registry.run_due_replications(&ctx, stalled).await.unwrap();
        let execution = registry.replication_execution(orphan.id).await.unwrap().unwrap();
        assert_eq!(execution.status, "Failed");
        assert!(execution.error.unwrap().contains("stopped before it ended"));

        // A stop seen before the first artifact: the run copies nothing and stays stopped.
        let stopped = registry
            .start_replication(&ctx, policy, ReplicationTrigger::Manual)
            .await
            .unwrap();
        assert!(registry.stop_replication(&ctx, stopped.id).await.unwrap());
        let finished = registry.finish_replication(&ctx, stopped).await.unwrap();
        assert_eq!(finished.status, "Stopped");
        assert!(finished.tasks.is_empty());
    }
}
