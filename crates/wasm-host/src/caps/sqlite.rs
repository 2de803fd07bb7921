//! The SQL capability: Spin's `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.0.0` over the node's
//! guest databases ([`SqlDatabases`]: one SQLite file per namespace + app + label, statements bounded by the
//! invocation's deadline, results by rows and bytes, databases by size).
//!
//! A guest opens a database by label; the function's grant (`sqlite_databases`) lists the labels it may
//! open (any other is `access-denied`, as under Spin), each scoped by namespace and app like key-value
//! stores. Spin SDKs import the interface whether they use it or not, so an ungranted import is refused at
//! `open`, not at deploy.

use super::Grant;
use crate::meter::Current;
use std::sync::Arc;
use tracing::Instrument;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wisp_core::sql::SqlValue;
use wisp_core::usage::Service;
use wisp_store::sql::{Executed, Lease, SqlDatabases, SqlError};

mod v2 {
    wasmtime::component::bindgen!({
        inline: "package wisp:spin-sql; world sql { import fermyon:spin/sqlite@2.0.0; }",
        path: "../../wit/spin-2.0.0",
        imports: { default: async | trappable },
        with: { "fermyon:spin/sqlite.connection": super::Connection },
    });
}

mod v3 {
    wasmtime::component::bindgen!({
        inline: "package wisp:spin-sql3; world sql { import spin:sqlite/sqlite@3.0.0; }",
        path: "../../wit/spin-sqlite-3.0.0",
        imports: { default: async | trappable },
        with: { "spin:sqlite/sqlite.connection": super::Connection },
    });
}

/// The interfaces served, with version.
pub const INTERFACES: &[&str] = &["fermyon:spin/sqlite@2.0.0", "spin:sqlite/sqlite@3.0.0"];

/// An open database: its scope, the pooled connection it holds once it ran a statement, and what its last
/// statement reported.
pub struct Connection {
    scope: String,
    lease: Option<Lease>,
    last_insert_rowid: i64,
    changes: u64,
}

/// An instance's slice of the capability.
pub(crate) struct Sql {
    pub(crate) grant: Arc<Grant>,
    pub(crate) dbs: Option<Arc<SqlDatabases>>,
    /// The invocation served now: its deadline bounds each statement; statements are counted on its meter.
    pub(crate) current: Arc<Current>,
}

/// What the generated host traits are implemented on.
pub(crate) struct SqlView<'a> {
    sql: &'a Sql,
    table: &'a mut ResourceTable,
}

impl<'a> SqlView<'a> {
    /// The view of an instance's capability state and table.
    pub(crate) fn new(sql: &'a Sql, table: &'a mut ResourceTable) -> Self {
        SqlView { sql, table }
    }
}

struct HasSql;

impl HasData for HasSql {
    type Data<'a> = SqlView<'a>;
}

/// Links both versions; `view` projects an instance's state onto its [`SqlView`].
pub(crate) fn link<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> SqlView<'_>) -> anyhow::Result<()> {
    v2::fermyon::spin::sqlite::add_to_linker::<T, HasSql>(linker, view)?;
    v3::spin::sqlite::sqlite::add_to_linker::<T, HasSql>(linker, view)?;
    Ok(())
}

/// Why an operation failed, before each version maps it onto its own `error`.
enum Failure {
    AccessDenied,
    Full,
    Io(String),
}

impl From<SqlError> for Failure {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::DatabaseFull(_) => Failure::Full,
            e => Failure::Io(e.to_string()),
        }
    }
}

impl SqlView<'_> {
    fn open(&mut self, label: &str) -> wasmtime::Result<Result<Resource<Connection>, Failure>> {
        let Some(scope) = self.sql.grant.scope(label) else {
            return Ok(Err(Failure::AccessDenied));
        };
        if self.sql.dbs.is_none() {
            return Ok(Err(Failure::Io("this node has no SQL backend".into())));
        }
        let conn = Connection { scope: scope.to_string(), lease: None, last_insert_rowid: 0, changes: 0 };
        Ok(Ok(self.table.push(conn)?))
    }

    /// Runs a statement on the guest's connection: the lease is taken out of the table for the await (the
    /// view's borrow of the table must not live across it) and put back after.
    async fn execute(
        &mut self,
        conn: &Resource<Connection>,
        statement: String,
        params: Vec<SqlValue>,
    ) -> wasmtime::Result<Result<Executed, Failure>> {
        let dbs = self.sql.dbs.clone().expect("checked at open");
        let current = self.sql.current.clone();
        let deadline = current.deadline;
        let sent: usize = params.iter().map(SqlValue::payload_len).sum();
        let (scope, mut lease) = {
            let c = self.table.get_mut(conn)?;
            (c.scope.clone(), c.lease.take())
        };
        let span = crate::trace::host_span("sql", "sql execute");
        let (out, cpu) =
            dbs.execute_timed(&mut lease, &scope, statement, params, deadline).instrument(span.clone()).await;
        if out.is_err() {
            crate::trace::failed(&span);
        }
        current.meter.cpu(cpu);
        let got = out.as_ref().map_or(0, |done| done.result.payload_len());
        current.meter.count(Service::Sql, 1, (sent + got) as u64);
        let c = self.table.get_mut(conn)?;
        c.lease = lease;
        Ok(match out {
            Ok(done) => {
                c.last_insert_rowid = done.last_insert_rowid;
                c.changes = done.changes;
                Ok(done)
            }
            Err(e) => Err(e.into()),
        })
    }
}

macro_rules! conversions {
    ($m:path) => {{
        use $m as w;
        fn err(f: Failure) -> w::Error {
            match f {
                Failure::AccessDenied => w::Error::AccessDenied,
                Failure::Full => w::Error::DatabaseFull,
                Failure::Io(m) => w::Error::Io(m),
            }
        }
        fn param(v: w::Value) -> SqlValue {
            match v {
                w::Value::Integer(i) => SqlValue::Integer(i),
                w::Value::Real(f) => SqlValue::Real(f),
                w::Value::Text(t) => SqlValue::Text(t),
                w::Value::Blob(b) => SqlValue::Blob(b),
                w::Value::Null => SqlValue::Null,
            }
        }
        fn value(v: SqlValue) -> w::Value {
            match v {
                SqlValue::Integer(i) => w::Value::Integer(i),
                SqlValue::Real(f) => w::Value::Real(f),
                SqlValue::Text(t) => w::Value::Text(t),
                SqlValue::Blob(b) => w::Value::Blob(b),
                SqlValue::Null => w::Value::Null,
            }
        }
        fn result(e: Executed) -> w::QueryResult {
            w::QueryResult {
                columns: e.result.columns,
                rows: e
                    .result
                    .rows
                    .into_iter()
                    .map(|r| w::RowResult { values: r.into_iter().map(value).collect() })
                    .collect(),
            }
        }
        (err, param, result)
    }};
}

impl v2::fermyon::spin::sqlite::Host for SqlView<'_> {}

impl v2::fermyon::spin::sqlite::HostConnection for SqlView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v2::fermyon::spin::sqlite::Error>> {
        let (err, _, _) = conversions!(v2::fermyon::spin::sqlite);
        Ok(SqlView::open(self, &database)?.map_err(err))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v2::fermyon::spin::sqlite::Value>,
    ) -> wasmtime::Result<Result<v2::fermyon::spin::sqlite::QueryResult, v2::fermyon::spin::sqlite::Error>> {
        let (err, param, result) = conversions!(v2::fermyon::spin::sqlite);
        let params = parameters.into_iter().map(param).collect();
        Ok(SqlView::execute(self, &conn, statement, params).await?.map(result).map_err(err))
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl v3::spin::sqlite::sqlite::Host for SqlView<'_> {}

impl v3::spin::sqlite::sqlite::HostConnection for SqlView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::spin::sqlite::sqlite::Error>> {
        let (err, _, _) = conversions!(v3::spin::sqlite::sqlite);
        Ok(SqlView::open(self, &database)?.map_err(err))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::spin::sqlite::sqlite::Value>,
    ) -> wasmtime::Result<Result<v3::spin::sqlite::sqlite::QueryResult, v3::spin::sqlite::sqlite::Error>> {
        let (err, param, result) = conversions!(v3::spin::sqlite::sqlite);
        let params = parameters.into_iter().map(param).collect();
        Ok(SqlView::execute(self, &conn, statement, params).await?.map(result).map_err(err))
    }

    async fn last_insert_rowid(&mut self, conn: Resource<Connection>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&conn)?.last_insert_rowid)
    }

    async fn changes(&mut self, conn: Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&conn)?.changes)
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
