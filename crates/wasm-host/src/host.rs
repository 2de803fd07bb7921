//! The node's WebAssembly host: the facade the registry and scheduler use (engine key, compile, load).

use crate::code::Code;
use crate::compile::{ArtifactError, Compiled};
use crate::config::HostConfig;
use crate::engine::Shared;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use wisp_core::FunctionKind;

/// The node's WebAssembly host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    pub(crate) shared: Arc<Shared>,
}

impl Host {
    /// Builds the engine (pooling allocator sized from `config`, epoch interruption, copy-on-write memory
    /// images), the linkers, and starts the epoch ticker thread.
    pub fn new(config: HostConfig) -> anyhow::Result<Host> {
        Self::with_services(config, crate::Services::default())
    }

    /// The host, with `services` as the platform services' backends.
    pub fn with_services(config: HostConfig, services: crate::Services) -> anyhow::Result<Host> {
        Ok(Host { shared: Arc::new(Shared::new(config, services)?) })
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

    /// Guests' pooled connections to their databases and brokers: open now (in use and idle), and of those
    /// idle in a pool.
    pub fn outbound_connections(&self) -> (usize, usize) {
        self.shared.services.outbound_db.as_ref().map_or((0, 0), |p| p.counts())
    }

    /// Instance slots of the pooling allocator in use now and in all (`wisp up --max-instances`); None without
    /// the pooling allocator.
    pub fn pool_slots(&self) -> Option<(u64, u32)> {
        let m = self.shared.engine.pooling_allocator_metrics()?;
        Some((m.component_instances(), self.shared.config.max_instances))
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
        crate::compile::compile(&self.shared, kind, bytes)
    }

    /// Loads precompiled code written by [`Host::compile`] and builds its `InstancePre`. Fails (and the
    /// caller recompiles) if the file was made by a different engine build or configuration.
    pub fn load(&self, kind: FunctionKind, cwasm: &Path) -> anyhow::Result<Code> {
        crate::code::load(&self.shared, kind, cwasm)
    }
}

fn wasmtime_version() -> &'static str {
    // Bumped with the dependency pin in the workspace Cargo.toml.
    "48.0.8"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{ArtifactKind, artifact_kind};

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
