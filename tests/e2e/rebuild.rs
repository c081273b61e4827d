//! Rebuilding the views from the event log: after a varied workload, `berth rebuild-views` finds
//! the replayed views identical, and the restarted registry answers exactly as before.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::harness::*;

/// Everything a client can observe that the views hold, for a set of repositories, subjects and
/// blobs: catalog, tags and what they resolve to, referrers, blob presence.
fn snapshot(reg: &Registry, subjects: &[(&str, &str)], blobs: &[(&str, &str)]) -> Value {
    let mut repos = BTreeMap::new();
    for repo in reg.catalog() {
        let mut tags = BTreeMap::new();
        for tag in reg.all_tags(&repo) {
            tags.insert(tag.clone(), reg.resolve(&repo, &tag));
        }
        repos.insert(repo, tags);
    }
    let referrers: Vec<Value> = subjects
        .iter()
        .map(|(repo, digest)| {
            reg.get(&format!("/v2/{repo}/referrers/{digest}"))
                .json::<Value>()
                .unwrap()
        })
        .collect();
    let blobs: Vec<u16> = blobs
        .iter()
        .map(|(repo, digest)| reg.blob_status(repo, digest))
        .collect();
    json!({"repositories": repos, "referrers": referrers, "blobs": blobs})
}

fn push_referrer(reg: &Registry, repo: &str, subject: &Descriptor, artifact_type: &str) -> String {
    let config = Descriptor::of(OCI_EMPTY, b"{}");
    reg.push_blob(repo, b"{}");
    let layer = random_bytes(64);
    reg.push_blob(repo, &layer);
    let manifest = image_manifest(
        &config,
        &[Descriptor::of("application/octet-stream", &layer)],
        Some(subject),
        Some(artifact_type),
    );
    let digest = sha256(&manifest);
    reg.push_manifest(repo, &digest, OCI_MANIFEST, &manifest)
}

#[test]
fn rebuilding_the_views_after_a_varied_workload_changes_nothing() {
    if skip_unless_berth("`berth rebuild-views` is Berth's") {
        return;
    }
    let mut reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();

    // Images and an index with skopeo.
    let mut layout = OciLayout::create(tmp.path());
    let image = layout.add_image("amd64", &sample_layers("rb"));
    let arm = layout.add_image("arm64", &sample_layers("rb-arm"));
    let index = layout.add_index(&[("amd64", &image), ("arm64", &arm)]);
    layout.tag(&image.manifest, "v1");
    layout.tag(&index, "multi");
    let src = |tag: &str| format!("oci:{}:{tag}", tmp.path().display());
    skopeo_push(
        &src("v1"),
        &format!("docker://{}/e2e/rb-app:v1", reg.host()),
        &["--preserve-digests"],
    );
    skopeo_push(
        &src("multi"),
        &format!("docker://{}/e2e/rb-multi:multi", reg.host()),
        &["--all", "--preserve-digests"],
    );

    // Tag moves, a deleted tag, a deleted manifest, an emptied repository.
    for _ in 0..3 {
        reg.push_small_image("e2e/rb-app", "latest");
    }
    reg.push_small_image("e2e/rb-app", "temp");
    assert_eq!(reg.delete("/v2/e2e/rb-app/manifests/temp").status().as_u16(), 202);
    let (gone, gone_bytes) = reg.push_small_image("e2e/rb-app", "gone");
    reg.push_manifest("e2e/rb-app", "gone-too", OCI_MANIFEST, &gone_bytes);
    assert_eq!(
        reg.delete(&format!("/v2/e2e/rb-app/manifests/{gone}"))
            .status()
            .as_u16(),
        202
    );
    let (only, _) = reg.push_small_image("e2e/rb-empty", "v1");
    assert_eq!(
        reg.delete(&format!("/v2/e2e/rb-empty/manifests/{only}"))
            .status()
            .as_u16(),
        202
    );

    // A mount, a manifest on the mounted blob, an unlinked blob.
    let layer = &image.layers[0].digest;
    let url = reg.url(&format!(
        "/v2/e2e/rb-mounted/blobs/uploads/?mount={layer}&from=e2e/rb-app"
    ));
    assert_eq!(
        reg.http
            .post(url)
            .header("content-length", "0")
            .send()
            .unwrap()
            .status()
            .as_u16(),
        201,
        "mount"
    );
    let config = b"{\"mounted\":true}";
    reg.push_blob("e2e/rb-mounted", config);
    let mounted = image_manifest(
        &Descriptor::of(OCI_CONFIG, config),
        &[image.layers[0].clone()],
        None,
        None,
    );
    reg.push_manifest("e2e/rb-mounted", "v1", OCI_MANIFEST, &mounted);
    let unlinked = reg.push_blob("e2e/rb-app", &random_bytes(512));
    assert_eq!(
        reg.delete(&format!("/v2/e2e/rb-app/blobs/{unlinked}"))
            .status()
            .as_u16(),
        202
    );

    // Referrers: two on the image (one then deleted), one pushed before its subject.
    let sbom = push_referrer(
        &reg,
        "e2e/rb-app",
        &image.manifest,
        "application/vnd.example.sbom.v1",
    );
    let sig = push_referrer(
        &reg,
        "e2e/rb-app",
        &image.manifest,
        "application/vnd.example.signature.v1",
    );
    assert_eq!(
        reg.delete(&format!("/v2/e2e/rb-app/manifests/{sig}"))
            .status()
            .as_u16(),
        202
    );
    let future = Descriptor::of(OCI_MANIFEST, b"{\"not\":\"pushed yet\"}");
    push_referrer(&reg, "e2e/rb-app", &future, "application/vnd.example.sbom.v1");

    let subjects = [
        ("e2e/rb-app", image.manifest.digest.as_str()),
        ("e2e/rb-app", future.digest.as_str()),
    ];
    let blobs = [
        ("e2e/rb-app", layer.as_str()),
        ("e2e/rb-mounted", layer.as_str()),
        ("e2e/rb-app", unlinked.as_str()),
        ("e2e/rb-multi", arm.layers[2].digest.as_str()),
    ];
    let before = snapshot(&reg, &subjects, &blobs);
    // The snapshot is not vacuous: it saw the workload's effects.
    assert_eq!(before["blobs"], json!([200, 200, 404, 200]), "{before:#}");
    assert_eq!(
        before["referrers"][0]["manifests"].as_array().map(Vec::len),
        Some(1),
        "only the SBOM: {before:#}"
    );
    assert_eq!(before["referrers"][0]["manifests"][0]["digest"], sbom.as_str());
    assert_eq!(
        before["referrers"][1]["manifests"].as_array().map(Vec::len),
        Some(1),
        "{before:#}"
    );
    assert_eq!(
        before["repositories"]["e2e/rb-app"]["v1"],
        image.manifest.digest.as_str()
    );
    assert!(
        before["repositories"]["e2e/rb-app"].get("temp").is_none(),
        "{before:#}"
    );
    assert!(
        before["repositories"]["e2e/rb-app"].get("gone-too").is_none(),
        "{before:#}"
    );
    assert_eq!(
        before["repositories"]["e2e/rb-multi"]["multi"],
        index.digest.as_str()
    );

    reg.stop();
    let events = reg.assert_rebuild_identical();
    let log = reg.log_events();
    assert_eq!(
        events,
        log.len() as u64,
        "rebuild-views replayed every event of `berth log`"
    );
    assert!(events >= 30, "the workload logged {events} events");
    // Replaying twice is just as stable.
    assert_eq!(reg.assert_rebuild_identical(), events);

    reg.restart();
    let after = snapshot(&reg, &subjects, &blobs);
    assert_eq!(
        after, before,
        "the API answers the same after rebuild-views and a restart"
    );
}

#[test]
fn rebuilding_the_views_of_a_new_registry_replays_only_its_bootstrap() {
    if skip_unless_berth("`berth rebuild-views` is Berth's") {
        return;
    }
    let mut reg = Registry::start();
    reg.stop();
    // The first start created the system admin and the `library` project.
    assert_eq!(reg.assert_rebuild_identical(), 2);
    let types: Vec<String> = (reg.log_events().iter())
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["dev.berth.user_created.v1", "dev.berth.project_created.v1"]
    );
    reg.restart();
    assert_eq!(reg.catalog(), Vec::<String>::new());
}
