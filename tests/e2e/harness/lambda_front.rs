//! What AWS puts in front of a function URL, where cargo-lambda's emulator differs from it.
//!
//! The emulator builds the function URL event from the HTTP request, but unlike AWS:
//! - it keeps only the first value of a repeated header (AWS joins them with commas: skopeo sends
//!   one `Accept` line per manifest type);
//! - it rejects a binary body that has no `Content-Type` with a 500 before invoking the function
//!   (AWS base64-encodes it: docker PATCHes layers without one).
//!
//! This front listens where clients connect and passes each request on to the emulator with the
//! repeated headers joined and `Content-Type: application/octet-stream` on an untyped body, so the
//! event the `api` function receives is the one AWS would build. Nothing else is changed (the path
//! goes on byte for byte: no URL parser resolves its `..`), and responses come back as they are.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Serves on `listener` (blocking the calling thread: run it on its own), forwarding to
/// `127.0.0.1:<upstream>` (read per request: a restarted emulator may listen elsewhere).
pub fn serve(listener: TcpListener, upstream: Arc<AtomicU16>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("front runtime");
    runtime.block_on(async move {
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("front listener");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((client, upstream));
        let _ = axum::serve(listener, app).await;
    });
}

async fn forward(
    State((client, upstream)): State<(Client<HttpConnector, Body>, Arc<AtomicU16>)>,
    request: Request,
) -> Response {
    let upstream = upstream.load(Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://127.0.0.1:{upstream}{path}");
    let mut headers = HeaderMap::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = (parts.headers.get_all(name).iter())
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let Ok(joined) = HeaderValue::from_str(&values.join(", ")) {
            headers.insert(name.clone(), joined);
        }
    }
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => return error(format!("front: reading the request body: {e}")),
    };
    if !bytes.is_empty() && !headers.contains_key("content-type") {
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    headers.remove("transfer-encoding");
    let mut forwarded = Request::new(Body::from(bytes));
    *forwarded.method_mut() = parts.method;
    *forwarded.headers_mut() = headers;
    *forwarded.uri_mut() = match url.parse() {
        Ok(uri) => uri,
        Err(e) => return error(format!("front: {url}: {e}")),
    };
    let sent = client.request(forwarded).await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(e) => return error(format!("front: the emulator did not answer: {e}")),
    };
    let (mut parts, body) = upstream.into_parts();
    parts.headers.remove("transfer-encoding");
    parts.headers.remove("connection");
    Response::from_parts(parts, Body::new(body))
}

fn error(message: String) -> Response {
    Response::builder()
        .status(502)
        .body(Body::from(message))
        .unwrap_or_default()
}
