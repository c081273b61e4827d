//! Copying a blob to a registry without its bytes crossing twice or sitting in memory: HEAD at
//! the destination first, then a cross-repository mount from the repositories that may hold it
//! there, and only then the bytes, streamed from the source as they arrive: in one PUT, or in
//! chunks (PATCH with `Content-Range`) that resume from what the destination says it holds when
//! the link breaks. The destination checks the digest when the upload is closed (`?digest=`), so
//! a source that served other bytes leaves nothing behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::Url;

use super::client::{backoff, MAX_ATTEMPTS};
use super::{ClientError, RegistryClient};
use crate::ports::blob_store::ByteStream;

type Result<T> = std::result::Result<T, ClientError>;

/// Where a blob's bytes are read from: a registry (through its client) or a store of this
/// registry (the replicator pushing what it holds).
#[async_trait]
pub trait BlobReader: Send + Sync {
    /// The bytes of blob `digest` from `offset` on.
    async fn read_from(&self, digest: &str, offset: u64) -> Result<ByteStream>;
}

#[async_trait]
impl BlobReader for RegistryClient {
    async fn read_from(&self, digest: &str, offset: u64) -> Result<ByteStream> {
        self.blob_from(digest, offset).await
    }
}

/// How a copy sends the bytes it has to.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Chunks of this many bytes (Harbor's `copy_by_chunk`), each a PATCH that a broken link
    /// resumes after; `None` streams the blob in one PUT.
    pub chunk_size: Option<usize>,
    /// Repositories of the destination that may hold the blob: it is mounted from the first that
    /// does.
    pub mount_from: Vec<String>,
    /// At most this many bytes a second (Harbor's `speed`, in KB/s, times 1024).
    pub bytes_per_second: Option<u64>,
}

/// Harbor's chunk size for `copy_by_chunk`.
pub const DEFAULT_CHUNK: usize = 10 << 20;

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The destination had the blob in the repository.
    Present,
    /// Mounted from another repository of the destination.
    Mounted,
    /// Its bytes were sent (this many, counting those sent again after a break).
    Sent { bytes: u64 },
}

/// Copies blob `digest` of `size` bytes from `source` to `destination`'s repository.
pub async fn copy_blob(
    source: &dyn BlobReader,
    destination: &RegistryClient,
    digest: &str,
    size: u64,
    options: &CopyOptions,
) -> Result<Copied> {
    if destination.has_blob(digest).await? {
        return Ok(Copied::Present);
    }
    for from in &options.mount_from {
        if destination.mount_blob(digest, from).await? {
            return Ok(Copied::Mounted);
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let mut upload = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match options.chunk_size {
            None => send_whole(source, destination, digest, size, options, &sent).await,
            Some(chunk) => {
                let chunk = chunk.max(1);
                send_chunks(source, destination, digest, chunk, options, &mut upload, &sent).await
            }
        };
        match result {
            Ok(()) => {
                return Ok(Copied::Sent {
                    bytes: sent.load(Ordering::Relaxed),
                })
            }
            Err(e) if attempt < MAX_ATTEMPTS && broken(&e) => {
                tracing::warn!(digest, attempt, error = %e, "blob copy broke off; resuming");
                tokio::time::sleep(backoff(attempt, None)).await;
            }
            Err(e) => {
                if let Some(open) = upload {
                    destination.cancel_upload(&open).await;
                }
                return Err(e);
            }
        }
    }
}

/// Whether an error is a break another attempt may get past (the link, or a registry busy or
/// failing over after its own retries), not a refusal.
fn broken(error: &ClientError) -> bool {
    match error {
        ClientError::Unreachable { .. } | ClientError::Interrupted(_) => true,
        ClientError::Refused { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
        ClientError::Setup(_) | ClientError::Protocol(_) => false,
    }
}

/// One upload, one PUT carrying the whole blob as the source serves it.
async fn send_whole(
    source: &dyn BlobReader,
    destination: &RegistryClient,
    digest: &str,
    size: u64,
    options: &CopyOptions,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let upload = destination.start_upload().await?;
    let body = source.read_from(digest, 0).await?;
    let counted = counted(throttled(body, options.bytes_per_second), sent);
    destination
        .finish_upload(&upload, digest, Some((counted, size)))
        .await
}

/// Chunk after chunk into `upload` (opened here if none is, or asked where it stands if one
/// is), then the closing PUT.
async fn send_chunks(
    source: &dyn BlobReader,
    destination: &RegistryClient,
    digest: &str,
    chunk: usize,
    options: &CopyOptions,
    upload: &mut Option<Url>,
    sent: &AtomicU64,
) -> Result<()> {
    let (mut at, mut offset) = match upload.take() {
        Some(open) => match destination.upload_offset(&open).await? {
            Some(offset) => (open, offset),
            None => (destination.start_upload().await?, 0),
        },
        None => (destination.start_upload().await?, 0),
    };
    *upload = Some(at.clone());
    let mut body = throttled(source.read_from(digest, offset).await?, options.bytes_per_second);
    let mut pending = BytesMut::new();
    loop {
        let next = body.next().await.transpose().map_err(interrupted)?;
        let done = next.is_none();
        if let Some(bytes) = next {
            pending.extend_from_slice(&bytes);
        }
        while pending.len() >= chunk || (done && !pending.is_empty()) {
            let take = pending.len().min(chunk);
            let part = pending.split_to(take).freeze();
            let length = part.len() as u64;
            at = match destination.patch_upload(&at, offset, part).await {
                Ok(next) => next,
                // The destination holds other bytes than this copy thinks (a lost answer to an
                // earlier PATCH): start over in a new upload.
                Err(ClientError::Refused { status: 416, .. }) => {
                    *upload = None;
                    return Err(ClientError::Interrupted(
                        "the destination's upload is not where the copy was".into(),
                    ));
                }
                Err(e) => return Err(e),
            };
            *upload = Some(at.clone());
            offset += length;
            sent.fetch_add(length, Ordering::Relaxed);
        }
        if done {
            break;
        }
    }
    destination.finish_upload(&at, digest, None).await?;
    *upload = None;
    Ok(())
}

fn interrupted(error: std::io::Error) -> ClientError {
    ClientError::Interrupted(format!("the source's bytes broke off: {error}"))
}

/// `stream`, adding the bytes that pass to `sent` (shared: the HTTP client owns the body).
fn counted(stream: ByteStream, sent: &Arc<AtomicU64>) -> ByteStream {
    let sent = sent.clone();
    Box::pin(stream.inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    }))
}

/// `stream`, held back to at most `rate` bytes a second (on average since it started).
fn throttled(stream: ByteStream, rate: Option<u64>) -> ByteStream {
    let Some(rate) = rate.filter(|r| *r > 0) else {
        return stream;
    };
    let started = Instant::now();
    let passed = Arc::new(AtomicU64::new(0));
    Box::pin(stream.then(move |chunk: std::io::Result<Bytes>| {
        let passed = passed.clone();
        async move {
            if let Ok(bytes) = &chunk {
                let total = passed.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
                let due = Duration::from_secs_f64(total as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            chunk
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::documents::sha256_digest;
    use super::super::testing::{admin_client, berth_on_loopback};
    use super::*;

    /// A blob of `size` bytes that differ from one another.
    fn blob(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// A source of one blob that serves it in 64 KiB pieces and, while `breaks` lasts, breaks
    /// off after the given byte once per entry; records the offsets it was read from.
    struct Flaky {
        bytes: Bytes,
        breaks: Mutex<Vec<u64>>,
        reads: Mutex<Vec<u64>>,
    }

    impl Flaky {
        fn new(bytes: &[u8], breaks: Vec<u64>) -> Flaky {
            Flaky {
                bytes: Bytes::copy_from_slice(bytes),
                breaks: Mutex::new(breaks),
                reads: Mutex::new(vec![]),
            }
        }
    }

    #[async_trait]
    impl BlobReader for Flaky {
        async fn read_from(&self, _digest: &str, offset: u64) -> Result<ByteStream> {
            self.reads.lock().unwrap().push(offset);
            let break_at = {
                let mut breaks = self.breaks.lock().unwrap();
                (!breaks.is_empty()).then(|| breaks.remove(0))
            };
            let rest = self.bytes.slice(offset as usize..);
            let mut pieces: Vec<std::io::Result<Bytes>> = vec![];
            let mut at = offset;
            for piece in rest.chunks(64 << 10) {
                if break_at.is_some_and(|b| at + piece.len() as u64 > b) {
                    pieces.push(Err(std::io::Error::other("connection reset")));
                    break;
                }
                pieces.push(Ok(Bytes::copy_from_slice(piece)));
                at += piece.len() as u64;
            }
            Ok(Box::pin(futures_util::stream::iter(pieces)))
        }
    }

    #[tokio::test]
    async fn a_blob_is_streamed_once_then_found_or_mounted_at_the_destination() {
        let (source_at, _s) = berth_on_loopback().await;
        let (destination_at, _d) = berth_on_loopback().await;
        let bytes = blob(3 << 20 | 17);
        let source = admin_client(&source_at, "app");
        let digest = source.push_blob(&bytes).await.unwrap();
        let size = bytes.len() as u64;

        let app = admin_client(&destination_at, "app");
        let copied = copy_blob(&source, &app, &digest, size, &CopyOptions::default()).await;
        assert_eq!(copied.unwrap(), Copied::Sent { bytes: size });
        assert_eq!(app.blob(&digest, 4 << 20).await.unwrap(), bytes);

        let again = copy_blob(&source, &app, &digest, size, &CopyOptions::default()).await;
        assert_eq!(again.unwrap(), Copied::Present);

        let other = admin_client(&destination_at, "other");
        let options = CopyOptions {
            mount_from: vec!["library/missing".into(), "library/app".into()],
            ..CopyOptions::default()
        };
        let mounted = copy_blob(&source, &other, &digest, size, &options).await;
        assert_eq!(mounted.unwrap(), Copied::Mounted);
        assert_eq!(other.blob(&digest, 4 << 20).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_chunked_copy_resumes_where_the_destination_says_after_the_link_breaks() {
        let (destination_at, _d) = berth_on_loopback().await;
        let bytes = blob((2 << 20) + 100_000);
        let digest = sha256_digest(&bytes);
        let size = bytes.len() as u64;
        // Breaks in the second 1 MiB chunk, and in the third.
        let source = Flaky::new(&bytes, vec![1_500_000, 2_100_000]);
        let destination = admin_client(&destination_at, "app");
        let options = CopyOptions {
            chunk_size: Some(1 << 20),
            ..CopyOptions::default()
        };
        let copied = copy_blob(&source, &destination, &digest, size, &options).await;
        assert_eq!(
            copied.unwrap(),
            Copied::Sent { bytes: size },
            "no byte sent twice"
        );
        assert_eq!(
            *source.reads.lock().unwrap(),
            vec![0, 1 << 20, 2 << 20],
            "each attempt read on from the destination's offset"
        );
        assert_eq!(destination.blob(&digest, 4 << 20).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_whole_copy_starts_over_after_a_break_and_other_bytes_are_refused() {
        let (destination_at, _d) = berth_on_loopback().await;
        let bytes = blob(300_000);
        let digest = sha256_digest(&bytes);
        let size = bytes.len() as u64;
        let destination = admin_client(&destination_at, "app");
        let source = Flaky::new(&bytes, vec![200_000]);
        let copied = copy_blob(&source, &destination, &digest, size, &CopyOptions::default()).await;
        assert!(matches!(copied, Ok(Copied::Sent { bytes }) if bytes >= size));
        assert_eq!(*source.reads.lock().unwrap(), vec![0, 0]);
        assert_eq!(destination.blob(&digest, 1 << 20).await.unwrap(), bytes);

        // A source serving other bytes than the digest names: refused, nothing stored.
        let mut wrong = blob(300_000);
        wrong[7] ^= 1;
        let claimed = sha256_digest(&blob(299_999));
        let liar = Flaky::new(&wrong, vec![]);
        for chunk_size in [None, Some(100_000)] {
            let options = CopyOptions {
                chunk_size,
                ..CopyOptions::default()
            };
            let refused = copy_blob(&liar, &destination, &claimed, size, &options).await;
            assert!(
                matches!(refused, Err(ClientError::Refused { status: 400, .. })),
                "{refused:?}"
            );
            assert!(!destination.has_blob(&claimed).await.unwrap());
        }
    }

    #[tokio::test]
    async fn the_speed_limit_holds_the_bytes_back() {
        let pieces: Vec<std::io::Result<Bytes>> = (0..4).map(|_| Ok(Bytes::from(vec![0u8; 1000]))).collect();
        let started = Instant::now();
        let stream = throttled(Box::pin(futures_util::stream::iter(pieces)), Some(10_000));
        let total: usize = stream
            .map(|c| c.unwrap().len())
            .collect::<Vec<_>>()
            .await
            .iter()
            .sum();
        assert_eq!(total, 4000);
        // 4,000 bytes at 10,000 a second cannot pass in less than 0.4 s.
        assert!(
            started.elapsed() >= Duration::from_millis(390),
            "{:?}",
            started.elapsed()
        );
    }
}
