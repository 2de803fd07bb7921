//! End-to-end: traces. wisp runs with `--otlp-endpoint` pointing at an OTLP/HTTP receiver this test starts
//! (it decodes `ExportTraceServiceRequest`s with opentelemetry-proto); requests carry a known W3C
//! `traceparent`. The exported spans continue that trace with the caller's span as the server span's parent,
//! a guest's outbound request carries the trace on, a malformed header starts a new trace without failing
//! anything, and an asynchronous invocation continues the trace of the request that queued it — every
//! attempt, retries included. The receiver also answers the guest's outbound request, and keeps its headers.

mod common;

use common::Server;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use prost::Message;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";
const ASYNC_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const ASYNC_CALLER: &str = "b7ad6b7169203331";

/// What the receiver got: exported spans, and the headers of every other request.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    exports: usize,
    requests: Vec<(String, http::HeaderMap)>,
}

/// A local OTLP/HTTP receiver (`POST /v1/traces`, protobuf) that also answers any other request with `pong`,
/// on a runtime of its own so that nothing the test blocks on can stall it.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Received>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Received::default()));
        let shared = got.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let got = shared.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| answer(req, got.clone()));
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                    });
                }
            });
        });
        Receiver { port, got }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spans(&self) -> Vec<Span> {
        self.got.lock().unwrap().spans.clone()
    }

    fn request_headers(&self, path: &str) -> Vec<http::HeaderMap> {
        self.got.lock().unwrap().requests.iter().filter(|(p, _)| p == path).map(|(_, h)| h.clone()).collect()
    }
}

async fn answer(
    req: http::Request<hyper::body::Incoming>,
    got: Arc<Mutex<Received>>,
) -> Result<http::Response<http_body_util::Full<bytes::Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    if parts.method == http::Method::POST && path == "/v1/traces" {
        assert_eq!(parts.headers[http::header::CONTENT_TYPE], "application/x-protobuf");
        let export = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
        let mut g = got.lock().unwrap();
        g.exports += 1;
        for rs in export.resource_spans {
            let resource = rs.resource.expect("a resource");
            assert_eq!(attr(&resource.attributes, "service.name").as_deref(), Some("wisp"));
            for ss in rs.scope_spans {
                g.spans.extend(ss.spans);
            }
        }
        // An empty ExportTraceServiceResponse: full success.
        return Ok(http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap());
    }
    got.lock().unwrap().requests.push((path, parts.headers));
    Ok(http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"pong"))))
}

/// A string attribute's value.
fn attr(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let v = attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match v {
        V::StringValue(s) => s.clone(),
        V::IntValue(i) => i.to_string(),
        V::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn by_id<'a>(spans: &'a [Span], id: &[u8]) -> &'a Span {
    spans.iter().find(|s| s.span_id == id).unwrap_or_else(|| panic!("no exported span {}", hex(id)))
}

/// The names of `span`'s ancestors, nearest first, up to the trace's root in wisp (or a remote parent).
fn ancestors(spans: &[Span], span: &Span) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = span;
    while let Some(parent) = spans.iter().find(|s| s.span_id == at.parent_span_id) {
        out.push(parent.name.clone());
        at = parent;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_reaches_a_local_collector_with_the_right_parent() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with(&dir.path().join("data"), &["--otlp-endpoint", &rx.url()]);
    let grant = json!([format!("http://127.0.0.1:{}", rx.port)]);
    s.deploy("out", "hostile-c", json!({"routes": ["/out"], "allowed_outbound_hosts": grant})).await;
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"]})).await;
    s.deploy("fails", "trap-c", json!({"routes": ["/fails"], "events": {"retry_attempts": 1, "backoff_delay_ms": 1}}))
        .await;

    // A request that carries a trace, whose guest calls out.
    let r = s
        .http
        .get(format!("{}/out/outbound?127.0.0.1:{}/pong", s.url, rx.port))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "outbound answered: 200, 4 body bytes\n");
    // The guest's outbound request carried the trace on: same trace, a span of wisp's as its parent, the state.
    let seen = rx.request_headers("/pong");
    assert_eq!(seen.len(), 1);
    let out = seen[0]["traceparent"].to_str().unwrap().to_string();
    let parts: Vec<&str> = out.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[1], parts[3]), (4, "00", TRACE, "01"), "{out}");
    assert_ne!(parts[2], CALLER, "the callee's parent is wisp's span, not wisp's caller: {out}");
    assert_eq!(seen[0]["tracestate"], "congo=t61rcWkgMzE");

    // A malformed traceparent is ignored: the request is served, in a trace of its own.
    let r =
        s.http.get(format!("{}/hello", s.url)).header("traceparent", "00-zzzz-not-a-trace-01").send().await.unwrap();
    assert_eq!(r.status(), 200);

    // An asynchronous invocation queued with a trace; its handler fails, so it is retried once.
    let r = s
        .api(reqwest::Method::POST, "/_wisp/v1/namespaces/default/functions/fails/invocations")
        .header("traceparent", format!("00-{ASYNC_TRACE}-{ASYNC_CALLER}-01"))
        .body("boom")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = s.get_json(&format!("/_wisp/v1/invocations/{id}")).await;
        if v["state"] == "dead_lettered" {
            assert_eq!(v["attempts"], 2, "{v}");
            assert_eq!(v["event"]["extensions"]["traceparent"].as_str().map(|t| &t[3..35]), Some(ASYNC_TRACE), "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never dead-lettered: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Stopping flushes what is still batched: everything below is in the receiver once wisp has exited.
    let status = tokio::task::spawn_blocking(move || s.stop()).await.unwrap();
    assert!(status.success(), "{status:?}");
    let spans = rx.spans();
    assert!(rx.got.lock().unwrap().exports >= 1);

    // The request's server span continues the caller's trace, with the caller's span as its parent.
    let servers: Vec<&Span> = named(&spans, "GET /out").into_iter().filter(|s| hex(&s.trace_id) == TRACE).collect();
    assert_eq!(servers.len(), 1, "{spans:#?}");
    let server = servers[0];
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(hex(&server.parent_span_id), CALLER);
    assert_eq!(attr(&server.attributes, "http.route").as_deref(), Some("/out"));
    assert_eq!(attr(&server.attributes, "http.response.status_code").as_deref(), Some("200"));
    // Below it: the invocation, its instance, the outbound call — whose span is the callee's parent.
    let invocation = by_id(&spans, &spans.iter().find(|s| s.name == "invoke default/out").unwrap().span_id);
    assert_eq!(invocation.parent_span_id, server.span_id);
    assert_eq!(attr(&invocation.attributes, "faas.trigger").as_deref(), Some("http"));
    assert_eq!(attr(&invocation.attributes, "faas.name").as_deref(), Some("out"));
    assert_eq!(attr(&invocation.attributes, "http.response.status_code").as_deref(), Some("200"));
    assert!(attr(&invocation.attributes, "faas.coldstart").is_some());
    let client = spans
        .iter()
        .find(|s| hex(&s.span_id) == parts[2])
        .unwrap_or_else(|| panic!("the outbound request's parent {} was not exported: {spans:#?}", parts[2]));
    assert_eq!(hex(&client.trace_id), TRACE);
    assert_eq!(client.kind, SpanKind::Client as i32);
    assert_eq!(attr(&client.attributes, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(ancestors(&spans, client), ["instance", "invoke default/out", "GET /out"]);
    for s in spans.iter().filter(|s| hex(&s.trace_id) == TRACE) {
        assert!(
            ancestors(&spans, s).last().is_some_and(|root| root == "GET /out") || s.span_id == server.span_id,
            "every span of the trace hangs below the server span: {s:#?}"
        );
    }

    // The malformed header: a new trace, a root span, nothing of the bad header in it.
    let hello = named(&spans, "GET /hello");
    assert_eq!(hello.len(), 1, "{spans:#?}");
    assert!(hello[0].parent_span_id.is_empty(), "a new root: {:#?}", hello[0]);
    assert_eq!(hello[0].trace_id.len(), 16);
    assert!(hex(&hello[0].trace_id) != TRACE && hello[0].trace_id.iter().any(|b| *b != 0));

    // The asynchronous invocation: the accepting request continues its caller; both delivery attempts
    // continue that request's trace, each with an invocation below it.
    let accepted: Vec<&Span> =
        spans.iter().filter(|s| hex(&s.trace_id) == ASYNC_TRACE && hex(&s.parent_span_id) == ASYNC_CALLER).collect();
    assert_eq!(accepted.len(), 1, "{spans:#?}");
    assert_eq!(accepted[0].name, "POST /_wisp");
    let deliveries: Vec<&Span> =
        named(&spans, "deliver").into_iter().filter(|s| hex(&s.trace_id) == ASYNC_TRACE).collect();
    assert_eq!(deliveries.len(), 2, "two attempts: {spans:#?}");
    let mut attempts: Vec<String> =
        deliveries.iter().map(|d| attr(&d.attributes, "wisp.attempt").unwrap_or_default()).collect();
    attempts.sort();
    assert_eq!(attempts, ["1", "2"]);
    for d in &deliveries {
        assert_eq!(d.parent_span_id, accepted[0].span_id, "{d:#?}");
        let below: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == d.span_id).collect();
        assert_eq!(below.len(), 1, "{below:#?}");
        assert_eq!(below[0].name, "invoke default/fails");
        assert_eq!(attr(&below[0].attributes, "faas.trigger").as_deref(), Some("pubsub"));
        assert_eq!(attr(&below[0].attributes, "error.type").as_deref(), Some("guest_failure"), "{:#?}", below[0]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_nothing_is_traced_or_propagated() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("data"));
    let grant = json!([format!("http://127.0.0.1:{}", rx.port)]);
    s.deploy("out", "hostile-c", json!({"routes": ["/out"], "allowed_outbound_hosts": grant})).await;
    let r = s
        .http
        .get(format!("{}/out/outbound?127.0.0.1:{}/pong", s.url, rx.port))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "outbound answered: 200, 4 body bytes\n");
    let seen = rx.request_headers("/pong");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].get("traceparent").is_none(), "no span, nothing to propagate: {:?}", seen[0]);
    s.stop();
    assert!(rx.spans().is_empty());
}
