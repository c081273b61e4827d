//! Content trust as clients see it: a project that requires signatures refuses to serve unsigned
//! artifacts (412 `PROJECTPOLICYVIOLATION`; their manifests are still read by those who may push, to
//! sign them), `berth sign` signs the way cosign does, the accessories API lists and deletes signatures, and a project with trusted keys or a
//! Notation trust policy counts only signatures that verify (the vectors in tests/vectors).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

const COSIGN_PASSWORD: &str = "e2e-key-password";
const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn vectors() -> PathBuf {
    workspace().join("tests").join("vectors")
}

/// Runs the `berth` CLI as a client of `reg` (signs in as the admin).
pub(crate) fn berth(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(berth_bin())
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", COSIGN_PASSWORD)
        .env("BERTH_USERNAME", "admin")
        .env("BERTH_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap_or_else(|e| panic!("cannot run berth: {e}"));
    eprintln!(
        "$ berth {} -> {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(crate) fn berth_ok(args: &[&str], dir: &Path) -> String {
    let out = berth(args, dir);
    assert!(out.status.success(), "berth {} failed", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key pair in `dir` (`<name>.key`, `<name>.pub`); returns the public key's PEM.
pub(crate) fn key_pair(dir: &Path, name: &str) -> String {
    berth_ok(&["key", "generate", "--output-key-prefix", name], dir);
    std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap()
}

/// A client with no credentials.
pub(crate) fn anonymous() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Creates a public project through the management API with Harbor's metadata.
pub(crate) fn create_project(reg: &Registry, name: &str, metadata: Value) {
    let mut metadata = metadata;
    metadata["public"] = json!("true");
    let resp = reg
        .http
        .post(reg.url("/api/v2.0/projects"))
        .json(&json!({"project_name": name, "metadata": metadata}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
}

/// `PUT /api/v2.0/projects/{p}/content-trust`.
fn configure_trust(reg: &Registry, project: &str, config: Value) -> (u16, Value) {
    let resp = reg
        .http
        .put(reg.url(&format!("/api/v2.0/projects/{project}/content-trust")))
        .json(&config)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

pub(crate) fn accessories(reg: &Registry, project: &str, repo: &str, reference: &str) -> Vec<Value> {
    let resp = reg.get(&format!(
        "/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{reference}/accessories"
    ));
    assert_eq!(resp.status().as_u16(), 200);
    resp.json::<Vec<Value>>().unwrap()
}

/// An anonymous manifest request: (status, body).
pub(crate) fn anonymous_manifest(reg: &Registry, method: &str, repo: &str, reference: &str) -> (u16, String) {
    let url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
    let request = match method {
        "HEAD" => anonymous().head(url),
        _ => anonymous().get(url),
    };
    let resp = request.header("accept", accept_all()).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

pub(crate) fn assert_refused(reg: &Registry, repo: &str, reference: &str, message: &str) {
    let (status, body) = anonymous_manifest(reg, "GET", repo, reference);
    assert_eq!(status, 412, "GET {repo}:{reference}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"][0]["code"], "PROJECTPOLICYVIOLATION", "{body}");
    let text = body["errors"][0]["message"].as_str().unwrap();
    assert!(text.contains(message), "{text:?} should say {message:?}");
    let (head, _) = anonymous_manifest(reg, "HEAD", repo, reference);
    assert_eq!(head, 412, "HEAD {repo}:{reference}");
}

pub(crate) fn assert_served(reg: &Registry, repo: &str, reference: &str) {
    let (status, body) = anonymous_manifest(reg, "GET", repo, reference);
    assert_eq!(status, 200, "GET {repo}:{reference}: {body}");
}

/// An OCI layout holding one small image tagged `tag`.
pub(crate) fn image_layout(dir: &Path, tag: &str) -> Image {
    let mut layout = OciLayout::create(dir);
    let image = layout.add_image("amd64", &sample_layers(tag));
    layout.tag(&image.manifest, tag);
    image
}

#[test]
fn the_seed_scenario_push_refuse_sign_list_pull_delete_refuse_again() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let mut reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "signed", json!({"enable_content_trust_cosign": "true"}));
    let meta: Value = reg.get("/api/v2.0/projects/signed").json().unwrap();
    assert_eq!(meta["metadata"]["enable_content_trust_cosign"], "true", "{meta}");

    let image = image_layout(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().display());
    let dest = format!("docker://{}/signed/app:v1", reg.host());
    skopeo_push(&src, &dest, &["--preserve-digests"]);
    let digest = reg.resolve("signed/app", "v1").unwrap();
    assert_eq!(digest, image.manifest.digest);

    // Unsigned: skopeo (anonymous, the project is public) is refused with the policy's message.
    let pulled = work.path().join("pulled");
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-no-creds",
        &dest,
        &format!("dir:{}", pulled.display()),
    ]);
    assert!(!out.status.success(), "an unsigned image must not be pulled");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("The image is not signed by cosign."), "{stderr}");

    key_pair(work.path(), "cosign");
    let image_ref = format!("{}/signed/app:v1", reg.host());
    berth_ok(&["sign", "--key", "cosign.key", &image_ref], work.path());

    let listed = accessories(&reg, "signed", "app", "v1");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let signature = &listed[0];
    assert_eq!(signature["type"], "signature.cosign");
    assert_eq!(signature["subject_artifact_digest"], digest.as_str());
    assert!(signature["size"].as_u64().unwrap() > 0);
    assert!(signature["creation_time"].as_str().unwrap().starts_with("20"));
    let sig_digest = signature["digest"].as_str().unwrap().to_string();
    assert_eq!(
        reg.resolve("signed/app", &format!("{}.sig", digest.replace(':', "-"))),
        Some(sig_digest.clone()),
        "the signature is tagged by cosign's scheme"
    );

    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        "--src-no-creds",
        &dest,
        &format!("dir:{}", pulled.display()),
    ]);

    // Deleting the signature through the accessories API: refused again.
    let resp = reg.delete(&format!(
        "/api/v2.0/projects/signed/repositories/app/artifacts/{sig_digest}"
    ));
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap_or_default());
    assert!(accessories(&reg, "signed", "app", "v1").is_empty());
    assert_refused(&reg, "signed/app", "v1", "The image is not signed by cosign.");

    // Signed again, then the image deleted: its signatures go with it.
    berth_ok(&["sign", "--key", "cosign.key", &image_ref], work.path());
    let again = accessories(&reg, "signed", "app", "v1");
    let sig_digest = again[0]["digest"].as_str().unwrap().to_string();
    let resp = reg.delete(&format!(
        "/api/v2.0/projects/signed/repositories/app/artifacts/{digest}"
    ));
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap_or_default());
    assert_eq!(reg.manifest_status("signed/app", &sig_digest), 404);
    assert_eq!(reg.manifest_status("signed/app", &digest), 404);
    reg.stop();
    let events = reg.log_events();
    let unlinked = events
        .iter()
        .filter(|e| {
            e["type"] == "dev.berth.accessory_unlinked.v1" && e["data"]["digest"] == sig_digest.as_str()
        })
        .count();
    assert_eq!(unlinked, 1, "one AccessoryUnlinked for the signature");
}

#[test]
fn pushers_and_accessories_are_not_blocked_and_the_policy_covers_every_way_in() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "strict", json!({"enable_content_trust_cosign": "true"}));
    let repo = "strict/app";
    let (config, layer) = reg.push_small_blobs(repo);
    let unsigned = image_manifest(&config, std::slice::from_ref(&layer), None, None);
    let unsigned_digest = reg.push_manifest(repo, "unsigned", OCI_MANIFEST, &unsigned);

    // The admin may push, so may read the manifest (signing tools resolve digests before they sign).
    assert_eq!(reg.manifest_status(repo, "unsigned"), 200);
    // Anyone else: GET and HEAD by tag and by digest, and the image's layer, are refused.
    for reference in ["unsigned", unsigned_digest.as_str()] {
        assert_refused(&reg, repo, reference, "not signed by cosign");
    }
    let blob = anonymous()
        .get(reg.url(&format!("/v2/{repo}/blobs/{}", layer.digest)))
        .send()
        .unwrap();
    assert_eq!(blob.status().as_u16(), 412, "a layer of an unsigned image");

    // An index of two images: unsigned, its children are refused too; signed, they are served.
    let (c2, l2) = reg.push_small_blobs(repo);
    let second = image_manifest(&c2, &[l2], None, None);
    reg.push_manifest(repo, &sha256(&second), OCI_MANIFEST, &second);
    let index = image_index(
        &[
            Descriptor::of(OCI_MANIFEST, &unsigned),
            Descriptor::of(OCI_MANIFEST, &second),
        ],
        &["amd64", "arm64"],
    );
    let index_digest = reg.push_manifest(repo, "multi", OCI_INDEX, &index);
    assert_refused(&reg, repo, "multi", "not signed by cosign");
    assert_refused(&reg, repo, &sha256(&second), "not signed by cosign");
    key_pair(work.path(), "cosign");
    berth_ok(
        &[
            "sign",
            "--key",
            "cosign.key",
            &format!("{}/{repo}@{index_digest}", reg.host()),
        ],
        work.path(),
    );
    assert_served(&reg, repo, "multi");
    assert_served(&reg, repo, &sha256(&second));
    assert_served(&reg, repo, &unsigned_digest);
    let blob = anonymous()
        .get(reg.url(&format!("/v2/{repo}/blobs/{}", layer.digest)))
        .send()
        .unwrap();
    // Served: streamed (embedded) or redirected to a presigned URL (S3).
    let status = blob.status().as_u16();
    assert!(
        status == 200 || status == 307,
        "a layer of a child of a signed index: {status}"
    );

    // The signature itself is served to anyone (clients read it to verify).
    let sig_tag = format!("{}.sig", index_digest.replace(':', "-"));
    assert_served(&reg, repo, &sig_tag);

    // A tag moved between a signed and an unsigned image while anonymous clients pull it: every
    // response that is served is the signed image, never the other.
    let (c3, l3) = reg.push_small_blobs(repo);
    let other = image_manifest(&c3, &[l3], None, None);
    let other_digest = reg.push_manifest(repo, &sha256(&other), OCI_MANIFEST, &other);
    reg.push_manifest(repo, "race", OCI_INDEX, &index);
    let stop = Arc::new(AtomicBool::new(false));
    let mover = {
        let stop = stop.clone();
        let (url, auth) = (
            reg.url(&format!("/v2/{repo}/manifests/race")),
            basic_auth("admin", ADMIN_PASSWORD),
        );
        let (index, other) = (index.clone(), other.clone());
        std::thread::spawn(move || {
            // Pushes wait on the backend (moto is slow under load): a generous timeout.
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(180))
                .build()
                .unwrap();
            let mut flips = 0;
            while !stop.load(Ordering::Relaxed) {
                let (body, media_type) = if flips % 2 == 0 {
                    (&index, OCI_INDEX)
                } else {
                    (&other, OCI_MANIFEST)
                };
                let resp = client
                    .put(&url)
                    .header("authorization", &auth)
                    .header("content-type", media_type)
                    .body(body.clone())
                    .send()
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 201);
                flips += 1;
            }
            flips
        })
    };
    let (mut served, mut refused) = (0, 0);
    for _ in 0..150 {
        let resp = anonymous()
            .get(reg.url(&format!("/v2/{repo}/manifests/race")))
            .header("accept", accept_all())
            .send()
            .unwrap();
        match resp.status().as_u16() {
            200 => {
                let header = header(&resp, "docker-content-digest").unwrap();
                let body = resp.bytes().unwrap();
                assert_eq!(sha256(&body), index_digest, "only the signed index may be served");
                assert_eq!(header, index_digest);
                served += 1;
            }
            412 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = mover.join().unwrap();
    eprintln!("tag race: {served} served, {refused} refused, {flips} moves ({other_digest} unsigned)");
    assert!(flips > 2, "the tag must have moved during the pulls");
}

#[test]
fn with_trusted_keys_only_a_signature_that_verifies_for_this_digest_counts() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "keyed", json!({}));
    let trusted = key_pair(work.path(), "trusted");
    let other = key_pair(work.path(), "other");
    // Bad key material is refused, and nothing changes.
    let (status, body) = configure_trust(
        &reg,
        "keyed",
        json!({"cosign": {"required": true, "public_keys": ["not a key"]}}),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = configure_trust(
        &reg,
        "keyed",
        json!({"cosign": {"required": true, "public_keys": [trusted]}}),
    );
    assert_eq!(status, 200, "{body}");
    let config: Value = reg.get("/api/v2.0/projects/keyed/content-trust").json().unwrap();
    assert_eq!(config["cosign"]["required"], true, "{config}");
    assert_eq!(config["cosign"]["public_keys"][0], trusted.as_str());

    let repo = "keyed/app";
    let (a, _) = reg.push_small_image(repo, "a");
    let (b, _) = reg.push_small_image(repo, "b");
    let host = reg.host();
    berth_ok(
        &["sign", "--key", "other.key", &format!("{host}/{repo}:a")],
        work.path(),
    );
    assert_refused(
        &reg,
        repo,
        "a",
        "not signed by a key the project trusts for cosign",
    );
    let listed = accessories(&reg, "keyed", "app", "a");
    assert_eq!(listed[0]["verification"]["status"], "rejected", "{listed:?}");

    berth_ok(
        &["sign", "--key", "trusted.key", &format!("{host}/{repo}:a")],
        work.path(),
    );
    assert_served(&reg, repo, "a");
    let listed = accessories(&reg, "keyed", "app", "a");
    assert!(
        listed.iter().any(|s| s["verification"]["status"] == "verified"),
        "{listed:?}"
    );

    // The signature of `a` (by the trusted key) copied under `b`'s scheme tag names `a`'s digest:
    // it never counts for `b`.
    let sig_of_a = reg
        .get_manifest(repo, &format!("{}.sig", a.replace(':', "-")))
        .bytes()
        .unwrap();
    reg.push_manifest(
        repo,
        &format!("{}.sig", b.replace(':', "-")),
        OCI_MANIFEST,
        &sig_of_a,
    );
    assert_refused(&reg, repo, "b", "not this artifact");

    // Trusting both keys re-verifies the three signatures within the change (the default budget).
    let (status, body) = configure_trust(
        &reg,
        "keyed",
        json!({"cosign": {"required": true, "public_keys": [trusted, other]}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reverification"],
        json!({"verified": 3, "complete": true}),
        "{body}"
    );
    let listed = accessories(&reg, "keyed", "app", "a");
    assert!(
        listed.iter().all(|s| s["verification"]["status"] == "verified"),
        "{listed:?}"
    );
    assert_refused(&reg, repo, "b", "not this artifact");

    // Without trusted keys (Harbor's semantics) any signature counts: the change re-evaluates.
    let (status, _) = configure_trust(&reg, "keyed", json!({"cosign": {"required": true}}));
    assert_eq!(status, 200);
    assert_served(&reg, repo, "b");

    // A referrer-style signature (OCI 1.1 subject) counts like the tag scheme.
    let (c, _) = reg.push_small_image(repo, "c");
    assert_refused(&reg, repo, "c", "not signed by cosign");
    berth_ok(
        &[
            "sign",
            "--referrer",
            "--key",
            "other.key",
            &format!("{host}/{repo}:c"),
        ],
        work.path(),
    );
    assert_served(&reg, repo, &c);
    let listed = accessories(&reg, "keyed", "app", "c");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["type"], "signature.cosign");
    let referrers: Value = reg
        .get(&format!(
            "/v2/{repo}/referrers/{c}?artifactType={}",
            COSIGN_SIGNATURE.replace('+', "%2B")
        ))
        .json()
        .unwrap();
    assert_eq!(referrers["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn a_trust_change_past_its_budget_leaves_the_rest_to_pulls() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    // No time at all for re-verification inside the request.
    let reg = Registry::start_with_env(vec![("BERTH_REVERIFY_BUDGET_SECS".into(), "0".into())]);
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "later", json!({}));
    let trusted = key_pair(work.path(), "trusted");
    let repo = "later/app";
    reg.push_small_image(repo, "a");
    berth_ok(
        &[
            "sign",
            "--key",
            "trusted.key",
            &format!("{}/{repo}:a", reg.host()),
        ],
        work.path(),
    );
    assert_served(&reg, repo, "a");
    let listed = accessories(&reg, "later", "app", "a");
    assert_eq!(listed[0]["verification"]["status"], "not_required", "{listed:?}");

    let (status, body) = configure_trust(
        &reg,
        "later",
        json!({"cosign": {"required": true, "public_keys": [trusted]}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reverification"],
        json!({"verified": 0, "complete": false}),
        "the budget ran out before the first signature: {body}"
    );
    let listed = accessories(&reg, "later", "app", "a");
    assert_eq!(listed[0]["verification"]["status"], "pending", "{listed:?}");

    // The first pull verifies it, records the verdict and is served; the listing says so.
    assert_served(&reg, repo, "a");
    let listed = accessories(&reg, "later", "app", "a");
    assert_eq!(listed[0]["verification"]["status"], "verified", "{listed:?}");
}

/// Pushes a Notation vector's layout: the image by tag and its signature manifest by digest, both
/// with skopeo.
fn push_notation_layout(reg: &Registry, vector: &str, repo: &str, work: &Path) -> (String, String) {
    let source = vectors().join("notation").join(vector).join("oci-layout");
    let copy = work.join(vector);
    let status = Command::new("cp")
        .arg("-r")
        .arg(&source)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let index: Value = serde_json::from_slice(&std::fs::read(copy.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap().clone();
    let image = entries
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        .unwrap();
    let image_digest = image["digest"].as_str().unwrap().to_string();
    let signature = entries
        .iter()
        .find(|m| m["mediaType"] == OCI_MANIFEST && m["digest"] != image_digest.as_str())
        .unwrap();
    let signature_digest = signature["digest"].as_str().unwrap().to_string();
    // Name the signature in the layout so skopeo can address it.
    let mut index = index.clone();
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["digest"] == signature_digest.as_str() {
            m["annotations"] = json!({"org.opencontainers.image.ref.name": "signature"});
        }
    }
    std::fs::write(copy.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let layout = copy.display().to_string();
    skopeo_push(
        &format!("oci:{layout}:v1"),
        &format!("docker://{}/{repo}:v1", reg.host()),
        &["--preserve-digests"],
    );
    skopeo_push(
        &format!("oci:{layout}:signature"),
        &format!("docker://{}/{repo}:signature-{vector}", reg.host()),
        &["--preserve-digests"],
    );
    (image_digest, signature_digest)
}

#[test]
fn notation_layouts_get_the_verdicts_their_readmes_state() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let notation = vectors().join("notation");
    let cert = std::fs::read_to_string(notation.join("jws-valid").join("e2e.crt")).unwrap();
    let strict: Value =
        serde_json::from_slice(&std::fs::read(notation.join("jws-valid").join("trustpolicy.json")).unwrap())
            .unwrap();
    let permissive: Value = serde_json::from_slice(
        &std::fs::read(notation.join("jws-expired").join("permissive_trustpolicy.json")).unwrap(),
    )
    .unwrap();
    let expected = [
        ("jws-valid", true),
        ("jws-expired", false),
        ("invalid-envelope", false),
    ];
    for (vector, _) in expected {
        let project = vector.replace('-', "");
        create_project(&reg, &project, json!({"enable_content_trust": "true"}));
        let (status, body) = configure_trust(
            &reg,
            &project,
            json!({"notation": {"required": true, "trust_stores": {"ca:e2e": cert}, "trust_policy": strict}}),
        );
        assert_eq!(status, 200, "{body}");
    }
    for (vector, verified) in expected {
        let repo = format!("{}/net-monitor", vector.replace('-', ""));
        let (image, signature) = push_notation_layout(&reg, vector, &repo, work.path());
        if verified {
            assert_served(&reg, &repo, "v1");
        } else {
            assert_refused(
                &reg,
                &repo,
                "v1",
                "not signed by a key the project trusts for notation",
            );
        }
        let project = vector.replace('-', "");
        let listed = accessories(&reg, &project, "net-monitor", &image);
        let entry = listed.iter().find(|a| a["digest"] == signature.as_str()).unwrap();
        assert_eq!(entry["type"], "signature.notation");
        let status = if verified { "verified" } else { "rejected" };
        assert_eq!(entry["verification"]["status"], status, "{vector}: {entry}");
    }
    // The expired signature passes a permissive policy, with the warning recorded.
    let (status, _) = configure_trust(
        &reg,
        "jwsexpired",
        json!({"notation": {"required": true, "trust_stores": {"ca:e2e": cert}, "trust_policy": permissive}}),
    );
    assert_eq!(status, 200);
    assert_served(&reg, "jwsexpired/net-monitor", "v1");
    // Presence alone (no trust policy, Harbor's semantics): even the invalid envelope counts.
    let (status, _) = configure_trust(&reg, "invalidenvelope", json!({"notation": {"required": true}}));
    assert_eq!(status, 200);
    assert_served(&reg, "invalidenvelope/net-monitor", "v1");
}

#[test]
fn a_signature_pushed_before_its_subject_links_when_the_subject_arrives() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    create_project(&reg, "order", json!({"enable_content_trust_cosign": "true"}));
    let repo = "order/app";
    let (config, layer) = reg.push_small_blobs(repo);
    let image = image_manifest(&config, &[layer], None, None);
    let digest = sha256(&image);
    // A cosign-style signature manifest under the scheme tag, before the image exists.
    let payload = format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{}/{repo}\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}",
        reg.host()
    );
    reg.push_blob(repo, payload.as_bytes());
    let empty = reg.push_blob(repo, b"{}");
    assert!(empty.starts_with("sha256:"));
    let signature = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": sha256(payload.as_bytes()), "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}]
    });
    let signature = serde_json::to_vec(&signature).unwrap();
    let sig_digest = reg.push_manifest(
        repo,
        &format!("{}.sig", digest.replace(':', "-")),
        OCI_MANIFEST,
        &signature,
    );
    reg.push_manifest(repo, "v1", OCI_MANIFEST, &image);
    let listed = accessories(&reg, "order", "app", "v1");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], sig_digest.as_str());
    assert_served(&reg, repo, "v1");

    // Artifacts are listed with their accessories embedded, never as artifacts of their own.
    let artifacts: Vec<Value> = reg
        .get("/api/v2.0/projects/order/repositories/app/artifacts")
        .json()
        .unwrap();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(artifacts[0]["digest"], digest.as_str());
    assert_eq!(artifacts[0]["accessories"][0]["digest"], sig_digest.as_str());

    // Only project admins and maintainers delete accessories: a developer may not.
    let resp = reg
        .http
        .post(reg.url("/api/v2.0/users"))
        .json(&json!({"username": "dev", "password": "Developer-Pass-1", "email": "dev@example.com", "realname": "Dev"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    let resp = reg
        .http
        .post(reg.url("/api/v2.0/projects/order/members"))
        .json(&json!({"role_id": 2, "member_user": {"username": "dev"}}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    let resp = anonymous()
        .delete(reg.url(&format!(
            "/api/v2.0/projects/order/repositories/app/artifacts/{sig_digest}"
        )))
        .header("authorization", basic_auth("dev", "Developer-Pass-1"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(accessories(&reg, "order", "app", "v1").len(), 1);
}
