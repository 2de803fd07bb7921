//! Event sources (DESIGN §6): cron schedules, internal topics, Redis pub/sub and Streams, MQTT, NATS core and
//! JetStream. Each one turns what arrives into an [`Event`] and hands it to [`Events::accept`], the same
//! durable entry the asynchronous invocation API uses, so retries, dead letters and destinations are the
//! same for every source. Sources that can acknowledge (Redis Streams, MQTT QoS 1, JetStream) do so only after
//! `accept` returned, i.e. after the event is durable; the others are at-most-once at the source.
//!
//! [`Triggers::apply`] runs a function's triggers as its record says (started, stopped or kept by their
//! stable id); every broker connection reconnects with backoff and reports its state in [`Triggers::status`].
//! Webhook triggers are served by the gateway (they are routes); here they only report.

#![warn(missing_docs)]

mod brokers;
mod cron;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use wisp_core::invocation::Event;
use wisp_core::trigger::TriggerSpec;
use wisp_core::{ErrorClass, FunctionKey, FunctionRecord};
use wisp_events::{AcceptError, Accepted, Events};
use wisp_store::KvStore;

/// The kv bucket holding trigger state (a cron trigger's last tick).
pub const STATE_BUCKET: &str = "triggers";

/// What one trigger reports.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TriggerStatus {
    /// The function's namespace.
    pub namespace: String,
    /// The function.
    pub function: String,
    /// The trigger's stable id.
    pub id: String,
    /// `cron`, `topic`, `redis`, `mqtt`, `nats` or `webhook`.
    pub kind: String,
    /// What it listens to (no secrets).
    pub source: String,
    /// `connecting`, `connected`, `reconnecting`, `scheduled` or `listening`.
    pub state: String,
    /// The last error, while reconnecting (and kept after, until the next one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Messages (or ticks) turned into accepted events.
    pub messages_in: u64,
    /// Messages that could not be accepted for good (too large, malformed) and were dropped.
    pub rejected: u64,
    /// Successful connections made (more than 1: it reconnected).
    pub connects: u64,
    /// The last accepted message, unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_ms: Option<u64>,
    /// A cron trigger's next tick, unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_tick_ms: Option<u64>,
}

/// A running trigger's shared state: its status, updated by its task.
pub(crate) struct Live {
    status: Mutex<TriggerStatus>,
}

impl Live {
    pub(crate) fn set_state(&self, state: &str) {
        let mut s = self.status.lock();
        if state == "connected" && s.state != "connected" {
            s.connects += 1;
        }
        s.state = state.to_string();
    }

    pub(crate) fn failed(&self, error: impl std::fmt::Display) {
        let mut s = self.status.lock();
        s.state = "reconnecting".into();
        s.last_error = Some(error.to_string());
    }

    pub(crate) fn received(&self) {
        let mut s = self.status.lock();
        s.messages_in += 1;
        s.last_message_ms = Some(now_ms());
    }

    pub(crate) fn rejected(&self, error: impl std::fmt::Display) {
        let mut s = self.status.lock();
        s.rejected += 1;
        s.last_error = Some(error.to_string());
    }

    pub(crate) fn next_tick(&self, ms: Option<u64>) {
        self.status.lock().next_tick_ms = ms;
    }
}

/// What a source task gets: where to send events and how to report.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub key: FunctionKey,
    pub id: String,
    /// The trigger's kind, tagged on every event it delivers (`wisp_core::invocation::TRIGGER_EXTENSION`).
    pub kind: &'static str,
    pub events: Arc<Events>,
    pub kv: Arc<dyn KvStore>,
    pub live: Arc<Live>,
}

/// How an event fared at [`Ctx::deliver`].
pub(crate) enum Delivered {
    /// Durable (or a duplicate of a kept one): acknowledge the source.
    Accepted,
    /// Cannot ever be accepted (too large, malformed): acknowledge, it was dropped and counted.
    Rejected,
}

impl Ctx {
    /// Accepts `event`, retrying with backoff while the refusal is temporary (queue full, node busy, storage
    /// error). Returns once it is durable or rejected for good. Cancelled with the trigger's task.
    pub async fn deliver(&self, mut event: Event) -> Delivered {
        event.extensions.insert(wisp_core::invocation::TRIGGER_EXTENSION.to_string(), self.kind.to_string());
        let mut backoff = Backoff::new();
        loop {
            match self.events.accept(&self.key, event.clone()).await {
                Ok(_) => {
                    self.live.received();
                    return Delivered::Accepted;
                }
                Err(e) if matches!(e.class, ErrorClass::InvalidInput | ErrorClass::PayloadTooLarge) => {
                    tracing::warn!(function = %self.key, trigger = %self.id, error = %e, "event dropped: it cannot be accepted");
                    self.live.rejected(&e);
                    return Delivered::Rejected;
                }
                Err(e) => {
                    tracing::debug!(function = %self.key, trigger = %self.id, error = %e, "event not accepted yet; retrying");
                    self.live.status.lock().last_error = Some(e.message.clone());
                    backoff.wait().await;
                }
            }
        }
    }

    /// The event a source makes of a message.
    pub fn event(&self, source: String, ty: &str, subject: Option<String>, data: Vec<u8>) -> Event {
        Event {
            id: uuid::Uuid::now_v7().simple().to_string(),
            source,
            ty: ty.to_string(),
            subject,
            time_ms: Some(now_ms()),
            data_content_type: None,
            data,
            extensions: Default::default(),
        }
    }

    /// The default consumer name for brokers that keep a position per consumer.
    pub fn consumer_name(&self) -> String {
        format!("wisp-{}-{}", self.key.namespace, self.key.name)
    }
}

/// Reconnect (and retry) backoff: 100 ms doubling to 5 s, with jitter.
pub(crate) struct Backoff {
    next_ms: u64,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff { next_ms: 100 }
    }

    pub fn reset(&mut self) {
        self.next_ms = 100;
    }

    pub async fn wait(&mut self) {
        let ms = self.next_ms / 2 + rand_below(self.next_ms / 2 + 1);
        self.next_ms = (self.next_ms * 2).min(5000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn rand_below(n: u64) -> u64 {
    rand::random_range(0..n.max(1))
}

pub(crate) use wisp_store::now_ms;

struct Running {
    spec: TriggerSpec,
    live: Arc<Live>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The node's triggers.
pub struct Triggers {
    events: Arc<Events>,
    kv: Arc<dyn KvStore>,
    running: Mutex<HashMap<FunctionKey, HashMap<String, Running>>>,
    /// (namespace, topic) → subscribed functions.
    topics: Mutex<HashMap<(String, String), BTreeSet<FunctionKey>>>,
}

/// Takes `key` off every topic it subscribes to (dropping topics left without subscribers).
fn unsubscribe(topics: &mut HashMap<(String, String), BTreeSet<FunctionKey>>, key: &FunctionKey) {
    topics.retain(|_, subs| {
        subs.remove(key);
        !subs.is_empty()
    });
}

/// Checks what [`TriggerSpec::validate`] cannot: cron expressions and time zones parse.
pub fn check(triggers: &[TriggerSpec]) -> Result<(), String> {
    for (i, t) in triggers.iter().enumerate() {
        if let TriggerSpec::Cron(c) = t {
            cron::Schedule::parse(c).map_err(|e| format!("trigger {} (cron): {e}", i + 1))?;
        }
    }
    Ok(())
}

impl Triggers {
    /// Triggers feeding `events`; state (cron's last ticks) is kept in `kv`.
    pub fn new(events: Arc<Events>, kv: Arc<dyn KvStore>) -> Arc<Triggers> {
        Arc::new(Triggers { events, kv, running: Mutex::new(HashMap::new()), topics: Mutex::new(HashMap::new()) })
    }

    /// Runs `record`'s triggers: starts new ones, stops those no longer listed, keeps the rest running.
    pub fn apply(&self, record: &FunctionRecord) {
        let key = &record.key;
        let mut running = self.running.lock();
        let current = running.entry(key.clone()).or_default();
        let wanted: HashMap<String, &TriggerSpec> = record.triggers.iter().map(|t| (t.id(), t)).collect();
        let gone: Vec<Running> = current.extract_if(|id, _| !wanted.contains_key(id)).map(|(_, r)| r).collect();
        self.forget(key, gone);
        for (id, spec) in wanted {
            if current.contains_key(&id) {
                continue;
            }
            let live = Arc::new(Live {
                status: Mutex::new(TriggerStatus {
                    namespace: key.namespace.to_string(),
                    function: key.name.to_string(),
                    id: id.clone(),
                    kind: spec.kind().into(),
                    source: spec.describe(),
                    state: "connecting".into(),
                    ..Default::default()
                }),
            });
            let ctx = Ctx {
                key: key.clone(),
                id: id.clone(),
                kind: spec.kind(),
                events: self.events.clone(),
                kv: self.kv.clone(),
                live: live.clone(),
            };
            let task = match spec {
                TriggerSpec::Cron(c) => Some(tokio::spawn(cron::run(ctx, c.clone()))),
                TriggerSpec::Redis(r) => Some(tokio::spawn(brokers::redis(ctx, r.clone()))),
                TriggerSpec::Mqtt(m) => Some(tokio::spawn(brokers::mqtt(ctx, m.clone()))),
                TriggerSpec::Nats(n) => Some(tokio::spawn(brokers::nats(ctx, n.clone()))),
                TriggerSpec::Topic(_) | TriggerSpec::Webhook(_) => {
                    live.set_state("listening");
                    None
                }
            };
            current.insert(id, Running { spec: spec.clone(), live, task });
        }
        if current.is_empty() {
            running.remove(key);
        }
        drop(running);
        self.index_topics(key, record);
    }

    /// Drops the kept state of triggers that are gone (a cron trigger's last tick: one that comes back later
    /// starts from its next tick, not with a catch-up for the time it was away).
    fn forget(&self, key: &FunctionKey, gone: Vec<Running>) {
        let ids: Vec<String> = gone
            .iter()
            .filter(|r| matches!(r.spec, TriggerSpec::Cron(_)))
            .map(|r| r.live.status.lock().id.clone())
            .collect();
        drop(gone);
        if ids.is_empty() {
            return;
        }
        let (kv, key) = (self.kv.clone(), key.clone());
        tokio::spawn(async move {
            for id in ids {
                if let Err(e) = kv.delete(STATE_BUCKET, &cron::state_key(&key, &id), wisp_store::Expect::Any).await {
                    tracing::warn!(function = %key, error = %e, "cannot drop a removed cron trigger's last tick");
                }
            }
        });
    }

    /// Stops every trigger of `key`.
    pub fn remove(&self, key: &FunctionKey) {
        let gone: Vec<Running> = self.running.lock().remove(key).map(|m| m.into_values().collect()).unwrap_or_default();
        self.forget(key, gone);
        unsubscribe(&mut self.topics.lock(), key);
    }

    /// Stops every trigger (at shutdown).
    pub fn shut_down(&self) {
        self.running.lock().clear();
    }

    fn index_topics(&self, key: &FunctionKey, record: &FunctionRecord) {
        let mut topics = self.topics.lock();
        unsubscribe(&mut topics, key);
        for t in &record.triggers {
            if let TriggerSpec::Topic(t) = t {
                topics.entry((key.namespace.to_string(), t.topic.clone())).or_default().insert(key.clone());
            }
        }
    }

    /// Publishes `event` to `topic` in `namespace`: one durable invocation per subscribed function (each
    /// subscriber's queue is its cursor; one that subscribes later sees what is published from then on).
    /// Returns the subscribers and their invocation ids; none subscribed is not an error (nothing is kept).
    pub async fn publish(
        &self,
        namespace: &str,
        topic: &str,
        mut event: Event,
    ) -> Result<Vec<(FunctionKey, Accepted)>, AcceptError> {
        wisp_core::trigger::check_topic(topic)
            .map_err(|e| AcceptError { class: ErrorClass::InvalidInput, message: e })?;
        let subscribers: Vec<FunctionKey> = self
            .topics
            .lock()
            .get(&(namespace.to_string(), topic.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if event.subject.is_none() {
            event.subject = Some(topic.to_string());
        }
        event.extensions.insert(wisp_core::invocation::TRIGGER_EXTENSION.to_string(), "topic".to_string());
        let mut out = Vec::with_capacity(subscribers.len());
        for key in subscribers {
            let accepted = self.events.accept(&key, event.clone()).await?;
            self.note_topic(&key, topic);
            out.push((key, accepted));
        }
        Ok(out)
    }

    fn note_topic(&self, key: &FunctionKey, topic: &str) {
        self.note(key, |spec| matches!(spec, TriggerSpec::Topic(t) if t.topic == topic));
    }

    /// Counts an event accepted through a webhook route of `key`.
    pub fn note_webhook(&self, key: &FunctionKey, route: &wisp_core::RoutePattern) {
        self.note(key, |spec| matches!(spec, TriggerSpec::Webhook(w) if &w.route == route));
    }

    /// Counts a message in for `key`'s triggers that `is` picks (those without a task of their own).
    fn note(&self, key: &FunctionKey, is: impl Fn(&TriggerSpec) -> bool) {
        if let Some(fs) = self.running.lock().get(key) {
            for r in fs.values().filter(|r| is(&r.spec)) {
                r.live.received();
            }
        }
    }

    /// Every trigger's status, by function then kind.
    pub fn status(&self) -> Vec<TriggerStatus> {
        let mut all: Vec<TriggerStatus> =
            self.running.lock().values().flat_map(|fs| fs.values().map(|r| r.live.status.lock().clone())).collect();
        all.sort_by(|a, b| {
            (&a.namespace, &a.function, &a.kind, &a.id).cmp(&(&b.namespace, &b.function, &b.kind, &b.id))
        });
        all
    }
}

/// The topic index is where destinations and guests' `wasi:messaging` messages publish.
impl wisp_wasm_host::caps::messaging::Topics for Triggers {
    fn publish<'a>(
        &'a self,
        namespace: &'a str,
        topic: &'a str,
        event: Event,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, wisp_wasm_host::InvokeError>> + Send + 'a>>
    {
        Box::pin(async move {
            Triggers::publish(self, namespace, topic, event)
                .await
                .map(|delivered| delivered.len())
                .map_err(|e| wisp_wasm_host::InvokeError::new(e.class, e.message))
        })
    }
}
