//! Concurrent writers: 16 clients push different manifests to one tag at the same instant; every
//! push lands, and the event log's last `tag_moved` names what the tag resolves to.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use serde_json::Value;

use crate::harness::*;

const REPO: &str = "e2e/race";
const WRITERS: usize = 16;

/// Runs `WRITERS` threads; each prepares its own manifest (pushing its own blobs), waits at a
/// barrier, then PUTs it to `tag_of(i)`. Returns each thread's (status, body, manifest digest).
fn race(reg: &Registry, tag_of: fn(usize) -> String) -> Vec<(u16, String, String)> {
    let barrier = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (http, base, barrier) = (
                reg.http.clone(),
                format!("http://{}", reg.host()),
                Arc::clone(&barrier),
            );
            let (config, layer) = reg.push_small_blobs(REPO);
            let manifest = image_manifest(&config, &[layer], None, None);
            std::thread::spawn(move || {
                barrier.wait();
                let resp = http
                    .put(format!("{base}/v2/{REPO}/manifests/{}", tag_of(i)))
                    .header("content-type", OCI_MANIFEST)
                    .body(manifest.clone())
                    .send()
                    .expect("PUT manifest");
                (
                    resp.status().as_u16(),
                    resp.text().unwrap_or_default(),
                    sha256(&manifest),
                )
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    let kind = format!("dev.berth.{kind}.v1");
    events
        .iter()
        .filter(|e| e["type"] == kind.as_str() && e["data"]["repository"] == REPO)
        .collect()
}

#[test]
fn sixteen_concurrent_pushes_to_one_tag_all_land_and_the_log_agrees_with_the_tag() {
    let mut reg = Registry::start();
    let results = race(&reg, |_| "latest".to_owned());
    for (status, body, digest) in &results {
        assert_eq!(*status, 201, "concurrent PUT {REPO}:latest of {digest}: {body}");
    }
    let pushed: BTreeSet<String> = results.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(pushed.len(), WRITERS, "16 different manifests");
    let resolved = reg.resolve(REPO, "latest").expect("the tag resolves");
    assert!(
        pushed.contains(&resolved),
        "the tag ends on one of the pushed manifests"
    );
    for digest in &pushed {
        assert_eq!(
            reg.manifest_status(REPO, digest),
            200,
            "every pushed manifest is stored: {digest}"
        );
    }
    assert_eq!(reg.all_tags(REPO), vec!["latest".to_owned()]);

    if skip_unless_berth("`berth log` is Berth's; the HTTP half above ran") {
        return;
    }
    reg.stop();
    let events = reg.log_events();
    let logged: BTreeSet<String> = events_of(&events, "manifest_pushed")
        .iter()
        .filter_map(|e| e["data"]["digest"].as_str().map(str::to_owned))
        .collect();
    assert!(
        pushed.is_subset(&logged),
        "every pushed manifest has a manifest_pushed event: missing {:?}",
        pushed.difference(&logged).collect::<Vec<_>>()
    );

    let moves: Vec<&Value> = events_of(&events, "tag_moved")
        .into_iter()
        .filter(|e| e["data"]["tag"] == "latest")
        .collect();
    let last = moves.last().expect("tag_moved events for latest");
    assert_eq!(
        last["data"]["digest"],
        resolved.as_str(),
        "the last tag_moved names what the tag resolved to"
    );
    // Serialised writers: 16 moves, each from the previous one's digest.
    assert_eq!(moves.len(), WRITERS, "one tag_moved per push: {moves:#?}");
    assert!(
        moves[0]["data"].get("previous").is_none_or(Value::is_null),
        "the first move has no previous: {}",
        moves[0]
    );
    for pair in moves.windows(2) {
        assert_eq!(
            pair[1]["data"]["previous"], pair[0]["data"]["digest"],
            "tag_moved chain: {} then {}",
            pair[0], pair[1]
        );
    }
    let moved_to: BTreeSet<String> = moves
        .iter()
        .filter_map(|e| e["data"]["digest"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(moved_to, pushed, "every push moved the tag once");
    reg.assert_rebuild_identical();
}

#[test]
fn sixteen_concurrent_pushes_to_different_tags_of_one_repository_are_all_listed() {
    let reg = Registry::start();
    let results = race(&reg, |i| format!("t{i:02}"));
    for (i, (status, body, digest)) in results.iter().enumerate() {
        assert_eq!(*status, 201, "concurrent PUT {REPO}:t{i:02}: {body}");
        assert_eq!(
            reg.resolve(REPO, &format!("t{i:02}")).as_ref(),
            Some(digest),
            "t{i:02} resolves to its manifest"
        );
    }
    let expected: Vec<String> = (0..WRITERS).map(|i| format!("t{i:02}")).collect();
    let mut listed = reg.all_tags(REPO);
    listed.sort();
    assert_eq!(listed, expected, "all 16 tags listed");
}

#[test]
fn eight_clients_uploading_the_same_blob_at_once_all_succeed() {
    let mut reg = Registry::start();
    let bytes = Arc::new(random_bytes(256 * 1024));
    let digest = sha256(&bytes);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let session = reg.start_upload(REPO);
            let (http, barrier, bytes, digest) = (
                reg.http.clone(),
                Arc::clone(&barrier),
                Arc::clone(&bytes),
                digest.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let resp = http
                    .put(with_query(&session, &format!("digest={digest}")))
                    .header("content-type", "application/octet-stream")
                    .body(bytes.to_vec())
                    .send()
                    .expect("PUT upload");
                (resp.status().as_u16(), resp.text().unwrap_or_default())
            })
        })
        .collect();
    for thread in threads {
        let (status, body) = thread.join().unwrap();
        assert_eq!(status, 201, "concurrent upload of the same blob: {body}");
    }
    let served = reg.get(&format!("/v2/{REPO}/blobs/{digest}")).bytes().unwrap();
    assert!(served.as_ref() == bytes.as_slice(), "the blob is served intact");
    if skip_unless_berth("`berth rebuild-views` is Berth's; the HTTP half above ran") {
        return;
    }
    reg.stop();
    reg.assert_rebuild_identical();
}
