//! Leaf module: what an invocation reports — its outcome, classified failure, phase timings and usage —
//! and the [`Reporter`] that sends the report exactly once.

use crate::InvocationCtx;
use crate::logs::{CapturedLogs, LogPipe};
use std::sync::Arc;
use std::time::Duration;
use wisp_core::ErrorClass;

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
    /// A failure of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
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

/// What one invocation used, measured by the executors (metering turns it into GB-seconds, CPU-ms and
/// egress per tenant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Wall-clock time the guest ran (instantiate to done).
    pub wall: Duration,
    /// Thread CPU time of the guest and the host work done inside its polls (instantiation, host calls),
    /// and of host work done for it on other threads (SQL statements); never time spent waiting.
    pub cpu: Duration,
    /// Most linear memory the instance held at once, bytes (all its memories together).
    pub peak_memory_bytes: u64,
    /// The function's memory limit, bytes (what GB-seconds are billed on).
    pub memory_limit_bytes: u64,
    /// Request body bytes the guest read.
    pub bytes_in: u64,
    /// Response body bytes the guest produced (those still buffered when it finished included).
    pub bytes_out: u64,
    /// Bytes of outbound HTTP requests and responses (bodies), both ways.
    pub egress_bytes: u64,
    /// Operations and payload bytes of each platform service (key-value, SQL, …).
    pub services: wisp_core::usage::ServiceUsage,
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

/// Whether the request declares a body larger than `limit`.
pub(crate) fn declared_too_large<B>(req: &http::Request<B>, limit: u64) -> bool {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

pub(crate) fn too_large(limit: u64) -> InvokeError {
    InvokeError::new(ErrorClass::PayloadTooLarge, format!("request body exceeds the function's limit of {limit} bytes"))
}

/// How a running guest ended (what the response body's driver sees).
pub(crate) enum GuestEnd {
    Reported(Result<u16, InvokeError>),
    Retry(Reporter),
}

/// A request that may be replayed: a safe method (GET, HEAD, OPTIONS) with no body.
/// Sends an invocation's [`Report`] exactly once.
pub(crate) struct Reporter {
    pub id: Arc<str>,
    pub logs: LogPipe,
    pub sink: ReportSink,
    pub cold: bool,
    pub usage: crate::Usage,
}

impl Reporter {
    /// Starts an invocation's bookkeeping: the capped log pipe and the clock. A request that declares a body
    /// over the limit is refused (and reported) before any guest work.
    pub(crate) fn begin<B>(
        ctx: &InvocationCtx,
        sink: ReportSink,
        req: &http::Request<B>,
        logs: LogPipe,
    ) -> Result<Self, InvokeError> {
        // Not cold until an instance is created for it: a request refused before that is neither.
        let reporter = Reporter { id: ctx.id.clone(), logs, sink, cold: false, usage: Default::default() };
        if declared_too_large(req, ctx.limits.max_body_bytes) {
            return reporter.fail(too_large(ctx.limits.max_body_bytes), Phases::default());
        }
        Ok(reporter)
    }

    pub(crate) fn done(self, outcome: Result<u16, InvokeError>, phases: Phases) {
        (self.sink)(Report { id: self.id, outcome, phases, cold: self.cold, logs: self.logs.take(), usage: self.usage })
    }

    pub(crate) fn fail<T>(self, e: InvokeError, phases: Phases) -> Result<T, InvokeError> {
        self.done(Err(e.clone()), phases);
        Err(e)
    }
}
