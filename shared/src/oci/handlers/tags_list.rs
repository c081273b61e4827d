//! end-8a/8b: `GET /v2/<name>/tags/list?n=&last=` — tags in lexical order, `Link` to the next page.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::app::Registry;
use crate::oci::http::{self, finish};
use crate::oci::OciError;

pub async fn handle(registry: &Registry, name: &str, request: Request) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let q = http::query(request.uri());
    let n = http::page_size(&q)?;
    let last = q.get("last").map(String::as_str);
    let page = registry.tags(&repo, last, n.unwrap_or(usize::MAX)).await?;
    let mut builder = axum::http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    let last_tag = page.items.last().map(ToString::to_string).unwrap_or_default();
    let params = [("n", n.unwrap_or_default().to_string()), ("last", last_tag)];
    if let Some(link) = http::next_link(&page, &format!("/v2/{repo}/tags/list"), &params) {
        builder = builder.header(header::LINK, link);
    }
    let body = json!({ "name": repo, "tags": page.items });
    finish(builder, Body::from(body.to_string()))
}
