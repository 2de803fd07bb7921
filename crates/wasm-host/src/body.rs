//! Body types: the response body the gateway streams, and the request-body size limiter.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Boxed error for bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming response body.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// A response body holding `bytes`.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Passes a request body through, failing once more than `limit` bytes arrived and raising `exceeded`.
pub(crate) struct LimitedBody<B> {
    pub inner: B,
    pub remaining: u64,
    pub limit: u64,
    pub exceeded: Arc<AtomicBool>,
    /// Where the bytes passed are counted (the invocation's `bytes_in`).
    pub current: Arc<crate::meter::Current>,
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        this.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(Some(
                            this.limit,
                        )))));
                    }
                    this.remaining -= n;
                    this.current.meter.bytes_in(n);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                    "reading request body: {e}"
                ))))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A guest's response body, shared by the response that streams it and the guest's end: before the
/// invocation is reported, [`Tap::drain`] takes out what the guest wrote that the client has not been handed
/// yet (the body's buffered frames), so the report counts every byte the guest produced. Every data frame is
/// counted once, when it leaves the guest's body, as the invocation's `bytes_out`.
pub(crate) struct Tap<B: Body>(Arc<std::sync::Mutex<TapState<B>>>);

struct TapState<B: Body> {
    inner: B,
    /// Frames taken out by a drain, not yet passed on.
    ahead: std::collections::VecDeque<Result<Frame<Bytes>, B::Error>>,
    /// `inner` has ended.
    ended: bool,
    current: Arc<crate::meter::Current>,
}

impl<B: Body> Clone for Tap<B> {
    fn clone(&self) -> Self {
        Tap(self.0.clone())
    }
}

impl<B: Body<Data = Bytes> + Unpin> Tap<B> {
    pub(crate) fn new(inner: B, current: Arc<crate::meter::Current>) -> Self {
        Tap(Arc::new(std::sync::Mutex::new(TapState { inner, ahead: Default::default(), ended: false, current })))
    }

    /// Takes out every frame the body holds ready now (the guest is done writing), counting them.
    pub(crate) fn drain(&self) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while !s.ended {
            match s.poll_inner(&mut cx) {
                Poll::Ready(Some(frame)) => s.ahead.push_back(frame),
                Poll::Ready(None) => s.ended = true,
                Poll::Pending => break,
            }
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> TapState<B> {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let p = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &p
            && let Some(d) = f.data_ref()
        {
            self.current.meter.bytes_out(d.len() as u64);
        }
        p
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tap<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(frame) = s.ahead.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        let p = s.poll_inner(cx);
        if let Poll::Ready(None) = p {
            s.ended = true;
        }
        p
    }

    fn size_hint(&self) -> SizeHint {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if s.ahead.is_empty() { s.inner.size_hint() } else { SizeHint::default() }
    }
}

/// The response body of a guest that is still running: polling it drives the guest (which writes into
/// `inner`) in the request's own task, and the body ends only once the guest is done and the invocation is
/// recorded, so a client that read the whole response can read its invocation record too.
pub(crate) struct DrivenBody<B> {
    pub inner: B,
    pub guest: Running,
    pub inner_done: bool,
}

/// A guest invocation in progress, owned by the request that started it.
pub(crate) type Guest = Pin<Box<dyn Future<Output = crate::report::GuestEnd> + Send>>;

/// A running guest (or `None` once it ended). Dropped unfinished — the client went away, the response was
/// dropped (HEAD) — it is handed to a task of its own, so it still ends, reports and releases its instance.
pub(crate) struct Running(pub Option<Guest>, pub crate::Tasks);

impl Running {
    /// Polls the guest if it is still running; `Some` with its end the first time it is ready.
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Option<crate::report::GuestEnd> {
        let end = match self.0.as_mut()?.as_mut().poll(cx) {
            Poll::Ready(end) => end,
            Poll::Pending => return None,
        };
        self.0 = None;
        Some(end)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(guest) = self.0.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            self.1.spawn(async move {
                guest.await;
            });
        }
    }
}

impl<B> Body for DrivenBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        this.guest.poll_end(cx);
        if !this.inner_done {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(None) => this.inner_done = true,
                other => return other,
            }
        }
        // The body is complete; its end waits for the guest to finish (its waker is registered above).
        if this.guest.0.is_some() { Poll::Pending } else { Poll::Ready(None) }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
