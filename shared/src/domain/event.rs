//! Domain events: every state change of a repository is one of these, appended to the stream of
//! the tag, manifest or blob it changes ([`StreamId::of`]). Names are past tense; each has a stable CloudEvents type `dev.berth.<snake_name>.v<version>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::access::{Action, ContentTrust, ProjectName, RobotName, Role, Username};
use super::accessory_kind::AccessoryKind;
use super::digest::Digest;
use super::lifecycle::immutability::RuleSpec;
use super::lifecycle::retention::PolicySpec;
use super::lifecycle::schedule::GcScheduleSpec;
use super::manifest::Content;
use super::name::{RepoName, Tag};
use super::position::LogPosition;
use super::replication::{PolicySpec as ReplicationPolicySpec, RegistrySpec};

/// The stream an event belongs to (docs/log-scale-out.md): one per tag, per manifest and per blob
/// of a repository, so that writers of different tags never conflict; `repository/<repo>` for the
/// repository's events before the finer streams (and repository-wide decisions to come); `access`
/// for projects, users, members and robot accounts. The forms cannot collide: `:` and `@` appear in
/// no repository name, `/` in no tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub fn repository(repo: &RepoName) -> StreamId {
        StreamId(format!("repository/{repo}"))
    }

    /// `tag/<repo>:<tag>`: the tag's moves and deletion.
    pub fn tag(repo: &RepoName, tag: &Tag) -> StreamId {
        StreamId(format!("tag/{repo}:{tag}"))
    }

    /// `manifest/<repo>@<digest>`: the manifest's push and deletion, the accessories linked to it
    /// and the verdicts on their signatures.
    pub fn manifest(repo: &RepoName, digest: &Digest) -> StreamId {
        StreamId(format!("manifest/{repo}@{digest}"))
    }

    /// `blob/<repo>@<digest>`: the blob's links into the repository and its unlinking.
    pub fn blob(repo: &RepoName, digest: &Digest) -> StreamId {
        StreamId(format!("blob/{repo}@{digest}"))
    }

    /// The stream `event` is appended to: what it changes (a tag, a manifest, a blob) decides.
    pub fn of(event: &Event) -> StreamId {
        match event {
            Event::BlobUploadCompleted {
                repository, digest, ..
            }
            | Event::BlobMounted {
                repository, digest, ..
            }
            | Event::BlobUnlinked {
                repository, digest, ..
            } => StreamId::blob(repository, digest),
            Event::ManifestPushed {
                repository, digest, ..
            }
            | Event::ManifestDeleted {
                repository, digest, ..
            } => StreamId::manifest(repository, digest),
            Event::TagMoved { repository, tag, .. } | Event::TagDeleted { repository, tag, .. } => {
                StreamId::tag(repository, tag)
            }
            Event::AccessoryLinked {
                repository, subject, ..
            }
            | Event::AccessoryUnlinked {
                repository, subject, ..
            }
            | Event::SignatureVerified {
                repository, subject, ..
            }
            | Event::SignatureRejected {
                repository, subject, ..
            } => StreamId::manifest(repository, subject),
            Event::QuotaUsed { project, .. } => StreamId::quota(project),
            Event::BlobCondemned { digest }
            | Event::BlobSpared { digest }
            | Event::BlobDeleting { digest }
            | Event::BlobDeleted { digest, .. } => StreamId::content(digest),
            Event::GcStarted { .. }
            | Event::GcCheckpoint { .. }
            | Event::GcStopRequested { .. }
            | Event::GcFinished { .. } => StreamId::gc(),
            Event::ArtifactPulled { repository, digest } => StreamId::pulled(repository, digest),
            Event::RetentionStarted { policy, .. }
            | Event::RetentionTaskFinished { policy, .. }
            | Event::RetentionFinished { policy, .. } => StreamId::retention(*policy),
            Event::ReplicationStarted { policy, .. }
            | Event::ReplicationTaskFinished { policy, .. }
            | Event::ReplicationFinished { policy, .. } => StreamId::replication(*policy),
            _ => StreamId::access(),
        }
    }

    /// `quota/<project>`: what was added to a project that has a quota. Every addition to such a
    /// project appends here, so concurrent additions conflict and each is decided against the
    /// usage the others left (docs/log-scale-out.md, "Quotas atomic with the push").
    pub fn quota(project: &ProjectName) -> StreamId {
        StreamId(format!("quota/{project}"))
    }

    /// `content/<digest>`: the state of the bytes of `digest` while garbage collection decides on
    /// them (docs/lifecycle.md, "GC protocol").
    pub fn content(digest: &Digest) -> StreamId {
        StreamId(format!("content/{digest}"))
    }

    /// `gc`: the runs of garbage collection. While its last event belongs to a real run that has
    /// not finished (`GcStarted`, `GcCheckpoint`, `GcStopRequested`), the GC fence is up and write
    /// decisions take the careful path.
    pub fn gc() -> StreamId {
        StreamId("gc".to_string())
    }

    /// `pulled/<repo>@<digest>`: when the artifact was pulled (at most one event per artifact per
    /// interval and process: retention's last-pull time, not a pull counter).
    pub fn pulled(repo: &RepoName, digest: &Digest) -> StreamId {
        StreamId(format!("pulled/{repo}@{digest}"))
    }

    /// `retention/<policy id>`: the executions of a retention policy (an execution's id is the
    /// version of its `RetentionStarted`).
    pub fn retention(policy: u64) -> StreamId {
        StreamId(format!("retention/{policy}"))
    }

    /// `replication/<policy id>`: the executions of a replication policy (an execution is the
    /// version of its `ReplicationStarted`).
    pub fn replication(policy: u64) -> StreamId {
        StreamId(format!("replication/{policy}"))
    }

    /// The stream of every access-control change (one stream: its version orders them all, which
    /// keeps names unique and ids dense; these changes are rare).
    pub fn access() -> StreamId {
        StreamId("access".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum Event {
    /// An upload finished, its digest verified: the blob is now linked to the repository.
    BlobUploadCompleted {
        repository: RepoName,
        digest: Digest,
        size: u64,
    },
    /// A blob linked to `from` was linked to the repository without copying bytes.
    BlobMounted {
        repository: RepoName,
        digest: Digest,
        size: u64,
        from: RepoName,
    },
    /// The blob is no longer served through the repository (its bytes stay until garbage collection).
    BlobUnlinked {
        repository: RepoName,
        digest: Digest,
        size: u64,
    },
    ManifestPushed {
        repository: RepoName,
        digest: Digest,
        media_type: String,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Digest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_media_type: Option<String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
        /// The annotations were too large to record here (`manifest::MAX_RECORDED_ANNOTATIONS_BYTES`);
        /// they are in the manifest.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        annotations_omitted: bool,
        /// Blobs the manifest references (config and distributable layers).
        blobs: Vec<Digest>,
        /// Child manifests (for an index).
        manifests: Vec<Digest>,
        /// What its layers carry (absent in events recorded before it was: read the manifest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
    },
    TagMoved {
        repository: RepoName,
        tag: Tag,
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<Digest>,
    },
    TagDeleted {
        repository: RepoName,
        tag: Tag,
        digest: Digest,
    },
    /// Carries what the manifest was, so subscribers (referrer indexes, accessory cleanup) need not
    /// remember its `ManifestPushed`.
    ManifestDeleted {
        repository: RepoName,
        digest: Digest,
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Digest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_media_type: Option<String>,
    },
    /// `digest` (a signature, attestation, SBOM...) was found to describe `subject`, by the OCI 1.1
    /// `subject` field or by cosign's tag scheme (`viaTag`), whichever was pushed last.
    AccessoryLinked {
        repository: RepoName,
        subject: Digest,
        digest: Digest,
        kind: AccessoryKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via_tag: Option<Tag>,
    },
    /// The accessory no longer describes the subject (one of them was deleted).
    AccessoryUnlinked {
        repository: RepoName,
        subject: Digest,
        digest: Digest,
        kind: AccessoryKind,
    },
    /// The signature `digest` of `subject` verified under revision `trustRevision` of its project's
    /// trust configuration.
    SignatureVerified {
        repository: RepoName,
        subject: Digest,
        digest: Digest,
        kind: AccessoryKind,
        trust_revision: u64,
        signer: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// The signature `digest` of `subject` did not verify under revision `trustRevision`.
    SignatureRejected {
        repository: RepoName,
        subject: Digest,
        digest: Digest,
        kind: AccessoryKind,
        trust_revision: u64,
        reason: String,
    },
    /// A project was created (ids are Harbor-style numbers, unique in the directory).
    ProjectCreated {
        project: ProjectName,
        id: u64,
        public: bool,
        /// Storage limit in bytes; absent is unlimited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quota: Option<u64>,
        /// Harbor project metadata kept as sent (`auto_scan`, `severity`, ...), beyond the settings
        /// Berth acts on (public, content trust), which have their own fields and events.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metadata: BTreeMap<String, String>,
    },
    /// The project's settings after the change.
    ProjectUpdated {
        project: ProjectName,
        public: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quota: Option<u64>,
        /// All of the kept metadata after the change (as in `ProjectCreated`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metadata: BTreeMap<String, String>,
    },
    ProjectDeleted {
        project: ProjectName,
    },
    /// The project's content-trust configuration after the change (its revision is the event's
    /// version in the access stream).
    ProjectTrustConfigured {
        project: ProjectName,
        trust: ContentTrust,
    },
    UserCreated {
        username: Username,
        id: u64,
        /// argon2id PHC string, never the password.
        password_hash: String,
        admin: bool,
    },
    UserPasswordChanged {
        username: Username,
        password_hash: String,
    },
    UserAdminChanged {
        username: Username,
        admin: bool,
    },
    UserDeleted {
        username: Username,
    },
    MemberAdded {
        project: ProjectName,
        username: Username,
        role: Role,
        id: u64,
    },
    MemberRoleChanged {
        project: ProjectName,
        username: Username,
        role: Role,
    },
    MemberRemoved {
        project: ProjectName,
        username: Username,
    },
    RobotCreated {
        robot: RobotName,
        id: u64,
        description: String,
        actions: BTreeSet<Action>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        /// argon2id PHC string, never the secret.
        secret_hash: String,
    },
    /// The robot's settings after the change.
    RobotUpdated {
        robot: RobotName,
        description: String,
        actions: BTreeSet<Action>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        disabled: bool,
    },
    RobotSecretRefreshed {
        robot: RobotName,
        secret_hash: String,
    },
    RobotDeleted {
        robot: RobotName,
    },
    /// The project's immutable tag rules after the change: all of them, ids kept (Harbor's
    /// `/projects/{p}/immutabletagrules`).
    ImmutableTagRulesChanged {
        project: ProjectName,
        rules: Vec<RuleSpec>,
    },
    /// Garbage collection found nothing using `digest` and may delete its bytes unless a writer
    /// spares them first.
    BlobCondemned {
        digest: Digest,
    },
    /// A writer (or garbage collection itself, on a second look) found `digest` in use after it was
    /// condemned: its bytes stay.
    BlobSpared {
        digest: Digest,
    },
    /// Garbage collection is deleting the bytes of `digest`: writers that need them are refused
    /// (and retry) until `BlobDeleted`.
    BlobDeleting {
        digest: Digest,
    },
    /// The bytes of `digest` (`size` bytes) are deleted.
    BlobDeleted {
        digest: Digest,
        size: u64,
    },
    /// A garbage collection run started (its id is this event's version in the `gc` stream). A run
    /// that is not a dry run raises the GC fence until its `GcFinished`.
    GcStarted {
        delete_untagged: bool,
        dry_run: bool,
        /// Nothing written after this is collected (the start minus the grace window).
        cutoff: DateTime<Utc>,
        /// For a run the GC schedule started: the firing it serves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_for: Option<DateTime<Utc>>,
    },
    /// Garbage collection's schedule as it is after the change (`None`: no schedule), Harbor's
    /// `/system/gc/schedule`.
    GcScheduleChanged {
        schedule: Option<GcScheduleSpec>,
    },
    /// A garbage collection run's progress so far, appended by the process running it between
    /// repositories and between batches of blobs (at most every few seconds): where a run taken
    /// over (after a crash, or a Lambda invocation's time limit) carries on, and its owner (a
    /// run's destructive decisions are guarded on the `gc` stream, so the process that appended
    /// last is the only one that can still delete).
    GcCheckpoint {
        /// The version of its `GcStarted` in the `gc` stream.
        run: u64,
        /// 1: links and manifests, per repository; 2: the bytes, per page of the blob store.
        phase: u8,
        /// The last repository (phase 1) or digest (phase 2) done; `None`: the phase's start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        manifests_deleted: u64,
        links_removed: u64,
        blobs_deleted: u64,
        bytes_freed: u64,
        /// The process stopped here on purpose (a Lambda invocation near its time limit): the next
        /// one may take the run over at once rather than after the stall window.
        #[serde(default)]
        paused: bool,
    },
    /// Someone asked run `run` to stop (Harbor's `PUT /system/gc/{id}`). The run sees it at its
    /// next safe point (between repositories, between batches of blobs) and ends with
    /// `GcFinished { status: "Stopped" }`; until then the fence stays up.
    GcStopRequested {
        run: u64,
    },
    /// A garbage collection run ended: what it found and freed (for a dry run, what it would have).
    GcFinished {
        /// The version of its `GcStarted` in the `gc` stream.
        run: u64,
        /// Harbor's `job_status`: `Success`, `Error` or `Stopped`.
        status: String,
        manifests_deleted: u64,
        links_removed: u64,
        blobs_deleted: u64,
        bytes_freed: u64,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The artifact `digest` of `repository` was pulled (its manifest fetched with GET). Recorded
    /// at most once per artifact per interval by each process: the last-pull time retention's
    /// `latestPulledN` and `nDaysSinceLastPull` rules judge by.
    ArtifactPulled {
        repository: RepoName,
        digest: Digest,
    },
    /// A project's tag retention policy as it is after the change (`None`: deleted), Harbor's
    /// `/retentions`; its id is the project's `retention_id`.
    RetentionPolicyChanged {
        project: ProjectName,
        policy: Option<PolicySpec>,
    },
    /// A run of retention policy `policy` started: its execution id is this event's version in the
    /// `retention/<policy>` stream. `trigger` is Harbor's: `MANUAL` or `Schedule`.
    RetentionStarted {
        policy: u64,
        project: ProjectName,
        dry_run: bool,
        trigger: String,
        /// For a run its schedule started: the firing it serves (a later check does not run it
        /// again).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_for: Option<DateTime<Utc>>,
    },
    /// A run finished with one repository (Harbor's task): what it judged, kept and deleted (a dry
    /// run: would have deleted), and the verdict on each artifact.
    RetentionTaskFinished {
        policy: u64,
        execution: u64,
        repository: RepoName,
        /// Harbor's task status: `Success` or `Error`.
        status: String,
        total: u64,
        retained: u64,
        deleted: u64,
        rows: Vec<RetentionRow>,
        /// Verdicts left out of `rows` to keep the event small (retained artifacts go first).
        #[serde(default, skip_serializing_if = "is_zero")]
        rows_omitted: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A run ended: `Success`, `Error` or `Stopped` (Harbor's execution statuses).
    RetentionFinished {
        policy: u64,
        execution: u64,
        status: String,
    },
    /// Replication's registry endpoint `id` as it is after the change (`None`: deleted), Harbor's
    /// `/registries`. Its credential's secret is sealed (`ports::SecretBox`), never in the clear.
    RegistryChanged {
        id: u64,
        registry: Option<RegistrySpec>,
    },
    /// Replication policy `id` as it is after the change (`None`: deleted), Harbor's
    /// `/replication/policies`.
    ReplicationPolicyChanged {
        id: u64,
        policy: Option<ReplicationPolicySpec>,
    },
    /// A run of replication policy `policy` started: its execution is this event's version in the
    /// `replication/<policy>` stream. `trigger` is Harbor's: `MANUAL`, `SCHEDULE` or `EVENT_BASED`.
    ReplicationStarted {
        policy: u64,
        trigger: String,
        /// For a run its schedule started: the firing it serves (a later check does not run it
        /// again).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_for: Option<DateTime<Utc>>,
    },
    /// A run copied one artifact (Harbor's task): its subject, then its accessories and referrers,
    /// and how its blobs crossed (sent, mounted at the destination, already there).
    ReplicationTaskFinished {
        policy: u64,
        execution: u64,
        /// Harbor's `resource_type`: `image` or `artifact`.
        resource_type: String,
        /// The repository copied from, and the one copied to.
        source: String,
        destination: String,
        digest: Digest,
        /// The tags that went with it (none: copied by digest).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
        /// Accessories and referrers copied after it.
        #[serde(default, skip_serializing_if = "is_zero")]
        accessories: u64,
        /// Harbor's task status: `Succeed` or `Failed`.
        status: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        blobs_sent: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        blobs_mounted: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        blobs_present: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        bytes_sent: u64,
        /// The task deleted the artifact (by digest) or the tag at the destination, as the source
        /// did (Harbor's `deletion` operation), rather than copying it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deletion: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A run ended: Harbor's `Succeed`, `Failed` or `Stopped` (a stop is appended by whoever asked
    /// for it; the run sees it before its next artifact).
    ReplicationFinished {
        policy: u64,
        execution: u64,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `digest` (`size` bytes), new to the project, was stored through `repository`: the project's
    /// quota use grew by `size`. Appended with the write that stores the content, in projects that
    /// have a quota only.
    QuotaUsed {
        project: ProjectName,
        repository: RepoName,
        digest: Digest,
        size: u64,
    },
}

/// Retention's verdict on one artifact, as Harbor's task log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRow {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled: Option<DateTime<Utc>>,
    /// Harbor's `RETAIN`, `DEL`, `IMMUTABLE` or `ERR`.
    pub outcome: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The name, CloudEvents type and schema version of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    pub name: &'static str,
    pub cloud_type: &'static str,
    pub version: u32,
}

impl Event {
    pub const KINDS: [EventKind; 47] = [
        kind("BlobUploadCompleted", "dev.berth.blob_upload_completed.v1"),
        kind("BlobMounted", "dev.berth.blob_mounted.v1"),
        kind("BlobUnlinked", "dev.berth.blob_unlinked.v1"),
        kind("ManifestPushed", "dev.berth.manifest_pushed.v1"),
        kind("TagMoved", "dev.berth.tag_moved.v1"),
        kind("TagDeleted", "dev.berth.tag_deleted.v1"),
        kind("ManifestDeleted", "dev.berth.manifest_deleted.v1"),
        kind("ProjectCreated", "dev.berth.project_created.v1"),
        kind("ProjectUpdated", "dev.berth.project_updated.v1"),
        kind("ProjectDeleted", "dev.berth.project_deleted.v1"),
        kind("UserCreated", "dev.berth.user_created.v1"),
        kind("UserPasswordChanged", "dev.berth.user_password_changed.v1"),
        kind("UserAdminChanged", "dev.berth.user_admin_changed.v1"),
        kind("UserDeleted", "dev.berth.user_deleted.v1"),
        kind("MemberAdded", "dev.berth.member_added.v1"),
        kind("MemberRoleChanged", "dev.berth.member_role_changed.v1"),
        kind("MemberRemoved", "dev.berth.member_removed.v1"),
        kind("RobotCreated", "dev.berth.robot_created.v1"),
        kind("RobotUpdated", "dev.berth.robot_updated.v1"),
        kind("RobotSecretRefreshed", "dev.berth.robot_secret_refreshed.v1"),
        kind("RobotDeleted", "dev.berth.robot_deleted.v1"),
        kind("AccessoryLinked", "dev.berth.accessory_linked.v1"),
        kind("AccessoryUnlinked", "dev.berth.accessory_unlinked.v1"),
        kind("SignatureVerified", "dev.berth.signature_verified.v1"),
        kind("SignatureRejected", "dev.berth.signature_rejected.v1"),
        kind("ProjectTrustConfigured", "dev.berth.project_trust_configured.v1"),
        kind("QuotaUsed", "dev.berth.quota_used.v1"),
        kind(
            "ImmutableTagRulesChanged",
            "dev.berth.immutable_tag_rules_changed.v1",
        ),
        kind("BlobCondemned", "dev.berth.blob_condemned.v1"),
        kind("BlobSpared", "dev.berth.blob_spared.v1"),
        kind("BlobDeleting", "dev.berth.blob_deleting.v1"),
        kind("BlobDeleted", "dev.berth.blob_deleted.v1"),
        kind("GcStarted", "dev.berth.gc_started.v1"),
        kind("GcFinished", "dev.berth.gc_finished.v1"),
        kind("ArtifactPulled", "dev.berth.artifact_pulled.v1"),
        kind("RetentionPolicyChanged", "dev.berth.retention_policy_changed.v1"),
        kind("RetentionStarted", "dev.berth.retention_started.v1"),
        kind("RetentionTaskFinished", "dev.berth.retention_task_finished.v1"),
        kind("RetentionFinished", "dev.berth.retention_finished.v1"),
        kind("GcScheduleChanged", "dev.berth.gc_schedule_changed.v1"),
        kind("GcCheckpoint", "dev.berth.gc_checkpoint.v1"),
        kind("GcStopRequested", "dev.berth.gc_stop_requested.v1"),
        kind("RegistryChanged", "dev.berth.registry_changed.v1"),
        kind(
            "ReplicationPolicyChanged",
            "dev.berth.replication_policy_changed.v1",
        ),
        kind("ReplicationStarted", "dev.berth.replication_started.v1"),
        kind(
            "ReplicationTaskFinished",
            "dev.berth.replication_task_finished.v1",
        ),
        kind("ReplicationFinished", "dev.berth.replication_finished.v1"),
    ];

    pub fn kind(&self) -> EventKind {
        let index = match self {
            Event::BlobUploadCompleted { .. } => 0,
            Event::BlobMounted { .. } => 1,
            Event::BlobUnlinked { .. } => 2,
            Event::ManifestPushed { .. } => 3,
            Event::TagMoved { .. } => 4,
            Event::TagDeleted { .. } => 5,
            Event::ManifestDeleted { .. } => 6,
            Event::ProjectCreated { .. } => 7,
            Event::ProjectUpdated { .. } => 8,
            Event::ProjectDeleted { .. } => 9,
            Event::UserCreated { .. } => 10,
            Event::UserPasswordChanged { .. } => 11,
            Event::UserAdminChanged { .. } => 12,
            Event::UserDeleted { .. } => 13,
            Event::MemberAdded { .. } => 14,
            Event::MemberRoleChanged { .. } => 15,
            Event::MemberRemoved { .. } => 16,
            Event::RobotCreated { .. } => 17,
            Event::RobotUpdated { .. } => 18,
            Event::RobotSecretRefreshed { .. } => 19,
            Event::RobotDeleted { .. } => 20,
            Event::AccessoryLinked { .. } => 21,
            Event::AccessoryUnlinked { .. } => 22,
            Event::SignatureVerified { .. } => 23,
            Event::SignatureRejected { .. } => 24,
            Event::ProjectTrustConfigured { .. } => 25,
            Event::QuotaUsed { .. } => 26,
            Event::ImmutableTagRulesChanged { .. } => 27,
            Event::BlobCondemned { .. } => 28,
            Event::BlobSpared { .. } => 29,
            Event::BlobDeleting { .. } => 30,
            Event::BlobDeleted { .. } => 31,
            Event::GcStarted { .. } => 32,
            Event::GcFinished { .. } => 33,
            Event::ArtifactPulled { .. } => 34,
            Event::RetentionPolicyChanged { .. } => 35,
            Event::RetentionStarted { .. } => 36,
            Event::RetentionTaskFinished { .. } => 37,
            Event::RetentionFinished { .. } => 38,
            Event::GcScheduleChanged { .. } => 39,
            Event::GcCheckpoint { .. } => 40,
            Event::GcStopRequested { .. } => 41,
            Event::RegistryChanged { .. } => 42,
            Event::ReplicationPolicyChanged { .. } => 43,
            Event::ReplicationStarted { .. } => 44,
            Event::ReplicationTaskFinished { .. } => 45,
            Event::ReplicationFinished { .. } => 46,
        };
        Self::KINDS[index]
    }

    /// The repository the event changed (`None` for access-control events and quota use, which
    /// change no view).
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            Event::BlobUploadCompleted { repository, .. }
            | Event::BlobMounted { repository, .. }
            | Event::BlobUnlinked { repository, .. }
            | Event::ManifestPushed { repository, .. }
            | Event::TagMoved { repository, .. }
            | Event::TagDeleted { repository, .. }
            | Event::ManifestDeleted { repository, .. }
            | Event::AccessoryLinked { repository, .. }
            | Event::AccessoryUnlinked { repository, .. }
            | Event::SignatureVerified { repository, .. }
            | Event::SignatureRejected { repository, .. } => Some(repository),
            _ => None,
        }
    }

    /// The CloudEvents `source`: the repository, the project, or the user or robot changed.
    pub fn source(&self) -> String {
        if let Some(repo) = self.repository() {
            return format!("/repositories/{repo}");
        }
        match self {
            Event::ProjectCreated { project, .. }
            | Event::ProjectUpdated { project, .. }
            | Event::ProjectDeleted { project }
            | Event::ProjectTrustConfigured { project, .. }
            | Event::ImmutableTagRulesChanged { project, .. }
            | Event::RetentionPolicyChanged { project, .. }
            | Event::QuotaUsed { project, .. }
            | Event::MemberAdded { project, .. }
            | Event::MemberRoleChanged { project, .. }
            | Event::MemberRemoved { project, .. } => format!("/projects/{project}"),
            Event::UserCreated { username, .. }
            | Event::UserPasswordChanged { username, .. }
            | Event::UserAdminChanged { username, .. }
            | Event::UserDeleted { username } => format!("/users/{username}"),
            Event::RobotCreated { robot, .. }
            | Event::RobotUpdated { robot, .. }
            | Event::RobotSecretRefreshed { robot, .. }
            | Event::RobotDeleted { robot } => format!("/projects/{}/robots/{robot}", robot.project()),
            Event::BlobCondemned { digest }
            | Event::BlobSpared { digest }
            | Event::BlobDeleting { digest }
            | Event::BlobDeleted { digest, .. } => format!("/blobs/{digest}"),
            Event::GcStarted { .. }
            | Event::GcCheckpoint { .. }
            | Event::GcStopRequested { .. }
            | Event::GcFinished { .. }
            | Event::GcScheduleChanged { .. } => "/system/gc".to_string(),
            Event::ArtifactPulled { repository, .. } => format!("/repositories/{repository}"),
            Event::RetentionStarted { policy, .. }
            | Event::RetentionTaskFinished { policy, .. }
            | Event::RetentionFinished { policy, .. } => format!("/retentions/{policy}"),
            Event::RegistryChanged { id, .. } => format!("/registries/{id}"),
            Event::ReplicationPolicyChanged { id, .. } => format!("/replication/policies/{id}"),
            Event::ReplicationStarted { policy, .. }
            | Event::ReplicationTaskFinished { policy, .. }
            | Event::ReplicationFinished { policy, .. } => format!("/replication/policies/{policy}"),
            _ => "/".to_string(),
        }
    }
}

const fn kind(name: &'static str, cloud_type: &'static str) -> EventKind {
    EventKind {
        name,
        cloud_type,
        version: 1,
    }
}

/// An event about to be appended, with what the application knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Unique and stable: subscribers deduplicate on it.
    pub id: String,
    pub time: DateTime<Utc>,
    /// Who caused it: a username, a robot name, `anonymous` or `system`.
    pub principal: String,
    pub event: Event,
}

/// Alias kept for readability at append sites.
pub type NewEvent = EventEnvelope;

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Where the event is in the whole log (`read_all` pages by it): see [`LogPosition`]. Events
    /// recorded before positions were strings hold their sequence number here (`sequence`).
    #[serde(alias = "sequence")]
    pub position: LogPosition,
    pub stream: StreamId,
    /// Version of the stream after this event, 1-based.
    pub version: u64,
    #[serde(flatten)]
    pub envelope: EventEnvelope,
}
