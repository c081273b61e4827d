//! The AWS storage configuration: `berth serve --storage aws` with blobs in s3s-fs (an S3 that
//! checks SigV4 signatures) and the event log and views in DynamoDB on moto, as started by
//! `scripts/local-stack.sh up` (whose `env` output the test command exports).

use std::process::Command;

use crate::harness::*;
use crate::skopeo::{assert_layout_has_image, assert_registry_serves_image, docker_ref, oci_ref};

/// The environment for a berth process on the local stack, with a bucket and table of its own;
/// `None` (after saying why) when the AWS tests are skipped on purpose.
fn aws_env() -> Option<Vec<(String, String)>> {
    if std::env::var("BERTH_SKIP_AWS_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: BERTH_SKIP_AWS_TESTS=1");
        return None;
    }
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `scripts/local-stack.sh up` and `eval \"$(scripts/local-stack.sh env)\"`")
        })
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("e2e-{}-{nanos}", std::process::id());
    Some(vec![
        ("BERTH_STORAGE".into(), "aws".into()),
        ("BERTH_S3_BUCKET".into(), name.clone()),
        ("BERTH_DYNAMODB_TABLE".into(), name),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ENDPOINT_URL_S3".into(), var("BERTH_TEST_S3_S3SFS_ENDPOINT")),
        (
            "AWS_ACCESS_KEY_ID".into(),
            var("BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            var("BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY"),
        ),
        (
            "AWS_ENDPOINT_URL_DYNAMODB".into(),
            var("AWS_ENDPOINT_URL_DYNAMODB"),
        ),
    ])
}

/// `berth aws init` creates the bucket and the table, then a server starts on them.
fn start_on_aws() -> Option<Registry> {
    if skip_unless_berth("the AWS storage is Berth's") {
        return None;
    }
    let env = aws_env()?;
    let out = Command::new(berth_bin())
        .args(["aws", "init"])
        .envs(env.iter().cloned())
        .output()
        .expect("run berth aws init");
    assert!(
        out.status.success(),
        "berth aws init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Registry::start_with_env(env))
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
