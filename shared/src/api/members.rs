//! Project members (Harbor `/projects/{p}/members`): users with a role (Harbor `role_id`s: 1
//! projectAdmin, 2 developer, 3 guest, 4 maintainer). Members of a project (and system admins)
//! list them; only its admins (and system admins) change them. Groups are not supported.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::domain::access::{AccessCommand, Directory, Member, Principal, Project, Role, Username};

use super::caller::{Caller, Sent, SignedIn};
use super::projects::{managed, visible};
use super::request::{numeric_id, Query};
use super::{created, ok, pagination, ApiError};

#[derive(Debug, Serialize)]
struct MemberJson {
    id: u64,
    project_id: u64,
    entity_name: String,
    entity_type: &'static str,
    entity_id: u64,
    role_id: u32,
    role_name: &'static str,
}

#[derive(Debug, Deserialize)]
pub(super) struct MemberReq {
    role_id: Option<u32>,
    /// An object (read as [`UserEntity`] once it is one: serde would take an array for a struct).
    member_user: Option<serde_json::Map<String, serde_json::Value>>,
    member_group: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct UserEntity {
    username: Option<String>,
    user_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RoleRequest {
    role_id: Option<u32>,
}

fn to_json(directory: &Directory, project: &Project, member: &Member) -> MemberJson {
    MemberJson {
        id: member.id,
        project_id: project.id,
        entity_name: member.username.to_string(),
        entity_type: "u",
        entity_id: directory.user(&member.username).map_or(0, |u| u.id),
        role_id: member.role.id(),
        role_name: member.role.name(),
    }
}

fn role(role_id: Option<u32>) -> Result<Role, ApiError> {
    let id = role_id.ok_or_else(|| ApiError::bad_request("role_id is required"))?;
    Role::from_id(id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role_id {id} is not one of 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer)"
        ))
    })
}

/// The project, if `principal` may read its members: members and system admins.
fn readable<'d>(directory: &'d Directory, principal: &Principal, key: &str) -> Result<&'d Project, ApiError> {
    let project = visible(directory, principal, key)?;
    if directory.is_admin(principal) || directory.role(principal, &project.name).is_some() {
        Ok(project)
    } else {
        Err(ApiError::forbidden(format!(
            "only members of project {} may list its members",
            project.name
        )))
    }
}

fn member_of<'p>(project: &'p Project, raw: &str) -> Result<&'p Member, ApiError> {
    let id = numeric_id(raw, "the member id")?;
    (project.members.values().find(|m| m.id == id))
        .ok_or_else(|| ApiError::not_found(format!("member {id} of project {} does not exist", project.name)))
}

pub(super) async fn list(
    Path(key): Path<String>,
    query: Query,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let project = readable(&caller.directory, &caller.principal, &key)?;
    let name = query.get("entityname").unwrap_or_default();
    let mut members: Vec<MemberJson> = (project.members.values())
        .filter(|m| m.username.as_str().contains(name))
        .map(|m| to_json(&caller.directory, project, m))
        .collect();
    members.sort_by_key(|m| m.id);
    pagination::respond(members, &format!("/projects/{key}/members"), &query)
}

pub(super) async fn create(
    Path(key): Path<String>,
    Sent(caller, request): Sent<SignedIn, MemberReq>,
) -> Result<Response, ApiError> {
    let project = managed(&caller.directory, &caller.principal, &key)?;
    if request.member_group.is_some_and(|g| !g.is_null()) {
        return Err(ApiError::bad_request(
            "group members are not supported; add users",
        ));
    }
    let role = role(request.role_id)?;
    let entity = (request.member_user).ok_or_else(|| ApiError::bad_request("member_user is required"))?;
    let entity: UserEntity = serde_json::from_value(entity.into())
        .map_err(|e| ApiError::bad_request(format!("invalid member_user: {e}")))?;
    let username = match (entity.username, entity.user_id) {
        (Some(name), _) => Username::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?,
        (None, Some(id)) => (caller.directory.users().find(|u| u.id == id))
            .map(|u| u.username.clone())
            .ok_or_else(|| ApiError::not_found(format!("user {id} does not exist")))?,
        (None, None) => return Err(ApiError::bad_request("member_user needs a username or a user_id")),
    };
    let command = AccessCommand::AddMember {
        project: project.name.clone(),
        username: username.clone(),
        role,
    };
    caller.change(command).await?;
    let directory = caller.reread_directory().await?;
    let member = (directory.project(&project.name))
        .and_then(|p| p.members.get(&username))
        .ok_or_else(|| ApiError::internal("added member is missing"))?;
    created(&format!("/projects/{}/members/{}", project.id, member.id))
}

pub(super) async fn get(
    Path((key, mid)): Path<(String, String)>,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let project = readable(&caller.directory, &caller.principal, &key)?;
    ok(&to_json(&caller.directory, project, member_of(project, &mid)?))
}

pub(super) async fn update(
    Path((key, mid)): Path<(String, String)>,
    Sent(caller, request): Sent<SignedIn, RoleRequest>,
) -> Result<Response, ApiError> {
    let project = managed(&caller.directory, &caller.principal, &key)?;
    let member = member_of(project, &mid)?;
    let command = AccessCommand::ChangeRole {
        project: project.name.clone(),
        username: member.username.clone(),
        role: role(request.role_id)?,
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn delete(
    Path((key, mid)): Path<(String, String)>,
    caller: Caller<SignedIn>,
) -> Result<Response, ApiError> {
    let project = managed(&caller.directory, &caller.principal, &key)?;
    let member = member_of(project, &mid)?;
    let command = AccessCommand::RemoveMember {
        project: project.name.clone(),
        username: member.username.clone(),
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}
