//! `wisp status`: the server, or one function.

use crate::Global;
use crate::client::{Client, ago, print_table};
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
                let c = &s.outbound_connections;
                println!("outbound connections (databases, brokers): {} open, {} idle", c.open, c.idle);
                println!(
                    "invocation records: {} written, {} dropped (records channel full)",
                    s.records.written, s.records.dropped
                );
                print_triggers(&s.triggers);
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
            if !f.triggers.is_empty() {
                println!("  triggers:    {}", f.triggers.join("; "));
            }
            println!("  revision:    {} (deployed {}, generation {})", f.revision, ago(f.deployed_at_ms), f.generation);
            println!(
                "  artifact:    sha256 {}{}",
                f.artifact,
                f.load_us.map(|us| format!(" (loaded in {:.2} ms)", us as f64 / 1000.0)).unwrap_or_default()
            );
            println!(
                "  limits:      timeout {} ms, memory {} MiB, body {} bytes, logs {} bytes",
                f.limits.timeout_ms, f.limits.memory_mb, f.limits.max_body_bytes, f.limits.max_log_bytes
            );
            println!(
                "  serving:     {} ({} invocations since start, {} cold)",
                if f.active { "yes" } else { "no" },
                f.invocations,
                f.cold_starts
            );
            println!(
                "  instances:   {} mode, {} warm idle (min {})",
                f.instance_mode, f.idle_instances, f.scaling.min_instances
            );
            if let Some(d) = &f.autoscaler {
                println!(
                    "  autoscaler:  desired {}{} (ready {}), concurrency {:.2} stable ({} s) / {:.2} panic window (peak {}); last interval peak {} in flight, {} queued",
                    d.desired,
                    if d.panicking { " (panic)" } else { "" },
                    d.ready,
                    d.stable_concurrency,
                    f.scaling.stable_window_seconds,
                    d.panic_concurrency,
                    d.recent_peak,
                    d.peak_in_flight,
                    d.peak_queued
                );
            }
            if let Some(p) = &s.phases {
                println!("  recent:      {} invocations, {} failed (phase p50 / p99, ms)", p.invocations, p.errors);
                for (label, stats) in [("cold", &p.cold), ("warm", &p.warm)] {
                    let Some(x) = stats else { continue };
                    let f = |v: [u64; 2]| format!("{:.3}/{:.3}", v[0] as f64 / 1000.0, v[1] as f64 / 1000.0);
                    println!(
                        "    {label} ×{}: total {}  queue {}  instantiate {}  init {}  handler {}  response {}",
                        x.count,
                        f(x.duration_us),
                        f(x.queue_us),
                        f(x.instantiate_us),
                        f(x.init_us),
                        f(x.handler_us),
                        f(x.response_us)
                    );
                }
            }
            println!("  revisions:   {}", s.revisions.len());
            for r in &s.revisions {
                println!("    {} {}", wisp_core::spec::short_id(&r.id), ago(r.created_at_ms));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The triggers' table: function, source, state (with the last error while reconnecting), messages in.
pub fn print_triggers(triggers: &[wisp_api::TriggerView]) {
    if triggers.is_empty() {
        return;
    }
    println!();
    let rows: Vec<Vec<String>> = triggers
        .iter()
        .map(|t| {
            let state = match (&t.last_error, t.state.as_str()) {
                (Some(e), "reconnecting" | "connecting") => format!("{} ({e})", t.state),
                _ => t.state.clone(),
            };
            vec![
                format!("{}/{}", t.namespace, t.function),
                t.source.clone(),
                state,
                t.messages_in.to_string(),
                t.last_message_ms.map(ago).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["FUNCTION", "TRIGGER", "STATE", "IN", "LAST"], &rows);
}
