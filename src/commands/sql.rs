//! `wisp sql`: run a statement on a guest database (the databases functions open with a `sqlite_databases`
//! grant), or list the migrations applied to it.

use crate::Global;
use crate::client::{Client, print_table};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// `APP STATEMENT`: the app whose database to use (a function deployed with a wisp.toml or spin.toml
    /// belongs to its app) and one SQL statement, whose `?` placeholders take the `--param` values in order.
    /// With --function, only the statement; with --migrations, only the app.
    #[arg(value_name = "APP STATEMENT", num_args = 0..=2)]
    args: Vec<String>,
    /// The function whose database to use (one deployed on its own, without an app), instead of APP.
    #[arg(long)]
    function: Option<String>,
    /// The database (label).
    #[arg(long, default_value = "default")]
    db: String,
    /// A parameter value as JSON (`42`, `"text"`, `null`, `{"blob": "00ff"}`); a value that is not JSON
    /// is text. Repeatable, in placeholder order.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// Print the answer as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// List the migrations applied to the database instead of running a statement.
    #[arg(long)]
    migrations: bool,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("blob").and_then(|b| b.as_str()) {
            Some(hex) => format!("x'{hex}'"),
            None => v.to_string(),
        },
        other => other.to_string(),
    }
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let mut args = a.args.iter();
    let base = match &a.function {
        Some(f) => format!("/_wisp/v1/namespaces/{}/functions/{f}/sql/{}", g.namespace, a.db),
        None => match args.next() {
            Some(app) => format!("/_wisp/v1/namespaces/{}/apps/{app}/sql/{}", g.namespace, a.db),
            None => bail!(
                "name the database's owner: wisp sql APP \"STATEMENT\" (APP from its manifest), or --function NAME"
            ),
        },
    };
    let statement = args.next();
    if args.next().is_some() || (a.migrations && statement.is_some()) {
        bail!(
            "too many arguments: wisp sql APP \"STATEMENT\", wisp sql --function NAME \"STATEMENT\", or wisp sql APP --migrations (quote the statement)"
        );
    }
    if a.migrations {
        let v: Value = client.json(client.request(Method::GET, &format!("{base}/migrations"))).await?;
        for name in v["all"].as_array().into_iter().flatten() {
            println!("{}", name.as_str().unwrap_or(""));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let params: Vec<Value> =
        a.params.iter().map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.clone()))).collect();
    let statement = statement.context("give the statement to run: wisp sql APP \"SELECT …\"")?;
    let body = serde_json::json!({ "statement": statement, "params": params });
    let v: Value = client.json(client.request(Method::POST, &format!("{base}/query")).json(&body)).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let columns: Vec<&str> = v["columns"].as_array().into_iter().flatten().filter_map(|c| c.as_str()).collect();
    if columns.is_empty() {
        println!("{} row(s) changed", v["changes"].as_u64().unwrap_or(0));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_array().into_iter().flatten().map(cell).collect())
        .collect();
    print_table(&columns, &rows);
    Ok(ExitCode::SUCCESS)
}
