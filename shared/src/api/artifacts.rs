//! Artifacts and their accessories (Harbor `/projects/{p}/repositories/{r}/artifacts`): list an
//! repository's artifacts with their accessories embedded (accessories are never listed as
//! artifacts), read one, list one's accessories, delete one (with its accessories); list an
//! artifact's tags and delete one. Tags say whether an immutable tag rule holds them (`immutable`,
//! Harbor's `with_immutable_status`, always answered).
//!
//! `{repository_name}` is the repository below the project, its slashes encoded twice as Harbor
//! wants (`a%252Fb` for `project/a/b`); `{reference}` a tag or a digest.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use crate::app::{AccessoryView, AppError, ArtifactView, RequestContext};
use crate::domain::access::{Action, Directory, Principal, ProjectName};
use crate::domain::accessory::AccessoryKind;
use crate::domain::lifecycle::immutability;
use crate::domain::{Digest, Reference, RepoName, Tag};

use super::caller::Caller;
use super::request::Query;
use super::{ok, pagination, timestamp, ApiError};

#[derive(Debug, Serialize)]
struct VerificationJson {
    /// `verified` or `rejected` under the project's current trust configuration; `pending` when
    /// the project verifies this kind and has not yet; `not_required` when it does not verify it
    /// (a present signature counts, as in Harbor).
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct AccessoryJson {
    digest: String,
    #[serde(rename = "type")]
    kind: AccessoryKind,
    size: u64,
    media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    subject_artifact_digest: String,
    subject_artifact_repo: String,
    creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationJson>,
}

#[derive(Debug, Serialize)]
struct TagJson {
    name: String,
    repository_name: String,
    artifact_digest: String,
    immutable: bool,
}

/// The tag as the API shows it.
fn tag_json(directory: &Directory, repo: &RepoName, digest: &Digest, tag: &Tag) -> TagJson {
    let rules = (ProjectName::parse(repo.project()).ok())
        .and_then(|p| directory.project(&p))
        .map(|p| &p.immutable_rules[..])
        .unwrap_or_default();
    TagJson {
        name: tag.to_string(),
        repository_name: repo.to_string(),
        artifact_digest: digest.to_string(),
        immutable: immutability::holding_rule(rules, repo, tag).is_some(),
    }
}

#[derive(Debug, Serialize)]
struct ArtifactJson {
    digest: String,
    media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    size: u64,
    push_time: String,
    repository_name: String,
    tags: Vec<TagJson>,
    accessories: Vec<AccessoryJson>,
}

/// The repository a path names, if the caller may pull from it (else 404, as for a missing one).
/// A name outside the repository grammar names no repository: 404 as well, as in Harbor.
fn repository(caller: &Caller, project: &str, repository: &str) -> Result<RepoName, ApiError> {
    let name = format!("{project}/{}", repository.replace("%2F", "/").replace("%2f", "/"));
    let repo: RepoName = name
        .parse()
        .map_err(|e| ApiError::not_found(format!("repository {name:?} not found: {e}")))?;
    if !may(&caller.directory, &caller.principal, &repo, Action::Pull) {
        return Err(ApiError::not_found(format!("repository {repo} not found")));
    }
    Ok(repo)
}

fn may(directory: &Directory, principal: &Principal, repo: &RepoName, action: Action) -> bool {
    (repo.project().parse().ok()).is_some_and(|p| {
        directory
            .repository_actions(principal, &p, Utc::now())
            .contains(&action)
    })
}

fn accessory_json(directory: &Directory, repo: &RepoName, view: AccessoryView) -> AccessoryJson {
    let verification = view.record.kind.is_signature().then(|| {
        let requirement = (repo.project().parse().ok())
            .and_then(|p| directory.project(&p))
            .map(|p| p.trust.requirement(p.trust_revision))
            .unwrap_or_default();
        let verifies = requirement.verifies(view.record.kind);
        match (&view.verdict, verifies && view.verdict_current) {
            (Some(v), true) => VerificationJson {
                status: if v.verified { "verified" } else { "rejected" },
                detail: v.detail.clone(),
                trust_revision: Some(v.trust_revision),
                verified_at: Some(timestamp(v.at)),
            },
            _ if verifies => VerificationJson {
                status: "pending",
                detail: String::new(),
                trust_revision: None,
                verified_at: None,
            },
            _ => VerificationJson {
                status: "not_required",
                detail: String::new(),
                trust_revision: None,
                verified_at: None,
            },
        }
    });
    let signer = (view.verdict.as_ref())
        .filter(|v| v.verified && view.verdict_current && !v.signer.is_empty())
        .map(|v| v.signer.clone());
    AccessoryJson {
        digest: view.record.digest.to_string(),
        kind: view.record.kind,
        size: view.size,
        media_type: view.media_type,
        artifact_type: view.artifact_type,
        subject_artifact_digest: view.subject.to_string(),
        subject_artifact_repo: repo.to_string(),
        creation_time: timestamp(view.record.linked_at),
        tag: view.record.tag.map(|t| t.to_string()),
        signer,
        verification,
    }
}

fn artifact_json(directory: &Directory, repo: &RepoName, view: ArtifactView) -> ArtifactJson {
    ArtifactJson {
        digest: view.record.digest.to_string(),
        media_type: view.record.media_type,
        artifact_type: view.record.artifact_type.or(view.record.config_media_type),
        size: view.record.size,
        push_time: timestamp(view.record.pushed_at),
        repository_name: repo.to_string(),
        tags: (view.tags.iter())
            .map(|t| tag_json(directory, repo, &view.record.digest, t))
            .collect(),
        accessories: (view.accessories.into_iter())
            .map(|a| accessory_json(directory, repo, a))
            .collect(),
    }
}

/// The repository a path names, if the caller may also delete `what` there: project admins and
/// maintainers (403 for others who may see it).
fn deletable(caller: &Caller, project: &str, repo: &str, what: &str) -> Result<RepoName, ApiError> {
    let repo = repository(caller, project, repo)?;
    if !may(&caller.directory, &caller.principal, &repo, Action::Delete) {
        return Err(ApiError::forbidden(format!(
            "{} may not delete {what} of {repo}: only project admins and maintainers may",
            caller.principal.name()
        )));
    }
    Ok(repo)
}

/// A tag or digest; one outside their grammars names no artifact (404, as in Harbor).
fn reference(raw: &str) -> Result<Reference, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::not_found(format!("artifact {raw:?} not found: {e}")))
}

/// `GET /projects/{p}/repositories/{r}/artifacts`, paginated, newest first.
pub(super) async fn list(
    Path((project, repo)): Path<(String, String)>,
    query: Query,
    caller: Caller,
) -> Result<Response, ApiError> {
    let repo = repository(&caller, &project, &repo)?;
    let artifacts = caller.registry().artifacts(&repo).await?;
    let items: Vec<ArtifactJson> = (artifacts.into_iter())
        .map(|a| artifact_json(&caller.directory, &repo, a))
        .collect();
    let path = format!("/projects/{project}/repositories/{}/artifacts", encoded(&repo));
    pagination::respond(items, &path, &query)
}

/// `GET /projects/{p}/repositories/{r}/artifacts/{reference}`.
pub(super) async fn get(
    Path((project, repo, raw)): Path<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let repo = repository(&caller, &project, &repo)?;
    let registry = caller.registry();
    let record = registry.resolve_manifest(&repo, &reference(&raw)?).await?;
    let view = registry.artifact(&repo, record).await?;
    ok(&artifact_json(&caller.directory, &repo, view))
}

/// `GET /projects/{p}/repositories/{r}/artifacts/{reference}/accessories`, paginated.
pub(super) async fn accessories(
    Path((project, repo, raw)): Path<(String, String, String)>,
    query: Query,
    caller: Caller,
) -> Result<Response, ApiError> {
    let repo = repository(&caller, &project, &repo)?;
    let registry = caller.registry();
    let record = registry.resolve_manifest(&repo, &reference(&raw)?).await?;
    let items: Vec<AccessoryJson> = (registry.accessories(&repo, &record.digest).await?.into_iter())
        .map(|a| accessory_json(&caller.directory, &repo, a))
        .collect();
    let path = format!(
        "/projects/{project}/repositories/{}/artifacts/{raw}/accessories",
        encoded(&repo)
    );
    pagination::respond(items, &path, &query)
}

/// `DELETE /projects/{p}/repositories/{r}/artifacts/{reference}`: the artifact (an accessory, or a
/// subject with its accessories) and its tags. Project admins and maintainers only.
pub(super) async fn delete(
    Path((project, repo, raw)): Path<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let repo = deletable(&caller, &project, &repo, "artifacts")?;
    let registry = caller.registry();
    let record = registry.resolve_manifest(&repo, &reference(&raw)?).await?;
    let ctx = RequestContext::as_principal(caller.principal.clone());
    registry
        .delete_manifest(&ctx, &repo, &Reference::Digest(record.digest))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /projects/{p}/repositories/{r}/artifacts/{reference}/tags`, paginated.
pub(super) async fn tags(
    Path((project, repo, raw)): Path<(String, String, String)>,
    query: Query,
    caller: Caller,
) -> Result<Response, ApiError> {
    let repo = repository(&caller, &project, &repo)?;
    let registry = caller.registry();
    let record = registry.resolve_manifest(&repo, &reference(&raw)?).await?;
    let view = registry.artifact(&repo, record).await?;
    let items: Vec<TagJson> = (view.tags.iter())
        .map(|t| tag_json(&caller.directory, &repo, &view.record.digest, t))
        .collect();
    let path = format!(
        "/projects/{project}/repositories/{}/artifacts/{raw}/tags",
        encoded(&repo)
    );
    pagination::respond(items, &path, &query)
}

/// `DELETE /projects/{p}/repositories/{r}/artifacts/{reference}/tags/{tag_name}`: the tag (the
/// artifact stays). 404 unless the tag is on that artifact; 412 when an immutable rule holds it.
pub(super) async fn delete_tag(
    Path((project, repo, raw, tag)): Path<(String, String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let repo = deletable(&caller, &project, &repo, "tags")?;
    let registry = caller.registry();
    let record = registry.resolve_manifest(&repo, &reference(&raw)?).await?;
    let tag: Tag = (tag.parse().ok()).ok_or_else(|| ApiError::not_found(format!("tag {tag:?} not found")))?;
    let tagged = match registry
        .resolve_manifest(&repo, &Reference::Tag(tag.clone()))
        .await
    {
        Ok(tagged) => Some(tagged.digest),
        Err(AppError::ManifestUnknown(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if tagged.as_ref() != Some(&record.digest) {
        return Err(ApiError::not_found(format!(
            "tag {tag} is not on artifact {}",
            record.digest
        )));
    }
    let ctx = RequestContext::as_principal(caller.principal.clone());
    registry
        .delete_manifest(&ctx, &repo, &Reference::Tag(tag))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// The repository below its project, slashes encoded twice (Harbor's form in paths).
fn encoded(repo: &RepoName) -> String {
    let name = repo.as_str();
    let below = name.split_once('/').map_or(name, |(_, rest)| rest);
    below.replace('/', "%252F")
}
