//! Projects (Harbor `/projects`): list, check, create, read, update, delete, metadata, summary.
//!
//! A project is named by `{project_name_or_id}`: all digits is an id, anything else a name. A
//! project the caller may not see answers exactly as an absent one (404).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::Registry;
use crate::domain::access::{AccessCommand, Directory, Member, Principal, Project, ProjectName, Role};

use super::caller::{Caller, Sent, SignedIn, SignedInUser};
use super::quotas::{self, storage_limit};
use super::request::{body, FromQuery, Params, Query};
use super::{created, ok, pagination, timestamp, Api, ApiError};

/// Repositories read per catalog call while counting.
const CATALOG_PAGE: usize = 1_000;
/// The project metadata Berth acts on: who may pull.
const METADATA_PUBLIC: &str = "public";
/// Pulls need a Notation signature (Harbor's name).
const METADATA_NOTATION: &str = "enable_content_trust";
/// Pulls need a cosign signature (Harbor's name).
const METADATA_COSIGN: &str = "enable_content_trust_cosign";
const METADATA_KEYS: [&str; 3] = [METADATA_PUBLIC, METADATA_NOTATION, METADATA_COSIGN];
/// The rest of Harbor's project metadata (its `ProjectMetadata` model), kept as sent and returned,
/// for the tools that set it (Terraform's `harbor_project` always sends the scanning ones); Berth
/// has no scanner or proxy cache, so they change nothing. Each with the values Harbor allows.
const KEPT_METADATA: [(&str, KeptValue); 10] = [
    ("auto_scan", KeptValue::Flag),
    ("auto_sbom_generation", KeptValue::Flag),
    ("prevent_vul", KeptValue::Flag),
    ("reuse_sys_cve_allowlist", KeptValue::Flag),
    ("proxy_cache_local_on_not_found", KeptValue::Flag),
    ("proxy_referrer_api", KeptValue::Flag),
    ("severity", KeptValue::Severity),
    ("retention_id", KeptValue::Integer),
    ("proxy_speed_kb", KeptValue::Integer),
    ("max_upstream_conn", KeptValue::Integer),
];

/// What a kept metadata key may hold.
#[derive(Debug, Clone, Copy)]
enum KeptValue {
    /// `"true"` or `"false"` (a JSON boolean is taken as its string).
    Flag,
    /// Harbor's severities.
    Severity,
    /// A whole number (a JSON number is taken as its string), or empty.
    Integer,
}

/// Set by creating a retention policy (`POST /retentions`): what a request sends for it is ignored
/// (Harbor refuses a value other than the project's own; tools that send back what they read must
/// not be refused for a policy changed meanwhile).
const RETENTION_ID: &str = "retention_id";

const SEVERITIES: [&str; 5] = ["none", "low", "medium", "high", "critical"];
/// 2^53 - 1: the largest integer a double (JavaScript's, Python's float) holds exactly.
const MAX_EXACT_JSON_INTEGER: i64 = (1 << 53) - 1;

impl KeptValue {
    /// The value as kept, or why it is refused.
    fn check(self, key: &str, value: &Value) -> Result<String, ApiError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) if matches!(self, KeptValue::Flag) => b.to_string(),
            // A JSON number only where every JSON reader holds it exactly (a string holds any).
            Value::Number(n)
                if matches!(self, KeptValue::Integer)
                    && n.as_i64().is_some_and(|i| i.abs() <= MAX_EXACT_JSON_INTEGER) =>
            {
                n.to_string()
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "metadata {key} must be a string (or a boolean flag, or a whole number of at \
                     most 2^53 - 1), not {other}"
                )))
            }
        };
        let valid = match self {
            KeptValue::Flag => text == "true" || text == "false",
            KeptValue::Severity => SEVERITIES.contains(&text.as_str()),
            KeptValue::Integer => {
                let digits = text.strip_prefix('-').unwrap_or(&text);
                text.is_empty() || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            }
        };
        if valid {
            return Ok(text);
        }
        let allowed = match self {
            KeptValue::Flag => "\"true\" or \"false\"".to_string(),
            KeptValue::Severity => SEVERITIES.join(", "),
            KeptValue::Integer => "a whole number".to_string(),
        };
        Err(ApiError::bad_request(format!(
            "metadata {key} must be {allowed}, not {text:?}"
        )))
    }
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(super) struct Metadata {
    pub public: String,
    pub enable_content_trust: String,
    pub enable_content_trust_cosign: String,
    /// The kept metadata ([`KEPT_METADATA`]), as sent.
    #[serde(flatten)]
    pub kept: BTreeMap<String, String>,
}

impl Metadata {
    fn of(project: &Project) -> Metadata {
        let mut kept = project.metadata.clone();
        // The project's retention policy's id, whatever was once sent.
        match &project.retention {
            Some(policy) => kept.insert(RETENTION_ID.to_string(), policy.id().to_string()),
            None => kept.remove(RETENTION_ID),
        };
        Metadata {
            public: project.public.to_string(),
            enable_content_trust: project.trust.require_notation.to_string(),
            enable_content_trust_cosign: project.trust.require_cosign.to_string(),
            kept,
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        match key {
            METADATA_PUBLIC => Some(&self.public),
            METADATA_NOTATION => Some(&self.enable_content_trust),
            METADATA_COSIGN => Some(&self.enable_content_trust_cosign),
            other => self.kept.get(other).map(String::as_str),
        }
    }
}

/// The metadata a request sets (`None`: left as is).
#[derive(Debug, Default, Clone)]
struct MetadataChange {
    public: Option<bool>,
    notation: Option<bool>,
    cosign: Option<bool>,
    /// Kept metadata to set.
    kept: BTreeMap<String, String>,
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
pub(super) struct ProjectReq {
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
        metadata: Metadata::of(project),
        creation_time: timestamp(project.created_at),
        update_time: timestamp(project.updated_at),
        owner_id: owner.and_then(|m| directory.user(&m.username)).map(|u| u.id),
        owner_name: owner.map(|m| m.username.to_string()),
        repo_count,
        current_user_role_id: directory.role(principal, &project.name).map(Role::id),
    }
}

/// The change Harbor metadata asks for: the flags Berth acts on (`"true"`/`"false"`, or JSON
/// booleans) and the kept keys, each checked against what Harbor allows; other keys are refused.
fn metadata_of(metadata: &BTreeMap<String, Value>) -> Result<MetadataChange, ApiError> {
    let mut kept = BTreeMap::new();
    for (key, value) in metadata {
        if METADATA_KEYS.contains(&key.as_str()) {
            continue;
        }
        let Some((_, kind)) = KEPT_METADATA.iter().find(|(k, _)| k == key) else {
            let known: Vec<&str> = (METADATA_KEYS.iter().copied())
                .chain(KEPT_METADATA.iter().map(|(k, _)| *k))
                .collect();
            return Err(ApiError::bad_request(format!(
                "unsupported project metadata {key:?}: Harbor's keys are {}",
                known.join(", ")
            )));
        };
        kept.insert(key.clone(), kind.check(key, value)?);
    }
    let flag = |key: &str| match metadata.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadata {key} must be \"true\" or \"false\", not {other}"
        ))),
    };
    Ok(MetadataChange {
        public: flag(METADATA_PUBLIC)?,
        notation: flag(METADATA_NOTATION)?,
        cosign: flag(METADATA_COSIGN)?,
        kept,
    })
}

/// The content-trust flags a change sets, applied to the project's configuration (if they change it).
async fn apply_trust_flags<A>(
    caller: &Caller<A>,
    name: &ProjectName,
    change: MetadataChange,
) -> Result<(), ApiError> {
    if change.notation.is_none() && change.cosign.is_none() {
        return Ok(());
    }
    let directory = caller.reread_directory().await?;
    let Some(project) = directory.project(name) else {
        return Ok(());
    };
    let mut trust = project.trust.clone();
    trust.require_notation = change.notation.unwrap_or(trust.require_notation);
    trust.require_cosign = change.cosign.unwrap_or(trust.require_cosign);
    caller
        .change(AccessCommand::ConfigureTrust {
            name: name.clone(),
            trust,
        })
        .await
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

pub(super) async fn list(query: Query, caller: Caller) -> Result<Response, ApiError> {
    let (directory, principal) = (&caller.directory, &caller.principal);
    let public = query.flag("public")?;
    let name = query.get("name").unwrap_or_default();
    let now = chrono::Utc::now();
    let counts = repo_counts(caller.registry()).await?;
    let projects: Vec<ProjectJson> = (directory.projects())
        .filter(|p| directory.sees(principal, &p.name, now))
        .filter(|p| public.is_none_or(|public| p.public == public))
        .filter(|p| p.name.as_str().contains(name))
        .map(|p| {
            let count = counts.get(p.name.as_str()).copied().unwrap_or(0);
            to_json(directory, principal, p, count)
        })
        .collect();
    pagination::respond(projects, "/projects", &query)
}

/// `HEAD /projects`' `project_name`, the project asked about (400 without one).
pub(super) struct Asked(String);

impl FromQuery for Asked {
    fn from_query(query: &Query) -> Result<Asked, ApiError> {
        let name =
            (query.get("project_name")).ok_or_else(|| ApiError::bad_request("project_name is required"))?;
        Ok(Asked(name.to_string()))
    }
}

pub(super) async fn head(
    Params(_, Asked(name)): Params<Asked>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let directory = &caller.directory;
    let project = ProjectName::parse(&name)
        .ok()
        .and_then(|n| directory.project(&n).map(|p| p.name.clone()));
    match project {
        Some(p) if directory.sees(&caller.principal, &p, chrono::Utc::now()) => {
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(ApiError::not_found(format!("project {name} does not exist"))),
    }
}

pub(super) async fn create(
    Sent(caller, request): Sent<SignedInUser, ProjectReq>,
) -> Result<Response, ApiError> {
    let raw_name = (request.project_name).ok_or_else(|| ApiError::bad_request("project_name is required"))?;
    let name = ProjectName::parse(&raw_name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut change = request
        .metadata
        .as_ref()
        .map(metadata_of)
        .transpose()?
        .unwrap_or_default();
    change.kept.remove(RETENTION_ID);
    let public = match change.public {
        Some(public) => public,
        None => request.public.unwrap_or(false),
    };
    let quota = requested_quota(&caller.directory, &caller.principal, request.storage_limit, None)?.flatten();
    let command = AccessCommand::CreateProject {
        name: name.clone(),
        public,
        quota,
        owner: caller.username().cloned(),
        metadata: change.kept.clone(),
    };
    caller.change(command).await?;
    apply_trust_flags(&caller, &name, change).await?;
    let directory = caller.reread_directory().await?;
    let project =
        (directory.project(&name)).ok_or_else(|| ApiError::internal("created project is missing"))?;
    created(&format!("/projects/{}", project.id))
}

pub(super) async fn get(Path(key): Path<String>, caller: Caller) -> Result<Response, ApiError> {
    let (directory, principal) = (&caller.directory, &caller.principal);
    let project = visible(directory, principal, &key)?;
    let count = repo_count(caller.registry(), &project.name).await?;
    ok(&to_json(directory, principal, project, count))
}

pub(super) async fn update(
    Path(key): Path<String>,
    Sent(caller, request): Sent<SignedIn, ProjectReq>,
) -> Result<Response, ApiError> {
    let (directory, principal) = (&caller.directory, &caller.principal);
    let project = managed(directory, principal, &key)?;
    let mut change = request
        .metadata
        .as_ref()
        .map(metadata_of)
        .transpose()?
        .unwrap_or_default();
    change.kept.remove(RETENTION_ID);
    let public = change.public.or(request.public);
    let quota = requested_quota(directory, principal, request.storage_limit, project.quota)?;
    let name = project.name.clone();
    let command = AccessCommand::UpdateProject {
        name: name.clone(),
        public,
        quota,
        metadata: change.kept.clone(),
    };
    caller.change(command).await?;
    apply_trust_flags(&caller, &name, change).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn delete(Path(key): Path<String>, caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    let project = managed(&caller.directory, &caller.principal, &key)?;
    let repositories = repo_count(caller.registry(), &project.name).await?;
    if repositories > 0 {
        return Err(ApiError::precondition(format!(
            "project {} still has {repositories} repositories; delete them first",
            project.name
        )));
    }
    let command = AccessCommand::DeleteProject {
        name: project.name.clone(),
    };
    caller.change(command).await?;
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

pub(super) async fn summary(Path(key): Path<String>, caller: Caller) -> Result<Response, ApiError> {
    let project = visible(&caller.directory, &caller.principal, &key)?;
    let count = |role: Role| project.members.values().filter(|m| m.role == role).count();
    ok(&Summary {
        repo_count: repo_count(caller.registry(), &project.name).await?,
        project_admin_count: count(Role::ProjectAdmin),
        maintainer_count: count(Role::Maintainer),
        developer_count: count(Role::Developer),
        guest_count: count(Role::Guest),
        quota: quotas::usage(caller.registry(), project).await?,
    })
}

pub(super) async fn metadata_list(Path(key): Path<String>, caller: Caller) -> Result<Response, ApiError> {
    let project = visible(&caller.directory, &caller.principal, &key)?;
    ok(&Metadata::of(project))
}

pub(super) async fn metadata_get(
    Path((key, meta)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let project = visible(&caller.directory, &caller.principal, &key)?;
    let metadata = Metadata::of(project);
    let Some(value) = metadata.get(&meta) else {
        return Err(ApiError::not_found(format!(
            "project metadata {meta} does not exist"
        )));
    };
    ok(&BTreeMap::from([(meta.as_str(), value)]))
}

/// `PUT|POST /projects/{p}/metadatas` with `{"public": "true"}`.
pub(super) async fn metadata_update(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(key): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let metadata: BTreeMap<String, Value> = body(&bytes)?;
    set_metadata(&api, &headers, &key, &metadata).await
}

/// `PUT /projects/{p}/metadatas/{meta_name}` with `{"<meta_name>": "true"}`.
pub(super) async fn metadata_put_one(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((key, meta)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let metadata: BTreeMap<String, Value> = body(&bytes)?;
    if metadata.len() != 1 || !metadata.contains_key(&meta) {
        return Err(ApiError::bad_request(format!(
            "the body must set {meta}, and nothing else"
        )));
    }
    set_metadata(&api, &headers, &key, &metadata).await
}

/// The metadata handlers check their body before the caller, so they admit the caller here.
async fn set_metadata(
    api: &Api,
    headers: &HeaderMap,
    key: &str,
    metadata: &BTreeMap<String, Value>,
) -> Result<Response, ApiError> {
    let caller = Caller::<SignedIn>::admit(api, headers).await?;
    let mut change = metadata_of(metadata)?;
    let project = managed(&caller.directory, &caller.principal, key)?;
    change.kept.remove(RETENTION_ID);
    let name = project.name.clone();
    let command = AccessCommand::UpdateProject {
        name: name.clone(),
        public: change.public,
        quota: None,
        metadata: change.kept.clone(),
    };
    caller.change(command).await?;
    apply_trust_flags(&caller, &name, change).await?;
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
