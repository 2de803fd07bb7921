//! The embedded [`QueueStore`]: SQLite in WAL mode, in its own database file, written by one thread with
//! **group commit**. Every operation is sent to the writer, which takes whatever has arrived (up to
//! [`MAX_BATCH`]), runs it in one transaction and commits once: many concurrent enqueues share one fsync,
//! and an idle queue adds no wait (the batch is whatever arrived during the previous commit). A batch that
//! holds an enqueue commits with `synchronous = FULL` (fsynced before any caller hears back: a 202 is never
//! answered before its commit); batches of only claims and settlements commit with `NORMAL` (atomic; an OS
//! crash may lose the last of them, which re-delivers — at least once — and never loses an event).

use crate::queue::{Enqueued, Info, Leased, NewEvent, QueueStore, Settle, State};
use crate::{Result, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::mpsc;

/// Most operations committed together.
pub const MAX_BATCH: usize = 1024;

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
type Op = Box<dyn FnOnce(&Connection) -> Reply + Send>;

struct Job {
    durable: bool,
    op: Op,
}

/// The queue database and its writer thread. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedQueue {
    tx: mpsc::Sender<Job>,
}

fn backend<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Backend(format!("{what}: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS invocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attrs BLOB NOT NULL,
    data BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    status INTEGER,
    error_code TEXT,
    error TEXT,
    result BLOB NOT NULL DEFAULT x'',
    UNIQUE (function, source, event_id)
);
CREATE INDEX IF NOT EXISTS invocations_due ON invocations (state, not_before_ms, seq);
CREATE INDEX IF NOT EXISTS invocations_function_due ON invocations (function, state, not_before_ms, seq);
";

impl EmbeddedQueue {
    /// Opens (creating if needed) the queue database at `path`. Events a previous process had claimed
    /// (`running`) are queued again: only one process uses a data directory, so nobody else holds them.
    pub fn open(path: &Path) -> Result<EmbeddedQueue> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(backend("create queue directory"))?;
        }
        let conn = Connection::open(path).map_err(backend("open queue database"))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(backend("configure queue database"))?;
        conn.execute_batch(SCHEMA).map_err(backend("initialise queue schema"))?;
        let requeued = conn
            .execute("UPDATE invocations SET state = 'queued', lease_until_ms = 0 WHERE state = 'running'", [])
            .map_err(backend("requeue claimed events"))?;
        if requeued > 0 {
            tracing::info!(events = requeued, "queued again the events a previous run had claimed");
        }
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("wisp-queue".into())
            .spawn(move || writer(conn, rx))
            .map_err(backend("start the queue writer"))?;
        Ok(EmbeddedQueue { tx })
    }

    /// Runs `f` in the writer's next batch and returns its result once the batch is committed.
    async fn run<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let out = f(conn);
            Box::new(move |committed: Result<()>| {
                let _ = tx.send(committed.and(out));
            })
        });
        self.tx.send(Job { durable, op }).map_err(|_| StoreError::Backend("the queue writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Backend("the queue writer has stopped".into()))?
    }
}

fn writer(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut synchronous_full = true;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let durable = jobs.iter().any(|j| j.durable);
        if durable != synchronous_full {
            let mode = if durable { "FULL" } else { "NORMAL" };
            if let Err(e) = conn.pragma_update(None, "synchronous", mode) {
                tracing::error!(error = %e, "cannot set the queue's synchronous mode");
            } else {
                synchronous_full = durable;
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE").map_err(backend("begin"));
        let replies: Vec<Reply> = match &begun {
            Ok(()) => jobs.into_iter().map(|j| (j.op)(&conn)).collect(),
            Err(_) => Vec::new(),
        };
        let committed = begun.and_then(|()| conn.execute_batch("COMMIT").map_err(backend("commit")));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("queue database: {e}"))
}

fn info(row: &rusqlite::Row<'_>) -> rusqlite::Result<Info> {
    let state: String = row.get("state")?;
    Ok(Info {
        id: row.get("id")?,
        function: row.get("function")?,
        state: State::parse(&state).unwrap_or(State::Failed),
        attempts: row.get("attempts")?,
        throttled: row.get("throttled")?,
        created_ms: row.get::<_, i64>("created_ms")? as u64,
        updated_ms: row.get::<_, i64>("updated_ms")? as u64,
        not_before_ms: row.get::<_, i64>("not_before_ms")? as u64,
        status: row.get::<_, Option<u16>>("status")?,
        error_code: row.get("error_code")?,
        error: row.get("error")?,
        result: row.get("result")?,
        attrs: row.get("attrs")?,
        data: row.get("data")?,
    })
}

/// `ids` as a JSON array for `IN (SELECT value FROM json_each(?))`.
fn id_list(ids: &Option<Vec<String>>) -> Option<String> {
    ids.as_ref().map(|ids| serde_json::to_string(ids).expect("strings serialise"))
}

#[async_trait]
impl QueueStore for EmbeddedQueue {
    async fn enqueue(&self, events: Vec<NewEvent>) -> Result<Vec<Enqueued>> {
        let now = crate::now_ms() as i64;
        self.run(true, move |conn| {
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO invocations (id, function, source, event_id, attrs, data, state, not_before_ms, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7)
                     ON CONFLICT (function, source, event_id) DO NOTHING",
                )
                .map_err(sql)?;
            let mut existing =
                conn.prepare_cached("SELECT id FROM invocations WHERE function = ?1 AND source = ?2 AND event_id = ?3").map_err(sql)?;
            let mut out = Vec::with_capacity(events.len());
            for e in &events {
                let n = insert.execute(params![e.id, e.function, e.source, e.event_id, e.attrs, e.data, now]).map_err(sql)?;
                if n == 1 {
                    out.push(Enqueued::New);
                } else {
                    let id: String = existing.query_row(params![e.function, e.source, e.event_id], |r| r.get(0)).map_err(sql)?;
                    out.push(Enqueued::Duplicate(id));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn claim(&self, now_ms: u64, lease_ms: u64, wants: Vec<(String, usize)>) -> Result<Vec<Leased>> {
        self.run(false, move |conn| {
            let now = now_ms as i64;
            // Per function, in the (function, state, not_before_ms, seq) index's order, so the LIMIT stops
            // the scan: O(claimed), however many events of this function or others are waiting. Expired
            // leases (a delivery that outlived its lease) are a second, small range: the function's running
            // events.
            let mut due = conn
                .prepare_cached(
                    "UPDATE invocations SET state = 'running', lease_until_ms = ?1, updated_ms = ?2
                     WHERE seq IN (
                         SELECT seq FROM invocations WHERE function = ?3 AND state = 'queued' AND not_before_ms <= ?2
                         ORDER BY not_before_ms, seq LIMIT ?4)
                     RETURNING id, function, attrs, data, attempts, created_ms",
                )
                .map_err(sql)?;
            let mut expired = conn
                .prepare_cached(
                    "UPDATE invocations SET state = 'running', lease_until_ms = ?1, updated_ms = ?2
                     WHERE seq IN (
                         SELECT seq FROM invocations WHERE function = ?3 AND state = 'running' AND lease_until_ms < ?2
                         LIMIT ?4)
                     RETURNING id, function, attrs, data, attempts, created_ms",
                )
                .map_err(sql)?;
            let mut out = Vec::new();
            let leased = |r: &rusqlite::Row<'_>| {
                Ok(Leased {
                    id: r.get(0)?,
                    function: r.get(1)?,
                    attrs: r.get(2)?,
                    data: r.get(3)?,
                    attempts: r.get(4)?,
                    created_ms: r.get::<_, i64>(5)? as u64,
                })
            };
            for (function, n) in wants {
                let mut left = n;
                for stmt in [&mut due, &mut expired] {
                    if left == 0 {
                        break;
                    }
                    let rows = stmt
                        .query_map(params![now + lease_ms as i64, now, function, left as i64], leased)
                        .map_err(sql)?;
                    for row in rows {
                        out.push(row.map_err(sql)?);
                        left -= 1;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn settle(&self, id: &str, settle: Settle, now_ms: u64) -> Result<()> {
        let id = id.to_string();
        // Settling a dead letter's destination record is part of the same durable story: a settle that
        // carries a failure is committed durably, so a crash cannot resurrect a dead-lettered event.
        let durable = matches!(settle, Settle::Failed { .. });
        self.run(durable, move |conn| {
            let now = now_ms as i64;
            // Statements cached per connection: settling is the writer's most frequent operation.
            match settle {
                Settle::Succeeded { status, body } => conn
                    .prepare_cached(
                        "UPDATE invocations SET state = 'succeeded', attempts = attempts + 1, status = ?2, result = ?3,
                         error_code = NULL, error = NULL, updated_ms = ?4 WHERE id = ?1",
                    )
                    .and_then(|mut st| st.execute(params![id, status, body, now])),
                Settle::Retry { at_ms, spent, status, error } => conn
                    .prepare_cached(
                        "UPDATE invocations SET state = 'queued', not_before_ms = ?2, lease_until_ms = 0,
                         attempts = attempts + ?3, throttled = throttled + (1 - ?3), status = coalesce(?4, status),
                         error = ?5, updated_ms = ?6 WHERE id = ?1",
                    )
                    .and_then(|mut st| st.execute(params![id, at_ms as i64, i64::from(spent), status, error, now])),
                Settle::Failed { dead_letter, spent, code, error, status, body } => conn
                    .prepare_cached(
                        "UPDATE invocations SET state = ?2, attempts = attempts + ?3, error_code = ?4, error = ?5,
                         status = coalesce(?6, status), result = ?7, updated_ms = ?8 WHERE id = ?1",
                    )
                    .and_then(|mut st| {
                        let state = if dead_letter { State::DeadLettered } else { State::Failed };
                        st.execute(params![id, state.as_str(), i64::from(spent), code, error, status, body, now])
                    }),
            }
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn next_due_ms(&self) -> Result<Option<u64>> {
        self.run(false, |conn| {
            let mut st = conn
                .prepare_cached("SELECT min(not_before_ms) FROM invocations WHERE state = 'queued'")
                .map_err(sql)?;
            st.query_row([], |r| r.get::<_, Option<i64>>(0)).map(|v| v.map(|v| v as u64)).map_err(sql)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Info>> {
        let id = id.to_string();
        self.run(false, move |conn| {
            conn.query_row("SELECT * FROM invocations WHERE id = ?1", params![id], info).optional().map_err(sql)
        })
        .await
    }

    async fn list(&self, function: &str, state: State, limit: usize) -> Result<Vec<Info>> {
        let function = function.to_string();
        self.run(false, move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT * FROM invocations WHERE function = ?1 AND state = ?2 ORDER BY seq LIMIT ?3")
                .map_err(sql)?;
            let rows = stmt.query_map(params![function, state.as_str(), limit as i64], info).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn redrive(&self, function: &str, ids: Option<Vec<String>>, now_ms: u64) -> Result<usize> {
        let function = function.to_string();
        self.run(true, move |conn| {
            conn.execute(
                "UPDATE invocations SET state = 'queued', attempts = 0, throttled = 0, not_before_ms = ?2,
                 created_ms = ?2, updated_ms = ?2, lease_until_ms = 0
                 WHERE function = ?1 AND state IN ('dead_lettered', 'failed')
                   AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3)))",
                params![function, now_ms as i64, id_list(&ids)],
            )
            .map_err(sql)
        })
        .await
    }

    async fn purge(&self, function: &str, ids: Option<Vec<String>>) -> Result<usize> {
        let function = function.to_string();
        self.run(true, move |conn| {
            conn.execute(
                "DELETE FROM invocations WHERE function = ?1 AND state IN ('dead_lettered', 'failed')
                   AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))",
                params![function, id_list(&ids)],
            )
            .map_err(sql)
        })
        .await
    }

    async fn pending(&self) -> Result<Vec<(String, u64)>> {
        self.run(false, |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT function, count(*) FROM invocations WHERE state IN ('queued', 'running') GROUP BY function",
                )
                .map_err(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn expire(&self, done_before_ms: u64, dead_before_ms: u64) -> Result<usize> {
        self.run(false, move |conn| {
            conn.execute(
                "DELETE FROM invocations WHERE (state IN ('succeeded', 'failed') AND updated_ms < ?1)
                    OR (state = 'dead_lettered' AND updated_ms < ?2)",
                params![done_before_ms as i64, dead_before_ms as i64],
            )
            .map_err(sql)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, function: &str, event_id: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            function: function.into(),
            source: "s".into(),
            event_id: event_id.into(),
            attrs: b"{}".to_vec(),
            data: id.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn enqueue_claim_settle_redrive_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueue::open(&dir.path().join("queue.sqlite3")).unwrap();
        let out = q.enqueue(vec![ev("a", "ns/f", "1"), ev("b", "ns/f", "2"), ev("c", "ns/f", "1")]).await.unwrap();
        assert_eq!(out, vec![Enqueued::New, Enqueued::New, Enqueued::Duplicate("a".into())]);
        q.enqueue(vec![ev("d", "ns/g", "1")]).await.unwrap();
        let now = crate::now_ms();
        // Only the functions asked for, at most as many as asked; the lease hides claimed events.
        let f = |n| vec![("ns/f".to_string(), n)];
        let got = q.claim(now, 60_000, f(1)).await.unwrap();
        assert_eq!(got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["a"]);
        let got = q.claim(now, 60_000, f(10)).await.unwrap();
        assert_eq!(got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(q.claim(now, 60_000, f(10)).await.unwrap().is_empty());
        // An expired lease is claimed again.
        assert_eq!(q.claim(now + 60_001, 1000, f(10)).await.unwrap().len(), 2);
        q.settle("a", Settle::Succeeded { status: 200, body: b"ok".to_vec() }, now).await.unwrap();
        q.settle("b", Settle::Retry { at_ms: now + 5000, spent: false, status: None, error: "throttled".into() }, now)
            .await
            .unwrap();
        let b = q.get("b").await.unwrap().unwrap();
        assert_eq!((b.state, b.attempts, b.throttled, b.not_before_ms), (State::Queued, 0, 1, now + 5000));
        // `d` (of `ns/g`) is due now.
        assert!(q.next_due_ms().await.unwrap().is_some_and(|due| due <= now), "d is due");
        assert!(q.claim(now + 1, 1000, f(10)).await.unwrap().is_empty());
        let got = q.claim(now + 5000, 1000, f(10)).await.unwrap();
        assert_eq!(got.len(), 1);
        let failed = Settle::Failed {
            dead_letter: true,
            spent: true,
            code: "RetriesExhausted".into(),
            error: "http 500".into(),
            status: Some(500),
            body: vec![],
        };
        q.settle("b", failed, now).await.unwrap();
        let dead = q.list("ns/f", State::DeadLettered, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].attempts, dead[0].error_code.as_deref(), dead[0].status),
            (1, Some("RetriesExhausted"), Some(500))
        );
        assert_eq!(q.pending().await.unwrap(), vec![("ns/g".to_string(), 1)]);
        assert_eq!(q.redrive("ns/f", Some(vec!["b".into()]), now + 10).await.unwrap(), 1);
        let b = q.get("b").await.unwrap().unwrap();
        assert_eq!((b.state, b.attempts, b.created_ms), (State::Queued, 0, now + 10));
        assert_eq!(q.purge("ns/f", None).await.unwrap(), 0);
        assert_eq!(q.expire(now + 1, 0).await.unwrap(), 1); // `a`, succeeded
        assert!(q.get("a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn claimed_events_are_queued_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.sqlite3");
        {
            let q = EmbeddedQueue::open(&path).unwrap();
            q.enqueue(vec![ev("a", "ns/f", "1")]).await.unwrap();
            assert_eq!(q.claim(crate::now_ms(), 600_000, vec![("ns/f".into(), 10)]).await.unwrap().len(), 1);
        }
        let q = EmbeddedQueue::open(&path).unwrap();
        assert_eq!(q.claim(crate::now_ms(), 600_000, vec![("ns/f".into(), 10)]).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn many_concurrent_enqueues_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueue::open(&dir.path().join("queue.sqlite3")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let q = q.clone();
            tasks
                .push(tokio::spawn(async move { q.enqueue(vec![ev(&format!("e{i}"), "ns/f", &i.to_string())]).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), vec![Enqueued::New]);
        }
        assert_eq!(q.pending().await.unwrap(), vec![("ns/f".to_string(), 200)]);
    }
}
