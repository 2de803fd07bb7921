//! `wisp invoke`: call a function directly and print its response body.

use crate::Global;
use crate::client::Client;
use anyhow::Context;
use reqwest::Method;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Function name.
    name: String,
    /// Request body; `@file` reads a file, `@-` standard input. Implies POST.
    #[arg(long, short = 'd', env = "WISP_INVOKE_DATA")]
    data: Option<String>,
    /// Request header `name: value`; repeatable.
    #[arg(long = "header", short = 'H', env = "WISP_INVOKE_HEADER", value_delimiter = '\n')]
    headers: Vec<String>,
    /// HTTP method (default GET, or POST with --data).
    #[arg(long, short = 'X', env = "WISP_INVOKE_METHOD")]
    method: Option<String>,
    /// Path (and query) the function sees.
    #[arg(long, env = "WISP_INVOKE_PATH", default_value = "/")]
    path: String,
    /// Also print the status line and response headers (to stderr).
    #[arg(long, short = 'i', env = "WISP_INVOKE_INCLUDE")]
    include: bool,
    /// Queue the body as an event instead (202 once durable) and print the invocation id; follow it with
    /// `wisp invocation ID`. Headers pass through (`-H 'content-type: application/cloudevents+json'` sends
    /// a structured CloudEvent).
    #[arg(long = "async", env = "WISP_INVOKE_ASYNC")]
    is_async: bool,
}

/// A `--data` argument's bytes: `@file` reads a file, `@-` standard input, anything else is the data.
pub fn read_data(d: &str) -> anyhow::Result<Vec<u8>> {
    Ok(match d {
        "@-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading standard input")?;
            buf
        }
        d if d.starts_with('@') => std::fs::read(&d[1..]).with_context(|| format!("reading {}", &d[1..]))?,
        d => d.as_bytes().to_vec(),
    })
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let body = a.data.as_deref().map(read_data).transpose()?;
    let method = match &a.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .with_context(|| format!("--method `{m}` is not an HTTP method"))?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    if a.is_async {
        let mut req = client.request(Method::POST, &client.function_path(Some(&a.name), "/invocations"));
        for h in &a.headers {
            let (k, v) = h.split_once(':').with_context(|| format!("--header `{h}`: write `name: value`"))?;
            req = req.header(k.trim(), v.trim());
        }
        let accepted: serde_json::Value = client.json(req.body(body.unwrap_or_default())).await?;
        match accepted.get("id").and_then(|v| v.as_str()) {
            Some(id) if accepted.get("duplicate").and_then(|v| v.as_bool()) == Some(true) => {
                println!("{id}");
                eprintln!("wisp: a duplicate of invocation {id} (same event source and id); not queued again");
            }
            Some(id) => println!("{id}"),
            None => println!("{accepted}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let suffix = match a.path.trim_start_matches('/') {
        "" => "/invoke".to_string(),
        p => format!("/invoke/{p}"),
    };
    let mut req = client.request(method, &client.function_path(Some(&a.name), &suffix));
    for h in &a.headers {
        let (k, v) = h.split_once(':').with_context(|| format!("--header `{h}`: write `name: value`"))?;
        req = req.header(k.trim(), v.trim());
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = client.send(req).await?;
    let status = resp.status();
    let id = resp.headers().get("x-wisp-invocation-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    if a.include {
        eprintln!("{status}");
        for (k, v) in resp.headers() {
            eprintln!("{k}: {}", v.to_str().unwrap_or("<binary>"));
        }
        eprintln!();
    }
    let bytes = resp.bytes().await?;
    std::io::stdout().write_all(&bytes)?;
    if !status.is_success() {
        eprintln!("wisp: {} answered {status} (invocation {id})", a.name);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
