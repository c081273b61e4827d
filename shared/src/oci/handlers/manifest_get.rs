//! end-3: `GET|HEAD /v2/<name>/manifests/<reference>`, with `Docker-Content-Digest` and content
//! negotiation: fetched by tag, a manifest whose media type the `Accept` header excludes is
//! reported unknown (as distribution does); fetched by digest it is served as stored. In a project
//! that requires signatures, an artifact without them answers 412 `PROJECTPOLICYVIOLATION`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::{Registry, RequestContext};
use crate::domain::Reference;
use crate::oci::http::{self, finish, DOCKER_CONTENT_DIGEST};
use crate::oci::OciError;

pub async fn handle(
    registry: &Registry,
    ctx: &RequestContext,
    name: &str,
    reference: &str,
    head: bool,
    request: Request,
) -> Result<Response, OciError> {
    let repo = http::repo(name)?;
    let reference = http::lookup_reference(reference)?;
    // Resolved once: the policy is checked on, and the response serves, this one manifest (a tag
    // moved meanwhile changes neither).
    let record = registry.resolve_manifest(&repo, &reference).await?;
    registry.check_pull(ctx, &repo, &record).await?;
    if matches!(reference, Reference::Tag(_)) && !accepts(request.headers(), &record.media_type) {
        return Err(OciError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!(
                "manifest {reference} is a {}, which the Accept header does not include",
                record.media_type
            ),
        ));
    }
    let builder = axum::http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &record.media_type)
        .header(header::CONTENT_LENGTH, record.size)
        .header(DOCKER_CONTENT_DIGEST, record.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", record.digest));
    if head {
        return finish(builder, Body::empty());
    }
    let content = registry.manifest_content(&record).await?;
    // A GET is a pull (Harbor's `pull_time`, retention's pull rules); a HEAD is not.
    registry.record_pull(ctx, &repo, &record.digest).await;
    finish(builder, Body::from(content))
}

/// Whether the `Accept` headers (absent, wildcard, or listing `media_type`) allow `media_type`.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut listed = (headers.get_all(header::ACCEPT).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| !t.is_empty())
        .peekable();
    if listed.peek().is_none() {
        return true;
    }
    listed.any(|t| t == media_type || t == "*/*" || t == "application/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_allow_listed_and_wildcard_types_only() {
        let cases = [
            (vec![], true),
            (vec!["application/vnd.oci.image.manifest.v1+json"], true),
            (
                vec!["application/json, application/vnd.oci.image.manifest.v1+json;q=0.5"],
                true,
            ),
            (vec!["text/plain", "*/*"], true),
            (vec!["application/vnd.oci.image.index.v1+json"], false),
        ];
        for (accept, expected) in cases {
            let mut headers = HeaderMap::new();
            for a in &accept {
                headers.append(header::ACCEPT, a.parse().unwrap());
            }
            assert_eq!(
                accepts(&headers, "application/vnd.oci.image.manifest.v1+json"),
                expected,
                "{accept:?}"
            );
        }
    }
}
