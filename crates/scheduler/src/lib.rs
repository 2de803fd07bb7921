//! The scheduler holds what serves right now — a route table and the loaded code of every active
//! function — swapped atomically on every deploy (readers never lock), and dispatches invocations to the
//! wasm host. Each function keeps a bounded ring of recent invocation records with captured guest output.
//!
//! Scaling: every invocation passes the function's admission gate ([`admission`]), which also meters its
//! load; [`Scheduler::autoscale`] feeds that load to each function's KPA autoscaler (`wisp-autoscaler`) and
//! carries the decision out on the revision's warm pool (reuse mode): idle instances beyond the desired count
//! are dropped (to zero after the grace period), missing ones are created ahead of requests.

#![warn(missing_docs)]

mod activate;
pub mod admission;
mod records;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body::Body;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::Instrument;
use wisp_autoscaler::{Autoscaler, Decision};
use wisp_core::invocation::Trigger;
use wisp_core::{FunctionKey, FunctionRecord, InstanceMode, RoutePattern, Scaling};
use wisp_router::RouteTable;
use wisp_wasm_host::{
    BoxError, Code, Input, Invocation, InvocationCtx, InvokeError, Outcome, Pool, Report, ResponseBody,
};

pub use records::{DEFAULT_LOG_RING, InvocationRecord, PhaseStats, PhaseSummary, cap_text};
use records::{Records, RecordsBudget};

/// A function ready to serve. Cloning shares everything (code, pool, counters); a change builds a new one
/// from a clone with the changed fields replaced.
#[derive(Clone)]
pub struct Active {
    /// Its record.
    pub record: FunctionRecord,
    /// The store revision of `record`: a change older than what serves is ignored.
    stored: u64,
    code: Code,
    /// The function's namespace, shared by its invocations.
    namespace: Arc<str>,
    /// What every invocation's context shares — env, limits, grants, configuration, files — built once per
    /// revision ([`activate::context`]); `dispatch` fills in the id, route and deadline.
    ctx: InvocationCtx,
    records: Arc<Records>,
    counters: Arc<Counters>,
    pool: Arc<Pool>,
    gate: Arc<admission::Gate>,
    scaler: Arc<Mutex<Scaler>>,
}

/// A function's counters since this node started (kept across its revisions).
#[derive(Default)]
struct Counters {
    invocations: AtomicU64,
    cold_starts: AtomicU64,
}

/// A function's autoscaler and its latest decision.
struct Scaler {
    autoscaler: Autoscaler,
    last: Option<Step>,
}

/// One autoscaling step as observed and decided.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The decision.
    pub decision: Decision,
    /// Instances ready (idle + busy) when it was taken.
    pub ready: u32,
    /// Most invocations in flight at once during the step's window.
    pub peak_in_flight: usize,
    /// Most requests waiting at once during the step's window.
    pub peak_queued: usize,
}

impl Scaler {
    fn new(scaling: &Scaling) -> Self {
        Scaler { autoscaler: Autoscaler::new(scaling.autoscaler()), last: None }
    }
}

impl Active {
    /// The instance mode in force (`fresh` or `reuse`), after any automatic fallback.
    pub fn instance_mode(&self) -> &'static str {
        self.pool.mode().as_str()
    }

    /// Whether the guest failed on reuse and now runs fresh.
    pub fn fell_back_to_fresh(&self) -> bool {
        self.pool.fell_back()
    }

    /// Warm instances idle right now.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle()
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> usize {
        self.gate.in_flight()
    }

    /// Requests waiting for admission now.
    pub fn queued(&self) -> usize {
        self.gate.waiting()
    }

    /// Requests its admission refused since it started on this node: `[queue full (429), queue timeout (503)]`.
    pub fn rejections(&self) -> [u64; 2] {
        self.gate.rejections()
    }

    /// Invocations served since this node started.
    pub fn invocations(&self) -> u64 {
        self.counters.invocations.load(Ordering::Relaxed)
    }

    /// Invocations since this node started that had to create an instance (cold starts).
    pub fn cold_starts(&self) -> u64 {
        self.counters.cold_starts.load(Ordering::Relaxed)
    }

    /// How long loading the serving revision's code took.
    pub fn load_time(&self) -> std::time::Duration {
        self.code.load_time()
    }

    /// The autoscaler's latest step, if it has made one.
    pub fn last_step(&self) -> Option<Step> {
        self.scaler.lock().last
    }
}

#[derive(Default)]
struct Live {
    routes: RouteTable<FunctionKey>,
    /// Persistent map: a change clones it in O(1) and shares every untouched entry.
    functions: imbl::HashMap<FunctionKey, Arc<Active>>,
}

/// The live serving state.
pub struct Scheduler {
    node: Arc<admission::Node>,
    live: ArcSwap<Live>,
    ring_size: usize,
    budget: Arc<RecordsBudget>,
    write: Mutex<()>,
    tasks: wisp_wasm_host::Tasks,
    autoscaler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Provisioned instances (`min_instances` of reuse-mode functions) over every live function, kept with
    /// each change so the deploy-time check is O(1).
    provisioned: AtomicU64,
    /// Where granted secrets' values come from (the node's secrets store); unset: none are served.
    secrets: std::sync::OnceLock<SecretSource>,
    /// Who sees each record ([`Scheduler::observe`]).
    observers: ArcSwap<Vec<Arc<dyn RecordObserver>>>,
}

/// Sees every invocation record as it is made — metering persists it, metrics count it, live logs stream it.
/// Called where the invocation reports, once per invocation: it must not block (a push to a bounded channel,
/// a counter).
pub trait RecordObserver: Send + Sync {
    /// `record` of an invocation of `function`, just made.
    fn observe(&self, function: &FunctionKey, record: &Arc<InvocationRecord>);
}

/// Answers a secret's value by namespace, app and name (None: not set).
pub type SecretSource = Arc<dyn Fn(&str, &str, &str) -> Option<String> + Send + Sync>;

/// The instances `active` keeps provisioned.
fn provisioned(active: &Active) -> u64 {
    let s = &active.record.scaling;
    if s.mode(active.record.revision.kind) == InstanceMode::Reuse { u64::from(s.min_instances) } else { 0 }
}

/// A routed request's target.
pub struct Target {
    /// The function.
    pub active: Arc<Active>,
    /// The route pattern that matched.
    pub route: RoutePattern,
}

/// Default node capacity (concurrent invocations).
pub const DEFAULT_MAX_CONCURRENCY: usize = 1000;

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new(DEFAULT_LOG_RING, DEFAULT_MAX_CONCURRENCY, Default::default())
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Scheduler {
    /// An empty scheduler keeping `ring_size` invocation records per function, running at most
    /// `max_concurrency` invocations at once; background work goes to `tasks` (the host's).
    pub fn new(ring_size: usize, max_concurrency: usize, tasks: wisp_wasm_host::Tasks) -> Self {
        Scheduler {
            node: Arc::new(admission::Node::new(max_concurrency)),
            live: ArcSwap::from_pointee(Live::default()),
            ring_size,
            budget: RecordsBudget::new(records::DEFAULT_NODE_RECORD_BYTES),
            write: Mutex::new(()),
            tasks,
            autoscaler: Mutex::new(None),
            provisioned: AtomicU64::new(0),
            secrets: std::sync::OnceLock::new(),
            observers: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// Adds `observer` to those that see every invocation record from now on.
    pub fn observe(&self, observer: Arc<dyn RecordObserver>) {
        self.observers.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(observer.clone());
            list
        });
    }

    /// The node's capacity and how much of it functions have reserved.
    pub fn capacity(&self) -> (usize, usize) {
        (self.node.capacity(), self.node.reserved())
    }

    /// Checks that `scaling` for `key` (replacing its current settings) fits the node: its reserved
    /// concurrency out of the node's capacity, and its provisioned instances (`min_instances`, which hold
    /// instance slots for good) out of the node's `slots` (`wisp up --max-instances`), next to what the
    /// other functions reserve and provision.
    pub fn check_scaling(&self, key: &FunctionKey, scaling: &Scaling, slots: u32) -> Result<(), String> {
        self.check_reservation(key, scaling.reserved_concurrency)?;
        let mine = self.get(key).map_or(0, |a| provisioned(&a));
        let others = self.provisioned.load(Ordering::Relaxed).saturating_sub(mine);
        // Half the slots at most are provisioned, so fresh instances and idle reuse always find room.
        let free = (u64::from(slots) / 2).saturating_sub(others);
        if u64::from(scaling.min_instances) > free {
            return Err(format!(
                "scaling.min_instances = {} is out of range: allowed 0..={free} (half of the node's {slots} instance slots minus {others} provisioned by other functions; wisp up --max-instances)",
                scaling.min_instances
            ));
        }
        Ok(())
    }

    /// Checks that `reserved` concurrency for `key` (replacing what it reserves now) still fits the node.
    fn check_reservation(&self, key: &FunctionKey, reserved: u32) -> Result<(), String> {
        let mine = self.get(key).map_or(0, |a| a.record.scaling.reserved_concurrency as usize);
        let others = self.node.reserved().saturating_sub(mine);
        let free = self.node.capacity().saturating_sub(others);
        if reserved as usize > free {
            return Err(format!(
                "scaling.reserved_concurrency = {reserved} is out of range: allowed 0..={free} (node capacity {} minus {others} reserved by other functions; wisp up --max-concurrency)",
                self.node.capacity()
            ));
        }
        Ok(())
    }

    /// Creates the provisioned warm instances (`scaling.min_instances`) of an active function; returns how
    /// many were made. Called after every deploy, scaling change and start.
    pub async fn prewarm(&self, key: &FunctionKey) -> Result<usize, InvokeError> {
        let Some(active) = self.get(key) else {
            return Ok(0);
        };
        let made = Self::create_warm(&active).await?;
        if made > 0 {
            tracing::info!(function = %key, instances = made, "provisioned warm instances");
        }
        Ok(made)
    }

    async fn create_warm(active: &Active) -> Result<usize, InvokeError> {
        let ctx = InvocationCtx {
            id: Arc::from("prewarm"),
            route_prefix: Arc::from("/"),
            // Prewarming (instantiation, the guest's start functions) runs under the function's timeout.
            deadline: std::time::Instant::now()
                + std::time::Duration::from_millis(active.record.revision.limits.timeout_ms),
            ..active.ctx.clone()
        };
        active.code.prewarm(&active.pool, &ctx).await
    }

    /// One autoscaling step at `now_ms` for every active function: records its load since the last step,
    /// asks its autoscaler for the desired instance count and, in reuse mode, sets its pool's idle target
    /// (dropping extra idle instances now). Returns the functions whose pools now miss warm instances; the
    /// caller creates them with [`Scheduler::prewarm_for_autoscaler`], off this path.
    pub fn autoscale(&self, now_ms: u64) -> Vec<FunctionKey> {
        let live = self.live.load();
        let mut wanting = Vec::new();
        for (key, active) in &live.functions {
            let load = active.gate.meter().take_average();
            let (peak_in_flight, peak_queued) = active.gate.take_peaks();
            let in_flight = active.gate.in_flight();
            let ready = u32::try_from(active.pool.idle() + in_flight).unwrap_or(u32::MAX);
            let decision = {
                let mut s = active.scaler.lock();
                s.autoscaler.record(now_ms, load);
                s.autoscaler.record_peak(now_ms, u32::try_from(peak_in_flight).unwrap_or(u32::MAX));
                let d = s.autoscaler.scale(now_ms, ready);
                s.last = Some(Step { decision: d, ready, peak_in_flight, peak_queued });
                d
            };
            if active.pool.mode() != InstanceMode::Reuse {
                continue;
            }
            let idle_target = (decision.desired as usize).saturating_sub(in_flight);
            let dropped = active.pool.set_target_idle(idle_target);
            if dropped > 0 {
                tracing::debug!(function = %key, dropped, desired = decision.desired, "scaled down");
            }
            if active.pool.missing() > 0 {
                wanting.push(key.clone());
            }
        }
        wanting
    }

    /// Runs [`Scheduler::autoscale`] every `tick` until [`Scheduler::shut_down`] or the scheduler is
    /// dropped; warm instances it asks for are created in tracked tasks of their own.
    pub fn spawn_autoscaler(self: &Arc<Self>, tick: std::time::Duration) {
        let weak = Arc::downgrade(self);
        let handle = tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(scheduler) = weak.upgrade() else { return };
                for key in scheduler.autoscale(now_ms()) {
                    let s = scheduler.clone();
                    scheduler.tasks.spawn(async move {
                        if let Err(e) = s.prewarm_for_autoscaler(&key).await {
                            tracing::warn!(function = %key, error = %e.message, "cannot scale up");
                        }
                    });
                }
            }
        });
        *self.autoscaler.lock() = Some(handle);
    }

    /// Shutdown, first step: the autoscaler stops (no more prewarming), and requests waiting for admission
    /// (and any new ones) get 503. Invocations already running finish.
    pub fn shut_down(&self) {
        if let Some(h) = self.autoscaler.lock().take() {
            h.abort();
        }
        self.node.close();
    }

    /// Resolves once the background work of invocations (detached guests, teardown, prewarm) is done.
    pub async fn background_done(&self) {
        self.tasks.idle().await
    }

    /// Creates the warm instances an autoscaling step asked for, unless another task is already creating
    /// instances for this function's pool.
    pub async fn prewarm_for_autoscaler(&self, key: &FunctionKey) -> Result<usize, InvokeError> {
        let Some(active) = self.get(key) else {
            return Ok(0);
        };
        let Some(_claim) = active.pool.start_prewarming() else {
            return Ok(0);
        };
        let made = Self::create_warm(&active).await?;
        if made > 0 {
            tracing::debug!(function = %key, instances = made, "scaled up");
        }
        Ok(made)
    }

    /// Stops routing to a function.
    pub fn deactivate(&self, key: &FunctionKey) {
        self.update(key, |functions| {
            functions.remove(key);
        });
    }

    /// Changes what serves for `key` (only `key`: the route table is updated for its routes alone), and
    /// swaps the result in atomically. O(log n + its routes), whatever the number of functions.
    fn update(&self, key: &FunctionKey, f: impl FnOnce(&mut imbl::HashMap<FunctionKey, Arc<Active>>)) {
        let _w = self.write.lock();
        let live = self.live.load();
        let mut functions = live.functions.clone();
        f(&mut functions);
        let routes_of = |m: &imbl::HashMap<FunctionKey, Arc<Active>>| {
            m.get(key).map(|a| a.record.served_routes()).unwrap_or_default()
        };
        let routes = live.routes.with_routes(key, &routes_of(&live.functions), &routes_of(&functions));
        match routes {
            Ok(routes) => {
                let before = live.functions.get(key).map_or(0, |a| provisioned(a));
                let after = functions.get(key).map_or(0, |a| provisioned(a));
                self.provisioned.fetch_add(after, Ordering::Relaxed);
                self.provisioned.fetch_sub(before, Ordering::Relaxed);
                self.live.store(Arc::new(Live { routes, functions }))
            }
            // The registry rejects conflicts before they are stored; reaching this is a bug.
            Err(e) => {
                tracing::error!(error = %e, "route conflict in live table; keeping the previous table")
            }
        }
    }

    /// The function serving `host` + `path`.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<Target> {
        let live = self.live.load();
        let m = live.routes.lookup(host, path)?;
        let active = live.functions.get(m.target)?.clone();
        Some(Target { active, route: m.pattern.clone() })
    }

    /// An active function by key.
    pub fn get(&self, key: &FunctionKey) -> Option<Arc<Active>> {
        self.live.load().functions.get(key).cloned()
    }

    /// Every active function.
    pub fn actives(&self) -> Vec<Arc<Active>> {
        self.live.load().functions.values().cloned().collect()
    }

    /// The records of every active function.
    pub fn records(&self) -> Vec<FunctionRecord> {
        self.live.load().functions.values().map(|a| a.record.clone()).collect()
    }

    /// Number of active functions.
    pub fn len(&self) -> usize {
        self.live.load().functions.len()
    }

    /// Whether nothing is active.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most recent invocation records of a function, newest last.
    pub fn logs(&self, key: &FunctionKey, limit: usize) -> Option<Vec<Arc<InvocationRecord>>> {
        Some(self.get(key)?.records.recent(limit))
    }

    /// A new invocation of `active` with `input`: a fresh id, and its one deadline from now.
    pub fn invocation<B>(&self, active: &Active, trigger: Trigger, input: Input<B>) -> Invocation<B> {
        Invocation {
            id: Arc::from(uuid::Uuid::now_v7().simple().to_string()),
            namespace: active.namespace.clone(),
            function: active.ctx.function.clone(),
            trigger,
            input,
            deadline: std::time::Instant::now()
                + std::time::Duration::from_millis(active.record.revision.limits.timeout_ms),
        }
    }

    /// An HTTP invocation of `active`: `route_prefix` is the matched route's path (WAGI `SCRIPT_NAME`).
    /// Returns the invocation id with the response or the classified failure.
    pub async fn invoke_http<B>(
        &self,
        active: &Arc<Active>,
        trigger: Trigger,
        route_prefix: &str,
        request: http::Request<B>,
    ) -> (Arc<str>, Result<http::Response<ResponseBody>, InvokeError>)
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let inv = self.invocation(active, trigger, Input::Http { request, route_prefix: Arc::from(route_prefix) });
        let id = inv.id.clone();
        let result = self.dispatch(active, inv).await.and_then(|outcome| match outcome {
            Outcome::Http(response) => Ok(response),
            Outcome::Event { .. } => {
                Err(InvokeError::new(wisp_core::ErrorClass::Internal, "an HTTP invocation produced an event outcome"))
            }
        });
        (id, result)
    }

    /// One delivery attempt of an event to `active`, as invocation `id` (every attempt of an asynchronous
    /// invocation has its id): the same dispatch as HTTP — admission, record, report — with the event as
    /// input. A deadline of `timeout_ms` from now.
    pub async fn invoke_event(
        &self,
        active: &Arc<Active>,
        trigger: Trigger,
        id: Arc<str>,
        delivery: wisp_wasm_host::EventDelivery,
    ) -> Result<Outcome, InvokeError> {
        let mut inv = self.invocation::<http_body_util::Full<Bytes>>(active, trigger, Input::Event(delivery));
        inv.id = id;
        self.dispatch(active, inv).await
    }

    /// The one dispatch entry of every invocation — HTTP requests, API invokes and (later) trigger events:
    /// admission (the function's gate and the node's capacity), the invocation record, and the report when
    /// the guest is done.
    pub async fn dispatch<B>(&self, active: &Arc<Active>, inv: Invocation<B>) -> Result<Outcome, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let Invocation { id, trigger, input, deadline, .. } = inv;
        active.counters.invocations.fetch_add(1, Ordering::Relaxed);
        let route_prefix = match &input {
            Input::Http { route_prefix, .. } => route_prefix.clone(),
            Input::Event(_) => Arc::from("/"),
        };
        let ctx = InvocationCtx { id: id.clone(), route_prefix, deadline, ..active.ctx.clone() };
        let records = active.records.clone();
        let counters = active.counters.clone();
        let revision = wisp_core::spec::short_id(&active.record.revision.id).to_string();
        let key = active.record.key.clone();
        let at_ms = now_ms();
        let arrived = std::time::Instant::now();
        let observers = self.observers.load_full();
        let span = invocation_span(active, trigger, &id, &revision);
        let traced = span.clone();
        let record = move |report: Report, queue_us: u64| {
            let (status, error) = match &report.outcome {
                Ok(s) => (*s, None),
                Err(e) => (e.class.http_status(), Some(records::cap_text(e.message.clone(), records::MAX_ERROR_BYTES))),
            };
            if !traced.is_disabled() {
                traced.record("faas.coldstart", report.cold);
                traced.record("http.response.status_code", status);
                if let Err(e) = &report.outcome {
                    traced.record("error.type", e.class.code());
                    traced.record("otel.status_code", "error");
                }
            }
            if let Some(e) = &error {
                tracing::warn!(function = %key, invocation = %report.id, status, error = %e, "invocation failed");
            }
            let rec = InvocationRecord {
                id: report.id.to_string(),
                trigger: std::borrow::Cow::Borrowed(trigger.as_str()),
                at_ms,
                revision,
                status,
                error,
                cold: report.cold,
                queue_us,
                instantiate_us: report.phases.instantiate.as_micros() as u64,
                init_us: report.phases.init.as_micros() as u64,
                handler_us: report.phases.handler.as_micros() as u64,
                response_us: report.phases.response.as_micros() as u64,
                duration_us: arrived.elapsed().as_micros() as u64,
                logs: String::from_utf8_lossy(&report.logs.bytes).into_owned(),
                logs_truncated: report.logs.truncated,
                peak_memory_bytes: report.usage.peak_memory_bytes,
                egress_bytes: report.usage.egress_bytes,
                wall_us: report.usage.wall.as_micros() as u64,
                cpu_us: report.usage.cpu.as_micros() as u64,
                memory_limit_bytes: report.usage.memory_limit_bytes,
                bytes_in: report.usage.bytes_in,
                bytes_out: report.usage.bytes_out,
                services: report.usage.services,
            };
            if rec.cold {
                counters.cold_starts.fetch_add(1, Ordering::Relaxed);
            }
            let rec = records.push(rec);
            for o in observers.iter() {
                o.observe(&key, &rec);
            }
        };
        let admission = active.gate.admit().instrument(tracing::info_span!(parent: &span, "admission")).await;
        let queue_us = arrived.elapsed().as_micros() as u64;
        let admission = match admission {
            Ok(a) => a,
            Err(e) => {
                let report = Report {
                    id: id.clone(),
                    outcome: Err(e.clone()),
                    phases: Default::default(),
                    cold: false,
                    logs: Default::default(),
                    usage: Default::default(),
                };
                record(report, queue_us);
                return Err(e);
            }
        };
        // The permits are released when the guest is done: with the report.
        let sink: wisp_wasm_host::ReportSink = Box::new(move |report| {
            record(report, queue_us);
            drop(admission);
        });
        active.code.run(input, ctx, sink, &active.pool).instrument(span).await
    }
}

/// The span of one invocation (a child of what started it: the request's span, an event delivery's): who
/// was invoked, by what and as which invocation; cold or warm, the status and the error class are recorded
/// when it reports. Bounded attributes only — never input, output or configuration.
fn invocation_span(active: &Active, trigger: Trigger, id: &str, revision: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "invocation",
        otel.name = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        wisp.namespace = %active.namespace,
        faas.name = %active.ctx.function,
        faas.version = revision,
        faas.trigger = wisp_wasm_host::trace::faas_trigger(trigger),
        wisp.trigger = trigger.as_str(),
        faas.invocation_id = id,
        faas.coldstart = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("invoke {}/{}", active.namespace, active.ctx.function).as_str());
    }
    span
}
