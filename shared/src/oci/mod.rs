//! The OCI distribution API v1.1.1 as one axum router, hosted unchanged by the local server and the
//! Lambda `api` function. Requests are parsed into an [`route::Endpoint`]; one handler per operation.

mod error;
mod handlers;
pub mod http;
pub mod route;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::app::{Registry, RequestContext};

pub use error::OciError;
use route::{Endpoint, RouteError};

/// The header every `/v2/` response carries.
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// The router every host serves.
pub fn router(registry: Registry) -> Router {
    Router::new().fallback(dispatch).with_state(registry)
}

async fn dispatch(State(registry): State<Registry>, request: Request<Body>) -> Response {
    let ctx = RequestContext::anonymous();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let result = match route::parse(&method, &path) {
        Ok(endpoint) => handle(&registry, &ctx, endpoint, request).await,
        Err(RouteError::NotFound) => Err(OciError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such endpoint",
        )),
        Err(RouteError::MethodNotAllowed) => Err(OciError::unsupported(format!(
            "{method} is not supported on {path}"
        ))),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response
        .headers_mut()
        .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    tracing::debug!(%method, %path, status = response.status().as_u16(), request_id = %ctx.request_id);
    response
}

async fn handle(
    registry: &Registry,
    ctx: &RequestContext,
    endpoint: Endpoint,
    request: Request<Body>,
) -> Result<Response, OciError> {
    use handlers::*;
    match endpoint {
        Endpoint::Base => base::handle(),
        Endpoint::BlobGet { name, digest, head } => {
            blob_get::handle(registry, &name, &digest, head, request).await
        }
        Endpoint::BlobDelete { name, digest } => blob_delete::handle(registry, ctx, &name, &digest).await,
        Endpoint::UploadStart { name } => upload_start::handle(registry, ctx, &name, request).await,
        Endpoint::UploadPatch { name, id } => upload_patch::handle(registry, &name, &id, request).await,
        Endpoint::UploadFinish { name, id } => {
            upload_finish::handle(registry, ctx, &name, &id, request).await
        }
        Endpoint::UploadStatus { name, id } => upload_status::handle(registry, &name, &id).await,
        Endpoint::UploadCancel { name, id } => upload_cancel::handle(registry, &name, &id).await,
        Endpoint::ManifestGet {
            name,
            reference,
            head,
        } => manifest_get::handle(registry, &name, &reference, head, request).await,
        Endpoint::ManifestPut { name, reference } => {
            manifest_put::handle(registry, ctx, &name, &reference, request).await
        }
        Endpoint::ManifestDelete { name, reference } => {
            manifest_delete::handle(registry, ctx, &name, &reference).await
        }
        Endpoint::TagsList { name } => tags_list::handle(registry, &name, request).await,
        Endpoint::Referrers { name, digest } => referrers::handle(registry, &name, &digest, request).await,
        Endpoint::Catalog => catalog::handle(registry, request).await,
    }
}
