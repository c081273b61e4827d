//! end-13: `GET /v2/<name>/blobs/uploads/<reference>` — 204 with the `Range` received so far.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::Registry;
use crate::oci::http::{self, finish};
use crate::oci::{Host, OciError};

use super::upload_start::session;

pub async fn handle(registry: &Registry, host: &Host, name: &str, id: &str) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let id = http::upload_id(id)?;
    let size = registry.upload_size(&repo, &id).await?;
    finish(
        session(StatusCode::NO_CONTENT, host, &repo, &id, size),
        Body::empty(),
    )
}
