//! `GET /v2/_catalog?n=&last=` — repositories in lexical order, `Link` to the next page.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::app::Registry;
use crate::oci::http::{self, finish};
use crate::oci::OciError;

/// Page size when the client names none.
const DEFAULT_PAGE: usize = 1000;

pub async fn handle(registry: &Registry, request: Request) -> Result<Response, OciError> {
    let q = http::query(request.uri());
    let n = http::page_size(&q)?.unwrap_or(DEFAULT_PAGE);
    let page = registry.catalog(q.get("last").map(String::as_str), n).await?;
    let mut builder = axum::http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    let last = page.items.last().map(ToString::to_string).unwrap_or_default();
    if let Some(link) = http::next_link(&page, "/v2/_catalog", &[("n", n.to_string()), ("last", last)]) {
        builder = builder.header(header::LINK, link);
    }
    finish(
        builder,
        Body::from(json!({ "repositories": page.items }).to_string()),
    )
}
