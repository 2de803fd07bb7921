//! Function specs (what a deploy asks for), revisions (immutable snapshots) and function records (what serves).

use crate::{FunctionKey, Limits, Name, RoutePattern};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// How a function's code is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FunctionKind {
    /// A `wasi:http/proxy` component exporting `wasi:http/incoming-handler`.
    #[default]
    Http,
    /// A WASI preview1 core module run CGI-style: request as env + stdin, response on stdout.
    Wagi,
    /// A component exporting `wasi:messaging/incoming-handler@0.2.0-draft`: no routes; each event its
    /// triggers (or the async API) deliver arrives as a message, on a fresh instance.
    Messaging,
}

impl fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FunctionKind::Http => "http",
            FunctionKind::Wagi => "wagi",
            FunctionKind::Messaging => "messaging",
        })
    }
}

/// What a deploy asks for: the code (by artifact digest), how to run it and where to route it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// How the code runs.
    #[serde(default)]
    pub kind: FunctionKind,
    /// sha256 (hex) of an uploaded artifact.
    pub artifact: String,
    /// Where requests come from.
    #[serde(default)]
    pub routes: Vec<RoutePattern>,
    /// Environment variables visible to the guest.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// The app this function was deployed with, if any.
    #[serde(default)]
    pub app: Option<Name>,
    /// Scaling settings (traffic config: not part of the revision).
    #[serde(default)]
    pub scaling: crate::Scaling,
    /// Grant of the outbound HTTP capability: hosts the function may send requests to (default none; see
    /// [`crate::outbound`]). Part of the revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Grant of the key-value capability: the stores (labels) the function may open, scoped to its namespace
    /// and app (default none; see [`crate::kv`]). Part of the revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_value_stores: Vec<String>,
    /// Grant of the SQL capability: the databases (labels) the function may open, scoped like key-value
    /// stores (default none; see [`crate::sql`]). Part of the revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite_databases: Vec<String>,
    /// Grant of the app's secrets by name (`wisp secret set APP NAME`): each is served to the guest as a
    /// config key of that name, decrypted on the node, never stored in the revision. Part of the revision
    /// (the names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Grant of the messaging capability: the topics of its namespace the function may publish to through
    /// `wasi:messaging` (default none; `*` any; see [`crate::messaging`]). Part of the revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish_topics: Vec<String>,
    /// Configuration the guest reads through `wasi:config/store` (templates resolved; see [`crate::config`]).
    /// Part of the revision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Add Spin's `spin-*` request headers (`spin-path-info`, `spin-full-url`, …) to every HTTP request, as
    /// `spin up` does: set for components deployed from a `spin.toml`. Part of the revision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spin_headers: bool,
    /// Files the guest sees read-only: guest path → sha256 of an uploaded artifact (see [`crate::files`]).
    /// Part of the revision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Delivery of asynchronous invocations and trigger events (traffic config: not part of the revision).
    #[serde(default, skip_serializing_if = "crate::events::EventConfig::is_default")]
    pub events: crate::events::EventConfig,
    /// Event sources feeding the function's queue (traffic config: not part of the revision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<crate::trigger::TriggerSpec>,
}

/// A spec that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The artifact digest is not 64 lowercase hex characters.
    #[error("artifact `{0}` is not a sha256 digest (64 lowercase hex characters)")]
    BadDigest(String),
    /// An environment variable name is unusable.
    #[error("env key `{0}` is invalid: use a non-empty name without '=' or NUL")]
    BadEnvKey(String),
    /// An environment variable value contains NUL.
    #[error("env value of `{0}` contains a NUL byte")]
    BadEnvValue(String),
    /// A limit is out of range.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// A scaling or events setting is out of range.
    #[error("{0}")]
    Scaling(String),
    /// The same route appears twice.
    #[error("route `{0}` is listed twice")]
    DuplicateRoute(RoutePattern),
    /// An `allowed_outbound_hosts` entry does not parse.
    #[error(transparent)]
    Outbound(#[from] crate::outbound::PatternError),
    /// The `files` map (or a manifest's `files` entries) is unusable.
    #[error("{0}")]
    Files(String),
}

/// Whether `s` is a lowercase hex sha256 digest.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl FunctionSpec {
    /// Checks everything that can be checked without the artifact.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !is_sha256_hex(&self.artifact) {
            return Err(SpecError::BadDigest(self.artifact.clone()));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(SpecError::BadEnvKey(k.clone()));
            }
            if v.contains('\0') {
                return Err(SpecError::BadEnvValue(k.clone()));
            }
        }
        self.limits.validate()?;
        self.scaling.validate().map_err(SpecError::Scaling)?;
        self.events.validate().map_err(SpecError::Scaling)?;
        crate::trigger::validate_all(&self.triggers, &self.routes).map_err(SpecError::Scaling)?;
        crate::outbound::parse_all(&self.allowed_outbound_hosts)?;
        crate::kv::check_grant(&self.key_value_stores).map_err(SpecError::Scaling)?;
        crate::sql::check_grant(&self.sqlite_databases).map_err(SpecError::Scaling)?;
        crate::config::check_secret_grant(&self.secrets, &self.config).map_err(SpecError::Scaling)?;
        crate::messaging::check_grant(&self.publish_topics).map_err(SpecError::Scaling)?;
        if let (FunctionKind::Messaging, Some(r)) = (self.kind, self.routes.first()) {
            return Err(SpecError::Scaling(format!(
                "route `{r}`: a messaging function has no routes (messages reach it through its triggers: add a `type = \"topic\"` trigger)"
            )));
        }
        crate::config::check(&self.config).map_err(SpecError::Scaling)?;
        crate::files::check_map(&self.files).map_err(SpecError::Files)?;
        let mut seen = std::collections::HashSet::new();
        for r in &self.routes {
            if !seen.insert(r) {
                return Err(SpecError::DuplicateRoute(r.clone()));
            }
        }
        Ok(())
    }

    /// The revision id this spec's code + config would get: sha256 over the canonical JSON of kind, artifact,
    /// env, limits, capability grants and mounted files. Routes are traffic, not revision content. (An empty grant is left
    /// out, so revisions from before grants existed keep their ids.)
    pub fn revision_id(&self) -> String {
        #[derive(Serialize)]
        struct Content<'a> {
            kind: FunctionKind,
            artifact: &'a str,
            env: &'a BTreeMap<String, String>,
            limits: &'a Limits,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            allowed_outbound_hosts: &'a [String],
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            key_value_stores: &'a [String],
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            sqlite_databases: &'a [String],
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            secrets: &'a [String],
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            publish_topics: &'a [String],
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            config: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            spin_headers: bool,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            files: &'a BTreeMap<String, String>,
        }
        let content = Content {
            kind: self.kind,
            artifact: &self.artifact,
            env: &self.env,
            limits: &self.limits,
            allowed_outbound_hosts: &self.allowed_outbound_hosts,
            key_value_stores: &self.key_value_stores,
            sqlite_databases: &self.sqlite_databases,
            secrets: &self.secrets,
            publish_topics: &self.publish_topics,
            config: &self.config,
            spin_headers: self.spin_headers,
            files: &self.files,
        };
        // BTreeMap and struct field order make this JSON canonical.
        let json = serde_json::to_vec(&content).expect("plain data serialises");
        sha256_hex(&json)
    }
}

/// The schema version of stored records this build writes (`"v"` in every record). A reader skips records
/// of a newer version (logged), instead of misreading them.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_v1() -> u32 {
    1
}

/// An immutable snapshot of a function's code + config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRecord {
    /// Schema version ([`SCHEMA_VERSION`]); records from before versioning read as 1.
    #[serde(default = "schema_v1")]
    pub v: u32,
    /// Content address of the revision (see [`FunctionSpec::revision_id`]).
    pub id: String,
    /// The function it belongs to.
    pub function: FunctionKey,
    /// How the code runs.
    pub kind: FunctionKind,
    /// sha256 of the artifact.
    pub artifact: String,
    /// Guest environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Hosts it may send HTTP requests to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value stores it may open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_value_stores: Vec<String>,
    /// SQL databases it may open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite_databases: Vec<String>,
    /// Names of the app's secrets it is granted (values never stored here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Topics it may publish to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish_topics: Vec<String>,
    /// Configuration served through `wasi:config/store`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Whether requests get Spin's `spin-*` headers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spin_headers: bool,
    /// Files its instances see read-only: guest path → artifact sha256.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Creation time, unix milliseconds.
    #[serde(default)]
    pub created_at_ms: u64,
}

/// The live state of a function: which revision serves on which routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// Schema version ([`SCHEMA_VERSION`]); records from before versioning read as 1.
    #[serde(default = "schema_v1")]
    pub v: u32,
    /// Namespace + name.
    pub key: FunctionKey,
    /// The app it was deployed with.
    #[serde(default)]
    pub app: Option<Name>,
    /// Where requests come from.
    #[serde(default)]
    pub routes: Vec<RoutePattern>,
    /// The serving revision.
    pub revision: RevisionRecord,
    /// Scaling settings.
    #[serde(default)]
    pub scaling: crate::Scaling,
    /// Event delivery settings.
    #[serde(default, skip_serializing_if = "crate::events::EventConfig::is_default")]
    pub events: crate::events::EventConfig,
    /// Event sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<crate::trigger::TriggerSpec>,
    /// When the serving revision was switched in, unix milliseconds.
    #[serde(default)]
    pub deployed_at_ms: u64,
    /// How many revisions this function has had.
    #[serde(default)]
    pub generation: u64,
}

impl FunctionRecord {
    /// Every route the data plane sends to this function: its own routes, then its webhook routes.
    pub fn served_routes(&self) -> Vec<RoutePattern> {
        self.routes.iter().chain(crate::trigger::webhook_routes(&self.triggers)).cloned().collect()
    }

    /// The webhook trigger served at `route`, if `route` is one.
    pub fn webhook(&self, route: &RoutePattern) -> Option<&crate::trigger::WebhookTrigger> {
        self.triggers.iter().find_map(|t| match t {
            crate::trigger::TriggerSpec::Webhook(w) if &w.route == route => Some(w),
            _ => None,
        })
    }
}

/// Short form of a revision id for humans.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        FunctionSpec {
            kind: FunctionKind::Http,
            artifact: "a".repeat(64),
            routes: vec![RoutePattern::parse("/x").unwrap()],
            env: BTreeMap::from([("K".to_string(), "v".to_string())]),
            limits: Limits::default(),
            app: None,
            scaling: crate::Scaling::default(),
            allowed_outbound_hosts: Vec::new(),
            key_value_stores: Vec::new(),
            sqlite_databases: Vec::new(),
            secrets: Vec::new(),
            publish_topics: Vec::new(),
            config: BTreeMap::new(),
            spin_headers: false,
            files: BTreeMap::new(),
            events: Default::default(),
            triggers: Vec::new(),
        }
    }

    #[test]
    fn revision_id_covers_code_and_config_not_routes() {
        let a = spec();
        let mut b = spec();
        b.routes.push(RoutePattern::parse("/y").unwrap());
        assert_eq!(a.revision_id(), b.revision_id());
        let mut c = spec();
        c.env.insert("K2".into(), "v".into());
        assert_ne!(a.revision_id(), c.revision_id());
        let mut d = spec();
        d.limits.timeout_ms = 5;
        assert_ne!(a.revision_id(), d.revision_id());
        let mut e = spec();
        e.allowed_outbound_hosts.push("https://api.example.com".into());
        assert_ne!(a.revision_id(), e.revision_id());
        // Mounted files are revision content: another file, or other bytes at a path, is a new revision.
        let mut f = spec();
        f.files.insert("/static/a.txt".into(), "b".repeat(64));
        assert_ne!(a.revision_id(), f.revision_id());
        let mut g = f.clone();
        g.files.insert("/static/a.txt".into(), "c".repeat(64));
        assert_ne!(f.revision_id(), g.revision_id());
        // Pinned: a spec without grants keeps the id it had before grants existed.
        #[derive(Serialize)]
        struct Before<'a> {
            kind: FunctionKind,
            artifact: &'a str,
            env: &'a BTreeMap<String, String>,
            limits: &'a Limits,
        }
        let before = Before { kind: a.kind, artifact: &a.artifact, env: &a.env, limits: &a.limits };
        assert_eq!(a.revision_id(), sha256_hex(&serde_json::to_vec(&before).unwrap()));
    }

    #[test]
    fn validation_messages() {
        let mut s = spec();
        s.artifact = "xyz".into();
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "artifact `xyz` is not a sha256 digest (64 lowercase hex characters)"
        );
        let mut s = spec();
        s.env.insert("A=B".into(), "1".into());
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "env key `A=B` is invalid: use a non-empty name without '=' or NUL"
        );
        let mut s = spec();
        s.routes.push(RoutePattern::parse("/x/").unwrap());
        assert_eq!(s.validate().unwrap_err().to_string(), "route `/x` is listed twice");
    }
}
