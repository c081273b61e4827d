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

/// A reference to look up (GET, HEAD, DELETE): one that cannot be parsed names no manifest that can
/// exist, so it is unknown (404 `MANIFEST_UNKNOWN`, as the spec's suites expect), not a bad request.
/// A PUT parses with [`reference`] and stays a 400.
pub fn lookup_reference(s: &str) -> Result<Reference, OciError> {
    s.parse().map_err(|e: crate::domain::name::NameError| {
        OciError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest unknown: {s:?} is neither a tag nor a digest ({e})"),
        )
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

/// `n` of a paginated listing; `None` when absent. One that is not a number is an invalid
/// parameter: `UNSUPPORTED` in the spec's (closed) table of codes, where distribution says
/// `PAGINATION_NUMBER_INVALID`.
pub fn page_size(q: &HashMap<String, String>) -> Result<Option<usize>, OciError> {
    match q.get("n") {
        None => Ok(None),
        Some(n) => n.parse().map(Some).map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!("n must be a non-negative integer, not {n:?}"),
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

/// A chunk's `Content-Range: <start>-<end>` (a `bytes ` or `bytes=` prefix is tolerated). One
/// that does not parse or runs backwards is a range the upload cannot take (416 with the upload's
/// `Range`); a `Content-Length` that disagrees with it is the spec's `SIZE_INVALID` (400).
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
    // `0-18446744073709551615` spans 2^64 bytes, one more than a u64 holds (and than any
    // Content-Length can say): `None`, never an overflow.
    let span = (range.end - range.start).checked_add(1);
    if let Some(length) = content_length(headers).filter(|&len| Some(len) != span) {
        let span = span.map_or_else(|| "2^64".to_string(), |n| n.to_string());
        return Err(OciError::new(
            StatusCode::BAD_REQUEST,
            "SIZE_INVALID",
            format!("Content-Length is {length} but Content-Range {raw} spans {span} bytes"),
        ));
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    /// Found by the `range` fuzz target (docs/fuzzing.md): a range ending at `u64::MAX` and
    /// starting at 0 spans 2^64 bytes, and computing that overflowed (a panic with overflow checks,
    /// a span of 0 without them, which a `Content-Length: 0` then matched).
    #[test]
    fn a_content_range_spanning_two_to_the_64_bytes_does_not_overflow() {
        let whole = "0-18446744073709551615";
        let range = chunk_range(&headers(&[(header::CONTENT_RANGE, whole)]), 0).unwrap();
        assert_eq!(
            range,
            Some(ChunkRange {
                start: 0,
                end: u64::MAX
            })
        );
        for length in ["0", "18446744073709551615"] {
            let e = chunk_range(
                &headers(&[(header::CONTENT_RANGE, whole), (header::CONTENT_LENGTH, length)]),
                0,
            )
            .unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
                "{length}"
            );
        }
        let last = "bytes=18446744073709551614-18446744073709551615";
        let range = chunk_range(
            &headers(&[(header::CONTENT_RANGE, last), (header::CONTENT_LENGTH, "2")]),
            0,
        );
        assert!(range.unwrap().is_some());
    }
}
