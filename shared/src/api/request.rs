//! What handlers read from a request: who is asking, the JSON body, the query string; and what
//! they do with the directory on the caller's behalf.

use std::sync::Arc;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::app::RequestContext;
use crate::domain::access::{AccessCommand, Directory, Principal, Username};
use crate::domain::RecordedEvent;
use crate::oci::auth;

use super::{Api, ApiError};

impl Api {
    /// The caller: Basic credentials or none. Registry tokens are for `/v2/`, not for management.
    pub(super) async fn caller(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let caller = auth::authenticate(&self.registry, &self.auth, headers).await?;
        if caller.token.is_some() {
            return Err(ApiError::unauthorized(
                "the management API takes Basic credentials, not registry tokens",
            ));
        }
        Ok(caller.principal)
    }

    /// The caller, who must have signed in (401 otherwise).
    pub(super) async fn signed_in(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        match self.caller(headers).await? {
            Principal::Anonymous => Err(ApiError::unauthorized("sign in first")),
            principal => Ok(principal),
        }
    }

    /// The caller, who must be a signed-in user (robots are refused with 403).
    pub(super) async fn user(&self, headers: &HeaderMap) -> Result<(Principal, Username), ApiError> {
        match self.signed_in(headers).await? {
            Principal::User(name) => Ok((Principal::User(name.clone()), name)),
            _ => Err(ApiError::forbidden("robot accounts cannot do this")),
        }
    }

    /// The caller, who must be a system admin (401 if anonymous, 403 otherwise).
    pub(super) async fn sysadmin(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let principal = self.signed_in(headers).await?;
        if self.directory().await?.is_admin(&principal) {
            Ok(principal)
        } else {
            Err(ApiError::forbidden("only system admins may do this"))
        }
    }

    pub(super) async fn directory(&self) -> Result<Arc<Directory>, ApiError> {
        Ok(self.registry.directory().await?)
    }

    /// Applies `command` as `principal`.
    pub(super) async fn change(
        &self,
        principal: &Principal,
        command: AccessCommand,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        let ctx = RequestContext::as_principal(principal.clone());
        Ok(self.registry.change_access(&ctx, command).await?)
    }
}

/// The JSON body as `T` (400 if it is not).
pub(super) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// The query string's pairs, decoded.
#[derive(Debug, Clone, Default)]
pub(super) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let pairs = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        Ok(Query(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`false`; 400 otherwise).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, not {other:?}"
            ))),
        }
    }
}

/// A numeric path id (400 if it is not a number).
pub(super) fn numeric_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} must be a number, not {raw:?}")))
}

/// Harbor's password rule: at least 8 characters (and at most 128), with an upper-case letter, a
/// lower-case letter and a digit.
pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    let long_enough = (8..=128).contains(&password.chars().count());
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if long_enough
        && has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "the password must be 8-128 characters long with at least one upper-case letter, \
             one lower-case letter and one digit",
        ))
    }
}
