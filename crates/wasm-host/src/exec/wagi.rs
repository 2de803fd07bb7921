//! WAGI: a WASI preview1 command module run CGI-style. The request arrives as environment variables
//! (RFC 3875 meta-variables plus `HTTP_*` headers) and stdin; the module prints headers, a blank line and the
//! body on stdout. `Status:` sets the status; `Location:` without `Status:` means 302.

use crate::body::{BoxError, ResponseBody, full_body};
use crate::engine::Shared;
use crate::limits::{arm_deadline, classify, is_capacity, timeout_error};
use crate::logs::LogPipe;
use crate::meter::{CpuTimed, Current};
use crate::report::{Reporter, too_large};
use crate::state::{WagiState, wasi_ctx};
use crate::{InvocationCtx, InvokeError, Phases, ReportSink};
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tracing::Instrument;
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::cli::AsyncStdinStream;
use wisp_core::ErrorClass;

/// A loaded WAGI module: what to run in each instance.
#[derive(Clone)]
pub(crate) struct WagiCode {
    pub pre: wasmtime::InstancePre<WagiState>,
    /// The init export still to run before the entry point (a module that was not snapshotted).
    pub init: Option<&'static str>,
    /// `wizer.resume` when an init runs first and the module has one, else `_start`.
    pub entry: &'static str,
}

impl WagiCode {
    pub(crate) fn new(pre: wasmtime::InstancePre<WagiState>, module: &wasmtime::Module) -> Self {
        let init = crate::preinit::init_export(module);
        let has_resume = crate::preinit::exports_func(module, crate::preinit::RESUME_EXPORT);
        let entry = if init.is_some() && has_resume { crate::preinit::RESUME_EXPORT } else { "_start" };
        WagiCode { pre, init, entry }
    }
}

/// Bytes of request body buffered between the client and the module's stdin: the client is read only as
/// fast as the module reads (backpressure), never into memory whole.
const STDIN_BUFFER_BYTES: usize = 64 * 1024;

pub(crate) async fn handle<B>(
    shared: &Arc<Shared>,
    wagi: &WagiCode,
    req: http::Request<B>,
    ctx: InvocationCtx,
    report: ReportSink,
) -> Result<http::Response<ResponseBody>, InvokeError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let limits = ctx.limits;
    let reporter = Reporter::begin(&ctx, report, &req, LogPipe::new(limits.max_log_bytes as usize))?;
    let mut reporter = reporter;
    let logs = reporter.logs.clone();
    let (parts, mut body) = req.into_parts();
    let deadline = ctx.deadline;

    // stdout is capped like the logs: past `max_output_bytes` the output is dropped and the invocation fails.
    let stdout = LogPipe::new(limits.max_output_bytes as usize);
    let (mut to_guest, stdin) = tokio::io::duplex(STDIN_BUFFER_BYTES);
    let declared = parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut b = wasi_ctx(&ctx, &logs);
    if let Some(files) = &ctx.files {
        // Preview1 keeps its own preopens: one open(2) per invocation, for WAGI functions with files only.
        b.preopened_dir(files.path(), "/", wasmtime_wasi::filesystem::FsPerms::ReadOnly).map_err(|e| {
            InvokeError::new(wisp_core::ErrorClass::Internal, format!("opening the function's files: {e:#}"))
        })?;
    }
    b.stdout(stdout.clone()).stdin(AsyncStdinStream::new(stdin)).args(&[&*ctx.function]);
    for (k, v) in cgi_env(&parts, &ctx, declared.as_deref()) {
        b.env(k, v);
    }
    reporter.cold = true; // every WAGI request runs in an instance of its own
    let mut store = WagiState::store(&shared.engine, b.build_p1(), limits.memory_bytes());
    arm_deadline(&mut store, deadline, limits.timeout_ms);

    // The request body is pumped into stdin while the module runs, under the same deadline: a client that
    // stalls its body holds the invocation only until then.
    let limit = limits.max_body_bytes;
    let mut body_failure: Option<InvokeError> = None;
    let current = Current::new(ctx.id.clone(), deadline);
    let pump = async {
        let mut sent = 0u64;
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue, // trailers
                },
                Err(e) => {
                    let e: BoxError = e.into();
                    body_failure =
                        Some(InvokeError::new(ErrorClass::InvalidInput, format!("reading request body: {e}")));
                    break;
                }
            };
            sent += data.len() as u64;
            if sent > limit {
                body_failure = Some(too_large(limit));
                break;
            }
            if to_guest.write_all(&data).await.is_err() {
                break; // the module stopped reading stdin
            }
            current.meter.bytes_in(data.len() as u64);
        }
        drop(to_guest); // EOF on stdin
        std::future::pending::<()>().await
    };

    let mut phases = Phases::default();
    let shared = shared.clone();
    let run = async {
        let t0 = Instant::now();
        let instance = async {
            match wagi.pre.instantiate_async(&mut store).await {
                Err(e) if is_capacity(&e) && shared.evict_one_idle() => wagi.pre.instantiate_async(&mut store).await,
                r => r,
            }
        }
        .instrument(tracing::info_span!("instantiate"))
        .await?;
        phases.instantiate = t0.elapsed();
        if let Some(init) = wagi.init {
            let t = Instant::now();
            instance.get_typed_func::<(), ()>(&mut store, init)?.call_async(&mut store, ()).await?;
            phases.init = t.elapsed();
        }
        let t = Instant::now();
        let start = instance.get_typed_func::<(), ()>(&mut store, wagi.entry)?;
        let r = start.call_async(&mut store, ()).await;
        phases.handler = t.elapsed();
        r
    };
    let t0 = Instant::now();
    let span = tracing::info_span!("instance", wisp.world = "wagi", faas.coldstart = true);
    let run = CpuTimed::new(run, &current, shared.config.cpu_time).instrument(span);
    let result = tokio::time::timeout_at(deadline.into(), async {
        tokio::select! {
            biased;
            r = run => r,
            () = pump => unreachable!("the pump never finishes"),
        }
    })
    .await;
    reporter.usage = current.usage(t0.elapsed(), store.data().limiter.peak as u64, limits.memory_bytes() as u64);
    let outcome = match result {
        Err(_) => Err(timeout_error(limits.timeout_ms)),
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => Ok(()),
            Some(I32Exit(n)) => {
                Err(InvokeError::new(ErrorClass::GuestFailure, format!("WAGI module exited with code {n}")))
            }
            None => Err(classify(&e, store.data().limiter.exceeded, limits.timeout_ms)),
        },
    };
    drop(store);
    let outcome = match (body_failure, outcome) {
        (Some(e), _) => Err(e),
        (None, o) => o,
    };
    if let Err(e) = outcome {
        return reporter.fail(e, phases);
    }
    if stdout.truncated() {
        let e = InvokeError::new(
            ErrorClass::GuestFailure,
            format!(
                "WAGI module printed more than its limits.max_output_bytes = {} bytes; the output was dropped",
                limits.max_output_bytes
            ),
        );
        return reporter.fail(e, phases);
    }
    let out = stdout.take().bytes;
    reporter.usage.bytes_out = out.len() as u64;
    match parse_cgi(out) {
        Ok(resp) => {
            reporter.done(Ok(resp.status().as_u16()), phases);
            Ok(resp)
        }
        Err(msg) => reporter.fail(InvokeError::new(ErrorClass::GuestFailure, msg), phases),
    }
}

/// The CGI meta-variables. `CONTENT_LENGTH` is the declared one (absent for a chunked body: read stdin to
/// its end). Header names with `_` are dropped (they would collide with `-` names, and a client could
/// shadow a header a proxy in front set), as is `Proxy` (httpoxy); repeated headers are joined with `, `.
fn cgi_env(parts: &http::request::Parts, ctx: &InvocationCtx, content_length: Option<&str>) -> Vec<(String, String)> {
    let path = parts.uri.path();
    let prefix = if &*ctx.route_prefix == "/" { "" } else { &*ctx.route_prefix };
    let path_info = path.strip_prefix(prefix).unwrap_or(path);
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let (server_name, server_port) = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (n, p),
        _ => (host, "80"),
    };
    let mut env = vec![
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("SERVER_SOFTWARE".into(), "wisp".into()),
        ("SERVER_PROTOCOL".into(), format!("{:?}", parts.version)),
        ("REQUEST_METHOD".into(), parts.method.to_string()),
        ("SCRIPT_NAME".into(), prefix.to_string()),
        ("PATH_INFO".into(), path_info.to_string()),
        ("PATH_TRANSLATED".into(), path_info.to_string()),
        ("QUERY_STRING".into(), parts.uri.query().unwrap_or("").to_string()),
        ("SERVER_NAME".into(), server_name.to_string()),
        ("SERVER_PORT".into(), server_port.to_string()),
        ("X_MATCHED_ROUTE".into(), ctx.route_prefix.to_string()),
        ("X_RAW_PATH_INFO".into(), path_info.to_string()),
        (
            "X_FULL_URL".into(),
            format!("http://{host}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")),
        ),
        ("X_WISP_INVOCATION_ID".into(), ctx.id.to_string()),
    ];
    if let Some(n) = content_length {
        env.push(("CONTENT_LENGTH".into(), n.to_string()));
    }
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        env.push(("CONTENT_TYPE".into(), ct.to_string()));
    }
    for name in parts.headers.keys() {
        if name == http::header::AUTHORIZATION || name == http::header::PROXY_AUTHORIZATION {
            continue; // RFC 3875 §4.1.18: not passed to scripts
        }
        if name.as_str().contains('_') || name.as_str() == "proxy" {
            continue;
        }
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if !values.is_empty() {
            let key = format!("HTTP_{}", name.as_str().to_ascii_uppercase().replace('-', "_"));
            env.push((key, values.join(", ")));
        }
    }
    env
}

/// Turns a WAGI module's output into the response (the format: [`wisp_core::cgi`]).
fn parse_cgi(out: Bytes) -> Result<http::Response<ResponseBody>, String> {
    let head = wisp_core::cgi::parse(&out)?;
    let mut builder = http::Response::builder();
    for (name, value) in &head.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("WAGI module printed an invalid header name `{name}`"))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| format!("WAGI module printed an invalid value for `{name}`"))?;
        builder = builder.header(name, value);
    }
    let body = out.slice(head.body_start..);
    builder.status(head.status).body(full_body(body)).map_err(|e| format!("WAGI response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output() {
        let r = parse_cgi(Bytes::from_static(b"Content-Type: text/plain\n\nhello")).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi(Bytes::from_static(b"Status: 404 Not Found\r\nX-A: b\r\n\r\nnope")).unwrap();
        assert_eq!(r.status(), 404);
        let r = parse_cgi(Bytes::from_static(b"Location: /elsewhere\n\n")).unwrap();
        assert_eq!(r.status(), 302);
        assert!(parse_cgi(Bytes::from_static(b"X\x01Y: z\n\n")).unwrap_err().contains("invalid header name"));
    }
}
