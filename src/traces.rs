//! Logs and traces of `wisp up`. Logs go to stderr (`--log`, an EnvFilter). Traces — the `tracing` spans the
//! library crates make along gateway → dispatch → admission → instance → host calls — are exported over
//! OTLP/HTTP (protobuf) when `--otlp-endpoint` is set, and go nowhere otherwise.
//!
//! This is the only place in wisp that knows OpenTelemetry (an architecture invariant): the library crates
//! use `tracing` alone and reach W3C propagation through [`wisp_wasm_host::trace`], whose [`Propagator`] is
//! installed here.
//!
//! Cost when not exporting: the log layer never takes spans (its filter refuses every span callsite), so with
//! no exporter layer no span callsite is enabled, `tracing` caches that per callsite, and each span macro is a
//! cached-interest check returning a disabled span: nothing is built, no field is computed, nothing allocated;
//! the propagation seam is not installed, so every propagation call is one atomic load.
//!
//! [`Propagator`]: wisp_wasm_host::trace::Propagator

use anyhow::Context as _;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use wisp_core::trace::{TraceContext, TraceParent};

/// The OTLP/HTTP path of traces, appended to an endpoint given as a base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT`).
const TRACES_PATH: &str = "/v1/traces";
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What describes this node in exported traces (OpenTelemetry resource attributes besides `service.*`).
pub struct Node {
    /// The address the node serves on.
    pub listen: std::net::SocketAddr,
}

/// The exporter, flushed and stopped by [`Traces::shutdown`].
pub struct Traces {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Starts logging to stderr with `log` as filter and, with an `otlp` endpoint, exporting spans to it.
pub fn init(log: &str, otlp: Option<&str>, node: &Node) -> anyhow::Result<Traces> {
    let filter = tracing_subscriber::EnvFilter::try_new(log).map_err(|e| anyhow::anyhow!("--log `{log}`: {e}"))?;
    // Spans are for the exporter: the log layer formats events only (and so never makes a span cost anything).
    let logs = log_layer(filter);
    let Some(endpoint) = otlp else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Traces { provider: None });
    };
    let endpoint = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(HttpClient::new()?)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("--otlp-endpoint: cannot build the OTLP exporter")?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(node))
        .build();
    let tracer = provider.tracer("wisp");
    // wisp's own spans (every crate's target starts with `wisp`); warnings and errors inside them become span
    // events. Nothing from dependencies.
    let ours = filter_fn(|m| {
        m.target().starts_with("wisp")
            && if m.is_span() { *m.level() <= tracing::Level::INFO } else { *m.level() <= tracing::Level::WARN }
    })
    .with_max_level_hint(LevelFilter::INFO);
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(ours);
    tracing_subscriber::registry().with(logs).with(spans).init();
    wisp_wasm_host::trace::install(wisp_wasm_host::trace::Propagator { continue_from, context_of });
    tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    Ok(Traces { provider: Some(provider) })
}

/// The stderr log layer: the events `filter` passes, never a span — so that without an exporter no layer wants
/// any span, and every span callsite is disabled.
fn log_layer<S>(filter: tracing_subscriber::EnvFilter) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let events_only = filter_fn(|m| !m.is_span()).with_max_level_hint(LevelFilter::TRACE);
    tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter.and(events_only))
}

impl Traces {
    /// Exports what is still batched and stops the exporter (at most the export timeout).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else { return };
        // The provider's shutdown blocks until its batch thread has exported, which sends through the runtime:
        // block a thread of the blocking pool, not a worker.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "traces: the last export failed"),
            Err(e) => tracing::warn!(error = %e, "traces: flushing at shutdown failed"),
        }
    }
}

/// The full OTLP/HTTP traces URL of `--otlp-endpoint`: a base URL (`http://collector:4318`) gets
/// [`TRACES_PATH`]; one that already ends with it is used as it is.
fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint `{endpoint}` is not a URL: {e} (e.g. http://127.0.0.1:4318)"))?;
    match url.scheme() {
        "http" => {}
        "https" => anyhow::bail!(
            "--otlp-endpoint `{endpoint}`: https is not supported yet; send to an OpenTelemetry Collector over http (e.g. one next to wisp, http://127.0.0.1:4318) and let it forward over TLS"
        ),
        other => anyhow::bail!(
            "--otlp-endpoint `{endpoint}`: scheme `{other}` is not supported; use http://HOST:PORT (OTLP/HTTP)"
        ),
    }
    if url.host_str().is_none() {
        anyhow::bail!("--otlp-endpoint `{endpoint}` names no host (e.g. http://127.0.0.1:4318)");
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) { base.to_string() } else { format!("{base}{TRACES_PATH}") })
}

/// The node as a resource: `service.name` = `wisp` (unless `OTEL_SERVICE_NAME` says otherwise; the SDK also
/// reads `OTEL_RESOURCE_ATTRIBUTES`), its version, this process and host, and the address it serves on.
fn resource(node: &Node) -> opentelemetry_sdk::Resource {
    use opentelemetry::KeyValue;
    let mut attrs = vec![
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("service.instance.id", instance_id()),
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("wisp.listen", node.listen.to_string()),
    ];
    if let Some(host) = host_name() {
        attrs.push(KeyValue::new("host.name", host));
    }
    let mut b = opentelemetry_sdk::Resource::builder().with_attributes(attrs);
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        b = b.with_service_name("wisp");
    }
    b.build()
}

/// A random id of this process (`service.instance.id`: distinct per run, as the semantic conventions ask).
fn instance_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// [`wisp_wasm_host::trace::Propagator::continue_from`]: the span's parent becomes the remote span.
fn continue_from(span: &tracing::Span, remote: &TraceContext) {
    let state = remote.state.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
    let parent = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(remote.parent.trace_id),
        opentelemetry::trace::SpanId::from_bytes(remote.parent.parent_id),
        TraceFlags::new(remote.parent.flags & TraceFlags::SAMPLED.to_u8()),
        true,
        state,
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// [`wisp_wasm_host::trace::Propagator::context_of`]: the span's own W3C context.
fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    Some(TraceContext {
        parent: TraceParent {
            trace_id: sc.trace_id().to_bytes(),
            parent_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8(),
        },
        state: wisp_core::trace::tracestate(&state),
    })
}

/// The exporter's HTTP client: wisp's own reqwest, no other HTTP stack. The SDK's batch processor exports
/// from a thread of its own, outside the async runtime; each request is sent on the runtime (through its
/// handle) and waited for there.
#[derive(Debug)]
struct HttpClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl HttpClient {
    fn new() -> anyhow::Result<HttpClient> {
        let http = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .context("--otlp-endpoint: cannot build the HTTP client")?;
        Ok(HttpClient { http, runtime: tokio::runtime::Handle::current() })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = http.execute(request).await?;
            let mut out = http::Response::builder().status(response.status().as_u16());
            if let Some(h) = out.headers_mut() {
                *h = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(out.body(body)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_no_span_is_built_even_at_log_level_trace() {
        let subscriber = tracing_subscriber::registry().with(log_layer(tracing_subscriber::EnvFilter::new("trace")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "wisp_scheduler", "invocation", faas.name = "f");
            assert!(span.is_disabled());
            let _in = span.enter();
            assert!(tracing::Span::current().is_disabled());
            assert!(tracing::event_enabled!(target: "wisp_scheduler", tracing::Level::TRACE), "events still log");
        });
    }

    #[test]
    fn the_endpoint_is_a_base_url_or_the_traces_url() {
        assert_eq!(traces_url("http://127.0.0.1:4318").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/").unwrap(), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces").unwrap(), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c/otlp").unwrap(), "http://c/otlp/v1/traces");
        let e = traces_url("https://c:4318").unwrap_err().to_string();
        assert!(e.contains("https is not supported yet"), "{e}");
        let e = traces_url("collector:4318").unwrap_err().to_string();
        assert!(e.contains("use http://HOST:PORT") || e.contains("is not a URL"), "{e}");
        assert!(traces_url("not a url").is_err());
    }
}
