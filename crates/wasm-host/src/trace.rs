//! Leaf module: the seam between wisp's `tracing` spans and the exporter the binary may install. Library
//! crates make spans with `tracing` alone; only the binary knows OpenTelemetry (`wisp up --otlp-endpoint`).
//! When it exports, it installs a [`Propagator`] that continues a remote trace in a span and reads a span's
//! W3C context back; the gateway, the event queue and outbound HTTP go through the functions here.
//!
//! Without an exporter nothing is installed and wisp's spans are disabled (no subscriber layer wants them):
//! each function here is then one atomic load, and `tracing`'s macros return a disabled span after checking a
//! cached interest — no span is built, no field value is computed, nothing is allocated.

use std::future::Future;
use std::sync::OnceLock;
use tracing::Instrument;
use wisp_core::trace::{TRACEPARENT, TRACESTATE, TraceContext};

/// What an exporter provides to continue and propagate traces across process boundaries.
#[derive(Debug, Clone, Copy)]
pub struct Propagator {
    /// Makes `span` (just created, not entered yet) a child of the remote span in the context.
    pub continue_from: fn(&tracing::Span, &TraceContext),
    /// The W3C context of `span`: its trace, its own span id as the parent of what it calls, its sampled
    /// flag and trace state. `None` for a disabled span.
    pub context_of: fn(&tracing::Span) -> Option<TraceContext>,
}

static PROPAGATOR: OnceLock<Propagator> = OnceLock::new();

/// Installs the exporter's propagator (once per process; a second call changes nothing and returns false).
pub fn install(p: Propagator) -> bool {
    PROPAGATOR.set(p).is_ok()
}

/// Whether spans are exported (a propagator is installed).
#[inline]
pub fn enabled() -> bool {
    PROPAGATOR.get().is_some()
}

/// Makes `span` continue `remote` (no-op when nothing exports, or when `span` is disabled).
pub fn continue_from(span: &tracing::Span, remote: &TraceContext) {
    if let Some(p) = PROPAGATOR.get()
        && !span.is_disabled()
    {
        (p.continue_from)(span, remote)
    }
}

/// The W3C context of `span`, if spans are exported and it is recorded.
pub fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    let p = PROPAGATOR.get()?;
    if span.is_disabled() {
        return None;
    }
    (p.context_of)(span)
}

/// The W3C context of the current span, if spans are exported.
pub fn current() -> Option<TraceContext> {
    PROPAGATOR.get()?;
    context_of(&tracing::Span::current())
}

/// The trace context of a request's `traceparent` and `tracestate` headers (see
/// [`TraceContext::from_headers`]); `None` also when nothing exports (the headers are not read).
pub fn from_headers(headers: &http::HeaderMap) -> Option<TraceContext> {
    PROPAGATOR.get()?;
    TraceContext::from_headers(
        headers.get_all(TRACEPARENT).iter().map(|v| v.as_bytes()),
        headers.get_all(TRACESTATE).iter().map(|v| v.as_bytes()),
    )
}

/// Sets `traceparent` (and `tracestate`, or removes a stale one) to `cx`, replacing what was there.
pub fn set_headers(headers: &mut http::HeaderMap, cx: &TraceContext) {
    if let Ok(v) = http::HeaderValue::from_str(&cx.parent.to_string()) {
        headers.insert(TRACEPARENT, v);
    }
    match cx.state.as_deref().map(http::HeaderValue::from_str) {
        Some(Ok(v)) => {
            headers.insert(TRACESTATE, v);
        }
        _ => {
            headers.remove(TRACESTATE);
        }
    }
}

/// Runs a host call made for a guest (a key-value get, a SQL statement, a message sent…) in a span of its
/// own, named `name` (`"<service> <operation>"`), a child of the instance's span; an error marks it failed.
/// Attributes are the service and the operation only: never keys, values, statements or payloads.
pub(crate) async fn host_call<T, E>(
    service: &'static str,
    name: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let span = host_span(service, name);
    if span.is_disabled() {
        return call.await;
    }
    let out = call.instrument(span.clone()).await;
    if out.is_err() {
        failed(&span);
    }
    out
}

/// The span of a host call (see [`host_call`]), for calls that are not one future of a `Result`.
pub(crate) fn host_span(service: &'static str, name: &'static str) -> tracing::Span {
    tracing::info_span!("host_call", otel.name = name, wisp.service = service, otel.status_code = tracing::field::Empty)
}

/// Marks `span` failed.
pub(crate) fn failed(span: &tracing::Span) {
    span.record("otel.status_code", "error");
}

/// The OpenTelemetry FaaS trigger (`faas.trigger`) of what started an invocation.
pub fn faas_trigger(trigger: wisp_core::invocation::Trigger) -> &'static str {
    use wisp_core::invocation::Trigger;
    match trigger {
        Trigger::Http | Trigger::Api | Trigger::Webhook => "http",
        Trigger::Cron => "timer",
        Trigger::Topic | Trigger::Redis | Trigger::Mqtt | Trigger::Nats | Trigger::Event => "pubsub",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_replaced_and_a_stale_tracestate_goes() {
        let cx = TraceContext {
            parent: wisp_core::trace::TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .unwrap(),
            state: None,
        };
        let mut h = http::HeaderMap::new();
        h.append(TRACEPARENT, http::HeaderValue::from_static("00-junk"));
        h.append(TRACEPARENT, http::HeaderValue::from_static("00-more-junk"));
        h.insert(TRACESTATE, http::HeaderValue::from_static("old=1"));
        set_headers(&mut h, &cx);
        let got: Vec<_> = h.get_all(TRACEPARENT).iter().collect();
        assert_eq!(got, ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]);
        assert!(h.get(TRACESTATE).is_none());
        set_headers(&mut h, &TraceContext { state: Some("a=1".into()), ..cx });
        assert_eq!(h[TRACESTATE], "a=1");
    }

    #[test]
    fn nothing_is_read_or_continued_while_nothing_exports() {
        // No propagator is installed in this test binary: the seam is inert.
        let mut h = http::HeaderMap::new();
        h.insert(
            TRACEPARENT,
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert!(!enabled());
        assert_eq!(from_headers(&h), None);
        assert_eq!(current(), None);
    }
}
