//! end-10: `DELETE /v2/<name>/blobs/<digest>` — unlinks the blob from the repository (202). Its
//! bytes stay until garbage collection, since other repositories may link it.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::{Registry, RequestContext};
use crate::oci::http::{self, empty, finish};
use crate::oci::OciError;

pub async fn handle(
    registry: &Registry,
    ctx: &RequestContext,
    name: &str,
    digest: &str,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let digest = http::digest(digest)?;
    registry.delete_blob(ctx, &repo, &digest).await?;
    finish(empty(StatusCode::ACCEPTED), Body::empty())
}
