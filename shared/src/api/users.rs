//! Local users (Harbor `/users`): system admins list, create and delete them and grant the admin
//! flag; a user reads itself and changes its own password (with the old one). Email, real name and
//! comment are accepted and not kept. No hash ever leaves the directory.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::hash_secret;
use crate::domain::access::{AccessCommand, Directory, Principal, User, Username};

use super::caller::{Caller, Sent, SignedIn, SignedInUser, SysAdmin};
use super::request::{check_password, numeric_id, Query};
use super::{created, ok, pagination, timestamp, ApiError};

#[derive(Debug, Serialize)]
struct UserJson {
    user_id: u64,
    username: String,
    sysadmin_flag: bool,
    creation_time: String,
    update_time: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct UserCreationReq {
    username: Option<String>,
    password: Option<String>,
    /// Harbor's other fields: accepted (as strings, 400 otherwise) and not kept.
    #[serde(default, rename = "email")]
    _email: Option<String>,
    #[serde(default, rename = "realname")]
    _realname: Option<String>,
    #[serde(default, rename = "comment")]
    _comment: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PasswordReq {
    #[serde(default)]
    old_password: Option<String>,
    new_password: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SysAdminFlag {
    sysadmin_flag: Option<bool>,
}

fn to_json(user: &User) -> UserJson {
    UserJson {
        user_id: user.id,
        username: user.username.to_string(),
        sysadmin_flag: user.admin,
        creation_time: timestamp(user.created_at),
        update_time: timestamp(user.updated_at),
    }
}

fn user_of<'d>(directory: &'d Directory, raw: &str) -> Result<&'d User, ApiError> {
    let id = numeric_id(raw, "the user id")?;
    (directory.users().find(|u| u.id == id))
        .ok_or_else(|| ApiError::not_found(format!("user {id} does not exist")))
}

fn is_self(principal: &Principal, user: &User) -> bool {
    matches!(principal, Principal::User(name) if *name == user.username)
}

pub(super) async fn list(query: Query, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let name = query.get("username").unwrap_or_default();
    let mut users: Vec<UserJson> = (caller.directory.users())
        .filter(|u| u.username.as_str().contains(name))
        .map(to_json)
        .collect();
    users.sort_by_key(|u| u.user_id);
    pagination::respond(users, "/users", &query)
}

pub(super) async fn create(
    Sent(caller, request): Sent<SysAdmin, UserCreationReq>,
) -> Result<Response, ApiError> {
    let raw_name = (request.username).ok_or_else(|| ApiError::bad_request("username is required"))?;
    let username = Username::parse(&raw_name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let password = (request.password).ok_or_else(|| ApiError::bad_request("password is required"))?;
    check_password(&password)?;
    let command = AccessCommand::CreateUser {
        username: username.clone(),
        password_hash: hash_secret(&password).await?,
        admin: false,
    };
    caller.change(command).await?;
    let directory = caller.reread_directory().await?;
    let user = (directory.user(&username)).ok_or_else(|| ApiError::internal("created user is missing"))?;
    created(&format!("/users/{}", user.id))
}

pub(super) async fn current(caller: Caller<SignedInUser>) -> Result<Response, ApiError> {
    let user = (caller.username().and_then(|name| caller.directory.user(name)))
        .ok_or_else(|| ApiError::unauthorized("sign in first"))?;
    ok(&to_json(user))
}

pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SignedIn>) -> Result<Response, ApiError> {
    let user = user_of(&caller.directory, &raw)?;
    if !is_self(&caller.principal, user) && !caller.directory.is_admin(&caller.principal) {
        return Err(ApiError::forbidden("only system admins read other users"));
    }
    ok(&to_json(user))
}

pub(super) async fn delete(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let user = user_of(&caller.directory, &raw)?;
    if is_self(&caller.principal, user) {
        return Err(ApiError::forbidden("you cannot delete yourself"));
    }
    let command = AccessCommand::DeleteUser {
        username: user.username.clone(),
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}

/// A user changes its own password with the old one; a system admin changes another's without.
pub(super) async fn change_password(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SignedIn, PasswordReq>,
) -> Result<Response, ApiError> {
    let user = user_of(&caller.directory, &raw)?;
    let new = (request.new_password).ok_or_else(|| ApiError::bad_request("new_password is required"))?;
    if is_self(&caller.principal, user) {
        let old = request.old_password.unwrap_or_default();
        let valid = caller
            .registry()
            .authenticate(user.username.as_str(), &old)
            .await?;
        if valid.is_none() {
            return Err(ApiError::bad_request("old_password is incorrect"));
        }
        if old == new {
            return Err(ApiError::bad_request(
                "the new password must differ from the old one",
            ));
        }
    } else if !caller.directory.is_admin(&caller.principal) {
        return Err(ApiError::forbidden(
            "only system admins change other users' passwords",
        ));
    }
    check_password(&new)?;
    let command = AccessCommand::ChangePassword {
        username: user.username.clone(),
        password_hash: hash_secret(&new).await?,
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn set_sysadmin(
    Path(raw): Path<String>,
    Sent(caller, request): Sent<SysAdmin, SysAdminFlag>,
) -> Result<Response, ApiError> {
    let admin = (request.sysadmin_flag).ok_or_else(|| ApiError::bad_request("sysadmin_flag is required"))?;
    let user = user_of(&caller.directory, &raw)?;
    let command = AccessCommand::SetAdmin {
        username: user.username.clone(),
        admin,
    };
    caller.change(command).await?;
    Ok(StatusCode::OK.into_response())
}
