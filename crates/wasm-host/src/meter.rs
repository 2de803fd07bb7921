//! Leaf module: what the capabilities of an instance share with the invocation it is serving — its
//! deadline, and the counters the report's [`crate::Usage`] is read from. A warm instance serves many
//! invocations; each gets a new [`Current`], handed to every capability by
//! [`crate::state::InstanceState::begin`], so nothing of one invocation's deadline or usage reaches the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;
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

#[cfg(test)]
mod tests {
    use super::*;

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
