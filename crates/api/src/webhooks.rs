//! Webhook triggers (a public CloudEvents ingress on the data plane) and topic publishing.
//!
//! A webhook route accepts events in the three CloudEvents HTTP modes (binary, structured, batch) and any
//! other body as the data of a new event (`type = dev.wisp.webhook`; its id is the sender's delivery id when
//! it sends one, so a resent delivery is one invocation). It answers the CloudEvents abuse-protection
//! handshake (`OPTIONS` with `WebHook-Request-Origin`), and with a `secret` it requires the body's
//! HMAC-SHA256 in the trigger's `signature_header` (`sha256=<hex>` or bare hex).

use crate::invocations::{accept_all, read_event_body};
use crate::{Api, ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use std::sync::Arc;
use wisp_core::trigger::WebhookTrigger;
use wisp_core::{ErrorClass, FunctionKey, RoutePattern};
use wisp_events::Events;

/// Headers senders put their delivery id in (Standard Webhooks, GitHub, GitLab).
const DELIVERY_ID_HEADERS: [&str; 3] = ["webhook-id", "x-github-delivery", "x-gitlab-event-uuid"];

/// Serves a request to the webhook route `route` of `key`.
pub async fn serve<B>(
    events: &Events,
    key: &FunctionKey,
    hook: &WebhookTrigger,
    route: &RoutePattern,
    req: http::Request<B>,
) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<wisp_wasm_host::BoxError>,
{
    match serve_inner(events, key, hook, route, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve_inner<B>(
    events: &Events,
    key: &FunctionKey,
    hook: &WebhookTrigger,
    route: &RoutePattern,
    req: http::Request<B>,
) -> ApiResult<Response>
where
    B: http_body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<wisp_wasm_host::BoxError>,
{
    let (parts, body) = req.into_parts();
    if parts.method == http::Method::OPTIONS {
        return handshake(hook, &parts.headers);
    }
    if parts.method != http::Method::POST {
        let mut resp = ApiError::new(
            ErrorClass::MethodNotAllowed,
            format!("{} is not accepted here: a webhook takes POST (and OPTIONS for the handshake)", parts.method),
        )
        .into_response();
        resp.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("POST, OPTIONS"));
        return Ok(resp);
    }
    let body = read_event_body(events, key, &parts, body).await?;
    if let Some(secret) = &hook.secret {
        verify(secret, &hook.signature_header, &parts.headers, &body)?;
    }
    let batch = wisp_events::is_batch(&parts.headers);
    let cloudevent = wisp_events::is_cloudevent(&parts.headers);
    let mut list = wisp_events::events_from_request(key, &parts.headers, body)?;
    for e in &mut list {
        e.extensions.insert(wisp_core::invocation::TRIGGER_EXTENSION.to_string(), "webhook".to_string());
    }
    if !cloudevent {
        for e in &mut list {
            e.source = route.to_string();
            e.ty = "dev.wisp.webhook".into();
            if let Some(id) =
                DELIVERY_ID_HEADERS.iter().find_map(|h| parts.headers.get(*h)?.to_str().ok().filter(|v| !v.is_empty()))
            {
                e.id = id.to_string();
            }
        }
    }
    accept_all(events, key, list, batch).await
}

/// The CloudEvents webhook abuse-protection handshake: the sender asks with `WebHook-Request-Origin` whether
/// it may deliver; the answer allows that origin (if `allowed_origins` is empty or lists it) at any rate.
fn handshake(hook: &WebhookTrigger, headers: &http::HeaderMap) -> ApiResult<Response> {
    let Some(origin) = headers.get("webhook-request-origin").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            ErrorClass::InvalidInput,
            "OPTIONS without WebHook-Request-Origin: the handshake names the sender's origin",
        ));
    };
    let allowed =
        hook.allowed_origins.is_empty() || hook.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
    if !allowed {
        return Err(ApiError::new(
            ErrorClass::Forbidden,
            format!("origin {origin:?} may not deliver to this webhook (allowed_origins)"),
        ));
    }
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert(http::header::ALLOW, http::HeaderValue::from_static("POST, OPTIONS"));
    if let Ok(v) = http::HeaderValue::from_str(origin) {
        h.insert("webhook-allowed-origin", v);
    }
    h.insert("webhook-allowed-rate", http::HeaderValue::from_static("*"));
    Ok(resp)
}

/// Checks the body's HMAC-SHA256 against the signature header (constant time).
fn verify(secret: &str, header: &str, headers: &http::HeaderMap, body: &[u8]) -> ApiResult<()> {
    let unauthorized = |why: String| ApiError::new(ErrorClass::Unauthorized, why);
    let given = headers.get(header).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        unauthorized(format!("missing {header}: this webhook needs the body's HMAC-SHA256 as `sha256=<hex>`"))
    })?;
    let hex_sig = given.trim().strip_prefix("sha256=").unwrap_or(given.trim());
    let sig = hex::decode(hex_sig).map_err(|_| unauthorized(format!("{header} is not hex (write `sha256=<hex>`)")))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| unauthorized(format!("{header} does not match the body: wrong secret or altered body")))
}

/// `POST /_wisp/v1/namespaces/{ns}/topics/{topic}`: publishes one event (data, or a CloudEvent in binary or
/// structured mode) to every function subscribed to the topic → 202 `{topic, deliveries: [{function, id,
/// duplicate}]}` once each is durable.
pub(crate) async fn publish(
    State(api): State<Arc<Api>>,
    Path((ns, topic)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    wisp_core::Name::new(ns.as_str())
        .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("namespace: {e}")))?;
    wisp_core::trigger::check_topic(&topic).map_err(|e| ApiError::new(ErrorClass::InvalidInput, e))?;
    let (parts, body) = req.into_parts();
    if wisp_events::is_batch(&parts.headers) {
        return Err(ApiError::new(
            ErrorClass::InvalidInput,
            "publish one event at a time (a batch is for invocations)",
        ));
    }
    let body =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, wisp_core::events::MAX_PUBLISH_BYTES))
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorClass::PayloadTooLarge,
                    format!("a published event is at most {} bytes", wisp_core::events::MAX_PUBLISH_BYTES),
                )
            })?
            .to_bytes()
            .to_vec();
    let topic_key = FunctionKey::new(
        wisp_core::Name::new(ns.as_str()).expect("checked"),
        wisp_core::Name::new("topic").expect("valid"),
    );
    let mut event = wisp_events::events_from_request(&topic_key, &parts.headers, body)?
        .pop()
        .ok_or_else(|| ApiError::new(ErrorClass::InvalidInput, "no event"))?;
    if !wisp_events::is_cloudevent(&parts.headers) {
        event.source = format!("/_wisp/v1/namespaces/{ns}/topics/{topic}");
        event.ty = "dev.wisp.topic.message".into();
    }
    let delivered = api.triggers.publish(&ns, &topic, event).await?;
    let deliveries: Vec<serde_json::Value> = delivered
        .iter()
        .map(|(k, a)| serde_json::json!({"function": k.name.as_str(), "id": a.id, "duplicate": a.duplicate}))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"topic": topic, "deliveries": deliveries}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures() {
        let mut h = http::HeaderMap::new();
        assert!(verify("s", "x-sig", &h, b"body").unwrap_err().message.contains("missing x-sig"));
        h.insert("x-sig", sign("s", b"body").parse().unwrap());
        assert!(verify("s", "x-sig", &h, b"body").is_ok());
        assert!(verify("s", "x-sig", &h, b"bodY").unwrap_err().message.contains("does not match"));
        assert!(verify("t", "x-sig", &h, b"body").is_err());
        h.insert("x-sig", "sha256=zz".parse().unwrap());
        assert!(verify("s", "x-sig", &h, b"body").unwrap_err().message.contains("not hex"));
    }
}
