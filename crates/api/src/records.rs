//! Persisted invocation records, usage and cost, and live logs.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /_wisp/v1/namespaces/{ns}/records?function=&since_ms=&until_ms=&status=ok\|error\|CODE&trigger=&id=&limit=&before= | persisted records, newest first, paged by `next` → `before` |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name}/series?since_ms=&until_ms=&step_ms= | requests, errors, cold starts, p50/p90/p99 per bucket |
//! | GET | /_wisp/v1/usage?since_ms=&until_ms=&by=function\|namespace&namespace= | usage with costs, per namespace bills (free tier credited) |
//! | GET | /_wisp/v1/usage/hourly?since_ms=&until_ms=&namespace=&function= | usage per hour and function, with costs |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name}/logs?follow=true[&id=ID][&limit=N] | server-sent events: the recent records, then each new one as it is made |

use crate::{Api, ApiError, ApiResult, key};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast;
use wisp_core::{ErrorClass, FunctionKey};
use wisp_metering::prices::{Bill, Prices, Usage};
use wisp_metering::{Filter, Hour, Metering, MeteringError, Point, UsageBy};
use wisp_scheduler::{InvocationRecord, RecordObserver};

/// Live records for `wisp logs -f`: every record as it is made, to whoever listens (nothing is kept).
pub struct LiveRecords {
    tx: broadcast::Sender<(FunctionKey, Arc<InvocationRecord>)>,
}

/// Records a slow listener may fall behind by before it is told it missed some.
const LIVE_BACKLOG: usize = 1024;

impl Default for LiveRecords {
    fn default() -> Self {
        LiveRecords { tx: broadcast::channel(LIVE_BACKLOG).0 }
    }
}

impl LiveRecords {
    /// Clients following live logs now.
    pub fn followers(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl RecordObserver for LiveRecords {
    fn observe(&self, function: &FunctionKey, record: &Arc<InvocationRecord>) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send((function.clone(), record.clone()));
        }
    }
}

/// Persists every record through the node's metering (a push to its bounded channel).
pub struct Persist(pub Arc<Metering>);

impl RecordObserver for Persist {
    fn observe(&self, function: &FunctionKey, record: &Arc<InvocationRecord>) {
        self.0.record(function.namespace.as_str(), function.name.as_str(), record.clone());
    }
}

impl From<MeteringError> for ApiError {
    fn from(e: MeteringError) -> Self {
        match e {
            MeteringError::Stopped => ApiError::new(ErrorClass::Unavailable, e.to_string()),
            MeteringError::Store(_) => {
                tracing::error!(error = %e, "invocation records query failed");
                ApiError::new(ErrorClass::Internal, "reading the invocation records failed; see the server log")
            }
        }
    }
}

/// Parses a query string into `T`, answering what was wrong with it.
fn query<T: serde::de::DeserializeOwned>(raw: Option<String>) -> ApiResult<T> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("query string: {e}")))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

const DAY_MS: u64 = 86_400_000;

/// `[since, until)` from optional bounds: until defaults to now, since to `default_span` before until.
fn range(since: Option<u64>, until: Option<u64>, default_span: u64) -> ApiResult<(u64, u64)> {
    let until = until.unwrap_or_else(|| now_ms() + 1);
    let since = since.unwrap_or(until.saturating_sub(default_span));
    if since >= until {
        return Err(ApiError::new(
            ErrorClass::InvalidInput,
            format!("since_ms = {since} is not before until_ms = {until}: give a range that is not empty"),
        ));
    }
    Ok((since, until))
}

/// `GET /_wisp/v1/namespaces/{ns}/records`.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Path(ns): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<wisp_metering::Page>> {
    let mut filter: Filter = query(raw)?;
    wisp_core::Name::new(ns.as_str())
        .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("namespace: {e}")))?;
    if let Some(t) = &filter.trigger
        && wisp_core::invocation::Trigger::from_name(t).is_none()
    {
        let all: Vec<_> = wisp_core::invocation::Trigger::ALL.iter().map(|t| t.as_str()).collect();
        return Err(ApiError::new(ErrorClass::InvalidInput, format!("trigger `{t}`: write one of {}", all.join(", "))));
    }
    filter.namespace = Some(ns);
    Ok(Json(api.metering.query(filter).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    step_ms: Option<u64>,
}

/// A function's series.
#[derive(Serialize, Deserialize)]
pub struct Series {
    /// The bucket width, ms.
    pub step_ms: u64,
    /// The range's start, unix ms.
    pub since_ms: u64,
    /// The range's end (exclusive), unix ms.
    pub until_ms: u64,
    /// The buckets that had invocations, oldest first.
    pub points: Vec<Point>,
}

/// `GET …/functions/{name}/series`.
pub(crate) async fn series(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Series>> {
    let q: SeriesQuery = query(raw)?;
    let key = key(&ns, &name)?;
    let (since, until) = range(q.since_ms, q.until_ms, 3_600_000)?;
    let (step, points) = api
        .metering
        .series(key.namespace.as_str(), key.name.as_str(), since, until, q.step_ms.unwrap_or(60_000))
        .await?;
    Ok(Json(Series { step_ms: step, since_ms: since, until_ms: until, points }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    #[serde(default)]
    by: UsageBy,
    namespace: Option<String>,
    function: Option<String>,
}

/// Usage over a period, with costs.
#[derive(Serialize, Deserialize)]
pub struct UsageReport {
    /// The range's start, unix ms (hours starting in the range count).
    pub since_ms: u64,
    /// The range's end (exclusive), unix ms.
    pub until_ms: u64,
    /// How rows are grouped.
    pub by: UsageBy,
    /// The price sheet's currency.
    pub currency: String,
    /// The price sheet.
    pub prices: Prices,
    /// One row per function or namespace, each with its cost.
    pub rows: Vec<Usage>,
    /// Every row summed.
    pub total: Usage,
    /// Each namespace's bill: gross, free tier credited, due.
    pub bills: Vec<Bill>,
}

/// `GET /_wisp/v1/usage`.
pub(crate) async fn usage(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<UsageReport>> {
    let q: UsageQuery = query(raw)?;
    if q.function.is_some() {
        return Err(ApiError::new(
            ErrorClass::InvalidInput,
            "function: not a filter of /_wisp/v1/usage (use /_wisp/v1/usage/hourly?function=…, or by=function)",
        ));
    }
    let (since, until) = range(q.since_ms, q.until_ms, DAY_MS)?;
    let mut rows = api.metering.usage(q.namespace, since, until, q.by).await?;
    let prices = &api.prices;
    let mut total = Usage { namespace: "*".into(), ..Default::default() };
    for r in &mut rows {
        r.cost = prices.cost(r);
        add(&mut total, r);
    }
    total.cost = prices.cost(&total);
    let bills = prices.bills(&rows);
    Ok(Json(UsageReport {
        since_ms: since,
        until_ms: until,
        by: q.by,
        currency: prices.currency.clone(),
        prices: prices.clone(),
        rows,
        total,
        bills,
    }))
}

fn add(total: &mut Usage, r: &Usage) {
    total.requests += r.requests;
    total.errors += r.errors;
    total.cold_starts += r.cold_starts;
    total.gb_seconds += r.gb_seconds;
    total.cpu_ms += r.cpu_ms;
    total.wall_ms += r.wall_ms;
    total.egress_bytes += r.egress_bytes;
    total.bytes_in += r.bytes_in;
    total.bytes_out += r.bytes_out;
}

/// Usage per hour.
#[derive(Serialize, Deserialize)]
pub struct Hourly {
    /// The price sheet's currency.
    pub currency: String,
    /// One entry per hour and function, oldest first, each with its cost.
    pub hours: Vec<Hour>,
}

/// `GET /_wisp/v1/usage/hourly`.
pub(crate) async fn hourly(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<Hourly>> {
    let q: UsageQuery = query(raw)?;
    if q.by != UsageBy::Function {
        return Err(ApiError::new(ErrorClass::InvalidInput, "by: hourly usage is always per function"));
    }
    let (since, until) = range(q.since_ms, q.until_ms, DAY_MS)?;
    let mut hours = api.metering.hourly(q.namespace, q.function, since, until).await?;
    for h in &mut hours {
        h.usage.cost = api.prices.cost(&h.usage);
    }
    Ok(Json(Hourly { currency: api.prices.currency.clone(), hours }))
}

/// `logs?follow=true`: the `limit` most recent records (of invocation `id` only, if given), then each new one.
pub(crate) fn follow(api: &Api, key: FunctionKey, id: Option<String>, limit: usize) -> Response {
    let mut rx = api.live.tx.subscribe();
    // Subscribed before reading the ring: a record made in between is sent twice rather than missed; the
    // ring's copy is skipped by id below.
    let recent = api.scheduler.logs(&key, limit).unwrap_or_default();
    let wanted = move |r: &InvocationRecord| id.as_deref().is_none_or(|id| r.id == id);
    let seen: std::collections::HashSet<String> = recent.iter().map(|r| r.id.clone()).collect();
    let backlog: Vec<Arc<InvocationRecord>> = recent.into_iter().filter(|r| wanted(r)).collect();
    let stream = async_stream(backlog, move |tx_item| {
        let wanted = wanted.clone();
        let seen = seen.clone();
        let key = key.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok((k, r)) if k == key && wanted(&r) && !seen.contains(&r.id) => {
                        if tx_item.send(record_event(&r)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let e = Event::default().event("lagged").data(format!("{{\"skipped\":{n}}}"));
                        if tx_item.send(e).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

fn record_event(r: &InvocationRecord) -> Event {
    Event::default().event("invocation").data(serde_json::to_string(r).expect("records serialise"))
}

/// A stream of SSE events: `backlog` first, then what `live` sends (a task feeding a small channel; it ends
/// when the client goes away and the channel closes).
fn async_stream<F, Fut>(
    backlog: Vec<Arc<InvocationRecord>>,
    live: F,
) -> impl futures::Stream<Item = Result<Event, std::convert::Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    let task = tokio::spawn(live(tx));
    // A comment first: the client knows it is subscribed once it reads it.
    let ready = std::iter::once(Ok(Event::default().comment("following")));
    let first = futures::stream::iter(ready.chain(backlog.into_iter().map(|r| Ok(record_event(&r)))));
    let rest = futures::stream::unfold((rx, AbortOnDrop(task)), |(mut rx, task)| async move {
        rx.recv().await.map(|e| (Ok(e), (rx, task)))
    });
    futures::StreamExt::chain(first, rest)
}

/// Stops the live task when the response stream is dropped (the client went away).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
