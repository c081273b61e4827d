//! Accessory use cases: which links a push makes (in any push order), listing a subject's
//! accessories with their verdicts, and deleting a subject with its accessories.

use std::collections::BTreeSet;

use crate::domain::accessory::{
    self, AccessoryKind, AccessoryRecord, Link, LinkState, SchemeTag, VerdictRecord,
};
use crate::domain::projection::ManifestRecord;
use crate::domain::repository::{self, Deletion, PushManifest};
use crate::domain::{Digest, Event, RepoName, StreamId, Tag};

use super::{AppError, Registry, RequestContext};

/// How deep accessories of accessories are followed when a subject is deleted (a signature of an
/// SBOM of an image is depth 2).
const MAX_ACCESSORY_DEPTH: usize = 8;
/// Tags read after `sha256-<hex>` to find that digest's scheme tags (`.att`, `.sbom`, `.sig`, and
/// room for a few other tags that sort between).
const SCHEME_TAG_SCAN: usize = 8;

/// An accessory with what the registry knows of it, for the accessories API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessoryView {
    pub subject: Digest,
    pub record: AccessoryRecord,
    pub size: u64,
    pub media_type: String,
    pub artifact_type: Option<String>,
    /// The latest verdict, for signatures that were verified (under any revision).
    pub verdict: Option<VerdictRecord>,
    /// Whether that verdict was reached under the project's current trust configuration.
    pub verdict_current: bool,
}

/// An artifact as the artifacts API lists it: not an accessory, not a child of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactView {
    pub record: ManifestRecord,
    pub tags: Vec<Tag>,
    pub accessories: Vec<AccessoryView>,
}

impl Registry {
    /// The repository's artifacts, newest first, with their accessories.
    pub async fn artifacts(&self, repo: &RepoName) -> Result<Vec<ArtifactView>, AppError> {
        if !self.views.repository_exists(repo).await? {
            return Err(AppError::NameUnknown(repo.clone()));
        }
        let manifests = self.views.manifests(repo).await?;
        let children: BTreeSet<&Digest> = manifests.iter().flat_map(|m| m.manifests.iter()).collect();
        let mut out = Vec::new();
        for record in &manifests {
            if record.subject.is_some()
                || children.contains(&record.digest)
                || self.is_accessory(repo, &record.digest).await?
            {
                continue;
            }
            out.push(self.artifact(repo, record.clone()).await?);
        }
        out.sort_by(|a, b| {
            b.record
                .pushed_at
                .cmp(&a.record.pushed_at)
                .then(a.record.digest.cmp(&b.record.digest))
        });
        Ok(out)
    }

    /// One manifest with its tags and accessories.
    pub async fn artifact(&self, repo: &RepoName, record: ManifestRecord) -> Result<ArtifactView, AppError> {
        Ok(ArtifactView {
            tags: self.views.manifest_tags(repo, &record.digest).await?,
            accessories: self.accessories(repo, &record.digest).await?,
            record,
        })
    }

    /// The `AccessoryLinked` events a manifest push makes as an accessory (by its `subject`, or its tag
    /// in cosign's scheme).
    pub(super) async fn links_for_push(&self, cmd: &PushManifest) -> Result<Vec<Event>, AppError> {
        let repo = &cmd.repository;
        let pushed = &cmd.digest;
        let mut candidates = Vec::new();
        if let Some(subject) = &cmd.info.subject {
            candidates.push(Link {
                subject: subject.clone(),
                accessory: pushed.clone(),
                kind: AccessoryKind::of_referrer(cmd.info.effective_artifact_type()),
                tag: None,
            });
        }
        if let Some(tag) = &cmd.tag {
            if let Some(scheme) = SchemeTag::parse(tag) {
                candidates.push(Link {
                    kind: scheme.kind_of(cmd.info.content),
                    subject: scheme.subject,
                    accessory: pushed.clone(),
                    tag: Some(tag.clone()),
                });
            }
        }
        self.link_state_events(repo, pushed, &candidates).await
    }

    /// Links the accessories that arrived before `pushed`, their subject, once its push is appended.
    /// Done after the append, once, rather than in every contended attempt: an accessory appended
    /// before this read is found here; one appended after it saw the subject itself (both appends
    /// are ordered on the subject's stream, which an accessory's push guards).
    pub(super) async fn link_early_accessories(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        pushed: &Digest,
    ) -> Result<(), AppError> {
        let streams = [StreamId::manifest(repo, pushed)];
        let (recorded, ()) = self
            .decide_and_append(ctx, &streams, move || {
                Box::pin(async move {
                    let mut candidates = Vec::new();
                    for referrer in self.views.referrers(repo, pushed).await? {
                        candidates.push(Link {
                            subject: pushed.clone(),
                            accessory: referrer.digest,
                            kind: AccessoryKind::of_referrer(referrer.artifact_type.as_deref()),
                            tag: None,
                        });
                    }
                    // cosign's scheme tags of the digest sort right after `sha256-<hex>`: one range read.
                    let after = pushed.tag_form();
                    for tag in self.views.tags(repo, Some(&after), SCHEME_TAG_SCAN).await? {
                        let Some(scheme) = SchemeTag::parse(&tag).filter(|s| s.subject == *pushed) else {
                            continue;
                        };
                        let Some(target) = self.views.tag(repo, &tag).await? else {
                            continue;
                        };
                        if let Some(record) = self.views.manifest(repo, &target).await? {
                            candidates.push(Link {
                                subject: pushed.clone(),
                                accessory: target,
                                kind: scheme.kind_of(self.content_of(&record).await?),
                                tag: Some(tag),
                            });
                        }
                    }
                    Ok((self.link_state_events(repo, pushed, &candidates).await?, ()))
                })
            })
            .await?;
        if !recorded.is_empty() {
            self.verify_new_links(ctx, repo, &recorded).await;
        }
        Ok(())
    }

    /// The `AccessoryLinked` events of `candidates` (`pushed` counts as present).
    async fn link_state_events(
        &self,
        repo: &RepoName,
        pushed: &Digest,
        candidates: &[Link],
    ) -> Result<Vec<Event>, AppError> {
        if candidates.is_empty() {
            return Ok(vec![]);
        }
        let mut state = LinkState::default();
        let subjects: BTreeSet<Digest> = candidates.iter().map(|c| c.subject.clone()).collect();
        for subject in subjects {
            if subject == *pushed || self.views.manifest(repo, &subject).await?.is_some() {
                state.present_subjects.insert(subject.clone());
            }
            for linked in self.views.accessories(repo, &subject).await? {
                state.linked.insert((subject.clone(), linked.digest));
            }
        }
        Ok(accessory::link(repo, candidates, &state))
    }

    /// The accessories of the manifest `reference` names, with their verdicts.
    pub async fn accessories(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<AccessoryView>, AppError> {
        let directory = self.directory().await?;
        let revision = (repo.project().parse().ok())
            .and_then(|p| directory.project(&p).map(|p| p.trust_revision))
            .unwrap_or_default();
        let mut out = Vec::new();
        for record in self.views.accessories(repo, subject).await? {
            let Some(manifest) = self.views.manifest(repo, &record.digest).await? else {
                continue;
            };
            let verdict = if record.kind.is_signature() {
                self.views.verdict(repo, &record.digest, subject).await?
            } else {
                None
            };
            out.push(AccessoryView {
                subject: subject.clone(),
                verdict_current: verdict.as_ref().is_some_and(|v| v.trust_revision == revision),
                verdict,
                size: manifest.size,
                media_type: manifest.media_type,
                artifact_type: manifest.artifact_type.or(manifest.config_media_type),
                record,
            });
        }
        Ok(out)
    }

    /// Whether `digest` is an accessory of some artifact in the repository.
    pub async fn is_accessory(&self, repo: &RepoName, digest: &Digest) -> Result<bool, AppError> {
        Ok(!self.views.subjects_of(repo, digest).await?.is_empty())
    }

    /// Deletes a manifest by digest with its accessories (recursively, accessories first) and its
    /// links: one append, so subscribers see every deletion and nothing is left half-linked.
    pub(super) async fn deletion_events(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Vec<Event>, AppError> {
        // Breadth-first from the subject, then deleted deepest first.
        let mut order: Vec<Digest> = vec![digest.clone()];
        let mut seen: BTreeSet<Digest> = order.iter().cloned().collect();
        let mut frontier = vec![digest.clone()];
        for _ in 0..MAX_ACCESSORY_DEPTH {
            let mut next = Vec::new();
            for subject in &frontier {
                for accessory in self.views.accessories(repo, subject).await? {
                    if seen.insert(accessory.digest.clone()) {
                        order.push(accessory.digest.clone());
                        next.push(accessory.digest);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let mut deletions = Vec::with_capacity(order.len());
        for target in order.iter().rev() {
            let mut links = Vec::new();
            for subject in self.views.subjects_of(repo, target).await? {
                let kind = (self.views.accessories(repo, &subject).await?.into_iter())
                    .find(|a| a.digest == *target)
                    .map_or(AccessoryKind::Other, |a| a.kind);
                links.push((subject, kind));
            }
            deletions.push(Deletion {
                digest: target.clone(),
                record: self.views.manifest(repo, target).await?,
                tags: self.views.manifest_tags(repo, target).await?,
                links,
            });
        }
        Ok(repository::delete_artifacts(repo, &deletions)?)
    }
}
