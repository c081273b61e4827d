//! Harbor's registry endpoints (`/registries`, swagger tag `registry`) and replication adapters
//! (`/replication/adapters`), system admins only: the endpoints replication copies from and to.
//! An endpoint is added or changed only once it answers with its credential (Harbor: "the
//! registry is unhealthy", 400); its secret is sealed before it is recorded and answered as
//! `*****`, as Harbor does. `status` is a live health check (at most `PING_TIMEOUT`, all of a
//! list's endpoints at once).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::app::{CredentialDraft, Health, RegistryDraft, RequestContext, Secret};
use crate::domain::access::RegistryEntry;
use crate::domain::replication::RegistryKind;

use super::caller::{Caller, Sent, SysAdmin};
use super::request::{numeric_id, FromQuery, Params, Query};
use super::{created, ok, pagination, timestamp, ApiError};

/// The only credential type Berth signs in with.
const BASIC: &str = "basic";
/// What Harbor answers in place of a secret.
const MASKED: &str = "*****";

/// Harbor's `RegistryCredential`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CredentialJson {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_secret: Option<String>,
}

/// Harbor's `Registry`, as sent to `POST /registries` and as answered.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct RegistryJson {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    insecure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential: Option<CredentialJson>,
    /// Answered only: `healthy` or `unhealthy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update_time: Option<String>,
}

/// Harbor's `RegistryUpdate` (`PUT /registries/{id}`): what is sent changes, the rest stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistryUpdateJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    credential_type: Option<String>,
    #[serde(default)]
    access_key: Option<String>,
    #[serde(default)]
    access_secret: Option<String>,
    #[serde(default)]
    insecure: Option<bool>,
    #[serde(default)]
    ca_certificate: Option<String>,
}

/// Harbor's `RegistryPing`: an endpoint by id (its recorded settings, with any credential sent
/// instead of its own) or as described.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistryPingJson {
    #[serde(default)]
    id: Option<i64>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    credential_type: Option<String>,
    #[serde(default)]
    access_key: Option<String>,
    #[serde(default)]
    access_secret: Option<String>,
    #[serde(default)]
    insecure: Option<bool>,
    #[serde(default)]
    ca_certificate: Option<String>,
}

pub(super) fn to_json(entry: &RegistryEntry, health: Option<&Health>) -> RegistryJson {
    let spec = &entry.spec;
    RegistryJson {
        id: i64::try_from(spec.id).ok(),
        name: Some(spec.name.clone()),
        description: Some(spec.description.clone()),
        kind: Some(spec.kind.as_str().to_string()),
        url: Some(spec.url.clone()),
        insecure: Some(spec.insecure),
        ca_certificate: spec.ca_certificate.clone(),
        credential: (spec.credential.as_ref()).map(|c| CredentialJson {
            kind: Some(BASIC.to_string()),
            access_key: Some(c.access_key.clone()),
            access_secret: (!c.sealed_secret.is_empty()).then(|| MASKED.to_string()),
        }),
        status: health.map(|h| h.as_str().to_string()),
        creation_time: Some(timestamp(entry.created_at)),
        update_time: Some(timestamp(entry.updated_at)),
    }
}

fn kind_of(name: Option<&str>) -> Result<RegistryKind, ApiError> {
    let name = name.ok_or_else(|| ApiError::bad_request("type cannot be empty"))?;
    RegistryKind::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn check_credential_type(kind: Option<&str>) -> Result<(), ApiError> {
    match kind {
        None | Some("") | Some(BASIC) => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "credential type {other:?} is not supported: only \"{BASIC}\""
        ))),
    }
}

fn entry_of<'d>(caller: &'d Caller<SysAdmin>, raw: &str) -> Result<&'d RegistryEntry, ApiError> {
    let id = numeric_id(raw, "the registry id")?;
    (caller.directory.registry(id)).ok_or_else(|| ApiError::not_found(format!("registry {id} not found")))
}

fn context(caller: &Caller<SysAdmin>) -> RequestContext {
    RequestContext::as_principal(caller.principal.clone())
}

/// `q` terms and the `name` parameter (fuzzy, as Harbor keeps it for compatibility).
pub(super) struct RegistryFilter {
    name: Option<String>,
    exact_name: Option<String>,
    kind: Option<String>,
}

impl FromQuery for RegistryFilter {
    fn from_query(query: &Query) -> Result<RegistryFilter, ApiError> {
        let mut filter = RegistryFilter {
            name: query.get("name").map(str::to_string),
            exact_name: None,
            kind: None,
        };
        for term in query.terms() {
            let (key, value) = term?;
            match key {
                "name" => match value.strip_prefix('~') {
                    Some(part) => filter.name = Some(part.to_string()),
                    None => filter.exact_name = Some(value.to_string()),
                },
                "type" => filter.kind = Some(value.to_string()),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "registries cannot be filtered by {key:?}: only name and type"
                    )))
                }
            }
        }
        Ok(filter)
    }
}

impl RegistryFilter {
    fn admits(&self, entry: &RegistryEntry) -> bool {
        let spec = &entry.spec;
        (self.name.as_ref()).is_none_or(|part| spec.name.to_lowercase().contains(&part.to_lowercase()))
            && (self.exact_name.as_ref()).is_none_or(|name| &spec.name == name)
            && (self.kind.as_ref()).is_none_or(|kind| spec.kind.as_str() == kind)
    }
}

/// `GET /registries`, with each endpoint's health checked now.
pub(super) async fn list(
    Params(query, filter): Params<RegistryFilter>,
    caller: Caller<SysAdmin>,
) -> Result<Response, ApiError> {
    let entries: Vec<&RegistryEntry> = caller
        .directory
        .registries()
        .filter(|e| filter.admits(e))
        .collect();
    let registry = caller.registry();
    let health = join_all(entries.iter().map(|e| registry.registry_health(e))).await;
    let items: Vec<RegistryJson> = (entries.iter().zip(&health))
        .map(|(entry, health)| to_json(entry, Some(health)))
        .collect();
    pagination::respond(items, "/registries", &query)
}

/// `GET /registries/{id}`.
pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let entry = entry_of(&caller, &raw)?;
    let health = caller.registry().registry_health(entry).await;
    ok(&to_json(entry, Some(&health)))
}

/// `POST /registries`: 201 with its `Location`.
pub(super) async fn create(
    Sent(caller, request): Sent<SysAdmin, RegistryJson>,
) -> Result<Response, ApiError> {
    let credential = match request.credential {
        None => None,
        Some(c) => {
            check_credential_type(c.kind.as_deref())?;
            Some(CredentialDraft {
                access_key: c.access_key.unwrap_or_default(),
                secret: Secret::Plain(c.access_secret.unwrap_or_default()),
            })
        }
    };
    let draft = RegistryDraft {
        name: request.name.unwrap_or_default(),
        description: request.description.unwrap_or_default(),
        kind: kind_of(request.kind.as_deref())?,
        url: request.url.unwrap_or_default(),
        insecure: request.insecure.unwrap_or(false),
        ca_certificate: request.ca_certificate,
        credential,
    };
    let id = caller.registry().add_registry(&context(&caller), draft).await?;
    created(&format!("/registries/{id}"))
}

/// `PUT /registries/{id}`: the fields sent change. A new URL without a new secret drops the
/// recorded secret (as Harbor does: a password is never sent to a host it was not given for).
pub(super) async fn update(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SysAdmin, RegistryUpdateJson>,
) -> Result<Response, ApiError> {
    let entry = entry_of(&caller, &raw)?;
    check_credential_type(request.credential_type.as_deref())?;
    let id = entry.spec.id;
    let mut draft = RegistryDraft::of(entry);
    let moved = request.url.as_ref().is_some_and(|url| {
        crate::domain::replication::normalize_url(url).map_or(true, |url| url != entry.spec.url)
    });
    if let Some(name) = request.name {
        draft.name = name;
    }
    if let Some(description) = request.description {
        draft.description = description;
    }
    if let Some(url) = request.url {
        draft.url = url;
    }
    if let Some(insecure) = request.insecure {
        draft.insecure = insecure;
    }
    if let Some(pem) = request.ca_certificate {
        draft.ca_certificate = Some(pem);
    }
    if request.access_key.is_some() || request.access_secret.is_some() || moved {
        let current = draft.credential.take().unwrap_or(CredentialDraft {
            access_key: String::new(),
            secret: Secret::Plain(String::new()),
        });
        let secret = match request.access_secret {
            Some(secret) => Secret::Plain(secret),
            None if moved => Secret::Plain(String::new()),
            None => current.secret,
        };
        draft.credential = Some(CredentialDraft {
            access_key: request.access_key.unwrap_or(current.access_key),
            secret,
        });
    }
    caller
        .registry()
        .change_registry(&context(&caller), id, draft)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /registries/{id}`.
pub(super) async fn delete(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let id = entry_of(&caller, &raw)?.spec.id;
    caller.registry().delete_registry(&context(&caller), id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /registries/ping`: 200 when the endpoint answers with its credential, else 400 with why.
/// An endpoint named by id keeps its recorded URL and certificate settings (Harbor: the saved
/// credential is never sent elsewhere); a credential sent replaces its own.
pub(super) async fn ping(
    Sent(caller, request): Sent<SysAdmin, RegistryPingJson>,
) -> Result<Response, ApiError> {
    check_credential_type(request.credential_type.as_deref())?;
    let mut draft = match request.id {
        Some(id) => RegistryDraft::of(entry_of(&caller, &id.to_string())?),
        None => RegistryDraft {
            name: String::new(),
            description: String::new(),
            kind: kind_of(request.kind.as_deref())?,
            url: (request.url.clone())
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| ApiError::bad_request("type or url cannot be empty"))?,
            insecure: request.insecure.unwrap_or(false),
            ca_certificate: request.ca_certificate.clone(),
            credential: None,
        },
    };
    if request.id.is_some() {
        if let Some(kind) = request.kind.as_deref() {
            draft.kind = kind_of(Some(kind))?;
        }
    }
    if request.access_key.is_some() || request.access_secret.is_some() {
        let current = draft.credential.take();
        let access_key = (request.access_key)
            .or_else(|| current.as_ref().map(|c| c.access_key.clone()))
            .unwrap_or_default();
        let secret = match request.access_secret {
            Some(secret) => Secret::Plain(secret),
            None => current.map_or(Secret::Plain(String::new()), |c| c.secret),
        };
        draft.credential = Some(CredentialDraft { access_key, secret });
    }
    match caller.registry().draft_health(&draft).await? {
        Health::Healthy => Ok(StatusCode::OK.into_response()),
        Health::Unhealthy(why) => Err(ApiError::bad_request(format!("the registry is unhealthy: {why}"))),
    }
}

/// Harbor's `RegistryInfo`.
#[derive(Debug, Serialize)]
struct InfoJson {
    #[serde(rename = "type")]
    kind: &'static str,
    description: &'static str,
    supported_resource_filters: Vec<FilterStyleJson>,
    supported_triggers: Vec<&'static str>,
    supported_copy_by_chunk: bool,
}

#[derive(Debug, Serialize)]
struct FilterStyleJson {
    #[serde(rename = "type")]
    kind: &'static str,
    style: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<&'static str>,
}

/// `GET /registries/{id}/info`: what replication can do with the endpoint.
pub(super) async fn info(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let entry = entry_of(&caller, &raw)?;
    let text = |kind: &'static str| FilterStyleJson {
        kind,
        style: "input",
        values: vec![],
    };
    let description = match entry.spec.kind {
        RegistryKind::Harbor => {
            "Berth or Harbor: repositories listed through /api/v2.0, artifacts copied over /v2"
        }
        RegistryKind::DockerRegistry => {
            "A registry of the OCI distribution API: repositories from /v2/_catalog, tags from tag lists"
        }
    };
    ok(&InfoJson {
        kind: entry.spec.kind.as_str(),
        description,
        supported_resource_filters: vec![
            text("name"),
            text("tag"),
            FilterStyleJson {
                kind: "resource",
                style: "radio",
                values: vec!["image", "artifact"],
            },
        ],
        supported_triggers: vec!["manual", "scheduled", "event_based"],
        supported_copy_by_chunk: true,
    })
}

/// `GET /replication/adapters`: the registry types Berth replicates with.
pub(super) async fn adapters(_caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let kinds: Vec<&str> = RegistryKind::ALL.iter().map(|k| k.as_str()).collect();
    ok(&kinds)
}
