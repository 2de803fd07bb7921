//! wisp's pure domain model.
//!
//! Everything here is plain data and validation: names, route patterns, per-function limits, the `wisp.toml`
//! manifest, function specs and revisions, and the single mapping from error classes to HTTP statuses.
//! No IO, no tokio, no wasmtime: time enters as an argument.

#![warn(missing_docs)]

pub mod blob;
pub mod cgi;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod invocation;
pub mod kv;
pub mod limits;
pub mod manifest;
pub mod messaging;
pub mod name;
pub mod outbound;
pub mod record;
pub mod route;
pub mod scaling;
pub mod spec;
pub mod spin;
pub mod sql;
pub mod trace;
pub mod trigger;
pub mod usage;

pub use error::ErrorClass;
pub use limits::Limits;
pub use name::{FunctionKey, Name};
pub use route::RoutePattern;
pub use scaling::{InstanceMode, Scaling};
pub use spec::{FunctionKind, FunctionRecord, FunctionSpec, RevisionRecord};

/// The namespace every resource lives in unless another one is named.
pub const DEFAULT_NAMESPACE: &str = "default";
