//! The Lambda `api` function: the OCI router of `berth serve`, behind lambda_http (function URL,
//! API Gateway or ALB events). Configuration and SDK clients are built once, at cold start.

use std::time::Instant;

use axum::extract::Request;
use axum::http::Uri;
use berth::adapters::aws::{self, AwsTargets};
use berth::oci::{self, host, Host};
use lambda_http::RequestExt;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let started = Instant::now();
    berth::telemetry::init_lambda();
    let targets = AwsTargets::from_env()?;
    let host = Host::lambda().with_blob_redirect(host::blob_redirect_from_env()?);
    let auto_create = std::env::var("BERTH_AUTO_CREATE_PROJECTS").is_ok_and(|v| v == "true");
    let registry = (aws::open(&targets).await)
        .with_auto_create_projects(auto_create)
        .with_reverify_budget(berth::app::reverify_budget_from_env()?);
    // First start of a deployment: the admin's password must be configured (a Lambda function
    // has nowhere to show a generated one but its logs, where secrets never go).
    match std::env::var("BERTH_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()) {
        Some(password) => {
            registry.bootstrap(Some(&password)).await?;
        }
        None if !registry.directory().await?.has_admin() => tracing::warn!(
            "no system admin yet: set BERTH_ADMIN_PASSWORD, or run `berth admin create-user admin --admin --storage aws`"
        ),
        None => {}
    }
    let auth = oci::AuthConfig::from_env()?;
    let registry = registry.with_login_limits(berth::app::LoginLimits::from_env()?);
    let router = oci::router(registry, host, auth)
        .layer(axum::middleware::map_request(with_raw_path))
        .layer(axum::middleware::from_fn(with_source_ip));
    tracing::info!(
        init_us = started.elapsed().as_micros() as u64,
        bucket = %targets.bucket,
        table = %targets.table,
        "api initialised"
    );
    lambda_http::run(router).await
}

/// Runs the request knowing its client's address (the sign-in throttle counts failures per address
/// too), from the API Gateway or function URL request context; an ALB request has none there.
async fn with_source_ip(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    use lambda_http::request::RequestContext;
    let source = match request.extensions().request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        _ => None,
    };
    match source.and_then(|ip| ip.parse().ok()) {
        Some(address) => berth::app::with_client_address(address, next.run(request)).await,
        None => next.run(request).await,
    }
}

/// Routes on the path as the client sent it. lambda_http rebuilds the request URI through a URL
/// parser, which resolves `..` segments (`/v2/a/../b/` becomes `/v2/b/`); the container host sees the
/// raw path and refuses such names, and the Lambda host must answer the same.
async fn with_raw_path(mut request: Request) -> Request {
    let raw = request.extensions().raw_http_path();
    if raw.is_empty() || raw == request.uri().path() {
        return request;
    }
    let target = match request.uri().query() {
        Some(query) => format!("{raw}?{query}"),
        None => raw.to_string(),
    };
    if let Ok(uri) = target.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}
