//! Events out of the log as CloudEvents 1.0 (structured JSON mode), via cloudevents-sdk.
//!
//! - `type`: `dev.berth.<event>.v<version>` (stable per event type and schema version);
//! - `id`: the event's id, unique and stable (subscribers deduplicate on it);
//! - `source`: `/repositories/<repository>`; `subject`: the digest or tag concerned;
//! - extensions: `berthsequence` (position in the log), `berthstream`, `berthversion` (stream
//!   version), `berthprincipal` (who caused it).
//!
//! A JSON Schema of each event type (the whole CloudEvent, `data` included) and a sample generated
//! from this code live in `events/` at the repository root; `shared/tests/events.rs` keeps them true.

use cloudevents::{EventBuilder, EventBuilderV10};

use crate::domain::{Event, RecordedEvent};

#[derive(Debug, thiserror::Error)]
pub enum CloudEventError {
    #[error("cannot build CloudEvent: {0}")]
    Build(String),
}

/// The CloudEvent of a recorded event.
pub fn to_cloudevent(recorded: &RecordedEvent) -> Result<cloudevents::Event, CloudEventError> {
    let envelope = &recorded.envelope;
    let event = &envelope.event;
    let data = serde_json::to_value(event)
        .map_err(|e| CloudEventError::Build(e.to_string()))?
        .get("data")
        .cloned()
        .unwrap_or_default();
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    EventBuilderV10::new()
        .id(envelope.id.clone())
        .ty(event.kind().cloud_type)
        .source(format!("/repositories/{}", event.repository()))
        .subject(subject_of(event))
        .time(envelope.time)
        .extension("berthsequence", as_i64(recorded.sequence))
        .extension("berthstream", recorded.stream.as_str())
        .extension("berthversion", as_i64(recorded.version))
        .extension("berthprincipal", envelope.principal.as_str())
        .data("application/json", data)
        .build()
        .map_err(|e| CloudEventError::Build(e.to_string()))
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
        | Event::ManifestDeleted { digest, .. } => digest.to_string(),
    }
}
