//! end-12a/12b: `GET /v2/<name>/referrers/<digest>?artifactType=` — an image index of the manifests
//! whose `subject` is `<digest>` (never 404: an unknown subject has no referrers), filtered by
//! artifact type (`OCI-Filters-Applied`), paginated with `n`/`last` and `Link`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::app::Registry;
use crate::domain::manifest::OCI_INDEX;
use crate::oci::http::{self, finish};
use crate::oci::OciError;

/// Page size when the client names none; keeps a response far below the 4 MiB manifest limit.
const DEFAULT_PAGE: usize = 1000;

pub async fn handle(
    registry: &Registry,
    name: &str,
    digest: &str,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let subject = http::digest(digest)?;
    let q = http::query(request.uri());
    let n = http::page_size(&q)?.unwrap_or(DEFAULT_PAGE);
    let artifact_type = q.get("artifactType").map(String::as_str);
    let page = registry
        .referrers(
            &repo,
            &subject,
            artifact_type,
            q.get("last").map(String::as_str),
            n,
        )
        .await?;
    let mut builder = axum::http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OCI_INDEX);
    let mut params = vec![("n", n.to_string())];
    if let Some(t) = artifact_type {
        builder = builder.header("oci-filters-applied", "artifactType");
        params.push(("artifactType", t.to_string()));
    }
    params.push((
        "last",
        page.items
            .last()
            .map(|r| r.digest.to_string())
            .unwrap_or_default(),
    ));
    if let Some(link) = http::next_link(&page, &format!("/v2/{repo}/referrers/{subject}"), &params) {
        builder = builder.header(header::LINK, link);
    }
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": page.items });
    finish(builder, Body::from(body.to_string()))
}
