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
mod code;
mod compile;
mod config;
mod engine;
mod exec;
mod host;
mod limits;
mod logs;
mod meter;
mod pool;
pub mod preinit;
mod report;
mod state;
mod tasks;
pub mod trace;

pub use body::{BoxError, ResponseBody, full_body};
pub use caps::config::ConfigVariables;
pub use caps::filesystem::FilesRoot;
pub use caps::outbound::OutboundConfig;
pub use code::Code;
pub use compile::{ArtifactError, ArtifactKind, Compiled, artifact_kind};
pub use config::HostConfig;
pub use host::Host;
pub use logs::CapturedLogs;
pub use pool::{Pool, PoolConfig, Prewarming};
pub use preinit::Preinit;
pub use tasks::Tasks;
pub use wisp_core::invocation::{Event, Trigger};

use std::sync::Arc;
use std::time::Instant;
use wisp_core::Limits;

/// One invocation: who, what started it, its input and its one deadline. The gateway, the invoke API and
/// (later) triggers all build one and hand it to the scheduler's single dispatch entry.
pub struct Invocation<B> {
    /// Unique id, returned to the client in `x-wisp-invocation-id`.
    pub id: Arc<str>,
    /// The function's namespace.
    pub namespace: Arc<str>,
    /// The function's name.
    pub function: Arc<str>,
    /// What started it.
    pub trigger: Trigger,
    /// Its input.
    pub input: Input<B>,
    /// When it must be done: set once, on arrival (`timeout_ms` later); queueing counts, and a retry on a
    /// fresh instance gets what is left, never a new deadline.
    pub deadline: Instant,
}

/// An invocation's input.
// The HTTP variant is the hot path: boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Input<B> {
    /// An HTTP request, with the path prefix of the route that matched (WAGI `SCRIPT_NAME`).
    Http {
        /// The request.
        request: http::Request<B>,
        /// The matched route's path prefix.
        route_prefix: Arc<str>,
    },
    /// An event from a trigger or the async invocation API.
    Event(EventDelivery),
}

/// One delivery attempt of an event.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    /// The event.
    pub event: Arc<Event>,
    /// Which attempt this is, from 1 (the handler sees it as `ce-wispattempt`).
    pub attempt: u32,
    /// The path the event is POSTed to (the function's `events.path`).
    pub path: Arc<str>,
}

/// What an invocation produced.
pub enum Outcome {
    /// The response (its body may still be streaming from the guest).
    Http(http::Response<ResponseBody>),
    /// An event's delivery: the handler's status, its `Retry-After` (if any, in ms) and the start of its
    /// response body (at most [`EVENT_RESULT_BYTES`]).
    Event {
        /// The handler's HTTP status.
        status: u16,
        /// Its `Retry-After`, in milliseconds (seconds form only).
        retry_after_ms: Option<u64>,
        /// The start of the response body.
        body: bytes::Bytes,
    },
}

/// How much of an event handler's response body is kept with its result.
pub const EVENT_RESULT_BYTES: usize = 64 * 1024;

/// What an executor needs besides the input.
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
    /// The invocation's one deadline.
    pub deadline: Instant,
    /// The outbound HTTP grant: hosts the function may send requests to (parsed once per revision).
    pub outbound: Arc<[wisp_core::outbound::HostPattern]>,
    /// The key-value grant: the stores it may open and their scopes (built once per revision).
    pub kv: Arc<caps::Grant>,
    /// The SQL grant: the databases it may open and their scopes (built once per revision).
    pub sql: Arc<caps::Grant>,
    /// The blob grant: the containers it may use and their scopes (built once per revision).
    pub blobs: Arc<caps::Grant>,
    /// Who owns the function's pooled outbound connections: its namespace and app
    /// ([`wisp_core::kv::owner`]).
    pub owner: Arc<str>,
    /// The messaging grant: the topics of its namespace it may publish to (built once per revision).
    pub topics: Arc<caps::messaging::TopicGrant>,
    /// The revision's configuration, served through `wasi:config/store` (built once per revision).
    pub config: Arc<ConfigVariables>,
    /// The function's files, seen read-only at `/` (opened once per revision; see [`Code::files`]). None:
    /// the node's empty root.
    pub files: Option<FilesRoot>,
}

pub use report::{InvokeError, Phases, Report, ReportSink, Usage};

/// The backends of the platform services a node hands its guests (none: each operation of that service
/// fails with an error saying the node has no backend for it).
#[derive(Clone, Default)]
pub struct Services {
    /// Guests' key-value data.
    pub kv: Option<Arc<dyn wisp_store::guest_kv::KvBackend>>,
    /// Guests' SQL databases.
    pub sql: Option<Arc<wisp_store::sql::SqlDatabases>>,
    /// Guests' blobs.
    pub blobs: Option<Arc<dyn wisp_store::guest_blob::BlobBackend>>,
    /// Pools of guests' connections to their databases and brokers (PostgreSQL, MySQL, Redis, MQTT).
    pub outbound_db: Option<Arc<wisp_outbound_db::Pools>>,
    /// The node's topics, where guests' messages go (connected once the topic index exists).
    pub topics: Arc<caps::messaging::TopicSlot>,
}
