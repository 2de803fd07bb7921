//! Event delivery: an event becomes a CloudEvents 1.0 binary-mode POST to the function's events path (so
//! any wasi:http component or WAGI module is an event handler, with no SDK of its own), run by the world's
//! HTTP executor; the handler's status and the start of its body are the outcome.

use crate::body::ResponseBody;
use crate::{EVENT_RESULT_BYTES, EventDelivery, Outcome};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};

/// The request that delivers `d` (invocation `id`).
pub(crate) fn request(d: &EventDelivery, id: &str) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method(http::Method::POST).uri(&*d.path);
    for (name, value) in wisp_core::events::binary_headers(&d.event, d.attempt) {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value)) {
            b = b.header(n, v);
        }
    }
    b = b.header("x-wisp-invocation-id", id).header(http::header::HOST, "localhost");
    // The event's own trace travels as its `ce-traceparent` extension; the delivery's HTTP `traceparent` names
    // the invocation's span (when spans are exported).
    if let Some(h) = b.headers_mut()
        && let Some(cx) = crate::trace::current()
    {
        crate::trace::set_headers(h, &cx);
    }
    b.body(Full::new(Bytes::from(d.event.data.clone()))).unwrap_or_else(|_| {
        // The path was validated at deploy and header values are percent-encoded: only a bug gets here.
        http::Request::new(Full::new(Bytes::new()))
    })
}

/// Reads the handler's response: status, `Retry-After` and up to [`EVENT_RESULT_BYTES`] of body. The rest of
/// the body is read and dropped, so the guest runs to its end (bounded by the invocation's deadline).
pub(crate) async fn outcome(resp: http::Response<ResponseBody>) -> Outcome {
    let status = resp.status().as_u16();
    let retry_after_ms = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000));
    let mut body = resp.into_body();
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            let room = EVENT_RESULT_BYTES - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Outcome::Event { status, retry_after_ms, body: kept.freeze() }
}
