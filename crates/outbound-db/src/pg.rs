//! PostgreSQL through `tokio-postgres`, over a TCP stream wisp connected itself to a checked address
//! (`connect_raw`). No TLS: an address that requires it (`sslmode=require`) is refused with a message
//! saying so; `prefer` (the default) and `disable` connect in plain text.

use crate::pg_codec::{Encoded, decode, encode};
use crate::pg_values::{PgColumn, PgDbError, PgParam, PgRowSet, PgType};
use crate::pool::{Lease, Pooled, Pools, tcp};
use crate::{DbError, redact};
use futures::TryStreamExt as _;
use std::net::SocketAddr;
use std::time::Instant;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::{FromSql, Type};

/// A guest's PostgreSQL address (a `postgres://` URL or libpq's `key=value` form), parsed.
#[derive(Debug, Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    endpoints: Vec<(String, u16)>,
}

impl Target {
    /// Parses `address`; an address wisp cannot serve (Unix sockets, TLS required, no host) is an
    /// [`DbError::InvalidAddress`] saying why.
    pub fn parse(address: &str) -> Result<Target, DbError> {
        let config: tokio_postgres::Config = address.parse().map_err(|e| {
            DbError::InvalidAddress(format!(
                "the PostgreSQL address `{}` does not parse: {e} (write postgres://user:password@host:port/database)",
                redact(address)
            ))
        })?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(DbError::InvalidAddress(
                "sslmode=require: TLS connections to PostgreSQL are not supported by wisp yet; use sslmode=disable or prefer (a server on a private network)".into(),
            ));
        }
        let ports = config.get_ports();
        let port_of =
            |i: usize| ports.get(i).or(if ports.len() == 1 { ports.first() } else { None }).copied().unwrap_or(5432);
        let mut endpoints = Vec::new();
        let hostaddrs = config.get_hostaddrs();
        if !hostaddrs.is_empty() {
            // `hostaddr` names the address to connect to: that is what is checked.
            for (i, ip) in hostaddrs.iter().enumerate() {
                endpoints.push((ip.to_string(), port_of(i)));
            }
        } else {
            for (i, host) in config.get_hosts().iter().enumerate() {
                match host {
                    Host::Tcp(name) => endpoints
                        .push((name.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(), port_of(i))),
                    #[cfg(unix)]
                    Host::Unix(_) => {
                        return Err(DbError::InvalidAddress(
                            "the address names a Unix socket; functions reach PostgreSQL over TCP only (host=name or postgres://host)".into(),
                        ));
                    }
                }
            }
        }
        if endpoints.is_empty() {
            return Err(DbError::InvalidAddress(format!(
                "the PostgreSQL address `{}` names no host (write postgres://user:password@host:port/database)",
                redact(address)
            )));
        }
        Ok(Target { config, endpoints })
    }

    /// The hosts and ports it names, in order; every one must be allowed and checked.
    pub fn endpoints(&self) -> &[(String, u16)] {
        &self.endpoints
    }
}

/// An open PostgreSQL connection.
pub struct PgConn {
    client: tokio_postgres::Client,
    /// A statement touched a type outside PostgreSQL's built-in ones: tokio-postgres cached the statements
    /// it looked the type up with, which `DISCARD ALL` would invalidate, so this connection is not pooled.
    custom_types: bool,
}

impl Pooled for PgConn {
    async fn reset(&mut self) -> bool {
        if self.custom_types {
            return false;
        }
        // DISCARD ALL: prepared statements, temporary tables, session settings, advisory locks, LISTENs.
        // It cannot run inside a transaction: roll back what the guest left open (or failed), then retry.
        if self.client.batch_execute("DISCARD ALL").await.is_ok() {
            return true;
        }
        self.client.batch_execute("ROLLBACK").await.is_ok() && self.client.batch_execute("DISCARD ALL").await.is_ok()
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// A guest's PostgreSQL connection.
pub type PgLease = Lease<PgConn>;

/// A value of any type, as raw bytes.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn failed(e: tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => {
            let mut extras = Vec::new();
            let mut extra = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    extras.push((k.to_string(), v));
                }
            };
            extra("hint", db.hint().map(str::to_string));
            extra("schema", db.schema().map(str::to_string));
            extra("table", db.table().map(str::to_string));
            extra("column", db.column().map(str::to_string));
            extra("datatype", db.datatype().map(str::to_string));
            extra("constraint", db.constraint().map(str::to_string));
            extra("where", db.where_().map(str::to_string));
            extra("routine", db.routine().map(str::to_string));
            let as_text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            let message = match db.detail() {
                Some(d) => format!("{as_text} ({d})"),
                None => as_text.clone(),
            };
            DbError::QueryFailed {
                message,
                db: Some(Box::new(PgDbError {
                    as_text,
                    severity: db.severity().to_string(),
                    code: db.code().code().to_string(),
                    message: db.message().to_string(),
                    detail: db.detail().map(str::to_string),
                    extras,
                })),
            }
        }
        None if e.is_closed() => DbError::ConnectionFailed(format!("the connection to PostgreSQL broke: {e}")),
        None => DbError::query(e.to_string()),
    }
}

fn builtin(ty: &Type) -> bool {
    Type::from_oid(ty.oid()).is_some()
}

impl Pools {
    /// A PostgreSQL connection of `owner` to `address` (parsed as `target`), to one of `addrs` (the checked
    /// addresses of its endpoints, in order).
    pub async fn postgres(
        &self,
        owner: &str,
        address: &str,
        target: &Target,
        addrs: &[SocketAddr],
        deadline: Instant,
    ) -> Result<PgLease, DbError> {
        self.lease(&self.pg, owner, address, addrs, deadline, |peer| connect(&target.config, peer)).await
    }
}

async fn connect(config: &tokio_postgres::Config, peer: SocketAddr) -> Result<PgConn, DbError> {
    let stream = tcp(peer).await?;
    let (client, connection) =
        config.connect_raw(stream, tokio_postgres::NoTls).await.map_err(|e| match e.as_db_error() {
            Some(db) => {
                DbError::ConnectionFailed(format!("PostgreSQL at {peer} refused the connection: {}", db.message()))
            }
            None => DbError::ConnectionFailed(format!("connecting to PostgreSQL at {peer}: {e}")),
        })?;
    // The connection's messages are driven by their own task; it ends when the client is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "a guest's PostgreSQL connection ended");
        }
    });
    Ok(PgConn { client, custom_types: false })
}

/// What a statement is about to be run with: its parameters encoded for their types.
async fn prepare(
    conn: &mut PgConn,
    statement: &str,
    params: &[PgParam],
) -> Result<(tokio_postgres::Statement, Vec<Encoded>), DbError> {
    let stmt = conn.client.prepare(statement).await.map_err(failed)?;
    if stmt.params().len() != params.len() {
        return Err(DbError::BadParameter(format!(
            "the statement has {} parameters ($1 …) and {} values were given",
            stmt.params().len(),
            params.len()
        )));
    }
    if !stmt.params().iter().chain(stmt.columns().iter().map(|c| c.type_())).all(builtin) {
        conn.custom_types = true;
    }
    let encoded = params
        .iter()
        .zip(stmt.params())
        .enumerate()
        .map(|(i, (p, ty))| {
            encode(p, ty).map_err(|e| DbError::BadParameter(format!("parameter ${} ({}): {e}", i + 1, ty.name())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((stmt, encoded))
}

impl PgLease {
    /// Runs a statement that returns rows; at most `max_bytes` of them.
    pub async fn query(
        &mut self,
        statement: &str,
        params: &[PgParam],
        deadline: Instant,
        max_bytes: usize,
    ) -> Result<PgRowSet, DbError> {
        let conn = self.conn()?;
        let run = async {
            let (stmt, encoded) = prepare(conn, statement, params).await?;
            let columns: Vec<PgColumn> = stmt
                .columns()
                .iter()
                .map(|c| PgColumn { name: c.name().to_string(), ty: PgType::of(c.type_()) })
                .collect();
            let rows = conn.client.query_raw(&stmt, encoded.iter()).await.map_err(failed)?;
            futures::pin_mut!(rows);
            let mut out = PgRowSet { columns, rows: Vec::new() };
            let mut bytes = 0usize;
            while let Some(row) = rows.try_next().await.map_err(failed)? {
                let mut values = Vec::with_capacity(row.len());
                for (i, col) in row.columns().iter().enumerate() {
                    let raw: Raw = row.try_get(i).map_err(failed)?;
                    let v = decode(col.type_(), raw.0).map_err(|e| {
                        DbError::ValueConversion(format!("column `{}` ({}): {e}", col.name(), col.type_().name()))
                    })?;
                    bytes += v.size();
                    values.push(v);
                }
                if bytes > max_bytes {
                    return Err(DbError::Other(format!(
                        "the result is larger than {} MiB ([outbound_db] max_result_mb); select fewer rows or columns",
                        max_bytes >> 20
                    )));
                }
                out.rows.push(values);
            }
            Ok(out)
        };
        match tokio::time::timeout_at(deadline.into(), run).await {
            Ok(r) => r,
            Err(_) => Err(self.cut_short("the PostgreSQL query")),
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, statement: &str, params: &[PgParam], deadline: Instant) -> Result<u64, DbError> {
        let conn = self.conn()?;
        let run = async {
            let (stmt, encoded) = prepare(conn, statement, params).await?;
            conn.client.execute_raw(&stmt, encoded.iter()).await.map_err(failed)
        };
        match tokio::time::timeout_at(deadline.into(), run).await {
            Ok(r) => r,
            Err(_) => Err(self.cut_short("the PostgreSQL statement")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_into_endpoints() {
        let t = Target::parse("postgres://u:p@127.0.0.1:5433/db").unwrap();
        assert_eq!(t.endpoints(), [("127.0.0.1".to_string(), 5433)]);
        let t = Target::parse("host=DB.internal,other user=u dbname=x").unwrap();
        assert_eq!(t.endpoints(), [("db.internal".to_string(), 5432), ("other".to_string(), 5432)]);
        let t = Target::parse("postgresql://[::1]/x").unwrap();
        assert_eq!(t.endpoints(), [("::1".to_string(), 5432)]);
        let t = Target::parse("host=name hostaddr=10.0.0.5 port=6000").unwrap();
        assert_eq!(t.endpoints(), [("10.0.0.5".to_string(), 6000)]);
        let e = Target::parse("postgres://u:secret@db/x?sslmode=require").unwrap_err();
        assert!(e.to_string().contains("TLS connections to PostgreSQL are not supported"), "{e}");
        let e = Target::parse("host=/run/postgresql").unwrap_err();
        assert!(e.to_string().contains("Unix socket"), "{e}");
        let e = Target::parse("postgres://u:secret@db/x?nonsense=1").unwrap_err();
        assert!(e.to_string().contains("does not parse") && !e.to_string().contains("secret"), "{e}");
    }
}
