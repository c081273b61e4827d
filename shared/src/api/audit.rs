//! Audit logs (Harbor `/audit-logs`): the event log, newest first, one entry per event, with who
//! did it. System admins see every entry; other callers see the entries of the projects they
//! manage (repository, project, member and robot events), never user events. Entries carry no
//! event data, so no credential hash can appear. Pulls are not events and are not listed.
//!
//! Filters use Harbor's `q`: `operation=create,resource_type=project,username=alice,
//! resource=~library/,op_time=[2026-01-01T00:00:00Z~2026-12-31T00:00:00Z]`; `~v` matches part of
//! a value, `{a b}` any of several, `[from~to]` a time range (either end may be left out).
//!
//! Each request reads the whole log (simple, and fine for the directory-sized logs of a registry;
//! a projection would serve a very large log better).

use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::app::AppError;
use crate::domain::access::ProjectName;
use crate::domain::{Event, LogPosition, RecordedEvent};

use super::caller::{Caller, SignedIn};
use super::request::{FromQuery, Params, Query};
use super::{pagination, timestamp, ApiError};

/// Events read per call while scanning the log.
const LOG_PAGE: usize = 1_000;

#[derive(Debug, Clone, Serialize)]
struct AuditLogJson {
    id: u64,
    username: String,
    resource: String,
    resource_type: &'static str,
    operation: &'static str,
    op_time: String,
    event_type: &'static str,
}

struct Entry {
    json: AuditLogJson,
    time: DateTime<Utc>,
    project: Option<ProjectName>,
}

/// What an event did to what: (resource, resource type, operation, project).
fn describe(event: &Event) -> (String, &'static str, &'static str, Option<ProjectName>) {
    use Event as E;
    let project_of_repo = |repo: &str| ProjectName::parse(repo.split('/').next().unwrap_or_default()).ok();
    match event {
        E::BlobUploadCompleted {
            repository, digest, ..
        }
        | E::BlobMounted {
            repository, digest, ..
        } => {
            let r = repository.to_string();
            (format!("{r}@{digest}"), "blob", "create", project_of_repo(&r))
        }
        E::BlobUnlinked {
            repository, digest, ..
        } => {
            let r = repository.to_string();
            (format!("{r}@{digest}"), "blob", "delete", project_of_repo(&r))
        }
        E::ManifestPushed {
            repository, digest, ..
        } => {
            let r = repository.to_string();
            (format!("{r}@{digest}"), "artifact", "create", project_of_repo(&r))
        }
        E::ManifestDeleted {
            repository, digest, ..
        } => {
            let r = repository.to_string();
            (format!("{r}@{digest}"), "artifact", "delete", project_of_repo(&r))
        }
        E::TagMoved { repository, tag, .. } => {
            let r = repository.to_string();
            (format!("{r}:{tag}"), "tag", "create", project_of_repo(&r))
        }
        E::TagDeleted { repository, tag, .. } => {
            let r = repository.to_string();
            (format!("{r}:{tag}"), "tag", "delete", project_of_repo(&r))
        }
        E::ProjectCreated { project, .. } => {
            (project.to_string(), "project", "create", Some(project.clone()))
        }
        E::ProjectUpdated { project, .. } => {
            (project.to_string(), "project", "update", Some(project.clone()))
        }
        E::ProjectDeleted { project } => (project.to_string(), "project", "delete", Some(project.clone())),
        E::ProjectTrustConfigured { project, .. } => {
            (project.to_string(), "project", "update", Some(project.clone()))
        }
        E::BlobCondemned { digest } | E::BlobSpared { digest } | E::BlobDeleting { digest } => {
            (digest.to_string(), "blob", "update", None)
        }
        E::BlobDeleted { digest, .. } => (digest.to_string(), "blob", "delete", None),
        E::GcStarted { .. } => ("gc".to_string(), "gc", "create", None),
        E::ReplicationStarted { policy, .. } => {
            (format!("replication/{policy}"), "replication", "create", None)
        }
        E::ReplicationTaskFinished {
            policy,
            execution,
            digest,
            ..
        } => (
            format!("replication/{policy}/{execution}/{digest}"),
            "replication",
            "update",
            None,
        ),
        E::ReplicationFinished {
            policy, execution, ..
        } => (
            format!("replication/{policy}/{execution}"),
            "replication",
            "update",
            None,
        ),
        E::ReplicationPolicyChanged { id, policy } => (
            format!("replication/policies/{id}"),
            "replication_policy",
            if policy.is_some() { "update" } else { "delete" },
            None,
        ),
        E::RegistryChanged { id, registry } => (
            format!("registries/{id}"),
            "registry",
            if registry.is_some() { "update" } else { "delete" },
            None,
        ),
        E::GcScheduleChanged { schedule } => (
            "gc/schedule".to_string(),
            "gc",
            if schedule.is_some() { "update" } else { "delete" },
            None,
        ),
        E::GcCheckpoint { run, .. } | E::GcStopRequested { run } | E::GcFinished { run, .. } => {
            (format!("gc/{run}"), "gc", "update", None)
        }
        E::ArtifactPulled { repository, digest } => {
            let r = repository.to_string();
            (format!("{r}@{digest}"), "artifact", "pull", project_of_repo(&r))
        }
        E::RetentionPolicyChanged { project, policy } => (
            project.to_string(),
            "retention",
            if policy.is_some() { "update" } else { "delete" },
            Some(project.clone()),
        ),
        E::RetentionStarted { policy, project, .. } => (
            format!("retention/{policy}"),
            "retention",
            "create",
            Some(project.clone()),
        ),
        E::RetentionTaskFinished {
            policy,
            execution,
            repository,
            ..
        } => {
            let r = repository.to_string();
            (
                format!("retention/{policy}/{execution}/{r}"),
                "retention",
                "update",
                project_of_repo(&r),
            )
        }
        E::RetentionFinished {
            policy, execution, ..
        } => (
            format!("retention/{policy}/{execution}"),
            "retention",
            "update",
            None,
        ),
        E::ImmutableTagRulesChanged { project, .. } => (
            project.to_string(),
            "immutable_tag_rule",
            "update",
            Some(project.clone()),
        ),
        E::QuotaUsed {
            project,
            repository,
            digest,
            ..
        } => (
            format!("{repository}@{digest}"),
            "quota",
            "update",
            Some(project.clone()),
        ),
        E::AccessoryLinked {
            repository, digest, ..
        }
        | E::SignatureVerified {
            repository, digest, ..
        }
        | E::SignatureRejected {
            repository, digest, ..
        } => {
            let r = repository.to_string();
            (
                format!("{r}@{digest}"),
                "accessory",
                "update",
                project_of_repo(&r),
            )
        }
        E::AccessoryUnlinked {
            repository, digest, ..
        } => {
            let r = repository.to_string();
            (
                format!("{r}@{digest}"),
                "accessory",
                "delete",
                project_of_repo(&r),
            )
        }
        E::MemberAdded {
            project, username, ..
        } => member(project, username, "create"),
        E::MemberRoleChanged {
            project, username, ..
        } => member(project, username, "update"),
        E::MemberRemoved { project, username } => member(project, username, "delete"),
        E::UserCreated { username, .. } => (username.to_string(), "user", "create", None),
        E::UserPasswordChanged { username, .. } | E::UserAdminChanged { username, .. } => {
            (username.to_string(), "user", "update", None)
        }
        E::UserDeleted { username } => (username.to_string(), "user", "delete", None),
        E::RobotCreated { robot, .. } => (robot.to_string(), "robot", "create", Some(robot.project())),
        E::RobotUpdated { robot, .. } | E::RobotSecretRefreshed { robot, .. } => {
            (robot.to_string(), "robot", "update", Some(robot.project()))
        }
        E::RobotDeleted { robot } => (robot.to_string(), "robot", "delete", Some(robot.project())),
    }
}

fn member(
    project: &ProjectName,
    username: &impl std::fmt::Display,
    operation: &'static str,
) -> (String, &'static str, &'static str, Option<ProjectName>) {
    (
        format!("{project}/members/{username}"),
        "member",
        operation,
        Some(project.clone()),
    )
}

fn entry(recorded: &RecordedEvent) -> Entry {
    let envelope = &recorded.envelope;
    let (resource, resource_type, operation, project) = describe(&envelope.event);
    Entry {
        json: AuditLogJson {
            id: recorded.position.number(),
            username: envelope.principal.clone(),
            resource,
            resource_type,
            operation,
            op_time: timestamp(envelope.time),
            event_type: envelope.event.kind().name,
        },
        time: envelope.time,
        project,
    }
}

/// One term of `q`.
enum Match {
    Exact(String),
    Part(String),
    AnyOf(Vec<String>),
}

impl Match {
    fn parse(value: &str) -> Match {
        if let Some(part) = value.strip_prefix('~') {
            Match::Part(part.to_string())
        } else if let Some(list) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            Match::AnyOf(list.split_whitespace().map(str::to_string).collect())
        } else {
            Match::Exact(value.to_string())
        }
    }

    fn accepts(&self, value: &str) -> bool {
        match self {
            Match::Exact(v) => v == value,
            Match::Part(p) => value.contains(p.as_str()),
            Match::AnyOf(vs) => vs.iter().any(|v| v == value),
        }
    }
}

/// Harbor's `q`, as the module describes it.
#[derive(Default)]
pub(super) struct Filter {
    fields: Vec<(&'static str, Match)>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

fn time_of(raw: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S")
        .map(|t| Some(t.and_utc()))
        .map_err(|_| ApiError::bad_request(format!("op_time {raw:?} is not an RFC 3339 time")))
}

impl FromQuery for Filter {
    fn from_query(query: &Query) -> Result<Filter, ApiError> {
        let mut filter = Filter::default();
        for term in query.terms() {
            let (key, value) = term?;
            let field = match key {
                "operation" => "operation",
                "resource_type" => "resource_type",
                "resource" => "resource",
                "username" => "username",
                "event_type" => "event_type",
                "op_time" => {
                    let range = (value.strip_prefix('[').and_then(|v| v.strip_suffix(']')))
                        .ok_or_else(|| ApiError::bad_request("op_time is a range: [from~to]"))?;
                    let (from, to) = range.split_once('~').unwrap_or((range, ""));
                    filter.from = time_of(from)?;
                    filter.to = time_of(to)?;
                    continue;
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "audit logs cannot be filtered by {other}"
                    )))
                }
            };
            filter.fields.push((field, Match::parse(value)));
        }
        Ok(filter)
    }
}

impl Filter {
    fn accepts(&self, entry: &Entry) -> bool {
        let j = &entry.json;
        let in_range = self.from.is_none_or(|f| entry.time >= f) && self.to.is_none_or(|t| entry.time <= t);
        in_range
            && self.fields.iter().all(|(field, m)| {
                let value = match *field {
                    "operation" => j.operation,
                    "resource_type" => j.resource_type,
                    "resource" => &j.resource,
                    "username" => &j.username,
                    _ => j.event_type,
                };
                m.accepts(value)
            })
    }
}

pub(super) async fn list(
    Params(query, filter): Params<Filter>,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let (directory, principal) = (&caller.directory, &caller.principal);
    let admin = directory.is_admin(principal);
    let mut entries = Vec::new();
    let mut after = LogPosition::start();
    loop {
        let events = (caller.registry().log().read_all(&after, LOG_PAGE).await).map_err(AppError::from)?;
        for recorded in &events {
            let entry = entry(recorded);
            let allowed = admin || (entry.project.as_ref()).is_some_and(|p| directory.manages(principal, p));
            if allowed && filter.accepts(&entry) {
                entries.push(entry.json);
            }
        }
        match events.last() {
            Some(last) if events.len() == LOG_PAGE => after = last.position.clone(),
            _ => break,
        }
    }
    entries.reverse();
    pagination::respond(entries, "/audit-logs", &query)
}
