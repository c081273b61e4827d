//! Harbor's replication executions (`/replication/executions`, swagger tag `replication`), system
//! admins only: start a policy's run, follow it, stop it, read its tasks (one per artifact copied,
//! its accessories with it) and each task's log. Execution ids are global, as Harbor's
//! (`app::execution_id`). `berth serve` runs an execution after answering; the Lambda host runs it
//! within the request (the replicator function will take it over).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::{ReplicationExecution, ReplicationTask, ReplicationTrigger, RequestContext};

use super::caller::{Caller, Sent, SysAdmin};
use super::request::{numeric_id, Query};
use super::{created, ok, pagination, timestamp, ApiError};

/// Harbor's `StartReplicationExecution`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartJson {
    policy_id: Option<i64>,
}

/// Harbor's `ReplicationExecution`.
#[derive(Debug, Serialize)]
struct ExecutionJson {
    id: u64,
    policy_id: u64,
    status: String,
    trigger: String,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    status_text: String,
    total: u64,
    failed: u64,
    succeed: u64,
    in_progress: u64,
    stopped: u64,
}

/// Harbor's `ReplicationTask`.
#[derive(Debug, Serialize)]
struct TaskJson {
    id: u64,
    execution_id: u64,
    status: String,
    job_id: String,
    operation: &'static str,
    resource_type: String,
    src_resource: String,
    dst_resource: String,
    start_time: String,
    end_time: String,
}

fn execution_json(e: &ReplicationExecution) -> ExecutionJson {
    let count = |status: &str| e.tasks.iter().filter(|t| t.status == status).count() as u64;
    ExecutionJson {
        id: e.id,
        policy_id: e.policy,
        status: e.status.clone(),
        trigger: e.trigger.clone(),
        start_time: timestamp(e.started_at),
        end_time: e.finished_at.map(timestamp),
        status_text: e.error.clone().unwrap_or_default(),
        total: e.tasks.len() as u64,
        failed: count("Failed"),
        succeed: count("Succeed"),
        in_progress: 0,
        stopped: 0,
    }
}

/// `repo:tag,tag` or `repo@digest`: what a task copied, as its resources show it.
fn resource(repository: &str, task: &ReplicationTask) -> String {
    if task.tags.is_empty() {
        format!("{repository}@{}", task.digest)
    } else {
        format!("{repository}:{}", task.tags.join(","))
    }
}

fn task_json(execution: &ReplicationExecution, task: &ReplicationTask) -> TaskJson {
    let started = (execution.tasks.iter())
        .take_while(|t| t.id != task.id)
        .last()
        .map_or(execution.started_at, |t| t.finished_at);
    TaskJson {
        id: task.id,
        execution_id: execution.id,
        status: task.status.clone(),
        job_id: format!("{}-{}", execution.id, task.id),
        operation: if task.deletion { "deletion" } else { "copy" },
        resource_type: task.resource_type.clone(),
        src_resource: resource(&task.source, task),
        dst_resource: resource(&task.destination, task),
        start_time: timestamp(started),
        end_time: timestamp(task.finished_at),
    }
}

fn context(caller: &Caller<SysAdmin>) -> RequestContext {
    RequestContext::as_principal(caller.principal.clone())
}

async fn execution_of(caller: &Caller<SysAdmin>, raw: &str) -> Result<ReplicationExecution, ApiError> {
    let id = numeric_id(raw, "the execution id")?;
    (caller.registry().replication_execution(id).await?)
        .ok_or_else(|| ApiError::not_found(format!("replication execution {id} not found")))
}

/// `POST /replication/executions`: starts a run of the policy; 201 with its `Location`.
pub(super) async fn start(Sent(caller, request): Sent<SysAdmin, StartJson>) -> Result<Response, ApiError> {
    let policy = (request.policy_id)
        .and_then(|id| u64::try_from(id).ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request("policy_id is required"))?;
    let ctx = context(&caller);
    let registry = caller.registry().clone();
    let run = registry
        .start_replication(&ctx, policy, ReplicationTrigger::Manual)
        .await?;
    let id = run.id;
    if caller.background_jobs() {
        tokio::spawn(async move {
            if let Err(e) = registry.finish_replication(&ctx, run).await {
                tracing::error!(policy, execution = id, error = %e, "replication run failed");
            }
        });
    } else {
        registry.finish_replication(&ctx, run).await?;
    }
    created(&format!("/replication/executions/{id}"))
}

/// The query parameter `name`, if given, checked against the values it may take (400 otherwise:
/// a filter is never ignored).
fn one_of<'q>(query: &'q Query, name: &str, allowed: &[&str]) -> Result<Option<&'q str>, ApiError> {
    match query.get(name) {
        Some(value) if !allowed.contains(&value) => Err(ApiError::bad_request(format!(
            "{name} {value:?} is not one of {}",
            allowed.join(", ")
        ))),
        other => Ok(other),
    }
}

/// `GET /replication/executions?policy_id=&status=&trigger=`: newest first.
pub(super) async fn list(query: Query, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let policies: Vec<u64> = match query.get("policy_id") {
        Some(raw) => vec![numeric_id(raw, "policy_id")?],
        None => caller
            .directory
            .replication_policies()
            .map(|p| p.policy.id())
            .collect(),
    };
    let status = one_of(&query, "status", &["InProgress", "Succeed", "Failed", "Stopped"])?;
    let trigger = one_of(
        &query,
        "trigger",
        &[
            "MANUAL",
            "SCHEDULE",
            "EVENT_BASED",
            "manual",
            "scheduled",
            "event_based",
        ],
    )?
    .map(|t| match t {
        "manual" => "MANUAL",
        "scheduled" => "SCHEDULE",
        "event_based" => "EVENT_BASED",
        other => other,
    });
    let mut executions = Vec::new();
    for policy in policies {
        executions.extend(caller.registry().replication_executions(policy).await?);
    }
    executions.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    let items: Vec<ExecutionJson> = (executions.iter())
        .filter(|e| status.is_none_or(|s| e.status == s))
        .filter(|e| trigger.is_none_or(|t| e.trigger == t))
        .map(execution_json)
        .collect();
    pagination::respond(items, "/replication/executions", &query)
}

/// `GET /replication/executions/{id}`.
pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    ok(&execution_json(&execution_of(&caller, &raw).await?))
}

/// `PUT /replication/executions/{id}`: stops the run before its next artifact.
pub(super) async fn stop(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let execution = execution_of(&caller, &raw).await?;
    caller
        .registry()
        .stop_replication(&context(&caller), execution.id)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /replication/executions/{id}/tasks?status=&resource_type=`.
pub(super) async fn tasks(
    Path(raw): Path<String>,
    query: Query,
    caller: Caller<SysAdmin>,
) -> Result<Response, ApiError> {
    let execution = execution_of(&caller, &raw).await?;
    let status = one_of(&query, "status", &["Succeed", "Failed"])?;
    let resource_type = one_of(&query, "resource_type", &["image", "artifact"])?;
    let items: Vec<TaskJson> = (execution.tasks.iter())
        .filter(|t| status.is_none_or(|s| t.status == s))
        .filter(|t| resource_type.is_none_or(|r| t.resource_type == r))
        .map(|t| task_json(&execution, t))
        .collect();
    pagination::respond(items, &format!("/replication/executions/{raw}/tasks"), &query)
}

/// `GET /replication/executions/{id}/tasks/{task_id}/log`: what the task copied and how.
pub(super) async fn log(
    Path((raw, task)): Path<(String, String)>,
    caller: Caller<SysAdmin>,
) -> Result<Response, ApiError> {
    let execution = execution_of(&caller, &raw).await?;
    let task_id = numeric_id(&task, "the task id")?;
    let task = (execution.tasks.iter())
        .find(|t| t.id == task_id)
        .ok_or_else(|| ApiError::not_found(format!("execution {} has no task {task_id}", execution.id)))?;
    if task.deletion {
        let text = format!(
            "{} delete {} at {}\n{}\n",
            timestamp(task.finished_at),
            resource(&task.source, task),
            task.destination,
            match &task.error {
                Some(error) => format!("Failed: {error}"),
                None => "Succeed".to_string(),
            }
        );
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let mut text = format!(
        "{} copy {} to {}\n{} blob(s) sent ({} bytes), {} mounted, {} already there; {} accessor{} after it\n",
        timestamp(task.finished_at),
        resource(&task.source, task),
        resource(&task.destination, task),
        task.blobs_sent,
        task.bytes_sent,
        task.blobs_mounted,
        task.blobs_present,
        task.accessories,
        if task.accessories == 1 { "y" } else { "ies" },
    );
    match &task.error {
        Some(error) => text.push_str(&format!("Failed: {error}\n")),
        None => text.push_str("Succeed\n"),
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}
