//! Small HTTP helpers the handlers share: parsing names, digests, query strings, ranges and
//! pagination, and the headers the spec asks for.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;

use crate::app::{ChunkRange, Page};
use crate::domain::{Digest, Reference, RepoName};
use crate::ports::{ByteRange, ByteStream, UploadId};

use super::error::OciError;

pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
pub const DOCKER_UPLOAD_UUID: &str = "docker-upload-uuid";
/// The chunk size an upload session advises (OCI distribution spec v1.1).
pub const OCI_CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";

pub fn repo(name: &str) -> Result<RepoName, OciError> {
    RepoName::in_project(name).map_err(|e| OciError::name_invalid(&e))
}

pub fn digest(s: &str) -> Result<Digest, OciError> {
    s.parse().map_err(OciError::digest_invalid)
}

pub fn reference(s: &str) -> Result<Reference, OciError> {
    s.parse().map_err(|e| match e {
        crate::domain::name::NameError::BadDigest(d) => OciError::digest_invalid(d),
        other => OciError::tag_invalid(&other),
    })
}

pub fn upload_id(s: &str) -> Result<UploadId, OciError> {
    UploadId::parse(s).ok_or_else(|| {
        OciError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "upload session not found",
        )
    })
}

pub fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

/// `n` of a paginated listing; `None` when absent.
pub fn page_size(q: &HashMap<String, String>) -> Result<Option<usize>, OciError> {
    match q.get("n") {
        None => Ok(None),
        Some(n) => n.parse().map(Some).map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "n must be a non-negative integer",
            )
        }),
    }
}

/// The `Range` an upload reports: `0-<last byte>` (`0-0` when empty, as clients expect).
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

pub fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

/// A chunk's `Content-Range: <start>-<end>` (a `bytes ` or `bytes=` prefix is tolerated); when
/// `Content-Length` is given too, it must agree.
pub fn chunk_range(headers: &HeaderMap, upload_size: u64) -> Result<Option<ChunkRange>, OciError> {
    let Some(raw) = header_str(headers, header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let spec = raw.trim_start_matches("bytes").trim_start_matches(['=', ' ']);
    let parsed = spec.split_once('-').and_then(|(a, b)| {
        Some(ChunkRange {
            start: a.trim().parse().ok()?,
            end: b.trim().parse().ok()?,
        })
    });
    let range = parsed.ok_or_else(|| OciError::range_mismatch(upload_size))?;
    if range.end < range.start {
        return Err(OciError::range_mismatch(upload_size));
    }
    if content_length(headers).is_some_and(|len| len != range.end - range.start + 1) {
        return Err(OciError::range_mismatch(upload_size));
    }
    Ok(Some(range))
}

/// A blob GET's `Range: bytes=<a>-<b>` (also `<a>-` and `-<suffix>`) against a blob of `size`.
/// `Ok(None)`: serve the whole blob. Multiple ranges are not supported and served whole.
pub fn byte_range(headers: &HeaderMap, size: u64) -> Result<Option<ByteRange>, OciError> {
    let Some(raw) = header_str(headers, header::RANGE) else {
        return Ok(None);
    };
    let unsatisfiable = || {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UNKNOWN",
            format!("range {raw} is not satisfiable"),
        )
        .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
    };
    let Some(spec) = raw.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        }
        (start, end) => {
            let start: u64 = start.parse().map_err(|_| unsatisfiable())?;
            let end: u64 = if end.is_empty() {
                u64::MAX
            } else {
                end.parse().map_err(|_| unsatisfiable())?
            };
            if start >= size || end < start {
                return Err(unsatisfiable());
            }
            ByteRange {
                start,
                end: end.min(size - 1),
            }
        }
    };
    Ok(Some(range))
}

pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// A `Link` header to the next page: `<path?query>; rel="next"`.
pub fn next_link<T>(page: &Page<T>, path: &str, params: &[(&str, String)]) -> Option<String> {
    if !page.more {
        return None;
    }
    let query = serde_urlencoded::to_string(params).ok()?;
    Some(format!("<{path}?{query}>; rel=\"next\""))
}

pub fn empty(status: StatusCode) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, "0")
}

/// Finishes a response builder; failures here are programming errors reported as 500.
pub fn finish(builder: axum::http::response::Builder, body: Body) -> Result<Response, OciError> {
    builder.body(body).map_err(|e| OciError::internal(&e.to_string()))
}
