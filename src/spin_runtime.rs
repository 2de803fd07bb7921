//! The part of Spin's runtime configuration (`spin up --runtime-config-file runtime-config.toml`) that
//! `wisp up --config` takes, so a Spin user's file works here as it is where it means the same thing:
//!
//! - `[key_value_store.<label>]` with `type = "spin"` (wisp's embedded store) or `type = "redis"` and `url`:
//!   a wisp node has one key-value backend in which every app's labels are scoped, so every label must name
//!   the same one (and agree with a `[key_value]` section, if both are given);
//! - `[sqlite_database.<label>]` with `type = "spin"` (wisp's own file per namespace + app + label).
//!
//! A `path` (Spin's file location) is refused: wisp keeps that data in its data directory, scoped per app.
//! Spin's tables for services wisp does not offer this way (`llm_compute`, `variables_provider` /
//! `config_provider`, `outbound_networking`, `client_tls`) are errors that say what to use instead.

use std::collections::BTreeMap;

/// One `[key_value_store.<label>]` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KvStore {
    /// Spin's default (SQLite): wisp's embedded store.
    Spin {
        /// Spin's database file: refused (wisp keeps its own).
        path: Option<String>,
    },
    /// A Redis server.
    Redis {
        /// `redis://host[:port][/db]`.
        url: String,
    },
}

/// One `[sqlite_database.<label>]` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SqliteDatabase {
    /// Spin's default: a local SQLite file (wisp's own, per namespace + app + label).
    Spin {
        /// Spin's database file: refused (wisp keeps its own).
        path: Option<String>,
    },
}

/// Spin's tables of a runtime configuration file, as `wisp up --config` reads them.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SpinTables {
    /// `[key_value_store.<label>]`.
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KvStore>,
    /// `[sqlite_database.<label>]`.
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabase>,
    #[serde(default)]
    llm_compute: Option<toml::Value>,
    #[serde(default)]
    variables_provider: Option<toml::Value>,
    #[serde(default)]
    config_provider: Option<toml::Value>,
    #[serde(default)]
    outbound_networking: Option<toml::Value>,
    #[serde(default)]
    client_tls: Option<toml::Value>,
}

/// The key-value backend Spin's tables name: `None` when they name none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvBackend {
    /// The embedded store.
    Embedded,
    /// Redis at this URL.
    Redis(String),
}

impl SpinTables {
    /// Checks the tables; returns the key-value backend they name, if any.
    pub fn kv_backend(&self) -> Result<Option<KvBackend>, String> {
        let refused = [
            ("llm_compute", self.llm_compute.is_some(), "wisp serves no LLM inference; remove it"),
            (
                "variables_provider",
                self.variables_provider.is_some() || self.config_provider.is_some(),
                "give variables with `wisp deploy --var NAME=VALUE` and secret ones with `wisp secret set APP NAME`",
            ),
            (
                "outbound_networking",
                self.outbound_networking.is_some() || self.client_tls.is_some(),
                "wisp refuses private and loopback addresses unless allowed_outbound_hosts names the IP, and verifies TLS with the webpki roots",
            ),
        ];
        if let Some((table, _, instead)) = refused.iter().find(|(_, given, _)| *given) {
            return Err(format!("Spin's [{table}] is not taken by wisp: {instead}"));
        }
        for (label, db) in &self.sqlite_database {
            let SqliteDatabase::Spin { path } = db;
            if let Some(p) = path {
                return Err(format!(
                    "[sqlite_database.{label}] path = {p:?}: wisp keeps one SQLite file per namespace + app + label in its data directory; remove `path`"
                ));
            }
        }
        let mut chosen: Option<(&str, KvBackend)> = None;
        for (label, store) in &self.key_value_store {
            let backend = match store {
                KvStore::Spin { path: Some(p) } => {
                    return Err(format!(
                        "[key_value_store.{label}] path = {p:?}: wisp keeps key-value data in its data directory (or Redis), scoped per app; remove `path`"
                    ));
                }
                KvStore::Spin { path: None } => KvBackend::Embedded,
                KvStore::Redis { url } => KvBackend::Redis(url.clone()),
            };
            match &chosen {
                Some((first, b)) if *b != backend => {
                    return Err(format!(
                        "[key_value_store.{first}] and [key_value_store.{label}] name different backends; a wisp node has one key-value backend, in which each app's stores are scoped: give every label the same `type` (and `url`)"
                    ));
                }
                Some(_) => {}
                None => chosen = Some((label, backend)),
            }
        }
        Ok(chosen.map(|(_, b)| b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Option<KvBackend>, String> {
        toml::from_str::<SpinTables>(text).map_err(|e| e.to_string())?.kv_backend()
    }

    #[test]
    fn spins_tables_map_onto_the_nodes_backends_or_say_why_not() {
        assert_eq!(read("").unwrap(), None);
        assert_eq!(read("[key_value_store.default]\ntype = \"spin\"\n").unwrap(), Some(KvBackend::Embedded));
        let redis = "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n";
        assert_eq!(read(redis).unwrap(), Some(KvBackend::Redis("redis://127.0.0.1:6379".into())));
        let same = format!("{redis}[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n");
        assert!(read(&same).is_ok());
        let mixed = format!("{redis}[key_value_store.cache]\ntype = \"spin\"\n");
        assert!(read(&mixed).unwrap_err().contains("name different backends"));
        let path = "[key_value_store.default]\ntype = \"spin\"\npath = \"kv.db\"\n";
        assert!(read(path).unwrap_err().contains("remove `path`"));
        assert!(read("[key_value_store.default]\ntype = \"azure_cosmos\"\n").unwrap_err().contains("unknown variant"));
        assert!(read("[sqlite_database.default]\ntype = \"spin\"\n").is_ok());
        assert!(
            read("[sqlite_database.default]\ntype = \"spin\"\npath = \"x.db\"\n")
                .unwrap_err()
                .contains("one SQLite file")
        );
        assert!(read("[sqlite_database.default]\ntype = \"libsql\"\nurl = \"x\"\n").is_err());
        assert!(read("[llm_compute]\ntype = \"spin\"\n").unwrap_err().contains("no LLM"));
        assert!(read("[[variables_provider]]\ntype = \"env\"\n").unwrap_err().contains("wisp secret set"));
    }
}
