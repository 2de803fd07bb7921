//! The executor of `kind = "messaging"` functions: components exporting
//! `wasi:messaging/incoming-handler@0.2.0-draft`. Each event delivered to the function (from its triggers or
//! the async invocation API) becomes one message on a fresh instance: the topic is the event's subject, the
//! content type its `datacontenttype`, the data its data, and the metadata its CloudEvents attributes (`id`,
//! `source`, `type`, `time`, extensions) and `wispattempt`. The handler's answer is the delivery's outcome,
//! in the events' terms: `ok` → 200 (done); `permission-denied` → 403 (failed for good); `timeout` → 504,
//! `connection` → 503, `other` → 500 (retried).

use super::instantiate_with_room;
use crate::caps::messaging::Message;
use crate::caps::messaging::bindings::{MessagingCorePre, wasi::messaging::types::Error};
use crate::engine::Shared;
use crate::limits::{arm_deadline, classify, timeout_error};
use crate::logs::LogPipe;
use crate::meter::{CpuTimed, Current};
use crate::report::Reporter;
use crate::state::InstanceState;
use crate::{EVENT_RESULT_BYTES, EventDelivery, InvocationCtx, InvokeError, Outcome, Phases, ReportSink};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The message an event delivery becomes.
fn message(d: &EventDelivery) -> Message {
    let e = &d.event;
    let mut metadata =
        vec![("id".to_string(), e.id.clone()), ("source".into(), e.source.clone()), ("type".into(), e.ty.clone())];
    if let Some(t) = e.time_ms {
        metadata.push(("time".into(), wisp_core::events::rfc3339_ms(t)));
    }
    metadata.extend(e.extensions.iter().map(|(k, v)| (k.clone(), v.clone())));
    metadata.push(("wispattempt".into(), d.attempt.to_string()));
    Message { topic: e.subject.clone(), content_type: e.data_content_type.clone(), data: e.data.clone(), metadata }
}

/// The status a handler's error stands for (see the module's documentation) and its text.
fn failure(e: Error) -> (u16, String) {
    match e {
        Error::PermissionDenied(m) => (403, format!("permission-denied: {m}")),
        Error::Timeout => (504, "timeout".into()),
        Error::Connection(m) => (503, format!("connection: {m}")),
        Error::Other(m) => (500, format!("other: {m}")),
    }
}

/// Delivers `delivery` to a fresh instance of `pre`; `sink` gets the report once it is done.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    pre: &MessagingCorePre<InstanceState>,
    delivery: &EventDelivery,
    ctx: InvocationCtx,
    sink: ReportSink,
) -> Result<Outcome, InvokeError> {
    let limits = ctx.limits;
    let logs = LogPipe::new(limits.max_log_bytes as usize);
    let mut reporter = Reporter { id: ctx.id.clone(), logs: logs.clone(), sink, cold: true, usage: Default::default() };
    let current = Current::new(ctx.id.clone(), ctx.deadline);
    let mut store = InstanceState::store(&shared.engine, &shared.outbound, &shared.services, &ctx, &logs, &current);
    arm_deadline(&mut store, ctx.deadline, limits.timeout_ms);
    let t0 = Instant::now();
    let mut instantiate = Duration::ZERO;
    let mut handler_start = t0;
    let run = async {
        let guest =
            instantiate_with_room(shared, &mut store, pre).instrument(tracing::info_span!("instantiate")).await?;
        instantiate = t0.elapsed();
        handler_start = Instant::now();
        let msg = store.data_mut().push_message(message(delivery))?;
        guest.wasi_messaging_incoming_handler().call_handle(&mut store, msg).await
    };
    let result = match tokio::time::timeout_at(
        ctx.deadline.into(),
        CpuTimed::new(run, &current, shared.config.cpu_time).instrument(tracing::info_span!(
            "instance",
            wisp.world = "wasi:messaging",
            faas.coldstart = true
        )),
    )
    .await
    {
        Ok(Ok(answer)) => Ok(answer.map_err(failure)),
        Ok(Err(e)) => Err(classify(&e, store.data().limiter.exceeded, limits.timeout_ms)),
        Err(_) => Err(timeout_error(limits.timeout_ms)),
    };
    let end = Instant::now();
    reporter.usage = current.usage(end - t0, store.data().limiter.peak as u64, limits.memory_bytes() as u64);
    let phases = Phases { instantiate, init: Duration::ZERO, handler: end - handler_start, response: Duration::ZERO };
    shared.teardowns.spawn(&shared.tasks, store);
    let (status, body) = match result {
        Err(e) => return reporter.fail(e, phases),
        Ok(Ok(())) => (200, String::new()),
        Ok(Err((status, why))) => {
            reporter.logs.note(&format!("the handler answered {why}"));
            (status, why)
        }
    };
    reporter.done(Ok(status), phases);
    let mut body = body.into_bytes();
    body.truncate(EVENT_RESULT_BYTES);
    Ok(Outcome::Event { status, retry_after_ms: None, body: body.into() })
}

/// Refuses an HTTP request to a messaging function (the invoke API reaches functions directly), reporting it.
pub(crate) fn refuse_http(ctx: &InvocationCtx, sink: ReportSink) -> Result<Outcome, InvokeError> {
    let logs = LogPipe::new(ctx.limits.max_log_bytes as usize);
    let reporter = Reporter { id: ctx.id.clone(), logs, sink, cold: false, usage: Default::default() };
    let e = InvokeError::new(
        wisp_core::ErrorClass::InvalidInput,
        "a messaging function takes messages, not HTTP requests: publish to a topic that triggers it, or `wisp invoke NAME --async`",
    );
    reporter.fail(e, Phases::default())
}
