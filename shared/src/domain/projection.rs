//! The inline views and the pure projection of events onto them. Every adapter applies `ops_for` in
//! the same transaction as the append, and `berth rebuild-views` replays the log through the same
//! function: views are a function of the log and nothing else.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::accessory::{AccessoryRecord, VerdictRecord};
use super::digest::Digest;
use super::event::{Event, RecordedEvent};
use super::manifest::Content;
use super::name::{RepoName, Tag};

/// A manifest as the manifests view holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_media_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The annotations were too large to record; they are in the manifest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub annotations_omitted: bool,
    pub blobs: Vec<Digest>,
    pub manifests: Vec<Digest>,
    pub pushed_at: DateTime<Utc>,
    /// What its layers carry; absent for manifests pushed before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

/// A referrer as the referrers API lists it (an image-spec descriptor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerRecord {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The annotations were too large to record; the listing reads them from the manifest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub annotations_omitted: bool,
}

/// A row of one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewKey {
    /// tag → digest
    Tag { repo: RepoName, tag: Tag },
    /// digest → manifest record
    Manifest { repo: RepoName, digest: Digest },
    /// (digest, tag) → (): the tags of a manifest, for deletes
    ManifestTag {
        repo: RepoName,
        digest: Digest,
        tag: Tag,
    },
    /// (subject, referrer digest) → referrer descriptor
    Referrer {
        repo: RepoName,
        subject: Digest,
        digest: Digest,
    },
    /// digest → size: the blobs the repository may serve
    BlobLink { repo: RepoName, digest: Digest },
    /// the catalog
    Repository { repo: RepoName },
    /// (subject, accessory digest) → accessory record
    Accessory {
        repo: RepoName,
        subject: Digest,
        digest: Digest,
    },
    /// (accessory digest, subject) → (): what an accessory describes
    AccessoryOf {
        repo: RepoName,
        digest: Digest,
        subject: Digest,
    },
    /// (signature digest, subject) → the signature's latest verdict
    Verdict {
        repo: RepoName,
        digest: Digest,
        subject: Digest,
    },
    /// (blob, manifest) → (): the manifests that use a blob (as config or layer), for the pull
    /// policy's question "may this blob be pulled" without reading every manifest. A fact of the
    /// manifest's content, true whenever the manifest exists: put when it is pushed, never deleted
    /// (readers look the manifest up), so it may be written before the append that records it.
    BlobUser {
        repo: RepoName,
        blob: Digest,
        manifest: Digest,
    },
    /// (child, index) → (): the indexes that hold a manifest, for "is this a child of a pullable
    /// index". A content fact like [`ViewKey::BlobUser`].
    IndexChild {
        repo: RepoName,
        child: Digest,
        index: Digest,
    },
}

impl ViewKey {
    /// Whether the row is a fact of content-addressed data ([`ViewKey::BlobUser`],
    /// [`ViewKey::IndexChild`]): true whenever the manifest it names exists, never deleted, so an
    /// adapter may write it outside (before) the append's transaction when that is too large.
    pub fn is_content_fact(&self) -> bool {
        matches!(self, ViewKey::BlobUser { .. } | ViewKey::IndexChild { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewValue {
    Digest(Digest),
    Manifest(Box<ManifestRecord>),
    Referrer(Box<ReferrerRecord>),
    Accessory(Box<AccessoryRecord>),
    Verdict(Box<VerdictRecord>),
    Size(u64),
    Unit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewOp {
    Put(ViewKey, ViewValue),
    Delete(ViewKey),
}

/// The view changes one recorded event makes. Pure: the event carries all it needs.
pub fn ops_for(recorded: &RecordedEvent) -> Vec<ViewOp> {
    use ViewOp::{Delete, Put};
    let event = &recorded.envelope.event;
    let Some(repo) = event.repository().cloned() else {
        // Access-control events (the directory is folded from its stream) and quota use: no views.
        return vec![];
    };
    let mut ops = vec![Put(ViewKey::Repository { repo: repo.clone() }, ViewValue::Unit)];
    match event {
        Event::BlobUploadCompleted { digest, size, .. } | Event::BlobMounted { digest, size, .. } => {
            ops.push(Put(
                ViewKey::BlobLink {
                    repo,
                    digest: digest.clone(),
                },
                ViewValue::Size(*size),
            ));
        }
        Event::BlobUnlinked { digest, .. } => {
            ops.push(Delete(ViewKey::BlobLink {
                repo,
                digest: digest.clone(),
            }));
        }
        Event::ManifestPushed {
            digest,
            media_type,
            size,
            subject,
            artifact_type,
            config_media_type,
            annotations,
            annotations_omitted,
            blobs,
            manifests,
            content,
            ..
        } => {
            if let Some(subject) = subject {
                let referrer = ReferrerRecord {
                    media_type: media_type.clone(),
                    digest: digest.clone(),
                    size: *size,
                    // An empty `artifactType` is no media type: the spec's fallback applies.
                    artifact_type: (artifact_type.clone().filter(|t| !t.is_empty()))
                        .or_else(|| config_media_type.clone()),
                    annotations: annotations.clone(),
                    annotations_omitted: *annotations_omitted,
                };
                ops.push(Put(
                    ViewKey::Referrer {
                        repo: repo.clone(),
                        subject: subject.clone(),
                        digest: digest.clone(),
                    },
                    ViewValue::Referrer(Box::new(referrer)),
                ));
            }
            let record = ManifestRecord {
                digest: digest.clone(),
                media_type: media_type.clone(),
                size: *size,
                subject: subject.clone(),
                artifact_type: artifact_type.clone(),
                config_media_type: config_media_type.clone(),
                annotations: annotations.clone(),
                annotations_omitted: *annotations_omitted,
                blobs: blobs.clone(),
                manifests: manifests.clone(),
                pushed_at: recorded.envelope.time,
                content: *content,
            };
            for blob in blobs {
                ops.push(Put(
                    ViewKey::BlobUser {
                        repo: repo.clone(),
                        blob: blob.clone(),
                        manifest: digest.clone(),
                    },
                    ViewValue::Unit,
                ));
            }
            for child in manifests {
                ops.push(Put(
                    ViewKey::IndexChild {
                        repo: repo.clone(),
                        child: child.clone(),
                        index: digest.clone(),
                    },
                    ViewValue::Unit,
                ));
            }
            ops.push(Put(
                ViewKey::Manifest {
                    repo,
                    digest: digest.clone(),
                },
                ViewValue::Manifest(Box::new(record)),
            ));
        }
        Event::TagMoved {
            tag,
            digest,
            previous,
            ..
        } => {
            if let Some(previous) = previous {
                ops.push(Delete(ViewKey::ManifestTag {
                    repo: repo.clone(),
                    digest: previous.clone(),
                    tag: tag.clone(),
                }));
            }
            ops.push(Put(
                ViewKey::ManifestTag {
                    repo: repo.clone(),
                    digest: digest.clone(),
                    tag: tag.clone(),
                },
                ViewValue::Unit,
            ));
            ops.push(Put(
                ViewKey::Tag {
                    repo,
                    tag: tag.clone(),
                },
                ViewValue::Digest(digest.clone()),
            ));
        }
        Event::TagDeleted { tag, digest, .. } => {
            ops.push(Delete(ViewKey::ManifestTag {
                repo: repo.clone(),
                digest: digest.clone(),
                tag: tag.clone(),
            }));
            ops.push(Delete(ViewKey::Tag {
                repo,
                tag: tag.clone(),
            }));
        }
        Event::ManifestDeleted { digest, subject, .. } => {
            if let Some(subject) = subject {
                ops.push(Delete(ViewKey::Referrer {
                    repo: repo.clone(),
                    subject: subject.clone(),
                    digest: digest.clone(),
                }));
            }
            ops.push(Delete(ViewKey::Manifest {
                repo,
                digest: digest.clone(),
            }));
        }
        Event::AccessoryLinked {
            subject,
            digest,
            kind,
            via_tag,
            ..
        } => {
            let record = AccessoryRecord {
                digest: digest.clone(),
                kind: *kind,
                tag: via_tag.clone(),
                linked_at: recorded.envelope.time,
            };
            ops.push(Put(
                ViewKey::Accessory {
                    repo: repo.clone(),
                    subject: subject.clone(),
                    digest: digest.clone(),
                },
                ViewValue::Accessory(Box::new(record)),
            ));
            ops.push(Put(
                ViewKey::AccessoryOf {
                    repo,
                    digest: digest.clone(),
                    subject: subject.clone(),
                },
                ViewValue::Unit,
            ));
        }
        Event::AccessoryUnlinked { subject, digest, .. } => {
            let (subject, digest) = (subject.clone(), digest.clone());
            ops.push(Delete(ViewKey::Accessory {
                repo: repo.clone(),
                subject: subject.clone(),
                digest: digest.clone(),
            }));
            ops.push(Delete(ViewKey::AccessoryOf {
                repo: repo.clone(),
                digest: digest.clone(),
                subject: subject.clone(),
            }));
            ops.push(Delete(ViewKey::Verdict {
                repo,
                digest,
                subject,
            }));
        }
        Event::SignatureVerified {
            subject,
            digest,
            trust_revision,
            signer,
            warnings,
            ..
        } => ops.push(verdict_op(
            repo,
            subject,
            digest,
            VerdictRecord {
                trust_revision: *trust_revision,
                verified: true,
                signer: signer.clone(),
                detail: warnings.join("; "),
                at: recorded.envelope.time,
            },
        )),
        Event::SignatureRejected {
            subject,
            digest,
            trust_revision,
            reason,
            ..
        } => ops.push(verdict_op(
            repo,
            subject,
            digest,
            VerdictRecord {
                trust_revision: *trust_revision,
                verified: false,
                signer: String::new(),
                detail: reason.clone(),
                at: recorded.envelope.time,
            },
        )),
        _ => {}
    }
    ops
}

fn verdict_op(repo: RepoName, subject: &Digest, digest: &Digest, verdict: VerdictRecord) -> ViewOp {
    ViewOp::Put(
        ViewKey::Verdict {
            repo,
            digest: digest.clone(),
            subject: subject.clone(),
        },
        ViewValue::Verdict(Box::new(verdict)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::event::{EventEnvelope, StreamId};

    /// The stream that owns a view row: the only one whose events write it (the catalog row, an
    /// idempotent put that nothing deletes, is everyone's).
    fn owner(key: &ViewKey) -> Option<StreamId> {
        Some(match key {
            ViewKey::Tag { repo, tag } | ViewKey::ManifestTag { repo, tag, .. } => StreamId::tag(repo, tag),
            ViewKey::Manifest { repo, digest }
            | ViewKey::Referrer { repo, digest, .. }
            | ViewKey::BlobUser {
                repo,
                manifest: digest,
                ..
            }
            | ViewKey::IndexChild {
                repo, index: digest, ..
            } => StreamId::manifest(repo, digest),
            ViewKey::Accessory { repo, subject, .. }
            | ViewKey::AccessoryOf { repo, subject, .. }
            | ViewKey::Verdict { repo, subject, .. } => StreamId::manifest(repo, subject),
            ViewKey::BlobLink { repo, digest } => StreamId::blob(repo, digest),
            ViewKey::Repository { .. } => return None,
        })
    }

    /// One event of every kind that changes a repository, with every optional field set.
    fn every_repository_event() -> Vec<Event> {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let (image, subject, blob, child, previous) = (d('a'), d('b'), d('c'), d('e'), d('f'));
        let r = "library/app";
        [
            json!({"type": "BlobUploadCompleted", "data": {"repository": r, "digest": blob, "size": 1}}),
            json!({"type": "BlobMounted", "data": {"repository": r, "digest": blob, "size": 1, "from": "library/other"}}),
            json!({"type": "BlobUnlinked", "data": {"repository": r, "digest": blob, "size": 1}}),
            json!({"type": "ManifestPushed", "data": {"repository": r, "digest": image, "mediaType": "application/vnd.oci.image.index.v1+json",
                "size": 2, "subject": subject, "artifactType": "application/example", "configMediaType": "application/example",
                "annotations": {"a": "b"}, "blobs": [blob], "manifests": [child]}}),
            json!({"type": "TagMoved", "data": {"repository": r, "tag": "v1", "digest": image, "previous": previous}}),
            json!({"type": "TagDeleted", "data": {"repository": r, "tag": "v1", "digest": image}}),
            json!({"type": "ManifestDeleted", "data": {"repository": r, "digest": image, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "subject": subject, "artifactType": "application/example", "configMediaType": "application/example"}}),
            json!({"type": "AccessoryLinked", "data": {"repository": r, "subject": subject, "digest": image, "kind": "signature.cosign", "viaTag": "sha256-b.sig"}}),
            json!({"type": "AccessoryUnlinked", "data": {"repository": r, "subject": subject, "digest": image, "kind": "signature.cosign"}}),
            json!({"type": "SignatureVerified", "data": {"repository": r, "subject": subject, "digest": image, "kind": "signature.cosign",
                "trustRevision": 3, "signer": "key", "warnings": ["w"]}}),
            json!({"type": "SignatureRejected", "data": {"repository": r, "subject": subject, "digest": image, "kind": "signature.notation",
                "trustRevision": 3, "reason": "no"}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
    }

    #[test]
    fn every_view_row_is_written_by_the_events_of_one_stream_only() {
        let events = every_repository_event();
        let kinds: std::collections::BTreeSet<&str> = events.iter().map(|e| e.kind().name).collect();
        let repository_kinds = (Event::KINDS.iter())
            .filter(|k| !k.name.starts_with("Project") && !k.name.starts_with("User"))
            .filter(|k| !k.name.starts_with("Member") && !k.name.starts_with("Robot"))
            .filter(|k| {
                !k.name.starts_with("Gc")
                    && !["BlobCondemned", "BlobSpared", "BlobDeleting"].contains(&k.name)
            })
            .filter(|k| !["QuotaUsed", "ImmutableTagRulesChanged", "BlobDeleted"].contains(&k.name))
            .filter(|k| !k.name.starts_with("Retention") && k.name != "ArtifactPulled")
            .filter(|k| !k.name.starts_with("Replication") && k.name != "RegistryChanged")
            .count();
        assert_eq!(
            kinds.len(),
            repository_kinds,
            "one event of every repository kind: {kinds:?}"
        );
        for event in events {
            let stream = StreamId::of(&event);
            let recorded = RecordedEvent {
                position: crate::domain::LogPosition::sequence(1),
                stream: stream.clone(),
                version: 1,
                envelope: EventEnvelope {
                    id: "1".into(),
                    time: DateTime::UNIX_EPOCH,
                    principal: "test".into(),
                    event: event.clone(),
                },
            };
            for op in ops_for(&recorded) {
                let (key, put) = match &op {
                    ViewOp::Put(k, _) => (k, true),
                    ViewOp::Delete(k) => (k, false),
                };
                match owner(key) {
                    Some(owner) => assert_eq!(
                        owner,
                        stream,
                        "{} writes {key:?}, which {owner} owns",
                        event.kind().name
                    ),
                    None => assert!(put, "the catalog row is only ever put: {op:?}"),
                }
            }
        }
    }

    #[test]
    fn stream_names_of_different_things_never_collide() {
        let repo = |s: &str| -> RepoName { s.parse().unwrap() };
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let tag: Tag = "v1".parse().unwrap();
        let names = [
            StreamId::repository(&repo("a/tag/v1")),
            StreamId::tag(&repo("a"), &tag),
            StreamId::tag(&repo("a/tag"), &tag),
            StreamId::manifest(&repo("a"), &digest),
            StreamId::blob(&repo("a"), &digest),
            StreamId::quota(&"a".parse().unwrap()),
            StreamId::access(),
        ];
        let distinct: std::collections::BTreeSet<&str> = names.iter().map(StreamId::as_str).collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert_eq!(StreamId::tag(&repo("a/b"), &tag).as_str(), "tag/a/b:v1");
        assert_eq!(
            StreamId::manifest(&repo("a/b"), &digest).as_str(),
            format!("manifest/a/b@{digest}")
        );
    }
}
