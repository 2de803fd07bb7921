//! The embedded backend: SQLite for KV, files for blobs. Nothing to install, one directory to back up.

use crate::{BlobStore, Entry, Expect, KvStore, Result, StoreError, check_key};
use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How hard metadata commits hit the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    /// SQLite WAL with `synchronous = NORMAL`: every commit is atomic and survives a crash of the process;
    /// an OS crash or power loss may roll back the last commits (never corrupt). No fsync per commit.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is fsynced before it returns (one fsync per metadata write).
    Full,
}

/// SQLite + files under one directory.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Mutex<Connection>>,
    blob_dir: PathBuf,
}

fn backend<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Backend(format!("{what}: {e}"))
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir` with [`Sync::Normal`].
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, Sync::default())
    }

    /// Opens (creating if needed) the store in `dir`: `dir/meta.sqlite3` and `dir/blobs/`. Blobs are always
    /// fsynced before they become visible.
    pub fn open_with(dir: &Path, sync: Sync) -> Result<Self> {
        std::fs::create_dir_all(dir.join("blobs")).map_err(backend("create store directory"))?;
        let conn = Connection::open(dir.join("meta.sqlite3")).map_err(backend("open sqlite"))?;
        let synchronous = match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        };
        conn.execute_batch(&format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"))
            .map_err(backend("configure sqlite"))?;
        conn.execute_batch(
            "PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS kv (
                 bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, revision INTEGER NOT NULL,
                 PRIMARY KEY (bucket, key));
             CREATE TABLE IF NOT EXISTS kv_seq (bucket TEXT PRIMARY KEY, seq INTEGER NOT NULL);",
        )
        .map_err(backend("initialise sqlite schema"))?;
        Ok(EmbeddedStore { db: Arc::new(Mutex::new(conn)), blob_dir: dir.join("blobs") })
    }

    async fn with_db<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(backend("sqlite task"))?
    }

    fn blob_path(&self, bucket: &str, key: &str) -> Result<PathBuf> {
        check_key(bucket)?;
        check_key(key)?;
        Ok(self.blob_dir.join(bucket).join(key))
    }
}

fn current_revision(tx: &Connection, bucket: &str, key: &str) -> Result<Option<u64>> {
    tx.query_row("SELECT revision FROM kv WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| r.get::<_, i64>(0))
        .optional()
        .map(|o| o.map(|v| v as u64))
        .map_err(backend("read revision"))
}

fn check_expect(bucket: &str, key: &str, expect: Expect, found: Option<u64>) -> Result<()> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => found.is_none(),
        Expect::Revision(r) => found == Some(r),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict { bucket: bucket.into(), key: key.into(), expected: expect, found })
    }
}

#[async_trait]
impl KvStore for EmbeddedStore {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Entry>> {
        check_key(bucket)?;
        check_key(key)?;
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.with_db(move |db| {
            db.query_row("SELECT value, revision FROM kv WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| {
                Ok(Entry { key: key.clone(), value: r.get(0)?, revision: r.get::<_, i64>(1)? as u64 })
            })
            .optional()
            .map_err(backend("kv get"))
        })
        .await
    }

    async fn put(&self, bucket: &str, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64> {
        check_key(bucket)?;
        check_key(key)?;
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.with_db(move |db| {
            let tx = db.transaction().map_err(backend("kv begin"))?;
            let found = current_revision(&tx, &bucket, &key)?;
            check_expect(&bucket, &key, expect, found)?;
            let seq: i64 = tx
                .query_row(
                    "INSERT INTO kv_seq (bucket, seq) VALUES (?1, 1)
                     ON CONFLICT (bucket) DO UPDATE SET seq = seq + 1 RETURNING seq",
                    params![bucket],
                    |r| r.get(0),
                )
                .map_err(backend("kv sequence"))?;
            tx.execute(
                "INSERT INTO kv (bucket, key, value, revision) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, revision = excluded.revision",
                params![bucket, key, value, seq],
            )
            .map_err(backend("kv put"))?;
            tx.commit().map_err(backend("kv commit"))?;
            Ok(seq as u64)
        })
        .await
    }

    async fn delete(&self, bucket: &str, key: &str, expect: Expect) -> Result<()> {
        check_key(bucket)?;
        check_key(key)?;
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.with_db(move |db| {
            let tx = db.transaction().map_err(backend("kv begin"))?;
            let found = current_revision(&tx, &bucket, &key)?;
            check_expect(&bucket, &key, expect, found)?;
            tx.execute("DELETE FROM kv WHERE bucket = ?1 AND key = ?2", params![bucket, key])
                .map_err(backend("kv delete"))?;
            tx.commit().map_err(backend("kv commit"))
        })
        .await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Entry>> {
        check_key(bucket)?;
        // A key range, so the primary key's index serves it: prefix <= key < prefix with its last byte + 1
        // (keys are ASCII, checked by `check_key`; an empty prefix is every key).
        let (bucket, lower) = (bucket.to_string(), prefix.to_string());
        let upper = match lower.as_bytes().last() {
            None => None,
            Some(&last) => {
                let mut u = lower.as_bytes()[..lower.len() - 1].to_vec();
                u.push(last + 1);
                Some(String::from_utf8(u).map_err(|_| StoreError::InvalidKey(lower.clone()))?)
            }
        };
        self.with_db(move |db| {
            let mut stmt = db
                .prepare_cached(
                    "SELECT key, value, revision FROM kv WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3) ORDER BY key",
                )
                .map_err(backend("kv list"))?;
            let rows = stmt
                .query_map(params![bucket, lower, upper], |r| {
                    Ok(Entry { key: r.get(0)?, value: r.get(1)?, revision: r.get::<_, i64>(2)? as u64 })
                })
                .map_err(backend("kv list"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend("kv list"))
        })
        .await
    }
}

#[async_trait]
impl BlobStore for EmbeddedStore {
    async fn put(&self, bucket: &str, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.blob_path(bucket, key)?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(backend("blob task"))?
            .map_err(backend("blob write"))
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        let path = self.blob_path(bucket, key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Backend(format!("blob read {}: {e}", path.display()))),
        }
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        let path = self.blob_path(bucket, key)?;
        tokio::fs::try_exists(&path).await.map_err(backend("blob stat"))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let path = self.blob_path(bucket, key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Backend(format!("blob delete {}: {e}", path.display()))),
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the complete new one: write a temp
/// file in the same directory, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kv_revisions_and_cas() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s: &dyn KvStore = &store;
        assert_eq!(s.get("b", "k").await.unwrap(), None);
        let r1 = s.put("b", "k", b"v1".to_vec(), Expect::Absent).await.unwrap();
        assert!(matches!(
            s.put("b", "k", b"x".to_vec(), Expect::Absent).await,
            Err(StoreError::Conflict { found: Some(f), .. }) if f == r1
        ));
        let r2 = s.put("b", "k", b"v2".to_vec(), Expect::Revision(r1)).await.unwrap();
        assert!(r2 > r1);
        assert!(s.put("b", "k", b"v3".to_vec(), Expect::Revision(r1)).await.is_err());
        assert_eq!(s.get("b", "k").await.unwrap().unwrap().value, b"v2");
        s.put("b", "k2", b"w".to_vec(), Expect::Any).await.unwrap();
        s.put("other", "k0", b"z".to_vec(), Expect::Any).await.unwrap();
        let keys: Vec<_> = s.list("b", "k").await.unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["k", "k2"]);
        // Prefix listing is a key range: neighbours on either side stay out.
        for k in ["ns/a", "ns/b/1", "ns0", "nr/z", "ns.x"] {
            s.put("p", k, b"-".to_vec(), Expect::Any).await.unwrap();
        }
        let keys: Vec<_> = s.list("p", "ns/").await.unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["ns/a", "ns/b/1"]);
        assert_eq!(s.list("p", "").await.unwrap().len(), 5);
        assert!(s.delete("b", "k", Expect::Revision(r1)).await.is_err());
        s.delete("b", "k", Expect::Revision(r2)).await.unwrap();
        // Revisions are never reused, even after a delete.
        let r4 = s.put("b", "k", b"v4".to_vec(), Expect::Absent).await.unwrap();
        assert!(r4 > r2);
        // Reopen: everything survived.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s: &dyn KvStore = &store;
        assert_eq!(s.get("b", "k").await.unwrap().unwrap().revision, r4);
        // A `%` or `_` in a prefix is literal, not a LIKE pattern.
        s.put("b", "a_c", b"1".to_vec(), Expect::Any).await.unwrap();
        s.put("b", "abc", b"1".to_vec(), Expect::Any).await.unwrap();
        assert_eq!(s.list("b", "a_").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn blobs() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert!(!s.exists("art", "x").await.unwrap());
        BlobStore::put(&s, "art", "x", Bytes::from_static(b"hello")).await.unwrap();
        assert!(s.exists("art", "x").await.unwrap());
        assert_eq!(BlobStore::get(&s, "art", "x").await.unwrap().unwrap(), "hello");
        BlobStore::delete(&s, "art", "x").await.unwrap();
        assert_eq!(BlobStore::get(&s, "art", "x").await.unwrap(), None);
        assert!(BlobStore::put(&s, "art", "../escape", Bytes::new()).await.is_err());
        // No temp files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs/art")).unwrap().collect();
        assert!(leftovers.is_empty());
    }
}
