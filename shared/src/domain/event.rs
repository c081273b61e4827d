//! Domain events: every state change of a repository is one of these, appended to the repository's
//! stream. Names are past tense; each has a stable CloudEvents type `dev.berth.<snake_name>.v<version>`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::name::{RepoName, Tag};

/// The stream an event belongs to: one per repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub fn repository(repo: &RepoName) -> StreamId {
        StreamId(format!("repository/{repo}"))
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
}

/// The name, CloudEvents type and schema version of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    pub name: &'static str,
    pub cloud_type: &'static str,
    pub version: u32,
}

impl Event {
    pub const KINDS: [EventKind; 7] = [
        kind("BlobUploadCompleted", "dev.berth.blob_upload_completed.v1"),
        kind("BlobMounted", "dev.berth.blob_mounted.v1"),
        kind("BlobUnlinked", "dev.berth.blob_unlinked.v1"),
        kind("ManifestPushed", "dev.berth.manifest_pushed.v1"),
        kind("TagMoved", "dev.berth.tag_moved.v1"),
        kind("TagDeleted", "dev.berth.tag_deleted.v1"),
        kind("ManifestDeleted", "dev.berth.manifest_deleted.v1"),
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
        };
        Self::KINDS[index]
    }

    pub fn repository(&self) -> &RepoName {
        match self {
            Event::BlobUploadCompleted { repository, .. }
            | Event::BlobMounted { repository, .. }
            | Event::BlobUnlinked { repository, .. }
            | Event::ManifestPushed { repository, .. }
            | Event::TagMoved { repository, .. }
            | Event::TagDeleted { repository, .. }
            | Event::ManifestDeleted { repository, .. } => repository,
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
    /// Who caused it (`anonymous` until access control exists).
    pub principal: String,
    pub event: Event,
}

/// Alias kept for readability at append sites.
pub type NewEvent = EventEnvelope;

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the whole log, 1-based, gap-free in the embedded store.
    pub sequence: u64,
    pub stream: StreamId,
    /// Version of the stream after this event, 1-based.
    pub version: u64,
    #[serde(flatten)]
    pub envelope: EventEnvelope,
}
