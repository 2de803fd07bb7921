//! `wisp rm`: remove a function.

use crate::Global;
use crate::client::{Client, api_error};
use reqwest::Method;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Function name.
    name: String,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let resp = client.send(client.request(Method::DELETE, &client.function_path(Some(&a.name), ""))).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        anyhow::bail!("{}", api_error(status, &resp.bytes().await.unwrap_or_default()));
    }
    println!("✓ removed {}", a.name);
    Ok(ExitCode::SUCCESS)
}
