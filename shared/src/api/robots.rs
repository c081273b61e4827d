//! Robot accounts (Harbor robot v2, `/robots`), project level only: `robot$<project>+<name>`, with
//! repository actions pull, push and delete. Their project's admins and system admins manage them.
//! The secret is shown once, when created or refreshed; the directory keeps only its hash.

use std::collections::BTreeSet;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::hash_secret;
use crate::domain::access::{AccessCommand, Action, Directory, Principal, ProjectName, Robot, RobotName};

use super::caller::{Caller, Sent, SignedIn};
use super::projects::{managed, managed_by_name};
use super::request::{check_password, numeric_id, FromQuery, Params, Query};
use super::{created, json, ok, pagination, timestamp, ApiError};

/// The only robot level Berth has (Harbor also has `system` robots spanning projects).
const LEVEL_PROJECT: &str = "project";
/// `duration` and `expires_at` meaning "never expires".
const NEVER: i64 = -1;
const SECONDS_PER_DAY: i64 = 86_400;
/// The longest `duration`, in days (Harbor's is below 2^31; Berth's clock ends sooner, so its
/// limit is about 27,000 years).
const MAX_DURATION_DAYS: i64 = 10_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Access {
    resource: String,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Permission {
    kind: String,
    namespace: String,
    access: Vec<Access>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RobotCreate {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    disable: Option<bool>,
    #[serde(default)]
    permissions: Option<Vec<Permission>>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RobotUpdate {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    disable: Option<bool>,
    #[serde(default)]
    permissions: Option<Vec<Permission>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RobotSec {
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Debug, Serialize)]
struct RobotCreated {
    id: u64,
    name: String,
    secret: String,
    creation_time: String,
    expires_at: i64,
}

#[derive(Debug, Serialize)]
struct RobotJson {
    id: u64,
    name: String,
    description: String,
    disable: bool,
    editable: bool,
    expires_at: i64,
    duration: i64,
    level: &'static str,
    permissions: Vec<Permission>,
    creation_time: String,
    update_time: String,
}

/// What Harbor's `(resource, action)` pairs mean for Berth's three repository actions.
fn action_of(access: &Access) -> Result<Action, ApiError> {
    if access.effect.as_deref().is_some_and(|e| e != "allow") {
        return Err(ApiError::bad_request("only \"allow\" permissions are supported"));
    }
    match (access.resource.as_str(), access.action.as_str()) {
        ("repository", "pull" | "list" | "read") | ("artifact" | "tag", "list" | "read") => Ok(Action::Pull),
        ("repository", "push") | ("tag", "create") => Ok(Action::Push),
        ("repository" | "artifact" | "tag", "delete") => Ok(Action::Delete),
        (resource, action) => Err(ApiError::bad_request(format!(
            "unsupported permission {action} on {resource}: robot accounts get repository pull, push or delete"
        ))),
    }
}

/// The project the one permission names and the actions it grants there. A project-level robot
/// has exactly one permission, as in Harbor.
fn actions_of(permissions: &[Permission]) -> Result<(String, BTreeSet<Action>), ApiError> {
    let permission = match permissions {
        [one] => one,
        [] => return Err(ApiError::bad_request("permissions must name the robot's project")),
        _ => {
            return Err(ApiError::bad_request(
                "a robot account belongs to one project: give one permission",
            ))
        }
    };
    if permission.kind != LEVEL_PROJECT {
        return Err(ApiError::bad_request(format!(
            "permission kind {:?} is not supported; use \"project\"",
            permission.kind
        )));
    }
    let actions = (permission.access.iter())
        .map(action_of)
        .collect::<Result<_, _>>()?;
    Ok((permission.namespace.clone(), actions))
}

fn check_level(level: Option<&str>) -> Result<(), ApiError> {
    match level {
        None | Some(LEVEL_PROJECT) => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "robot level {other:?} is not supported; use \"project\""
        ))),
    }
}

/// The expiry of a robot `days` after `base` (Harbor: after its creation); `-1` never.
fn expiry(base: DateTime<Utc>, days: Option<i64>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match days {
        None | Some(NEVER) => Ok(None),
        Some(d) if (1..=MAX_DURATION_DAYS).contains(&d) => (chrono::Duration::try_days(d))
            .and_then(|d| base.checked_add_signed(d))
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("duration {d} is too long"))),
        Some(d) => Err(ApiError::bad_request(format!(
            "duration is a number of days from 1 to {MAX_DURATION_DAYS}, or -1 (never expires), not {d}"
        ))),
    }
}

fn unix(t: Option<DateTime<Utc>>) -> i64 {
    t.map_or(NEVER, |t| t.timestamp())
}

fn to_json(robot: &Robot) -> RobotJson {
    let duration = robot.expires_at.map_or(NEVER, |t| {
        let seconds = (t - robot.created_at).num_seconds();
        (seconds + SECONDS_PER_DAY / 2) / SECONDS_PER_DAY
    });
    let access = (robot.actions.iter())
        .map(|a| Access {
            resource: "repository".to_string(),
            action: a.as_str().to_string(),
            effect: None,
        })
        .collect();
    RobotJson {
        id: robot.id,
        name: robot.name.to_string(),
        description: robot.description.clone(),
        disable: robot.disabled,
        editable: true,
        expires_at: unix(robot.expires_at),
        duration,
        level: LEVEL_PROJECT,
        permissions: vec![Permission {
            kind: LEVEL_PROJECT.to_string(),
            namespace: robot.name.project().to_string(),
            access,
        }],
        creation_time: timestamp(robot.created_at),
        update_time: timestamp(robot.updated_at),
    }
}

/// A given secret (which must follow the password rule), or a generated one.
fn secret_or_generated(given: Option<String>) -> Result<String, ApiError> {
    match given.filter(|s| !s.is_empty()) {
        Some(secret) => {
            check_password(&secret)?;
            Ok(secret)
        }
        None => crate::auth::generate_secret().map_err(|e| ApiError::internal(&e.to_string())),
    }
}

/// The robot `raw` identifies, if `principal` manages its project (404 if it cannot see it).
fn robot_of<'d>(directory: &'d Directory, principal: &Principal, raw: &str) -> Result<&'d Robot, ApiError> {
    let id = numeric_id(raw, "the robot id")?;
    let not_found = || ApiError::not_found(format!("robot account {id} does not exist"));
    let robot = directory.robots().find(|r| r.id == id).ok_or_else(not_found)?;
    let project = robot.name.project();
    if !directory.sees(principal, &project, Utc::now()) {
        return Err(not_found());
    }
    if !directory.manages(principal, &project) {
        return Err(ApiError::forbidden(format!(
            "only admins of project {project} manage its robot accounts"
        )));
    }
    Ok(robot)
}

pub(super) async fn create(Sent(caller, request): Sent<SignedIn, RobotCreate>) -> Result<Response, ApiError> {
    check_level(request.level.as_deref())?;
    let short = (request.name).ok_or_else(|| ApiError::bad_request("name is required"))?;
    let (namespace, actions) = actions_of(request.permissions.as_deref().unwrap_or_default())?;
    let project = managed_by_name(&caller.directory, &caller.principal, &namespace)?;
    let name = RobotName::new(&project.name, &short).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let secret = secret_or_generated(request.secret)?;
    let command = AccessCommand::CreateRobot {
        name: name.clone(),
        description: request.description.unwrap_or_default(),
        actions,
        expires_at: expiry(Utc::now(), request.duration)?,
        secret_hash: hash_secret(&secret).await?,
    };
    caller.change(command).await?;
    if request.disable == Some(true) {
        let command = AccessCommand::UpdateRobot {
            name: name.clone(),
            description: None,
            actions: None,
            expires_at: None,
            disabled: Some(true),
        };
        caller.change(command).await?;
    }
    let directory = caller.reread_directory().await?;
    let robot = (directory.robot(&name)).ok_or_else(|| ApiError::internal("created robot is missing"))?;
    let mut response = json(
        StatusCode::CREATED,
        &RobotCreated {
            id: robot.id,
            name: robot.name.to_string(),
            secret,
            creation_time: timestamp(robot.created_at),
            expires_at: unix(robot.expires_at),
        },
    )?;
    let location = created(&format!("/robots/{}", robot.id))?;
    response.headers_mut().extend(location.headers().clone());
    Ok(response)
}

/// Harbor's `q`: `Level=project,ProjectID=3,name=~ci` (`~` matches part of the name).
pub(super) struct RobotFilter {
    project_id: Option<String>,
    name: Option<String>,
    system: bool,
}

impl FromQuery for RobotFilter {
    fn from_query(query: &Query) -> Result<RobotFilter, ApiError> {
        let mut filter = RobotFilter {
            project_id: None,
            name: None,
            system: false,
        };
        for term in query.terms() {
            let (key, value) = term?;
            match key.to_ascii_lowercase().as_str() {
                "level" => filter.system = value != LEVEL_PROJECT,
                "projectid" | "project_id" => filter.project_id = Some(value.to_string()),
                "name" => filter.name = Some(value.to_string()),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "robots cannot be filtered by {key}"
                    )))
                }
            }
        }
        Ok(filter)
    }
}

fn matches_name(robot: &Robot, wanted: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some(w) => match w.strip_prefix('~') {
            Some(part) => robot.name.as_str().contains(part),
            None => robot.name.as_str() == w || robot.name.as_str().ends_with(&format!("+{w}")),
        },
    }
}

pub(super) async fn list(
    Params(query, filter): Params<RobotFilter>,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let (directory, principal) = (&caller.directory, &caller.principal);
    let project: Option<ProjectName> = match &filter.project_id {
        Some(id) => Some(managed(directory, principal, id)?.name.clone()),
        None => None,
    };
    let robots: Vec<RobotJson> = (directory.robots())
        .filter(|_| !filter.system)
        .filter(|r| project.as_ref().is_none_or(|p| &r.name.project() == p))
        .filter(|r| directory.manages(principal, &r.name.project()))
        .filter(|r| matches_name(r, filter.name.as_deref()))
        .map(to_json)
        .collect();
    pagination::respond(robots, "/robots", &query)
}

pub(super) async fn list_of_project(
    Path(key): Path<String>,
    query: Query,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let project = managed(&caller.directory, &caller.principal, &key)?;
    let robots: Vec<RobotJson> = (caller.directory.robots())
        .filter(|r| r.name.project() == project.name)
        .map(to_json)
        .collect();
    pagination::respond(robots, &format!("/projects/{key}/robots"), &query)
}

pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    ok(&to_json(robot_of(&caller.directory, &caller.principal, &raw)?))
}

pub(super) async fn update(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SignedIn, RobotUpdate>,
) -> Result<Response, ApiError> {
    check_level(request.level.as_deref())?;
    let robot = robot_of(&caller.directory, &caller.principal, &raw)?;
    let actions = match &request.permissions {
        Some(permissions) => {
            let (namespace, actions) = actions_of(permissions)?;
            if namespace != robot.name.project().as_str() {
                return Err(ApiError::bad_request(
                    "a robot account cannot move to another project",
                ));
            }
            Some(actions)
        }
        None => None,
    };
    let expires_at = match request.duration {
        Some(days) => Some(expiry(robot.created_at, Some(days))?),
        None => None,
    };
    let command = AccessCommand::UpdateRobot {
        name: robot.name.clone(),
        description: request.description,
        actions,
        expires_at,
        disabled: request.disable,
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PATCH /robots/{id}`: a new secret (the one given, or a generated one), shown once.
pub(super) async fn refresh(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SignedIn, RobotSec>,
) -> Result<Response, ApiError> {
    let robot = robot_of(&caller.directory, &caller.principal, &raw)?;
    let secret = secret_or_generated(request.secret)?;
    let command = AccessCommand::RefreshRobotSecret {
        name: robot.name.clone(),
        secret_hash: hash_secret(&secret).await?,
    };
    caller.change(command).await?;
    ok(&serde_json::json!({ "secret": secret }))
}

pub(super) async fn delete(Path(raw): Path<String>, caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    let robot = robot_of(&caller.directory, &caller.principal, &raw)?;
    let command = AccessCommand::DeleteRobot {
        name: robot.name.clone(),
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}
