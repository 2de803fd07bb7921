//! wisp's WebAssembly host: one engine per node, artifact validation and precompilation, loading precompiled
//! code into `InstancePre`s, and running invocations (wasi:http components and WAGI modules) with limits.
//!
//! Invariants: compilation happens only in [`Host::compile`] (deploy time); [`Host::load`] deserialises
//! precompiled code and builds the `InstancePre`; the request path only instantiates. One engine-wide epoch
//! ticker thread drives deadlines.

#![warn(missing_docs)]

mod body;
mod config;
mod host;
mod http;
mod logs;
mod pool;
mod wagi;

pub use body::{BoxError, ResponseBody, full_body};
pub use config::HostConfig;
pub use host::{ArtifactError, ArtifactKind, Code, Compiled, Host, artifact_kind};
pub use logs::CapturedLogs;
pub use pool::{Pool, PoolConfig};

use std::sync::Arc;
use std::time::Duration;
use wisp_core::{ErrorClass, Limits};

/// What an invocation needs besides the request.
#[derive(Debug, Clone)]
pub struct InvocationCtx {
    /// Unique id, returned to the client in `x-wisp-invocation-id`.
    pub id: Arc<str>,
    /// The function's name (WAGI `argv[0]`).
    pub function: Arc<str>,
    /// Guest environment.
    pub env: Arc<[(String, String)]>,
    /// Limits.
    pub limits: Limits,
    /// The matched route's path prefix (WAGI `SCRIPT_NAME`).
    pub route_prefix: Arc<str>,
}

/// A failed invocation, classified.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct InvokeError {
    /// What kind of failure (decides the HTTP status).
    pub class: ErrorClass,
    /// Details for logs and operators, never for invoking clients.
    pub message: String,
}

impl InvokeError {
    pub(crate) fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        InvokeError { class, message: message.into() }
    }
}

/// What happened in one invocation, reported when the guest is done (which may be after the response
/// headers went out, while the body streamed).
#[derive(Debug, Clone)]
pub struct Report {
    /// The invocation id.
    pub id: Arc<str>,
    /// `Ok(status)` the guest answered with, or the failure.
    pub outcome: Result<u16, InvokeError>,
    /// Time spent instantiating (zero for a warm instance).
    pub instantiate: Duration,
    /// Whether a fresh instance was created for it (a cold start) rather than a warm one reused.
    pub cold: bool,
    /// Total time from the start of the invocation until the guest finished.
    pub total: Duration,
    /// Guest stdout + stderr.
    pub logs: CapturedLogs,
}

/// Receives the report of each invocation. Must not block.
pub type ReportSink = Box<dyn FnOnce(Report) + Send + 'static>;
