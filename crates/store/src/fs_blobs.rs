//! The embedded blob backend: object bytes in files under `<data-dir>/blobs/objects`, a SQLite index
//! (`<data-dir>/blobs/index.sqlite3`) from (container scope, object name) to file.
//!
//! Names are data, never paths: a file's name is 32 random hex digits (`objects/<2>/<32>`), chosen when the
//! object is committed, so no object name — `../../x`, `/etc/passwd`, anything — can reach a file outside
//! the directory, by construction. An object is written to `tmp/<random>`, fsynced, renamed into
//! `objects/` (the directory fsynced), and only then recorded in the index, replacing any previous object
//! of that name in one transaction (whose file is removed after). Files are never changed once committed,
//! so a reader holding one open reads a consistent object even if it is replaced or deleted meanwhile. At
//! start, leftovers of interrupted writes (files in `tmp/`, files no index row names) are removed.
//!
//! Every index operation runs on one connection under one lock, so the quota check (per owner, kept in
//! the `usage` table) and the write it admits are one step.

use crate::guest_blob::{
    BlobBackend, BlobError, BlobLimits, ContainerInfo, Download, ObjectInfo, Result, Upload, app_full, prefix_end,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use wisp_core::blob::{check_name, label, owner};

/// The embedded backend (see the module docs).
#[derive(Clone)]
pub struct FsBlobs {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    db: Mutex<Connection>,
    limits: BlobLimits,
}

fn backend<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> BlobError {
    move |e| BlobError::Backend(format!("{what}: {e}"))
}

fn db_err(e: rusqlite::Error) -> BlobError {
    BlobError::Backend(format!("blob index: {e}"))
}

/// A new random file id: 32 hex digits.
fn random_id() -> String {
    (0..16).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Whether `id` is a file id (so a file name read from disk or the index is one of ours).
fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl FsBlobs {
    /// Opens (creating if needed) the blobs under `dir`, removing leftovers of interrupted writes.
    pub fn open(dir: &Path, limits: BlobLimits) -> Result<FsBlobs> {
        for sub in ["objects", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(backend("create the blob directory"))?;
        }
        let conn = Connection::open(dir.join("index.sqlite3")).map_err(backend("open the blob index"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS containers (
                 scope TEXT PRIMARY KEY, created_at_ms INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS objects (
                 scope TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL,
                 created_at_ms INTEGER NOT NULL, PRIMARY KEY (scope, name)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS usage (owner TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .map_err(backend("initialise the blob index"))?;
        let inner = Inner { dir: dir.to_path_buf(), db: Mutex::new(conn), limits };
        inner.sweep()?;
        Ok(FsBlobs { inner: Arc::new(inner) })
    }

    async fn run<R: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<R> + Send + 'static) -> Result<R> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(backend("blob task"))?
    }
}

impl Inner {
    fn object_path(&self, id: &str) -> PathBuf {
        self.dir.join("objects").join(&id[..2]).join(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes what interrupted writes left: every file of `tmp/`, and files of `objects/` no row names.
    fn sweep(&self) -> Result<()> {
        for entry in std::fs::read_dir(self.dir.join("tmp")).map_err(backend("read the blob staging directory"))? {
            let entry = entry.map_err(backend("read the blob staging directory"))?;
            let _ = std::fs::remove_file(entry.path());
        }
        let known: std::collections::HashSet<String> = {
            let conn = self.lock();
            let mut stmt = conn.prepare("SELECT file FROM objects").map_err(db_err)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
        };
        let mut removed = 0;
        for shard in std::fs::read_dir(self.dir.join("objects")).map_err(backend("read the blob directory"))? {
            let shard = shard.map_err(backend("read the blob directory"))?.path();
            if !shard.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&shard).map_err(backend("read the blob directory"))? {
                let path = file.map_err(backend("read the blob directory"))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if !known.contains(name) && std::fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(files = removed, "removed blob files left by interrupted writes");
        }
        Ok(())
    }

    fn container_exists(conn: &Connection, scope: &str) -> Result<bool> {
        conn.prepare_cached("SELECT 1 FROM containers WHERE scope = ?1")
            .and_then(|mut s| s.exists(params![scope]))
            .map_err(db_err)
    }

    fn require_container(conn: &Connection, scope: &str) -> Result<()> {
        if Self::container_exists(conn, scope)? { Ok(()) } else { Err(BlobError::NoContainer(label(scope).into())) }
    }

    /// Adds `delta` to the bytes `owner` uses, refusing (when `delta` > 0) past the limit.
    fn charge(&self, conn: &Connection, owner: &str, delta: i64) -> Result<()> {
        let used: i64 = conn
            .prepare_cached("SELECT bytes FROM usage WHERE owner = ?1")
            .and_then(|mut s| s.query_row(params![owner], |r| r.get(0)).optional())
            .map_err(db_err)?
            .unwrap_or(0);
        let now = used.saturating_add(delta).max(0);
        if delta > 0 && now as u64 > self.limits.max_app_bytes {
            return Err(app_full(now as u64, self.limits.max_app_bytes));
        }
        conn.prepare_cached(
            "INSERT INTO usage (owner, bytes) VALUES (?1, ?2) ON CONFLICT (owner) DO UPDATE SET bytes = excluded.bytes",
        )
        .and_then(|mut s| s.execute(params![owner, now]))
        .map_err(db_err)?;
        Ok(())
    }

    /// The file and size of an object.
    fn row(conn: &Connection, scope: &str, name: &str) -> Result<Option<(String, u64, u64)>> {
        conn.prepare_cached("SELECT file, size, created_at_ms FROM objects WHERE scope = ?1 AND name = ?2")
            .and_then(|mut s| {
                s.query_row(params![scope, name], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64))
                })
                .optional()
            })
            .map_err(db_err)
    }

    /// Removes committed files no row names any more (after the transaction that dropped them).
    fn remove_files(&self, ids: &[String]) {
        for id in ids.iter().filter(|id| is_id(id)) {
            if let Err(e) = std::fs::remove_file(self.object_path(id)) {
                tracing::warn!(file = %id, error = %e, "cannot remove a replaced blob file; removed at the next start");
            }
        }
    }

    /// Records the staged file `tmp` (already fsynced) as object `name` of `scope`.
    fn commit(&self, tmp: &Path, scope: &str, name: &str, size: u64) -> Result<ObjectInfo> {
        let id = random_id();
        let dest = self.object_path(&id);
        let shard = dest.parent().expect("object paths have a shard");
        std::fs::create_dir_all(shard).map_err(backend("create the blob directory"))?;
        std::fs::rename(tmp, &dest).map_err(backend("move the object into place"))?;
        sync_dir(shard).map_err(backend("sync the blob directory"))?;
        let created_at_ms = crate::now_ms();
        let done = (|| {
            let mut conn = self.lock();
            let tx = conn.transaction().map_err(db_err)?;
            Self::require_container(&tx, scope)?;
            let old = Self::row(&tx, scope, name)?;
            let delta = size as i64 - old.as_ref().map_or(0, |o| o.1 as i64);
            self.charge(&tx, owner(scope), delta)?;
            tx.prepare_cached(
                "INSERT INTO objects (scope, name, file, size, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (scope, name) DO UPDATE SET file = excluded.file, size = excluded.size,
                 created_at_ms = excluded.created_at_ms",
            )
            .and_then(|mut s| s.execute(params![scope, name, id, size as i64, created_at_ms as i64]))
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(old.map(|o| o.0))
        })();
        match done {
            Ok(old) => {
                self.remove_files(old.as_slice());
                Ok(ObjectInfo { name: name.to_string(), size, created_at_ms })
            }
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                Err(e)
            }
        }
    }

    /// Deletes the rows of `scope` (one object, or all with `name` = None) and answers their files.
    fn delete_rows(&self, conn: &Connection, scope: &str, name: Option<&str>) -> Result<Vec<String>> {
        let (files, bytes): (Vec<String>, i64) = {
            let mut stmt = conn
                .prepare_cached("SELECT file, size FROM objects WHERE scope = ?1 AND (?2 IS NULL OR name = ?2)")
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![scope, name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(db_err)?;
            let mut files = Vec::new();
            let mut bytes = 0i64;
            for row in rows {
                let (f, s) = row.map_err(db_err)?;
                files.push(f);
                bytes += s;
            }
            (files, bytes)
        };
        conn.prepare_cached("DELETE FROM objects WHERE scope = ?1 AND (?2 IS NULL OR name = ?2)")
            .and_then(|mut s| s.execute(params![scope, name]))
            .map_err(db_err)?;
        self.charge(conn, owner(scope), -bytes)?;
        Ok(files)
    }
}

fn check(name: &str) -> Result<()> {
    check_name(name).map_err(BlobError::Invalid)
}

#[async_trait]
impl BlobBackend for FsBlobs {
    fn limits(&self) -> BlobLimits {
        self.inner.limits
    }

    async fn create_container(&self, scope: &str) -> Result<ContainerInfo> {
        let scope = scope.to_string();
        self.run(move |inner| {
            let conn = inner.lock();
            conn.prepare_cached("INSERT INTO containers (scope, created_at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
                .and_then(|mut s| s.execute(params![scope, crate::now_ms() as i64]))
                .map_err(db_err)?;
            let at: i64 = conn
                .prepare_cached("SELECT created_at_ms FROM containers WHERE scope = ?1")
                .and_then(|mut s| s.query_row(params![scope], |r| r.get(0)))
                .map_err(db_err)?;
            Ok(ContainerInfo { created_at_ms: at as u64 })
        })
        .await
    }

    async fn container(&self, scope: &str) -> Result<Option<ContainerInfo>> {
        let scope = scope.to_string();
        self.run(move |inner| {
            let conn = inner.lock();
            let at: Option<i64> = conn
                .prepare_cached("SELECT created_at_ms FROM containers WHERE scope = ?1")
                .and_then(|mut s| s.query_row(params![scope], |r| r.get(0)).optional())
                .map_err(db_err)?;
            Ok(at.map(|at| ContainerInfo { created_at_ms: at as u64 }))
        })
        .await
    }

    async fn delete_container(&self, scope: &str) -> Result<bool> {
        let scope = scope.to_string();
        self.run(move |inner| {
            let files = {
                let mut conn = inner.lock();
                let tx = conn.transaction().map_err(db_err)?;
                if !Inner::container_exists(&tx, &scope)? {
                    return Ok(false);
                }
                let files = inner.delete_rows(&tx, &scope, None)?;
                tx.execute("DELETE FROM containers WHERE scope = ?1", params![scope]).map_err(db_err)?;
                tx.commit().map_err(db_err)?;
                files
            };
            inner.remove_files(&files);
            Ok(true)
        })
        .await
    }

    async fn clear(&self, scope: &str) -> Result<()> {
        let scope = scope.to_string();
        self.run(move |inner| {
            let files = {
                let mut conn = inner.lock();
                let tx = conn.transaction().map_err(db_err)?;
                Inner::require_container(&tx, &scope)?;
                let files = inner.delete_rows(&tx, &scope, None)?;
                tx.commit().map_err(db_err)?;
                files
            };
            inner.remove_files(&files);
            Ok(())
        })
        .await
    }

    async fn upload(&self) -> Result<Box<dyn Upload>> {
        let tmp = self.inner.dir.join("tmp").join(random_id());
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(backend("create a staging file"))?;
        Ok(Box::new(FsUpload { file, tmp: Some(tmp), written: 0, inner: self.inner.clone() }))
    }

    async fn download(&self, scope: &str, name: &str, offset: u64, len: Option<u64>) -> Result<Option<Download>> {
        check(name)?;
        let (scope, name) = (scope.to_string(), name.to_string());
        // The row is read and its file opened under the index lock: a writer replacing the object removes
        // the old file only after its transaction, so the file a row names is there while the lock is held.
        let found = self
            .run(move |inner| {
                let conn = inner.lock();
                let Some((id, size, created_at_ms)) = Inner::row(&conn, &scope, &name)? else {
                    Inner::require_container(&conn, &scope)?;
                    return Ok(None);
                };
                let file = std::fs::File::open(inner.object_path(&id)).map_err(backend("open the object"))?;
                Ok(Some((file, ObjectInfo { name, size, created_at_ms })))
            })
            .await?;
        let Some((file, info)) = found else { return Ok(None) };
        if offset > info.size {
            return Err(BlobError::Invalid(format!(
                "the range starts at byte {offset}, past the end of the object ({} bytes)",
                info.size
            )));
        }
        let len = len.unwrap_or(u64::MAX).min(info.size - offset);
        let mut file = tokio::fs::File::from_std(file);
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(backend("seek in the object"))?;
        Ok(Some(Download { info, len, reader: Box::new(file.take(len)) }))
    }

    async fn stat(&self, scope: &str, name: &str) -> Result<Option<ObjectInfo>> {
        check(name)?;
        let (scope, name) = (scope.to_string(), name.to_string());
        self.run(move |inner| {
            let conn = inner.lock();
            match Inner::row(&conn, &scope, &name)? {
                Some((_, size, created_at_ms)) => Ok(Some(ObjectInfo { name, size, created_at_ms })),
                None => {
                    Inner::require_container(&conn, &scope)?;
                    Ok(None)
                }
            }
        })
        .await
    }

    async fn list(&self, scope: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<ObjectInfo>> {
        let (scope, prefix, after) = (scope.to_string(), prefix.to_string(), after.map(str::to_string));
        let end = prefix_end(&prefix);
        self.run(move |inner| {
            let conn = inner.lock();
            Inner::require_container(&conn, &scope)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, size, created_at_ms FROM objects
                     WHERE scope = ?1 AND name >= ?2 AND (?3 IS NULL OR name < ?3) AND (?4 IS NULL OR name > ?4)
                     ORDER BY name LIMIT ?5",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![scope, prefix, end, after, limit as i64], |r| {
                    Ok(ObjectInfo {
                        name: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        created_at_ms: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_err)
        })
        .await
    }

    async fn delete(&self, scope: &str, name: &str) -> Result<bool> {
        check(name)?;
        let (scope, name) = (scope.to_string(), name.to_string());
        self.run(move |inner| {
            let files = {
                let mut conn = inner.lock();
                let tx = conn.transaction().map_err(db_err)?;
                Inner::require_container(&tx, &scope)?;
                let files = inner.delete_rows(&tx, &scope, Some(&name))?;
                tx.commit().map_err(db_err)?;
                files
            };
            inner.remove_files(&files);
            Ok(!files.is_empty())
        })
        .await
    }

    async fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<()> {
        check(from.1)?;
        check(to.1)?;
        let (from, to) = ((from.0.to_string(), from.1.to_string()), (to.0.to_string(), to.1.to_string()));
        self.run(move |inner| {
            let old = {
                let mut conn = inner.lock();
                let tx = conn.transaction().map_err(db_err)?;
                Inner::require_container(&tx, &from.0)?;
                Inner::require_container(&tx, &to.0)?;
                let (src, size, _) = Inner::row(&tx, &from.0, &from.1)?.ok_or(BlobError::NotFound(from.1.clone()))?;
                if from == to {
                    return Ok(());
                }
                let old = Inner::row(&tx, &to.0, &to.1)?;
                inner.charge(&tx, owner(&to.0), size as i64 - old.as_ref().map_or(0, |o| o.1 as i64))?;
                // Committed files never change: the copy shares the bytes through a hard link (a copy of
                // the file where links are not supported).
                let id = random_id();
                let dest = inner.object_path(&id);
                std::fs::create_dir_all(dest.parent().expect("object paths have a shard"))
                    .map_err(backend("create the blob directory"))?;
                if std::fs::hard_link(inner.object_path(&src), &dest).is_err() {
                    std::fs::copy(inner.object_path(&src), &dest).map_err(backend("copy the object"))?;
                    std::fs::File::open(&dest).and_then(|f| f.sync_all()).map_err(backend("sync the copy"))?;
                }
                let written = tx
                    .execute(
                        "INSERT INTO objects (scope, name, file, size, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (scope, name) DO UPDATE SET file = excluded.file, size = excluded.size,
                         created_at_ms = excluded.created_at_ms",
                        params![to.0, to.1, id, size as i64, crate::now_ms() as i64],
                    )
                    .map_err(db_err)
                    .and_then(|_| tx.commit().map_err(db_err));
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&dest);
                    return Err(e);
                }
                old.map(|o| o.0)
            };
            inner.remove_files(old.as_slice());
            Ok(())
        })
        .await
    }

    async fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<()> {
        check(from.1)?;
        check(to.1)?;
        let (from, to) = ((from.0.to_string(), from.1.to_string()), (to.0.to_string(), to.1.to_string()));
        self.run(move |inner| {
            let old = {
                let mut conn = inner.lock();
                let tx = conn.transaction().map_err(db_err)?;
                Inner::require_container(&tx, &from.0)?;
                Inner::require_container(&tx, &to.0)?;
                let (_, size, _) = Inner::row(&tx, &from.0, &from.1)?.ok_or(BlobError::NotFound(from.1.clone()))?;
                if from == to {
                    return Ok(());
                }
                let old = Inner::row(&tx, &to.0, &to.1)?;
                if old.is_some() {
                    tx.execute("DELETE FROM objects WHERE scope = ?1 AND name = ?2", params![to.0, to.1])
                        .map_err(db_err)?;
                }
                inner.charge(&tx, owner(&from.0), -(size as i64))?;
                inner.charge(&tx, owner(&to.0), size as i64 - old.as_ref().map_or(0, |o| o.1 as i64))?;
                tx.execute(
                    "UPDATE objects SET scope = ?3, name = ?4 WHERE scope = ?1 AND name = ?2",
                    params![from.0, from.1, to.0, to.1],
                )
                .map_err(db_err)?;
                tx.commit().map_err(db_err)?;
                old.map(|o| o.0)
            };
            inner.remove_files(old.as_slice());
            Ok(())
        })
        .await
    }
}

/// An object being staged in `tmp/` (see [`Upload`]).
struct FsUpload {
    file: tokio::fs::File,
    /// The staging file; `None` once committed (so `Drop` leaves it).
    tmp: Option<PathBuf>,
    written: u64,
    inner: Arc<Inner>,
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl AsyncWrite for FsUpload {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let max = self.inner.limits.max_object_bytes;
        if self.written + buf.len() as u64 > max {
            return Poll::Ready(Err(std::io::Error::other(self.inner.limits.object_too_large())));
        }
        let n = std::task::ready!(Pin::new(&mut self.file).poll_write(cx, buf))?;
        self.written += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

#[async_trait]
impl Upload for FsUpload {
    fn written(&self) -> u64 {
        self.written
    }

    async fn commit(mut self: Box<Self>, scope: &str, name: &str) -> Result<ObjectInfo> {
        check(name)?;
        self.file.flush().await.map_err(backend("write the object"))?;
        self.file.sync_all().await.map_err(backend("sync the object"))?;
        let tmp = self.tmp.clone().expect("an upload is committed once");
        let (inner, size) = (self.inner.clone(), self.written);
        let (scope, name) = (scope.to_string(), name.to_string());
        let info = tokio::task::spawn_blocking(move || inner.commit(&tmp, &scope, &name, size))
            .await
            .map_err(backend("blob task"))??;
        self.tmp = None; // moved into place
        Ok(info)
    }
}

#[cfg(test)]
mod tests;
