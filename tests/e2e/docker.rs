//! The real docker client: build `FROM scratch`, push, remove locally, pull back by tag.

use std::fs;

use serde_json::Value;

use crate::harness::*;

/// Removes the images this test created from the (shared) Docker daemon, whatever happens.
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

fn image_field(reference: &str, format: &str) -> String {
    docker_ok(&["image", "inspect", "--format", format, reference])
        .trim()
        .to_owned()
}

/// The `digest: sha256:… size: N` line `docker push` prints at the end.
fn pushed_digest(push_output: &str) -> String {
    push_output
        .split_whitespace()
        .skip_while(|word| *word != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no `digest:` in docker push output:\n{push_output}"))
        .to_owned()
}

#[test]
fn docker_pushes_removes_and_pulls_back_the_same_image_digest() {
    let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
    if !info.status.success() {
        eprintln!(
            "SKIPPED: `docker info` failed, no Docker daemon: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        return;
    }
    let reg = Registry::start();
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.bin /data/b.bin\nCOPY c.bin /data/c.bin\n";
    fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    fs::write(
        ctx.path().join("a.txt"),
        format!("berth e2e {}\n", hex::encode(random_bytes(8))),
    )
    .unwrap();
    fs::write(ctx.path().join("b.bin"), random_bytes(256 * 1024)).unwrap();
    fs::write(ctx.path().join("c.bin"), random_bytes(32 * 1024)).unwrap();

    let name = format!("{}/e2e/docker-app:1", reg.host());
    let mut cleanup = RemoveImages(vec![name.clone()]);
    docker_ok(&[
        "build",
        "--force-rm",
        "-t",
        &name,
        &ctx.path().display().to_string(),
    ]);
    let image_id = image_field(&name, "{{.Id}}");
    cleanup.0.push(image_id.clone());

    docker_login(&reg);
    let pushed = pushed_digest(&docker_ok(&["push", &name]));
    let repo_digest = format!("{}/e2e/docker-app@{pushed}", reg.host());

    // The registry holds exactly what docker pushed: a schema 2 manifest with three layers.
    let resp = reg.get_manifest("e2e/docker-app", "1");
    assert_eq!(resp.status().as_u16(), 200, "GET the pushed manifest by tag");
    assert_eq!(header(&resp, "content-type").as_deref(), Some(DOCKER_MANIFEST));
    let body = resp.bytes().unwrap();
    assert_eq!(
        sha256(&body),
        pushed,
        "the digest docker reported is the digest of the stored manifest"
    );
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    assert_eq!(layers.len(), 3, "three COPY lines make three layers: {manifest}");
    for blob in layers.iter().chain([&manifest["config"]]) {
        let digest = blob["digest"].as_str().unwrap();
        let bytes = reg
            .get(&format!("/v2/e2e/docker-app/blobs/{digest}"))
            .bytes()
            .unwrap();
        assert_eq!(sha256(&bytes), digest, "blob {digest} as served");
    }
    assert_eq!(
        manifest["config"]["digest"],
        image_id.as_str(),
        "the config digest is the image ID"
    );

    docker_ok(&["rmi", &name]);
    let gone = docker(&["image", "inspect", &name]);
    assert!(
        !gone.status.success(),
        "the local image should be gone after docker rmi"
    );

    docker_ok(&["pull", &name]);
    let repo_digests: Vec<String> =
        serde_json::from_str(&image_field(&name, "{{json .RepoDigests}}")).unwrap();
    assert!(
        repo_digests.contains(&repo_digest),
        "RepoDigests {repo_digests:?} should contain {repo_digest}"
    );
    assert_eq!(
        image_field(&name, "{{.Id}}"),
        image_id,
        "the pulled image ID equals the built one"
    );

    // By digest too.
    docker_ok(&["rmi", &name]);
    docker_ok(&["pull", &repo_digest]);
    assert_eq!(
        image_field(&repo_digest, "{{.Id}}"),
        image_id,
        "pull by digest gives the same image"
    );
    cleanup.0.push(repo_digest);
}
