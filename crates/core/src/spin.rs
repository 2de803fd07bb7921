//! `spin.toml` (Spin's application manifest, version 2) read as a wisp app: each component reached by an HTTP
//! trigger becomes a function of the app, so a Spin app deploys unchanged (`wisp deploy spin.toml`).
//!
//! Mapping: `[application] name` → the app; `[variables]` → the app's variables (`default`, `required`,
//! `secret`: a secret variable is the app's wisp secret of that name, see [`crate::config`]); `[[trigger.http]]` → the component's routes
//! (`/x/...` becomes the prefix route `/x`, `/x` the exact route `=/x`, as in Spin; named wildcards
//! (`:id`) and `/*` are errors; `private = true` gives no route); `[component.<id>]` →
//! function `<id>`: `source` (a local file), `allowed_outbound_hosts` (and the deprecated
//! `allowed_http_hosts`), `key_value_stores`, `environment`, `variables` (the component's configuration,
//! `{{ name }}` templates), `files` and `exclude_files` (mounted read-only, see [`crate::files`]). Spin's
//! `spin-*` request headers are added for these functions. Keys wisp cannot honour (a `source` URL, a
//! URL in `files`, other trigger types, WAGI's `executor` options) are errors that say so; `build`,
//! `description` and the rest of Spin's tooling keys are ignored.

use crate::manifest::{AppSection, FunctionManifest, Manifest, ManifestError};
use crate::{Name, RoutePattern};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct SpinManifest {
    spin_manifest_version: toml::Value,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, SpinVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, Component>,
}

#[derive(Deserialize)]
struct Application {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct Component {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    allowed_http_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<crate::files::FileMount>,
    #[serde(default)]
    exclude_files: Vec<String>,
}

/// Whether `text` is a Spin manifest (it has `spin_manifest_version`).
pub fn is_spin_manifest(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("spin_manifest_version"))
}

/// Reads a `spin.toml` as a wisp manifest; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
    let err = |message: String| ManifestError { file: file.to_string(), message };
    let m: SpinManifest = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
    if m.spin_manifest_version.as_integer() != Some(2) {
        return Err(err(format!(
            "spin_manifest_version = {}: wisp reads version 2 manifests (Spin 2.x and 3.x; `spin doctor` upgrades a version 1 manifest)",
            m.spin_manifest_version
        )));
    }
    let app = Name::new(m.application.name.as_str())
        .map_err(|e| err(format!("[application] name {:?} is not a wisp app name: {e}", m.application.name)))?;
    if let Some(kind) = m.trigger.keys().find(|k| *k != "http") {
        return Err(err(format!(
            "[[trigger.{kind}]]: wisp maps Spin's HTTP triggers; give this component a wisp trigger in a wisp.toml instead"
        )));
    }
    let mut routes: BTreeMap<String, Vec<RoutePattern>> = BTreeMap::new();
    for (i, t) in m.trigger.get("http").into_iter().flatten().enumerate() {
        let at = format!("the {} [[trigger.http]]", i + 1);
        let component = match t.get("component") {
            Some(toml::Value::String(c)) => c.clone(),
            Some(_) => return Err(err(format!("{at}: `component` must name a [component.<id>] table"))),
            None => return Err(err(format!("{at}: it has no `component`"))),
        };
        if !m.component.contains_key(&component) {
            return Err(err(format!("{at}: component {component:?} has no [component.{component}] table")));
        }
        if let Some(ex) = t.get("executor") {
            return Err(err(format!(
                "{at}: executor {ex} is not supported; wisp runs Spin's default (wasi:http) executor"
            )));
        }
        let entry = routes.entry(component).or_default();
        match t.get("route") {
            Some(toml::Value::String(r)) => {
                if r.split('/').any(|s| s.starts_with(':') || s == "*") {
                    return Err(err(format!(
                        "{at}: route {r:?}: named wildcards (`:name`) and `/*` are not supported; use a trailing `/...` and route on spin-path-info"
                    )));
                }
                let pattern = match r.strip_suffix("/...").or_else(|| r.strip_suffix("...")) {
                    Some("") => "/".to_string(),
                    Some(prefix) => prefix.to_string(),
                    None => format!("={r}"),
                };
                entry.push(RoutePattern::parse(&pattern).map_err(|e| err(format!("{at}: route {r:?}: {e}")))?);
            }
            Some(toml::Value::Table(t)) if t.get("private").and_then(toml::Value::as_bool) == Some(true) => {}
            _ => return Err(err(format!("{at}: route must be a path like \"/api/...\" or {{ private = true }}"))),
        }
    }
    let mut functions = Vec::new();
    for (id, c) in m.component {
        let at = format!("[component.{id}]");
        let name = Name::new(id.as_str()).map_err(|e| err(format!("{at}: {id:?} is not a wisp function name: {e}")))?;
        let source = match &c.source {
            toml::Value::String(s) => s.clone(),
            _ => {
                return Err(err(format!(
                    "{at}: source must be a local .wasm path; download a registry or URL source first"
                )));
            }
        };
        crate::files::check_mounts(&c.files, &c.exclude_files).map_err(|e| err(format!("{at}: {e}")))?;
        let mut hosts = c.allowed_outbound_hosts;
        for h in c.allowed_http_hosts {
            // Spin 1's `allowed_http_hosts`: a bare host (any of http/https), or a URL.
            if h.contains("://") {
                hosts.push(h);
            } else {
                hosts.push(format!("http://{h}"));
                hosts.push(format!("https://{h}"));
            }
        }
        let f = FunctionManifest {
            name,
            kind: crate::FunctionKind::Http,
            source,
            routes: routes.remove(&id).unwrap_or_default(),
            env: c.environment,
            limits: Default::default(),
            scaling: Default::default(),
            allowed_outbound_hosts: hosts,
            key_value_stores: c.key_value_stores,
            sqlite_databases: c.sqlite_databases,
            secrets: Vec::new(),
            publish_topics: Vec::new(),
            config: c.variables,
            events: Default::default(),
            triggers: Vec::new(),
            files: c.files,
            exclude_files: c.exclude_files,
            spin_headers: true,
        };
        functions.push(f);
    }
    let variables = m
        .variables
        .into_iter()
        .map(|(k, v)| (k, crate::config::Variable { default: v.default, required: v.required, secret: v.secret }))
        .collect();
    let manifest = Manifest { app: AppSection { name: app, namespace: None }, functions, variables };
    manifest.check(file)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(routes: &str) -> String {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"app\"\n{routes}\n[component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"b.wasm\"\n"
        )
    }

    #[test]
    fn wildcard_routes_are_prefixes_and_plain_routes_exact() {
        let m = parse(
            &manifest(
                "[[trigger.http]]\nroute = \"/api/...\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"/hello\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"b\"\n[[trigger.http]]\nroute = { private = true }\ncomponent = \"b\"",
            ),
            "spin.toml",
        )
        .unwrap();
        let routes = |name: &str| {
            let f = m.functions.iter().find(|f| f.name.as_str() == name).unwrap();
            f.routes.iter().map(|r| r.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(routes("a"), ["/api", "=/hello"]);
        assert_eq!(routes("b"), ["/"]);
        // Spin's `files`: kept for the deploy to resolve; what can be checked without the app directory is.
        let with_files = |files: &str| {
            parse(&format!("{}files = {files}\nexclude_files = [\"static/*.map\"]\n", manifest("")), "spin.toml")
        };
        let m = with_files(r#"["static/**/*", { source = "assets", destination = "/assets" }]"#).unwrap();
        let b = m.functions.iter().find(|f| f.name.as_str() == "b").unwrap();
        assert_eq!(b.files.len(), 2);
        assert_eq!(b.exclude_files, ["static/*.map"]);
        for (files, want) in [
            (r#"["/etc/*"]"#, "spin.toml: [component.b]: files entry \"/etc/*\": \"/etc/*\" is absolute"),
            (
                r#"[{ source = "https://example.com/a.tgz", destination = "/a" }]"#,
                "is a URL; wisp mounts files of the app directory only",
            ),
        ] {
            let e = with_files(files).unwrap_err().to_string();
            assert!(e.starts_with(want) || e.contains(want), "{files}: {e}");
        }
        for bad in ["/users/:id", "/files/*"] {
            let e = parse(&manifest(&format!("[[trigger.http]]\nroute = \"{bad}\"\ncomponent = \"a\"")), "spin.toml")
                .unwrap_err();
            assert!(e.message.contains("named wildcards (`:name`) and `/*` are not supported"), "{bad}: {e}");
        }
    }
}
