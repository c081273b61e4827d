//! The management API, Harbor v2.0's shapes (Harbor `api/v2.0/swagger.yaml`): projects, members,
//! robot accounts, users, quotas, immutable tag rules, retention, garbage collection, replication's
//! registries, artifacts and their tags, and audit logs,
//! plus the OpenAPI document describing them.
//!
//! Routes are relative (`/projects`); the host nests the router under [`API_BASE`]. Every route is
//! one row of [`routes`], which both builds the router and feeds the test that checks the OpenAPI
//! document covers it. Callers authenticate with Basic credentials (or none); every error has one
//! body, Harbor's `{"errors":[{"code","message"}]}` ([`error`]).

mod artifacts;
mod audit;
mod caller;
mod content_trust;
mod error;
mod gc;
mod health;
mod immutability;
mod members;
mod openapi;
mod pagination;
mod projects;
mod quotas;
mod registries;
mod replication_executions;
mod replication_policies;
mod request;
mod retention;
mod robots;
mod subscriptions;
mod users;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use serde::Serialize;

use crate::app::Registry;
use crate::oci::AuthConfig;

pub use error::ApiError;

/// Where hosts mount the router; `Location` and `Link` headers name paths below it.
pub const API_BASE: &str = "/api/v2.0";

/// What every handler receives.
#[derive(Clone)]
pub(crate) struct Api {
    registry: Registry,
    auth: Arc<AuthConfig>,
    /// Whether a garbage collection run may go on after the request that started it answered.
    background_jobs: bool,
}

/// One row of the route table: a method on a path (axum's and OpenAPI's `{param}` syntax alike).
pub(crate) struct Route {
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the OpenAPI coverage test"))]
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<Api>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: axum::handler::Handler<T, Api>,
    T: 'static,
{
    // Every method in the table is a standard one, which `MethodFilter` knows.
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// The route table: every operation the management API serves.
pub(crate) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/projects", projects::list),
        route(M::HEAD, "/projects", projects::head),
        route(M::POST, "/projects", projects::create),
        route(M::GET, "/projects/{project_name_or_id}", projects::get),
        route(M::PUT, "/projects/{project_name_or_id}", projects::update),
        route(M::DELETE, "/projects/{project_name_or_id}", projects::delete),
        route(
            M::GET,
            "/projects/{project_name_or_id}/summary",
            projects::summary,
        ),
        route(
            M::GET,
            "/projects/{project_name_or_id}/metadatas",
            projects::metadata_list,
        ),
        route(
            M::PUT,
            "/projects/{project_name_or_id}/metadatas",
            projects::metadata_update,
        ),
        route(
            M::POST,
            "/projects/{project_name_or_id}/metadatas",
            projects::metadata_update,
        ),
        route(
            M::GET,
            "/projects/{project_name_or_id}/metadatas/{meta_name}",
            projects::metadata_get,
        ),
        route(
            M::PUT,
            "/projects/{project_name_or_id}/metadatas/{meta_name}",
            projects::metadata_put_one,
        ),
        route(
            M::GET,
            "/projects/{project_name_or_id}/immutabletagrules",
            immutability::list,
        ),
        route(
            M::POST,
            "/projects/{project_name_or_id}/immutabletagrules",
            immutability::create,
        ),
        route(
            M::PUT,
            "/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}",
            immutability::update,
        ),
        route(
            M::DELETE,
            "/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}",
            immutability::delete,
        ),
        route(M::GET, "/registries", registries::list),
        route(M::POST, "/registries", registries::create),
        route(M::POST, "/registries/ping", registries::ping),
        route(M::GET, "/registries/{id}", registries::get),
        route(M::PUT, "/registries/{id}", registries::update),
        route(M::DELETE, "/registries/{id}", registries::delete),
        route(M::GET, "/registries/{id}/info", registries::info),
        route(M::GET, "/replication/adapters", registries::adapters),
        route(M::GET, "/replication/executions", replication_executions::list),
        route(M::POST, "/replication/executions", replication_executions::start),
        route(
            M::GET,
            "/replication/executions/{id}",
            replication_executions::get,
        ),
        route(
            M::PUT,
            "/replication/executions/{id}",
            replication_executions::stop,
        ),
        route(
            M::GET,
            "/replication/executions/{id}/tasks",
            replication_executions::tasks,
        ),
        route(
            M::GET,
            "/replication/executions/{id}/tasks/{task_id}/log",
            replication_executions::log,
        ),
        route(M::GET, "/replication/policies", replication_policies::list),
        route(M::POST, "/replication/policies", replication_policies::create),
        route(M::GET, "/replication/policies/{id}", replication_policies::get),
        route(M::PUT, "/replication/policies/{id}", replication_policies::update),
        route(
            M::DELETE,
            "/replication/policies/{id}",
            replication_policies::delete,
        ),
        route(M::GET, "/retentions/metadatas", retention::metadatas),
        route(M::POST, "/retentions", retention::create),
        route(M::GET, "/retentions/{id}", retention::get),
        route(M::PUT, "/retentions/{id}", retention::update),
        route(M::DELETE, "/retentions/{id}", retention::delete),
        route(M::POST, "/retentions/{id}/executions", retention::execute),
        route(M::GET, "/retentions/{id}/executions", retention::executions),
        route(M::PATCH, "/retentions/{id}/executions/{eid}", retention::operate),
        route(
            M::GET,
            "/retentions/{id}/executions/{eid}/tasks",
            retention::tasks,
        ),
        route(
            M::GET,
            "/retentions/{id}/executions/{eid}/tasks/{tid}",
            retention::task_log,
        ),
        route(M::GET, "/projects/{project_name_or_id}/members", members::list),
        route(M::POST, "/projects/{project_name_or_id}/members", members::create),
        route(
            M::GET,
            "/projects/{project_name_or_id}/members/{mid}",
            members::get,
        ),
        route(
            M::PUT,
            "/projects/{project_name_or_id}/members/{mid}",
            members::update,
        ),
        route(
            M::DELETE,
            "/projects/{project_name_or_id}/members/{mid}",
            members::delete,
        ),
        route(
            M::GET,
            "/projects/{project_name_or_id}/robots",
            robots::list_of_project,
        ),
        route(M::GET, "/robots", robots::list),
        route(M::POST, "/robots", robots::create),
        route(M::GET, "/robots/{robot_id}", robots::get),
        route(M::PUT, "/robots/{robot_id}", robots::update),
        route(M::PATCH, "/robots/{robot_id}", robots::refresh),
        route(M::DELETE, "/robots/{robot_id}", robots::delete),
        route(M::GET, "/users", users::list),
        route(M::POST, "/users", users::create),
        route(M::GET, "/users/current", users::current),
        route(M::GET, "/users/{user_id}", users::get),
        route(M::DELETE, "/users/{user_id}", users::delete),
        route(M::PUT, "/users/{user_id}/password", users::change_password),
        route(M::PUT, "/users/{user_id}/sysadmin", users::set_sysadmin),
        route(M::GET, "/quotas", quotas::list),
        route(M::GET, "/quotas/{id}", quotas::get),
        route(M::PUT, "/quotas/{id}", quotas::update),
        route(
            M::GET,
            "/projects/{project_name_or_id}/content-trust",
            content_trust::get,
        ),
        route(
            M::PUT,
            "/projects/{project_name_or_id}/content-trust",
            content_trust::put,
        ),
        route(
            M::GET,
            "/projects/{project_name}/repositories/{repository_name}/artifacts",
            artifacts::list,
        ),
        route(
            M::GET,
            "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}",
            artifacts::get,
        ),
        route(
            M::DELETE,
            "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}",
            artifacts::delete,
        ),
        route(
            M::GET,
            "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/accessories",
            artifacts::accessories,
        ),
        route(
            M::GET,
            "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/tags",
            artifacts::tags,
        ),
        route(
            M::DELETE,
            "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/tags/{tag_name}",
            artifacts::delete_tag,
        ),
        route(M::GET, "/audit-logs", audit::list),
        route(M::GET, "/subscriptions", subscriptions::list),
        route(M::GET, "/system/gc", gc::list),
        route(M::GET, "/system/gc/schedule", gc::schedule),
        route(M::POST, "/system/gc/schedule", gc::create_schedule),
        route(M::PUT, "/system/gc/schedule", gc::update_schedule),
        route(M::GET, "/system/gc/{gc_id}", gc::get),
        route(M::PUT, "/system/gc/{gc_id}", gc::stop),
        route(M::GET, "/system/gc/{gc_id}/log", gc::log),
        route(M::GET, "/ping", health::ping),
        route(M::GET, "/health", health::health),
        route(M::GET, "/openapi.json", openapi::json),
        route(M::GET, "/openapi.yaml", openapi::yaml),
    ]
}

/// The management API with its state applied; mount it under [`API_BASE`]. `background_jobs`:
/// whether the host keeps running after an answer (see `oci::Host`).
pub fn router(registry: Registry, auth: Arc<AuthConfig>, background_jobs: bool) -> Router {
    let mut router = Router::new();
    for row in routes() {
        router = router.route(row.path, row.handler);
    }
    router
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::map_response(error::uniform))
        .with_state(Api {
            registry,
            auth,
            background_jobs,
        })
}

/// A JSON response.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `200` with a JSON body.
fn ok<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    json(StatusCode::OK, value)
}

/// `201 Created` with `Location: /api/v2.0<path>` and no body (Harbor's answer to a POST).
fn created(path: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(&format!("{API_BASE}{path}"))
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// Harbor's timestamp format (RFC 3339, milliseconds, `Z`).
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Entry points for the fuzz targets (`fuzz/`, docs/fuzzing.md): the API's private readers of a
/// client's bytes, reached without a request. Not an interface: nothing else calls them.
#[doc(hidden)]
pub mod fuzzing {
    use bytes::Bytes;

    use super::request::{body, check_password, numeric_id, FromQuery, Query};

    /// Reads `bytes` as every JSON body the API takes, as its handlers do; how many accepted it.
    pub fn bodies(bytes: &[u8]) -> usize {
        let bytes = Bytes::copy_from_slice(bytes);
        [
            body::<super::projects::ProjectReq>(&bytes).is_ok(),
            body::<super::members::MemberReq>(&bytes).is_ok(),
            body::<super::members::RoleRequest>(&bytes).is_ok(),
            body::<super::robots::RobotCreate>(&bytes).is_ok(),
            body::<super::robots::RobotUpdate>(&bytes).is_ok(),
            body::<super::robots::RobotSec>(&bytes).is_ok(),
            body::<super::users::UserCreationReq>(&bytes).is_ok(),
            body::<super::users::PasswordReq>(&bytes).is_ok(),
            body::<super::users::SysAdminFlag>(&bytes).is_ok(),
            body::<super::quotas::QuotaUpdateReq>(&bytes).is_ok(),
            body::<super::content_trust::ContentTrustJson>(&bytes).is_ok(),
            body::<super::immutability::RuleJson>(&bytes).is_ok(),
            body::<super::gc::ScheduleRequest>(&bytes).is_ok(),
            body::<super::retention::PolicyJson>(&bytes).is_ok(),
            body::<super::retention::ExecutionRequest>(&bytes).is_ok(),
        ]
        .into_iter()
        .filter(|ok| *ok)
        .count()
    }

    /// Checks `password` against the API's password rule.
    pub fn password(password: &str) -> bool {
        check_password(password).is_ok()
    }

    /// Reads `raw` as a listing's query string: paging (`page`, `page_size`, answered over
    /// `items` items with its `Link` header), the `q` filters, a flag, an id.
    pub fn query(raw: &str, items: usize) -> bool {
        let Ok(query) = Query::parse(Some(raw)) else {
            return false;
        };
        let paging = super::pagination::Paging::parse(&query).is_ok();
        let _ = super::pagination::respond(vec![0u8; items], "/projects", &query);
        let _ = super::robots::RobotFilter::from_query(&query);
        let _ = super::audit::Filter::from_query(&query);
        let _ = query.flag("with_detail");
        let _ = numeric_id(query.get("id").unwrap_or_default(), "the id");
        paging
    }
}
