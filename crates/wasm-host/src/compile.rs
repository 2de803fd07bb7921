//! Validation and precompilation at deploy: the right kind of artifact, every import provided, the entry
//! point exported; WAGI modules with an init export are pre-initialised (Wizer) here.

use crate::engine::Shared;
use crate::preinit::Preinit;
use crate::state::{InstanceState as HttpState, WagiState};
use std::sync::atomic::Ordering;
use wasmtime::Module;
use wasmtime::component::{Component, types::ComponentItem};
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

const PROVIDED_COMPONENT: &str = "wasi:cli, wasi:clocks, wasi:filesystem, wasi:http, wasi:io, wasi:random and wasi:sockets @0.2, wasi:keyvalue/{store,atomics,batch}@0.2.0-draft, wasi:config/store@0.2.0-rc.1";
const PROVIDED_MODULE: &str = "wasi_snapshot_preview1";
const WASI_PACKAGES: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:http/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "wasi:keyvalue/store@0.2.0-draft",
    "wasi:keyvalue/atomics@0.2.0-draft",
    "wasi:keyvalue/batch@0.2.0-draft",
    "wasi:config/store@0.2.0-rc.1",
];

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

/// Validates `bytes` for a function of `kind` (right kind of artifact, every import provided, the
/// entry point exported) and compiles it to native code. CPU-heavy: call from a blocking thread.
pub(crate) fn compile(shared: &Shared, kind: FunctionKind, bytes: &[u8]) -> Result<Compiled, ArtifactError> {
    let actual = artifact_kind(bytes).ok_or(ArtifactError::NotWasm)?;
    let engine = &shared.engine;
    match (kind, actual) {
            (FunctionKind::Http, ArtifactKind::Component) => {
                let component = Component::new(engine, bytes).map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                shared.compilations.fetch_add(1, Ordering::Relaxed);
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
                http_pre(shared, &component)?;
                let bytes = component.serialize().map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                Ok(Compiled { bytes, kind: actual, imports, exports, preinit: None })
            }
            (FunctionKind::Wagi, ArtifactKind::CoreModule) => {
                let mut module = Module::new(engine, bytes).map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                shared.compilations.fetch_add(1, Ordering::Relaxed);
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
                wagi_pre(shared, &module)?;
                let preinit = match crate::preinit::init_export(&module) {
                    None => None,
                    Some(export) if !shared.config.preinit_snapshots => Some(Preinit::PerInstance {
                        export,
                        reason: "pre-initialisation snapshots are off on this node (wisp up --preinit-snapshots)".into(),
                    }),
                    Some(export) => match block_on(crate::preinit::snapshot(
                        engine,
                        &module,
                        bytes,
                        export,
                        shared.config.max_memory_mb as usize * 1024 * 1024,
                    )) {
                        Err(e) => return Err(ArtifactError::InitFailed(e.to_string())),
                        Ok(Err(reason)) => Some(Preinit::PerInstance { export, reason }),
                        Ok(Ok((snapshot, init))) => {
                            module = Module::new(engine, &snapshot)
                                .map_err(|e| ArtifactError::Invalid(format!("the snapshot does not compile: {e:#}")))?;
                            wagi_pre(shared, &module)?;
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

pub(crate) fn http_pre(shared: &Shared, component: &Component) -> Result<ProxyPre<HttpState>, ArtifactError> {
    let pre = shared
        .http_linker
        .instantiate_pre(component)
        .map_err(|e| ArtifactError::UnsatisfiedImport { import: format!("{e:#}"), provided: PROVIDED_COMPONENT })?;
    ProxyPre::new(pre).map_err(|e| {
        ArtifactError::MissingExport(format!("the component does not match the `wasi:http/proxy` world: {e:#}"))
    })
}

pub(crate) fn wagi_pre(shared: &Shared, module: &Module) -> Result<wasmtime::InstancePre<WagiState>, ArtifactError> {
    shared
        .wagi_linker
        .instantiate_pre(module)
        .map_err(|e| ArtifactError::UnsatisfiedImport { import: format!("{e:#}"), provided: PROVIDED_MODULE })
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "nothing".into() } else { items.join(", ") }
}
