//! What the serverless hosts change for a client, checked under every `BERTH_E2E_TARGET`: chunk
//! size advice, chunked uploads of a blob far larger than a Lambda payload, the Lambda host's 413
//! with advice, and blob GETs redirected to presigned S3 URLs that S3 (s3s-fs, which checks SigV4)
//! really verifies: a tampered or expired URL is refused.

use std::time::Duration;

use reqwest::blocking::Client;

use crate::harness::*;

const MIB: usize = 1024 * 1024;

/// A client that shows redirects instead of following them.
fn no_redirects() -> Client {
    admin_client()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// PATCHes `blob` into a new session in chunks of `chunk` bytes, then PUTs the digest.
fn chunked_push(reg: &Registry, repo: &str, blob: &[u8], chunk: usize) -> String {
    let digest = sha256(blob);
    let mut session = reg.start_upload(repo);
    for (i, part) in blob.chunks(chunk).enumerate() {
        let start = i * chunk;
        let resp = reg
            .http
            .patch(&session)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{}", start + part.len() - 1))
            .body(part.to_vec())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let location = header(&resp, "location");
        assert_eq!(status, 202, "chunk {i}: {}", resp.text().unwrap_or_default());
        session = reg.url(&location.expect("a 202 PATCH has a Location"));
    }
    let resp = reg
        .http
        .put(with_query(&session, &format!("digest={digest}")))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    digest
}

#[test]
fn upload_sessions_advise_a_chunk_size_the_host_can_carry() {
    if skip_unless_berth("OCI-Chunk-Min-Length is a distribution-spec v1.1 header") {
        return;
    }
    let reg = Registry::start();
    let resp = reg
        .http
        .post(reg.url("/v2/e2e/chunks/blobs/uploads/"))
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let advised: u64 = header(&resp, "oci-chunk-min-length")
        .expect("a session advertises OCI-Chunk-Min-Length")
        .parse()
        .expect("a byte count");
    match reg.deployment {
        // 4 MiB: it fits a 6 MB Lambda payload once base64-encoded.
        Deployment::Lambda => assert_eq!(advised, 4 * MIB as u64),
        // 5 MiB: S3's smallest multipart part.
        _ => assert_eq!(advised, 5 * MIB as u64),
    }
    let status = reg
        .http
        .get(header(&resp, "location").map(|l| reg.url(&l)).unwrap())
        .send()
        .unwrap();
    assert_eq!(status.status().as_u16(), 204);
    assert_eq!(
        header(&status, "oci-chunk-min-length").as_deref(),
        Some(advised.to_string().as_str()),
        "the status of a session advises the same size"
    );
}

#[test]
fn a_50_mib_blob_goes_up_in_4_mib_chunks_and_comes_back_identical() {
    let reg = Registry::start();
    let blob = random_bytes(50 * MIB);
    let digest = chunked_push(&reg, "e2e/big", &blob, 4 * MIB);
    let resp = reg.get(&format!("/v2/e2e/big/blobs/{digest}"));
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.bytes().unwrap();
    assert_eq!(body.len(), blob.len());
    assert_eq!(sha256(&body), digest, "the blob comes back byte for byte");
}

#[test]
fn a_body_too_large_for_the_host_is_refused_with_413_and_advice_and_nothing_is_stored() {
    let reg = Registry::start();
    let blob = random_bytes(5 * MIB);
    let digest = sha256(&blob);
    let resp = reg
        .http
        .post(reg.url(&format!("/v2/e2e/mono/blobs/uploads/?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .unwrap();
    let (status, codes, body) = status_and_codes(resp);
    if reg.target == Target::Berth && reg.deployment == Deployment::Lambda {
        assert_eq!(status, 413, "{body}");
        assert_eq!(codes, vec!["BLOB_UPLOAD_INVALID"], "{body}");
        assert!(
            body.contains("chunked upload") && body.contains("berth serve"),
            "{body}"
        );
        let head = reg.head(&format!("/v2/e2e/mono/blobs/{digest}"));
        assert_eq!(head.status().as_u16(), 404, "nothing was stored");
        // The advice works: the same blob in advised chunks goes through.
        assert_eq!(chunked_push(&reg, "e2e/mono", &blob, 4 * MIB), digest);
    } else {
        assert_eq!(status, 201, "the container host streams any size: {body}");
    }
    assert_eq!(
        reg.head(&format!("/v2/e2e/mono/blobs/{digest}"))
            .status()
            .as_u16(),
        200
    );
}

/// A registry on the local AWS stack (s3s-fs checks every signature), with `extra` settings.
fn on_s3(extra: &[(&str, &str)]) -> Option<Registry> {
    if skip_unless_berth("presigned redirects are Berth's S3 storage") {
        return None;
    }
    let mut env = local_stack_env()?;
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Some(Registry::start_with_env(env))
}

/// Pushes a blob and GETs it without following: the 307's Location.
fn redirect_for(reg: &Registry, blob: &[u8]) -> String {
    let digest = reg.push_blob("e2e/presign", blob);
    let path = format!("/v2/e2e/presign/blobs/{digest}");
    let resp = no_redirects().get(reg.url(&path)).send().unwrap();
    assert_eq!(resp.status().as_u16(), 307, "blob GETs on S3 redirect");
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    let head = no_redirects().head(reg.url(&path)).send().unwrap();
    assert_eq!(head.status().as_u16(), 200, "HEAD answers directly");
    assert_eq!(header(&head, "content-length"), Some(blob.len().to_string()));
    header(&resp, "location").expect("a 307 has a Location")
}

#[test]
fn blob_gets_redirect_to_a_presigned_url_that_s3_verifies() {
    let Some(reg) = on_s3(&[]) else { return };
    let blob = random_bytes(100_000);
    let location = redirect_for(&reg, &blob);
    let s3 = std::env::var("BERTH_TEST_S3_S3SFS_ENDPOINT").unwrap();
    assert!(location.starts_with(&s3), "{location} is on the S3 endpoint {s3}");
    assert!(location.contains("X-Amz-Signature="), "{location}");

    let direct = no_redirects().get(&location).send().unwrap();
    assert_eq!(direct.status().as_u16(), 200);
    assert_eq!(direct.bytes().unwrap().as_ref(), &blob[..]);
    let ranged = no_redirects()
        .get(&location)
        .header("range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.bytes().unwrap().as_ref(), &blob[10..20]);

    // Another object under the same signature, or a forged signature: S3 refuses both.
    let other_key = location.replacen("/blobs/sha256/", "/blobs/sha256/0", 1);
    let (sig_at, _) = location.match_indices("X-Amz-Signature=").next().unwrap();
    let mut forged = location.clone();
    let flip = sig_at + "X-Amz-Signature=".len();
    let replacement = if &location[flip..=flip] == "0" { "1" } else { "0" };
    forged.replace_range(flip..=flip, replacement);
    for tampered in [other_key, forged] {
        let resp = no_redirects().get(&tampered).send().unwrap();
        assert_eq!(
            resp.status().as_u16(),
            403,
            "a tampered URL is refused: {tampered}"
        );
    }
}

#[test]
fn an_expired_presigned_url_is_refused() {
    let Some(reg) = on_s3(&[("BERTH_PRESIGN_TTL_SECS", "1")]) else {
        return;
    };
    let blob = random_bytes(1000);
    let location = redirect_for(&reg, &blob);
    std::thread::sleep(Duration::from_millis(2500));
    let resp = no_redirects().get(&location).send().unwrap();
    assert_eq!(resp.status().as_u16(), 403, "an expired URL is refused");
    // The registry hands out a fresh one.
    let resp = reg.get(&format!("/v2/e2e/presign/blobs/{}", sha256(&blob)));
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), &blob[..]);
}

#[test]
fn with_redirects_off_blobs_stream_through_the_host() {
    let Some(reg) = on_s3(&[("BERTH_BLOB_REDIRECT", "false")]) else {
        return;
    };
    let blob = random_bytes(1000);
    let digest = reg.push_blob("e2e/presign", &blob);
    let resp = no_redirects()
        .get(reg.url(&format!("/v2/e2e/presign/blobs/{digest}")))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), &blob[..]);
}
