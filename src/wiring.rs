//! The only place that knows every crate: builds a node from its configuration.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use wisp_api::Api;
use wisp_gateway::{Gateway, GatewayConfig};
use wisp_registry::Registry;
use wisp_scheduler::Scheduler;
use wisp_store::Store;
use wisp_store::embedded::EmbeddedStore;
use wisp_wasm_host::{Host, HostConfig};

/// Where guests' key-value data lives.
pub enum KvBackendConfig {
    /// `<data-dir>/store/kv.sqlite3`.
    Embedded,
    /// A Redis server, keys under `prefix`.
    Redis { url: String, prefix: String },
}

/// Everything a node needs to know at start.
pub struct NodeConfig {
    pub kv: KvBackendConfig,
    /// Limits of guests' SQL databases (`<data-dir>/sql/<ns>/<app|fn>/<name>/<label>.db`).
    pub sql: wisp_store::sql::SqlLimits,
    /// Limits of guests' blobs (`<data-dir>/blobs`).
    pub blobs: wisp_store::guest_blob::BlobLimits,
    /// Pools of guests' connections to their databases and brokers.
    pub outbound_db: wisp_outbound_db::PoolConfig,
    pub data_dir: PathBuf,
    pub host: HostConfig,
    pub gateway: GatewayConfig,
    pub max_artifact_bytes: usize,
    pub store_sync: wisp_store::embedded::Sync,
    pub max_concurrency: usize,
    pub autoscale_tick: std::time::Duration,
    /// Persisted invocation records (`<data-dir>/store/records.sqlite3`): retention, channel size.
    pub records: wisp_metering::Config,
    /// Whether records are persisted (`wisp up --metering off`: not).
    pub persist_records: bool,
    /// The price sheet usage is costed with.
    pub prices: wisp_metering::prices::Prices,
    /// Whether `/_wisp/metrics` is served without the API token.
    pub metrics_public: bool,
    /// Where every record is pushed as a CloudEvent (`[usage_push]`), if anywhere.
    pub usage_push: Option<crate::usage_push::PushConfig>,
}

/// A started (but not yet serving) node.
pub struct Node {
    pub gateway: Arc<Gateway>,
    /// Held for the node's lifetime: one `wisp up` per data directory.
    pub _lock: std::fs::File,
    pub token_created: Option<String>,
    pub functions_loaded: usize,
    /// Closed after the gateway drained, so the last records are written.
    pub metering: Arc<wisp_metering::Metering>,
    /// Closed after the gateway drained, so the last records are pushed.
    pub usage_push: Option<Arc<crate::usage_push::UsagePush>>,
}

/// Opens the store, builds the engine, loads every function from the compiled cache and mounts the API.
pub async fn build(config: NodeConfig) -> anyhow::Result<Node> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    private_dir(&config.data_dir)?;
    let lock = lock_data_dir(&config.data_dir)?;
    let (token, token_created) = load_or_create_token(&config.data_dir)?;
    let embedded = EmbeddedStore::open_with(&config.data_dir.join("store"), config.store_sync)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let store = Store { kv: Arc::new(embedded.clone()), blobs: Arc::new(embedded) };
    let trigger_state = store.kv.clone();
    // Guests' key-value data: its own database file, apart from the platform's records (or Redis).
    let guest_kv: Arc<dyn wisp_store::guest_kv::KvBackend> = match &config.kv {
        KvBackendConfig::Embedded => Arc::new(
            wisp_store::guest_kv::EmbeddedKv::open(&config.data_dir.join("store").join("kv.sqlite3"))
                .with_context(|| format!("opening the key-value store in {}", config.data_dir.display()))?,
        ),
        KvBackendConfig::Redis { url, prefix } => Arc::new(
            wisp_store::redis_kv::RedisKv::connect(url, prefix)
                .await
                .with_context(|| format!("connecting the key-value backend to {}", wisp_core::trigger::redact(url)))?,
        ),
    };
    let sql = wisp_store::sql::SqlDatabases::new(&config.data_dir.join("sql"), config.sql);
    // Guests' blobs: files named by random ids under `<data-dir>/blobs`, a SQLite index of names.
    let blobs: Arc<dyn wisp_store::guest_blob::BlobBackend> = Arc::new(
        wisp_store::fs_blobs::FsBlobs::open(&config.data_dir.join("blobs"), config.blobs)
            .with_context(|| format!("opening the blob store in {}", config.data_dir.display()))?,
    );
    let topics = Arc::new(wisp_wasm_host::caps::messaging::TopicSlot::default());
    let services = wisp_wasm_host::Services {
        kv: Some(guest_kv.clone()),
        sql: Some(sql.clone()),
        blobs: Some(blobs.clone()),
        outbound_db: Some(wisp_outbound_db::Pools::new(config.outbound_db)),
        topics: topics.clone(),
    };
    let host = Host::with_services(config.host, services)?;
    let registry = Arc::new(Registry::new(store, host, config.data_dir.join("compiled"), config.max_artifact_bytes));
    let tasks = registry.host().tasks().clone();
    let scheduler = Arc::new(Scheduler::new(wisp_scheduler::DEFAULT_LOG_RING, config.max_concurrency, tasks.clone()));
    // App secrets: sealed in the platform store under a key file of the data directory (0600).
    let secrets = Arc::new(
        wisp_store::secrets::Secrets::open(&config.data_dir.join("secrets.key"), trigger_state.clone())
            .await
            .context("opening the secrets")?,
    );
    // Every invocation's record: persisted (its own database file, written by one thread in batches) and
    // streamed to live log followers.
    let records_path = config.data_dir.join("store").join("records.sqlite3");
    let metering = wisp_metering::Metering::open(&records_path, config.records)
        .with_context(|| format!("opening the invocation records {}", records_path.display()))?;
    if config.persist_records {
        scheduler.observe(Arc::new(wisp_api::records::Persist(metering.clone())));
    }
    let live = Arc::new(wisp_api::records::LiveRecords::default());
    scheduler.observe(live.clone());
    let metrics =
        wisp_api::metrics::Metrics::new(scheduler.clone(), metering.clone(), registry.host().clone(), live.clone());
    scheduler.observe(metrics.clone());
    let usage_push = match config.usage_push {
        Some(c) => {
            let push = crate::usage_push::UsagePush::start(c)?;
            scheduler.observe(push.clone());
            Some(push)
        }
        None => None,
    };
    let source = secrets.clone();
    scheduler.set_secret_source(Arc::new(move |ns, app, name| source.reveal(ns, app, name)));
    let loaded = registry.load_all().await?;
    let functions_loaded = loaded.len();
    let mut keys = Vec::new();
    let mut records = Vec::new();
    for (record, stored, code) in loaded {
        keys.push(record.key.clone());
        records.push(record.clone());
        scheduler.activate(record, stored, code);
    }
    // Provisioned instances are warm before the first request is accepted.
    for key in keys {
        if let Err(e) = scheduler.prewarm(&key).await {
            tracing::warn!(function = %key, error = %e.message, "cannot start provisioned instances");
        }
    }
    scheduler.spawn_autoscaler(config.autoscale_tick);
    // Asynchronous invocations: their own database file (group commit, synchronous = FULL for enqueues).
    let queue = wisp_store::embedded_queue::EmbeddedQueue::open(&config.data_dir.join("store").join("queue.sqlite3"))
        .with_context(|| format!("opening the event queue in {}", config.data_dir.display()))?;
    let events = wisp_events::Events::new(Arc::new(queue), scheduler.clone(), tasks.clone())
        .await
        .context("reading the event queue")?;
    events.start();
    // Event sources, after the functions they feed are active.
    let triggers = wisp_triggers::Triggers::new(events.clone(), trigger_state);
    // Destinations and guests' messages publish through the topic index (held weakly: it holds the node).
    let index: Arc<dyn wisp_wasm_host::caps::messaging::Topics> = triggers.clone();
    events.set_topics(Arc::downgrade(&index));
    topics.connect(Arc::downgrade(&index));
    for record in &records {
        triggers.apply(record);
    }
    let token_created = token_created.then(|| token.clone());
    let api = wisp_api::router(Arc::new(Api {
        registry,
        scheduler: scheduler.clone(),
        events: events.clone(),
        triggers: triggers.clone(),
        kv: Some(guest_kv),
        sql: Some(sql),
        blobs: Some(blobs),
        secrets: Some(secrets),
        metering: metering.clone(),
        prices: config.prices,
        live,
        metrics,
        metrics_public: config.metrics_public,
        token,
        started: Instant::now(),
    }));
    let gateway = Arc::new(Gateway { scheduler, api, events, triggers, config: config.gateway });
    Ok(Node { gateway, _lock: lock, token_created, functions_loaded, metering, usage_push })
}

/// Takes the data directory's lock file, so two servers never share one store.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join("wisp.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `wisp up` is already using the data directory {} (stop it, or pass a different --data-dir)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Path of the API token in a data directory.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("api-token")
}

/// Reads the token, or creates one (32 random bytes, hex, file mode 0600). Returns it and whether it is new.
fn load_or_create_token(data_dir: &Path) -> anyhow::Result<(String, bool)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = token_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let tmp = data_dir.join(".api-token.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok((token, true))
}

/// Makes the data directory private to the wisp user (0700): it holds the store, env values and the
/// compiled code wisp maps as executable. A wider mode found at start is tightened and logged.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (chmod 700)", dir.display()))?;
        tracing::warn!(dir = %dir.display(), was = format!("{:o}", mode & 0o777), "data directory made private (0700)");
    }
    Ok(())
}
