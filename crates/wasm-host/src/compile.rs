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

const PROVIDED_COMPONENT: &str = "wasi:cli, wasi:clocks, wasi:filesystem, wasi:http, wasi:io, wasi:random and wasi:sockets @0.2, wasi:keyvalue/{store,atomics,batch}@0.2.0-draft and @0.2.0-draft2, wasi:config/store@0.2.0-rc.1 and @0.2.0-draft-2024-09-27, wasi:blobstore/{blobstore,container,types}@0.2.0-draft, fermyon:spin/{key-value,variables,sqlite,postgres,mysql,redis,mqtt,rdbms-types}@2.0.0, spin:sqlite/sqlite@3.0.0, spin:postgres/postgres@3.0.0 and @4.0.0, wasi:messaging/{types,producer}@0.2.0-draft; other interfaces of the fermyon:spin, spin, wasi:keyvalue, wasi:config, wasi:blobstore and wasi:messaging packages are linked to trap when called";
const PROVIDED_MODULE: &str = "wasi_snapshot_preview1";
/// WASI 0.2 packages, served whole by wasmtime-wasi and wasmtime-wasi-http (any 0.2.x).
const WASI_PACKAGES: &[&str] =
    &["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:http/", "wasi:io/", "wasi:random/", "wasi:sockets/"];
/// Packages of platform interfaces: an import of one of theirs that this node does not serve is linked to
/// trap with a message when called, instead of failing the deploy. Spin's SDKs import their whole world
/// whatever the app uses (DESIGN §8), so a component may import interfaces it never calls.
const TRAP_PACKAGES: &[&str] =
    &["fermyon:spin/", "spin:", "wasi:keyvalue/", "wasi:config/", "wasi:blobstore/", "wasi:messaging/"];

/// The platform interfaces this node serves, with version.
fn served_interfaces() -> impl Iterator<Item = &'static str> {
    crate::caps::keyvalue::served()
        .chain(crate::caps::config::INTERFACES.iter().copied())
        .chain(crate::caps::sqlite::INTERFACES.iter().copied())
        .chain(crate::caps::blobstore::INTERFACES.iter().copied())
        .chain(crate::caps::outbound_db::INTERFACES.iter().copied())
        .chain(crate::caps::messaging::INTERFACES.iter().copied())
}

/// What wisp does with one import of a component.
#[derive(Debug, PartialEq, Eq)]
enum ImportPlan {
    /// Linked for real.
    Served,
    /// A platform interface not served yet: every function traps with a message.
    Trap,
    /// Nothing provides it: the deploy fails.
    Unsatisfied,
}

fn import_plan(import: &str) -> ImportPlan {
    if WASI_PACKAGES.iter().any(|p| import.starts_with(p)) && import.contains("@0.2.")
        || served_interfaces().any(|s| s == import)
    {
        ImportPlan::Served
    } else if TRAP_PACKAGES.iter().any(|p| import.starts_with(p)) {
        ImportPlan::Trap
    } else {
        ImportPlan::Unsatisfied
    }
}

/// A WASI 0.3 component (`wasi:http/handler@0.3.x`, the async ABI; what spin-sdk >= 4 builds): refused with
/// what to use instead, since wasmtime 48's 0.3 support is experimental.
fn wasi_p3_refusal(names: &[String]) -> Option<String> {
    let p3 = names.iter().find(|n| n.starts_with("wasi:") && n.contains("@0.3."))?;
    Some(format!(
        "the component uses `{p3}`, a WASI 0.3 interface; wisp runs WASI 0.2 components (wasi:http/proxy@0.2.x). Build it for WASI 0.2: for Spin apps, the Python SDK spin-sdk 3.x (3.4.1 with componentize-py 0.17.2), the JS SDK's @spinframework/build-tools 1.0.x with @spinframework/wasi-http-proxy 1.0.x (1.0.7 and 1.0.1 tested), the Rust spin-sdk 3.x/4.x with the wasm32-wasip2 target"
    ))
}

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
            (FunctionKind::Http | FunctionKind::Messaging, ArtifactKind::Component) => {
                let component = Component::new(engine, bytes).map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
                shared.compilations.fetch_add(1, Ordering::Relaxed);
                let ty = component.component_type();
                let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
                let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
                if let Some(why) = wasi_p3_refusal(&imports).or_else(|| wasi_p3_refusal(&exports)) {
                    return Err(ArtifactError::KindMismatch(why));
                }
                if let Some(bad) = imports.iter().find(|i| import_plan(i) == ImportPlan::Unsatisfied) {
                    return Err(ArtifactError::UnsatisfiedImport { import: bad.clone(), provided: PROVIDED_COMPONENT });
                }
                let (export, shown, world) = match kind {
                    FunctionKind::Messaging => (crate::caps::messaging::HANDLER, crate::caps::messaging::HANDLER, "the `wasi:messaging/messaging-core@0.2.0-draft` world (a messaging function)"),
                    _ => ("wasi:http/incoming-handler@0.2", "wasi:http/incoming-handler@0.2.x", "the `wasi:http/proxy` world (an http function)"),
                };
                if !ty.exports(engine).any(|(n, item)| {
                    n.starts_with(export) && matches!(item.ty, ComponentItem::ComponentInstance(_))
                }) {
                    return Err(ArtifactError::MissingExport(format!(
                        "the component does not export `{shown}` (it exports: {}); build it for {world}, or deploy it with the kind its exports fit",
                        list(&exports)
                    )));
                }
                match kind {
                    FunctionKind::Messaging => drop(messaging_pre(shared, &component)?),
                    _ => drop(http_pre(shared, &component)?),
                }
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
            (FunctionKind::Http | FunctionKind::Messaging, ArtifactKind::CoreModule) => Err(ArtifactError::KindMismatch(format!(
                "the function kind is `{kind}` but the artifact is a core module, not a component; componentize it for the `wasi:http/proxy` (or `wasi:messaging`) world, or set kind = \"wagi\" if it is a WAGI (CGI-style) module"
            ))),
            (FunctionKind::Wagi, ArtifactKind::Component) => Err(ArtifactError::KindMismatch(
                "the function kind is `wagi` but the artifact is a component; WAGI functions are WASI preview1 core modules (set kind = \"http\" for wasi:http components)".into(),
            )),
        }
}

/// The linker for `component`: the node's, or — when it imports platform interfaces this node does not
/// serve — a clone with those linked to trap.
fn linker_for<'a>(
    shared: &'a Shared,
    component: &Component,
) -> Result<std::borrow::Cow<'a, wasmtime::component::Linker<HttpState>>, ArtifactError> {
    let unserved: Vec<(String, ComponentItem)> = component
        .component_type()
        .imports(&shared.engine)
        .filter(|(n, _)| import_plan(n) == ImportPlan::Trap)
        .map(|(n, item)| (n.to_string(), item.ty))
        .collect();
    let linker = if unserved.is_empty() {
        std::borrow::Cow::Borrowed(&shared.http_linker)
    } else {
        let mut linker = shared.http_linker.clone();
        for (name, item) in &unserved {
            link_traps(&mut linker, &shared.engine, name, item)
                .map_err(|e| ArtifactError::Invalid(format!("linking `{name}` to trap: {e}")))?;
        }
        std::borrow::Cow::Owned(linker)
    };
    Ok(linker)
}

fn instance_pre(
    shared: &Shared,
    component: &Component,
) -> Result<wasmtime::component::InstancePre<HttpState>, ArtifactError> {
    linker_for(shared, component)?
        .instantiate_pre(component)
        .map_err(|e| ArtifactError::UnsatisfiedImport { import: format!("{e:#}"), provided: PROVIDED_COMPONENT })
}

pub(crate) fn http_pre(shared: &Shared, component: &Component) -> Result<ProxyPre<HttpState>, ArtifactError> {
    ProxyPre::new(instance_pre(shared, component)?).map_err(|e| {
        ArtifactError::MissingExport(format!("the component does not match the `wasi:http/proxy` world: {e:#}"))
    })
}

pub(crate) fn messaging_pre(
    shared: &Shared,
    component: &Component,
) -> Result<crate::caps::messaging::bindings::MessagingCorePre<HttpState>, ArtifactError> {
    crate::caps::messaging::bindings::MessagingCorePre::new(instance_pre(shared, component)?).map_err(|e| {
        ArtifactError::MissingExport(format!(
            "the component does not match the `wasi:messaging/messaging-core@0.2.0-draft` world: {e:#}"
        ))
    })
}

/// A resource of an interface this node does not serve (never constructed: every function traps first).
struct Unserved;

/// Links every function of the imported instance `name` to trap with a message saying what was called and
/// that this node does not serve it; its resources get a host type of their own.
fn link_traps(
    linker: &mut wasmtime::component::Linker<HttpState>,
    engine: &wasmtime::Engine,
    name: &str,
    item: &ComponentItem,
) -> wasmtime::Result<()> {
    let ComponentItem::ComponentInstance(instance) = item else {
        return Err(wasmtime::Error::msg("only instance imports can be linked to trap"));
    };
    let mut inst = linker.instance(name)?;
    for (export, ty) in instance.exports(engine) {
        match ty.ty {
            ComponentItem::ComponentFunc(_) => {
                let message = format!(
                    "the guest called `{export}` of `{name}`, which this wisp node does not serve yet (README: interfaces served); the component was deployed because it imports the interface, not because it may use it"
                );
                inst.func_new(export, move |_, _, _, _| Err(wasmtime::Error::msg(message.clone())))?;
            }
            ComponentItem::Resource(_) => {
                inst.resource(export, wasmtime::component::ResourceType::host::<Unserved>(), |_, _| Ok(()))?;
            }
            _ => {}
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_served_trapped_or_refused() {
        assert_eq!(import_plan("wasi:http/types@0.2.6"), ImportPlan::Served);
        assert_eq!(import_plan("wasi:keyvalue/atomics@0.2.0-draft2"), ImportPlan::Served);
        assert_eq!(import_plan("fermyon:spin/key-value@2.0.0"), ImportPlan::Served);
        assert_eq!(import_plan("fermyon:spin/variables@2.0.0"), ImportPlan::Served);
        assert_eq!(import_plan("wasi:config/store@0.2.0-draft-2024-09-27"), ImportPlan::Served);
        assert_eq!(import_plan("wasi:blobstore/container@0.2.0-draft"), ImportPlan::Served);
        assert_eq!(import_plan("wasi:blobstore/blobstore@0.1.0"), ImportPlan::Trap);
        assert_eq!(import_plan("fermyon:spin/llm@2.0.0"), ImportPlan::Trap);
        assert_eq!(import_plan("spin:postgres/postgres@4.0.0"), ImportPlan::Served);
        assert_eq!(import_plan("spin:postgres/postgres@3.0.0"), ImportPlan::Served);
        assert_eq!(import_plan("fermyon:spin/redis@2.0.0"), ImportPlan::Served);
        assert_eq!(import_plan("fermyon:spin/mqtt@2.0.0"), ImportPlan::Served);
        assert_eq!(import_plan("spin:postgres/postgres@4.2.0"), ImportPlan::Trap);
        assert_eq!(import_plan("wasi:keyvalue/watcher@0.2.0-draft2"), ImportPlan::Trap);
        assert_eq!(import_plan("acme:billing/charge@1.0.0"), ImportPlan::Unsatisfied);
        assert_eq!(import_plan("wasi:http/types@0.3.0-rc-2025-09-16"), ImportPlan::Unsatisfied);
    }

    #[test]
    fn a_wasi_p3_component_is_refused_naming_the_sdks_that_work() {
        let names = vec!["wasi:cli/environment@0.2.0".to_string(), "wasi:http/handler@0.3.0-rc-2025-09-16".to_string()];
        let why = wasi_p3_refusal(&names).unwrap();
        assert!(
            why.starts_with("the component uses `wasi:http/handler@0.3.0-rc-2025-09-16`, a WASI 0.3 interface"),
            "{why}"
        );
        assert!(why.contains("spin-sdk 3.x (3.4.1 with componentize-py 0.17.2)"), "{why}");
        assert!(why.contains("@spinframework/build-tools 1.0.x"), "{why}");
        assert!(wasi_p3_refusal(&names[..1]).is_none());
    }
}
