//! Serving a request with a wasi:http component, and the per-invocation store state shared with WAGI:
//! memory limiter and deadline.

use crate::body::{BoxError, LimitedBody, ResponseBody};
use crate::host::{Code, CodeInner};
use crate::logs::LogPipe;
use crate::{InvocationCtx, InvokeError, Report, ReportSink};
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};
use wisp_core::ErrorClass;

/// Store state of a wasi:http invocation.
pub(crate) struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: DenyOutbound,
    pub(crate) limiter: Limiter,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outbound HTTP is not granted in this release: every outgoing request is denied.
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Enforces a function's memory limit; growing past it stops the instance.
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) exceeded: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} MiB exceeded")]
pub(crate) struct MemoryExceeded(pub usize);

#[derive(Debug, thiserror::Error)]
#[error("deadline of {0} ms exceeded")]
pub(crate) struct DeadlineExceeded(pub u64);

impl Limiter {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Limiter {
            memory_bytes,
            exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            return Err(wasmtime::Error::new(MemoryExceeded(
                self.memory_bytes >> 20,
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Arms the store's deadline: every epoch tick the guest yields to the executor (so a busy guest cannot
/// starve other requests on this worker), and past `timeout` it traps.
pub(crate) fn arm_deadline<T: 'static>(store: &mut Store<T>, timeout_ms: u64) {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded(timeout_ms)))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Classifies a guest failure.
pub(crate) fn classify(e: &wasmtime::Error, memory_exceeded: bool, timeout_ms: u64) -> InvokeError {
    if e.is::<DeadlineExceeded>()
        || matches!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        )
    {
        return InvokeError::new(
            ErrorClass::Timeout,
            format!("function exceeded its timeout of {timeout_ms} ms"),
        );
    }
    if let Some(m) = e.downcast_ref::<MemoryExceeded>() {
        return InvokeError::new(ErrorClass::GuestFailure, format!("stopped: {m}"));
    }
    if memory_exceeded {
        return InvokeError::new(
            ErrorClass::GuestFailure,
            format!("stopped at the memory limit: {e:?}"),
        );
    }
    InvokeError::new(ErrorClass::GuestFailure, format!("guest failed: {e:?}"))
}

pub(crate) fn wasi_ctx(ctx: &InvocationCtx, logs: &LogPipe) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.stdout(logs.clone()).stderr(logs.clone());
    for (k, v) in ctx.env.iter() {
        b.env(k, v);
    }
    b
}

/// Whether the request declares a body larger than `limit`.
pub(crate) fn declared_too_large<B>(req: &http::Request<B>, limit: u64) -> bool {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

pub(crate) fn too_large(limit: u64) -> InvokeError {
    InvokeError::new(
        ErrorClass::PayloadTooLarge,
        format!("request body exceeds the function's limit of {limit} bytes"),
    )
}

impl Code {
    /// Runs one invocation. Returns the response (its body may still be streaming from the guest) or the
    /// classified failure; `report` is called once the guest is done.
    pub async fn handle<B>(
        &self,
        req: http::Request<B>,
        ctx: InvocationCtx,
        report: ReportSink,
    ) -> Result<http::Response<ResponseBody>, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        match &self.inner {
            CodeInner::Http(pre) => self.handle_http(pre.clone(), req, ctx, report).await,
            CodeInner::Wagi(pre) => crate::wagi::handle(self, pre.clone(), req, ctx, report).await,
        }
    }

    async fn handle_http<B>(
        &self,
        pre: wasmtime_wasi_http::p2::bindings::ProxyPre<HttpState>,
        req: http::Request<B>,
        ctx: InvocationCtx,
        report: ReportSink,
    ) -> Result<http::Response<ResponseBody>, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let limits = ctx.limits;
        let reporter = Reporter::begin(&ctx, report, &req)?;
        let exceeded = Arc::new(AtomicBool::new(false));
        let (mut parts, body) = req.into_parts();
        if !parts.headers.contains_key(http::header::HOST) && parts.uri.authority().is_none() {
            parts.headers.insert(
                http::header::HOST,
                http::HeaderValue::from_static("localhost"),
            );
        }
        let body = LimitedBody {
            inner: body,
            remaining: limits.max_body_bytes,
            limit: limits.max_body_bytes,
            exceeded: exceeded.clone(),
        };
        let req = hyper::Request::from_parts(parts, body);

        let state = HttpState {
            wasi: wasi_ctx(&ctx, &reporter.logs).build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: DenyOutbound,
            limiter: Limiter::new(limits.memory_bytes()),
        };
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        arm_deadline(&mut store, limits.timeout_ms);

        // The guest's `response-outparam.set` runs this callback: it notes the status for the report and
        // hands the response to the waiting request.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let status = Arc::new(AtomicU16::new(0));
        let set_status = status.clone();
        let setup: wasmtime::Result<_> = (|| {
            let scheme = wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http;
            let req = store.data_mut().http().new_incoming_request(scheme, req)?;
            let out = store
                .data_mut()
                .http()
                .new_response_outparam_from_callback(move |r| {
                    if let Ok(resp) = &r {
                        set_status.store(resp.status().as_u16(), Ordering::Relaxed);
                    }
                    let _ = tx.send(r);
                })?;
            wasmtime::Result::Ok((req, out))
        })();
        let (wreq, wout) = match setup {
            Ok(v) => v,
            Err(e) => {
                let e =
                    InvokeError::new(ErrorClass::InvalidInput, format!("unusable request: {e}"));
                return reporter.fail(e, Duration::ZERO);
            }
        };

        // The guest runs in its own task so it can keep streaming the body after the response head is sent;
        // the task reports the invocation when the guest is done.
        let timeout = Duration::from_millis(limits.timeout_ms);
        let task = tokio::spawn(async move {
            let t0 = Instant::now();
            let mut instantiate = Duration::ZERO;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                instantiate = t0.elapsed();
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, wreq, wout)
                    .await
            };
            let result = match tokio::time::timeout(timeout, run).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(classify(
                    &e,
                    store.data().limiter.exceeded,
                    limits.timeout_ms,
                )),
                Err(_) => Err(InvokeError::new(
                    ErrorClass::Timeout,
                    format!("function exceeded its timeout of {} ms", limits.timeout_ms),
                )),
            };
            drop(store);
            let outcome = match result {
                _ if exceeded.load(Ordering::Relaxed) => Err(too_large(limits.max_body_bytes)),
                Err(e) => Err(e),
                Ok(()) => match status.load(Ordering::Relaxed) {
                    0 => Err(InvokeError::new(
                        ErrorClass::GuestFailure,
                        "guest returned without a response (it set none, or set an error code)",
                    )),
                    s => Ok(s),
                },
            };
            reporter.done(outcome.clone(), instantiate);
            outcome
        });

        match rx.await {
            Ok(Ok(resp)) => Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync())),
            // No response head: the task's outcome says why (and has been reported).
            Ok(Err(_)) | Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(_)) => Err(InvokeError::new(
                    ErrorClass::GuestFailure,
                    "guest produced no response",
                )),
                Err(e) => Err(InvokeError::new(
                    ErrorClass::Internal,
                    format!("guest task: {e}"),
                )),
            },
        }
    }
}

/// Sends an invocation's [`Report`] exactly once.
pub(crate) struct Reporter {
    pub id: Arc<str>,
    pub start: Instant,
    pub logs: LogPipe,
    pub sink: ReportSink,
}

impl Reporter {
    /// Starts an invocation's bookkeeping: the capped log pipe and the clock. A request that declares a body
    /// over the limit is refused (and reported) before any guest work.
    pub(crate) fn begin<B>(
        ctx: &InvocationCtx,
        sink: ReportSink,
        req: &http::Request<B>,
    ) -> Result<Self, InvokeError> {
        let reporter = Reporter {
            id: ctx.id.clone(),
            start: Instant::now(),
            logs: LogPipe::new(ctx.limits.max_log_bytes as usize),
            sink,
        };
        if declared_too_large(req, ctx.limits.max_body_bytes) {
            return reporter.fail(too_large(ctx.limits.max_body_bytes), Duration::ZERO);
        }
        Ok(reporter)
    }

    pub(crate) fn done(self, outcome: Result<u16, InvokeError>, instantiate: Duration) {
        (self.sink)(Report {
            id: self.id,
            outcome,
            instantiate,
            total: self.start.elapsed(),
            logs: self.logs.take(),
        })
    }

    pub(crate) fn fail<T>(self, e: InvokeError, instantiate: Duration) -> Result<T, InvokeError> {
        self.done(Err(e.clone()), instantiate);
        Err(e)
    }
}
