//! What starts an invocation, and the event input non-HTTP triggers deliver. Pure data.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A request on a route of the data plane.
    Http,
    /// `wisp invoke` / the control API's invoke endpoint.
    Api,
    /// An asynchronous invocation queued through the API (or a request with `X-Wisp-Invocation-Type: Event`).
    Event,
    /// A cron trigger's tick.
    Cron,
    /// A message on an internal topic.
    Topic,
    /// A Redis pub/sub message or stream entry.
    Redis,
    /// An MQTT message.
    Mqtt,
    /// A NATS (or JetStream) message.
    Nats,
    /// A webhook route's event.
    Webhook,
}

impl Trigger {
    /// Its name in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Api => "api",
            Trigger::Event => "event",
            Trigger::Cron => "cron",
            Trigger::Topic => "topic",
            Trigger::Redis => "redis",
            Trigger::Mqtt => "mqtt",
            Trigger::Nats => "nats",
            Trigger::Webhook => "webhook",
        }
    }

    /// Every trigger, in the order records name them.
    pub const ALL: [Trigger; 9] = [
        Trigger::Http,
        Trigger::Api,
        Trigger::Event,
        Trigger::Cron,
        Trigger::Topic,
        Trigger::Redis,
        Trigger::Mqtt,
        Trigger::Nats,
        Trigger::Webhook,
    ];

    /// The trigger named `name` (as [`Trigger::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What started a queued event: the kind its source tagged it with ([`TRIGGER_EXTENSION`]), else an
    /// asynchronous invocation (only kinds of event sources count; anything else a client sent is `event`).
    pub fn of_event(extension: Option<&str>) -> Trigger {
        match extension.and_then(Trigger::from_name) {
            Some(
                t
                @ (Trigger::Cron | Trigger::Topic | Trigger::Redis | Trigger::Mqtt | Trigger::Nats | Trigger::Webhook),
            ) => t,
            _ => Trigger::Event,
        }
    }
}

/// The CloudEvents extension attribute an event source tags its events with (`cron`, `topic`, `redis`, `mqtt`,
/// `nats`, `webhook`), so each invocation's record says which kind of trigger started it.
pub const TRIGGER_EXTENSION: &str = "wisptrigger";

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event, CloudEvents-shaped (spec 1.0 core attributes): the input of an invocation that is not an HTTP
/// request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per `source`.
    pub id: String,
    /// Where it happened (URI-reference), e.g. `wisp:cron/nightly`.
    pub source: String,
    /// What happened, e.g. `dev.wisp.cron.tick`.
    #[serde(rename = "type")]
    pub ty: String,
    /// What it is about, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When, unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// Media type of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_content_type: Option<String>,
    /// The payload (left out when empty, so the attributes alone serialise as a small JSON object).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
    /// Extension attributes (lowercase names), e.g. `traceparent`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extensions: std::collections::BTreeMap<String, String>,
}
