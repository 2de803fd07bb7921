//! `wisp invocations` (persisted invocation records, filtered and paged) and `wisp usage` (usage and cost).

use crate::Global;
use crate::client::{Client, ago, print_table};
use reqwest::Method;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InvocationsArgs {
    /// Only this function's (default: every function of the namespace).
    name: Option<String>,
    /// Only those that started since: a duration back from now (`90s`, `15m`, `1h`, `7d`) or a time
    /// (`2026-12-01T10:00:00Z`).
    #[arg(long)]
    since: Option<String>,
    /// Only those that started before: a duration back from now or a time.
    #[arg(long)]
    until: Option<String>,
    /// `error` (failed: the guest or the platform, or a 5xx), `ok`, or one HTTP status such as 429.
    #[arg(long)]
    status: Option<String>,
    /// What started them: http, api, event, cron, topic, redis, mqtt, nats, webhook.
    #[arg(long)]
    trigger: Option<String>,
    /// Only the invocation with this id (with its captured output).
    #[arg(long)]
    id: Option<String>,
    /// Records per page.
    #[arg(long, short = 'l', default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    limit: u64,
    /// The page after the one that printed `--before N`.
    #[arg(long)]
    before: Option<i64>,
    /// Print the page as JSON.
    #[arg(long, env = "WISP_JSON")]
    json: bool,
}

/// A time given as a duration back from now or as an RFC 3339 time, in unix ms.
fn when(flag: &str, s: &str) -> anyhow::Result<u64> {
    let now = std::time::SystemTime::now();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(
            now.checked_sub(d).unwrap_or(std::time::UNIX_EPOCH).duration_since(std::time::UNIX_EPOCH)?.as_millis()
                as u64,
        );
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64);
    }
    anyhow::bail!("--{flag} {s:?}: give a duration back from now (90s, 15m, 1h, 7d) or a time (2026-12-01T10:00:00Z)")
}

fn push(q: &mut Vec<String>, key: &str, v: impl std::fmt::Display) {
    q.push(format!("{key}={}", urlencode(&v.to_string())));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn invocations(g: &Global, a: InvocationsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let mut q = Vec::new();
    if let Some(n) = &a.name {
        wisp_core::Name::new(n.as_str()).map_err(|e| anyhow::anyhow!("function name: {e}"))?;
        push(&mut q, "function", n);
    }
    if let Some(s) = &a.since {
        push(&mut q, "since_ms", when("since", s)?);
    }
    if let Some(s) = &a.until {
        push(&mut q, "until_ms", when("until", s)?);
    }
    for (k, v) in [("status", &a.status), ("trigger", &a.trigger), ("id", &a.id)] {
        if let Some(v) = v {
            push(&mut q, k, v);
        }
    }
    if let Some(b) = a.before {
        push(&mut q, "before", b);
    }
    push(&mut q, "limit", a.limit);
    let path = format!("/_wisp/v1/namespaces/{}/records?{}", client.namespace, q.join("&"));
    let page: wisp_metering::Page = client.json(client.request(Method::GET, &path)).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    if page.invocations.is_empty() {
        println!("no invocations match");
        return Ok(ExitCode::SUCCESS);
    }
    if a.id.is_some() {
        for l in &page.invocations {
            println!("function {}/{}", l.namespace, l.function);
            crate::commands::logs::print_record(&l.record);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = page
        .invocations
        .iter()
        .map(|l| {
            let r = &l.record;
            vec![
                ago(r.at_ms),
                r.id.clone(),
                l.function.clone(),
                r.trigger.to_string(),
                r.status.to_string(),
                if r.cold { "cold" } else { "warm" }.into(),
                format!("{:.3}", r.duration_us as f64 / 1000.0),
                format!("{:.3}", r.cpu_us as f64 / 1000.0),
                format!(
                    "{:.6}",
                    wisp_core::usage::gb_seconds(r.memory_limit_bytes, std::time::Duration::from_micros(r.wall_us))
                ),
                r.error
                    .as_deref()
                    .map(|e| wisp_core::record::escape_control(e).chars().take(60).collect())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["AGE", "ID", "FUNCTION", "TRIGGER", "STATUS", "START", "MS", "CPU-MS", "GB-S", "ERROR"], &rows);
    if let Some(next) = page.next {
        println!("(more: the same command with --before {next})");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct UsageArgs {
    /// From: a duration back from now (`24h`, `30d`) or a time; whole hours count.
    #[arg(long, default_value = "24h")]
    since: String,
    /// To (exclusive): a duration back from now or a time [default: now].
    #[arg(long)]
    until: Option<String>,
    /// One row per function or per namespace.
    #[arg(long, value_enum, default_value = "function")]
    by: By,
    /// Only this namespace (default: every namespace; `-n` does not filter here).
    #[arg(long = "only-namespace")]
    only_namespace: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum By {
    Function,
    Namespace,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

pub async fn usage(g: &Global, a: UsageArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let mut q = Vec::new();
    push(&mut q, "since_ms", when("since", &a.since)?);
    if let Some(u) = &a.until {
        push(&mut q, "until_ms", when("until", u)?);
    }
    push(
        &mut q,
        "by",
        match a.by {
            By::Function => "function",
            By::Namespace => "namespace",
        },
    );
    if let Some(ns) = &a.only_namespace {
        push(&mut q, "namespace", ns);
    }
    let path = format!("/_wisp/v1/usage?{}", q.join("&"));
    let report: wisp_api::records::UsageReport = client.json(client.request(Method::GET, &path)).await?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => {
            println!(
                "namespace,function,requests,errors,cold_starts,gb_seconds,cpu_ms,wall_ms,egress_bytes,bytes_in,bytes_out,cost,currency"
            );
            for r in &report.rows {
                println!(
                    "{},{},{},{},{},{:.6},{:.3},{:.3},{},{},{},{:.6},{}",
                    csv(&r.namespace),
                    csv(r.function.as_deref().unwrap_or("")),
                    r.requests,
                    r.errors,
                    r.cold_starts,
                    r.gb_seconds,
                    r.cpu_ms,
                    r.wall_ms,
                    r.egress_bytes,
                    r.bytes_in,
                    r.bytes_out,
                    r.cost,
                    csv(&report.currency)
                );
            }
        }
        Format::Table => {
            let cur = &report.currency;
            let row = |r: &wisp_metering::prices::Usage, name: String| {
                vec![
                    name,
                    r.requests.to_string(),
                    r.errors.to_string(),
                    r.cold_starts.to_string(),
                    format!("{:.6}", r.gb_seconds),
                    format!("{:.3}", r.cpu_ms),
                    bytes(r.egress_bytes),
                    format!("{:.6} {cur}", r.cost),
                ]
            };
            let mut rows: Vec<Vec<String>> = report
                .rows
                .iter()
                .map(|r| {
                    row(
                        r,
                        match &r.function {
                            Some(f) => format!("{}/{f}", r.namespace),
                            None => r.namespace.clone(),
                        },
                    )
                })
                .collect();
            rows.push(row(&report.total, "total".into()));
            let what = match a.by {
                By::Function => "FUNCTION",
                By::Namespace => "NAMESPACE",
            };
            print_table(&[what, "REQUESTS", "ERRORS", "COLD", "GB-S", "CPU-MS", "EGRESS", "COST"], &rows);
            if report.bills.iter().any(|b| b.credit > 0.0) {
                println!();
                let bills: Vec<Vec<String>> = report
                    .bills
                    .iter()
                    .map(|b| {
                        vec![
                            b.namespace.clone(),
                            format!("{:.6} {cur}", b.gross),
                            format!("{:.6} {cur}", b.credit),
                            format!("{:.6} {cur}", b.due),
                        ]
                    })
                    .collect();
                print_table(&["NAMESPACE", "GROSS", "FREE TIER", "DUE"], &bills);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}
