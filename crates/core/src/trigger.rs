//! Triggers: the event sources a function subscribes to (DESIGN §6). Each feeds the same durable queue as the
//! asynchronous invocation API, so retries, dead letters and destinations are the same for all of them.
//!
//! ```toml
//! [[function.trigger]]
//! type = "cron"
//! schedule = "*/10 * * * * *"        # 5 fields, or 6 with seconds first
//! timezone = "Europe/Berlin"          # IANA zone, default UTC
//! missed = "latest"                   # after downtime: "latest" fires once, "skip" fires none
//!
//! [[function.trigger]]
//! type = "topic"                      # internal topic: `wisp publish orders -d …`
//! topic = "orders"
//!
//! [[function.trigger]]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//! stream = "orders"                   # Streams consumer group (acked after the enqueue), or
//! # channel = "orders"                # pub/sub (at-most-once at the source)
//!
//! [[function.trigger]]
//! type = "mqtt"
//! url = "mqtt://127.0.0.1:1883"
//! topic = "sensors/#"                 # QoS 1, acked after the enqueue
//!
//! [[function.trigger]]
//! type = "nats"
//! url = "nats://127.0.0.1:4222"
//! subject = "orders.>"                # core NATS, or with `stream` a JetStream consumer
//!
//! [[function.trigger]]
//! type = "webhook"
//! route = "/hooks/orders"             # public CloudEvents ingress on the data plane
//! secret = "…"                        # optional: HMAC-SHA256 of the body must be in `signature_header`
//! ```
//!
//! Pure: parsing the cron expression and the zone is the trigger runtime's (it owns those crates); here are
//! the shapes, the checks that need nothing but the text, and the stable trigger id.

use crate::RoutePattern;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One trigger of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TriggerSpec {
    /// A schedule.
    Cron(CronTrigger),
    /// An internal topic.
    Topic(TopicTrigger),
    /// Redis pub/sub or a Redis Stream.
    Redis(RedisTrigger),
    /// An MQTT topic filter.
    Mqtt(MqttTrigger),
    /// A NATS subject or a JetStream stream.
    Nats(NatsTrigger),
    /// A CloudEvents webhook route.
    Webhook(WebhookTrigger),
}

/// What a cron trigger does with ticks it missed while the node was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MissedTicks {
    /// Fire once for the latest missed tick (its data says how many were missed).
    #[default]
    Latest,
    /// Fire none; go on with the next tick.
    Skip,
}

/// `type = "cron"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// A 5-field expression, or 6 fields with seconds first.
    pub schedule: String,
    /// IANA time zone the schedule is read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What to do with ticks missed during downtime.
    #[serde(default)]
    pub missed: MissedTicks,
}

/// `type = "topic"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicTrigger {
    /// The topic in the function's namespace.
    pub topic: String,
}

/// Where a consumer that has no position yet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Messages added from now on.
    #[default]
    New,
    /// Everything the stream still holds.
    Earliest,
}

/// `type = "redis"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTrigger {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// A pub/sub channel (at-most-once at the source: Redis keeps nothing for a disconnected subscriber).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A stream read through a consumer group; entries are acked after the durable enqueue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The consumer group (default `wisp-<namespace>-<function>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where a new consumer group starts.
    #[serde(default)]
    pub start: StartAt,
}

/// `type = "mqtt"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTrigger {
    /// `mqtt://[user:password@]host[:port]`.
    pub url: String,
    /// A topic filter (`+` and `#` wildcards).
    pub topic: String,
    /// 1 (default: acked after the durable enqueue, at-least-once) or 0 (at-most-once).
    #[serde(default = "qos_1")]
    pub qos: u8,
}

fn qos_1() -> u8 {
    1
}

/// `type = "nats"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTrigger {
    /// `nats://[user:password@]host[:port]`.
    pub url: String,
    /// Core NATS: the subject (wildcards allowed). With `stream`: an optional filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Core NATS: a queue group, so several nodes share the messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// A JetStream stream, read by a durable pull consumer; messages are acked after the durable enqueue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The durable consumer's name (default `wisp-<namespace>-<function>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Where a new consumer starts.
    #[serde(default)]
    pub start: StartAt,
}

/// `type = "webhook"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// The route on the data plane (`/path` or `host/path`) that accepts events for the function.
    pub route: RoutePattern,
    /// A shared secret: requests must carry the HMAC-SHA256 of their body in `signature_header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The header holding the signature, as `sha256=<hex>` or bare hex (default `x-wisp-signature`;
    /// GitHub's is `x-hub-signature-256`).
    #[serde(default = "signature_header")]
    pub signature_header: String,
    /// Origins the CloudEvents abuse-protection handshake (OPTIONS) allows; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

fn signature_header() -> String {
    "x-wisp-signature".into()
}

/// Most triggers one function may have.
pub const MAX_TRIGGERS: usize = 32;

impl TriggerSpec {
    /// The trigger's kind, as written in `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerSpec::Cron(_) => "cron",
            TriggerSpec::Topic(_) => "topic",
            TriggerSpec::Redis(_) => "redis",
            TriggerSpec::Mqtt(_) => "mqtt",
            TriggerSpec::Nats(_) => "nats",
            TriggerSpec::Webhook(_) => "webhook",
        }
    }

    /// A stable id: the first 12 hex digits of sha256 over the trigger's JSON. The same settings keep
    /// their id (and the state kept under it, such as a cron trigger's last tick) across redeploys.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).expect("trigger serialises");
        hex::encode(&Sha256::digest(&json)[..6])
    }

    /// What it listens to, for people (no secrets: passwords in URLs are left out).
    pub fn describe(&self) -> String {
        match self {
            TriggerSpec::Cron(c) => {
                format!("cron `{}` {}", c.schedule, c.timezone.as_deref().unwrap_or("UTC"))
            }
            TriggerSpec::Topic(t) => format!("topic {}", t.topic),
            TriggerSpec::Redis(r) => match (&r.channel, &r.stream) {
                (Some(c), _) => format!("redis {} channel {c}", redact(&r.url)),
                (_, s) => format!("redis {} stream {}", redact(&r.url), s.as_deref().unwrap_or("")),
            },
            TriggerSpec::Mqtt(m) => format!("mqtt {} {} qos {}", redact(&m.url), m.topic, m.qos),
            TriggerSpec::Nats(n) => match &n.stream {
                Some(s) => format!("nats {} jetstream {s}", redact(&n.url)),
                None => format!("nats {} {}", redact(&n.url), n.subject.as_deref().unwrap_or("")),
            },
            TriggerSpec::Webhook(w) => {
                format!("webhook {}{}", w.route, if w.secret.is_some() { " (signed)" } else { "" })
            }
        }
    }

    /// Checks what can be checked from the text alone. `at` names the trigger in messages.
    pub fn validate(&self, at: &str) -> Result<(), String> {
        let nonempty = |key: &str, v: &str| {
            if v.trim().is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(format!("{at}: {key} = {v:?} must be non-empty, without spaces or control characters"))
            } else {
                Ok(())
            }
        };
        let url = |v: &str, schemes: &[&str], example: &str| {
            let ok = schemes
                .iter()
                .any(|s| v.strip_prefix(s).and_then(|r| r.strip_prefix("://")).is_some_and(|r| !r.is_empty()));
            if ok {
                Ok(())
            } else {
                Err(format!("{at}: url = {v:?} is not a {} URL; write e.g. {example:?}", schemes[0]))
            }
        };
        match self {
            TriggerSpec::Cron(c) => {
                let fields = c.schedule.split_whitespace().count();
                if !c.schedule.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
                    return Err(format!(
                        "{at}: schedule = {:?} has {fields} fields; write 5 (minute hour day month weekday) or 6 (seconds first), e.g. \"*/5 * * * * *\"",
                        c.schedule
                    ));
                }
                if let Some(tz) = &c.timezone {
                    nonempty("timezone", tz)?;
                }
            }
            TriggerSpec::Topic(t) => check_topic(&t.topic).map_err(|e| format!("{at}: {e}"))?,
            TriggerSpec::Redis(r) => {
                url(&r.url, &["redis"], "redis://127.0.0.1:6379")?;
                match (&r.channel, &r.stream) {
                    (Some(c), None) => nonempty("channel", c)?,
                    (None, Some(s)) => nonempty("stream", s)?,
                    _ => {
                        return Err(format!(
                            "{at}: give exactly one of `channel` (pub/sub) and `stream` (a Streams consumer group)"
                        ));
                    }
                }
                if let Some(g) = &r.group {
                    if r.stream.is_none() {
                        return Err(format!("{at}: `group` is for streams; drop it or use `stream`"));
                    }
                    nonempty("group", g)?;
                }
            }
            TriggerSpec::Mqtt(m) => {
                url(&m.url, &["mqtt", "tcp"], "mqtt://127.0.0.1:1883")?;
                nonempty("topic", &m.topic)?;
                if m.qos > 1 {
                    return Err(format!("{at}: qos = {} is not supported: use 1 (at-least-once) or 0", m.qos));
                }
            }
            TriggerSpec::Nats(n) => {
                url(&n.url, &["nats"], "nats://127.0.0.1:4222")?;
                if let Some(s) = &n.subject {
                    nonempty("subject", s)?;
                }
                match &n.stream {
                    Some(s) => {
                        nonempty("stream", s)?;
                        if n.queue.is_some() {
                            return Err(format!(
                                "{at}: `queue` is for core NATS; a JetStream consumer is shared already"
                            ));
                        }
                    }
                    None => {
                        if n.subject.is_none() {
                            return Err(format!("{at}: give `subject` (core NATS) or `stream` (JetStream)"));
                        }
                        if n.consumer.is_some() {
                            return Err(format!("{at}: `consumer` is for JetStream; add `stream` or drop it"));
                        }
                    }
                }
                if let Some(c) = &n.consumer {
                    nonempty("consumer", c)?;
                }
            }
            TriggerSpec::Webhook(w) => {
                if w.secret.as_deref().is_some_and(|s| s.is_empty()) {
                    return Err(format!("{at}: secret is empty; give a shared secret or drop the key"));
                }
                http_header_name(&w.signature_header)
                    .map_err(|_| format!("{at}: signature_header = {:?} is not a header name", w.signature_header))?;
            }
        }
        Ok(())
    }
}

/// Checks a topic name: 1–255 characters of letters, digits, `.`, `-`, `_` and `/`.
pub fn check_topic(topic: &str) -> Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 255
        && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("topic {topic:?} is invalid: use 1-255 characters of letters, digits, '.', '-', '_' and '/'"))
    }
}

fn http_header_name(s: &str) -> Result<(), ()> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !s.is_empty() && s.bytes().all(token) { Ok(()) } else { Err(()) }
}

/// `url` without the password of its user info.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Checks a function's triggers: each one, their number, and that no webhook route is also one of the
/// function's own routes or listed twice.
pub fn validate_all(triggers: &[TriggerSpec], routes: &[RoutePattern]) -> Result<(), String> {
    if triggers.len() > MAX_TRIGGERS {
        return Err(format!("{} triggers: a function may have at most {MAX_TRIGGERS}", triggers.len()));
    }
    let mut hooks = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for (i, t) in triggers.iter().enumerate() {
        let at = format!("trigger {} ({})", i + 1, t.kind());
        t.validate(&at)?;
        if !ids.insert(t.id()) {
            return Err(format!("{at}: the same trigger is listed twice"));
        }
        if let TriggerSpec::Webhook(w) = t {
            if routes.contains(&w.route) {
                return Err(format!(
                    "{at}: route `{}` is also one of the function's routes; give the webhook a route of its own",
                    w.route
                ));
            }
            if !hooks.insert(&w.route) {
                return Err(format!("{at}: webhook route `{}` is listed twice", w.route));
            }
        }
    }
    Ok(())
}

/// The webhook routes among `triggers`.
pub fn webhook_routes(triggers: &[TriggerSpec]) -> impl Iterator<Item = &RoutePattern> {
    triggers.iter().filter_map(|t| match t {
        TriggerSpec::Webhook(w) => Some(&w.route),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<TriggerSpec, String> {
        toml::from_str::<TriggerSpec>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_each_kind_with_defaults() {
        let c = parse("type = \"cron\"\nschedule = \"* * * * * *\"").unwrap();
        assert_eq!(
            c,
            TriggerSpec::Cron(CronTrigger {
                schedule: "* * * * * *".into(),
                timezone: None,
                missed: MissedTicks::Latest
            })
        );
        let m = parse("type = \"mqtt\"\nurl = \"mqtt://h:1883\"\ntopic = \"a/#\"").unwrap();
        assert!(matches!(m, TriggerSpec::Mqtt(MqttTrigger { qos: 1, .. })));
        let w = parse("type = \"webhook\"\nroute = \"/hooks/a\"").unwrap();
        let TriggerSpec::Webhook(w) = w else { panic!() };
        assert_eq!(w.signature_header, "x-wisp-signature");
        assert!(
            parse("type = \"cron\"\nschedule = \"* * * * *\"\nzone = \"UTC\"")
                .unwrap_err()
                .contains("unknown field `zone`")
        );
        assert!(parse("type = \"kafka\"").unwrap_err().contains("unknown variant `kafka`"));
    }

    #[test]
    fn ids_are_stable_and_differ_by_settings() {
        let a = parse("type = \"topic\"\ntopic = \"orders\"").unwrap();
        let b = parse("type = \"topic\"\ntopic = \"orders\"").unwrap();
        let c = parse("type = \"topic\"\ntopic = \"refunds\"").unwrap();
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id().len(), 12);
    }

    #[test]
    fn golden_validation_errors() {
        let table: &[(&str, &str)] = &[
            ("type = \"cron\"\nschedule = \"* * *\"", "has 3 fields"),
            ("type = \"redis\"\nurl = \"redis://h\"", "exactly one of `channel`"),
            ("type = \"redis\"\nurl = \"http://h\"\nchannel = \"c\"", "is not a redis URL"),
            ("type = \"redis\"\nurl = \"redis://h\"\nchannel = \"c\"\ngroup = \"g\"", "`group` is for streams"),
            ("type = \"mqtt\"\nurl = \"mqtt://h\"\ntopic = \"t\"\nqos = 2", "qos = 2 is not supported"),
            ("type = \"nats\"\nurl = \"nats://h\"", "give `subject` (core NATS) or `stream`"),
            ("type = \"topic\"\ntopic = \"a b\"", "topic \"a b\" is invalid"),
            ("type = \"webhook\"\nroute = \"/h\"\nsecret = \"\"", "secret is empty"),
        ];
        for (text, want) in table {
            let t = parse(text).unwrap();
            let got = t.validate("trigger 1").unwrap_err();
            assert!(got.contains(want), "{text}: got {got:?}, want {want:?}");
            assert!(got.starts_with("trigger 1: "), "{got}");
        }
    }

    #[test]
    fn webhook_route_must_be_its_own() {
        let hook = parse("type = \"webhook\"\nroute = \"/hooks\"").unwrap();
        let routes = vec![RoutePattern::parse("/hooks").unwrap()];
        assert!(
            validate_all(std::slice::from_ref(&hook), &routes)
                .unwrap_err()
                .contains("also one of the function's routes")
        );
        assert!(validate_all(&[hook.clone(), hook.clone()], &[]).unwrap_err().contains("listed twice"));
        assert!(validate_all(&[hook], &[]).is_ok());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:secret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact("nats://u:p@h"), "nats://u:***@h");
        assert_eq!(redact("mqtt://h:1883"), "mqtt://h:1883");
    }
}
