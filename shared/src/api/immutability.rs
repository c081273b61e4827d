//! Harbor's immutable tag rules (`/projects/{p}/immutabletagrules`, swagger `immutable` tag): a
//! project's maintainers and admins (and system admins) list, add, change and delete them; at most
//! 15 per project. Rules are kept in the access directory (`ImmutableTagRulesChanged`) and enforced
//! wherever a tag moves or is deleted (`app::immutability`, docs/lifecycle.md).

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::access::{AccessCommand, Directory, Principal, Project, Role};
use crate::domain::lifecycle::immutability::{ImmutableRule, RuleSpec, SelectorSpec};
use crate::domain::lifecycle::selector::DOUBLESTAR;

use super::caller::{Caller, Sent, SignedIn};
use super::projects::visible;
use super::request::{numeric_id, Query};
use super::{created, pagination, ApiError};

/// Harbor's only action and template for these rules.
const ACTION: &str = "immutable";
const TEMPLATE: &str = "immutable_template";
/// The only scope Harbor's rules have.
const REPOSITORY_SCOPE: &str = "repository";

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SelectorJson {
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) decoration: Option<String>,
    #[serde(default)]
    pub(super) pattern: Option<String>,
    /// Harbor's; immutable rules ignore it, retention's tag selectors read `untagged` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) extras: Option<String>,
}

/// Harbor's rule body (its `ImmutableRule` and `RetentionRule` share it), as sent and as answered.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RuleJson {
    #[serde(default)]
    pub(super) id: Option<i64>,
    #[serde(default)]
    pub(super) priority: Option<i64>,
    #[serde(default)]
    pub(super) disabled: Option<bool>,
    #[serde(default)]
    pub(super) action: Option<String>,
    #[serde(default)]
    pub(super) template: Option<String>,
    /// Immutable rules take none (accepted and ignored); retention's `{<template>: n}`.
    #[serde(default)]
    pub(super) params: Option<Map<String, Value>>,
    #[serde(default)]
    pub(super) tag_selectors: Option<Vec<SelectorJson>>,
    #[serde(default)]
    pub(super) scope_selectors: Option<BTreeMap<String, Vec<SelectorJson>>>,
}

fn selector_json(spec: SelectorSpec) -> SelectorJson {
    SelectorJson {
        kind: Some(spec.kind),
        decoration: Some(spec.decoration),
        pattern: Some(spec.pattern),
        extras: None,
    }
}

fn to_json(rule: &ImmutableRule) -> RuleJson {
    let spec = rule.spec();
    RuleJson {
        id: i64::try_from(spec.id).ok(),
        priority: Some(spec.priority),
        disabled: Some(spec.disabled),
        action: Some(ACTION.to_string()),
        template: Some(TEMPLATE.to_string()),
        params: Some(Map::new()),
        tag_selectors: Some(spec.tag_selectors.into_iter().map(selector_json).collect()),
        scope_selectors: Some(BTreeMap::from([(
            REPOSITORY_SCOPE.to_string(),
            spec.repository_selectors.into_iter().map(selector_json).collect(),
        )])),
    }
}

fn selector_spec(json: SelectorJson, field: &str) -> Result<SelectorSpec, ApiError> {
    let required = |value: Option<String>, name: &str| {
        value.ok_or_else(|| ApiError::bad_request(format!("{field}: every selector needs a {name}")))
    };
    Ok(SelectorSpec {
        kind: json.kind.unwrap_or_else(|| DOUBLESTAR.to_string()),
        decoration: required(json.decoration, "decoration")?,
        pattern: required(json.pattern, "pattern")?,
    })
}

/// The rule a request describes (its id `id`), checked as far as the request alone allows; the
/// directory checks the selectors and the project's limit.
fn spec_of(request: RuleJson, id: u64) -> Result<RuleSpec, ApiError> {
    if let Some(action) = request.action.filter(|a| a != ACTION) {
        return Err(ApiError::bad_request(format!(
            "action {action:?} is not supported: only \"{ACTION}\""
        )));
    }
    if let Some(template) = request.template.filter(|t| t != TEMPLATE) {
        return Err(ApiError::bad_request(format!(
            "template {template:?} is not supported: only \"{TEMPLATE}\""
        )));
    }
    let mut scopes = request.scope_selectors.unwrap_or_default();
    if let Some(other) = scopes.keys().find(|k| *k != REPOSITORY_SCOPE) {
        return Err(ApiError::bad_request(format!(
            "scope_selectors.{other} is not supported: only \"{REPOSITORY_SCOPE}\""
        )));
    }
    let repository = scopes.remove(REPOSITORY_SCOPE).unwrap_or_default();
    let tags = request.tag_selectors.unwrap_or_default();
    Ok(RuleSpec {
        id,
        priority: request.priority.unwrap_or(0),
        disabled: request.disabled.unwrap_or(false),
        tag_selectors: (tags.into_iter())
            .map(|s| selector_spec(s, "tag_selectors"))
            .collect::<Result<_, _>>()?,
        repository_selectors: (repository.into_iter())
            .map(|s| selector_spec(s, "scope_selectors.repository"))
            .collect::<Result<_, _>>()?,
    })
}

/// The project `key` names, if `principal` may manage its immutable tag rules: its maintainers and
/// admins, and system admins (Harbor's `immutable-tag` permissions). 404 if the caller cannot see
/// the project, 403 if it can.
fn keeper<'d>(directory: &'d Directory, principal: &Principal, key: &str) -> Result<&'d Project, ApiError> {
    let project = visible(directory, principal, key)?;
    let role = directory.role(principal, &project.name);
    if directory.is_admin(principal) || matches!(role, Some(Role::ProjectAdmin | Role::Maintainer)) {
        Ok(project)
    } else {
        Err(ApiError::forbidden(format!(
            "only maintainers and admins of project {} may see or change its immutable tag rules",
            project.name
        )))
    }
}

fn rule_of<'p>(project: &'p Project, raw: &str) -> Result<&'p ImmutableRule, ApiError> {
    let id = numeric_id(raw, "the immutable rule id")?;
    (project.immutable_rules.iter().find(|r| r.id == id)).ok_or_else(|| {
        ApiError::not_found(format!("project {} has no immutable tag rule {id}", project.name))
    })
}

/// `GET /projects/{p}/immutabletagrules`: the rules in the order they were added, paged.
pub(super) async fn list(
    Path(key): Path<String>,
    query: Query,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let project = keeper(&caller.directory, &caller.principal, &key)?;
    let rules: Vec<RuleJson> = project.immutable_rules.iter().map(to_json).collect();
    pagination::respond(rules, &format!("/projects/{key}/immutabletagrules"), &query)
}

/// `POST /projects/{p}/immutabletagrules`: 201 with the new rule's `Location`.
pub(super) async fn create(
    Path(key): Path<String>,
    Sent(caller, request): Sent<SignedIn, RuleJson>,
) -> Result<Response, ApiError> {
    let project = keeper(&caller.directory, &caller.principal, &key)?;
    let before: Vec<u64> = (caller.reread_directory().await?.project(&project.name))
        .map(|p| p.immutable_rules.iter().map(|r| r.id).collect())
        .unwrap_or_default();
    let command = AccessCommand::AddImmutableRule {
        project: project.name.clone(),
        rule: spec_of(request, 0)?,
    };
    caller.change(command).await?;
    let directory = caller.reread_directory().await?;
    let id = (directory.project(&project.name))
        .and_then(|p| {
            p.immutable_rules
                .iter()
                .map(|r| r.id)
                .find(|id| !before.contains(id))
        })
        .ok_or_else(|| ApiError::internal("the added immutable tag rule is missing"))?;
    created(&format!("/projects/{key}/immutabletagrules/{id}"))
}

/// `PUT /projects/{p}/immutabletagrules/{id}`: replaces the rule (Harbor's UI enables and disables
/// rules this way). A body `id` other than the path's is refused, as Harbor does.
pub(super) async fn update(
    Path((key, raw)): Path<(String, String)>,
    Sent(caller, request): Sent<SignedIn, RuleJson>,
) -> Result<Response, ApiError> {
    let project = keeper(&caller.directory, &caller.principal, &key)?;
    let id = rule_of(project, &raw)?.id;
    if let Some(sent) = request
        .id
        .filter(|sent| *sent != 0 && u64::try_from(*sent).ok() != Some(id))
    {
        return Err(ApiError::bad_request(format!(
            "the body's id {sent} is not the path's immutable rule id {id}"
        )));
    }
    let command = AccessCommand::UpdateImmutableRule {
        project: project.name.clone(),
        rule: spec_of(request, id)?,
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /projects/{p}/immutabletagrules/{id}`.
pub(super) async fn delete(
    Path((key, raw)): Path<(String, String)>,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let project = keeper(&caller.directory, &caller.principal, &key)?;
    let id = rule_of(project, &raw)?.id;
    let command = AccessCommand::DeleteImmutableRule {
        project: project.name.clone(),
        id,
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}
