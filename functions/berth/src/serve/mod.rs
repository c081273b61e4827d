//! The container host: `berth serve`'s HTTP server (HTTP/1.1, and HTTP/2 by prior knowledge) with
//! limits against clients that hold connections without using them:
//!
//! - at most `max_connections` open at once; beyond that new connections wait in the listen
//!   backlog, and the log says so (once a minute while it lasts);
//! - the header-read and idle timeouts of [`watchdog`];
//! - the body-rate floor of [`body_rate`];
//! - refusals answered only once the client has sent its body ([`drain`]);
//! - the file-descriptor soft limit raised to the hard limit at start, so the connection cap, not
//!   the descriptor limit, is what bounds connections.
//!
//! Every response is counted in `berth_http_requests_total` ([`berth::metrics`]).
//!
//! SIGTERM or ctrl-c stops accepting, lets requests in flight finish and closes idle connections.

mod body_rate;
mod drain;
mod watchdog;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse as _, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

use body_rate::{MinRate, Tripped};
use watchdog::{Activity, Timeouts, Watched};

/// How often "connection limit reached" is logged while it lasts.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// After SIGTERM, how long a connection without a request in flight stays: a response still being
/// written keeps it as long as bytes move; a half-sent or idle one closes.
const SHUTDOWN_GRACE: Timeouts = Timeouts {
    header_read: Duration::from_secs(1),
    idle: Duration::from_secs(1),
};
/// How long to pause accepting after an accept error (out of descriptors, most often), so the loop
/// does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The host's limits (flags on `berth serve`).
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; more wait in the listen backlog.
    #[arg(long, env = "BERTH_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: u32,
    /// Seconds a client has to send a request's head (from connecting, or from the next
    /// request's first byte on a kept-alive connection).
    #[arg(long, env = "BERTH_HEADER_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub header_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests.
    #[arg(long, env = "BERTH_IDLE_TIMEOUT_SECS", default_value_t = 75)]
    pub idle_timeout_secs: u64,
    /// Bytes per second a request body must average over each minute (0: no floor).
    #[arg(long, env = "BERTH_MIN_BODY_RATE", default_value_t = body_rate::DEFAULT_MIN_BODY_RATE)]
    pub min_body_rate: u64,
}

impl ConnectionLimits {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header_read: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            idle: Duration::from_secs(self.idle_timeout_secs.max(1)),
        }
    }
}

/// Serves `router` on `listener` until SIGTERM or ctrl-c.
pub async fn run(listener: TcpListener, router: Router, limits: ConnectionLimits) -> anyhow::Result<()> {
    raise_descriptor_limit();
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = crate::commands::shutdown();
    tokio::pin!(shutdown);
    let mut last_limit_log: Option<tokio::time::Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_limit_log.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL) {
                    tracing::warn!(
                        "connection limit {max} reached: new connections wait until one closes \
                         (raise --max-connections / BERTH_MAX_CONNECTIONS if this is legitimate load)"
                    );
                    last_limit_log = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.context("connection slots closed")?,
                    _ = &mut shutdown => break,
                }
            }
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let router = router.clone();
        let limits = limits.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(tcp, remote, router, &limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection gives its slot back once it has closed.
    let _all = slots.acquire_many(max).await;
    Ok(())
}

/// Serves one connection until it closes, overstays a timeout, or the server stops.
async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    router: Router,
    limits: &ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    // Small responses (manifest HEAD/GET) must not wait for the client's delayed ACK.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!("cannot set TCP_NODELAY: {e}");
    }
    let activity = Activity::new();
    let io = TokioIo::new(Watched::new(tcp, activity.clone()));
    let min_rate = limits.min_body_rate;
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let router = router.clone();
        let in_flight = requests.begin();
        async move {
            let method = request.method().clone();
            let response = handle(router, request, remote, min_rate).await;
            count(&method, &response);
            drop(in_flight);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let timeouts = limits.timeouts();
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote, "connection ended: {e}");
            }
        }
        _ = activity.expired(timeouts) => {
            tracing::debug!(%remote, "connection closed: it overstayed the header-read or idle timeout");
        }
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = activity.expired(SHUTDOWN_GRACE) => {}
            }
        }
    }
}

/// Resolves once the server stops (or its stop signal is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// One request through the router, knowing its client's address and with its body rate watched.
async fn handle<B>(router: Router, request: Request<B>, remote: SocketAddr, min_rate: u64) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let version = request.version();
    let expect_continue = drain::expects_continue(request.headers());
    let declared = berth::oci::http::content_length(request.headers());
    let tripped = Tripped::default();
    let (parts, body) = request.into_parts();
    let (body, leftover) = drain::share(MinRate::wrap(Body::new(body), min_rate, tripped.clone()));
    let mut request = Request::from_parts(parts, body);
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(remote));
    let answered = berth::app::with_client_address(remote.ip(), router.oneshot(request)).await;
    let mut response = match answered {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !tripped.is_set() {
        leftover
            .drain(version, expect_continue, declared, &mut response)
            .await;
        return response;
    }
    // The handler saw a failed body; the client hears why, and an HTTP/1 connection closes.
    let mut response = berth::oci::OciError::new(
        StatusCode::REQUEST_TIMEOUT,
        "BLOB_UPLOAD_INVALID",
        format!(
            "the request body arrived slower than {min_rate} bytes/s over {} s; send it faster, or \
             resume the upload from its Range",
            body_rate::RATE_WINDOW.as_secs()
        ),
    )
    .into_response();
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Counts the response in `berth_http_requests_total` ([`berth::metrics`]).
fn count(method: &axum::http::Method, response: &Response) {
    berth::metrics::http_response(method.as_str(), response.status().as_u16());
}

/// Raises the soft limit on open files to the hard limit: each connection takes a descriptor,
/// and distributions' default soft limit (1,024) is below the connection cap.
fn raise_descriptor_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let before = limit.current;
    limit.current = limit.maximum;
    match setrlimit(Resource::Nofile, limit) {
        Ok(()) => tracing::debug!("open files limit raised from {before:?} to {:?}", limit.maximum),
        Err(e) => tracing::warn!("cannot raise the open files limit from {before:?}: {e}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A route that stores its body, failing with 500 as the upload handlers do on a read error.
    fn upload_router() -> Router {
        Router::new().route(
            "/upload",
            axum::routing::post(|body: Body| async move {
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(bytes) => (StatusCode::CREATED, bytes.len().to_string()),
                    Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                }
            }),
        )
    }

    fn post(body: Body) -> Request<Body> {
        Request::post("/upload").body(body).unwrap()
    }

    const REMOTE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upload_is_answered_408_and_closes_the_connection() {
        let stalled = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
        let response = handle(upload_router(), post(Body::from_stream(stalled)), REMOTE, 1024).await;
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID", "{body}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_upload_at_a_working_rate_is_untouched() {
        let response = handle(upload_router(), post(Body::from(vec![1u8; 10_000])), REMOTE, 1024).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}
