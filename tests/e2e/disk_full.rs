//! A full disk under embedded storage: writes are refused with 507 and a clear error, reads keep
//! working, nothing partial is left behind or visible, and once space is freed writes work again
//! without a restart. The data directory is a small tmpfs, so this needs root (CI runs as root);
//! elsewhere the test says why it skips.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::harness::*;

/// Small enough to fill in a few pushes.
const TMPFS_SIZE: &str = "48m";
/// Taken at the start and freed at the end, so that space comes back without Berth deleting anything
/// (it has no GC yet).
const BALLAST_BYTES: usize = 16 * 1024 * 1024;
/// The blobs that fill the rest.
const FILL_BLOB_BYTES: usize = 4 * 1024 * 1024;
/// More than the file system can hold in blobs of that size.
const MAX_FILL_PUSHES: usize = 20;

/// A tmpfs mounted on a temporary directory, unmounted when dropped (even when the test fails).
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// `None`, after saying why, when mounting is not possible here (not root, no tmpfs).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new().prefix("berth-full-").tempdir().ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {}", why.trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a process that still holds a file in it cannot keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes `path` until the file system refuses: takes every byte left.
fn fill_to_the_brim(path: &Path) {
    use std::io::Write;
    let mut file = fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.flush();
}

/// Bytes held by the files under `dir` (recursively): what failed uploads left behind.
fn bytes_under(dir: &Path) -> (u64, Vec<PathBuf>) {
    let mut total = 0;
    let mut files = vec![];
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (bytes, more) = bytes_under(&path);
            total += bytes;
            files.extend(more);
        } else {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if len > 0 && path.file_name().is_some_and(|n| n != "repository") {
                total += len;
                files.push(path);
            }
        }
    }
    (total, files)
}

/// Monolithic push (`POST ?digest=`): status and body.
fn post_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> (u16, String) {
    // A connection of its own: a refused upload's connection is closed with its body unread, and
    // a pooled client could send its next request into it before it sees the close.
    let client = admin_client()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let resp = client
        .post(reg.url(&format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(bytes))))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .expect("POST blob");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

fn assert_storage_full(what: &str, status: u16, body: &str) {
    assert_eq!(status, 507, "{what} on a full disk: {body}");
    assert_eq!(error_codes(body), ["UNAVAILABLE"], "{what}: {body}");
    assert!(body.contains("storage is full"), "{what}: {body}");
}

fn assert_reads_work(reg: &Registry, repo: &str, manifest: &[u8], layer: &Descriptor) {
    assert_eq!(reg.get("/v2/").status().as_u16(), 200, "GET /v2/ while full");
    assert_eq!(
        reg.resolve(repo, "before"),
        Some(sha256(manifest)),
        "GET manifest while full"
    );
    let blob = reg.get(&format!("/v2/{repo}/blobs/{}", layer.digest));
    assert_eq!(blob.status().as_u16(), 200, "GET blob while full");
    assert_eq!(blob.bytes().expect("blob").len() as u64, layer.size);
    assert_eq!(reg.all_tags(repo), ["before"], "tags list while full");
}

#[test]
fn a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_once_space_is_freed() {
    if skip_unless_berth("disk-full handling is Berth's") {
        return;
    }
    if deployment() != Deployment::Embedded {
        eprintln!("SKIPPED: the disk-full test needs embedded storage");
        return;
    }
    let Some(tmpfs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let ballast = tmpfs.path().join("ballast");
    fs::write(&ballast, vec![1u8; BALLAST_BYTES]).expect("ballast");
    let data = tmpfs.path().join("data");
    fs::create_dir(&data).expect("data dir");
    let reg = Registry::start_on(&data);
    let repo = "full/app";
    let (config, layer) = reg.push_small_blobs(repo);
    let manifest = image_manifest(&config, std::slice::from_ref(&layer), None, None);
    reg.push_manifest(repo, "before", OCI_MANIFEST, &manifest);

    // Blobs until the disk is full: the one that does not fit is refused, not a 500.
    let mut refused = None;
    for _ in 0..MAX_FILL_PUSHES {
        let (status, body) = post_blob(&reg, repo, &random_bytes(FILL_BLOB_BYTES));
        if status != 201 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the disk never filled up");
    assert_storage_full("a blob push", status, &body);
    let (left, files) = bytes_under(&data.join("uploads"));
    assert_eq!(left, 0, "a refused upload left bytes behind: {files:?}");
    let sessions: Vec<_> = fs::read_dir(data.join("uploads"))
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(
        sessions.is_empty(),
        "a refused monolithic upload left its session: {sessions:?}"
    );
    assert_eq!(
        bytes_under(&data.join("tmp")).0,
        0,
        "a refused write left a temp file"
    );
    assert_reads_work(&reg, repo, &manifest, &layer);

    // Every byte taken: the log's own file cannot grow either. A manifest push then either fits
    // in pages the log already has or is refused; reads keep working either way.
    fill_to_the_brim(&tmpfs.path().join("filler"));
    let during = reg.put_manifest(repo, "during", OCI_MANIFEST, &manifest);
    let (status, _, body) = status_and_codes(during);
    let during_tagged = status == 201;
    if !during_tagged {
        assert_storage_full("a manifest push", status, &body);
    }
    let (status, body) = post_blob(&reg, repo, &random_bytes(FILL_BLOB_BYTES));
    assert_storage_full("a blob push on a brim-full disk", status, &body);
    assert_reads_work_allowing(&reg, repo, &manifest, &layer, during_tagged);

    // Space back: writes work again, no restart.
    fs::remove_file(&ballast).expect("free the ballast");
    fs::remove_file(tmpfs.path().join("filler")).expect("free the filler");
    let (config, layer) = reg.push_small_blobs(repo);
    let after = image_manifest(&config, std::slice::from_ref(&layer), None, None);
    reg.push_manifest(repo, "after", OCI_MANIFEST, &after);
    assert_eq!(reg.resolve(repo, "after"), Some(sha256(&after)));
    assert_eq!(reg.resolve(repo, "before"), Some(sha256(&manifest)));
    assert_eq!(reg.blob_status(repo, &layer.digest), 200);
    assert!(reg.is_running());
    // `reg` drops (the server stops) before `tmpfs` unmounts: declared after it.
}

/// The reads of [`assert_reads_work`], where a manifest push that fitted may have added a tag.
fn assert_reads_work_allowing(
    reg: &Registry,
    repo: &str,
    manifest: &[u8],
    layer: &Descriptor,
    during_tagged: bool,
) {
    if during_tagged {
        assert_eq!(reg.all_tags(repo), ["before", "during"]);
    } else {
        assert_eq!(
            reg.manifest_status(repo, "during"),
            404,
            "a refused push left a tag"
        );
    }
    assert_eq!(reg.get("/v2/").status().as_u16(), 200, "GET /v2/ while full");
    assert_eq!(
        reg.resolve(repo, "before"),
        Some(sha256(manifest)),
        "GET manifest while full"
    );
    assert_eq!(reg.blob_status(repo, &layer.digest), 200, "HEAD blob while full");
}
