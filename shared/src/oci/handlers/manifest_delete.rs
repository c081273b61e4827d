//! end-9: `DELETE /v2/<name>/manifests/<reference>` — by tag: the tag only; by digest: the manifest
//! and every tag on it. 202.

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
    reference: &str,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let reference = http::lookup_reference(reference)?;
    registry.delete_manifest(ctx, &repo, &reference).await?;
    finish(empty(StatusCode::ACCEPTED), Body::empty())
}
