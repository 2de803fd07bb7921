//! The outbound HTTP capability: `wasi:http/outgoing-handler`, granted per function by
//! `allowed_outbound_hosts` (default: nothing). Every request the guest sends — including each hop of a
//! redirect it follows, which is a new request — passes [`super::net::check`] (the grant, DNS resolution,
//! every address against the restricted ranges and the node's own listen addresses), and the connection is
//! made to an address that was checked, so DNS cannot rebind between check and connect. Timeouts
//! are the node's (`[outbound_http] timeout_ms`) and never run past the invocation's deadline. Bytes both
//! ways are counted into the invocation's usage (egress).

use super::net::Refusal;
use crate::logs::LogPipe;
use crate::meter::Current;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};
use wisp_core::outbound::{HostPattern, Scheme};

/// The WIT interface this capability implements.
pub(crate) const INTERFACE: &str = "wasi:http/outgoing-handler";

/// Node-wide settings of outbound HTTP (`[outbound_http]` in `wisp up --config`).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Longest connect, and longest wait for a response head or between body bytes.
    pub timeout: Duration,
    /// The node's own listen addresses: never reachable from a guest unless a grant names the IP.
    pub own_addresses: Vec<SocketAddr>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig { timeout: Duration::from_secs(30), own_addresses: Vec::new() }
    }
}

/// What the node shares with every instance's outbound state.
pub(crate) struct Outbound {
    pub config: OutboundConfig,
    tls: tokio_rustls::TlsConnector,
}

impl Outbound {
    pub(crate) fn new(config: OutboundConfig) -> anyhow::Result<Arc<Self>> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(Outbound { config, tls: tokio_rustls::TlsConnector::from(Arc::new(tls)) }))
    }
}

/// One instance's outbound HTTP: its function's grant, where denials are noted, and the invocation it
/// serves now (its deadline; egress is counted on its meter).
pub(crate) struct OutboundHttp {
    pub(crate) grant: Arc<[HostPattern]>,
    pub(crate) node: Arc<Outbound>,
    pub(crate) logs: LogPipe,
    pub(crate) current: Arc<Current>,
}

/// Why a request was not sent.
enum Refused {
    /// Policy: noted in the record, `HTTP-request-denied` to the guest.
    Denied(String),
    /// An address the grant resolves to may not be reached: noted, `destination-IP-prohibited`.
    Prohibited(String),
    /// The network said no.
    Failed(Error),
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>,
            > + Send,
    > {
        let what = format!("{} {}", request.method(), request.uri());
        let (grant, node, logs, current) =
            (self.grant.clone(), self.node.clone(), self.logs.clone(), self.current.clone());
        // A client span, child of the instance's (this runs in the guest's host call); the request carries it
        // as the callee's parent unless the guest set a `traceparent` itself.
        let span = client_span(&request);
        let mut request = request;
        if !request.headers().contains_key(wisp_core::trace::TRACEPARENT)
            && let Some(cx) = crate::trace::context_of(&span)
        {
            crate::trace::set_headers(request.headers_mut(), &cx);
        }
        let traced = span.clone();
        Box::new(
            async move {
                let out = match send(request, options, &grant, &node, current).await {
                    Ok(r) => Ok(r),
                    Err(Refused::Denied(why)) => {
                        logs.note(&format!("denied outbound HTTP {what}: {why}"));
                        Err(Error::HttpRequestDenied)
                    }
                    Err(Refused::Prohibited(why)) => {
                        logs.note(&format!("denied outbound HTTP {what}: {why}"));
                        Err(Error::DestinationIpProhibited)
                    }
                    Err(Refused::Failed(e)) => Err(e),
                };
                if !traced.is_disabled() {
                    match &out {
                        Ok((resp, _)) => {
                            traced.record("http.response.status_code", resp.status().as_u16());
                            if resp.status().is_server_error() || resp.status().is_client_error() {
                                traced.record("otel.status_code", "error");
                            }
                        }
                        Err(e) => {
                            traced.record("error.type", error_type(e));
                            traced.record("otel.status_code", "error");
                        }
                    }
                }
                out
            }
            .instrument(span),
        )
    }
}

type Sent = (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>);

/// The span of one outbound request: method, server address and port (never the path, query or headers).
fn client_span(request: &http::Request<WasiBody>) -> tracing::Span {
    let uri = request.uri();
    tracing::info_span!(
        "outbound_http",
        otel.name = %request.method(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        server.address = uri.host().unwrap_or(""),
        server.port = uri.port_u16().unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) { 443 } else { 80 }),
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    )
}

/// A short, bounded name of why an outbound request failed (`error.type`).
fn error_type(e: &Error) -> &'static str {
    match e {
        Error::HttpRequestDenied => "denied",
        Error::DestinationIpProhibited => "destination_prohibited",
        Error::DnsTimeout | Error::DnsError { .. } => "dns",
        Error::ConnectionTimeout | Error::ConnectionReadTimeout => "timeout",
        Error::ConnectionRefused => "connection_refused",
        _ => "failed",
    }
}

async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    grant: &[HostPattern],
    node: &Outbound,
    current: Arc<Current>,
) -> Result<Sent, Refused> {
    let deadline = current.deadline;
    let uri = request.uri().clone();
    let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let scheme = if https { Scheme::Https } else { Scheme::Http };
    let host = uri.host().ok_or(Refused::Failed(Error::HttpRequestUriInvalid))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(scheme.default_port());
    let left = |cap: Duration| cap.min(deadline.saturating_duration_since(Instant::now()));
    let timeout = left(node.config.timeout);
    // Allowed, resolved, every address checked; connect to one of those.
    let allowed = match super::net::check(grant, scheme, &host, port, &node.config.own_addresses, timeout).await {
        Ok(a) => a,
        Err(Refusal::NotAllowed(why)) => return Err(Refused::Denied(why)),
        Err(Refusal::Prohibited(why)) => return Err(Refused::Prohibited(why)),
        Err(Refusal::DnsTimeout) => return Err(Refused::Failed(Error::DnsTimeout)),
        Err(Refusal::Dns(_)) => return Err(Refused::Failed(Error::DnsError { rcode: None, info_code: None })),
    };
    let addr = allowed[0];
    let connect = options.as_ref().and_then(|o| o.connect_timeout).map_or(timeout, left);
    let tcp = match tokio::time::timeout(connect, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return Err(Refused::Failed(Error::ConnectionTimeout)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(Refused::Failed(Error::ConnectionRefused));
        }
        Ok(Err(e)) => return Err(Refused::Failed(Error::Connect(e))),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    // Origin-form on the wire; the Host header (set by wasmtime-wasi-http) names the host.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().map_err(|_| Refused::Failed(Error::HttpRequestUriInvalid))?;
    let request = request.map(|b| Counted { inner: b, count: current.clone() }.boxed_unsync());
    let first_byte = options.as_ref().and_then(|o| o.first_byte_timeout).map_or(timeout, left);
    let response = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| Refused::Failed(Error::HttpRequestUriInvalid))?;
        let tls = match tokio::time::timeout(connect, node.tls.connect(name, tcp)).await {
            Err(_) => return Err(Refused::Failed(Error::ConnectionTimeout)),
            Ok(Err(e)) => return Err(Refused::Failed(Error::Tls(e))),
            Ok(Ok(t)) => t,
        };
        exchange(tls, request, first_byte).await
    } else {
        exchange(tcp, request, first_byte).await
    }
    .map_err(Refused::Failed)?;
    let (resp, io) = response;
    let resp = resp.map(|b| Counted { inner: b.map_err(Error::from), count: current }.boxed_unsync());
    // A response body that stalls is bounded by the invocation's deadline, which stops the guest.
    Ok((resp, io))
}

/// One HTTP/1.1 exchange on `io`: returns the response head (its body streams) and the connection future,
/// which wasmtime-wasi-http drives until the body is done.
async fn exchange<IO>(
    io: IO,
    request: http::Request<WasiBody>,
    first_byte: Duration,
) -> Result<(http::Response<hyper::body::Incoming>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    let mut conn = Box::pin(conn);
    let send = sender.send_request(request);
    tokio::pin!(send);
    // Drive the connection while waiting for the head.
    let head = tokio::time::timeout(first_byte, async {
        tokio::select! {
            r = &mut send => r.map_err(Error::from).map(|r| (r, false)),
            r = &mut conn => {
                r.map_err(Error::from)?;
                send.as_mut().await.map_err(Error::from).map(|r| (r, true))
            }
        }
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;
    let (resp, conn_done) = head;
    let io: Box<dyn Future<Output = Result<(), Error>> + Send> =
        if conn_done { Box::new(async { Ok(()) }) } else { Box::new(async move { conn.await.map_err(Error::from) }) };
    Ok((resp, io))
}

/// A body whose data bytes are counted as egress of an invocation as they pass.
struct Counted<B> {
    inner: B,
    count: Arc<Current>,
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let p = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &p
            && let Some(d) = f.data_ref()
        {
            self.count.meter.egress(d.len() as u64);
        }
        p
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
