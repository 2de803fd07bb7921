//! Per-function resource limits.

use serde::{Deserialize, Serialize};

/// Default wall-clock limit for one invocation.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Largest accepted `timeout_ms` (15 minutes, like Lambda).
pub const MAX_TIMEOUT_MS: u64 = 900_000;
/// Default linear-memory limit per instance.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Largest accepted `memory_mb`; a node may configure a lower ceiling.
pub const MAX_MEMORY_MB: u32 = 4096;
/// Default request-body limit.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// Largest accepted `max_body_bytes`.
pub const MAX_MAX_BODY_BYTES: u64 = 1024 * 1024 * 1024;
/// Default cap on captured guest stdout+stderr per invocation.
pub const DEFAULT_MAX_LOG_BYTES: u32 = 64 * 1024;
/// Largest accepted `max_log_bytes`.
pub const MAX_MAX_LOG_BYTES: u32 = 1024 * 1024;

/// Default cap on a WAGI module's output (its whole response: headers and body).
pub const DEFAULT_MAX_OUTPUT_BYTES: u32 = 16 * 1024 * 1024;
/// Largest accepted `max_output_bytes`.
pub const MAX_MAX_OUTPUT_BYTES: u32 = 64 * 1024 * 1024;

/// Limits applied to every invocation of a function. Units are in the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock time from request to the guest handler's return; exceeded → 504.
    pub timeout_ms: u64,
    /// Linear memory an instance may grow to; exceeded → the instance is stopped, 500.
    pub memory_mb: u32,
    /// Request body size; exceeded → 413.
    pub max_body_bytes: u64,
    /// Captured guest stdout+stderr per invocation; the rest is dropped and marked truncated.
    pub max_log_bytes: u32,
    /// WAGI: bytes the module may print as its response (headers and body), held in host memory until it
    /// exits; more → the invocation fails (500) and the output is dropped.
    pub max_output_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            memory_mb: DEFAULT_MEMORY_MB,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// A limit outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits.{key} = {value} is out of range: allowed {min}..={max}")]
pub struct LimitError {
    /// The key, e.g. `timeout_ms`.
    pub key: &'static str,
    /// The rejected value.
    pub value: u64,
    /// Smallest allowed.
    pub min: u64,
    /// Largest allowed.
    pub max: u64,
}

impl Limits {
    /// Checks every limit against its range.
    pub fn validate(&self) -> Result<(), LimitError> {
        let checks: [(&'static str, u64, u64, u64); 5] = [
            ("timeout_ms", self.timeout_ms, 1, MAX_TIMEOUT_MS),
            ("memory_mb", self.memory_mb.into(), 1, MAX_MEMORY_MB.into()),
            ("max_body_bytes", self.max_body_bytes, 0, MAX_MAX_BODY_BYTES),
            ("max_log_bytes", self.max_log_bytes.into(), 0, MAX_MAX_LOG_BYTES.into()),
            ("max_output_bytes", self.max_output_bytes.into(), 1024, MAX_MAX_OUTPUT_BYTES.into()),
        ];
        for (key, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(LimitError { key, value, min, max });
            }
        }
        Ok(())
    }

    /// `memory_mb` in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_mb as usize * 1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(Limits::default().validate().is_ok());
        let table: &[(Limits, &str)] = &[
            (
                Limits { timeout_ms: 0, ..Limits::default() },
                "limits.timeout_ms = 0 is out of range: allowed 1..=900000",
            ),
            (
                Limits { memory_mb: 5000, ..Limits::default() },
                "limits.memory_mb = 5000 is out of range: allowed 1..=4096",
            ),
            (
                Limits { max_log_bytes: 2 << 20, ..Limits::default() },
                "limits.max_log_bytes = 2097152 is out of range: allowed 0..=1048576",
            ),
        ];
        for (limits, msg) in table {
            assert_eq!(limits.validate().unwrap_err().to_string(), *msg);
        }
    }
}
