//! `wasi:blobstore/types`' values and the streams they hand out.
//!
//! Writing: [`BlobOutputStream`] buffers at most [`WRITE_BUDGET`] bytes (what `check-write` permits), and
//! writes them to the backend's [`Upload`] when the buffer is full or the guest flushes — in its pollable,
//! so a guest that waits for `check-write` waits for the disk. Bytes past the object size limit fail the
//! write with the limit's message. When the guest drops the stream the rest is written and the upload goes
//! back to its outgoing value, which `finish` commits (or fails with the stream's error, naming the limit).
//!
//! Reading: [`BlobInputStream`] reads [`READ_CHUNK`] bytes at a time from the backend's [`Download`].

use super::{BlobView, Error, failed};
use crate::meter::Current;
use bytes::{Buf, Bytes, BytesMut};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError};
use wisp_core::usage::Service;
use wisp_store::guest_blob::{BlobError, BlobLimits, Download, Upload};

/// Bytes an output stream buffers (its `check-write` permit when empty).
pub const WRITE_BUDGET: usize = 64 * 1024;
/// Bytes an input stream reads from the backend at a time.
pub const READ_CHUNK: usize = 64 * 1024;
/// Largest value `incoming-value-consume-sync` answers; bigger ones must be streamed.
pub const MAX_SYNC_BYTES: u64 = 4 << 20;
/// Values an instance may hold open at once (an upload being written, a download being read; each pins a
/// file and up to 64 KiB of buffer on the host, so the host's share stays small whatever the guest does).
pub const MAX_OPEN_VALUES: usize = 16;

/// Counts an instance's open values.
#[derive(Default)]
pub(crate) struct OpenCount(Arc<std::sync::atomic::AtomicUsize>);

/// One open value, counted until dropped.
pub(crate) struct OpenGuard(Arc<std::sync::atomic::AtomicUsize>);

impl OpenCount {
    /// Counts one more open value, or says why not.
    pub(crate) fn take(&self) -> Result<OpenGuard, Error> {
        use std::sync::atomic::Ordering;
        let taken =
            self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_OPEN_VALUES).then_some(n + 1));
        match taken {
            Ok(_) => Ok(OpenGuard(self.0.clone())),
            Err(_) => Err(format!(
                "this instance holds {MAX_OPEN_VALUES} blob values open, the most at once: finish or drop outgoing values, and read or drop incoming ones, before opening more"
            )),
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// An `outgoing-value`: where its bytes are (see [`Slot`]) and the object `write-data` named.
pub struct OutgoingValue {
    slot: Arc<Mutex<Slot>>,
    pub(super) target: Option<(String, String)>,
}

/// Where an outgoing value's bytes are.
enum Slot {
    /// `outgoing-value-write-body` was not called yet.
    Unwritten,
    /// Its output stream holds them.
    Streaming,
    /// The stream was dropped: what it wrote.
    Written(Sink),
}

/// An upload and the bytes not yet handed to it.
struct Sink {
    upload: Box<dyn Upload>,
    pending: BytesMut,
    accepted: u64,
    limits: BlobLimits,
    flushing: bool,
    failed: Option<String>,
    /// The invocation that opened the stream: the bytes written are counted on its meter.
    current: Arc<Current>,
    _open: OpenGuard,
}

impl Sink {
    /// Hands the pending bytes to the upload (the disk write happens here, not in `write`).
    async fn drain(&mut self) {
        while !self.pending.is_empty() && self.failed.is_none() {
            match self.upload.write(&self.pending).await {
                Ok(0) => self.failed = Some("the blob store accepted no more bytes".into()),
                Ok(n) => {
                    self.pending.advance(n);
                    self.current.meter.count(Service::Blobs, 0, n as u64);
                }
                Err(e) => self.failed = Some(failed(BlobError::from_io(e))),
            }
        }
        self.flushing = false;
    }

    fn check(&self) -> Result<(), StreamError> {
        match &self.failed {
            Some(why) => Err(StreamError::LastOperationFailed(wasmtime::format_err!("{why}"))),
            None => Ok(()),
        }
    }
}

/// The output stream of an outgoing value (see the module docs).
struct BlobOutputStream {
    sink: Option<Sink>,
    slot: Arc<Mutex<Slot>>,
}

impl Drop for BlobOutputStream {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Slot::Written(sink);
        }
    }
}

impl BlobOutputStream {
    fn sink(&mut self) -> Result<&mut Sink, StreamError> {
        self.sink.as_mut().ok_or(StreamError::Closed)
    }
}

#[async_trait::async_trait]
impl Pollable for BlobOutputStream {
    async fn ready(&mut self) {
        if let Some(s) = self.sink.as_mut()
            && (s.flushing || s.pending.len() >= WRITE_BUDGET)
        {
            s.drain().await;
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for BlobOutputStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let s = self.sink()?;
        s.check()?;
        if bytes.len() > WRITE_BUDGET.saturating_sub(s.pending.len()) || s.flushing {
            return Err(StreamError::trap("write past the permit of check-write"));
        }
        if s.accepted + bytes.len() as u64 > s.limits.max_object_bytes {
            let why = failed(s.limits.object_too_large());
            s.failed = Some(why);
            return s.check();
        }
        s.accepted += bytes.len() as u64;
        s.pending.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        let s = self.sink()?;
        s.check()?;
        if !s.pending.is_empty() {
            s.flushing = true;
        }
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let s = self.sink()?;
        s.check()?;
        Ok(if s.flushing { 0 } else { WRITE_BUDGET.saturating_sub(s.pending.len()) })
    }

    async fn cancel(&mut self) {
        if let Some(s) = self.sink.as_mut() {
            s.drain().await;
        }
    }
}

/// An `incoming-value`: a range of an object, open until consumed.
pub struct IncomingValue {
    download: Download,
    open: OpenGuard,
}

impl IncomingValue {
    pub(super) fn new(download: Download, open: OpenGuard) -> Self {
        IncomingValue { download, open }
    }
}

/// The input stream of a consumed incoming value.
struct BlobInputStream {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    remaining: u64,
    ready: Bytes,
    failed: Option<String>,
    /// The invocation that opened the stream: the bytes read are counted on its meter.
    current: Arc<Current>,
    _open: OpenGuard,
}

#[async_trait::async_trait]
impl Pollable for BlobInputStream {
    async fn ready(&mut self) {
        if !self.ready.is_empty() || self.remaining == 0 || self.failed.is_some() {
            return;
        }
        let want = READ_CHUNK.min(self.remaining as usize);
        let mut buf = BytesMut::with_capacity(want);
        match (&mut self.reader).take(want as u64).read_buf(&mut buf).await {
            Ok(0) => self.failed = Some("the object ended before its recorded size".into()),
            Ok(n) => {
                self.remaining -= n as u64;
                self.ready = buf.freeze();
                self.current.meter.count(Service::Blobs, 0, n as u64);
            }
            Err(e) => self.failed = Some(format!("reading the object failed: {e}")),
        }
    }
}

#[async_trait::async_trait]
impl InputStream for BlobInputStream {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        if !self.ready.is_empty() {
            let n = size.min(self.ready.len());
            return Ok(self.ready.split_to(n));
        }
        if let Some(why) = self.failed.take() {
            self.remaining = 0;
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!("{why}")));
        }
        if self.remaining == 0 {
            return Err(StreamError::Closed);
        }
        Ok(Bytes::new())
    }
}

impl super::types::HostOutgoingValue for BlobView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue { slot: Arc::new(Mutex::new(Slot::Unwritten)), target: None })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let slot = self.table.get(&value)?.slot.clone();
        if !matches!(*slot.lock().unwrap_or_else(|p| p.into_inner()), Slot::Unwritten) {
            return Ok(Err(())); // once per value
        }
        let b = self.blobs;
        let opened = async {
            let guard = b.open.take()?;
            Ok::<_, Error>((b.within(b.backend()?.upload()).await?, guard))
        };
        let (upload, open) = match opened.await {
            Ok(u) => u,
            Err(e) => {
                // The WIT's error here is `_`: the reason goes to the invocation's logs.
                b.logs.note(&format!("wasi:blobstore outgoing-value-write-body failed: {e}"));
                return Ok(Err(()));
            }
        };
        let limits = b.backend.as_ref().map(|be| be.limits()).unwrap_or_default();
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Slot::Streaming;
        let current = b.current.clone();
        let sink = Sink {
            upload,
            pending: BytesMut::new(),
            accepted: 0,
            limits,
            flushing: false,
            failed: None,
            current,
            _open: open,
        };
        let stream: DynOutputStream = Box::new(BlobOutputStream { sink: Some(sink), slot });
        Ok(Ok(self.table.push(stream)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<Result<(), Error>> {
        let value = self.table.delete(value)?;
        let b = self.blobs;
        Ok(async {
            let Some((scope, name)) = value.target else {
                return Err(
                    "the value has no object to become: call the container's write-data with it before finish".into()
                );
            };
            let state = std::mem::replace(&mut *value.slot.lock().unwrap_or_else(|p| p.into_inner()), Slot::Streaming);
            let upload = match state {
                Slot::Unwritten => b.within(b.backend()?.upload()).await?,
                Slot::Streaming => {
                    return Err("the value's output stream is still open: drop it before finish".into());
                }
                Slot::Written(mut sink) => {
                    sink.drain().await;
                    if let Some(why) = sink.failed {
                        return Err(why);
                    }
                    sink.upload
                }
            };
            b.within(async {
                let mut upload = upload;
                upload.flush().await.map_err(BlobError::from_io)?;
                upload.commit(&scope, &name).await
            })
            .await
            .map(drop)
        }
        .await)
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        // Not finished: its upload (if any) is dropped, leaving nothing behind.
        self.table.delete(value)?;
        Ok(())
    }
}

impl super::types::HostIncomingValue for BlobView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        let IncomingValue { download: mut d, open: _open } = self.table.delete(value)?;
        if d.len > MAX_SYNC_BYTES {
            return Ok(Err(format!(
                "the value is {} bytes; incoming-value-consume-sync answers at most {MAX_SYNC_BYTES} bytes (4 MiB): use incoming-value-consume-async to stream it",
                d.len
            )));
        }
        let b = self.blobs;
        let out = b
            .within(async {
                let mut out = Vec::with_capacity(d.len as usize);
                d.reader.read_to_end(&mut out).await.map_err(BlobError::from_io)?;
                Ok(out)
            })
            .await;
        if let Ok(bytes) = &out {
            b.current.meter.count(Service::Blobs, 0, bytes.len() as u64);
        }
        Ok(out)
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, Error>> {
        let IncomingValue { download: d, open } = self.table.delete(value)?;
        let current = self.blobs.current.clone();
        let stream: DynInputStream = Box::new(BlobInputStream {
            reader: d.reader,
            remaining: d.len,
            ready: Bytes::new(),
            failed: None,
            current,
            _open: open,
        });
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.download.len)
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}
