//! `wisp invocation` and `wisp dlq`: asynchronous invocations and the dead-letter queue.

use crate::Global;
use crate::client::{Client, ago, print_table};
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InvocationArgs {
    /// The invocation id (`wisp invoke NAME --async` prints it).
    id: String,
}

/// `wisp invocation ID`: state, attempts, timings and result of an asynchronous invocation.
pub async fn invocation(g: &Global, a: InvocationArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let v: Value = client.json(client.request(Method::GET, &format!("/_wisp/v1/invocations/{}", a.id))).await?;
    print_invocation(&v);
    Ok(ExitCode::SUCCESS)
}

fn print_invocation(v: &Value) {
    let s =
        |k: &str| v.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).unwrap_or_default();
    println!("invocation  {}", s("id"));
    println!("function    {}/{}", s("namespace"), s("function"));
    println!("state       {}", s("state"));
    println!("attempts    {} (throttled {})", s("attempts"), s("throttled"));
    println!("accepted    {}", v.get("created_ms").and_then(Value::as_u64).map(ago).unwrap_or_default());
    println!("changed     {}", v.get("updated_ms").and_then(Value::as_u64).map(ago).unwrap_or_default());
    if let Some(n) = v.get("next_attempt_ms").and_then(Value::as_u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        println!("next try    in {} ms", n.saturating_sub(now));
    }
    if let Some(st) = v.get("status").and_then(Value::as_u64) {
        println!("status      {st}");
    }
    if let Some(c) = v.get("error_code").and_then(Value::as_str) {
        println!("error code  {c}");
    }
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        println!("error       {e}");
    }
    println!("event       {}", v.get("event").cloned().unwrap_or_default());
    let data = s("data");
    if !data.is_empty() {
        println!("data        {}", data.escape_debug());
    }
    let result = s("result");
    if !result.is_empty() {
        println!("result      {}", result.escape_debug());
    }
}

#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// List a function's dead letters.
    Ls {
        /// Function name.
        name: String,
        /// Most to list.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one dead letter: the event, the error and the last response.
    Show {
        /// Function name.
        name: String,
        /// Invocation id.
        id: String,
    },
    /// Queue dead letters again with fresh attempts (all of the function's, or the ids given).
    Redrive {
        /// Function name.
        name: String,
        /// Invocation ids (default: all).
        ids: Vec<String>,
    },
    /// Delete dead letters (all of the function's, or the ids given).
    Purge {
        /// Function name.
        name: String,
        /// Invocation ids (default: all).
        ids: Vec<String>,
    },
}

/// `wisp dlq …`.
pub async fn dlq(g: &Global, a: DlqArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match a.command {
        DlqCommand::Ls { name, limit } => {
            let path = client.function_path(Some(&name), &format!("/dead-letters?limit={limit}"));
            let list: Vec<Value> = client.json(client.request(Method::GET, &path)).await?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|v| {
                    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    vec![
                        s("id"),
                        v.get("attempts").map(|x| x.to_string()).unwrap_or_default(),
                        s("error_code"),
                        v.get("updated_ms").and_then(Value::as_u64).map(ago).unwrap_or_default(),
                        s("error"),
                    ]
                })
                .collect();
            print_table(&["ID", "ATTEMPTS", "CODE", "FAILED", "ERROR"], &rows);
        }
        DlqCommand::Show { name, id } => {
            let path = client.function_path(Some(&name), &format!("/invocations/{id}"));
            let v: Value = client.json(client.request(Method::GET, &path)).await?;
            print_invocation(&v);
        }
        DlqCommand::Redrive { name, ids } => {
            let n = act(&client, &name, "redrive", ids).await?;
            println!("✓ queued {n} dead letter(s) of {name} again");
        }
        DlqCommand::Purge { name, ids } => {
            let n = act(&client, &name, "purge", ids).await?;
            println!("✓ deleted {n} dead letter(s) of {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn act(client: &Client, name: &str, what: &str, ids: Vec<String>) -> anyhow::Result<u64> {
    let body = if ids.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "ids": ids }) };
    let path = client.function_path(Some(name), &format!("/dead-letters/{what}"));
    let v: Value = client.json(client.request(Method::POST, &path).json(&body)).await?;
    Ok(v.as_object().and_then(|o| o.values().next()).and_then(Value::as_u64).unwrap_or(0))
}

#[derive(clap::Args)]
pub struct PublishArgs {
    /// The topic (functions subscribe with a `type = "topic"` trigger).
    topic: String,
    /// The event's data (`@file` reads a file, `@-` standard input).
    #[arg(long, short = 'd', default_value = "")]
    data: String,
    /// Media type of the data.
    #[arg(long, default_value = "application/octet-stream")]
    content_type: String,
}

/// `wisp publish TOPIC -d DATA`: one durable invocation per subscribed function.
pub async fn publish(g: &Global, a: PublishArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let data = crate::commands::invoke::read_data(&a.data)?;
    let path = format!("/_wisp/v1/namespaces/{}/topics/{}", g.namespace, a.topic);
    let req = client.request(Method::POST, &path).header("content-type", &a.content_type).body(data);
    let v: Value = client.json(req).await?;
    let deliveries = v.get("deliveries").and_then(Value::as_array).cloned().unwrap_or_default();
    if deliveries.is_empty() {
        eprintln!("no function subscribes to topic `{}` in namespace `{}`: nothing was kept", a.topic, g.namespace);
        return Ok(ExitCode::SUCCESS);
    }
    for d in deliveries {
        println!(
            "{}\t{}",
            d.get("function").and_then(Value::as_str).unwrap_or(""),
            d.get("id").and_then(Value::as_str).unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
