//! The OCI error body (distribution-spec "Error Codes"): `{"errors":[{"code","message","detail"}]}`
//! with the status each code calls for. A 5xx body is generic; its cause is logged once.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppError;
use crate::domain::access::AccessError;
use crate::domain::name::NameError;
use crate::domain::DomainError;

/// The codes an error body may carry: the spec's table (a 4xx "MUST be one of" them), the
/// generic codes of a 5xx body (outside that rule), and Harbor's two 412 codes, which Harbor's
/// clients and users recognise (DESIGN.md): `PROJECTPOLICYVIOLATION` for a project's content-trust
/// refusal, `PRECONDITION` for a tag an immutable rule holds.
pub const CODES: [&str; 18] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "PROJECTPOLICYVIOLATION",
    "PRECONDITION",
    "UNKNOWN",
    "UNAVAILABLE",
];

#[derive(Debug)]
pub struct OciError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: serde_json::Value,
    pub headers: Vec<(HeaderName, String)>,
}

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        // Every test that reaches an error checks its code against the closed set.
        debug_assert!(CODES.contains(&code), "{code} is not an error code of the spec");
        OciError {
            status,
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
            headers: vec![],
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: String) -> OciError {
        self.headers.push((name, value));
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> OciError {
        self.detail = detail;
        self
    }

    pub fn name_invalid(e: &NameError) -> OciError {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name: {e}"),
        )
    }

    pub fn tag_invalid(e: &NameError) -> OciError {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            format!("invalid reference: {e}"),
        )
    }

    pub fn digest_invalid(e: impl std::fmt::Display) -> OciError {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest: {e}"),
        )
    }

    pub fn unsupported(message: impl Into<String>) -> OciError {
        OciError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    /// A chunk out of order: 416 with the upload's current `Range`.
    pub fn range_mismatch(size: u64) -> OciError {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!("chunk must start at byte {size}, where the upload ends"),
        )
        .with_header(HeaderName::from_static("range"), super::http::upload_range(size))
    }

    /// 507 for a write the storage had no space for. The spec has no code for it; distribution's
    /// `UNAVAILABLE` tells clients the service cannot do it now (not that they lack a permission).
    pub fn insufficient_storage(message: String) -> OciError {
        tracing::error!("write refused: the registry's storage is full");
        OciError::new(StatusCode::INSUFFICIENT_STORAGE, "UNAVAILABLE", message)
    }

    pub fn internal(cause: &str) -> OciError {
        tracing::error!(cause, "request failed");
        OciError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal error; see the server log",
        )
    }
}

impl From<AppError> for OciError {
    fn from(e: AppError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        match e {
            AppError::NameUnknown(_) => OciError::new(S::NOT_FOUND, "NAME_UNKNOWN", message),
            AppError::ManifestUnknown(_) => OciError::new(S::NOT_FOUND, "MANIFEST_UNKNOWN", message),
            AppError::BlobUnknown(d) => {
                OciError::new(S::NOT_FOUND, "BLOB_UNKNOWN", message).with_detail(json!({ "digest": d }))
            }
            AppError::UploadUnknown => OciError::new(S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", message),
            AppError::Domain(d) => match d {
                DomainError::ManifestBlobUnknown(digests) => {
                    OciError::new(S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", message)
                        .with_detail(json!({ "digests": digests }))
                }
                // The spec's push section: an unknown referenced blob *or manifest* is reported as
                // MANIFEST_BLOB_UNKNOWN.
                DomainError::ManifestChildUnknown(digests) => {
                    OciError::new(S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", message)
                        .with_detail(json!({ "digests": digests }))
                }
                DomainError::ManifestUnknown(_) | DomainError::TagUnknown(_) => {
                    OciError::new(S::NOT_FOUND, "MANIFEST_UNKNOWN", message)
                }
                DomainError::BlobUnknown(_) => OciError::new(S::NOT_FOUND, "BLOB_UNKNOWN", message),
            },
            AppError::ManifestInvalid(_) => OciError::new(S::BAD_REQUEST, "MANIFEST_INVALID", message),
            AppError::ManifestTooLarge { .. } => {
                OciError::new(S::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID", message)
            }
            AppError::DigestMismatch { expected, computed } => {
                OciError::new(S::BAD_REQUEST, "DIGEST_INVALID", message)
                    .with_detail(json!({ "expected": expected, "computed": computed }))
            }
            AppError::RangeMismatch { size } => OciError::range_mismatch(size),
            AppError::Contention | AppError::DecisionExpired => {
                OciError::new(S::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message)
            }
            AppError::Throttled { retry_after } => {
                OciError::new(S::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message).with_header(
                    axum::http::header::RETRY_AFTER,
                    crate::app::retry_after_secs(retry_after).to_string(),
                )
            }
            AppError::Access(a) => match a {
                AccessError::ProjectUnknown(_) => OciError::new(S::NOT_FOUND, "NAME_UNKNOWN", message),
                _ => OciError::new(S::CONFLICT, "DENIED", message),
            },
            AppError::Denied(_) => OciError::new(S::FORBIDDEN, "DENIED", message),
            AppError::Conflict(_) => OciError::new(S::CONFLICT, "DENIED", message),
            AppError::Invalid(_) => OciError::new(S::BAD_REQUEST, "UNSUPPORTED", message),
            AppError::InUse(_) => OciError::new(S::PRECONDITION_FAILED, "DENIED", message),
            // Harbor's code and message on /v2 as on its API.
            AppError::Immutable(_) => OciError::new(S::PRECONDITION_FAILED, "PRECONDITION", message),
            AppError::PolicyViolation(_) => {
                OciError::new(S::PRECONDITION_FAILED, "PROJECTPOLICYVIOLATION", message)
            }
            AppError::InsufficientStorage => OciError::insufficient_storage(message),
            AppError::Backend(cause) => OciError::internal(&cause),
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body =
            json!({ "errors": [{ "code": self.code, "message": self.message, "detail": self.detail }] });
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::to_bytes;

    use super::*;

    async fn body_and_headers(e: OciError) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let response = e.into_response();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            serde_json::from_slice(&bytes).unwrap(),
            parts.headers,
        )
    }

    #[test]
    fn every_code_is_upper_case_and_underscores() {
        for code in CODES {
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{code}"
            );
        }
    }

    /// CODE-14: both ways a request is throttled say `TOOMANYREQUESTS`; a refused sign-in also says
    /// when to come back.
    #[tokio::test]
    async fn throttling_and_contention_are_too_many_requests() {
        let throttled = AppError::Throttled {
            retry_after: Duration::from_secs(7),
        };
        let (status, body, headers) = body_and_headers(throttled.into()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
        assert_eq!(headers[axum::http::header::RETRY_AFTER], "7");

        let (status, body, _) = body_and_headers(AppError::Contention.into()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    }
}
