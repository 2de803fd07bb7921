//! `wisp logs`: recent invocations with their captured guest output.

use crate::Global;
use crate::client::{Client, ago};
use reqwest::Method;
use std::process::ExitCode;
use wisp_scheduler::InvocationRecord;

#[derive(clap::Args)]
pub struct Args {
    /// Function name.
    name: String,
    /// How many recent invocations.
    #[arg(long, short = 'l', env = "WISP_LOGS_LIMIT", default_value_t = 20)]
    limit: usize,
    /// Print JSON.
    #[arg(long, env = "WISP_JSON")]
    json: bool,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let path = client.function_path(Some(&a.name), &format!("/logs?limit={}", a.limit));
    let records: Vec<serde_json::Value> = client.json(client.request(Method::GET, &path)).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("no invocations of {} since the server started", a.name);
    }
    for v in records {
        let r: InvocationRecord = match serde_json::from_value(v) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let err = r.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default();
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "{} {} status={} {} {:.3}ms (queue {:.3} instantiate {:.3} init {:.3} handler {:.3} response {:.3} ms) rev {}{err}",
            ago(r.at_ms),
            r.id,
            r.status,
            if r.cold { "cold" } else { "warm" },
            ms(r.duration_us),
            ms(r.queue_us),
            ms(r.instantiate_us),
            ms(r.init_us),
            ms(r.handler_us),
            ms(r.response_us),
            r.revision
        );
        if r.memory_limit_bytes > 0 {
            let wall = std::time::Duration::from_micros(r.wall_us);
            let mut used = vec![
                format!("cpu {:.3} ms", r.cpu_us as f64 / 1000.0),
                format!("{:.6} GB-s", wisp_core::usage::gb_seconds(r.memory_limit_bytes, wall)),
                format!("memory {} KiB of {} MiB", r.peak_memory_bytes / 1024, r.memory_limit_bytes >> 20),
                format!("in {} B, out {} B", r.bytes_in, r.bytes_out),
            ];
            if r.egress_bytes > 0 {
                used.push(format!("egress {} B", r.egress_bytes));
            }
            if !r.services.is_zero() {
                used.push(r.services.summary());
            }
            println!("  used: {}", used.join(", "));
        }
        for line in r.logs.lines() {
            println!("  | {line}");
        }
        if r.logs_truncated {
            println!("  | … (output truncated at the function's max_log_bytes)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
