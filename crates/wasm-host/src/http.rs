//! Serving a request with a wasi:http component.

use crate::body::{BoxError, DrivenBody, LimitedBody, ResponseBody, Running};
use crate::caps::outbound::OutboundHttp;
use crate::host::{Code, CodeInner, Shared};
use crate::limits::{
    FIELD_SIZE_LIMIT, Limiter, arm_deadline, capacity_error, classify, is_capacity, resource_table_cap,
};
use crate::logs::LogPipe;
use crate::pool::{Pool, Warm};
use crate::{InvocationCtx, InvokeError, Phases, Report, ReportSink};
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wisp_core::ErrorClass;

/// Store state of a wasi:http invocation.
pub(crate) struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) hooks: OutboundHttp,
    pub(crate) limiter: Limiter,
}

impl HttpState {
    /// A store for one wasi:http instance: WASI context, capped resource table and header fields, denied
    /// outbound HTTP, and the memory limiter. The one constructor for requests and prewarm alike.
    fn store(shared: &Shared, ctx: &InvocationCtx, logs: &LogPipe) -> Store<HttpState> {
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        let mut table = ResourceTable::new();
        table.set_max_capacity(resource_table_cap(ctx.limits.memory_mb));
        let state = HttpState {
            wasi: wasi_ctx(ctx, logs).build(),
            http,
            table,
            hooks: OutboundHttp {
                grant: ctx.outbound.clone(),
                node: shared.outbound.clone(),
                logs: logs.clone(),
                deadline: Instant::now(),
                egress: Default::default(),
            },
            limiter: Limiter::new(ctx.limits.memory_bytes()),
        };
        let mut store = Store::new(&shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The WASI context of an instance: captured stdout/stderr, the function's env, no directories, and every
/// socket address denied (and noted in the captured output).
pub(crate) fn wasi_ctx(ctx: &InvocationCtx, logs: &LogPipe) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.stdout(logs.clone()).stderr(logs.clone());
    // TCP sockets may be created, so that a connect or bind reaches the address check, which denies every
    // address and notes it: the record then says what the guest tried. UDP stays off.
    b.allow_tcp(true).allow_udp(false);
    let noted = logs.clone();
    b.socket_addr_check(move |addr, usage| {
        noted.note(&format!("denied wasi:sockets {usage:?} {addr}: this node grants functions no sockets"));
        Box::pin(async { false })
    });
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
    InvokeError::new(ErrorClass::PayloadTooLarge, format!("request body exceeds the function's limit of {limit} bytes"))
}

impl Code {
    /// Runs one invocation. Returns the response (its body may still be streaming from the guest) or the
    /// classified failure; `report` is called once the guest is done. `pool` holds this revision's warm
    /// instances (used when its mode is `reuse`).
    pub async fn handle<B>(
        &self,
        req: http::Request<B>,
        ctx: InvocationCtx,
        report: ReportSink,
        pool: &Arc<Pool>,
    ) -> Result<http::Response<ResponseBody>, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        match &self.inner {
            CodeInner::Http(pre) => self.handle_http(pre, req, ctx, report, pool).await,
            CodeInner::Wagi(wagi) => crate::wagi::handle(self, wagi.clone(), req, ctx, report).await,
        }
    }

    async fn handle_http<B>(
        &self,
        pre: &ProxyPre<HttpState>,
        req: http::Request<B>,
        ctx: InvocationCtx,
        report: ReportSink,
        pool: &Arc<Pool>,
    ) -> Result<http::Response<ResponseBody>, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let warm = pool.checkout();
        let logs = match &warm {
            Some(w) => w.logs.clone(),
            None => LogPipe::new(ctx.limits.max_log_bytes as usize),
        };
        let reporter = match Reporter::begin(&ctx, report, &req, logs) {
            Ok(r) => r,
            Err(e) => {
                if let Some(w) = warm {
                    pool.checkin(w);
                }
                return Err(e);
            }
        };
        // One deadline for the invocation: a retry gets what is left of it, never a fresh one.
        let deadline = Instant::now() + Duration::from_millis(ctx.limits.timeout_ms);
        // A safe, bodiless request (GET, HEAD, OPTIONS) whose warm instance traps before answering is retried
        // on a fresh one: that tells a guest that cannot be reused from one that simply failed, without
        // failing the user's request, and replays nothing with side effects. Once a reused instance has
        // served a request, the guest is known to be reusable: no more copies.
        let retry_head = (warm.is_some() && !pool.proven_reusable() && safe_and_bodiless(&req)).then(|| head_of(&req));
        let first = self.attempt(pre, req, &ctx, reporter, pool, warm, deadline, retry_head.is_some(), false).await;
        match (first, retry_head) {
            (Attempt::Done(r), _) => r,
            (Attempt::Retry(mut reporter), Some(head)) => {
                reporter.logs = LogPipe::new(ctx.limits.max_log_bytes as usize);
                let req = http::Request::from_parts(head, http_body_util::Empty::<Bytes>::new());
                match self.attempt(pre, req, &ctx, reporter, pool, None, deadline, false, true).await {
                    Attempt::Done(r) => r,
                    Attempt::Retry(_) => unreachable!("a fresh attempt is never retried"),
                }
            }
            (Attempt::Retry(reporter), None) => {
                reporter.fail(InvokeError::new(ErrorClass::Internal, "retry without a request head"), Phases::default())
            }
        }
    }

    /// One try on a warm instance (`warm`) or a fresh one. `retryable`: on failure of a warm instance before
    /// any response, hand the reporter back instead of reporting. `is_retry`: this fresh try follows a warm
    /// failure, so its success proves the guest cannot be reused.
    #[allow(clippy::too_many_arguments)]
    async fn attempt<B>(
        &self,
        pre: &ProxyPre<HttpState>,
        req: http::Request<B>,
        ctx: &InvocationCtx,
        mut reporter: Reporter,
        pool: &Arc<Pool>,
        warm: Option<Warm>,
        deadline: Instant,
        retryable: bool,
        is_retry: bool,
    ) -> Attempt
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let limits = ctx.limits;
        let exceeded = Arc::new(AtomicBool::new(false));
        let (mut parts, body) = req.into_parts();
        if !parts.headers.contains_key(http::header::HOST) && parts.uri.authority().is_none() {
            parts.headers.insert(http::header::HOST, http::HeaderValue::from_static("localhost"));
        }
        let body = LimitedBody {
            inner: body,
            remaining: limits.max_body_bytes,
            limit: limits.max_body_bytes,
            exceeded: exceeded.clone(),
        };
        let req = hyper::Request::from_parts(parts, body);

        let (mut store, proxy, served) = match warm {
            Some(w) => (w.store, Some(w.proxy), w.served),
            None => (HttpState::store(&self.shared, ctx, &reporter.logs), None, 0),
        };
        let was_warm = proxy.is_some();
        reporter.cold = !was_warm;
        arm_deadline(&mut store, deadline, limits.timeout_ms);
        let egress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        store.data_mut().hooks.begin(deadline, egress.clone());

        // The guest's `response-outparam.set` runs this callback: it notes the status for the report and
        // hands the response to the waiting request.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let status = Arc::new(AtomicU16::new(0));
        let set_status = status.clone();
        let head_at = Arc::new(std::sync::OnceLock::<Instant>::new());
        let set_head_at = head_at.clone();
        let setup: wasmtime::Result<_> = (|| {
            let scheme = wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http;
            let req = store.data_mut().http().new_incoming_request(scheme, req)?;
            let out = store.data_mut().http().new_response_outparam_from_callback(move |r| {
                let _ = set_head_at.set(Instant::now());
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
                let e = InvokeError::new(ErrorClass::InvalidInput, format!("unusable request: {e}"));
                return Attempt::Done(reporter.fail(e, Phases::default()));
            }
        };

        // The guest runs inside this request's task — no task of its own, no cross-thread wake-ups: first
        // until it sets the response head, then driven by the response body as hyper polls it, so it can keep
        // streaming after the head went out. It reports the invocation when done, and returns a clean
        // instance to the pool.
        let pre = pre.clone();
        let pool = pool.clone();
        let shared = self.shared.clone();
        let tasks = self.shared.tasks.clone();
        let function = ctx.function.clone();
        let guest = async move {
            let t0 = Instant::now();
            let mut instantiate = Duration::ZERO;
            let mut handler_start = t0;
            let mut instance = proxy;
            let run = async {
                if instance.is_none() {
                    let made = match pre.instantiate_async(&mut store).await {
                        // The pooling allocator is full: make room by evicting the node's least recently
                        // used idle instance, then try once more.
                        Err(e) if is_capacity(&e) && shared.evict_one_idle() => pre.instantiate_async(&mut store).await,
                        r => r,
                    };
                    instance = Some(made?);
                    instantiate = t0.elapsed();
                }
                handler_start = Instant::now();
                let proxy = instance.as_ref().expect("instantiated above");
                proxy.wasi_http_incoming_handler().call_handle(&mut store, wreq, wout).await
            };
            let result = match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(classify(&e, store.data().limiter.exceeded, limits.timeout_ms)),
                Err(_) => Err(InvokeError::new(
                    ErrorClass::Timeout,
                    format!("function exceeded its timeout of {} ms", limits.timeout_ms),
                )),
            };
            let end = Instant::now();
            let head = head_at.get().copied().unwrap_or(end).clamp(handler_start, end);
            let phases =
                Phases { instantiate, init: Duration::ZERO, handler: head - handler_start, response: end - head };
            let answered = status.load(Ordering::Relaxed);
            let usage = crate::Usage {
                wall: end - t0,
                peak_memory_bytes: store.data().limiter.peak as u64,
                egress_bytes: egress.load(Ordering::Relaxed),
                ..Default::default()
            };
            let outcome = match result {
                _ if exceeded.load(Ordering::Relaxed) => Err(too_large(limits.max_body_bytes)),
                Err(e) => Err(e),
                Ok(()) if answered == 0 => Err(InvokeError::new(
                    ErrorClass::GuestFailure,
                    "guest returned without a response (it set none, or set an error code)",
                )),
                Ok(()) => Ok(answered),
            };
            // Only a trap is retried: not a timeout (the deadline is spent), not the memory limit.
            let trapped =
                matches!(&outcome, Err(e) if e.class == ErrorClass::GuestFailure) && !store.data().limiter.exceeded;
            match (&outcome, was_warm) {
                (Err(_), true) if retryable && trapped && answered == 0 => return TaskEnd::Retry(reporter),
                (Err(e), true) => pool.warm_failed(&function, &e.message),
                (Ok(_), true) => pool.warm_succeeded(),
                (Ok(_), false) if is_retry => {
                    pool.mark_unreusable(&function, "a warm instance failed where a fresh one succeeded")
                }
                _ => {}
            }
            // A clean instance goes back to the pool before the report, so the client's next request finds it
            // warm; anything else (a fresh-mode instance, a failed one) is torn down in a task of its own — the
            // response ends with the report, and deallocating a big instance must not delay it.
            let teardown = match (&outcome, instance) {
                (Ok(_), Some(proxy)) => {
                    let logs = reporter.logs.clone();
                    let warm = Warm { store, proxy, logs, served: served + 1, idle_since: Instant::now() };
                    pool.checkin(warm).map(|rejected| rejected.store)
                }
                _ => Some(store),
            };
            reporter.usage = usage;
            reporter.done(outcome.clone(), phases);
            if let Some(store) = teardown {
                tasks.spawn(async move { drop(store) });
            }
            TaskEnd::Reported(outcome)
        };
        let mut guest = Running(Some(Box::pin(guest)), self.shared.tasks.clone());
        let mut ended = None;
        let mut rx = rx;
        // Until the head is set or the guest ends without one. The guest is polled first: it sets the head.
        // (Should the client go away meanwhile, dropping `guest` hands it to a task that finishes it.)
        let head = std::future::poll_fn(|cx| {
            if ended.is_none() {
                ended = guest.poll_end(cx);
            }
            match Pin::new(&mut rx).poll(cx) {
                Poll::Ready(Ok(Ok(resp))) => Poll::Ready(Some(resp)),
                Poll::Ready(_) => Poll::Ready(None),
                Poll::Pending if ended.is_some() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match (head, ended) {
            (Some(resp), _) => Attempt::Done(Ok(resp.map(|b| {
                DrivenBody { inner: b, guest, inner_done: false }.map_err(|e| Box::new(e) as BoxError).boxed_unsync()
            }))),
            // No response head: the guest's outcome says why (and has been reported), or asks for a retry.
            (None, ended) => {
                let end = match ended {
                    Some(end) => end,
                    None => std::future::poll_fn(|cx| guest.poll_end(cx).map_or(Poll::Pending, Poll::Ready)).await,
                };
                match end {
                    TaskEnd::Reported(Err(e)) => Attempt::Done(Err(e)),
                    TaskEnd::Reported(Ok(_)) => {
                        Attempt::Done(Err(InvokeError::new(ErrorClass::GuestFailure, "guest produced no response")))
                    }
                    TaskEnd::Retry(reporter) => Attempt::Retry(reporter),
                }
            }
        }
    }
}

impl Code {
    /// Creates warm instances until `pool` holds its provisioned minimum (reuse mode, http functions):
    /// instantiation and guest initialisation happen now instead of on a request. Returns how many were made.
    pub async fn prewarm(&self, pool: &Arc<Pool>, ctx: &InvocationCtx) -> Result<usize, InvokeError> {
        let CodeInner::Http(pre) = &self.inner else {
            return Ok(0);
        };
        // Bounded by the deficit seen now: requests taking instances meanwhile must not make this loop forever.
        let wanted = pool.missing();
        let mut made = 0;
        while made < wanted && pool.missing() > 0 {
            let logs = LogPipe::new(ctx.limits.max_log_bytes as usize);
            let mut store = HttpState::store(&self.shared, ctx, &logs);
            let deadline = Instant::now() + Duration::from_millis(ctx.limits.timeout_ms);
            arm_deadline(&mut store, deadline, ctx.limits.timeout_ms);
            // Prewarming never evicts another function's idle instances: a full node just stops it.
            let proxy = match pre.instantiate_async(&mut store).await {
                Ok(p) => p,
                Err(e) if is_capacity(&e) => return Err(capacity_error(&e)),
                Err(e) => return Err(classify(&e, store.data().limiter.exceeded, ctx.limits.timeout_ms)),
            };
            logs.take(); // initialisation output belongs to no invocation
            drop(pool.checkin(Warm { store, proxy, logs, served: 0, idle_since: Instant::now() }));
            made += 1;
        }
        Ok(made)
    }
}

enum Attempt {
    Done(Result<http::Response<ResponseBody>, InvokeError>),
    Retry(Reporter),
}

pub(crate) enum TaskEnd {
    Reported(Result<u16, InvokeError>),
    Retry(Reporter),
}

/// A request that may be replayed: a safe method (GET, HEAD, OPTIONS) with no body.
fn safe_and_bodiless<B: Body>(req: &http::Request<B>) -> bool {
    matches!(*req.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS)
        && (req.body().is_end_stream()
            || req.headers().get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0")
            || (!req.headers().contains_key(http::header::CONTENT_LENGTH)
                && !req.headers().contains_key(http::header::TRANSFER_ENCODING)
                && req.version() < http::Version::HTTP_2))
}

fn head_of<B>(req: &http::Request<B>) -> http::request::Parts {
    let mut b = http::Request::builder().method(req.method().clone()).uri(req.uri().clone()).version(req.version());
    if let Some(h) = b.headers_mut() {
        *h = req.headers().clone();
    }
    b.body(()).expect("a copy of a valid request head").into_parts().0
}

/// Sends an invocation's [`Report`] exactly once.
pub(crate) struct Reporter {
    pub id: Arc<str>,
    pub logs: LogPipe,
    pub sink: ReportSink,
    pub cold: bool,
    pub usage: crate::Usage,
}

impl Reporter {
    /// Starts an invocation's bookkeeping: the capped log pipe and the clock. A request that declares a body
    /// over the limit is refused (and reported) before any guest work.
    pub(crate) fn begin<B>(
        ctx: &InvocationCtx,
        sink: ReportSink,
        req: &http::Request<B>,
        logs: LogPipe,
    ) -> Result<Self, InvokeError> {
        // Not cold until an instance is created for it: a request refused before that is neither.
        let reporter = Reporter { id: ctx.id.clone(), logs, sink, cold: false, usage: Default::default() };
        if declared_too_large(req, ctx.limits.max_body_bytes) {
            return reporter.fail(too_large(ctx.limits.max_body_bytes), Phases::default());
        }
        Ok(reporter)
    }

    pub(crate) fn done(self, outcome: Result<u16, InvokeError>, phases: Phases) {
        (self.sink)(Report { id: self.id, outcome, phases, cold: self.cold, logs: self.logs.take(), usage: self.usage })
    }

    pub(crate) fn fail<T>(self, e: InvokeError, phases: Phases) -> Result<T, InvokeError> {
        self.done(Err(e.clone()), phases);
        Err(e)
    }
}
