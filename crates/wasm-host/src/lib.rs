//! wisp's WebAssembly host: one engine per node, artifact validation and precompilation, loading precompiled
//! code into `InstancePre`s, and running invocations (wasi:http components and WAGI modules) with limits.
//!
//! Invariants: compilation happens only in [`Host::compile`] (deploy time); [`Host::load`] deserialises
//! precompiled code and builds the `InstancePre`; the request path only instantiates. Deadlines: one
//! engine-wide epoch ticker thread makes a running guest check its deadline (and yield) every tick, and a tokio
//! timer per invocation stops a guest blocked in a host call, where no epoch check runs.

#![warn(missing_docs)]

mod body;
pub mod caps;
mod config;
mod host;
mod http;
mod limits;
mod logs;
mod pool;
pub mod preinit;
mod tasks;
mod wagi;

pub use body::{BoxError, ResponseBody, full_body};
pub use caps::outbound::OutboundConfig;
pub use config::HostConfig;
pub use host::{ArtifactError, ArtifactKind, Code, Compiled, Host, artifact_kind};
pub use logs::CapturedLogs;
pub use pool::{Pool, PoolConfig, Prewarming};
pub use preinit::Preinit;
pub use tasks::Tasks;

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
    /// The outbound HTTP grant: hosts the function may send requests to (parsed once per revision).
    pub outbound: Arc<[wisp_core::outbound::HostPattern]>,
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
    /// Where the time went.
    pub phases: Phases,
    /// Whether a fresh instance was created for it (a cold start) rather than a warm one reused.
    pub cold: bool,
    /// Guest stdout + stderr.
    pub logs: CapturedLogs,
    /// What it used.
    pub usage: Usage,
}

/// What one invocation used: the choke points that measure it are in the executors (metering, the
/// metering issue, turns these into GB-seconds, CPU-ms and egress per tenant). Fields not measured yet are
/// zero: `cpu`, `bytes_in`, `bytes_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Wall-clock time the guest ran (instantiate to done).
    pub wall: Duration,
    /// CPU time of the guest (not measured yet).
    pub cpu: Duration,
    /// Most linear memory the instance held at once, bytes (all its memories together).
    pub peak_memory_bytes: u64,
    /// Request body bytes read by the guest (not measured yet).
    pub bytes_in: u64,
    /// Response body bytes written by the guest (not measured yet).
    pub bytes_out: u64,
    /// Bytes of outbound HTTP requests and responses (bodies), both ways.
    pub egress_bytes: u64,
}

/// Where an invocation's time went. Phases that did not happen are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Creating the instance: slot allocation, memory image, linking, core start functions (zero when warm).
    pub instantiate: Duration,
    /// The guest's own initialisation export run before the handler (`wizer.initialize` of a WAGI module
    /// that was not snapshotted at deploy); zero for components, whose start functions are in `instantiate`.
    pub init: Duration,
    /// From calling the handler until the response head (for WAGI: the whole run of `_start`).
    pub handler: Duration,
    /// From the response head until the guest finished (streaming the body).
    pub response: Duration,
}

/// Receives the report of each invocation. Must not block.
pub type ReportSink = Box<dyn FnOnce(Report) + Send + 'static>;
