//! Answers a client only once it has finished sending: a request refused before its body is read
//! (a chunk at the wrong offset, an unknown session, a failed authorisation, an oversize body...)
//! has the rest of its body read and dropped first, up to [`DRAIN_LIMIT`] (or its declared
//! `Content-Length`, if smaller). Answering earlier and closing makes the client's kernel reset a
//! connection it is still writing to, and a client such as Go's `net/http` (containerd, crane,
//! oras-go) reports `write: broken pipe` instead of the status and error body.
//!
//! A request that said `Expect: 100-continue` and was refused before its body was asked for has
//! sent no body: it is answered at once and the connection closed (the client may not send it).
//! A body larger than the bound, or one that fails while drained (its rate floor, a reset), is
//! answered with `Connection: close`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderMap, HeaderValue, Version};
use axum::response::Response;
use http_body::Frame;

/// The most a refused request's body is read for: beyond it the connection is closed instead.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// The request body as the router sees it, while the host keeps whatever the router leaves unread.
pub struct Shared {
    rest: Arc<Mutex<Option<Body>>>,
    polled: Arc<AtomicBool>,
}

/// The host's side of a [`Shared`] body.
pub struct Leftover {
    rest: Arc<Mutex<Option<Body>>>,
    polled: Arc<AtomicBool>,
}

/// Splits `body` into the body the router reads and the host's handle on what it leaves.
pub fn share(body: Body) -> (Body, Leftover) {
    let rest = Arc::new(Mutex::new(Some(body)));
    let polled = Arc::new(AtomicBool::new(false));
    let shared = Shared {
        rest: rest.clone(),
        polled: polled.clone(),
    };
    (Body::new(shared), Leftover { rest, polled })
}

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.polled.store(true, Ordering::Relaxed);
        let mut rest = self.rest.lock().unwrap_or_else(PoisonError::into_inner);
        match rest.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let rest = self.rest.lock().unwrap_or_else(PoisonError::into_inner);
        rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let rest = self.rest.lock().unwrap_or_else(PoisonError::into_inner);
        rest.as_ref().map(HttpBody::size_hint).unwrap_or_default()
    }
}

/// Whether the request asked to be refused before it sends its body.
pub fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

impl Leftover {
    /// After the router has answered: reads what it left of the body (see the module), marking
    /// `response` to close the connection where the body was not, or could not be, read to its end.
    pub async fn drain(
        self,
        version: Version,
        expect_continue: bool,
        declared: Option<u64>,
        response: &mut Response,
    ) {
        let rest = self.rest.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut body) = rest else { return };
        if body.is_end_stream() || version >= Version::HTTP_2 {
            // HTTP/2 ends an unread body with a stream reset of its own (NO_ERROR), not the
            // connection: nothing to drain.
            return;
        }
        if expect_continue && !self.polled.load(Ordering::Relaxed) {
            close(response);
            return;
        }
        let limit = declared.map_or(DRAIN_LIMIT, |n| n.min(DRAIN_LIMIT));
        let mut read = 0u64;
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return,
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > limit {
                        break;
                    }
                }
                Some(Err(_)) => break,
            }
        }
        tracing::debug!(
            read,
            "closing the connection: the refused request's body was not read to its end"
        );
        close(response);
    }
}

fn close(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A body of `chunks` × 64 KiB that counts what was read of it.
    fn counted(chunks: usize, counter: Arc<AtomicU64>) -> Body {
        let stream = futures_util::stream::iter(0..chunks).map(move |_| {
            counter.fetch_add(65_536, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 65_536]))
        });
        Body::from_stream(stream)
    }

    use futures_util::StreamExt as _;

    #[tokio::test]
    async fn what_the_router_leaves_is_read_to_the_end_and_the_connection_kept() {
        let counter = Arc::new(AtomicU64::new(0));
        let (body, leftover) = share(counted(64, counter.clone()));
        drop(body); // refused without reading
        let mut response = Response::new(Body::empty());
        leftover
            .drain(Version::HTTP_11, false, Some(64 * 65_536), &mut response)
            .await;
        assert_eq!(counter.load(Ordering::SeqCst), 64 * 65_536);
        assert!(!response.headers().contains_key(header::CONNECTION));
    }

    #[tokio::test]
    async fn a_body_the_router_read_partly_is_read_on_from_where_it_stopped() {
        let counter = Arc::new(AtomicU64::new(0));
        let (body, leftover) = share(counted(8, counter.clone()));
        let mut stream = body.into_data_stream();
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 65_536);
        drop(stream);
        let mut response = Response::new(Body::empty());
        leftover.drain(Version::HTTP_11, false, None, &mut response).await;
        assert_eq!(counter.load(Ordering::SeqCst), 8 * 65_536);
        assert!(!response.headers().contains_key(header::CONNECTION));
    }

    #[tokio::test]
    async fn a_body_beyond_the_bound_closes_the_connection_after_the_bound() {
        let counter = Arc::new(AtomicU64::new(0));
        let (body, leftover) = share(counted(100, counter.clone()));
        drop(body);
        let mut response = Response::new(Body::empty());
        leftover
            .drain(Version::HTTP_11, false, Some(10 * 65_536), &mut response)
            .await;
        assert_eq!(
            counter.load(Ordering::SeqCst),
            11 * 65_536,
            "read one frame past the bound"
        );
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn an_expect_continue_request_refused_before_its_body_is_not_drained() {
        let counter = Arc::new(AtomicU64::new(0));
        let (body, leftover) = share(counted(4, counter.clone()));
        drop(body);
        let mut response = Response::new(Body::empty());
        leftover.drain(Version::HTTP_11, true, None, &mut response).await;
        assert_eq!(counter.load(Ordering::SeqCst), 0);
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }
}
