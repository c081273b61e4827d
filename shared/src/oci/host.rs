//! What the host in front of the router can carry, and how it serves blob content.
//!
//! The same router runs in two hosts. The container host (`berth serve`) streams request and response
//! bodies of any size. The Lambda `api` function receives the whole request as one invocation payload,
//! capped by Lambda at 6 MB, and a function URL base64-encodes binary bodies inside it, so a raw body
//! may be at most [`LAMBDA_MAX_REQUEST_BODY`]: larger blobs must arrive as chunked uploads (PATCH with
//! `Content-Range`), which the upload responses invite with `OCI-Chunk-Min-Length`. Blob content is
//! served by redirecting to a presigned object-store URL when the store has one, which also keeps large
//! responses out of the Lambda payload.

use std::time::Duration;

/// Lambda's cap on a synchronous invocation's request payload (6 MB).
pub const LAMBDA_MAX_PAYLOAD: u64 = 6 * 1024 * 1024;
/// What the event envelope (request line, headers, JSON framing) may take of the payload.
const LAMBDA_ENVELOPE_RESERVE: u64 = 64 * 1024;
/// The largest raw request body the Lambda host accepts: what fits in the payload once base64-encoded
/// (4 characters per 3 bytes) beside the envelope. 4,669,440 bytes.
pub const LAMBDA_MAX_REQUEST_BODY: u64 = (LAMBDA_MAX_PAYLOAD - LAMBDA_ENVELOPE_RESERVE) / 4 * 3;
/// The chunk size the Lambda host advertises: a round size below [`LAMBDA_MAX_REQUEST_BODY`].
pub const LAMBDA_CHUNK_LENGTH: u64 = 4 * 1024 * 1024;
/// The chunk size the container host advertises: S3's minimum multipart part, below which the S3
/// store has to stage chunks.
pub const CONTAINER_CHUNK_LENGTH: u64 = 5 * 1024 * 1024;
// A body at the limit fits the payload once base64-encoded, and the advised chunk fits the limit.
const _: () =
    assert!(LAMBDA_MAX_REQUEST_BODY.div_ceil(3) * 4 + LAMBDA_ENVELOPE_RESERVE <= LAMBDA_MAX_PAYLOAD);
const _: () = assert!(LAMBDA_CHUNK_LENGTH < LAMBDA_MAX_REQUEST_BODY);
/// How long a blob redirect stays valid unless configured otherwise.
pub const DEFAULT_REDIRECT_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// For messages: which host refused a request.
    pub name: &'static str,
    /// The largest request body the host can deliver; `None`: any size (streamed).
    pub max_request_body: Option<u64>,
    /// Advertised as `OCI-Chunk-Min-Length` by upload sessions.
    pub chunk_length: u64,
    /// When set, blob GETs answer 307 to the store's direct URL, valid this long (if the store has
    /// such URLs: the local disk store has none and streams instead). HEAD always answers directly.
    pub blob_redirect: Option<Duration>,
    /// Whether work may go on after a request's answer (a garbage collection run started through
    /// the API): a long-running process can; a Lambda function is frozen once it answered.
    pub background_jobs: bool,
}

impl Host {
    /// `berth serve`: no body limit; blobs redirected when the store allows it.
    pub fn container() -> Host {
        Host {
            name: "container host",
            max_request_body: None,
            chunk_length: CONTAINER_CHUNK_LENGTH,
            blob_redirect: Some(DEFAULT_REDIRECT_TTL),
            background_jobs: true,
        }
    }

    /// The Lambda `api` function.
    pub fn lambda() -> Host {
        Host {
            name: "Lambda host",
            max_request_body: Some(LAMBDA_MAX_REQUEST_BODY),
            chunk_length: LAMBDA_CHUNK_LENGTH,
            blob_redirect: Some(DEFAULT_REDIRECT_TTL),
            background_jobs: false,
        }
    }

    /// Redirect blob GETs for `ttl`, or (`None`) always stream them through the host.
    pub fn with_blob_redirect(self, ttl: Option<Duration>) -> Host {
        Host {
            blob_redirect: ttl,
            ..self
        }
    }
}

/// Reads the blob-redirect settings shared by every host: `BERTH_BLOB_REDIRECT` (`true`/`false`,
/// default true) and `BERTH_PRESIGN_TTL_SECS` (default 900, at most 7 days).
pub fn blob_redirect_from_env() -> Result<Option<Duration>, String> {
    let enabled = match std::env::var("BERTH_BLOB_REDIRECT").ok().as_deref() {
        None | Some("") | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => return Err(format!("BERTH_BLOB_REDIRECT={other}: expected true or false")),
    };
    let ttl = match std::env::var("BERTH_PRESIGN_TTL_SECS")
        .ok()
        .filter(|v| !v.is_empty())
    {
        None => DEFAULT_REDIRECT_TTL,
        Some(v) => parse_ttl(&v)?,
    };
    Ok(enabled.then_some(ttl))
}

/// A presigned URL's lifetime in seconds: 1 second to 7 days (SigV4's limit).
pub fn parse_ttl(secs: &str) -> Result<Duration, String> {
    match secs.parse::<u64>() {
        Ok(n) if (1..=7 * 24 * 60 * 60).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "presign TTL {secs:?}: expected whole seconds from 1 to 604800 (7 days)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presign_ttls_are_bounded_by_sigv4() {
        assert_eq!(parse_ttl("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("604800"), Ok(Duration::from_secs(604_800)));
        for bad in ["0", "604801", "-1", "15m", ""] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} accepted");
        }
    }
}
