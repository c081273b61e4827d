//! Rows of docs/spec-conformance.md that no other test covered, each written from the text of
//! distribution-spec v1.1.1 (the row's id names the sentence). Berth-only where distribution 2.8
//! departs from the spec.

use serde_json::json;

use crate::harness::*;

const REPO: &str = "e2e/spec";

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::blocking::Client {
    admin_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// PUSH-4: the POST answers 202 with the session's `Location`; every session has its own.
#[test]
fn each_upload_session_has_its_own_location_under_the_repository() {
    let reg = Registry::start();
    let first = reg.start_upload(REPO);
    let second = reg.start_upload(REPO);
    let prefix = reg.url(&format!("/v2/{REPO}/blobs/uploads/"));
    for session in [&first, &second] {
        let id = session
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{session} is not under {prefix}"));
        let id = id.split('?').next().unwrap_or_default();
        assert!(!id.is_empty() && !id.contains('/'), "session id in {session}");
    }
    assert_ne!(first, second, "two sessions, one Location");
    // The session answers at its Location.
    let status = reg.http.get(&first).send().unwrap();
    assert_eq!(status.status().as_u16(), 204, "GET {first}");
    assert_eq!(header(&status, "range").as_deref(), Some("0-0"));
}

/// PUSH-8 / end-4b: a monolithic POST whose digest is not the body's is 400 `DIGEST_INVALID`, and
/// neither digest is served afterwards.
#[test]
fn a_single_post_with_the_wrong_digest_stores_nothing() {
    let reg = Registry::start();
    let body = random_bytes(2048);
    let claimed = sha256(b"not these bytes");
    let resp = reg
        .http
        .post(reg.url(&format!("/v2/{REPO}/blobs/uploads/?digest={claimed}")))
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .unwrap();
    let (status, codes, text) = status_and_codes(resp);
    assert_eq!(status, 400, "{text}");
    assert!(codes.contains(&"DIGEST_INVALID".to_owned()), "{text}");
    assert_eq!(reg.blob_status(REPO, &claimed), 404);
    assert_eq!(reg.blob_status(REPO, &sha256(&body)), 404);
}

/// PUSH-23: `?mount=` without `from` may open an ordinary session (202 and a `Location`), which
/// then takes the blob as any session does.
#[test]
fn a_mount_without_from_opens_an_ordinary_session() {
    let reg = Registry::start();
    let body = random_bytes(512);
    let digest = sha256(&body);
    let resp = reg
        .http
        .post(reg.url(&format!("/v2/{REPO}/blobs/uploads/?mount={digest}")))
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "mount without from");
    let location = reg.url(&header(&resp, "location").expect("202 without Location"));
    let put = reg
        .http
        .put(with_query(&location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    assert_eq!(
        reg.get(&format!("/v2/{REPO}/blobs/{digest}")).bytes().unwrap(),
        body
    );
}

/// PUSH-26: the manifest PUT's `Content-Type` is the manifest's media type; parameters on it (a
/// charset) do not change which type it is.
#[test]
fn a_manifest_content_type_with_parameters_is_its_media_type() {
    let reg = Registry::start();
    let (config, layer) = reg.push_small_blobs(REPO);
    let manifest = image_manifest(&config, std::slice::from_ref(&layer), None, None);
    let resp = reg.put_manifest(
        REPO,
        "charset",
        &format!("{OCI_MANIFEST}; charset=utf-8"),
        &manifest,
    );
    let status = resp.status().as_u16();
    assert_eq!(status, 201, "{}", resp.text().unwrap_or_default());
    let got = reg.get_manifest(REPO, "charset");
    assert_eq!(got.status().as_u16(), 200);
    let content_type = header(&got, "content-type").unwrap_or_default();
    assert!(content_type.starts_with(OCI_MANIFEST), "{content_type}");
    assert_eq!(got.bytes().unwrap().to_vec(), manifest);
}

/// MGMT-5: deleting a manifest that is not there is 404, in a repository that was never pushed
/// to, and (for the admin, who may see that it is missing) in a project that does not exist.
#[test]
fn deleting_a_manifest_that_is_not_there_is_404() {
    let reg = Registry::start();
    reg.push_small_image(REPO, "v1");
    let nowhere = sha256(b"no such manifest");
    for repo in [REPO, "e2e/never-pushed", "no-such-project/app"] {
        let resp = reg.delete(&format!("/v2/{repo}/manifests/{nowhere}"));
        let (status, codes, text) = status_and_codes(resp);
        assert_eq!(status, 404, "DELETE in {repo}: {text}");
        assert!(
            codes
                .iter()
                .any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN"),
            "DELETE in {repo}: {text}"
        );
    }
    assert_eq!(reg.manifest_status(REPO, "v1"), 200, "the other manifest stays");
}

/// PULL-12: a blob GET carries `Docker-Content-Digest` equal to the blob's digest (on S3 storage
/// the 307 to the presigned URL carries it, where the bytes come from S3).
#[test]
fn a_blob_get_names_its_digest() {
    let reg = Registry::start();
    let body = random_bytes(4096);
    let digest = reg.push_blob(REPO, &body);
    let resp = no_redirects()
        .get(reg.url(&format!("/v2/{REPO}/blobs/{digest}")))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    assert!(status == 200 || status == 307, "GET blob: {status}");
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    if status == 200 {
        assert_eq!(resp.bytes().unwrap().to_vec(), body);
    }
}

/// PUSH-12: a `Content-Range` that is not `<start>-<end>`, or runs backwards, is a chunk the
/// session cannot take (416 with its `Range`); a `Content-Length` that is not the range's length
/// is `SIZE_INVALID`. None of them changes the session: the right chunk still lands.
#[test]
fn malformed_chunk_ranges_are_refused_and_the_session_goes_on() {
    if skip_unless_berth("distribution 2.8 takes some of these ranges") {
        return;
    }
    let reg = Registry::start();
    let session = reg.start_upload(REPO);
    let chunk = random_bytes(1000);
    let patch = |range: &str, length: usize, body: &[u8]| {
        let resp = reg
            .http
            .patch(&session)
            .header("content-type", "application/octet-stream")
            .header("content-range", range)
            .header("content-length", length.to_string())
            .body(body.to_vec())
            .send()
            .unwrap();
        let range = header(&resp, "range");
        let (status, codes, text) = status_and_codes(resp);
        (status, codes, range, text)
    };
    for bad in ["0", "a-b", "0-", "-999", "999-0"] {
        let (status, codes, range, text) = patch(bad, chunk.len(), &chunk);
        assert_eq!(status, 416, "Content-Range {bad}: {text}");
        assert_eq!(codes, ["BLOB_UPLOAD_INVALID"], "Content-Range {bad}");
        assert_eq!(range.as_deref(), Some("0-0"), "Content-Range {bad}");
    }
    // 1000 bytes sent, but the range says 500: the spec's "provided length did not match".
    let (status, codes, _, text) = patch("0-499", chunk.len(), &chunk);
    assert_eq!((status, codes), (400, vec!["SIZE_INVALID".to_owned()]), "{text}");

    let (status, _, range, text) = patch("0-999", chunk.len(), &chunk);
    assert_eq!(status, 202, "the right chunk: {text}");
    assert_eq!(range.as_deref(), Some("0-999"));
}

/// PUSH-18: the closing PUT must say the blob's digest; without `?digest=` it is 400
/// `DIGEST_INVALID` and nothing is stored.
#[test]
fn closing_an_upload_without_a_digest_is_refused() {
    let reg = Registry::start();
    let session = reg.start_upload(REPO);
    let body = random_bytes(300);
    let resp = reg
        .http
        .put(&session)
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .unwrap();
    let (status, codes, text) = status_and_codes(resp);
    assert_eq!(status, 400, "{text}");
    assert!(codes.contains(&"DIGEST_INVALID".to_owned()), "{text}");
    assert_eq!(reg.blob_status(REPO, &sha256(&body)), 404);
}

/// ERR-4 and end-8: an `n` that is not a number, and a path that is no endpoint, are answered
/// with a code from the spec's table.
#[test]
fn invalid_parameters_and_unknown_endpoints_use_the_specs_codes() {
    if skip_unless_berth("distribution 2.8 answers PAGINATION_NUMBER_INVALID and a plain 404") {
        return;
    }
    let reg = Registry::start();
    reg.push_small_image(REPO, "v1");
    for path in [
        format!("/v2/{REPO}/tags/list?n=ten"),
        "/v2/_catalog?n=-1".to_owned(),
    ] {
        let (status, codes, text) = status_and_codes(reg.get(&path));
        assert_eq!(
            (status, codes),
            (400, vec!["UNSUPPORTED".to_owned()]),
            "{path}: {text}"
        );
    }
    let path = format!("/v2/{REPO}/nothing-here");
    let (status, codes, text) = status_and_codes(reg.get(&path));
    assert_eq!(
        (status, codes),
        (404, vec!["UNSUPPORTED".to_owned()]),
        "{path}: {text}"
    );
}

/// DISC-22: an index pushed under a referrers-tag-schema tag (`sha256-<hex>`, what clients write
/// to registries without the API) is an ordinary tag: stored and served verbatim, while the API
/// still lists each referrer once.
#[test]
fn a_referrers_tag_schema_index_is_an_ordinary_tag() {
    if skip_unless_berth("distribution 2.8 has no referrers API") {
        return;
    }
    let reg = Registry::start();
    let (_, subject_bytes) = reg.push_small_image(REPO, "subject");
    let subject = Descriptor::of(OCI_MANIFEST, &subject_bytes);
    let config = Descriptor::of("application/vnd.example.sbom.v1", b"{}");
    reg.push_blob(REPO, b"{}");
    let referrer = image_manifest(&config, &[], Some(&subject), None);
    let referrer_digest = reg.push_manifest(REPO, &sha256(&referrer), OCI_MANIFEST, &referrer);

    let fallback_tag = subject.digest.replace(':', "-");
    let mut descriptor = Descriptor::of(OCI_MANIFEST, &referrer).json();
    descriptor["artifactType"] = json!("application/vnd.example.sbom.v1");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor],
    }))
    .unwrap();
    reg.push_manifest(REPO, &fallback_tag, OCI_INDEX, &index);
    assert_eq!(
        reg.get_manifest(REPO, &fallback_tag).bytes().unwrap().to_vec(),
        index,
        "the tag serves the index as pushed"
    );
    let listed: serde_json::Value = reg
        .get(&format!("/v2/{REPO}/referrers/{}", subject.digest))
        .json()
        .unwrap();
    let digests: Vec<&str> = (listed["manifests"].as_array().unwrap().iter())
        .filter_map(|d| d["digest"].as_str())
        .collect();
    assert_eq!(digests, [referrer_digest.as_str()], "{listed}");
}
