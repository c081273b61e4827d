//! end-2: `GET|HEAD /v2/<name>/blobs/<digest>`, with `Range` → 206. Only blobs linked to the
//! repository are served; in a project that requires signatures, only those of an artifact that
//! may be pulled, to everyone (a principal who may push may still HEAD them, as pushes do). When the host redirects blobs and the store has direct URLs, a GET answers
//! 307 to a presigned URL (the client sends its `Range` there); HEAD always answers here.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::app::{Registry, RequestContext};
use crate::oci::http::{self, finish, DOCKER_CONTENT_DIGEST};
use crate::oci::{Host, OciError};

pub async fn handle(
    registry: &Registry,
    host: &Host,
    ctx: &RequestContext,
    name: &str,
    digest: &str,
    head: bool,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let digest = http::digest(digest)?;
    let size = registry.blob_size(&repo, &digest).await?;
    registry.check_blob_pull(ctx, &repo, &digest, head).await?;
    if let (false, Some(ttl)) = (head, host.blob_redirect) {
        if let Some(url) = registry.blob_url(&digest, ttl).await? {
            let builder = Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, url)
                .header(DOCKER_CONTENT_DIGEST, digest.to_string())
                .header(header::CONTENT_LENGTH, 0);
            return finish(builder, Body::empty());
        }
    }
    let range = http::byte_range(request.headers(), size)?;
    let builder = Response::builder()
        .header(DOCKER_CONTENT_DIGEST, digest.to_string())
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{digest}\""));
    let (builder, length) = match range {
        Some(r) => (
            builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end),
            ),
            r.end - r.start + 1,
        ),
        None => (builder.status(StatusCode::OK), size),
    };
    let builder = builder.header(header::CONTENT_LENGTH, length);
    if head {
        return finish(builder, Body::empty());
    }
    let read = registry.read_blob(&digest, range).await?;
    finish(builder, Body::from_stream(read.body))
}
