//! end-7: `PUT /v2/<name>/manifests/<reference>` — validated, its blobs and children checked,
//! stored, then `ManifestPushed`/`TagMoved` appended. 201 with `Location`, `Docker-Content-Digest`
//! and, for a manifest with a subject, `OCI-Subject`. Over 4 MiB → 413.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::app::{AppError, Registry, RequestContext, MAX_MANIFEST_BYTES};
use crate::oci::http::{self, empty, finish, DOCKER_CONTENT_DIGEST};
use crate::oci::OciError;

pub async fn handle(
    registry: &Registry,
    ctx: &RequestContext,
    name: &str,
    reference: &str,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let reference = http::reference(reference)?;
    let too_large = || {
        OciError::from(AppError::ManifestTooLarge {
            limit: MAX_MANIFEST_BYTES,
        })
    };
    if http::content_length(request.headers()).is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
        return Err(too_large());
    }
    let content_type = http::header_str(request.headers(), header::CONTENT_TYPE)
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(request.into_body(), MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| too_large())?;
    let pushed = registry
        .push_manifest(ctx, &repo, reference, &content_type, body)
        .await?;
    let mut builder = empty(StatusCode::CREATED)
        .header(
            header::LOCATION,
            format!("/v2/{repo}/manifests/{}", pushed.digest),
        )
        .header(DOCKER_CONTENT_DIGEST, pushed.digest.to_string());
    if let Some(subject) = pushed.subject {
        builder = builder.header("oci-subject", subject.to_string());
    }
    finish(builder, Body::empty())
}
