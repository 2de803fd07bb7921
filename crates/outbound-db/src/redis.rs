//! Redis through the `redis` crate's multiplexed connection, over a TCP stream wisp connected itself to a
//! checked address. Plain TCP only (`rediss://` is refused with a message saying so); RESP2.

use crate::pool::{Lease, Pooled, Pools, tcp};
use crate::{DbError, redact};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo, Value};
use std::net::SocketAddr;
use std::time::Instant;

/// A guest's Redis address, parsed.
#[derive(Debug, Clone)]
pub struct Target {
    settings: RedisConnectionInfo,
    host: String,
    port: u16,
}

impl Target {
    /// Parses a `redis://[user:password@]host[:port][/db]` address.
    pub fn parse(address: &str) -> Result<Target, DbError> {
        let bad = |why: String| {
            DbError::InvalidAddress(format!(
                "the Redis address `{}` {why} (write redis://[user:password@]host[:port][/db])",
                redact(address)
            ))
        };
        let scheme = address.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("redis") => {}
            Some("rediss") => {
                return Err(DbError::InvalidAddress(
                    "rediss:// (Redis over TLS) is not supported by wisp yet: use redis:// to a server on a private network".into(),
                ));
            }
            _ => return Err(bad("is not a redis:// URL".into())),
        }
        let info = address.into_connection_info().map_err(|e| bad(format!("does not parse: {e}")))?;
        let (host, port) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                (host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(), *port)
            }
            _ => return Err(bad("is not a TCP address".into())),
        };
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP2);
        Ok(Target { settings, host, port })
    }

    /// The host and port it names; the host must be allowed and checked.
    pub fn endpoint(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

/// An open Redis connection.
pub struct RedisConn {
    conn: MultiplexedConnection,
    driver: tokio::task::JoinHandle<()>,
    settings: RedisConnectionInfo,
}

impl Drop for RedisConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Pooled for RedisConn {
    async fn reset(&mut self) -> bool {
        // RESET (Redis >= 6.2): leaves MULTI, WATCH, pub/sub and client tracking, selects database 0 and
        // logs in as the default user; then log in and select as the address says again.
        let ok = matches!(redis::cmd("RESET").query_async::<Value>(&mut self.conn).await, Ok(Value::SimpleString(ref s)) if s == "RESET");
        if !ok {
            return false;
        }
        if let Some(password) = self.settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = self.settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
            if auth.query_async::<()>(&mut self.conn).await.is_err() {
                return false;
            }
        }
        self.settings.db() == 0
            || redis::cmd("SELECT").arg(self.settings.db()).query_async::<()>(&mut self.conn).await.is_ok()
    }

    fn is_closed(&self) -> bool {
        self.driver.is_finished()
    }
}

/// A guest's Redis connection.
pub type RedisLease = Lease<RedisConn>;

/// A value `execute` returns (nested arrays flattened, as Spin does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisResult {
    /// Nil.
    Nil,
    /// A status reply (`OK`).
    Status(String),
    /// An integer.
    Int64(i64),
    /// A bulk string.
    Binary(Vec<u8>),
}

/// An argument of `execute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisParam {
    /// An integer.
    Int64(i64),
    /// Bytes.
    Binary(Vec<u8>),
}

fn failed(e: redis::RedisError) -> DbError {
    if e.code() == Some("WRONGTYPE") || e.kind() == redis::ErrorKind::UnexpectedReturnType {
        DbError::TypeError(e.to_string())
    } else if e.is_io_error() || e.is_connection_dropped() {
        DbError::ConnectionFailed(format!("the connection to Redis broke: {e}"))
    } else {
        DbError::query(e.to_string())
    }
}

impl Pools {
    /// A Redis connection of `owner` to `address` (parsed as `target`), to one of `addrs`.
    pub async fn redis(
        &self,
        owner: &str,
        address: &str,
        target: &Target,
        addrs: &[SocketAddr],
        deadline: Instant,
    ) -> Result<RedisLease, DbError> {
        self.lease(&self.redis, owner, address, addrs, deadline, |peer| connect(&target.settings, peer)).await
    }
}

async fn connect(settings: &RedisConnectionInfo, peer: SocketAddr) -> Result<RedisConn, DbError> {
    let stream = tcp(peer).await?;
    // No response timeout of the client's own: every call is bounded by the invocation's deadline.
    let config = AsyncConnectionConfig::new().set_response_timeout(None).set_connection_timeout(None);
    let (conn, driver) = MultiplexedConnection::new_with_config(settings, stream, config)
        .await
        .map_err(|e| DbError::ConnectionFailed(format!("Redis at {peer} refused the connection: {e}")))?;
    Ok(RedisConn { conn, driver: tokio::spawn(driver), settings: settings.clone() })
}

fn flatten(v: Value, out: &mut Vec<RedisResult>) -> Result<(), DbError> {
    match v {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(i) => out.push(RedisResult::Int64(i)),
        Value::BulkString(b) => out.push(RedisResult::Binary(b)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Double(f) => out.push(RedisResult::Binary(f.to_string().into_bytes())),
        Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(b))),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        Value::ServerError(e) => return Err(DbError::query(format!("{e:?}"))),
        other => return Err(DbError::TypeError(format!("a reply of this kind cannot be returned: {other:?}"))),
    }
    Ok(())
}

impl RedisLease {
    async fn call<T: redis::FromRedisValue>(&mut self, cmd: redis::Cmd, deadline: Instant) -> Result<T, DbError> {
        let name = cmd.args_iter().next().and_then(|a| match a {
            redis::Arg::Simple(b) => Some(String::from_utf8_lossy(b).to_ascii_uppercase()),
            _ => None,
        });
        let conn = &mut self.conn()?.conn;
        match tokio::time::timeout_at(deadline.into(), cmd.query_async::<T>(conn)).await {
            Ok(r) => r.map_err(failed),
            Err(_) => Err(self.cut_short(&format!("the Redis command {}", name.unwrap_or_default()))),
        }
    }

    /// `PUBLISH channel payload`.
    pub async fn publish(&mut self, channel: &str, payload: &[u8], deadline: Instant) -> Result<(), DbError> {
        self.call::<i64>(redis::cmd("PUBLISH").arg(channel).arg(payload).clone(), deadline).await.map(drop)
    }

    /// `GET key`.
    pub async fn get(&mut self, key: &str, deadline: Instant) -> Result<Option<Vec<u8>>, DbError> {
        self.call(redis::cmd("GET").arg(key).clone(), deadline).await
    }

    /// `SET key value`.
    pub async fn set(&mut self, key: &str, value: &[u8], deadline: Instant) -> Result<(), DbError> {
        self.call::<()>(redis::cmd("SET").arg(key).arg(value).clone(), deadline).await
    }

    /// `INCR key`; a value that is not an integer is a [`DbError::TypeError`].
    pub async fn incr(&mut self, key: &str, deadline: Instant) -> Result<i64, DbError> {
        match self.call(redis::cmd("INCR").arg(key).clone(), deadline).await {
            Err(DbError::QueryFailed { message, .. }) if message.contains("not an integer") => {
                Err(DbError::TypeError(message))
            }
            r => r,
        }
    }

    /// `DEL key…`: how many existed.
    pub async fn del(&mut self, keys: &[String], deadline: Instant) -> Result<u32, DbError> {
        self.call(redis::cmd("DEL").arg(keys).clone(), deadline).await
    }

    /// `SADD key member…`: how many were new.
    pub async fn sadd(&mut self, key: &str, values: &[String], deadline: Instant) -> Result<u32, DbError> {
        self.call(redis::cmd("SADD").arg(key).arg(values).clone(), deadline).await
    }

    /// `SMEMBERS key`.
    pub async fn smembers(&mut self, key: &str, deadline: Instant) -> Result<Vec<String>, DbError> {
        self.call(redis::cmd("SMEMBERS").arg(key).clone(), deadline).await
    }

    /// `SREM key member…`: how many were removed.
    pub async fn srem(&mut self, key: &str, values: &[String], deadline: Instant) -> Result<u32, DbError> {
        self.call(redis::cmd("SREM").arg(key).arg(values).clone(), deadline).await
    }

    /// Any command; the reply flattened. At most `max_bytes` of it.
    pub async fn execute(
        &mut self,
        command: &str,
        args: &[RedisParam],
        deadline: Instant,
        max_bytes: usize,
    ) -> Result<Vec<RedisResult>, DbError> {
        let mut cmd = redis::cmd(command);
        for a in args {
            match a {
                RedisParam::Int64(i) => cmd.arg(*i),
                RedisParam::Binary(b) => cmd.arg(b.as_slice()),
            };
        }
        let value: Value = self.call(cmd, deadline).await?;
        let mut out = Vec::new();
        flatten(value, &mut out)?;
        let size: usize = out
            .iter()
            .map(|r| match r {
                RedisResult::Status(s) => s.len(),
                RedisResult::Binary(b) => b.len(),
                _ => 0,
            } + 16)
            .sum();
        if size > max_bytes {
            return Err(DbError::Other(format!(
                "the reply is larger than {} MiB ([outbound_db] max_result_mb)",
                max_bytes >> 20
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let t = Target::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(t.endpoint(), ("127.0.0.1", 6380));
        assert_eq!(t.settings.db(), 2);
        let t = Target::parse("redis://:pw@Cache.internal").unwrap();
        assert_eq!(t.endpoint(), ("cache.internal", 6379));
        assert_eq!(t.settings.password(), Some("pw"));
        let e = Target::parse("rediss://cache").unwrap_err().to_string();
        assert!(e.contains("not supported by wisp yet"), "{e}");
        assert!(Target::parse("redis+unix:///tmp/redis.sock").is_err());
        assert!(Target::parse("http://x").is_err());
    }
}
