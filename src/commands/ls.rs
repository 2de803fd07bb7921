//! `wisp ls`: list functions.

use crate::Global;
use crate::client::{Client, ago, print_table};
use reqwest::Method;
use std::process::ExitCode;
use wisp_api::FunctionView;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long, env = "WISP_JSON")]
    json: bool,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let fns: Vec<FunctionView> = client.json(client.request(Method::GET, &client.function_path(None, ""))).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&fns)?);
        return Ok(ExitCode::SUCCESS);
    }
    if fns.is_empty() {
        println!("no functions in namespace `{}` (deploy one with `wisp deploy`)", client.namespace);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = fns
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                if f.routes.is_empty() { "-".into() } else { f.routes.join(",") },
                f.kind.clone(),
                wisp_core::spec::short_id(&f.revision).to_string(),
                ago(f.deployed_at_ms),
            ]
        })
        .collect();
    print_table(&["NAME", "ROUTE", "KIND", "REVISION", "DEPLOYED"], &rows);
    Ok(ExitCode::SUCCESS)
}
