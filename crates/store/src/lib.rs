//! Durable state, behind two traits shaped for both backends wisp supports:
//!
//! * [`KvStore`]: buckets of key → value with a per-bucket, never-reused revision number and
//!   compare-and-swap ([`Expect`]) — the semantics of a NATS JetStream KV bucket.
//! * [`BlobStore`]: buckets of immutable, named blobs — the semantics of a JetStream object store.
//!
//! [`embedded::EmbeddedStore`] implements both on SQLite (WAL, one writer) plus files written atomically
//! (temp file, fsync, rename). A JetStream backend implements the same traits for cluster mode.

#![warn(missing_docs)]

pub mod cpu;
pub mod embedded;
pub mod embedded_queue;
pub mod fs_blobs;
pub mod guest_blob;
pub mod guest_kv;
pub mod queue;
pub mod redis_kv;
pub mod secrets;
pub mod sql;

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// One KV entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// The bucket revision at which this value was written.
    pub revision: u64,
}

/// A write precondition (compare-and-swap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write unconditionally.
    Any,
    /// Only if the key does not exist.
    Absent,
    /// Only if the key's current revision is this one.
    Revision(u64),
}

/// Store failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-swap precondition did not hold.
    #[error("concurrent update of {bucket}/{key}: expected {expected:?}, found revision {found:?}")]
    Conflict {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What the writer expected.
        expected: Expect,
        /// The actual revision, `None` if absent.
        found: Option<u64>,
    },
    /// A bucket or key name the backend cannot hold.
    #[error("invalid store key `{0}`: use 1-255 characters of A-Z a-z 0-9 - _ . / and no `..`")]
    InvalidKey(String),
    /// The backend failed.
    #[error("store backend: {0}")]
    Backend(String),
}

/// Result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Key → value buckets with revisions and compare-and-swap.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The current entry, if any.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Entry>>;
    /// Writes `value` if `expect` holds; returns the new revision.
    async fn put(&self, bucket: &str, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64>;
    /// Deletes `key` if `expect` holds; deleting an absent key with [`Expect::Any`] is fine.
    async fn delete(&self, bucket: &str, key: &str, expect: Expect) -> Result<()>;
    /// Every entry whose key starts with `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Entry>>;
}

/// Buckets of immutable named blobs.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key` atomically (readers see all of it or nothing). Overwrites.
    async fn put(&self, bucket: &str, key: &str, bytes: Bytes) -> Result<()>;
    /// Reads a blob.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>>;
    /// Whether a blob exists.
    async fn exists(&self, bucket: &str, key: &str) -> Result<bool>;
    /// Removes a blob; absent is fine.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;
}

/// The store handles the rest of wisp uses.
#[derive(Clone)]
pub struct Store {
    /// Metadata.
    pub kv: Arc<dyn KvStore>,
    /// Artifacts.
    pub blobs: Arc<dyn BlobStore>,
}

/// Checks a bucket or key: 1–255 characters of `A-Z a-z 0-9 - _ . /`, no `..`, no leading `/`.
/// Both backends accept exactly this set (JetStream KV keys allow these; `/` maps to a file subdirectory).
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && !key.starts_with('/')
        && !key.contains("..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok { Ok(()) } else { Err(StoreError::InvalidKey(key.to_string())) }
}

/// The wall clock, unix milliseconds (0 before 1970): the one clock stored records and queue times use.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in ["a", "default/hello", "abc-1_2.x"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/../b", "a b", "a\0", &"x".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
