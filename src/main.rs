//! `wisp`: a self-hosted serverless platform in one binary. See README.md and ARCHITECTURE.md.

mod client;
mod commands;
mod spin_runtime;
mod traces;
mod usage_push;
mod wiring;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the request path allocates and frees many small buffers across threads,
/// where glibc spends its time consolidating free chunks (measured: bench/README.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;

/// Deploy WebAssembly functions and serve them over HTTP.
#[derive(Parser)]
#[command(name = "wisp", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command understands.
#[derive(clap::Args, Clone)]
pub struct Global {
    /// The wisp server to talk to.
    #[arg(long, global = true, env = "WISP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token; by default read from <data-dir>/api-token.
    #[arg(long, global = true, env = "WISP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of the server (where `wisp up` keeps its state and the CLI finds the token).
    #[arg(long, global = true, env = "WISP_DATA_DIR", default_value = ".wisp")]
    pub data_dir: PathBuf,
    /// Namespace to act in.
    #[arg(long, short = 'n', global = true, env = "WISP_NAMESPACE", default_value = wisp_core::DEFAULT_NAMESPACE)]
    pub namespace: String,
}

#[derive(Subcommand)]
enum Command {
    /// Start the platform (embedded store: SQLite + files in the data directory).
    Up(commands::up::Args),
    /// Deploy an app directory / wisp.toml, or one .wasm file.
    Deploy(commands::deploy::Args),
    /// List functions.
    Ls(commands::ls::Args),
    /// Remove a function.
    Rm(commands::rm::Args),
    /// Invoke a function directly (bypassing routes) and print its response.
    Invoke(commands::invoke::Args),
    /// Change a function's scaling settings (applied at once, no redeploy).
    Scale(commands::scale::Args),
    /// Show recent invocations of a function with their captured stdout/stderr (-f: follow new ones).
    Logs(commands::logs::Args),
    /// Persisted invocation records: filter by function, time, status, trigger; paged.
    Invocations(commands::records::InvocationsArgs),
    /// Usage and cost per function or namespace over a period (table, CSV or JSON).
    Usage(commands::records::UsageArgs),
    /// Show the server's status, or one function's.
    Status(commands::status::Args),
    /// Show an asynchronous invocation: state, attempts, timings, result.
    Invocation(commands::events::InvocationArgs),
    /// The dead-letter queue: ls, show, redrive, purge.
    Dlq(commands::events::DlqArgs),
    /// Publish an event to a topic: every subscribed function gets it, durably.
    Publish(commands::events::PublishArgs),
    /// Guests' key-value data: get, set, ls, rm (--app APP or --function NAME, --store S).
    Kv(commands::kv::Args),
    /// Guests' blobs, streamed: put, get, ls, rm (--app APP or --function NAME, --container C).
    Blob(commands::blob::Args),
    /// Run a statement on a guest SQL database (APP "SELECT …", --db LABEL, --param), or --migrations.
    Sql(commands::sql::Args),
    /// An app's secrets: set (value from stdin or --file), ls (names only), rm.
    Secret(commands::secret::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(a) => commands::up::run(&cli.global, a).await,
            Command::Deploy(a) => commands::deploy::run(&cli.global, a).await,
            Command::Ls(a) => commands::ls::run(&cli.global, a).await,
            Command::Rm(a) => commands::rm::run(&cli.global, a).await,
            Command::Invoke(a) => commands::invoke::run(&cli.global, a).await,
            Command::Scale(a) => commands::scale::run(&cli.global, a).await,
            Command::Logs(a) => commands::logs::run(&cli.global, a).await,
            Command::Invocations(a) => commands::records::invocations(&cli.global, a).await,
            Command::Usage(a) => commands::records::usage(&cli.global, a).await,
            Command::Status(a) => commands::status::run(&cli.global, a).await,
            Command::Invocation(a) => commands::events::invocation(&cli.global, a).await,
            Command::Dlq(a) => commands::events::dlq(&cli.global, a).await,
            Command::Publish(a) => commands::events::publish(&cli.global, a).await,
            Command::Kv(a) => commands::kv::run(&cli.global, a).await,
            Command::Blob(a) => commands::blob::run(&cli.global, a).await,
            Command::Sql(a) => commands::sql::run(&cli.global, a).await,
            Command::Secret(a) => commands::secret::run(&cli.global, a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
