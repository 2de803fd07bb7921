//! Per-function scaling settings. Like routes, they are traffic configuration, not revision content: changing
//! them never needs a redeploy.

use serde::{Deserialize, Serialize};

/// Default cap on requests one reused instance serves before it is replaced.
pub const DEFAULT_MAX_REQUESTS_PER_INSTANCE: u32 = 10_000;
/// Default time an idle warm instance is kept.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u32 = 300;
/// Default cap on idle warm instances per function.
pub const DEFAULT_MAX_IDLE_INSTANCES: u32 = 64;

/// Default bound on requests waiting for an instance, per function.
pub const DEFAULT_MAX_QUEUE_DEPTH: u32 = 100;
/// Default longest wait for an instance.
pub const DEFAULT_QUEUE_TIMEOUT_MS: u32 = 10_000;
/// Default share of an instance's concurrency the autoscaler aims for (headroom for bursts).
pub const DEFAULT_TARGET_UTILIZATION_PERCENT: u32 = (wisp_autoscaler::DEFAULT_TARGET_UTILIZATION * 100.0) as u32;
/// Default autoscaler stable window.
pub const DEFAULT_STABLE_WINDOW_SECONDS: u32 = wisp_autoscaler::DEFAULT_STABLE_WINDOW_SECONDS as u32;
/// Default autoscaler panic window, as a percentage of the stable window.
pub const DEFAULT_PANIC_WINDOW_PERCENT: u32 = wisp_autoscaler::DEFAULT_PANIC_WINDOW_PERCENT as u32;
/// Default time without any request in flight before warm instances are dropped to zero.
pub const DEFAULT_SCALE_TO_ZERO_GRACE_SECONDS: u32 = wisp_autoscaler::DEFAULT_SCALE_TO_ZERO_GRACE_SECONDS as u32;

/// How instances serve requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// A new instance for every request: no state survives between requests.
    #[default]
    Fresh,
    /// Warm instances serve one request after another (Lambda-style): module state survives. A guest that
    /// fails when reused falls back to fresh instances with a logged warning.
    Reuse,
}

impl InstanceMode {
    /// The mode as written in `wisp.toml` and the API: `fresh` or `reuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceMode::Fresh => "fresh",
            InstanceMode::Reuse => "reuse",
        }
    }
}

/// Scaling settings of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scaling {
    /// `fresh` or `reuse`; unset means the default for the function's kind: `fresh` for every kind today
    /// (WAGI modules are commands and can only run once; components opt in to reuse).
    pub instance_mode: Option<InstanceMode>,
    /// A reused instance is replaced after this many requests.
    pub max_requests_per_instance: u32,
    /// An idle warm instance is dropped after this long.
    pub idle_timeout_seconds: u32,
    /// At most this many idle warm instances are kept.
    pub max_idle_instances: u32,
    /// Warm instances kept ready whatever the load (reuse mode): created after every deploy and start,
    /// never expired for idleness. Guest initialisation then happens before the first request.
    pub min_instances: u32,
    /// Most instances (so concurrent invocations) of this function; 0 means only the node's capacity bounds it.
    pub max_instances: u32,
    /// Requests that may wait for an instance; one more gets 429 with `Retry-After`.
    pub max_queue_depth: u32,
    /// Longest wait for an instance; past it the request gets 503.
    pub queue_timeout_ms: u32,
    /// Invocations guaranteed to this function out of the node's capacity, whatever other functions do.
    pub reserved_concurrency: u32,
    /// Requests one instance serves at once. Always 1 today: a wasi:http 0.2 instance (and a WAGI process)
    /// handles one request at a time, so concurrency comes from more instances.
    pub concurrency_per_instance: u32,
    /// In-flight requests per instance the autoscaler aims for, at most `concurrency_per_instance`.
    pub target_concurrency: u32,
    /// Percentage of `target_concurrency` the autoscaler aims for (the rest is headroom for bursts).
    pub target_utilization_percent: u32,
    /// Autoscaler stable window: the concurrency average normal decisions follow.
    pub stable_window_seconds: u32,
    /// Autoscaler panic window, as a percentage of the stable window: followed during bursts.
    pub panic_window_percent: u32,
    /// With no request in flight for this long, warm instances are dropped (down to `min_instances`).
    pub scale_to_zero_grace_seconds: u32,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            instance_mode: None,
            max_requests_per_instance: DEFAULT_MAX_REQUESTS_PER_INSTANCE,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            max_idle_instances: DEFAULT_MAX_IDLE_INSTANCES,
            min_instances: 0,
            max_instances: 0,
            max_queue_depth: DEFAULT_MAX_QUEUE_DEPTH,
            queue_timeout_ms: DEFAULT_QUEUE_TIMEOUT_MS,
            reserved_concurrency: 0,
            concurrency_per_instance: 1,
            target_concurrency: 1,
            target_utilization_percent: DEFAULT_TARGET_UTILIZATION_PERCENT,
            stable_window_seconds: DEFAULT_STABLE_WINDOW_SECONDS,
            panic_window_percent: DEFAULT_PANIC_WINDOW_PERCENT,
            scale_to_zero_grace_seconds: DEFAULT_SCALE_TO_ZERO_GRACE_SECONDS,
        }
    }
}

impl Scaling {
    /// The mode in force for a function of `kind`.
    pub fn mode(&self, kind: crate::FunctionKind) -> InstanceMode {
        match kind {
            crate::FunctionKind::Wagi | crate::FunctionKind::Messaging => InstanceMode::Fresh,
            crate::FunctionKind::Http => self.instance_mode.unwrap_or_default(),
        }
    }

    /// The autoscaler settings these scaling settings describe.
    pub fn autoscaler(&self) -> wisp_autoscaler::Config {
        wisp_autoscaler::Config {
            target_concurrency: f64::from(self.target_concurrency),
            target_utilization: f64::from(self.target_utilization_percent) / 100.0,
            stable_window_seconds: self.stable_window_seconds.into(),
            panic_window_percent: self.panic_window_percent.into(),
            scale_to_zero_grace_seconds: self.scale_to_zero_grace_seconds.into(),
            min_instances: self.min_instances,
            max_instances: self.max_instances,
            ..wisp_autoscaler::Config::default()
        }
    }

    /// Checks ranges; the message names key, value and range.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency_per_instance != 1 {
            return Err(format!(
                "scaling.concurrency_per_instance = {} is out of range: allowed 1..=1 (an instance serves one request at a time under wasi:http 0.2 and WAGI; raise max_instances for more concurrency)",
                self.concurrency_per_instance
            ));
        }
        if !(1..=self.concurrency_per_instance).contains(&self.target_concurrency) {
            return Err(format!(
                "scaling.target_concurrency = {} is out of range: allowed 1..=concurrency_per_instance ({})",
                self.target_concurrency, self.concurrency_per_instance
            ));
        }
        let checks: [(&str, u32, u32, u32); 12] = [
            ("max_instances", self.max_instances, 0, 100_000),
            ("max_queue_depth", self.max_queue_depth, 0, 1_000_000),
            ("queue_timeout_ms", self.queue_timeout_ms, 1, 900_000),
            ("reserved_concurrency", self.reserved_concurrency, 0, 100_000),
            ("max_requests_per_instance", self.max_requests_per_instance, 1, 100_000_000),
            ("idle_timeout_seconds", self.idle_timeout_seconds, 1, 86_400),
            ("max_idle_instances", self.max_idle_instances, 0, 10_000),
            ("min_instances", self.min_instances, 0, 10_000),
            ("target_utilization_percent", self.target_utilization_percent, 1, 100),
            ("stable_window_seconds", self.stable_window_seconds, 6, 3600),
            ("panic_window_percent", self.panic_window_percent, 1, 100),
            ("scale_to_zero_grace_seconds", self.scale_to_zero_grace_seconds, 0, 86_400),
        ];
        if self.max_instances > 0 && self.min_instances > self.max_instances {
            return Err(format!(
                "scaling.min_instances = {} is out of range: allowed 0..=max_instances ({})",
                self.min_instances, self.max_instances
            ));
        }
        if self.min_instances > self.max_idle_instances {
            return Err(format!(
                "scaling.min_instances = {} is out of range: allowed 0..=max_idle_instances ({})",
                self.min_instances, self.max_idle_instances
            ));
        }
        for (key, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(format!("scaling.{key} = {value} is out of range: allowed {min}..={max}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scaling_is_the_autoscalers_default_and_valid() {
        let s = Scaling::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.autoscaler(), wisp_autoscaler::Config::default());
        assert_eq!(s.autoscaler().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_settings_name_key_value_and_range() {
        let table: &[(Scaling, &str)] = &[
            (
                Scaling { stable_window_seconds: 5, ..Scaling::default() },
                "scaling.stable_window_seconds = 5 is out of range: allowed 6..=3600",
            ),
            (
                Scaling { min_instances: 3, max_instances: 2, ..Scaling::default() },
                "scaling.min_instances = 3 is out of range: allowed 0..=max_instances (2)",
            ),
            (
                Scaling { concurrency_per_instance: 2, ..Scaling::default() },
                "scaling.concurrency_per_instance = 2 is out of range: allowed 1..=1",
            ),
        ];
        for (s, want) in table {
            let e = s.validate().unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
