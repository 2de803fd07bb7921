//! Leaf module: what the capabilities of an instance share with the invocation it is serving — its
//! deadline, and the counters the report's [`crate::Usage`] is read from — and the CPU clock: thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) read around every poll of the guest's future ([`CpuTimed`]), so host calls
//! made inside it count and time spent waiting (I/O, queues, a client) does not. A warm instance serves many
//! invocations; each gets a new [`Current`], handed to every capability by
//! [`crate::state::InstanceState::begin`], so nothing of one invocation's deadline or usage reaches the next.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wisp_core::usage::{Count, Service, ServiceUsage};

/// The invocation an instance is serving now.
#[derive(Debug)]
pub(crate) struct Current {
    /// The invocation's id.
    pub id: Arc<str>,
    /// Its one deadline: host calls made for it stop there.
    pub deadline: Instant,
    /// What it used.
    pub meter: Meter,
    /// Numbers what it makes that needs an id of its own (messages it sends: `<id>-<n>`, from 1).
    seq: AtomicU32,
}

impl Current {
    /// A new invocation's share, with nothing counted.
    pub(crate) fn new(id: Arc<str>, deadline: Instant) -> Arc<Current> {
        Arc::new(Current { id, deadline, meter: Meter::default(), seq: AtomicU32::new(0) })
    }

    /// The invocation's usage: what its meter counted, with its wall time, peak memory and memory limit.
    pub(crate) fn usage(&self, wall: Duration, peak_memory_bytes: u64, memory_limit_bytes: u64) -> crate::Usage {
        let (bytes_in, bytes_out) = self.meter.body_bytes();
        crate::Usage {
            wall,
            cpu: self.meter.cpu_time(),
            peak_memory_bytes,
            memory_limit_bytes,
            bytes_in,
            bytes_out,
            egress_bytes: self.meter.egress_bytes(),
            services: self.meter.services(),
        }
    }

    /// The next id derived from the invocation's: `<id>-1`, `<id>-2`, … — the same sequence when the
    /// invocation runs again (a retried event has the same invocation id).
    pub(crate) fn next_id(&self) -> String {
        format!("{}-{}", self.id, self.seq.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Counters of one invocation's use of the network and the platform services; capabilities add to them as
/// they serve the guest (from any task, hence atomics).
#[derive(Debug, Default)]
pub(crate) struct Meter {
    cpu_ns: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    egress: AtomicU64,
    ops: [AtomicU64; Service::ALL.len()],
    bytes: [AtomicU64; Service::ALL.len()],
}

impl Meter {
    /// Adds `ops` operations moving `bytes` payload bytes of `service`.
    pub(crate) fn count(&self, service: Service, ops: u64, bytes: u64) {
        self.ops[service.index()].fetch_add(ops, Ordering::Relaxed);
        self.bytes[service.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds bytes sent or received over an outbound connection.
    pub(crate) fn egress(&self, bytes: u64) {
        self.egress.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Outbound bytes so far.
    pub(crate) fn egress_bytes(&self) -> u64 {
        self.egress.load(Ordering::Relaxed)
    }

    /// Adds CPU time spent for the invocation (on any thread).
    pub(crate) fn cpu(&self, spent: Duration) {
        self.cpu_ns.fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
    }

    /// CPU time so far.
    pub(crate) fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    /// Adds request body bytes the guest read.
    pub(crate) fn bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds response body bytes the guest produced.
    pub(crate) fn bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Request and response body bytes so far.
    pub(crate) fn body_bytes(&self) -> (u64, u64) {
        (self.bytes_in.load(Ordering::Relaxed), self.bytes_out.load(Ordering::Relaxed))
    }

    /// Service use so far.
    pub(crate) fn services(&self) -> ServiceUsage {
        let mut u = ServiceUsage::default();
        for s in Service::ALL {
            *u.get_mut(s) = Count {
                ops: self.ops[s.index()].load(Ordering::Relaxed),
                bytes: self.bytes[s.index()].load(Ordering::Relaxed),
            };
        }
        u
    }
}

use wisp_store::cpu::thread_cpu_time;

pin_project_lite::pin_project! {
    /// A future whose every poll's thread CPU time is added to an invocation's meter: a guest's future (and
    /// the host calls it makes, which run inside its polls), never the time it waits between polls.
    pub(crate) struct CpuTimed<F> {
        #[pin]
        inner: F,
        current: Option<Arc<Current>>,
    }
}

impl<F> CpuTimed<F> {
    /// `inner`, its CPU time added to `current`'s meter — unless `timed` is false (metering off).
    pub(crate) fn new(inner: F, current: &Arc<Current>, timed: bool) -> Self {
        CpuTimed { inner, current: timed.then(|| current.clone()) }
    }
}

impl<F: Future> Future for CpuTimed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(current) = this.current else { return this.inner.poll(cx) };
        let start = thread_cpu_time();
        let out = this.inner.poll(cx);
        current.meter.cpu(thread_cpu_time().saturating_sub(start));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_work_not_waiting() {
        let m = Meter::default();
        let cpu_timed = |m: &Meter, f: &mut dyn FnMut()| {
            let start = thread_cpu_time();
            f();
            m.cpu(thread_cpu_time() - start);
        };
        cpu_timed(&m, &mut || std::thread::sleep(Duration::from_millis(30)));
        let slept = m.cpu_time();
        assert!(slept < Duration::from_millis(10), "sleeping is not CPU: {slept:?}");
        // Spin until this thread has used 30 ms of CPU (however long that takes on a busy machine).
        let mut x = 0u64;
        cpu_timed(&m, &mut || {
            let t = thread_cpu_time();
            while thread_cpu_time() - t < Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        assert!(m.cpu_time() >= slept + Duration::from_millis(30), "a busy loop is: {:?}", m.cpu_time());
    }

    #[test]
    fn counts_land_on_their_service() {
        let m = Meter::default();
        m.count(Service::KeyValue, 1, 10);
        m.count(Service::KeyValue, 2, 5);
        m.count(Service::Databases, 1, 7);
        m.egress(100);
        let u = m.services();
        assert_eq!(u.kv, Count { ops: 3, bytes: 15 });
        assert_eq!(u.databases, Count { ops: 1, bytes: 7 });
        assert!(u.sql.is_zero() && u.blobs.is_zero() && u.messaging.is_zero());
        assert_eq!(m.egress_bytes(), 100);
    }
}
