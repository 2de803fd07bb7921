//! Asynchronous invocation (DESIGN §6): events are accepted only once durable in the queue
//! ([`wisp_store::queue::QueueStore`]), delivered at least once to their function through the scheduler's
//! one dispatch entry, retried with exponential backoff and full jitter, and — when they fail for good —
//! kept in the dead-letter queue, inspectable and redrivable. Destinations get a record of each outcome.
//!
//! Invariants: [`Events::accept`] returns an id only after the enqueue committed; an event leaves the queue
//! only by a settlement after its delivery (or a purge); wisp's own throttling (admission, capacity)
//! re-queues without spending an attempt.

#![warn(missing_docs)]

use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument;
use wisp_core::events::{EventConfig, Verdict, verdict};
use wisp_core::invocation::{Event, Trigger};
use wisp_core::{ErrorClass, FunctionKey};
use wisp_scheduler::{Active, Scheduler, cap_text};
use wisp_store::queue::{Enqueued, Info, Leased, NewEvent, QueueStore, Settle, State};
use wisp_wasm_host::{EventDelivery, Outcome};

/// How long a claim holds an event before another claimant may take it (a crashed node's events come
/// back after this; on one node they come back at the next start).
pub const LEASE_MS: u64 = 15 * 60 * 1000;
/// Most deliveries running at once on this node (over all functions).
pub const MAX_DELIVERIES: usize = 1024;
/// Succeeded and failed invocations are kept this long (and deduplicated against while kept).
pub const KEEP_DONE_MS: u64 = 24 * 3600 * 1000;
/// Dead letters are kept this long.
pub const KEEP_DEAD_MS: u64 = 14 * 24 * 3600 * 1000;
/// Failure text kept with an invocation (`wisperrordata`).
pub const MAX_ERROR_BYTES: usize = 4096;
/// How long a delivery put off by wisp's own admission waits before it is tried again.
pub const THROTTLE_DELAY_MS: u64 = 1000;

/// Why an event was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AcceptError {
    /// The class (decides the HTTP status: 404, 413, 429, 503, 500).
    pub class: ErrorClass,
    /// What was wrong and what to do.
    pub message: String,
}

impl AcceptError {
    fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        AcceptError { class, message: message.into() }
    }
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// The invocation id.
    pub id: String,
    /// Whether it was a duplicate of an invocation kept already (the id is that invocation's).
    pub duplicate: bool,
}

/// An event as stored: its data apart, its attributes as the JSON of the [`Event`] without data.
fn event_of(attrs: &[u8], data: Vec<u8>) -> Option<Event> {
    let mut event: Event = serde_json::from_slice(attrs).ok()?;
    event.data = data;
    Some(event)
}

/// What the API shows of one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationView {
    /// Its id.
    pub id: String,
    /// The function's namespace.
    pub namespace: String,
    /// The function's name.
    pub function: String,
    /// `queued`, `running`, `succeeded`, `failed` or `dead_lettered`.
    pub state: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// Deliveries put off by wisp's own admission (not attempts).
    pub throttled: u32,
    /// Accepted (or redriven), unix ms.
    pub created_ms: u64,
    /// Last change, unix ms.
    pub updated_ms: u64,
    /// Next attempt not before (queued only), unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_ms: Option<u64>,
    /// The last handler status.
    pub status: Option<u16>,
    /// Why it failed for good (`wisperrorcode`).
    pub error_code: Option<String>,
    /// The last failure (`wisperrordata`).
    pub error: Option<String>,
    /// The start of the last response body (UTF-8, lossy).
    pub result: String,
    /// The event's attributes.
    pub event: serde_json::Value,
    /// The event's data (UTF-8, lossy; at most 64 KiB shown).
    pub data: String,
}

fn lossy(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

impl From<Info> for InvocationView {
    fn from(i: Info) -> Self {
        let (namespace, function) = i.function.split_once('/').unwrap_or(("", &i.function));
        InvocationView {
            id: i.id.clone(),
            namespace: namespace.to_string(),
            function: function.to_string(),
            state: i.state.as_str(),
            attempts: i.attempts,
            throttled: i.throttled,
            created_ms: i.created_ms,
            updated_ms: i.updated_ms,
            next_attempt_ms: (i.state == State::Queued).then_some(i.not_before_ms),
            status: i.status,
            error_code: i.error_code,
            error: i.error,
            result: lossy(&i.result, wisp_wasm_host::EVENT_RESULT_BYTES),
            event: serde_json::from_slice(&i.attrs).unwrap_or(serde_json::Value::Null),
            data: lossy(&i.data, 64 * 1024),
        }
    }
}

fn store_key(key: &FunctionKey) -> String {
    format!("{}/{}", key.namespace, key.name)
}

fn parse_key(s: &str) -> Option<FunctionKey> {
    let (ns, name) = s.split_once('/')?;
    Some(FunctionKey { namespace: wisp_core::Name::new(ns).ok()?, name: wisp_core::Name::new(name).ok()? })
}

use wisp_store::now_ms;
use wisp_wasm_host::caps::messaging::{TopicSlot, Topics};

/// Per-function delivery state on this node.
#[derive(Default)]
struct FunctionState {
    /// Events accepted and not yet settled for good (queued + running), for the queue-depth limit.
    pending: AtomicU64,
}

/// The node's asynchronous invocation service.
pub struct Events {
    queue: Arc<dyn QueueStore>,
    scheduler: Arc<Scheduler>,
    functions: Mutex<HashMap<String, Arc<FunctionState>>>,
    wake: tokio::sync::Notify,
    stopping: AtomicBool,
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    tasks: wisp_wasm_host::Tasks,
    /// Where destinations naming a topic (`on_failure = "topic:alerts"`) publish: the node's topic index (the
    /// triggers), which hands the record to every subscriber through [`Events::accept`].
    topics: TopicSlot,
}

impl Events {
    /// The service over `queue`, delivering through `scheduler`; deliveries run as `tasks` (the node's
    /// tracked background work, waited for at shutdown). Call [`Events::start`] to begin delivering.
    pub async fn new(
        queue: Arc<dyn QueueStore>,
        scheduler: Arc<Scheduler>,
        tasks: wisp_wasm_host::Tasks,
    ) -> Result<Arc<Events>, wisp_store::StoreError> {
        let mut functions = HashMap::new();
        for (f, n) in queue.pending().await? {
            functions.insert(f, Arc::new(FunctionState { pending: AtomicU64::new(n) }));
        }
        Ok(Arc::new(Events {
            queue,
            scheduler,
            functions: Mutex::new(functions),
            wake: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
            dispatcher: Mutex::new(None),
            tasks,
            topics: TopicSlot::default(),
        }))
    }

    /// Connects the topic index destinations publish to (once; held weakly: it holds this service).
    pub fn set_topics(&self, topics: std::sync::Weak<dyn Topics>) {
        self.topics.connect(topics);
    }

    fn state(&self, function: &str) -> Arc<FunctionState> {
        self.functions.lock().entry(function.to_string()).or_default().clone()
    }

    /// Accepts `event` for the active function `key`: checks it exists, the event's size and the queue
    /// depth, and returns the invocation id once the event is durable.
    pub async fn accept(&self, key: &FunctionKey, mut event: Event) -> Result<Accepted, AcceptError> {
        let Some(active) = self.scheduler.get(key) else {
            return Err(AcceptError::new(
                ErrorClass::NotFound,
                format!(
                    "no function `{}` in namespace `{}`: deploy it first (wisp ls lists what is deployed)",
                    key.name, key.namespace
                ),
            ));
        };
        let cfg = &active.record.events;
        carry_trace(&mut event);
        let data = std::mem::take(&mut event.data);
        let attrs = serde_json::to_vec(&event).expect("attributes serialise");
        let size = (attrs.len() + data.len()) as u64;
        if size > cfg.max_event_bytes {
            return Err(AcceptError::new(
                ErrorClass::PayloadTooLarge,
                format!(
                    "the event is {size} bytes; function `{}` accepts at most {} (events.max_event_bytes)",
                    key.name, cfg.max_event_bytes
                ),
            ));
        }
        if self.stopping.load(Ordering::Relaxed) {
            return Err(AcceptError::new(ErrorClass::Unavailable, "the node is shutting down"));
        }
        let function = store_key(key);
        let state = self.state(&function);
        if state.pending.load(Ordering::Relaxed) >= u64::from(cfg.max_queue_depth) {
            return Err(AcceptError::new(
                ErrorClass::Overloaded,
                format!(
                    "function `{}` has {} events waiting (events.max_queue_depth): retry later",
                    key.name, cfg.max_queue_depth
                ),
            ));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let new = NewEvent {
            id: id.clone(),
            function,
            source: event.source.clone(),
            event_id: event.id.clone(),
            attrs,
            data,
        };
        let out = self.queue.enqueue(vec![new]).await.map_err(|e| {
            tracing::error!(function = %key, error = %e, "cannot enqueue an event");
            AcceptError::new(ErrorClass::Internal, "the event could not be stored; nothing was accepted")
        })?;
        match out.into_iter().next() {
            Some(Enqueued::Duplicate(existing)) => Ok(Accepted { id: existing, duplicate: true }),
            _ => {
                state.pending.fetch_add(1, Ordering::Relaxed);
                self.wake.notify_one();
                Ok(Accepted { id, duplicate: false })
            }
        }
    }

    /// One invocation by id.
    pub async fn get(&self, id: &str) -> Result<Option<InvocationView>, wisp_store::StoreError> {
        Ok(self.queue.get(id).await?.map(InvocationView::from))
    }

    /// Invocations of `key` in `state`, oldest first.
    pub async fn list(
        &self,
        key: &FunctionKey,
        state: State,
        limit: usize,
    ) -> Result<Vec<InvocationView>, wisp_store::StoreError> {
        Ok(self.queue.list(&store_key(key), state, limit).await?.into_iter().map(InvocationView::from).collect())
    }

    /// Queues dead letters of `key` again (`ids`, or all) with fresh attempts. Returns how many.
    pub async fn redrive(&self, key: &FunctionKey, ids: Option<Vec<String>>) -> Result<usize, wisp_store::StoreError> {
        let function = store_key(key);
        let n = self.queue.redrive(&function, ids, now_ms()).await?;
        self.state(&function).pending.fetch_add(n as u64, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(n)
    }

    /// Deletes dead letters of `key` (`ids`, or all). Returns how many.
    pub async fn purge(&self, key: &FunctionKey, ids: Option<Vec<String>>) -> Result<usize, wisp_store::StoreError> {
        self.queue.purge(&store_key(key), ids).await
    }

    /// Starts delivering: a dispatcher task claims due events and runs each delivery as a tracked task.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        let handle = tokio::spawn(async move { me.dispatch_loop().await });
        *self.dispatcher.lock() = Some(handle);
    }

    /// Stops claiming and accepting (deliveries running now finish; claimed events not started yet are
    /// queued again at the next start).
    pub fn shut_down(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(h) = self.dispatcher.lock().take() {
            h.abort();
        }
    }

    async fn dispatch_loop(self: Arc<Self>) {
        // Claimed events waiting for a free slot of their function's `events.max_concurrency`.
        let backlog: Arc<Mutex<HashMap<String, VecDeque<Leased>>>> = Default::default();
        let running: Arc<Mutex<HashMap<String, usize>>> = Default::default();
        let total = Arc::new(AtomicU64::new(0));
        let mut last_expire = 0u64;
        loop {
            let now = now_ms();
            if now.saturating_sub(last_expire) > 600_000 {
                last_expire = now;
                match self.queue.expire(now.saturating_sub(KEEP_DONE_MS), now.saturating_sub(KEEP_DEAD_MS)).await {
                    Ok(n) if n > 0 => tracing::info!(invocations = n, "expired settled asynchronous invocations"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot expire settled invocations"),
                }
            }
            // Start what the backlog allows.
            self.start_ready(&backlog, &running, &total);
            let free = MAX_DELIVERIES.saturating_sub(total.load(Ordering::Relaxed) as usize);
            let backlog_len: usize = backlog.lock().values().map(VecDeque::len).sum();
            let mut claimed = 0;
            let mut asked = false;
            if free > 0 && backlog_len < MAX_DELIVERIES {
                // Each function with events pending and free slots asks for as many as it can start;
                // functions with claimed events still waiting are skipped.
                let wants: Vec<(String, usize)> = {
                    let b = backlog.lock();
                    let r = running.lock();
                    let mut budget = free.min(256);
                    let mut wants = Vec::new();
                    for (function, state) in self.functions.lock().iter() {
                        if budget == 0 {
                            break;
                        }
                        if state.pending.load(Ordering::Relaxed) == 0 || b.get(function).is_some_and(|q| !q.is_empty())
                        {
                            continue;
                        }
                        let limit = self.max_concurrency(function);
                        let n = limit.saturating_sub(r.get(function).copied().unwrap_or(0)).min(budget);
                        if n > 0 {
                            budget -= n;
                            wants.push((function.clone(), n));
                        }
                    }
                    wants
                };
                asked = !wants.is_empty();
                let result = if asked { self.queue.claim(now, LEASE_MS, wants).await } else { Ok(Vec::new()) };
                match result {
                    Ok(events) => {
                        claimed = events.len();
                        let mut b = backlog.lock();
                        for e in events {
                            b.entry(e.function.clone()).or_default().push_back(e);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot claim events"),
                }
                self.start_ready(&backlog, &running, &total);
            }
            if claimed > 0 {
                continue;
            }
            // Nothing claimed. With every function that has events at its limit (or claimed events waiting
            // for a slot), only a delivery's end or an accept can change that; otherwise sleep until the next
            // event is due, something is accepted or a delivery ends.
            // (Nobody asked: every function with pending events is at its concurrency limit.)
            let waiting = !asked || backlog.lock().values().any(|q| !q.is_empty());
            let wait = if waiting { Ok(None) } else { self.queue.next_due_ms().await };
            let wait = match wait {
                Ok(Some(due)) => due.saturating_sub(now_ms()).clamp(1, 1000),
                Ok(None) => 1000,
                Err(_) => 1000,
            };
            let _ = tokio::time::timeout(Duration::from_millis(wait), self.wake.notified()).await;
        }
    }

    /// `events.max_concurrency` of `function` (`<ns>/<name>`); 1 for one no longer deployed (its events are
    /// dead-lettered one by one).
    fn max_concurrency(&self, function: &str) -> usize {
        parse_key(function).and_then(|k| self.scheduler.get(&k)).map_or(1, |a| a.record.events.max_concurrency as usize)
    }

    fn start_ready(
        self: &Arc<Self>,
        backlog: &Arc<Mutex<HashMap<String, VecDeque<Leased>>>>,
        running: &Arc<Mutex<HashMap<String, usize>>>,
        total: &Arc<AtomicU64>,
    ) {
        let mut b = backlog.lock();
        let mut r = running.lock();
        for (function, queue) in b.iter_mut() {
            let limit = self.max_concurrency(function);
            let n = r.entry(function.clone()).or_default();
            while *n < limit && (total.load(Ordering::Relaxed) as usize) < MAX_DELIVERIES {
                let Some(leased) = queue.pop_front() else { break };
                *n += 1;
                total.fetch_add(1, Ordering::Relaxed);
                let me = self.clone();
                let running = running.clone();
                let total = total.clone();
                let function = function.clone();
                self.tasks.spawn(async move {
                    me.deliver(leased).await;
                    if let Some(n) = running.lock().get_mut(&function) {
                        *n = n.saturating_sub(1);
                    }
                    total.fetch_sub(1, Ordering::Relaxed);
                    me.wake.notify_one();
                });
            }
        }
        b.retain(|_, q| !q.is_empty());
    }

    /// One delivery attempt of a claimed event, and its settlement.
    async fn deliver(&self, leased: Leased) {
        let now = now_ms();
        let id = leased.id.clone();
        let function = leased.function.clone();
        let settle = self.attempt(leased, now).await;
        let done = !matches!(settle, Settle::Retry { .. });
        if let Err(e) = self.queue.settle(&id, settle, now_ms()).await {
            // Unsettled, it stays claimed and is delivered again once its lease runs out (or at restart).
            tracing::error!(invocation = %id, error = %e, "cannot settle an event");
            return;
        }
        if done {
            let state = self.state(&function);
            let _ = state.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
        }
    }

    async fn attempt(&self, leased: Leased, now: u64) -> Settle {
        let fail = |dead_letter: bool, spent: bool, code: &str, error: String, status, body| Settle::Failed {
            dead_letter,
            spent,
            code: code.to_string(),
            error: cap_text(error, MAX_ERROR_BYTES),
            status,
            body,
        };
        let Some(key) = parse_key(&leased.function) else {
            return fail(
                true,
                false,
                "FunctionNotFound",
                format!("unusable function key `{}`", leased.function),
                None,
                vec![],
            );
        };
        let Some(active) = self.scheduler.get(&key) else {
            return fail(
                true,
                false,
                "FunctionNotFound",
                format!("function `{}` is not deployed: redeploy it, then redrive", key.name),
                None,
                vec![],
            );
        };
        let cfg = active.record.events.clone();
        let age_ms = now.saturating_sub(leased.created_ms);
        if age_ms > cfg.max_event_age_seconds * 1000 {
            let error = format!(
                "the event is {}s old; events.max_event_age_seconds = {}",
                age_ms / 1000,
                cfg.max_event_age_seconds
            );
            let settle = fail(cfg.dead_letter, false, "EventAgeExceeded", error, None, vec![]);
            self.destination(&active, &cfg, &leased, &settle).await;
            return settle;
        }
        let Some(event) = event_of(&leased.attrs, leased.data.clone()) else {
            return fail(true, false, "InvalidEvent", "the stored event cannot be read".into(), None, vec![]);
        };
        let attempt = leased.attempts + 1;
        let trigger =
            Trigger::of_event(event.extensions.get(wisp_core::invocation::TRIGGER_EXTENSION).map(String::as_str));
        let span = delivery_span(&event, &leased.id, attempt);
        let delivery = EventDelivery { event: Arc::new(event), attempt, path: Arc::from(cfg.path.as_str()) };
        let result = self
            .scheduler
            .invoke_event(&active, trigger, Arc::from(leased.id.as_str()), delivery)
            .instrument(span)
            .await;
        let retry = |status: Option<u16>, error: String, retry_after_ms: Option<u64>, body: Vec<u8>| {
            if attempt > cfg.retry_attempts {
                let error =
                    format!("{error} (after {attempt} attempts; events.retry_attempts = {})", cfg.retry_attempts);
                return fail(cfg.dead_letter, true, "RetriesExhausted", error, status, body);
            }
            let backoff = cfg.backoff_ms(attempt, rand::random::<f64>());
            let delay = retry_after_ms.map_or(backoff, |r| r.min(cfg.backoff_max_ms));
            Settle::Retry { at_ms: now_ms() + delay, spent: true, status, error: cap_text(error, MAX_ERROR_BYTES) }
        };
        let settle = match result {
            Ok(Outcome::Event { status, retry_after_ms, body }) => match verdict(status) {
                Verdict::Success => Settle::Succeeded { status, body: body.to_vec() },
                Verdict::Terminal => fail(
                    cfg.dead_letter,
                    true,
                    "HandlerRejected",
                    format!("the handler answered {status}: not retried (4xx other than 408/429)"),
                    Some(status),
                    body.to_vec(),
                ),
                Verdict::Retryable => {
                    let after = if matches!(status, 429 | 503) { retry_after_ms } else { None };
                    retry(Some(status), format!("the handler answered {status}"), after, body.to_vec())
                }
            },
            Ok(Outcome::Http(_)) => {
                fail(true, true, "Internal", "an event delivery produced an HTTP outcome".into(), None, vec![])
            }
            // wisp's own admission or capacity: the attempt is not spent.
            Err(e) if matches!(e.class, ErrorClass::Overloaded | ErrorClass::Unavailable | ErrorClass::Capacity) => {
                Settle::Retry {
                    at_ms: now_ms() + THROTTLE_DELAY_MS,
                    spent: false,
                    status: None,
                    error: cap_text(format!("throttled by the node: {}", e.message), MAX_ERROR_BYTES),
                }
            }
            Err(e) => retry(None, format!("{}: {}", e.class.code(), e.message), None, vec![]),
        };
        self.destination(&active, &cfg, &leased, &settle).await;
        settle
    }

    /// Sends a record of a final outcome to the function's destination (`on_success` / `on_failure`), as an
    /// event of its own: durable before the original is settled, deduplicated by the invocation id.
    async fn destination(&self, active: &Active, cfg: &EventConfig, leased: &Leased, settle: &Settle) {
        let (target, condition, ty) = match settle {
            Settle::Succeeded { .. } => (&cfg.on_success, "Success", "dev.wisp.invocation.success"),
            Settle::Failed { code, .. } if code == "EventAgeExceeded" => {
                (&cfg.on_failure, "EventAgeExceeded", "dev.wisp.invocation.failure")
            }
            Settle::Failed { .. } => (&cfg.on_failure, "RetriesExhausted", "dev.wisp.invocation.failure"),
            Settle::Retry { .. } => return,
        };
        let Some(target) = target else { return };
        let (status, error, body, attempts) = match settle {
            Settle::Succeeded { status, body } => (Some(*status), None, body.as_slice(), leased.attempts + 1),
            Settle::Failed { status, error, body, spent, code, .. } => {
                (*status, Some(format!("{code}: {error}")), body.as_slice(), leased.attempts + u32::from(*spent))
            }
            Settle::Retry { .. } => return,
        };
        let record = serde_json::json!({
            "condition": condition,
            "invocation_id": leased.id,
            "namespace": active.record.key.namespace.as_str(),
            "function": active.record.key.name.as_str(),
            "attempts": attempts,
            "status": status,
            "error": error,
            "request": {
                "event": serde_json::from_slice::<serde_json::Value>(&leased.attrs).unwrap_or_default(),
                "data": lossy(&leased.data, 64 * 1024),
            },
            "response": { "body": lossy(body, 64 * 1024) },
        });
        let event = Event {
            id: format!("{}-{}", leased.id, condition.to_ascii_lowercase()),
            source: format!(
                "/_wisp/v1/namespaces/{}/functions/{}",
                active.record.key.namespace, active.record.key.name
            ),
            ty: ty.to_string(),
            subject: Some(leased.id.clone()),
            time_ms: Some(now_ms()),
            data_content_type: Some("application/json".into()),
            data: serde_json::to_vec(&record).expect("json"),
            extensions: Default::default(),
        };
        let namespace = &active.record.key.namespace;
        let sent = match wisp_core::events::destination(target) {
            wisp_core::events::Destination::Topic(topic) => match self.topics.get() {
                Some(topics) => topics
                    .publish(namespace.as_str(), topic, event)
                    .await
                    .map(drop)
                    .map_err(|e| AcceptError::new(e.class, e.message)),
                None => Err(AcceptError::new(ErrorClass::Unavailable, "no topic index on this node")),
            },
            wisp_core::events::Destination::Function(name) => match wisp_core::Name::new(name) {
                Ok(name) => self.accept(&FunctionKey { namespace: namespace.clone(), name }, event).await.map(drop),
                Err(e) => Err(AcceptError::new(ErrorClass::InvalidInput, e.to_string())),
            },
        };
        if let Err(e) = sent {
            tracing::warn!(function = %active.record.key, destination = %target, error = %e, "cannot send the invocation record to its destination");
        }
    }
}

/// Gives `event` the trace it was accepted in, as the CloudEvents distributed-tracing extension
/// (`traceparent`, `tracestate`), so each delivery attempt continues it — unless the event already carries one
/// (its producer's trace comes first). Only when spans are exported.
fn carry_trace(event: &mut Event) {
    use wisp_core::trace::{TRACEPARENT, TRACESTATE};
    if !wisp_wasm_host::trace::enabled() || event.extensions.contains_key(TRACEPARENT) {
        return;
    }
    if let Some(cx) = wisp_wasm_host::trace::current() {
        event.extensions.insert(TRACEPARENT.into(), cx.parent.to_string());
        match cx.state {
            Some(state) => event.extensions.insert(TRACESTATE.into(), state),
            None => event.extensions.remove(TRACESTATE),
        };
    }
}

/// The span of one delivery attempt: a child of the span the event was accepted in (its `traceparent`
/// extension), so every attempt, retries too, continues the trace of the request that enqueued it; the
/// invocation's span is its child.
fn delivery_span(event: &Event, id: &str, attempt: u32) -> tracing::Span {
    use wisp_core::trace::{TRACEPARENT, TRACESTATE, TraceContext};
    let span = tracing::info_span!(
        "deliver",
        otel.kind = "consumer",
        faas.invocation_id = id,
        wisp.attempt = attempt,
        cloudevents.event_type = &event.ty[..event.ty.floor_char_boundary(128)],
    );
    let ext = |k: &str| event.extensions.get(k).map(String::as_str);
    if !span.is_disabled()
        && let Some(remote) = TraceContext::from_extensions(ext(TRACEPARENT), ext(TRACESTATE))
    {
        wisp_wasm_host::trace::continue_from(&span, &remote);
    }
    span
}

/// The events an HTTP request to the async invocation API carries: a structured CloudEvent
/// (`application/cloudevents+json`), a batch (`application/cloudevents-batch+json`), a binary-mode event
/// (`ce-specversion` header), or — anything else — the body as the data of a new event
/// (`type = dev.wisp.invoke`, a fresh id, the function's API path as `source`).
pub fn events_from_request(
    key: &FunctionKey,
    headers: &http::HeaderMap,
    body: Vec<u8>,
) -> Result<Vec<Event>, AcceptError> {
    let bad = |e: wisp_core::events::CloudEventError| AcceptError::new(ErrorClass::InvalidInput, e.0);
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if is_batch(headers) {
        return wisp_core::events::from_batch(&body).map_err(bad);
    }
    if media_type(headers) == "application/cloudevents+json" {
        return Ok(vec![wisp_core::events::from_structured(&body).map_err(bad)?]);
    }
    if headers.contains_key("ce-specversion") {
        let pairs: Vec<(&str, &str)> =
            headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
        if let Some(e) = wisp_core::events::from_binary(pairs, body).map_err(bad)? {
            return Ok(vec![e]);
        }
        return Err(AcceptError::new(ErrorClass::InvalidInput, "unreadable binary-mode CloudEvent"));
    }
    Ok(vec![Event {
        id: uuid::Uuid::now_v7().simple().to_string(),
        source: format!("/_wisp/v1/namespaces/{}/functions/{}", key.namespace, key.name),
        ty: "dev.wisp.invoke".into(),
        subject: None,
        time_ms: Some(now_ms()),
        data_content_type: (!content_type.is_empty()).then(|| content_type.to_string()),
        data: body,
        extensions: Default::default(),
    }])
}

/// The request's media type (`content-type` without parameters), lowercase.
fn media_type(headers: &http::HeaderMap) -> String {
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Whether the request carries a CloudEvent in any HTTP mode (binary, structured or batch).
pub fn is_cloudevent(headers: &http::HeaderMap) -> bool {
    let media = media_type(headers);
    headers.contains_key("ce-specversion")
        || media == "application/cloudevents+json"
        || media == "application/cloudevents-batch+json"
}

/// Whether the request carries a CloudEvents batch (`application/cloudevents-batch+json`): one invocation
/// per event, answered with the list.
pub fn is_batch(headers: &http::HeaderMap) -> bool {
    media_type(headers) == "application/cloudevents-batch+json"
}

/// Whether a request to a function's route asks to be queued as an event (`X-Wisp-Invocation-Type: Event`,
/// or AWS's `X-Amz-Invocation-Type: Event`).
pub fn wants_async(headers: &http::HeaderMap) -> bool {
    ["x-wisp-invocation-type", "x-amz-invocation-type"]
        .iter()
        .any(|h| headers.get(*h).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"event")))
}

impl Events {
    /// The function `key`'s largest accepted event, if it is active.
    pub fn max_event_bytes(&self, key: &FunctionKey) -> Option<u64> {
        self.scheduler.get(key).map(|a| a.record.events.max_event_bytes)
    }
}
