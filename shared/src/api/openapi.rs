//! The OpenAPI 3.0 description of the management API, checked in as `shared/openapi.json` and
//! served at `/openapi.json` and `/openapi.yaml` (JSON is YAML 1.2, so the same bytes are both).
//! A test keeps it covering every row of the route table.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, as checked in.
pub(super) const DOCUMENT: &str = include_str!("../../openapi.json");

pub(super) async fn json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}

pub(super) async fn yaml() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], DOCUMENT).into_response()
}
