//! `wisp secret`: an app's secrets. `set` reads the value from standard input (one trailing newline
//! dropped) or `--file` (as is), never from the command line, where it would land in shell history and
//! process lists; nothing ever prints a value.

use crate::Global;
use crate::client::{Client, ago, api_error, print_table};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Set a secret: the value from standard input, or --file.
    Set {
        app: String,
        name: String,
        /// Read the value from this file (as is) instead of standard input.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List an app's secrets (names and when they were set; never values).
    Ls { app: String },
    /// Remove a secret (refused while a function is granted it).
    Rm { app: String, name: String },
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let base = |app: &str| format!("/_wisp/v1/namespaces/{}/apps/{app}/secrets", g.namespace);
    let (method, path, body) = match &a.op {
        Op::Ls { app } => {
            let v: Value = client.json(client.request(Method::GET, &base(app))).await?;
            let rows: Vec<Vec<String>> = v["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    vec![s["name"].as_str().unwrap_or("").to_string(), ago(s["updated_at_ms"].as_u64().unwrap_or(0))]
                })
                .collect();
            print_table(&["NAME", "SET"], &rows);
            return Ok(ExitCode::SUCCESS);
        }
        Op::Set { app, name, file } => {
            let value = match file {
                Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
                None => {
                    let mut v = Vec::new();
                    std::io::stdin().read_to_end(&mut v).context("reading the value from standard input")?;
                    if v.ends_with(b"\n") {
                        v.pop();
                        if v.ends_with(b"\r") {
                            v.pop();
                        }
                    }
                    v
                }
            };
            (Method::PUT, format!("{}/{name}", base(app)), Some(value))
        }
        Op::Rm { app, name } => (Method::DELETE, format!("{}/{name}", base(app)), None),
    };
    let mut req = client.request(method, &path);
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = client.send(req).await?;
    let status = resp.status();
    if !status.is_success() {
        let bytes = resp.bytes().await?;
        bail!("{}", api_error(status, &bytes));
    }
    Ok(ExitCode::SUCCESS)
}
