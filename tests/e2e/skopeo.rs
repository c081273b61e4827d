//! skopeo against the registry: images, multi-arch indexes, Docker schema 2, inspect and delete.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::harness::*;

pub(crate) fn docker_ref(reg: &Registry, repo_tag: &str) -> String {
    format!("docker://{}/{repo_tag}", reg.host())
}

pub(crate) fn oci_ref(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// Every blob of the image is served by the registry with the layout's exact bytes.
pub(crate) fn assert_registry_serves_image(reg: &Registry, repo: &str, layout: &OciLayout, image: &Image) {
    let resp = reg.get_manifest(repo, &image.manifest.digest);
    assert_eq!(
        resp.status().as_u16(),
        200,
        "GET manifest {repo}@{}",
        image.manifest.digest
    );
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(image.manifest.digest.as_str())
    );
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some(image.manifest.media_type.as_str())
    );
    assert_eq!(
        resp.bytes().unwrap().to_vec(),
        layout.blob(&image.manifest.digest),
        "manifest bytes differ"
    );
    for blob in image.layers.iter().chain([&image.config]) {
        let resp = reg.get(&format!("/v2/{repo}/blobs/{}", blob.digest));
        assert_eq!(resp.status().as_u16(), 200, "GET blob {repo}@{}", blob.digest);
        assert!(
            resp.bytes().unwrap().to_vec() == layout.blob(&blob.digest),
            "blob {} differs",
            blob.digest
        );
    }
}

/// Every blob of the image (manifest included) is byte-identical in the copied-out layout.
pub(crate) fn assert_layout_has_image(out: &Path, layout: &OciLayout, image: &Image) {
    for blob in [&image.manifest, &image.config].into_iter().chain(&image.layers) {
        assert!(
            read_blob(out, &blob.digest) == layout.blob(&blob.digest),
            "{} in {} is not byte-identical to the original",
            blob.digest,
            out.display()
        );
    }
}

#[test]
fn skopeo_copies_a_multi_layer_image_in_and_out_byte_for_byte() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    let mut layout = OciLayout::create(&src);
    let image = layout.add_image("amd64", &sample_layers("app"));
    layout.tag(&image.manifest, "v1");
    assert_eq!(image.layers.len(), 3);

    skopeo_push(
        &oci_ref(&src, "v1"),
        &docker_ref(&reg, "e2e/skopeo-app:v1"),
        &["--preserve-digests"],
    );
    assert_eq!(
        reg.resolve("e2e/skopeo-app", "v1"),
        Some(image.manifest.digest.clone())
    );
    assert_registry_serves_image(&reg, "e2e/skopeo-app", &layout, &image);

    skopeo_pull(
        &docker_ref(&reg, "e2e/skopeo-app:v1"),
        &oci_ref(&out, "v1"),
        &["--preserve-digests"],
    );
    assert_eq!(
        layout_ref(&out, "v1").digest,
        image.manifest.digest,
        "the copied-out manifest digest"
    );
    assert_layout_has_image(&out, &layout, &image);
}

#[test]
fn skopeo_copies_a_two_platform_index_with_all_and_back() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    let mut layout = OciLayout::create(&src);
    let amd64 = layout.add_image("amd64", &sample_layers("amd64"));
    let arm64 = layout.add_image("arm64", &sample_layers("arm64"));
    let index = layout.add_index(&[("amd64", &amd64), ("arm64", &arm64)]);
    layout.tag(&index, "multi");

    let dest = docker_ref(&reg, "e2e/skopeo-multi:multi");
    skopeo_push(&oci_ref(&src, "multi"), &dest, &["--all", "--preserve-digests"]);
    let resp = reg.get_manifest("e2e/skopeo-multi", "multi");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_INDEX));
    assert_eq!(
        resp.bytes().unwrap().to_vec(),
        layout.blob(&index.digest),
        "the index bytes"
    );
    assert_registry_serves_image(&reg, "e2e/skopeo-multi", &layout, &amd64);
    assert_registry_serves_image(&reg, "e2e/skopeo-multi", &layout, &arm64);

    skopeo_pull(&dest, &oci_ref(&out, "multi"), &["--all", "--preserve-digests"]);
    assert_eq!(
        layout_ref(&out, "multi").digest,
        index.digest,
        "the copied-out index digest"
    );
    assert!(read_blob(&out, &index.digest) == layout.blob(&index.digest));
    assert_layout_has_image(&out, &layout, &amd64);
    assert_layout_has_image(&out, &layout, &arm64);
}

#[test]
fn skopeo_inspect_raw_returns_the_bytes_whose_digest_was_pushed() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(tmp.path());
    let image = layout.add_image("amd64", &sample_layers("inspect"));
    layout.tag(&image.manifest, "v1");
    let dest = docker_ref(&reg, "e2e/inspect:v1");
    skopeo_push(&oci_ref(tmp.path(), "v1"), &dest, &["--preserve-digests"]);

    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &dest]);
    assert!(
        raw.status.success(),
        "skopeo inspect --raw: {}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        sha256(&raw.stdout),
        image.manifest.digest,
        "digest of `skopeo inspect --raw`"
    );
    let config = skopeo_ok(&["inspect", "--tls-verify=false", "--raw", "--config", &dest]);
    assert_eq!(
        sha256(config.as_bytes()),
        image.config.digest,
        "digest of `skopeo inspect --raw --config`"
    );
    let info: Value = serde_json::from_str(&skopeo_ok(&["inspect", "--tls-verify=false", &dest])).unwrap();
    assert_eq!(
        info["Digest"],
        image.manifest.digest.as_str(),
        "`skopeo inspect` Digest"
    );
    assert_eq!(
        info["Layers"].as_array().map(Vec::len),
        Some(3),
        "`skopeo inspect` Layers: {info}"
    );
}

#[test]
fn skopeo_delete_by_tag_makes_the_manifest_unreachable() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(tmp.path());
    let image = layout.add_image("amd64", &sample_layers("del"));
    layout.tag(&image.manifest, "v1");
    skopeo_push(
        &oci_ref(tmp.path(), "v1"),
        &docker_ref(&reg, "e2e/delete:v1"),
        &["--preserve-digests"],
    );
    assert_eq!(reg.manifest_status("e2e/delete", "v1"), 200);

    // skopeo resolves the tag and deletes the manifest by digest.
    skopeo_ok(&["delete", "--tls-verify=false", &docker_ref(&reg, "e2e/delete:v1")]);
    assert_eq!(
        reg.manifest_status("e2e/delete", "v1"),
        404,
        "GET by tag after skopeo delete"
    );
    assert_eq!(
        reg.manifest_status("e2e/delete", &image.manifest.digest),
        404,
        "GET by digest after delete"
    );
    assert!(
        !reg.all_tags("e2e/delete").contains(&"v1".to_owned()),
        "the tag is still listed"
    );
}

#[test]
fn skopeo_delete_by_digest_makes_the_manifest_and_its_tags_unreachable() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(tmp.path());
    let image = layout.add_image("amd64", &sample_layers("deld"));
    layout.tag(&image.manifest, "v1");
    let src = oci_ref(tmp.path(), "v1");
    skopeo_push(
        &src,
        &docker_ref(&reg, "e2e/delete-digest:v1"),
        &["--preserve-digests"],
    );
    skopeo_push(
        &src,
        &docker_ref(&reg, "e2e/delete-digest:v2"),
        &["--preserve-digests"],
    );
    assert_eq!(
        reg.resolve("e2e/delete-digest", "v2"),
        Some(image.manifest.digest.clone())
    );

    let by_digest = format!(
        "docker://{}/e2e/delete-digest@{}",
        reg.host(),
        image.manifest.digest
    );
    skopeo_ok(&["delete", "--tls-verify=false", &by_digest]);
    for reference in ["v1", "v2", image.manifest.digest.as_str()] {
        assert_eq!(
            reg.manifest_status("e2e/delete-digest", reference),
            404,
            "GET {reference} after delete"
        );
    }
    let inspect = skopeo(&["inspect", "--tls-verify=false", "--raw", &by_digest]);
    assert!(
        !inspect.status.success(),
        "skopeo inspect of a deleted digest should fail"
    );
}

#[test]
fn skopeo_round_trips_a_docker_schema2_image_as_pushed() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    // Blobs are kept in a layout for comparisons; skopeo reads the image from a `dir:` copy.
    let mut layout = OciLayout::create(&tmp.path().join("blobs"));
    let image = layout.add_docker_image(&sample_layers("docker"));
    write_dir_image(&src, &layout, &image);
    let dest = docker_ref(&reg, "e2e/schema2:v1");

    skopeo_push(&format!("dir:{}", src.display()), &dest, &["--preserve-digests"]);
    let resp = reg.get_manifest("e2e/schema2", "v1");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "content-type").as_deref(), Some(DOCKER_MANIFEST));
    assert_registry_serves_image(&reg, "e2e/schema2", &layout, &image);

    // `dir:` keeps the manifest as served: manifest.json plus one file per blob (named by hex).
    skopeo_pull(&dest, &format!("dir:{}", out.display()), &["--preserve-digests"]);
    let manifest = fs::read(out.join("manifest.json")).unwrap();
    assert!(
        manifest == layout.blob(&image.manifest.digest),
        "manifest.json differs from the pushed manifest"
    );
    for blob in image.layers.iter().chain([&image.config]) {
        let hex = blob.digest.trim_start_matches("sha256:");
        assert!(
            fs::read(out.join(hex)).unwrap() == layout.blob(&blob.digest),
            "blob {} differs",
            blob.digest
        );
    }
}

#[test]
fn skopeo_converts_an_oci_image_to_docker_schema2_and_reads_it_back() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    let mut layout = OciLayout::create(&src);
    let image = layout.add_image("amd64", &sample_layers("v2s2"));
    layout.tag(&image.manifest, "v1");
    let dest = docker_ref(&reg, "e2e/v2s2:v1");

    skopeo_push(&oci_ref(&src, "v1"), &dest, &["--format", "v2s2"]);
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &dest]);
    assert!(raw.status.success());
    let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["mediaType"], DOCKER_MANIFEST,
        "skopeo --format v2s2 pushed: {manifest}"
    );
    let pushed_digest = sha256(&raw.stdout);
    assert_eq!(reg.resolve("e2e/v2s2", "v1"), Some(pushed_digest.clone()));

    skopeo_pull(&dest, &format!("dir:{}", out.display()), &["--preserve-digests"]);
    assert_eq!(
        sha256(&fs::read(out.join("manifest.json")).unwrap()),
        pushed_digest
    );
    // skopeo gzips the uncompressed layers for schema 2 and may rewrite the config, so check
    // every blob the converted manifest names: served by the registry and copied out intact.
    let named: Vec<&Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&manifest["config"]])
        .collect();
    assert_eq!(named.len(), 4, "3 layers and a config in {manifest}");
    for desc in named {
        let digest = desc["digest"].as_str().unwrap();
        let file = fs::read(out.join(digest.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(sha256(&file), digest, "the copied-out blob's digest");
        assert_eq!(
            Some(file.len() as u64),
            desc["size"].as_u64(),
            "the copied-out blob's size"
        );
        assert_eq!(reg.blob_status("e2e/v2s2", digest), 200, "HEAD blob {digest}");
    }
    // The already-gzipped layer keeps its bytes and digest through the conversion.
    let gzipped = &image.layers[1];
    assert_eq!(gzipped.media_type, OCI_LAYER_GZIP);
    assert_eq!(
        manifest["layers"][1]["digest"],
        gzipped.digest.as_str(),
        "the gzip layer's digest: {manifest}"
    );
    assert_eq!(manifest["layers"][1]["mediaType"], DOCKER_LAYER_GZIP);
}
