//! `BlobStore` on a local file system.
//!
//! ```text
//! <root>/
//!   blobs/<algorithm>/<first 2 hex>/<hex>   content, written once, never modified
//!   uploads/<uuid>/data                     bytes received so far
//!   uploads/<uuid>/repository               the repository the session belongs to
//!   tmp/<uuid>                              manifests being written
//! ```
//! A blob becomes visible by `rename` after its digest was verified and its data fsynced; the
//! directory is fsynced after the rename, so a crash never exposes a partial blob.
//!
//! A write the file system has no space for fails as `InsufficientStorage` and leaves nothing:
//! `put` removes its file in `tmp/`, an append truncates the session's data back to where the
//! chunk started (the session stays usable), a commit ends the session as always.
//!
//! Garbage collection lists `blobs/` in key order (`list_blobs`, directory by directory) and
//! unlinks what it collects (`delete_blobs`, the directories fsynced after).
//!
//! A session's last write is the newest modification time in its directory; `expire_uploads`
//! removes the sessions whose last write is older than the cutoff, and leftovers in `tmp/` as old.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use crate::domain::{Algorithm, Digest, DigestHasher, RepoName};
use crate::ports::blob_store::is_out_of_space;
use crate::ports::{
    BlobError, BlobRead, BlobStore, ByteRange, ByteStream, StoredBlob, UploadId, UploadState, MAX_LIST_PAGE,
};

/// Write buffer for uploads: large enough that a 512 MiB push makes few syscalls.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Read buffer for blob GETs.
const READ_BUFFER: usize = 256 * 1024;

/// What the process remembers of a session between requests: the running sha256 of its bytes.
/// Lost on restart; then rebuilt by hashing the data file once.
struct Cursor {
    size: u64,
    hasher: DigestHasher,
}

pub struct FsBlobStore {
    root: PathBuf,
    cursors: Mutex<HashMap<UploadId, Arc<tokio::sync::Mutex<Option<Cursor>>>>>,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> std::io::Result<FsBlobStore> {
        for dir in ["blobs", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        Ok(FsBlobStore {
            root: root.to_path_buf(),
            cursors: Mutex::new(HashMap::new()),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        (self.root.join("blobs").join(digest.algorithm().as_str()))
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_dir(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }

    fn cursor(&self, id: &UploadId) -> Arc<tokio::sync::Mutex<Option<Cursor>>> {
        let mut cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        cursors.entry(id.clone()).or_default().clone()
    }

    fn forget(&self, id: &UploadId) {
        let mut cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        cursors.remove(id);
    }

    /// The session's cursor, rebuilt from its data file if this process has not seen it.
    async fn load_cursor(&self, id: &UploadId, slot: &mut Option<Cursor>) -> Result<(), BlobError> {
        if slot.is_some() {
            return Ok(());
        }
        let data = self.upload_dir(id).join("data");
        match hash_file(&data, Algorithm::Sha256).await {
            Ok((hasher, size)) => {
                *slot = Some(Cursor { size, hasher });
                Ok(())
            }
            Err(e) => {
                // Keep the in-memory map to live sessions only.
                self.forget(id);
                Err(not_found_is_unknown(e))
            }
        }
    }

    /// Removes the session `id` if its last write is older than `cutoff`; returns whether it did.
    /// Holds the session's lock, so no append or commit of it runs meanwhile.
    async fn expire_upload(&self, id: &UploadId, cutoff: DateTime<Utc>) -> Result<bool, BlobError> {
        let slot = self.cursor(id);
        let _guard = slot.lock().await;
        let dir = self.upload_dir(id);
        let idle = match last_write(&dir).await {
            Ok(last) => last < cutoff,
            // Committed or aborted since the directory was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(id);
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        if idle {
            self.forget(id);
            match fs::remove_dir_all(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(idle)
    }

    /// Removes files in `tmp/` older than `cutoff`: what a `put` that crashed left behind.
    async fn expire_tmp(&self, cutoff: DateTime<Utc>) -> Result<(), BlobError> {
        let mut entries = fs::read_dir(self.root.join("tmp")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let modified: DateTime<Utc> = entry.metadata().await?.modified()?.into();
            if modified < cutoff {
                match fs::remove_file(entry.path()).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Moves a verified, fsynced file into place as `digest` and makes the rename durable.
    async fn install(&self, file: &Path, digest: &Digest) -> Result<(), BlobError> {
        let target = self.blob_path(digest);
        let dir = target
            .parent()
            .ok_or_else(|| BlobError::Backend("blob path has no parent".into()))?;
        fs::create_dir_all(dir).await?;
        fs::rename(file, &target).await?;
        File::open(dir).await?.sync_all().await?;
        Ok(())
    }
}

fn not_found_is_unknown(e: std::io::Error) -> BlobError {
    match e.kind() {
        std::io::ErrorKind::NotFound => BlobError::UploadUnknown,
        _ => e.into(),
    }
}

/// When the session in `dir` was last written: the newest modification time of the directory and
/// its files.
async fn last_write(dir: &Path) -> std::io::Result<DateTime<Utc>> {
    let mut newest: DateTime<Utc> = fs::metadata(dir).await?.modified()?.into();
    let mut entries = fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let modified: DateTime<Utc> = entry.metadata().await?.modified()?.into();
        newest = newest.max(modified);
    }
    Ok(newest)
}

async fn hash_file(path: &Path, algorithm: Algorithm) -> std::io::Result<(DigestHasher, u64)> {
    let mut file = File::open(path).await?;
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok((hasher, size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let mut file = match File::open(self.blob_path(digest)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        let body: ByteStream = match range {
            Some(r) => {
                file.seek(SeekFrom::Start(r.start)).await?;
                let len = r.end.saturating_sub(r.start) + 1;
                Box::pin(ReaderStream::with_capacity(file.take(len), READ_BUFFER))
            }
            None => Box::pin(ReaderStream::with_capacity(file, READ_BUFFER)),
        };
        Ok(BlobRead { size, body })
    }

    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), BlobError> {
        if self.stat(digest).await?.is_some() {
            return Ok(());
        }
        let tmp = self.root.join("tmp").join(UploadId::new().as_str());
        let written = async {
            let mut file = File::create(&tmp).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            self.install(&tmp, digest).await
        };
        let result = written.await;
        if result.is_err() {
            // A full disk, for one: what was written of it only takes the space others need.
            fs::remove_file(&tmp).await.ok();
        }
        result
    }

    async fn upload_start(&self, repository: &RepoName) -> Result<UploadId, BlobError> {
        let id = UploadId::new();
        let dir = self.upload_dir(&id);
        let started = async {
            fs::create_dir_all(&dir).await?;
            File::create(dir.join("data")).await?;
            fs::write(dir.join("repository"), repository.as_str()).await
        };
        if let Err(e) = started.await {
            fs::remove_dir_all(&dir).await.ok();
            return Err(e.into());
        }
        Ok(id)
    }

    async fn upload_state(&self, id: &UploadId) -> Result<UploadState, BlobError> {
        let dir = self.upload_dir(id);
        let repository = match fs::read_to_string(dir.join("repository")).await {
            Ok(r) => r.parse().map_err(|_| BlobError::UploadUnknown)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::UploadUnknown),
            Err(e) => return Err(e.into()),
        };
        let size = fs::metadata(dir.join("data"))
            .await
            .map_err(|_| BlobError::UploadUnknown)?
            .len();
        Ok(UploadState { repository, size })
    }

    async fn upload_append(
        &self,
        id: &UploadId,
        offset: u64,
        mut body: ByteStream,
    ) -> Result<u64, BlobError> {
        let slot = self.cursor(id);
        let mut guard = slot.lock().await;
        self.load_cursor(id, &mut guard).await?;
        let cursor = guard.as_mut().ok_or(BlobError::UploadUnknown)?;
        if cursor.size != offset {
            return Err(BlobError::OffsetMismatch {
                offset,
                size: cursor.size,
            });
        }
        let file = (OpenOptions::new()
            .append(true)
            .open(self.upload_dir(id).join("data"))
            .await)
            .map_err(not_found_is_unknown)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    if let Err(e) = out.write_all(&bytes).await {
                        failure = Some(e);
                        break;
                    }
                    cursor.hasher.update(&bytes);
                    cursor.size += bytes.len() as u64;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let flushed = out.flush().await;
        if failure.is_some() || flushed.is_err() {
            // What reached the file and the hasher may differ now: rebuild from the file next time.
            *guard = None;
        }
        let result = match failure {
            Some(e) => Err(e),
            None => flushed.map(|()| guard.as_ref().map_or(offset, |c| c.size)),
        };
        match result {
            Err(e) if is_out_of_space(&e) => {
                // Drop the part of the chunk that fitted: it frees the space, and the session is
                // as it was before this chunk, so the client can send it again.
                let file = out.into_inner();
                file.set_len(offset).await?;
                Err(BlobError::InsufficientStorage)
            }
            other => Ok(other?),
        }
    }

    async fn upload_commit(&self, id: &UploadId, digest: &Digest) -> Result<u64, BlobError> {
        let slot = self.cursor(id);
        let mut guard = slot.lock().await;
        self.load_cursor(id, &mut guard).await?;
        let cursor = guard.take().ok_or(BlobError::UploadUnknown)?;
        let dir = self.upload_dir(id);
        let data = dir.join("data");
        let computed = match digest.algorithm() {
            Algorithm::Sha256 => cursor.hasher.finish(),
            other => hash_file(&data, other).await?.0.finish(),
        };
        let result = if computed != *digest {
            Err(BlobError::DigestMismatch { computed })
        } else {
            match File::open(&data).await?.sync_all().await {
                Ok(()) => self.install(&data, digest).await.map(|()| cursor.size),
                Err(e) => Err(e.into()),
            }
        };
        // The session ends either way, before another request on it can rebuild it from disk.
        fs::remove_dir_all(&dir).await.ok();
        self.forget(id);
        drop(guard);
        result
    }

    async fn upload_abort(&self, id: &UploadId) -> Result<(), BlobError> {
        let slot = self.cursor(id);
        let _guard = slot.lock().await;
        self.forget(id);
        match fs::remove_dir_all(self.upload_dir(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::UploadUnknown),
            Err(e) => Err(e.into()),
        }
    }

    async fn expire_uploads(&self, cutoff: DateTime<Utc>) -> Result<u64, BlobError> {
        let mut expired = 0;
        let mut entries = fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            // Only directories this store named: a normalized UUID.
            let Some(id) = name.to_str().and_then(UploadId::parse) else {
                continue;
            };
            if name.to_str() == Some(id.as_str()) && self.expire_upload(&id, cutoff).await? {
                expired += 1;
            }
        }
        self.expire_tmp(cutoff).await?;
        Ok(expired)
    }

    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<StoredBlob>, BlobError> {
        let root = self.root.join("blobs");
        let after = after.map(|d| (d.algorithm().as_str().to_string(), d.hex().to_string()));
        let limit = limit.min(MAX_LIST_PAGE);
        tokio::task::spawn_blocking(move || list_page(&root, after.as_ref(), limit))
            .await
            .map_err(|e| BlobError::Backend(format!("listing blobs: {e}")))?
    }

    async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), BlobError> {
        let mut directories = std::collections::BTreeSet::new();
        for digest in digests {
            let path = self.blob_path(digest);
            match fs::remove_file(&path).await {
                Ok(()) => {
                    directories.extend(path.parent().map(Path::to_path_buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        // The unlinks are durable once their directories are.
        for directory in directories {
            File::open(&directory).await?.sync_all().await?;
        }
        Ok(())
    }
}

/// Sorted names of the entries of `dir` that pass `keep` (absent `dir`: none).
fn sorted_names(dir: &Path, keep: impl Fn(&str) -> bool) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Some(name) = entry?.file_name().to_str() {
            if keep(name) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// One page of `blobs/<algorithm>/<2 hex>/<hex>` after `(algorithm, hex)`, walking only the
/// directories at or after it, so paging through a million blobs reads each directory once.
fn list_page(
    root: &Path,
    after: Option<&(String, String)>,
    limit: usize,
) -> Result<Vec<StoredBlob>, BlobError> {
    let mut page = Vec::new();
    let after_algorithm = after.map(|(a, _)| a.as_str());
    for algorithm in sorted_names(root, |name| after_algorithm.is_none_or(|a| name >= a))? {
        let resuming = after
            .filter(|(a, _)| *a == algorithm)
            .map(|(_, hex)| hex.as_str());
        let prefixes = sorted_names(&root.join(&algorithm), |name| {
            resuming.is_none_or(|hex| name >= &hex[..2.min(hex.len())])
        })?;
        for prefix in prefixes {
            let dir = root.join(&algorithm).join(&prefix);
            for hex in sorted_names(&dir, |name| resuming.is_none_or(|after| name > after))? {
                // Only what this store writes: a valid digest under its own prefix.
                let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                    continue;
                };
                if !hex.starts_with(&prefix) {
                    continue;
                }
                let metadata = match std::fs::metadata(dir.join(&hex)) {
                    Ok(m) => m,
                    // Deleted since the directory was read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                page.push(StoredBlob {
                    digest,
                    size: metadata.len(),
                    modified: metadata.modified().map(DateTime::<Utc>::from)?,
                });
                if page.len() == limit {
                    return Ok(page);
                }
            }
        }
    }
    Ok(page)
}
