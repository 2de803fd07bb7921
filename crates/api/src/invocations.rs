//! Asynchronous invocations over the API: accept (202 once durable), look up, and the dead-letter queue.

use crate::{Api, ApiError, ApiResult, key};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use wisp_core::{ErrorClass, FunctionKey};
use wisp_events::{AcceptError, Events, InvocationView};
use wisp_store::queue::State as QState;

/// How long a client has to send an event's body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl From<AcceptError> for ApiError {
    fn from(e: AcceptError) -> Self {
        ApiError::new(e.class, e.message)
    }
}

impl From<wisp_store::StoreError> for ApiError {
    fn from(e: wisp_store::StoreError) -> Self {
        tracing::error!(error = %e, "queue store error in control API");
        ApiError::new(ErrorClass::Internal, "internal error; see the server log")
    }
}

/// Reads a request carrying one event (or a batch) for `key` and accepts it: 202 with the invocation id
/// (also in `x-wisp-invocation-id`) once durable; 404 for a function that is not deployed (never 202),
/// 413 over `events.max_event_bytes`, 429 when its queue is full. Used by the API and by the gateway for
/// `X-Wisp-Invocation-Type: Event` requests on a function's route.
pub async fn accept<B>(events: &Events, key: &FunctionKey, req: http::Request<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<wisp_wasm_host::BoxError>,
{
    match accept_inner(events, key, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn accept_inner<B>(events: &Events, key: &FunctionKey, req: http::Request<B>) -> ApiResult<Response>
where
    B: http_body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<wisp_wasm_host::BoxError>,
{
    let (parts, body) = req.into_parts();
    let body = read_event_body(events, key, &parts, body).await?;
    let batch = wisp_events::is_batch(&parts.headers);
    let list = wisp_events::events_from_request(key, &parts.headers, body)?;
    accept_all(events, key, list, batch).await
}

/// Accepts `list` for `key`: 202 with `{id, duplicate}` (and `x-wisp-invocation-id`), or for a batch
/// `{invocations: [...]}`.
pub(crate) async fn accept_all(
    events: &Events,
    key: &FunctionKey,
    list: Vec<wisp_core::invocation::Event>,
    batch: bool,
) -> ApiResult<Response> {
    let mut accepted = Vec::with_capacity(list.len());
    for event in list {
        accepted.push(events.accept(key, event).await?);
    }
    if batch {
        return Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "invocations": accepted }))).into_response());
    }
    let one = accepted.into_iter().next().ok_or_else(|| ApiError::new(ErrorClass::InvalidInput, "no event"))?;
    let mut resp = (StatusCode::ACCEPTED, Json(&one)).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&one.id) {
        resp.headers_mut().insert("x-wisp-invocation-id", v);
    }
    Ok(resp)
}

/// Reads an event's body, within the function's `events.max_event_bytes` and [`BODY_READ_TIMEOUT`]; 404 if
/// the function is not active.
pub(crate) async fn read_event_body<B>(
    events: &Events,
    key: &FunctionKey,
    parts: &http::request::Parts,
    body: B,
) -> ApiResult<Vec<u8>>
where
    B: http_body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<wisp_wasm_host::BoxError>,
{
    let Some(max) = events.max_event_bytes(key) else {
        return Err(ApiError::new(
            ErrorClass::NotFound,
            format!("no function `{}` in namespace `{}`: deploy it first", key.name, key.namespace),
        ));
    };
    let too_large = || {
        ApiError::new(
            ErrorClass::PayloadTooLarge,
            format!("the event is larger than function `{}` accepts ({max} bytes, events.max_event_bytes)", key.name),
        )
    };
    if parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > max)
    {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, max as usize);
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            ErrorClass::InvalidInput,
            format!("the event body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::new(ErrorClass::InvalidInput, format!("reading the event body: {e}"))),
        Ok(Ok(b)) => Ok(b.to_bytes().to_vec()),
    }
}

pub(crate) async fn post(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    let key = match key(&ns, &name) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    accept(&api.events, &key, req).await
}

pub(crate) async fn get_one(
    State(api): State<Arc<Api>>,
    Path((ns, name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<InvocationView>> {
    let key = key(&ns, &name)?;
    match api.events.get(&id).await? {
        Some(v) if v.namespace == key.namespace.as_str() && v.function == key.name.as_str() => Ok(Json(v)),
        _ => Err(ApiError::new(
            ErrorClass::NotFound,
            format!(
                "no asynchronous invocation `{id}` of `{}` (settled ones are kept for a day, dead letters for 14 days)",
                key.name
            ),
        )),
    }
}

pub(crate) async fn get_by_id(State(api): State<Arc<Api>>, Path(id): Path<String>) -> ApiResult<Json<InvocationView>> {
    match api.events.get(&id).await? {
        Some(v) => Ok(Json(v)),
        None => Err(ApiError::new(
            ErrorClass::NotFound,
            format!("no asynchronous invocation `{id}` (settled ones are kept for a day, dead letters for 14 days)"),
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
    state: Option<String>,
}

pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<InvocationView>>> {
    let key = key(&ns, &name)?;
    let state = match q.state.as_deref() {
        None => QState::DeadLettered,
        Some(s) => QState::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorClass::InvalidInput,
                format!("state `{s}`: use queued, running, succeeded, failed or dead_lettered"),
            )
        })?,
    };
    Ok(Json(api.events.list(&key, state, q.limit.unwrap_or(100).min(10_000)).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Selection {
    /// The invocations to act on; all dead letters of the function when absent.
    #[serde(default)]
    ids: Option<Vec<String>>,
}

fn selection(body: &[u8]) -> ApiResult<Selection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Selection::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(ErrorClass::InvalidInput, format!("body: {e} (send {{\"ids\": [...]}} or nothing for all)"))
    })
}

pub(crate) async fn redrive(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    body: bytes::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let key = key(&ns, &name)?;
    let sel = selection(&body)?;
    let n = api.events.redrive(&key, sel.ids).await?;
    Ok(Json(serde_json::json!({ "redriven": n })))
}

pub(crate) async fn purge(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    body: bytes::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let key = key(&ns, &name)?;
    let sel = selection(&body)?;
    let n = api.events.purge(&key, sel.ids).await?;
    Ok(Json(serde_json::json!({ "purged": n })))
}
