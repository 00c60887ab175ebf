//! Body types: the one boxed body the proxy sends both ways, local replies, and [`Metered`],
//! which counts a streamed response's bytes and reports once when the stream ends, is reset or
//! is dropped — Istio measures `istio_request_duration_milliseconds` and
//! `istio_response_bytes` up to the last byte, not the headers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Any error a body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every request and response the proxy sends.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// A response the proxy generates itself (Envoy's "local reply"): plain text, with
/// `x-homeostat-flags` naming the Istio response flag, as Envoy's access log would.
pub fn local_reply(
    status: StatusCode,
    flags: &'static str,
    text: &'static str,
) -> Response<ProxyBody> {
    let mut r = Response::new(full(text));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    h.insert("x-homeostat-flags", HeaderValue::from_static(flags));
    r
}

/// Called once with the body bytes seen when a [`Metered`] body ends, and whether it ended
/// complete (`true`) or by an error or by being dropped unfinished (`false`): only a complete
/// HTTP/1.1 response leaves its connection reusable.
pub type OnEnd = Box<dyn FnOnce(u64, bool) + Send + Sync>;

/// A body that counts the bytes passing through and calls [`OnEnd`] exactly once.
pub struct Metered<B> {
    inner: B,
    bytes: u64,
    on_end: Option<OnEnd>,
    /// The body had nothing to send to begin with (a 204, a `Content-Length: 0`): hyper may
    /// drop it without polling it, and that is a complete end too.
    empty: bool,
}

impl<B: Body> Metered<B> {
    pub fn new(inner: B, on_end: OnEnd) -> Self {
        let empty = inner.is_end_stream();
        Metered {
            inner,
            bytes: 0,
            on_end: Some(on_end),
            empty,
        }
    }
}

impl<B> Metered<B> {
    fn finish(&mut self, complete: bool) {
        if let Some(f) = self.on_end.take() {
            f(self.bytes, complete);
        }
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                // Report as soon as the stream is known to be complete, before hyper writes the
                // last bytes, so a client that has read the whole body sees it counted.
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        polled.map(|o| o.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Metered<B> {
    fn drop(&mut self) {
        let complete = self.empty;
        self.finish(complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn reports_the_byte_count_exactly_once() {
        let seen = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicU64::new(0));
        let (s, c) = (seen.clone(), calls.clone());
        let body = Metered::new(
            Full::new(Bytes::from_static(b"hello world")),
            Box::new(move |n, complete| {
                assert!(complete, "read to the end");
                s.store(n, Ordering::SeqCst);
                c.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let collected = body.collect().await.expect("body").to_bytes();
        assert_eq!(&collected[..], b"hello world");
        assert_eq!(seen.load(Ordering::SeqCst), 11);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "end of stream and drop report once"
        );
    }

    #[test]
    fn an_empty_body_dropped_unpolled_is_complete() {
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        drop(Metered::new(
            Full::new(Bytes::new()),
            Box::new(move |n, complete| {
                assert_eq!((n, complete), (0, true));
                d.fetch_add(1, Ordering::SeqCst);
            }),
        ));
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_body_dropped_unread_reports_zero() {
        let seen = Arc::new(AtomicU64::new(u64::MAX));
        let s = seen.clone();
        drop(Metered::new(
            Full::new(Bytes::from_static(b"x")),
            Box::new(move |n, complete| {
                assert!(!complete, "dropped unread");
                s.store(n, Ordering::SeqCst);
            }),
        ));
        assert_eq!(seen.load(Ordering::SeqCst), 0);
    }
}
