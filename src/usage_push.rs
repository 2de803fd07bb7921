//! Usage push: every invocation record, as a CloudEvent (`type = dev.wisp.invocation.v1`, `subject` = the
//! namespace), POSTed in batches (`application/cloudevents-batch+json`) to the endpoint of `[usage_push]` —
//! the shape OpenMeter and other metering services ingest. Each body is signed with HMAC-SHA256 of the
//! configured secret (`X-Wisp-Signature: sha256=<hex>`, the scheme wisp's own webhook triggers check).
//!
//! Like persisted records, the push never blocks an invocation: records go through a bounded channel, and
//! when it is full they are counted as dropped (and logged). A batch the endpoint refuses (5xx, 408, 429, or
//! no answer) is retried with exponential backoff, the same body and event ids each time, so a receiver that
//! deduplicates by `id` + `source` counts each invocation once; a 4xx other than those is not retried.
//! Records stay in the node's own records store either way, so a push that gave up loses nothing from the
//! bill.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use wisp_core::FunctionKey;
use wisp_scheduler::{InvocationRecord, RecordObserver};

/// `[usage_push]` of `wisp up --config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Where batches are POSTed (http or https).
    pub url: String,
    /// HMAC-SHA256 key of the `X-Wisp-Signature` header; unset: bodies are not signed.
    #[serde(default)]
    pub secret: Option<String>,
    /// The events' `source` attribute.
    #[serde(default = "default_source")]
    pub source: String,
    /// Events per POST, at most.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// How long a record waits for more to fill its batch, milliseconds.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// Attempts per batch before it is given up (logged and counted).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Records waiting to be pushed; past it they are dropped and counted.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
}

fn default_source() -> String {
    "wisp".into()
}
fn default_batch_max() -> usize {
    100
}
fn default_flush_ms() -> u64 {
    1000
}
fn default_max_attempts() -> u32 {
    8
}
fn default_channel_capacity() -> usize {
    16384
}

impl PushConfig {
    /// Checks the settings, saying which is wrong and how to fix it.
    pub fn check(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            format!("[usage_push] url = {:?} is not a URL ({e}); e.g. https://meter.example/api/v1/events", self.url)
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("[usage_push] url = {:?}: only http and https are supported", self.url));
        }
        if self.batch_max == 0 || self.batch_max > 10_000 {
            return Err(format!("[usage_push] batch_max = {} is out of range: 1..=10000", self.batch_max));
        }
        if self.max_attempts == 0 {
            return Err("[usage_push] max_attempts = 0: at least one attempt is needed".into());
        }
        if self.channel_capacity == 0 {
            return Err("[usage_push] channel_capacity = 0: at least 1 record must fit".into());
        }
        if self.secret.as_deref() == Some("") {
            return Err("[usage_push] secret is empty: remove it to send unsigned bodies, or set a key".into());
        }
        Ok(())
    }
}

type Item = (FunctionKey, Arc<InvocationRecord>);

/// The push: a record observer feeding one sender task.
pub struct UsagePush {
    tx: mpsc::Sender<Item>,
    dropped: AtomicU64,
    closing: Arc<tokio::sync::Notify>,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl UsagePush {
    /// Starts the sender task (on the current runtime) with `config`, which `wisp up` has checked
    /// ([`PushConfig::check`]) when it read `--config`.
    pub fn start(config: PushConfig) -> anyhow::Result<Arc<UsagePush>> {
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("wisp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let closing = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(send_loop(config, http, rx, closing.clone()));
        Ok(Arc::new(UsagePush { tx, dropped: AtomicU64::new(0), closing, task: parking_lot::Mutex::new(Some(task)) }))
    }

    /// Stops taking records and waits (at most `limit`) for those taken to be pushed.
    pub async fn close(&self, limit: Duration) {
        self.closing.notify_one();
        let task = self.task.lock().take();
        if let Some(mut task) = task
            && tokio::time::timeout(limit, &mut task).await.is_err()
        {
            tracing::warn!(limit = ?limit, "usage push: records still unpushed at shutdown (the records store has them)");
            task.abort();
        }
    }
}

impl RecordObserver for UsagePush {
    fn observe(&self, function: &FunctionKey, record: &Arc<InvocationRecord>) {
        if self.tx.try_send((function.clone(), record.clone())).is_err()
            && self.dropped.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000)
        {
            tracing::warn!(
                dropped = self.dropped.load(Ordering::Relaxed),
                "usage push: records dropped, the push channel is full (the endpoint is slower than the node)"
            );
        }
    }
}

/// One record as a CloudEvent (structured JSON).
fn event(source: &str, function: &FunctionKey, r: &InvocationRecord) -> serde_json::Value {
    let wall = Duration::from_micros(r.wall_us);
    serde_json::json!({
        "specversion": "1.0",
        // Every attempt of an asynchronous invocation shares its id; its start time tells them apart.
        "id": format!("{}-{}", r.id, r.at_ms),
        "source": source,
        "type": "dev.wisp.invocation.v1",
        "subject": function.namespace.as_str(),
        "time": wisp_core::events::rfc3339_ms(r.at_ms),
        "datacontenttype": "application/json",
        "data": {
            "namespace": function.namespace.as_str(),
            "function": function.name.as_str(),
            "invocation": r.id,
            "revision": r.revision,
            "trigger": r.trigger,
            "status": r.status,
            "error": r.error.is_some(),
            "cold": r.cold,
            "duration_ms": r.duration_us as f64 / 1000.0,
            "billed_ms": wisp_core::usage::billed_ms(wall),
            "gb_seconds": wisp_core::usage::gb_seconds(r.memory_limit_bytes, wall),
            "cpu_ms": wisp_core::usage::cpu_ms(Duration::from_micros(r.cpu_us)),
            "memory_limit_bytes": r.memory_limit_bytes,
            "peak_memory_bytes": r.peak_memory_bytes,
            "bytes_in": r.bytes_in,
            "bytes_out": r.bytes_out,
            "egress_bytes": r.egress_bytes,
        }
    })
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn send_loop(
    config: PushConfig,
    http: reqwest::Client,
    mut rx: mpsc::Receiver<Item>,
    closing: Arc<tokio::sync::Notify>,
) {
    let flush = Duration::from_millis(config.flush_ms);
    loop {
        // At shutdown the channel is closed and what it holds is still pushed.
        let first = tokio::select! {
            biased;
            item = rx.recv() => item,
            () = closing.notified() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + flush;
        while batch.len() < config.batch_max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        let events: Vec<_> = batch.iter().map(|(f, r)| event(&config.source, f, r)).collect();
        let body = bytes::Bytes::from(serde_json::to_vec(&events).expect("events serialise"));
        if let Err(why) = push(&config, &http, body).await {
            tracing::error!(url = %config.url, events = events.len(), error = %why, "usage push: batch not delivered");
        }
    }
}

/// POSTs one batch, retrying what may succeed later; why it was not taken otherwise.
async fn push(config: &PushConfig, http: &reqwest::Client, body: bytes::Bytes) -> Result<(), String> {
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let mut req = http
            .post(&config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/cloudevents-batch+json")
            .body(body.clone());
        if let Some(secret) = &config.secret {
            req = req.header("x-wisp-signature", signature(secret, &body));
        }
        let why = match req.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if !matches!(r.status().as_u16(), 408 | 429 | 500..=599) => {
                return Err(format!("the endpoint refused it with status {} (not retried)", r.status()));
            }
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.to_string(),
        };
        if attempt == config.max_attempts {
            return Err(format!("{why}, after {attempt} attempts"));
        }
        tracing::warn!(url = %config.url, attempt, error = %why, retry_in = ?backoff, "usage push: batch not taken; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> PushConfig {
        toml::from_str(&format!("url = {url:?}")).unwrap()
    }

    #[test]
    fn settings_are_checked_with_a_way_out() {
        assert!(config("http://127.0.0.1:9/events").check().is_ok());
        assert!(config("ftp://x/").check().unwrap_err().contains("only http and https"));
        assert!(config("not a url").check().unwrap_err().contains("is not a URL"));
        let c = PushConfig { batch_max: 0, ..config("http://x/") };
        assert!(c.check().unwrap_err().contains("batch_max = 0"));
        let c = PushConfig { secret: Some(String::new()), ..config("http://x/") };
        assert!(c.check().unwrap_err().contains("secret is empty"));
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
