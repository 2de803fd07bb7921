//! Redis: `fermyon:spin/redis@2.0.0` over `wisp_outbound_db::redis`. Its error variants carry no message
//! for a bad or denied address or too many connections: those messages go to the invocation's record.

use super::{DbView, Denied, v2};
use std::time::Instant;
use v2::fermyon::spin::redis as r;
use wasmtime::component::Resource;
use wisp_core::outbound::Scheme;
use wisp_outbound_db::DbError;
use wisp_outbound_db::redis::{RedisLease, RedisParam, RedisResult, Target};

/// Payload bytes an integer counts for.
const INT: usize = 8;

fn strings(values: &[String]) -> usize {
    values.iter().map(String::len).sum()
}

/// A guest's Redis connection.
pub struct RedisHandle {
    lease: Option<RedisLease>,
}

impl DbView<'_> {
    fn redis_err(&self, e: DbError) -> r::Error {
        match e {
            DbError::InvalidAddress(m) => {
                self.note(&format!("redis: {m}"));
                r::Error::InvalidAddress
            }
            DbError::TooManyConnections(m) => {
                self.note(&format!("redis: {m}"));
                r::Error::TooManyConnections
            }
            DbError::TypeError(m) => {
                self.note(&format!("redis: {m}"));
                r::Error::TypeError
            }
            DbError::ConnectionFailed(m)
            | DbError::BadParameter(m)
            | DbError::ValueConversion(m)
            | DbError::Other(m)
            | DbError::QueryFailed { message: m, .. } => r::Error::Other(m),
        }
    }

    /// Runs one command on the connection's lease, taken out of the table for the await, and counts it:
    /// `sent` payload bytes, and what `got` says its answer carried.
    async fn redis_call<T>(
        &mut self,
        conn: &Resource<RedisHandle>,
        sent: usize,
        got: fn(&T) -> usize,
        op: impl AsyncFnOnce(&mut RedisLease, Instant) -> Result<T, DbError>,
    ) -> wasmtime::Result<Result<T, r::Error>> {
        let taken = self.table.get_mut(conn)?.lease.take();
        let Some(mut lease) = taken else {
            return Ok(Err(r::Error::Other("the connection is in use by another call".into())));
        };
        let deadline = self.deadline();
        let out = crate::trace::host_call("redis", "redis command", op(&mut lease, deadline)).await;
        self.table.get_mut(conn)?.lease = Some(lease);
        self.count(sent + out.as_ref().map_or(0, got));
        Ok(out.map_err(|e| self.redis_err(e)))
    }
}

impl r::Host for DbView<'_> {}

impl r::HostConnection for DbView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<RedisHandle>, r::Error>> {
        let o = self.opening();
        let opened = async {
            let pools = o.pools()?;
            let target = Target::parse(&address)?;
            let (host, port) = target.endpoint();
            let addrs = o.checked(Scheme::Redis, &address, &[(host.to_string(), port)]).await?;
            Ok::<_, Denied>(pools.redis(&o.owner, &address, &target, &addrs, o.deadline).await?)
        }
        .await;
        Ok(match opened {
            Ok(lease) => Ok(self.table.push(RedisHandle { lease: Some(lease) })?),
            // As under Spin: an address the grant does not allow is `invalid-address` (the record says why).
            Err(Denied::Policy(_)) => Err(r::Error::InvalidAddress),
            Err(Denied::Db(e)) => Err(self.redis_err(e)),
        })
    }

    async fn publish(
        &mut self,
        conn: Resource<RedisHandle>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), r::Error>> {
        self.redis_call(&conn, payload.len(), |_| 0, async |l, d| l.publish(&channel, &payload, d).await).await
    }

    async fn get(
        &mut self,
        conn: Resource<RedisHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, r::Error>> {
        self.redis_call(
            &conn,
            0,
            |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len),
            async |l, d| l.get(&key, d).await,
        )
        .await
    }

    async fn set(
        &mut self,
        conn: Resource<RedisHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), r::Error>> {
        self.redis_call(&conn, value.len(), |_| 0, async |l, d| l.set(&key, &value, d).await).await
    }

    async fn incr(&mut self, conn: Resource<RedisHandle>, key: String) -> wasmtime::Result<Result<i64, r::Error>> {
        self.redis_call(&conn, 0, |_| INT, async |l, d| l.incr(&key, d).await).await
    }

    async fn del(&mut self, conn: Resource<RedisHandle>, keys: Vec<String>) -> wasmtime::Result<Result<u32, r::Error>> {
        self.redis_call(&conn, 0, |_| INT, async |l, d| l.del(&keys, d).await).await
    }

    async fn sadd(
        &mut self,
        conn: Resource<RedisHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, r::Error>> {
        self.redis_call(&conn, strings(&values), |_| INT, async |l, d| l.sadd(&key, &values, d).await).await
    }

    async fn smembers(
        &mut self,
        conn: Resource<RedisHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, r::Error>> {
        self.redis_call(&conn, 0, |m: &Vec<String>| strings(m), async |l, d| l.smembers(&key, d).await).await
    }

    async fn srem(
        &mut self,
        conn: Resource<RedisHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, r::Error>> {
        self.redis_call(&conn, strings(&values), |_| INT, async |l, d| l.srem(&key, &values, d).await).await
    }

    async fn execute(
        &mut self,
        conn: Resource<RedisHandle>,
        command: String,
        arguments: Vec<r::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<r::RedisResult>, r::Error>> {
        let args: Vec<RedisParam> = arguments
            .into_iter()
            .map(|a| match a {
                r::RedisParameter::Int64(i) => RedisParam::Int64(i),
                r::RedisParameter::Binary(b) => RedisParam::Binary(b),
            })
            .collect();
        let max = self.max_result_bytes();
        let sent = args
            .iter()
            .map(|a| match a {
                RedisParam::Int64(_) => INT,
                RedisParam::Binary(b) => b.len(),
            })
            .sum();
        let got = |results: &Vec<RedisResult>| {
            results
                .iter()
                .map(|v| match v {
                    RedisResult::Nil => 0,
                    RedisResult::Status(s) => s.len(),
                    RedisResult::Int64(_) => INT,
                    RedisResult::Binary(b) => b.len(),
                })
                .sum()
        };
        let out = self.redis_call(&conn, sent, got, async |l, d| l.execute(&command, &args, d, max).await).await?;
        Ok(out.map(|results| {
            results
                .into_iter()
                .map(|v| match v {
                    RedisResult::Nil => r::RedisResult::Nil,
                    RedisResult::Status(s) => r::RedisResult::Status(s),
                    RedisResult::Int64(i) => r::RedisResult::Int64(i),
                    RedisResult::Binary(b) => r::RedisResult::Binary(b),
                })
                .collect()
        }))
    }

    async fn drop(&mut self, conn: Resource<RedisHandle>) -> wasmtime::Result<()> {
        let handle = self.table.delete(conn)?;
        if let Some(lease) = handle.lease {
            let deadline = self.deadline();
            lease.release(deadline).await;
        }
        Ok(())
    }
}
