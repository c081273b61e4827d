//! Crash safety: SIGKILL the server in the middle of a stream of pushes, restart it on the same
//! data directory, and check that every acknowledged push survived, that every tag resolves to a
//! complete manifest whose blobs are all there, and that the views still equal a replay of the log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::harness::*;

/// A push acknowledged with 201: (repository, unique tag, manifest digest).
type Acked = (String, String, String);

/// A pusher that reports errors instead of panicking: the server dies under it on purpose.
struct Pusher {
    http: Client,
    base: String,
}

impl Pusher {
    fn blob(&self, repo: &str, bytes: &[u8]) -> Result<Descriptor, String> {
        let resp = self
            .http
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .header("content-length", "0")
            .send()
            .map_err(|e| e.to_string())?;
        let location = header(&resp, "location").ok_or("no Location")?;
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let digest = sha256(bytes);
        let resp = self
            .http
            .put(with_query(&url, &format!("digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .map_err(|e| e.to_string())?;
        if resp.status().as_u16() != 201 {
            return Err(format!("blob PUT answered {}", resp.status()));
        }
        Ok(Descriptor::of(OCI_LAYER, bytes))
    }

    /// An upload left half done: a session with one chunk that is never finished.
    fn abandoned_upload(&self, repo: &str) -> Result<(), String> {
        let resp = self
            .http
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .header("content-length", "0")
            .send()
            .map_err(|e| e.to_string())?;
        let location = header(&resp, "location").ok_or("no Location")?;
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        self.http
            .patch(url)
            .header("content-type", "application/octet-stream")
            .header("content-range", "0-4095")
            .body(random_bytes(4096))
            .send()
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Pushes a config and 1 to 3 layers; returns the manifest over them (not pushed yet).
    fn blobs_and_manifest(&self, repo: &str) -> Result<Vec<u8>, String> {
        let config = serde_json::to_vec(&serde_json::json!({"n": hex::encode(random_bytes(8))})).unwrap();
        let config = Descriptor {
            media_type: OCI_CONFIG.into(),
            ..self.blob(repo, &config)?
        };
        let layers = (0..1 + random_below(3))
            .map(|_| self.blob(repo, &random_bytes(1024 + random_below(64 * 1024) as usize)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(image_manifest(&config, &layers, None, None))
    }

    fn tag(&self, repo: &str, tag: &str, manifest: &[u8]) -> Result<(), String> {
        let resp = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{tag}", self.base))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.to_vec())
            .send()
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            201 => Ok(()),
            status => Err(format!("manifest PUT {repo}:{tag} answered {status}")),
        }
    }
}

/// Pushes until the server stops answering; records every acknowledged unique tag.
fn push_until_dead(pusher: Pusher, cycle: usize, acked: Arc<Mutex<Vec<Acked>>>, count: Arc<AtomicUsize>) {
    for i in 0.. {
        let repo = format!("e2e/crash-{}", i % 3);
        let tag = format!("c{cycle}-{i}");
        let result = if i % 4 == 3 {
            pusher.abandoned_upload(&repo)
        } else {
            pusher.blobs_and_manifest(&repo).and_then(|manifest| {
                pusher.tag(&repo, &tag, &manifest)?;
                acked
                    .lock()
                    .unwrap()
                    .push((repo.clone(), tag.clone(), sha256(&manifest)));
                count.fetch_add(1, Ordering::SeqCst);
                // `latest` moves with every push; it is checked for completeness, not for a digest.
                pusher.tag(&repo, "latest", &manifest)
            })
        };
        if let Err(why) = result {
            eprintln!("pusher (cycle {cycle}) stopped after {i} pushes: {why}");
            return;
        }
    }
}

/// Every tag in the catalog resolves to a manifest whose bytes match its digest and whose blobs
/// are all served with their digests and sizes. Returns the number of tags checked.
fn assert_every_tag_is_complete(reg: &Registry) -> usize {
    let mut checked = 0;
    for repo in reg.catalog() {
        for tag in reg.all_tags(&repo) {
            let resp = reg.get_manifest(&repo, &tag);
            assert_eq!(
                resp.status().as_u16(),
                200,
                "listed tag {repo}:{tag} must resolve"
            );
            let header_digest = header(&resp, "docker-content-digest");
            let body = resp.bytes().unwrap();
            assert_eq!(
                header_digest,
                Some(sha256(&body)),
                "{repo}:{tag}: Docker-Content-Digest vs body"
            );
            let manifest: Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{repo}:{tag} is not JSON: {e}"));
            let blobs = manifest["layers"].as_array().cloned().unwrap_or_default();
            for blob in blobs.iter().chain([&manifest["config"]]) {
                let digest = blob["digest"].as_str().unwrap();
                let resp = reg.get(&format!("/v2/{repo}/blobs/{digest}"));
                assert_eq!(
                    resp.status().as_u16(),
                    200,
                    "{repo}:{tag} references blob {digest}: GET"
                );
                let bytes = resp.bytes().unwrap();
                assert_eq!(sha256(&bytes), digest, "{repo}:{tag}: blob {digest} content");
                assert_eq!(
                    Some(bytes.len() as u64),
                    blob["size"].as_u64(),
                    "{repo}:{tag}: blob {digest} size"
                );
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn pushes_acknowledged_before_a_sigkill_survive_and_every_tag_stays_complete() {
    if skip_unless_berth("SIGKILL recovery and `berth rebuild-views` are Berth's to check") {
        return;
    }
    let mut reg = Registry::start();
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    for cycle in 0..3 {
        let count = Arc::new(AtomicUsize::new(0));
        let pusher = Pusher {
            http: admin_client().timeout(Duration::from_secs(10)).build().unwrap(),
            base: format!("http://{}", reg.host()),
        };
        let thread = {
            let (acked, count) = (Arc::clone(&acked), Arc::clone(&count));
            std::thread::spawn(move || push_until_dead(pusher, cycle, acked, count))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while count.load(Ordering::SeqCst) < 3 {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: fewer than 3 pushes in 60s"
            );
            assert!(
                !thread.is_finished(),
                "cycle {cycle}: the pusher stopped before the kill"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let delay = Duration::from_millis(100 + random_below(400));
        std::thread::sleep(delay);
        assert!(
            !thread.is_finished(),
            "cycle {cycle}: the pusher stopped before the kill"
        );
        reg.kill();
        thread.join().unwrap();
        eprintln!(
            "cycle {cycle}: SIGKILL after {delay:?}, {} pushes acknowledged",
            count.load(Ordering::SeqCst)
        );

        reg.restart();
        let acked_now = acked.lock().unwrap().clone();
        for (repo, tag, digest) in &acked_now {
            assert_eq!(
                reg.resolve(repo, tag).as_ref(),
                Some(digest),
                "acknowledged push {repo}:{tag} after SIGKILL"
            );
        }
        let checked = assert_every_tag_is_complete(&reg);
        assert!(
            checked >= acked_now.len(),
            "{checked} tags checked for {} acknowledged pushes",
            acked_now.len()
        );

        reg.stop();
        let events = reg.assert_rebuild_identical();
        // Each acknowledged push logged at least 2 blobs, 1 manifest and 1 tag move.
        assert!(
            events >= acked_now.len() as u64 * 4,
            "{events} events for {} pushes",
            acked_now.len()
        );
        reg.restart();
    }
    // Still writable after three crashes.
    reg.push_small_image("e2e/crash-0", "after");
    assert!(reg.resolve("e2e/crash-0", "after").is_some());
}
