//! Leaf module: what bounds one invocation — the memory limiter (all of an instance's memories together),
//! the resource-table and field-size caps that bound host memory spent for the guest, the deadline, and the
//! classification of a guest failure.

use crate::InvokeError;
use std::time::Instant;
use wasmtime::{Store, UpdateDeadline};
use wisp_core::ErrorClass;

/// Largest wasi:http header field (name + value) a guest may build; the rest of wasmtime's 128 KiB default
/// would let a guest hold that much host memory per `fields` resource.
pub(crate) const FIELD_SIZE_LIMIT: usize = 32 * 1024;

/// Resource-table entries an instance may hold at once: `32 × memory_mb`, at least 1024. Each entry can
/// pin host memory (a `fields` up to [`FIELD_SIZE_LIMIT`]), so the cap scales with the memory the function
/// was given instead of wasmtime's default of a million.
pub(crate) fn resource_table_cap(memory_mb: u32) -> usize {
    (memory_mb as usize).saturating_mul(32).max(1024)
}

/// Enforces a function's memory limit over all of an instance's linear memories together (a component
/// may have several); growing past it stops the instance.
pub(crate) struct Limiter {
    memory_bytes: usize,
    in_use: usize,
    /// Most `in_use` seen (usage: peak memory).
    pub(crate) peak: usize,
    pub(crate) exceeded: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} MiB exceeded")]
pub(crate) struct MemoryExceeded(pub usize);

#[derive(Debug, thiserror::Error)]
#[error("deadline of {0} ms exceeded")]
pub(crate) struct DeadlineExceeded(pub u64);

impl Limiter {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Limiter { memory_bytes, in_use: 0, peak: 0, exceeded: false }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.in_use.saturating_sub(current).saturating_add(desired);
        if total > self.memory_bytes {
            self.exceeded = true;
            return Err(wasmtime::Error::new(MemoryExceeded(self.memory_bytes >> 20)));
        }
        self.in_use = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Arms the store's deadline: every epoch tick the guest yields to the executor (so a busy guest cannot
/// starve other requests on this worker), and past `timeout` it traps.
/// `deadline` is the invocation's one deadline (`timeout_ms` after it started).
pub(crate) fn arm_deadline<T: 'static>(store: &mut Store<T>, deadline: Instant, timeout_ms: u64) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded(timeout_ms)))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Whether `e` is the pooling allocator running out of slots (instances, memories, tables, stacks): node
/// capacity, not a guest failure.
pub(crate) fn is_capacity(e: &wasmtime::Error) -> bool {
    e.is::<wasmtime::PoolConcurrencyLimitError>()
}

/// The error for a node out of instance slots.
pub(crate) fn capacity_error(e: &wasmtime::Error) -> InvokeError {
    InvokeError::new(
        ErrorClass::Capacity,
        format!("the node has no free instance slot ({e}); retry later, or raise wisp up --max-instances"),
    )
}

/// The error of an invocation that ran past its deadline (epoch check or the executor's timer alike).
pub(crate) fn timeout_error(timeout_ms: u64) -> InvokeError {
    InvokeError::new(ErrorClass::Timeout, format!("function exceeded its timeout of {timeout_ms} ms"))
}

/// Classifies a guest failure.
pub(crate) fn classify(e: &wasmtime::Error, memory_exceeded: bool, timeout_ms: u64) -> InvokeError {
    if is_capacity(e) {
        return capacity_error(e);
    }
    if e.is::<DeadlineExceeded>() || matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
        return timeout_error(timeout_ms);
    }
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
    }) {
        return InvokeError::new(
            ErrorClass::GuestFailure,
            "stopped: the instance holds the most host resources it may (its resource table is full: 32 entries per MiB of memory_mb, at least 1024); it leaks handles, e.g. fields it never drops",
        );
    }
    if let Some(m) = e.downcast_ref::<MemoryExceeded>() {
        return InvokeError::new(ErrorClass::GuestFailure, format!("stopped: {m}"));
    }
    if memory_exceeded {
        return InvokeError::new(ErrorClass::GuestFailure, format!("stopped at the memory limit: {e:?}"));
    }
    InvokeError::new(ErrorClass::GuestFailure, format!("guest failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_is_counted_across_memories() {
        let mut l = Limiter::new(10 << 20);
        assert!(l.memory_growing(0, 6 << 20, None).unwrap());
        // A second memory: 6 + 5 > 10.
        assert!(l.memory_growing(0, 5 << 20, None).is_err());
        assert!(l.exceeded);
        let mut l = Limiter::new(10 << 20);
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        // The first grows from 4 to 6: 6 + 4 = 10 fits.
        assert!(l.memory_growing(4 << 20, 6 << 20, None).unwrap());
        assert!(l.memory_growing(6 << 20, 7 << 20, None).is_err());
    }

    #[test]
    fn the_table_cap_scales_with_memory() {
        assert_eq!(resource_table_cap(1), 1024);
        assert_eq!(resource_table_cap(128), 4096);
    }
}
