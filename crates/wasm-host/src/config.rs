//! Node-level engine configuration.

/// Default number of instances that may exist at once on this node.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// Default ceiling for any one linear memory, MiB.
pub const DEFAULT_MAX_MEMORY_MB: u32 = 1024;
/// Default epoch tick: the granularity of deadlines and of yielding to other requests.
pub const DEFAULT_EPOCH_TICK_MS: u64 = 10;

/// How the engine is set up on this node.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Instances (component or module) that may be live at once: sizes the pooling allocator.
    pub max_instances: u32,
    /// Ceiling of a linear memory; a function's `memory_mb` may not exceed it.
    pub max_memory_mb: u32,
    /// Epoch tick length.
    pub epoch_tick_ms: u64,
    /// Use the pooling allocator (fast instantiation); off falls back to on-demand allocation.
    pub pooling: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_mb: DEFAULT_MAX_MEMORY_MB,
            epoch_tick_ms: DEFAULT_EPOCH_TICK_MS,
            pooling: true,
        }
    }
}
