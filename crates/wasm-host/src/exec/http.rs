//! The `wasi:http` executor: serving a request with a component, on a warm instance or a fresh one.

use crate::body::{BoxError, DrivenBody, LimitedBody, ResponseBody, Running, Tap};
use crate::engine::Shared;
use crate::limits::{arm_deadline, capacity_error, classify, is_capacity, timeout_error};
use crate::logs::LogPipe;
use crate::meter::{CpuTimed, Current};
use crate::pool::{Pool, Warm};
use crate::report::{GuestEnd, Reporter, too_large};
use crate::state::InstanceState;
use crate::{InvocationCtx, InvokeError, Phases, ReportSink};
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tracing::Instrument;

use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wisp_core::ErrorClass;

/// Runs one invocation on a warm instance from `pool` (reuse mode) or a fresh one.
pub(crate) async fn handle<B>(
    shared: &Arc<Shared>,
    pre: &ProxyPre<InstanceState>,
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
    // A safe, bodiless request (GET, HEAD, OPTIONS) whose warm instance traps before answering is retried
    // on a fresh one: that tells a guest that cannot be reused from one that simply failed, without
    // failing the user's request, and replays nothing with side effects. Once a reused instance has
    // served a request, the guest is known to be reusable: no more copies.
    let retry_head = (warm.is_some() && !pool.proven_reusable() && safe_and_bodiless(&req)).then(|| head_of(&req));
    let first = attempt(shared, pre, req, &ctx, reporter, pool, warm, retry_head.is_some(), false).await;
    match (first, retry_head) {
        (Attempt::Done(r), _) => r,
        (Attempt::Retry(mut reporter), Some(head)) => {
            reporter.logs = LogPipe::new(ctx.limits.max_log_bytes as usize);
            let req = http::Request::from_parts(head, http_body_util::Empty::<Bytes>::new());
            // The retry runs under the invocation's one deadline (`ctx.deadline`): what is left of it.
            match attempt(shared, pre, req, &ctx, reporter, pool, None, false, true).await {
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
    shared: &Arc<Shared>,
    pre: &ProxyPre<InstanceState>,
    req: http::Request<B>,
    ctx: &InvocationCtx,
    mut reporter: Reporter,
    pool: &Arc<Pool>,
    warm: Option<Warm>,
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
    let deadline = ctx.deadline;
    let current = Current::new(ctx.id.clone(), deadline);
    let body = LimitedBody {
        inner: body,
        remaining: limits.max_body_bytes,
        limit: limits.max_body_bytes,
        exceeded: exceeded.clone(),
        current: current.clone(),
    };
    let req = hyper::Request::from_parts(parts, body);

    let (mut store, proxy, served) = match warm {
        Some(mut w) => {
            w.store.data_mut().begin(&current);
            (w.store, Some(w.proxy), w.served)
        }
        None => {
            let store =
                InstanceState::store(&shared.engine, &shared.outbound, &shared.services, ctx, &reporter.logs, &current);
            (store, None, 0)
        }
    };
    let was_warm = proxy.is_some();
    reporter.cold = !was_warm;
    // The guest's run — instantiation, the handler, the body it streams — and the host calls it makes.
    let span = tracing::info_span!("instance", wisp.world = "wasi:http", faas.coldstart = !was_warm);
    arm_deadline(&mut store, deadline, limits.timeout_ms);

    // The guest's `response-outparam.set` runs this callback: it notes the status for the report and
    // hands the response to the waiting request.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let status = Arc::new(AtomicU16::new(0));
    let set_status = status.clone();
    let head_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let set_head_at = head_at.clone();
    // The response body, which the guest's end drains before reporting (see `Tap`).
    let tapped = Arc::new(std::sync::OnceLock::new());
    let (tap_slot, tap_current) = (tapped.clone(), current.clone());
    let setup: wasmtime::Result<_> = (|| {
        let scheme = wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http;
        let req = store.data_mut().http().new_incoming_request(scheme, req)?;
        let out = store.data_mut().http().new_response_outparam_from_callback(move |r| {
            let _ = set_head_at.set(Instant::now());
            if let Ok(resp) = &r {
                set_status.store(resp.status().as_u16(), Ordering::Relaxed);
            }
            let r = r.map(|resp| {
                resp.map(|b| {
                    let tap = Tap::new(b, tap_current);
                    let _ = tap_slot.set(tap.clone());
                    tap
                })
            });
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
    let taps = tapped.clone();
    let pool = pool.clone();
    let evictor = shared.clone();
    let tasks = shared.tasks.clone();
    let teardowns = shared.teardowns.clone();
    let function = ctx.function.clone();
    let cpu_time = shared.config.cpu_time;
    let guest = async move {
        let t0 = Instant::now();
        let mut instantiate = Duration::ZERO;
        let mut handler_start = t0;
        let mut instance = proxy;
        let run = async {
            if instance.is_none() {
                let made = super::instantiate_with_room(&evictor, &mut store, &pre);
                instance = Some(made.instrument(tracing::info_span!("instantiate")).await?);
                instantiate = t0.elapsed();
            }
            handler_start = Instant::now();
            let proxy = instance.as_ref().expect("instantiated above");
            proxy.wasi_http_incoming_handler().call_handle(&mut store, wreq, wout).await
        };
        let result = match tokio::time::timeout_at(deadline.into(), CpuTimed::new(run, &current, cpu_time)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, store.data().limiter.exceeded, limits.timeout_ms)),
            Err(_) => Err(timeout_error(limits.timeout_ms)),
        };
        let end = Instant::now();
        let head = head_at.get().copied().unwrap_or(end).clamp(handler_start, end);
        let phases = Phases { instantiate, init: Duration::ZERO, handler: head - handler_start, response: end - head };
        let answered = status.load(Ordering::Relaxed);
        if let Some(tap) = taps.get() {
            tap.drain();
        }
        let usage = current.usage(end - t0, store.data().limiter.peak as u64, limits.memory_bytes() as u64);
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
            (Err(_), true) if retryable && trapped && answered == 0 => return GuestEnd::Retry(reporter),
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
            teardowns.spawn(&tasks, store);
        }
        GuestEnd::Reported(outcome)
    };
    let mut guest = Running(Some(Box::pin(guest.instrument(span))), shared.tasks.clone());
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
                GuestEnd::Reported(Err(e)) => Attempt::Done(Err(e)),
                GuestEnd::Reported(Ok(_)) => {
                    Attempt::Done(Err(InvokeError::new(ErrorClass::GuestFailure, "guest produced no response")))
                }
                GuestEnd::Retry(reporter) => Attempt::Retry(reporter),
            }
        }
    }
}

/// Creates warm instances until `pool` holds its provisioned minimum or the autoscaler's target:
/// instantiation and guest initialisation happen now instead of on a request. Returns how many were made.
pub(crate) async fn prewarm(
    shared: &Arc<Shared>,
    pre: &ProxyPre<InstanceState>,
    pool: &Arc<Pool>,
    ctx: &InvocationCtx,
) -> Result<usize, InvokeError> {
    // Bounded by the deficit seen now: requests taking instances meanwhile must not make this loop forever.
    let wanted = pool.missing();
    let mut made = 0;
    while made < wanted && pool.missing() > 0 {
        let logs = LogPipe::new(ctx.limits.max_log_bytes as usize);
        let deadline = ctx.deadline;
        let current = Current::new(ctx.id.clone(), deadline);
        let mut store = InstanceState::store(&shared.engine, &shared.outbound, &shared.services, ctx, &logs, &current);
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

enum Attempt {
    Done(Result<http::Response<ResponseBody>, InvokeError>),
    Retry(Reporter),
}

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
