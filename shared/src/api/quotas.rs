//! Storage quotas (Harbor `/quotas`), one per project; a quota's id is its project's id. System
//! admins only. `-1` is unlimited.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::Registry;
use crate::domain::access::{AccessCommand, Project};

use super::caller::{Caller, Sent, SysAdmin};
use super::request::{numeric_id, Query};
use super::{ok, pagination, projects, timestamp, ApiError};

/// Harbor's `ResourceList`, of the one resource Berth limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Storage {
    pub storage: i64,
}

/// A quota's limit and use.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Usage {
    pub hard: Storage,
    pub used: Storage,
}

#[derive(Debug, Serialize)]
struct QuotaJson {
    id: u64,
    #[serde(rename = "ref")]
    reference: serde_json::Value,
    hard: Storage,
    used: Storage,
    creation_time: String,
    update_time: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct QuotaUpdateReq {
    hard: Option<StorageReq>,
}

#[derive(Debug, Deserialize)]
struct StorageReq {
    storage: Option<i64>,
}

/// A requested `storage_limit` / `hard.storage` as a quota: `-1` is unlimited.
pub(super) fn storage_limit(limit: i64) -> Result<Option<u64>, ApiError> {
    match limit {
        -1 => Ok(None),
        n => u64::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("a storage limit is bytes or -1, not {n}"))),
    }
}

/// A quota as Harbor shows it: `-1` when unlimited.
pub(super) fn hard_limit(quota: Option<u64>) -> i64 {
    quota.map_or(-1, |q| i64::try_from(q).unwrap_or(i64::MAX))
}

/// The project's limit and the bytes it uses.
pub(super) async fn usage(registry: &Registry, project: &Project) -> Result<Usage, ApiError> {
    let used = registry.project_usage(&project.name).await?;
    Ok(Usage {
        hard: Storage {
            storage: hard_limit(project.quota),
        },
        used: Storage {
            storage: i64::try_from(used).unwrap_or(i64::MAX),
        },
    })
}

async fn to_json(registry: &Registry, project: &Project) -> Result<QuotaJson, ApiError> {
    let usage = usage(registry, project).await?;
    Ok(QuotaJson {
        id: project.id,
        reference: projects::reference(project),
        hard: usage.hard,
        used: usage.used,
        creation_time: timestamp(project.created_at),
        update_time: timestamp(project.updated_at),
    })
}

fn quota_of<'d>(directory: &'d crate::domain::access::Directory, raw: &str) -> Result<&'d Project, ApiError> {
    let id = numeric_id(raw, "the quota id")?;
    (directory.projects().find(|p| p.id == id))
        .ok_or_else(|| ApiError::not_found(format!("quota {id} does not exist")))
}

pub(super) async fn list(query: Query, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    if let Some(kind) = query.get("reference").filter(|r| *r != "project") {
        return Err(ApiError::bad_request(format!(
            "quotas are per project; reference {kind:?} is not supported"
        )));
    }
    let reference_id = (query.get("reference_id"))
        .map(|raw| numeric_id(raw, "reference_id"))
        .transpose()?;
    let mut quotas = Vec::new();
    for project in (caller.directory.projects()).filter(|p| reference_id.is_none_or(|id| p.id == id)) {
        quotas.push(to_json(caller.registry(), project).await?);
    }
    quotas.sort_by_key(|q| q.id);
    pagination::respond(quotas, "/quotas", &query)
}

pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    ok(&to_json(caller.registry(), quota_of(&caller.directory, &raw)?).await?)
}

pub(super) async fn update(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SysAdmin, QuotaUpdateReq>,
) -> Result<Response, ApiError> {
    let limit = (request.hard.and_then(|h| h.storage))
        .ok_or_else(|| ApiError::bad_request("hard.storage is required"))?;
    let quota = storage_limit(limit)?;
    let project = quota_of(&caller.directory, &raw)?;
    let command = AccessCommand::UpdateProject {
        name: project.name.clone(),
        public: None,
        quota: Some(quota),
        metadata: Default::default(),
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}
