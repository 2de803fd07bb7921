//! The engine and what the node shares with every instance: pooling allocator, epoch ticker, linkers (every
//! capability linked once), the warm pools (for eviction), tracked background tasks.

use crate::config::HostConfig;
use crate::state::{InstanceState as HttpState, WagiState};
use anyhow::Context as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub(crate) struct Shared {
    pub engine: Engine,
    /// Every revision's warm pool on this node, for evicting idle instances when the pooling allocator is
    /// full (dead pools are pruned as they are met).
    pub(crate) pools: std::sync::Mutex<Vec<std::sync::Weak<crate::pool::Pool>>>,
    /// Background work of invocations (detached guests, teardown, prewarm), waited for at shutdown.
    pub tasks: crate::Tasks,
    /// The outbound HTTP capability's node-wide part.
    pub outbound: Arc<crate::caps::outbound::Outbound>,
    /// The platform services' backends.
    pub services: crate::Services,
    pub http_linker: wasmtime::component::Linker<HttpState>,
    pub wagi_linker: wasmtime::Linker<WagiState>,
    pub config: HostConfig,
    pub(crate) compilations: AtomicU64,
    /// Instances being torn down in the background: their pool slots are about to be free.
    pub(crate) teardowns: Arc<Teardowns>,
    stop_ticker: Arc<AtomicBool>,
}

/// Counts instances whose stores are being dropped in a background task, so a request that finds the
/// pooling allocator full waits for a slot that is about to be freed rather than evicting another
/// function's warm instance (or answering 503) while one is.
#[derive(Default)]
pub(crate) struct Teardowns {
    n: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

impl Teardowns {
    /// Runs `drop(store)` as a tracked task, counted until it is done.
    pub(crate) fn spawn<T: Send + 'static>(self: &Arc<Self>, tasks: &crate::Tasks, store: T) {
        self.n.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        tasks.spawn(async move {
            drop(store);
            me.n.fetch_sub(1, Ordering::SeqCst);
            me.done.notify_waiters();
        });
    }

    /// Waits (at most `limit`) for one teardown in progress to end; false if none was in progress.
    pub(crate) async fn wait_one(&self, limit: Duration) -> bool {
        let notified = self.done.notified();
        if self.n.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let _ = tokio::time::timeout(limit, notified).await;
        true
    }
}

impl Shared {
    /// Drops the node's least recently used idle warm instance that is not provisioned (`min_instances`),
    /// making room in the pooling allocator. Returns whether one was dropped. O(pools with idle instances
    /// scanned); called only when an instantiation found the allocator full.
    pub(crate) fn evict_one_idle(&self) -> bool {
        let oldest = {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            pools.retain(|p| p.strong_count() > 0);
            pools
                .iter()
                .filter_map(|p| p.upgrade())
                .filter_map(|p| p.oldest_evictable().map(|at| (at, p)))
                .min_by_key(|(at, _)| *at)
                .map(|(_, p)| p)
        };
        match oldest.and_then(|p| p.evict_oldest()) {
            Some(w) => {
                drop(w); // frees its slots now, before the caller retries
                true
            }
            None => false,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Shared {
    /// Builds the engine (pooling allocator sized from `config`, epoch interruption, copy-on-write memory
    /// images), the linkers, and starts the epoch ticker thread.
    pub(crate) fn new(config: HostConfig, services: crate::Services) -> anyhow::Result<Shared> {
        let mut c = Config::new();
        c.epoch_interruption(true);
        c.memory_init_cow(true);
        c.wasm_component_model(true);
        // Only the proposals wisp's guest toolchains use (C via wit-bindgen and wasi-libc, componentize-py,
        // componentize-js / StarlingMonkey): no threads, no GC, no exception handling — newer proposals are
        // where engine bugs are found, and no guest here needs them.
        c.wasm_threads(false);
        c.wasm_gc(false);
        c.wasm_exceptions(false);
        if config.pooling {
            let n = config.max_instances;
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(n)
                // Interpreted guests (componentize-py, StarlingMonkey) have dozens of core instances and
                // several memories and tables per component.
                .total_core_instances(n.saturating_mul(8))
                .total_memories(n.saturating_mul(2))
                .total_tables(n.saturating_mul(4))
                .total_stacks(n)
                .max_core_instances_per_component(64)
                .max_memories_per_component(16)
                .max_tables_per_component(32)
                .max_component_instance_size(4 << 20)
                .max_core_instance_size(4 << 20)
                .table_elements(64 * 1024)
                .max_memory_size(config.max_memory_mb as usize * 1024 * 1024)
                .linear_memory_keep_resident(config.keep_resident())
                .table_keep_resident(64 << 10)
                .pagemap_scan(if config.pagemap_scan_in_use() {
                    wasmtime::Enabled::Auto
                } else {
                    wasmtime::Enabled::No
                });
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            tracing::info!(
                instances = n,
                keep_resident_mib = config.keep_resident() >> 20,
                pagemap_scan = config.pagemap_scan_in_use(),
                "pooling allocator"
            );
        }
        let engine = Engine::new(&c).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;

        let mut http_linker = wasmtime::component::Linker::<HttpState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut http_linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut http_linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http")?;
        crate::caps::filesystem::link(
            &mut http_linker,
            crate::caps::filesystem::EmptyRoot::new()?,
            |s, line| s.hooks.logs.note(line),
            |s| s.files.as_ref(),
            |s| &s.hooks.current,
        )
        .context("linking the guests' filesystem")?;
        crate::caps::keyvalue::link(&mut http_linker, HttpState::kv_view).context("linking wasi:keyvalue")?;
        crate::caps::sqlite::link(&mut http_linker, HttpState::sql_view).context("linking spin sqlite")?;
        crate::caps::blobstore::link(&mut http_linker, HttpState::blob_view).context("linking wasi:blobstore")?;
        crate::caps::outbound_db::link(&mut http_linker, HttpState::db_view)
            .context("linking spin postgres, mysql, redis and mqtt")?;
        crate::caps::messaging::link(&mut http_linker, HttpState::messaging_view).context("linking wasi:messaging")?;
        crate::caps::config::link(&mut http_linker, HttpState::config_view, |s| HttpState::config_view(s).rc1())
            .context("linking wasi:config")?;
        let mut wagi_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut wagi_linker, |s: &mut WagiState| &mut s.wasi)
            .map_err(anyhow::Error::from)
            .context("linking wasi preview1")?;

        let outbound = crate::caps::outbound::Outbound::new(config.outbound.clone())?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop_ticker.clone();
            let tick = Duration::from_millis(config.epoch_tick_ms.max(1));
            std::thread::Builder::new()
                .name("wisp-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .context("starting the epoch ticker")?;
        }
        Ok(Shared {
            engine,
            http_linker,
            wagi_linker,
            config,
            pools: Default::default(),
            tasks: Default::default(),
            outbound,
            services,
            compilations: AtomicU64::new(0),
            teardowns: Default::default(),
            stop_ticker,
        })
    }
}
