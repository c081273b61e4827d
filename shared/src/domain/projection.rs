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
        // Access-control events: the directory is folded from its stream, not kept in views.
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
