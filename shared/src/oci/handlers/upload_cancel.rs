//! `DELETE /v2/<name>/blobs/uploads/<reference>` — cancels a session (204).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::Registry;
use crate::oci::http::{self, empty, finish};
use crate::oci::OciError;

pub async fn handle(registry: &Registry, name: &str, id: &str) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let id = http::upload_id(id)?;
    registry.cancel_upload(&repo, &id).await?;
    finish(empty(StatusCode::NO_CONTENT), Body::empty())
}
