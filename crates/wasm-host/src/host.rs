//! The engine, validation + precompilation, and loading precompiled code.

use crate::config::HostConfig;
use crate::http::HttpState;
use crate::preinit::Preinit;
use crate::wagi::WagiState;
use anyhow::Context as _;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wisp_core::FunctionKind;

/// What an artifact's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A component-model component.
    Component,
    /// A core WebAssembly module.
    CoreModule,
}

/// Tells a component from a core module by its header, or `None` if it is not WebAssembly.
pub fn artifact_kind(bytes: &[u8]) -> Option<ArtifactKind> {
    match bytes.get(..8)? {
        [0, b'a', b's', b'm', 1, 0, 0, 0] => Some(ArtifactKind::CoreModule),
        [0, b'a', b's', b'm', _, _, 1, 0] => Some(ArtifactKind::Component),
        _ => None,
    }
}

/// Why an artifact cannot be deployed. Every message says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// Not WebAssembly at all.
    #[error("the artifact is not WebAssembly (it does not start with the `\\0asm` header); upload a .wasm file")]
    NotWasm,
    /// A component where a module is needed, or the reverse.
    #[error("{0}")]
    KindMismatch(String),
    /// The bytes do not validate or compile.
    #[error("the artifact is not valid WebAssembly: {0}")]
    Invalid(String),
    /// An import wisp does not implement.
    #[error(
        "the artifact imports `{import}`, which wisp does not provide (wisp provides {provided}); rebuild it without that dependency"
    )]
    UnsatisfiedImport {
        /// The import's name.
        import: String,
        /// What wisp offers.
        provided: &'static str,
    },
    /// A required export is missing.
    #[error("{0}")]
    MissingExport(String),
    /// The module's initialisation export failed when run at deploy.
    #[error("{0}")]
    InitFailed(String),
    /// The function asks for more memory than this node allows.
    #[error("limits.memory_mb = {asked} exceeds this node's ceiling of {ceiling} MiB (wisp up --max-memory-mb)")]
    MemoryCeiling {
        /// Requested.
        asked: u32,
        /// Allowed.
        ceiling: u32,
    },
}

const PROVIDED_COMPONENT: &str =
    "wasi:cli, wasi:clocks, wasi:filesystem, wasi:http, wasi:io, wasi:random and wasi:sockets @0.2";
const PROVIDED_MODULE: &str = "wasi_snapshot_preview1";
const WASI_PACKAGES: &[&str] =
    &["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:http/", "wasi:io/", "wasi:random/", "wasi:sockets/"];

/// Validated, precompiled code ready to be written to the compiled cache.
pub struct Compiled {
    /// The serialised native code (`.cwasm`).
    pub bytes: Vec<u8>,
    /// Component or module.
    pub kind: ArtifactKind,
    /// Import names, for display.
    pub imports: Vec<String>,
    /// Export names, for display.
    pub exports: Vec<String>,
    /// What pre-initialisation did (WAGI modules with an init export).
    pub preinit: Option<Preinit>,
}

/// Runs `fut` to completion from a blocking thread (where `compile` runs), on the caller's runtime if any.
fn block_on<F: Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(fut),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
            .block_on(fut),
    }
}

pub(crate) struct Shared {
    pub engine: Engine,
    /// Every revision's warm pool on this node, for evicting idle instances when the pooling allocator is
    /// full (dead pools are pruned as they are met).
    pools: std::sync::Mutex<Vec<std::sync::Weak<crate::pool::Pool>>>,
    /// Background work of invocations (detached guests, teardown, prewarm), waited for at shutdown.
    pub tasks: crate::Tasks,
    /// The outbound HTTP capability's node-wide part.
    pub outbound: Arc<crate::caps::outbound::Outbound>,
    pub http_linker: wasmtime::component::Linker<HttpState>,
    pub wagi_linker: wasmtime::Linker<WagiState>,
    pub config: HostConfig,
    compilations: AtomicU64,
    stop_ticker: Arc<AtomicBool>,
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

/// The node's WebAssembly host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    pub(crate) shared: Arc<Shared>,
}

/// Loaded code: an `InstancePre` ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Code {
    pub(crate) shared: Arc<Shared>,
    pub(crate) inner: CodeInner,
    load_time: Duration,
}

impl Code {
    /// A warm pool for this revision, known to the node's eviction (see [`Pool`]).
    pub fn new_pool(&self, config: crate::pool::PoolConfig) -> std::sync::Arc<crate::pool::Pool> {
        let pool = std::sync::Arc::new(crate::pool::Pool::new(config));
        let mut pools = self.shared.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.strong_count() > 0);
        pools.push(std::sync::Arc::downgrade(&pool));
        pool
    }

    /// The node's tracked background tasks.
    pub fn tasks(&self) -> &crate::Tasks {
        &self.shared.tasks
    }

    /// How long loading took: mapping the precompiled artifact and resolving its imports (`InstancePre`).
    /// Paid once per revision at deploy or start, never per request.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

#[derive(Clone)]
pub(crate) enum CodeInner {
    Http(ProxyPre<HttpState>),
    Wagi(WagiCode),
}

/// A loaded WAGI module: what to run in each instance.
#[derive(Clone)]
pub(crate) struct WagiCode {
    pub pre: wasmtime::InstancePre<WagiState>,
    /// The init export still to run before the entry point (a module that was not snapshotted).
    pub init: Option<&'static str>,
    /// `wizer.resume` when an init runs first and the module has one, else `_start`.
    pub entry: &'static str,
}

impl WagiCode {
    fn new(pre: wasmtime::InstancePre<WagiState>, module: &Module) -> Self {
        let init = crate::preinit::init_export(module);
        let has_resume = crate::preinit::exports_func(module, crate::preinit::RESUME_EXPORT);
        let entry = if init.is_some() && has_resume { crate::preinit::RESUME_EXPORT } else { "_start" };
        WagiCode { pre, init, entry }
    }
}

impl Host {
    /// Builds the engine (pooling allocator sized from `config`, epoch interruption, copy-on-write memory
    /// images), the linkers, and starts the epoch ticker thread.
    pub fn new(config: HostConfig) -> anyhow::Result<Host> {
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

        let mut http_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut http_linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut http_linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http")?;
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
        Ok(Host {
            shared: Arc::new(Shared {
                engine,
                http_linker,
                wagi_linker,
                config,
                pools: Default::default(),
                tasks: Default::default(),
                outbound,
                compilations: AtomicU64::new(0),
                stop_ticker,
            }),
        })
    }

    /// The node's tracked background tasks (see [`crate::Tasks`]).
    pub fn tasks(&self) -> &crate::Tasks {
        &self.shared.tasks
    }

    /// The node configuration.
    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }

    /// Identifies the engine build + configuration: precompiled code is valid only for the same key.
    pub fn engine_key(&self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.shared.engine.precompile_compatibility_hash().hash(&mut h);
        self.shared.config.pooling.hash(&mut h);
        self.shared.config.preinit_snapshots.hash(&mut h);
        format!("wasmtime-{}-{:016x}", wasmtime_version(), h.finish())
    }

    /// How many times this process compiled code (0 after a restart that served from the cache).
    pub fn compilations(&self) -> u64 {
        self.shared.compilations.load(Ordering::Relaxed)
    }

    /// Checks that a function's limits fit this node.
    pub fn check_limits(&self, limits: &wisp_core::Limits) -> Result<(), ArtifactError> {
        if limits.memory_mb > self.shared.config.max_memory_mb {
            return Err(ArtifactError::MemoryCeiling {
                asked: limits.memory_mb,
                ceiling: self.shared.config.max_memory_mb,
            });
        }
        Ok(())
    }

    /// Validates `bytes` for a function of `kind` (right kind of artifact, every import provided, the
    /// entry point exported) and compiles it to native code. CPU-heavy: call from a blocking thread.
    pub fn compile(&self, kind: FunctionKind, bytes: &[u8]) -> Result<Compiled, ArtifactError> {
        let actual = artifact_kind(bytes).ok_or(ArtifactError::NotWasm)?;
        let engine = &self.shared.engine;
        match (kind, actual) {
            (FunctionKind::Http, ArtifactKind::Component) => {
                let component = Component::new(engine, bytes).map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                self.shared.compilations.fetch_add(1, Ordering::Relaxed);
                let ty = component.component_type();
                let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
                let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
                if let Some(bad) = imports.iter().find(|i| !WASI_PACKAGES.iter().any(|p| i.starts_with(p))) {
                    return Err(ArtifactError::UnsatisfiedImport { import: bad.clone(), provided: PROVIDED_COMPONENT });
                }
                if !ty.exports(engine).any(|(n, item)| {
                    n.starts_with("wasi:http/incoming-handler@0.2") && matches!(item.ty, ComponentItem::ComponentInstance(_))
                }) {
                    return Err(ArtifactError::MissingExport(format!(
                        "the component does not export `wasi:http/incoming-handler@0.2.x` (it exports: {}); an http function must target the `wasi:http/proxy` world",
                        list(&exports)
                    )));
                }
                self.http_pre(&component)?;
                let bytes = component.serialize().map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                Ok(Compiled { bytes, kind: actual, imports, exports, preinit: None })
            }
            (FunctionKind::Wagi, ArtifactKind::CoreModule) => {
                let mut module = Module::new(engine, bytes).map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                self.shared.compilations.fetch_add(1, Ordering::Relaxed);
                let imports: Vec<String> = module.imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
                let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
                if let Some(bad) = module.imports().find(|i| i.module() != "wasi_snapshot_preview1") {
                    return Err(ArtifactError::UnsatisfiedImport {
                        import: format!("{}::{}", bad.module(), bad.name()),
                        provided: PROVIDED_MODULE,
                    });
                }
                if !crate::preinit::exports_func(&module, "_start") {
                    return Err(ArtifactError::MissingExport(format!(
                        "the module does not export a `_start` function (it exports: {}); a WAGI function is a WASI command module (built with `-mexec-model=command`, the default)",
                        list(&exports)
                    )));
                }
                self.wagi_pre(&module)?;
                let preinit = match crate::preinit::init_export(&module) {
                    None => None,
                    Some(export) if !self.shared.config.preinit_snapshots => Some(Preinit::PerInstance {
                        export,
                        reason: "pre-initialisation snapshots are off on this node (wisp up --preinit-snapshots)".into(),
                    }),
                    Some(export) => match block_on(crate::preinit::snapshot(
                        engine,
                        &module,
                        bytes,
                        export,
                        self.shared.config.max_memory_mb as usize * 1024 * 1024,
                    )) {
                        Err(e) => return Err(ArtifactError::InitFailed(e.to_string())),
                        Ok(Err(reason)) => Some(Preinit::PerInstance { export, reason }),
                        Ok(Ok((snapshot, init))) => {
                            module = Module::new(engine, &snapshot)
                                .map_err(|e| ArtifactError::Invalid(format!("the snapshot does not compile: {e:#}")))?;
                            self.wagi_pre(&module)?;
                            Some(Preinit::Snapshotted { export, init })
                        }
                    },
                };
                let bytes = module.serialize().map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                Ok(Compiled { bytes, kind: actual, imports, exports, preinit })
            }
            (FunctionKind::Http, ArtifactKind::CoreModule) => Err(ArtifactError::KindMismatch(
                "the function kind is `http` but the artifact is a core module, not a component; componentize it for the `wasi:http/proxy` world, or set kind = \"wagi\" if it is a WAGI (CGI-style) module".into(),
            )),
            (FunctionKind::Wagi, ArtifactKind::Component) => Err(ArtifactError::KindMismatch(
                "the function kind is `wagi` but the artifact is a component; WAGI functions are WASI preview1 core modules (set kind = \"http\" for wasi:http components)".into(),
            )),
        }
    }

    fn http_pre(&self, component: &Component) -> Result<ProxyPre<HttpState>, ArtifactError> {
        let pre = self
            .shared
            .http_linker
            .instantiate_pre(component)
            .map_err(|e| ArtifactError::UnsatisfiedImport { import: format!("{e:#}"), provided: PROVIDED_COMPONENT })?;
        ProxyPre::new(pre).map_err(|e| {
            ArtifactError::MissingExport(format!("the component does not match the `wasi:http/proxy` world: {e:#}"))
        })
    }

    fn wagi_pre(&self, module: &Module) -> Result<wasmtime::InstancePre<WagiState>, ArtifactError> {
        self.shared
            .wagi_linker
            .instantiate_pre(module)
            .map_err(|e| ArtifactError::UnsatisfiedImport { import: format!("{e:#}"), provided: PROVIDED_MODULE })
    }

    /// Loads precompiled code written by [`Host::compile`] and builds its `InstancePre`. Fails (and the
    /// caller recompiles) if the file was made by a different engine build or configuration.
    pub fn load(&self, kind: FunctionKind, cwasm: &Path) -> anyhow::Result<Code> {
        let started = std::time::Instant::now();
        let engine = &self.shared.engine;
        let inner = match kind {
            FunctionKind::Http => {
                // SAFETY: the file is wisp's own compiled cache, written by `compile` into the data directory,
                // which only the wisp process writes; wasmtime additionally checks the engine compatibility.
                #[allow(unsafe_code)]
                let component = unsafe { Component::deserialize_file(engine, cwasm) }
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("loading precompiled component {}", cwasm.display()))?;
                CodeInner::Http(self.http_pre(&component)?)
            }
            FunctionKind::Wagi => {
                // SAFETY: as above, our own compiled cache.
                #[allow(unsafe_code)]
                let module = unsafe { Module::deserialize_file(engine, cwasm) }
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("loading precompiled module {}", cwasm.display()))?;
                CodeInner::Wagi(WagiCode::new(self.wagi_pre(&module)?, &module))
            }
        };
        Ok(Code { shared: self.shared.clone(), inner, load_time: started.elapsed() })
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "nothing".into() } else { items.join(", ") }
}

fn wasmtime_version() -> &'static str {
    // Bumped with the dependency pin in the workspace Cargo.toml.
    "48.0.8"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host::new(HostConfig { max_instances: 4, pooling: true, ..HostConfig::default() }).unwrap()
    }

    #[test]
    fn kinds() {
        assert_eq!(artifact_kind(&wat::parse_str("(module)").unwrap()), Some(ArtifactKind::CoreModule));
        assert_eq!(artifact_kind(&wat::parse_str("(component)").unwrap()), Some(ArtifactKind::Component));
        assert_eq!(artifact_kind(b"hello world"), None);
        assert_eq!(artifact_kind(b"\0asm"), None);
    }

    #[test]
    fn rejections_name_the_problem() {
        let h = host();
        let cases: Vec<(FunctionKind, Vec<u8>, &str)> = vec![
            (FunctionKind::Http, b"not wasm at all".to_vec(), "not WebAssembly"),
            (FunctionKind::Http, wat::parse_str("(module)").unwrap(), "the artifact is a core module, not a component"),
            (FunctionKind::Wagi, wat::parse_str("(component)").unwrap(), "the artifact is a component"),
            (
                FunctionKind::Http,
                wat::parse_str(r#"(component (import "acme:nope/thing" (instance)))"#).unwrap(),
                "imports `acme:nope/thing`, which wisp does not provide",
            ),
            (
                FunctionKind::Http,
                wat::parse_str("(component)").unwrap(),
                "does not export `wasi:http/incoming-handler@0.2.x`",
            ),
            (FunctionKind::Wagi, wat::parse_str("(module)").unwrap(), "does not export a `_start` function"),
            (
                FunctionKind::Wagi,
                wat::parse_str(r#"(module (import "env" "f" (func)) (func (export "_start")))"#).unwrap(),
                "imports `env::f`, which wisp does not provide (wisp provides wasi_snapshot_preview1)",
            ),
        ];
        for (kind, bytes, want) in cases {
            let err = h.compile(kind, &bytes).err().expect(want).to_string();
            assert!(err.contains(want), "got {err:?}, want it to contain {want:?}");
        }
        let mut truncated = wat::parse_str(r#"(module (func (export "_start")) (memory 1))"#).unwrap();
        truncated.truncate(truncated.len() - 3);
        let err = h.compile(FunctionKind::Wagi, &truncated).err().unwrap().to_string();
        assert!(err.starts_with("the artifact is not valid WebAssembly"), "{err}");
    }

    #[test]
    fn compiles_and_loads_a_wagi_module() {
        let h = host();
        let bytes = wat::parse_str(r#"(module (func (export "_start")) (memory (export "memory") 1))"#).unwrap();
        let compiled = h.compile(FunctionKind::Wagi, &bytes).unwrap();
        assert_eq!(h.compilations(), 1);
        let dir = std::env::temp_dir().join(format!("wisp-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.cwasm");
        std::fs::write(&path, &compiled.bytes).unwrap();
        h.load(FunctionKind::Wagi, &path).unwrap();
        assert_eq!(h.compilations(), 1, "loading must not compile");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
