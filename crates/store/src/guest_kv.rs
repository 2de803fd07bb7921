//! Guests' key-value data (the key-value capability's backend): arbitrary keys and values under a store's
//! scope, with per-entry versions for compare-and-swap. Apart from [`crate::KvStore`] (the platform's own
//! records, with restricted keys) so tenant data never shares a file or a key space with control state.

use crate::{Result, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An entry's value and version (1 for a new entry, +1 on each write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: Vec<u8>,
    /// Its version.
    pub version: u64,
}

/// Guest key-value data. `scope` is a store's prefix ([`wisp_core`]'s `kv::scope`); keys are any string.
#[async_trait]
pub trait KvBackend: Send + Sync {
    /// The entry, if any.
    async fn get(&self, scope: &str, key: &str) -> Result<Option<Versioned>>;
    /// Writes unconditionally.
    async fn set(&self, scope: &str, key: &str, value: Vec<u8>) -> Result<()>;
    /// Writes if the entry is at `expected` (`None`: absent); returns whether it wrote.
    async fn swap(&self, scope: &str, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<bool>;
    /// Adds `delta` to the decimal number stored under `key` (absent: 0) in one atomic step and returns the
    /// sum; `Ok(Err(why))` if the value is not a decimal i64 or the sum overflows.
    async fn increment(&self, scope: &str, key: &str, delta: i64) -> Result<std::result::Result<i64, String>>;
    /// Deletes (absent is fine).
    async fn delete(&self, scope: &str, key: &str) -> Result<()>;
    /// Up to `limit` keys from the `offset`-th on, in key order.
    async fn keys(&self, scope: &str, offset: u64, limit: usize) -> Result<Vec<String>>;

    /// One page of keys from the `offset`-th on: at most [`PAGE_KEYS`], and the offset of the next page if
    /// there is one (what `list-keys` and the API answer).
    async fn page(&self, scope: &str, offset: u64) -> Result<(Vec<String>, Option<u64>)> {
        let mut keys = self.keys(scope, offset, PAGE_KEYS + 1).await?;
        let more = keys.len() > PAGE_KEYS;
        keys.truncate(PAGE_KEYS);
        let next = offset + keys.len() as u64;
        Ok((keys, more.then_some(next)))
    }
}

/// Keys per page of a listing.
pub const PAGE_KEYS: usize = 1000;

/// The embedded backend: one SQLite file (WAL, `synchronous = NORMAL`).
#[derive(Clone)]
pub struct EmbeddedKv {
    db: Arc<Mutex<Connection>>,
}

fn backend<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Backend(format!("{what}: {e}"))
}

impl EmbeddedKv {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<EmbeddedKv> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(backend("create key-value directory"))?;
        }
        let conn = Connection::open(path).map_err(backend("open key-value database"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS entries (
                 scope TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
                 PRIMARY KEY (scope, key)) WITHOUT ROWID;",
        )
        .map_err(backend("initialise key-value schema"))?;
        Ok(EmbeddedKv { db: Arc::new(Mutex::new(conn)) })
    }

    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let conn = db.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(|e| StoreError::Backend(format!("key-value database: {e}")))
        })
        .await
        .map_err(backend("key-value task"))?
    }
}

#[async_trait]
impl KvBackend for EmbeddedKv {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<Versioned>> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.with(move |c| {
            c.prepare_cached("SELECT value, version FROM entries WHERE scope = ?1 AND key = ?2")?
                .query_row(params![scope, key], |r| {
                    Ok(Versioned { value: r.get(0)?, version: r.get::<_, i64>(1)? as u64 })
                })
                .optional()
        })
        .await
    }

    async fn set(&self, scope: &str, key: &str, value: Vec<u8>) -> Result<()> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO entries (scope, key, value, version) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, version = version + 1",
            )?
            .execute(params![scope, key, value])
            .map(drop)
        })
        .await
    }

    async fn swap(&self, scope: &str, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<bool> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.with(move |c| {
            let n = match expected {
                None => c
                    .prepare_cached(
                        "INSERT INTO entries (scope, key, value, version) VALUES (?1, ?2, ?3, 1)
                         ON CONFLICT (scope, key) DO NOTHING",
                    )?
                    .execute(params![scope, key, value])?,
                Some(v) => c
                    .prepare_cached(
                        "UPDATE entries SET value = ?3, version = version + 1
                         WHERE scope = ?1 AND key = ?2 AND version = ?4",
                    )?
                    .execute(params![scope, key, value, v as i64])?,
            };
            Ok(n == 1)
        })
        .await
    }

    async fn increment(&self, scope: &str, key: &str, delta: i64) -> Result<std::result::Result<i64, String>> {
        let (scope, key) = (scope.to_string(), key.to_string());
        // One connection behind one lock: the read and the write below are one step for every caller.
        self.with(move |c| {
            let current: Option<Vec<u8>> = c
                .prepare_cached("SELECT value FROM entries WHERE scope = ?1 AND key = ?2")?
                .query_row(params![scope, key], |r| r.get(0))
                .optional()?;
            let n = match &current {
                None => 0,
                Some(v) => match std::str::from_utf8(v).ok().and_then(|t| t.trim().parse::<i64>().ok()) {
                    Some(n) => n,
                    None => {
                        return Ok(Err(format!(
                            "the value of {key:?} is not a decimal number, so it cannot be incremented"
                        )));
                    }
                },
            };
            let Some(sum) = n.checked_add(delta) else {
                return Ok(Err(format!("incrementing {key:?} by {delta} overflows i64")));
            };
            c.prepare_cached(
                "INSERT INTO entries (scope, key, value, version) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, version = version + 1",
            )?
            .execute(params![scope, key, sum.to_string().into_bytes()])?;
            Ok(Ok(sum))
        })
        .await
    }

    async fn delete(&self, scope: &str, key: &str) -> Result<()> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.with(move |c| {
            c.prepare_cached("DELETE FROM entries WHERE scope = ?1 AND key = ?2")?
                .execute(params![scope, key])
                .map(drop)
        })
        .await
    }

    async fn keys(&self, scope: &str, offset: u64, limit: usize) -> Result<Vec<String>> {
        let scope = scope.to_string();
        self.with(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT key FROM entries WHERE scope = ?1 ORDER BY key LIMIT ?3 OFFSET ?2")?;
            let rows = stmt.query_map(params![scope, offset as i64, limit as i64], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_swaps_scopes_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let kv = EmbeddedKv::open(&dir.path().join("kv.sqlite3")).unwrap();
        assert_eq!(kv.get("a/", "k").await.unwrap(), None);
        assert!(kv.swap("a/", "k", None, b"1".to_vec()).await.unwrap());
        assert!(!kv.swap("a/", "k", None, b"2".to_vec()).await.unwrap(), "absent expected, present found");
        assert!(!kv.swap("a/", "k", Some(7), b"2".to_vec()).await.unwrap());
        assert!(kv.swap("a/", "k", Some(1), b"2".to_vec()).await.unwrap());
        assert_eq!(kv.get("a/", "k").await.unwrap(), Some(Versioned { value: b"2".to_vec(), version: 2 }));
        kv.set("a/", "../k with spaces\u{0}", b"x".to_vec()).await.unwrap();
        assert_eq!(kv.get("b/", "k").await.unwrap(), None, "another scope sees nothing");
        for i in 0..5 {
            kv.set("p/", &format!("k{i}"), vec![]).await.unwrap();
        }
        assert_eq!(kv.keys("p/", 0, 2).await.unwrap(), ["k0", "k1"]);
        assert_eq!(kv.keys("p/", 2, 10).await.unwrap(), ["k2", "k3", "k4"]);
        kv.delete("p/", "k0").await.unwrap();
        assert_eq!(kv.increment("c/", "n", 2).await.unwrap(), Ok(2));
        assert_eq!(kv.increment("c/", "n", 3).await.unwrap(), Ok(5));
        assert!(
            kv.increment("a/", "../k with spaces\u{0}", 1).await.unwrap().unwrap_err().contains("not a decimal number")
        );
        assert_eq!(kv.increment("c/", "n", -7).await.unwrap(), Ok(-2));
        kv.set("c/", "max", i64::MAX.to_string().into_bytes()).await.unwrap();
        assert!(kv.increment("c/", "max", 1).await.unwrap().unwrap_err().contains("overflows"));
        assert_eq!(kv.keys("p/", 0, 10).await.unwrap().len(), 4);
    }
}
