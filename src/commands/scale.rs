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
    /// Requests one instance serves at once (1: wasi:http 0.2 and WAGI instances serve one at a time).
    #[arg(long, env = "WISP_SCALE_CONCURRENCY_PER_INSTANCE")]
    concurrency_per_instance: Option<u32>,
    /// In-flight requests per instance the autoscaler aims for.
    #[arg(long, env = "WISP_SCALE_TARGET_CONCURRENCY")]
    target_concurrency: Option<u32>,
    /// Percentage of the target concurrency to aim for (the rest is burst headroom).
    #[arg(long, env = "WISP_SCALE_TARGET_UTILIZATION_PERCENT")]
    target_utilization_percent: Option<u32>,
    /// Autoscaler stable window, seconds.
    #[arg(long, env = "WISP_SCALE_STABLE_WINDOW_SECONDS")]
    stable_window_seconds: Option<u32>,
    /// Autoscaler panic window, percent of the stable window.
    #[arg(long, env = "WISP_SCALE_PANIC_WINDOW_PERCENT")]
    panic_window_percent: Option<u32>,
    /// Seconds without requests before warm instances are dropped to zero (or min-instances).
    #[arg(long, env = "WISP_SCALE_SCALE_TO_ZERO_GRACE_SECONDS")]
    scale_to_zero_grace_seconds: Option<u32>,
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
    // Only the given keys are sent (PATCH): a concurrent change of other keys is never lost.
    let mut patch = serde_json::Map::new();
    if let Some(m) = a.instance_mode {
        let mode: InstanceMode = m.into();
        patch.insert("instance_mode".into(), serde_json::json!(mode.as_str()));
    }
    macro_rules! apply {
        ($($field:ident),*) => { $(if let Some(v) = a.$field { patch.insert(stringify!($field).into(), serde_json::json!(v)); })* };
    }
    apply!(
        max_requests_per_instance,
        idle_timeout_seconds,
        max_idle_instances,
        min_instances,
        max_instances,
        max_queue_depth,
        queue_timeout_ms,
        reserved_concurrency,
        concurrency_per_instance,
        target_concurrency,
        target_utilization_percent,
        stable_window_seconds,
        panic_window_percent,
        scale_to_zero_grace_seconds
    );
    let s: Scaling = if patch.is_empty() {
        client.json(client.request(Method::GET, &path)).await?
    } else {
        client.json(client.request(Method::PATCH, &path).json(&patch)).await?
    };
    println!("✓ {} scaling: {}", a.name, serde_json::to_string(&s)?);
    Ok(ExitCode::SUCCESS)
}
