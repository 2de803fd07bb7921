//! The defences of one client connection, below HTTP: a deadline for the first bytes (the HTTP/2 preface or
//! an HTTP/1 request line), and an idle timeout while no request is in flight. hyper-util's protocol
//! detection runs no timer of its own, so without the first a peer that connects and sends nothing (or half
//! a preface) holds its connection for ever; the second closes idle keep-alive and h2c connections, and a
//! peer that stalls half-way through an h2 HEADERS frame (hyper's header-read timeout covers HTTP/1 only).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads from `stream` until the protocol is decided: the first byte differs from the h2 preface (HTTP/1),
/// or the whole preface is in (HTTP/2). Returns what was read, to be replayed; an error if the peer closed
/// first or `within` passed.
pub(crate) async fn read_preface(stream: &mut TcpStream, within: Duration) -> io::Result<Vec<u8>> {
    let mut got = Vec::with_capacity(H2_PREFACE.len());
    let read = async {
        let mut buf = [0u8; 24];
        loop {
            let n = stream.read(&mut buf[..H2_PREFACE.len() - got.len()]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a request"));
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() == H2_PREFACE.len() || got[..] != H2_PREFACE[..got.len()] {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(within, read).await {
        Ok(r) => r.map(|()| got),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no request within the first-byte timeout")),
    }
}

/// Requests of one connection that are being served (counted by the gateway's service, released when the
/// response body is dropped).
#[derive(Default)]
pub(crate) struct InFlight(AtomicUsize);

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.clone())
    }

    fn busy(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// One request in flight; dropping it ends it.
pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client connection: replays the bytes read while detecting the protocol, then reads and writes the
/// socket, and fails a read once the connection was idle (no bytes either way, no request in flight) for
/// `idle`. The timer is re-armed lazily: activity only moves a timestamp, and when the timer fires early it
/// is reset to the real deadline.
pub(crate) struct Conn {
    prefix: Vec<u8>,
    at: usize,
    stream: TcpStream,
    idle: Duration,
    last_active: Instant,
    timer: Pin<Box<Sleep>>,
    in_flight: Arc<InFlight>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, prefix: Vec<u8>, idle: Duration, in_flight: Arc<InFlight>) -> Self {
        let now = Instant::now();
        Conn {
            prefix,
            at: 0,
            stream,
            idle,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            in_flight,
        }
    }

    /// Whether the idle deadline has passed; re-arms the timer (which registers the waker) otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = Instant::now();
            if self.in_flight.busy() {
                self.last_active = now;
            }
            let deadline = self.last_active + self.idle;
            if deadline <= now {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last_active = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending if this.idle_expired(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle timeout")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.stream).poll_write(cx, data))?;
        self.last_active = Instant::now();
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs))?;
        self.last_active = Instant::now();
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        (l.accept().await.unwrap().0, c)
    }

    #[tokio::test]
    async fn the_preface_decides_at_the_first_byte_that_differs() {
        let (mut s, mut c) = pair().await;
        c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let got = read_preface(&mut s, Duration::from_secs(30)).await.unwrap();
        assert!(!got.is_empty() && b"GET / HTTP/1.1\r\n".starts_with(&got));
    }

    #[tokio::test]
    async fn a_whole_h2_preface_is_read() {
        let (mut s, mut c) = pair().await;
        c.write_all(H2_PREFACE).await.unwrap();
        c.write_all(b"more").await.unwrap();
        assert_eq!(read_preface(&mut s, Duration::from_secs(30)).await.unwrap(), H2_PREFACE);
    }

    #[tokio::test(start_paused = true)]
    async fn half_a_preface_times_out() {
        let (mut s, mut c) = pair().await;
        c.write_all(&H2_PREFACE[..10]).await.unwrap();
        let e = read_preface(&mut s, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn replays_the_prefix_then_reads_the_socket() {
        let (s, mut c) = pair().await;
        c.write_all(b"world").await.unwrap();
        let mut conn = Conn::new(s, b"hello ".to_vec(), Duration::from_secs(30), Default::default());
        let mut out = vec![0u8; 11];
        conn.read_exact(&mut out).await.unwrap();
        assert_eq!(out, b"hello world");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_fails_its_read_but_not_while_a_request_is_in_flight() {
        let (s, _c) = pair().await;
        let in_flight = Arc::new(InFlight::default());
        let mut conn = Conn::new(s, Vec::new(), Duration::from_secs(10), in_flight.clone());
        let guard = in_flight.enter();
        let mut buf = [0u8; 8];
        // In flight: the idle timer keeps being re-armed.
        assert!(tokio::time::timeout(Duration::from_secs(25), conn.read(&mut buf)).await.is_err());
        drop(guard);
        let e = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
