//! The key-value capability on Redis (`wisp up --config` → `[key_value] backend = "redis"`): each entry is a
//! hash `{v: value, n: version}` under `<prefix><scope><key>`; compare-and-swap and increment are Lua scripts,
//! so they are atomic in Redis for every node that shares it. Listing scans the scope's keys (O(keys in the
//! scope) per page: fine for the stores functions list, not for millions of keys).

use crate::guest_kv::{KvBackend, Versioned};
use crate::{Result, StoreError};
use async_trait::async_trait;
use redis::AsyncCommands;

/// A Redis-backed [`KvBackend`].
#[derive(Clone)]
pub struct RedisKv {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

const SWAP: &str = r"
local cur = redis.call('HGET', KEYS[1], 'n')
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', (tonumber(cur) or 0) + 1)
return 1
";

const SET: &str = r"
redis.call('HSET', KEYS[1], 'v', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'n', 1)
";

// HINCRBY on the value field is Redis's own exact 64-bit signed add (errors on a non-integer value or an
// overflow); the version goes up in the same script. Returns the sum.
const INCREMENT: &str = r"
local ok, sum = pcall(redis.call, 'HINCRBY', KEYS[1], 'v', ARGV[1])
if not ok then
  if string.find(sum.err or '', 'overflow') then return redis.error_reply('OVERFLOW') end
  return redis.error_reply('NOTNUMBER')
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
return sum
";

impl RedisKv {
    /// Connects to `url` (reconnecting by itself later); keys get `prefix` in front.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisKv> {
        let client = redis::Client::open(url).map_err(backend)?;
        let conn = client.get_connection_manager().await.map_err(backend)?;
        Ok(RedisKv { conn, prefix: prefix.to_string() })
    }

    fn key(&self, scope: &str, key: &str) -> String {
        format!("{}{scope}{key}", self.prefix)
    }
}

#[async_trait]
impl KvBackend for RedisKv {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<Versioned>> {
        let mut c = self.conn.clone();
        let (v, n): (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.key(scope, key))
            .arg("v")
            .arg("n")
            .query_async(&mut c)
            .await
            .map_err(backend)?;
        Ok(v.map(|value| Versioned { value, version: n.unwrap_or(1) }))
    }

    async fn set(&self, scope: &str, key: &str, value: Vec<u8>) -> Result<()> {
        let mut c = self.conn.clone();
        let _: i64 =
            redis::Script::new(SET).key(self.key(scope, key)).arg(value).invoke_async(&mut c).await.map_err(backend)?;
        Ok(())
    }

    async fn swap(&self, scope: &str, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<bool> {
        let mut c = self.conn.clone();
        let expected = expected.map(|v| v.to_string()).unwrap_or_default();
        let done: i64 = redis::Script::new(SWAP)
            .key(self.key(scope, key))
            .arg(expected)
            .arg(value)
            .invoke_async(&mut c)
            .await
            .map_err(backend)?;
        Ok(done == 1)
    }

    async fn increment(&self, scope: &str, key: &str, delta: i64) -> Result<std::result::Result<i64, String>> {
        let mut c = self.conn.clone();
        let out: redis::RedisResult<i64> =
            redis::Script::new(INCREMENT).key(self.key(scope, key)).arg(delta).invoke_async(&mut c).await;
        match out {
            Ok(sum) => Ok(Ok(sum)),
            Err(e) if e.to_string().contains("NOTNUMBER") => {
                Ok(Err(format!("the value of {key:?} is not a decimal number, so it cannot be incremented")))
            }
            Err(e) if e.to_string().contains("OVERFLOW") => {
                Ok(Err(format!("incrementing {key:?} by {delta} overflows i64")))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, scope: &str, key: &str) -> Result<()> {
        let mut c = self.conn.clone();
        let _: i64 = c.del(self.key(scope, key)).await.map_err(backend)?;
        Ok(())
    }

    async fn keys(&self, scope: &str, offset: u64, limit: usize) -> Result<Vec<String>> {
        let mut c = self.conn.clone();
        let base = self.key(scope, "");
        let pattern = format!("{}*", redis_glob_escape(&base));
        let mut all: Vec<String> = Vec::new();
        let mut iter: redis::AsyncIter<String> = c.scan_match(&pattern).await.map_err(backend)?;
        while let Some(k) = iter.next_item().await {
            all.push(k.map_err(backend)?[base.len()..].to_string());
        }
        all.sort();
        Ok(all.into_iter().skip(offset as usize).take(limit).collect())
    }
}

/// `s` with Redis glob specials escaped.
fn redis_glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
