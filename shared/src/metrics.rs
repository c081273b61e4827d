//! Process-wide counters, rendered in the Prometheus text exposition format (0.0.4): what
//! `berth serve --metrics-listen` serves at `/metrics`.
//!
//! - `berth_http_requests_total{method,status}`: responses the server answered;
//! - `berth_aws_requests_total{service,operation}`: requests the AWS SDK clients sent (each retry
//!   attempt counts: each is billed), counted by [`crate::adapters::aws_calls::AwsCallCounter`];
//! - `berth_dynamodb_write_items_total{operation,kind}`: items written by those requests, `kind`
//!   `put`, `update`, `delete` or `condition_check` (DynamoDB bills write units per item, and
//!   twice that inside a transaction).
//!
//! A counter with no sample yet is not rendered: a server on embedded storage shows no AWS counters.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, Opts, Registry, TextEncoder};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's counters.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    aws_requests: IntCounterVec,
    dynamodb_write_items: IntCounterVec,
}

/// The HTTP methods counted by name; any other is `other`, so a client cannot grow the label set.
const METHODS: [&str; 7] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"];

impl Metrics {
    // The names and label sets are constants that the tests below render: registering them cannot
    // fail at run time.
    #[allow(clippy::expect_used)]
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
            registry
                .register(Box::new(counter.clone()))
                .expect("registered once");
            counter
        };
        Metrics {
            http_requests: counter(
                "berth_http_requests_total",
                "HTTP responses answered, by request method and response status.",
                &["method", "status"],
            ),
            aws_requests: counter(
                "berth_aws_requests_total",
                "Requests sent to AWS services (each retry attempt counts), by service and operation.",
                &["service", "operation"],
            ),
            dynamodb_write_items: counter(
                "berth_dynamodb_write_items_total",
                "Items written by DynamoDB requests, by operation and kind (put, update, delete, condition_check).",
                &["operation", "kind"],
            ),
            registry,
        }
    }
}

/// One HTTP response with `status` to a request with `method`.
pub fn http_response(method: &str, status: u16) {
    let method = METHODS.into_iter().find(|m| *m == method).unwrap_or("other");
    METRICS
        .http_requests
        .with_label_values(&[method, &status.to_string()])
        .inc();
}

/// One request sent to an AWS service (`S3`, `DynamoDB`), as the SDK names it.
pub fn aws_request(service: &str, operation: &str) {
    METRICS
        .aws_requests
        .with_label_values(&[service, operation])
        .inc();
}

/// `items` items of `kind` written by one DynamoDB `operation`.
pub fn dynamodb_write_items(operation: &str, kind: &str, items: u64) {
    if items > 0 {
        METRICS
            .dynamodb_write_items
            .with_label_values(&[operation, kind])
            .inc_by(items);
    }
}

/// Every counter in the Prometheus text format (empty if encoding failed, which is logged).
pub fn render() -> String {
    TextEncoder::new()
        .encode_to_string(&METRICS.registry.gather())
        .unwrap_or_else(|e| {
            tracing::warn!("cannot render the metrics: {e}");
            String::new()
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series` in `text`.
    fn sample(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn counted_requests_and_items_are_rendered_in_the_text_format() {
        // The registry is process-wide and other tests count too: compare before and after.
        let http = r#"berth_http_requests_total{method="GET",status="200"}"#;
        let other = r#"berth_http_requests_total{method="other",status="405"}"#;
        let aws = r#"berth_aws_requests_total{operation="TransactWriteItems",service="DynamoDB"}"#;
        let items = r#"berth_dynamodb_write_items_total{kind="put",operation="TransactWriteItems"}"#;
        let before = render();
        http_response("GET", 200);
        http_response("GET", 200);
        http_response("BREW", 405);
        aws_request("DynamoDB", "TransactWriteItems");
        dynamodb_write_items("TransactWriteItems", "put", 3);
        dynamodb_write_items("NoWrite", "delete", 0);
        let after = render();
        let grew = |series: &str| sample(&after, series).unwrap_or(0) - sample(&before, series).unwrap_or(0);
        assert_eq!(grew(http), 2, "{after}");
        assert_eq!(grew(other), 1, "an unknown method is `other`: {after}");
        assert_eq!(grew(aws), 1, "{after}");
        assert_eq!(grew(items), 3, "{after}");
        assert!(
            after.contains("# TYPE berth_aws_requests_total counter"),
            "{after}"
        );
        assert!(
            !after.contains(r#"operation="NoWrite""#),
            "no sample for zero items: {after}"
        );
    }
}
