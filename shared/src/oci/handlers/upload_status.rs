//! end-13: `GET /v2/<name>/blobs/uploads/<reference>` — 204 with the `Range` received so far.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::app::Registry;
use crate::oci::http::{self, empty, finish, DOCKER_UPLOAD_UUID};
use crate::oci::OciError;

pub async fn handle(registry: &Registry, name: &str, id: &str) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let id = http::upload_id(id)?;
    let size = registry.upload_size(&repo, &id).await?;
    let builder = empty(StatusCode::NO_CONTENT)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}"))
        .header(header::RANGE, http::upload_range(size))
        .header(DOCKER_UPLOAD_UUID, id.to_string());
    finish(builder, Body::empty())
}
