//! Projects (Harbor `/projects`): list, check, create, read, update, delete, metadata, summary.
//!
//! A project is named by `{project_name_or_id}`: all digits is an id, anything else a name. A
//! project the caller may not see answers exactly as an absent one (404).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::Registry;
use crate::domain::access::{AccessCommand, Directory, Member, Principal, Project, ProjectName, Role};

use super::quotas::{self, storage_limit};
use super::request::{body, Query};
use super::{created, ok, pagination, timestamp, Api, ApiError};

/// Repositories read per catalog call while counting.
const CATALOG_PAGE: usize = 1_000;
/// The only project metadata Berth keeps (Harbor has more: content trust, scanning...).
const METADATA_PUBLIC: &str = "public";

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(super) struct Metadata {
    pub public: String,
}

#[derive(Debug, Serialize)]
struct ProjectJson {
    project_id: u64,
    name: String,
    public: bool,
    metadata: Metadata,
    creation_time: String,
    update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_name: Option<String>,
    repo_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_user_role_id: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ProjectReq {
    #[serde(default)]
    project_name: Option<String>,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    storage_limit: Option<i64>,
}

/// The project `key` names (an id if all digits, else a name), if it exists.
pub(super) fn find<'d>(directory: &'d Directory, key: &str) -> Option<&'d Project> {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
        let id: u64 = key.parse().ok()?;
        directory.projects().find(|p| p.id == id)
    } else {
        directory.project(&ProjectName::parse(key).ok()?)
    }
}

/// The project `key` names, if `principal` may see it (404 otherwise, absent or not).
pub(super) fn visible<'d>(
    directory: &'d Directory,
    principal: &Principal,
    key: &str,
) -> Result<&'d Project, ApiError> {
    find(directory, key)
        .filter(|p| directory.sees(principal, &p.name, chrono::Utc::now()))
        .ok_or_else(|| ApiError::not_found(format!("project {key} does not exist")))
}

/// The project `key` names, if `principal` manages it (404 if it cannot see it, 403 if it can).
pub(super) fn managed<'d>(
    directory: &'d Directory,
    principal: &Principal,
    key: &str,
) -> Result<&'d Project, ApiError> {
    manages(directory, principal, visible(directory, principal, key)?)
}

/// The project named `name` (never an id), if `principal` manages it (404 / 403 as [`managed`]).
pub(super) fn managed_by_name<'d>(
    directory: &'d Directory,
    principal: &Principal,
    name: &str,
) -> Result<&'d Project, ApiError> {
    let project = (ProjectName::parse(name).ok())
        .and_then(|n| directory.project(&n))
        .filter(|p| directory.sees(principal, &p.name, chrono::Utc::now()))
        .ok_or_else(|| ApiError::not_found(format!("project {name} does not exist")))?;
    manages(directory, principal, project)
}

fn manages<'d>(
    directory: &Directory,
    principal: &Principal,
    project: &'d Project,
) -> Result<&'d Project, ApiError> {
    if directory.manages(principal, &project.name) {
        Ok(project)
    } else {
        Err(ApiError::forbidden(format!(
            "only admins of project {} may do this",
            project.name
        )))
    }
}

/// The project's owner: its first admin member (Harbor: its creator).
pub(super) fn owner(project: &Project) -> Option<&Member> {
    (project.members.values())
        .filter(|m| m.role == Role::ProjectAdmin)
        .min_by_key(|m| m.id)
}

/// Repositories per project (the first path component of each repository name).
async fn repo_counts(registry: &Registry) -> Result<HashMap<String, u64>, ApiError> {
    let mut counts = HashMap::new();
    let mut last: Option<String> = None;
    loop {
        let page = registry.catalog(last.as_deref(), CATALOG_PAGE).await?;
        for repo in &page.items {
            let name = repo.to_string();
            let project = name.split('/').next().unwrap_or_default().to_string();
            *counts.entry(project).or_insert(0) += 1;
        }
        last = page.items.last().map(ToString::to_string);
        if !page.more || last.is_none() {
            return Ok(counts);
        }
    }
}

/// Repositories in `project` (the catalog is in lexical order, so they are contiguous).
pub(super) async fn repo_count(registry: &Registry, project: &ProjectName) -> Result<u64, ApiError> {
    let prefix = format!("{project}/");
    let mut count = 0;
    let mut last = project.to_string();
    loop {
        let page = registry.catalog(Some(&last), CATALOG_PAGE).await?;
        for repo in &page.items {
            let name = repo.to_string();
            if name.starts_with(&prefix) {
                count += 1;
            } else if name > prefix {
                return Ok(count);
            }
        }
        match page.items.last() {
            Some(repo) if page.more => last = repo.to_string(),
            _ => return Ok(count),
        }
    }
}

fn to_json(directory: &Directory, principal: &Principal, project: &Project, repo_count: u64) -> ProjectJson {
    let owner = owner(project);
    ProjectJson {
        project_id: project.id,
        name: project.name.to_string(),
        public: project.public,
        metadata: Metadata {
            public: project.public.to_string(),
        },
        creation_time: timestamp(project.created_at),
        update_time: timestamp(project.updated_at),
        owner_id: owner.and_then(|m| directory.user(&m.username)).map(|u| u.id),
        owner_name: owner.map(|m| m.username.to_string()),
        repo_count,
        current_user_role_id: directory.role(principal, &project.name).map(Role::id),
    }
}

/// The `public` flag among Harbor metadata (`"true"`/`"false"`, or a JSON boolean); Berth keeps no
/// other metadata, so other keys are refused.
fn public_of(metadata: &BTreeMap<String, Value>) -> Result<Option<bool>, ApiError> {
    if let Some(key) = metadata.keys().find(|k| *k != METADATA_PUBLIC) {
        return Err(ApiError::bad_request(format!(
            "unsupported project metadata {key:?}: Berth keeps only \"public\""
        )));
    }
    match metadata.get(METADATA_PUBLIC) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadata public must be \"true\" or \"false\", not {other}"
        ))),
    }
}

/// `storage_limit` as a quota; only system admins set one (an unlimited one is the default).
fn requested_quota(
    directory: &Directory,
    principal: &Principal,
    limit: Option<i64>,
    current: Option<u64>,
) -> Result<Option<Option<u64>>, ApiError> {
    let Some(limit) = limit else {
        return Ok(None);
    };
    let quota = storage_limit(limit)?;
    if quota != current && !directory.is_admin(principal) {
        return Err(ApiError::forbidden("only system admins set storage limits"));
    }
    Ok(Some(quota))
}

pub(super) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref())?;
    let principal = api.caller(&headers).await?;
    let directory = api.directory().await?;
    let public = query.flag("public")?;
    let name = query.get("name").unwrap_or_default();
    let now = chrono::Utc::now();
    let counts = repo_counts(&api.registry).await?;
    let projects: Vec<ProjectJson> = (directory.projects())
        .filter(|p| directory.sees(&principal, &p.name, now))
        .filter(|p| public.is_none_or(|public| p.public == public))
        .filter(|p| p.name.as_str().contains(name))
        .map(|p| {
            let count = counts.get(p.name.as_str()).copied().unwrap_or(0);
            to_json(&directory, &principal, p, count)
        })
        .collect();
    pagination::respond(projects, "/projects", &query)
}

pub(super) async fn head(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref())?;
    let name =
        (query.get("project_name")).ok_or_else(|| ApiError::bad_request("project_name is required"))?;
    let principal = api.caller(&headers).await?;
    let directory = api.directory().await?;
    let project = ProjectName::parse(name)
        .ok()
        .and_then(|n| directory.project(&n).map(|p| p.name.clone()));
    match project {
        Some(p) if directory.sees(&principal, &p, chrono::Utc::now()) => Ok(StatusCode::OK.into_response()),
        _ => Err(ApiError::not_found(format!("project {name} does not exist"))),
    }
}

pub(super) async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (principal, username) = api.user(&headers).await?;
    let request: ProjectReq = body(&bytes)?;
    let raw_name = (request.project_name).ok_or_else(|| ApiError::bad_request("project_name is required"))?;
    let name = ProjectName::parse(&raw_name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let public = match request.metadata.as_ref().map(public_of).transpose()?.flatten() {
        Some(public) => public,
        None => request.public.unwrap_or(false),
    };
    let directory = api.directory().await?;
    let quota = requested_quota(&directory, &principal, request.storage_limit, None)?.flatten();
    let command = AccessCommand::CreateProject {
        name: name.clone(),
        public,
        quota,
        owner: Some(username),
    };
    api.change(&principal, command).await?;
    let directory = api.directory().await?;
    let project =
        (directory.project(&name)).ok_or_else(|| ApiError::internal("created project is missing"))?;
    created(&format!("/projects/{}", project.id))
}

pub(super) async fn get(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let principal = api.caller(&headers).await?;
    let directory = api.directory().await?;
    let project = visible(&directory, &principal, &key)?;
    let count = repo_count(&api.registry, &project.name).await?;
    ok(&to_json(&directory, &principal, project, count))
}

pub(super) async fn update(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let principal = api.signed_in(&headers).await?;
    let request: ProjectReq = body(&bytes)?;
    let directory = api.directory().await?;
    let project = managed(&directory, &principal, &key)?;
    let public = match &request.metadata {
        Some(m) => public_of(m)?,
        None => request.public,
    };
    let quota = requested_quota(&directory, &principal, request.storage_limit, project.quota)?;
    let command = AccessCommand::UpdateProject {
        name: project.name.clone(),
        public,
        quota,
    };
    api.change(&principal, command).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn delete(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let principal = api.signed_in(&headers).await?;
    let directory = api.directory().await?;
    let project = managed(&directory, &principal, &key)?;
    let repositories = repo_count(&api.registry, &project.name).await?;
    if repositories > 0 {
        return Err(ApiError::precondition(format!(
            "project {} still has {repositories} repositories; delete them first",
            project.name
        )));
    }
    let command = AccessCommand::DeleteProject {
        name: project.name.clone(),
    };
    api.change(&principal, command).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Serialize)]
struct Summary {
    repo_count: u64,
    project_admin_count: usize,
    maintainer_count: usize,
    developer_count: usize,
    guest_count: usize,
    quota: quotas::Usage,
}

pub(super) async fn summary(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let principal = api.caller(&headers).await?;
    let directory = api.directory().await?;
    let project = visible(&directory, &principal, &key)?;
    let count = |role: Role| project.members.values().filter(|m| m.role == role).count();
    ok(&Summary {
        repo_count: repo_count(&api.registry, &project.name).await?,
        project_admin_count: count(Role::ProjectAdmin),
        maintainer_count: count(Role::Maintainer),
        developer_count: count(Role::Developer),
        guest_count: count(Role::Guest),
        quota: quotas::usage(&api.registry, project).await?,
    })
}

pub(super) async fn metadata_list(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let principal = api.caller(&headers).await?;
    let directory = api.directory().await?;
    let project = visible(&directory, &principal, &key)?;
    ok(&BTreeMap::from([(METADATA_PUBLIC, project.public.to_string())]))
}

pub(super) async fn metadata_get(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((key, meta)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let principal = api.caller(&headers).await?;
    let directory = api.directory().await?;
    let project = visible(&directory, &principal, &key)?;
    if meta != METADATA_PUBLIC {
        return Err(ApiError::not_found(format!(
            "project metadata {meta} does not exist"
        )));
    }
    ok(&BTreeMap::from([(METADATA_PUBLIC, project.public.to_string())]))
}

/// `PUT|POST /projects/{p}/metadatas` with `{"public": "true"}`.
pub(super) async fn metadata_update(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let metadata: BTreeMap<String, Value> = body(&bytes)?;
    set_public(&api, &headers, &key, &metadata).await
}

/// `PUT /projects/{p}/metadatas/{meta_name}` with `{"<meta_name>": "true"}`.
pub(super) async fn metadata_put_one(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((key, meta)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let metadata: BTreeMap<String, Value> = body(&bytes)?;
    if metadata.keys().any(|k| *k != meta) {
        return Err(ApiError::bad_request(format!("the body may only set {meta}")));
    }
    set_public(&api, &headers, &key, &metadata).await
}

async fn set_public(
    api: &Api,
    headers: &HeaderMap,
    key: &str,
    metadata: &BTreeMap<String, Value>,
) -> Result<Response, ApiError> {
    let principal = api.signed_in(headers).await?;
    let public = public_of(metadata)?;
    let directory = api.directory().await?;
    let project = managed(&directory, &principal, key)?;
    let command = AccessCommand::UpdateProject {
        name: project.name.clone(),
        public,
        quota: None,
    };
    api.change(&principal, command).await?;
    Ok(StatusCode::OK.into_response())
}

/// Harbor's quota `ref` for a project.
pub(super) fn reference(project: &Project) -> Value {
    let mut reference = serde_json::json!({ "id": project.id, "name": project.name });
    if let (Some(owner), Some(fields)) = (owner(project), reference.as_object_mut()) {
        fields.insert("owner_name".to_string(), Value::from(owner.username.to_string()));
    }
    reference
}
