//! Pre-initialisation snapshots for WAGI modules (Wizer). A module that exports an initialisation function
//! (`wizer-initialize`, or the older `wizer.initialize`) has it run once at deploy; the memory and globals it
//! leaves behind become the module's initial state, so every cold instance starts initialised — an
//! expensive init (tables, parsed config, an interpreter's heap) costs nothing per request. The snapshot has
//! no init export any more; `wizer.resume`, when exported, becomes its `_start` (the wizer.h convention).
//!
//! The init runs with an empty environment, no arguments and no stdin: what a request brings (CGI variables,
//! body) is not there yet, and must not be read there (wasi-libc caches `environ` once read — wizer.h resets
//! it). Modules Wizer cannot snapshot (it rejects e.g. table mutation anywhere in the code) run their init
//! in every instance instead, before `_start`; a deploy says which happened.

use crate::limits::{DeadlineExceeded, Limiter, MemoryExceeded, arm_deadline};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Instance, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

/// Initialisation export names, newest convention first.
pub const INIT_EXPORTS: [&str; 2] = ["wizer-initialize", "wizer.initialize"];
/// The entry point to use instead of `_start` after initialisation, when a module exports it.
pub const RESUME_EXPORT: &str = "wizer.resume";
/// Longest an init may run at deploy.
pub const INIT_TIMEOUT_MS: u64 = 30_000;
/// Output of an init kept for error messages.
const INIT_OUTPUT_BYTES: usize = 4096;

/// Whether `module` exports a function called `name`.
pub(crate) fn exports_func(module: &Module, name: &str) -> bool {
    matches!(module.get_export(name), Some(wasmtime::ExternType::Func(_)))
}

/// The initialisation export `module` has, if any.
pub fn init_export(module: &Module) -> Option<&'static str> {
    INIT_EXPORTS.into_iter().find(|name| exports_func(module, name))
}

/// What pre-initialisation did to a module at deploy.
#[derive(Debug, Clone, PartialEq)]
pub enum Preinit {
    /// The init ran at deploy and its state is the module's initial state.
    Snapshotted {
        /// The init export that ran.
        export: &'static str,
        /// How long it ran.
        init: Duration,
    },
    /// The module cannot be snapshotted (the reason says why): its init runs in every instance.
    PerInstance {
        /// The init export.
        export: &'static str,
        /// Why no snapshot.
        reason: String,
    },
}

/// Why an init failed at deploy: the module would fail every request, so the deploy is refused.
#[derive(Debug, thiserror::Error)]
#[error("the module's `{export}` export failed at deploy: {message}{output}")]
pub struct InitFailed {
    /// The init export.
    pub export: &'static str,
    /// The failure.
    pub message: String,
    /// What it printed, if anything (prefixed for display).
    pub output: String,
}

/// Store state of the init run.
struct InitState {
    wasi: WasiP1Ctx,
    limiter: Limiter,
}

struct Snapshotting<'a> {
    store: &'a mut Store<InitState>,
    instance: Instance,
}

impl InstanceState for Snapshotting<'_> {
    async fn global_get(&mut self, name: &str, _type_hint: ValType) -> SnapshotVal {
        let global = self.instance.get_global(&mut *self.store, name).expect("wizer asks for its own exports");
        match global.get(&mut *self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => unreachable!("wizer rejects mutable reference globals, got {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self.instance.get_memory(&mut *self.store, name).expect("wizer asks for its own exports");
        contents(memory.data(&*self.store))
    }
}

/// Snapshots `bytes` (compiled as `module`, which exports `export`): returns the snapshot's bytes and how
/// long the init ran, `Ok(Err(reason))` when Wizer cannot snapshot this module, or the init's failure.
pub(crate) async fn snapshot(
    engine: &Engine,
    module: &Module,
    bytes: &[u8],
    export: &'static str,
    memory_bytes: usize,
) -> Result<Result<(Vec<u8>, Duration), String>, InitFailed> {
    let mut wizer = Wizer::new();
    wizer.init_func(export);
    if exports_func(module, RESUME_EXPORT) {
        wizer.func_rename("_start", RESUME_EXPORT);
    }
    let (cx, instrumented) = match wizer.instrument(bytes) {
        Ok(v) => v,
        Err(e) => return Ok(Err(format!("{e:#}"))),
    };
    let module = match Module::new(engine, &instrumented) {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("instrumented module does not compile: {e:#}"))),
    };
    let output = MemoryOutputPipe::new(INIT_OUTPUT_BYTES);
    let wasi = WasiCtxBuilder::new().stdout(output.clone()).stderr(output.clone()).build_p1();
    // The init runs under the same kind of memory limiter as requests (at the node's ceiling: the function's
    // own limit applies to every instance made from the snapshot).
    let mut store = Store::new(engine, InitState { wasi, limiter: Limiter::new(memory_bytes) });
    store.limiter(|s| &mut s.limiter);
    arm_deadline(&mut store, Instant::now() + Duration::from_millis(INIT_TIMEOUT_MS), INIT_TIMEOUT_MS);
    let failed = |e: wasmtime::Error, output: &MemoryOutputPipe| {
        let printed = String::from_utf8_lossy(&output.contents()).trim().to_string();
        let message = if e.is::<DeadlineExceeded>() {
            format!("it ran longer than {INIT_TIMEOUT_MS} ms")
        } else if let Some(m) = e.downcast_ref::<MemoryExceeded>() {
            format!("{m} (the node's --max-memory-mb)")
        } else {
            format!("{e:?}")
        };
        InitFailed {
            export,
            message,
            output: if printed.is_empty() { String::new() } else { format!("; it printed: {printed}") },
        }
    };
    let mut linker: Linker<InitState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut InitState| &mut s.wasi)
        .map_err(|e| failed(e, &output))?;
    let started = Instant::now();
    let run = async {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        if export != "_initialize"
            && let Some(f) = instance.get_func(&mut store, "_initialize")
        {
            f.typed::<(), ()>(&store)?.call_async(&mut store, ()).await?;
        }
        instance.get_typed_func::<(), ()>(&mut store, export)?.call_async(&mut store, ()).await?;
        wasmtime::Result::Ok(instance)
    };
    let instance = run.await.map_err(|e| failed(e, &output))?;
    let init = started.elapsed();
    let snapshot = wizer.snapshot(&cx, &mut Snapshotting { store: &mut store, instance }).await;
    match snapshot {
        Ok(bytes) => Ok(Ok((bytes, init))),
        Err(e) => Ok(Err(format!("{e:#}"))),
    }
}
