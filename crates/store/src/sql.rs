//! Guests' SQL databases (the SQL capability's backend): one SQLite file per namespace + app + label, under
//! the node's data directory, apart from every file of the platform's own.
//!
//! What a guest's statement can do is bounded here, not by trusting it: parameters are always bound (the
//! statement text is the guest's, the values never become SQL), one statement per call, a progress handler
//! interrupts it at the invocation's deadline, a result is capped in rows and bytes, a database in pages
//! (`max_page_count`; past it SQLite answers `SQLITE_FULL` → [`SqlError::DatabaseFull`]). An authorizer
//! refuses `ATTACH`/`DETACH` (no other file can be reached; the attach limit is 0 as well) and every pragma
//! but a read-mostly list (a guest cannot raise its size cap, grow the host's page cache, or turn off the
//! journal); defensive mode forbids writing the schema table directly. Extensions cannot be loaded.
//!
//! Connections are pooled per database: a guest's connection takes one on its first statement and keeps it
//! until it is dropped (so `BEGIN … COMMIT` across calls works); a connection comes back to the pool only
//! outside a transaction (an open one is rolled back first).
//!
//! Migrations ([`SqlDatabases::migrate`]) run on a connection of their own: every pending one in one
//! transaction, recorded in the database's `_wisp_migrations` table in the same transaction, so a failed one
//! changes nothing. A migration may not begin or end transactions itself (refused by the authorizer).

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wisp_core::sql::{Migration, QueryResult, SqlValue};

/// Limits on guests' databases (the node config's `[sqlite]` section).
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Largest database file, bytes.
    pub max_database_bytes: u64,
    /// Most rows a statement may answer.
    pub max_rows: usize,
    /// Largest result, bytes (values' sizes, 8 per number).
    pub max_result_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits { max_database_bytes: 1 << 30, max_rows: 100_000, max_result_bytes: 16 << 20 }
    }
}

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// The database reached its size limit.
    #[error("the database is full: it reached the node's limit of {0} MiB (sqlite.max_database_mb)")]
    DatabaseFull(u64),
    /// The statement failed (syntax, constraint, limit, deadline, I/O), with a message saying why.
    #[error("{0}")]
    Failed(String),
}

/// Idle connections kept per database.
const IDLE_PER_DATABASE: usize = 4;

/// How often (in SQLite virtual-machine steps) a running statement checks its deadline.
const PROGRESS_STEPS: i32 = 1000;

/// Pragmas a guest may run: introspection and per-connection behaviour that stays inside its own database.
const ALLOWED_PRAGMAS: &[&str] = &[
    "application_id",
    "collation_list",
    "data_version",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "freelist_count",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "optimize",
    "page_count",
    "quick_check",
    "recursive_triggers",
    "schema_version",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// The node's guest databases.
pub struct SqlDatabases {
    dir: PathBuf,
    limits: SqlLimits,
    idle: Mutex<HashMap<String, Vec<Connection>>>,
}

/// A connection a guest holds (see the module docs); back to the pool when dropped.
pub struct Lease {
    conn: Option<Connection>,
    scope: String,
    dbs: Arc<SqlDatabases>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
                return; // not reusable: closed here
            }
            let mut idle = self.dbs.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = idle.entry(std::mem::take(&mut self.scope)).or_default();
            if list.len() < IDLE_PER_DATABASE {
                list.push(conn);
            }
        }
    }
}

/// What one statement did.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// Its rows.
    pub result: QueryResult,
    /// The connection's last inserted rowid after it.
    pub last_insert_rowid: i64,
    /// Rows it changed (0 for a statement that changes none).
    pub changes: u64,
}

fn failed(what: &str) -> impl Fn(rusqlite::Error) -> SqlError + '_ {
    move |e| SqlError::Failed(format!("{what}: {e}"))
}

impl SqlDatabases {
    /// Guest databases under `dir` (created when first used).
    pub fn new(dir: &Path, limits: SqlLimits) -> Arc<SqlDatabases> {
        Arc::new(SqlDatabases { dir: dir.to_path_buf(), limits, idle: Mutex::new(HashMap::new()) })
    }

    /// The limits.
    pub fn limits(&self) -> SqlLimits {
        self.limits
    }

    /// The file of the database at `scope` (`<ns>/app/<app>/<label>/`): its components are names and labels
    /// (a-z, 0-9, '-', '_'), checked again here, so the path stays under the directory by construction.
    fn path(&self, scope: &str) -> Result<PathBuf, SqlError> {
        let parts: Vec<&str> = scope.trim_end_matches('/').split('/').collect();
        let ok = parts.len() == 4
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            });
        if !ok {
            return Err(SqlError::Failed(format!("{scope:?} is not a database scope")));
        }
        let mut path = self.dir.clone();
        path.extend(&parts[..3]);
        Ok(path.join(format!("{}.db", parts[3])))
    }

    fn connect(&self, scope: &str) -> Result<Connection, SqlError> {
        let path = self.path(scope)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SqlError::Failed(format!("create {}: {e}", dir.display())))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(failed("open the database"))?;
        let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(failed("read page size"))?;
        let pages = (self.limits.max_database_bytes / page_size.max(512)).max(1);
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA max_page_count = {pages};"
        ))
        .map_err(failed("configure the database"))?;
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(failed("configure the database"))?;
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)
            .map_err(failed("configure the database"))?;
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(failed("configure the database"))?;
        conn.authorizer(Some(|ctx: AuthContext<'_>| authorize(&ctx, false)));
        Ok(conn)
    }

    /// A lease on a connection to the database at `scope` (from the pool, or newly opened). Blocking.
    fn lease(self: &Arc<Self>, scope: &str) -> Result<Lease, SqlError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(scope).and_then(|l| l.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self.connect(scope)?,
        };
        Ok(Lease { conn: Some(conn), scope: scope.to_string(), dbs: self.clone() })
    }

    /// Runs one statement with `params` bound on the guest's `lease` (taken on first use), stopping it at
    /// `deadline`. The lease comes back in `lease`, even when the statement failed.
    pub async fn execute(
        self: &Arc<Self>,
        lease: &mut Option<Lease>,
        scope: &str,
        statement: String,
        params: Vec<SqlValue>,
        deadline: Instant,
    ) -> Result<Executed, SqlError> {
        self.execute_timed(lease, scope, statement, params, deadline).await.0
    }

    /// [`SqlDatabases::execute`], also answering the thread CPU time the statement took (on its blocking
    /// thread), for the invocation's meter.
    pub async fn execute_timed(
        self: &Arc<Self>,
        lease: &mut Option<Lease>,
        scope: &str,
        statement: String,
        params: Vec<SqlValue>,
        deadline: Instant,
    ) -> (Result<Executed, SqlError>, std::time::Duration) {
        let held = lease.take();
        let me = self.clone();
        let scope = scope.to_string();
        let ran = tokio::task::spawn_blocking(move || {
            crate::cpu::timed(|| {
                let held = match held {
                    Some(l) => l,
                    None => match me.lease(&scope) {
                        Ok(l) => l,
                        Err(e) => return (None, Err(e)),
                    },
                };
                let conn = held.conn.as_ref().expect("a lease holds its connection until dropped");
                let result = run(conn, &statement, &params, deadline, &me.limits);
                (Some(held), result)
            })
        })
        .await;
        match ran {
            Ok(((back, result), cpu)) => {
                *lease = back;
                (result, cpu)
            }
            Err(e) => (Err(SqlError::Failed(format!("the statement's task failed: {e}"))), std::time::Duration::ZERO),
        }
    }

    /// Applies the `migrations` not yet applied to the database at `scope`, in order, in one transaction;
    /// returns the names applied now. An applied migration whose text changed is an error (migrations are
    /// append-only); so is any failure, and then nothing changed.
    pub async fn migrate(self: &Arc<Self>, scope: &str, migrations: Vec<Migration>) -> Result<Vec<String>, SqlError> {
        wisp_core::sql::check_migrations(&migrations).map_err(SqlError::Failed)?;
        let me = self.clone();
        let scope = scope.to_string();
        tokio::task::spawn_blocking(move || {
            let mut conn = me.connect(&scope)?;
            conn.busy_timeout(Duration::from_secs(10)).map_err(failed("configure the database"))?;
            migrate(&mut conn, &migrations, me.limits.max_database_bytes)
        })
        .await
        .map_err(|e| SqlError::Failed(format!("the migration task failed: {e}")))?
    }

    /// The names of the migrations applied to the database at `scope`, in order.
    pub async fn applied(self: &Arc<Self>, scope: &str) -> Result<Vec<String>, SqlError> {
        let me = self.clone();
        let scope = scope.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = me.connect(&scope)?;
            ensure_migrations_table(&conn)?;
            let mut stmt =
                conn.prepare("SELECT name FROM _wisp_migrations ORDER BY name").map_err(failed("read migrations"))?;
            let names = stmt.query_map([], |r| r.get(0)).map_err(failed("read migrations"))?;
            names.collect::<rusqlite::Result<Vec<String>>>().map_err(failed("read migrations"))
        })
        .await
        .map_err(|e| SqlError::Failed(format!("the migration task failed: {e}")))?
    }
}

fn authorize(ctx: &AuthContext<'_>, migrating: bool) -> Authorization {
    match &ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Transaction { .. } if migrating => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. } => {
            if ALLOWED_PRAGMAS.contains(&pragma_name.to_ascii_lowercase().as_str()) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Allow,
    }
}

fn bind(v: &SqlValue) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match v {
        SqlValue::Integer(i) => ValueRef::Integer(*i),
        SqlValue::Real(f) => ValueRef::Real(*f),
        SqlValue::Text(t) => ValueRef::Text(t.as_bytes()),
        SqlValue::Blob(b) => ValueRef::Blob(b),
        SqlValue::Null => ValueRef::Null,
    })
}

fn value(v: Value) -> SqlValue {
    match v {
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(t) => SqlValue::Text(t),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

fn size(v: &SqlValue) -> usize {
    match v {
        SqlValue::Text(t) => t.len(),
        SqlValue::Blob(b) => b.len(),
        _ => 8,
    }
}

/// One statement on `conn` (see [`SqlDatabases::execute`]).
fn run(
    conn: &Connection,
    statement: &str,
    params: &[SqlValue],
    deadline: Instant,
    limits: &SqlLimits,
) -> Result<Executed, SqlError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(SqlError::Failed("the invocation's deadline passed before the statement ran".into()));
    }
    // Waiting for another writer's lock counts against the same deadline.
    conn.busy_timeout(remaining).map_err(failed("configure the connection"))?;
    conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline));
    let out = run_statement(conn, statement, params, limits);
    conn.progress_handler(PROGRESS_STEPS, None::<fn() -> bool>);
    out.map_err(|e| classify(e, deadline, limits))
}

enum RunError {
    Sql(rusqlite::Error),
    Limit(String),
}

impl From<rusqlite::Error> for RunError {
    fn from(e: rusqlite::Error) -> Self {
        RunError::Sql(e)
    }
}

fn run_statement(
    conn: &Connection,
    statement: &str,
    params: &[SqlValue],
    limits: &SqlLimits,
) -> Result<Executed, RunError> {
    let mut stmt = conn.prepare_cached(statement)?;
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(RunError::Limit(format!(
            "the statement has {expected} parameter(s) and {} value(s) were given",
            params.len()
        )));
    }
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, bind(p))?;
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut raw = stmt.raw_query();
    while let Some(row) = raw.next()? {
        if rows.len() == limits.max_rows {
            return Err(RunError::Limit(format!(
                "the result has more than {} rows (the node's limit); page it with LIMIT and OFFSET",
                limits.max_rows
            )));
        }
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let v = value(row.get::<_, Value>(i)?);
            bytes += size(&v);
            values.push(v);
        }
        if bytes > limits.max_result_bytes {
            return Err(RunError::Limit(format!(
                "the result is more than {} MiB (the node's limit); select fewer columns or rows",
                limits.max_result_bytes >> 20
            )));
        }
        rows.push(values);
    }
    drop(raw);
    let changes = if stmt.readonly() { 0 } else { conn.changes() };
    Ok(Executed { result: QueryResult { columns, rows }, last_insert_rowid: conn.last_insert_rowid(), changes })
}

fn classify(e: RunError, deadline: Instant, limits: &SqlLimits) -> SqlError {
    let e = match e {
        RunError::Limit(m) => return SqlError::Failed(m),
        RunError::Sql(e) => e,
    };
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => SqlError::DatabaseFull(limits.max_database_bytes >> 20),
        Some(ErrorCode::OperationInterrupted) if Instant::now() >= deadline => {
            SqlError::Failed("the statement was stopped at the invocation's deadline (limits.timeout_ms)".into())
        }
        Some(ErrorCode::AuthorizationForStatementDenied) => SqlError::Failed(format!(
            "{e}: guests may not attach other databases or run pragmas outside a read-mostly list (table_info, foreign_keys, user_version, …)"
        )),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            SqlError::Failed(format!("{e}: another connection held the database's write lock until the deadline"))
        }
        _ => SqlError::Failed(e.to_string()),
    }
}

fn ensure_migrations_table(conn: &Connection) -> Result<(), SqlError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _wisp_migrations (
             name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
    )
    .map_err(failed("create the _wisp_migrations table"))
}

fn migrate(conn: &mut Connection, migrations: &[Migration], max_bytes: u64) -> Result<Vec<String>, SqlError> {
    ensure_migrations_table(conn)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed("begin"))?;
    // From here until the commit, statements may not begin or end transactions.
    tx.authorizer(Some(|ctx: AuthContext<'_>| authorize(&ctx, true)));
    let applied = apply_pending(&tx, migrations, max_bytes);
    tx.authorizer(Some(|ctx: AuthContext<'_>| authorize(&ctx, false)));
    let applied = applied?; // on an error the transaction rolls back as it drops
    tx.commit().map_err(failed("commit the migrations"))?;
    Ok(applied)
}

fn apply_pending(tx: &Connection, migrations: &[Migration], max_bytes: u64) -> Result<Vec<String>, SqlError> {
    let mut applied = Vec::new();
    for m in migrations {
        let digest = wisp_core::spec::sha256_hex(m.sql.as_bytes());
        let known: Option<String> = tx
            .query_row("SELECT sha256 FROM _wisp_migrations WHERE name = ?1", [&m.name], |r| r.get(0))
            .optional()
            .map_err(failed("read migrations"))?;
        match known {
            Some(d) if d == digest => continue,
            Some(_) => {
                return Err(SqlError::Failed(format!(
                    "migration {} was applied with other contents; applied migrations are never changed: put the change in a new file",
                    m.name
                )));
            }
            None => {}
        }
        tx.execute_batch(&m.sql).map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => SqlError::DatabaseFull(max_bytes >> 20),
            Some(ErrorCode::AuthorizationForStatementDenied) => SqlError::Failed(format!(
                "migration {} failed: {e} (migrations run in one transaction of wisp's and may not BEGIN, COMMIT, ATTACH or run pragmas outside the guests' list); nothing was applied",
                m.name
            )),
            _ => SqlError::Failed(format!("migration {} failed: {e}; nothing was applied", m.name)),
        })?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        tx.execute(
            "INSERT INTO _wisp_migrations (name, sha256, applied_at_ms) VALUES (?1, ?2, ?3)",
            (&m.name, &digest, now),
        )
        .map_err(failed("record the migration"))?;
        applied.push(m.name.clone());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: &str = "ns/app/shop/default/";

    async fn exec(
        dbs: &Arc<SqlDatabases>,
        lease: &mut Option<Lease>,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Executed, SqlError> {
        dbs.execute(lease, SCOPE, sql.into(), params, Instant::now() + Duration::from_secs(10)).await
    }

    #[tokio::test]
    async fn statements_parameters_and_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = SqlDatabases::new(dir.path(), SqlLimits::default());
        let mut lease = None;
        exec(&dbs, &mut lease, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)", vec![]).await.unwrap();
        let ins = exec(
            &dbs,
            &mut lease,
            "INSERT INTO t (name, data) VALUES (?, ?)",
            vec![SqlValue::Text("a'); DROP TABLE t; --".into()), SqlValue::Blob(vec![1, 2])],
        )
        .await
        .unwrap();
        assert_eq!((ins.last_insert_rowid, ins.changes), (1, 1));
        let sel = exec(&dbs, &mut lease, "SELECT id, name, data FROM t WHERE id = ?", vec![SqlValue::Integer(1)])
            .await
            .unwrap();
        assert_eq!(sel.result.columns, ["id", "name", "data"]);
        assert_eq!(
            sel.result.rows,
            vec![vec![
                SqlValue::Integer(1),
                SqlValue::Text("a'); DROP TABLE t; --".into()),
                SqlValue::Blob(vec![1, 2])
            ]]
        );
        assert!(dir.path().join("ns/app/shop/default.db").exists());
        // A transaction left open by a dropped lease is rolled back, not handed to the next guest.
        exec(&dbs, &mut lease, "BEGIN", vec![]).await.unwrap();
        exec(&dbs, &mut lease, "DELETE FROM t", vec![]).await.unwrap();
        drop(lease.take());
        let mut other = None;
        let n = exec(&dbs, &mut other, "SELECT count(*) FROM t", vec![]).await.unwrap();
        assert_eq!(n.result.rows, vec![vec![SqlValue::Integer(1)]]);
        let e = exec(&dbs, &mut other, "SELECT ?", vec![]).await.unwrap_err();
        assert!(e.to_string().contains("1 parameter(s) and 0 value(s)"), "{e}");
        let e = exec(&dbs, &mut other, "SELECT 1; SELECT 2", vec![]).await.unwrap_err();
        assert!(e.to_string().to_lowercase().contains("multiple statements"), "{e}");
    }

    #[tokio::test]
    async fn guests_reach_no_other_file_and_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = SqlDatabases::new(dir.path(), SqlLimits::default());
        let mut lease = None;
        let outside = dir.path().join("outside.db");
        for sql in [
            format!("ATTACH DATABASE '{}' AS x", outside.display()),
            format!("VACUUM INTO '{}'", outside.display()),
            "PRAGMA max_page_count = 999999999".into(),
            "PRAGMA cache_size = -10000000".into(),
            "PRAGMA journal_mode = OFF".into(),
        ] {
            assert!(exec(&dbs, &mut lease, &sql, vec![]).await.is_err(), "{sql} was allowed");
        }
        assert!(!outside.exists());
        exec(&dbs, &mut lease, "PRAGMA foreign_keys = ON", vec![]).await.unwrap();
        exec(&dbs, &mut lease, "PRAGMA user_version", vec![]).await.unwrap();
        assert!(dbs.path("ns/app/../x/").is_err());
        assert!(dbs.path("ns/app/a/B/").is_err());
    }

    #[tokio::test]
    async fn deadline_rows_and_size_limits() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SqlLimits { max_database_bytes: 1 << 20, max_rows: 10, max_result_bytes: 100 };
        let dbs = SqlDatabases::new(dir.path(), limits);
        let mut lease = None;
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
        let e = dbs
            .execute(&mut lease, SCOPE, endless.into(), vec![], Instant::now() + Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("deadline"), "{e}");
        let rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 11) SELECT x FROM c";
        assert!(exec(&dbs, &mut lease, rows, vec![]).await.unwrap_err().to_string().contains("more than 10 rows"));
        let big = "SELECT randomblob(200)";
        assert!(exec(&dbs, &mut lease, big, vec![]).await.unwrap_err().to_string().contains("MiB"));
        exec(&dbs, &mut lease, "CREATE TABLE b (x BLOB)", vec![]).await.unwrap();
        let full = exec(&dbs, &mut lease, "INSERT INTO b VALUES (randomblob(2000000))", vec![]).await.unwrap_err();
        assert_eq!(full, SqlError::DatabaseFull(1));
    }

    #[tokio::test]
    async fn migrations_apply_once_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = SqlDatabases::new(dir.path(), SqlLimits::default());
        let m = |n: &str, sql: &str| Migration { name: n.into(), sql: sql.into() };
        let first = vec![m("001_init.sql", "CREATE TABLE a (x); INSERT INTO a VALUES (1);")];
        assert_eq!(dbs.migrate(SCOPE, first.clone()).await.unwrap(), ["001_init.sql"]);
        assert!(dbs.migrate(SCOPE, first.clone()).await.unwrap().is_empty());
        // A failing second file: its first statement is undone too, and so is a third after it.
        let mut bad = first.clone();
        bad.push(m("002_more.sql", "CREATE TABLE b (x); INSERT INTO nowhere VALUES (1);"));
        let e = dbs.migrate(SCOPE, bad).await.unwrap_err().to_string();
        assert!(e.contains("migration 002_more.sql failed") && e.contains("nowhere"), "{e}");
        let mut lease = None;
        let t = exec(&dbs, &mut lease, "SELECT name FROM sqlite_schema WHERE name = 'b'", vec![]).await.unwrap();
        assert!(t.result.rows.is_empty());
        assert_eq!(dbs.applied(SCOPE).await.unwrap(), ["001_init.sql"]);
        let changed = vec![m("001_init.sql", "CREATE TABLE a (y);")];
        assert!(dbs.migrate(SCOPE, changed).await.unwrap_err().to_string().contains("other contents"));
        let commits = vec![m("001_init.sql", &first[0].sql), m("002_c.sql", "COMMIT; CREATE TABLE c (x);")];
        assert!(dbs.migrate(SCOPE, commits).await.unwrap_err().to_string().contains("may not BEGIN, COMMIT"));
    }
}
