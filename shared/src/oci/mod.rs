//! The OCI distribution API v1.1.1, the token service (`/service/token`) and the management API
//! (`/api/v2.0/`) as one axum router, hosted unchanged by the local server and the Lambda `api`
//! function. Requests are parsed into an [`route::Endpoint`]; one handler per operation.

pub mod auth;
mod challenge;
mod error;
mod handlers;
pub mod host;
pub mod http;
pub mod route;
mod token;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::app::{Registry, RequestContext};

pub use auth::AuthConfig;
pub use error::OciError;
pub use host::Host;
use route::{Endpoint, RouteError};

/// The header every `/v2/` response carries.
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// The router every host serves; `host` says what the host in front of it can carry, `auth` how
/// the deployment names itself in tokens.
pub fn router(registry: Registry, host: Host, auth: AuthConfig) -> Router {
    let auth = Arc::new(auth);
    let background_jobs = host.background_jobs;
    Router::new()
        .route("/service/token", axum::routing::get(token))
        .fallback(dispatch)
        .with_state(Oci {
            registry: registry.clone(),
            host: Arc::new(host),
            auth: auth.clone(),
        })
        .nest("/api/v2.0", crate::api::router(registry, auth, background_jobs))
}

#[derive(Clone)]
struct Oci {
    registry: Registry,
    host: Arc<Host>,
    auth: Arc<AuthConfig>,
}

async fn token(State(oci): State<Oci>, request: Request<Body>) -> Response {
    token::handle(&oci.registry, &oci.auth, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn dispatch(State(oci): State<Oci>, mut request: Request<Body>) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut principal = String::from("-");
    let result = match route::parse(&method, &path) {
        Ok(endpoint) => match body_fits(&oci.host, &endpoint, &request) {
            Ok(()) => match auth::authorize(&oci.registry, &oci.auth, &endpoint, &mut request).await {
                Ok(ctx) => {
                    principal = ctx.principal.name().to_string();
                    handle(&oci.registry, &oci.host, &ctx, endpoint, request).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        // The spec's error codes are a closed set; an endpoint that does not exist is an
        // operation the registry does not implement.
        Err(RouteError::NotFound) => Err(OciError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            format!("no such endpoint: {method} {path}"),
        )),
        Err(RouteError::MethodNotAllowed) => Err(OciError::unsupported(format!(
            "{method} is not supported on {path}"
        ))),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response
        .headers_mut()
        .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    tracing::debug!(%method, %path, status = response.status().as_u16(), %principal);
    response
}

/// Refuses, before reading it, a body larger than the host can deliver (the Lambda payload limit),
/// telling the client how to send it instead.
fn body_fits(host: &Host, endpoint: &Endpoint, request: &Request<Body>) -> Result<(), OciError> {
    let Some(max) = host.max_request_body else {
        return Ok(());
    };
    let length = http::content_length(request.headers())
        .or_else(|| axum::body::HttpBody::size_hint(request.body()).exact());
    let Some(length) = length.filter(|&n| n > max) else {
        return Ok(());
    };
    let is_upload = matches!(
        endpoint,
        Endpoint::UploadStart { .. } | Endpoint::UploadPatch { .. } | Endpoint::UploadFinish { .. }
    );
    let (code, advice) = if is_upload {
        (
            "BLOB_UPLOAD_INVALID",
            format!(
                "send the blob as a chunked upload (POST, then PATCH chunks of at most {max} bytes \
                 with Content-Range; {} bytes advised), or push through the container host (berth serve)",
                host.chunk_length
            ),
        )
    } else {
        (
            "SIZE_INVALID",
            "use the container host (berth serve) for larger requests".to_string(),
        )
    };
    Err(OciError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code,
        format!(
            "the request body of {length} bytes exceeds the {} limit of {max} bytes: {advice}",
            host.name
        ),
    ))
}

async fn handle(
    registry: &Registry,
    host: &Host,
    ctx: &RequestContext,
    endpoint: Endpoint,
    request: Request<Body>,
) -> Result<Response, OciError> {
    use handlers::*;
    match endpoint {
        Endpoint::Base => base::handle(),
        Endpoint::BlobGet { name, digest, head } => {
            blob_get::handle(registry, host, ctx, &name, &digest, head, request).await
        }
        Endpoint::BlobDelete { name, digest } => blob_delete::handle(registry, ctx, &name, &digest).await,
        Endpoint::UploadStart { name } => upload_start::handle(registry, host, ctx, &name, request).await,
        Endpoint::UploadPatch { name, id } => upload_patch::handle(registry, host, &name, &id, request).await,
        Endpoint::UploadFinish { name, id } => {
            upload_finish::handle(registry, ctx, &name, &id, request).await
        }
        Endpoint::UploadStatus { name, id } => upload_status::handle(registry, host, &name, &id).await,
        Endpoint::UploadCancel { name, id } => upload_cancel::handle(registry, &name, &id).await,
        Endpoint::ManifestGet {
            name,
            reference,
            head,
        } => manifest_get::handle(registry, ctx, &name, &reference, head, request).await,
        Endpoint::ManifestPut { name, reference } => {
            manifest_put::handle(registry, ctx, &name, &reference, request).await
        }
        Endpoint::ManifestDelete { name, reference } => {
            manifest_delete::handle(registry, ctx, &name, &reference).await
        }
        Endpoint::TagsList { name } => tags_list::handle(registry, &name, request).await,
        Endpoint::Referrers { name, digest } => referrers::handle(registry, &name, &digest, request).await,
        Endpoint::Catalog => catalog::handle(registry, ctx, request).await,
    }
}
