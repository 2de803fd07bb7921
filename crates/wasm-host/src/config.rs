//! Node-level engine configuration.

/// Default number of instances that may exist at once on this node.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// Default ceiling for any one linear memory, MiB.
pub const DEFAULT_MAX_MEMORY_MB: u32 = 1024;
/// Default epoch tick: the granularity of deadlines and of yielding to other requests.
pub const DEFAULT_EPOCH_TICK_MS: u64 = 10;

/// Bytes of each linear memory the pooling allocator resets in place (instead of decommitting) when it can
/// find the dirty pages (`PAGEMAP_SCAN`): only what an instance wrote is copied back, so this is a cap.
pub const KEEP_RESIDENT_BYTES_WITH_PAGEMAP: usize = 16 << 20;
/// The same without `PAGEMAP_SCAN`: the first bytes are reset whether dirty or not, so keep it small.
pub const KEEP_RESIDENT_BYTES_WITHOUT_PAGEMAP: usize = 1 << 20;

/// Whether the running kernel has the `PAGEMAP_SCAN` ioctl (Linux 6.7+).
pub fn kernel_has_pagemap_scan() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(major), Some(minor)) if (major, minor) >= (6, 7))
}

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
    /// instance in its slot (no page faults for it); the rest is decommitted. `None`: 16 MiB with
    /// `PAGEMAP_SCAN`, else 1 MiB.
    pub keep_resident_bytes: Option<usize>,
    /// Find the pages an instance dirtied with Linux's `PAGEMAP_SCAN` (6.7+) and reset only those, up to
    /// `keep_resident_bytes`; without it the first `keep_resident_bytes` are reset whether dirty or not.
    /// Ignored where the kernel lacks it. This is what makes big-heap fresh instances cheap: a JS or
    /// Python instance dirties a few MiB, which are copied back instead of decommitted and faulted in again.
    pub pagemap_scan: bool,
    /// Outbound HTTP settings (`[outbound_http]` of `wisp up --config`).
    pub outbound: crate::OutboundConfig,
    /// Read the thread CPU clock around every poll of a guest (metering's CPU time); off (`wisp up
    /// --metering off`, for measuring what metering costs) records zero CPU time.
    pub cpu_time: bool,
}

impl HostConfig {
    /// Whether dirty-page scanning is on and the kernel has it.
    pub fn pagemap_scan_in_use(&self) -> bool {
        self.pagemap_scan && kernel_has_pagemap_scan()
    }

    /// The keep-resident size in force.
    pub fn keep_resident(&self) -> usize {
        self.keep_resident_bytes.unwrap_or(if self.pagemap_scan_in_use() {
            KEEP_RESIDENT_BYTES_WITH_PAGEMAP
        } else {
            KEEP_RESIDENT_BYTES_WITHOUT_PAGEMAP
        })
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_mb: DEFAULT_MAX_MEMORY_MB,
            epoch_tick_ms: DEFAULT_EPOCH_TICK_MS,
            pooling: true,
            preinit_snapshots: true,
            keep_resident_bytes: None,
            pagemap_scan: true,
            outbound: crate::OutboundConfig::default(),
            cpu_time: true,
        }
    }
}
