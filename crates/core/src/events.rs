//! Asynchronous invocation: a function's delivery settings, the verdict on one delivery attempt, the retry
//! backoff, and CloudEvents 1.0 in HTTP binary and structured mode (DESIGN §6). Pure: time and randomness
//! enter as arguments.

use crate::invocation::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where `on_success` / `on_failure` send their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A function in the same namespace.
    Function(&'a str),
    /// A topic in the same namespace (`topic:NAME`): every subscriber gets the record.
    Topic(&'a str),
}

/// Reads a destination: `topic:NAME` or a function name.
pub fn destination(s: &str) -> Destination<'_> {
    match s.strip_prefix("topic:") {
        Some(t) => Destination::Topic(t),
        None => Destination::Function(s),
    }
}

/// Largest event `POST …/topics/{topic}` takes (a subscriber's own `events.max_event_bytes` still applies).
pub const MAX_PUBLISH_BYTES: usize = 1 << 20;

/// How events are delivered to a function (traffic config, like scaling: not part of the revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventConfig {
    /// Path of the CloudEvents POST the handler receives.
    pub path: String,
    /// Retries after the first attempt fails retryably (0–10).
    pub retry_attempts: u32,
    /// Backoff before the first retry; doubles each retry (full jitter: a random delay up to it).
    pub backoff_delay_ms: u64,
    /// Cap of the backoff (and of a handler's `Retry-After`).
    pub backoff_max_ms: u64,
    /// An event older than this is not attempted again: dead-lettered with `EventAgeExceeded`.
    pub max_event_age_seconds: u64,
    /// Events of this function running at once (separate from HTTP admission's share).
    pub max_concurrency: u32,
    /// Events of this function waiting at most; more are refused with 429.
    pub max_queue_depth: u32,
    /// Largest accepted event (data + attributes), bytes.
    pub max_event_bytes: u64,
    /// Failed events go to the dead-letter queue (on by default); off: they are kept as `failed`.
    pub dead_letter: bool,
    /// A function (or `topic:NAME`) that receives a record of every successful invocation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    /// A function (or `topic:NAME`) that receives a record of every invocation that failed for good, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

impl Default for EventConfig {
    fn default() -> Self {
        EventConfig {
            path: "/".into(),
            retry_attempts: 2,
            backoff_delay_ms: 1000,
            backoff_max_ms: 300_000,
            max_event_age_seconds: 6 * 3600,
            max_concurrency: 16,
            max_queue_depth: 100_000,
            max_event_bytes: 1 << 20,
            dead_letter: true,
            on_success: None,
            on_failure: None,
        }
    }
}

impl EventConfig {
    /// Whether every setting is the default (then it is left out of stored records).
    pub fn is_default(&self) -> bool {
        *self == EventConfig::default()
    }

    /// Checks ranges; the message names the key and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(format!("events.{key} = {v} is out of range: allowed {lo}..={hi}"))
            } else {
                Ok(())
            }
        };
        if !self.path.starts_with('/') || self.path.contains(['?', '#', ' ']) {
            return Err(format!(
                "events.path = {:?} is not a path: use an absolute path such as \"/\" or \"/events\"",
                self.path
            ));
        }
        range("retry_attempts", self.retry_attempts.into(), 0, 10)?;
        range("backoff_delay_ms", self.backoff_delay_ms, 1, 3_600_000)?;
        range("backoff_max_ms", self.backoff_max_ms, self.backoff_delay_ms, 24 * 3_600_000)?;
        range("max_event_age_seconds", self.max_event_age_seconds, 60, 14 * 86_400)?;
        range("max_concurrency", self.max_concurrency.into(), 1, 10_000)?;
        range("max_queue_depth", self.max_queue_depth.into(), 1, 10_000_000)?;
        range("max_event_bytes", self.max_event_bytes, 1024, 64 << 20)?;
        for (key, dest) in [("on_success", &self.on_success), ("on_failure", &self.on_failure)] {
            match dest.as_deref().map(destination) {
                Some(Destination::Topic(t)) => crate::trigger::check_topic(t)
                    .map_err(|e| format!("events.{key} = {:?}: {e}", dest.as_deref().unwrap_or("")))?,
                Some(Destination::Function(f)) => {
                    crate::Name::new(f)
                        .map_err(|e| format!("events.{key} = {f:?}: {e} (or write `topic:NAME` for a topic)"))?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1 for the first retry): full jitter over
    /// `backoff_delay_ms × 2^(retry-1)`, capped at `backoff_max_ms`; `unit` is a uniform sample in [0, 1).
    pub fn backoff_ms(&self, retry: u32, unit: f64) -> u64 {
        let exp = self.backoff_delay_ms.saturating_mul(1u64 << retry.saturating_sub(1).min(40));
        let cap = exp.min(self.backoff_max_ms);
        ((cap as f64) * unit.clamp(0.0, 1.0)) as u64
    }
}

/// What one delivery attempt's result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Success,
    /// 4xx other than 408 and 429: the handler refused the event; retrying cannot help.
    Terminal,
    /// 5xx, 408, 429, a trap or a timeout: try again (if attempts and age allow).
    Retryable,
}

/// The verdict on an HTTP status from the handler.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        408 | 429 => Verdict::Retryable,
        400..=499 => Verdict::Terminal,
        _ => Verdict::Retryable,
    }
}

/// The CloudEvents spec version wisp speaks.
pub const SPEC_VERSION: &str = "1.0";

/// A problem with an incoming CloudEvent, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CloudEventError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, CloudEventError> {
    Err(CloudEventError(m.into()))
}

/// Whether `name` is a valid CloudEvents attribute name (lowercase a–z and 0–9, 1–20 characters).
pub fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 20 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Percent-encodes a header value as the CloudEvents HTTP binding asks: space, `"`, `%` and everything
/// outside printable ASCII (as UTF-8 bytes).
pub fn encode_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded header value (invalid escapes are kept as they are; invalid UTF-8 is an error).
pub fn decode_header_value(v: &str) -> Result<String, CloudEventError> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| CloudEventError(format!("header value {v:?} is not UTF-8 once decoded")))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The binary-mode headers that deliver `event` (attempt `attempt`, 1-based) as an HTTP request, names
/// lowercase: `ce-id`, `ce-source`, `ce-type`, `ce-specversion`, `ce-subject`, `ce-time`, extensions as
/// `ce-<name>`, `content-type`, `ce-wispattempt`.
pub fn binary_headers(event: &Event, attempt: u32) -> Vec<(String, String)> {
    let mut h = vec![
        ("ce-specversion".to_string(), SPEC_VERSION.to_string()),
        ("ce-id".to_string(), encode_header_value(&event.id)),
        ("ce-source".to_string(), encode_header_value(&event.source)),
        ("ce-type".to_string(), encode_header_value(&event.ty)),
    ];
    if let Some(s) = &event.subject {
        h.push(("ce-subject".into(), encode_header_value(s)));
    }
    if let Some(t) = event.time_ms {
        h.push(("ce-time".into(), rfc3339_ms(t)));
    }
    for (k, v) in &event.extensions {
        h.push((format!("ce-{k}"), encode_header_value(v)));
    }
    if let Some(ct) = &event.data_content_type {
        h.push(("content-type".into(), ct.clone()));
    }
    h.push(("ce-wispattempt".into(), attempt.to_string()));
    h
}

/// Reads a binary-mode CloudEvent from request headers (name, value; any case) and body. Returns `None`
/// when there is no `ce-specversion` header (not a binary-mode event).
pub fn from_binary<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: Vec<u8>,
) -> Result<Option<Event>, CloudEventError> {
    let mut attrs = BTreeMap::new();
    let mut content_type = None;
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name == "content-type" {
            content_type = Some(value.to_string());
        } else if let Some(attr) = name.strip_prefix("ce-") {
            attrs.insert(attr.to_string(), decode_header_value(value)?);
        }
    }
    let Some(version) = attrs.remove("specversion") else { return Ok(None) };
    check_version(&version)?;
    let mut event = event_from_attrs(attrs)?;
    event.data_content_type = content_type;
    event.data = body;
    Ok(Some(event))
}

/// Reads a structured-mode CloudEvent (`application/cloudevents+json`): the attributes and `data` (JSON
/// value, kept as its JSON text) or `data_base64` in one JSON object.
pub fn from_structured(body: &[u8]) -> Result<Event, CloudEventError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CloudEventError(format!("structured CloudEvent: {e}")))?;
    event_from_json(v)
}

/// Reads a batch-mode body (`application/cloudevents-batch+json`): a JSON array of structured events.
pub fn from_batch(body: &[u8]) -> Result<Vec<Event>, CloudEventError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CloudEventError(format!("CloudEvents batch: {e}")))?;
    let serde_json::Value::Array(items) = v else {
        return err("a CloudEvents batch is a JSON array of events");
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, e)| event_from_json(e).map_err(|e| CloudEventError(format!("event {i}: {e}"))))
        .collect()
}

fn event_from_json(v: serde_json::Value) -> Result<Event, CloudEventError> {
    let serde_json::Value::Object(map) = v else {
        return err("a structured CloudEvent is a JSON object");
    };
    let mut attrs = BTreeMap::new();
    let mut data = None;
    let mut content_type = None;
    for (k, v) in map {
        match k.as_str() {
            "data" => data = Some(v),
            "data_base64" => {
                let serde_json::Value::String(s) = v else { return err("data_base64 must be a string") };
                data = Some(serde_json::Value::String(s));
                attrs.insert("\u{0}base64".to_string(), String::new());
            }
            "datacontenttype" => match v {
                serde_json::Value::String(s) => content_type = Some(s),
                _ => return err("datacontenttype must be a string"),
            },
            _ => {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Null => continue,
                    _ => return err(format!("attribute `{k}` must be a string, number or boolean")),
                };
                attrs.insert(k, s);
            }
        }
    }
    let base64 = attrs.remove("\u{0}base64").is_some();
    let version =
        attrs.remove("specversion").ok_or_else(|| CloudEventError("missing `specversion` (use \"1.0\")".into()))?;
    check_version(&version)?;
    let mut event = event_from_attrs(attrs)?;
    event.data = match data {
        None => Vec::new(),
        Some(serde_json::Value::String(s)) if base64 => decode_base64(&s)?,
        Some(serde_json::Value::String(s)) if !content_type.as_deref().is_some_and(is_json) => s.into_bytes(),
        Some(v) => serde_json::to_vec(&v).expect("a JSON value serialises"),
    };
    event.data_content_type =
        content_type.or_else(|| (!base64 && !event.data.is_empty()).then(|| "application/json".into()));
    Ok(event)
}

fn is_json(ct: &str) -> bool {
    let ct = ct.split(';').next().unwrap_or("").trim();
    ct == "application/json" || ct.ends_with("+json") || ct == "text/json"
}

fn check_version(v: &str) -> Result<(), CloudEventError> {
    if v != SPEC_VERSION {
        return err(format!("specversion {v:?} is not supported: wisp speaks CloudEvents 1.0"));
    }
    Ok(())
}

fn event_from_attrs(mut attrs: BTreeMap<String, String>) -> Result<Event, CloudEventError> {
    let mut take = |name: &str| attrs.remove(name).filter(|v| !v.is_empty());
    let id = take("id").ok_or_else(|| CloudEventError("missing `id` (ce-id): a non-empty string".into()))?;
    let source =
        take("source").ok_or_else(|| CloudEventError("missing `source` (ce-source): a URI-reference".into()))?;
    let ty = take("type")
        .ok_or_else(|| CloudEventError("missing `type` (ce-type): e.g. com.example.order.created".into()))?;
    let subject = take("subject");
    let time_ms = match take("time") {
        Some(t) => Some(
            parse_rfc3339_ms(&t).ok_or_else(|| CloudEventError(format!("time {t:?} is not an RFC 3339 timestamp")))?,
        ),
        None => None,
    };
    attrs.remove("datacontenttype");
    for name in attrs.keys() {
        if !valid_attribute_name(name) {
            return err(format!("extension attribute name {name:?} is invalid: use 1–20 lowercase letters or digits"));
        }
    }
    Ok(Event { id, source, ty, subject, time_ms, data_content_type: None, data: Vec::new(), extensions: attrs })
}

fn decode_base64(s: &str) -> Result<Vec<u8>, CloudEventError> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return err("data_base64 is not base64"),
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// `ms` (unix milliseconds) as RFC 3339 UTC with milliseconds, e.g. `2026-12-01T22:28:47.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Parses an RFC 3339 timestamp (`Z` or `±hh:mm`, optional fraction) into unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    u64::try_from(secs * 1000 + frac_ms).ok()
}

// Howard Hinnant's civil-calendar algorithms (public domain description), proleptic Gregorian.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: "a 1".into(),
            source: "/orders".into(),
            ty: "com.example.order".into(),
            subject: Some("ü".into()),
            time_ms: Some(1_764_628_127_123),
            data_content_type: Some("text/plain".into()),
            data: b"hi".to_vec(),
            extensions: BTreeMap::from([("traceparent".to_string(), "00-ab".to_string())]),
        }
    }

    #[test]
    fn verdicts() {
        for (status, v) in [
            (200, Verdict::Success),
            (204, Verdict::Success),
            (400, Verdict::Terminal),
            (404, Verdict::Terminal),
            (408, Verdict::Retryable),
            (429, Verdict::Retryable),
            (500, Verdict::Retryable),
            (503, Verdict::Retryable),
            (302, Verdict::Retryable),
        ] {
            assert_eq!(verdict(status), v, "{status}");
        }
    }

    #[test]
    fn backoff_is_full_jitter_doubling_and_capped() {
        let c = EventConfig { backoff_delay_ms: 1000, backoff_max_ms: 5000, ..Default::default() };
        assert_eq!(c.backoff_ms(1, 0.999_999), 999);
        assert_eq!(c.backoff_ms(2, 0.5), 1000);
        assert_eq!(c.backoff_ms(3, 0.5), 2000);
        assert_eq!(c.backoff_ms(4, 0.5), 2500);
        assert_eq!(c.backoff_ms(60, 0.5), 2500);
        assert_eq!(c.backoff_ms(1, 0.0), 0);
    }

    #[test]
    fn config_validation_names_the_key() {
        assert!(EventConfig::default().validate().is_ok());
        let c = EventConfig { retry_attempts: 11, ..Default::default() };
        assert_eq!(c.validate().unwrap_err(), "events.retry_attempts = 11 is out of range: allowed 0..=10");
        let c = EventConfig { path: "x".into(), ..Default::default() };
        assert!(c.validate().unwrap_err().contains("events.path"));
        let c = EventConfig { on_failure: Some("Bad Name".into()), ..Default::default() };
        assert!(c.validate().unwrap_err().starts_with("events.on_failure"));
    }

    #[test]
    fn binary_mode_round_trip_with_percent_encoding() {
        let e = event();
        let h = binary_headers(&e, 3);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("ce-id"), Some("a%201"));
        assert_eq!(get("ce-subject"), Some("%C3%BC"));
        assert_eq!(get("ce-time"), Some("2025-12-01T22:28:47.123Z"));
        assert_eq!(get("ce-traceparent"), Some("00-ab"));
        assert_eq!(get("ce-wispattempt"), Some("3"));
        assert_eq!(get("content-type"), Some("text/plain"));
        let back = from_binary(
            h.iter().filter(|(k, _)| k != "ce-wispattempt").map(|(k, v)| (k.as_str(), v.as_str())),
            b"hi".to_vec(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(back, e);
        assert_eq!(from_binary([("content-type", "text/plain")], vec![]).unwrap(), None);
        let e = from_binary([("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-type", "t")], vec![]).unwrap_err();
        assert_eq!(e.to_string(), "missing `source` (ce-source): a URI-reference");
        let e = from_binary([("ce-specversion", "0.3")], vec![]).unwrap_err();
        assert!(e.to_string().contains("CloudEvents 1.0"), "{e}");
    }

    #[test]
    fn structured_and_batch_modes() {
        let e = from_structured(
            br#"{"specversion":"1.0","id":"7","source":"s","type":"t","time":"2025-12-01T23:28:47.1+01:00","data":{"n":1},"myext":5}"#,
        )
        .unwrap();
        assert_eq!(e.data, br#"{"n":1}"#);
        assert_eq!(e.data_content_type.as_deref(), Some("application/json"));
        assert_eq!(e.time_ms, Some(1_764_628_127_100));
        assert_eq!(e.extensions.get("myext").map(String::as_str), Some("5"));
        let e =
            from_structured(br#"{"specversion":"1.0","id":"7","source":"s","type":"t","data_base64":"aGk="}"#).unwrap();
        assert_eq!(e.data, b"hi");
        let e = from_structured(
            br#"{"specversion":"1.0","id":"7","source":"s","type":"t","datacontenttype":"text/plain","data":"x y"}"#,
        )
        .unwrap();
        assert_eq!(e.data, b"x y");
        let b = from_batch(br#"[{"specversion":"1.0","id":"1","source":"s","type":"t"},{"specversion":"1.0","id":"2","source":"s","type":"t"}]"#).unwrap();
        assert_eq!(b.len(), 2);
        let e = from_batch(br#"[{"specversion":"1.0","id":"1","source":"s"}]"#).unwrap_err();
        assert_eq!(e.to_string(), "event 0: missing `type` (ce-type): e.g. com.example.order.created");
        assert!(from_structured(br#"{"specversion":"1.0","id":"1","source":"s","type":"t","Bad":"x"}"#).is_err());
    }

    #[test]
    fn timestamps() {
        for ms in [0u64, 951_782_400_000, 1_764_628_127_123, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(parse_rfc3339_ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("2026-12-01T00:00:00"), None);
    }
}
