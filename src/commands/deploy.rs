//! `wisp deploy`: upload, validate + compile, switch traffic — for an app (wisp.toml) or one .wasm.

mod files;

use crate::Global;
use crate::client::{Client, api_error};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use wisp_api::DeployBody;
use wisp_core::manifest::Manifest;
use wisp_core::{FunctionKind, FunctionSpec, Limits, Name, RoutePattern};

#[derive(clap::Args)]
pub struct Args {
    /// An app directory containing wisp.toml, a wisp.toml file, or a single .wasm file.
    path: PathBuf,
    /// Function name (single .wasm only; default: the file name).
    #[arg(long, env = "WISP_DEPLOY_NAME")]
    name: Option<String>,
    /// Route, `/path` or `host/path`; repeatable (single .wasm only; default `/<name>`, none for `--kind
    /// messaging`).
    #[arg(long = "route", env = "WISP_DEPLOY_ROUTE", value_delimiter = ',')]
    routes: Vec<String>,
    /// Function kind (single .wasm only).
    #[arg(long, env = "WISP_DEPLOY_KIND", value_enum, default_value = "http")]
    kind: KindArg,
    /// Guest environment variable KEY=VALUE; repeatable (single .wasm only).
    #[arg(long = "env", short = 'e', env = "WISP_DEPLOY_ENV", value_delimiter = ',')]
    env: Vec<String>,
    /// Timeout per invocation, ms (single .wasm only).
    #[arg(long, env = "WISP_DEPLOY_TIMEOUT_MS")]
    timeout_ms: Option<u64>,
    /// Memory limit, MiB (single .wasm only).
    #[arg(long, env = "WISP_DEPLOY_MEMORY_MB")]
    memory_mb: Option<u32>,
    /// Instance mode: `fresh` (new instance per request) or `reuse` (warm instances; single .wasm only).
    #[arg(long, env = "WISP_DEPLOY_INSTANCE_MODE", value_enum)]
    instance_mode: Option<crate::commands::scale::ModeArg>,
    /// Request body limit, bytes (single .wasm only).
    #[arg(long, env = "WISP_DEPLOY_MAX_BODY_BYTES")]
    max_body_bytes: Option<u64>,
    /// A host the function may send HTTP requests to, `scheme://host[:port]`; repeatable (single .wasm
    /// only; default: none).
    #[arg(long = "allow-outbound", env = "WISP_DEPLOY_ALLOW_OUTBOUND", value_delimiter = ',')]
    allow_outbound: Vec<String>,
    /// A key-value store the function may open (`default`, …); repeatable (single .wasm only; default: none).
    #[arg(long = "kv-store", env = "WISP_DEPLOY_KV_STORE", value_delimiter = ',')]
    kv_stores: Vec<String>,
    /// A SQL database the function may open (`default`, …); repeatable (single .wasm only; default: none).
    #[arg(long = "sqlite-db", env = "WISP_DEPLOY_SQLITE_DB", value_delimiter = ',')]
    sqlite_dbs: Vec<String>,
    /// A topic the function may publish to through wasi:messaging (`*`: any); repeatable (single .wasm only;
    /// default: none).
    #[arg(long = "publish-topic", env = "WISP_DEPLOY_PUBLISH_TOPIC", value_delimiter = ',')]
    publish_topics: Vec<String>,
    /// A value for one of the app's `[variables]`, `NAME=VALUE`; repeatable (wisp.toml only).
    #[arg(long = "var", env = "WISP_DEPLOY_VAR", value_delimiter = ',')]
    vars: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Http,
    Wagi,
    /// A component exporting wasi:messaging/incoming-handler: no routes, messages from its triggers.
    Messaging,
}

struct Plan {
    name: Name,
    source: PathBuf,
    spec: FunctionSpec,
    /// Its `files`, resolved: guest path → the file to upload (uploaded with the code).
    files: BTreeMap<String, PathBuf>,
    /// Single-file deploys keep the stored scaling: the spec is sent without it, and only the scaling keys
    /// given as flags are changed afterwards. `None`: a manifest, whose scaling replaces what is stored.
    scaling_patch: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An app's SQL migrations: per database label, its `.sql` files in name order.
struct AppMigrations {
    app: Name,
    databases: Vec<(String, Vec<wisp_core::sql::Migration>)>,
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let (plans, namespace, migrations) = plan(&a)?;
    let mut g = g.clone();
    if let Some(ns) = namespace {
        g.namespace = ns.to_string();
    }
    let client = Client::new(&g)?;
    // Migrations first: a failed one stops the deploy before any function changes (and, applied in one
    // transaction, leaves its database as it was).
    if let Some(m) = migrations {
        for (db, list) in m.databases {
            migrate(&client, &g.namespace, &m.app, &db, list).await?;
        }
    }
    for p in plans {
        deploy_one(&client, p).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies `list` to the app's database `db` over the API; prints what was applied.
async fn migrate(
    client: &Client,
    ns: &str,
    app: &Name,
    db: &str,
    list: Vec<wisp_core::sql::Migration>,
) -> anyhow::Result<()> {
    let path = format!("/_wisp/v1/namespaces/{ns}/apps/{app}/sql/{db}/migrations");
    let body = serde_json::json!({ "migrations": list });
    let v: serde_json::Value = client
        .json(client.request(Method::POST, &path).json(&body))
        .await
        .with_context(|| format!("migrating database `{db}` of app `{app}`; nothing was deployed"))?;
    let applied: Vec<&str> = v["applied"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
    if applied.is_empty() {
        eprintln!("database `{db}`: migrations up to date");
    } else {
        eprintln!("database `{db}`: applied {}", applied.join(", "));
    }
    Ok(())
}

/// The app's `migrations/` folder next to its manifest: `*.sql` files for the `default` database, and a
/// subfolder per other database label. None when there is no such folder.
fn read_migrations(base: &Path) -> anyhow::Result<Vec<(String, Vec<wisp_core::sql::Migration>)>> {
    let dir = base.join("migrations");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let read_sql = |dir: &Path| -> anyhow::Result<Vec<wisp_core::sql::Migration>> {
        let mut list = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                    .with_context(|| format!("{}: migration file names must be UTF-8", path.display()))?;
                let sql = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                list.push(wisp_core::sql::Migration { name, sql });
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    };
    let mut out = vec![(wisp_core::sql::DEFAULT_DATABASE.to_string(), read_sql(&dir)?)];
    let mut subdirs: Vec<PathBuf> =
        std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    subdirs.sort();
    for sub in subdirs {
        let label = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        wisp_core::sql::check_grant(std::slice::from_ref(&label)).map_err(|e| {
            anyhow::anyhow!("{}: a folder of migrations is named after its database: {e}", sub.display())
        })?;
        if label == wisp_core::sql::DEFAULT_DATABASE {
            bail!("{}: the default database's migrations are the .sql files of migrations/ itself", sub.display());
        }
        out.push((label, read_sql(&sub)?));
    }
    out.retain(|(_, list)| !list.is_empty());
    Ok(out)
}

fn plan(a: &Args) -> anyhow::Result<(Vec<Plan>, Option<Name>, Option<AppMigrations>)> {
    let is_wasm = a.path.extension().is_some_and(|e| e == "wasm");
    if !is_wasm {
        let manifest_path = match a.path.is_dir() {
            // A directory holds a wisp.toml or, for a Spin app, a spin.toml.
            true if !a.path.join("wisp.toml").exists() && a.path.join("spin.toml").exists() => a.path.join("spin.toml"),
            true => a.path.join("wisp.toml"),
            false => a.path.clone(),
        };
        let single_only = a.name.is_some()
            || !a.routes.is_empty()
            || !a.env.is_empty()
            || a.timeout_ms.is_some()
            || a.memory_mb.is_some()
            || a.max_body_bytes.is_some()
            || !a.allow_outbound.is_empty()
            || !a.kv_stores.is_empty()
            || !a.sqlite_dbs.is_empty()
            || a.instance_mode.is_some();
        if single_only {
            bail!(
                "--name, --route, --env and limit flags apply to a single .wasm; for an app, set them in {}",
                manifest_path.display()
            );
        }
        let text = std::fs::read_to_string(&manifest_path).with_context(|| {
            format!(
                "reading {} (deploy takes an app directory with wisp.toml, a wisp.toml, or a .wasm file)",
                manifest_path.display()
            )
        })?;
        let label = manifest_path.display().to_string();
        let m = if wisp_core::spin::is_spin_manifest(&text) {
            wisp_core::spin::parse(&text, &label)?
        } else {
            Manifest::parse(&text, &label)?
        };
        let mut given = BTreeMap::new();
        for kv in &a.vars {
            let (k, v) = kv.split_once('=').with_context(|| format!("--var `{kv}`: write NAME=VALUE"))?;
            given.insert(k.to_string(), v.to_string());
        }
        let configs = m.resolved_config(&given).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let base = manifest_path.parent().unwrap_or(Path::new("."));
        let ns = m.namespace();
        let files = (m.functions.iter())
            .map(|f| {
                files::resolve(base, &f.files, &f.exclude_files)
                    .map_err(|e| anyhow::anyhow!("{label}: function `{}`: {e:#}", f.name))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let plans = m
            .functions
            .into_iter()
            .zip(configs)
            .zip(files)
            .map(|((f, resolved), files)| Plan {
                files,
                scaling_patch: None,
                name: f.name,
                source: base.join(&f.source),
                spec: FunctionSpec {
                    kind: f.kind,
                    artifact: String::new(),
                    routes: f.routes,
                    env: f.env,
                    limits: f.limits,
                    app: Some(m.app.name.clone()),
                    scaling: f.scaling,
                    allowed_outbound_hosts: f.allowed_outbound_hosts,
                    key_value_stores: f.key_value_stores,
                    sqlite_databases: f.sqlite_databases,
                    secrets: with_secret_variables(f.secrets, &resolved.secrets),
                    publish_topics: f.publish_topics,
                    config: resolved.config,
                    spin_headers: f.spin_headers,
                    files: BTreeMap::new(), // the digests, once uploaded
                    events: f.events,
                    triggers: f.triggers,
                },
            })
            .collect();
        let databases = read_migrations(base)?;
        let migrations = (!databases.is_empty()).then(|| AppMigrations { app: m.app.name.clone(), databases });
        return Ok((plans, Some(ns), migrations));
    }
    if !a.vars.is_empty() {
        anyhow::bail!("--var sets the [variables] of a wisp.toml; a single .wasm has none");
    }
    let name = match &a.name {
        Some(n) => Name::new(n.as_str()).map_err(|e| anyhow::anyhow!("--name: {e}"))?,
        None => {
            let stem = a.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            Name::new(stem)
                .map_err(|e| anyhow::anyhow!("cannot use the file name as the function name ({e}); pass --name"))?
        }
    };
    let routes = match a.kind {
        // Messages reach a messaging function through its triggers, never a route.
        KindArg::Messaging => a.routes.clone(),
        _ if a.routes.is_empty() => vec![format!("/{name}")],
        _ => a.routes.clone(),
    };
    let routes = routes
        .iter()
        .map(|r| RoutePattern::parse(r).map_err(|e| anyhow::anyhow!("--route: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut env = BTreeMap::new();
    for kv in &a.env {
        let (k, v) = kv.split_once('=').with_context(|| format!("--env `{kv}`: write KEY=VALUE"))?;
        env.insert(k.to_string(), v.to_string());
    }
    let d = Limits::default();
    let limits = Limits {
        timeout_ms: a.timeout_ms.unwrap_or(d.timeout_ms),
        memory_mb: a.memory_mb.unwrap_or(d.memory_mb),
        max_body_bytes: a.max_body_bytes.unwrap_or(d.max_body_bytes),
        ..d
    };
    let kind = match a.kind {
        KindArg::Http => FunctionKind::Http,
        KindArg::Wagi => FunctionKind::Wagi,
        KindArg::Messaging => FunctionKind::Messaging,
    };
    let mut scaling_patch = serde_json::Map::new();
    if let Some(m) = a.instance_mode {
        let mode: wisp_core::InstanceMode = m.into();
        scaling_patch.insert("instance_mode".into(), serde_json::json!(mode.as_str()));
    }
    let spec = FunctionSpec {
        scaling: Default::default(),
        kind,
        artifact: String::new(),
        routes,
        env,
        limits,
        app: None,
        allowed_outbound_hosts: a.allow_outbound.clone(),
        key_value_stores: a.kv_stores.clone(),
        sqlite_databases: a.sqlite_dbs.clone(),
        secrets: Vec::new(),
        publish_topics: a.publish_topics.clone(),
        config: BTreeMap::new(),
        spin_headers: false,
        files: BTreeMap::new(),
        events: Default::default(),
        triggers: Vec::new(),
    };
    let plan = Plan { name, source: a.path.clone(), spec, files: BTreeMap::new(), scaling_patch: Some(scaling_patch) };
    Ok((vec![plan], None, None))
}

/// A function's `secrets` grant with the secret variables its configuration names added (each once).
fn with_secret_variables(mut granted: Vec<String>, used: &[String]) -> Vec<String> {
    for s in used {
        if !granted.contains(s) {
            granted.push(s.clone());
        }
    }
    granted
}

fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    pb.enable_steady_tick(Duration::from_millis(80));
    pb.set_message(msg);
    pb
}

fn human_bytes(n: usize) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1048575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1048576.0),
    }
}

/// Uploads `bytes` (sha256 `sha`; a file a function mounts if `file`) unless the server has them. True if
/// they were uploaded now.
async fn upload(client: &Client, bytes: Vec<u8>, sha: &str, file: bool) -> anyhow::Result<bool> {
    let head = client.send(client.request(Method::HEAD, &format!("/_wisp/v1/artifacts/{sha}"))).await?;
    if head.status().is_success() {
        return Ok(false);
    }
    let path = if file { "/_wisp/v1/artifacts?kind=file" } else { "/_wisp/v1/artifacts" };
    let resp = client.send(client.request(Method::POST, path).body(bytes)).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        bail!("rejected: {}", api_error(status, &body));
    }
    Ok(true)
}

async fn deploy_one(client: &Client, mut p: Plan) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&p.source).with_context(|| format!("function `{}`: reading {}", p.name, p.source.display()))?;
    let sha = wisp_core::spec::sha256_hex(&bytes);
    let size = bytes.len();
    let shown = p.source.display().to_string();

    // 1. upload (skipped when the server already has these bytes)
    let pb = spinner(format!("{}: uploading {shown} ({})", p.name, human_bytes(size)));
    let uploaded = upload(client, bytes, &sha, false).await;
    pb.finish_and_clear();
    let uploaded = match uploaded.with_context(|| format!("function `{}`: upload of {shown}", p.name))? {
        true => "uploaded",
        false => "already uploaded",
    };
    println!("✓ {}: {uploaded} {shown} ({}, sha256 {})", p.name, human_bytes(size), &sha[..12]);
    if !p.files.is_empty() {
        p.spec.files = files::upload_all(client, p.name.as_str(), &p.files).await?;
    }

    // 2. validate + compile + switch
    p.spec.artifact = sha;
    let pb = spinner(format!("{}: validating and compiling", p.name));
    let mut body = serde_json::to_value(&p.spec)?;
    if p.scaling_patch.is_some()
        && let Some(o) = body.as_object_mut()
    {
        o.remove("scaling");
    }
    let req = client.request(Method::PUT, &client.function_path(Some(p.name.as_str()), "")).json(&body);
    let result: anyhow::Result<DeployBody> = client.json(req).await;
    pb.finish_and_clear();
    let d = result.with_context(|| format!("function `{}` not deployed (what was serving still serves)", p.name))?;
    if let Some(patch) = p.scaling_patch.filter(|m| !m.is_empty()) {
        let path = client.function_path(Some(p.name.as_str()), "/scaling");
        let s: wisp_core::Scaling = client
            .json(client.request(Method::PATCH, &path).json(&patch))
            .await
            .with_context(|| format!("function `{}` deployed, but its scaling was not changed", p.name))?;
        println!("✓ {}: scaling: {}", p.name, serde_json::to_string(&s)?);
    }
    match d.compile_ms {
        Some(ms) => println!("✓ {}: validated and compiled in {ms:.0} ms", p.name),
        None => println!("✓ {}: precompiled code reused", p.name),
    }
    if let Some(note) = &d.preinit {
        println!("✓ {}: pre-initialised: {note}", p.name);
    }
    let rev = wisp_core::spec::short_id(&d.function.revision);
    let routes = if d.function.routes.is_empty() {
        "no routes (wisp invoke only)".to_string()
    } else {
        d.function.routes.join(", ")
    };
    if let Some(e) = &d.warm_error {
        println!("! {}: provisioned instances could not start: {e}", p.name);
    }
    match d.change.as_str() {
        "unchanged" => println!("= {}: unchanged — revision {rev} already serves at {routes}", p.name),
        change => println!("✓ {}: revision {rev} {} — serving at {routes}", p.name, change.replace('_', " ")),
    }
    Ok(())
}
