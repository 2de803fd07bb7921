//! Admission control (the activator's job): every invocation holds a permit from its function (at most
//! `max_instances` at once) and one from the node — from the function's reserved share first
//! (`reserved_concurrency`), else from the shared remainder of the node's capacity. Requests that cannot be
//! admitted at once wait in a FIFO queue bounded by `max_queue_depth` (full → 429) for at most
//! `queue_timeout_ms` (→ 503). A waiting request whose client goes away simply leaves the queue: waiting is
//! cancel-safe. Permits are released when the guest is done (the invocation is reported).

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wisp_core::{ErrorClass, Scaling};
use wisp_wasm_host::InvokeError;

/// The node's capacity: a shared pool plus each function's reservation.
pub struct Node {
    capacity: usize,
    shared: Arc<Semaphore>,
    reserved_total: AtomicUsize,
}

impl Node {
    /// A node that runs at most `capacity` invocations at once.
    pub fn new(capacity: usize) -> Self {
        Node { capacity, shared: Arc::new(Semaphore::new(capacity)), reserved_total: AtomicUsize::new(0) }
    }

    /// The total capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Capacity reserved by all functions.
    pub fn reserved(&self) -> usize {
        self.reserved_total.load(Ordering::Relaxed)
    }

    fn reserve(&self, n: usize) {
        self.reserved_total.fetch_add(n, Ordering::Relaxed);
        // Shrinks the shared pool; permits in use come back to it and are then not re-issued.
        let forgotten = self.shared.forget_permits(n);
        if forgotten < n {
            // Busy right now: take the rest as they are released.
            let shared = self.shared.clone();
            let rest = (n - forgotten) as u32;
            tokio::spawn(async move {
                if let Ok(p) = shared.acquire_many_owned(rest).await {
                    p.forget();
                }
            });
        }
    }

    fn unreserve(&self, n: usize) {
        self.reserved_total.fetch_sub(n, Ordering::Relaxed);
        self.shared.add_permits(n);
    }
}

/// Time-weighted average of the requests at a function (waiting or running): the autoscaler's input. Exact
/// (an integral over time, by Little's law), so short requests at high rates count as they should.
pub struct Meter(Mutex<MeterState>);

struct MeterState {
    current: u64,
    last: Instant,
    window_start: Instant,
    area_ns: u128,
}

impl MeterState {
    fn advance(&mut self, now: Instant) {
        if now > self.last {
            self.area_ns += u128::from(self.current) * (now - self.last).as_nanos();
            self.last = now;
        }
    }
}

impl Default for Meter {
    fn default() -> Self {
        let now = Instant::now();
        Meter(Mutex::new(MeterState { current: 0, last: now, window_start: now, area_ns: 0 }))
    }
}

impl Meter {
    fn enter(&self) {
        let mut m = self.0.lock();
        m.advance(Instant::now());
        m.current += 1;
    }

    fn exit(&self) {
        let mut m = self.0.lock();
        m.advance(Instant::now());
        m.current = m.current.saturating_sub(1);
    }

    /// The average number of requests since the last call (or since creation), and starts a new window.
    pub fn take_average(&self) -> f64 {
        let now = Instant::now();
        let mut m = self.0.lock();
        m.advance(now);
        let span = now.saturating_duration_since(m.window_start).as_nanos();
        let avg = if span == 0 { m.current as f64 } else { m.area_ns as f64 / span as f64 };
        m.area_ns = 0;
        m.window_start = now;
        avg
    }
}

/// Counts one request in the meter until dropped.
struct Metered(Arc<Meter>);

impl Metered {
    fn new(meter: &Arc<Meter>) -> Self {
        meter.enter();
        Metered(meter.clone())
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// One function's admission state.
pub struct Gate {
    node: Arc<Node>,
    limit: Option<Arc<Semaphore>>,
    reserved: Arc<Semaphore>,
    reserved_n: usize,
    waiting: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    max_queue_depth: usize,
    queue_timeout: Duration,
    meter: Arc<Meter>,
    peak_in_flight: AtomicUsize,
    peak_waiting: AtomicUsize,
}

/// Held for the duration of one invocation.
pub struct Admission {
    _limit: Option<OwnedSemaphorePermit>,
    _node: OwnedSemaphorePermit,
    in_flight: Arc<AtomicUsize>,
    _metered: Metered,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gate {
    /// A gate for a function with `scaling` on `node`.
    pub fn new(node: Arc<Node>, scaling: &Scaling) -> Self {
        let reserved_n = scaling.reserved_concurrency as usize;
        node.reserve(reserved_n);
        Gate {
            node,
            limit: (scaling.max_instances > 0).then(|| Arc::new(Semaphore::new(scaling.max_instances as usize))),
            reserved: Arc::new(Semaphore::new(reserved_n)),
            reserved_n,
            waiting: AtomicUsize::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_queue_depth: scaling.max_queue_depth as usize,
            queue_timeout: Duration::from_millis(scaling.queue_timeout_ms.into()),
            meter: Arc::default(),
            peak_in_flight: AtomicUsize::new(0),
            peak_waiting: AtomicUsize::new(0),
        }
    }

    /// The load meter (requests waiting or running, averaged over time).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The most invocations in flight and requests waiting at any moment since the last call; starts the
    /// next window at the current values. (Instantaneous samples miss short peaks; this does not.)
    pub fn take_peaks(&self) -> (usize, usize) {
        let running = self.peak_in_flight.swap(self.in_flight(), Ordering::Relaxed);
        let waiting = self.peak_waiting.swap(self.waiting(), Ordering::Relaxed);
        (running.max(self.in_flight()), waiting.max(self.waiting()))
    }

    /// Requests waiting for admission.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Invocations admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Admits one invocation, waiting in the queue if needed.
    pub async fn admit(&self) -> Result<Admission, InvokeError> {
        // Rejected and cancelled requests count as load for as long as they were here.
        let metered = Metered::new(&self.meter);
        // Fast path: no waiting needed.
        let metered = match self.try_admit(metered) {
            Ok(a) => return Ok(a),
            Err(m) => m,
        };
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        self.peak_waiting.fetch_max((ahead + 1).min(self.max_queue_depth), Ordering::Relaxed);
        if ahead >= self.max_queue_depth {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(InvokeError {
                class: ErrorClass::Overloaded,
                message: format!("the function's queue is full ({} waiting); retry shortly", self.max_queue_depth),
            });
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.queue_timeout, self.admit_waiting(metered)).await {
            Ok(a) => Ok(a),
            Err(_) => Err(InvokeError {
                class: ErrorClass::Unavailable,
                message: format!(
                    "no instance became free within the queue timeout of {} ms",
                    self.queue_timeout.as_millis()
                ),
            }),
        }
    }

    fn try_admit(&self, metered: Metered) -> Result<Admission, Metered> {
        let limit = match &self.limit {
            Some(l) => match l.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => return Err(metered),
            },
            None => None,
        };
        match self.reserved.clone().try_acquire_owned().or_else(|_| self.node.shared.clone().try_acquire_owned()) {
            Ok(node) => Ok(self.admitted(limit, node, metered)),
            Err(_) => Err(metered),
        }
    }

    async fn admit_waiting(&self, metered: Metered) -> Admission {
        let limit = match &self.limit {
            Some(l) => Some(l.clone().acquire_owned().await.expect("never closed")),
            None => None,
        };
        let node = tokio::select! {
            p = self.reserved.clone().acquire_owned() => p,
            p = self.node.shared.clone().acquire_owned() => p,
        }
        .expect("never closed");
        self.admitted(limit, node, metered)
    }

    fn admitted(&self, limit: Option<OwnedSemaphorePermit>, node: OwnedSemaphorePermit, m: Metered) -> Admission {
        let running = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(running, Ordering::Relaxed);
        Admission { _limit: limit, _node: node, in_flight: self.in_flight.clone(), _metered: m }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.node.unreserve(self.reserved_n);
    }
}
