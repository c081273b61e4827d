//! Closes connections that hold a slot without using it, as Go's `net/http` server does with
//! `ReadHeaderTimeout` and `IdleTimeout`:
//!
//! - a new connection must deliver a request's head within the header-read timeout;
//! - between requests (keep-alive), a connection may sit idle for the idle timeout; once the next
//!   request's first byte arrives, its head must be complete within the header-read timeout;
//! - while a request is being handled the watchdog waits (the body-rate floor covers slow uploads),
//!   and a response still being written keeps the connection alive.
//!
//! [`Watched`] wraps the socket to see bytes move; [`Activity::begin`] marks a request in flight.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The two timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// No request in flight since `since` (the connection opened, or the last request ended, or a
    /// response was last written to).
    Waiting {
        since: Instant,
        first_byte: Option<Instant>,
        fresh: bool,
    },
    /// Requests in flight.
    Busy(usize),
}

/// One connection's activity.
pub struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State::Waiting {
                since: Instant::now(),
                first_byte: None,
                fresh: true,
            }),
            changed: Notify::new(),
        })
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        if let Ok(mut state) = self.state.lock() {
            change(&mut state);
        }
    }

    fn read(&self) {
        let mut first = false;
        self.update(|state| {
            if let State::Waiting { first_byte, .. } = state {
                if first_byte.is_none() {
                    *first_byte = Some(Instant::now());
                    first = true;
                }
            }
        });
        if first {
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.update(|state| {
            if let State::Waiting { since, .. } = state {
                *since = Instant::now();
            }
        });
    }

    /// Marks a request in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.update(|state| {
            *state = match *state {
                State::Busy(n) => State::Busy(n + 1),
                State::Waiting { .. } => State::Busy(1),
            }
        });
        InFlight(self.clone())
    }

    /// When the connection must be closed, as things stand (`None`: a request is in flight).
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        let state = *self.state.lock().ok()?;
        match state {
            State::Busy(_) => None,
            State::Waiting {
                first_byte: Some(at), ..
            } => Some(at + timeouts.header_read),
            State::Waiting {
                since, fresh: true, ..
            } => Some(since + timeouts.header_read),
            State::Waiting { since, .. } => Some(since + timeouts.idle),
        }
    }

    /// Returns when the connection overstayed a timeout.
    pub async fn expired(&self, timeouts: Timeouts) {
        loop {
            match self.deadline(timeouts) {
                None => self.changed.notified().await,
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// A request in flight on its connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|state| {
            *state = match *state {
                State::Busy(n) if n > 1 => State::Busy(n - 1),
                _ => State::Waiting {
                    since: Instant::now(),
                    first_byte: None,
                    fresh: false,
                },
            }
        });
        self.0.changed.notify_one();
    }
}

/// A socket whose reads and writes are reported to its [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(30),
        idle: Duration::from_secs(75),
    };

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_must_send_a_request_within_the_header_read_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.expired(TIMEOUTS).await;
        assert_eq!(started.elapsed(), TIMEOUTS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_may_idle_for_the_idle_timeout() {
        let activity = Activity::new();
        drop(activity.begin());
        let started = Instant::now();
        activity.expired(TIMEOUTS).await;
        assert_eq!(started.elapsed(), TIMEOUTS.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_cut() {
        let activity = Activity::new();
        let request = activity.begin();
        let watch = tokio::time::timeout(Duration::from_secs(3_600), activity.expired(TIMEOUTS));
        assert!(watch.await.is_err());
        drop(request);
        let started = Instant::now();
        activity.expired(TIMEOUTS).await;
        assert_eq!(started.elapsed(), TIMEOUTS.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_requests_first_byte_starts_the_header_read_timeout() {
        let activity = Activity::new();
        drop(activity.begin());
        tokio::time::sleep(Duration::from_secs(10)).await;
        activity.read();
        let started = Instant::now();
        activity.expired(TIMEOUTS).await;
        assert_eq!(started.elapsed(), TIMEOUTS.header_read);
    }
}
