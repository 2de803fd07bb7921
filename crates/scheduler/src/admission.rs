//! Admission control (the activator's job): every invocation holds a permit from its function (at most
//! `max_instances` at once) and one from the node — from the function's reserved share first
//! (`reserved_concurrency`), else from the shared remainder of the node's capacity. Requests that cannot be
//! admitted at once wait in a FIFO queue bounded by `max_queue_depth` (full → 429) for at most
//! `queue_timeout_ms` (→ 503). A waiting request whose client goes away simply leaves the queue: waiting is
//! cancel-safe. Permits are released when the guest is done (the invocation is reported). Scaling changes resize a
//! function's bound and reservation in place ([`Gate::reconfigure`]).

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wisp_core::{ErrorClass, Scaling};
use wisp_wasm_host::InvokeError;

/// A semaphore whose size can change while permits are out: shrinking forgets what is free now and
/// records the rest as debt, paid by forgetting permits as they come back (no task waits for them, so a
/// resize never blocks anyone queued behind it).
pub(crate) struct Resizable {
    sem: Arc<Semaphore>,
    debt: AtomicUsize,
}

impl Resizable {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Resizable { sem: Arc::new(Semaphore::new(n)), debt: AtomicUsize::new(0) })
    }

    fn grow(&self, n: usize) {
        let mut n = n;
        // Pay debt first.
        let _ = self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
            let pay = d.min(n);
            n -= pay;
            Some(d - pay)
        });
        if n > 0 {
            self.sem.add_permits(n);
        }
    }

    fn shrink(&self, n: usize) {
        let forgotten = self.sem.forget_permits(n);
        self.debt.fetch_add(n - forgotten, Ordering::AcqRel);
    }

    fn resize(&self, from: usize, to: usize) {
        if to > from {
            self.grow(to - from);
        } else if from > to {
            self.shrink(from - to);
        }
    }

    /// Gives a permit back, or forgets it while there is debt.
    fn release(&self, permit: OwnedSemaphorePermit) {
        if self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1)).is_ok() {
            permit.forget();
        }
    }
}

/// A permit that goes back through its [`Resizable`].
struct Permit(Option<(Arc<Resizable>, OwnedSemaphorePermit)>);

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((from, p)) = self.0.take() {
            from.release(p);
        }
    }
}

fn try_take(from: &Arc<Resizable>) -> Option<Permit> {
    from.sem.clone().try_acquire_owned().ok().map(|p| Permit(Some((from.clone(), p))))
}

async fn take(from: &Arc<Resizable>) -> Permit {
    let p = from.sem.clone().acquire_owned().await.expect("never closed");
    Permit(Some((from.clone(), p)))
}

/// The node's capacity: a shared pool plus each function's reservation.
pub struct Node {
    capacity: usize,
    shared: Arc<Resizable>,
    reserved_total: AtomicUsize,
    closed: std::sync::atomic::AtomicBool,
    closing: tokio::sync::Notify,
}

impl Node {
    /// A node that runs at most `capacity` invocations at once.
    pub fn new(capacity: usize) -> Self {
        Node {
            capacity,
            shared: Resizable::new(capacity),
            reserved_total: AtomicUsize::new(0),
            closed: Default::default(),
            closing: Default::default(),
        }
    }

    /// Shutdown: requests waiting for admission, and any that arrive from now on, get 503; invocations
    /// already admitted run to their end.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The total capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Capacity reserved by all functions.
    pub fn reserved(&self) -> usize {
        self.reserved_total.load(Ordering::Relaxed)
    }

    /// Moves `from` → `to` permits between the shared pool and one function's reservation.
    fn rereserve(&self, from: usize, to: usize) {
        if to > from {
            self.reserved_total.fetch_add(to - from, Ordering::Relaxed);
        } else {
            self.reserved_total.fetch_sub(from - to, Ordering::Relaxed);
        }
        // The shared pool shrinks by what the reservation grows, and the reverse.
        self.shared.resize(to, from);
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

fn shutting_down() -> InvokeError {
    InvokeError { class: ErrorClass::Unavailable, message: "the node is shutting down; retry on another node".into() }
}

/// No per-function bound (`max_instances = 0`): the node bounds it.
const UNBOUNDED: usize = Semaphore::MAX_PERMITS >> 1;

/// One function's admission state. It lives as long as the function: scaling changes adjust it in place
/// ([`Gate::reconfigure`]), so in-flight counts, the queue and the load meter carry over.
pub struct Gate {
    node: Arc<Node>,
    settings: Mutex<Settings>,
    limit: Arc<Resizable>,
    reserved: Arc<Resizable>,
    waiting: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    meter: Arc<Meter>,
    peak_in_flight: AtomicUsize,
    peak_waiting: AtomicUsize,
    /// Requests refused since the function started here: its queue was full (429), or no instance became free
    /// within the queue timeout (503).
    rejected: [AtomicU64; 2],
}

/// Why admission refused a request (the index into [`Gate::rejections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The queue was full: 429.
    QueueFull = 0,
    /// No instance became free within the queue timeout: 503.
    QueueTimeout = 1,
}

#[derive(Clone, Copy)]
struct Settings {
    limit: usize,
    reserved: usize,
    max_queue_depth: usize,
    queue_timeout: Duration,
}

impl Settings {
    fn of(scaling: &Scaling) -> Self {
        Settings {
            limit: if scaling.max_instances > 0 { scaling.max_instances as usize } else { UNBOUNDED },
            reserved: scaling.reserved_concurrency as usize,
            max_queue_depth: scaling.max_queue_depth as usize,
            queue_timeout: Duration::from_millis(scaling.queue_timeout_ms.into()),
        }
    }
}

/// Held for the duration of one invocation.
pub struct Admission {
    _limit: Permit,
    _node: Permit,
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
        let settings = Settings::of(scaling);
        node.rereserve(0, settings.reserved);
        Gate {
            node,
            limit: Resizable::new(settings.limit),
            reserved: Resizable::new(settings.reserved),
            settings: Mutex::new(settings),
            waiting: AtomicUsize::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            meter: Arc::default(),
            peak_in_flight: AtomicUsize::new(0),
            peak_waiting: AtomicUsize::new(0),
            rejected: Default::default(),
        }
    }

    /// Applies changed scaling settings in place: the bound and the reservation are resized (permits in use
    /// stay valid and are taken back as they are released), nothing waits, nothing is reset.
    pub fn reconfigure(&self, scaling: &Scaling) {
        let new = Settings::of(scaling);
        let mut s = self.settings.lock();
        self.limit.resize(s.limit, new.limit);
        self.reserved.resize(s.reserved, new.reserved);
        self.node.rereserve(s.reserved, new.reserved);
        *s = new;
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

    /// Requests refused since the function started on this node: `[queue full, queue timeout]`.
    pub fn rejections(&self) -> [u64; 2] {
        self.rejected.each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// Invocations admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Admits one invocation, waiting in the queue if needed.
    pub async fn admit(&self) -> Result<Admission, InvokeError> {
        if self.node.is_closed() {
            return Err(shutting_down());
        }
        // Rejected and cancelled requests count as load for as long as they were here.
        let metered = Metered::new(&self.meter);
        // Fast path: no waiting needed.
        let metered = match self.try_admit(metered) {
            Ok(a) => return Ok(a),
            Err(m) => m,
        };
        let Settings { max_queue_depth, queue_timeout, .. } = *self.settings.lock();
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        self.peak_waiting.fetch_max((ahead + 1).min(max_queue_depth), Ordering::Relaxed);
        if ahead >= max_queue_depth {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            self.rejected[Rejection::QueueFull as usize].fetch_add(1, Ordering::Relaxed);
            return Err(InvokeError {
                class: ErrorClass::Overloaded,
                message: format!("the function's queue is full ({max_queue_depth} waiting); retry shortly"),
            });
        }
        let _waiting = Waiting(&self.waiting);
        let closing = self.node.closing.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        if self.node.is_closed() {
            return Err(shutting_down());
        }
        let waited = tokio::select! {
            a = tokio::time::timeout(queue_timeout, self.admit_waiting(metered)) => a,
            () = closing => return Err(shutting_down()),
        };
        match waited {
            Ok(a) => Ok(a),
            Err(_) => {
                self.rejected[Rejection::QueueTimeout as usize].fetch_add(1, Ordering::Relaxed);
                Err(InvokeError {
                    class: ErrorClass::Unavailable,
                    message: format!(
                        "no instance became free within the queue timeout of {} ms",
                        queue_timeout.as_millis()
                    ),
                })
            }
        }
    }

    fn try_admit(&self, metered: Metered) -> Result<Admission, Metered> {
        let Some(limit) = try_take(&self.limit) else {
            return Err(metered);
        };
        match try_take(&self.reserved).or_else(|| try_take(&self.node.shared)) {
            Some(node) => Ok(self.admitted(limit, node, metered)),
            None => Err(metered),
        }
    }

    async fn admit_waiting(&self, metered: Metered) -> Admission {
        let limit = take(&self.limit).await;
        let node = tokio::select! {
            p = take(&self.reserved) => p,
            p = take(&self.node.shared) => p,
        };
        self.admitted(limit, node, metered)
    }

    fn admitted(&self, limit: Permit, node: Permit, m: Metered) -> Admission {
        let running = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(running, Ordering::Relaxed);
        Admission { _limit: limit, _node: node, in_flight: self.in_flight.clone(), _metered: m }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.node.rereserve(self.settings.get_mut().reserved, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaling(max_instances: u32, reserved: u32) -> Scaling {
        Scaling { max_instances, reserved_concurrency: reserved, max_queue_depth: 0, ..Scaling::default() }
    }

    #[tokio::test]
    async fn a_resize_takes_effect_without_waiting_and_keeps_what_is_in_flight() {
        let node = Arc::new(Node::new(4));
        let gate = Gate::new(node.clone(), &scaling(2, 0));
        let a = gate.admit().await.unwrap();
        let b = gate.admit().await.unwrap();
        assert!(gate.admit().await.is_err(), "bounded at 2");
        // Down to 1 while 2 run: nothing blocks, and the next admission waits for both to finish.
        gate.reconfigure(&scaling(1, 0));
        assert_eq!(gate.in_flight(), 2);
        drop(a);
        assert!(gate.admit().await.is_err(), "the first release pays the debt");
        drop(b);
        let c = gate.admit().await.unwrap();
        assert!(gate.admit().await.is_err());
        drop(c);
        // Up to 3.
        gate.reconfigure(&scaling(3, 0));
        let held: Vec<_> = futures_admit(&gate, 3).await;
        assert!(gate.admit().await.is_err());
        drop(held);
    }

    async fn futures_admit(gate: &Gate, n: usize) -> Vec<Admission> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(gate.admit().await.unwrap());
        }
        v
    }

    #[tokio::test]
    async fn a_reservation_moves_capacity_while_the_node_is_busy() {
        let node = Arc::new(Node::new(3));
        let other = Gate::new(node.clone(), &scaling(0, 0));
        let busy = futures_admit(&other, 3).await;
        // Reserving 2 on a full node: no task is spawned and nobody waits behind it.
        let reserving = Gate::new(node.clone(), &scaling(0, 2));
        assert_eq!(node.reserved(), 2);
        drop(busy);
        // The shared pool is 1 now; the reservation's 2 are its own.
        let x = other.admit().await.unwrap();
        assert!(other.admit().await.is_err());
        let r = futures_admit(&reserving, 2).await;
        // Reserving beyond its share is not possible: the reserved gate falls back to the shared pool only.
        assert!(reserving.admit().await.is_err());
        drop((x, r));
        // Changing the reservation in place gives capacity back.
        reserving.reconfigure(&scaling(0, 0));
        assert_eq!(node.reserved(), 0);
        let all = futures_admit(&other, 3).await;
        drop(all);
        drop(reserving);
        assert_eq!(node.reserved(), 0);
    }
}
