//! What an invocation used of the platform services, as its record keeps it: one operation and byte count
//! per service. Bytes are the payload moved between the guest and the service — values read and written
//! (key-value), statement parameters and result cells (SQL), object bytes (blobs), message payloads
//! (messaging), parameters, results and payloads (outbound databases and brokers), bytes read from the
//! function's files (files; an op is a file or directory opened) — not protocol overhead; keys and names are
//! not counted. Metering reads these from the invocation's report.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Milliseconds billed for a wall time: rounded up to the next whole millisecond (Lambda's rule).
pub fn billed_ms(wall: Duration) -> u64 {
    wall.as_nanos().div_ceil(1_000_000) as u64
}

/// GB-seconds of an invocation: its memory limit in GiB (Lambda's GB) times its wall time rounded up to 1 ms.
pub fn gb_seconds(memory_limit_bytes: u64, wall: Duration) -> f64 {
    memory_limit_bytes as f64 / (1u64 << 30) as f64 * billed_ms(wall) as f64 / 1000.0
}

/// CPU milliseconds (Cloudflare's unit), fractional.
pub fn cpu_ms(cpu: Duration) -> f64 {
    cpu.as_secs_f64() * 1000.0
}

/// A platform service whose use is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Key-value stores (`wasi:keyvalue`, `fermyon:spin/key-value`).
    KeyValue,
    /// SQL databases (`spin:sqlite`, `fermyon:spin/sqlite`).
    Sql,
    /// Blob containers (`wasi:blobstore`).
    Blobs,
    /// Messages published to topics (`wasi:messaging`).
    Messaging,
    /// Outbound databases and brokers (Spin's redis, postgres, mysql, mqtt).
    Databases,
    /// The function's mounted files (`wasi:filesystem`, read-only).
    Files,
}

impl Service {
    /// Every service, in the order [`ServiceUsage`] lists them.
    pub const ALL: [Service; 6] =
        [Service::KeyValue, Service::Sql, Service::Blobs, Service::Messaging, Service::Databases, Service::Files];

    /// Its position in [`Service::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Operations and bytes of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Calls that reached the service (a batch call of n keys counts n).
    pub ops: u64,
    /// Payload bytes both ways.
    pub bytes: u64,
}

/// What one invocation used of each platform service. Serialised with only the services used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceUsage {
    /// Key-value stores.
    #[serde(default, skip_serializing_if = "Count::is_zero")]
    pub kv: Count,
    /// SQL databases.
    #[serde(default, skip_serializing_if = "Count::is_zero")]
    pub sql: Count,
    /// Blob containers.
    #[serde(default, skip_serializing_if = "Count::is_zero")]
    pub blobs: Count,
    /// Messages published.
    #[serde(default, skip_serializing_if = "Count::is_zero")]
    pub messaging: Count,
    /// Outbound databases and brokers.
    #[serde(default, skip_serializing_if = "Count::is_zero")]
    pub databases: Count,
    /// The function's files.
    #[serde(default, skip_serializing_if = "Count::is_zero")]
    pub files: Count,
}

impl Count {
    /// Whether nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == Count::default()
    }
}

impl ServiceUsage {
    /// The count of `service`.
    pub fn get(&self, service: Service) -> Count {
        match service {
            Service::KeyValue => self.kv,
            Service::Sql => self.sql,
            Service::Blobs => self.blobs,
            Service::Messaging => self.messaging,
            Service::Databases => self.databases,
            Service::Files => self.files,
        }
    }

    /// The count of `service`, to change.
    pub fn get_mut(&mut self, service: Service) -> &mut Count {
        match service {
            Service::KeyValue => &mut self.kv,
            Service::Sql => &mut self.sql,
            Service::Blobs => &mut self.blobs,
            Service::Messaging => &mut self.messaging,
            Service::Databases => &mut self.databases,
            Service::Files => &mut self.files,
        }
    }

    /// Whether no service was used.
    pub fn is_zero(&self) -> bool {
        *self == ServiceUsage::default()
    }

    /// The services used, for people: `kv 3 ops 15 B, sql 1 op 40 B` (empty when none was).
    pub fn summary(&self) -> String {
        let names = ["kv", "sql", "blobs", "messaging", "databases", "files"];
        Service::ALL
            .iter()
            .zip(names)
            .filter(|(s, _)| !self.get(**s).is_zero())
            .map(|(s, name)| {
                let c = self.get(*s);
                format!("{name} {} op{} {} B", c.ops, if c.ops == 1 { "" } else { "s" }, c.bytes)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rules() {
        assert_eq!(billed_ms(Duration::ZERO), 0);
        assert_eq!(billed_ms(Duration::from_nanos(1)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1000)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1001)), 2);
        // 128 MiB for 1.2 ms: billed 2 ms = 0.125 GiB × 0.002 s.
        assert_eq!(gb_seconds(128 << 20, Duration::from_micros(1200)), 0.125 * 0.002);
        assert_eq!(gb_seconds(1 << 30, Duration::from_secs(1)), 1.0);
        assert_eq!(cpu_ms(Duration::from_micros(2500)), 2.5);
    }

    #[test]
    fn only_used_services_are_serialised_and_read_back() {
        let mut u = ServiceUsage::default();
        assert_eq!(serde_json::to_string(&u).unwrap(), "{}");
        *u.get_mut(Service::Sql) = Count { ops: 2, bytes: 40 };
        assert_eq!(serde_json::to_string(&u).unwrap(), r#"{"sql":{"ops":2,"bytes":40}}"#);
        *u.get_mut(Service::KeyValue) = Count { ops: 1, bytes: 5 };
        assert_eq!(u.summary(), "kv 1 op 5 B, sql 2 ops 40 B");
        assert_eq!(ServiceUsage::default().summary(), "");
        *u.get_mut(Service::KeyValue) = Count::default();
        let back: ServiceUsage = serde_json::from_str(r#"{"sql":{"ops":2,"bytes":40}}"#).unwrap();
        assert_eq!(back, u);
        for (i, s) in Service::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }
}
