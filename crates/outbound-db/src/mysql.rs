//! MySQL and MariaDB through `mysql_async`, connected to a checked address (`resolved_ips`: the client
//! resolves nothing, and never switches to a local Unix socket). No TLS: an address asking for it
//! (`ssl-mode` other than `DISABLED`) is refused with a message saying so.
//!
//! Values follow Spin's `fermyon:spin/rdbms-types`: integers by width and signedness, floats, text and
//! binary strings (binary when the column's character set is `binary`); what the types cannot name —
//! `DECIMAL`, dates and times, `JSON`, `ENUM`, `SET` — arrives as `str` in MySQL's own text form, with the
//! column type `other`; `YEAR` as `uint16`, `BIT` as `binary`; anything else is `unsupported`.

use crate::pool::{Lease, Pooled, Pools};
use crate::{DbError, redact};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable as _;
use mysql_async::{Opts, OptsBuilder, Params, Value};
use std::net::SocketAddr;
use std::time::Instant;

/// A column type as `rdbms-types` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MyType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Other,
}

/// A value a query returned.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum MyValue {
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Uint8(u8),
    Uint16(u16),
    Uint32(u32),
    Uint64(u64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
    DbNull,
    Unsupported,
}

/// A parameter value (`?`).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum MyParam {
    Boolean(bool),
    Int(i64),
    Uint(u64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
    DbNull,
}

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyColumn {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: MyType,
}

/// A query's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MyRowSet {
    /// The columns.
    pub columns: Vec<MyColumn>,
    /// The rows.
    pub rows: Vec<Vec<MyValue>>,
}

impl MyParam {
    /// Payload bytes, for metering: text and binary by length, numbers 8, `NULL` 0.
    pub fn payload_len(&self) -> usize {
        match self {
            MyParam::Str(s) => s.len(),
            MyParam::Binary(b) => b.len(),
            MyParam::DbNull => 0,
            _ => 8,
        }
    }
}

impl MyRowSet {
    /// Payload bytes of every value, for metering.
    pub fn payload_len(&self) -> usize {
        self.rows
            .iter()
            .flatten()
            .map(|v| match v {
                MyValue::Str(s) => s.len(),
                MyValue::Binary(b) => b.len(),
                MyValue::DbNull | MyValue::Unsupported => 0,
                _ => 8,
            })
            .sum()
    }
}

/// A guest's MySQL address, parsed.
#[derive(Debug, Clone)]
pub struct Target {
    opts: Opts,
    host: String,
    port: u16,
}

impl Target {
    /// Parses a `mysql://user:password@host:port/database` address.
    pub fn parse(address: &str) -> Result<Target, DbError> {
        let bad = |why: String| {
            DbError::InvalidAddress(format!(
                "the MySQL address `{}` {why} (write mysql://user:password@host:port/database)",
                redact(address)
            ))
        };
        let mut url = url::Url::parse(address).map_err(|e| bad(format!("does not parse: {e}")))?;
        if url.scheme() != "mysql" {
            return Err(bad(format!("has the scheme `{}`, not mysql", url.scheme())));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string().to_ascii_lowercase(),
            None => return Err(bad("names no host".into())),
        };
        let port = url.port().unwrap_or(3306);
        // Spin's `ssl-mode` parameter: only DISABLED is possible here.
        let mut pairs = Vec::new();
        for (k, v) in url.query_pairs() {
            let key = k.to_ascii_lowercase();
            if key == "ssl-mode" || key == "sslmode" {
                if !v.eq_ignore_ascii_case("disabled") {
                    return Err(DbError::InvalidAddress(format!(
                        "{k}={v}: TLS connections to MySQL are not supported by wisp yet; use {k}=DISABLED (a server on a private network)"
                    )));
                }
                continue;
            }
            if key == "socket" || key == "prefer_socket" || key == "require_ssl" {
                return Err(bad(format!("has `{k}`, which functions cannot use (TCP without TLS only)")));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        url.set_query(None);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let opts = Opts::from_url(url.as_str()).map_err(|e| bad(format!("is not usable: {e}")))?;
        Ok(Target { opts, host, port })
    }

    /// The host and port it names; the host must be allowed and checked.
    pub fn endpoint(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

/// An open MySQL connection.
pub struct MyConn {
    conn: mysql_async::Conn,
}

impl Pooled for MyConn {
    async fn reset(&mut self) -> bool {
        // COM_RESET_CONNECTION: rolls back, drops temporary tables, user variables, prepared statements
        // and session settings (MySQL >= 5.7.3, MariaDB >= 10.2.4; older servers: not pooled).
        matches!(self.conn.reset().await, Ok(true))
    }

    fn is_closed(&self) -> bool {
        false // a broken connection is closed by the call that found it broken
    }
}

/// A guest's MySQL connection.
pub type MyLease = Lease<MyConn>;

fn failed(e: mysql_async::Error, broken: &mut bool) -> DbError {
    match e {
        mysql_async::Error::Server(s) => DbError::query(format!("ERROR {} ({}): {}", s.code, s.state, s.message)),
        mysql_async::Error::Io(e) => {
            *broken = true;
            DbError::ConnectionFailed(format!("the connection to MySQL broke: {e}"))
        }
        e => {
            *broken = true;
            DbError::Other(format!("MySQL client: {e}"))
        }
    }
}

impl Pools {
    /// A MySQL connection of `owner` to `address` (parsed as `target`), to one of `addrs`.
    pub async fn mysql(
        &self,
        owner: &str,
        address: &str,
        target: &Target,
        addrs: &[SocketAddr],
        deadline: Instant,
    ) -> Result<MyLease, DbError> {
        self.lease(&self.mysql, owner, address, addrs, deadline, |peer| connect(&target.opts, peer)).await
    }
}

async fn connect(opts: &Opts, peer: SocketAddr) -> Result<MyConn, DbError> {
    let opts = OptsBuilder::from_opts(opts.clone())
        .ip_or_hostname(peer.ip().to_string())
        .resolved_ips(Some(vec![peer.ip()]))
        .tcp_port(peer.port())
        .prefer_socket(false)
        .socket(None::<String>);
    match mysql_async::Conn::new(opts).await {
        Ok(conn) => Ok(MyConn { conn }),
        Err(mysql_async::Error::Io(mysql_async::IoError::Io(e)))
            if e.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            Err(DbError::ConnectionFailed(format!("connection to {peer} refused: is the server running on that port?")))
        }
        Err(mysql_async::Error::Server(s)) => Err(DbError::ConnectionFailed(format!(
            "MySQL at {peer} refused the connection: ERROR {} ({}): {}",
            s.code, s.state, s.message
        ))),
        Err(e) => Err(DbError::ConnectionFailed(format!("connecting to MySQL at {peer}: {e}"))),
    }
}

fn params(values: &[MyParam]) -> Params {
    if values.is_empty() {
        return Params::Empty;
    }
    Params::Positional(
        values
            .iter()
            .map(|p| match p {
                MyParam::Boolean(b) => Value::Int(i64::from(*b)),
                MyParam::Int(i) => Value::Int(*i),
                MyParam::Uint(u) => Value::UInt(*u),
                MyParam::Floating32(f) => Value::Float(*f),
                MyParam::Floating64(f) => Value::Double(*f),
                MyParam::Str(s) => Value::Bytes(s.clone().into_bytes()),
                MyParam::Binary(b) => Value::Bytes(b.clone()),
                MyParam::DbNull => Value::NULL,
            })
            .collect(),
    )
}

/// The interface's type of a column, and whether its values are text kept as `str` under `other`.
fn column_type(c: &mysql_async::Column) -> MyType {
    use ColumnType::*;
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    match c.column_type() {
        MYSQL_TYPE_TINY if unsigned => MyType::Uint8,
        MYSQL_TYPE_TINY => MyType::Int8,
        MYSQL_TYPE_SHORT if unsigned => MyType::Uint16,
        MYSQL_TYPE_SHORT => MyType::Int16,
        MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG if unsigned => MyType::Uint32,
        MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG => MyType::Int32,
        MYSQL_TYPE_LONGLONG if unsigned => MyType::Uint64,
        MYSQL_TYPE_LONGLONG => MyType::Int64,
        MYSQL_TYPE_FLOAT => MyType::Floating32,
        MYSQL_TYPE_DOUBLE => MyType::Floating64,
        MYSQL_TYPE_YEAR => MyType::Uint16,
        MYSQL_TYPE_BIT => MyType::Binary,
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
            if c.flags().contains(ColumnFlags::ENUM_FLAG) || c.flags().contains(ColumnFlags::SET_FLAG) =>
        {
            MyType::Other
        }
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB => {
            if c.character_set() == 63 {
                MyType::Binary
            } else {
                MyType::Str
            }
        }
        _ => MyType::Other,
    }
}

/// Whether an `other` column's values are delivered as text.
fn as_text(c: &mysql_async::Column) -> bool {
    use ColumnType::*;
    matches!(
        c.column_type(),
        MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_DATE
            | MYSQL_TYPE_NEWDATE
            | MYSQL_TYPE_TIME
            | MYSQL_TYPE_TIME2
            | MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2
            | MYSQL_TYPE_JSON
            | MYSQL_TYPE_ENUM
            | MYSQL_TYPE_SET
            | MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
    )
}

/// MySQL's text form of a date or time value.
fn temporal_text(v: &Value, c: &mysql_async::Column) -> Option<String> {
    let frac = |us: u32| {
        if c.decimals() > 0 && c.decimals() <= 6 {
            format!(".{us:06}")[..1 + c.decimals() as usize].to_string()
        } else {
            String::new()
        }
    };
    match *v {
        Value::Date(y, mo, d, h, mi, s, us) => Some(match c.column_type() {
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => format!("{y:04}-{mo:02}-{d:02}"),
            _ => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}", frac(us)),
        }),
        Value::Time(neg, days, h, mi, s, us) => {
            let hours = days * 24 + u32::from(h);
            Some(format!("{}{hours:02}:{mi:02}:{s:02}{}", if neg { "-" } else { "" }, frac(us)))
        }
        _ => None,
    }
}

fn int<T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr>(v: &Value) -> Option<T> {
    match v {
        Value::Int(i) => <T as TryFrom<i64>>::try_from(*i).ok(),
        Value::UInt(u) => <T as TryFrom<u64>>::try_from(*u).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Converts one value of column `c` (typed `ty`).
fn convert(v: Value, c: &mysql_async::Column, ty: MyType) -> Result<MyValue, DbError> {
    if v == Value::NULL {
        return Ok(MyValue::DbNull);
    }
    let name = c.name_str();
    let wrong = |v: &Value| DbError::ValueConversion(format!("column `{name}`: cannot read {v:?} as {ty:?}"));
    Ok(match ty {
        MyType::Int8 => MyValue::Int8(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Int16 => MyValue::Int16(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Int32 => MyValue::Int32(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Int64 => MyValue::Int64(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Uint8 => MyValue::Uint8(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Uint16 => MyValue::Uint16(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Uint32 => MyValue::Uint32(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Uint64 => MyValue::Uint64(int(&v).ok_or_else(|| wrong(&v))?),
        MyType::Floating32 => match v {
            Value::Float(f) => MyValue::Floating32(f),
            Value::Double(f) => MyValue::Floating32(f as f32),
            Value::Bytes(ref b) => {
                MyValue::Floating32(std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| wrong(&v))?)
            }
            ref v => return Err(wrong(v)),
        },
        MyType::Floating64 => match v {
            Value::Double(f) => MyValue::Floating64(f),
            Value::Float(f) => MyValue::Floating64(f64::from(f)),
            Value::Bytes(ref b) => {
                MyValue::Floating64(std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| wrong(&v))?)
            }
            ref v => return Err(wrong(v)),
        },
        MyType::Binary => match v {
            Value::Bytes(b) => MyValue::Binary(b),
            ref v => return Err(wrong(v)),
        },
        MyType::Str => match v {
            Value::Bytes(b) => MyValue::Str(String::from_utf8(b).map_err(|_| {
                DbError::ValueConversion(format!("column `{name}` holds text that is not UTF-8; select it as BINARY"))
            })?),
            ref v => return Err(wrong(v)),
        },
        MyType::Boolean => MyValue::Boolean(int::<i64>(&v).ok_or_else(|| wrong(&v))? != 0),
        MyType::Other if as_text(c) => match v {
            Value::Bytes(b) => MyValue::Str(String::from_utf8_lossy(&b).into_owned()),
            ref t => MyValue::Str(temporal_text(t, c).ok_or_else(|| wrong(t))?),
        },
        MyType::Other => MyValue::Unsupported,
    })
}

impl MyLease {
    /// Runs a statement that returns rows; at most `max_bytes` of them.
    pub async fn query(
        &mut self,
        statement: &str,
        values: &[MyParam],
        deadline: Instant,
        max_bytes: usize,
    ) -> Result<MyRowSet, DbError> {
        let mut broken = false;
        let conn = &mut self.conn()?.conn;
        let run = async {
            let mut result = conn.exec_iter(statement, params(values)).await.map_err(|e| failed(e, &mut broken))?;
            let cols = result.columns().unwrap_or_else(|| Vec::new().into());
            let types: Vec<MyType> = cols.iter().map(column_type).collect();
            let mut out = MyRowSet {
                columns: cols
                    .iter()
                    .zip(&types)
                    .map(|(c, ty)| MyColumn { name: c.name_str().into_owned(), ty: *ty })
                    .collect(),
                rows: Vec::new(),
            };
            let mut bytes = 0usize;
            while let Some(row) = result.next().await.map_err(|e| failed(e, &mut broken))? {
                let values: Vec<Value> = row.unwrap();
                let mut converted = Vec::with_capacity(values.len());
                for ((v, c), ty) in values.into_iter().zip(cols.iter()).zip(&types) {
                    let v = convert(v, c, *ty)?;
                    bytes += std::mem::size_of::<MyValue>()
                        + match &v {
                            MyValue::Str(s) => s.len(),
                            MyValue::Binary(b) => b.len(),
                            _ => 0,
                        };
                    converted.push(v);
                }
                if bytes > max_bytes {
                    return Err(DbError::Other(format!(
                        "the result is larger than {} MiB ([outbound_db] max_result_mb); select fewer rows or columns",
                        max_bytes >> 20
                    )));
                }
                out.rows.push(converted);
            }
            result.drop_result().await.map_err(|e| failed(e, &mut broken))?;
            Ok(out)
        };
        let out = tokio::time::timeout_at(deadline.into(), run).await;
        self.settle(out, broken, "the MySQL query")
    }

    /// Runs a statement that returns no rows.
    pub async fn execute(&mut self, statement: &str, values: &[MyParam], deadline: Instant) -> Result<(), DbError> {
        let mut broken = false;
        let conn = &mut self.conn()?.conn;
        let run = async { conn.exec_drop(statement, params(values)).await.map_err(|e| failed(e, &mut broken)) };
        let out = tokio::time::timeout_at(deadline.into(), run).await;
        self.settle(out, broken, "the MySQL statement")
    }

    fn settle<T>(
        &mut self,
        out: Result<Result<T, DbError>, tokio::time::error::Elapsed>,
        broken: bool,
        what: &str,
    ) -> Result<T, DbError> {
        match out {
            Err(_) => Err(self.cut_short(what)),
            Ok(r) => {
                if broken {
                    let _ = self.cut_short(what);
                }
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let t = Target::parse("mysql://root@127.0.0.1/test").unwrap();
        assert_eq!(t.endpoint(), ("127.0.0.1", 3306));
        let t = Target::parse("mysql://u:p@DB.internal:3307/x?ssl-mode=DISABLED").unwrap();
        assert_eq!(t.endpoint(), ("db.internal", 3307));
        let t = Target::parse("mysql://[::1]:3306/x").unwrap();
        assert_eq!(t.endpoint(), ("::1", 3306));
        let e = Target::parse("mysql://u:secret@db/x?sslMode=VERIFY_CA").unwrap_err().to_string();
        assert!(e.contains("TLS connections to MySQL are not supported"), "{e}");
        let e = Target::parse("mysql://u:secret@db/x?socket=/tmp/s").unwrap_err().to_string();
        assert!(e.contains("`socket`") && !e.contains("secret"), "{e}");
        assert!(Target::parse("postgres://db/x").is_err());
        assert!(Target::parse("mysql:///x").is_err());
    }
}
