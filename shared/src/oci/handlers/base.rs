//! end-1: `GET /v2/` — the API version check.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::oci::http::finish;
use crate::oci::OciError;

pub fn handle() -> Result<Response, OciError> {
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    finish(builder, Body::from("{}"))
}
