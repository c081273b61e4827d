//! Who is asking, as handler arguments: [`Caller`] admits the caller a route allows (Basic
//! credentials or none; 401 / 403 otherwise) and brings the access directory; [`Sent`] does the
//! same for a route with a JSON body, in the order the API checks such requests.
//!
//! Extractors run in argument order, so a handler lists what it checks before the caller (its
//! path, its [`Query`](super::request::Query)) ahead of its `Caller` or `Sent`.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::app::{Registry, RequestContext};
use crate::domain::access::{AccessCommand, Directory, Principal, Username};
use crate::oci::auth;

use super::request::body;
use super::{Api, ApiError};

/// Who a route admits.
pub(super) trait Admission {
    /// The caller `headers` authenticate, if admitted (401 or 403 otherwise).
    fn admit(api: &Api, headers: &HeaderMap) -> impl Future<Output = Result<Principal, ApiError>> + Send;
}

/// Anyone, signed in or anonymous (credentials given must still be right: 401 otherwise).
pub(super) enum Anyone {}

/// A signed-in user or robot account (401 if anonymous).
pub(super) enum SignedIn {}

/// A signed-in user; robot accounts are refused with 403.
pub(super) enum SignedInUser {}

/// A system admin (401 if anonymous, 403 otherwise).
pub(super) enum SysAdmin {}

impl Admission for Anyone {
    /// Basic credentials or none. Registry tokens are for `/v2/`, not for management.
    async fn admit(api: &Api, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let caller = auth::authenticate(&api.registry, &api.auth, headers).await?;
        if caller.token.is_some() {
            return Err(ApiError::unauthorized(
                "the management API takes Basic credentials, not registry tokens",
            ));
        }
        Ok(caller.principal)
    }
}

impl Admission for SignedIn {
    async fn admit(api: &Api, headers: &HeaderMap) -> Result<Principal, ApiError> {
        match Anyone::admit(api, headers).await? {
            Principal::Anonymous => Err(ApiError::unauthorized("sign in first")),
            principal => Ok(principal),
        }
    }
}

impl Admission for SignedInUser {
    async fn admit(api: &Api, headers: &HeaderMap) -> Result<Principal, ApiError> {
        match SignedIn::admit(api, headers).await? {
            principal @ Principal::User(_) => Ok(principal),
            _ => Err(ApiError::forbidden("robot accounts cannot do this")),
        }
    }
}

impl Admission for SysAdmin {
    async fn admit(api: &Api, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let principal = SignedIn::admit(api, headers).await?;
        if directory(api).await?.is_admin(&principal) {
            Ok(principal)
        } else {
            Err(ApiError::forbidden("only system admins may do this"))
        }
    }
}

async fn directory(api: &Api) -> Result<Arc<Directory>, ApiError> {
    Ok(api.registry.directory().await?)
}

/// A caller `A` admits, and the access directory as it stood once they were admitted.
pub(super) struct Caller<A = Anyone> {
    api: Api,
    pub principal: Principal,
    pub directory: Arc<Directory>,
    admitted: PhantomData<fn() -> A>,
}

impl<A: Admission> Caller<A> {
    /// The caller `headers` authenticate, if `A` admits them, then the directory.
    pub async fn admit(api: &Api, headers: &HeaderMap) -> Result<Caller<A>, ApiError> {
        let principal = A::admit(api, headers).await?;
        Caller::admitted(api, principal).await
    }

    async fn admitted(api: &Api, principal: Principal) -> Result<Caller<A>, ApiError> {
        Ok(Caller {
            api: api.clone(),
            principal,
            directory: directory(api).await?,
            admitted: PhantomData,
        })
    }
}

impl<A> Caller<A> {
    pub fn registry(&self) -> &Registry {
        &self.api.registry
    }

    /// Whether work may go on after this request answered (`oci::Host::background_jobs`).
    pub fn background_jobs(&self) -> bool {
        self.api.background_jobs
    }

    /// The caller's user name: always there once [`SignedInUser`] admitted them.
    pub fn username(&self) -> Option<&Username> {
        match &self.principal {
            Principal::User(name) => Some(name),
            _ => None,
        }
    }

    /// Applies `command` on the caller's behalf.
    pub async fn change(&self, command: AccessCommand) -> Result<(), ApiError> {
        let ctx = RequestContext::as_principal(self.principal.clone());
        self.api.registry.change_access(&ctx, command).await?;
        Ok(())
    }

    /// The directory as it stands now, with the caller's changes (`self.directory` predates them).
    pub async fn reread_directory(&self) -> Result<Arc<Directory>, ApiError> {
        directory(&self.api).await
    }
}

impl<A: Admission> FromRequestParts<Api> for Caller<A> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        Caller::admit(api, &parts.headers).await
    }
}

/// A caller `A` admits and the JSON body `T` they sent, checked in this order: the body is read
/// whole (a body too large answers 413 whoever sends it), the caller admitted (401 / 403), the
/// body parsed (400), the directory read.
pub(super) struct Sent<A, T>(pub Caller<A>, pub T);

impl<A: Admission, T: DeserializeOwned + Send> Sent<A, T> {
    async fn admit(api: &Api, headers: &HeaderMap, bytes: &Bytes) -> Result<Self, ApiError> {
        let principal = A::admit(api, headers).await?;
        let body = body(bytes)?;
        Ok(Sent(Caller::admitted(api, principal).await?, body))
    }
}

impl<A: Admission, T: DeserializeOwned + Send> FromRequest<Api> for Sent<A, T> {
    /// The body's own rejection (413...) as axum words it, or the API's error.
    type Rejection = Response;

    async fn from_request(request: Request, api: &Api) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let bytes = (Bytes::from_request(request, api).await).map_err(IntoResponse::into_response)?;
        (Sent::admit(api, &headers, &bytes).await).map_err(IntoResponse::into_response)
    }
}
