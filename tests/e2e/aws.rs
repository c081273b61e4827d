//! The AWS storage configuration: `berth serve --storage aws` with blobs in s3s-fs (an S3 that
//! checks SigV4 signatures) and the event log and views in DynamoDB on moto, as started by
//! `scripts/local-stack.sh up` (whose `env` output the test command exports).

use crate::harness::*;
use crate::skopeo::{assert_layout_has_image, assert_registry_serves_image, docker_ref, oci_ref};

/// `berth aws init` creates the bucket and the table, then a server starts on them.
fn start_on_aws() -> Option<Registry> {
    if skip_unless_berth("the AWS storage is Berth's") {
        return None;
    }
    Some(Registry::start_with_env(local_stack_env()?))
}

#[test]
fn on_the_aws_storage_skopeo_round_trips_an_image_and_the_views_rebuild_from_dynamodb() {
    let Some(mut reg) = start_on_aws() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    let mut layout = OciLayout::create(&src);
    let image = layout.add_image("amd64", &sample_layers("aws"));
    layout.tag(&image.manifest, "v1");

    skopeo_push(
        &oci_ref(&src, "v1"),
        &docker_ref(&reg, "e2e/aws-app:v1"),
        &["--preserve-digests"],
    );
    assert_eq!(
        reg.resolve("e2e/aws-app", "v1"),
        Some(image.manifest.digest.clone())
    );
    assert_registry_serves_image(&reg, "e2e/aws-app", &layout, &image);
    skopeo_pull(
        &docker_ref(&reg, "e2e/aws-app:v1"),
        &oci_ref(&out, "v1"),
        &["--preserve-digests"],
    );
    assert_eq!(layout_ref(&out, "v1").digest, image.manifest.digest);
    assert_layout_has_image(&out, &layout, &image);

    let local: Vec<_> = std::fs::read_dir(reg.data_dir()).unwrap().collect();
    assert!(
        local.is_empty(),
        "the AWS storage wrote to the local data dir: {local:?}"
    );

    reg.stop();
    let events = reg.assert_rebuild_identical();
    assert!(
        events >= 5,
        "3 blobs + manifest + tag at least, got {events} events"
    );
    reg.restart();
    assert_eq!(
        reg.resolve("e2e/aws-app", "v1"),
        Some(image.manifest.digest.clone()),
        "the tag survives a restart (it lives in DynamoDB, not in the process)"
    );
}

/// `berth serve --metrics-listen`: `GET /metrics` on a listener of its own counts the responses
/// answered and, on the AWS storage, the requests sent to DynamoDB and S3 and the items written
/// (on embedded storage there are none to count).
#[test]
fn the_metrics_listener_counts_requests_and_aws_calls() {
    if skip_unless_berth("the metrics listener is Berth's") {
        return;
    }
    if deployment() == Deployment::Lambda {
        eprintln!("SKIPPED under BERTH_E2E_TARGET=lambda: the api function has no `berth serve`");
        return;
    }
    let reg = Registry::start_with_env(vec![
        ("BERTH_METRICS_LISTEN".into(), "127.0.0.1:0".into()),
        ("BERTH_LOG".into(), "info".into()),
    ]);
    let url = metrics_url(&reg);
    let before = metrics(&reg, &url);

    reg.push_small_image("e2e/metered", "v1");
    assert_eq!(reg.manifest_status("e2e/metered", "v1"), 200);
    let after = metrics(&reg, &url);

    let grew = |metric: &str, labels: &[&str]| total(&after, metric, labels) - total(&before, metric, labels);
    let http = "berth_http_requests_total";
    assert!(
        grew(http, &[r#"method="PUT""#, r#"status="201""#]) >= 3.0,
        "two blobs and a manifest were pushed:\n{after}"
    );
    assert!(
        grew(http, &[r#"method="GET""#, r#"status="200""#]) >= 1.0,
        "the manifest was pulled:\n{after}"
    );
    let aws = "berth_aws_requests_total";
    let items = "berth_dynamodb_write_items_total";
    if deployment() == Deployment::Aws {
        assert!(grew(aws, &[r#"service="DynamoDB""#]) > 0.0, "{after}");
        assert!(grew(aws, &[r#"service="S3""#]) > 0.0, "{after}");
        assert!(
            grew(
                aws,
                &[r#"service="DynamoDB""#, r#"operation="TransactWriteItems""#]
            ) > 0.0,
            "a push appends to the log in a transaction:\n{after}"
        );
        assert!(grew(items, &[r#"kind="put""#]) > 0.0, "{after}");
    } else {
        assert!(
            !after.contains(aws) && !after.contains(items),
            "embedded storage sends nothing to AWS:\n{after}"
        );
    }
    let on_registry = reg.get("/metrics").text().unwrap_or_default();
    assert!(
        !on_registry.contains(http),
        "the registry's own port does not serve the metrics: {on_registry}"
    );
}

/// The `/metrics` URL the server logged at start (it was asked for port 0).
fn metrics_url(reg: &Registry) -> String {
    let log = reg.server_log();
    let start = log
        .find("metrics on http://")
        .map(|at| at + "metrics on ".len())
        .unwrap_or_else(|| panic!("the server logged no metrics address:\n{log}"));
    log[start..].split_whitespace().next().expect("a URL").to_owned()
}

/// `GET <url>`: asserts the Prometheus text format; returns the body.
fn metrics(reg: &Registry, url: &str) -> String {
    let resp = reg.http.get(url).send().expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = header(&resp, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    resp.text().expect("metrics body")
}

/// The sum of `metric`'s samples whose labels include every one of `labels` (`name="value"`).
fn total(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(metric)?.strip_prefix('{'))
        .filter_map(|rest| rest.split_once('}'))
        .filter(|(set, _)| labels.iter().all(|l| set.split(',').any(|have| have == *l)))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}
