//! Logging for the hosts.

/// Logs for Lambda: plain lines without colours or timestamps (CloudWatch stamps every line),
/// filtered by `RUST_LOG` (default `info`). Call once, first thing in a function's `main`.
pub fn init_lambda() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}
