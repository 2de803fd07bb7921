//! `wisp scale`: change scaling settings without a redeploy. Only the flags given change.

use crate::Global;
use crate::client::Client;
use reqwest::Method;
use std::process::ExitCode;
use wisp_core::{InstanceMode, Scaling};

#[derive(clap::Args)]
pub struct Args {
    /// Function name.
    name: String,
    /// `fresh`: a new instance per request; `reuse`: warm instances serve request after request.
    #[arg(long, env = "WISP_SCALE_INSTANCE_MODE", value_enum)]
    instance_mode: Option<ModeArg>,
    /// Replace a reused instance after this many requests.
    #[arg(long, env = "WISP_SCALE_MAX_REQUESTS_PER_INSTANCE")]
    max_requests_per_instance: Option<u32>,
    /// Drop an idle warm instance after this many seconds.
    #[arg(long, env = "WISP_SCALE_IDLE_TIMEOUT_SECONDS")]
    idle_timeout_seconds: Option<u32>,
    /// Keep at most this many idle warm instances.
    #[arg(long, env = "WISP_SCALE_MAX_IDLE_INSTANCES")]
    max_idle_instances: Option<u32>,
    /// Most instances (concurrent invocations) of this function; 0 = bounded by the node only.
    #[arg(long, env = "WISP_SCALE_MAX_INSTANCES")]
    max_instances: Option<u32>,
    /// Requests that may wait for an instance; more get 429.
    #[arg(long, env = "WISP_SCALE_MAX_QUEUE_DEPTH")]
    max_queue_depth: Option<u32>,
    /// Longest wait for an instance, ms; longer gets 503.
    #[arg(long, env = "WISP_SCALE_QUEUE_TIMEOUT_MS")]
    queue_timeout_ms: Option<u32>,
    /// Concurrency guaranteed to this function out of the node's capacity.
    #[arg(long, env = "WISP_SCALE_RESERVED_CONCURRENCY")]
    reserved_concurrency: Option<u32>,
    /// Keep this many warm instances ready whatever the load (reuse mode).
    #[arg(long, env = "WISP_SCALE_MIN_INSTANCES")]
    min_instances: Option<u32>,
}

/// `--instance-mode` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Fresh,
    Reuse,
}

impl From<ModeArg> for InstanceMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Fresh => InstanceMode::Fresh,
            ModeArg::Reuse => InstanceMode::Reuse,
        }
    }
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let path = client.function_path(Some(&a.name), "/scaling");
    let mut s: Scaling = client.json(client.request(Method::GET, &path)).await?;
    if let Some(m) = a.instance_mode {
        s.instance_mode = Some(m.into());
    }
    if let Some(v) = a.max_requests_per_instance {
        s.max_requests_per_instance = v;
    }
    if let Some(v) = a.idle_timeout_seconds {
        s.idle_timeout_seconds = v;
    }
    if let Some(v) = a.max_idle_instances {
        s.max_idle_instances = v;
    }
    if let Some(v) = a.min_instances {
        s.min_instances = v;
    }
    if let Some(v) = a.max_instances {
        s.max_instances = v;
    }
    if let Some(v) = a.max_queue_depth {
        s.max_queue_depth = v;
    }
    if let Some(v) = a.queue_timeout_ms {
        s.queue_timeout_ms = v;
    }
    if let Some(v) = a.reserved_concurrency {
        s.reserved_concurrency = v;
    }
    let s: Scaling = client.json(client.request(Method::PUT, &path).json(&s)).await?;
    println!("✓ {} scaling: {}", a.name, serde_json::to_string(&s)?);
    Ok(ExitCode::SUCCESS)
}
