//! `wisp up`: run the platform on the embedded store.

use crate::Global;
use crate::wiring::{NodeConfig, build};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use wisp_gateway::GatewayConfig;
use wisp_wasm_host::HostConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Address to serve functions and the API on.
    #[arg(long, env = "WISP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Runtime configuration of the node's capability backends (TOML, one section per capability; unknown
    /// sections and keys are errors). Sections: `[outbound_http]` (`timeout_ms`), `[outbound_db]`, `[key_value]`
    /// (`backend`, `url`, `prefix`), `[sqlite]` (`max_database_mb`, `max_rows`, `max_result_mb`), `[blobstore]`
    /// (`backend`, `max_object_mb`, `max_app_mb`), `[records]` (`retention_hours`, `max_records`,
    /// `channel_capacity`), `[pricing]` (`currency`, `per_million_requests`, `per_gb_second`,
    /// `per_million_cpu_ms`, `per_gb_egress`, `[pricing.free]` `requests`, `gb_seconds`, `cpu_ms`, `egress_gb`),
    /// `[usage_push]` (`url`, `secret`, `source`, `batch_max`, `flush_ms`, `max_attempts`, `channel_capacity`).
    #[arg(long, env = "WISP_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Serve the control API (`/_wisp/...`) on this address only, not on --listen [default: on --listen].
    #[arg(long, env = "WISP_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// Open client connections at most; one more is closed as soon as it is accepted.
    #[arg(long, env = "WISP_MAX_CONNECTIONS", default_value_t = wisp_gateway::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Milliseconds a new connection has to send its first request bytes (the whole preface for h2c).
    #[arg(long, env = "WISP_FIRST_BYTE_TIMEOUT_MS", default_value_t = wisp_gateway::DEFAULT_FIRST_BYTE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    first_byte_timeout_ms: u64,
    /// Milliseconds an HTTP/1 request head (request line and headers) may take to arrive.
    #[arg(long, env = "WISP_HEADER_READ_TIMEOUT_MS", default_value_t = wisp_gateway::DEFAULT_HEADER_READ_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    header_read_timeout_ms: u64,
    /// Milliseconds a connection may stay open with no request in flight and no bytes either way.
    #[arg(long, env = "WISP_IDLE_TIMEOUT_MS", default_value_t = wisp_gateway::DEFAULT_IDLE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    idle_timeout_ms: u64,
    /// Instances that may be live at once on this node (sizes the pooling allocator).
    #[arg(long, env = "WISP_MAX_INSTANCES", default_value_t = wisp_wasm_host::HostConfig::default().max_instances,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_instances: u32,
    /// Ceiling on any function's memory_mb.
    #[arg(long, env = "WISP_MAX_MEMORY_MB", default_value_t = wisp_wasm_host::HostConfig::default().max_memory_mb,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_memory_mb: u32,
    /// Invocations the node runs at once; functions' reserved_concurrency comes out of it, the rest is shared.
    #[arg(long, env = "WISP_MAX_CONCURRENCY", default_value_t = wisp_scheduler::DEFAULT_MAX_CONCURRENCY as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_concurrency: u64,
    /// MiB of each linear memory a finished instance leaves resident for the next one in its slot, reset
    /// in place instead of decommitted and faulted in again [default: 16 with --pool-pagemap-scan on a
    /// kernel that has it, else 1].
    #[arg(long, env = "WISP_POOL_KEEP_RESIDENT_MB", value_parser = clap::value_parser!(u32).range(0..=4096))]
    pool_keep_resident_mb: Option<u32>,
    /// Reset only the pages an instance dirtied, found with Linux's PAGEMAP_SCAN (kernel 6.7+; ignored elsewhere).
    #[arg(long, env = "WISP_POOL_PAGEMAP_SCAN", default_value_t = wisp_wasm_host::HostConfig::default().pagemap_scan, action = clap::ArgAction::Set)]
    pool_pagemap_scan: bool,
    /// Snapshot WAGI modules' initialisation export at deploy (Wizer), so instances start initialised;
    /// `false` runs the init in every instance.
    #[arg(long, env = "WISP_PREINIT_SNAPSHOTS", default_value_t = true, action = clap::ArgAction::Set)]
    preinit_snapshots: bool,
    /// Milliseconds between autoscaling decisions (load is averaged over each interval).
    #[arg(long, env = "WISP_AUTOSCALE_TICK_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    autoscale_tick_ms: u64,
    /// Seconds in-flight requests get to finish at shutdown.
    #[arg(long, env = "WISP_DRAIN_TIMEOUT_SECONDS", default_value_t = wisp_gateway::DEFAULT_DRAIN_TIMEOUT_SECONDS)]
    drain_timeout_seconds: u64,
    /// Largest artifact accepted, bytes.
    #[arg(long, env = "WISP_MAX_ARTIFACT_BYTES", default_value_t = wisp_registry::DEFAULT_MAX_ARTIFACT_BYTES)]
    max_artifact_bytes: usize,
    /// Metadata durability: `normal` (atomic, survives process crashes; an OS crash may roll back the last
    /// commits) or `full` (fsync every commit; slower deploys).
    #[arg(long, env = "WISP_STORE_SYNC", value_enum, default_value = "normal")]
    store_sync: StoreSync,
    /// `off` measures what metering costs: no thread CPU clock reads around guests' polls (CPU time is
    /// recorded as zero) and no persisted records or usage; `wisp logs` still shows this node's recent
    /// invocations.
    #[arg(long, env = "WISP_METERING", value_enum, default_value = "on")]
    metering: OnOff,
    /// Serve Prometheus metrics at `/_wisp/metrics` without the API token (for scrapers on a trusted network;
    /// by default a scraper sends `Authorization: Bearer <token>`, Prometheus's `authorization` setting).
    #[arg(long, env = "WISP_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `wisp=debug`.
    #[arg(long, env = "WISP_LOG", default_value = "info")]
    log: String,
    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g. `http://127.0.0.1:4318` (`/v1/traces`
    /// is appended unless the URL ends with it) [default: off — no span is recorded].
    #[arg(long, env = "WISP_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StoreSync {
    Normal,
    Full,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let runtime = match &a.config {
        Some(path) => RuntimeConfig::load(path)?,
        None => RuntimeConfig::default(),
    };
    // Listen first: the node's own addresses are part of the outbound HTTP policy (never reachable from a
    // guest unless a grant names them).
    let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {}: {e} (choose another with --listen / WISP_LISTEN)", a.listen)
    })?;
    let addr = listener.local_addr()?;
    let traces = crate::traces::init(&a.log, a.otlp_endpoint.as_deref(), &crate::traces::Node { listen: addr })?;
    let api_listener = match a.api_listen {
        None => None,
        Some(api) => Some(tokio::net::TcpListener::bind(api).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {api}: {e} (choose another with --api-listen / WISP_API_LISTEN)")
        })?),
    };
    let mut own_addresses = vec![addr];
    if let Some(l) = &api_listener {
        own_addresses.push(l.local_addr()?);
    }
    let node = build(NodeConfig {
        kv: runtime.kv_backend(),
        sql: runtime.sql_limits(),
        blobs: runtime.blob_limits(),
        outbound_db: runtime.outbound_db(),
        records: runtime.records(),
        persist_records: a.metering == OnOff::On,
        metrics_public: a.metrics_public,
        usage_push: runtime.usage_push.clone(),
        prices: runtime.pricing.clone(),
        data_dir: g.data_dir.clone(),
        host: HostConfig {
            max_instances: a.max_instances,
            max_memory_mb: a.max_memory_mb,
            preinit_snapshots: a.preinit_snapshots,
            keep_resident_bytes: a.pool_keep_resident_mb.map(|mb| (mb as usize) << 20),
            pagemap_scan: a.pool_pagemap_scan,
            cpu_time: a.metering == OnOff::On,
            outbound: wisp_wasm_host::OutboundConfig {
                timeout: Duration::from_millis(runtime.outbound_http.timeout_ms),
                own_addresses,
            },
            ..HostConfig::default()
        },
        gateway: GatewayConfig {
            drain_timeout_seconds: a.drain_timeout_seconds,
            max_connections: a.max_connections as usize,
            first_byte_timeout: Duration::from_millis(a.first_byte_timeout_ms),
            header_read_timeout: Duration::from_millis(a.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(a.idle_timeout_ms),
            api_on_data_plane: a.api_listen.is_none(),
            ..GatewayConfig::default()
        },
        max_artifact_bytes: a.max_artifact_bytes,
        max_concurrency: a.max_concurrency as usize,
        autoscale_tick: std::time::Duration::from_millis(a.autoscale_tick_ms),
        store_sync: match a.store_sync {
            StoreSync::Normal => wisp_store::embedded::Sync::Normal,
            StoreSync::Full => wisp_store::embedded::Sync::Full,
        },
    })
    .await?;
    if let Some(token) = &node.token_created {
        println!("API token (saved to {}, shown once): {token}", crate::wiring::token_path(&g.data_dir).display());
    }
    if let Some(l) = &api_listener {
        println!("wisp API listening on http://{}", l.local_addr()?);
    }
    let console_at = match &api_listener {
        Some(l) => l.local_addr()?,
        None => addr,
    };
    // Before the listening line, which tells scripts (and the test harness) that the node is up.
    println!("console: http://{console_at}{} (sign in with the API token)", wisp_api::console::PATH);
    println!(
        "wisp listening on http://{addr} ({} functions loaded, data in {})",
        node.functions_loaded,
        g.data_dir.display()
    );
    tracing::info!(%addr, functions = node.functions_loaded, "serving");
    node.gateway.serve(listener, api_listener, shutdown_signal()).await?;
    if let Some(push) = &node.usage_push {
        push.close(Duration::from_secs(10)).await;
    }
    node.metering.close().await;
    traces.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down (again to force)"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down (again to force)"),
    }
    // A second signal ends the process at once, drain or not.
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::warn!("second signal: exiting without waiting for the drain");
        std::process::exit(130);
    });
}

/// `wisp up --config`: runtime configuration of capability backends, separate from any app's manifest. The
/// same file may hold the part of Spin's runtime-config.toml wisp takes ([`crate::spin_runtime`]).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfig {
    #[serde(default)]
    outbound_http: OutboundHttpSection,
    #[serde(default)]
    key_value: KeyValueSection,
    #[serde(default)]
    sqlite: SqliteSection,
    #[serde(default)]
    blobstore: BlobstoreSection,
    #[serde(default)]
    outbound_db: OutboundDbSection,
    #[serde(default)]
    records: RecordsSection,
    #[serde(default)]
    pricing: wisp_metering::prices::Prices,
    #[serde(default)]
    usage_push: Option<crate::usage_push::PushConfig>,
    /// The key-value backend Spin's tables name (read by [`crate::spin_runtime`] from the same file).
    #[serde(skip)]
    spin_kv: Option<crate::spin_runtime::KvBackend>,
    // Spin's runtime-config tables, read by `crate::spin_runtime`; listed so that unknown keys stay errors.
    #[serde(default)]
    #[allow(dead_code)]
    key_value_store: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    sqlite_database: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    llm_compute: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    variables_provider: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    config_provider: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    outbound_networking: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    client_tls: Option<serde::de::IgnoredAny>,
}

/// `[records]`: persisted invocation records (`<data-dir>/store/records.sqlite3`). Hourly usage aggregates
/// are kept apart and are not subject to retention.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsSection {
    /// Records older than this are deleted, hours.
    #[serde(default = "default_retention_hours")]
    retention_hours: u64,
    /// Most records kept (the oldest go first).
    #[serde(default = "default_max_records")]
    max_records: u64,
    /// Records waiting to be written at most; past it they are counted as dropped, never waited for.
    #[serde(default = "default_records_channel")]
    channel_capacity: usize,
}

fn default_retention_hours() -> u64 {
    wisp_metering::DEFAULT_RETENTION_HOURS
}

fn default_max_records() -> u64 {
    wisp_metering::DEFAULT_MAX_RECORDS
}

fn default_records_channel() -> usize {
    wisp_metering::DEFAULT_CHANNEL_CAPACITY
}

impl Default for RecordsSection {
    fn default() -> Self {
        RecordsSection {
            retention_hours: default_retention_hours(),
            max_records: default_max_records(),
            channel_capacity: default_records_channel(),
        }
    }
}

/// `[blobstore]`: guests' blobs (`wasi:blobstore`): where they live and how big they may get.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobstoreSection {
    /// `filesystem` (the only one so far): files under `<data-dir>/blobs`, named by random ids, with a
    /// SQLite index of object names.
    #[serde(default)]
    backend: BlobBackendKind,
    /// Largest object, MiB (a write past it fails, naming this key).
    #[serde(default = "default_max_object_mb")]
    max_object_mb: u64,
    /// Most all objects of one app (or of one function deployed on its own) may take, MiB.
    #[serde(default = "default_max_app_mb")]
    max_app_mb: u64,
}

#[derive(Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum BlobBackendKind {
    #[default]
    Filesystem,
}

fn default_max_object_mb() -> u64 {
    wisp_store::guest_blob::DEFAULT_MAX_OBJECT_MB
}

fn default_max_app_mb() -> u64 {
    wisp_store::guest_blob::DEFAULT_MAX_APP_MB
}

impl Default for BlobstoreSection {
    fn default() -> Self {
        BlobstoreSection {
            backend: BlobBackendKind::Filesystem,
            max_object_mb: default_max_object_mb(),
            max_app_mb: default_max_app_mb(),
        }
    }
}

/// `[outbound_db]`: the pools of guests' connections to their PostgreSQL, MySQL, Redis and MQTT servers
/// (kept per namespace + app + address, reset before reuse).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundDbSection {
    /// Most connections the node keeps open (in use and idle).
    #[serde(default = "default_db_max_connections")]
    max_connections: usize,
    /// Most connections one app keeps open.
    #[serde(default = "default_db_max_connections_per_app")]
    max_connections_per_app: usize,
    /// How long an unused pooled connection is kept, seconds.
    #[serde(default = "default_db_max_idle_seconds")]
    max_idle_seconds: u64,
    /// Longest connect (and wait for a free connection), never past the invocation's deadline.
    #[serde(default = "default_db_connect_timeout_ms")]
    connect_timeout_ms: u64,
    /// Largest query result handed to a guest, MiB.
    #[serde(default = "default_db_max_result_mb")]
    max_result_mb: usize,
}

fn default_db_max_connections() -> usize {
    wisp_outbound_db::DEFAULT_MAX_CONNECTIONS
}

fn default_db_max_connections_per_app() -> usize {
    wisp_outbound_db::DEFAULT_MAX_CONNECTIONS_PER_APP
}

fn default_db_max_idle_seconds() -> u64 {
    wisp_outbound_db::DEFAULT_MAX_IDLE_SECONDS
}

fn default_db_connect_timeout_ms() -> u64 {
    wisp_outbound_db::DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_db_max_result_mb() -> usize {
    wisp_outbound_db::DEFAULT_MAX_RESULT_MB
}

impl Default for OutboundDbSection {
    fn default() -> Self {
        OutboundDbSection {
            max_connections: default_db_max_connections(),
            max_connections_per_app: default_db_max_connections_per_app(),
            max_idle_seconds: default_db_max_idle_seconds(),
            connect_timeout_ms: default_db_connect_timeout_ms(),
            max_result_mb: default_db_max_result_mb(),
        }
    }
}

/// `[sqlite]`: limits of guests' SQL databases (one SQLite file per namespace + app + label under
/// `<data-dir>/sql`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SqliteSection {
    /// Largest database, MiB (past it a write answers `database-full`).
    #[serde(default = "default_max_database_mb")]
    max_database_mb: u64,
    /// Most rows one statement may answer.
    #[serde(default = "default_max_rows")]
    max_rows: usize,
    /// Largest result of one statement, MiB.
    #[serde(default = "default_max_result_mb")]
    max_result_mb: usize,
}

fn default_max_database_mb() -> u64 {
    wisp_store::sql::SqlLimits::default().max_database_bytes >> 20
}

fn default_max_rows() -> usize {
    wisp_store::sql::SqlLimits::default().max_rows
}

fn default_max_result_mb() -> usize {
    wisp_store::sql::SqlLimits::default().max_result_bytes >> 20
}

impl Default for SqliteSection {
    fn default() -> Self {
        SqliteSection {
            max_database_mb: default_max_database_mb(),
            max_rows: default_max_rows(),
            max_result_mb: default_max_result_mb(),
        }
    }
}

/// `[key_value]`: where guests' key-value data lives.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyValueSection {
    /// `sqlite` (default: `<data-dir>/store/kv.sqlite3`) or `redis`.
    #[serde(default)]
    backend: KvBackendKind,
    /// The Redis server (`redis://host[:port][/db]`), for `backend = "redis"`.
    url: Option<String>,
    /// Put in front of every Redis key (default `wisp:`), so one Redis can hold other data too.
    prefix: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum KvBackendKind {
    #[default]
    Sqlite,
    Redis,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundHttpSection {
    /// Longest connect, and longest wait for a response head, of a guest's outbound request (never past
    /// the invocation's deadline).
    #[serde(default = "default_outbound_timeout_ms")]
    timeout_ms: u64,
}

fn default_outbound_timeout_ms() -> u64 {
    30_000
}

impl Default for OutboundHttpSection {
    fn default() -> Self {
        OutboundHttpSection { timeout_ms: default_outbound_timeout_ms() }
    }
}

impl RuntimeConfig {
    fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--config {}: cannot read it: {e}", path.display()))?;
        let mut c: RuntimeConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
        let spin: crate::spin_runtime::SpinTables =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
        c.spin_kv = spin.kv_backend().map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
        if let Some(b) = &c.spin_kv
            && (c.key_value.backend != KvBackendKind::Sqlite || c.key_value.url.is_some())
            && *b != crate::spin_runtime::KvBackend::Redis(c.key_value.url.clone().unwrap_or_default())
        {
            anyhow::bail!(
                "--config {}: [key_value] and Spin's [key_value_store.*] name different backends; give it in one place",
                path.display()
            );
        }
        if !(1..=900_000).contains(&c.outbound_http.timeout_ms) {
            anyhow::bail!(
                "--config {}: outbound_http.timeout_ms = {} is out of range: allowed 1..=900000",
                path.display(),
                c.outbound_http.timeout_ms
            );
        }
        let s = &c.sqlite;
        for (key, v, max) in [
            ("max_database_mb", s.max_database_mb, 1 << 20),
            ("max_rows", s.max_rows as u64, 100_000_000),
            ("max_result_mb", s.max_result_mb as u64, 4096),
        ] {
            if !(1..=max).contains(&v) {
                anyhow::bail!("--config {}: sqlite.{key} = {v} is out of range: allowed 1..={max}", path.display());
            }
        }
        let b = &c.blobstore;
        for (key, v, max) in [("max_object_mb", b.max_object_mb, 1 << 20), ("max_app_mb", b.max_app_mb, 1 << 30)] {
            if !(1..=max).contains(&v) {
                anyhow::bail!("--config {}: blobstore.{key} = {v} is out of range: allowed 1..={max}", path.display());
            }
        }
        let r = &c.records;
        for (key, v, max) in [
            ("retention_hours", r.retention_hours, 24 * 3660),
            ("max_records", r.max_records, 1_000_000_000),
            ("channel_capacity", r.channel_capacity as u64, 10_000_000),
        ] {
            if !(1..=max).contains(&v) {
                anyhow::bail!("--config {}: records.{key} = {v} is out of range: allowed 1..={max}", path.display());
            }
        }
        c.pricing.validate().map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
        if let Some(p) = &c.usage_push {
            p.check().map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
        }
        let d = &c.outbound_db;
        for (key, v, max) in [
            ("max_connections", d.max_connections as u64, 100_000),
            ("max_connections_per_app", d.max_connections_per_app as u64, 100_000),
            ("max_idle_seconds", d.max_idle_seconds, 86_400),
            ("connect_timeout_ms", d.connect_timeout_ms, 900_000),
            ("max_result_mb", d.max_result_mb as u64, 4096),
        ] {
            if !(1..=max).contains(&v) {
                anyhow::bail!(
                    "--config {}: outbound_db.{key} = {v} is out of range: allowed 1..={max}",
                    path.display()
                );
            }
        }
        match (&c.key_value.backend, &c.key_value.url) {
            (KvBackendKind::Redis, None) => anyhow::bail!(
                "--config {}: key_value.backend = \"redis\" needs key_value.url, e.g. \"redis://127.0.0.1:6379\"",
                path.display()
            ),
            (KvBackendKind::Sqlite, Some(_)) | (KvBackendKind::Sqlite, None)
                if c.key_value.prefix.is_some() || c.key_value.url.is_some() =>
            {
                anyhow::bail!(
                    "--config {}: key_value.url and key_value.prefix are for backend = \"redis\"",
                    path.display()
                )
            }
            _ => {}
        }
        Ok(c)
    }

    /// The settings of the pools of guests' outbound connections.
    fn outbound_db(&self) -> wisp_outbound_db::PoolConfig {
        let d = &self.outbound_db;
        wisp_outbound_db::PoolConfig {
            max_connections: d.max_connections,
            max_connections_per_app: d.max_connections_per_app,
            max_idle: Duration::from_secs(d.max_idle_seconds),
            connect_timeout: Duration::from_millis(d.connect_timeout_ms),
            max_result_bytes: d.max_result_mb << 20,
        }
    }

    /// How invocation records are kept.
    fn records(&self) -> wisp_metering::Config {
        wisp_metering::Config {
            retention_ms: self.records.retention_hours * 3_600_000,
            max_records: self.records.max_records,
            channel_capacity: self.records.channel_capacity,
            ..wisp_metering::Config::default()
        }
    }

    /// The limits of guests' SQL databases.
    fn sql_limits(&self) -> wisp_store::sql::SqlLimits {
        wisp_store::sql::SqlLimits {
            max_database_bytes: self.sqlite.max_database_mb << 20,
            max_rows: self.sqlite.max_rows,
            max_result_bytes: self.sqlite.max_result_mb << 20,
        }
    }

    /// The limits of guests' blobs.
    fn blob_limits(&self) -> wisp_store::guest_blob::BlobLimits {
        let BlobBackendKind::Filesystem = self.blobstore.backend;
        wisp_store::guest_blob::BlobLimits {
            max_object_bytes: self.blobstore.max_object_mb << 20,
            max_app_bytes: self.blobstore.max_app_mb << 20,
        }
    }

    /// The key-value backend the node is to use.
    fn kv_backend(&self) -> crate::wiring::KvBackendConfig {
        if let Some(crate::spin_runtime::KvBackend::Redis(url)) = &self.spin_kv {
            let prefix = self.key_value.prefix.clone().unwrap_or_else(|| "wisp:".into());
            return crate::wiring::KvBackendConfig::Redis { url: url.clone(), prefix };
        }
        match self.key_value.backend {
            KvBackendKind::Sqlite => crate::wiring::KvBackendConfig::Embedded,
            KvBackendKind::Redis => crate::wiring::KvBackendConfig::Redis {
                url: self.key_value.url.clone().unwrap_or_default(),
                prefix: self.key_value.prefix.clone().unwrap_or_else(|| "wisp:".into()),
            },
        }
    }
}
