//! Harbor's tag retention (`/retentions`, swagger `Retention` tag): a project's policy (one per
//! project, its id the project's `retention_id`), its executions (manual runs, dry or real) and
//! their tasks (one per repository) with Harbor's task log. Project admins, maintainers and
//! developers (and system admins) may see, change and run a project's policy, as in Harbor.
//!
//! Beyond Harbor, a policy is checked when it is saved (templates, parameters, selectors: Harbor
//! finds those mistakes only when it runs), and unknown policy ids answer 404, not 500.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::{RequestContext, RetentionExecution, RetentionTask, RetentionTrigger};
use crate::domain::access::{AccessCommand, Directory, Principal, Project, Role};
use crate::domain::event::RetentionRow;
use crate::domain::lifecycle::immutability::SelectorSpec;
use crate::domain::lifecycle::retention::{
    PolicySpec, RetentionRuleSpec, TagSelectorSpec, Template, ACTION, ALGORITHM,
};
use crate::domain::lifecycle::selector::DOUBLESTAR;

use super::caller::{Caller, Sent, SignedIn};
use super::immutability::{RuleJson, SelectorJson};
use super::request::{numeric_id, Query};
use super::{created, ok, pagination, timestamp, ApiError};

/// The only scope Harbor's rules have, and the only level of its policies.
const REPOSITORY_SCOPE: &str = "repository";
const PROJECT_LEVEL: &str = "project";
/// Harbor's trigger kind (a schedule with an empty cron runs only when triggered).
const SCHEDULE: &str = "Schedule";

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TriggerJson {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    settings: Option<Map<String, Value>>,
    #[serde(default)]
    references: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ScopeJson {
    #[serde(default)]
    level: Option<String>,
    #[serde(default, rename = "ref")]
    reference: Option<i64>,
}

/// Harbor's `RetentionPolicy`, as sent and as answered.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PolicyJson {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    rules: Option<Vec<RuleJson>>,
    #[serde(default)]
    trigger: Option<TriggerJson>,
    #[serde(default)]
    scope: Option<ScopeJson>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ExecutionRequest {
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(super) struct OperationRequest {
    #[serde(default)]
    action: Option<String>,
}

// ---- reading and writing Harbor's bodies ----

fn untagged_extras(untagged: bool) -> String {
    json!({ "untagged": untagged }).to_string()
}

fn rule_json(rule: RetentionRuleSpec) -> RuleJson {
    let params = match rule.param {
        Some(n) => Map::from_iter([(rule.template.name().to_string(), json!(n))]),
        None => Map::new(),
    };
    let tag = |s: TagSelectorSpec| SelectorJson {
        kind: Some(s.kind),
        decoration: Some(s.decoration),
        pattern: Some(s.pattern),
        extras: Some(untagged_extras(s.untagged)),
    };
    let repository = |s: SelectorSpec| SelectorJson {
        kind: Some(s.kind),
        decoration: Some(s.decoration),
        pattern: Some(s.pattern),
        extras: None,
    };
    RuleJson {
        id: i64::try_from(rule.id).ok(),
        priority: Some(rule.priority),
        disabled: Some(rule.disabled),
        action: Some(ACTION.to_string()),
        template: Some(rule.template.name().to_string()),
        params: Some(params),
        tag_selectors: Some(rule.tag_selectors.into_iter().map(tag).collect()),
        scope_selectors: Some(BTreeMap::from([(
            REPOSITORY_SCOPE.to_string(),
            rule.repository_selectors.into_iter().map(repository).collect(),
        )])),
    }
}

fn policy_json(spec: PolicySpec, project: &Project) -> PolicyJson {
    // Harbor's: the cron as set, and when it fires next.
    let mut settings = Map::from_iter([(
        "cron".to_string(),
        json!(spec.schedule.clone().unwrap_or_default()),
    )]);
    let next = (project.retention.as_ref())
        .and_then(|p| p.schedule())
        .and_then(|s| s.next_after(chrono::Utc::now()));
    if let Some(next) = next {
        settings.insert("next_scheduled_time".to_string(), json!(timestamp(next)));
    }
    PolicyJson {
        id: i64::try_from(spec.id).ok(),
        algorithm: Some(ALGORITHM.to_string()),
        rules: Some(spec.rules.into_iter().map(rule_json).collect()),
        trigger: Some(TriggerJson {
            kind: Some(SCHEDULE.to_string()),
            settings: Some(settings),
            references: Some(json!({})),
        }),
        scope: Some(ScopeJson {
            level: Some(PROJECT_LEVEL.to_string()),
            reference: i64::try_from(project.id).ok(),
        }),
    }
}

fn required(value: Option<String>, field: &str, name: &str) -> Result<String, ApiError> {
    value.ok_or_else(|| ApiError::bad_request(format!("{field}: every selector needs a {name}")))
}

/// A tag selector: Harbor's default for untagged artifacts is to select them with `matches` and
/// not with `excludes`, unless `extras` says (`{"untagged": true|false}`).
fn tag_selector(json: SelectorJson, field: &str) -> Result<TagSelectorSpec, ApiError> {
    let decoration = required(json.decoration, field, "decoration")?;
    let mut untagged = decoration == "matches";
    if let Some(extras) = json.extras.filter(|e| !e.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(&extras).map_err(|e| {
            ApiError::bad_request(format!(
                "{field}: extras must be a JSON object such as {{\"untagged\":true}}, not {extras:?} ({e})"
            ))
        })?;
        match parsed.get("untagged") {
            None => {}
            Some(Value::Bool(b)) => untagged = *b,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "{field}: extras.untagged must be a boolean, not {other}"
                )))
            }
        }
    }
    Ok(TagSelectorSpec {
        kind: json.kind.unwrap_or_else(|| DOUBLESTAR.to_string()),
        decoration,
        pattern: required(json.pattern, field, "pattern")?,
        untagged,
    })
}

fn repository_selector(json: SelectorJson, field: &str) -> Result<SelectorSpec, ApiError> {
    Ok(SelectorSpec {
        kind: json.kind.unwrap_or_else(|| DOUBLESTAR.to_string()),
        decoration: required(json.decoration, field, "decoration")?,
        pattern: required(json.pattern, field, "pattern")?,
    })
}

fn rule_spec(json: RuleJson, index: usize) -> Result<RetentionRuleSpec, ApiError> {
    let field = |name: &str| format!("rules[{index}].{name}");
    if let Some(action) = json.action.filter(|a| a != ACTION) {
        return Err(ApiError::bad_request(format!(
            "{}: {action:?} is not supported: only \"{ACTION}\"",
            field("action")
        )));
    }
    let name = json
        .template
        .ok_or_else(|| ApiError::bad_request(format!("{} is required", field("template"))))?;
    let template = Template::parse(&name).ok_or_else(|| {
        let known: Vec<&str> = Template::ALL.iter().map(|t| t.name()).collect();
        ApiError::bad_request(format!(
            "{}: {name:?} is not one of {}",
            field("template"),
            known.join(", ")
        ))
    })?;
    let params = json.params.unwrap_or_default();
    let param = match params.get(template.name()) {
        None | Some(Value::Null) => None,
        Some(value) => {
            // Harbor's UI sends numbers; a whole number in a string is taken too.
            let number = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            let n = number.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{}.{}: must be a whole number of at least 0, not {value}",
                    field("params"),
                    template.name()
                ))
            })?;
            Some(n)
        }
    };
    if let Some(other) = params.keys().find(|k| *k != template.name()) {
        return Err(ApiError::bad_request(format!(
            "{}.{other}: template {} takes {}",
            field("params"),
            template.name(),
            match template.unit() {
                Some(_) => format!("only the parameter {}", template.name()),
                None => "no parameters".to_string(),
            }
        )));
    }
    let mut scopes = json.scope_selectors.unwrap_or_default();
    if let Some(other) = scopes.keys().find(|k| *k != REPOSITORY_SCOPE) {
        return Err(ApiError::bad_request(format!(
            "{}.{other} is not supported: only \"{REPOSITORY_SCOPE}\"",
            field("scope_selectors")
        )));
    }
    let repository = scopes.remove(REPOSITORY_SCOPE).unwrap_or_default();
    let tag_field = field("tag_selectors");
    let repository_field = field("scope_selectors.repository");
    Ok(RetentionRuleSpec {
        id: json
            .id
            .and_then(|id| u64::try_from(id).ok())
            .unwrap_or(index as u64 + 1),
        priority: json.priority.unwrap_or(0),
        disabled: json.disabled.unwrap_or(false),
        template,
        param,
        tag_selectors: (json.tag_selectors.unwrap_or_default().into_iter())
            .map(|s| tag_selector(s, &tag_field))
            .collect::<Result<_, _>>()?,
        repository_selectors: (repository.into_iter())
            .map(|s| repository_selector(s, &repository_field))
            .collect::<Result<_, _>>()?,
    })
}

/// The policy a request describes (its id `id`) and the project its scope names; the directory
/// checks the rest (selectors, parameters, the 15-rule limit, equal rules).
fn policy_spec(
    request: PolicyJson,
    id: u64,
    directory: &Directory,
) -> Result<(PolicySpec, &Project), ApiError> {
    if let Some(algorithm) = request.algorithm.filter(|a| !a.is_empty() && a != ALGORITHM) {
        return Err(ApiError::bad_request(format!(
            "algorithm {algorithm:?} is not supported: only \"{ALGORITHM}\""
        )));
    }
    if let Some(trigger) = &request.trigger {
        if let Some(kind) = trigger.kind.as_ref().filter(|k| !k.is_empty() && *k != SCHEDULE) {
            return Err(ApiError::bad_request(format!(
                "trigger.kind {kind:?} is not supported: only \"{SCHEDULE}\""
            )));
        }
    }
    let cron = (request.trigger.as_ref())
        .and_then(|t| t.settings.as_ref())
        .and_then(|s| s.get("cron"));
    let schedule = match cron {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.trim().is_empty() => None,
        // Checked (six fields, seconds 0) with the rest of the policy by the directory.
        Some(Value::String(c)) => Some(c.trim().to_string()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid cron type for scheduled tag retention: must be a string, not {other}"
            )))
        }
    };
    let scope = request.scope.ok_or_else(|| {
        ApiError::bad_request("scope is required: {\"level\":\"project\",\"ref\":<project id>}")
    })?;
    let level = scope.level.unwrap_or_default();
    if level != PROJECT_LEVEL {
        return Err(ApiError::bad_request(format!("scope {level} is not support")));
    }
    let reference = scope.reference.unwrap_or(0);
    let project = (u64::try_from(reference).ok())
        .filter(|r| *r > 0)
        .and_then(|r| directory.projects().find(|p| p.id == r))
        .ok_or_else(|| ApiError::bad_request(format!("invalid Project id {reference}")))?;
    let rules = (request.rules.unwrap_or_default().into_iter().enumerate())
        .map(|(i, r)| rule_spec(r, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((PolicySpec { id, rules, schedule }, project))
}

// ---- who may do what ----

/// Whether `principal` may see, change and run `project`'s retention: its admins, maintainers and
/// developers, and system admins (Harbor's `tag-retention` permissions). 404 if the caller cannot
/// see the project, 403 if it can.
fn check_keeper(directory: &Directory, principal: &Principal, project: &Project) -> Result<(), ApiError> {
    let now = chrono::Utc::now();
    if !directory.sees(principal, &project.name, now) {
        return Err(ApiError::not_found(format!(
            "project {} does not exist",
            project.id
        )));
    }
    let role = directory.role(principal, &project.name);
    let allowed = directory.is_admin(principal)
        || matches!(
            role,
            Some(Role::ProjectAdmin | Role::Maintainer | Role::Developer)
        );
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only developers, maintainers and admins of project {} may see or run its retention policy",
            project.name
        )))
    }
}

/// The project whose policy `raw` names, if the caller may keep it.
fn policy_project<'d>(
    directory: &'d Directory,
    principal: &Principal,
    raw: &str,
) -> Result<&'d Project, ApiError> {
    let id = numeric_id(raw, "the retention id")?;
    let project = (directory.projects())
        .find(|p| p.retention.as_ref().is_some_and(|r| r.id() == id))
        .ok_or_else(|| ApiError::not_found(format!("retention policy {id} does not exist")))?;
    check_keeper(directory, principal, project)?;
    Ok(project)
}

// ---- routes ----

/// `GET /retentions/metadatas`: what rules may say (Harbor's literal).
pub(super) async fn metadatas(_caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    let templates: Vec<Value> = (Template::ALL.iter())
        .map(|t| {
            let params = match t.unit() {
                Some(unit) => json!([{"type": "int", "unit": unit, "required": true}]),
                None => json!([]),
            };
            json!({
                "rule_template": t.name(),
                "display_text": t.display_text(),
                "action": ACTION,
                "params": params,
            })
        })
        .collect();
    ok(&json!({
        "templates": templates,
        "scope_selectors": [{"display_text": "Repositories", "kind": DOUBLESTAR, "decorations": ["repoMatches", "repoExcludes"]}],
        "tag_selectors": [{"display_text": "Tags", "kind": DOUBLESTAR, "decorations": ["matches", "excludes"]}],
    }))
}

/// `POST /retentions`: the project's policy (one per project); 201 with its `Location`.
pub(super) async fn create(Sent(caller, request): Sent<SignedIn, PolicyJson>) -> Result<Response, ApiError> {
    let (spec, project) = policy_spec(request, 0, &caller.directory)?;
    check_keeper(&caller.directory, &caller.principal, project)?;
    let name = project.name.clone();
    caller
        .change(AccessCommand::CreateRetentionPolicy {
            project: name.clone(),
            policy: spec,
        })
        .await?;
    let directory = caller.reread_directory().await?;
    let id = (directory.project(&name))
        .and_then(|p| p.retention.as_ref().map(|r| r.id()))
        .ok_or_else(|| ApiError::internal("the created retention policy is missing"))?;
    created(&format!("/retentions/{id}"))
}

/// `GET /retentions/{id}`.
pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    let project = policy_project(&caller.directory, &caller.principal, &raw)?;
    let spec = (project.retention.as_ref())
        .map(|r| r.spec())
        .ok_or_else(|| ApiError::internal("the retention policy is missing"))?;
    ok(&policy_json(spec, project))
}

/// `PUT /retentions/{id}`: replaces the policy's rules (the scope must stay its project's).
pub(super) async fn update(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SignedIn, PolicyJson>,
) -> Result<Response, ApiError> {
    let project = policy_project(&caller.directory, &caller.principal, &raw)?;
    let id = numeric_id(&raw, "the retention id")?;
    let (spec, scoped) = policy_spec(request, id, &caller.directory)?;
    if scoped.name != project.name {
        return Err(ApiError::not_found(format!(
            "the retention policy id {id} does not match project {}",
            scoped.id
        )));
    }
    caller
        .change(AccessCommand::UpdateRetentionPolicy {
            project: project.name.clone(),
            policy: spec,
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /retentions/{id}`: the policy goes (its executions stay in the log).
pub(super) async fn delete(Path(raw): Path<String>, caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    let project = policy_project(&caller.directory, &caller.principal, &raw)?;
    caller
        .change(AccessCommand::DeleteRetentionPolicy {
            project: project.name.clone(),
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /retentions/{id}/executions` (`{"dry_run": bool}`): 201 with the execution's `Location`.
/// Hosts that keep running go on after answering; a Lambda function runs it before answering.
pub(super) async fn execute(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SignedIn, ExecutionRequest>,
) -> Result<Response, ApiError> {
    let project = policy_project(&caller.directory, &caller.principal, &raw)?;
    let id = numeric_id(&raw, "the retention id")?;
    let ctx = RequestContext::as_principal(caller.principal.clone());
    let registry = caller.registry().clone();
    let run = registry
        .start_retention(
            &ctx,
            &project.name,
            request.dry_run.unwrap_or(false),
            RetentionTrigger::Manual,
        )
        .await?;
    let execution = run.execution;
    if caller.background_jobs() {
        tokio::spawn(async move {
            if let Err(e) = registry.finish_retention(&ctx, run).await {
                tracing::error!(policy = id, execution, error = %e, "retention run failed");
            }
        });
    } else {
        registry.finish_retention(&ctx, run).await?;
    }
    created(&format!("/retentions/{id}/executions/{execution}"))
}

#[derive(Debug, Serialize)]
struct ExecutionJson {
    id: u64,
    policy_id: u64,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    status: String,
    trigger: String,
    dry_run: bool,
}

fn execution_json(e: &RetentionExecution) -> ExecutionJson {
    ExecutionJson {
        id: e.id,
        policy_id: e.policy,
        start_time: timestamp(e.started_at),
        end_time: e.finished_at.map(timestamp),
        status: e.status.clone(),
        trigger: e.trigger.clone(),
        dry_run: e.dry_run,
    }
}

/// `GET /retentions/{id}/executions`: newest first, paged.
pub(super) async fn executions(
    Path(raw): Path<String>,
    query: Query,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    policy_project(&caller.directory, &caller.principal, &raw)?;
    let id = numeric_id(&raw, "the retention id")?;
    let executions = caller.registry().retention_executions(id).await?;
    let items: Vec<ExecutionJson> = executions.iter().map(execution_json).collect();
    pagination::respond(items, &format!("/retentions/{id}/executions"), &query)
}

async fn execution_of(
    caller: &Caller<SignedIn>,
    raw: &str,
    raw_execution: &str,
) -> Result<RetentionExecution, ApiError> {
    policy_project(&caller.directory, &caller.principal, raw)?;
    let id = numeric_id(raw, "the retention id")?;
    let execution = numeric_id(raw_execution, "the execution id")?;
    caller
        .registry()
        .retention_execution(id, execution)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("retention policy {id} has no execution {execution}")))
}

/// `PATCH /retentions/{id}/executions/{eid}` (`{"action": "stop"}`): the run ends before its next
/// repository. Stopping an ended execution changes nothing.
pub(super) async fn operate(
    Path((raw, raw_execution)): Path<(String, String)>,
    Sent(caller, request): Sent<SignedIn, OperationRequest>,
) -> Result<Response, ApiError> {
    if request.action.as_deref() != Some("stop") {
        return Err(ApiError::bad_request("action should be 'stop'"));
    }
    let execution = execution_of(&caller, &raw, &raw_execution).await?;
    let ctx = RequestContext::as_principal(caller.principal.clone());
    caller
        .registry()
        .stop_retention(&ctx, execution.policy, execution.id)
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Serialize)]
struct TaskJson {
    id: u64,
    execution_id: u64,
    repository: String,
    job_id: String,
    status: String,
    status_code: u32,
    start_time: String,
    end_time: String,
    total: u64,
    retained: u64,
}

fn task_json(e: &RetentionExecution, task: &RetentionTask) -> TaskJson {
    // Tasks are recorded when they end: one starts when the one before it (or the run) ended.
    let start = (task.id.checked_sub(2))
        .and_then(|i| e.tasks.get(i as usize))
        .map_or(e.started_at, |t| t.finished_at);
    TaskJson {
        id: task.id,
        execution_id: e.id,
        repository: task.repository.to_string(),
        job_id: format!("retention-{}-{}-{}", e.policy, e.id, task.id),
        status: task.status.clone(),
        status_code: 3,
        start_time: timestamp(start),
        end_time: timestamp(task.finished_at),
        total: task.total,
        retained: task.retained,
    }
}

/// `GET /retentions/{id}/executions/{eid}/tasks`: one per repository, newest first, paged.
pub(super) async fn tasks(
    Path((raw, raw_execution)): Path<(String, String)>,
    query: Query,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let execution = execution_of(&caller, &raw, &raw_execution).await?;
    let items: Vec<TaskJson> = (execution.tasks.iter().rev())
        .map(|t| task_json(&execution, t))
        .collect();
    pagination::respond(
        items,
        &format!(
            "/retentions/{}/executions/{}/tasks",
            execution.policy, execution.id
        ),
        &query,
    )
}

/// `GET /retentions/{id}/executions/{eid}/tasks/{tid}`: Harbor's task log, its table of verdicts.
pub(super) async fn task_log(
    Path((raw, raw_execution, raw_task)): Path<(String, String, String)>,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let execution = execution_of(&caller, &raw, &raw_execution).await?;
    let id = numeric_id(&raw_task, "the task id")?;
    let task = (execution.tasks.iter().find(|t| t.id == id)).ok_or_else(|| {
        ApiError::not_found(format!(
            "execution {} of retention policy {} has no task {id}",
            execution.id, execution.policy
        ))
    })?;
    let body = log_text(&execution, task);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// Harbor's job log: the run's header lines, then a table of each artifact's verdict.
fn log_text(execution: &RetentionExecution, task: &RetentionTask) -> String {
    let at = timestamp(task.finished_at);
    let mut out = format!(
        "{at} [INFO] Run retention process.\n Repository: {} \n Rule Algorithm: {ALGORITHM} \n Dry Run: {}\n\
         {at} [INFO] Load {} candidates from repository {}\n",
        task.repository, execution.dry_run, task.total, task.repository
    );
    let header = [
        "Digest",
        "Tag",
        "Kind",
        "Labels",
        "PushedTime",
        "PulledTime",
        "CreatedTime",
        "Retention",
    ];
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(String::new, |t| t.format("%Y/%m/%d %H:%M:%S").to_string())
    };
    let rows: Vec<[String; 8]> = (task.rows.iter())
        .map(|r: &RetentionRow| {
            [
                r.digest.to_string(),
                r.tags.join(","),
                "image".to_string(),
                String::new(),
                time(Some(r.pushed)),
                time(r.pulled),
                time(Some(r.pushed)),
                r.outcome.clone(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|\n", padded.join("|"))
    };
    out.push_str(&line(header.iter().map(|h| h.to_string()).collect()));
    out.push_str(&format!(
        "|{}|\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    for row in rows {
        out.push_str(&line(row.to_vec()));
    }
    if task.rows_omitted > 0 {
        out.push_str(&format!(
            "{at} [INFO] {} more artifacts were retained and are not listed\n",
            task.rows_omitted
        ));
    }
    if let Some(error) = &task.error {
        out.push_str(&format!("{at} [ERROR] {error}\n"));
    }
    out
}
