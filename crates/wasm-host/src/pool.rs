//! Warm instances for `instance_mode = "reuse"`: one pool per loaded revision. An instance serves one request
//! at a time; after a clean request it goes back to the pool (newest first, so its caches are warm). An
//! instance that trapped, timed out, hit a limit or did not answer is dropped, never reused. A guest that
//! fails on a *reused* instance after succeeding on it before is taken as not reusable: the pool falls back
//! to fresh instances for good (logged), and a bodiless request that hit the failure is retried fresh.

use crate::logs::LogPipe;
use crate::state::InstanceState;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wisp_core::{FunctionKind, InstanceMode, Scaling};

/// What the pool needs from a function's scaling settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Fresh or reuse.
    pub mode: InstanceMode,
    /// Replace an instance after this many requests.
    pub max_requests_per_instance: u32,
    /// Drop idle instances after this long.
    pub idle_timeout: Duration,
    /// Keep at most this many idle instances.
    pub max_idle: usize,
    /// Keep at least this many warm: never expired for idleness, never evicted for another function.
    pub min: usize,
}

impl PoolConfig {
    /// The pool settings for a function of `kind` with `scaling`.
    pub fn new(scaling: &Scaling, kind: FunctionKind) -> Self {
        PoolConfig {
            mode: scaling.mode(kind),
            max_requests_per_instance: scaling.max_requests_per_instance,
            idle_timeout: Duration::from_secs(scaling.idle_timeout_seconds.into()),
            max_idle: scaling.max_idle_instances as usize,
            min: scaling.min_instances as usize,
        }
    }
}

pub(crate) struct Warm {
    pub store: Store<InstanceState>,
    pub proxy: Proxy,
    pub logs: LogPipe,
    pub served: u32,
    pub idle_since: Instant,
}

/// The warm instances of one revision.
pub struct Pool {
    config: Mutex<PoolConfig>,
    idle: Mutex<VecDeque<Warm>>,
    unreusable: AtomicBool,
    reused: AtomicU64,
    warm_failures_in_a_row: AtomicU32,
    /// Idle instances the autoscaler wants ready now (on top of `min`).
    target_idle: AtomicUsize,
    prewarming: AtomicBool,
    proven_reusable: AtomicBool,
}

/// Held while one task creates warm instances for a pool; others then leave it alone.
pub struct Prewarming<'a>(&'a AtomicBool);

impl Drop for Prewarming<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Pool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Pool {
            config: Mutex::new(config),
            idle: Mutex::new(VecDeque::new()),
            unreusable: AtomicBool::new(false),
            reused: AtomicU64::new(0),
            warm_failures_in_a_row: AtomicU32::new(0),
            target_idle: AtomicUsize::new(0),
            prewarming: AtomicBool::new(false),
            proven_reusable: AtomicBool::new(false),
        }
    }

    /// Applies new settings (no redeploy); switching to fresh drops the idle instances.
    pub fn set_config(&self, config: PoolConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
        if config.mode == InstanceMode::Fresh {
            drop(self.take_all()); // torn down outside the lock
        }
    }

    fn take_all(&self) -> VecDeque<Warm> {
        std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// When the oldest idle instance that may be evicted (one above the provisioned minimum) went idle.
    pub(crate) fn oldest_evictable(&self) -> Option<Instant> {
        let min = self.config().min;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() > min { idle.front().map(|w| w.idle_since) } else { None }
    }

    /// Removes the oldest idle instance above the provisioned minimum, for the caller to drop (outside
    /// this pool's lock).
    pub(crate) fn evict_oldest(&self) -> Option<Warm> {
        let min = self.config().min;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() > min { idle.pop_front() } else { None }
    }

    pub(crate) fn config(&self) -> PoolConfig {
        *self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mode in force: the configured one, or fresh after the guest proved not reusable.
    pub fn mode(&self) -> InstanceMode {
        if self.unreusable.load(Ordering::Relaxed) { InstanceMode::Fresh } else { self.config().mode }
    }

    /// Whether the guest failed on reuse and the pool fell back to fresh instances.
    pub fn fell_back(&self) -> bool {
        self.unreusable.load(Ordering::Relaxed)
    }

    /// Idle warm instances right now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Requests served by an already-used instance.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    pub(crate) fn checkout(&self) -> Option<Warm> {
        if self.mode() != InstanceMode::Reuse {
            return None;
        }
        let PoolConfig { idle_timeout, min, .. } = self.config();
        let mut expired = Vec::new();
        let w = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Oldest at the front: drop the expired ones, never below the provisioned minimum.
            while idle.len() > min && idle.front().is_some_and(|w| w.idle_since.elapsed() >= idle_timeout) {
                expired.extend(idle.pop_front());
            }
            idle.pop_back()
        };
        drop(expired); // torn down outside the lock
        if w.is_some() {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        w
    }

    /// How many more warm instances the provisioned minimum or the autoscaler's target ask for.
    pub fn missing(&self) -> usize {
        if self.mode() != InstanceMode::Reuse {
            return 0;
        }
        let c = self.config();
        let want = c.min.max(self.target_idle.load(Ordering::Relaxed)).min(c.max_idle);
        want.saturating_sub(self.idle())
    }

    /// Carries out an autoscaling decision: `idle` warm instances should be ready besides those serving.
    /// Extra idle instances are dropped now, oldest first (never below the provisioned minimum); missing
    /// ones are for [`Pool::missing`] and the caller's prewarm. Returns how many were dropped.
    pub fn set_target_idle(&self, idle: usize) -> usize {
        self.target_idle.store(idle, Ordering::Relaxed);
        let keep = idle.max(self.config().min);
        let dropped: Vec<Warm> = {
            let mut q = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let extra = q.len().saturating_sub(keep);
            q.drain(..extra).collect()
        };
        // Instances are torn down outside the lock.
        dropped.len()
    }

    /// Claims the right to prewarm this pool; `None` while another task is doing it.
    pub fn start_prewarming(&self) -> Option<Prewarming<'_>> {
        (!self.prewarming.swap(true, Ordering::AcqRel)).then(|| Prewarming(&self.prewarming))
    }

    /// Returns a clean instance to the pool, or hands it back when the pool does not keep it (fresh mode,
    /// request cap reached, pool full) so the caller decides when to pay for tearing it down.
    pub(crate) fn checkin(&self, mut w: Warm) -> Option<Warm> {
        let c = self.config();
        if self.mode() != InstanceMode::Reuse || w.served >= c.max_requests_per_instance {
            return Some(w);
        }
        w.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < c.max_idle {
            idle.push_back(w);
            None
        } else {
            Some(w)
        }
    }

    /// Warm failures in a row (with no warm success between) that prove a guest not reusable when the
    /// requests carried bodies and could not be retried.
    const WARM_FAILURES_TO_FALL_BACK: u32 = 3;

    pub(crate) fn warm_succeeded(&self) {
        self.warm_failures_in_a_row.store(0, Ordering::Relaxed);
        if !self.proven_reusable.load(Ordering::Relaxed) {
            self.proven_reusable.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a reused instance has served a request successfully: the guest can be reused (later warm
    /// failures are the guest's own failures, counted by the in-a-row rule).
    pub(crate) fn proven_reusable(&self) -> bool {
        self.proven_reusable.load(Ordering::Relaxed)
    }

    pub(crate) fn warm_failed(&self, function: &str, error: &str) {
        if self.warm_failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= Self::WARM_FAILURES_TO_FALL_BACK {
            self.mark_unreusable(
                function,
                &format!(
                    "{} reused instances failed in a row, the last with: {error}",
                    Self::WARM_FAILURES_TO_FALL_BACK
                ),
            );
        }
    }

    pub(crate) fn mark_unreusable(&self, function: &str, why: &str) {
        if !self.unreusable.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                function,
                reason = why,
                "guest failed on a reused instance: falling back to a fresh instance per request"
            );
            drop(self.take_all());
        }
    }
}
