//! Harbor's replication policies (`/replication/policies`, swagger tag `replication`), system
//! admins only: which artifacts go from where to where, on which trigger. One side is this
//! registry (`src_registry` or `dest_registry` left out, or id 0, as Harbor); the other names a
//! registry endpoint (`/registries`). Harbor's body, read as Harbor reads it: `deletion` or
//! `replicate_deletion`, `dest_namespace_replace_count` -1 (legacy flattening) when left out, a
//! negative `speed` as no limit. Beyond Harbor: the filters `signed` and `verified` (value `true`).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::access::{AccessCommand, ReplicationPolicyEntry};
use crate::domain::replication::{FilterSpec, PolicySpec, TriggerSpec};

use super::caller::{Caller, Sent, SysAdmin};
use super::registries::to_json as registry_json;
use super::request::{numeric_id, FromQuery, Params, Query};
use super::{created, ok, pagination, timestamp, ApiError};

/// Harbor's `ReplicationFilter`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilterJson {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decoration: Option<String>,
}

/// Harbor's `ReplicationTriggerSettings`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct TriggerSettingsJson {
    #[serde(default)]
    cron: String,
}

/// Harbor's `ReplicationTrigger`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerJson {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    trigger_settings: Option<TriggerSettingsJson>,
}

/// A registry as a policy names it: only its id is read.
#[derive(Debug, Deserialize)]
pub(super) struct RegistryRefJson {
    #[serde(default)]
    id: Option<i64>,
}

/// Harbor's `ReplicationPolicy`, as sent.
#[derive(Debug, Deserialize)]
pub(super) struct PolicyJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    src_registry: Option<RegistryRefJson>,
    #[serde(default)]
    dest_registry: Option<RegistryRefJson>,
    #[serde(default)]
    dest_namespace: Option<String>,
    #[serde(default)]
    dest_namespace_replace_count: Option<i8>,
    #[serde(default)]
    trigger: Option<TriggerJson>,
    #[serde(default)]
    filters: Option<Vec<FilterJson>>,
    #[serde(default)]
    replicate_deletion: Option<bool>,
    #[serde(default)]
    deletion: Option<bool>,
    #[serde(default, rename = "override")]
    override_existing: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    speed: Option<i32>,
    #[serde(default)]
    copy_by_chunk: Option<bool>,
    #[serde(default)]
    single_active_replication: Option<bool>,
}

fn local_registry() -> Value {
    json!({"id": 0, "name": "Local", "type": "harbor", "description": "this registry", "insecure": false, "status": "healthy"})
}

fn filter_json(filter: &FilterSpec) -> FilterJson {
    let (kind, value, decoration) = match filter {
        FilterSpec::Name { pattern, excludes } => ("name", json!(pattern), Some(*excludes)),
        FilterSpec::Tag { pattern, excludes } => ("tag", json!(pattern), Some(*excludes)),
        FilterSpec::Resource { resource } => ("resource", json!(resource), None),
        FilterSpec::Signed => ("signed", json!(true), None),
        FilterSpec::Verified => ("verified", json!(true), None),
    };
    FilterJson {
        kind: kind.to_string(),
        value,
        decoration: decoration.map(|excludes| if excludes { "excludes" } else { "matches" }.to_string()),
    }
}

fn to_json(caller: &Caller<SysAdmin>, entry: &ReplicationPolicyEntry) -> Value {
    let spec = entry.policy.spec();
    let side = |id: Option<u64>| match id {
        None => local_registry(),
        Some(id) => match caller.directory.registry(id) {
            Some(registry) => serde_json::to_value(registry_json(registry, None)).unwrap_or(Value::Null),
            None => json!({"id": id}),
        },
    };
    let (kind, cron) = match &spec.trigger {
        TriggerSpec::Manual => ("manual", String::new()),
        TriggerSpec::Scheduled { cron } => ("scheduled", cron.clone()),
        TriggerSpec::EventBased => ("event_based", String::new()),
    };
    let filters: Vec<FilterJson> = spec.filters.iter().map(filter_json).collect();
    json!({
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "src_registry": side(spec.source_registry),
        "dest_registry": side(spec.destination_registry),
        "dest_namespace": spec.destination_namespace,
        "dest_namespace_replace_count": spec.destination_namespace_replace_count,
        "trigger": {"type": kind, "trigger_settings": {"cron": cron}},
        "filters": filters,
        "replicate_deletion": spec.deletion,
        "deletion": spec.deletion,
        "override": spec.override_existing,
        "enabled": spec.enabled,
        "speed": spec.speed_kb,
        "copy_by_chunk": spec.copy_by_chunk,
        "single_active_replication": spec.single_active_replication,
        "creation_time": timestamp(entry.created_at),
        "update_time": timestamp(entry.updated_at),
    })
}

fn filter_of(json: FilterJson) -> Result<FilterSpec, ApiError> {
    let excludes = match json.decoration.as_deref() {
        None | Some("") | Some("matches") => false,
        Some("excludes") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "filter decoration {other:?} is not one of \"matches\", \"excludes\""
            )))
        }
    };
    let text = |what: &str| match &json.value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::bad_request(format!(
            "the {what} filter's value must be a non-empty string"
        ))),
    };
    let flag = |what: &str| match &json.value {
        Value::Bool(true) | Value::Null => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "the {what} filter's value is true (leave the filter out to keep every artifact)"
        ))),
    };
    match json.kind.as_str() {
        "name" => Ok(FilterSpec::Name {
            pattern: text("name")?,
            excludes,
        }),
        "tag" => Ok(FilterSpec::Tag {
            pattern: text("tag")?,
            excludes,
        }),
        "resource" => Ok(FilterSpec::Resource {
            resource: text("resource")?,
        }),
        "signed" => flag("signed").map(|()| FilterSpec::Signed),
        "verified" => flag("verified").map(|()| FilterSpec::Verified),
        "label" => Err(ApiError::bad_request(
            "the label filter is not supported: Berth has no labels",
        )),
        other => Err(ApiError::bad_request(format!(
            "filter type {other:?} is not one of name, tag, resource, signed, verified"
        ))),
    }
}

fn registry_id(side: Option<RegistryRefJson>, field: &str) -> Result<Option<u64>, ApiError> {
    match side.and_then(|r| r.id) {
        None | Some(0) => Ok(None),
        Some(id) => u64::try_from(id)
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{field}.id {id} is not a registry id"))),
    }
}

/// The spec a request describes (id `id`); the directory checks the rest.
fn spec_of(request: PolicyJson, id: u64) -> Result<PolicySpec, ApiError> {
    let trigger = match request.trigger {
        None => TriggerSpec::Manual,
        Some(trigger) => match trigger.kind.as_deref().unwrap_or("manual") {
            "manual" => TriggerSpec::Manual,
            "event_based" => TriggerSpec::EventBased,
            "scheduled" => TriggerSpec::Scheduled {
                cron: (trigger.trigger_settings)
                    .map(|s| s.cron)
                    .filter(|c| !c.trim().is_empty())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "the cron string cannot be empty when the trigger type is scheduled",
                        )
                    })?,
            },
            other => return Err(ApiError::bad_request(format!("invalid trigger type {other:?}"))),
        },
    };
    let single = request.single_active_replication.unwrap_or(false);
    if single && trigger == TriggerSpec::EventBased {
        return Err(ApiError::bad_request(
            "single active replication is not allowed for event_based triggers",
        ));
    }
    Ok(PolicySpec {
        id,
        name: request.name.unwrap_or_default().trim().to_string(),
        description: request.description.unwrap_or_default(),
        source_registry: registry_id(request.src_registry, "src_registry")?,
        destination_registry: registry_id(request.dest_registry, "dest_registry")?,
        destination_namespace: request.dest_namespace.unwrap_or_default(),
        destination_namespace_replace_count: request.dest_namespace_replace_count.unwrap_or(-1),
        filters: (request.filters.unwrap_or_default().into_iter())
            .map(filter_of)
            .collect::<Result<_, _>>()?,
        trigger,
        deletion: request.replicate_deletion.or(request.deletion).unwrap_or(false),
        override_existing: request.override_existing.unwrap_or(false),
        enabled: request.enabled.unwrap_or(false),
        speed_kb: request.speed.unwrap_or(0).max(0),
        copy_by_chunk: request.copy_by_chunk.unwrap_or(false),
        single_active_replication: single,
    })
}

fn entry_of<'d>(caller: &'d Caller<SysAdmin>, raw: &str) -> Result<&'d ReplicationPolicyEntry, ApiError> {
    let id = numeric_id(raw, "the replication policy id")?;
    (caller.directory.replication_policy(id))
        .ok_or_else(|| ApiError::not_found(format!("replication policy {id} not found")))
}

/// `q` terms (`name=<exact>`, `name=~<part>`) and the `name` parameter (part of the name).
pub(super) struct PolicyFilter {
    part: Option<String>,
    exact: Option<String>,
}

impl FromQuery for PolicyFilter {
    fn from_query(query: &Query) -> Result<PolicyFilter, ApiError> {
        let mut filter = PolicyFilter {
            part: query.get("name").map(str::to_string),
            exact: None,
        };
        for term in query.terms() {
            match term? {
                ("name", value) => match value.strip_prefix('~') {
                    Some(part) => filter.part = Some(part.to_string()),
                    None => filter.exact = Some(value.to_string()),
                },
                (key, _) => {
                    return Err(ApiError::bad_request(format!(
                        "replication policies cannot be filtered by {key:?}: only name"
                    )))
                }
            }
        }
        Ok(filter)
    }
}

/// `GET /replication/policies`.
pub(super) async fn list(
    Params(query, filter): Params<PolicyFilter>,
    caller: Caller<SysAdmin>,
) -> Result<Response, ApiError> {
    let items: Vec<Value> = (caller.directory.replication_policies())
        .filter(|e| {
            let name = &e.policy.spec().name;
            (filter.part.as_ref()).is_none_or(|p| name.to_lowercase().contains(&p.to_lowercase()))
                && filter.exact.as_ref().is_none_or(|x| name == x)
        })
        .map(|e| to_json(&caller, e))
        .collect();
    pagination::respond(items, "/replication/policies", &query)
}

/// `GET /replication/policies/{id}`.
pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    ok(&to_json(&caller, entry_of(&caller, &raw)?))
}

/// `POST /replication/policies`: 201 with its `Location`.
pub(super) async fn create(Sent(caller, request): Sent<SysAdmin, PolicyJson>) -> Result<Response, ApiError> {
    let command = AccessCommand::CreateReplicationPolicy {
        policy: spec_of(request, 0)?,
    };
    let ctx = crate::app::RequestContext::as_principal(caller.principal.clone());
    let recorded = caller.registry().change_access(&ctx, command).await?;
    let id = (recorded.iter())
        .find_map(|r| match &r.envelope.event {
            crate::domain::Event::ReplicationPolicyChanged { id, .. } => Some(*id),
            _ => None,
        })
        .ok_or_else(|| ApiError::internal("the added replication policy is missing"))?;
    created(&format!("/replication/policies/{id}"))
}

/// `PUT /replication/policies/{id}`: the policy is replaced by the body, as in Harbor.
pub(super) async fn update(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SysAdmin, PolicyJson>,
) -> Result<Response, ApiError> {
    let id = entry_of(&caller, &raw)?.policy.id();
    caller
        .change(AccessCommand::UpdateReplicationPolicy {
            policy: spec_of(request, id)?,
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /replication/policies/{id}` (its executions stay in the log).
pub(super) async fn delete(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let id = entry_of(&caller, &raw)?.policy.id();
    caller
        .change(AccessCommand::DeleteReplicationPolicy { id })
        .await?;
    Ok(StatusCode::OK.into_response())
}
