//! The HTTP response body: a list of byte chunks sent in order, so a module's output (and
//! any output it shares from a background round) goes out without being copied into one
//! buffer first. A body can also hold something until it is dropped (sent, or the client gone),
//! e.g. a scrape's place under `--web.max-requests`.

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A response body made of chunks; its exact length is known up front.
#[derive(Debug, Default)]
pub struct Body {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    /// Kept alive for as long as the body is; see [`Body::holding`].
    held: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Body {
    pub fn from_chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Body {
            chunks,
            remaining,
            held: None,
        }
    }

    /// Keeps `guard` until this body is dropped: after hyper has sent it, or when the client
    /// went away first.
    pub fn holding(mut self, guard: impl Send + Sync + 'static) -> Self {
        self.held = Some(Box::new(guard));
        self
    }
}

impl<T: Into<Bytes>> From<T> for Body {
    fn from(b: T) -> Self {
        Body::from_chunks([b.into()])
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(c) = &next {
            self.remaining -= c.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Wraps a shared buffer so `Bytes` can borrow it without a copy.
pub struct SharedOwner(pub eos_exposition::Shared);

impl AsRef<[u8]> for SharedOwner {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn sends_chunks_in_order_with_exact_length() {
        let body = Body::from_chunks([
            Bytes::from_static(b"a "),
            Bytes::new(),
            Bytes::from_owner(SharedOwner(std::sync::Arc::new(b"b c".to_vec()))),
        ]);
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(5));
        let all = body.collect().await.map(|c| c.to_bytes());
        assert_eq!(all.ok().as_deref(), Some(&b"a b c"[..]));
    }

    #[tokio::test]
    async fn holds_its_guard_until_dropped() {
        let guard = std::sync::Arc::new(());
        let body = Body::from("x").holding(guard.clone());
        assert_eq!(std::sync::Arc::strong_count(&guard), 2);
        let all = body.collect().await.map(|c| c.to_bytes());
        assert_eq!(all.ok().as_deref(), Some(&b"x"[..]));
        assert_eq!(std::sync::Arc::strong_count(&guard), 1, "sent and dropped");
    }
}
