//! end-6: `PUT /v2/<name>/blobs/uploads/<reference>?digest=<digest>` — the last chunk (optional),
//! digest verification (mismatch → 400 DIGEST_INVALID, session ended), then the blob is linked.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::{Registry, RequestContext};
use crate::oci::http;
use crate::oci::OciError;

use super::upload_start::created;

pub async fn handle(
    registry: &Registry,
    ctx: &RequestContext,
    name: &str,
    id: &str,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let id = http::upload_id(id)?;
    let q = http::query(request.uri());
    let digest = q.get("digest").ok_or_else(|| {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the digest query parameter is required",
        )
    })?;
    let digest = http::digest(digest)?;
    let size = registry.upload_size(&repo, &id).await?;
    let range = http::chunk_range(request.headers(), size)?;
    let body = http::body_stream(request.into_body());
    registry
        .finish_upload(ctx, &repo, &id, &digest, Some((range, body)))
        .await?;
    created(&repo, &digest)
}
