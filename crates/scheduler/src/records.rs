//! Invocation records: the recent invocations of each function, as `wisp logs` and `wisp status` show them.
//! Bounded three ways — records per function, bytes per function and bytes per node — with error text
//! capped, so 10 000 functions cannot grow the node without bound. Records are shared (`Arc`), so a reader
//! copies pointers under the lock and formats, summarises and serialises outside it: a report never waits
//! for a reader. (Persisted records and usage belong to the metering issue.)

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
pub use wisp_core::record::InvocationRecord;

/// Invocation records kept per function, at most.
pub const DEFAULT_LOG_RING: usize = 200;

/// Phase timings over a function's recent invocations, split by cold and warm starts: the cold-start
/// transparency `wisp status NAME` shows.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PhaseSummary {
    /// Invocations summarised (the most recent ones kept).
    pub invocations: usize,
    /// Of those, how many failed.
    pub errors: usize,
    /// Invocations that started a new instance.
    pub cold: Option<PhaseStats>,
    /// Invocations served by a warm instance.
    pub warm: Option<PhaseStats>,
}

/// Median and 99th percentile per phase, microseconds.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PhaseStats {
    /// Invocations in this group.
    pub count: usize,
    /// `[p50, p99]` of the queue wait.
    pub queue_us: [u64; 2],
    /// `[p50, p99]` of instantiation.
    pub instantiate_us: [u64; 2],
    /// `[p50, p99]` of guest initialisation.
    pub init_us: [u64; 2],
    /// `[p50, p99]` of handler until response head.
    pub handler_us: [u64; 2],
    /// `[p50, p99]` of response streaming.
    pub response_us: [u64; 2],
    /// `[p50, p99]` of the whole invocation.
    pub duration_us: [u64; 2],
}

impl PhaseStats {
    fn of(records: &[&InvocationRecord]) -> Option<Self> {
        if records.is_empty() {
            return None;
        }
        let pct = |f: fn(&InvocationRecord) -> u64| {
            let mut v: Vec<u64> = records.iter().map(|r| f(r)).collect();
            v.sort_unstable();
            let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
            [at(0.5), at(0.99)]
        };
        Some(PhaseStats {
            count: records.len(),
            queue_us: pct(|r| r.queue_us),
            instantiate_us: pct(|r| r.instantiate_us),
            init_us: pct(|r| r.init_us),
            handler_us: pct(|r| r.handler_us),
            response_us: pct(|r| r.response_us),
            duration_us: pct(|r| r.duration_us),
        })
    }
}

impl PhaseSummary {
    /// Summarises `records`: phase statistics over the successful ones, failures counted.
    pub fn of(records: &[Arc<InvocationRecord>]) -> Self {
        let (cold, warm): (Vec<&InvocationRecord>, Vec<&InvocationRecord>) =
            records.iter().map(|r| &**r).filter(|r| r.error.is_none()).partition(|r| r.cold);
        PhaseSummary {
            invocations: records.len(),
            errors: records.iter().filter(|r| r.error.is_some()).count(),
            cold: PhaseStats::of(&cold),
            warm: PhaseStats::of(&warm),
        }
    }
}

/// Bytes of records one function keeps, at most (its newest record is always kept).
pub const DEFAULT_FUNCTION_RECORD_BYTES: usize = 2 << 20;
/// Bytes of records the whole node keeps, at most; past it each push drops its function's oldest first.
pub const DEFAULT_NODE_RECORD_BYTES: usize = 256 << 20;
/// Longest error text kept in a record.
pub const MAX_ERROR_BYTES: usize = 4096;

/// Approximate heap bytes a record holds.
fn record_bytes(r: &InvocationRecord) -> usize {
    std::mem::size_of::<InvocationRecord>()
        + r.id.len()
        + r.revision.len()
        + r.logs.len()
        + r.error.as_ref().map_or(0, |e| e.len())
}

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
pub fn cap_text(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …(cut)");
    }
    text
}

/// The node-wide record budget, shared by every function's [`Records`].
pub(crate) struct RecordsBudget {
    used: AtomicUsize,
    max: usize,
}

impl RecordsBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(RecordsBudget { used: AtomicUsize::new(0), max })
    }
}

/// One function's recent records, newest last.
pub(crate) struct Records {
    ring: Mutex<Ring>,
    budget: Arc<RecordsBudget>,
    max_records: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Ring {
    records: VecDeque<Arc<InvocationRecord>>,
    bytes: usize,
}

impl Records {
    pub(crate) fn new(budget: Arc<RecordsBudget>, max_records: usize, max_bytes: usize) -> Self {
        Records { ring: Mutex::default(), budget, max_records: max_records.max(1), max_bytes }
    }

    /// Adds a record; the oldest ones past any bound are dropped (outside the lock).
    pub(crate) fn push(&self, rec: InvocationRecord) -> Arc<InvocationRecord> {
        let n = record_bytes(&rec);
        let rec = Arc::new(rec);
        let kept = rec.clone();
        let mut dropped = Vec::new();
        {
            let mut ring = self.ring.lock();
            ring.records.push_back(rec);
            ring.bytes += n;
            self.budget.used.fetch_add(n, Ordering::Relaxed);
            while ring.records.len() > 1
                && (ring.records.len() > self.max_records
                    || ring.bytes > self.max_bytes
                    || self.budget.used.load(Ordering::Relaxed) > self.budget.max)
            {
                let old = ring.records.pop_front().expect("more than one");
                let b = record_bytes(&old);
                ring.bytes -= b;
                self.budget.used.fetch_sub(b, Ordering::Relaxed);
                dropped.push(old);
            }
        }
        drop(dropped);
        kept
    }

    /// The newest `limit` records, oldest first: pointers copied under the lock, nothing else.
    pub(crate) fn recent(&self, limit: usize) -> Vec<Arc<InvocationRecord>> {
        let ring = self.ring.lock();
        ring.records.iter().skip(ring.records.len().saturating_sub(limit)).cloned().collect()
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.ring.get_mut().bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: usize, logs: usize) -> InvocationRecord {
        InvocationRecord {
            id: id.to_string(),
            trigger: std::borrow::Cow::Borrowed("http"),
            at_ms: 0,
            revision: "r".into(),
            status: 200,
            error: None,
            cold: false,
            queue_us: 0,
            instantiate_us: 0,
            init_us: 0,
            handler_us: 0,
            response_us: 0,
            duration_us: 0,
            logs: "x".repeat(logs),
            logs_truncated: false,
            peak_memory_bytes: 0,
            egress_bytes: 0,
            wall_us: 0,
            cpu_us: 0,
            memory_limit_bytes: 0,
            bytes_in: 0,
            bytes_out: 0,
            services: Default::default(),
        }
    }

    fn ids(r: &Records) -> Vec<String> {
        r.recent(usize::MAX).iter().map(|r| r.id.clone()).collect()
    }

    #[test]
    fn bounded_by_count_function_bytes_and_node_bytes() {
        let budget = RecordsBudget::new(1 << 20);
        let by_count = Records::new(budget.clone(), 3, 1 << 20);
        for i in 0..5 {
            by_count.push(rec(i, 10));
        }
        assert_eq!(ids(&by_count), ["2", "3", "4"]);

        let by_bytes = Records::new(budget.clone(), 100, 3000);
        for i in 0..5 {
            by_bytes.push(rec(i, 1000));
        }
        assert_eq!(ids(&by_bytes), ["3", "4"]);
        // The newest is kept even when it alone is over the bound.
        by_bytes.push(rec(9, 10_000));
        assert_eq!(ids(&by_bytes), ["9"]);

        // The node's budget: a function pushing past it drops its own oldest.
        let small = RecordsBudget::new(5000);
        let a = Records::new(small.clone(), 100, 1 << 20);
        let b = Records::new(small.clone(), 100, 1 << 20);
        a.push(rec(1, 2000));
        b.push(rec(2, 2000));
        b.push(rec(3, 2000));
        assert_eq!((ids(&a), ids(&b)), (vec!["1".to_string()], vec!["3".to_string()]));
        drop(b);
        assert!(small.used.load(Ordering::Relaxed) < 2500);
    }

    #[test]
    fn error_text_is_capped_on_a_char_boundary() {
        assert_eq!(cap_text("short".into(), 10), "short");
        let cut = cap_text("é".repeat(10), 5);
        assert_eq!(cut, "éé …(cut)");
    }
}
