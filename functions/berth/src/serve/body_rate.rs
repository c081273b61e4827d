//! A minimum rate for request bodies: a client that sends an upload slower than
//! `min_bytes_per_sec` (averaged over each [`RATE_WINDOW`]) has its body failed, so a trickle of
//! bytes cannot hold a connection and an upload session forever.
//!
//! The handler sees a body read error; an upload keeps what it appended before (a client may
//! resume from the session's `Range`), nothing is stored as a blob. The host answers such a
//! request with 408 (see [`Tripped`]).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use tokio::time::{Instant, Sleep};

/// The period over which a body's rate is averaged: long enough for a client's pauses (a GC, a
/// slow disk read) to pass unnoticed.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The default floor, in bytes per second: far below any working link (1 KiB/s), so only a
/// stalled or deliberately slow client trips it.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;

/// Whether a request's body was failed for its rate; the host turns the answer into a 408.
#[derive(Clone, Default)]
pub struct Tripped(Arc<AtomicBool>);

impl Tripped {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a body was failed.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {0} bytes/s over {RATE_WINDOW:?}")]
pub struct TooSlow(u64);

/// `inner`, failed if fewer than `min_bytes_per_sec` × [`RATE_WINDOW`] bytes arrive in a window.
pub struct MinRate {
    inner: Body,
    min_per_window: u64,
    min_bytes_per_sec: u64,
    received: u64,
    window_end: Pin<Box<Sleep>>,
    window: Duration,
    tripped: Tripped,
}

impl MinRate {
    /// Wraps `inner`; `tripped` is set if it is failed.
    pub fn wrap(inner: Body, min_bytes_per_sec: u64, tripped: Tripped) -> Body {
        MinRate::with_window(inner, min_bytes_per_sec, RATE_WINDOW, tripped)
    }

    fn with_window(inner: Body, min_bytes_per_sec: u64, window: Duration, tripped: Tripped) -> Body {
        if min_bytes_per_sec == 0 || inner.is_end_stream() {
            return inner;
        }
        Body::new(MinRate {
            inner,
            min_per_window: min_bytes_per_sec.saturating_mul(window.as_secs().max(1)),
            min_bytes_per_sec,
            received: 0,
            window_end: Box::pin(tokio::time::sleep(window)),
            window,
            tripped,
        })
    }

    /// At a window's end: fails the body if the window was too slow, else starts the next.
    fn window_over(&mut self) -> Result<(), axum::Error> {
        if self.received < self.min_per_window {
            self.tripped.0.store(true, Ordering::SeqCst);
            tracing::warn!(
                received = self.received,
                "request body too slow: failed after {:?}",
                self.window
            );
            return Err(axum::Error::new(TooSlow(self.min_bytes_per_sec)));
        }
        self.received = 0;
        let next = Instant::now() + self.window;
        self.window_end.as_mut().reset(next);
        Ok(())
    }
}

impl HttpBody for MinRate {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                if this.window_end.is_elapsed() {
                    if let Err(e) = this.window_over() {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                while this.window_end.as_mut().poll(cx).is_ready() {
                    if let Err(e) = this.window_over() {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    /// A body that sends `chunk` bytes every `every`, `count` times.
    fn trickle(chunk: usize, every: Duration, count: usize) -> Body {
        let stream = futures_util::stream::iter(0..count).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok::<_, std::io::Error>(Bytes::from(vec![7u8; chunk]))
        });
        Body::from_stream(stream)
    }

    async fn read_all(body: Body) -> Result<usize, axum::Error> {
        let mut stream = body.into_data_stream();
        let mut n = 0;
        while let Some(chunk) = stream.next().await {
            n += chunk?.len();
        }
        Ok(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_slower_than_the_floor_is_failed_and_marked() {
        let tripped = Tripped::default();
        // 10 bytes/s against a floor of 100 bytes/s.
        let body = trickle(10, Duration::from_secs(1), 1_000);
        let wrapped = MinRate::with_window(body, 100, Duration::from_secs(5), tripped.clone());
        let result = read_all(wrapped).await;
        assert!(result.is_err());
        assert!(tripped.is_set());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_failed_at_the_end_of_the_window() {
        let tripped = Tripped::default();
        let body = trickle(10, Duration::from_secs(3_600), 1);
        let wrapped = MinRate::with_window(body, 100, Duration::from_secs(5), tripped.clone());
        let started = Instant::now();
        assert!(read_all(wrapped).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_floor_or_faster_passes_whole() {
        let tripped = Tripped::default();
        let body = trickle(100, Duration::from_secs(1), 30);
        let wrapped = MinRate::with_window(body, 100, Duration::from_secs(5), tripped.clone());
        assert_eq!(read_all(wrapped).await.unwrap(), 3_000);
        assert!(!tripped.is_set());
    }
}
