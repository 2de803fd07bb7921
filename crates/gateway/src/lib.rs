//! The gateway: accepts HTTP/1.1 and h2c connections, sends `/_wisp/...` to the control API and every other
//! request through the route table to its function. On shutdown it stops accepting, lets in-flight requests
//! finish (bounded by a drain timeout), then returns.
//!
//! What it defends, before any function runs: a cap on open connections (`max_connections`; one more is
//! closed at once), a deadline for a connection's first bytes and for an HTTP/1 request head, an idle
//! timeout and h2 keep-alive pings, header limits for both protocols, one authority per request (the
//! absolute-form URI wins; a conflicting or repeated `Host` is 400) that is both what routes and what the
//! guest sees, and one path policy ([`wisp_core::route::check_request_path`]).

#![warn(missing_docs)]

mod conn;
mod spin;

use conn::{Conn, InFlight, InFlightGuard};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::Instrument;
use wisp_core::invocation::Trigger;
use wisp_scheduler::Scheduler;
use wisp_wasm_host::{BoxError, ResponseBody, full_body};

/// Default time in-flight requests get to finish at shutdown.
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 30;
/// Default cap on a request head (request line + headers; for h2 the header list).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default cap on the number of request headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default cap on open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time a new connection has to send its first request bytes (or the whole h2 preface).
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 10_000;
/// Default time an HTTP/1 request head may take to arrive.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Default time a connection may sit with no request in flight and no bytes either way.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// h2 keep-alive: ping an idle-looking peer this often, and drop it if the ping is not answered as fast.
pub const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Concurrent streams an h2 client may open on one connection.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time in-flight requests get at shutdown.
    pub drain_timeout_seconds: u64,
    /// Largest request head; larger → 431 (h1) or a stream reset (h2).
    pub max_header_bytes: usize,
    /// Most request headers; more → 431.
    pub max_headers: usize,
    /// Open client connections at most; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Time to the first request bytes of a connection.
    pub first_byte_timeout: Duration,
    /// Time an HTTP/1 request head may take.
    pub header_read_timeout: Duration,
    /// Idle time (no request in flight, no bytes) after which a connection is closed.
    pub idle_timeout: Duration,
    /// Whether the data-plane listener also answers the control API under `/_wisp` (false when the API has
    /// a listener of its own, `wisp up --api-listen`).
    pub api_on_data_plane: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            drain_timeout_seconds: DEFAULT_DRAIN_TIMEOUT_SECONDS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            first_byte_timeout: Duration::from_millis(DEFAULT_FIRST_BYTE_TIMEOUT_MS),
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            api_on_data_plane: true,
        }
    }
}

/// What the gateway dispatches to.
pub struct Gateway {
    /// Live functions.
    pub scheduler: Arc<Scheduler>,
    /// The control API.
    pub api: axum::Router,
    /// Asynchronous invocations (`X-Wisp-Invocation-Type: Event` on a function's route).
    pub events: Arc<wisp_events::Events>,
    /// Event sources (webhook routes are counted there; all of them stop at shutdown).
    pub triggers: Arc<wisp_triggers::Triggers>,
    /// Settings.
    pub config: GatewayConfig,
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plane {
    /// Functions (and the API too, if `api_on_data_plane`).
    Data,
    /// The control API only.
    Control,
}

/// Logs accept failures (e.g. EMFILE) at most once a second, with how many were not logged.
struct AcceptErrors {
    last: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn log(&mut self, what: &str, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %error, suppressed = self.suppressed, "{what}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

impl Gateway {
    /// Serves `listener` (functions, and the API unless it has its own) and `api_listener` (the API only)
    /// until `shutdown` resolves, then drains.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        api_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let cfg = &self.config;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .max_buf_size(cfg.max_header_bytes.max(8192))
            .max_headers(cfg.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_KEEP_ALIVE)
            .keep_alive_timeout(H2_KEEP_ALIVE)
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX));
        let builder = Arc::new(builder);
        let connections = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections));
        let graceful = GracefulShutdown::new();
        let mut accept_errors = AcceptErrors { last: None, suppressed: 0 };
        let mut over_limit = AcceptErrors { last: None, suppressed: 0 };
        tokio::pin!(shutdown);
        loop {
            let (accepted, plane) = tokio::select! {
                a = listener.accept() => (a, Plane::Data),
                a = accept_on(api_listener.as_ref()) => (a, Plane::Control),
                () = &mut shutdown => break,
            };
            let (mut stream, peer) = match accepted {
                Ok(s) => s,
                Err(e) => {
                    accept_errors.log("accept failed", &e);
                    tokio::time::sleep(Duration::from_millis(10)).await; // e.g. EMFILE: back off
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                over_limit.log("connection refused: --max-connections reached", &cfg.max_connections);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let gw = self.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let prefix = match conn::read_preface(&mut stream, gw.config.first_byte_timeout).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(error = %e, "connection closed before a request");
                        return;
                    }
                };
                let in_flight = Arc::new(InFlight::default());
                let io = Conn::new(stream, prefix, gw.config.idle_timeout, in_flight.clone());
                let svc = hyper::service::service_fn(move |req| {
                    let guard = in_flight.enter();
                    gw.clone().handle(req, plane, peer, guard)
                });
                let conn = builder.serve_connection(TokioIo::new(io), svc);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        drop(api_listener);
        // The autoscaler stops and queued requests get 503 first; then running requests, and the guests,
        // teardown and prewarm still in the background, get the drain budget together.
        self.scheduler.shut_down();
        self.triggers.shut_down();
        self.events.shut_down();
        tracing::info!("draining in-flight requests");
        let drain = Duration::from_secs(self.config.drain_timeout_seconds);
        let drained = async {
            graceful.shutdown().await;
            self.scheduler.background_done().await;
        };
        if tokio::time::timeout(drain, drained).await.is_err() {
            tracing::warn!(seconds = drain.as_secs(), "drain timeout: work still running is dropped at exit");
        }
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        plane: Plane,
        peer: std::net::SocketAddr,
        guard: InFlightGuard,
    ) -> Result<http::Response<ResponseBody>, Infallible> {
        // The request counts as in flight until its response head is ready; while the body streams, the bytes
        // it writes keep the connection from idling out.
        let span = request_span(&req);
        let resp = self.dispatch(req, plane, peer, &span).await;
        if !span.is_disabled() {
            span.record("http.response.status_code", resp.status().as_u16());
            if resp.status().is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        drop(guard);
        Ok(resp)
    }

    async fn dispatch(
        &self,
        req: http::Request<Incoming>,
        plane: Plane,
        peer: std::net::SocketAddr,
        span: &tracing::Span,
    ) -> http::Response<ResponseBody> {
        // `span` is entered only around the work below routing: its name (method and route) must be final
        // before it starts.
        let path = req.uri().path();
        let under_api = wisp_core::route::path_has_prefix(path, wisp_core::route::RESERVED_PREFIX);
        if plane == Plane::Control || (under_api && self.config.api_on_data_plane) {
            let api = self.api.clone().oneshot(req.map(axum::body::Body::new));
            let resp = api.instrument(span.clone()).await.unwrap_or_else(|e| match e {});
            return resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
        }
        if under_api {
            return plain(http::StatusCode::NOT_FOUND, "the control API is not served on this listener\n".into());
        }
        if let Err(e) = wisp_core::route::check_request_path(path) {
            return plain(http::StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
        let (mut parts, body) = req.into_parts();
        let (target, rewrite) = {
            let authority = match request_authority(&parts) {
                Ok(a) => a,
                Err(msg) => return plain(http::StatusCode::BAD_REQUEST, format!("{msg}\n")),
            };
            let host = authority.as_ref().map(|(_, routing)| routing.as_ref());
            let Some(target) = self.scheduler.route(host, parts.uri.path()) else {
                return plain(http::StatusCode::NOT_FOUND, format!("no function is routed at {}\n", parts.uri.path()));
            };
            if !span.is_disabled() {
                span.record("http.route", target.route.path.as_str());
                span.record("otel.name", format!("{} {}", parts.method, target.route.path).as_str());
            }
            // The guest sees the authority that routed, as the `Host` of an origin-form request; most requests
            // already are exactly that (nothing to rewrite, nothing allocated).
            let rewrite = authority.and_then(|(guest, _)| {
                let as_is = parts.uri.authority().is_none()
                    && parts.headers.get(http::header::HOST).is_some_and(|h| h.as_bytes() == guest.as_bytes());
                (!as_is).then(|| guest.into_owned())
            });
            (target, rewrite)
        };
        if let Some(hook) = target.active.record.webhook(&target.route) {
            let key = &target.active.record.key;
            let req = http::Request::from_parts(parts, body);
            let resp =
                wisp_api::webhooks::serve(&self.events, key, hook, &target.route, req).instrument(span.clone()).await;
            if resp.status() == http::StatusCode::ACCEPTED {
                self.triggers.note_webhook(key, &target.route);
            }
            return resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
        }
        if let Some(authority) = rewrite {
            give_guest_authority(&mut parts, &authority);
        }
        if target.active.record.revision.spin_headers {
            spin::add_headers(&mut parts, &target.route, peer);
        }
        if wisp_events::wants_async(&parts.headers) {
            let req = http::Request::from_parts(parts, body);
            let resp = wisp_api::invocations::accept(&self.events, &target.active.record.key, req)
                .instrument(span.clone())
                .await;
            return resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
        }
        let req = http::Request::from_parts(parts, body);
        let invoked = self.scheduler.invoke_http(&target.active, Trigger::Http, &target.route.path, req);
        let (id, result) = invoked.instrument(span.clone()).await;
        wisp_api::invocation_response(&id, result)
    }
}

async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The server span of one request: a child of the caller's span when the request carries a usable W3C
/// `traceparent` (anything else starts a new trace; a bad header never fails the request). Its name is the
/// method and, once routed, the route pattern; attributes are the method, the route, the protocol version and
/// the status — never the path, query, headers or body.
fn request_span(req: &http::Request<Incoming>) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %req.method(),
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        network.protocol.version = protocol_version(req.version()),
    );
    if span.is_disabled() {
        return span;
    }
    if wisp_core::route::path_has_prefix(req.uri().path(), wisp_core::route::RESERVED_PREFIX) {
        span.record("http.route", wisp_core::route::RESERVED_PREFIX);
        span.record("otel.name", format!("{} {}", req.method(), wisp_core::route::RESERVED_PREFIX).as_str());
    } else {
        span.record("otel.name", req.method().as_str());
    }
    if let Some(remote) = wisp_wasm_host::trace::from_headers(req.headers()) {
        wisp_wasm_host::trace::continue_from(&span, &remote);
    }
    span
}

fn protocol_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// A short text response made by the gateway itself.
fn plain(status: http::StatusCode, text: String) -> http::Response<ResponseBody> {
    let mut r = http::Response::new(full_body(text));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    r
}

/// The request's one authority — the absolute-form (or h2 `:authority`) URI's if it has one, else the single
/// `Host` — as (normalised authority for the guest, host to route by); `None` when the request names none
/// (HTTP/1.0). A repeated `Host`, a `Host` that names another host than the URI, or an unusable one is an
/// error.
fn request_authority(parts: &http::request::Parts) -> Result<Option<Authority<'_>>, &'static str> {
    let mut hosts = parts.headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("the request has more than one Host header");
    }
    let host = match host {
        Some(h) => Some(h.to_str().map_err(|_| "the Host header is not valid text")?),
        None => None,
    };
    let uri = parts.uri.authority().map(|a| a.as_str());
    let authority = match (uri, host) {
        (Some(u), Some(h)) => {
            if wisp_core::route::routing_host(u) != wisp_core::route::routing_host(h) {
                return Err("the Host header names another host than the request target");
            }
            u
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Ok(None),
    };
    let routing = wisp_core::route::routing_host(authority).ok_or("the request's host is not a valid host name")?;
    Ok(Some((normalise_authority(authority), routing)))
}

/// A request's authority: (as the guest sees it, the host to route by).
type Authority<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Lowercase, no trailing dot on the host; the port stays. Borrows when already normal.
fn normalise_authority(authority: &str) -> Cow<'_, str> {
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i + 1..].contains(']') && authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            authority.split_at(i)
        }
        _ => (authority, ""),
    };
    if !host.ends_with('.') && !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(authority);
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let mut out = host.to_ascii_lowercase();
    out.push_str(port);
    Cow::Owned(out)
}

/// Makes `authority` the request's only authority: the URI becomes origin-form and `Host` carries it (the
/// guest's `authority()` and WAGI's `SERVER_NAME` both read it from there).
fn give_guest_authority(parts: &mut http::request::Parts, authority: &str) {
    if parts.uri.authority().is_some() {
        let mut uri = http::uri::Parts::default();
        uri.path_and_query = parts.uri.path_and_query().cloned();
        if let Ok(u) = http::Uri::from_parts(uri) {
            parts.uri = u;
        }
    }
    if parts.headers.get(http::header::HOST).is_none_or(|h| h.as_bytes() != authority.as_bytes())
        && let Ok(v) = http::HeaderValue::from_str(authority)
    {
        parts.headers.insert(http::header::HOST, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, hosts: &[&str]) -> http::request::Parts {
        let mut b = http::Request::builder().uri(uri);
        for h in hosts {
            b = b.header(http::header::HOST, *h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn one_authority_per_request() {
        let ok = |uri, hosts: &[&str]| {
            request_authority(&parts(uri, hosts)).unwrap().map(|(g, r)| (g.into_owned(), r.into_owned()))
        };
        assert_eq!(ok("/x", &["Example.com:8080"]), Some(("example.com:8080".into(), "example.com".into())));
        assert_eq!(ok("/x", &["example.com."]), Some(("example.com".into(), "example.com".into())));
        assert_eq!(ok("http://a.example/x", &[]), Some(("a.example".into(), "a.example".into())));
        assert_eq!(ok("http://a.example/x", &["A.example:80"]), Some(("a.example".into(), "a.example".into())));
        assert_eq!(ok("/x", &[]), None);
        let err = |uri, hosts: &[&str]| request_authority(&parts(uri, hosts)).unwrap_err();
        assert_eq!(
            err("http://a.example/x", &["b.example"]),
            "the Host header names another host than the request target"
        );
        assert_eq!(err("/x", &["a.example", "b.example"]), "the request has more than one Host header");
        assert_eq!(err("/x", &["a b"]), "the request's host is not a valid host name");
    }

    #[test]
    fn the_guest_gets_the_routing_authority_as_host() {
        let mut p = parts("http://A.example./x?q=1", &[]);
        let (authority, _) = request_authority(&p).unwrap().unwrap();
        let authority = authority.into_owned();
        give_guest_authority(&mut p, &authority);
        assert_eq!(p.uri.to_string(), "/x?q=1");
        assert_eq!(p.headers[http::header::HOST], "a.example");
        assert_eq!(normalise_authority("[::1]:8080"), "[::1]:8080");
        assert_eq!(normalise_authority("[::1]"), "[::1]");
    }
}
