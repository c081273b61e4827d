//! Content trust: verifying signatures against their project's trust configuration (verdicts are
//! recorded as events, so pulls do not verify again), and refusing to serve what a project's policy
//! does not allow.

use std::collections::BTreeSet;

use chrono::Utc;

use crate::domain::access::{Action, ContentTrust, Directory};
use crate::domain::accessory::{
    self, AccessoryKind, PolicyViolation, Requirement, SignatureState, VerdictRecord,
};
use crate::domain::projection::ManifestRecord;
use crate::domain::{Digest, Event, RecordedEvent, RepoName, StreamId};
use crate::trust::{self, Verdict};

use super::{AppError, Registry, RequestContext};

/// Signature layers (a cosign payload, a Notation envelope) larger than this are not read.
const MAX_SIGNATURE_BLOB_BYTES: u64 = 1024 * 1024;
/// How many index levels above a manifest are searched for a signed parent.
const MAX_INDEX_DEPTH: usize = 4;

/// What re-verifying a project after a trust change came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reverification {
    /// Signatures verified (and their verdicts recorded).
    pub verified: usize,
    /// Whether every signature the configuration verifies was; if not, the budget ran out and pulls
    /// verify the rest.
    pub complete: bool,
}

/// A project's trust configuration at one revision.
struct Trust {
    config: ContentTrust,
    requirement: Requirement,
}

impl Registry {
    fn trust_of(directory: &Directory, repo: &RepoName) -> Option<Trust> {
        let project = directory.project(&repo.project().parse().ok()?)?;
        Some(Trust {
            requirement: project.trust.requirement(project.trust_revision),
            config: project.trust.clone(),
        })
    }

    /// Whether the principal may push to the repository: such principals (signing tools among them)
    /// may read the manifests of unsigned artifacts, and check that blobs exist, but not read them.
    fn may_push(directory: &Directory, ctx: &RequestContext, repo: &RepoName) -> bool {
        (repo.project().parse().ok()).is_some_and(|p| {
            directory
                .repository_actions(&ctx.principal, &p, Utc::now())
                .contains(&Action::Push)
        })
    }

    /// The trust configuration `ctx`'s reads from `repo` are held to: `None` when the project
    /// requires no signature, or when `pushers_exempt` and `ctx` may push there.
    async fn enforced(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        pushers_exempt: bool,
    ) -> Result<Option<Trust>, AppError> {
        let directory = self.directory().await?;
        let trust = Self::trust_of(&directory, repo).filter(|t| t.requirement.enforced());
        Ok(trust.filter(|_| !(pushers_exempt && Self::may_push(&directory, ctx, repo))))
    }

    /// Refuses a manifest its project's policy does not let `ctx` pull. Those who may push read
    /// any manifest: signing tools resolve and read what they sign.
    pub async fn check_pull(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        record: &ManifestRecord,
    ) -> Result<(), AppError> {
        let Some(trust) = self.enforced(ctx, repo, true).await? else {
            return Ok(());
        };
        self.pullable(ctx, repo, record, &trust)
            .await?
            .map_err(|v| AppError::PolicyViolation(v.0))
    }

    /// Refuses a blob of an enforcing project unless an artifact that may be pulled uses it, to
    /// everyone: an unsigned image cannot be pulled, not even by who pushed it. Only a `head`
    /// (an existence check, which `docker push` and skopeo make before uploading a layer) by a
    /// principal who may push is let through. Also what a cross-repository mount out of `repo` is
    /// held to.
    pub async fn check_blob_pull(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        digest: &Digest,
        head: bool,
    ) -> Result<(), AppError> {
        let Some(trust) = self.enforced(ctx, repo, head).await? else {
            return Ok(());
        };
        let mut violation = None;
        for user in self.views.manifests_using(repo, digest).await? {
            // A fact row outlives a deleted manifest: only those that exist count.
            let Some(record) = self.views.manifest(repo, &user).await? else {
                continue;
            };
            match self.pullable(ctx, repo, &record, &trust).await? {
                Ok(()) => return Ok(()),
                Err(v) => violation = violation.or(Some(v)),
            }
        }
        Err(AppError::PolicyViolation(violation.map_or_else(
            || "The blob belongs to no artifact that may be pulled.".to_string(),
            |v| v.0,
        )))
    }

    /// Whether the policy lets `record` be pulled: an accessory that carries nothing runnable; an
    /// artifact with the signatures the project requires; a child of an index that may be pulled.
    /// Point reads only (the manifest, its accessories, the indexes holding it), however many
    /// manifests the repository has.
    async fn pullable(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        record: &ManifestRecord,
        trust: &Trust,
    ) -> Result<Result<(), PolicyViolation>, AppError> {
        let linked = self.is_accessory(repo, &record.digest).await?;
        if linked && accessory::exempt_from_signatures(linked, self.content_of(record).await?) {
            return Ok(Ok(()));
        }
        let verdict = self.judge(ctx, repo, record, trust).await?;
        if verdict.is_ok() {
            return Ok(verdict);
        }
        // A child of a signed index (docker pulls the index by tag, then the child by digest).
        let mut seen: BTreeSet<Digest> = [record.digest.clone()].into();
        let mut children = vec![record.digest.clone()];
        for _ in 0..MAX_INDEX_DEPTH {
            let mut parents = Vec::new();
            for child in &children {
                for index in self.views.indexes_holding(repo, child).await? {
                    if !seen.insert(index.clone()) {
                        continue;
                    }
                    if let Some(parent) = self.views.manifest(repo, &index).await? {
                        parents.push(parent);
                    }
                }
            }
            if parents.is_empty() {
                break;
            }
            for parent in &parents {
                if self.judge(ctx, repo, parent, trust).await?.is_ok() {
                    return Ok(Ok(()));
                }
            }
            children = parents.into_iter().map(|p| p.digest).collect();
        }
        Ok(verdict)
    }

    /// Whether `record`'s own signatures satisfy the policy, verifying (and recording) those without
    /// a verdict under the current revision.
    async fn judge(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        record: &ManifestRecord,
        trust: &Trust,
    ) -> Result<Result<(), PolicyViolation>, AppError> {
        let requirement = &trust.requirement;
        let mut states = Vec::new();
        for accessory in self.views.accessories(repo, &record.digest).await? {
            if !accessory.kind.is_signature() {
                continue;
            }
            let mut verdict = None;
            if requirement.verifies(accessory.kind) {
                verdict = self
                    .views
                    .verdict(repo, &accessory.digest, &record.digest)
                    .await?;
                if verdict
                    .as_ref()
                    .is_none_or(|v| v.trust_revision != requirement.trust_revision)
                {
                    let fresh =
                        (self.verify_and_record(ctx, repo, record, &accessory.digest, accessory.kind, trust))
                            .await?;
                    verdict = Some(verdict_record(requirement, fresh));
                }
            }
            states.push(SignatureState {
                kind: accessory.kind,
                verdict,
            });
        }
        Ok(accessory::judge(requirement, &states))
    }

    /// Verifies the signatures a push just linked, when their project verifies that kind. A failure
    /// here only loses the eager verdict: a pull verifies what has none.
    pub(super) async fn verify_new_links(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        recorded: &[RecordedEvent],
    ) {
        let links: Vec<(Digest, Digest, AccessoryKind)> = (recorded.iter())
            .filter_map(|r| match &r.envelope.event {
                Event::AccessoryLinked {
                    subject,
                    digest,
                    kind,
                    ..
                } if kind.is_signature() => Some((subject.clone(), digest.clone(), *kind)),
                _ => None,
            })
            .collect();
        if links.is_empty() {
            return;
        }
        let outcome: Result<(), AppError> = async {
            let directory = self.directory().await?;
            let Some(trust) = Self::trust_of(&directory, repo) else {
                return Ok(());
            };
            for (subject, signature, kind) in links {
                let verifies = trust.requirement.verifies(kind);
                let Some(record) = self.views.manifest(repo, &subject).await?.filter(|_| verifies) else {
                    continue;
                };
                (self.verify_and_record(ctx, repo, &record, &signature, kind, &trust)).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::warn!(repository = %repo, error = %e, "verifying new signatures failed; pulls will verify them");
        }
    }

    /// Re-verifies the signatures of the project's repositories under its current trust
    /// configuration (after a change), recording the verdicts, for at most the registry's
    /// re-verification budget: a request must answer before its gateway gives up (29 s on API
    /// Gateway). What is left keeps no current verdict, so a pull verifies it and the accessories
    /// API says `pending` meanwhile.
    pub async fn reverify_project(
        &self,
        ctx: &RequestContext,
        project: &str,
    ) -> Result<Reverification, AppError> {
        let deadline = tokio::time::Instant::now() + self.reverify_budget;
        let directory = self.current_directory().await?;
        let mut verified = 0;
        let mut after: Option<String> = Some(format!("{project}/"));
        loop {
            let page = self.views.repositories(after.as_deref(), 100).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for repo in page.iter().filter(|r| r.project() == project) {
                let Some(trust) = Self::trust_of(&directory, repo) else {
                    continue;
                };
                for record in self.views.manifests(repo).await? {
                    for accessory in self.views.accessories(repo, &record.digest).await? {
                        if !trust.requirement.verifies(accessory.kind) {
                            continue;
                        }
                        if tokio::time::Instant::now() >= deadline {
                            return Ok(Reverification {
                                verified,
                                complete: false,
                            });
                        }
                        (self.verify_and_record(
                            ctx,
                            repo,
                            &record,
                            &accessory.digest,
                            accessory.kind,
                            &trust,
                        ))
                        .await?;
                        verified += 1;
                    }
                }
            }
            if !last.as_str().starts_with(&format!("{project}/")) {
                break;
            }
            after = Some(last.to_string());
        }
        Ok(Reverification {
            verified,
            complete: true,
        })
    }

    /// Verifies one signature of `subject` and records the verdict.
    async fn verify_and_record(
        &self,
        ctx: &RequestContext,
        repo: &RepoName,
        subject: &ManifestRecord,
        signature: &Digest,
        kind: AccessoryKind,
        trust: &Trust,
    ) -> Result<Verdict, AppError> {
        let verdict = self.verify(repo, subject, signature, kind, &trust.config).await?;
        let event = verdict_event(repo, subject, signature, kind, &trust.requirement, &verdict);
        self.record_verdict(ctx, repo, event).await;
        Ok(verdict)
    }

    /// Appends a verdict (to the subject's stream, at whatever version it is: a verdict depends on
    /// no other event); a failure is logged, and the next pull verifies again.
    async fn record_verdict(&self, ctx: &RequestContext, repo: &RepoName, event: Event) {
        let streams = [StreamId::of(&event)];
        let event = &event;
        let appended = self
            .decide_and_append(ctx, &streams, move || {
                Box::pin(async move { Ok((vec![event.clone()], ())) })
            })
            .await;
        if let Err(e) = appended {
            tracing::warn!(repository = %repo, error = %e, "recording a signature verdict failed");
        }
    }

    /// Verifies one signature manifest of `subject` against the trust configuration.
    async fn verify(
        &self,
        repo: &RepoName,
        subject: &ManifestRecord,
        signature: &Digest,
        kind: AccessoryKind,
        config: &ContentTrust,
    ) -> Result<Verdict, AppError> {
        let rejected = |reason: String| Ok(Verdict::Rejected { reason });
        let content = self.read_whole_blob(signature).await?;
        let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&content) else {
            return rejected("the signature manifest is not JSON".to_string());
        };
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        let mut reasons = Vec::new();
        for layer in &layers {
            let media_type = layer["mediaType"].as_str().unwrap_or_default();
            let size = layer["size"].as_u64().unwrap_or(u64::MAX);
            let Some(digest) = layer["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else {
                continue;
            };
            let wanted = match kind {
                AccessoryKind::CosignSignature => media_type == trust::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                _ => true,
            };
            if !wanted {
                continue;
            }
            if size > MAX_SIGNATURE_BLOB_BYTES || self.views.blob_link(repo, &digest).await?.is_none() {
                reasons.push(format!(
                    "signature layer {digest} is missing or larger than 1 MiB"
                ));
                continue;
            }
            let bytes = self.read_whole_blob(&digest).await?;
            let verdict = match kind {
                AccessoryKind::CosignSignature => verify_cosign(layer, &bytes, &subject.digest, config),
                _ => verify_notation(media_type, &bytes, repo, subject, config),
            };
            match verdict {
                Verdict::Verified { .. } => return Ok(verdict),
                Verdict::Rejected { reason } => reasons.push(reason),
            }
        }
        if reasons.is_empty() {
            reasons.push(match kind {
                AccessoryKind::CosignSignature => {
                    "the signature has no simple-signing layer Berth can verify (sigstore bundles are not verified yet)"
                        .to_string()
                }
                _ => "the signature manifest has no envelope".to_string(),
            });
        }
        reasons.dedup();
        rejected(reasons.join("; "))
    }
}

fn verify_cosign(
    layer: &serde_json::Value,
    payload: &[u8],
    subject: &Digest,
    config: &ContentTrust,
) -> Verdict {
    let annotations = &layer["annotations"];
    let Some(signature) = annotations[trust::cosign::SIGNATURE_ANNOTATION].as_str() else {
        return Verdict::Rejected {
            reason: "the signature layer has no signature annotation".to_string(),
        };
    };
    let parse = |pems: &[String]| -> Vec<trust::cosign::PublicKey> {
        pems.iter()
            .filter_map(|p| trust::cosign::PublicKey::from_pem(p).ok())
            .collect()
    };
    let signature = trust::cosign::Signature {
        payload,
        signature_b64: signature,
        bundle_json: annotations[trust::cosign::BUNDLE_ANNOTATION].as_str(),
    };
    trust::cosign::verify(
        &signature,
        &subject.to_string(),
        &parse(&config.cosign_keys),
        &parse(&config.rekor_keys),
    )
}

fn verify_notation(
    media_type: &str,
    envelope: &[u8],
    repo: &RepoName,
    subject: &ManifestRecord,
    config: &ContentTrust,
) -> Verdict {
    let Some(policy) = config.notation_trust_policy.as_deref() else {
        return Verdict::Rejected {
            reason: "the project has no trust policy".to_string(),
        };
    };
    let policy = match trust::notation::TrustPolicy::from_json(policy) {
        Ok(p) => p,
        Err(e) => {
            return Verdict::Rejected {
                reason: format!("the project's trust policy is invalid: {e}"),
            }
        }
    };
    let stores: Vec<trust::notation::TrustStore> = (config.notation_trust_stores.iter())
        .filter_map(|(name, pem)| trust::notation::TrustStore::from_pem(name, pem).ok())
        .collect();
    let digest = subject.digest.to_string();
    let target = trust::notation::Target {
        digest: &digest,
        media_type: &subject.media_type,
        size: subject.size,
    };
    trust::notation::verify(
        envelope,
        media_type,
        &target,
        repo.as_str(),
        &policy,
        &stores,
        Utc::now(),
    )
}

fn verdict_event(
    repo: &RepoName,
    subject: &ManifestRecord,
    signature: &Digest,
    kind: AccessoryKind,
    requirement: &Requirement,
    verdict: &Verdict,
) -> Event {
    match verdict {
        Verdict::Verified { signer, warnings } => Event::SignatureVerified {
            repository: repo.clone(),
            subject: subject.digest.clone(),
            digest: signature.clone(),
            kind,
            trust_revision: requirement.trust_revision,
            signer: signer.clone(),
            warnings: warnings.clone(),
        },
        Verdict::Rejected { reason } => Event::SignatureRejected {
            repository: repo.clone(),
            subject: subject.digest.clone(),
            digest: signature.clone(),
            kind,
            trust_revision: requirement.trust_revision,
            reason: reason.clone(),
        },
    }
}

fn verdict_record(requirement: &Requirement, verdict: Verdict) -> VerdictRecord {
    let (verified, signer, detail) = match verdict {
        Verdict::Verified { signer, warnings } => (true, signer, warnings.join("; ")),
        Verdict::Rejected { reason } => (false, String::new(), reason),
    };
    VerdictRecord {
        trust_revision: requirement.trust_revision,
        verified,
        signer,
        detail,
        at: Utc::now(),
    }
}
