//! `wisp status`: the server, or one function.

use crate::Global;
use crate::client::{Client, ago};
use reqwest::Method;
use std::process::ExitCode;
use wisp_api::{ShowBody, StatusBody};

#[derive(clap::Args)]
pub struct Args {
    /// A function to show; omit for the server.
    name: Option<String>,
    /// Print JSON.
    #[arg(long, env = "WISP_JSON")]
    json: bool,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match a.name {
        None => {
            let s: StatusBody = client.json(client.request(Method::GET, "/_wisp/v1/status")).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("wisp {} up {}s — {} functions active", s.version, s.uptime_seconds, s.functions);
                println!("engine {} — {} compilations since start", s.engine, s.compilations);
            }
        }
        Some(name) => {
            let s: ShowBody = client.json(client.request(Method::GET, &client.function_path(Some(&name), ""))).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(ExitCode::SUCCESS);
            }
            let f = &s.function;
            println!(
                "{}/{} ({}){}",
                f.namespace,
                f.name,
                f.kind,
                f.app.as_ref().map(|a| format!(" in app {a}")).unwrap_or_default()
            );
            println!("  routes:      {}", if f.routes.is_empty() { "-".into() } else { f.routes.join(", ") });
            println!("  revision:    {} (deployed {}, generation {})", f.revision, ago(f.deployed_at_ms), f.generation);
            println!("  artifact:    sha256 {}", f.artifact);
            println!(
                "  limits:      timeout {} ms, memory {} MiB, body {} bytes, logs {} bytes",
                f.limits.timeout_ms, f.limits.memory_mb, f.limits.max_body_bytes, f.limits.max_log_bytes
            );
            println!(
                "  serving:     {} ({} invocations since start)",
                if f.active { "yes" } else { "no" },
                f.invocations
            );
            println!(
                "  instances:   {} mode, {} warm idle (min {})",
                f.instance_mode, f.idle_instances, f.scaling.min_instances
            );
            println!("  revisions:   {}", s.revisions.len());
            for r in &s.revisions {
                println!("    {} {}", wisp_core::spec::short_id(&r.id), ago(r.created_at_ms));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
