//! Bad uploads and blob requests: digest mismatches, out-of-order chunks, unknown sessions,
//! repository scoping of blobs and mounts. Each asserts the spec's answer and that nothing was
//! linked or completed.

use reqwest::blocking::Response;

use crate::harness::*;

const REPO: &str = "e2e/bad-upload";

fn patch(reg: &Registry, session: &str, range: Option<&str>, bytes: &[u8]) -> Response {
    let mut req = reg
        .http
        .patch(reg.url(session))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec());
    if let Some(range) = range {
        req = req.header("content-range", range);
    }
    req.send().expect("PATCH")
}

fn finish(reg: &Registry, session: &str, digest: &str, last_chunk: &[u8]) -> Response {
    reg.http
        .put(with_query(&reg.url(session), &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(last_chunk.to_vec())
        .send()
        .expect("PUT upload")
}

fn path_of(reg: &Registry, url: &str) -> String {
    url.trim_start_matches(&format!("http://{}", reg.host()))
        .to_owned()
}

#[test]
fn a_digest_mismatch_when_finishing_an_upload_stores_nothing() {
    let reg = Registry::start();
    let bytes = random_bytes(1000);
    let claimed = sha256(b"not these bytes");
    let (status, codes, body) = status_and_codes(reg.try_push_blob(REPO, &bytes, &claimed));
    assert_eq!(
        (status, codes.clone()),
        (400, vec!["DIGEST_INVALID".to_owned()]),
        "monolithic PUT: {body}"
    );
    assert_eq!(
        reg.blob_status(REPO, &sha256(&bytes)),
        404,
        "the uploaded bytes must not be linked"
    );
    assert_eq!(
        reg.blob_status(REPO, &claimed),
        404,
        "the claimed digest must not be linked"
    );

    // Chunked: two PATCHes, then a PUT whose digest is not the digest of the whole blob.
    let session = reg.start_upload(REPO);
    let resp = patch(&reg, &session, Some("0-499"), &bytes[..500]);
    assert_eq!(resp.status().as_u16(), 202);
    let session = reg.url(&header(&resp, "location").expect("Location"));
    let (status, codes, body) =
        status_and_codes(finish(&reg, &session, &sha256(&bytes[..500]), &bytes[500..]));
    assert_eq!(
        (status, codes),
        (400, vec!["DIGEST_INVALID".to_owned()]),
        "chunked PUT: {body}"
    );
    assert_eq!(
        reg.blob_status(REPO, &sha256(&bytes)),
        404,
        "the whole blob must not be linked"
    );
    assert_eq!(
        reg.blob_status(REPO, &sha256(&bytes[..500])),
        404,
        "the first chunk must not be linked"
    );

    // Nothing stuck: the same bytes upload fine afterwards.
    reg.push_blob(REPO, &bytes);
    assert_eq!(reg.blob_status(REPO, &sha256(&bytes)), 200);
}

#[test]
fn an_out_of_order_chunk_is_refused_with_416_and_the_current_range() {
    if skip_unless_berth("distribution 2.8 accepts a chunk whose Content-Range leaves a gap (202)") {
        return;
    }
    let reg = Registry::start();
    let bytes = random_bytes(30);
    let session = reg.start_upload(REPO);
    let resp = patch(&reg, &session, Some("0-9"), &bytes[..10]);
    assert_eq!(resp.status().as_u16(), 202, "first chunk");
    assert_eq!(header(&resp, "range").as_deref(), Some("0-9"));
    let session = reg.url(&header(&resp, "location").expect("Location"));

    for (what, range, chunk) in [
        ("a gap", "20-29", &bytes[20..30]),
        ("an overlap", "5-14", &bytes[5..15]),
    ] {
        let resp = patch(&reg, &session, Some(range), chunk);
        let range_header = header(&resp, "range");
        let (status, codes, body) = status_and_codes(resp);
        assert_eq!(
            status, 416,
            "PATCH with {what} (Content-Range {range}) after 0-9: {body}"
        );
        assert!(
            codes.is_empty() || codes == ["BLOB_UPLOAD_INVALID"],
            "error code of the 416: {codes:?}"
        );
        assert_eq!(
            range_header.as_deref(),
            Some("0-9"),
            "the 416 tells the current Range"
        );
    }
    // The session is intact: status says 0-9, the right chunk continues it, the blob completes.
    let resp = reg.http.get(&session).send().unwrap();
    assert_eq!(resp.status().as_u16(), 204, "GET upload status");
    assert_eq!(
        header(&resp, "range").as_deref(),
        Some("0-9"),
        "Range after the refused chunks"
    );
    let resp = patch(&reg, &session, Some("10-19"), &bytes[10..20]);
    assert_eq!(
        (resp.status().as_u16(), header(&resp, "range").as_deref()),
        (202, Some("0-19"))
    );
    let session = reg.url(&header(&resp, "location").expect("Location"));
    let resp = finish(&reg, &session, &sha256(&bytes), &bytes[20..]);
    assert_eq!(resp.status().as_u16(), 201, "PUT the last chunk");
    let served = reg
        .get(&format!("/v2/{REPO}/blobs/{}", sha256(&bytes)))
        .bytes()
        .unwrap();
    assert!(
        served.as_ref() == bytes.as_slice(),
        "the blob is exactly the in-order chunks"
    );
}

#[test]
fn an_unknown_or_cancelled_upload_session_is_blob_upload_unknown() {
    let reg = Registry::start();
    reg.push_blob(REPO, b"make the repository exist");
    let cancelled = reg.start_upload(REPO);
    let resp = reg.http.delete(&cancelled).send().unwrap();
    assert_eq!(resp.status().as_u16(), 204, "DELETE an upload session cancels it");
    let unknown = format!("/v2/{REPO}/blobs/uploads/{}", uuid_like());
    let digest = sha256(b"x");
    let mut cases = Vec::new();
    for (what, session) in [
        ("unknown session", unknown),
        ("cancelled session", path_of(&reg, &cancelled)),
    ] {
        let put_path = with_query(&session, &format!("digest={digest}"));
        for (method, path) in [
            ("PATCH", session.clone()),
            ("PUT", put_path),
            ("GET", session.clone()),
            ("DELETE", session),
        ] {
            cases.push(
                case(what, method, path, 404, &["BLOB_UPLOAD_UNKNOWN"])
                    .body("application/octet-stream", b"x".to_vec())
                    // distribution 2.8 cannot decode a session without its `_state` token and
                    // answers 404 BLOB_UPLOAD_INVALID; a cancelled one keeps a valid token.
                    .on_distribution(404, &["BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"])
                    .absent(Absent::Blob(REPO.to_owned(), digest.clone())),
            );
        }
    }
    run(&reg, cases);
}

#[test]
fn an_upload_session_cannot_be_finished_under_another_repository() {
    let reg = Registry::start();
    reg.push_blob("e2e/session-b", b"make the repository exist");
    let session = reg.start_upload("e2e/session-a");
    let bytes = random_bytes(300);
    let digest = sha256(&bytes);
    // The same session path, with the repository name swapped.
    let path = path_of(&reg, &session).replacen("/v2/e2e/session-a/", "/v2/e2e/session-b/", 1);
    assert!(path.starts_with("/v2/e2e/session-b/blobs/uploads/"), "{path}");
    let cases = vec![case(
        "a session of another repository",
        "PUT",
        with_query(&path, &format!("digest={digest}")),
        404,
        &["BLOB_UPLOAD_UNKNOWN"],
    )
    .body("application/octet-stream", bytes.clone())
    // distribution 2.8 finds the name mismatch in its `_state` token: 404 BLOB_UPLOAD_INVALID.
    .on_distribution(404, &["BLOB_UPLOAD_INVALID"])
    .absent(Absent::Blob("e2e/session-b".into(), digest.clone()))
    .absent(Absent::Blob("e2e/session-a".into(), digest.clone()))];
    run(&reg, cases);
    // The session still belongs to its own repository.
    let resp = reg
        .http
        .put(with_query(&session, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "finishing the session in its own repository"
    );
    assert_eq!(reg.blob_status("e2e/session-a", &digest), 200);
    assert_eq!(reg.blob_status("e2e/session-b", &digest), 404);
}

fn uuid_like() -> String {
    let h = hex::encode(random_bytes(16));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[test]
fn a_blob_is_served_only_from_repositories_it_was_pushed_or_mounted_to() {
    let reg = Registry::start();
    let bytes = random_bytes(500);
    let digest = reg.push_blob("e2e/has-blob", &bytes);
    let (config, layer) = reg.push_small_blobs("e2e/other");
    reg.push_manifest(
        "e2e/other",
        "v1",
        OCI_MANIFEST,
        &image_manifest(&config, std::slice::from_ref(&layer), None, None),
    );
    let borrowed = image_manifest(&config, &[layer, Descriptor::of(OCI_LAYER, &bytes)], None, None);
    let cases = vec![
        case(
            "blob GET from a repository it was not pushed to",
            "GET",
            format!("/v2/e2e/other/blobs/{digest}"),
            404,
            &["BLOB_UNKNOWN"],
        ),
        case(
            "blob DELETE from a repository it was not pushed to",
            "DELETE",
            format!("/v2/e2e/other/blobs/{digest}"),
            404,
            &["BLOB_UNKNOWN"],
        ),
        case(
            "blob GET from an unknown repository",
            "GET",
            format!("/v2/e2e/nowhere/blobs/{digest}"),
            404,
            &["BLOB_UNKNOWN", "NAME_UNKNOWN"],
        )
        .absent(Absent::Repo("nowhere".into())),
        // A manifest may only reference blobs linked to its own repository.
        case(
            "manifest referencing another repository's blob",
            "PUT",
            "/v2/e2e/other/manifests/borrowed".into(),
            400,
            &["MANIFEST_BLOB_UNKNOWN"],
        )
        .body(OCI_MANIFEST, borrowed.clone())
        .absent(Absent::Tag("e2e/other".into(), "borrowed".into()))
        .absent(Absent::Manifest("e2e/other".into(), sha256(&borrowed)))
        .absent(Absent::Blob("e2e/other".into(), digest.clone())),
    ];
    run(&reg, cases);
    assert_eq!(
        reg.blob_status("e2e/other", &digest),
        404,
        "HEAD from the other repository"
    );
    assert_eq!(
        reg.blob_status("e2e/has-blob", &digest),
        200,
        "the blob is still in its own repository"
    );
}

#[test]
fn mounting_from_a_repository_without_the_blob_starts_an_upload_instead() {
    let reg = Registry::start();
    let bytes = random_bytes(700);
    let digest = reg.push_blob("e2e/mount-source", &bytes);
    reg.push_blob("e2e/mount-empty", b"another blob");
    let unknown = sha256(b"no such blob anywhere");
    for (from, mount) in [
        ("e2e/mount-empty", &digest),
        ("e2e/mount-nowhere", &digest),
        ("e2e/mount-source", &unknown),
    ] {
        let url = reg.url(&format!(
            "/v2/e2e/mount-target/blobs/uploads/?mount={mount}&from={from}"
        ));
        let resp = reg.http.post(url).header("content-length", "0").send().unwrap();
        let status = resp.status().as_u16();
        assert_eq!(
            status, 202,
            "mount {mount} from {from} (which lacks it) must start a session, not 201"
        );
        let session =
            reg.url(&header(&resp, "location").expect("a 202 mount answer carries the session Location"));
        assert_eq!(
            reg.blob_status("e2e/mount-target", mount),
            404,
            "mount from {from}: nothing linked"
        );
        if mount == &digest {
            // The session is a real one: the client uploads the bytes instead.
            assert_eq!(finish(&reg, &session, &digest, &bytes).status().as_u16(), 201);
            assert_eq!(reg.blob_status("e2e/mount-target", &digest), 200);
            assert_eq!(
                reg.delete(&format!("/v2/e2e/mount-target/blobs/{digest}"))
                    .status()
                    .as_u16(),
                202
            );
        }
    }
    assert_eq!(
        reg.blob_status("e2e/mount-empty", &digest),
        404,
        "the `from` repository gained nothing"
    );
}

#[test]
fn unknown_manifests_blobs_and_repositories_are_404_with_spec_codes() {
    let reg = Registry::start();
    reg.push_small_image(REPO, "v1");
    let nothing = sha256(b"nothing has this digest");
    let cases = vec![
        case(
            "GET an unknown tag",
            "GET",
            format!("/v2/{REPO}/manifests/nope"),
            404,
            &["MANIFEST_UNKNOWN"],
        ),
        case(
            "GET an unknown manifest digest",
            "GET",
            format!("/v2/{REPO}/manifests/{nothing}"),
            404,
            &["MANIFEST_UNKNOWN"],
        ),
        case(
            "HEAD an unknown tag",
            "HEAD",
            format!("/v2/{REPO}/manifests/nope"),
            404,
            &[],
        ),
        case(
            "GET a manifest of an unknown repository",
            "GET",
            "/v2/e2e/nowhere/manifests/v1".into(),
            404,
            &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"],
        ),
        case(
            "tags of an unknown repository",
            "GET",
            "/v2/e2e/nowhere/tags/list".into(),
            404,
            &["NAME_UNKNOWN"],
        ),
        case(
            "DELETE an unknown tag",
            "DELETE",
            format!("/v2/{REPO}/manifests/nope"),
            404,
            &["MANIFEST_UNKNOWN"],
        )
        // distribution 2.8 has no tag deletion and parses the tag as a digest.
        .on_distribution(400, &["DIGEST_INVALID"]),
        case(
            "DELETE an unknown manifest digest",
            "DELETE",
            format!("/v2/{REPO}/manifests/{nothing}"),
            404,
            &["MANIFEST_UNKNOWN"],
        ),
        case(
            "GET an unknown blob",
            "GET",
            format!("/v2/{REPO}/blobs/{nothing}"),
            404,
            &["BLOB_UNKNOWN"],
        ),
        case(
            "DELETE an unknown blob",
            "DELETE",
            format!("/v2/{REPO}/blobs/{nothing}"),
            404,
            &["BLOB_UNKNOWN"],
        ),
        case(
            "an unsupported method",
            "PATCH",
            format!("/v2/{REPO}/manifests/v1"),
            405,
            &["UNSUPPORTED"],
        )
        // distribution 2.8: a plain-text 405 without an OCI body.
        .on_distribution(405, &[]),
    ];
    run(&reg, cases);
    assert_eq!(
        reg.manifest_status(REPO, "v1"),
        200,
        "the existing tag is untouched"
    );
    assert_eq!(reg.catalog(), vec![REPO.to_owned()]);
}
