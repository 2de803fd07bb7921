//! `wisp kv`: guests' key-value data — the stores functions open with a `key_value_stores` grant.

use crate::Global;
use crate::client::{Client, api_error};
use anyhow::bail;
use reqwest::Method;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
    /// The app whose stores to use (a function deployed with a wisp.toml belongs to its app).
    #[arg(long, global = true, conflicts_with = "function")]
    app: Option<String>,
    /// The function whose stores to use (one deployed on its own, without an app).
    #[arg(long, global = true)]
    function: Option<String>,
    /// The store (label).
    #[arg(long, global = true, default_value = wisp_core::kv::DEFAULT_STORE)]
    store: String,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Print a key's value.
    Get { key: String },
    /// Set a key (`-d VALUE`, `@file` reads a file, `@-` standard input).
    Set {
        key: String,
        #[arg(long, short = 'd')]
        data: String,
    },
    /// List the store's keys.
    Ls,
    /// Delete a key.
    Rm { key: String },
}

/// Path segments are percent-encoded; `/` in a key stays a separator (the API takes the rest of the path).
fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let base = match (&a.app, &a.function) {
        (Some(app), _) => format!("/_wisp/v1/namespaces/{}/apps/{app}/kv/{}", g.namespace, a.store),
        (None, Some(f)) => format!("/_wisp/v1/namespaces/{}/functions/{f}/kv/{}", g.namespace, a.store),
        (None, None) => bail!("name the stores' owner: --app APP (from its wisp.toml) or --function NAME"),
    };
    let (method, path, body) = match &a.op {
        Op::Get { key } => (Method::GET, format!("{base}/{}", encode(key)), None),
        Op::Set { key, data } => {
            (Method::PUT, format!("{base}/{}", encode(key)), Some(crate::commands::invoke::read_data(data)?))
        }
        Op::Rm { key } => (Method::DELETE, format!("{base}/{}", encode(key)), None),
        Op::Ls => {
            let mut cursor: Option<u64> = None;
            loop {
                let path = match cursor {
                    Some(c) => format!("{base}?cursor={c}"),
                    None => base.clone(),
                };
                let v: Value = client.json(client.request(Method::GET, &path)).await?;
                for k in v["keys"].as_array().into_iter().flatten() {
                    println!("{}", k.as_str().unwrap_or(""));
                }
                cursor = v["cursor"].as_u64();
                if cursor.is_none() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let mut req = client.request(method, &path);
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = client.send(req).await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!("{}", api_error(status, &bytes));
    }
    if matches!(a.op, Op::Get { .. }) {
        std::io::stdout().write_all(&bytes)?;
    }
    Ok(ExitCode::SUCCESS)
}
