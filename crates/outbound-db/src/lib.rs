//! Outbound databases and brokers for guests: PostgreSQL ([`pg`]), MySQL/MariaDB ([`mysql`]), Redis
//! ([`redis`]) and MQTT publishing ([`mqtt`]), the clients behind Spin's `fermyon:spin/{postgres,mysql,redis,
//! mqtt}@2.0.0` and `spin:postgres@3.0.0`/`@4.0.0` (the WIT adapters live in `wisp-wasm-host`).
//!
//! This crate does no policy: the caller parses a guest's address here ([`pg::Target`], …), checks every
//! endpoint against the function's `allowed_outbound_hosts` and the restricted addresses, resolves it, and
//! hands the *checked* socket addresses back; a connection is only ever made to one of those (the client
//! libraries never resolve a name themselves).
//!
//! Connections are pooled per node ([`Pools`]), keyed by owner (namespace + app) and the address exactly as
//! the guest gave it (credentials included), bounded per app and per node, and closed after
//! [`PoolConfig::max_idle`] unused. A connection goes back to its pool only through an explicit
//! release (the guest dropped its handle), which first resets it so that nothing of one invocation reaches
//! the next: PostgreSQL `DISCARD ALL` (after a `ROLLBACK` if a transaction was left open), MySQL
//! `COM_RESET_CONNECTION`, Redis `RESET` (then its `AUTH` and `SELECT` again). A connection whose call was
//! interrupted (the invocation's deadline) or failed below the protocol is closed instead. MQTT connections
//! carry no per-invocation state: one connection per key is shared by concurrent publishers.

#![warn(missing_docs)]

pub mod mqtt;
pub mod mysql;
pub mod pg;
mod pg_codec;
mod pg_values;
mod pool;
pub mod redis;

pub use pg_values::{PgColumn, PgDbError, PgParam, PgRowSet, PgType, PgValue, Range as PgRange, RangeBound};
pub use pool::{Lease, PoolConfig, Pooled, Pools};

use std::time::Duration;

/// Default most connections a node keeps open to guests' databases and brokers (in use and idle).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default most connections one app (or function without app) keeps open.
pub const DEFAULT_MAX_CONNECTIONS_PER_APP: usize = 32;
/// Default time an unused pooled connection is kept before it is closed.
pub const DEFAULT_MAX_IDLE_SECONDS: u64 = 60;
/// Default longest connect (TCP and the protocol's handshake); never past the invocation's deadline.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Default largest query result handed to a guest, MiB.
pub const DEFAULT_MAX_RESULT_MB: usize = 16;

/// Why an operation failed, before each interface maps it onto its own error variants.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbError {
    /// The address does not parse, or asks for something this node does not do.
    #[error("{0}")]
    InvalidAddress(String),
    /// The owner has as many connections open as it may.
    #[error("{0}")]
    TooManyConnections(String),
    /// Connecting (TCP, TLS negotiation, authentication) failed, or the connection broke.
    #[error("{0}")]
    ConnectionFailed(String),
    /// A parameter value cannot be sent as the statement's parameter type.
    #[error("{0}")]
    BadParameter(String),
    /// The server refused the statement or command (with PostgreSQL's structured error, if any).
    #[error("{message}")]
    QueryFailed {
        /// What the server said.
        message: String,
        /// PostgreSQL's error fields.
        db: Option<Box<PgDbError>>,
    },
    /// A value the server returned cannot be represented in the interface.
    #[error("{0}")]
    ValueConversion(String),
    /// A value was not of the type the operation needs (Redis `WRONGTYPE`, a non-integer `INCR`).
    #[error("{0}")]
    TypeError(String),
    /// Anything else (the invocation's deadline, a result too large).
    #[error("{0}")]
    Other(String),
}

impl DbError {
    /// A query failure with only a message.
    pub fn query(message: impl Into<String>) -> DbError {
        DbError::QueryFailed { message: message.into(), db: None }
    }
}

/// How long is left until `deadline`, at most `cap`.
pub(crate) fn left(deadline: std::time::Instant, cap: Duration) -> Duration {
    cap.min(deadline.saturating_duration_since(std::time::Instant::now()))
}

/// An address for messages and notes: its password replaced by `***` (URL form, or PostgreSQL's
/// `key=value` form).
pub fn redact(address: &str) -> String {
    if address.contains("://") {
        return wisp_core::trigger::redact(address);
    }
    let mut out = String::with_capacity(address.len());
    let mut rest = address;
    while let Some(at) = rest.find("password") {
        let (before, after) = rest.split_at(at + "password".len());
        out.push_str(before);
        let trimmed = after.trim_start();
        let Some(value) = trimmed.strip_prefix('=') else {
            rest = after;
            continue;
        };
        let value = value.trim_start();
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.find('\'').map_or(value.len(), |i| i + 2)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        out.push_str("=***");
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        for (address, shown) in [
            ("postgres://u:secret@db/x", "postgres://u:***@db/x"),
            ("host=db user=u password=secret dbname=x", "host=db user=u password=*** dbname=x"),
            ("host=db password = 'a b' dbname=x", "host=db password=*** dbname=x"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ] {
            assert_eq!(super::redact(address), shown);
        }
    }
}
