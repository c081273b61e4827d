//! end-5: `PATCH /v2/<name>/blobs/uploads/<reference>` — one chunk, in order (`Content-Range`), or a
//! streamed upload without one. Out of order → 416 with the current `Range`.

use axum::extract::Request;
use axum::response::Response;

use crate::app::Registry;
use crate::oci::http;
use crate::oci::{Host, OciError};

use super::upload_start::accepted;

pub async fn handle(
    registry: &Registry,
    host: &Host,
    name: &str,
    id: &str,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let id = http::upload_id(id)?;
    let size = registry.upload_size(&repo, &id).await?;
    let range = http::chunk_range(request.headers(), size)?;
    let body = http::body_stream(request.into_body());
    let size = registry.upload_chunk(&repo, &id, range, body).await?;
    accepted(host, &repo, &id, size)
}
