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
