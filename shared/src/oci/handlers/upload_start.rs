//! end-4a/4b/11: `POST /v2/<name>/blobs/uploads/` — a session (202), a monolithic upload with
//! `?digest=` (201), or a cross-repository mount with `?mount=&from=` (201 if `from` holds the blob
//! and the caller could GET it there under `from`'s content-trust policy, else a session: 202).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::app::{Registry, RequestContext};
use crate::domain::{Digest, RepoName};
use crate::oci::http::{
    self, empty, finish, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, OCI_CHUNK_MIN_LENGTH,
};
use crate::oci::{Host, OciError};
use crate::ports::UploadId;

pub async fn handle(
    registry: &Registry,
    host: &Host,
    ctx: &RequestContext,
    name: &str,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let q = http::query(request.uri());
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        let digest = http::digest(mount)?;
        // A malformed `from` cannot hold the blob: fall back to a session, as for any absent blob.
        if let Ok(from) = from.parse::<RepoName>() {
            if registry.mount_blob(ctx, &repo, &digest, &from).await?.is_some() {
                return created(&repo, &digest);
            }
        }
    }
    let id = registry.start_upload(&repo).await?;
    if let Some(d) = q.get("digest") {
        let digest = http::digest(d)?;
        let body = http::body_stream(request.into_body());
        if let Err(e) = (registry.finish_upload(ctx, &repo, &id, &digest, Some((None, body)))).await {
            // The client never learned this session's id: a refused monolithic upload (digest
            // mismatch, quota, a full disk, a cut body) leaves nothing behind for the janitor.
            if let Err(left) = registry.cancel_upload(&repo, &id).await {
                tracing::debug!(upload = %id, "session of a refused monolithic upload: {left}");
            }
            return Err(e.into());
        }
        return created(&repo, &digest);
    }
    accepted(host, &repo, &id, 0)
}

/// 201 for a blob now linked to the repository.
pub fn created(repo: &RepoName, digest: &Digest) -> Result<Response, OciError> {
    let builder = empty(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/{digest}"))
        .header(DOCKER_CONTENT_DIGEST, digest.to_string());
    finish(builder, Body::empty())
}

/// 202 for a session in progress, with where to send the next chunk and what chunk size the host
/// advises.
pub fn accepted(host: &Host, repo: &RepoName, id: &UploadId, size: u64) -> Result<Response, OciError> {
    let builder = session(StatusCode::ACCEPTED, host, repo, id, size);
    finish(builder, Body::empty())
}

/// The headers that describe an upload session.
pub fn session(
    status: StatusCode,
    host: &Host,
    repo: &RepoName,
    id: &UploadId,
    size: u64,
) -> axum::http::response::Builder {
    empty(status)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}"))
        .header(header::RANGE, http::upload_range(size))
        .header(DOCKER_UPLOAD_UUID, id.to_string())
        .header(OCI_CHUNK_MIN_LENGTH, host.chunk_length)
}
