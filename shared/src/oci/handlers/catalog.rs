//! `GET /v2/_catalog?n=&last=` — repositories in lexical order, `Link` to the next page. Only the
//! repositories the caller may pull are listed.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::app::{Page, Registry, RequestContext};
use crate::oci::auth::project_of;
use crate::oci::http::{self, finish};
use crate::oci::OciError;

/// Page size when the client names none.
const DEFAULT_PAGE: usize = 1000;

pub async fn handle(
    registry: &Registry,
    ctx: &RequestContext,
    request: Request,
) -> Result<Response, OciError> {
    let q = http::query(request.uri());
    let n = http::page_size(&q)?.unwrap_or(DEFAULT_PAGE);
    let directory = registry.directory().await?;
    let now = chrono::Utc::now();
    let visible = |repo: &str| {
        project_of(repo).is_some_and(|p| {
            directory
                .repository_actions(&ctx.principal, &p, now)
                .contains(&crate::domain::access::Action::Pull)
        })
    };
    // Pages of the whole catalog, filtered, until `n` visible names or the end.
    let mut items = Vec::new();
    let mut last = q.get("last").cloned();
    let mut more = false;
    'pages: loop {
        if n == 0 {
            break;
        }
        let page = registry.catalog(last.as_deref(), n).await?;
        let (count, page_more) = (page.items.len(), page.more);
        for repo in page.items {
            if items.len() == n {
                more = true;
                break 'pages;
            }
            last = Some(repo.to_string());
            if visible(repo.as_str()) {
                items.push(repo);
            }
        }
        if !page_more || count == 0 {
            break;
        }
    }
    let page = Page { items, more };
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
