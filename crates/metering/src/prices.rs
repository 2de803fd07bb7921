//! Usage and what it costs. A price sheet (`[pricing]` in `wisp up --config`) prices requests (per
//! million), GB-seconds, CPU-ms (per million) and egress (per GB); a free tier per namespace (tenant) over the
//! period asked for is credited against that namespace's total. GB-seconds use Lambda's rule (memory limit
//! in GiB × wall time rounded up to 1 ms, summed exactly as MiB·ms); CPU-ms is Cloudflare's unit (thread
//! CPU time, waiting excluded); egress is every byte of outbound HTTP, both ways.

use serde::{Deserialize, Serialize};

/// What a function (or a namespace) used over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The namespace.
    pub namespace: String,
    /// The function (absent when grouped by namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Invocations.
    pub requests: u64,
    /// Of those, failed ones.
    pub errors: u64,
    /// Of those, cold starts.
    pub cold_starts: u64,
    /// Memory limit × billed wall time, GiB·s.
    pub gb_seconds: f64,
    /// Thread CPU time, milliseconds.
    pub cpu_ms: f64,
    /// Guest wall time, milliseconds (not rounded).
    pub wall_ms: f64,
    /// Outbound HTTP bytes, both ways.
    pub egress_bytes: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// What it costs under the node's price sheet, before any free tier.
    #[serde(default)]
    pub cost: f64,
}

impl From<crate::store::Sums> for Usage {
    fn from(s: crate::store::Sums) -> Self {
        Usage {
            namespace: s.namespace,
            function: s.function,
            requests: s.requests,
            errors: s.errors,
            cold_starts: s.cold_starts,
            gb_seconds: s.mib_ms as f64 / 1024.0 / 1000.0,
            cpu_ms: s.cpu_us as f64 / 1000.0,
            wall_ms: s.wall_us as f64 / 1000.0,
            egress_bytes: s.egress_bytes,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            cost: 0.0,
        }
    }
}

/// The node's price sheet (`[pricing]`); every price defaults to zero (nothing is billed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// A label for the amounts (`USD`, `EUR`, credits…).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Per million invocations.
    #[serde(default)]
    pub per_million_requests: f64,
    /// Per GB-second.
    #[serde(default)]
    pub per_gb_second: f64,
    /// Per million CPU-ms.
    #[serde(default)]
    pub per_million_cpu_ms: f64,
    /// Per GB (10^9 bytes) of egress.
    #[serde(default)]
    pub per_gb_egress: f64,
    /// Free allowance per namespace over the period.
    #[serde(default)]
    pub free: FreeTier,
}

fn default_currency() -> String {
    "USD".into()
}

/// What each namespace gets free over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeTier {
    /// Invocations.
    #[serde(default)]
    pub requests: u64,
    /// GB-seconds.
    #[serde(default)]
    pub gb_seconds: f64,
    /// CPU-ms.
    #[serde(default)]
    pub cpu_ms: f64,
    /// Egress, GB.
    #[serde(default)]
    pub egress_gb: f64,
}

/// A namespace's bill over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    /// The namespace.
    pub namespace: String,
    /// Its usage, summed.
    pub usage: Usage,
    /// Cost before the free tier.
    pub gross: f64,
    /// The free tier's value, at most `gross`.
    pub credit: f64,
    /// What is due.
    pub due: f64,
}

impl Prices {
    /// Checks the prices: none negative, none NaN.
    pub fn validate(&self) -> Result<(), String> {
        let f = &self.free;
        for (key, v) in [
            ("per_million_requests", self.per_million_requests),
            ("per_gb_second", self.per_gb_second),
            ("per_million_cpu_ms", self.per_million_cpu_ms),
            ("per_gb_egress", self.per_gb_egress),
            ("free.gb_seconds", f.gb_seconds),
            ("free.cpu_ms", f.cpu_ms),
            ("free.egress_gb", f.egress_gb),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("pricing.{key} = {v}: give a price of zero or more"));
            }
        }
        Ok(())
    }

    fn cost_of(&self, requests: f64, gb_seconds: f64, cpu_ms: f64, egress_gb: f64) -> f64 {
        requests / 1e6 * self.per_million_requests
            + gb_seconds * self.per_gb_second
            + cpu_ms / 1e6 * self.per_million_cpu_ms
            + egress_gb * self.per_gb_egress
    }

    /// What `u` costs, before any free tier.
    pub fn cost(&self, u: &Usage) -> f64 {
        self.cost_of(u.requests as f64, u.gb_seconds, u.cpu_ms, u.egress_bytes as f64 / 1e9)
    }

    /// Each namespace's bill over `rows` (any grouping): its usage summed, the gross cost, the free tier
    /// credited (each allowance at most what was used), what is due.
    pub fn bills(&self, rows: &[Usage]) -> Vec<Bill> {
        let mut by_ns: std::collections::BTreeMap<&str, Usage> = Default::default();
        for r in rows {
            let t = by_ns
                .entry(&r.namespace)
                .or_insert_with(|| Usage { namespace: r.namespace.clone(), ..Default::default() });
            t.requests += r.requests;
            t.errors += r.errors;
            t.cold_starts += r.cold_starts;
            t.gb_seconds += r.gb_seconds;
            t.cpu_ms += r.cpu_ms;
            t.wall_ms += r.wall_ms;
            t.egress_bytes += r.egress_bytes;
            t.bytes_in += r.bytes_in;
            t.bytes_out += r.bytes_out;
        }
        by_ns
            .into_values()
            .map(|mut usage| {
                usage.cost = self.cost(&usage);
                let f = &self.free;
                let credit = self.cost_of(
                    (usage.requests.min(f.requests)) as f64,
                    usage.gb_seconds.min(f.gb_seconds),
                    usage.cpu_ms.min(f.cpu_ms),
                    (usage.egress_bytes as f64 / 1e9).min(f.egress_gb),
                );
                let gross = usage.cost;
                Bill { namespace: usage.namespace.clone(), usage, gross, credit, due: (gross - credit).max(0.0) }
            })
            .collect()
    }
}
