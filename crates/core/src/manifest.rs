//! The `wisp.toml` app manifest.
//!
//! ```toml
//! [app]
//! name = "shop"               # required
//! namespace = "default"       # optional
//!
//! [[function]]
//! name = "cart"
//! kind = "http"               # "http" (wasi:http component, default) or "wagi" (preview1 module, CGI-style)
//! source = "build/cart.wasm"  # relative to the manifest
//! routes = ["/cart"]          # `/path` or `host/path`
//! env = { CURRENCY = "EUR" }
//! limits = { timeout_ms = 5000, memory_mb = 64 }
//! scaling = { instance_mode = "reuse" }  # "fresh" (default) or "reuse"
//! events = { retry_attempts = 2, path = "/" }  # async delivery (see `events::EventConfig`)
//! files = ["static/**/*", { source = "assets", destination = "/assets" }]  # read-only (see `files`)
//! exclude_files = ["static/**/*.map"]
//!
//! [[function.trigger]]        # event sources (see `trigger`)
//! type = "cron"
//! schedule = "0 */5 * * * *"
//! ```

use crate::spec::SpecError;
use crate::{FunctionKind, Limits, Name, RoutePattern};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// A parsed and validated manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The `[app]` table.
    pub app: AppSection,
    /// The `[[function]]` tables.
    #[serde(rename = "function", default)]
    pub functions: Vec<FunctionManifest>,
    /// The app's variables (`[variables]`), which function `config` values name as `{{ name }}`.
    #[serde(default)]
    pub variables: BTreeMap<String, crate::config::Variable>,
}

/// The `[app]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// The app's name.
    pub name: Name,
    /// The namespace to deploy into (default `default`).
    #[serde(default)]
    pub namespace: Option<Name>,
}

/// One `[[function]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionManifest {
    /// Unique within the namespace.
    pub name: Name,
    /// How the code runs.
    #[serde(default)]
    pub kind: FunctionKind,
    /// Path of the `.wasm`, relative to the manifest.
    pub source: String,
    /// Where requests come from.
    #[serde(default)]
    pub routes: Vec<RoutePattern>,
    /// Guest environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Scaling settings.
    #[serde(default)]
    pub scaling: crate::Scaling,
    /// Hosts the function may send HTTP requests to (`scheme://host[:port]`, see [`crate::outbound`]).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value stores the function may open (see [`crate::kv`]).
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQL databases the function may open (see [`crate::sql`]).
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// The app's secrets the function may read, by name (see [`crate::spec::FunctionSpec::secrets`]).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Topics the function may publish to through `wasi:messaging` (see [`crate::messaging`]).
    #[serde(default)]
    pub publish_topics: Vec<String>,
    /// Configuration for `wasi:config/store`; values may name `[variables]` as `{{ name }}`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Delivery of asynchronous invocations and events (see [`crate::events::EventConfig`]).
    #[serde(default)]
    pub events: crate::events::EventConfig,
    /// Event sources (`[[function.trigger]]` tables, see [`crate::trigger`]).
    #[serde(rename = "trigger", default)]
    pub triggers: Vec<crate::trigger::TriggerSpec>,
    /// Files of the app the guest sees read-only (globs, paths, `{ source, destination }`; see
    /// [`crate::files`]); resolved and uploaded by the deploy.
    #[serde(default)]
    pub files: Vec<crate::files::FileMount>,
    /// Globs of app paths left out of what `files` brings in.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// Add Spin's `spin-*` request headers: set by [`crate::spin`] for the components of a `spin.toml`, not a
    /// `wisp.toml` key.
    #[serde(skip)]
    pub spin_headers: bool,
}

/// A manifest that could not be used. The message names the file, the place and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    /// The manifest's path as given.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl Manifest {
    /// Parses `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        let err = |message: String| ManifestError { file: file.to_string(), message };
        let manifest: Manifest = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        manifest.check(file)?;
        Ok(manifest)
    }

    /// Checks what the parsers cannot: at least one function, unique names, sources given, valid specs.
    pub(crate) fn check(&self, file: &str) -> Result<(), ManifestError> {
        let err = |message: String| ManifestError { file: file.to_string(), message };
        if self.functions.is_empty() {
            return Err(err("no functions: add at least one [[function]] table with name and source".into()));
        }
        let mut names = HashSet::new();
        for (i, f) in self.functions.iter().enumerate() {
            let at = format!("function `{}` (the {} [[function]] table)", f.name, ordinal(i + 1));
            if !names.insert(&f.name) {
                return Err(err(format!("{at}: the name is used twice; function names must be unique")));
            }
            if f.source.trim().is_empty() {
                return Err(err(format!("{at}: source is empty; give the path of the .wasm file")));
            }
            f.check().map_err(|e| err(format!("{at}: {e}")))?;
        }
        Ok(())
    }

    /// Each function's `config` with its templates resolved from the variables (`given` at deploy, else
    /// their defaults), and the secrets each must be granted: the secret variables its templates name (those
    /// stay templates, see [`crate::config`]); an error names the function, the key and what to do.
    pub fn resolved_config(&self, given: &BTreeMap<String, String>) -> Result<Vec<ResolvedConfig>, String> {
        let values = crate::config::variable_values(&self.variables, given)?;
        let is_secret = |name: &str| self.variables.get(name).is_some_and(|v| v.secret);
        self.functions
            .iter()
            .map(|f| {
                let mut out = ResolvedConfig::default();
                for (k, t) in &f.config {
                    let v = crate::config::resolve(t, &values)
                        .map_err(|e| format!("function `{}`, config.{k}: {e}", f.name))?;
                    for name in crate::config::template_names(t) {
                        if is_secret(name) && !out.secrets.iter().any(|s| s == name) {
                            out.secrets.push(name.to_string());
                        }
                    }
                    out.config.insert(k.clone(), v);
                }
                Ok(out)
            })
            .collect()
    }

    /// The namespace to deploy into.
    pub fn namespace(&self) -> Name {
        self.app.namespace.clone().unwrap_or_else(|| Name::new(crate::DEFAULT_NAMESPACE).expect("valid"))
    }
}

/// A function's configuration as deployed (see [`Manifest::resolved_config`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedConfig {
    /// Its `config`, resolved but for secret variables.
    pub config: BTreeMap<String, String>,
    /// The secret variables it names: the app secrets the function must be granted.
    pub secrets: Vec<String>,
}

impl FunctionManifest {
    fn check(&self) -> Result<(), SpecError> {
        let spec = crate::FunctionSpec {
            kind: self.kind,
            artifact: "0".repeat(64),
            routes: self.routes.clone(),
            env: self.env.clone(),
            limits: self.limits,
            app: None,
            scaling: self.scaling,
            allowed_outbound_hosts: self.allowed_outbound_hosts.clone(),
            key_value_stores: self.key_value_stores.clone(),
            sqlite_databases: self.sqlite_databases.clone(),
            secrets: self.secrets.clone(),
            publish_topics: self.publish_topics.clone(),
            config: self.config.keys().map(|k| (k.clone(), String::new())).collect(),
            spin_headers: self.spin_headers,
            files: BTreeMap::new(),
            events: self.events.clone(),
            triggers: self.triggers.clone(),
        };
        crate::files::check_mounts(&self.files, &self.exclude_files).map_err(SpecError::Files)?;
        spec.validate()
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[app]
name = "shop"

[[function]]
name = "cart"
source = "cart.wasm"
routes = ["/cart", "shop.example.com/"]
env = { CURRENCY = "EUR" }
limits = { timeout_ms = 5000 }

files = ["static/**/*", { source = "assets", destination = "/assets" }]
exclude_files = ["static/*.map"]

[[function]]
name = "legacy"
kind = "wagi"
source = "legacy.wasm"
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD, "wisp.toml").unwrap();
        assert_eq!(m.app.name.as_str(), "shop");
        assert_eq!(m.namespace().as_str(), "default");
        assert_eq!(m.functions.len(), 2);
        let cart = &m.functions[0];
        assert_eq!(cart.kind, FunctionKind::Http);
        assert_eq!(cart.routes[1].host.as_deref(), Some("shop.example.com"));
        assert_eq!(cart.limits.timeout_ms, 5000);
        assert_eq!(cart.limits.memory_mb, crate::limits::DEFAULT_MEMORY_MB);
        assert_eq!(m.functions[1].kind, FunctionKind::Wagi);
        assert_eq!(
            cart.files,
            [
                crate::files::FileMount::Pattern("static/**/*".into()),
                crate::files::FileMount::Placement { source: "assets".into(), destination: "/assets".into() }
            ]
        );
        assert_eq!(cart.exclude_files, ["static/*.map"]);
    }

    /// Golden error messages: each names the file, the place, and what is allowed.
    #[test]
    fn golden_errors() {
        let table: &[(&str, &str)] = &[
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\ntimeout = 5\n",
                "wisp.toml: TOML parse error at line 6, column 1\n  |\n6 | timeout = 5\n  | ^^^^^^^\nunknown field `timeout`, expected one of `name`, `kind`, `source`, `routes`, `env`, `limits`, `scaling`, `allowed_outbound_hosts`, `key_value_stores`, `sqlite_databases`, `secrets`, `publish_topics`, `config`, `events`, `trigger`, `files`, `exclude_files`",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\nkind = \"lambda\"\n",
                "wisp.toml: TOML parse error at line 6, column 8\n  |\n6 | kind = \"lambda\"\n  |        ^^^^^^^^\nunknown variant `lambda`, expected one of `http`, `wagi`, `messaging`",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"Bad_Name\"\nsource = \"f.wasm\"\n",
                "wisp.toml: TOML parse error at line 4, column 8\n  |\n4 | name = \"Bad_Name\"\n  |        ^^^^^^^^^^\ninvalid name `Bad_Name`: it must start with a lowercase letter (use 1-63 characters of a-z, 0-9 and '-', starting with a letter)",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\nroutes = [\"hello\"]\n",
                "wisp.toml: TOML parse error at line 6, column 10\n  |\n6 | routes = [\"hello\"]\n  |          ^^^^^^^^^\ninvalid route `hello`: it has no path; add one, e.g. `example.com/` (write `/path` or `host/path`, e.g. `/hello` or `api.example.com/v1`; `=/path` for that path only)",
            ),
            (
                "[app]\nname = \"a\"\n",
                "wisp.toml: no functions: add at least one [[function]] table with name and source",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\n[[function]]\nname = \"f\"\nsource = \"g.wasm\"\n",
                "wisp.toml: function `f` (the 2nd [[function]] table): the name is used twice; function names must be unique",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\nlimits = { memory_mb = 0 }\n",
                "wisp.toml: function `f` (the 1st [[function]] table): limits.memory_mb = 0 is out of range: allowed 1..=4096",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\nfiles = [\"../shared/*\"]\n",
                "wisp.toml: function `f` (the 1st [[function]] table): files entry \"../shared/*\": \"../shared/*\" has a `..` segment; files come from the app directory (the manifest's) and below",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\nsource = \"f.wasm\"\nfiles = [{ source = \"a\", destination = \"a\" }]\n",
                "wisp.toml: function `f` (the 1st [[function]] table): files entry { source = \"a\", destination = \"a\" }: destination: guest path \"a\" is not absolute; start it with `/`",
            ),
            (
                "[app]\nname = \"a\"\n[[function]]\nname = \"f\"\n",
                "wisp.toml: TOML parse error at line 3, column 1\n  |\n3 | [[function]]\n  | ^^^^^^^^^^^^\nmissing field `source`",
            ),
        ];
        let mut bad = Vec::new();
        for (text, want) in table {
            let got = Manifest::parse(text, "wisp.toml").unwrap_err().to_string();
            if &got != want {
                bad.push(format!("--- input ---\n{text}--- got ---\n{got:?}\n--- want ---\n{want:?}"));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
