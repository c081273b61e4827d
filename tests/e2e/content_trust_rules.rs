//! Content trust's edges, each a way around the policy that is closed: a cross-repository mount out
//! of an enforcing project, an image that names a signed image as its subject, a manifest that is not
//! a cosign signature under a `.sig` tag, a `.sig` tag deleted over /v2 (`cosign clean`), and a
//! pusher pulling an unsigned image.

use serde_json::{json, Value};

use crate::content_trust::{
    accessories, anonymous, assert_refused, assert_served, berth_ok, create_project, image_layout, key_pair,
};
use crate::harness::*;

const NOT_SIGNED: &str = "The image is not signed by cosign.";
const DEV_PASSWORD: &str = "Developer-Pass-1";

/// Signs `host/repo:reference` with a fresh key in `dir` (the cosign tag scheme).
fn sign(reg: &Registry, dir: &std::path::Path, repo: &str, reference: &str) {
    if !dir.join("cosign.key").exists() {
        key_pair(dir, "cosign");
    }
    let image = format!("{}/{repo}{reference}", reg.host());
    berth_ok(&["sign", "--key", "cosign.key", &image], dir);
}

/// An anonymous blob GET's status, following a redirect to the object store.
fn anonymous_blob(reg: &Registry, repo: &str, digest: &str) -> u16 {
    let resp = bare()
        .get(reg.url(&format!("/v2/{repo}/blobs/{digest}")))
        .send()
        .unwrap();
    resp.status().as_u16()
}

/// A user who is a developer of `project` (and nothing else).
fn developer_of(reg: &Registry, user: &str, project: &str) -> String {
    let resp = reg
        .http
        .post(reg.url("/api/v2.0/users"))
        .json(&json!({"username": user, "password": DEV_PASSWORD,
                      "email": format!("{user}@example.com"), "realname": user}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    let resp = reg
        .http
        .post(reg.url(&format!("/api/v2.0/projects/{project}/members")))
        .json(&json!({"role_id": 2, "member_user": {"username": user}}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    basic_auth(user, DEV_PASSWORD)
}

/// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>` with `auth`: (status, Location).
fn mount(reg: &Registry, auth: &str, repo: &str, digest: &str, from: &str) -> (u16, Option<String>) {
    let resp = anonymous()
        .post(reg.url(&format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}")))
        .header("authorization", auth)
        .header("content-length", "0")
        .send()
        .unwrap();
    (resp.status().as_u16(), header(&resp, "location"))
}

fn blob_status_as(reg: &Registry, auth: &str, method: &str, repo: &str, digest: &str) -> u16 {
    let url = reg.url(&format!("/v2/{repo}/blobs/{digest}"));
    let request = match method {
        "HEAD" => bare().head(url),
        _ => bare().get(url),
    };
    request
        .header("authorization", auth)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_mount_out_of_an_enforcing_project_takes_only_blobs_that_may_be_pulled() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "enforcing", json!({"enable_content_trust_cosign": "true"}));
    create_project(&reg, "open", json!({}));
    let (config, layer) = reg.push_small_blobs("enforcing/app");
    let image = image_manifest(&config, std::slice::from_ref(&layer), None, None);
    reg.push_manifest("enforcing/app", "v1", OCI_MANIFEST, &image);
    // A developer of the open project, who may pull the public enforcing project but not push there.
    let dev = developer_of(&reg, "dev", "open");

    let (status, location) = mount(&reg, &dev, "open/copy", &layer.digest, "enforcing/app");
    assert_eq!(
        status, 202,
        "a layer of an unsigned image is not mounted: a session instead"
    );
    assert!(location.unwrap().contains("/v2/open/copy/blobs/uploads/"));
    assert_eq!(blob_status_as(&reg, &dev, "GET", "open/copy", &layer.digest), 404);

    sign(&reg, work.path(), "enforcing/app", ":v1");
    let (status, _) = mount(&reg, &dev, "open/copy", &layer.digest, "enforcing/app");
    assert_eq!(status, 201, "signed, its layer may be pulled, so mounted");
    assert_eq!(blob_status_as(&reg, &dev, "GET", "open/copy", &layer.digest), 200);
}

#[test]
fn an_image_naming_a_signed_image_as_its_subject_still_needs_its_own_signature() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "subj", json!({"enable_content_trust_cosign": "true"}));
    let repo = "subj/app";
    let (signed, signed_bytes) = reg.push_small_image(repo, "signed");
    sign(&reg, work.path(), repo, ":signed");
    assert_served(&reg, repo, "signed");

    // An image (filesystem layers) whose subject is the signed image: refused, layers too.
    let subject = Descriptor::of(OCI_MANIFEST, &signed_bytes);
    let (config, layer) = reg.push_small_blobs(repo);
    let rider = image_manifest(&config, std::slice::from_ref(&layer), Some(&subject), None);
    let rider_digest = reg.push_manifest(repo, "rider", OCI_MANIFEST, &rider);
    assert_refused(&reg, repo, "rider", NOT_SIGNED);
    assert_refused(&reg, repo, &rider_digest, NOT_SIGNED);
    assert_eq!(anonymous_blob(&reg, repo, &layer.digest), 412);
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-no-creds",
        &format!("docker://{}/{repo}:rider", reg.host()),
        &format!("dir:{}", work.path().join("rider").display()),
    ]);
    assert!(
        !out.status.success(),
        "an unsigned image with a subject must not be pulled"
    );

    // An SBOM of the signed image (no filesystem layer) is an accessory, served without a signature.
    let document = br#"{"spdxVersion":"SPDX-2.3"}"#;
    let document_digest = reg.push_blob(repo, document);
    let empty = Descriptor::of(OCI_EMPTY, b"{}");
    reg.push_blob(repo, b"{}");
    let sbom = image_manifest(
        &empty,
        &[Descriptor {
            media_type: "application/spdx+json".to_string(),
            digest: document_digest.clone(),
            size: document.len() as u64,
        }],
        Some(&subject),
        Some("application/spdx+json"),
    );
    let sbom_digest = reg.push_manifest(repo, &sha256(&sbom), OCI_MANIFEST, &sbom);
    assert_served(&reg, repo, &sbom_digest);
    assert_eq!(anonymous_blob(&reg, repo, &document_digest), 200);

    // Signed itself, the image is served.
    sign(&reg, work.path(), repo, &format!("@{rider_digest}"));
    assert_served(&reg, repo, "rider");
    assert_eq!(reg.resolve(repo, "signed"), Some(signed));
}

#[test]
fn a_manifest_under_a_sig_tag_counts_only_when_it_is_a_cosign_signature() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    create_project(&reg, "sigs", json!({"enable_content_trust_cosign": "true"}));
    let repo = "sigs/app";
    let (digest, _) = reg.push_small_image(repo, "v1");
    let scheme = digest.replace(':', "-");

    // A JSON document under the `.sig` tag: an accessory, but no signature.
    let note = br#"{"not":"a signature"}"#;
    let note_digest = reg.push_blob(repo, note);
    reg.push_blob(repo, b"{}");
    let fake = image_manifest(
        &Descriptor::of(OCI_EMPTY, b"{}"),
        &[Descriptor {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".to_string(),
            digest: note_digest,
            size: note.len() as u64,
        }],
        None,
        None,
    );
    let fake_digest = reg.push_manifest(repo, &format!("{scheme}.sig"), OCI_MANIFEST, &fake);
    assert_refused(&reg, repo, "v1", NOT_SIGNED);
    let listed = accessories(&reg, "sigs", "app", "v1");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], fake_digest.as_str());
    assert_eq!(listed[0]["type"], "subject.accessory", "{listed:?}");
    // As an accessory without runnable content it is served itself, like any signature.
    assert_served(&reg, repo, &format!("{scheme}.sig"));

    // An image under the `.att` tag is no accessory exemption: refused, as unsigned.
    let (config, layer) = reg.push_small_blobs(repo);
    let image = image_manifest(&config, &[layer], None, None);
    reg.push_manifest(repo, &format!("{scheme}.att"), OCI_MANIFEST, &image);
    assert_refused(&reg, repo, &format!("{scheme}.att"), NOT_SIGNED);
    let listed = accessories(&reg, "sigs", "app", "v1");
    let kinds: Vec<&Value> = listed.iter().map(|a| &a["type"]).collect();
    assert_eq!(kinds, ["subject.accessory", "subject.accessory"], "{listed:?}");
}

#[test]
fn deleting_a_signature_tag_over_v2_deletes_the_signature() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let mut reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "clean", json!({"enable_content_trust_cosign": "true"}));
    let repo = "clean/app";
    let (digest, _) = reg.push_small_image(repo, "v1");
    sign(&reg, work.path(), repo, ":v1");
    assert_served(&reg, repo, "v1");
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let sig_digest = reg.resolve(repo, &sig_tag).unwrap();

    // What `cosign clean` does: DELETE the tag.
    let resp = reg.delete(&format!("/v2/{repo}/manifests/{sig_tag}"));
    assert_eq!(resp.status().as_u16(), 202);
    assert_refused(&reg, repo, "v1", NOT_SIGNED);
    assert!(accessories(&reg, "clean", "app", "v1").is_empty());
    assert_eq!(
        reg.manifest_status(repo, &sig_digest),
        404,
        "the signature manifest is deleted"
    );
    assert_eq!(reg.manifest_status(repo, &sig_tag), 404);

    // A plain tag's deletion still leaves its manifest.
    reg.push_manifest(
        repo,
        "alias",
        OCI_MANIFEST,
        &reg.get_manifest(repo, "v1").bytes().unwrap(),
    );
    assert_eq!(
        reg.delete(&format!("/v2/{repo}/manifests/alias"))
            .status()
            .as_u16(),
        202
    );
    assert_eq!(reg.manifest_status(repo, &digest), 200);

    reg.stop();
    let events = reg.log_events();
    let unlinked = (events.iter())
        .filter(|e| {
            e["type"] == "dev.berth.accessory_unlinked.v1" && e["data"]["digest"] == sig_digest.as_str()
        })
        .count();
    assert_eq!(unlinked, 1, "one AccessoryUnlinked for the signature");
}

#[test]
fn a_pusher_reads_an_unsigned_manifest_but_cannot_pull_the_image() {
    if skip_unless_berth("content trust is Berth's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "pushers", json!({"enable_content_trust_cosign": "true"}));
    let image = image_layout(work.path(), "v1");
    let layout = format!("oci:{}:v1", work.path().display());
    let dest = format!("docker://{}/pushers/app:v1", reg.host());
    skopeo_push(&layout, &dest, &["--preserve-digests"]);

    // The system admin's full pull (skopeo signs in as the admin) fails on the first blob (skopeo
    // shows the status of a blob error, not its body).
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("dir:{}", work.path().join("pulled").display()),
    ]);
    assert!(!out.status.success(), "nobody pulls an unsigned image");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("412"), "{stderr}");

    // What signing tools and pushes need stays: the manifest by tag and digest, GET and HEAD, and
    // HEAD of a layer; its content is refused.
    let admin = basic_auth("admin", ADMIN_PASSWORD);
    let digest = image.manifest.digest.clone();
    for reference in ["v1", digest.as_str()] {
        assert_eq!(reg.manifest_status("pushers/app", reference), 200);
        let head = reg.head(&format!("/v2/pushers/app/manifests/{reference}"));
        assert_eq!(head.status().as_u16(), 200);
    }
    let layer = image.layers[0].digest.clone();
    assert_eq!(blob_status_as(&reg, &admin, "HEAD", "pushers/app", &layer), 200);
    let refused = reg.get(&format!("/v2/pushers/app/blobs/{layer}"));
    assert_eq!(refused.status().as_u16(), 412);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "PROJECTPOLICYVIOLATION", "{body}");
    assert_eq!(body["errors"][0]["message"], NOT_SIGNED, "{body}");
    // A push of the same image under another tag (its blobs checked with HEAD) still works.
    skopeo_push(
        &layout,
        &format!("docker://{}/pushers/app:v2", reg.host()),
        &["--preserve-digests"],
    );

    // Once signed, the admin's pull succeeds.
    sign(&reg, work.path(), "pushers/app", ":v1");
    let signed = work.path().join("signed");
    skopeo_pull(&dest, &format!("dir:{}", signed.display()), &[]);
}
