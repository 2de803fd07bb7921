//! The gateway: accepts HTTP/1.1 and h2c connections, sends `/_wisp/...` to the control API and every other
//! request through the route table to its function. On shutdown it stops accepting, lets in-flight requests
//! finish (bounded by a drain timeout), then returns.

#![warn(missing_docs)]

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;
use wisp_scheduler::Scheduler;
use wisp_wasm_host::{BoxError, ResponseBody, full_body};

/// Default time in-flight requests get to finish at shutdown.
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 30;
/// Default cap on a request head (request line + headers).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default cap on the number of request headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time in-flight requests get at shutdown.
    pub drain_timeout_seconds: u64,
    /// Largest request head; larger → 431.
    pub max_header_bytes: usize,
    /// Most request headers; more → 431.
    pub max_headers: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            drain_timeout_seconds: DEFAULT_DRAIN_TIMEOUT_SECONDS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// What the gateway dispatches to.
pub struct Gateway {
    /// Live functions.
    pub scheduler: Arc<Scheduler>,
    /// The control API.
    pub api: axum::Router,
    /// Settings.
    pub config: GatewayConfig,
}

impl Gateway {
    /// Serves `listener` until `shutdown` resolves, then drains.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_buf_size(self.config.max_header_bytes.max(8192))
            .max_headers(self.config.max_headers);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await; // e.g. EMFILE: back off
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let gw = self.clone();
                    let svc = hyper::service::service_fn(move |req| gw.clone().handle(req));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!("draining in-flight requests");
        let drain = Duration::from_secs(self.config.drain_timeout_seconds);
        if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
            tracing::warn!(seconds = drain.as_secs(), "drain timeout: closing remaining connections");
        }
        Ok(())
    }

    async fn handle(self: Arc<Self>, req: http::Request<Incoming>) -> Result<http::Response<ResponseBody>, Infallible> {
        let path = req.uri().path();
        if path == "/_wisp" || path.starts_with("/_wisp/") {
            let resp = self.api.clone().oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {});
            return Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()));
        }
        let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).or(req.uri().host());
        let Some(target) = self.scheduler.route(host, path) else {
            let mut r = http::Response::new(full_body(format!("no function is routed at {path}\n")));
            *r.status_mut() = http::StatusCode::NOT_FOUND;
            return Ok(r);
        };
        let (id, result) = self.scheduler.invoke(&target.active, &target.route.path, req).await;
        Ok(wisp_api::invocation_response(&id, result))
    }
}
