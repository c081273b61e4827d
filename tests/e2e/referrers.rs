//! The referrers API (distribution spec 1.1): manifests with a `subject`, listed per subject.
//! Distribution 2.8 has no referrers API, so every test here is Berth-only.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::harness::*;

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIGNATURE: &str = "application/vnd.example.signature.v1";

/// Pushes an artifact manifest (empty config, one random layer) whose subject is `subject`, by
/// digest, and asserts the PUT answered 201 with `OCI-Subject: <subject digest>`.
fn push_artifact(
    reg: &Registry,
    repo: &str,
    subject: &Descriptor,
    artifact_type: Option<&str>,
    annotations: Value,
) -> Descriptor {
    let config = reg.push_blob(repo, b"{}");
    let layer = random_bytes(100);
    reg.push_blob(repo, &layer);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": config, "size": 2},
        "layers": [Descriptor::of("application/octet-stream", &layer).json()],
        "subject": subject.json(),
        "annotations": annotations,
    });
    if let Some(artifact_type) = artifact_type {
        manifest["artifactType"] = json!(artifact_type);
    }
    put_with_subject(
        reg,
        repo,
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
        subject,
    )
}

fn put_with_subject(
    reg: &Registry,
    repo: &str,
    media_type: &str,
    bytes: &[u8],
    subject: &Descriptor,
) -> Descriptor {
    let desc = Descriptor::of(media_type, bytes);
    let resp = reg.put_manifest(repo, &desc.digest, media_type, bytes);
    let status = resp.status().as_u16();
    let oci_subject = header(&resp, "oci-subject");
    assert_eq!(
        status,
        201,
        "PUT {repo}@{}: {}",
        desc.digest,
        resp.text().unwrap_or_default()
    );
    assert_eq!(
        oci_subject.as_deref(),
        Some(subject.digest.as_str()),
        "OCI-Subject on PUT of a manifest with subject"
    );
    desc
}

/// GET the referrers of `digest`: asserts 200 and an OCI image index; returns the header
/// `OCI-Filters-Applied` and the descriptors.
fn referrers(reg: &Registry, repo: &str, digest: &str, query: &str) -> (Option<String>, Vec<Value>) {
    let path = format!("/v2/{repo}/referrers/{digest}{query}");
    let resp = reg.get(&path);
    assert_eq!(resp.status().as_u16(), 200, "GET {path}");
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some(OCI_INDEX),
        "Content-Type of GET {path}"
    );
    let filters = header(&resp, "oci-filters-applied");
    let index: Value = resp.json().unwrap();
    assert_eq!(index["schemaVersion"], 2, "{index}");
    assert_eq!(index["mediaType"], OCI_INDEX, "{index}");
    let manifests = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifests array: {index}"))
        .clone();
    (filters, manifests)
}

fn digests(descriptors: &[Value]) -> BTreeSet<String> {
    descriptors
        .iter()
        .map(|d| d["digest"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn subject_image(reg: &Registry, repo: &str) -> Descriptor {
    let (_, bytes) = reg.push_small_image(repo, "subject");
    Descriptor::of(OCI_MANIFEST, &bytes)
}

#[test]
fn an_artifact_with_a_subject_is_listed_by_the_referrers_api() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(tmp.path());
    let image = layout.add_image("amd64", &sample_layers("subject"));
    layout.tag(&image.manifest, "v1");
    let src = format!("oci:{}:v1", tmp.path().display());
    skopeo_push(
        &src,
        &format!("docker://{}/e2e/ref:v1", reg.host()),
        &["--preserve-digests"],
    );

    let annotations =
        json!({"org.opencontainers.image.created": "2026-11-23T15:00:00Z", "org.example.format": "spdx"});
    // One referrer pushed over HTTP (to see `OCI-Subject`), one built in the layout and copied by skopeo.
    let sig = push_artifact(
        &reg,
        "e2e/ref",
        &image.manifest,
        Some(SIGNATURE),
        annotations.clone(),
    );
    let sbom = layout.add_artifact(
        &image.manifest,
        SBOM,
        b"{\"spdxVersion\":\"SPDX-2.3\"}",
        annotations.clone(),
    );
    layout.tag(&sbom, "sbom");
    let src = format!("oci:{}:sbom", tmp.path().display());
    skopeo_push(
        &src,
        &format!("docker://{}/e2e/ref:sbom", reg.host()),
        &["--preserve-digests"],
    );

    let (filters, mut listed) = referrers(&reg, "e2e/ref", &image.manifest.digest, "");
    assert_eq!(filters, None, "no filter was requested");
    listed.sort_by_key(|d| d["artifactType"].as_str().map(str::to_owned));
    let descriptor = |d: &Descriptor, artifact_type: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": d.digest, "size": d.size,
               "artifactType": artifact_type, "annotations": annotations})
    };
    assert_eq!(
        listed,
        vec![descriptor(&sbom, SBOM), descriptor(&sig, SIGNATURE)],
        "the referrers of the image"
    );
    // The artifacts are ordinary manifests, pullable by digest.
    assert_eq!(reg.manifest_status("e2e/ref", &sbom.digest), 200);
    assert_eq!(reg.manifest_status("e2e/ref", &sig.digest), 200);
    // The subject has no referrers of its own listed under the artifact.
    assert_eq!(
        referrers(&reg, "e2e/ref", &sbom.digest, "").1,
        Vec::<Value>::new()
    );
}

#[test]
fn the_artifact_type_filter_lists_only_matching_referrers_and_says_it_applied() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let subject = subject_image(&reg, "e2e/filter");
    let sbom = push_artifact(&reg, "e2e/filter", &subject, Some(SBOM), json!({}));
    let sig = push_artifact(&reg, "e2e/filter", &subject, Some(SIGNATURE), json!({"k": "v"}));

    let (_, all) = referrers(&reg, "e2e/filter", &subject.digest, "");
    assert_eq!(
        digests(&all),
        BTreeSet::from([sbom.digest.clone(), sig.digest.clone()])
    );

    let (filters, only_sbom) = referrers(
        &reg,
        "e2e/filter",
        &subject.digest,
        &format!("?artifactType={SBOM}"),
    );
    assert_eq!(
        filters.as_deref(),
        Some("artifactType"),
        "OCI-Filters-Applied with ?artifactType="
    );
    assert_eq!(digests(&only_sbom), BTreeSet::from([sbom.digest.clone()]));
    assert_eq!(only_sbom[0]["artifactType"], SBOM);

    let query = "?artifactType=application/vnd.example.none";
    let (filters, none) = referrers(&reg, "e2e/filter", &subject.digest, query);
    assert_eq!(
        filters.as_deref(),
        Some("artifactType"),
        "OCI-Filters-Applied on an empty filtered result"
    );
    assert_eq!(none, Vec::<Value>::new(), "no referrer has that artifactType");

    // A media type with `+` and `/`, percent-encoded in the query as clients send it.
    let spdx = "application/spdx+json";
    let with_plus = push_artifact(&reg, "e2e/filter", &subject, Some(spdx), json!({}));
    let query = "?artifactType=application%2Fspdx%2Bjson";
    let (filters, listed) = referrers(&reg, "e2e/filter", &subject.digest, query);
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(
        digests(&listed),
        BTreeSet::from([with_plus.digest]),
        "filter on {spdx}"
    );
}

#[test]
fn a_referrer_pushed_before_its_subject_exists_is_listed() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    // The subject's bytes are known but not pushed yet.
    let (config, layer) = reg.push_small_blobs("e2e/early");
    let subject_bytes = image_manifest(&config, &[layer], None, None);
    let subject = Descriptor::of(OCI_MANIFEST, &subject_bytes);
    assert_eq!(reg.manifest_status("e2e/early", &subject.digest), 404);

    let sig = push_artifact(&reg, "e2e/early", &subject, Some(SIGNATURE), json!({}));
    assert_eq!(
        digests(&referrers(&reg, "e2e/early", &subject.digest, "").1),
        BTreeSet::from([sig.digest.clone()])
    );

    reg.push_manifest("e2e/early", "v1", OCI_MANIFEST, &subject_bytes);
    assert_eq!(
        digests(&referrers(&reg, "e2e/early", &subject.digest, "").1),
        BTreeSet::from([sig.digest])
    );
}

#[test]
fn referrers_without_an_artifact_type_take_the_config_media_type_and_indexes_none() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let subject = subject_image(&reg, "e2e/fallback");
    // An image manifest without artifactType: listed with its config's media type.
    let config_type = "application/vnd.example.sbom.config.v1+json";
    let config = br#"{"format":"spdx"}"#;
    reg.push_blob("e2e/fallback", config);
    let manifest = image_manifest(&Descriptor::of(config_type, config), &[], Some(&subject), None);
    let by_config = put_with_subject(&reg, "e2e/fallback", OCI_MANIFEST, &manifest, &subject);
    // An index with a subject and no artifactType: listed without artifactType.
    let mut index: Value =
        serde_json::from_slice(&image_index(std::slice::from_ref(&subject), &["amd64"])).unwrap();
    index["subject"] = subject.json();
    index["annotations"] = json!({"org.example.kind": "bundle"});
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let by_index = put_with_subject(&reg, "e2e/fallback", OCI_INDEX, &index_bytes, &subject);

    let (_, listed) = referrers(&reg, "e2e/fallback", &subject.digest, "");
    let find = |digest: &str| listed.iter().find(|d| d["digest"] == digest).cloned();
    let manifest_entry = find(&by_config.digest).unwrap_or_else(|| panic!("manifest not listed: {listed:?}"));
    assert_eq!(
        manifest_entry["artifactType"], config_type,
        "artifactType falls back to config.mediaType"
    );
    assert_eq!(manifest_entry["mediaType"], OCI_MANIFEST);
    let index_entry = find(&by_index.digest).unwrap_or_else(|| panic!("index not listed: {listed:?}"));
    assert_eq!(index_entry["mediaType"], OCI_INDEX);
    assert_eq!(index_entry["size"], by_index.size);
    assert!(
        index_entry.get("artifactType").is_none(),
        "an index without artifactType has none: {index_entry}"
    );
    assert_eq!(index_entry["annotations"], json!({"org.example.kind": "bundle"}));
    assert_eq!(listed.len(), 2, "{listed:?}");
}

#[test]
fn referrers_are_paginated_with_n_and_a_link_header() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let subject = subject_image(&reg, "e2e/pages");
    let pushed: BTreeSet<String> = (0..5)
        .map(|i| {
            push_artifact(
                &reg,
                "e2e/pages",
                &subject,
                Some(SBOM),
                json!({"i": i.to_string()}),
            )
            .digest
        })
        .collect();

    let first = format!("/v2/e2e/pages/referrers/{}?n=2", subject.digest);
    let resp = reg.get(&first);
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        next_link(&resp).is_some(),
        "5 referrers with n=2 need a Link header: {:?}",
        resp.headers()
    );
    let pages = reg.pages(&first);
    assert!(
        pages.len() >= 3,
        "5 referrers with n=2 take at least 3 pages, got {}",
        pages.len()
    );
    let mut seen = Vec::new();
    for page in &pages {
        let manifests = page["manifests"].as_array().unwrap();
        assert!(
            manifests.len() <= 2,
            "a page holds at most n=2 descriptors: {page}"
        );
        seen.extend(manifests.iter().map(|d| d["digest"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        seen.len(),
        5,
        "every referrer exactly once across pages: {seen:?}"
    );
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), pushed);
}

#[test]
fn deleting_a_referrer_removes_it_from_the_list_but_deleting_its_tag_does_not() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let subject = subject_image(&reg, "e2e/unref");
    let keep = push_artifact(&reg, "e2e/unref", &subject, Some(SBOM), json!({}));
    let gone = push_artifact(&reg, "e2e/unref", &subject, Some(SIGNATURE), json!({}));
    // Tag the signature too, then delete only the tag: still a referrer.
    let bytes = reg.get_manifest("e2e/unref", &gone.digest).bytes().unwrap();
    reg.push_manifest("e2e/unref", "sig", OCI_MANIFEST, &bytes);
    assert_eq!(
        reg.delete("/v2/e2e/unref/manifests/sig").status().as_u16(),
        202,
        "DELETE tag"
    );
    let listed = digests(&referrers(&reg, "e2e/unref", &subject.digest, "").1);
    assert_eq!(listed, BTreeSet::from([keep.digest.clone(), gone.digest.clone()]));

    let resp = reg.delete(&format!("/v2/e2e/unref/manifests/{}", gone.digest));
    assert_eq!(resp.status().as_u16(), 202, "DELETE the referrer by digest");
    let listed = digests(&referrers(&reg, "e2e/unref", &subject.digest, "").1);
    assert_eq!(
        listed,
        BTreeSet::from([keep.digest]),
        "the deleted referrer is no longer listed"
    );
}

#[test]
fn referrers_are_scoped_to_their_repository_and_validate_the_digest() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let subject = subject_image(&reg, "e2e/scope-a");
    reg.push_small_image("e2e/scope-b", "v1");
    let in_b = push_artifact(&reg, "e2e/scope-b", &subject, Some(SBOM), json!({}));
    assert_eq!(
        digests(&referrers(&reg, "e2e/scope-b", &subject.digest, "").1),
        BTreeSet::from([in_b.digest])
    );
    assert_eq!(
        referrers(&reg, "e2e/scope-a", &subject.digest, "").1,
        Vec::<Value>::new(),
        "not listed in a"
    );

    // An unknown digest in a known repository: 200 and an empty index, never 404.
    let unknown = sha256(b"nothing refers to this");
    assert_eq!(
        referrers(&reg, "e2e/scope-a", &unknown, "").1,
        Vec::<Value>::new()
    );
    // "If the request is invalid, such as a <digest> with an invalid syntax, a 400 Bad Request MUST be returned."
    let resp = reg.get("/v2/e2e/scope-a/referrers/sha256:xyz");
    assert_eq!(resp.status().as_u16(), 400, "GET referrers of an invalid digest");
}

#[test]
fn a_referrer_with_annotations_too_large_for_its_event_is_listed_with_all_of_them() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let subject = subject_image(&reg, "e2e/ref-big");
    // 64 KiB of annotations: more than an event carries (they stay in the manifest).
    let description = "d".repeat(64 * 1024);
    let sbom = push_artifact(
        &reg,
        "e2e/ref-big",
        &subject,
        Some(SBOM),
        json!({"org.opencontainers.image.description": description, "small": "s"}),
    );
    let (_, listed) = referrers(&reg, "e2e/ref-big", &subject.digest, "");
    assert_eq!(digests(&listed), BTreeSet::from([sbom.digest.clone()]));
    let annotations = &listed[0]["annotations"];
    assert_eq!(annotations["small"], "s");
    assert_eq!(
        annotations["org.opencontainers.image.description"]
            .as_str()
            .map(str::len),
        Some(64 * 1024)
    );
    assert!(listed[0].get("annotations_omitted").is_none(), "{}", listed[0]);
}

/// An empty `artifactType` is no media type: the listing falls back to the config's media type
/// (an image) or leaves it out (an index), and the filter matches what is listed.
#[test]
fn an_empty_artifact_type_counts_as_absent() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let repo = "e2e/empty-type";
    let subject = subject_image(&reg, repo);
    let config_type = "application/vnd.example.sbom.config.v1+json";
    let config = br#"{"format":"cyclonedx"}"#;
    reg.push_blob(repo, config);
    let manifest = image_manifest(
        &Descriptor::of(config_type, config),
        &[],
        Some(&subject),
        Some(""),
    );
    let image = put_with_subject(&reg, repo, OCI_MANIFEST, &manifest, &subject);
    let mut index: Value =
        serde_json::from_slice(&image_index(std::slice::from_ref(&subject), &["amd64"])).unwrap();
    index["subject"] = subject.json();
    index["artifactType"] = json!("");
    let index = put_with_subject(
        &reg,
        repo,
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
        &subject,
    );

    let (_, listed) = referrers(&reg, repo, &subject.digest, "");
    let find = |digest: &str| listed.iter().find(|d| d["digest"] == digest).cloned().unwrap();
    assert_eq!(find(&image.digest)["artifactType"], config_type, "{listed:?}");
    assert!(find(&index.digest).get("artifactType").is_none(), "{listed:?}");
    let (filters, filtered) = referrers(
        &reg,
        repo,
        &subject.digest,
        &format!("?artifactType={}", config_type.replace('+', "%2B")),
    );
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(digests(&filtered), BTreeSet::from([image.digest]));
}

/// "The registry MUST NOT return a 404 Not Found to a referrers API request": not for a
/// repository nobody pushed to, nor (for the admin) in a project that does not exist.
#[test]
fn referrers_of_a_repository_that_does_not_exist_are_an_empty_index() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    reg.push_small_image("e2e/exists", "v1");
    let digest = sha256(b"a subject nobody pushed");
    for repo in ["e2e/never-pushed", "no-such-project/app"] {
        assert_eq!(
            referrers(&reg, repo, &digest, "").1,
            Vec::<Value>::new(),
            "{repo}"
        );
    }
}
