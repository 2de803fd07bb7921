//! Metering (DESIGN §7): every invocation's record is persisted, and what it used summed per hour, namespace
//! and function — the inputs of a bill.
//!
//! An invocation hands its record to [`Metering::record`], which never blocks it: the record goes into a
//! bounded channel, and when the channel is full it is counted as dropped ([`Metering::dropped`], exported),
//! never silently lost. A writer thread takes records off the channel in batches and writes each batch — the
//! rows and their hourly usage — in one transaction of its own SQLite file, then applies retention (by age,
//! then by count; the aggregates are kept). [`Metering::flush`] waits until everything recorded before it is
//! written, so queries answered after it see every earlier invocation. Prices ([`prices`]) turn usage into
//! cost: GB-seconds (memory limit × wall time rounded up to 1 ms, Lambda's rule), CPU-ms (Cloudflare's),
//! requests and egress.

#![warn(missing_docs)]

pub mod prices;
mod store;

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use wisp_core::record::InvocationRecord;

/// Records the channel holds before new ones are dropped.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 16_384;
/// Records written in one transaction at most.
pub const DEFAULT_BATCH_MAX: usize = 8_192;
/// How long records are kept.
pub const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;
/// How many records are kept at most.
pub const DEFAULT_MAX_RECORDS: u64 = 1_000_000;
/// How long the writer lets a batch gather.
pub const DEFAULT_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);
/// Records one query answers at most.
pub const MAX_PAGE: usize = 1_000;

/// Settings (`[records]` in `wisp up --config`).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Records the channel holds before new ones are dropped.
    pub channel_capacity: usize,
    /// Records written in one transaction at most.
    pub batch_max: usize,
    /// How long the writer lets a batch gather once a record is waiting (a flush does not wait). Writing
    /// every record as it comes costs a commit and a wake-up per record; gathering makes both per batch.
    pub batch_window: std::time::Duration,
    /// Records older than this are deleted, milliseconds.
    pub retention_ms: u64,
    /// Past this many records, the oldest are deleted.
    pub max_records: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            batch_max: DEFAULT_BATCH_MAX,
            batch_window: DEFAULT_BATCH_WINDOW,
            retention_ms: DEFAULT_RETENTION_HOURS * 3_600_000,
            max_records: DEFAULT_MAX_RECORDS,
        }
    }
}

/// Why metering could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    /// The records database failed.
    #[error("the invocation records database failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// The writer is gone (the node is shutting down).
    #[error("invocation records are not being written (the node is stopping)")]
    Stopped,
}

/// A record on its way to the database.
pub(crate) struct Row {
    pub namespace: String,
    pub function: String,
    pub record: Arc<InvocationRecord>,
}

enum Msg {
    Record(Row),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Which records a query answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only this namespace's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only this function's.
    #[serde(default)]
    pub function: Option<String>,
    /// Started at or after this time, unix ms.
    #[serde(default)]
    pub since_ms: Option<u64>,
    /// Started before this time, unix ms.
    #[serde(default)]
    pub until_ms: Option<u64>,
    /// Only failures, only successes, or one status code.
    #[serde(default)]
    pub status: Option<StatusFilter>,
    /// Only those started by this trigger (`http`, `api`, `event`, …).
    #[serde(default)]
    pub trigger: Option<String>,
    /// Only the invocation with this id.
    #[serde(default)]
    pub id: Option<String>,
    /// The page cursor: records older than this one (the previous page's `next`).
    #[serde(default)]
    pub before: Option<i64>,
    /// Records per page (at most [`MAX_PAGE`]).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    50
}

/// A status filter: `error` (failed: a platform or guest failure, or a 5xx), `ok` (the rest), or a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Failed invocations.
    Error,
    /// Invocations that did not fail.
    Ok,
    /// Invocations answered with this status.
    Code(u16),
}

impl<'de> Deserialize<'de> for StatusFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "error" => Ok(StatusFilter::Error),
            "ok" => Ok(StatusFilter::Ok),
            code => code.parse().map(StatusFilter::Code).map_err(|_| {
                serde::de::Error::custom(format!("status {code:?}: write `error`, `ok` or an HTTP status such as 503"))
            }),
        }
    }
}

/// One page of records, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// The records.
    pub invocations: Vec<Listed>,
    /// The cursor of the next (older) page, if there is one: pass it as `before`.
    pub next: Option<i64>,
}

/// A persisted record with the function it belongs to.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listed {
    /// Its position in the records (the page cursor).
    pub seq: i64,
    /// The function's namespace.
    pub namespace: String,
    /// The function.
    pub function: String,
    /// The record.
    pub record: InvocationRecord,
}

/// One bucket of a function's series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The bucket's start, unix ms.
    pub t_ms: u64,
    /// Invocations that started in it.
    pub requests: u64,
    /// Of those, failed ones.
    pub errors: u64,
    /// Of those, cold starts.
    pub cold_starts: u64,
    /// Median duration (arrival to done), ms.
    pub p50_ms: f64,
    /// 90th percentile duration, ms.
    pub p90_ms: f64,
    /// 99th percentile duration, ms.
    pub p99_ms: f64,
}

/// An hour of one function's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    /// The hour's start, unix ms.
    pub hour_ms: u64,
    /// What the function used in it.
    #[serde(flatten)]
    pub usage: prices::Usage,
}

/// Most buckets a series answers.
pub const MAX_POINTS: u64 = 10_000;

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UsageBy {
    /// Per function.
    #[default]
    Function,
    /// Per namespace.
    Namespace,
}

/// The node's metering.
pub struct Metering {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    written: Arc<AtomicU64>,
    reader: Arc<Mutex<rusqlite::Connection>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    config: Config,
    on_write: Arc<std::sync::OnceLock<WriteHook>>,
}

/// Told of every batch the writer stored: how long the write took and how many records it held (metrics'
/// store latency).
pub type WriteHook = Box<dyn Fn(std::time::Duration, usize) + Send + Sync>;

impl Metering {
    /// Opens the records database at `path` (created if missing) and starts its writer thread.
    pub fn open(path: &Path, config: Config) -> Result<Arc<Metering>, MeteringError> {
        let (m, rx) = Metering::unstarted(path, config)?;
        m.start(path, rx)?;
        Ok(m)
    }

    fn unstarted(path: &Path, config: Config) -> Result<(Arc<Metering>, Receiver<Msg>), MeteringError> {
        let reader = store::open(path)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(config.channel_capacity.max(1));
        let m = Metering {
            tx,
            dropped: AtomicU64::new(0),
            written: Arc::new(AtomicU64::new(0)),
            reader: Arc::new(Mutex::new(reader)),
            writer: Mutex::new(None),
            config,
            on_write: Default::default(),
        };
        Ok((Arc::new(m), rx))
    }

    fn start(&self, path: &Path, rx: Receiver<Msg>) -> Result<(), MeteringError> {
        let mut conn = store::open(path)?;
        let (config, written, on_write) = (self.config, self.written.clone(), self.on_write.clone());
        let handle = std::thread::Builder::new()
            .name("wisp-records".into())
            .spawn(move || {
                let mut behind = false;
                while let Ok(first) = rx.recv() {
                    // The batch gathers while this thread sleeps rather than waits on the channel, so senders
                    // never wake it per record; a flush is answered at once, and a writer that is behind (its
                    // last batch was full) does not sleep.
                    if matches!(first, Msg::Record(_)) && !behind && !config.batch_window.is_zero() {
                        std::thread::sleep(config.batch_window);
                    }
                    let mut rows = Vec::new();
                    let mut acks = Vec::new();
                    let mut next = Some(first);
                    while let Some(m) = next.take() {
                        match m {
                            Msg::Record(r) => rows.push(r),
                            Msg::Flush(ack) => acks.push(ack),
                        }
                        if rows.len() < config.batch_max {
                            next = rx.try_recv().ok();
                        }
                    }
                    behind = rows.len() >= config.batch_max;
                    if !rows.is_empty() {
                        let started = std::time::Instant::now();
                        match store::write(
                            &mut conn,
                            &rows,
                            wisp_core_now_ms(),
                            config.retention_ms,
                            config.max_records,
                        ) {
                            Ok(_) => {
                                written.fetch_add(rows.len() as u64, Ordering::Relaxed);
                                if let Some(hook) = on_write.get() {
                                    hook(started.elapsed(), rows.len());
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, records = rows.len(), "writing invocation records failed")
                            }
                        }
                    }
                    for ack in acks {
                        let _ = ack.send(());
                    }
                }
            })
            .map_err(|_| MeteringError::Stopped)?;
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }

    /// Hands `record` of `namespace`/`function` to the writer; never blocks: when the channel is full the
    /// record is counted as dropped.
    pub fn record(&self, namespace: &str, function: &str, record: Arc<InvocationRecord>) {
        let row = Row { namespace: namespace.to_string(), function: function.to_string(), record };
        match self.tx.try_send(Msg::Record(row)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    tracing::warn!(
                        dropped = self.dropped.load(Ordering::Relaxed),
                        "invocation records dropped: the records channel is full"
                    );
                }
            }
        }
    }

    /// Sets what is told of every batch written from now on (once; later calls are ignored).
    pub fn on_write(&self, hook: WriteHook) {
        let _ = self.on_write.set(hook);
    }

    /// Records dropped because the channel was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records written, since start.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Waits until every record handed over before this call is written.
    pub async fn flush(&self) -> Result<(), MeteringError> {
        let (ack, done) = tokio::sync::oneshot::channel();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(Msg::Flush(ack)))
            .await
            .map_err(|_| MeteringError::Stopped)?
            .map_err(|_| MeteringError::Stopped)?;
        done.await.map_err(|_| MeteringError::Stopped)
    }

    /// The records `filter` selects, newest first (after a [`Metering::flush`]).
    pub async fn query(&self, filter: Filter) -> Result<Page, MeteringError> {
        self.flush().await?;
        let reader = self.reader.clone();
        let filter = Filter { limit: filter.limit.clamp(1, MAX_PAGE), ..filter };
        let (invocations, next) = tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            store::query(&conn, &filter)
        })
        .await
        .map_err(|_| MeteringError::Stopped)??;
        Ok(Page { invocations, next })
    }

    /// Usage per function or namespace over `[since_ms, until_ms)`, whole hours (after a flush).
    pub async fn usage(
        &self,
        namespace: Option<String>,
        since_ms: u64,
        until_ms: u64,
        by: UsageBy,
    ) -> Result<Vec<prices::Usage>, MeteringError> {
        self.flush().await?;
        let reader = self.reader.clone();
        let sums = tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            store::usage(&conn, namespace.as_deref(), since_ms, until_ms, by)
        })
        .await
        .map_err(|_| MeteringError::Stopped)??;
        Ok(sums.into_iter().map(prices::Usage::from).collect())
    }

    /// Usage per hour and function over `[since_ms, until_ms)`, oldest first (after a flush).
    pub async fn hourly(
        &self,
        namespace: Option<String>,
        function: Option<String>,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<Vec<Hour>, MeteringError> {
        self.flush().await?;
        let reader = self.reader.clone();
        let hours = tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            store::hourly(&conn, namespace.as_deref(), function.as_deref(), since_ms, until_ms)
        })
        .await
        .map_err(|_| MeteringError::Stopped)??;
        Ok(hours.into_iter().map(|(hour_ms, s)| Hour { hour_ms, usage: s.into() }).collect())
    }

    /// A function's requests, errors, cold starts and latency percentiles over `[since_ms, until_ms)` in
    /// buckets of `step_ms` (made larger if the range would need more than [`MAX_POINTS`]); after a flush.
    /// Returns the step used and the buckets that had invocations.
    pub async fn series(
        &self,
        namespace: &str,
        function: &str,
        since_ms: u64,
        until_ms: u64,
        step_ms: u64,
    ) -> Result<(u64, Vec<Point>), MeteringError> {
        self.flush().await?;
        let step = step_ms.max(1).max(until_ms.saturating_sub(since_ms).div_ceil(MAX_POINTS));
        let reader = self.reader.clone();
        let (ns, f) = (namespace.to_string(), function.to_string());
        let points = tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            store::series(&conn, &ns, &f, since_ms, until_ms, step)
        })
        .await
        .map_err(|_| MeteringError::Stopped)??;
        Ok((step, points))
    }

    /// Writes what is queued and stops the writer (at shutdown).
    pub async fn close(&self) {
        let _ = self.flush().await;
    }
}

fn wisp_core_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests;
