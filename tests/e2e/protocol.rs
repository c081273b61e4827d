//! The distribution protocol's positive paths over raw HTTP: uploads (chunked, monolithic, mount),
//! ranges, manifests by tag and digest (OCI, Docker schema 2, sha512, Accept), deletes.

use serde_json::json;

use crate::harness::*;

const REPO: &str = "e2e/proto";

#[test]
fn the_base_endpoint_answers_200_with_the_api_version_header() {
    let reg = Registry::start();
    let resp = reg.get("/v2/");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header(&resp, "docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );
}

#[test]
fn a_chunked_upload_reports_its_progress_and_completes() {
    let reg = Registry::start();
    let bytes = random_bytes(100 + 150 + 50 + 30);
    let mut session = reg.start_upload(REPO);
    let mut offset = 0;
    for len in [100, 150, 50] {
        let chunk = &bytes[offset..offset + len];
        let range = format!("{}-{}", offset, offset + len - 1);
        let resp = reg
            .http
            .patch(&session)
            .header("content-type", "application/octet-stream")
            .header("content-range", &range)
            .body(chunk.to_vec())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "PATCH {range}");
        let expected = format!("0-{}", offset + len - 1);
        assert_eq!(
            header(&resp, "range"),
            Some(expected.clone()),
            "Range after PATCH {range}"
        );
        session = reg.url(&header(&resp, "location").expect("PATCH answers a Location"));
        offset += len;

        let status = reg.http.get(&session).send().unwrap();
        assert_eq!(status.status().as_u16(), 204, "GET upload status");
        assert_eq!(
            header(&status, "range"),
            Some(expected),
            "status Range after PATCH {range}"
        );
        assert!(
            header(&status, "location").is_some(),
            "GET upload status answers a Location"
        );
    }
    let digest = sha256(&bytes);
    let resp = reg
        .http
        .put(with_query(&session, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(bytes[offset..].to_vec())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "closing PUT with the last 30 bytes");
    assert!(
        header(&resp, "location").is_some(),
        "201 carries the blob Location"
    );
    let blob = reg.get(&header(&resp, "location").unwrap());
    assert_eq!(blob.status().as_u16(), 200, "GET the blob Location");
    assert!(
        blob.bytes().unwrap().as_ref() == bytes.as_slice(),
        "the blob is the concatenated chunks"
    );
    assert_eq!(
        reg.http.get(&session).send().unwrap().status().as_u16(),
        404,
        "the closed session is gone"
    );
}

#[test]
fn a_single_post_with_a_digest_creates_the_blob() {
    let reg = Registry::start();
    let bytes = random_bytes(2048);
    let digest = sha256(&bytes);
    let resp = reg
        .http
        .post(reg.url(&format!("/v2/{REPO}/blobs/uploads/?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    if reg.target == Target::Distribution {
        // distribution 2.8 does not support single-POST uploads and answers 202, as the spec allows.
        assert_eq!(status, 202);
        return;
    }
    assert_eq!(status, 201, "Berth supports single-POST monolithic uploads");
    assert_eq!(header(&resp, "docker-content-digest"), Some(digest.clone()));
    let location = header(&resp, "location").expect("201 carries the blob Location");
    assert!(
        reg.get(&location).bytes().unwrap().as_ref() == bytes.as_slice(),
        "GET {location}"
    );
}

#[test]
fn a_range_get_answers_206_with_exactly_the_requested_bytes() {
    let reg = Registry::start();
    let bytes = random_bytes(1000);
    let digest = reg.push_blob(REPO, &bytes);
    let path = reg.url(&format!("/v2/{REPO}/blobs/{digest}"));
    let resp = reg
        .http
        .get(&path)
        .header("range", "bytes=100-199")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(
        header(&resp, "content-range").as_deref(),
        Some("bytes 100-199/1000")
    );
    assert!(resp.bytes().unwrap().as_ref() == &bytes[100..200]);
    let resp = reg.http.get(&path).header("range", "bytes=900-").send().unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert!(
        resp.bytes().unwrap().as_ref() == &bytes[900..],
        "open-ended range"
    );
    let resp = reg
        .http
        .get(&path)
        .header("range", "bytes=5000-6000")
        .send()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        416,
        "a range beyond the blob is not satisfiable"
    );
    let resp = reg.head(&format!("/v2/{REPO}/blobs/{digest}"));
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header(&resp, "content-length").as_deref(),
        Some("1000"),
        "HEAD Content-Length"
    );
    assert_eq!(header(&resp, "docker-content-digest"), Some(digest));
}

#[test]
fn mounting_a_blob_linked_in_the_source_repository_answers_201() {
    let reg = Registry::start();
    let bytes = random_bytes(3000);
    let digest = reg.push_blob("e2e/mount-from", &bytes);
    let url = reg.url(&format!(
        "/v2/e2e/mount-to/blobs/uploads/?mount={digest}&from=e2e/mount-from"
    ));
    let resp = reg.http.post(url).header("content-length", "0").send().unwrap();
    assert_eq!(resp.status().as_u16(), 201, "mount of a blob linked in `from`");
    assert_eq!(header(&resp, "docker-content-digest"), Some(digest.clone()));
    let location = header(&resp, "location").expect("201 carries the blob Location");
    assert!(
        reg.get(&location).bytes().unwrap().as_ref() == bytes.as_slice(),
        "GET {location}"
    );
    assert_eq!(reg.blob_status("e2e/mount-to", &digest), 200);
    assert_eq!(
        reg.blob_status("e2e/mount-from", &digest),
        200,
        "the source keeps its blob"
    );
    // The mounted blob counts as the target's own: a manifest there may reference it.
    let config = reg.push_blob("e2e/mount-to", b"{}");
    let manifest = image_manifest(
        &Descriptor {
            media_type: OCI_CONFIG.into(),
            digest: config,
            size: 2,
        },
        &[Descriptor::of(OCI_LAYER, &bytes)],
        None,
        None,
    );
    reg.push_manifest("e2e/mount-to", "v1", OCI_MANIFEST, &manifest);
}

#[test]
fn manifests_are_served_as_pushed_by_tag_and_digest_for_oci_and_docker_types() {
    let reg = Registry::start();
    let (config, layer) = reg.push_small_blobs(REPO);
    let oci = image_manifest(&config, std::slice::from_ref(&layer), None, None);
    let docker_config = Descriptor {
        media_type: DOCKER_CONFIG.into(),
        ..config.clone()
    };
    let docker_layer = Descriptor {
        media_type: DOCKER_LAYER_GZIP.into(),
        ..layer.clone()
    };
    let docker = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": docker_config.json(), "layers": [docker_layer.json()],
    }))
    .unwrap();
    let docker_digest = reg.push_manifest(REPO, "docker", DOCKER_MANIFEST, &docker);
    let oci_digest = reg.push_manifest(REPO, "oci", OCI_MANIFEST, &oci);
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": docker_digest, "size": docker.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    reg.push_manifest(REPO, "list", DOCKER_LIST, &list);
    let index = image_index(&[Descriptor::of(OCI_MANIFEST, &oci)], &["arm64"]);
    reg.push_manifest(REPO, "index", OCI_INDEX, &index);

    for (tag, media_type, bytes) in [
        ("docker", DOCKER_MANIFEST, &docker),
        ("oci", OCI_MANIFEST, &oci),
        ("list", DOCKER_LIST, &list),
        ("index", OCI_INDEX, &index),
    ] {
        let digest = sha256(bytes);
        for reference in [tag, digest.as_str()] {
            let path = reg.url(&format!("/v2/{REPO}/manifests/{reference}"));
            let resp = reg.http.get(&path).header("accept", media_type).send().unwrap();
            assert_eq!(
                resp.status().as_u16(),
                200,
                "GET {reference} accepting {media_type}"
            );
            assert_eq!(
                header(&resp, "content-type").as_deref(),
                Some(media_type),
                "Content-Type of {reference}"
            );
            assert_eq!(
                header(&resp, "docker-content-digest"),
                Some(digest.clone()),
                "digest of {reference}"
            );
            assert!(
                resp.bytes().unwrap().as_ref() == bytes.as_slice(),
                "the exact bytes pushed for {reference}"
            );
            let head = reg
                .http
                .head(&path)
                .header("accept", accept_all())
                .send()
                .unwrap();
            assert_eq!(head.status().as_u16(), 200, "HEAD {reference}");
            assert_eq!(
                header(&head, "content-length"),
                Some(bytes.len().to_string()),
                "HEAD length"
            );
            assert_eq!(
                header(&head, "docker-content-digest"),
                Some(digest.clone()),
                "HEAD digest"
            );
        }
    }
    assert_eq!(reg.resolve(REPO, "oci"), Some(oci_digest));
}

#[test]
fn pushing_a_tag_again_moves_it_and_keeps_the_previous_manifest_by_digest() {
    let reg = Registry::start();
    let (first, _) = reg.push_small_image(REPO, "latest");
    let (second, _) = reg.push_small_image(REPO, "latest");
    assert_ne!(first, second);
    assert_eq!(reg.resolve(REPO, "latest"), Some(second));
    assert_eq!(
        reg.manifest_status(REPO, &first),
        200,
        "the untagged manifest stays pullable by digest"
    );
    assert_eq!(reg.all_tags(REPO), vec!["latest".to_owned()]);
}

#[test]
fn a_manifest_is_pushed_and_pulled_by_its_sha512_digest() {
    if skip_unless_berth("distribution 2.8 rejects sha512 manifest digests with DIGEST_INVALID") {
        return;
    }
    let reg = Registry::start();
    let (config, layer) = reg.push_small_blobs(REPO);
    let bytes = image_manifest(&config, &[layer], None, None);
    let digest = sha512(&bytes);
    assert_eq!(reg.push_manifest(REPO, &digest, OCI_MANIFEST, &bytes), digest);
    let resp = reg.get_manifest(REPO, &digest);
    assert_eq!(resp.status().as_u16(), 200, "GET by sha512 digest");
    assert_eq!(header(&resp, "docker-content-digest"), Some(digest.clone()));
    assert!(resp.bytes().unwrap().as_ref() == bytes.as_slice());
    assert_eq!(
        reg.delete(&format!("/v2/{REPO}/manifests/{digest}"))
            .status()
            .as_u16(),
        202
    );
    assert_eq!(reg.manifest_status(REPO, &digest), 404);
}

#[test]
fn deleting_a_tag_removes_only_that_tag() {
    // The spec lets a registry refuse tag deletion (400/405); Berth implements it.
    if skip_unless_berth("distribution 2.8 has no tag deletion (it parses the tag as a digest: 400)") {
        return;
    }
    let reg = Registry::start();
    let (digest, bytes) = reg.push_small_image(REPO, "t1");
    reg.push_manifest(REPO, "t2", OCI_MANIFEST, &bytes);
    let resp = reg.delete(&format!("/v2/{REPO}/manifests/t1"));
    assert_eq!(resp.status().as_u16(), 202, "DELETE by tag");
    let (status, codes, _) = status_and_codes(reg.get_manifest(REPO, "t1"));
    assert_eq!(
        (status, codes),
        (404, vec!["MANIFEST_UNKNOWN".to_owned()]),
        "GET the deleted tag"
    );
    assert_eq!(
        reg.resolve(REPO, "t2"),
        Some(digest.clone()),
        "the other tag still resolves"
    );
    assert_eq!(reg.manifest_status(REPO, &digest), 200, "the manifest stays");
    assert_eq!(reg.all_tags(REPO), vec!["t2".to_owned()]);
}

#[test]
fn deleting_a_manifest_by_digest_removes_it_and_every_tag_on_it() {
    let reg = Registry::start();
    let (digest, bytes) = reg.push_small_image(REPO, "t1");
    reg.push_manifest(REPO, "t2", OCI_MANIFEST, &bytes);
    let (other, _) = reg.push_small_image(REPO, "other");
    assert_eq!(
        reg.delete(&format!("/v2/{REPO}/manifests/{digest}"))
            .status()
            .as_u16(),
        202
    );
    for reference in ["t1", "t2", digest.as_str()] {
        let (status, codes, _) = status_and_codes(reg.get_manifest(REPO, reference));
        assert_eq!(
            (status, codes),
            (404, vec!["MANIFEST_UNKNOWN".to_owned()]),
            "GET {reference} after delete"
        );
    }
    assert_eq!(
        reg.all_tags(REPO),
        vec!["other".to_owned()],
        "only the other manifest's tag is left"
    );
    assert_eq!(reg.resolve(REPO, "other"), Some(other));
}

#[test]
fn a_deleted_blob_is_gone_and_can_no_longer_be_referenced() {
    let reg = Registry::start();
    let (config, layer) = reg.push_small_blobs(REPO);
    assert_eq!(
        reg.delete(&format!("/v2/{REPO}/blobs/{}", layer.digest))
            .status()
            .as_u16(),
        202
    );
    let (status, codes, _) = status_and_codes(reg.get(&format!("/v2/{REPO}/blobs/{}", layer.digest)));
    assert_eq!((status, codes), (404, vec!["BLOB_UNKNOWN".to_owned()]));
    let manifest = image_manifest(&config, &[layer], None, None);
    let (status, codes, _) = status_and_codes(reg.put_manifest(REPO, "v1", OCI_MANIFEST, &manifest));
    assert_eq!((status, codes), (400, vec!["MANIFEST_BLOB_UNKNOWN".to_owned()]));
}

#[test]
fn a_manifest_by_tag_honours_accept_and_by_digest_is_served_as_stored() {
    let reg = Registry::start();
    let (digest, bytes) = reg.push_small_image(REPO, "v1");
    let get = |reference: &str, accept: &str| {
        reg.http
            .get(reg.url(&format!("/v2/{REPO}/manifests/{reference}")))
            .header("accept", accept)
            .send()
            .unwrap()
    };
    // Several types in Accept, the stored one among them (with a q-value): served with its type.
    let resp = get(
        "v1",
        &format!("{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.9, {OCI_INDEX}"),
    );
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));
    assert!(resp.bytes().unwrap().as_ref() == bytes.as_slice());
    // By tag, a client that cannot read the stored type is told it is not there (the registry
    // does not convert); by digest, the client asked for exactly these bytes.
    let (status, codes, _) = status_and_codes(get("v1", DOCKER_MANIFEST));
    assert_eq!(
        (status, codes),
        (404, vec!["MANIFEST_UNKNOWN".to_owned()]),
        "by tag, Accept excluding OCI"
    );
    // The spec leaves content negotiation open; serving by digest regardless is Berth's rule
    // (distribution 2.8 answers 404 there too).
    if reg.target == Target::Distribution {
        return;
    }
    let resp = get(&digest, DOCKER_MANIFEST);
    assert_eq!(resp.status().as_u16(), 200, "by digest, whatever the Accept");
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));
    assert_eq!(header(&resp, "docker-content-digest"), Some(digest));
}
