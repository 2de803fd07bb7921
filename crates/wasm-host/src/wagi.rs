//! WAGI: a WASI preview1 command module run CGI-style. The request arrives as environment variables
//! (RFC 3875 meta-variables plus `HTTP_*` headers) and stdin; the module prints headers, a blank line and the
//! body on stdout. `Status:` sets the status; `Location:` without `Status:` means 302.

use crate::body::{BoxError, ResponseBody, full_body};
use crate::host::Code;
use crate::http::{Limiter, Reporter, arm_deadline, classify, too_large, wasi_ctx};
use crate::{InvocationCtx, InvokeError, Phases, ReportSink};
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wisp_core::ErrorClass;

/// Largest response a WAGI module may print.
pub const MAX_WAGI_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

/// Store state of a WAGI invocation.
pub(crate) struct WagiState {
    pub(crate) wasi: WasiP1Ctx,
    limiter: Limiter,
}

pub(crate) async fn handle<B>(
    code: &Code,
    wagi: crate::host::WagiCode,
    req: http::Request<B>,
    ctx: InvocationCtx,
    report: ReportSink,
) -> Result<http::Response<ResponseBody>, InvokeError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let limits = ctx.limits;
    let mut reporter = Reporter::begin(&ctx, report, &req, crate::logs::LogPipe::new(limits.max_log_bytes as usize))?;
    let logs = reporter.logs.clone();
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, limits.max_body_bytes as usize).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return reporter.fail(too_large(limits.max_body_bytes), Phases::default());
        }
        Err(e) => {
            return reporter.fail(
                InvokeError::new(ErrorClass::InvalidInput, format!("reading request body: {e}")),
                Phases::default(),
            );
        }
    };

    let stdout = MemoryOutputPipe::new(MAX_WAGI_OUTPUT_BYTES);
    let mut b = wasi_ctx(&ctx, &logs);
    b.stdout(stdout.clone()).stdin(MemoryInputPipe::new(body.clone())).args(&[&*ctx.function]);
    for (k, v) in cgi_env(&parts, &ctx, body.len()) {
        b.env(k, v);
    }
    reporter.cold = true; // every WAGI request runs in an instance of its own
    let mut store =
        Store::new(&code.shared.engine, WagiState { wasi: b.build_p1(), limiter: Limiter::new(limits.memory_bytes()) });
    store.limiter(|s| &mut s.limiter);
    arm_deadline(&mut store, limits.timeout_ms);

    let mut phases = Phases::default();
    let run = async {
        let t0 = Instant::now();
        let instance = wagi.pre.instantiate_async(&mut store).await?;
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
    let result = tokio::time::timeout(Duration::from_millis(limits.timeout_ms), run).await;
    let outcome = match result {
        Err(_) => Err(InvokeError::new(
            ErrorClass::Timeout,
            format!("function exceeded its timeout of {} ms", limits.timeout_ms),
        )),
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
    if let Err(e) = outcome {
        return reporter.fail(e, phases);
    }
    match parse_cgi(&stdout.contents()) {
        Ok(resp) => {
            reporter.done(Ok(resp.status().as_u16()), phases);
            Ok(resp)
        }
        Err(msg) => reporter.fail(InvokeError::new(ErrorClass::GuestFailure, msg), phases),
    }
}

fn cgi_env(parts: &http::request::Parts, ctx: &InvocationCtx, content_length: usize) -> Vec<(String, String)> {
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
        ("CONTENT_LENGTH".into(), content_length.to_string()),
        ("X_MATCHED_ROUTE".into(), ctx.route_prefix.to_string()),
        ("X_RAW_PATH_INFO".into(), path_info.to_string()),
        (
            "X_FULL_URL".into(),
            format!("http://{host}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")),
        ),
        ("X_WISP_INVOCATION_ID".into(), ctx.id.to_string()),
    ];
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        env.push(("CONTENT_TYPE".into(), ct.to_string()));
    }
    for (name, value) in &parts.headers {
        if name == http::header::AUTHORIZATION || name == http::header::PROXY_AUTHORIZATION {
            continue; // RFC 3875 §4.1.18: not passed to scripts
        }
        if let Ok(v) = value.to_str() {
            let key = format!("HTTP_{}", name.as_str().to_ascii_uppercase().replace('-', "_"));
            env.push((key, v.to_string()));
        }
    }
    env
}

/// Parses CGI output: header lines, a blank line, the body.
fn parse_cgi(out: &[u8]) -> Result<http::Response<ResponseBody>, String> {
    let (head, body) = split_head(out).ok_or_else(|| {
        "WAGI module printed no header block: print headers (at least `Content-Type: ...`), a blank line, then the body".to_string()
    })?;
    let head = std::str::from_utf8(head).map_err(|_| "WAGI module printed headers that are not UTF-8".to_string())?;
    let mut builder = http::Response::builder();
    let mut status = None;
    let mut location = false;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| format!("WAGI module printed a malformed header line `{line}`"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse::<u16>().ok());
            status = Some(
                code.filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| format!("WAGI module printed an invalid Status `{value}`"))?,
            );
            continue;
        }
        if name.eq_ignore_ascii_case("location") {
            location = true;
        }
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("WAGI module printed an invalid header name `{name}`"))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| format!("WAGI module printed an invalid value for `{name}`"))?;
        builder = builder.header(name, value);
    }
    let status = status.unwrap_or(if location { 302 } else { 200 });
    builder.status(status).body(full_body(Bytes::copy_from_slice(body))).map_err(|e| format!("WAGI response: {e}"))
}

fn split_head(out: &[u8]) -> Option<(&[u8], &[u8])> {
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let (end, body) = match (lf, crlf) {
        (Some(a), Some(b)) => {
            if a.0 < b.0 {
                a
            } else {
                b
            }
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    Some((&out[..end], &out[body..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output() {
        let r = parse_cgi(b"Content-Type: text/plain\n\nhello").unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi(b"Status: 404 Not Found\r\nX-A: b\r\n\r\nnope").unwrap();
        assert_eq!(r.status(), 404);
        let r = parse_cgi(b"Location: /elsewhere\n\n").unwrap();
        assert_eq!(r.status(), 302);
        assert!(parse_cgi(b"just a body").unwrap_err().contains("no header block"));
        assert!(parse_cgi(b"Bad Header\n\n").unwrap_err().contains("malformed header line"));
        assert!(parse_cgi(b"Status: abc\n\n").unwrap_err().contains("invalid Status"));
    }
}
