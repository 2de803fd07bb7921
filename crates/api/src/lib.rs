//! The control-plane API, mounted by the gateway under `/_wisp/v1/`. JSON in and out; every call needs
//! `Authorization: Bearer <token>`. Errors are `{"error": {"code", "message"}}` with the status from
//! [`ErrorClass::http_status`].
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /_wisp/v1/status | node status |
//! | GET | /_wisp/metrics | Prometheus metrics: OpenMetrics if accepted, else the Prometheus text format (see [`metrics`]); without the token when the node runs with `--metrics-public` |
//! | POST | /_wisp/v1/artifacts[?kind=file] | upload raw `.wasm` bytes (or, `kind=file`, a file a function mounts) → `{sha256, size, kind, existed}` |
//! | HEAD | /_wisp/v1/artifacts/{sha256} | 200 if stored, 404 if not |
//! | GET | /_wisp/v1/namespaces/{ns}/functions | list |
//! | PUT | /_wisp/v1/namespaces/{ns}/functions/{name} | deploy a [`FunctionSpec`] |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name} | record + revisions |
//! | DELETE | /_wisp/v1/namespaces/{ns}/functions/{name} | remove |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name}/logs?limit=N[&follow=true][&id=ID] | recent invocations with guest output (this node's memory); `follow`: server-sent events, then each new one |
//! | GET | /_wisp/v1/namespaces/{ns}/records?… | persisted invocation records, filtered and paged (see [`records`]) |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name}/series?… | requests, errors, cold starts, latency percentiles over time |
//! | GET | /_wisp/v1/usage?…, /_wisp/v1/usage/hourly?… | usage and cost per function or namespace, per hour |
//! | GET, PUT | /_wisp/v1/namespaces/{ns}/functions/{name}/scaling | scaling settings, applied without a redeploy |
//! | any | /_wisp/v1/namespaces/{ns}/functions/{name}/invoke[/{path}] | invoke directly, bypassing routes |
//! | POST | /_wisp/v1/namespaces/{ns}/functions/{name}/invocations | queue an event (data, or a CloudEvent in binary, structured or batch mode) → 202 `{id, duplicate}` once durable |
//! | GET | /_wisp/v1/invocations/{id} | the same, by id alone |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name}/invocations/{id} | an asynchronous invocation: state, attempts, timings, result |
//! | GET | /_wisp/v1/namespaces/{ns}/functions/{name}/dead-letters[?state=S&limit=N] | dead letters (or invocations in state S) |
//! | POST | /_wisp/v1/namespaces/{ns}/functions/{name}/dead-letters/redrive | queue dead letters again (`{"ids": [...]}` or all) |
//! | POST | /_wisp/v1/namespaces/{ns}/functions/{name}/dead-letters/purge | delete dead letters (`{"ids": [...]}` or all) |
//! | POST | /_wisp/v1/namespaces/{ns}/topics/{topic} | publish an event to every function subscribed to the topic → 202 `{topic, deliveries}` |
//! | GET | /_wisp/v1/triggers | every trigger's state: connected / reconnecting + last error, messages in |
//! | GET, PUT, DELETE | /_wisp/v1/namespaces/{ns}/apps/{app}/kv/{store}[/{key}] | guests' key-value data (see [`kv`]) |
//! | GET, PUT, DELETE | /_wisp/v1/namespaces/{ns}/apps/{app}/blobs/{container}[/{name}] | guests' blobs, streamed (see [`blobs`]) |
//! | GET | /_wisp/console[/{file}] | the web console's embedded files, no token (see [`console`]) |

#![warn(missing_docs)]

pub mod blobs;
pub mod console;
pub mod invocations;
pub mod kv;
pub mod metrics;
pub mod records;
pub mod secrets;
pub mod sql;
pub mod webhooks;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, head, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use wisp_core::{ErrorClass, FunctionKey, FunctionSpec, Name};
use wisp_registry::{DeployChange, DeployError, Registry};
use wisp_scheduler::Scheduler;

/// Shared state of the API.
pub struct Api {
    /// Deploy pipeline.
    pub registry: Arc<Registry>,
    /// Live serving state.
    pub scheduler: Arc<Scheduler>,
    /// Asynchronous invocations.
    pub events: Arc<wisp_events::Events>,
    /// Event sources.
    pub triggers: Arc<wisp_triggers::Triggers>,
    /// Guests' key-value data (what `wisp kv` manages).
    pub kv: Option<Arc<dyn wisp_store::guest_kv::KvBackend>>,
    /// Guests' SQL databases (what `wisp sql` and deploy-time migrations use).
    pub sql: Option<Arc<wisp_store::sql::SqlDatabases>>,
    /// Guests' blobs (what `wisp blob` manages).
    pub blobs: Option<Arc<dyn wisp_store::guest_blob::BlobBackend>>,
    /// App secrets (what `wisp secret` manages; values are never answered).
    pub secrets: Option<Arc<wisp_store::secrets::Secrets>>,
    /// Persisted invocation records, usage and its aggregates.
    pub metering: Arc<wisp_metering::Metering>,
    /// The price sheet usage is costed with (`[pricing]`).
    pub prices: wisp_metering::prices::Prices,
    /// Records as they are made, for `logs?follow=true` (registered with the scheduler as an observer).
    pub live: Arc<records::LiveRecords>,
    /// Prometheus metrics (registered with the scheduler as an observer).
    pub metrics: Arc<metrics::Metrics>,
    /// Whether `/_wisp/metrics` is served without the token (`wisp up --metrics-public`).
    pub metrics_public: bool,
    /// The bearer token.
    pub token: String,
    /// When the node started.
    pub started: Instant,
}

/// An API error: class + message.
#[derive(Debug)]
pub struct ApiError {
    /// Class (status).
    pub class: ErrorClass,
    /// Message for the caller.
    pub message: String,
}

impl ApiError {
    fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        ApiError { class, message: message.into() }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        let class = e.class();
        if class == ErrorClass::Internal {
            tracing::error!(error = %e, "internal error in control API");
            return ApiError::new(class, "internal error; see the server log");
        }
        ApiError::new(class, e.to_string())
    }
}

/// JSON body of an error response.
#[derive(Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code, e.g. `invalid_input`.
    pub code: String,
    /// What went wrong and how to fix it.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.class.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { error: ErrorDetail { code: self.class.code().into(), message: self.message } };
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Builds the router (paths include the `/_wisp/v1` prefix).
pub fn router(api: Arc<Api>) -> Router {
    let fns = "/_wisp/v1/namespaces/{ns}/functions";
    Router::new()
        .route("/_wisp/v1/status", get(status))
        .route(METRICS_PATH, get(metrics::serve))
        .route("/_wisp/v1/artifacts", post(upload))
        .route("/_wisp/v1/artifacts/{sha}", head(artifact_exists))
        .route(fns, get(list))
        .route(&format!("{fns}/{{name}}"), get(show).put(deploy).delete(remove))
        .route(&format!("{fns}/{{name}}/logs"), get(logs))
        .route(&format!("{fns}/{{name}}/series"), get(records::series))
        .route("/_wisp/v1/namespaces/{ns}/records", get(records::list))
        .route("/_wisp/v1/usage", get(records::usage))
        .route("/_wisp/v1/usage/hourly", get(records::hourly))
        .route(&format!("{fns}/{{name}}/scaling"), get(get_scaling).put(put_scaling).patch(patch_scaling))
        .route(&format!("{fns}/{{name}}/invoke"), any(invoke))
        .route(&format!("{fns}/{{name}}/invoke/{{*rest}}"), any(invoke))
        .route("/_wisp/v1/invocations/{id}", get(invocations::get_by_id))
        .route(&format!("{fns}/{{name}}/invocations"), post(invocations::post))
        .route(&format!("{fns}/{{name}}/invocations/{{id}}"), get(invocations::get_one))
        .route(&format!("{fns}/{{name}}/dead-letters"), get(invocations::list))
        .route(&format!("{fns}/{{name}}/dead-letters/redrive"), post(invocations::redrive))
        .route(&format!("{fns}/{{name}}/dead-letters/purge"), post(invocations::purge))
        .route("/_wisp/v1/namespaces/{ns}/topics/{topic}", post(webhooks::publish))
        .route("/_wisp/v1/triggers", get(triggers))
        .route("/_wisp/v1/namespaces/{ns}/apps/{app}/kv/{store}", get(kv::list_keys::<true>))
        .route(
            "/_wisp/v1/namespaces/{ns}/apps/{app}/kv/{store}/{*key}",
            get(kv::get_key::<true>).put(kv::put_key::<true>).delete(kv::delete_key::<true>),
        )
        .route(&format!("{fns}/{{name}}/kv/{{store}}"), get(kv::list_keys::<false>))
        .route(
            &format!("{fns}/{{name}}/kv/{{store}}/{{*key}}"),
            get(kv::get_key::<false>).put(kv::put_key::<false>).delete(kv::delete_key::<false>),
        )
        .route("/_wisp/v1/namespaces/{ns}/apps/{app}/blobs/{container}", get(blobs::list::<true>))
        .route(
            "/_wisp/v1/namespaces/{ns}/apps/{app}/blobs/{container}/{*key}",
            get(blobs::get::<true>).put(blobs::put::<true>).delete(blobs::delete::<true>),
        )
        .route(&format!("{fns}/{{name}}/blobs/{{container}}"), get(blobs::list::<false>))
        .route(
            &format!("{fns}/{{name}}/blobs/{{container}}/{{*key}}"),
            get(blobs::get::<false>).put(blobs::put::<false>).delete(blobs::delete::<false>),
        )
        .route("/_wisp/v1/namespaces/{ns}/apps/{app}/secrets", get(secrets::list))
        .route("/_wisp/v1/namespaces/{ns}/apps/{app}/secrets/{name}", put(secrets::set).delete(secrets::remove))
        .route("/_wisp/v1/namespaces/{ns}/apps/{app}/sql/{db}/query", post(sql::query::<true>))
        .route(
            "/_wisp/v1/namespaces/{ns}/apps/{app}/sql/{db}/migrations",
            get(sql::applied::<true>).post(sql::migrate::<true>),
        )
        .route(&format!("{fns}/{{name}}/sql/{{db}}/query"), post(sql::query::<false>))
        .route(&format!("{fns}/{{name}}/sql/{{db}}/migrations"), get(sql::applied::<false>).post(sql::migrate::<false>))
        .fallback(|| async {
            ApiError::new(ErrorClass::NotFound, "no such API endpoint; see the API table in crates/api")
        })
        .layer(axum::middleware::from_fn_with_state(api.clone(), auth))
        .layer(DefaultBodyLimit::max(wisp_registry::DEFAULT_MAX_ARTIFACT_BYTES))
        .with_state(api)
        // Merged after the auth layer: the console's files hold no data; its script sends the token.
        .merge(console::router())
}

/// Where Prometheus scrapes.
pub const METRICS_PATH: &str = "/_wisp/metrics";

async fn auth(State(api): State<Arc<Api>>, req: Request, next: axum::middleware::Next) -> Response {
    if api.metrics_public && req.uri().path() == METRICS_PATH {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), api.token.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(ErrorClass::Unauthorized, "wrong API token").into_response(),
        None => ApiError::new(
            ErrorClass::Unauthorized,
            "missing `Authorization: Bearer <token>`; the token is in <data-dir>/api-token (the CLI finds it via --data-dir or WISP_TOKEN)",
        )
        .into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn key(ns: &str, name: &str) -> ApiResult<FunctionKey> {
    let ns = Name::new(ns).map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("namespace: {e}")))?;
    let name = Name::new(name).map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("function: {e}")))?;
    Ok(FunctionKey::new(ns, name))
}

/// `GET /_wisp/v1/status`.
#[derive(Serialize, Deserialize)]
pub struct StatusBody {
    /// wisp version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Engine build + config key of the compiled cache.
    pub engine: String,
    /// Compilations this process has done (0 after a restart served from the cache).
    pub compilations: u64,
    /// Active functions.
    pub functions: usize,
    /// Every trigger's state.
    #[serde(default)]
    pub triggers: Vec<TriggerView>,
    /// Guests' connections to their databases and brokers.
    #[serde(default)]
    pub outbound_connections: OutboundConnections,
    /// Invocation records persisted and dropped (the records channel was full) since start.
    #[serde(default)]
    pub records: RecordsStatus,
}

/// What metering wrote and dropped since the node started.
#[derive(Serialize, Deserialize, Default)]
pub struct RecordsStatus {
    /// Records written to the records database.
    pub written: u64,
    /// Records dropped because the records channel was full (never silently: also logged and exported).
    pub dropped: u64,
}

/// Guests' pooled connections to their databases and brokers (PostgreSQL, MySQL, Redis, MQTT).
#[derive(Serialize, Deserialize, Default)]
pub struct OutboundConnections {
    /// Open now, in use and idle.
    pub open: usize,
    /// Of those, idle in a pool for the next invocation of their app.
    pub idle: usize,
}

/// A trigger's state, as `GET /_wisp/v1/status` and `/_wisp/v1/triggers` show it.
pub type TriggerView = wisp_triggers::TriggerStatus;

async fn triggers(State(api): State<Arc<Api>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "triggers": api.triggers.status() }))
}

async fn status(State(api): State<Arc<Api>>) -> Json<StatusBody> {
    Json(StatusBody {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: api.started.elapsed().as_secs(),
        engine: api.registry.host().engine_key(),
        compilations: api.registry.host().compilations(),
        functions: api.scheduler.len(),
        triggers: api.triggers.status(),
        outbound_connections: {
            let (open, idle) = api.registry.host().outbound_connections();
            OutboundConnections { open, idle }
        },
        records: RecordsStatus { written: api.metering.written(), dropped: api.metering.dropped() },
    })
}

/// `POST /_wisp/v1/artifacts` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// `file`: a file a function mounts, stored as it is; absent: code.
    #[serde(default)]
    kind: Option<String>,
}

async fn upload(
    State(api): State<Arc<Api>>,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let upload = match q.kind.as_deref() {
        None => wisp_registry::Upload::Code,
        Some("file") => wisp_registry::Upload::File,
        Some(other) => {
            return Err(ApiError::new(
                ErrorClass::InvalidInput,
                format!("kind={other}: an upload is code (no kind) or `kind=file`"),
            ));
        }
    };
    let info = api.registry.put_artifact(body, upload).await?;
    let status = if info.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(info)))
}

async fn artifact_exists(State(api): State<Arc<Api>>, Path(sha): Path<String>) -> ApiResult<StatusCode> {
    Ok(if api.registry.has_artifact(&sha).await? { StatusCode::OK } else { StatusCode::NOT_FOUND })
}

/// A function as listed.
#[derive(Serialize, Deserialize)]
pub struct FunctionView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// App, if deployed with one.
    pub app: Option<String>,
    /// `http` or `wagi`.
    pub kind: String,
    /// Routes.
    pub routes: Vec<String>,
    /// Serving revision id.
    pub revision: String,
    /// Artifact digest.
    pub artifact: String,
    /// When the revision was switched in, unix ms.
    pub deployed_at_ms: u64,
    /// Revisions so far.
    pub generation: u64,
    /// Whether it is loaded and serving on this node.
    pub active: bool,
    /// Invocations on this node since start.
    pub invocations: u64,
    /// Of those, the ones that created an instance (cold starts).
    #[serde(default)]
    pub cold_starts: u64,
    /// Limits.
    pub limits: wisp_core::Limits,
    /// Scaling settings.
    pub scaling: wisp_core::Scaling,
    /// Its triggers, described (no secrets: webhook secrets and URL passwords are left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// Instance mode in force (`fresh`/`reuse`), after defaults and any automatic fallback.
    pub instance_mode: String,
    /// Warm instances idle on this node right now.
    pub idle_instances: usize,
    /// Invocations running on this node now.
    pub in_flight: usize,
    /// Requests waiting for admission on this node now.
    pub queued: usize,
    /// Time this node took to load the serving revision's precompiled code, microseconds (once per
    /// revision, at deploy or start).
    #[serde(default)]
    pub load_us: Option<u64>,
    /// The autoscaler's latest decision on this node (absent before its first step).
    #[serde(default)]
    pub autoscaler: Option<AutoscalerView>,
}

/// An autoscaling decision as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoscalerView {
    /// Instances the function should have.
    pub desired: u32,
    /// Whether a burst put it in panic mode (following the short window, never scaling down).
    pub panicking: bool,
    /// Average requests in flight over the stable window.
    pub stable_concurrency: f64,
    /// Average requests in flight over the panic window.
    pub panic_concurrency: f64,
    /// Most requests in flight at once over the panic window: `desired` is never below it (one request per
    /// instance).
    #[serde(default)]
    pub recent_peak: u32,
    /// Instances ready (idle + busy) when the decision was taken.
    pub ready: u32,
    /// Most invocations in flight at once during the last autoscaling interval.
    pub peak_in_flight: usize,
    /// Most requests waiting at once during the last autoscaling interval.
    pub peak_queued: usize,
}

fn view(api: &Api, r: &wisp_core::FunctionRecord) -> FunctionView {
    let active = api.scheduler.get(&r.key);
    FunctionView {
        namespace: r.key.namespace.to_string(),
        name: r.key.name.to_string(),
        app: r.app.as_ref().map(|a| a.to_string()),
        kind: r.revision.kind.to_string(),
        routes: r.routes.iter().map(|p| p.to_string()).collect(),
        revision: r.revision.id.clone(),
        artifact: r.revision.artifact.clone(),
        deployed_at_ms: r.deployed_at_ms,
        generation: r.generation,
        active: active.is_some(),
        instance_mode: active
            .as_ref()
            .map_or_else(|| r.scaling.mode(r.revision.kind).as_str().to_string(), |a| a.instance_mode().to_string()),
        idle_instances: active.as_ref().map_or(0, |a| a.idle_instances()),
        in_flight: active.as_ref().map_or(0, |a| a.in_flight()),
        queued: active.as_ref().map_or(0, |a| a.queued()),
        load_us: active.as_ref().map(|a| a.load_time().as_micros() as u64),
        autoscaler: active.as_ref().and_then(|a| a.last_step()).map(|s| AutoscalerView {
            desired: s.decision.desired,
            panicking: s.decision.panicking,
            stable_concurrency: s.decision.stable_concurrency,
            panic_concurrency: s.decision.panic_concurrency,
            recent_peak: s.decision.recent_peak,
            ready: s.ready,
            peak_in_flight: s.peak_in_flight,
            peak_queued: s.peak_queued,
        }),
        invocations: active.as_ref().map_or(0, |a| a.invocations()),
        cold_starts: active.map_or(0, |a| a.cold_starts()),
        limits: r.revision.limits,
        scaling: r.scaling,
        triggers: r.triggers.iter().map(|t| t.describe()).collect(),
    }
}

async fn list(State(api): State<Arc<Api>>, Path(ns): Path<String>) -> ApiResult<Json<Vec<FunctionView>>> {
    Name::new(ns.as_str()).map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("namespace: {e}")))?;
    let records = api.registry.list(Some(&ns)).await?;
    Ok(Json(records.iter().map(|(r, _)| view(&api, r)).collect()))
}

/// A revision as shown: its env's keys, never the values (env is where secrets travel today).
#[derive(Serialize, Deserialize)]
pub struct RevisionView {
    /// Content address.
    pub id: String,
    /// `http` or `wagi`.
    pub kind: String,
    /// Artifact digest.
    pub artifact: String,
    /// Names of its environment variables.
    pub env_keys: Vec<String>,
    /// The files it mounts: guest path → artifact sha256.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub files: std::collections::BTreeMap<String, String>,
    /// Limits.
    pub limits: wisp_core::Limits,
    /// Creation time, unix ms.
    pub created_at_ms: u64,
}

impl From<wisp_core::RevisionRecord> for RevisionView {
    fn from(r: wisp_core::RevisionRecord) -> Self {
        RevisionView {
            id: r.id,
            kind: r.kind.to_string(),
            artifact: r.artifact,
            env_keys: r.env.into_keys().collect(),
            files: r.files,
            limits: r.limits,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// `GET .../functions/{name}`.
#[derive(Serialize, Deserialize)]
pub struct ShowBody {
    /// The function.
    pub function: FunctionView,
    /// Its revisions, oldest first.
    pub revisions: Vec<RevisionView>,
    /// Phase timings of its recent invocations on this node (absent when it is not active here).
    #[serde(default)]
    pub phases: Option<wisp_scheduler::PhaseSummary>,
}

async fn show(State(api): State<Arc<Api>>, Path((ns, name)): Path<(String, String)>) -> ApiResult<Json<ShowBody>> {
    let key = key(&ns, &name)?;
    let record = api.registry.get(&key).await?;
    let revisions = api.registry.revisions(&key).await?.into_iter().map(RevisionView::from).collect();
    let phases = api.scheduler.logs(&key, usize::MAX).map(|r| wisp_scheduler::PhaseSummary::of(&r));
    Ok(Json(ShowBody { function: view(&api, &record), revisions, phases }))
}

/// `PUT .../functions/{name}` response.
#[derive(Serialize, Deserialize)]
pub struct DeployBody {
    /// `created`, `updated`, `config_changed` or `unchanged`.
    pub change: String,
    /// The function now.
    pub function: FunctionView,
    /// Validation + compilation time, ms (absent when the compiled cache had it).
    pub compile_ms: Option<f64>,
    /// Why provisioned instances (`min_instances`) could not be started, if they could not.
    #[serde(default)]
    pub warm_error: Option<String>,
    /// What pre-initialisation did (a WAGI module with an init export, compiled by this deploy).
    #[serde(default)]
    pub preinit: Option<String>,
}

async fn deploy(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<DeployBody>> {
    let key = key(&ns, &name)?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("function spec: {e}")))?;
    // A spec without `scaling` is a single-file redeploy: it keeps the stored scaling, events and triggers.
    let keep_scaling = value.get("scaling").is_none();
    let spec: FunctionSpec = serde_json::from_value(value)
        .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("function spec: {e}")))?;
    wisp_triggers::check(&spec.triggers).map_err(|e| ApiError::new(ErrorClass::InvalidInput, e))?;
    secrets::check_granted(&api, &ns, &spec)?;
    let slots = api.registry.host().config().max_instances;
    let scheduler = &api.scheduler;
    let deployed = api
        .registry
        .deploy(
            &key,
            spec,
            keep_scaling,
            |spec| fits_node(scheduler, &key, &spec.scaling, slots),
            |deployed, stored| {
                match (deployed.change, &deployed.code) {
                    // Same revision: keep the loaded code and its warm instances.
                    (DeployChange::ConfigChanged, _) if scheduler.get(&key).is_some() => {
                        scheduler.update_record(deployed.record.clone(), stored)
                    }
                    (_, Some(code)) => scheduler.activate(deployed.record.clone(), stored, code.clone()),
                    (_, None) => {}
                }
                api.triggers.apply(&deployed.record);
            },
        )
        .await?;
    let warm_error = api.scheduler.prewarm(&key).await.err().map(|e| e.message);
    let change = match deployed.change {
        DeployChange::Created => "created",
        DeployChange::Updated => "updated",
        DeployChange::ConfigChanged => "config_changed",
        DeployChange::Unchanged => "unchanged",
    };
    Ok(Json(DeployBody {
        change: change.into(),
        function: view(&api, &deployed.record),
        compile_ms: deployed.compile.map(|d| d.as_secs_f64() * 1e3),
        warm_error,
        preinit: deployed.preinit.map(|p| match p {
            wisp_wasm_host::Preinit::Snapshotted { export, init } => format!(
                "`{export}` ran at deploy in {:.1} ms; instances start from its snapshot",
                init.as_secs_f64() * 1e3
            ),
            wisp_wasm_host::Preinit::PerInstance { export, reason } => {
                format!("not snapshotted, `{export}` runs in every instance: {reason}")
            }
        }),
    }))
}

async fn remove(State(api): State<Arc<Api>>, Path((ns, name)): Path<(String, String)>) -> ApiResult<StatusCode> {
    let key = key(&ns, &name)?;
    api.registry
        .remove(&key, |key| {
            api.scheduler.deactivate(key);
            api.triggers.remove(key);
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_scaling(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<wisp_core::Scaling>> {
    let key = key(&ns, &name)?;
    Ok(Json(api.registry.get(&key).await?.scaling))
}

/// `PUT .../scaling` replaces every setting (keys left out get their defaults); `PATCH` changes only the
/// keys given, so two operators changing different keys at once both land.
async fn put_scaling(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<wisp_core::Scaling>> {
    let scaling: wisp_core::Scaling =
        serde_json::from_slice(&body).map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("scaling: {e}")))?;
    let full = match serde_json::to_value(scaling).expect("scaling serialises") {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("scaling is a struct"),
    };
    change_scaling(&api, &ns, &name, full).await
}

async fn patch_scaling(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<wisp_core::Scaling>> {
    let patch: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorClass::InvalidInput,
            format!("scaling patch: {e} (send a JSON object of the keys to change)"),
        )
    })?;
    change_scaling(&api, &ns, &name, patch).await
}

/// Whether `scaling` for `key` fits the node (reservations, provisioned instances); checked under the
/// registry's deploy lock.
fn fits_node(
    scheduler: &Scheduler,
    key: &FunctionKey,
    scaling: &wisp_core::Scaling,
    slots: u32,
) -> Result<(), DeployError> {
    scheduler.check_scaling(key, scaling, slots).map_err(|m| DeployError::Spec(wisp_core::spec::SpecError::Scaling(m)))
}

async fn change_scaling(
    api: &Api,
    ns: &str,
    name: &str,
    patch: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Json<wisp_core::Scaling>> {
    let key = key(ns, name)?;
    let slots = api.registry.host().config().max_instances;
    let scheduler = &api.scheduler;
    let record = api
        .registry
        .patch_scaling(
            &key,
            patch,
            |scaling| fits_node(scheduler, &key, scaling, slots),
            |record, stored| scheduler.update_record(record.clone(), stored),
        )
        .await?;
    if let Err(e) = api.scheduler.prewarm(&key).await {
        tracing::warn!(function = %key, error = %e.message, "cannot start provisioned instances");
    }
    Ok(Json(record.scaling))
}

#[derive(Deserialize)]
struct LogsQuery {
    limit: Option<usize>,
    #[serde(default)]
    follow: bool,
    id: Option<String>,
}

async fn logs(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let key = key(&ns, &name)?;
    let limit = q.limit.unwrap_or(20);
    if api.scheduler.get(&key).is_none() {
        api.registry.get(&key).await?; // 404 if it does not exist at all
    }
    if q.follow {
        return Ok(records::follow(&api, key, q.id, limit));
    }
    let recent = api.scheduler.logs(&key, limit).unwrap_or_default();
    // Copied from the shared records outside the ring's lock.
    let list: Vec<_> =
        recent.iter().filter(|r| q.id.as_deref().is_none_or(|id| r.id == id)).map(|r| (**r).clone()).collect();
    Ok(Json(list).into_response())
}

/// Segments of `/_wisp/v1/namespaces/{ns}/functions/{name}/invoke`.
const INVOKE_PREFIX_SEGMENTS: usize = 7;

async fn invoke(State(api): State<Arc<Api>>, Path(params): Path<Vec<(String, String)>>, req: Request) -> Response {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let key = match key(get("ns").unwrap_or(""), get("name").unwrap_or("")) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Some(active) = api.scheduler.get(&key) else {
        return ApiError::new(ErrorClass::NotFound, format!("function `{key}` is not deployed")).into_response();
    };
    let (mut parts, body) = req.into_parts();
    // The path after `.../invoke`, exactly as sent (not percent-decoded: `%3F` stays in the path), under
    // the gateway's path policy.
    let raw = parts.uri.path();
    let rest = raw.match_indices('/').nth(INVOKE_PREFIX_SEGMENTS).map_or("/", |(i, _)| &raw[i..]);
    if let Err(e) = wisp_core::route::check_request_path(rest) {
        return ApiError::new(ErrorClass::InvalidInput, format!("invoke path `{rest}`: {e}")).into_response();
    }
    let pq = match parts.uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    parts.uri = match pq.parse() {
        Ok(u) => u,
        Err(_) => {
            return ApiError::new(ErrorClass::InvalidInput, "invalid invoke path").into_response();
        }
    };
    parts.headers.remove(http::header::AUTHORIZATION);
    let req = http::Request::from_parts(parts, body);
    let (id, result) = api.scheduler.invoke_http(&active, wisp_core::invocation::Trigger::Api, "/", req).await;
    invocation_response(&id, result).map(axum::body::Body::new)
}

/// Turns an invocation result into the client's response: the guest's response with
/// `x-wisp-invocation-id`, or the error status with a short text body. Guest and internal failures show only
/// the invocation id; the details are in `wisp logs`.
pub fn invocation_response(
    id: &str,
    result: Result<http::Response<wisp_wasm_host::ResponseBody>, wisp_wasm_host::InvokeError>,
) -> http::Response<wisp_wasm_host::ResponseBody> {
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            let text = if e.class.client_visible() {
                format!("{} (invocation {id})\n", e.message)
            } else {
                format!("the function failed (invocation {id}); see `wisp logs` for details\n")
            };
            let mut r = http::Response::new(wisp_wasm_host::full_body(text));
            *r.status_mut() = StatusCode::from_u16(e.class.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if matches!(e.class, ErrorClass::Overloaded | ErrorClass::Capacity) {
                r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            }
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
            r
        }
    };
    if let Ok(v) = http::HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-wisp-invocation-id", v);
    }
    resp
}
