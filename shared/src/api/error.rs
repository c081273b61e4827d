//! The one error body of the management API, Harbor's: `{"errors":[{"code","message"}]}`, with
//! codes `BAD_REQUEST` 400, `UNAUTHORIZED` 401, `FORBIDDEN` 403, `NOT_FOUND` 404,
//! `METHOD_NOT_ALLOWED` 405, `CONFLICT` 409, `PRECONDITION` 412, `PAYLOAD_TOO_LARGE` 413,
//! `UNSUPPORTED_MEDIA_TYPE` 415, `TOO_MANY_REQUESTS` 429 (with `Retry-After`),
//! `INTERNAL_SERVER_ERROR` 500, and `INSUFFICIENT_STORAGE` 507 for a write the storage had no space
//! for. The OpenAPI document's `Errors` schema lists the same codes (a test checks).
//! A 5xx body is generic; its cause is logged once, here.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppError;
use crate::domain::access::AccessError;
use crate::domain::lifecycle::retention::PolicyError;
use crate::oci::OciError;

/// Bytes of a non-JSON error body (an extractor's rejection) kept as the message.
const MAX_REJECTION_MESSAGE_BYTES: usize = 4_096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (a throttled sign-in).
    pub retry_after: Option<u64>,
}

/// The code of each status the API answers with.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 => "CONFLICT",
        412 => "PRECONDITION",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        429 => "TOO_MANY_REQUESTS",
        s if s >= 500 => "INTERNAL_SERVER_ERROR",
        _ => "BAD_REQUEST",
    }
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code_of(status),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn precondition(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PRECONDITION_FAILED, message)
    }

    /// A failure of ours: logged here, answered generically.
    pub fn internal(cause: &str) -> ApiError {
        tracing::error!(cause, "management API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        )
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        let message = e.to_string();
        match e {
            AccessError::ProjectExists(_)
            | AccessError::UserExists(_)
            | AccessError::MemberExists { .. }
            | AccessError::RobotExists(_)
            | AccessError::RegistryNameTaken(_)
            | AccessError::ReplicationPolicyNameTaken(_) => ApiError::new(StatusCode::CONFLICT, message),
            AccessError::RegistryInUse { .. } => ApiError::new(StatusCode::PRECONDITION_FAILED, message),
            AccessError::ProjectUnknown(_)
            | AccessError::UserUnknown(_)
            | AccessError::MemberUnknown { .. }
            | AccessError::RobotUnknown(_)
            | AccessError::ImmutableRuleUnknown { .. }
            | AccessError::RetentionPolicyUnknown { .. }
            | AccessError::RegistryUnknown(_)
            | AccessError::ReplicationPolicyUnknown(_) => ApiError::not_found(message),
            // Harbor's answers: two equal rules are a conflict; a second policy is a bad request.
            AccessError::RetentionPolicyInvalid(PolicyError::Conflict { .. }) => {
                ApiError::new(StatusCode::CONFLICT, message)
            }
            AccessError::RetentionPolicyExists { .. }
            | AccessError::RetentionPolicyInvalid(_)
            | AccessError::ScheduleInvalid(_) => ApiError::bad_request(message),
            AccessError::RobotWithoutActions
            | AccessError::UsernameReserved(_)
            | AccessError::ImmutableRuleInvalid(_)
            | AccessError::RegistryInvalid(_)
            | AccessError::ReplicationPolicyInvalid(_) => ApiError::bad_request(message),
            AccessError::LastAdmin => ApiError::forbidden(message),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Access(a) => a.into(),
            AppError::Denied(message) => ApiError::forbidden(message),
            AppError::Immutable(_) => ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string()),
            AppError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            AppError::InUse(message) => ApiError::new(StatusCode::PRECONDITION_FAILED, message),
            AppError::Contention | AppError::DecisionExpired => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            AppError::Throttled { retry_after } => ApiError {
                retry_after: Some(crate::app::retry_after_secs(retry_after)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
            },
            AppError::NameUnknown(_)
            | AppError::ManifestUnknown(_)
            | AppError::BlobUnknown(_)
            | AppError::UploadUnknown => ApiError::not_found(e.to_string()),
            AppError::Backend(cause) => ApiError::internal(&cause),
            AppError::InsufficientStorage => {
                tracing::error!("write refused: the registry's storage is full");
                ApiError {
                    code: "INSUFFICIENT_STORAGE",
                    ..ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
                }
            }
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// Credentials refused by the OCI authentication (401), or its backend failing (already logged).
impl From<OciError> for ApiError {
    fn from(e: OciError) -> Self {
        if e.status.is_server_error() {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log",
            )
        } else {
            let retry_after = (e.headers.iter())
                .find(|(name, _)| name == header::RETRY_AFTER)
                .and_then(|(_, value)| value.parse().ok());
            ApiError {
                retry_after,
                ..ApiError::new(e.status, e.message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "errors": [{ "code": self.code, "message": self.message }] });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Gives responses that axum produced itself (an extractor's rejection, 405, 413) the one error
/// body; the API's own errors already have it.
pub(super) async fn uniform(response: Response) -> Response {
    let status = response.status();
    let is_json = (response.headers().get(header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REJECTION_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if status.is_server_error() || text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut uniform = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            uniform.headers_mut().insert(name.clone(), value.clone());
        }
    }
    uniform
}
