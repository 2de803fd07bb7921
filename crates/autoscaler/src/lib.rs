//! The autoscaler decides how many instances a function should have. It is pure: observations and time come
//! in as arguments (`now_ms`), a [`Decision`] comes out, and the scheduler/pool carry it out (Knative's
//! `Scale(now)` shape). Semantics follow Knative's KPA:
//!
//! * concurrency is averaged over a **stable window** (default 60 s) and a **panic window** (10 % of it);
//! * desired = ⌈average concurrency / (target concurrency × target utilisation)⌉, computed for both windows;
//! * per decision, scale-up is limited to `max_scale_up_rate` × ready and scale-down to ready / `max_scale_down_rate`;
//! * the autoscaler **panics** when the panic-window desire is ≥ `panic_threshold` × ready; while panicking it
//!   follows the panic window and **never scales down**; it leaves panic a full stable window after the last
//!   over-threshold decision;
//! * it never wants fewer instances than requests were in flight at once during the panic window
//!   ([`Autoscaler::record_peak`]): an instance serves one request at a time, so that many were needed moments
//!   ago. Averages alone sit below the momentary peaks of steady traffic, and acting on them would drop
//!   instances that the next peak re-creates cold, decision after decision;
//! * with no request in flight for `scale_to_zero_grace_seconds` it scales to zero (never below
//!   `min_instances`); bounds `min_instances..=max_instances` apply last.

#![warn(missing_docs)]

use std::collections::VecDeque;

/// Default stable window.
pub const DEFAULT_STABLE_WINDOW_SECONDS: u64 = 60;
/// Default panic window as a percentage of the stable window.
pub const DEFAULT_PANIC_WINDOW_PERCENT: f64 = 10.0;
/// Default panic threshold (desired ÷ ready).
pub const DEFAULT_PANIC_THRESHOLD: f64 = 2.0;
/// Default maximum scale-up factor per decision.
pub const DEFAULT_MAX_SCALE_UP_RATE: f64 = 1000.0;
/// Default maximum scale-down divisor per decision.
pub const DEFAULT_MAX_SCALE_DOWN_RATE: f64 = 2.0;
/// Default idle time before scaling to zero.
pub const DEFAULT_SCALE_TO_ZERO_GRACE_SECONDS: u64 = 30;
/// Default in-flight requests one instance should carry.
pub const DEFAULT_TARGET_CONCURRENCY: f64 = 1.0;
/// Default fraction of the target to aim for (headroom for bursts).
pub const DEFAULT_TARGET_UTILIZATION: f64 = 0.7;

/// Autoscaling settings of one function. Units are in the names.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// In-flight requests one instance should carry.
    pub target_concurrency: f64,
    /// Fraction of `target_concurrency` to aim for, in (0, 1].
    pub target_utilization: f64,
    /// Averaging window for normal decisions.
    pub stable_window_seconds: u64,
    /// Panic window as a percentage of the stable window.
    pub panic_window_percent: f64,
    /// Enter panic when panic-window desire ÷ ready ≥ this.
    pub panic_threshold: f64,
    /// At most ready × this instances after one decision.
    pub max_scale_up_rate: f64,
    /// At least ready ÷ this instances after one decision.
    pub max_scale_down_rate: f64,
    /// Idle seconds (no request in flight) before scaling to zero.
    pub scale_to_zero_grace_seconds: u64,
    /// Instances kept warm whatever the load.
    pub min_instances: u32,
    /// Upper bound; 0 means unbounded.
    pub max_instances: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target_concurrency: DEFAULT_TARGET_CONCURRENCY,
            target_utilization: DEFAULT_TARGET_UTILIZATION,
            stable_window_seconds: DEFAULT_STABLE_WINDOW_SECONDS,
            panic_window_percent: DEFAULT_PANIC_WINDOW_PERCENT,
            panic_threshold: DEFAULT_PANIC_THRESHOLD,
            max_scale_up_rate: DEFAULT_MAX_SCALE_UP_RATE,
            max_scale_down_rate: DEFAULT_MAX_SCALE_DOWN_RATE,
            scale_to_zero_grace_seconds: DEFAULT_SCALE_TO_ZERO_GRACE_SECONDS,
            min_instances: 0,
            max_instances: 0,
        }
    }
}

/// A setting outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every setting; the message names the key, the value and the allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, allowed: &str| {
            Err(ConfigError(format!("{key} = {value} is out of range: allowed {allowed}")))
        };
        if !(self.target_concurrency > 0.0 && self.target_concurrency <= 10_000.0) {
            return bad("target_concurrency", self.target_concurrency.to_string(), "(0, 10000]");
        }
        if !(self.target_utilization > 0.0 && self.target_utilization <= 1.0) {
            return bad("target_utilization", self.target_utilization.to_string(), "(0, 1]");
        }
        if !(6..=3600).contains(&self.stable_window_seconds) {
            return bad("stable_window_seconds", self.stable_window_seconds.to_string(), "6..=3600");
        }
        if !(1.0..=100.0).contains(&self.panic_window_percent) {
            return bad("panic_window_percent", self.panic_window_percent.to_string(), "1..=100");
        }
        if !(1.0..=1000.0).contains(&self.panic_threshold) {
            return bad("panic_threshold", self.panic_threshold.to_string(), "1..=1000");
        }
        if self.max_scale_up_rate.is_nan() || self.max_scale_up_rate <= 1.0 {
            return bad("max_scale_up_rate", self.max_scale_up_rate.to_string(), "> 1");
        }
        if self.max_scale_down_rate.is_nan() || self.max_scale_down_rate <= 1.0 {
            return bad("max_scale_down_rate", self.max_scale_down_rate.to_string(), "> 1");
        }
        if self.max_instances != 0 && self.min_instances > self.max_instances {
            return bad(
                "min_instances",
                self.min_instances.to_string(),
                &format!("0..=max_instances ({})", self.max_instances),
            );
        }
        Ok(())
    }

    fn target(&self) -> f64 {
        self.target_concurrency * self.target_utilization
    }

    fn panic_window_ms(&self) -> u64 {
        ((self.stable_window_seconds * 1000) as f64 * self.panic_window_percent / 100.0).max(1000.0) as u64
    }
}

/// What the autoscaler wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Instances there should be.
    pub desired: u32,
    /// Whether the panic window is in control.
    pub panicking: bool,
    /// Average concurrency over the stable window.
    pub stable_concurrency: f64,
    /// Average concurrency over the panic window.
    pub panic_concurrency: f64,
    /// Most requests in flight at once over the panic window: the floor under `desired` (before the
    /// scale-to-zero rule and the bounds).
    pub recent_peak: u32,
}

/// Per-second concurrency averages.
#[derive(Debug, Default)]
struct Buckets {
    /// (second, sum of samples, number of samples), oldest first.
    buckets: VecDeque<(u64, f64, u32)>,
    first_second: Option<u64>,
}

impl Buckets {
    fn record(&mut self, now_ms: u64, value: f64, keep_seconds: u64) {
        let sec = now_ms / 1000;
        self.first_second.get_or_insert(sec);
        match self.buckets.back_mut() {
            Some((s, sum, n)) if *s == sec => {
                *sum += value;
                *n += 1;
            }
            _ => self.buckets.push_back((sec, value, 1)),
        }
        while self.buckets.front().is_some_and(|(s, _, _)| *s + keep_seconds < sec) {
            self.buckets.pop_front();
        }
    }

    /// Average over the last `window_ms`; seconds without samples count as zero, but a window is never longer
    /// than the time since the first sample (a new function is not diluted by a history it does not have).
    fn average(&self, now_ms: u64, window_ms: u64) -> f64 {
        let Some(first) = self.first_second else {
            return 0.0;
        };
        let now_s = now_ms / 1000;
        let window_s = (window_ms / 1000).max(1);
        let seconds = window_s.min(now_s.saturating_sub(first) + 1);
        let from = now_s + 1 - seconds;
        let total: f64 = self
            .buckets
            .iter()
            .filter(|(s, _, _)| *s >= from && *s <= now_s)
            .map(|(_, sum, n)| sum / f64::from(*n))
            .sum();
        total / seconds as f64
    }
}

/// One function's autoscaler state.
#[derive(Debug)]
pub struct Autoscaler {
    config: Config,
    samples: Buckets,
    panic_since_ms: Option<u64>,
    max_panic: u32,
    last_active_ms: Option<u64>,
    active_now: bool,
    /// (time, most in flight at once since the previous entry), oldest first, within the panic window.
    peaks: VecDeque<(u64, u32)>,
}

impl Autoscaler {
    /// A new autoscaler. `config` should have passed [`Config::validate`].
    pub fn new(config: Config) -> Self {
        Autoscaler {
            config,
            samples: Buckets::default(),
            panic_since_ms: None,
            max_panic: 0,
            last_active_ms: None,
            active_now: false,
            peaks: VecDeque::new(),
        }
    }

    /// Replaces the settings (applied without a redeploy); observations are kept.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Records the number of requests in flight (running or queued) at `now_ms`. Call at least once a second
    /// while the function exists, and whenever a request arrives at a function with no instances.
    pub fn record(&mut self, now_ms: u64, concurrency: f64) {
        self.samples.record(now_ms, concurrency, self.config.stable_window_seconds + 1);
        self.active_now = concurrency > 0.0;
        if self.active_now {
            self.last_active_ms = Some(now_ms);
        }
    }

    /// Records the most requests that were in flight at once since the previous call (the autoscaler keeps
    /// the panic window's worth). Optional: without peaks, decisions follow the averages alone.
    pub fn record_peak(&mut self, now_ms: u64, in_flight: u32) {
        let window = self.config.panic_window_ms();
        self.peaks.push_back((now_ms, in_flight));
        while self.peaks.front().is_some_and(|(t, _)| t + window <= now_ms) {
            self.peaks.pop_front();
        }
    }

    fn recent_peak(&self, now_ms: u64) -> u32 {
        let window = self.config.panic_window_ms();
        self.peaks.iter().filter(|(t, _)| t + window > now_ms).map(|&(_, p)| p).max().unwrap_or(0)
    }

    /// Decides the instance count given `ready` instances now.
    pub fn scale(&mut self, now_ms: u64, ready: u32) -> Decision {
        let c = &self.config;
        let stable_ms = c.stable_window_seconds * 1000;
        let stable = self.samples.average(now_ms, stable_ms);
        let panic = self.samples.average(now_ms, c.panic_window_ms());
        let ready_f = f64::from(ready.max(1));
        let max_up = (c.max_scale_up_rate * ready_f).ceil();
        let max_down = (f64::from(ready) / c.max_scale_down_rate).floor();
        let want_stable = (stable / c.target()).ceil();
        let want_panic = (panic / c.target()).ceil();
        let desired_stable = want_stable.max(max_down).min(max_up) as u32;
        let desired_panic = want_panic.max(max_down).min(max_up) as u32;

        let over = want_panic / ready_f >= c.panic_threshold;
        if over {
            self.panic_since_ms = Some(now_ms);
        } else if self.panic_since_ms.is_some_and(|t| now_ms >= t + stable_ms) {
            self.panic_since_ms = None;
            self.max_panic = 0;
        }
        let panicking = self.panic_since_ms.is_some();
        let mut desired = if panicking {
            self.max_panic = self.max_panic.max(desired_panic).max(ready);
            self.max_panic
        } else {
            desired_stable
        };
        let recent_peak = self.recent_peak(now_ms);
        desired = desired.max(recent_peak);

        let idle_ms = self.last_active_ms.map_or(u64::MAX, |t| now_ms.saturating_sub(t));
        if !panicking && !self.active_now && idle_ms >= c.scale_to_zero_grace_seconds * 1000 {
            desired = 0;
        } else if desired == 0 && idle_ms < c.scale_to_zero_grace_seconds * 1000 && self.last_active_ms.is_some() {
            // Recently active: keep one warm until the grace period has passed.
            desired = 1;
        }
        desired = desired.max(c.min_instances);
        if c.max_instances > 0 {
            desired = desired.min(c.max_instances);
        }
        Decision { desired, panicking, stable_concurrency: stable, panic_concurrency: panic, recent_peak }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `seconds` one-second steps with the given load (concurrency per second); instances start
    /// instantly. Returns the decision of every second.
    fn simulate(config: Config, start_ready: u32, load: impl Fn(u64) -> f64, seconds: u64) -> Vec<Decision> {
        let mut a = Autoscaler::new(config);
        let mut ready = start_ready;
        (0..seconds)
            .map(|t| {
                let now = t * 1000;
                a.record(now, load(t));
                let d = a.scale(now, ready);
                ready = d.desired;
                d
            })
            .collect()
    }

    fn cfg() -> Config {
        Config { target_concurrency: 1.0, target_utilization: 1.0, ..Config::default() }
    }

    #[test]
    fn steady_load_settles_at_load_over_target() {
        let table: &[(f64, f64, u32)] = &[(5.0, 1.0, 5), (10.0, 2.0, 5), (7.0, 0.7 / 0.7, 7), (3.5, 1.0, 4)];
        for &(load, target, want) in table {
            let d = simulate(Config { target_concurrency: target, ..cfg() }, 1, |_| load, 120);
            let last = d.last().unwrap();
            assert_eq!(last.desired, want, "load {load} target {target}");
            assert!(!last.panicking, "load {load}: steady load must not panic");
        }
    }

    #[test]
    fn burst_panics_and_scales_within_the_panic_window() {
        // 60 s at 2, then a burst to 40.
        let d = simulate(cfg(), 2, |t| if t < 60 { 2.0 } else { 40.0 }, 80);
        assert_eq!(d[59].desired, 2);
        assert!(!d[59].panicking);
        let first_panic = d.iter().position(|x| x.panicking).unwrap();
        assert_eq!(first_panic, 60, "panic starts on the first over-threshold second");
        // The panic window (6 s) reaches the full burst within 6 s; the stable window alone would need 60.
        assert_eq!(d[65].desired, 40);
        assert!(d[60..80].iter().all(|x| x.panicking));
    }

    #[test]
    fn no_scale_down_while_panicking_then_decay() {
        // Burst of 30 for 10 s, then back to 2.
        let d = simulate(cfg(), 2, |t| if (60..70).contains(&t) { 30.0 } else { 2.0 }, 200);
        let peak = d[60..70].iter().map(|x| x.desired).max().unwrap();
        assert_eq!(peak, 30);
        // The only over-threshold second is 60 (from 61 on, 30 instances are ready). Panic holds the peak for
        // a full stable window after it, though the load fell back at 70.
        assert!(d[60..120].iter().all(|x| x.panicking), "{:?}", &d[60..120]);
        assert!(d[60..120].windows(2).all(|w| w[1].desired >= w[0].desired), "no scale-down while panicking");
        assert_eq!(d[119].desired, peak);
        let calm = d.iter().rposition(|x| x.panicking).unwrap() + 1;
        assert_eq!(calm, 120, "panic ends one stable window after the last over-threshold decision");
        for w in d[calm - 1..].windows(2) {
            assert!(
                w[1].desired >= w[0].desired / 2,
                "scale-down faster than halving: {} -> {}",
                w[0].desired,
                w[1].desired
            );
        }
        assert_eq!(d.last().unwrap().desired, 2);
    }

    #[test]
    fn decays_to_zero_after_the_grace_period_and_respects_min_instances() {
        let grace = Config { scale_to_zero_grace_seconds: 30, ..cfg() };
        // Start with enough instances that the first second is not itself a burst (which would panic).
        let d = simulate(grace.clone(), 3, |t| if t < 10 { 3.0 } else { 0.0 }, 100);
        let zero_at = d.iter().position(|x| x.desired == 0).unwrap();
        assert_eq!(zero_at, 9 + 30, "zero exactly when 30 s have passed since the last in-flight request");
        assert!(d[10..zero_at].iter().all(|x| x.desired >= 1));
        let d = simulate(Config { min_instances: 2, ..grace }, 3, |t| if t < 10 { 3.0 } else { 0.0 }, 100);
        assert_eq!(d.last().unwrap().desired, 2);
        // No traffic at all: zero from the start (min 0).
        assert_eq!(simulate(cfg(), 0, |_| 0.0, 5).last().unwrap().desired, 0);
    }

    #[test]
    fn a_zero_grace_period_never_scales_away_a_loaded_function() {
        let d = simulate(Config { scale_to_zero_grace_seconds: 0, ..cfg() }, 3, |t| if t < 20 { 3.0 } else { 0.0 }, 30);
        assert!(d[..20].iter().all(|x| x.desired >= 3), "{d:?}");
        assert_eq!(d[20].desired, 0, "the first second without load");
    }

    #[test]
    fn steady_traffic_keeps_the_instances_its_peaks_need() {
        // 30 s of traffic averaging 2.3 in flight (the averages alone want ⌈2.3 / 0.7⌉ = 4 instances) whose
        // momentary peaks reach 5 and 6 in the first two seconds, 4 after; then nothing.
        let load = |t: u64| if t < 30 { 2.3 } else { 0.0 };
        let peak = |t: u64| match t {
            0 => 5,
            1 => 6,
            2..30 => 4,
            _ => 0,
        };
        let mut a = Autoscaler::new(Config { scale_to_zero_grace_seconds: 30, ..Config::default() });
        let mut ready = 5;
        let d: Vec<Decision> = (0..70)
            .map(|t| {
                a.record(t * 1000, load(t));
                a.record_peak(t * 1000, peak(t));
                let d = a.scale(t * 1000, ready);
                ready = d.desired;
                d
            })
            .collect();
        // (second, desired): the peak of 6 holds 6 instances for the panic window (6 s), not one decision;
        // then the averages decide again (4, decaying with the stable window), and 30 s after the last request
        // in flight the function scales to zero.
        let table: &[(usize, u32)] = &[(0, 5), (1, 6), (2, 6), (6, 6), (7, 4), (30, 4), (36, 3), (58, 2), (59, 0)];
        for &(t, want) in table {
            assert_eq!(d[t].desired, want, "second {t}: {:?}", d[t]);
        }
        assert!(d[..59].iter().all(|x| !x.panicking));
        assert_eq!(d[1].recent_peak, 6);
        assert_eq!(d[36].recent_peak, 0);
    }

    #[test]
    fn from_zero_the_first_request_scales_up() {
        let d = simulate(cfg(), 0, |t| if t >= 3 { 1.0 } else { 0.0 }, 5);
        assert_eq!(d[2].desired, 0);
        assert!(d[3].desired >= 1, "{:?}", d[3]);
    }

    #[test]
    fn oscillating_load_is_damped() {
        // Alternating 10 / 0 every second: the stable average is 5; the count must not flap between 0 and 10.
        let d = simulate(cfg(), 5, |t| if t % 2 == 0 { 10.0 } else { 0.0 }, 180);
        let tail = &d[120..];
        let (lo, hi) = (tail.iter().map(|x| x.desired).min().unwrap(), tail.iter().map(|x| x.desired).max().unwrap());
        assert!(lo >= 5 && hi <= 10, "flapping between {lo} and {hi}");
        assert!(
            tail.windows(2).filter(|w| w[0].desired != w[1].desired).count() <= 2,
            "{:?}",
            tail.iter().map(|x| x.desired).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bounds_and_rate_limits() {
        let d = simulate(Config { max_instances: 8, ..cfg() }, 1, |_| 50.0, 30);
        assert!(d.iter().all(|x| x.desired <= 8));
        assert_eq!(d.last().unwrap().desired, 8);
        let d = simulate(Config { max_scale_up_rate: 2.0, ..cfg() }, 1, |_| 50.0, 10);
        let counts: Vec<u32> = d.iter().map(|x| x.desired).collect();
        assert_eq!(&counts[..6], &[2, 4, 8, 16, 32, 50], "doubling at most per decision");
    }

    #[test]
    fn config_validation_names_key_value_and_range() {
        assert!(Config::default().validate().is_ok());
        let table: &[(Config, &str)] = &[
            (
                Config { target_utilization: 0.0, ..Config::default() },
                "target_utilization = 0 is out of range: allowed (0, 1]",
            ),
            (
                Config { stable_window_seconds: 5, ..Config::default() },
                "stable_window_seconds = 5 is out of range: allowed 6..=3600",
            ),
            (
                Config { min_instances: 5, max_instances: 2, ..Config::default() },
                "min_instances = 5 is out of range: allowed 0..=max_instances (2)",
            ),
        ];
        for (c, msg) in table {
            assert_eq!(c.validate().unwrap_err().to_string(), *msg);
        }
    }
}
