//! Capturing guest stdout/stderr per invocation, size-capped. Past the cap, output is dropped (the guest
//! never sees an error for logging) and the capture is marked truncated.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of host notes kept past the guest's own cap.
const NOTE_ROOM: usize = 4096;

#[derive(Debug, Default)]
struct Buf {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

/// A shared, capped log buffer; clones write to the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct LogPipe(Arc<Mutex<Buf>>);

/// The captured output of one invocation.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs {
    /// The bytes kept (stdout and stderr interleaved as written).
    pub bytes: Bytes,
    /// Whether output beyond the cap was dropped.
    pub truncated: bool,
}

impl LogPipe {
    pub(crate) fn new(cap: usize) -> Self {
        LogPipe(Arc::new(Mutex::new(Buf { bytes: Vec::new(), cap, truncated: false })))
    }

    fn append(&self, data: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = b.cap.saturating_sub(b.bytes.len());
        if data.len() > room {
            b.truncated = true;
        }
        let n = data.len().min(room);
        b.bytes.extend_from_slice(&data[..n]);
    }

    pub(crate) fn take(&self) -> CapturedLogs {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Each invocation of a warm instance starts untruncated.
        let truncated = std::mem::take(&mut b.truncated);
        CapturedLogs { bytes: Bytes::from(std::mem::take(&mut b.bytes)), truncated }
    }

    /// Appends a line from the host (a denied capability, a limit hit), so the invocation's record says why.
    pub(crate) fn note(&self, line: &str) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Host notes get room past the guest's cap (they say what the host did), bounded all the same: a
        // guest repeating a denied call must not grow the buffer.
        if b.bytes.len() + line.len() > b.cap + NOTE_ROOM {
            b.truncated = true;
            return;
        }
        b.bytes.extend_from_slice(b"wisp: ");
        b.bytes.extend_from_slice(line.as_bytes());
        b.bytes.push(b'\n');
    }

    /// Whether output past the cap was dropped since the last [`LogPipe::take`].
    pub(crate) fn truncated(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).truncated
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_marks_truncation() {
        let mut p = LogPipe::new(8);
        p.write(Bytes::from_static(b"hello")).unwrap();
        p.write(Bytes::from_static(b" world")).unwrap();
        let logs = p.take();
        assert_eq!(&logs.bytes[..], b"hello wo");
        assert!(logs.truncated);
        // The next invocation of the same (warm) instance starts afresh.
        p.write(Bytes::from_static(b"ok")).unwrap();
        let logs = p.take();
        assert_eq!(&logs.bytes[..], b"ok");
        assert!(!logs.truncated);
    }
}
