//! Events out of the log as CloudEvents 1.0 (structured JSON mode), via cloudevents-sdk.
//!
//! - `type`: `dev.berth.<event>.v<version>` (stable per event type and schema version);
//! - `id`: the event's id, unique and stable (subscribers deduplicate on it);
//! - `source`: `/repositories/<repository>` (or `/projects/<p>`, `/users/<u>`,
//!   `/projects/<p>/robots/<robot>` for access-control events); `subject`: the digest, tag, member,
//!   user, robot or project concerned;
//! - `data`: the event, except credential hashes (`passwordHash`, `secretHash`): they stay in the
//!   log, and subscribers never receive them;
//! - extensions: `berthposition` (the event's position in the log, a string: see
//!   `domain::position`; it orders events by time, each stream's by version), `berthstream`,
//!   `berthversion` (stream version), `berthprincipal` (who caused it).
//!
//! A JSON Schema of each event type (the whole CloudEvent, `data` included) and a sample generated
//! from this code live in `events/` at the repository root; `shared/tests/events.rs` keeps them true.

use cloudevents::{EventBuilder, EventBuilderV10};

use crate::domain::{Event, RecordedEvent};

/// Fields of `data`, at any depth, never published: salted hashes of passwords and robot secrets,
/// and registry credentials' sealed secrets.
const CREDENTIAL_FIELDS: [&str; 3] = ["passwordHash", "secretHash", "sealedSecret"];

#[derive(Debug, thiserror::Error)]
pub enum CloudEventError {
    #[error("cannot build CloudEvent: {0}")]
    Build(String),
}

/// The CloudEvent of a recorded event.
pub fn to_cloudevent(recorded: &RecordedEvent) -> Result<cloudevents::Event, CloudEventError> {
    let envelope = &recorded.envelope;
    let event = &envelope.event;
    let mut data = serde_json::to_value(event)
        .map_err(|e| CloudEventError::Build(e.to_string()))?
        .get("data")
        .cloned()
        .unwrap_or_default();
    strip_credentials(&mut data);
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    EventBuilderV10::new()
        .id(envelope.id.clone())
        .ty(event.kind().cloud_type)
        .source(event.source())
        .subject(subject_of(event))
        .time(envelope.time)
        .extension("berthposition", recorded.position.as_str())
        .extension("berthstream", recorded.stream.as_str())
        .extension("berthversion", as_i64(recorded.version))
        .extension("berthprincipal", envelope.principal.as_str())
        .data("application/json", data)
        .build()
        .map_err(|e| CloudEventError::Build(e.to_string()))
}

/// `value` without [`CREDENTIAL_FIELDS`], wherever they are.
fn strip_credentials(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            fields.retain(|name, _| !CREDENTIAL_FIELDS.contains(&name.as_str()));
            fields.values_mut().for_each(strip_credentials);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_credentials),
        _ => {}
    }
}

/// The CloudEvent of a recorded event as one line of structured JSON.
pub fn to_json(recorded: &RecordedEvent) -> Result<serde_json::Value, CloudEventError> {
    serde_json::to_value(to_cloudevent(recorded)?).map_err(|e| CloudEventError::Build(e.to_string()))
}

fn subject_of(event: &Event) -> String {
    match event {
        Event::TagMoved { tag, .. } | Event::TagDeleted { tag, .. } => tag.to_string(),
        Event::BlobUploadCompleted { digest, .. }
        | Event::BlobMounted { digest, .. }
        | Event::BlobUnlinked { digest, .. }
        | Event::ManifestPushed { digest, .. }
        | Event::ManifestDeleted { digest, .. }
        | Event::AccessoryLinked { digest, .. }
        | Event::AccessoryUnlinked { digest, .. }
        | Event::SignatureVerified { digest, .. }
        | Event::SignatureRejected { digest, .. }
        | Event::QuotaUsed { digest, .. }
        | Event::BlobCondemned { digest }
        | Event::BlobSpared { digest }
        | Event::BlobDeleting { digest }
        | Event::BlobDeleted { digest, .. } => digest.to_string(),
        Event::GcStarted { .. } => "gc".to_string(),
        Event::RegistryChanged { id, .. } => format!("registries/{id}"),
        Event::ReplicationPolicyChanged { id, .. } => format!("replication/policies/{id}"),
        Event::ReplicationStarted { policy, .. } => format!("replication/{policy}"),
        Event::ReplicationTaskFinished {
            policy,
            execution,
            digest,
            ..
        } => format!("replication/{policy}/{execution}/{digest}"),
        Event::ReplicationFinished {
            policy, execution, ..
        } => format!("replication/{policy}/{execution}"),
        Event::GcScheduleChanged { .. } => "gc/schedule".to_string(),
        Event::GcCheckpoint { run, .. } | Event::GcStopRequested { run } | Event::GcFinished { run, .. } => {
            format!("gc/{run}")
        }
        Event::ArtifactPulled { repository, digest } => format!("{repository}@{digest}"),
        Event::RetentionStarted { policy, .. } => format!("retention/{policy}"),
        Event::RetentionTaskFinished {
            policy,
            execution,
            repository,
            ..
        } => format!("retention/{policy}/{execution}/{repository}"),
        Event::RetentionFinished {
            policy, execution, ..
        } => format!("retention/{policy}/{execution}"),
        Event::ProjectCreated { project, .. }
        | Event::ProjectUpdated { project, .. }
        | Event::ProjectDeleted { project }
        | Event::ProjectTrustConfigured { project, .. }
        | Event::ImmutableTagRulesChanged { project, .. }
        | Event::RetentionPolicyChanged { project, .. } => project.to_string(),
        Event::UserCreated { username, .. }
        | Event::UserPasswordChanged { username, .. }
        | Event::UserAdminChanged { username, .. }
        | Event::UserDeleted { username }
        | Event::MemberAdded { username, .. }
        | Event::MemberRoleChanged { username, .. }
        | Event::MemberRemoved { username, .. } => username.to_string(),
        Event::RobotCreated { robot, .. }
        | Event::RobotUpdated { robot, .. }
        | Event::RobotSecretRefreshed { robot, .. }
        | Event::RobotDeleted { robot } => robot.to_string(),
    }
}
