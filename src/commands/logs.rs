//! `wisp logs`: recent invocations with their captured guest output; `-f` follows new ones as they finish.

use crate::Global;
use crate::client::{Client, ago};
use futures::StreamExt;
use reqwest::Method;
use std::process::ExitCode;
use wisp_core::record::escape_control;
use wisp_scheduler::InvocationRecord;

#[derive(clap::Args)]
pub struct Args {
    /// Function name.
    name: String,
    /// How many recent invocations.
    #[arg(long, short = 'l', env = "WISP_LOGS_LIMIT", default_value_t = 20)]
    limit: usize,
    /// Keep following: print each new invocation as it finishes (server-sent events), until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only the invocation with this id.
    #[arg(long)]
    id: Option<String>,
    /// Print JSON (with -f: one record per line).
    #[arg(long, env = "WISP_JSON")]
    json: bool,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let mut query = format!("/logs?limit={}", a.limit);
    if let Some(id) = &a.id {
        query.push_str(&format!("&id={}", urlencode(id)));
    }
    if a.follow {
        return follow(&client, &a, &format!("{query}&follow=true")).await;
    }
    let path = client.function_path(Some(&a.name), &query);
    let records: Vec<serde_json::Value> = client.json(client.request(Method::GET, &path)).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        match &a.id {
            Some(id) => println!(
                "no invocation {id} of {} among its recent ones on this node (wisp invocations --id {id} searches the persisted records)",
                a.name
            ),
            None => println!("no invocations of {} since the server started", a.name),
        }
    }
    for v in records {
        if let Ok(r) = serde_json::from_value::<InvocationRecord>(v) {
            print_record(&r);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams `logs?follow=true`: prints every record event as it arrives.
async fn follow(client: &Client, a: &Args, query: &str) -> anyhow::Result<ExitCode> {
    let path = client.function_path(Some(&a.name), query);
    let resp = client.send(client.request(Method::GET, &path).header("accept", "text/event-stream")).await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        anyhow::bail!("{}", crate::client::api_error(status, &body));
    }
    eprintln!("following {} (Ctrl-C to stop)", a.name);
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| anyhow::anyhow!("the log stream broke: {e}"))?);
        // Events end with a blank line.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let (mut kind, mut data) = ("message", String::new());
            for line in text.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = if k.trim() == "invocation" {
                        "invocation"
                    } else if k.trim() == "lagged" {
                        "lagged"
                    } else {
                        "other"
                    };
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            match kind {
                "invocation" if a.json => println!("{data}"),
                "invocation" => match serde_json::from_str::<InvocationRecord>(&data) {
                    Ok(r) => print_record(&r),
                    Err(e) => eprintln!("unreadable record in the stream: {e}"),
                },
                "lagged" => eprintln!("(too slow to keep up: some invocations were skipped {data})"),
                _ => {}
            }
        }
    }
    eprintln!("the server closed the log stream");
    Ok(ExitCode::FAILURE)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One record, as `wisp logs` prints it: a summary line, what it used, its output line by line (control
/// characters escaped), and the truncation marker.
pub fn print_record(r: &InvocationRecord) {
    let err = r.error.as_deref().map(|e| format!(" — {}", escape_control(e))).unwrap_or_default();
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{} {} {} status={} {} {:.3}ms (queue {:.3} instantiate {:.3} init {:.3} handler {:.3} response {:.3} ms) rev {}{err}",
        ago(r.at_ms),
        r.id,
        r.trigger,
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
        println!("  | {}", escape_control(line));
    }
    if r.logs_truncated {
        println!("  | … (output truncated at the function's max_log_bytes)");
    }
}
