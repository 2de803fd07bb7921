//! Node-level engine configuration.

/// Default number of instances that may exist at once on this node.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// Default ceiling for any one linear memory, MiB.
pub const DEFAULT_MAX_MEMORY_MB: u32 = 1024;
/// Default epoch tick: the granularity of deadlines and of yielding to other requests.
pub const DEFAULT_EPOCH_TICK_MS: u64 = 10;

/// Default bytes of each linear memory the pooling allocator resets in place (instead of decommitting).
pub const DEFAULT_KEEP_RESIDENT_BYTES: usize = 1 << 20;

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
    /// Snapshot WAGI modules' initialisation at deploy (Wizer); off runs it in every instance.
    pub preinit_snapshots: bool,
    /// Per linear memory, how much memory a finished instance leaves resident, reset in place for the next
    /// instance in its slot (no page faults for it); the rest is decommitted.
    pub keep_resident_bytes: usize,
    /// Find the pages an instance dirtied with Linux's `PAGEMAP_SCAN` (6.7+) and reset only those, up to
    /// `keep_resident_bytes`; without it the first `keep_resident_bytes` are reset whether dirty or not.
    pub pagemap_scan: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_mb: DEFAULT_MAX_MEMORY_MB,
            epoch_tick_ms: DEFAULT_EPOCH_TICK_MS,
            pooling: true,
            preinit_snapshots: true,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_BYTES,
            pagemap_scan: false,
        }
    }
}
